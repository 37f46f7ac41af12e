"""The GenieACS simulator answers as GenieACS's NBI (lib/nbi.ts) does."""

from __future__ import annotations

import json
import threading
import time
from typing import Any
from urllib.parse import quote

import requests

from simulators.server import seed_demo
from simulators.world import World
from tests.support.simulator_process import SimulatorHandle

TR098_USER = "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANPPPConnection.1.Username"
TR181_USER = "Device.PPP.Interface.1.Username"
TR098_WAN = "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1"
TR098_IP_MAC = f"{TR098_WAN}.WANIPConnection.1.MACAddress"
TR098_PPP_MAC = f"{TR098_WAN}.WANPPPConnection.1.MACAddress"
TR181_LINK_MAC = "Device.Ethernet.Link.1.MACAddress"


def acs(sim: SimulatorHandle, method: str, path: str, **kwargs: Any) -> requests.Response:
    return requests.request(method, f"{sim.genieacs_url}{path}", timeout=5, **kwargs)


def in_path(device_id: str) -> str:
    return quote(device_id, safe="")


def spv(path: str, value: Any, **extra: Any) -> dict[str, Any]:
    return {"name": "setParameterValues", "parameterValues": [[path, value, "xsd:string"]], **extra}


def device_state(sim: SimulatorHandle, serial: str) -> dict[str, Any]:
    return next(d for d in sim.state()["genieacs"]["devices"] if d["serial"] == serial)


def test_query_by_serial_with_total_header_and_projection(sim: SimulatorHandle) -> None:
    sim.add_cpe("CPE0001", data_model="tr098")
    sim.add_cpe("CPE0002")
    query = json.dumps({"_deviceId._SerialNumber": "CPE0001"})
    response = acs(sim, "GET", "/devices/", params={"query": query, "projection": "_deviceId"})
    assert response.status_code == 200
    assert response.headers["total"] == "1"
    [device] = response.json()
    assert set(device) == {"_id", "_deviceId"}
    assert device["_deviceId"]["_SerialNumber"] == "CPE0001"
    assert acs(sim, "GET", "/devices/", params={"query": "{bad"}).status_code == 400


def test_a_request_past_nodes_16_kib_of_head_gets_431_and_a_closed_connection(
    sim: SimulatorHandle,
) -> None:
    # Given a query whose URL alone is past Node's 16 KiB (GenieACS sets no maxHeaderSize)
    serials = [f"NOSUCH{n:010d}" for n in range(800)]
    query = json.dumps({"_deviceId._SerialNumber": {"$in": serials}})

    # When it is asked, and a query of a few serials is asked too
    refused = acs(sim, "GET", "/devices/", params={"query": query})
    small = json.dumps({"_deviceId._SerialNumber": {"$in": serials[:5]}})
    answered = acs(sim, "GET", "/devices/", params={"query": small})

    # Then the long one is refused before GenieACS sees it, as Node refuses it; the short one
    # is answered
    assert refused.status_code == 431
    assert refused.headers.get("Connection") == "close"
    assert answered.status_code == 200 and answered.json() == []


def test_parameter_queries_match_the_value(sim: SimulatorHandle) -> None:
    sim.add_cpe("CPE0001")
    query = json.dumps({"Device.DeviceInfo.SerialNumber": "CPE0001"})
    [device] = acs(sim, "GET", "/devices/", params={"query": query}).json()
    assert device["Device"]["PPP"]["Interface"]["1"]["Username"]["_value"] == ""


def find(sim: SimulatorHandle, query: dict[str, Any]) -> list[str]:
    response = acs(
        sim, "GET", "/devices/", params={"query": json.dumps(query), "projection": "_id"}
    )
    assert response.status_code == 200, response.text
    return sorted(device["_id"] for device in response.json())


def test_cpes_carry_their_wan_mac_where_their_data_model_puts_it(sim: SimulatorHandle) -> None:
    old = sim.add_cpe("CPE0001", data_model="tr098", mac="00:1A:2B:3C:4D:5E")
    new = sim.add_cpe("CPE0002", mac="00:1a:2b:3c:4d:5f")
    assert old["mac"] == "00:1A:2B:3C:4D:5E"
    assert old["parameters"][TR098_IP_MAC] == old["parameters"][TR098_PPP_MAC] == old["mac"]
    assert new["parameters"][TR181_LINK_MAC] == "00:1a:2b:3c:4d:5f"  # stored as the CPE says it
    assert new["parameters"]["Device.Ethernet.Interface.1.MACAddress"] == new["mac"]
    assert new["parameters"]["Device.Ethernet.Interface.1.Upstream"] is True
    # without one, a CPE gets a stable, locally administered MAC
    again = sim.add_cpe("CPE0003")["mac"]
    sim.reset()
    assert sim.add_cpe("CPE0003")["mac"] == again
    assert again.startswith("02:")
    bad = requests.post(
        f"{sim.http_url}/_sim/cpes", json={"serial": "CPE0004", "mac": "001A2B3C4D5E"}, timeout=5
    )
    assert bad.status_code == 400


def test_demo_cpes_get_macs_from_their_index() -> None:
    world = World(onos_user="onos", onos_password="rocks", nas_secret="testing123")
    seed_demo(world, 10)
    macs = {cpe.serial: cpe.mac for cpe in world.genieacs.devices.values()}
    assert macs["DEMOCPE0001"] == "02:DE:00:00:00:01"
    assert macs["DEMOCPE0010"] == "02:DE:00:00:00:0A"


def test_a_parameter_path_matches_its_value_exactly_as_genieacs_expands_it(
    sim: SimulatorHandle,
) -> None:
    cpe = sim.add_cpe("CPE0001", mac="00:1A:2B:3C:4D:5E")
    # lib/query.ts expand: {"<path>": v} is {"<path>._value": v}; either spelling works
    assert find(sim, {TR181_LINK_MAC: "00:1A:2B:3C:4D:5E"}) == [cpe["id"]]
    assert find(sim, {f"{TR181_LINK_MAC}._value": "00:1A:2B:3C:4D:5E"}) == [cpe["id"]]
    # strings compare as MongoDB compares them: case counts
    assert find(sim, {TR181_LINK_MAC: "00:1a:2b:3c:4d:5e"}) == []
    # an object has no _value, so a condition on it is a condition on nothing
    assert find(sim, {"Device.Ethernet.Link.1": {"$exists": True}}) == []
    assert find(sim, {"Device.Ethernet.Link.1.MACAddress": {"$exists": True}}) == [cpe["id"]]
    # "_"-prefixed paths are taken as they are
    assert find(sim, {"_deviceId._SerialNumber": "CPE0001"}) == [cpe["id"]]


def test_a_string_also_stands_for_the_regex_or_wildcard_it_spells(sim: SimulatorHandle) -> None:
    cpe = sim.add_cpe("CPE0001", mac="00:1A:2B:3C:4D:5E")
    assert find(sim, {TR181_LINK_MAC: "/^00:1a:2b/i"}) == [cpe["id"]]
    assert find(sim, {TR181_LINK_MAC: "00:1A:2B*"}) == [cpe["id"]]
    assert find(sim, {TR181_LINK_MAC: "00:1A:2C*"}) == []


def test_or_and_in_across_data_models(sim: SimulatorHandle) -> None:
    old = sim.add_cpe("CPE0001", data_model="tr098", mac="00:1A:2B:3C:4D:5E")
    new = sim.add_cpe("CPE0002", mac="00:1a:2b:3c:4d:5e")
    other = sim.add_cpe("CPE0003", mac="00:1A:2B:3C:4D:5F")
    spellings = {"$in": ["00:1A:2B:3C:4D:5E", "00:1a:2b:3c:4d:5e"]}
    query = {"$or": [{TR098_IP_MAC: spellings}, {TR181_LINK_MAC: spellings}]}
    assert find(sim, query) == sorted([old["id"], new["id"]])
    assert find(sim, {"$or": [{TR098_PPP_MAC: "00:1A:2B:3C:4D:5E"}]}) == [old["id"]]
    # the TR-098 CPE has no Device.Ethernet.Link at all, so it is among those not matching
    assert find(sim, {"$nor": [{TR181_LINK_MAC: spellings}]}) == sorted([old["id"], other["id"]])


def test_device_ids_are_escaped_and_escaped_again_in_paths(sim: SimulatorHandle) -> None:
    cpe = sim.add_cpe("SN-1.a", oui="00259E", product_class="HG 8245")
    assert cpe["id"] == "00259E-HG%208245-SN%2D1%2Ea"
    response = acs(sim, "POST", f"/devices/{in_path(cpe['id'])}/tags/gold")
    assert response.status_code == 200
    assert device_state(sim, "SN-1.a")["tags"] == ["gold"]


def test_a_task_is_applied_at_once_when_the_cpe_is_online(sim: SimulatorHandle) -> None:
    cpe = sim.add_cpe("CPE0001", data_model="tr098")
    response = acs(
        sim,
        "POST",
        f"/devices/{in_path(cpe['id'])}/tasks?connection_request",
        json=spv(TR098_USER, "alice"),
    )
    assert response.status_code == 200
    task = response.json()
    assert len(task["_id"]) == 24
    assert task["device"] == cpe["id"]
    state = device_state(sim, "CPE0001")
    assert state["parameters"][TR098_USER] == "alice"
    assert state["tasks"] == []


def test_offline_cpe_queues_the_task_until_it_informs(sim: SimulatorHandle) -> None:
    cpe = sim.add_cpe("CPE0001", online=False)
    response = acs(
        sim,
        "POST",
        f"/devices/{in_path(cpe['id'])}/tasks?connection_request",
        json=spv(TR181_USER, "bob"),
    )
    assert response.status_code == 202
    assert response.reason == "Task queued but not processed"
    assert len(device_state(sim, "CPE0001")["tasks"]) == 1
    sim.control("PATCH", "cpes/CPE0001", {"online": True}, expect=200)
    state = device_state(sim, "CPE0001")
    assert state["parameters"][TR181_USER] == "bob"
    assert state["tasks"] == []


def test_without_connection_request_the_task_is_only_queued(sim: SimulatorHandle) -> None:
    cpe = sim.add_cpe("CPE0001")
    response = acs(sim, "POST", f"/devices/{in_path(cpe['id'])}/tasks", json=spv(TR181_USER, "x"))
    assert response.status_code == 202
    assert device_state(sim, "CPE0001")["parameters"][TR181_USER] == ""


def test_a_unique_key_replaces_the_queued_task(sim: SimulatorHandle) -> None:
    cpe = sim.add_cpe("CPE0001", online=False)
    url = f"/devices/{in_path(cpe['id'])}/tasks?connection_request"
    acs(sim, "POST", url, json=spv(TR181_USER, "first", uniqueKey="k"))
    acs(sim, "POST", url, json=spv(TR181_USER, "second", uniqueKey="k"))
    acs(sim, "POST", url, json=spv(TR181_USER, "other", uniqueKey="j"))
    tasks = device_state(sim, "CPE0001")["tasks"]
    assert [t["parameterValues"][0][1] for t in tasks] == ["second", "other"]


def test_unknown_device_and_bad_bodies(sim: SimulatorHandle) -> None:
    missing = acs(sim, "POST", "/devices/nope/tasks?connection_request", json=spv(TR181_USER, "x"))
    assert (missing.status_code, missing.text) == (404, "No such device")
    cpe = sim.add_cpe("CPE0001")
    bad = acs(sim, "POST", f"/devices/{in_path(cpe['id'])}/tasks", data=b"{not json")
    assert bad.status_code == 400
    assert acs(sim, "POST", f"/devices/{in_path(cpe['id'])}/tasks").status_code == 400


def test_delete_task_200_then_404_and_503_in_session(sim: SimulatorHandle) -> None:
    cpe = sim.add_cpe("CPE0001", online=False)
    url = f"/devices/{in_path(cpe['id'])}/tasks"
    first = acs(sim, "POST", url, json=spv(TR181_USER, "a")).json()["_id"]
    second = acs(sim, "POST", url, json=spv(TR181_USER, "b")).json()["_id"]
    assert acs(sim, "DELETE", f"/tasks/{first}").status_code == 200
    gone = acs(sim, "DELETE", f"/tasks/{first}")
    assert (gone.status_code, gone.text) == (404, "Task not found")
    sim.control("PATCH", "cpes/CPE0001", {"in_session": True}, expect=200)
    busy = acs(sim, "DELETE", f"/tasks/{second}")
    assert (busy.status_code, busy.text) == (503, "Device is in session")


def test_tags_add_remove_and_unknown_device(sim: SimulatorHandle) -> None:
    cpe = sim.add_cpe("CPE0001")
    base = f"/devices/{in_path(cpe['id'])}/tags"
    assert acs(sim, "POST", f"{base}/gold").status_code == 200
    assert acs(sim, "POST", f"{base}/gold").status_code == 200
    assert device_state(sim, "CPE0001")["tags"] == ["gold"]
    assert acs(sim, "DELETE", f"{base}/gold").status_code == 200
    assert device_state(sim, "CPE0001")["tags"] == []
    missing = acs(sim, "DELETE", "/devices/nope/tags/gold")
    assert (missing.status_code, missing.text) == (404, "No such device")
    # a tag outside [A-Za-z0-9-_%] does not match GenieACS's route at all
    assert acs(sim, "POST", f"{base}/a.b").status_code == 404


def test_a_refused_parameter_faults_the_task(sim: SimulatorHandle) -> None:
    cpe = sim.add_cpe("CPE0001")  # TR-181: the TR-098 path does not exist
    response = acs(
        sim,
        "POST",
        f"/devices/{in_path(cpe['id'])}/tasks?connection_request",
        json=spv(TR098_USER, "x"),
    )
    assert response.status_code == 202
    assert response.reason == "Task faulted"
    [task] = device_state(sim, "CPE0001")["tasks"]
    assert task["fault"]["code"] == "cwmp.9005"


def faults(sim: SimulatorHandle, device_id: str) -> list[dict[str, Any]]:
    query = json.dumps({"device": device_id})
    response = acs(sim, "GET", "/faults/", params={"query": query})
    assert response.status_code == 200
    found: list[dict[str, Any]] = response.json()
    return found


def test_a_faulted_task_keeps_its_fault_when_a_unique_key_replaces_it(sim: SimulatorHandle) -> None:
    # Given a CPE that refuses its next task (the control knob), with a CWMP fault code
    cpe = sim.add_cpe("CPE0001", fail_tasks=1, fault_code="9002")
    url = f"/devices/{in_path(cpe['id'])}/tasks?connection_request"
    first = acs(sim, "POST", url, json=spv(TR181_USER, "first", uniqueKey="k"))
    assert (first.status_code, first.reason) == (202, "Task faulted")
    [fault] = faults(sim, cpe["id"])
    task_id = first.json()["_id"]
    assert fault["_id"] == f"{cpe['id']}:task_{task_id}"
    assert fault["channel"] == f"task_{task_id}"
    assert (fault["code"], fault["retries"]) == ("cwmp.9002", 0)
    # lib/cwmp/db.ts saveFault: the provisions as a JSON string
    assert json.loads(fault["provisions"]) == [["value", TR181_USER, "first"]]

    # When a task with the same uniqueKey arrives (the CPE offline: it stays queued)
    sim.control("PATCH", "cpes/CPE0001", {"online": False}, expect=200)
    second = acs(sim, "POST", url, json=spv(TR181_USER, "second", uniqueKey="k"))

    # Then the old task is gone, its fault is not (lib/api-functions.ts insertTasks)
    assert [t["_id"] for t in device_state(sim, "CPE0001")["tasks"]] == [second.json()["_id"]]
    assert [f["_id"] for f in faults(sim, cpe["id"])] == [fault["_id"]]


def test_genieacs_retries_a_fault_at_an_inform_after_the_retry_delay(sim: SimulatorHandle) -> None:
    # Given a faulted push whose task was then deleted... by a replacement (fault orphaned)
    sim.control("POST", "config", {"genieacs_retry_delay_s": 0.3}, expect=200)
    cpe = sim.add_cpe("CPE0001", fail_tasks=1)
    url = f"/devices/{in_path(cpe['id'])}/tasks"
    acs(sim, "POST", f"{url}?connection_request", json=spv(TR181_USER, "pushed", uniqueKey="k"))
    acs(sim, "POST", url, json=spv(TR181_USER, "", uniqueKey="k"))  # replaces the task
    sim.control("POST", "cpes/CPE0001/inform", expect=200)  # the clearing task runs
    assert device_state(sim, "CPE0001")["parameters"][TR181_USER] == ""
    assert len(faults(sim, cpe["id"])) == 1

    # When the CPE informs before the retry delay: nothing; after it: the fault is retried
    sim.control("POST", "cpes/CPE0001/inform", expect=200)
    assert device_state(sim, "CPE0001")["parameters"][TR181_USER] == ""
    time.sleep(0.35)
    sim.control("POST", "cpes/CPE0001/inform", expect=200)

    # Then the faulted provisions are applied after all, and the fault is gone
    assert device_state(sim, "CPE0001")["parameters"][TR181_USER] == "pushed"
    assert faults(sim, cpe["id"]) == []


def test_a_retry_that_faults_again_counts_and_waits_twice_as_long(sim: SimulatorHandle) -> None:
    sim.control("POST", "config", {"genieacs_retry_delay_s": 0.2}, expect=200)
    cpe = sim.add_cpe("CPE0001", fail_tasks=2)
    url = f"/devices/{in_path(cpe['id'])}/tasks?connection_request"
    acs(sim, "POST", url, json=spv(TR181_USER, "pushed"))
    time.sleep(0.25)
    sim.control("POST", "cpes/CPE0001/inform", expect=200)
    [fault] = faults(sim, cpe["id"])
    assert fault["retries"] == 1
    time.sleep(0.25)  # < 0.2 * 2
    sim.control("POST", "cpes/CPE0001/inform", expect=200)
    assert device_state(sim, "CPE0001")["parameters"][TR181_USER] == ""
    time.sleep(0.2)
    sim.control("POST", "cpes/CPE0001/inform", expect=200)
    assert device_state(sim, "CPE0001")["parameters"][TR181_USER] == "pushed"
    # the task went with its fault
    assert device_state(sim, "CPE0001")["tasks"] == []


def test_delete_fault_takes_its_task_and_waits_for_no_session(sim: SimulatorHandle) -> None:
    cpe = sim.add_cpe("CPE0001", fail_tasks=1)
    url = f"/devices/{in_path(cpe['id'])}/tasks?connection_request"
    task_id = acs(sim, "POST", url, json=spv(TR181_USER, "x")).json()["_id"]
    fault_id = f"{cpe['id']}:task_{task_id}"
    sim.control("PATCH", "cpes/CPE0001", {"in_session": True}, expect=200)
    busy = acs(sim, "DELETE", f"/faults/{quote(fault_id, safe='')}")
    assert (busy.status_code, busy.text) == (503, "Device is in session")
    sim.control("PATCH", "cpes/CPE0001", {"in_session": False}, expect=200)
    assert acs(sim, "DELETE", f"/faults/{quote(fault_id, safe='')}").status_code == 200
    assert faults(sim, cpe["id"]) == []
    assert device_state(sim, "CPE0001")["tasks"] == []
    # deleting what is not there: 200 (lib/api-functions.ts deleteFault checks nothing)
    assert acs(sim, "DELETE", f"/faults/{quote(fault_id, safe='')}").status_code == 200
    assert acs(sim, "GET", f"/faults/{quote(fault_id, safe='')}").status_code == 405


def test_delete_task_takes_its_fault(sim: SimulatorHandle) -> None:
    cpe = sim.add_cpe("CPE0001", fail_tasks=1)
    url = f"/devices/{in_path(cpe['id'])}/tasks?connection_request"
    task_id = acs(sim, "POST", url, json=spv(TR181_USER, "x")).json()["_id"]
    assert acs(sim, "DELETE", f"/tasks/{task_id}").status_code == 200
    assert faults(sim, cpe["id"]) == []


def test_a_connection_request_post_waits_for_the_session_lock(sim: SimulatorHandle) -> None:
    sim.control("POST", "config", {"genieacs_lock_wait_s": 0.5}, expect=200)
    cpe = sim.add_cpe("CPE0001", in_session=True)
    url = f"/devices/{in_path(cpe['id'])}/tasks"
    # without ?connection_request: inserted at once, no lock
    started = time.monotonic()
    assert acs(sim, "POST", url, json=spv(TR181_USER, "a", uniqueKey="a")).status_code == 202
    assert time.monotonic() - started < 0.4
    # with it: the NBI waits for the lock, then queues the task unprocessed
    started = time.monotonic()
    waited = acs(sim, "POST", f"{url}?connection_request", json=spv(TR181_USER, "b"))
    assert time.monotonic() - started >= 0.5
    assert (waited.status_code, waited.reason) == (202, "Task queued but not processed")

    # a session that ends during the wait lets the task run
    sim.control("POST", "config", {"genieacs_lock_wait_s": 5}, expect=200)
    ender = threading.Timer(
        0.3, lambda: sim.control("PATCH", "cpes/CPE0001", {"in_session": False}, expect=200)
    )
    ender.start()
    applied = acs(sim, "POST", f"{url}?connection_request", json=spv(TR181_USER, "c"))
    ender.join()
    assert applied.status_code == 200
    assert device_state(sim, "CPE0001")["parameters"][TR181_USER] == "c"


def test_cpe_fault_knob_is_validated(sim: SimulatorHandle) -> None:
    sim.add_cpe("CPE0001")
    bad = sim.session.patch(f"{sim.http_url}/_sim/cpes/CPE0001", json={"fail_tasks": -1})
    assert bad.status_code == 400
    bad = sim.session.patch(f"{sim.http_url}/_sim/cpes/CPE0001", json={"fault_code": "x"})
    assert bad.status_code == 400
    assert sim.session.post(f"{sim.http_url}/_sim/cpes/NOPE/inform").status_code == 404
