"""VolthaClient against the VOLTHA simulator, through the voltha-protos stubs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from voltha_protos.common_pb2 import AdminState

from orchestrator.config import Settings
from orchestrator.errors import PermanentError, ResourceNotFound, TransientError
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
    )
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


def test_disable_and_enable_are_idempotent(sim: SimulatorHandle, voltha: VolthaClient) -> None:
    onu_id = sim.add_onu("BBSM00000001")["device_id"]
    voltha.disable_device(onu_id)
    voltha.disable_device(onu_id)
    assert voltha.get_device(onu_id).admin_state == DISABLED
    voltha.enable_device(onu_id)
    voltha.enable_device(onu_id)
    assert voltha.get_device(onu_id).admin_state == ENABLED


def test_a_disable_whose_answer_is_lost_still_completes(
    sim: SimulatorHandle, voltha: VolthaClient
) -> None:
    onu_id = sim.add_onu("BBSM00000001")["device_id"]
    sim.fault("voltha", "^DisableDevice$", "after_effect")
    voltha.disable_device(onu_id)  # retried; VOLTHA then refuses a no-op, which we recognise
    assert voltha.get_device(onu_id).admin_state == DISABLED
    assert calls(sim, "DisableDevice") == 2


def test_an_unknown_device_id_is_not_found(voltha: VolthaClient) -> None:
    with pytest.raises(ResourceNotFound):
        voltha.get_device("no-such-device")
