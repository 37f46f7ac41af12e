"""Retry and cancel record the key that asked and, optionally, why (``reason``) in the event log;
a bad reason is a 400 naming the field, and nothing is recorded."""

from __future__ import annotations

import uuid

import pytest

from orchestrator.db import transaction
from orchestrator.models import StepStatus, Workflow, WorkflowStatus
from tests.api.helpers import WORKFLOWS, auth, make_key, seed_workflow, snapshot
from tests.support.workflows import events


@pytest.fixture(scope="module")
def key_and_id(tenant: str) -> tuple[str, str]:
    """An operator key, and its id as the event log records it."""
    from orchestrator.apikeys import ApiKeyService

    key = make_key(tenant, "operator")
    principal = ApiKeyService().authenticate(key)
    assert principal is not None
    return key, str(principal.api_key_id)


def _failed_workflow(plan_id: int) -> uuid.UUID:
    """A workflow whose rollback could not remove the RADIUS account: retry resumes it."""
    workflow_id = seed_workflow("acme", WorkflowStatus.FAILED, plan_id=plan_id)
    with transaction() as session:
        workflow = session.get(Workflow, workflow_id)
        for step in workflow.steps:
            if step.name == "create_radius_account":
                step.status, step.attempts = StepStatus.COMPENSATION_FAILED, 1
    return workflow_id


def test_retry_records_who_asked_and_why(api, plan, key_and_id):
    key, key_id = key_and_id
    workflow_id = _failed_workflow(plan.id)

    response = api.post(
        f"{WORKFLOWS}/{workflow_id}/retry",
        json={"reason": "  RADIUS database is back  "},
        headers=auth(key),
    )

    assert response.status_code == 202
    (event,) = events(workflow_id, ["retry_requested"])
    assert event.details == {"requested_by": key_id, "reason": "RADIUS database is back"}


def test_cancel_records_who_asked_and_why(api, plan, key_and_id):
    key, key_id = key_and_id
    workflow_id = seed_workflow("acme", WorkflowStatus.RUNNING, plan_id=plan.id)

    response = api.post(
        f"{WORKFLOWS}/{workflow_id}/cancel",
        json={"reason": "customer withdrew the order"},
        headers=auth(key),
    )

    assert response.status_code == 202
    (event,) = events(workflow_id, ["cancel_requested"])
    assert event.details == {"requested_by": key_id, "reason": "customer withdrew the order"}
    # Asking again records nothing more (the first request and its reason stand)
    again = api.post(
        f"{WORKFLOWS}/{workflow_id}/cancel", json={"reason": "again"}, headers=auth(key)
    )
    assert again.status_code == 202
    assert [e.details for e in events(workflow_id, ["cancel_requested"])] == [event.details]


def test_without_a_body_only_the_key_is_recorded(api, plan, key_and_id):
    key, key_id = key_and_id
    workflow_id = _failed_workflow(plan.id)

    response = api.post(f"{WORKFLOWS}/{workflow_id}/retry", headers=auth(key))

    assert response.status_code == 202
    (event,) = events(workflow_id, ["retry_requested"])
    assert event.details == {"requested_by": key_id}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"reason": "x" * 501}, "reason"),
        ({"reason": 42}, "reason"),
        ({"reason": "line one\u0000"}, "reason"),
        ({"why": "unknown field"}, "why"),
        (["not", "an", "object"], "body"),
    ],
)
@pytest.mark.parametrize("action", ["retry", "cancel"])
def test_a_bad_reason_is_a_400_naming_the_field(api, plan, key_and_id, action, body, field):
    key, _ = key_and_id
    status = WorkflowStatus.FAILED if action == "retry" else WorkflowStatus.RUNNING
    workflow_id = seed_workflow("acme", status, plan_id=plan.id)
    before = snapshot(workflow_id)

    response = api.post(f"{WORKFLOWS}/{workflow_id}/{action}", json=body, headers=auth(key))

    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "validation_error"
    assert field in error["details"]
    assert snapshot(workflow_id) == before


def test_a_reason_of_500_characters_is_accepted(api, plan, key_and_id):
    key, _ = key_and_id
    workflow_id = _failed_workflow(plan.id)

    response = api.post(
        f"{WORKFLOWS}/{workflow_id}/retry", json={"reason": "é" * 500}, headers=auth(key)
    )

    assert response.status_code == 202
    (event,) = events(workflow_id, ["retry_requested"])
    assert event.details["reason"] == "é" * 500


def test_a_body_that_is_not_json_is_refused(api, plan, key_and_id):
    key, _ = key_and_id
    workflow_id = _failed_workflow(plan.id)

    malformed = api.post(
        f"{WORKFLOWS}/{workflow_id}/retry",
        data="{not json",
        headers=auth(key, **{"Content-Type": "application/json"}),
    )
    form = api.post(f"{WORKFLOWS}/{workflow_id}/retry", data={"reason": "x"}, headers=auth(key))

    assert (malformed.status_code, form.status_code) == (400, 415)
    assert events(workflow_id, ["retry_requested"]) == []
