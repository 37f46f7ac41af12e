"""The simulated NAS: RFC 5176 Disconnect-Requests over UDP, its sessions, faults and records."""

from __future__ import annotations

import hashlib
import socket
import struct
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pyrad import packet

from orchestrator.integrations.radius_dictionary import dynauth_dictionary
from simulators.server import _parse
from tests.support.simulator_process import SimulatorHandle

SECRET = b"testing123"  # the simulator's default --nas-secret


def disconnect_request(
    secret: bytes = SECRET, *, signed: bool = True, **attributes: Any
) -> packet.CoAPacket:
    request = packet.CoAPacket(
        code=packet.DisconnectRequest,
        secret=secret,
        dict=dynauth_dictionary(),
        message_authenticator=signed,
    )
    for name, value in attributes.items():
        request[name.replace("_", "-")] = value
    return request


def exchange(sim: SimulatorHandle, data: bytes, timeout: float = 1.0) -> bytes | None:
    """Sends one datagram to the NAS; its answer, or None when it stays silent."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(data, ("127.0.0.1", sim.nas_port))
        try:
            return sock.recv(4096)
        except TimeoutError:
            return None


def ask(sim: SimulatorHandle, request: packet.CoAPacket, timeout: float = 1.0) -> Any:
    """Sends ``request``; the verified answer (pyrad packet), or None when the NAS is silent."""
    raw = exchange(sim, request.RequestPacket(), timeout)
    if raw is None:
        return None
    answer = request.CreateReply(packet=raw)
    assert request.VerifyReply(answer, raw), "the NAS's answer is not signed with the secret"
    return answer


def error_cause(answer: Any) -> int:
    [raw] = answer[101]
    return int.from_bytes(raw, "big")


def nas_state(sim: SimulatorHandle) -> dict[str, Any]:
    state: dict[str, Any] = sim.state()["nas"]
    return state


def test_the_command_line_defaults_are_the_standard_port_and_secret() -> None:
    args = _parse([])
    assert (args.nas_port, args.nas_secret) == (3799, "testing123")


def test_sessions_are_added_refused_and_reset(sim: SimulatorHandle) -> None:
    assert sim.add_nas_session("alice") == {"username": "alice", "session_id": "00000001"}
    assert sim.add_nas_session("alice", session_id="S-2")["session_id"] == "S-2"
    duplicate = sim.control("POST", "nas/sessions", {"username": "alice", "session_id": "S-2"})
    assert "already live" in duplicate["error"]
    for body in ({}, {"username": 7}, {"username": "bob", "session_id": ""}):
        assert "error" in sim.control("POST", "nas/sessions", body)
    ask(sim, disconnect_request(User_Name="nobody"))
    assert len(nas_state(sim)["sessions"]) == 2
    assert len(nas_state(sim)["requests"]) == 1

    sim.reset()

    assert nas_state(sim) == {"requests": [], "sessions": []}
    assert sim.add_nas_session("carol")["session_id"] == "00000001"


def test_a_live_session_is_acked_and_ended(sim: SimulatorHandle) -> None:
    sim.add_nas_session("alice")
    sim.add_nas_session("bob")
    answer = ask(sim, disconnect_request(User_Name="alice"))
    assert answer.code == packet.DisconnectACK
    # a signed request gets a signed answer (ask() checked both authenticators)
    assert answer.message_authenticator
    state = nas_state(sim)
    assert [s["username"] for s in state["sessions"]] == ["bob"]
    [record] = state["requests"]
    assert record["code"] == "Disconnect-Request"
    assert (record["username"], record["answer"], record["dropped"]) == ("alice", "ack", None)
    [journal] = sim.requests("nas")
    assert journal["target"] == "Disconnect-Request alice"
    assert sim.state()["counters"]["nas"]["by_target"] == {"Disconnect-Request alice": 1}


def test_no_matching_session_is_nak_503(sim: SimulatorHandle) -> None:
    sim.add_nas_session("alice", session_id="S-1")
    for request in (
        disconnect_request(User_Name="bob"),
        disconnect_request(User_Name="alice", Acct_Session_Id="S-9"),
    ):
        answer = ask(sim, request)
        assert (answer.code, error_cause(answer)) == (packet.DisconnectNAK, 503)
    assert len(nas_state(sim)["sessions"]) == 1


def test_a_session_is_found_by_its_id_alone_and_one_is_needed(sim: SimulatorHandle) -> None:
    sim.add_nas_session("alice", session_id="S-1")
    assert ask(sim, disconnect_request(Acct_Session_Id="S-1")).code == packet.DisconnectACK
    answer = ask(sim, disconnect_request())
    assert (answer.code, error_cause(answer)) == (packet.DisconnectNAK, 402)


def test_an_unsigned_request_gets_an_unsigned_answer(sim: SimulatorHandle) -> None:
    sim.add_nas_session("alice")
    answer = ask(sim, disconnect_request(signed=False, User_Name="alice"))
    assert answer.code == packet.DisconnectACK
    assert not answer.message_authenticator
    assert nas_state(sim)["requests"][0]["message_authenticator"] is False


def test_requests_that_fail_authentication_are_dropped(sim: SimulatorHandle) -> None:
    # Given a live session, and a fault armed for it
    sim.add_nas_session("alice")
    sim.fault("nas", "alice", "error", status=501)
    # a wrong secret
    assert ask(sim, disconnect_request(b"wrong", User_Name="alice"), timeout=0.3) is None
    # a packet changed after it was signed
    raw = bytearray(disconnect_request(User_Name="alice").RequestPacket())
    raw[-1] ^= 0x01
    assert exchange(sim, bytes(raw), timeout=0.3) is None
    # a bad Message-Authenticator under a good Request Authenticator
    raw = bytearray(disconnect_request(User_Name="alice").RequestPacket())
    raw[22:38] = bytes(16)  # pyrad puts the Message-Authenticator first
    authenticator = hashlib.md5(raw[:4] + bytes(16) + raw[20:] + SECRET).digest()  # noqa: S324
    raw[4:20] = authenticator
    assert exchange(sim, bytes(raw), timeout=0.3) is None
    # Then nothing changed, nothing was counted, the fault is still armed, and all are recorded
    state = sim.state()
    assert len(state["nas"]["sessions"]) == 1
    assert state["counters"]["nas"]["total"] == 0
    assert len(state["faults"]) == 1
    assert [r["dropped"] for r in state["nas"]["requests"]] == [
        "authenticator does not match the secret"
    ] * 3
    assert {r["answer"] for r in state["nas"]["requests"]} == {"none"}


def test_a_replayed_request_is_dropped(sim: SimulatorHandle) -> None:
    sim.add_nas_session("alice")
    stale = disconnect_request(User_Name="alice", Event_Timestamp=int(time.time()) - 301)
    assert ask(sim, stale, timeout=0.3) is None
    fresh = disconnect_request(User_Name="alice", Event_Timestamp=int(time.time()))
    assert ask(sim, fresh).code == packet.DisconnectACK
    assert nas_state(sim)["requests"][0]["dropped"] == "Event-Timestamp outside the replay window"


def test_coa_is_refused_as_unsupported(sim: SimulatorHandle) -> None:
    coa = packet.CoAPacket(secret=SECRET, dict=dynauth_dictionary(), User_Name="alice")
    answer = ask(sim, coa)
    assert (answer.code, error_cause(answer)) == (packet.CoANAK, 406)


def test_other_packets_and_garbage_are_dropped_and_the_nas_goes_on(sim: SimulatorHandle) -> None:
    sim.add_nas_session("alice")
    access_request = struct.pack("!BBH", 1, 7, 20) + bytes(16)
    assert exchange(sim, access_request, timeout=0.3) is None
    assert exchange(sim, b"\x28\x01", timeout=0.3) is None
    assert ask(sim, disconnect_request(User_Name="alice")).code == packet.DisconnectACK
    dropped = [r["dropped"] for r in nas_state(sim)["requests"]]
    assert dropped[0] == "not a CoA-Request or Disconnect-Request"
    assert dropped[1].startswith("malformed")
    assert dropped[2] is None


def test_an_error_fault_naks_with_its_cause_and_changes_nothing(sim: SimulatorHandle) -> None:
    sim.add_nas_session("alice")
    sim.fault("nas", "^Disconnect-Request alice$", "error", status=504)
    sim.fault("nas", "alice", "error")  # no status: 506 Resources Unavailable
    for expected in (504, 506):
        answer = ask(sim, disconnect_request(User_Name="alice"))
        assert (answer.code, error_cause(answer)) == (packet.DisconnectNAK, expected)
    assert len(nas_state(sim)["sessions"]) == 1
    assert [r["fault"] for r in nas_state(sim)["requests"]] == ["error", "error"]
    # the fault is used up: the next request is served
    assert ask(sim, disconnect_request(User_Name="alice")).code == packet.DisconnectACK


def test_a_nas_fault_status_must_be_an_error_cause(sim: SimulatorHandle) -> None:
    default = sim.control("POST", "faults", {"system": "nas", "match": "", "mode": "error"})
    assert default["status"] == 506
    for status in (500, 503.5, 201):
        spec = {"system": "nas", "match": "", "mode": "error", "status": status}
        assert "Error-Cause" in sim.control("POST", "faults", spec)["error"]


def test_timeout_and_reset_are_silent_and_change_nothing(sim: SimulatorHandle) -> None:
    sim.add_nas_session("alice")
    sim.fault("nas", "alice", "timeout")
    sim.fault("nas", "alice", "reset")
    for _ in range(2):
        assert ask(sim, disconnect_request(User_Name="alice"), timeout=0.3) is None
    assert len(nas_state(sim)["sessions"]) == 1
    assert [r["fault"] for r in nas_state(sim)["requests"]] == ["timeout", "reset"]


def test_after_effect_ends_the_session_and_loses_the_answer(sim: SimulatorHandle) -> None:
    sim.add_nas_session("alice")
    sim.fault("nas", "alice", "after_effect")
    assert ask(sim, disconnect_request(User_Name="alice"), timeout=0.3) is None
    assert nas_state(sim)["sessions"] == []
    [record] = nas_state(sim)["requests"]
    assert (record["fault"], record["answer"]) == ("after_effect", "none")


def test_latency_delays_one_answer_not_the_nas(sim: SimulatorHandle) -> None:
    sim.add_nas_session("alice")
    sim.add_nas_session("bob")
    sim.control("POST", "latency", {"system": "nas", "match": "alice", "ms": 600}, expect=201)
    with ThreadPoolExecutor(max_workers=1) as pool:
        started = time.monotonic()
        slow = pool.submit(ask, sim, disconnect_request(User_Name="alice"), 3.0)
        # alice's request is journalled before its delay starts: wait until it has arrived
        while not sim.requests("nas"):
            assert time.monotonic() - started < 2, "alice's request never arrived"
        assert ask(sim, disconnect_request(User_Name="bob")).code == packet.DisconnectACK
        assert not slow.done(), "bob's answer waited for alice's"
        assert slow.result().code == packet.DisconnectACK
        assert time.monotonic() - started >= 0.6
