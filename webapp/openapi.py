"""flask-smorest wired to our conventions: one error shape, JSON bodies only, roles documented.

The OpenAPI document is generated from the same decorators that parse requests and dump
responses, so what it promises is what the code does; schemathesis checks that in the tests.
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any, TypeVar

import flask
import flask_smorest
from webargs.flaskparser import FlaskParser, abort, is_json_request

from webapp.auth import require_role
from webapp.schemas.base import ErrorSchema

F = TypeVar("F", bound=Callable[..., Any])

BEARER = "bearerAuth"
SECURITY_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "description": "an API key: `orchestrator api-key create --tenant T --role R`",
}


class JsonBodyParser(FlaskParser):
    """Like webargs's parser, but a body that is not declared JSON is a 415, not "missing",
    and a body nested too deeply for the parser is a 400 like any other malformed body."""

    def _raw_load_json(self, req: flask.Request) -> Any:
        if not is_json_request(req):
            abort(415, message="send the body as application/json")
        try:
            return super()._raw_load_json(req)
        except RecursionError as exc:
            # json.loads recurses once per level: thousands of "[" exhaust the stack, and
            # webargs only maps JSONDecodeError to a 400
            abort(400, exc=exc, messages={"json": ["Invalid JSON body: nested too deeply."]})
        except ValueError as exc:
            # Python refuses to read an integer of more than 4,300 digits (a ValueError that is
            # no JSONDecodeError, which webargs would have mapped already)
            abort(400, exc=exc, messages={"json": [f"Invalid JSON body: {exc}"]})


class Api(flask_smorest.Api):
    ERROR_SCHEMA = ErrorSchema

    def _register_error_handlers(self) -> None:
        # webapp.errors registers every handler, in one place, with one shape.
        pass


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = JsonBodyParser()

    def errors(self, *statuses: int) -> Callable[[F], F]:
        """Document error answers a view can give (each in the one error shape)."""

        def decorator(view: F) -> F:
            for status in statuses:
                view = self.alt_response(status, response=HTTPStatus(status).name)(view)
            return view

        return decorator

    def requires(self, role: str) -> Callable[[F], F]:
        """Enforce a role (before anything else is parsed) and say so in the document."""
        answers = (401,) if role == "viewer" else (401, 403)

        def decorator(view: F) -> F:
            view = self.errors(*answers)(view)
            view = self.doc(security=[{BEARER: []}])(view)
            return require_role(role)(view)

        return decorator
