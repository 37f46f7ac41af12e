"""Provisioning through NetBox, VOLTHA/ONOS and GenieACS (simulated, on their wire protocols).

For every network step and every fault mode the workflow ends rolled back with nothing of it
left in the simulators, our tables or FreeRADIUS; a one-off fault is retried and the workflow
completes with exactly one of each resource.
"""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator import faults
from orchestrator.config import get_settings
from orchestrator.integrations.radius import RadiusStore
from orchestrator.workflows.provision_subscriber import DEFINITION as PROVISION_SUBSCRIBER
from tests.support.radius_client import authenticate
from tests.support.requests import provision_body, submit, unique_cpe_serial, unique_serial
from tests.support.workflows import our_rows, steps, wait_terminal

#: The simulators' second seeded prefix (100.64.1.0/24), used only by these tests' plan.
NETWORK_PREFIX_ID = 2
PPP_TR181 = "Device.PPP.Interface.1"
PPP_TR098 = "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANPPPConnection.1"

#: The call of each network step that creates this subscriber's resource, as the simulators
#: match it: narrow enough that no other workflow (one the sweeper re-drives) can take the fault.
MUTATING_CALL = {
    "allocate_ip": ("netbox", "^POST /api/ipam/prefixes/{prefix_id}/available-ips/"),
    "activate_onu": ("onos", "^POST /onos/olt/oltapp/services/{onu_serial}-1/"),
    "configure_cpe": ("genieacs", "^POST /devices/[^/]*{cpe_serial}/tasks"),
}


def mutating_call(step: str, body: dict[str, Any]) -> tuple[str, str]:
    system, pattern = MUTATING_CALL[step]
    return system, pattern.format(prefix_id=NETWORK_PREFIX_ID, **body)


#: (mode, status) per fault kind of the matrix.
FAULT_KINDS = {
    "permanent_4xx": ("error", 400),
    "persistent_5xx": ("error", 503),
    "timeout": ("timeout", None),
    "connection_reset": ("reset", None),
    "after_effect": ("after_effect", None),
}


def new_subscriber(sim, plan_id: int, *, cpe_online: bool = True, data_model: str = "tr181"):
    body = provision_body(
        plan_id, discovered=False, onu_serial=unique_serial(), cpe_serial=unique_cpe_serial()
    )
    sim.add_onu(body["onu_serial"])
    sim.add_cpe(body["cpe_serial"], data_model=data_model, online=cpe_online)
    return body


def device(state: dict[str, Any], serial: str) -> dict[str, Any]:
    return next(d for d in state["genieacs"]["devices"] if d["serial"] == serial)


def assert_nothing_left(sim, body: dict[str, Any], workflow_id, radius_server) -> None:
    state = sim.state()
    assert [
        ip for ip in state["netbox"]["ip_addresses"] if str(workflow_id) in ip["description"]
    ] == []
    port = f"{body['onu_serial']}-1"
    onos = state["onos"]
    assert [s for s in onos["programmed_subscribers"] if s["port_name"] == port] == []
    assert [s for s in onos["pending_subscribers"] if port in str(s)] == []
    cpe = device(state, body["cpe_serial"])
    assert not any(tag.startswith("subscriber-") for tag in cpe["tags"])
    assert body["password"] not in str(cpe["parameters"])
    assert body["password"] not in str(cpe["tasks"])
    assert our_rows(workflow_id) == {"customers": 0, "subscribers": 0, "billing_services": 0}
    rows = RadiusStore.from_settings(get_settings()).account_rows(body["username"])
    assert rows == {"radcheck": 0, "radreply": 0, "radusergroup": 0}
    host, port_number = radius_server
    assert not authenticate(
        body["username"], body["password"], host=host, port=port_number
    ).accepted


@pytest.mark.parametrize("data_model", ["tr181", "tr098"])
def test_all_seven_steps_reach_every_system(
    data_model, sim, client, worker, network_plan, operator_key, radius_server
):
    body = new_subscriber(sim, network_plan.id, data_model=data_model)

    workflow_id, _ = submit(client, operator_key, body)

    assert wait_terminal(workflow_id).value == "completed"
    # the plan is IPv4-only: its IPv6 step is skipped (tests/network/test_dual_stack.py)
    assert {n: s.status.value for n, s in steps(workflow_id).items()} == {
        n: "skipped" if n == "allocate_ipv6_prefix" else "completed" for n in steps(workflow_id)
    }
    state = sim.state()
    key = f"{workflow_id}:allocate_ip"
    addresses = [ip for ip in state["netbox"]["ip_addresses"] if ip["description"] == key]
    assert len(addresses) == 1
    ip = addresses[0]["address"].split("/")[0]
    with_output = client.get(
        f"/api/v1/orchestration/workflows/{workflow_id}",
        headers={"Authorization": f"Bearer {operator_key}"},
    ).get_json()
    assert with_output["output"]["ipv4_address"] == ip

    programmed = [
        s
        for s in state["onos"]["programmed_subscribers"]
        if s["port_name"] == f"{body['onu_serial']}-1"
    ]
    assert [(s["s_tag"], s["c_tag"], s["tp_id"]) for s in programmed] == [(100, 200, 64)]

    cpe = device(state, body["cpe_serial"])
    root = PPP_TR181 if data_model == "tr181" else PPP_TR098
    assert cpe["parameters"][f"{root}.Username"] == body["username"]
    assert cpe["parameters"][f"{root}.Password"] == body["password"]
    subscriber_id = with_output["output"]["subscriber_id"]
    assert f"subscriber-{subscriber_id}" in cpe["tags"]

    host, port = radius_server
    reply = authenticate(body["username"], body["password"], host=host, port=port)
    assert reply.accepted
    assert reply.first("Framed-IP-Address") == ip


def test_static_address_skips_netbox_and_goes_to_radius(
    sim, client, worker, network_plan, operator_key, radius_server
):
    body = new_subscriber(sim, network_plan.id)
    body["static_ipv4"] = "198.51.100.77"

    workflow_id, _ = submit(client, operator_key, body)

    assert wait_terminal(workflow_id).value == "completed"
    assert steps(workflow_id)["allocate_ip"].status.value == "skipped"
    assert sim.state()["netbox"]["ip_addresses"] == []
    host, port = radius_server
    reply = authenticate(body["username"], body["password"], host=host, port=port)
    assert reply.first("Framed-IP-Address") == "198.51.100.77"


@pytest.mark.parametrize("kind", list(FAULT_KINDS))
@pytest.mark.parametrize("step", list(MUTATING_CALL))
def test_fault_matrix_rolls_back_with_nothing_left(
    step, kind, sim, client, worker, network_plan, operator_key, radius_server
):
    # Given the step's creating call fails the same way on every attempt it makes
    body = new_subscriber(sim, network_plan.id)
    system, match = mutating_call(step, body)
    mode, status = FAULT_KINDS[kind]
    attempts = PROVISION_SUBSCRIBER.step(step).max_attempts
    extra = {"status": status} if status else {}
    sim.fault(system, match, mode, count=1 if kind == "permanent_4xx" else attempts, **extra)
    # and, should the step recover by finding what a lost answer created, a later failure
    faults.arm("create_billing_service", ["permanent"], username=body["username"])

    workflow_id, _ = submit(client, operator_key, body)

    # Then the workflow is rolled back and no system holds anything of it
    assert wait_terminal(workflow_id, timeout=120).value == "rolled_back"
    assert_nothing_left(sim, body, workflow_id, radius_server)
    failed = steps(workflow_id)[step]
    if kind in ("permanent_4xx", "persistent_5xx", "timeout", "connection_reset"):
        assert failed.error["system"] == system
        assert failed.attempts == (1 if kind == "permanent_4xx" else attempts)


@pytest.mark.parametrize("kind", ["persistent_5xx", "timeout", "connection_reset", "after_effect"])
@pytest.mark.parametrize("step", list(MUTATING_CALL))
def test_one_off_fault_is_retried_and_completes_once(
    step, kind, sim, client, worker, network_plan, operator_key
):
    # An offline CPE queues its task: exactly one may wait for its next inform.
    body = new_subscriber(sim, network_plan.id, cpe_online=False)
    system, match = mutating_call(step, body)
    mode, status = FAULT_KINDS[kind]
    sim.fault(system, match, mode, count=1, **({"status": status} if status else {}))

    workflow_id, _ = submit(client, operator_key, body)

    assert wait_terminal(workflow_id, timeout=60).value == "completed"
    assert steps(workflow_id)[step].attempts == 2
    state = sim.state()
    key = f"{workflow_id}:allocate_ip"
    assert len([ip for ip in state["netbox"]["ip_addresses"] if ip["description"] == key]) == 1
    port = f"{body['onu_serial']}-1"
    assert len([s for s in state["onos"]["programmed_subscribers"] if s["port_name"] == port]) == 1
    tasks = device(state, body["cpe_serial"])["tasks"]
    assert len([t for t in tasks if t.get("name") == "setParameterValues"]) == 1


def test_voltha_blip_is_absorbed(sim, client, worker, network_plan, operator_key):
    sim.fault("voltha", "ListDevices", "error", status=503, count=1)
    body = new_subscriber(sim, network_plan.id)

    workflow_id, _ = submit(client, operator_key, body)

    assert wait_terminal(workflow_id).value == "completed"


def test_unknown_onu_fails_clearly_and_rolls_back(
    sim, client, worker, network_plan, operator_key, radius_server
):
    body = new_subscriber(sim, network_plan.id)
    body["onu_serial"] = unique_serial()  # never discovered by VOLTHA

    workflow_id, _ = submit(client, operator_key, body)

    assert wait_terminal(workflow_id).value == "rolled_back"
    error = steps(workflow_id)["activate_onu"].error
    assert error["system"] == "voltha"
    assert body["onu_serial"] in error["message"]
    assert_nothing_left(sim, body, workflow_id, radius_server)


def test_unknown_cpe_fails_clearly_and_rolls_back(
    sim, client, worker, network_plan, operator_key, radius_server
):
    body = new_subscriber(sim, network_plan.id)
    known_cpe = body["cpe_serial"]
    body["cpe_serial"] = unique_cpe_serial()  # never informed GenieACS

    workflow_id, _ = submit(client, operator_key, body)

    assert wait_terminal(workflow_id).value == "rolled_back"
    error = steps(workflow_id)["configure_cpe"].error
    assert error["system"] == "genieacs"
    assert body["cpe_serial"] in error["message"]
    body["cpe_serial"] = known_cpe  # the check below looks at the device that does exist
    assert_nothing_left(sim, body, workflow_id, radius_server)


def test_full_prefix_fails_clearly_and_rolls_back(
    sim, client, worker, tiny_plan, operator_key, radius_server
):
    # Given the plan's /30 already handed out both of its addresses
    for holder in ("someone-else-1", "someone-else-2"):
        response = sim.session.post(
            f"{sim.netbox_url}/api/ipam/prefixes/3/available-ips/",
            json={"description": holder},
            headers={"Authorization": f"Token {get_settings().netbox_token}"},
            timeout=10,
        )
        assert response.status_code == 201
    body = new_subscriber(sim, tiny_plan.id)
    # (SADIS knows the tiny plan's service on this ONU, so the access network accepts it)
    sim.control(
        "POST",
        "sadis",
        {"port_name": f"{body['onu_serial']}-1", "s_tag": 101, "c_tag": 201, "tp_id": 64},
        expect=201,
    )

    workflow_id, _ = submit(client, operator_key, body)

    assert wait_terminal(workflow_id).value == "rolled_back"
    allocate = steps(workflow_id)["allocate_ip"]
    assert allocate.attempts == 1
    assert allocate.error["status"] == 409
    assert "no free address left" in allocate.error["message"]
    assert_nothing_left(sim, body, workflow_id, radius_server)
    # and the two addresses that were there before are still there
    assert len(sim.state()["netbox"]["ip_addresses"]) == 2


def test_rollback_deletes_a_push_still_queued_for_an_offline_cpe(
    sim, client, worker, network_plan, operator_key, radius_server
):
    # Given a CPE that is offline, so the push waits for its next inform
    body = new_subscriber(sim, network_plan.id, cpe_online=False)
    faults.arm("create_billing_service", ["permanent"], username=body["username"])

    workflow_id, _ = submit(client, operator_key, body)

    # Then the rollback deleted the queued push and queued nothing in its place
    assert wait_terminal(workflow_id).value == "rolled_back"
    assert steps(workflow_id)["configure_cpe"].output["applied"] is False
    assert device(sim.state(), body["cpe_serial"])["tasks"] == []
    assert_nothing_left(sim, body, workflow_id, radius_server)


@pytest.mark.parametrize(
    ("state", "named"),
    [
        ({"admin_state": "DISABLED"}, "admin_state DISABLED"),
        ({"connect_status": "UNREACHABLE"}, "connect_status UNREACHABLE"),
    ],
)
def test_an_onu_voltha_cannot_use_fails_for_good(
    state, named, sim, client, worker, network_plan, operator_key, radius_server
):
    # Given an ONU that VOLTHA lists, but disabled or out of reach
    body = provision_body(
        network_plan.id,
        discovered=False,
        onu_serial=unique_serial(),
        cpe_serial=unique_cpe_serial(),
    )
    sim.add_onu(body["onu_serial"], **state)
    sim.add_cpe(body["cpe_serial"])

    workflow_id, _ = submit(client, operator_key, body)

    # Then activate_onu fails at once with the ONU's state, and nothing was asked of ONOS
    assert wait_terminal(workflow_id).value == "rolled_back"
    activate = steps(workflow_id)["activate_onu"]
    assert activate.attempts == 1
    assert activate.error["system"] == "voltha"
    assert named in activate.error["message"]
    posts = [r for r in sim.requests("onos") if r["method"] == "POST"]
    assert [r for r in posts if body["onu_serial"] in r["path"]] == []
    assert_nothing_left(sim, body, workflow_id, radius_server)


def test_voltha_down_for_good_rolls_back_without_needing_voltha(
    sim, client, worker, network_plan, operator_key, radius_server
):
    # Given VOLTHA's device listings (all of them, or their ids) failing on every call, so a
    # new ONU is never found and activate_onu never reaches ONOS
    body = new_subscriber(sim, network_plan.id)
    sim.fault("voltha", "^ListDevice(s|Ids)$", "error", status=503, count=0)

    workflow_id, _ = submit(client, operator_key, body)

    # Then the undo asks ONOS only (where nothing was programmed): the workflow is rolled back,
    # not failed, and names nothing left behind
    assert wait_terminal(workflow_id, timeout=120).value == "rolled_back"
    activate = steps(workflow_id)["activate_onu"]
    assert activate.error["system"] == "voltha"
    assert activate.status.value == "compensated"
    assert all(s.status.value != "compensation_failed" for s in steps(workflow_id).values())
    assert [r for r in sim.requests("onos") if r["method"] == "POST"] == []
    sim.control("DELETE", "faults", expect=200)
    assert_nothing_left(sim, body, workflow_id, radius_server)
