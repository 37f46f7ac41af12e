"""A provisioning request runs every step on a real worker and FreeRADIUS accepts the result."""

from __future__ import annotations

from orchestrator.config import get_settings
from orchestrator.integrations.radius import RadiusStore
from tests.support.radius_client import authenticate
from tests.support.requests import provision_body, submit
from tests.support.workflows import our_rows, steps, wait_terminal


def test_provisioning_completes_and_radius_accepts(
    client, worker, plan, operator_key, radius_server
):
    # Given a valid request
    body = provision_body(plan.id)

    # When it is submitted
    workflow_id, response = submit(client, operator_key, body)

    # Then the API answered 202 with the workflow and where to find it
    assert response.status_code == 202
    assert response.headers["Location"].endswith(f"/workflows/{workflow_id}")
    assert wait_terminal(workflow_id).value == "completed"
    assert {name: s.status.value for name, s in steps(workflow_id).items()} == {
        "create_customer": "completed",
        "create_subscriber": "completed",
        "create_radius_account": "completed",
        "allocate_ip": "completed",
        "allocate_ipv6_prefix": "skipped",  # the plan has no IPv6 pool
        "assign_framed_ip": "completed",
        "activate_onu": "completed",
        "configure_cpe": "skipped",  # no CPE serial in the request
        "create_billing_service": "completed",
    }
    assert our_rows(workflow_id) == {"customers": 1, "subscribers": 1, "billing_services": 1}

    # And FreeRADIUS accepts the subscriber with the plan's attributes
    host, port = radius_server
    reply = authenticate(body["username"], body["password"], host=host, port=port)
    assert reply.accepted
    assert reply.first("Framed-Protocol") == "PPP"
    assert reply.first("Service-Type") == "Framed-User"
    assert reply.first("Mikrotik-Rate-Limit") == "100M/300M"
    assert not authenticate(body["username"], "wrong-password", host=host, port=port).accepted

    store = RadiusStore.from_settings(get_settings())
    assert store.account_rows(body["username"]) == {"radcheck": 1, "radreply": 1, "radusergroup": 1}


def test_workflow_detail_shows_steps_and_events(client, worker, plan, operator_key):
    body = provision_body(plan.id)
    workflow_id, _ = submit(client, operator_key, body)
    wait_terminal(workflow_id)

    detail = client.get(
        f"/api/v1/orchestration/workflows/{workflow_id}",
        headers={"Authorization": f"Bearer {operator_key}"},
    ).get_json()

    assert detail["status"] == "completed"
    assert [(s["name"], s["stage"]) for s in detail["steps"]] == [
        ("activate_onu", 0),
        ("configure_cpe", 0),
        ("create_radius_account", 0),
        ("allocate_ip", 0),
        ("allocate_ipv6_prefix", 0),
        ("create_customer", 0),
        ("create_subscriber", 1),
        ("assign_framed_ip", 1),
        ("create_billing_service", 2),
    ]
    assert detail["steps"][-1]["depends_on"] == [
        "create_subscriber",
        "assign_framed_ip",
        "activate_onu",
        "configure_cpe",
    ]
    ran = [s for s in detail["steps"] if s["status"] == "completed"]
    assert len(ran) == 7
    assert all(s["attempts"] == 1 and s["started_at"] and s["finished_at"] for s in ran)
    assert {"customer_id", "subscriber_id", "billing_service_id"} <= detail["output"].keys()
    kinds = [e["kind"] for e in detail["events"]]
    assert kinds[0] == "workflow_created"
    assert kinds.count("step_completed") == 7
    assert kinds.count("step_skipped") == 2
    assert "password" not in detail["input"]
    assert body["password"] not in str(detail)
