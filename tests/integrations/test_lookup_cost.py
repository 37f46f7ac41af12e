"""What one subscriber's lookups cost the clients, at 50 and at 20,000 ONUs and CPEs.

Counted, never timed: the requests each client sends (from the simulators' journal, or the
client's own session) and the bytes it reads. The same subscriber's work must cost the same
however large the network around it is. At 20,000 ONUs VOLTHA's ListDevices answer (5 MB) is
past gRPC's default 4 MB limit on what a client receives.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from orchestrator.integrations.genieacs import GenieAcsClient
from orchestrator.integrations.http import RetryPolicy, Timeouts
from orchestrator.integrations.onos import OnosClient
from orchestrator.integrations.voltha import OnuLocation, VolthaClient
from tests.support.simulator_process import SimulatorHandle, start_simulators

SIZES = (50, 20_000)
FAST = RetryPolicy(attempts=2, initial_wait=0.01, max_wait=0.02)


@pytest.fixture(scope="module")
def networks() -> Iterator[dict[int, SimulatorHandle]]:
    """One simulator per size, seeded as `--demo N` seeds: N ONUs (BBSM00000001...) over as
    many OLTs as they need, N CPEs (DEMOCPE0001...)."""
    handles: dict[int, SimulatorHandle] = {}
    try:
        for size in SIZES:
            handles[size] = start_simulators(demo=size)
        yield handles
    finally:
        for handle in handles.values():
            handle.stop()


def voltha_calls(sim: SimulatorHandle) -> list[str]:
    return [entry["method"] for entry in sim.requests("voltha")]


def recorded(session: requests.Session) -> list[tuple[str, str, int]]:
    """Every response the session reads, as (method, path, bytes)."""
    seen: list[tuple[str, str, int]] = []

    def hook(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        request = response.request
        path = requests.utils.urlparse(request.url).path
        seen.append((str(request.method), path, len(response.content)))

    session.hooks["response"].append(hook)
    return seen


def voltha_cost(sim: SimulatorHandle) -> dict[str, Any]:
    with VolthaClient(sim.grpc_address, timeout=5, retry=FAST) as voltha:
        # the first serial the client has not seen: one listing fills its map
        before = len(voltha_calls(sim))
        voltha.find_onu("BBSM00000002")
        miss = voltha_calls(sim)[before:]
        # every lookup after that: by id
        before = len(voltha_calls(sim))
        onu = voltha.find_onu("BBSM00000001", require_usable=True)
        hit = voltha_calls(sim)[before:]
        # an ONU discovered since the map was filled: only the new device is read
        sim.add_onu("NEWONU000001")
        before = len(voltha_calls(sim))
        new = voltha.find_onu("NEWONU000001", require_usable=True)
        late = voltha_calls(sim)[before:]
    return {"miss": miss, "hit": hit, "late": late, "uni": onu.uni_port_name, "new": new}


def onos_cost(sim: SimulatorHandle, new_onu: OnuLocation) -> dict[str, Any]:
    onos = OnosClient(
        sim.onos_url,
        "onos",
        "rocks",
        timeouts=Timeouts(connect=2, read=5),
        retry=FAST,
        confirm_timeout=5,
        confirm_interval=0.05,
    )
    seen = recorded(onos._rest.session)  # the client's own session: what it reads
    try:
        onos.location_of("BBSM00000002-1")  # a name not seen before: one listing
        miss = list(seen)
        seen.clear()
        onos.activate_service("BBSM00000001-1", 100, 200, 64)
        activate = list(seen)
        seen.clear()
        onos.deactivate_service("BBSM00000001-1", 100, 200, 64)
        deactivate = list(seen)
        seen.clear()
        # a newly ranged ONU, where VOLTHA says ONOS has its UNI: as the provisioning step does
        assert new_onu.onos_location is not None
        onos.learn_location(new_onu.uni_port_name, new_onu.onos_location)
        onos.activate_service(new_onu.uni_port_name, 100, 200, 64)
        new = list(seen)
    finally:
        onos.close()
    return {"miss": miss, "activate": activate, "deactivate": deactivate, "new": new}


def genieacs_cost(sim: SimulatorHandle) -> list[tuple[str, str, int]]:
    genieacs = GenieAcsClient(sim.genieacs_url, timeouts=Timeouts(connect=2, read=5), retry=FAST)
    seen = recorded(genieacs._rest.session)
    try:
        assert genieacs.find_device("DEMOCPE0001").serial == "DEMOCPE0001"
    finally:
        genieacs.close()
    return seen


def test_a_subscribers_lookups_cost_the_same_at_50_and_20000_onus(
    networks: dict[int, SimulatorHandle],
) -> None:
    # Given the same subscriber (ONU BBSM00000001, CPE DEMOCPE0001) in a small and a large
    # network, and clients that have looked one other ONU up already
    voltha = {size: voltha_cost(sim) for size, sim in networks.items()}
    onos = {size: onos_cost(sim, voltha[size]["new"]) for size, sim in networks.items()}
    genieacs = {size: genieacs_cost(sim) for size, sim in networks.items()}
    small, large = SIZES

    # Then VOLTHA is asked for that one device: by id, never the list of every device
    assert voltha[small]["hit"] == voltha[large]["hit"] == ["GetDevice", "ListDevicePorts"]
    # (a serial the client never saw costs exactly one listing, then is known)
    assert voltha[small]["miss"] == voltha[large]["miss"] == ["ListDevices", "ListDevicePorts"]
    # (an ONU that ranged after that: the ids, then that one device; never all of them again)
    assert (
        voltha[small]["late"]
        == voltha[large]["late"]
        == ["ListDeviceIds", "GetDevice", "ListDevicePorts"]
    )
    assert voltha[large]["new"].uni_port_name == "NEWONU000001-1"

    # ONOS: the same requests and the same bytes to activate and to remove the service, and
    # none of them the listing of every port (542 kB at 2,561 ONUs)
    for phase in ("activate", "deactivate"):
        assert onos[small][phase] == onos[large][phase]
        assert all("/onos/v1/devices" not in path for _, path, _ in onos[large][phase])
    assert [method for method, _, _ in onos[large]["activate"]] == ["GET", "POST", "GET"]
    # a newly ranged ONU's UNI, located by VOLTHA: the same requests, no listing either
    for size in SIZES:
        assert all("/onos/v1/devices" not in path for _, path, _ in onos[size]["new"])
        assert [method for method, _, _ in onos[size]["new"]] == ["GET", "POST", "GET"]
    # only a name never seen (nor given by VOLTHA) reads the listing, which grows with the
    # network: the devices, then each one's ports, so no one answer holds more than an OLT's
    for size in SIZES:
        paths = [path for _, path, _ in onos[size]["miss"]]
        assert paths[0] == "/onos/v1/devices"
        assert paths[1:] and all(
            p.startswith("/onos/v1/devices/") and p.endswith("/ports") for p in paths[1:]
        )
    small_bytes, large_bytes = (sum(n for _, _, n in onos[size]["miss"]) for size in SIZES)
    assert large_bytes > 50 * small_bytes
    largest = max(n for _, _, n in onos[large]["miss"])
    assert largest * 4 < large_bytes, "one answer held most of the network's ports"

    # GenieACS: one query by serial, the same answer
    assert genieacs[small] == genieacs[large]
    assert len(genieacs[large]) == 1
