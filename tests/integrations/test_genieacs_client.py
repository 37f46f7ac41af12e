"""GenieAcsClient against the GenieACS simulator (NBI)."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import parse_qs, quote

import pytest
import requests

from orchestrator.config import Settings, get_settings
from orchestrator.errors import (
    CallTimedOut,
    CircuitOpen,
    PermanentError,
    ResourceNotFound,
    SlotsBusy,
    TransientError,
)
from orchestrator.integrations import concurrency
from orchestrator.integrations.circuit import CircuitBreaker
from orchestrator.integrations.genieacs import CpeDevice, GenieAcsClient
from orchestrator.integrations.http import RetryPolicy, Timeouts
from tests.support.simulator_process import SimulatorHandle

TR098_WAN = "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1"
TR098 = f"{TR098_WAN}.WANPPPConnection.1"
TR181 = "Device.PPP.Interface.1"
PASSWORD = "pppoe-Secret-42"


@pytest.fixture
def acs(sim: SimulatorHandle) -> GenieAcsClient:
    return GenieAcsClient(
        sim.genieacs_url,
        timeouts=Timeouts(connect=1, read=0.5),
        retry=RetryPolicy(attempts=3, initial_wait=0.01, max_wait=0.02),
    )


def cpe_state(sim: SimulatorHandle, serial: str) -> dict[str, Any]:
    return next(d for d in sim.state()["genieacs"]["devices"] if d["serial"] == serial)


def task_posts(sim: SimulatorHandle) -> int:
    by_target = sim.state()["counters"]["genieacs"]["by_target"]
    return sum(n for target, n in by_target.items() if target.endswith("/tasks"))


def test_from_settings_uses_the_configured_url() -> None:
    settings = Settings(genieacs_url="http://acs.example:7557")
    assert "acs.example:7557" in repr(GenieAcsClient.from_settings(settings))


def test_find_device_tells_the_data_models_apart(sim: SimulatorHandle, acs: GenieAcsClient) -> None:
    old = sim.add_cpe("HG-0001.a", data_model="tr098")
    new = sim.add_cpe("CPE0002", data_model="tr181")
    assert acs.find_device("HG-0001.a") == CpeDevice(old["id"], "HG-0001.a", "tr098")
    assert acs.find_device("CPE0002") == CpeDevice(new["id"], "CPE0002", "tr181")
    assert old["id"].endswith("HG%2D0001%2Ea")


def test_an_unknown_serial_is_not_found(acs: GenieAcsClient) -> None:
    with pytest.raises(ResourceNotFound):
        acs.find_device("NOPE")


def set_parameter(sim: SimulatorHandle, device_id: str, path: str, value: str) -> None:
    """Changes a CPE's parameter through GenieACS, as an operator's MAC override would."""
    response = requests.post(
        f"{sim.genieacs_url}/devices/{quote(device_id, safe='')}/tasks?connection_request",
        json={"name": "setParameterValues", "parameterValues": [[path, value, "xsd:string"]]},
        timeout=5,
    )
    assert response.status_code == 200, response.reason


@pytest.mark.parametrize(
    ("stored", "asked"),
    [
        ("00:1A:2B:3C:4D:5E", "00:1a:2b:3c:4d:5e"),
        ("00:1a:2b:3c:4d:5e", "00-1A-2B-3C-4D-5E"),
        ("00:1a:2b:3c:4d:5e", "001a.2b3c.4d5e"),
    ],
)
@pytest.mark.parametrize("data_model", ["tr098", "tr181"])
def test_find_device_by_mac_in_either_case_and_model(
    sim: SimulatorHandle, acs: GenieAcsClient, data_model: str, stored: str, asked: str
) -> None:
    sim.add_cpe("OTHER01", data_model=data_model)
    created = sim.add_cpe("CPE0002", data_model=data_model, mac=stored)
    assert acs.find_device_by_mac(asked) == CpeDevice(created["id"], "CPE0002", data_model)


def test_find_device_by_mac_asks_every_wan_path_for_both_spellings(
    sim: SimulatorHandle, acs: GenieAcsClient
) -> None:
    sim.add_cpe("CPE0002", mac="00:1A:2B:3C:4D:5E")
    acs.find_device_by_mac("00:1a:2b:3c:4d:5e")
    [get] = sim.requests("genieacs")
    query = json.loads(parse_qs(get["query"])["query"][0])
    spellings = {"$in": ["00:1A:2B:3C:4D:5E", "00:1a:2b:3c:4d:5e"]}
    assert query == {
        "$or": [
            {f"{TR098_WAN}.WANIPConnection.1.MACAddress": spellings},
            {f"{TR098_WAN}.WANPPPConnection.1.MACAddress": spellings},
            {"Device.Ethernet.Link.1.MACAddress": spellings},
        ]
    }


@pytest.mark.parametrize("connection", ["WANIPConnection", "WANPPPConnection"])
def test_a_tr098_cpe_is_found_through_either_wan_connection(
    sim: SimulatorHandle, acs: GenieAcsClient, connection: str
) -> None:
    # Given a TR-098 CPE whose other connection reports no MAC (TR-098: empty when inapplicable)
    created = sim.add_cpe("HG-0001.a", data_model="tr098", mac="00:1A:2B:3C:4D:5E")
    other = "WANPPPConnection" if connection == "WANIPConnection" else "WANIPConnection"
    set_parameter(sim, created["id"], f"{TR098_WAN}.{other}.1.MACAddress", "")
    # Then the MAC on the remaining connection finds it
    assert acs.find_device_by_mac("00:1A:2B:3C:4D:5E").device_id == created["id"]


def test_a_tr181_wan_mac_is_the_ethernet_links_not_the_burned_in_one(
    sim: SimulatorHandle, acs: GenieAcsClient
) -> None:
    # Given a TR-181 CPE whose WAN link sends with an overridden MAC
    created = sim.add_cpe("CPE0002", mac="00:1A:2B:3C:4D:5E")
    set_parameter(sim, created["id"], "Device.Ethernet.Link.1.MACAddress", "02:00:00:00:00:01")
    # Then the link's MAC finds it, and the port's burned-in MAC no longer does
    assert acs.find_device_by_mac("02:00:00:00:00:01").device_id == created["id"]
    with pytest.raises(ResourceNotFound):
        acs.find_device_by_mac("00:1A:2B:3C:4D:5E")


def test_an_unknown_mac_is_a_permanent_not_found(sim: SimulatorHandle, acs: GenieAcsClient) -> None:
    sim.add_cpe("CPE0002", mac="00:1A:2B:3C:4D:5E")
    with pytest.raises(ResourceNotFound) as raised:
        acs.find_device_by_mac("00:1a:2b:3c:4d:5f")
    assert isinstance(raised.value, PermanentError)
    assert "no CPE in GenieACS has WAN MAC 00:1A:2B:3C:4D:5F" in str(raised.value)


def test_a_mac_two_cpes_report_is_ambiguous(sim: SimulatorHandle, acs: GenieAcsClient) -> None:
    # Given a cloned WAN MAC, reported in upper case by one CPE and lower case by the other
    old = sim.add_cpe("HG-0001.a", data_model="tr098", mac="00:1A:2B:3C:4D:5E")
    new = sim.add_cpe("CPE0002", data_model="tr181", mac="00:1a:2b:3c:4d:5e")
    with pytest.raises(PermanentError) as raised:
        acs.find_device_by_mac("00:1A:2B:3C:4D:5E")
    # Then neither is picked, and both are named
    assert not isinstance(raised.value, ResourceNotFound)
    assert "ambiguous" in str(raised.value)
    assert old["id"] in str(raised.value) and new["id"] in str(raised.value)
    assert sorted(raised.value.response["device_ids"]) == sorted([old["id"], new["id"]])


@pytest.mark.parametrize("mac", ["", "00:1A:2B:3C:4D", "00:1A:2B:3C:4D:5G", "not a mac"])
def test_a_malformed_mac_is_refused_before_sending(
    sim: SimulatorHandle, acs: GenieAcsClient, mac: str
) -> None:
    with pytest.raises(PermanentError) as raised:
        acs.find_device_by_mac(mac)
    assert "is not a MAC address" in str(raised.value)
    assert sim.state()["counters"]["genieacs"]["total"] == 0


def test_a_wrong_url_is_not_mistaken_for_an_unknown_cpe(sim: SimulatorHandle) -> None:
    wrong = GenieAcsClient(f"{sim.http_url}/not-genieacs", retry=RetryPolicy(attempts=1))
    with pytest.raises(PermanentError) as raised:
        wrong.find_device("CPE0002")
    assert not isinstance(raised.value, ResourceNotFound)


def test_push_to_an_online_tr098_cpe_applies_at_once(
    sim: SimulatorHandle, acs: GenieAcsClient
) -> None:
    sim.add_cpe("HG-0001.a", data_model="tr098")
    device = acs.find_device("HG-0001.a")
    outcome = acs.push_pppoe_credentials(device, "alice@isp", PASSWORD, "ppp:sub-1")
    assert outcome.applied is True
    assert outcome.task_id is not None
    params = cpe_state(sim, "HG-0001.a")["parameters"]
    assert params[f"{TR098}.Username"] == "alice@isp"
    assert params[f"{TR098}.Password"] == PASSWORD
    assert params[f"{TR098}.Enable"] is True
    # the task goes in without ?connection_request (the NBI then waits for no lock and no
    # session); the session is asked for by a bare connection request after it
    post, request = [r for r in sim.requests("genieacs") if r["method"] == "POST"]
    assert post["query"] == ""
    assert (request["query"], request["body"]) == ("connection_request", None)
    assert request["path"] == post["path"]
    assert post["path"] == f"/devices/{device.device_id.replace('%', '%25')}/tasks"
    assert post["body"]["name"] == "setParameterValues"
    assert post["body"]["uniqueKey"] == "ppp:sub-1"
    assert [p[0] for p in post["body"]["parameterValues"]] == [
        f"{TR098}.Username",
        f"{TR098}.Password",
        f"{TR098}.Enable",
    ]


def test_push_to_an_offline_cpe_is_queued_once_per_key(
    sim: SimulatorHandle, acs: GenieAcsClient
) -> None:
    sim.add_cpe("CPE0002", online=False)
    device = acs.find_device("CPE0002")
    first = acs.push_pppoe_credentials(device, "bob", "old-pass", "ppp:sub-2")
    second = acs.push_pppoe_credentials(device, "bob", PASSWORD, "ppp:sub-2")
    assert (first.applied, second.applied) == (False, False)
    [task] = cpe_state(sim, "CPE0002")["tasks"]
    assert task["_id"] == second.task_id
    # When the CPE next informs, it gets the latest credentials
    sim.control("PATCH", "cpes/CPE0002", {"online": True}, expect=200)
    assert cpe_state(sim, "CPE0002")["parameters"][f"{TR181}.Password"] == PASSWORD


def test_clear_credentials_empties_them(sim: SimulatorHandle, acs: GenieAcsClient) -> None:
    sim.add_cpe("CPE0002")
    device = acs.find_device("CPE0002")
    acs.push_pppoe_credentials(device, "bob", PASSWORD, "ppp:sub-2")
    assert acs.clear_pppoe_credentials(device, "ppp:sub-2").applied is True
    params = cpe_state(sim, "CPE0002")["parameters"]
    assert (params[f"{TR181}.Username"], params[f"{TR181}.Password"]) == ("", "")
    assert params[f"{TR181}.Enable"] is False


def test_a_refused_task_is_permanent_and_hides_the_password(
    sim: SimulatorHandle, acs: GenieAcsClient
) -> None:
    created = sim.add_cpe("CPE0002", data_model="tr181")
    wrong_model = CpeDevice(created["id"], "CPE0002", "tr098")
    with pytest.raises(PermanentError) as raised:
        acs.push_pppoe_credentials(wrong_model, "bob", PASSWORD, "ppp:sub-2")
    assert PASSWORD not in str(raised.value)
    [task] = cpe_state(sim, "CPE0002")["tasks"]
    assert raised.value.response == {"task_id": task["_id"], "fault": "cwmp.9005"}


def test_a_push_the_cpe_faults_is_permanent_and_its_fault_is_found(
    sim: SimulatorHandle, acs: GenieAcsClient
) -> None:
    sim.add_cpe("CPE0002", fail_tasks=1, fault_code="9002")
    device = acs.find_device("CPE0002")
    with pytest.raises(PermanentError) as raised:
        acs.push_pppoe_credentials(device, "bob", PASSWORD, "ppp:sub-2")
    assert "cwmp.9002" in str(raised.value)
    [fault] = acs.find_faults(device)
    assert fault["_id"] == f"{device.device_id}:task_{raised.value.response['task_id']}"
    assert ["value", f"{TR181}.Username", "bob"] in json.loads(fault["provisions"])


def test_remove_pushes_deletes_our_tasks_and_the_fault_a_replaced_task_left(
    sim: SimulatorHandle, acs: GenieAcsClient
) -> None:
    # Given a faulted push, then a second push under the same key while the CPE is offline:
    # the first task is replaced, its fault stays
    sim.add_cpe("CPE0002", fail_tasks=1)
    device = acs.find_device("CPE0002")
    with pytest.raises(PermanentError):
        acs.push_pppoe_credentials(device, "bob", PASSWORD, "ppp:sub-2")
    sim.control("PATCH", "cpes/CPE0002", {"online": False}, expect=200)
    second = acs.push_pppoe_credentials(device, "bob", PASSWORD, "ppp:sub-2")
    [orphan] = acs.find_faults(device)
    assert [t["_id"] for t in acs.find_tasks(device, "ppp:sub-2")] == [second.task_id]
    # And the CPE back, refusing the queued push too (a fault with its task), then someone
    # else's push (a fault that is not ours)
    sim.control("PATCH", "cpes/CPE0002", {"online": True, "fail_tasks": 2}, expect=200)
    assert len(acs.find_faults(device)) == 2
    with pytest.raises(PermanentError):
        acs.push_pppoe_credentials(device, "carol", "other", "ppp:sub-3")

    cleanup = acs.remove_pushes(device, "ppp:sub-2", "bob")

    assert cleanup.task_ids == (second.task_id,)
    assert cleanup.fault_ids == (orphan["_id"],)
    [left] = acs.find_faults(device)
    assert ["value", f"{TR181}.Username", "carol"] in json.loads(left["provisions"])
    assert acs.find_tasks(device, "ppp:sub-2") == []


def test_pppoe_username_reads_what_genieacs_last_saw(
    sim: SimulatorHandle, acs: GenieAcsClient
) -> None:
    sim.add_cpe("CPE0002", data_model="tr098")
    device = acs.find_device("CPE0002")
    assert acs.pppoe_username(device) == ""
    acs.push_pppoe_credentials(device, "bob", PASSWORD, "k")
    assert acs.pppoe_username(device) == "bob"


@pytest.mark.parametrize("mode", ["reset", "timeout"])
def test_a_post_without_answer_is_transient_and_not_resent(
    sim: SimulatorHandle, acs: GenieAcsClient, mode: str
) -> None:
    sim.add_cpe("CPE0002")
    device = acs.find_device("CPE0002")
    sim.fault("genieacs", "/tasks$", mode)
    with pytest.raises(TransientError) as raised:
        acs.push_pppoe_credentials(device, "bob", PASSWORD, "ppp:sub-2")
    assert PASSWORD not in str(raised.value)
    assert task_posts(sim) == 1


def test_an_error_answer_is_mapped_and_hides_the_password(
    sim: SimulatorHandle, acs: GenieAcsClient
) -> None:
    sim.add_cpe("CPE0002")
    device = acs.find_device("CPE0002")
    sim.fault("genieacs", "/tasks$", "error", status=500)
    with pytest.raises(TransientError) as raised:
        acs.push_pppoe_credentials(device, "bob", PASSWORD, "ppp:sub-2")
    assert raised.value.status == 500
    assert raised.value.operation == "push_pppoe_credentials"
    assert PASSWORD not in str(raised.value)


def test_a_lost_answer_then_retry_leaves_one_task(
    sim: SimulatorHandle, acs: GenieAcsClient
) -> None:
    sim.add_cpe("CPE0002", online=False)
    device = acs.find_device("CPE0002")
    sim.fault("genieacs", "/tasks$", "after_effect")
    with pytest.raises(TransientError):
        acs.push_pppoe_credentials(device, "bob", PASSWORD, "ppp:sub-2")
    acs.push_pppoe_credentials(device, "bob", PASSWORD, "ppp:sub-2")
    assert len(cpe_state(sim, "CPE0002")["tasks"]) == 1


def test_delete_task_tolerates_absence(sim: SimulatorHandle, acs: GenieAcsClient) -> None:
    sim.add_cpe("CPE0002", online=False)
    device = acs.find_device("CPE0002")
    task_id = acs.push_pppoe_credentials(device, "bob", PASSWORD, "k").task_id
    assert task_id is not None
    acs.delete_task(task_id)
    acs.delete_task(task_id)  # 404 Task not found: done
    assert cpe_state(sim, "CPE0002")["tasks"] == []


def test_delete_task_retries_while_the_device_is_in_session(
    sim: SimulatorHandle, acs: GenieAcsClient
) -> None:
    sim.add_cpe("CPE0002", online=False)
    device = acs.find_device("CPE0002")
    task_id = acs.push_pppoe_credentials(device, "bob", PASSWORD, "k").task_id
    assert task_id is not None
    sim.fault("genieacs", "^DELETE /tasks/", "error", status=503, count=2)
    acs.delete_task(task_id)
    assert cpe_state(sim, "CPE0002")["tasks"] == []


def test_delete_task_gives_up_as_transient(sim: SimulatorHandle, acs: GenieAcsClient) -> None:
    sim.add_cpe("CPE0002", online=False)
    device = acs.find_device("CPE0002")
    task_id = acs.push_pppoe_credentials(device, "bob", PASSWORD, "k").task_id
    assert task_id is not None
    sim.control("PATCH", "cpes/CPE0002", {"in_session": True}, expect=200)
    with pytest.raises(TransientError) as raised:
        acs.delete_task(task_id)
    assert raised.value.status == 503
    by_target = sim.state()["counters"]["genieacs"]["by_target"]
    assert by_target[f"DELETE /tasks/{task_id}"] == 3
    # "Device is in session" is about one device: GenieACS's circuit stays closed
    assert CircuitBreaker.for_system("genieacs").state()["state"] == "closed"


def test_a_hung_genieacs_opens_the_circuit_and_a_probe_closes_it(
    sim: SimulatorHandle, acs: GenieAcsClient
) -> None:
    # Given GenieACS not answering (tests: threshold 3, a short cool-down)
    sim.add_cpe("CPE0002")
    sim.fault("genieacs", "^GET /devices/", "timeout", count=0, hold_s=2)
    for _ in range(3):
        with pytest.raises(CallTimedOut):
            acs.find_device("CPE0002")
    # a timeout is not repeated inside the client: one request per call
    assert len(sim.requests("genieacs")) == 3

    # Then the next call fails at once, without a request
    with pytest.raises(CircuitOpen, match="circuit open for genieacs"):
        acs.find_device("CPE0002")
    assert len(sim.requests("genieacs")) == 3
    assert CircuitBreaker.for_system("genieacs").state()["state"] == "open"

    # And after the cool-down, one probe goes through; GenieACS answers again: closed
    sim.control("DELETE", "faults", expect=200)
    time.sleep(get_settings().circuit_cooldown_seconds + 0.1)  # a timer: nothing to await
    assert acs.find_device("CPE0002").serial == "CPE0002"
    assert CircuitBreaker.for_system("genieacs").state() == {"state": "closed", "failures": 0}


def test_tags_are_added_and_removed(sim: SimulatorHandle, acs: GenieAcsClient) -> None:
    sim.add_cpe("HG-0001.a")
    device = acs.find_device("HG-0001.a")
    acs.add_tag(device, "sub-1")
    acs.add_tag(device, "sub-1")
    assert cpe_state(sim, "HG-0001.a")["tags"] == ["sub-1"]
    acs.remove_tag(device, "sub-1")
    assert cpe_state(sim, "HG-0001.a")["tags"] == []


def test_tags_on_a_vanished_device(acs: GenieAcsClient) -> None:
    gone = CpeDevice("A4230F-SimCPE-GONE", "GONE", "tr181")
    acs.remove_tag(gone, "sub-1")  # nothing left to remove
    with pytest.raises(ResourceNotFound):
        acs.add_tag(gone, "sub-1")


def test_a_tag_genieacs_cannot_route_is_refused_before_sending(
    sim: SimulatorHandle, acs: GenieAcsClient
) -> None:
    sim.add_cpe("CPE0002")
    device = acs.find_device("CPE0002")
    with pytest.raises(PermanentError):
        acs.add_tag(device, "plan.gold")
    assert sim.state()["counters"]["genieacs"]["total"] == 1  # the find only


def test_a_connection_request_that_got_no_slot_is_not_taken_for_an_unreachable_cpe(
    sim: SimulatorHandle, acs: GenieAcsClient
) -> None:
    # Given a CPE, and GenieACS's only slot held elsewhere for longer than the attempt can wait
    sim.add_cpe("HG-SLOT", data_model="tr098")
    device = acs.find_device("HG-SLOT")
    concurrency.set_limit("genieacs", 1)
    try:
        with (
            concurrency.ConcurrencyLimit.for_system("genieacs", 60.0).slot(),
            concurrency.attempt_deadline(1.0),
            pytest.raises(SlotsBusy),
        ):
            # Then the attempt is given back (SlotsBusy), not reported as "CPE not reached"
            acs.connection_request(device)
    finally:
        concurrency.set_limit("genieacs", None)
    assert [r for r in sim.requests("genieacs") if r["method"] == "POST"] == []
