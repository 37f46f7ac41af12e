"""NasClient: RFC 5176 Disconnect-Requests, against the NAS simulator and a hand-made NAS.

The hand-made NAS checks what we send with hashlib and struct alone, straight from RFC 5176
section 3.3, so pyrad is not checked against itself.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.config import Settings
from orchestrator.errors import IntegrationError, PermanentError, TransientError
from orchestrator.integrations.nas import DisconnectOutcome, NasClient
from orchestrator.integrations.radius_dictionary import (
    DYNAUTH_DICTIONARY,
    FREERADIUS_DIR,
    dynauth_dictionary,
    freeradius_dictionary,
)
from tests.support.simulator_process import SimulatorHandle

SECRET = "testing123"  # the simulator's default --nas-secret
TIMEOUT = 0.3
DISCONNECT_REQUEST, DISCONNECT_ACK, DISCONNECT_NAK = 40, 41, 42


def make_client(port: int, secret: str = SECRET) -> NasClient:
    return NasClient("127.0.0.1", secret, port=port, timeout=TIMEOUT)


@pytest.fixture
def nas(sim: SimulatorHandle) -> NasClient:
    return make_client(sim.nas_port)


def nas_state(sim: SimulatorHandle) -> dict[str, Any]:
    state: dict[str, Any] = sim.state()["nas"]
    return state


# -- a NAS made by hand ------------------------------------------------------------------------

Answer = Callable[[bytes], bytes | None]


def attributes(raw: bytes) -> dict[int, list[bytes]]:
    found: dict[int, list[bytes]] = {}
    while raw:
        kind, length = raw[0], raw[1]
        found.setdefault(kind, []).append(raw[2:length])
        raw = raw[length:]
    return found


def check_request(data: bytes, secret: bytes) -> dict[int, list[bytes]]:
    """RFC 5176 3.3: Request Authenticator = MD5(Code+Identifier+Length+16 zero octets+
    Attributes+Secret); Message-Authenticator = HMAC-MD5 over the packet with the Request
    Authenticator and its own value zeroed."""
    length = struct.unpack("!H", data[2:4])[0]
    attrs = data[20:length]
    assert data[0] == DISCONNECT_REQUEST
    # RADIUS defines its authenticators with MD5; there is no choosing another hash
    authenticator = hashlib.md5(data[:4] + bytes(16) + attrs + secret).digest()  # noqa: S324
    assert authenticator == data[4:20]
    found = attributes(attrs)
    [signature] = found[80]
    expected = hmac.new(secret, data[:4] + bytes(16) + zero_signature(attrs), "md5").digest()
    assert hmac.compare_digest(signature, expected)
    return found


def zero_signature(attrs: bytes) -> bytes:
    """The attributes with the Message-Authenticator's value as 16 zero octets."""
    position = 0
    while position < len(attrs):
        kind, length = attrs[position], attrs[position + 1]
        if kind == 80:
            return attrs[: position + 2] + bytes(16) + attrs[position + length :]
        position += length
    raise AssertionError("no Message-Authenticator")


def signed_answer(request: bytes, code: int, attrs: bytes, secret: bytes) -> bytes:
    """RFC 5176 3.3: Response Authenticator = MD5(Code+Identifier+Length+Request
    Authenticator+Attributes+Secret)."""
    header = struct.pack("!BBH", code, request[1], 20 + len(attrs))
    authenticator = hashlib.md5(header + request[4:20] + attrs + secret).digest()  # noqa: S324
    return header + authenticator + attrs


class HandMadeNas:
    """A UDP port answering each datagram with ``answer(datagram)`` (None: silence)."""

    def __init__(self, answer: Answer) -> None:
        self.received: list[bytes] = []
        self._answer = answer
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.settimeout(0.1)
        self.port = int(self._socket.getsockname()[1])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self._socket.recvfrom(4096)
            except TimeoutError:
                continue
            self.received.append(data)
            reply = self._answer(data)
            if reply is not None:
                self._socket.sendto(reply, peer)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._socket.close()


@pytest.fixture
def hand_made_nas() -> Iterator[Callable[[Answer], HandMadeNas]]:
    made: list[HandMadeNas] = []

    def start(answer: Answer) -> HandMadeNas:
        made.append(HandMadeNas(answer))
        return made[-1]

    yield start
    for fake in made:
        fake.close()


# -- settings ----------------------------------------------------------------------------------


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NAS_ADDRESS", "NAS_COA_PORT", "NAS_SECRET", "NAS_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    defaults = Settings()
    assert (defaults.nas_address, defaults.nas_coa_port) == ("127.0.0.1", 3799)
    assert (defaults.nas_secret, defaults.nas_timeout) == ("testing123", 2.0)

    monkeypatch.setenv("NAS_ADDRESS", "192.0.2.7")
    monkeypatch.setenv("NAS_COA_PORT", "1700")
    monkeypatch.setenv("NAS_SECRET", "bng-Secret-9")
    monkeypatch.setenv("NAS_TIMEOUT", "0.75")
    settings = Settings()
    assert (settings.nas_address, settings.nas_coa_port) == ("192.0.2.7", 1700)
    assert (settings.nas_secret, settings.nas_timeout) == ("bng-Secret-9", 0.75)
    assert "bng-Secret-9" not in repr(settings)

    client = NasClient.from_settings(settings)
    assert repr(client) == "NasClient(address='192.0.2.7', port=1700)"


# -- against the simulator ---------------------------------------------------------------------


def test_a_live_session_is_disconnected(sim: SimulatorHandle, nas: NasClient) -> None:
    # Given a subscriber with a live PPPoE session on the NAS
    sim.add_nas_session("alice@isp")
    sim.add_nas_session("bob@isp")
    # When we ask the NAS to disconnect it
    outcome = nas.disconnect("alice@isp")
    # Then the NAS acknowledged, ended that session only, and saw a signed request
    assert outcome is DisconnectOutcome.DISCONNECTED
    state = nas_state(sim)
    assert [s["username"] for s in state["sessions"]] == ["bob@isp"]
    [request] = state["requests"]
    assert request["code"] == "Disconnect-Request"
    assert (request["username"], request["session_id"]) == ("alice@isp", None)
    assert (request["answer"], request["error_cause"]) == ("ack", None)
    assert request["message_authenticator"] is True


def test_a_session_id_ends_that_session_only(sim: SimulatorHandle, nas: NasClient) -> None:
    sim.add_nas_session("alice@isp", session_id="81000001")
    sim.add_nas_session("alice@isp", session_id="81000002")
    assert nas.disconnect("alice@isp", session_id="81000002") is DisconnectOutcome.DISCONNECTED
    assert nas_state(sim)["sessions"] == [{"username": "alice@isp", "session_id": "81000001"}]
    assert nas_state(sim)["requests"][0]["session_id"] == "81000002"


def test_no_session_is_success_so_a_repeat_is_safe(sim: SimulatorHandle, nas: NasClient) -> None:
    sim.add_nas_session("alice@isp")
    assert nas.disconnect("alice@isp") is DisconnectOutcome.DISCONNECTED
    # the second time the NAS has nothing to end: Disconnect-NAK, Error-Cause 503
    assert nas.disconnect("alice@isp") is DisconnectOutcome.NO_SESSION
    assert nas_state(sim)["requests"][1]["error_cause"] == 503


def test_another_nak_is_permanent_and_names_the_cause(sim: SimulatorHandle, nas: NasClient) -> None:
    sim.add_nas_session("alice@isp")
    sim.fault("nas", "^Disconnect-Request alice@isp$", "error", status=501)
    with pytest.raises(PermanentError) as raised:
        nas.disconnect("alice@isp")
    error = raised.value
    assert "501" in str(error) and "Administratively-Prohibited" in str(error)
    assert (error.system, error.operation) == ("nas", "disconnect")
    assert error.response == {"code": "Disconnect-NAK", "error_causes": [501]}
    # the NAS refused: the session is still up
    assert len(nas_state(sim)["sessions"]) == 1


def test_silence_is_transient_after_the_retransmissions(
    sim: SimulatorHandle, nas: NasClient
) -> None:
    sim.add_nas_session("alice@isp")
    sim.fault("nas", "alice@isp", "timeout", count=0)
    started = time.monotonic()
    with pytest.raises(TransientError) as raised:
        nas.disconnect("alice@isp")
    elapsed = time.monotonic() - started
    # three sends, TIMEOUT s each, and not much more
    assert 3 * TIMEOUT * 0.9 <= elapsed < 3 * TIMEOUT + 1
    assert "no valid answer" in str(raised.value)
    requests = nas_state(sim)["requests"]
    assert [r["answer"] for r in requests] == ["none"] * 3
    assert len({r["id"] for r in requests}) == 1, "retransmissions are copies of one request"


def test_a_lost_ack_is_answered_on_the_retransmission(sim: SimulatorHandle, nas: NasClient) -> None:
    # the NAS ends the session but its answer is lost; pyrad sends the request again
    sim.add_nas_session("alice@isp")
    sim.fault("nas", "alice@isp", "after_effect")
    assert nas.disconnect("alice@isp") is DisconnectOutcome.NO_SESSION
    assert nas_state(sim)["sessions"] == []
    assert [r["answer"] for r in nas_state(sim)["requests"]] == ["none", "nak"]


def test_a_wrong_secret_is_dropped_by_the_nas(sim: SimulatorHandle) -> None:
    sim.add_nas_session("alice@isp")
    with pytest.raises(TransientError):
        make_client(sim.nas_port, secret="not-the-nas-secret").disconnect("alice@isp")
    state = nas_state(sim)
    assert len(state["sessions"]) == 1
    assert {r["dropped"] for r in state["requests"]} == {"authenticator does not match the secret"}


def test_the_secret_never_reaches_logs_or_errors(
    sim: SimulatorHandle, nas: NasClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sim.add_nas_session("alice@isp")
    nas.disconnect("alice@isp")
    nas.disconnect("alice@isp")
    errors: list[IntegrationError] = []
    sim.fault("nas", "alice", "error", status=504)
    sim.fault("nas", "alice", "timeout", count=3)
    for _ in range(2):
        with pytest.raises(IntegrationError) as raised:
            nas.disconnect("alice@isp")
        errors.append(raised.value)
    assert [type(e) for e in errors] == [PermanentError, TransientError]
    assert "nas disconnect alice@isp: disconnected" in caplog.text  # logging was on
    shown = caplog.text + repr(nas) + "".join(f"{e} {e!r} {e.to_dict()}" for e in errors)
    assert SECRET not in shown


# -- against a NAS made by hand ----------------------------------------------------------------


def test_the_request_is_rfc_5176_on_the_wire(
    hand_made_nas: Callable[[Answer], HandMadeNas],
) -> None:
    secret = b"hand-made"
    fake = hand_made_nas(lambda data: signed_answer(data, DISCONNECT_ACK, b"", secret))
    client = NasClient("127.0.0.1", "hand-made", port=fake.port, timeout=TIMEOUT)
    assert client.disconnect("alice@isp", session_id="S-1") is DisconnectOutcome.DISCONNECTED
    [data] = fake.received
    found = check_request(data, secret)
    assert found[1] == [b"alice@isp"]  # User-Name
    assert found[44] == [b"S-1"]  # Acct-Session-Id
    [timestamp] = found[55]  # Event-Timestamp, for the NAS's replay check
    assert abs(struct.unpack("!I", timestamp)[0] - time.time()) < 5


def test_an_answer_with_a_bad_authenticator_is_not_accepted(
    hand_made_nas: Callable[[Answer], HandMadeNas],
) -> None:
    # an ACK signed with another secret, as a spoofer (or a mis-keyed NAS) would send it
    fake = hand_made_nas(lambda data: signed_answer(data, DISCONNECT_ACK, b"", b"other"))
    client = NasClient("127.0.0.1", "hand-made", port=fake.port, timeout=TIMEOUT)
    with pytest.raises(TransientError):
        client.disconnect("alice@isp")
    assert len(fake.received) == 3


def test_a_nak_with_several_causes_names_them_all(
    hand_made_nas: Callable[[Answer], HandMadeNas],
) -> None:
    causes = b"".join(struct.pack("!BBI", 101, 6, cause) for cause in (503, 504))
    fake = hand_made_nas(lambda data: signed_answer(data, DISCONNECT_NAK, causes, b"s"))
    with pytest.raises(PermanentError, match=r"503 \(Session-Context-Not-Found\), 504"):
        NasClient("127.0.0.1", "s", port=fake.port, timeout=TIMEOUT).disconnect("alice@isp")


def test_a_username_radius_cannot_carry_is_permanent() -> None:
    # refused before anything is sent (port 9 would discard it anyway)
    with pytest.raises(PermanentError, match="cannot encode"):
        make_client(9).disconnect("a" * 254)
    with pytest.raises(PermanentError, match="username is required"):
        make_client(9).disconnect("")


# -- the dictionary ----------------------------------------------------------------------------


def test_our_dictionary_needs_no_freeradius(tmp_path: Path) -> None:
    assert DYNAUTH_DICTIONARY.parent == Path(__file__).parents[2] / "orchestrator" / "integrations"
    assert {"User-Name", "Error-Cause", "Message-Authenticator"} <= set(
        dynauth_dictionary().attributes
    )
    # FreeRADIUS's, where it is missing, fail saying which files and how to get them
    with pytest.raises(FileNotFoundError, match=r"dictionary\.rfc2865.*freeradius\.sh install"):
        freeradius_dictionary(("dictionary.rfc2865",), tmp_path)


@pytest.mark.skipif(
    not (FREERADIUS_DIR / "dictionary.rfc3576").is_file(), reason="FreeRADIUS not installed"
)
def test_our_dictionary_agrees_with_freeradius() -> None:
    theirs = freeradius_dictionary(
        (
            "dictionary.rfc2865",
            "dictionary.rfc2866",
            "dictionary.rfc2869",
            "dictionary.rfc3576",
            "dictionary.rfc5176",
        )
    )
    ours = dynauth_dictionary()
    for name, attribute in ours.attributes.items():
        if name == "Packet-Type":
            continue
        assert (theirs[name].code, theirs[name].type) == (attribute.code, attribute.type), name
        assert theirs[name].values.forward == attribute.values.forward, name
    # packet code names: FreeRADIUS keeps them in a dictionary pyrad cannot read; compare text
    internal = (FREERADIUS_DIR / "dictionary.freeradius.internal").read_text()
    named = dict(re.findall(r"^VALUE\s+Packet-Type\s+(\S+)\s+(\d+)", internal, re.MULTILINE))
    for name, encoded in ours["Packet-Type"].values.forward.items():
        assert int(named[name]) == int.from_bytes(encoded, "big"), name
