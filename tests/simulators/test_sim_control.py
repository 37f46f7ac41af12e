"""The /_sim control API: seed, state, counters, and refusals of malformed requests."""

from __future__ import annotations

from typing import Any

import requests

from tests.support.simulator_process import SimulatorHandle

AUTH = {"Authorization": "Token 0123456789abcdef0123456789abcdef01234567"}


def test_reset_returns_the_seed_and_forgets_everything(sim: SimulatorHandle) -> None:
    sim.add_onu("BBSM00000001")
    sim.add_cpe("CPE0001")
    sim.fault("netbox", "GET", "error")
    requests.post(f"{sim.netbox_url}/api/ipam/prefixes/1/available-ips/", headers=AUTH, timeout=5)

    seed = sim.reset()

    prefixes = {(p["id"], p["prefix"]) for p in seed["netbox"]["prefixes"]}
    assert prefixes == {(1, "100.64.0.0/24"), (2, "100.64.1.0/24"), (3, "100.64.255.0/30")}
    [olt] = seed["voltha"]["devices"]
    assert olt["root"] is True
    assert olt["of_device_id"] == "of:00000a0a0a0a0a00"
    state = sim.state()
    assert state["netbox"]["ip_addresses"] == []
    assert state["genieacs"]["devices"] == []
    assert state["onos"]["programmed_subscribers"] == []
    assert state["faults"] == []
    assert state["counters"]["netbox"]["total"] == 0


def test_counters_count_requests_per_system_and_target(sim: SimulatorHandle) -> None:
    url = f"{sim.netbox_url}/api/ipam/prefixes/1/available-ips/"
    for _ in range(3):
        requests.post(url, headers=AUTH, json={}, timeout=5)
    requests.get(f"{sim.genieacs_url}/devices/", timeout=5)
    counters = sim.state()["counters"]
    assert counters["netbox"]["by_target"] == {"POST /api/ipam/prefixes/1/available-ips/": 3}
    assert counters["genieacs"]["by_target"] == {"GET /devices/": 1}
    assert counters["onos"]["total"] == 0


def test_the_journal_records_request_shapes_without_credentials(sim: SimulatorHandle) -> None:
    requests.post(
        f"{sim.netbox_url}/api/ipam/prefixes/1/available-ips/",
        headers=AUTH,
        json={"description": "k"},
        timeout=5,
    )
    [entry] = sim.requests("netbox")
    assert entry["body"] == {"description": "k"}
    assert entry["auth_scheme"] == "Token"
    assert "0123456789abcdef" not in str(entry)


def test_onu_requests_are_validated(sim: SimulatorHandle) -> None:
    sim.add_onu("BBSM00000001")
    duplicate = requests.post(
        f"{sim.http_url}/_sim/onus", json={"serial": "BBSM00000001"}, timeout=5
    )
    assert duplicate.status_code == 409
    bad = requests.post(f"{sim.http_url}/_sim/onus", json={"serial": "no spaces"}, timeout=5)
    assert bad.status_code == 400
    no_olt = requests.post(
        f"{sim.http_url}/_sim/onus", json={"serial": "BBSM00000002", "olt": "x"}, timeout=5
    )
    assert no_olt.status_code == 404
    removed = requests.delete(f"{sim.http_url}/_sim/onus/BBSM00000001", timeout=5)
    assert removed.status_code == 200
    assert [d for d in sim.state()["voltha"]["devices"] if not d["root"]] == []


def test_cpe_and_prefix_requests_are_validated(sim: SimulatorHandle) -> None:
    cpe = sim.add_cpe("CPE0001", data_model="tr098", online=False)
    assert cpe["online"] is False
    assert "InternetGatewayDevice.DeviceInfo.SerialNumber" in cpe["parameters"]
    url = f"{sim.http_url}/_sim"
    assert requests.post(f"{url}/cpes", json={"serial": "CPE0001"}, timeout=5).status_code == 409
    bad_model = requests.post(f"{url}/cpes", json={"serial": "X", "data_model": "tr069"}, timeout=5)
    assert bad_model.status_code == 400
    assert requests.patch(f"{url}/cpes/NOPE", json={"online": True}, timeout=5).status_code == 404
    created = sim.control("POST", "prefixes", {"prefix": "10.0.0.0/29"}, expect=201)
    assert created["id"] == 4
    assert created["prefix"] == "10.0.0.0/29"
    again = requests.post(f"{url}/prefixes", json={"prefix": "10.0.0.0/29"}, timeout=5)
    assert again.status_code == 409
    assert requests.post(f"{url}/prefixes", json={"prefix": "nope"}, timeout=5).status_code == 400


def test_malformed_fault_and_latency_rules_are_refused(sim: SimulatorHandle) -> None:
    url = f"{sim.http_url}/_sim"
    specs: list[dict[str, Any]] = [
        {"system": "radius", "match": "", "mode": "error"},
        {"system": "netbox", "match": "(", "mode": "error"},
        {"system": "netbox", "match": "", "mode": "explode"},
        {"system": "netbox", "match": "", "mode": "error", "status": 200},
        {"system": "netbox", "match": "", "mode": "error", "count": "many"},
    ]
    for spec in specs:
        assert requests.post(f"{url}/faults", json=spec, timeout=5).status_code == 400, spec
    bad_latency = requests.post(f"{url}/latency", json={"system": "onos", "ms": -1}, timeout=5)
    assert bad_latency.status_code == 400
    assert requests.get(f"{url}/nothing", timeout=5).status_code == 404
