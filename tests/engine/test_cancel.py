"""Cancelling a running workflow: the step in flight finishes, then everything is undone."""

from __future__ import annotations

from orchestrator import faults
from orchestrator.config import get_settings
from orchestrator.integrations.radius import RadiusStore
from tests.support.requests import provision_body, submit
from tests.support.workflows import events, our_rows, step_running, steps, wait_terminal, wait_until


def test_cancel_during_a_running_step(client, worker, plan, operator_key):
    body = provision_body(plan.id)
    faults.arm("create_radius_account", ["slow"], username=body["username"])
    workflow_id, _ = submit(client, operator_key, body)
    wait_until(lambda: step_running(workflow_id, "create_radius_account"), 30, "the step to run")

    auth = {"Authorization": f"Bearer {operator_key}"}
    response = client.post(f"/api/v1/orchestration/workflows/{workflow_id}/cancel", headers=auth)
    assert response.status_code == 202

    assert wait_terminal(workflow_id).value == "compensated"
    rows = steps(workflow_id)
    # The step in flight was not abandoned: it completed, then was compensated.
    radius_events = [e.kind for e in events(workflow_id) if e.step_name == "create_radius_account"]
    assert radius_events.index("step_completed") < radius_events.index("compensation_completed")
    assert rows["create_billing_service"].attempts == 0
    assert our_rows(workflow_id) == {"customers": 0, "subscribers": 0, "billing_services": 0}
    radius = RadiusStore.from_settings(get_settings()).account_rows(body["username"])
    assert radius == {"radcheck": 0, "radreply": 0, "radusergroup": 0}

    # A finished workflow cannot be cancelled again
    again = client.post(f"/api/v1/orchestration/workflows/{workflow_id}/cancel", headers=auth)
    assert again.status_code == 409
    assert again.get_json()["error"]["code"] == "invalid_state"
