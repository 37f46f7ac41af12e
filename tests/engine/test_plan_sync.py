"""A plan's new speeds reach its existing subscribers through the plan's RADIUS group."""

from __future__ import annotations

from orchestrator import faults
from orchestrator.apikeys import create_key
from orchestrator.config import get_settings
from orchestrator.db import transaction
from orchestrator.integrations.radius import RadiusStore
from tests.support.plans import create_plan
from tests.support.radius_client import authenticate
from tests.support.requests import provision_body, submit
from tests.support.workflows import wait_terminal, wait_until


def group_rate(group: str) -> str | None:
    attributes = RadiusStore.from_settings(get_settings()).group_attributes(group)
    return next((a.value for a in attributes if a.attribute == "Mikrotik-Rate-Limit"), None)


def test_new_speeds_reach_existing_subscribers(client, worker, tenant, operator_key, radius_server):
    plan = create_plan(tenant, "upgradeable", download_mbps=50, upload_mbps=10)
    body = provision_body(plan.id)
    workflow_id, _ = submit(client, operator_key, body)
    assert wait_terminal(workflow_id).value == "completed"
    host, port = radius_server
    before = authenticate(body["username"], body["password"], host=host, port=port)
    assert before.first("Mikrotik-Rate-Limit") == "10M/50M"

    # When an admin doubles the plan's speeds
    with transaction() as session:
        admin_key = create_key(session, tenant, "admin")[1]
    response = client.patch(
        f"/api/v1/service-plans/{plan.id}",
        json={"download_mbps": 100, "upload_mbps": 20},
        headers={"Authorization": f"Bearer {admin_key}"},
    )
    assert response.status_code == 200

    # Then the subscriber gets them at its next authentication, without re-provisioning
    wait_until(lambda: group_rate(plan.radius_group) == "20M/100M", 30, "the group update")
    after = authenticate(body["username"], body["password"], host=host, port=port)
    assert after.accepted
    assert after.first("Mikrotik-Rate-Limit") == "20M/100M"


def test_a_provisioning_in_flight_does_not_bring_old_speeds_back(
    client, worker, tenant, operator_key
):
    # Given a provisioning submitted (and so snapshotted) on the plan's old speeds
    plan = create_plan(tenant, "edited-in-flight", download_mbps=30, upload_mbps=30)
    first = provision_body(plan.id)
    first_id, _ = submit(client, operator_key, first)
    assert wait_terminal(first_id).value == "completed"
    body = provision_body(plan.id)
    faults.arm("create_customer", ["slow"], username=body["username"])
    workflow_id, _ = submit(client, operator_key, body)

    # When the plan is changed while it runs
    with transaction() as session:
        admin_key = create_key(session, tenant, "admin")[1]
    client.patch(
        f"/api/v1/service-plans/{plan.id}",
        json={"download_mbps": 300},
        headers={"Authorization": f"Bearer {admin_key}"},
    )
    wait_until(lambda: group_rate(plan.radius_group) == "30M/300M", 30, "the group update")

    # Then the provisioning finishes without rewriting the group from its snapshot
    assert wait_terminal(workflow_id).value == "completed"
    assert group_rate(plan.radius_group) == "30M/300M"
