"""Domain errors become HTTP errors here, in one place, with one JSON shape:
``{"error": {"code", "message", "details"}}``."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from flask import Flask, Response, jsonify
from marshmallow import ValidationError as SchemaError
from werkzeug.exceptions import HTTPException

from orchestrator.errors import ConflictError, InvalidTransition, NotFound, ValidationError
from orchestrator.service import IdempotencyMismatch

log = logging.getLogger(__name__)


class ApiError(Exception):
    """Raised by views for an HTTP error with a code and per-field details."""

    def __init__(
        self, status: int, code: str, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}


def error_response(
    status: int, code: str, message: str, details: dict[str, Any] | None = None
) -> tuple[Response, int]:
    return jsonify({"error": {"code": code, "message": message, "details": details or {}}}), status


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):  # type: ignore[no-untyped-def]
        return error_response(exc.status, exc.code, exc.message, exc.details)

    @app.errorhandler(SchemaError)
    def _schema_error(exc: SchemaError):  # type: ignore[no-untyped-def]
        details = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
        return error_response(422, "validation_error", "the request is invalid", details)

    @app.errorhandler(ValidationError)
    def _validation_error(exc: ValidationError):  # type: ignore[no-untyped-def]
        return error_response(422, "validation_error", str(exc), exc.fields)

    @app.errorhandler(NotFound)
    def _not_found(exc: NotFound):  # type: ignore[no-untyped-def]
        return error_response(404, "not_found", str(exc))

    @app.errorhandler(IdempotencyMismatch)
    def _idempotency(exc: IdempotencyMismatch):  # type: ignore[no-untyped-def]
        return error_response(
            422, "idempotency_key_reused", str(exc), {"Idempotency-Key": [str(exc)]}
        )

    @app.errorhandler(ConflictError)
    def _conflict(exc: ConflictError):  # type: ignore[no-untyped-def]
        return error_response(409, "conflict", str(exc))

    @app.errorhandler(InvalidTransition)
    def _invalid_transition(exc: InvalidTransition):  # type: ignore[no-untyped-def]
        return error_response(409, "invalid_state", str(exc))

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):  # type: ignore[no-untyped-def]
        code = (exc.name or "error").lower().replace(" ", "_")
        return error_response(exc.code or 500, code, exc.description or exc.name)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):  # type: ignore[no-untyped-def]
        request_id = uuid.uuid4().hex
        log.exception("unhandled error, request_id=%s", request_id)
        return error_response(
            500,
            "internal_error",
            "an unexpected error occurred; quote the request id when reporting it",
            {"request_id": request_id},
        )
