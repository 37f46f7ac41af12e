"""RFC 5176 Disconnect-Requests to the NAS (the BNG that terminates PPPoE), through pyrad.

Suspending or deprovisioning a subscriber changes FreeRADIUS at once, but a session that is
already up stays up until the NAS is told to end it: a Disconnect-Request (code 40) naming the
User-Name (and the Acct-Session-Id when we know it), sent over UDP to the NAS's Dynamic
Authorization port (3799).

The NAS answers Disconnect-ACK (41): it ended the session(s); or Disconnect-NAK (42) with an
Error-Cause. Error-Cause 503 "Session Context Not Found" means there was no session: nothing to
end, which is success, and which also makes sending again after a lost ACK safe. Any other NAK
is the NAS refusing (permanent). No valid answer after the retransmissions is transient: the
request may or may not have arrived, and sending it again is harmless.

Authenticity, both ways, is pyrad's (checked in pyrad 2.6.0, pyrad/packet.py ``CoAPacket``):
the Request Authenticator is MD5(code + id + length + 16 zero octets + attributes + secret) as
for an Accounting-Request (RFC 5176 section 3.3), and the Message-Authenticator we add is an
HMAC-MD5 over the packet with that field zeroed. ``Client.SendPacket`` accepts only an answer
with our id and a valid Response Authenticator (MD5 over the answer with our Request
Authenticator and the secret) and, when the answer carries one, a valid Message-Authenticator;
anything else is ignored as if it were lost, so a forged or mis-keyed answer ends as a timeout.
"""

from __future__ import annotations

import logging
import time
from enum import StrEnum

from pyrad import packet
from pyrad.client import Client, Timeout

from orchestrator.config import Settings
from orchestrator.errors import PermanentError, TransientError
from orchestrator.integrations.concurrency import ConcurrencyLimit
from orchestrator.integrations.radius_dictionary import (
    dynauth_dictionary,
    packet_type_name,
    value_name,
)

SYSTEM = "nas"
OPERATION = "disconnect"
log = logging.getLogger(__name__)

#: how many times a request is sent in all before we give up (pyrad's ``retries``)
SEND_ATTEMPTS = 3
#: RFC 5176 section 3.5: "Session Context Not Found"
SESSION_CONTEXT_NOT_FOUND = 503
_ERROR_CAUSE = 101


class DisconnectOutcome(StrEnum):
    #: the NAS ended the subscriber's session(s) (Disconnect-ACK)
    DISCONNECTED = "disconnected"
    #: the NAS had no session for the subscriber (Disconnect-NAK, Error-Cause 503): nothing to do
    NO_SESSION = "no_session"


def _error_causes(reply: packet.Packet) -> list[int]:
    # read by code, not by name: the raw 32-bit values, whatever names a dictionary gives them
    return [int.from_bytes(raw, "big") for raw in reply.get(_ERROR_CAUSE, []) if len(raw) == 4]


def _describe(causes: list[int]) -> str:
    if not causes:
        return "no Error-Cause"
    named = (
        f"{cause} ({value_name(dynauth_dictionary(), 'Error-Cause', cause) or 'unknown'})"
        for cause in causes
    )
    return "Error-Cause " + ", ".join(named)


class NasClient:
    def __init__(
        self,
        address: str,
        secret: str,
        *,
        port: int = 3799,
        timeout: float = 2.0,
        attempts: int = SEND_ATTEMPTS,
    ) -> None:
        self._address = address
        self._port = port
        # bytes for pyrad; never logged, never part of repr or of an error
        self._secret = secret.encode()
        self._timeout = timeout
        self._attempts = attempts

    @classmethod
    def from_settings(cls, settings: Settings) -> NasClient:
        return cls(
            settings.nas_address,
            settings.nas_secret,
            port=settings.nas_coa_port,
            timeout=settings.nas_timeout,
        )

    def __repr__(self) -> str:
        return f"NasClient(address={self._address!r}, port={self._port})"

    def disconnect(self, username: str, session_id: str | None = None) -> DisconnectOutcome:
        """Asks the NAS to end ``username``'s sessions (only ``session_id``'s, when given).

        Raises PermanentError when the NAS refuses (a NAK other than 503, or an answer that is
        no Disconnect-ACK/-NAK) or the request cannot be encoded; TransientError when no valid
        answer came after ``attempts`` sends of ``timeout`` seconds each.
        """
        if not username:
            # RADIUS has no empty strings; an empty name would match no session and pass for
            # "no session", hiding the caller's mistake
            raise PermanentError(
                f"{SYSTEM} {OPERATION}: a username is required",
                system=SYSTEM,
                operation=OPERATION,
            )
        # one pyrad client (one UDP socket) per call: pyrad's client is not thread-safe, and
        # sockets must not leak from a long-lived worker
        client = Client(
            server=self._address,
            coaport=self._port,
            secret=self._secret,
            dict=dynauth_dictionary(),
            retries=self._attempts,
            timeout=self._timeout,
        )
        try:
            request = client.CreateCoAPacket(
                code=packet.DisconnectRequest,
                # RFC 5176 makes it optional; we sign anyway (BlastRADIUS-era practice). When the
                # NAS signs its answer too, pyrad verifies that signature as well
                message_authenticator=True,
            )
            request["User-Name"] = username
            if session_id:
                request["Acct-Session-Id"] = session_id
            # RFC 5176 section 3.3: lets the NAS refuse a replayed request; set once, so the
            # retransmissions pyrad makes are identical copies
            request["Event-Timestamp"] = int(time.time())
            # One of the NAS's slots while we wait for its answer (every send, every retry).
            limit = ConcurrencyLimit.for_system(SYSTEM, self._attempts * self._timeout + 5.0)
            with limit.slot():
                reply = client.SendPacket(request)
        except Timeout as exc:
            raise TransientError(
                f"{SYSTEM} {OPERATION}: no valid answer from {self._address}:{self._port} after "
                f"{self._attempts} sends, {self._timeout} s each (NAS down, wrong port, or a "
                "secret the NAS does not share: it drops what it cannot authenticate)",
                system=SYSTEM,
                operation=OPERATION,
            ) from exc
        except ValueError as exc:  # pyrad: a value that cannot be encoded (over 253 octets)
            raise PermanentError(
                f"{SYSTEM} {OPERATION}: cannot encode the request for {username!r}: {exc}",
                system=SYSTEM,
                operation=OPERATION,
            ) from exc
        except OSError as exc:  # name resolution, no route: the request may not have left
            raise TransientError(
                f"{SYSTEM} {OPERATION}: cannot send to {self._address}:{self._port} "
                f"({type(exc).__name__}: {exc})",
                system=SYSTEM,
                operation=OPERATION,
            ) from exc
        finally:
            client._CloseSocket()  # pyrad has no public close
        return self._outcome(username, reply)

    def _outcome(self, username: str, reply: packet.Packet) -> DisconnectOutcome:
        if reply.code == packet.DisconnectACK:
            log.info("nas disconnect %s: disconnected", username)
            return DisconnectOutcome.DISCONNECTED
        answer = packet_type_name(reply.code)
        causes = _error_causes(reply)
        if reply.code == packet.DisconnectNAK and set(causes) == {SESSION_CONTEXT_NOT_FOUND}:
            log.info("nas disconnect %s: no session to end", username)
            return DisconnectOutcome.NO_SESSION
        # a NAK is the NAS refusing; any other code is no answer to a Disconnect-Request
        what = "" if reply.code == packet.DisconnectNAK else "unexpected "
        raise PermanentError(
            f"{SYSTEM} {OPERATION} {username}: {what}{answer} with {_describe(causes)}",
            system=SYSTEM,
            operation=OPERATION,
            response={"code": answer, "error_causes": causes},
        )
