"""The VOLTHA simulator serves voltha.VolthaService to the voltha-protos stubs."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
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
    for call in (stub.GetDevice, stub.ListDevicePorts, stub.DisableDevice):
        with pytest.raises(grpc.RpcError) as raised:
            call(common_pb2.ID(id="no-such-device"), timeout=5)
        assert raised.value.code() == grpc.StatusCode.NOT_FOUND


def test_disable_and_enable_change_the_admin_state(
    sim: SimulatorHandle, stub: voltha_pb2_grpc.VolthaServiceStub
) -> None:
    onu_id = sim.add_onu("BBSM00000001")["device_id"]
    stub.DisableDevice(common_pb2.ID(id=onu_id), timeout=5)
    assert stub.GetDevice(common_pb2.ID(id=onu_id), timeout=5).admin_state == (
        common_pb2.AdminState.DISABLED
    )
    with pytest.raises(grpc.RpcError) as raised:
        stub.DisableDevice(common_pb2.ID(id=onu_id), timeout=5)
    assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    stub.EnableDevice(common_pb2.ID(id=onu_id), timeout=5)
    assert stub.GetDevice(common_pb2.ID(id=onu_id), timeout=5).admin_state == (
        common_pb2.AdminState.ENABLED
    )


def test_methods_we_do_not_model_are_unimplemented(stub: voltha_pb2_grpc.VolthaServiceStub) -> None:
    with pytest.raises(grpc.RpcError) as raised:
        stub.RebootDevice(common_pb2.ID(id="x"), timeout=5)
    assert raised.value.code() == grpc.StatusCode.UNIMPLEMENTED
