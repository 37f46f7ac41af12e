"""Retry and cancel end to end, on a real worker: what an operator sees through the API."""

from __future__ import annotations

from orchestrator import faults
from orchestrator.config import get_settings
from orchestrator.integrations.radius import RadiusStore
from tests.api.helpers import WORKFLOWS, auth
from tests.support.requests import provision_body, submit
from tests.support.workflows import our_rows, step_running, wait_terminal, wait_until


def test_retry_of_a_rolled_back_workflow_after_the_fault_is_cleared(
    client, worker, plan, operator_key
):
    # Given a provisioning that failed for good at the RADIUS step and was rolled back
    body = provision_body(plan.id)
    faults.arm("create_radius_account", ["permanent"], username=body["username"])
    workflow_id, _ = submit(client, operator_key, body)
    assert wait_terminal(workflow_id).value == "rolled_back"
    detail = f"{WORKFLOWS}/{workflow_id}"
    failed = client.get(detail, headers=auth(operator_key)).get_json()
    assert failed["run"] == 1
    assert failed["error"]["message"].startswith("step create_radius_account failed")

    # When the fault is gone and an operator retries
    faults.clear()
    response = client.post(f"{detail}/retry", headers=auth(operator_key))

    # Then a second run starts, and completes
    assert response.status_code == 202
    assert (response.get_json()["status"], response.get_json()["run"]) == ("pending", 2)
    assert wait_terminal(workflow_id).value == "completed"
    done = client.get(detail, headers=auth(operator_key)).get_json()
    assert done["run"] == 2
    assert done["error"] is None
    assert {"subscriber_id", "billing_service_id"} <= done["output"].keys()
    # Each step counts its attempts afresh in the new run
    assert all(s["status"] in ("completed", "skipped") for s in done["steps"])
    assert all(s["attempts"] == 1 for s in done["steps"] if s["status"] == "completed")
    # And the first run's attempts are still in the event log, told apart by their run
    radius = [e for e in done["events"] if e["step"] == "create_radius_account"]
    first_run = [(e["kind"], e["attempt"]) for e in radius if e["run"] == 1]
    second_run = [(e["kind"], e["attempt"]) for e in radius if e["run"] == 2]
    assert ("step_failed", 1) in first_run
    assert ("compensation_completed", 1) in first_run
    assert ("step_completed", 1) in second_run
    assert "step_failed" not in {kind for kind, _ in second_run}
    assert our_rows(workflow_id) == {"customers": 1, "subscribers": 1, "billing_services": 1}
    store = RadiusStore.from_settings(get_settings())
    assert store.account_rows(body["username"])["radcheck"] == 1


def test_cancel_of_a_running_workflow_ends_compensated(client, worker, plan, operator_key):
    # Given a workflow busy with a slow step
    body = provision_body(plan.id)
    faults.arm("create_radius_account", ["slow"], username=body["username"])
    workflow_id, _ = submit(client, operator_key, body)
    wait_until(lambda: step_running(workflow_id, "create_radius_account"), 30, "the step to run")

    # When it is cancelled
    response = client.post(f"{WORKFLOWS}/{workflow_id}/cancel", headers=auth(operator_key))

    # Then it stops at the step boundary and undoes everything
    assert response.status_code == 202
    assert response.get_json()["cancel_requested_at"] is not None
    assert wait_terminal(workflow_id).value == "compensated"
    assert our_rows(workflow_id) == {"customers": 0, "subscribers": 0, "billing_services": 0}
    events = client.get(f"{WORKFLOWS}/{workflow_id}", headers=auth(operator_key)).get_json()[
        "events"
    ]
    assert "cancel_requested" in [e["kind"] for e in events]
    # Now finished: neither cancel nor retry applies
    again = client.post(f"{WORKFLOWS}/{workflow_id}/cancel", headers=auth(operator_key))
    assert again.status_code == 409
    retry = client.post(f"{WORKFLOWS}/{workflow_id}/retry", headers=auth(operator_key))
    assert retry.status_code == 409
