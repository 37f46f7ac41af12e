"""Domain errors become HTTP errors here, in one place, with one JSON shape:
``{"error": {"code", "message", "details"}}``. Views raise; they never build error bodies."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify
from marshmallow import ValidationError as SchemaError
from sqlalchemy.exc import InterfaceError as DatabaseInterfaceError
from sqlalchemy.exc import OperationalError as DatabaseOperationalError
from sqlalchemy.exc import TimeoutError as DatabasePoolTimeout
from werkzeug.exceptions import HTTPException

from orchestrator.errors import (
    ConflictError,
    IdempotencyMismatch,
    InvalidTransition,
    NotFound,
    ValidationError,
)
from orchestrator.service import BROKER_ERRORS
from webapp.request_id import current_request_id

log = logging.getLogger(__name__)

# webargs reports problems per location ({"json": {...}, "query": {...}}); callers care about the
# field, so the details are flattened, and a bad body or header gets its own code.
_BAD_REQUEST_CODES = {"json": "malformed_json", "headers": "invalid_header"}
#: how long a client should wait before trying again when PostgreSQL or the broker is down
RETRY_AFTER_SECONDS = 5


class ApiError(Exception):
    """Raised by views for an HTTP error with a code and per-field details."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}
        self.headers = headers or {}


def error_response(
    status: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[Response, int, dict[str, str]]:
    body = {"error": {"code": code, "message": message, "details": details or {}}}
    return jsonify(body), status, headers or {}


def _flatten(messages: dict[str, Any]) -> dict[str, Any]:
    details: dict[str, Any] = {}
    for location, problems in messages.items():
        if isinstance(problems, dict):
            details.update(problems)
        else:
            details[location if location != "json" else "body"] = problems
    return details


def _http_error(exc: HTTPException):  # type: ignore[no-untyped-def]
    status = exc.code or 500
    headers = {k: v for k, v in exc.get_headers() if k.lower() == "allow"}
    data = getattr(exc, "data", None) or {}
    messages = data.get("messages")
    if isinstance(messages, dict):
        # A request webargs could not parse or validate.
        details = _flatten(messages)
        if status == 422:
            return error_response(422, "validation_error", "the request is invalid", details)
        location = next(iter(messages), "")
        code = _BAD_REQUEST_CODES.get(location, "bad_request")
        message = "the body is not valid JSON" if location == "json" else "the request is invalid"
        return error_response(status, code, message, details, headers)
    code = (exc.name or "error").lower().replace(" ", "_")
    message = data.get("message") or exc.description or exc.name
    return error_response(status, code, message, data.get("errors"), headers)


def _broker_unavailable(exc: Exception):  # type: ignore[no-untyped-def]
    # only where a publish is the whole request (a submission's publish is caught in the service)
    log.warning("broker unavailable: %s", type(exc).__name__)
    return error_response(
        503,
        "broker_unavailable",
        "the message broker is unavailable; try again later",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(HTTPException, _http_error)

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):  # type: ignore[no-untyped-def]
        return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)

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
        return error_response(409, "conflict", str(exc), exc.fields or None)

    @app.errorhandler(InvalidTransition)
    def _invalid_transition(exc: InvalidTransition):  # type: ignore[no-untyped-def]
        return error_response(409, "invalid_state", str(exc))

    @app.errorhandler(DatabaseOperationalError)
    @app.errorhandler(DatabaseInterfaceError)
    @app.errorhandler(DatabasePoolTimeout)
    def _database_unavailable(exc: Exception):  # type: ignore[no-untyped-def]
        # PostgreSQL down or unreachable: nothing was stored, so the client may simply retry
        log.warning("database unavailable: %s", type(exc).__name__)
        return error_response(
            503,
            "database_unavailable",
            "the database is unavailable; nothing was stored, try again later",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    # kombu's and redis-py's own errors only: a bare socket error may come from anywhere
    for broker_error in BROKER_ERRORS[:3]:
        app.register_error_handler(broker_error, _broker_unavailable)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):  # type: ignore[no-untyped-def]
        request_id = current_request_id()
        # The traceback goes to the log, under the id the client sees; never into the answer.
        log.exception("unhandled error, request_id=%s", request_id)
        return error_response(
            500,
            "internal_error",
            "an unexpected error occurred; quote the request id when reporting it",
            {"request_id": request_id},
        )
