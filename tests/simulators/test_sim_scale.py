"""The simulated access network at scale: OLTs, PONs, ONU ids and UNI numbers that never collide,
and the most concurrent calls each system saw."""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

import requests

from simulators.access import MAX_OLTS, ONUS_PER_PON, PONS_PER_OLT, AccessNetwork
from simulators.server import seed_demo
from simulators.world import World
from tests.support.simulator_process import SimulatorHandle

AUTH = ("onos", "rocks")


def add_onu(sim: SimulatorHandle, serial: str, **extra: Any) -> requests.Response:
    return sim.session.post(
        f"{sim.http_url}/_sim/onus", json={"serial": serial, **extra}, timeout=5
    )


def test_onus_spread_over_the_pons_by_default(sim: SimulatorHandle) -> None:
    onus = [sim.add_onu(f"SPRD{n:04d}") for n in range(PONS_PER_OLT + 1)]
    # one ONU on each PON first, each the PON's ONU 1; then PON 0 gets its second
    assert [(o["pon"], o["onu_id"]) for o in onus[:PONS_PER_OLT]] == [
        (pon, 1) for pon in range(PONS_PER_OLT)
    ]
    assert (onus[-1]["pon"], onus[-1]["onu_id"]) == (0, 2)
    assert onus[1]["uni_port_no"] == (1 << 12) | (1 << 4)


def test_a_full_pon_is_a_clear_409_and_onu_ids_stay_within_gpon(sim: SimulatorHandle) -> None:
    # Given PON 1 holding as many ONUs as GPON allows
    onus = [sim.add_onu(f"FULL{n:04d}", pon=1) for n in range(ONUS_PER_PON)]
    assert sorted(o["onu_id"] for o in onus) == list(range(1, ONUS_PER_PON + 1))

    # When one more asks for PON 1
    refused = add_onu(sim, "FULL9999", pon=1)

    # Then it is refused as a conflict that says why, and nothing was added
    assert refused.status_code == 409
    assert "128 ONUs" in refused.json()["error"]
    assert not [d for d in sim.state()["voltha"]["devices"] if d["serial_number"] == "FULL9999"]
    # while another PON still takes it
    assert add_onu(sim, "FULL9999").json()["pon"] != 1


def test_uni_numbers_of_different_pons_never_collide(sim: SimulatorHandle) -> None:
    # ONU 1 of PON 1 and ONU 257 of PON 0 shared port 4112 when ids ran to 511; now ids stop at
    # 128, so (PON, ONU id) -> port is one-to-one within an OLT
    for n in range(ONUS_PER_PON):
        sim.add_onu(f"PZRO{n:04d}", pon=0)
    other = sim.add_onu("PONE0001", pon=1)
    locations = [
        (d["of_device_id"], p["port_no"])
        for d in sim.state()["voltha"]["devices"]
        if not d["root"]
        for p in d["ports"]
        if p["type"] == "ETHERNET_UNI"
    ]
    assert len(locations) == len(set(locations)) == ONUS_PER_PON + 1
    assert other["uni_port_no"] == (1 << 12) | (1 << 4)


def test_olts_can_be_added_and_onus_spread_over_them(sim: SimulatorHandle) -> None:
    response = sim.session.post(f"{sim.http_url}/_sim/olts", json={}, timeout=5)
    assert response.status_code == 201
    olt = response.json()
    assert olt["of_device_id"] == "of:00000a0a0a0a0a01"
    assert (olt["pons"], olt["onus_per_pon"]) == (PONS_PER_OLT, ONUS_PER_PON)

    first, second = sim.add_onu("TWOO0001"), sim.add_onu("TWOO0002")

    # the least loaded OLT takes the next ONU: the first OLT, then the new one
    assert first["location"] == "of:00000a0a0a0a0a00/16"
    assert second["olt_id"] == olt["device_id"]
    assert second["location"] == f"{olt['of_device_id']}/16"
    # ONOS lists the new OLT and its UNI, and programs services there
    devices = requests.get(f"{sim.onos_url}/onos/v1/devices", auth=AUTH, timeout=5).json()
    assert {d["id"] for d in devices["devices"]} == {"of:00000a0a0a0a0a00", olt["of_device_id"]}
    url = f"{sim.onos_url}/onos/olt/oltapp/services/TWOO0002-1/100/200/64"
    assert requests.post(url, auth=AUTH, timeout=5).status_code == 200
    [entry] = requests.get(
        f"{sim.onos_url}/onos/olt/oltapp/programmed-subscribers/{olt['of_device_id']}/16",
        auth=AUTH,
        timeout=5,
    ).json()["entries"]
    assert entry["location"] == second["location"]
    # and a second OLT with the same serial is a conflict
    again = sim.session.post(f"{sim.http_url}/_sim/olts", json={"serial": olt["serial"]}, timeout=5)
    assert again.status_code == 409


def test_device_ports_list_one_olt_and_unknown_devices_are_404(sim: SimulatorHandle) -> None:
    sim.add_onu("DEVP0001")
    olt = sim.session.post(f"{sim.http_url}/_sim/olts", json={}, timeout=5).json()
    sim.add_onu("DEVP0002")
    first = requests.get(
        f"{sim.onos_url}/onos/v1/devices/of:00000a0a0a0a0a00/ports", auth=AUTH, timeout=5
    ).json()
    # DevicesWebResource.getDevicePorts: the device, with its ports
    assert first["id"] == "of:00000a0a0a0a0a00"
    names = {p["annotations"]["portName"] for p in first["ports"]}
    assert names == {"nni-1", "DEVP0001-1"}
    assert {p["element"] for p in first["ports"]} == {"of:00000a0a0a0a0a00"}
    second = requests.get(
        f"{sim.onos_url}/onos/v1/devices/{olt['of_device_id']}/ports", auth=AUTH, timeout=5
    ).json()
    assert {p["annotations"]["portName"] for p in second["ports"]} == {"nni-1", "DEVP0002-1"}
    missing = requests.get(
        f"{sim.onos_url}/onos/v1/devices/of:00000000000000ff/ports", auth=AUTH, timeout=5
    )
    assert missing.status_code == 404
    assert missing.json() == {"code": 404, "message": "Device is not found"}


def test_a_removed_onu_frees_its_id_for_the_next_one(sim: SimulatorHandle) -> None:
    first = sim.add_onu("FREE0001", pon=3)
    sim.control("DELETE", "onus/FREE0001", expect=200)
    second = sim.add_onu("FREE0002", pon=3)
    assert second["onu_id"] == first["onu_id"] == 1
    unknown = requests.post(
        f"{sim.onos_url}/onos/olt/oltapp/services/FREE0001-1/100/200/64", auth=AUTH, timeout=5
    )
    assert unknown.status_code == 500


def test_ten_thousand_subscribers_fit_without_collisions() -> None:
    # in process (as `--demo 10000` builds it): OLTs of 16 PONs x 128 ONUs, as many as needed
    world = World(onos_user="onos", onos_password="rocks", nas_secret="s")
    seed_demo(world, 10_000)
    access: AccessNetwork = world.access
    per_olt = PONS_PER_OLT * ONUS_PER_PON
    assert len(access.olts()) == -(-10_000 // per_olt)  # 5: rounded up
    unis = access.uni_ports()
    assert len({(u.of_device_id, u.port_no) for u in unis}) == len(unis) == 10_000
    assert max(d.onu_id for d in access.devices.values()) <= ONUS_PER_PON
    assert access.find_uni("BBSM00010000-1") is not None
    # and 50,000 ONUs fit in 25 OLTs, well within the OLTs one simulator can hold
    assert 25 * per_olt >= 50_000
    assert MAX_OLTS >= 25


def test_max_concurrent_counts_calls_in_flight_per_system(sim: SimulatorHandle) -> None:
    # Given GenieACS holding its next three calls unanswered
    sim.fault("genieacs", "^GET /devices", "timeout", count=3, hold_s=30)

    def query() -> None:
        with contextlib.suppress(requests.RequestException):  # dropped once released
            requests.get(f"{sim.genieacs_url}/devices/", timeout=10)

    threads = [threading.Thread(target=query) for _ in range(3)]
    for thread in threads:
        thread.start()
    # When all three are held (the journal records a call as it arrives)
    deadline = time.monotonic() + 10
    while len(sim.requests("genieacs")) < 3:
        assert time.monotonic() < deadline, "the three calls never arrived"
        time.sleep(0.01)  # polling the simulator, not waiting for a guessed duration
    requests.get(f"{sim.netbox_url}/api/status/", timeout=5)

    # Then the state shows three at once for GenieACS, one for NetBox, none elsewhere
    seen = sim.state()["max_concurrent"]
    sim.control("DELETE", "faults", expect=200)  # lets the held calls go
    for thread in threads:
        thread.join()
    assert seen == {"netbox": 1, "onos": 0, "voltha": 0, "genieacs": 3, "nas": 0}

    # and after a reset, calls made one after another count one at a time
    sim.reset()
    assert sim.state()["max_concurrent"]["genieacs"] == 0
    for _ in range(3):
        requests.get(f"{sim.genieacs_url}/devices/", timeout=5)
    assert sim.state()["max_concurrent"]["genieacs"] == 1
