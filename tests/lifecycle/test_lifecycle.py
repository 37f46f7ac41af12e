"""A subscriber's life after provisioning, end to end on real workers, FreeRADIUS and the
simulators: suspend, activate, change plan, deprovision."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from orchestrator import engine, faults
from orchestrator.config import get_settings
from orchestrator.db import transaction
from orchestrator.integrations.radius import RadiusStore
from orchestrator.models import BillingService, Customer, Subscriber, Workflow
from tests.support.radius_client import authenticate
from tests.support.requests import provision_body, submit, unique_cpe_serial, unique_serial
from tests.support.workflows import step_running, steps, wait_terminal, wait_until

ORCHESTRATION = "/api/v1/orchestration"
PPP_TR181 = "Device.PPP.Interface.1"


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def provisioned(sim, client, key: str, plan_id: int) -> tuple[dict[str, Any], uuid.UUID]:
    """A subscriber provisioned everywhere (ONU, CPE), with a live PPPoE session on the NAS."""
    body = provision_body(
        plan_id, discovered=False, onu_serial=unique_serial(), cpe_serial=unique_cpe_serial()
    )
    sim.add_onu(body["onu_serial"])
    sim.add_cpe(body["cpe_serial"], data_model="tr181")
    workflow_id, _ = submit(client, key, body)
    assert wait_terminal(workflow_id).value == "completed"
    detail = client.get(f"{ORCHESTRATION}/workflows/{workflow_id}", headers=auth(key)).get_json()
    sim.add_nas_session(body["username"])
    return body, uuid.UUID(detail["output"]["subscriber_id"])


def lifecycle(client, key: str, action: str, subscriber_id: uuid.UUID, **fields: Any):
    response = client.post(
        f"{ORCHESTRATION}/{action}",
        json={"subscriber_id": str(subscriber_id), **fields},
        headers=auth(key),
    )
    return response


def run(client, key: str, action: str, subscriber_id: uuid.UUID, **fields: Any) -> uuid.UUID:
    response = lifecycle(client, key, action, subscriber_id, **fields)
    assert response.status_code == 202, response.get_json()
    assert response.headers["Location"].endswith(response.get_json()["id"])
    return uuid.UUID(response.get_json()["workflow_id"])


def subscriber(client, key: str, subscriber_id: uuid.UUID) -> dict[str, Any]:
    response = client.get(f"/api/v1/subscribers/{subscriber_id}", headers=auth(key))
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def disconnects(sim, username: str) -> list[dict[str, Any]]:
    return [
        r
        for r in sim.state()["nas"]["requests"]
        if r.get("username") == username and r.get("code") == "Disconnect-Request"
    ]


def login(radius_server, body: dict[str, Any]):  # type: ignore[no-untyped-def]
    host, port = radius_server
    return authenticate(body["username"], body["password"], host=host, port=port)


def onos_services(sim, onu_serial: str) -> list[tuple[int, int, int]]:
    return [
        (s["s_tag"], s["c_tag"], s["tp_id"])
        for s in sim.state()["onos"]["programmed_subscribers"]
        if s["port_name"] == f"{onu_serial}-1"
    ]


def cpe(sim, serial: str) -> dict[str, Any]:
    return next(d for d in sim.state()["genieacs"]["devices"] if d["serial"] == serial)


def test_a_subscriber_lives_suspend_activate_change_plan_deprovision(
    sim, client, worker, basic_plan, faster_plan, operator_key, radius_server
):
    # Given a provisioned subscriber, online
    body, subscriber_id = provisioned(sim, client, operator_key, basic_plan.id)
    assert login(radius_server, body).first("Mikrotik-Rate-Limit") == "20M/100M"
    assert subscriber(client, operator_key, subscriber_id)["status"] == "active"

    # When it is suspended
    suspension = run(client, operator_key, "suspend-service", subscriber_id, reason="unpaid")
    assert wait_terminal(suspension).value == "completed"

    # Then FreeRADIUS rejects it, and the NAS was told once to end its session
    assert not login(radius_server, body).accepted
    sent = disconnects(sim, body["username"])
    assert [r["answer"] for r in sent] == ["ack"]
    assert sim.state()["nas"]["sessions"] == []
    assert subscriber(client, operator_key, subscriber_id)["status"] == "suspended"

    # When it is activated again
    activation = run(client, operator_key, "activate-service", subscriber_id)
    assert wait_terminal(activation).value == "completed"

    # Then it is accepted with its plan's rate
    reply = login(radius_server, body)
    assert reply.accepted and reply.first("Mikrotik-Rate-Limit") == "20M/100M"
    assert subscriber(client, operator_key, subscriber_id)["status"] == "active"

    # When it moves to a faster plan on other tags
    change = run(
        client, operator_key, "change-service-plan", subscriber_id, service_plan_id=faster_plan.id
    )
    assert wait_terminal(change).value == "completed"

    # Then the new rate, and ONOS holds the new service only
    reply = login(radius_server, body)
    assert reply.accepted and reply.first("Mikrotik-Rate-Limit") == "100M/500M"
    assert onos_services(sim, body["onu_serial"]) == [(110, 210, 65)]
    view = subscriber(client, operator_key, subscriber_id)
    assert (view["service_plan_id"], view["plan"]["radius_group"]) == (
        faster_plan.id,
        faster_plan.radius_group,
    )
    assert view["resources"]["onos"]["s_tag"] == 110

    # When it is deprovisioned
    deprovision = run(client, operator_key, "deprovision-subscriber", subscriber_id)
    assert wait_terminal(deprovision).value == "completed"

    # Then no system holds anything of it, and it is terminated (its customer stays)
    assert_gone_everywhere(sim, client, operator_key, body, subscriber_id, radius_server)

    # And the subscriber shows its whole history, newest first
    history = [
        w["workflow_type"] for w in subscriber(client, operator_key, subscriber_id)["workflows"]
    ]
    assert history == [
        "deprovision_subscriber",
        "change_service_plan",
        "activate_service",
        "suspend_service",
        "provision_subscriber",
    ]


def assert_gone_everywhere(sim, client, key, body, subscriber_id, radius_server) -> None:
    view = subscriber(client, key, subscriber_id)
    assert view["status"] == "terminated" and view["terminated_at"]
    assert view["resources"] == {}
    provisioning = view["provisioned_by"]
    state = sim.state()
    assert [
        ip for ip in state["netbox"]["ip_addresses"] if ip["description"].startswith(provisioning)
    ] == []
    assert onos_services(sim, body["onu_serial"]) == []
    device = cpe(sim, body["cpe_serial"])
    assert not any(tag.startswith("subscriber-") for tag in device["tags"])
    assert device["parameters"].get(f"{PPP_TR181}.Password") in ("", None)
    rows = RadiusStore.from_settings(get_settings()).account_rows(body["username"])
    assert rows == {"radcheck": 0, "radreply": 0, "radusergroup": 0}
    assert not login(radius_server, body).accepted
    with transaction() as session:
        row = session.get(Subscriber, subscriber_id)
        billing = session.scalars(
            select(BillingService.status).where(BillingService.subscriber_id == subscriber_id)
        ).all()
        assert [b.value for b in billing] == ["ended"]
        assert session.get(Customer, row.customer_id) is not None


def test_suspension_can_disable_the_onu_and_activation_enables_it(
    sim, client, worker, basic_plan, operator_key, radius_server
):
    body, subscriber_id = provisioned(sim, client, operator_key, basic_plan.id)

    def onu_admin_state() -> str:
        onu = next(
            d for d in sim.state()["voltha"]["devices"] if d["serial_number"] == body["onu_serial"]
        )
        return onu["admin_state"]

    suspension = run(client, operator_key, "suspend-service", subscriber_id, disable_onu=True)
    assert wait_terminal(suspension).value == "completed"
    assert onu_admin_state() == "DISABLED"
    assert subscriber(client, operator_key, subscriber_id)["resources"]["onu"]["disabled"] is True

    activation = run(client, operator_key, "activate-service", subscriber_id)
    assert wait_terminal(activation).value == "completed"
    assert onu_admin_state() == "ENABLED"
    assert steps(activation)["enable_onu"].status.value == "completed"
    assert login(radius_server, body).accepted


def test_a_failed_plan_change_returns_everything_to_the_old_plan(
    sim, client, worker, basic_plan, faster_plan, operator_key, radius_server
):
    # Given a subscriber, and a plan change whose last step fails for good
    body, subscriber_id = provisioned(sim, client, operator_key, basic_plan.id)
    faults.arm("change_billing_plan", ["permanent"], username=body["username"])

    change = run(
        client, operator_key, "change-service-plan", subscriber_id, service_plan_id=faster_plan.id
    )

    # Then it is rolled back: the old group and rate, the old ONOS service, the old plan
    assert wait_terminal(change).value == "rolled_back"
    rows = steps(change)
    assert rows["reprogram_onu"].status.value == "compensated"
    assert rows["move_to_new_plan_group"].status.value == "compensated"
    assert login(radius_server, body).first("Mikrotik-Rate-Limit") == "20M/100M"
    assert onos_services(sim, body["onu_serial"]) == [(100, 200, 64)]
    view = subscriber(client, operator_key, subscriber_id)
    assert (view["status"], view["service_plan_id"]) == ("active", basic_plan.id)


def test_a_plan_change_on_the_same_tags_leaves_onos_alone(
    sim, client, worker, basic_plan, same_tags_plan, operator_key, radius_server
):
    body, subscriber_id = provisioned(sim, client, operator_key, basic_plan.id)
    change = run(
        client,
        operator_key,
        "change-service-plan",
        subscriber_id,
        service_plan_id=same_tags_plan.id,
    )
    assert wait_terminal(change).value == "completed"
    assert steps(change)["reprogram_onu"].status.value == "skipped"
    assert onos_services(sim, body["onu_serial"]) == [(100, 200, 64)]
    assert login(radius_server, body).first("Mikrotik-Rate-Limit") == "40M/200M"


def test_deprovision_waits_out_a_netbox_outage_and_completes(
    sim, client, worker, basic_plan, operator_key, radius_server
):
    # Given NetBox failing the next few times the subscriber's address is deleted
    body, subscriber_id = provisioned(sim, client, operator_key, basic_plan.id)
    ip_id = subscriber(client, operator_key, subscriber_id)["resources"]["netbox"]["ip_id"]
    sim.fault("netbox", f"^DELETE /api/ipam/ip-addresses/{ip_id}/$", "error", status=503, count=6)

    deprovision = run(client, operator_key, "deprovision-subscriber", subscriber_id)

    # Then the release is retried (never answered by re-creating anything) until NetBox is back
    assert wait_terminal(deprovision, timeout=90).value == "completed"
    assert steps(deprovision)["release_ip"].attempts > 1
    assert_gone_everywhere(sim, client, operator_key, body, subscriber_id, radius_server)


def test_deprovision_past_its_deadline_reports_what_is_left_and_retry_finishes(
    sim, client, worker, basic_plan, operator_key, radius_server
):
    # Given GenieACS failing every call about this CPE, and a deprovision with little time
    body, subscriber_id = provisioned(sim, client, operator_key, basic_plan.id)
    sim.fault("genieacs", body["cpe_serial"], "error", status=503, count=0)  # for good
    deprovision = run(client, operator_key, "deprovision-subscriber", subscriber_id)
    with transaction() as session:
        session.execute(
            update(Workflow)
            .where(Workflow.id == deprovision)
            .values(deadline_at=engine.utcnow() + timedelta(seconds=4))
        )

    # Then it stops at the deadline, failed, naming exactly what is left
    assert wait_terminal(deprovision, timeout=60).value == "failed", {
        n: (s.status.value, s.attempts, s.output) for n, s in steps(deprovision).items()
    }
    detail = client.get(f"{ORCHESTRATION}/workflows/{deprovision}", headers=auth(operator_key))
    left = {item["step"] for item in detail.get_json()["error"]["left_behind"]}
    assert left == {"clear_cpe", "mark_terminated"}
    rows = steps(deprovision)
    assert all(
        rows[name].status.value == "completed"
        for name in ("end_billing", "remove_onu_service", "release_ip", "remove_radius_account")
    )
    assert subscriber(client, operator_key, subscriber_id)["status"] == "active"

    # When GenieACS is back and an operator retries
    sim.control("DELETE", "faults", expect=200)
    response = client.post(
        f"{ORCHESTRATION}/workflows/{deprovision}/retry", headers=auth(operator_key)
    )
    assert response.status_code == 202

    # Then it carries on forward and finishes
    assert wait_terminal(deprovision, timeout=60).value == "completed"
    assert_gone_everywhere(sim, client, operator_key, body, subscriber_id, radius_server)


def test_cancel_while_the_last_step_runs_still_compensates(
    sim, client, worker, basic_plan, operator_key, radius_server
):
    # Given a suspension whose last step (disconnecting the sessions at the NAS) is in flight
    body, subscriber_id = provisioned(sim, client, operator_key, basic_plan.id)
    faults.arm("disconnect_sessions", ["slow"], username=body["username"])
    workflow_id = run(client, operator_key, "suspend-service", subscriber_id)
    wait_until(lambda: step_running(workflow_id, "disconnect_sessions"), 30, "the last step")

    # When an operator cancels it
    response = client.post(
        f"{ORCHESTRATION}/workflows/{workflow_id}/cancel", headers=auth(operator_key)
    )
    assert response.status_code == 202

    # Then the cancel, accepted, is honoured at the last boundary: everything is undone
    assert wait_terminal(workflow_id).value == "compensated"
    assert subscriber(client, operator_key, subscriber_id)["status"] == "active"
    assert login(radius_server, body).accepted


def test_one_lifecycle_workflow_at_a_time_per_subscriber(
    sim, app, worker, basic_plan, operator_key, radius_server
):
    # Given a subscriber, and a suspension that will take a while
    client = app.test_client()
    body, subscriber_id = provisioned(sim, client, operator_key, basic_plan.id)
    faults.arm("move_to_suspended_group", ["slow"], username=body["username"])

    # When five requests about it arrive at once
    barrier = threading.Barrier(5)
    answers: list[Any] = []

    def request(action: str) -> None:
        local = app.test_client()
        barrier.wait()
        answers.append(lifecycle(local, operator_key, action, subscriber_id))

    actions = ["suspend-service"] * 3 + ["deprovision-subscriber"] * 2
    threads = [threading.Thread(target=request, args=(a,)) for a in actions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then exactly one starts, and the others are told which workflow holds the subscriber
    accepted = [a for a in answers if a.status_code == 202]
    refused = [a for a in answers if a.status_code == 409]
    assert (len(accepted), len(refused)) == (1, 4)
    winner = accepted[0].get_json()["id"]
    assert all(winner in r.get_json()["error"]["message"] for r in refused)
    assert wait_terminal(uuid.UUID(winner)).value == "completed"


def test_a_request_the_subscriber_status_forbids_is_409_naming_it(
    sim, client, worker, basic_plan, operator_key
):
    body, subscriber_id = provisioned(sim, client, operator_key, basic_plan.id)

    response = lifecycle(client, operator_key, "activate-service", subscriber_id)
    assert response.status_code == 409
    assert response.get_json()["error"]["details"] == {"subscriber_id": ["subscriber is active"]}

    deprovision = run(client, operator_key, "deprovision-subscriber", subscriber_id)
    assert wait_terminal(deprovision).value == "completed"
    for action in ("suspend-service", "activate-service", "deprovision-subscriber"):
        response = lifecycle(client, operator_key, action, subscriber_id)
        assert response.status_code == 409
        assert "terminated" in response.get_json()["error"]["message"]
    # A terminated subscriber frees its username and ONU for a new provisioning
    again = provision_body(
        body["service_plan_id"],
        discovered=False,
        username=body["username"],
        onu_serial=body["onu_serial"],
    )
    workflow_id, _ = submit(client, operator_key, again)
    assert wait_terminal(workflow_id).value == "completed"


def test_another_tenants_subscriber_is_unknown(sim, client, worker, basic_plan, operator_key):
    from tests.api.helpers import make_key

    _, subscriber_id = provisioned(sim, client, operator_key, basic_plan.id)
    other = make_key("globex", "operator")
    response = lifecycle(client, other, "suspend-service", subscriber_id)
    assert response.status_code == 422
    assert response.get_json()["error"]["details"] == {"subscriber_id": ["no such subscriber"]}
    assert (
        client.get(f"/api/v1/subscribers/{subscriber_id}", headers=auth(other)).status_code == 404
    )


def test_subscribers_are_listed_and_filtered(sim, client, worker, basic_plan, operator_key):
    body, subscriber_id = provisioned(sim, client, operator_key, basic_plan.id)
    page = client.get(
        f"/api/v1/subscribers?username={body['username']}", headers=auth(operator_key)
    ).get_json()
    assert [s["id"] for s in page["items"]] == [str(subscriber_id)] and page["total"] == 1
    page = client.get(
        f"/api/v1/subscribers?onu_serial={body['onu_serial']}&status=active",
        headers=auth(operator_key),
    ).get_json()
    assert [s["id"] for s in page["items"]] == [str(subscriber_id)]
    bad = client.get("/api/v1/subscribers?status=gone", headers=auth(operator_key))
    assert bad.status_code == 422 and list(bad.get_json()["error"]["details"]) == ["status"]


def test_the_four_field_request_of_the_original_design_completes(
    sim, client, worker, basic_plan, operator_key
):
    # Given a known customer with an address, a discovered ONU and a CPE known by its MAC
    with transaction() as session:
        customer = Customer(
            tenant_id="acme",
            first_name="Grace",
            last_name="Hopper",
            email="grace@example.net",
            address="1 Compiler Lane, Arlington",
        )
        session.add(customer)
        session.flush()
        customer_id = str(customer.id)
    onu_serial, cpe_serial = unique_serial(), unique_cpe_serial()
    mac = "02:AB:" + ":".join(f"{b:02X}" for b in uuid.uuid4().bytes[:4])
    sim.add_onu(onu_serial)
    sim.add_cpe(cpe_serial, data_model="tr098", mac=mac)

    # When the portal sends just the four fields
    response = client.post(
        f"{ORCHESTRATION}/provision-subscriber",
        json={
            "customer_id": customer_id,
            "service_plan_id": basic_plan.id,
            "onu_serial": onu_serial,
            "cpe_mac": mac.lower(),
        },
        headers=auth(operator_key),
    )

    # Then it completes, with the CPE found by its MAC and configured
    assert response.status_code == 202, response.get_json()
    workflow_id = uuid.UUID(response.get_json()["workflow_id"])
    assert wait_terminal(workflow_id).value == "completed"
    assert steps(workflow_id)["configure_cpe"].status.value == "completed"
    device = cpe(sim, cpe_serial)
    assert any(tag.startswith("subscriber-") for tag in device["tags"])
    with transaction() as session:
        row = session.scalar(select(Subscriber).where(Subscriber.workflow_id == workflow_id))
        assert row.service_address == "1 Compiler Lane, Arlington"
        assert row.cpe_serial == cpe_serial


@pytest.mark.leaves_behind("the simulators are reset mid-test to drop the NAS session")
def test_disconnect_answers_no_session_when_the_subscriber_is_offline(
    sim, client, worker, basic_plan, operator_key
):
    body, subscriber_id = provisioned(sim, client, operator_key, basic_plan.id)
    sim.control("POST", "reset", expect=200)  # the NAS forgets the session: offline
    suspension = run(client, operator_key, "suspend-service", subscriber_id)
    assert wait_terminal(suspension).value == "completed"
    assert steps(suspension)["disconnect_sessions"].output == {"outcome": "no_session"}
    assert [r["answer"] for r in disconnects(sim, body["username"])] == ["nak"]


def test_a_cpe_found_by_mac_that_another_subscriber_holds_is_refused(
    sim, client, worker, basic_plan, operator_key
):
    # Given a live subscriber whose CPE was given by serial
    cpe_serial = unique_cpe_serial()
    mac = "02:CD:" + ":".join(f"{b:02X}" for b in uuid.uuid4().bytes[:4])
    sim.add_cpe(cpe_serial, data_model="tr181", mac=mac)
    first = provision_body(basic_plan.id)
    first["cpe_serial"] = cpe_serial
    first_id, _ = submit(client, operator_key, first)
    assert wait_terminal(first_id).value == "completed"

    # When another provisioning names the same CPE by its MAC
    second = provision_body(basic_plan.id)
    second.pop("cpe_serial", None)
    second["cpe_mac"] = mac
    second_id, _ = submit(client, operator_key, second)

    # Then it rolls back naming the CPE's owner, and the CPE keeps the first one's credentials
    assert wait_terminal(second_id).value == "rolled_back"
    error = steps(second_id)["configure_cpe"].error
    assert cpe_serial in error["message"] and "belongs to subscriber" in error["message"]
    device = cpe(sim, cpe_serial)
    assert second["username"] not in str(device["parameters"])
    assert first["username"] in str(device["parameters"])
    assert len([t for t in device["tags"] if t.startswith("subscriber-")]) == 1
