"""OnosClient against the ONOS simulator (olt app REST plus device ports)."""

from __future__ import annotations

import pytest

from orchestrator.config import Settings
from orchestrator.errors import PermanentError, TransientError
from orchestrator.integrations.http import RetryPolicy, Timeouts
from orchestrator.integrations.onos import OnosClient
from tests.support.simulator_process import SimulatorHandle

PORT = "BBSM00000001-1"
SERVICE = "services/BBSM00000001-1/100/200/64$"


class FakeClock:
    """Time that passes only when the client sleeps: bounded polling without real waiting."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps = 0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.now += seconds


def make_client(sim: SimulatorHandle, password: str, clock: FakeClock | None = None) -> OnosClient:
    clock = clock or FakeClock()
    return OnosClient(
        sim.onos_url,
        "onos",
        password,
        timeouts=Timeouts(connect=1, read=0.5),
        retry=RetryPolicy(attempts=3, initial_wait=0.01, max_wait=0.02),
        confirm_timeout=2.0,
        confirm_interval=0.25,
        clock=clock,
        sleep=clock.sleep,
    )


@pytest.fixture
def onos(sim: SimulatorHandle) -> OnosClient:
    sim.add_onu("BBSM00000001")
    return make_client(sim, "rocks")


def programmed(sim: SimulatorHandle) -> list[tuple[str, int, int, int]]:
    return [
        (s["port_name"], s["s_tag"], s["c_tag"], s["tp_id"])
        for s in sim.state()["onos"]["programmed_subscribers"]
    ]


def posts(sim: SimulatorHandle) -> int:
    by_target = sim.state()["counters"]["onos"]["by_target"]
    return sum(n for target, n in by_target.items() if target.startswith("POST "))


def test_from_settings_uses_the_configured_url() -> None:
    settings = Settings(onos_url="http://onos.example:8181")
    assert "onos.example:8181" in repr(OnosClient.from_settings(settings))


def test_activate_programs_the_service_and_confirms_it(
    sim: SimulatorHandle, onos: OnosClient
) -> None:
    onos.activate_service(PORT, 100, 200, 64)
    assert programmed(sim) == [(PORT, 100, 200, 64)]
    assert onos.is_programmed(PORT, 100, 200)
    assert not onos.is_programmed(PORT, 100, 201)
    [post] = [r for r in sim.requests("onos") if r["method"] == "POST"]
    assert post["path"] == "/onos/olt/oltapp/services/BBSM00000001-1/100/200/64"
    assert post["auth_scheme"] == "Basic"


def test_activating_an_active_service_sends_nothing(sim: SimulatorHandle, onos: OnosClient) -> None:
    onos.activate_service(PORT, 100, 200, 64)
    onos.activate_service(PORT, 100, 200, 64)
    assert posts(sim) == 1


def test_activate_waits_for_onos_to_program(sim: SimulatorHandle) -> None:
    sim.add_onu("BBSM00000001")
    sim.control("POST", "config", {"onos_program_delay_ms": 300}, expect=200)
    # a real clock here: the simulator's delay is real time
    client = OnosClient(sim.onos_url, "onos", "rocks", confirm_timeout=5, confirm_interval=0.05)
    client.activate_service(PORT, 100, 200, 64)
    assert programmed(sim) == [(PORT, 100, 200, 64)]


def test_a_service_never_programmed_is_transient_after_the_bound(sim: SimulatorHandle) -> None:
    sim.add_onu("BBSM00000001")
    sim.control("POST", "config", {"onos_program_delay_ms": 600_000}, expect=200)
    clock = FakeClock()
    with pytest.raises(TransientError) as raised:
        make_client(sim, "rocks", clock=clock).activate_service(PORT, 100, 200, 64)
    assert "not listed" in str(raised.value)
    assert clock.now >= 2.0
    assert clock.sleeps == 8  # 2 s of 0.25 s polls, no more
    assert posts(sim) == 1


def test_an_unknown_port_is_transient(sim: SimulatorHandle, onos: OnosClient) -> None:
    with pytest.raises(TransientError) as raised:
        onos.activate_service("BBSM00000009-1", 100, 200, 64)
    assert raised.value.status == 500
    assert "ConnectPoint not found" in str(raised.value)


def test_a_lost_answer_then_retry_does_not_post_twice(
    sim: SimulatorHandle, onos: OnosClient
) -> None:
    sim.fault("onos", "^POST " + "/onos/olt/oltapp/" + SERVICE, "after_effect")
    with pytest.raises(TransientError):
        onos.activate_service(PORT, 100, 200, 64)
    onos.activate_service(PORT, 100, 200, 64)
    assert posts(sim) == 1
    assert programmed(sim) == [(PORT, 100, 200, 64)]


def test_a_timed_out_post_is_transient(sim: SimulatorHandle, onos: OnosClient) -> None:
    sim.fault("onos", "^POST ", "timeout")
    with pytest.raises(TransientError):
        onos.activate_service(PORT, 100, 200, 64)
    assert programmed(sim) == []


def test_confirmation_reads_are_retried(sim: SimulatorHandle, onos: OnosClient) -> None:
    sim.fault("onos", "^GET /onos/olt/oltapp/programmed-subscribers", "reset", count=2)
    onos.activate_service(PORT, 100, 200, 64)
    assert programmed(sim) == [(PORT, 100, 200, 64)]


def test_wrong_credentials_are_permanent_and_secret(sim: SimulatorHandle) -> None:
    sim.add_onu("BBSM00000001")
    client = make_client(sim, password="wrong-secret")
    with pytest.raises(PermanentError) as raised:
        client.activate_service(PORT, 100, 200, 64)
    assert raised.value.status == 401
    assert "wrong-secret" not in str(raised.value)
    assert "wrong-secret" not in repr(client)


def test_deactivate_removes_and_tolerates_absence(sim: SimulatorHandle, onos: OnosClient) -> None:
    onos.activate_service(PORT, 100, 200, 64)
    onos.deactivate_service(PORT, 100, 200, 64)
    assert programmed(sim) == []
    onos.deactivate_service(PORT, 100, 200, 64)  # 204: nothing there


def test_deactivate_on_a_vanished_onu_is_done(sim: SimulatorHandle, onos: OnosClient) -> None:
    onos.activate_service(PORT, 100, 200, 64)
    sim.control("DELETE", "onus/BBSM00000001", expect=200)
    onos.deactivate_service(PORT, 100, 200, 64)  # ONOS: 500 ConnectPoint not found


def test_deactivate_failing_while_programmed_is_transient(
    sim: SimulatorHandle, onos: OnosClient
) -> None:
    onos.activate_service(PORT, 100, 200, 64)
    sim.fault("onos", "^DELETE ", "error", status=500, count=0)
    with pytest.raises(TransientError):
        onos.deactivate_service(PORT, 100, 200, 64)
    assert programmed(sim) == [(PORT, 100, 200, 64)]
    by_target = sim.state()["counters"]["onos"]["by_target"]
    assert by_target["DELETE /onos/olt/oltapp/services/BBSM00000001-1/100/200/64"] == 3


def test_a_port_sadis_does_not_know_is_refused_for_good(
    sim: SimulatorHandle, onos: OnosClient
) -> None:
    # Given a UNI without a SADIS entry: the olt app answers the POST with 204
    sim.control("DELETE", f"sadis/{PORT}", expect=200)
    # When we activate, Then it is a permanent failure that names the cause, posted once
    with pytest.raises(PermanentError) as raised:
        onos.activate_service(PORT, 100, 200, 64)
    assert raised.value.status == 204
    assert f"SADIS has no entry for {PORT}" in str(raised.value)
    assert posts(sim) == 1
    assert programmed(sim) == []


def test_tags_sadis_does_not_offer_are_refused_for_good(
    sim: SimulatorHandle, onos: OnosClient
) -> None:
    with pytest.raises(PermanentError) as raised:
        onos.activate_service(PORT, 100, 999, 64)
    assert "has no service s100/c999/tp64" in str(raised.value)
    assert "s100/c200/tp64" in str(raised.value)  # what SADIS does offer
    assert programmed(sim) == []


def test_a_service_requested_already_is_adopted_when_exactly_ours(sim: SimulatorHandle) -> None:
    # Given ONOS lists nothing yet for a service someone already requested (its flows are slow)
    sim.add_onu("BBSM00000001")
    sim.control("POST", "config", {"onos_program_delay_ms": 300}, expect=200)
    requests_sent = sim.session.post(
        f"{sim.onos_url}/onos/olt/oltapp/services/{PORT}/100/200/64", auth=("onos", "rocks")
    )
    assert requests_sent.status_code == 200
    client = OnosClient(sim.onos_url, "onos", "rocks", confirm_timeout=5, confirm_interval=0.05)
    # When we activate the same service: 204, SADIS has it, so it was requested already
    client.activate_service(PORT, 100, 200, 64)
    # Then it is adopted once ONOS lists it, not requested twice
    assert programmed(sim) == [(PORT, 100, 200, 64)]
    assert posts(sim) == 2


def test_a_refused_request_not_listed_is_permanent(sim: SimulatorHandle) -> None:
    # Given a service requested already whose flows never start (its bandwidth profile is unknown)
    sim.add_onu(
        "BBSM00000001",
        services=[{"s_tag": 100, "c_tag": 200, "tp_id": 64, "downstream_bp": "Missing"}],
    )
    sim.session.post(
        f"{sim.onos_url}/onos/olt/oltapp/services/{PORT}/100/200/64", auth=("onos", "rocks")
    )
    with pytest.raises(PermanentError) as raised:
        make_client(sim, "rocks").activate_service(PORT, 100, 200, 64)
    assert "already requested" in str(raised.value)


def test_deactivate_that_removes_nothing_while_listed_fails(
    sim: SimulatorHandle, onos: OnosClient
) -> None:
    # Given a programmed service whose SADIS entry was emptied since: DELETE answers 204
    onos.activate_service(PORT, 100, 200, 64)
    sim.control("DELETE", f"sadis/{PORT}", expect=200)
    # Then the removal is not taken as done: the listing decides
    with pytest.raises(PermanentError) as raised:
        onos.deactivate_service(PORT, 100, 200, 64)
    assert "removed nothing" in str(raised.value)
    assert programmed(sim) == [(PORT, 100, 200, 64)]
