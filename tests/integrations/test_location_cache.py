"""The clients' maps (VOLTHA serial -> id, ONOS port name -> location) never answer wrongly
when the network changed under them: an ONU that left, or ranged elsewhere."""

from __future__ import annotations

import pytest
import requests

from orchestrator.errors import ResourceNotFound
from orchestrator.integrations.http import RetryPolicy, Timeouts
from orchestrator.integrations.onos import OnosClient
from orchestrator.integrations.voltha import VolthaClient
from tests.support.simulator_process import SimulatorHandle

FAST = RetryPolicy(attempts=2, initial_wait=0.01, max_wait=0.02)


def onos_client(sim: SimulatorHandle) -> OnosClient:
    return OnosClient(
        sim.onos_url,
        "onos",
        "rocks",
        timeouts=Timeouts(connect=1, read=2),
        retry=FAST,
        confirm_timeout=2,
        confirm_interval=0.05,
    )


def onos_posts(sim: SimulatorHandle, port_name: str) -> int:
    return len(
        [
            r
            for r in sim.requests("onos")
            if r["method"] == "POST" and f"/services/{port_name}/" in r["path"]
        ]
    )


def test_a_stale_location_never_makes_onos_adopt_another_ports_service(
    sim: SimulatorHandle,
) -> None:
    # Given a client that learnt where ONU A's UNI is
    first = sim.add_onu("STALE0001", pon=2)
    onos = onos_client(sim)
    assert onos.location_of("STALE0001-1") == first["location"]
    # and then A left, ONU B took its place (and port number) with a service of the same
    # tags, and A ranged again on another PON
    sim.control("DELETE", "onus/STALE0001", expect=200)
    other = sim.add_onu("STALE0002", pon=2)
    assert other["location"] == first["location"]
    url = f"{sim.onos_url}/onos/olt/oltapp/services/STALE0002-1/100/200/64"
    assert requests.post(url, auth=("onos", "rocks"), timeout=5).status_code == 200
    moved = sim.add_onu("STALE0001", pon=3)

    # When A's service is activated
    onos.activate_service("STALE0001-1", 100, 200, 64)

    # Then the client asked ONOS for it (B's service at A's old place did not pass for A's)
    assert onos_posts(sim, "STALE0001-1") == 1
    listed = {s["port_name"]: s["location"] for s in sim.state()["onos"]["programmed_subscribers"]}
    assert listed == {"STALE0001-1": moved["location"], "STALE0002-1": other["location"]}
    assert onos.location_of("STALE0001-1") == moved["location"]
    onos.close()


def test_a_removal_is_judged_on_where_the_port_is_now(sim: SimulatorHandle) -> None:
    # Given A's service programmed, then A gone from ONOS, and B with that service's tags at
    # A's old place, while the client still holds A's old location
    sim.add_onu("STALE0003", pon=4)
    onos = onos_client(sim)
    onos.activate_service("STALE0003-1", 100, 200, 64)
    sim.control("DELETE", "onus/STALE0003", expect=200)
    sim.add_onu("STALE0004", pon=4)
    url = f"{sim.onos_url}/onos/olt/oltapp/services/STALE0004-1/100/200/64"
    assert requests.post(url, auth=("onos", "rocks"), timeout=5).status_code == 200

    # When A's service is removed (ONOS: 500 "ConnectPoint not found" for A's name)
    onos.deactivate_service("STALE0003-1", 100, 200, 64)

    # Then it counts as done: B's service at A's old place is not taken for A's
    assert onos.location_of("STALE0003-1") is None
    onos.close()


def test_voltha_notices_an_onu_that_left(sim: SimulatorHandle) -> None:
    sim.add_onu("GONE0001")
    with VolthaClient(sim.grpc_address, timeout=5, retry=FAST) as voltha:
        assert voltha.find_onu("GONE0001").serial == "GONE0001"
        sim.control("DELETE", "onus/GONE0001", expect=200)
        before = len(sim.requests("voltha"))

        with pytest.raises(ResourceNotFound):
            voltha.find_onu("GONE0001")

        # its id is asked for (NOT_FOUND), then VOLTHA's ids: none is new, none is read
        calls = [entry["method"] for entry in sim.requests("voltha")[before:]]
        assert calls == ["GetDevice", "ListDeviceIds"]
