"""A webhook receiver for tests: an HTTP server on 127.0.0.1 in a thread, recording requests.

Tests wait on it (a condition variable), never by sleeping.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    at: float  # time.monotonic() on arrival
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """Answers every POST with ``status`` (and ``headers``) after ``delay`` seconds."""

    def __init__(self, status: int = 204, *, delay: float = 0.0) -> None:
        self.status = status
        self.delay = delay
        self.headers: dict[str, str] = {}
        self.requests: list[Received] = []
        self._changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._changed:
                    receiver.requests.append(
                        Received(time.monotonic(), self.path, dict(self.headers), body)
                    )
                    receiver._changed.notify_all()
                if receiver.delay:
                    time.sleep(receiver.delay)  # plays a slow receiver, not a synchronisation
                self.send_response(receiver.status)
                for name, value in receiver.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def wait_for(
        self, condition: Callable[[list[Received]], bool], timeout: float, what: str
    ) -> list[Received]:
        """Block until ``condition`` holds over the requests so far; fail after ``timeout``."""
        with self._changed:
            if not self._changed.wait_for(lambda: condition(list(self.requests)), timeout):
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            return list(self.requests)

    def events_of(self, workflow_id: object) -> list[Received]:
        with self._changed:
            return [r for r in self.requests if r.json["workflow"]["id"] == str(workflow_id)]
