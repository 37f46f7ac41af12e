"""``X-Request-ID`` on every response: the caller's, when it is sane, or a new one.

The same id is in the body of a 500 and in the log line that holds the traceback, so a report
from a client leads straight to the cause.
"""

from __future__ import annotations

import re
import uuid

from flask import Flask, Response, g, has_request_context, request

HEADER = "X-Request-ID"
# What a proxy or client may reasonably send: no spaces or control characters that could forge
# log lines, and short.
_SANE = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")


def current_request_id() -> str:
    if not has_request_context():
        return "-"
    if "request_id" not in g:
        incoming = request.headers.get(HEADER, "")
        g.request_id = incoming if _SANE.match(incoming) else uuid.uuid4().hex
    return g.request_id


def init_app(app: Flask) -> None:
    @app.before_request
    def _assign() -> None:
        current_request_id()

    @app.after_request
    def _echo(response: Response) -> Response:
        response.headers[HEADER] = current_request_id()
        return response
