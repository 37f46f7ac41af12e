"""Injected faults, latency and shutdown: each mode does exactly what its contract says."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
import requests
from google.protobuf import empty_pb2
from voltha_protos import common_pb2, voltha_pb2_grpc

from tests.support.simulator_process import SimulatorHandle, start_simulators

AUTH = {"Authorization": "Token 0123456789abcdef0123456789abcdef01234567"}
ALLOCATE = "POST /api/ipam/prefixes/1/available-ips/"


def allocate(sim: SimulatorHandle, timeout: float = 5) -> requests.Response:
    return requests.post(
        f"{sim.netbox_url}/api/ipam/prefixes/1/available-ips/",
        headers=AUTH,
        json={"description": "k"},
        timeout=timeout,
    )


def addresses(sim: SimulatorHandle) -> list[str]:
    return [ip["address"] for ip in sim.state()["netbox"]["ip_addresses"]]


@pytest.fixture
def stub(sim: SimulatorHandle) -> Iterator[voltha_pb2_grpc.VolthaServiceStub]:
    with grpc.insecure_channel(sim.grpc_address) as channel:
        yield voltha_pb2_grpc.VolthaServiceStub(channel)


def test_error_answers_the_status_with_each_systems_body(sim: SimulatorHandle) -> None:
    sim.fault("netbox", "^POST /api/ipam/prefixes/1/available-ips/$", "error", status=503)
    sim.fault("genieacs", "^DELETE /tasks/", "error", status=503)
    sim.fault("onos", "programmed-subscribers", "error")
    netbox = allocate(sim)
    assert netbox.status_code == 503
    assert "detail" in netbox.json() or "error" in netbox.json()
    genieacs = requests.delete(f"{sim.genieacs_url}/tasks/{'0' * 24}", timeout=5)
    assert (genieacs.status_code, genieacs.text) == (503, "Device is in session")
    onos = requests.get(
        f"{sim.onos_url}/onos/olt/oltapp/programmed-subscribers", auth=("onos", "rocks"), timeout=5
    )
    assert onos.status_code == 500
    assert onos.json()["code"] == 500
    assert addresses(sim) == []


def test_a_fault_hits_count_times_then_requests_pass(sim: SimulatorHandle) -> None:
    sim.fault("netbox", ALLOCATE, "error", status=500, count=2)
    assert [allocate(sim).status_code for _ in range(3)] == [500, 500, 201]
    assert sim.state()["faults"] == []


def test_a_forever_fault_hits_until_cleared(sim: SimulatorHandle) -> None:
    sim.fault("netbox", ALLOCATE, "error", status=429, count=0)
    assert [allocate(sim).status_code for _ in range(3)] == [429, 429, 429]
    sim.control("DELETE", "faults", expect=200)
    assert allocate(sim).status_code == 201


def test_faults_match_only_their_system_and_target(sim: SimulatorHandle) -> None:
    sim.fault("genieacs", "available-ips", "error")  # wrong system
    sim.fault("netbox", "^GET ", "error")  # wrong method
    assert allocate(sim).status_code == 201


def test_timeout_holds_one_request_without_blocking_others(sim: SimulatorHandle) -> None:
    sim.fault("netbox", ALLOCATE, "timeout")
    with ThreadPoolExecutor(max_workers=1) as pool:
        held = pool.submit(allocate, sim, 0.6)
        # while that request hangs, the server keeps answering everything else
        started = time.monotonic()
        assert sim.state()["netbox"]["prefixes"]
        assert time.monotonic() - started < 0.4
        with pytest.raises(requests.ReadTimeout):
            held.result()
    assert addresses(sim) == []  # a hung request does nothing


def test_reset_drops_the_connection_and_does_nothing(sim: SimulatorHandle) -> None:
    sim.fault("netbox", ALLOCATE, "reset")
    with pytest.raises(requests.ConnectionError):
        allocate(sim)
    assert addresses(sim) == []
    assert allocate(sim).status_code == 201


def test_after_effect_does_the_work_then_drops_the_connection(sim: SimulatorHandle) -> None:
    sim.fault("netbox", ALLOCATE, "after_effect")
    with pytest.raises(requests.ConnectionError):
        allocate(sim)
    assert addresses(sim) == ["100.64.0.1/24"]


def test_latency_delays_matching_requests_only(sim: SimulatorHandle) -> None:
    sim.control("POST", "latency", {"system": "netbox", "match": "^GET ", "ms": 300}, expect=201)
    started = time.monotonic()
    requests.get(f"{sim.netbox_url}/api/ipam/prefixes/", headers=AUTH, timeout=5)
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    requests.get(f"{sim.genieacs_url}/devices/", timeout=5)
    assert time.monotonic() - started < 0.3
    sim.control("DELETE", "latency", expect=200)
    started = time.monotonic()
    requests.get(f"{sim.netbox_url}/api/ipam/prefixes/", headers=AUTH, timeout=5)
    assert time.monotonic() - started < 0.3


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (503, grpc.StatusCode.UNAVAILABLE),
        (400, grpc.StatusCode.INVALID_ARGUMENT),
        (404, grpc.StatusCode.NOT_FOUND),
        (500, grpc.StatusCode.INTERNAL),
    ],
)
def test_grpc_error_maps_the_status(
    sim: SimulatorHandle,
    stub: voltha_pb2_grpc.VolthaServiceStub,
    status: int,
    code: grpc.StatusCode,
) -> None:
    sim.fault("voltha", "^ListDevices$", "error", status=status)
    with pytest.raises(grpc.RpcError) as raised:
        stub.ListDevices(empty_pb2.Empty(), timeout=5)
    assert raised.value.code() == code
    assert stub.ListDevices(empty_pb2.Empty(), timeout=5).items


def test_grpc_timeout_outlasts_the_deadline(
    sim: SimulatorHandle, stub: voltha_pb2_grpc.VolthaServiceStub
) -> None:
    sim.fault("voltha", "ListDevices", "timeout")
    with pytest.raises(grpc.RpcError) as raised:
        stub.ListDevices(empty_pb2.Empty(), timeout=0.3)
    assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


def test_grpc_reset_does_nothing_and_after_effect_does_the_work(
    sim: SimulatorHandle, stub: voltha_pb2_grpc.VolthaServiceStub
) -> None:
    onu_id = common_pb2.ID(id=sim.add_onu("BBSM00000001")["device_id"])
    sim.fault("voltha", "DisableDevice", "reset")
    with pytest.raises(grpc.RpcError) as raised:
        stub.DisableDevice(onu_id, timeout=5)
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    assert stub.GetDevice(onu_id, timeout=5).admin_state == common_pb2.AdminState.ENABLED

    sim.fault("voltha", "DisableDevice", "after_effect")
    with pytest.raises(grpc.RpcError) as raised:
        stub.DisableDevice(onu_id, timeout=5)
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    assert stub.GetDevice(onu_id, timeout=5).admin_state == common_pb2.AdminState.DISABLED


def test_sigterm_stops_cleanly_while_a_request_is_held() -> None:
    sim = start_simulators(hold_s=60)
    try:
        sim.fault("netbox", ALLOCATE, "timeout")
        outcome: list[BaseException] = []

        def held_request() -> None:
            try:
                allocate(sim, timeout=30)
            except requests.RequestException as exc:
                outcome.append(exc)

        thread = threading.Thread(target=held_request)
        thread.start()
        # the fault is consumed once the request is being held
        deadline = time.monotonic() + 5
        while sim.state()["faults"] and time.monotonic() < deadline:
            time.sleep(0.02)
        assert sim.state()["faults"] == []
    finally:
        started = time.monotonic()
        assert sim.stop() == 0
    assert time.monotonic() - started < 5
    thread.join(timeout=5)
    assert len(outcome) == 1
    assert isinstance(outcome[0], requests.ConnectionError)
