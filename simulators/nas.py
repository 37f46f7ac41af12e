"""A NAS (the BNG that terminates PPPoE) as far as RFC 5176 Dynamic Authorization goes.

A UDP listener, like a BNG's Dynamic Authorization port (3799), that answers Disconnect-Requests
for the PPPoE sessions it holds (added through ``POST /_sim/nas/sessions``):

- A request is authenticated first: its Request Authenticator, MD5(code + id + length +
  16 zero octets + attributes + secret) (RFC 5176 section 3.3), and its Message-Authenticator
  when it has one. One that fails is silently dropped, as RFC 5176 section 3.3 and RFC 2865
  section 3 require of a NAS, and so is one whose Event-Timestamp is more than 300 s off (the
  replay window section 3.3 recommends). Packets that are no CoA-/Disconnect-Request are dropped.
- Disconnect-Request: Disconnect-ACK when a live session matches its User-Name (and its
  Acct-Session-Id, when it has one), and the matching sessions end; Disconnect-NAK with
  Error-Cause 503 "Session Context Not Found" when none matches; Error-Cause 402 "Missing
  Attribute" when it names neither.
- CoA-Request: CoA-NAK with Error-Cause 406 "Unsupported Extension" (we do not model CoA).
- Answers are signed with the request's authenticator and the secret, with a
  Message-Authenticator when the request had one.

Faults (system "nas"; the target is ``"Disconnect-Request <username>"``): ``error`` answers a
NAK with ``status`` as its Error-Cause and changes nothing; ``timeout`` and ``reset`` stay
silent and change nothing (UDP has no connection to reset); ``after_effect`` ends the session
and stays silent. Each retransmission is a request of its own for a fault's ``count``. Latency
rules delay the answer. Packets are decoded with pyrad's classes and our own dictionary.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from pyrad import packet

from orchestrator.integrations.radius_dictionary import dynauth_dictionary, packet_type_name
from simulators.faults import Fault

log = logging.getLogger(__name__)

SYSTEM = "nas"
REQUESTS_KEPT = 1000
#: RFC 5176 section 3.3: the recommended window for Event-Timestamp
REPLAY_WINDOW_S = 300
MISSING_ATTRIBUTE = 402
UNSUPPORTED_EXTENSION = 406
SESSION_CONTEXT_NOT_FOUND = 503
_NAK_FOR = {packet.DisconnectRequest: packet.DisconnectNAK, packet.CoARequest: packet.CoANAK}
_ANSWERS = {
    packet.DisconnectACK: "ack",
    packet.DisconnectNAK: "nak",
    packet.CoAACK: "ack",
    packet.CoANAK: "nak",
}


class SessionExists(ValueError):
    """Raised when a session with this username and session id is already live."""


class Guard(Protocol):
    """What the NAS needs from the world: counting, journal, latency, faults."""

    def before(self, system: str, target: str, record: dict[str, Any]) -> Fault | None: ...

    def in_flight(self, system: str) -> AbstractContextManager[None]: ...


@dataclass(frozen=True)
class Session:
    username: str
    #: the Acct-Session-Id the NAS gave the session
    session_id: str


def _text(values: list[Any] | None) -> str | None:
    """The first value of a string attribute; one that is not UTF-8 comes back as hex."""
    if not values:
        return None
    value = values[0]
    return value.hex() if isinstance(value, bytes) else str(value)


def _authentic(request: packet.CoAPacket) -> bool:
    if not request.VerifyCoARequest():
        return False
    # pyrad computes it with a zeroed Request Authenticator for these codes (RFC 5176 3.3)
    return not request.message_authenticator or request.verify_message_authenticator()


class NasSim:
    """The NAS's live sessions and every request it got; ``answer`` is the protocol."""

    def __init__(self, secret: str) -> None:
        self._secret = secret.encode()
        self._lock = threading.Lock()
        self._sessions: list[Session] = []
        self._requests: deque[dict[str, Any]] = deque(maxlen=REQUESTS_KEPT)
        self._next_session = 1

    def reset(self) -> None:
        with self._lock:
            self._sessions.clear()
            self._requests.clear()
            self._next_session = 1

    def add_session(self, username: str, session_id: str | None = None) -> Session:
        with self._lock:
            if session_id is None:
                # what a BNG makes up: a counter in hex, unique on this NAS
                session_id = f"{self._next_session:08X}"
                self._next_session += 1
            session = Session(username, session_id)
            if session in self._sessions:
                raise SessionExists(f"session {session_id} of {username} is already live")
            self._sessions.append(session)
            return session

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": [dict(entry) for entry in self._requests],
                "sessions": [asdict(session) for session in self._sessions],
            }

    def answer(self, datagram: bytes, guard: Guard) -> bytes | None:
        """The answer to one datagram, or None to stay silent; records the request."""
        try:
            request = packet.CoAPacket(
                secret=self._secret, dict=dynauth_dictionary(), packet=datagram
            )
        except packet.PacketError as exc:
            self._record({"code": None, "answer": "none", "dropped": f"malformed: {exc}"})
            return None
        entry: dict[str, Any] = {
            "code": packet_type_name(request.code),
            "id": request.id,
            "username": _text(request.get("User-Name")),
            "session_id": _text(request.get("Acct-Session-Id")),
            "message_authenticator": bool(request.message_authenticator),
            "answer": "none",
            "error_cause": None,
            "fault": None,
            "dropped": None,
        }
        entry["dropped"] = self._refusal(request)
        if entry["dropped"] is not None:
            # dropped before anything looks at it: no counter, no journal, no fault consumed
            self._record(entry)
            return None
        target = f"{entry['code']} {entry['username'] or ''}".rstrip()
        journal = {key: entry[key] for key in ("code", "id", "username", "session_id")}
        code: int | None
        cause: int | None
        # in flight until the answer is made (it is sent after): see World.in_flight
        with guard.in_flight(SYSTEM):
            fault = guard.before(SYSTEM, target, journal)
            if fault is None:
                code, cause = self._act(request, entry["username"], entry["session_id"])
            elif fault.mode == "error":
                code, cause = _NAK_FOR[request.code], fault.status
            else:  # timeout, reset: nothing done; after_effect: done; either way, no answer
                if fault.mode == "after_effect":
                    self._act(request, entry["username"], entry["session_id"])
                code = cause = None
        entry["fault"] = fault.mode if fault else None
        if code is None:
            self._record(entry)
            return None
        entry["answer"], entry["error_cause"] = _ANSWERS[code], cause
        self._record(entry)
        return self._reply(request, code, cause)

    def _refusal(self, request: packet.CoAPacket) -> str | None:
        """Why the NAS drops the request unanswered, or None when it takes it."""
        if request.code not in _NAK_FOR:
            return "not a CoA-Request or Disconnect-Request"
        if not _authentic(request):
            return "authenticator does not match the secret"
        timestamps = request.get("Event-Timestamp")
        if timestamps and abs(time.time() - int(timestamps[0])) > REPLAY_WINDOW_S:
            return "Event-Timestamp outside the replay window"
        return None

    def _act(
        self, request: packet.CoAPacket, username: str | None, session_id: str | None
    ) -> tuple[int, int | None]:
        """Does what the request asks; returns the answer's code and Error-Cause."""
        if request.code == packet.CoARequest:
            return packet.CoANAK, UNSUPPORTED_EXTENSION
        if username is None and session_id is None:
            return packet.DisconnectNAK, MISSING_ATTRIBUTE
        with self._lock:
            ending = [
                s
                for s in self._sessions
                if username in (None, s.username) and session_id in (None, s.session_id)
            ]
            if not ending:
                return packet.DisconnectNAK, SESSION_CONTEXT_NOT_FOUND
            self._sessions = [s for s in self._sessions if s not in ending]
        return packet.DisconnectACK, None

    @staticmethod
    def _reply(request: packet.CoAPacket, code: int, cause: int | None) -> bytes:
        # CreateReply carries the request's id and authenticator (for the Response
        # Authenticator) and its Proxy-State; ReplyPacket signs
        reply = request.CreateReply(message_authenticator=bool(request.message_authenticator))
        reply.code = code
        if cause is not None:
            reply["Error-Cause"] = cause
        raw: bytes = reply.ReplyPacket()
        return raw

    def _record(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._requests.append(entry)


class NasServer:
    """The UDP front: one listening socket, each datagram answered on a small thread pool (so a
    latency rule delays one answer, not the NAS)."""

    def __init__(self, nas: NasSim, guard: Guard, host: str, port: int) -> None:
        self._nas = nas
        self._guard = guard
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind((host, port))
        # wake up now and then to notice stop(): closing a socket does not wake recvfrom
        self._socket.settimeout(0.2)
        self.port: int = self._socket.getsockname()[1]
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="sim-nas")
        self._thread = threading.Thread(target=self._serve, name="sim-nas", daemon=True)

    def start(self) -> NasServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stops listening; answers being made (held ones are let go by the world) finish."""
        self._stop.set()
        self._thread.join(timeout=5)
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._socket.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                datagram, peer = self._socket.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            self._pool.submit(self._handle, datagram, peer)

    def _handle(self, datagram: bytes, peer: tuple[str, int]) -> None:
        try:
            reply = self._nas.answer(datagram, self._guard)
            if reply is not None:
                self._socket.sendto(reply, peer)
        except Exception:
            log.exception("simulator bug while answering a RADIUS packet from %s", peer)
