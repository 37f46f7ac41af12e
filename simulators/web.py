"""The simulators' HTTP front: a threaded server that routes by path prefix and applies faults.

We use ``http.server`` rather than a WSGI stack because fault injection needs the raw socket: a
"reset" must drop the TCP connection without a byte of response, which WSGI cannot express.
"""

from __future__ import annotations

import json
import logging
import socket
import struct
import threading
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from simulators.faults import Fault

log = logging.getLogger(__name__)


class BadJson(ValueError):
    """Raised when a request body is not valid JSON."""


@dataclass(frozen=True)
class Request:
    method: str
    #: percent-encoded path relative to the system's root (GenieACS ids are escaped twice)
    path: str
    query: dict[str, list[str]]
    raw_query: str
    headers: Mapping[str, str]
    body: bytes
    #: absolute URL of the system's root as the client reached it, for self links
    base_url: str

    @property
    def target(self) -> str:
        return f"{self.method} {self.path}"

    def arg(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    def json(self) -> Any:
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise BadJson(str(exc)) from exc


@dataclass
class Reply:
    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    #: HTTP reason phrase; GenieACS carries meaning in it ("Task queued but not processed")
    reason: str | None = None


def json_reply(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> Reply:
    return Reply(
        status,
        json.dumps(payload).encode(),
        "application/json",
        dict(headers or {}),
    )


def text_reply(status: int, text: str = "", reason: str | None = None) -> Reply:
    return Reply(status, text.encode(), "text/plain; charset=utf-8" if text else None, {}, reason)


class System(Protocol):
    name: str

    def handle(self, request: Request) -> Reply: ...

    def error_reply(self, status: int, request: Request) -> Reply:
        """The body the real system would send with this status (used for injected errors)."""
        ...


@dataclass(frozen=True)
class Mount:
    #: path prefix that selects the system
    prefix: str
    #: whether the prefix is stripped before the system sees the path (ONOS keeps "/onos")
    strip: bool
    system: System
    #: The most bytes of request line and headers the real server reads, and what it answers
    #: past that (None: http.server's own limit, a 64 KiB request line, then 414).
    head_limit: HeadLimit | None = None


@dataclass(frozen=True)
class HeadLimit:
    size: int
    reply: Callable[[], Reply]


class Hub(Protocol):
    """What the HTTP front needs from the simulated world."""

    def mounts(self) -> list[Mount]: ...

    def control(self, request: Request) -> Reply: ...

    def before(self, system: str, target: str, record: dict[str, Any]) -> Fault | None:
        """Counts and journals the request, applies latency, returns the fault to apply."""
        ...

    def hold(self, seconds: float | None, *, at_most: float | None = None) -> None:
        """Blocks like a hung server until the hold ends, the state is reset or we shut down."""
        ...

    def in_flight(self, system: str) -> AbstractContextManager[None]:
        """Counts the request as in flight (for ``max_concurrent``) while the block runs."""
        ...


def _journal_record(request: Request) -> dict[str, Any]:
    """What tests may assert about a request's shape; credentials are reduced to their scheme."""
    try:
        body: Any = request.json() if request.body else None
    except BadJson:
        body = request.body.decode("utf-8", "replace")
    auth = request.headers.get("authorization", "")
    return {
        "method": request.method,
        "path": request.path,
        "query": request.raw_query,
        "body": body,
        "auth_scheme": auth.split(" ", 1)[0] if auth else None,
    }


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 keeps connections alive, as every real server here does; a client that reuses a
    # connection must cope with it being dropped, and tests should see that.
    protocol_version = "HTTP/1.1"
    # headers and body leave in two writes; with Nagle on, the second waits for the client's
    # delayed ACK (40 ms a response on Linux)
    disable_nagle_algorithm = True
    server: SimulatorHTTPServer

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s - %s", self.address_string(), format % args)

    def _head_size(self) -> int:
        """Bytes of the request line and headers as they came (CRLFs included)."""
        return len(self.raw_requestline) + sum(
            len(name) + len(value) + 4 for name, value in self.headers.items()
        )

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _request(self, prefix: str, strip: bool, body: bytes) -> Request:
        parts = urlsplit(self.path)
        path = parts.path[len(prefix) :] if strip else parts.path
        host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])
        return Request(
            method=self.command,
            path=path or "/",
            query=parse_qs(parts.query, keep_blank_values=True),
            raw_query=parts.query,
            headers={key.lower(): value for key, value in self.headers.items()},
            body=body,
            base_url=f"http://{host}{prefix if strip else ''}",
        )

    def _dispatch(self) -> None:
        body = self._read_body()
        hub = self.server.hub
        path = urlsplit(self.path).path
        if path.startswith("/_sim/"):
            self._send(self._safely(hub.control, self._request("", False, body)))
            return
        mount = next((m for m in hub.mounts() if path.startswith(m.prefix + "/")), None)
        if mount is None:
            self._send(text_reply(404, "404 Not Found"))
            return
        # The real server has no prefix: what it would have read is the line without it.
        head_size = self._head_size() - (len(mount.prefix) if mount.strip else 0)
        if mount.head_limit is not None and head_size > mount.head_limit.size:
            # Refused before the application sees it: not counted, journalled or faulted.
            self.close_connection = True
            self._send(mount.head_limit.reply())
            return
        request = self._request(mount.prefix, mount.strip, body)
        system = mount.system
        # in flight until the answer is ready, not until it is written: see World.in_flight
        with hub.in_flight(system.name):
            fault = hub.before(system.name, request.target, _journal_record(request))
            reply: Reply | None = None
            if fault is None:
                reply = self._safely(system.handle, request)
            elif fault.mode == "error":
                reply = system.error_reply(fault.status, request)
            elif fault.mode == "timeout":
                hub.hold(fault.hold_s)
            elif fault.mode == "after_effect":  # the change is made, the answer is lost
                self._safely(system.handle, request)
        if reply is None:  # timeout, reset, after_effect
            self._drop()
        else:
            self._send(reply)

    def _safely(self, handler: Callable[[Request], Reply], request: Request) -> Reply:
        try:
            return handler(request)
        except Exception:
            log.exception("simulator bug while handling %s", request.target)
            return text_reply(500, "simulator error")

    def _send(self, reply: Reply) -> None:
        self.send_response(reply.status, reply.reason)
        headers = dict(reply.headers)
        if reply.content_type:
            headers["Content-Type"] = reply.content_type
        for name, value in headers.items():
            self.send_header(name, value)
        if reply.status != 204:
            self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if reply.status != 204 and self.command != "HEAD":
            self.wfile.write(reply.body)

    def _drop(self) -> None:
        """Closes the TCP connection with a RST and no response, like a crashed server."""
        self.close_connection = True
        sock = self.connection
        self.rfile.close()
        self.wfile.close()
        try:
            # linger on with a zero timeout turns close() into an abortive close (RST)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
        except OSError:
            pass


class SimulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # the default backlog (5) refuses connections under the concurrency tests
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], hub: Hub) -> None:
        self.hub = hub
        super().__init__(address, _Handler)


def serve_in_thread(server: SimulatorHTTPServer) -> threading.Thread:
    # a short poll interval: shutdown() waits up to one interval for the loop to notice
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="sim-http", daemon=True
    )
    thread.start()
    return thread
