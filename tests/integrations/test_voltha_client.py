"""VolthaClient against the VOLTHA simulator, through the voltha-protos stubs."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis
from voltha_protos.common_pb2 import AdminState

from orchestrator.config import Settings
from orchestrator.errors import PermanentError, ResourceNotFound, SlotsBusy, TransientError
from orchestrator.integrations import concurrency
from orchestrator.integrations.circuit import CircuitBreaker
from orchestrator.integrations.http import RetryPolicy
from orchestrator.integrations.voltha import OnuLocation, VolthaClient
from tests.support.simulator_process import SimulatorHandle

ENABLED, DISABLED = AdminState.ENABLED, AdminState.DISABLED


@pytest.fixture
def voltha(sim: SimulatorHandle) -> Iterator[VolthaClient]:
    with VolthaClient(
        sim.grpc_address,
        timeout=0.5,
        retry=RetryPolicy(attempts=3, initial_wait=0.01, max_wait=0.02),
    ) as client:
        yield client


def calls(sim: SimulatorHandle, method: str) -> int:
    return sim.state()["counters"]["voltha"]["by_target"].get(method, 0)


def test_from_settings_uses_the_configured_address() -> None:
    client = VolthaClient.from_settings(Settings(voltha_address="voltha.example:55555"))
    try:
        assert "voltha.example:55555" in repr(client)
    finally:
        client.close()


def test_find_onu_locates_the_onu_its_olt_and_its_uni(
    sim: SimulatorHandle, voltha: VolthaClient
) -> None:
    sim.add_onu("BBSM00000001")
    onu = sim.add_onu("BBSM00000002", pon=1)
    location = voltha.find_onu("BBSM00000002")
    assert location == OnuLocation(
        device_id=onu["device_id"],
        serial="BBSM00000002",
        olt_id=onu["olt_id"],
        uni_port_no=onu["uni_port_no"],
        uni_port_name="BBSM00000002-1",
        admin_state="ENABLED",
        oper_status="ACTIVE",
        connect_status="REACHABLE",
        # where ONOS has the UNI: the OLT's MAC as datapath id, the UNI's own port number
        onos_location=onu["location"],
    )
    assert location.usable
    # the requests are what VOLTHA's API takes: ListDevices, then the ONU's ports by id
    journal = sim.requests("voltha")
    assert [r["method"] for r in journal] == ["ListDevices", "ListDevicePorts"]
    assert journal[1]["request"] == {"id": onu["device_id"]}


def test_an_undiscovered_onu_is_a_permanent_not_found(voltha: VolthaClient) -> None:
    with pytest.raises(ResourceNotFound) as raised:
        voltha.find_onu("BBSM00000009")
    assert isinstance(raised.value, PermanentError)
    assert "not discovered" in str(raised.value)


def test_brief_unavailability_is_retried(sim: SimulatorHandle, voltha: VolthaClient) -> None:
    sim.add_onu("BBSM00000001")
    sim.fault("voltha", "^ListDevices$", "error", status=503, count=2)
    assert voltha.find_onu("BBSM00000001").uni_port_no == 16
    assert calls(sim, "ListDevices") == 3


@pytest.mark.parametrize("mode", ["reset", "timeout"])
def test_lasting_failures_become_transient(
    sim: SimulatorHandle, voltha: VolthaClient, mode: str
) -> None:
    sim.fault("voltha", "^ListDevices$", mode, count=0)
    with pytest.raises(TransientError):
        voltha.find_onu("BBSM00000001")
    assert calls(sim, "ListDevices") == 3


def test_an_invalid_argument_is_permanent_and_not_retried(
    sim: SimulatorHandle, voltha: VolthaClient
) -> None:
    sim.fault("voltha", "^ListDevices$", "error", status=400)
    with pytest.raises(PermanentError) as raised:
        voltha.find_onu("BBSM00000001")
    assert "INVALID_ARGUMENT" in str(raised.value)
    assert calls(sim, "ListDevices") == 1


@pytest.mark.parametrize(
    ("state", "shown"),
    [
        ({"admin_state": "DISABLED"}, "admin_state DISABLED, oper_status UNKNOWN"),
        ({"connect_status": "UNREACHABLE"}, "oper_status DISCOVERED, connect_status UNREACHABLE"),
        ({"oper_status": "ACTIVATING"}, "oper_status ACTIVATING"),
    ],
)
def test_an_unusable_onu_is_found_but_refused_when_usable_is_required(
    sim: SimulatorHandle, voltha: VolthaClient, state: dict[str, str], shown: str
) -> None:
    # Given an ONU VOLTHA knows but that cannot carry a service
    sim.add_onu("BBSM00000001", **state)
    # When it is looked up plainly, it is found with its state (to enable it, or undo on it)
    onu = voltha.find_onu("BBSM00000001")
    assert not onu.usable
    assert onu.uni_port_name == "BBSM00000001-1"
    # Then a caller that needs a usable ONU gets a permanent error naming the state
    with pytest.raises(PermanentError) as raised:
        voltha.find_onu("BBSM00000001", require_usable=True)
    assert not isinstance(raised.value, ResourceNotFound)
    assert "BBSM00000001 is not usable" in str(raised.value)
    assert shown in str(raised.value)
    assert raised.value.response["admin_state"] == onu.admin_state


def test_a_usable_onu_passes_the_requirement(sim: SimulatorHandle, voltha: VolthaClient) -> None:
    sim.add_onu("BBSM00000001")
    assert voltha.find_onu("BBSM00000001", require_usable=True).usable


def test_disable_and_enable_are_idempotent(sim: SimulatorHandle, voltha: VolthaClient) -> None:
    onu_id = sim.add_onu("BBSM00000001")["device_id"]
    voltha.disable_onu(onu_id)
    voltha.disable_onu(onu_id)
    disabled = voltha.find_onu("BBSM00000001")
    assert (disabled.admin_state, disabled.oper_status) == ("DISABLED", "UNKNOWN")
    voltha.enable_onu(onu_id)
    voltha.enable_onu(onu_id)  # VOLTHA would refuse this one: we see it is enabled and stop
    assert voltha.find_onu("BBSM00000001").usable
    # one call each way: the repeats were answered from the device's state
    assert (calls(sim, "DisableDevice"), calls(sim, "EnableDevice")) == (1, 1)


def test_enable_brings_back_an_onu_created_disabled(
    sim: SimulatorHandle, voltha: VolthaClient
) -> None:
    onu_id = sim.add_onu("BBSM00000001", admin_state="DISABLED")["device_id"]
    voltha.enable_onu(onu_id)
    assert voltha.find_onu("BBSM00000001", require_usable=True).admin_state == "ENABLED"


def test_an_enabled_but_failed_onu_is_enabled_again(
    sim: SimulatorHandle, voltha: VolthaClient
) -> None:
    # VOLTHA accepts EnableDevice on an ENABLED device whose oper status is FAILED (vol-4275)
    onu_id = sim.add_onu("BBSM00000001", oper_status="FAILED")["device_id"]
    voltha.enable_onu(onu_id)
    assert calls(sim, "EnableDevice") == 1
    assert voltha.find_onu("BBSM00000001").oper_status == "ACTIVE"


def test_enabling_an_unreachable_onu_leaves_it_activating(
    sim: SimulatorHandle, voltha: VolthaClient
) -> None:
    created = sim.add_onu("BBSM00000001", admin_state="DISABLED", connect_status="UNREACHABLE")
    voltha.enable_onu(created["device_id"])
    onu = voltha.find_onu("BBSM00000001")
    assert (onu.admin_state, onu.oper_status) == ("ENABLED", "ACTIVATING")
    # enabled and not FAILED: VOLTHA would refuse another EnableDevice, so this is done
    voltha.enable_onu(created["device_id"])
    assert calls(sim, "EnableDevice") == 1


def test_a_disable_whose_answer_is_lost_still_completes(
    sim: SimulatorHandle, voltha: VolthaClient
) -> None:
    onu_id = sim.add_onu("BBSM00000001")["device_id"]
    sim.fault("voltha", "^DisableDevice$", "after_effect")
    voltha.disable_onu(onu_id)  # retried, and VOLTHA answers OK for a disabled device
    assert voltha.get_device(onu_id).admin_state == DISABLED
    assert calls(sim, "DisableDevice") == 2


def test_an_enable_whose_answer_is_lost_still_completes(
    sim: SimulatorHandle, voltha: VolthaClient
) -> None:
    onu_id = sim.add_onu("BBSM00000001", admin_state="DISABLED")["device_id"]
    sim.fault("voltha", "^EnableDevice$", "after_effect")
    # retried; VOLTHA refuses the retry (already enabled), which we check against the device
    voltha.enable_onu(onu_id)
    assert voltha.get_device(onu_id).admin_state == ENABLED
    assert calls(sim, "EnableDevice") == 2


def test_a_refused_enable_that_did_not_happen_is_raised(
    sim: SimulatorHandle, voltha: VolthaClient
) -> None:
    onu_id = sim.add_onu("BBSM00000001", admin_state="DISABLED")["device_id"]
    sim.fault("voltha", "^EnableDevice$", "error", status=412)  # FAILED_PRECONDITION
    with pytest.raises(PermanentError) as raised:
        voltha.enable_onu(onu_id)
    assert "FAILED_PRECONDITION" in str(raised.value)
    assert voltha.get_device(onu_id).admin_state == DISABLED


def test_an_olt_is_never_disabled_as_an_onu(sim: SimulatorHandle, voltha: VolthaClient) -> None:
    olt_id = sim.add_onu("BBSM00000001")["olt_id"]
    with pytest.raises(PermanentError) as raised:
        voltha.disable_onu(olt_id)
    assert "is an OLT" in str(raised.value)
    assert calls(sim, "DisableDevice") == 0
    assert voltha.get_device(olt_id).admin_state == ENABLED


def test_enable_or_disable_of_an_unknown_device_is_not_found(voltha: VolthaClient) -> None:
    for call in (voltha.enable_onu, voltha.disable_onu):
        with pytest.raises(ResourceNotFound):
            call("no-such-device")


def test_an_unknown_device_id_is_not_found(voltha: VolthaClient) -> None:
    with pytest.raises(ResourceNotFound):
        voltha.get_device("no-such-device")


def test_a_probe_that_got_no_slot_lets_the_next_call_probe(
    sim: SimulatorHandle, voltha: VolthaClient
) -> None:
    # Given VOLTHA's circuit open with its cool-down over (the next call is the probe), and
    # VOLTHA's only concurrency slot held elsewhere
    onu = sim.add_onu("BBSM00000001")
    breaker = CircuitBreaker.for_system("voltha")
    store = redis.Redis.from_url(breaker.redis_url)
    store.hset(f"circuit:{breaker.system}", "open_until", time.time() - 1)
    concurrency.set_limit("voltha", 1)
    try:
        # When the probe cannot get a slot in time
        with (
            concurrency.ConcurrencyLimit.for_system("voltha", 60.0).slot(),
            concurrency.attempt_deadline(1.0),
            pytest.raises(SlotsBusy),
        ):
            voltha.get_device(onu["device_id"])
        # Then the circuit did not wait for the unsent probe's claim to lapse: the next call
        # probes, and its success closes the circuit
        assert voltha.get_device(onu["device_id"]).id == onu["device_id"]
        assert breaker.state()["state"] == "closed"
    finally:
        concurrency.set_limit("voltha", None)
        store.delete(f"circuit:{breaker.system}", f"circuit:{breaker.system}:probe")
