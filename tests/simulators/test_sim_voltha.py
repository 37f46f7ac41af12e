"""The VOLTHA simulator serves voltha.VolthaService to the voltha-protos stubs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
import requests
from google.protobuf import empty_pb2
from voltha_protos import common_pb2, device_pb2, voltha_pb2_grpc

from tests.support.simulator_process import SimulatorHandle


@pytest.fixture
def stub(sim: SimulatorHandle) -> Iterator[voltha_pb2_grpc.VolthaServiceStub]:
    with grpc.insecure_channel(sim.grpc_address) as channel:
        yield voltha_pb2_grpc.VolthaServiceStub(channel)


def test_an_olt_and_its_discovered_onus_are_listed(
    sim: SimulatorHandle, stub: voltha_pb2_grpc.VolthaServiceStub
) -> None:
    onu = sim.add_onu("BBSM00000001")
    devices = stub.ListDevices(empty_pb2.Empty(), timeout=5).items
    olt = next(d for d in devices if d.root)
    found = next(d for d in devices if not d.root)
    assert olt.type == "openolt"
    assert found.id == onu["device_id"]
    assert found.type == "brcm_openomci_onu"
    assert found.serial_number == "BBSM00000001"
    assert found.parent_id == olt.id
    assert found.admin_state == common_pb2.AdminState.ENABLED
    assert found.proxy_address.onu_id == 1


def test_onu_ports_include_a_uni_named_like_in_onos(
    sim: SimulatorHandle, stub: voltha_pb2_grpc.VolthaServiceStub
) -> None:
    onu = sim.add_onu("BBSM00000001", pon=2)
    ports = stub.ListDevicePorts(common_pb2.ID(id=onu["device_id"]), timeout=5).items
    [uni] = [p for p in ports if p.type == device_pb2.Port.ETHERNET_UNI]
    assert uni.port_no == (2 << 12) | (1 << 4)
    assert uni.ofp_port.name == "BBSM00000001-1"
    assert any(p.type == device_pb2.Port.PON_ONU for p in ports)


def test_unknown_ids_are_not_found(stub: voltha_pb2_grpc.VolthaServiceStub) -> None:
    for call in (stub.GetDevice, stub.ListDevicePorts, stub.DisableDevice, stub.EnableDevice):
        with pytest.raises(grpc.RpcError) as raised:
            call(common_pb2.ID(id="no-such-device"), timeout=5)
        # voltha-go: status.Errorf(codes.NotFound, "%s", id)
        assert raised.value.code() == grpc.StatusCode.NOT_FOUND
        assert raised.value.details() == "no-such-device"


def get(stub: voltha_pb2_grpc.VolthaServiceStub, device_id: str) -> device_pb2.Device:
    return stub.GetDevice(common_pb2.ID(id=device_id), timeout=5)


def states(device: device_pb2.Device) -> tuple[str, str, str, str]:
    return (
        common_pb2.AdminState.Types.Name(device.admin_state),
        common_pb2.OperStatus.Types.Name(device.oper_status),
        common_pb2.ConnectStatus.Types.Name(device.connect_status),
        device.reason,
    )


def refusal(call: Callable[..., Any], device_id: str) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as raised:
        call(common_pb2.ID(id=device_id), timeout=5)
    return raised.value


def test_disable_then_enable_as_voltha_and_the_openonu_adapter_do(
    sim: SimulatorHandle, stub: voltha_pb2_grpc.VolthaServiceStub
) -> None:
    onu_id = sim.add_onu("BBSM00000001")["device_id"]
    assert states(get(stub, onu_id)) == (
        "ENABLED",
        "ACTIVE",
        "REACHABLE",
        "initial-mib-downloaded",
    )
    stub.DisableDevice(common_pb2.ID(id=onu_id), timeout=5)
    disabled = states(get(stub, onu_id))
    assert disabled == ("DISABLED", "UNKNOWN", "REACHABLE", "omci-admin-lock")
    ports = stub.ListDevicePorts(common_pb2.ID(id=onu_id), timeout=5).items
    assert {p.oper_status for p in ports} == {common_pb2.OperStatus.UNKNOWN}
    stub.EnableDevice(common_pb2.ID(id=onu_id), timeout=5)
    assert states(get(stub, onu_id)) == ("ENABLED", "ACTIVE", "REACHABLE", "onu-reenabled")


def test_disabling_a_disabled_device_succeeds_and_changes_nothing(
    sim: SimulatorHandle, stub: voltha_pb2_grpc.VolthaServiceStub
) -> None:
    # voltha-go Agent.disableDevice: "device-already-disabled" returns nil
    onu_id = sim.add_onu("BBSM00000001", admin_state="DISABLED")["device_id"]
    before = states(get(stub, onu_id))
    stub.DisableDevice(common_pb2.ID(id=onu_id), timeout=5)
    assert before == ("DISABLED", "UNKNOWN", "REACHABLE", "omci-admin-lock")
    assert states(get(stub, onu_id)) == before


def test_enabling_an_enabled_device_is_refused_unless_it_failed(
    sim: SimulatorHandle, stub: voltha_pb2_grpc.VolthaServiceStub
) -> None:
    onu_id = sim.add_onu("BBSM00000001")["device_id"]
    refused = refusal(stub.EnableDevice, onu_id)
    assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert refused.details() == f"cannot-enable-an-already-enabled-device: {onu_id}"
    # vol-4275: an ENABLED device whose oper status is FAILED may be enabled again
    failed_id = sim.add_onu("BBSM00000002", oper_status="FAILED")["device_id"]
    assert states(get(stub, failed_id))[:2] == ("ENABLED", "FAILED")
    stub.EnableDevice(common_pb2.ID(id=failed_id), timeout=5)
    assert states(get(stub, failed_id))[:2] == ("ENABLED", "ACTIVE")


def test_disabling_a_preprovisioned_device_is_refused(
    sim: SimulatorHandle, stub: voltha_pb2_grpc.VolthaServiceStub
) -> None:
    onu_id = sim.add_onu("BBSM00000001", admin_state="PREPROVISIONED")["device_id"]
    refused = refusal(stub.DisableDevice, onu_id)
    assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert refused.details() == f"deviceId:{onu_id}, invalid-admin-state:PREPROVISIONED"
    assert states(get(stub, onu_id))[0] == "PREPROVISIONED"


def test_an_unreachable_onu_is_listed_and_stays_activating_when_enabled(
    sim: SimulatorHandle, stub: voltha_pb2_grpc.VolthaServiceStub
) -> None:
    created = sim.add_onu("BBSM00000001", admin_state="DISABLED", connect_status="UNREACHABLE")
    onu_id = created["device_id"]
    assert states(get(stub, onu_id)) == ("DISABLED", "UNKNOWN", "UNREACHABLE", "stopping-openomci")
    ports = stub.ListDevicePorts(common_pb2.ID(id=onu_id), timeout=5).items
    assert any(p.type == device_pb2.Port.ETHERNET_UNI for p in ports)  # still listed
    # the core sets ENABLED + ACTIVATING; the adapter cannot reach the ONU to finish
    stub.EnableDevice(common_pb2.ID(id=onu_id), timeout=5)
    assert states(get(stub, onu_id))[:3] == ("ENABLED", "ACTIVATING", "UNREACHABLE")


def test_onu_states_are_in_the_control_api_and_validated(sim: SimulatorHandle) -> None:
    created = sim.add_onu("BBSM00000001", connect_status="UNREACHABLE")
    assert (created["admin_state"], created["oper_status"], created["connect_status"]) == (
        "ENABLED",
        "DISCOVERED",
        "UNREACHABLE",
    )
    [onu] = [d for d in sim.state()["voltha"]["devices"] if not d["root"]]
    assert onu["oper_status"] == "DISCOVERED"
    assert onu["connect_status"] == "UNREACHABLE"
    for bad in ({"admin_state": "OFF"}, {"connect_status": "maybe"}, {"oper_status": "UP"}):
        response = requests.post(
            f"{sim.http_url}/_sim/onus", json={"serial": "BBSM00000002", **bad}, timeout=5
        )
        assert response.status_code == 400, bad


def test_methods_we_do_not_model_are_unimplemented(stub: voltha_pb2_grpc.VolthaServiceStub) -> None:
    with pytest.raises(grpc.RpcError) as raised:
        stub.RebootDevice(common_pb2.ID(id="x"), timeout=5)
    assert raised.value.code() == grpc.StatusCode.UNIMPLEMENTED
