"""Failures roll a provisioning back: nothing of it is left in our tables or in FreeRADIUS."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from orchestrator import faults
from orchestrator.config import get_settings
from orchestrator.db import transaction
from orchestrator.integrations.radius import RadiusStore
from orchestrator.models import Workflow
from orchestrator.workflows.provision_subscriber import DEFINITION as PROVISION_SUBSCRIBER
from tests.support.radius_client import authenticate
from tests.support.requests import provision_body, submit, submit_lost, unique_cpe_serial
from tests.support.workflows import (
    assert_undone_in_reverse_dependency_order,
    events,
    our_rows,
    steps,
    wait_terminal,
)

STEP_NAMES = [step.name for step in PROVISION_SUBSCRIBER.steps]
#: The session's plan has no IPv6 pool, so its prefix step is skipped here; its failures and
#: their rollback are tested in tests/network/test_dual_stack.py.
FAILING_STEPS = [name for name in STEP_NAMES if name != "allocate_ipv6_prefix"]
NO_RADIUS_ROWS = {"radcheck": 0, "radreply": 0, "radusergroup": 0}
NO_ROWS = {"customers": 0, "subscribers": 0, "billing_services": 0}


def radius_rows(username: str) -> dict[str, int]:
    return RadiusStore.from_settings(get_settings()).account_rows(username)


@pytest.mark.parametrize("failing_step", FAILING_STEPS)
def test_permanent_failure_at_each_step_rolls_everything_back(
    failing_step, client, worker, plan, operator_key, radius_server
):
    # Given a permanent failure waiting at one step while its siblings (the other steps of its
    # stage) are slow, so they are still in flight when it fails; a request that runs them all
    body = provision_body(plan.id, cpe_serial=unique_cpe_serial())
    faults.arm(failing_step, ["permanent"], username=body["username"])
    stage = PROVISION_SUBSCRIBER.stage(failing_step)
    siblings = [s for s in PROVISION_SUBSCRIBER.stages()[stage] if s != failing_step]
    for sibling in siblings:
        faults.arm(sibling, ["slow"], username=body["username"])
    # ... and the failing step a little late, so siblings have started when it fails
    faults.set_delays({failing_step: 0.3})

    # When the subscriber is provisioned
    workflow_id, _ = submit(client, operator_key, body)

    # Then the workflow is rolled back and nothing of it is left anywhere
    assert wait_terminal(workflow_id).value == "rolled_back"
    assert our_rows(workflow_id) == NO_ROWS
    assert radius_rows(body["username"]) == NO_RADIUS_ROWS
    host, port = radius_server
    assert not authenticate(body["username"], body["password"], host=host, port=port).accepted

    # And every step that started was undone, each only after its own attempt ended and after
    # everything built on it was undone; the steps that never started were left alone
    rows = steps(workflow_id)
    assert rows[failing_step].error["message"] == "injected permanent failure"
    undone = assert_undone_in_reverse_dependency_order(workflow_id)
    started = {name for name, row in rows.items() if row.attempts > 0}
    assert failing_step in started
    assert not siblings or started & set(siblings), "no sibling was in flight"
    assert set(undone) == started
    assert all(rows[name].status.value == "compensated" for name in started)
    assert all(
        rows[name].status.value in ("pending", "skipped") for name in set(STEP_NAMES) - started
    )


def test_effect_without_bookkeeping_is_compensated(
    client, worker, plan, operator_key, radius_server
):
    # Given a worker that dies right after creating the RADIUS account, before recording it,
    # and a redelivered attempt that then fails for good
    body = provision_body(plan.id)
    faults.arm(
        "create_radius_account", ["crash_after_effect", "permanent"], username=body["username"]
    )

    workflow_id, _ = submit(client, operator_key, body)

    # Then the account the dead attempt created is found through the recorded intent and removed
    assert wait_terminal(workflow_id).value == "rolled_back"
    radius_step = steps(workflow_id)["create_radius_account"]
    assert radius_step.attempts == 2
    assert radius_step.intent["username"] == body["username"]
    assert radius_step.status.value == "compensated"
    assert radius_rows(body["username"]) == NO_RADIUS_ROWS
    assert our_rows(workflow_id) == NO_ROWS
    host, port = radius_server
    assert not authenticate(body["username"], body["password"], host=host, port=port).accepted


def test_failed_compensation_leaves_workflow_failed_then_retry_finishes(
    client, worker, plan, operator_key, radius_server
):
    # Given the last step fails and the RADIUS account cannot be deleted
    body = provision_body(plan.id)
    faults.arm("create_billing_service", ["permanent"], username=body["username"])
    faults.arm("create_radius_account", ["permanent"], compensation=True, username=body["username"])

    workflow_id, _ = submit(client, operator_key, body)

    # Then the other compensations still ran and the workflow names what is left
    assert wait_terminal(workflow_id).value == "failed"
    rows = steps(workflow_id)
    assert rows["create_radius_account"].status.value == "compensation_failed"
    assert rows["create_subscriber"].status.value == "compensated"
    assert rows["create_customer"].status.value == "compensated"
    assert our_rows(workflow_id) == NO_ROWS
    assert radius_rows(body["username"])["radcheck"] == 1
    auth = {"Authorization": f"Bearer {operator_key}"}
    detail = client.get(f"/api/v1/orchestration/workflows/{workflow_id}", headers=auth).get_json()
    assert [left["step"] for left in detail["error"]["left_behind"]] == ["create_radius_account"]
    assert detail["error"]["left_behind"][0]["system"] == "radius"

    # When the cause is gone and an operator retries
    response = client.post(f"/api/v1/orchestration/workflows/{workflow_id}/retry", headers=auth)
    assert response.status_code == 202

    # Then the rollback finishes, and nothing is reported as left behind any more
    assert wait_terminal(workflow_id).value == "rolled_back"
    assert radius_rows(body["username"]) == NO_RADIUS_ROWS
    assert steps(workflow_id)["create_radius_account"].status.value == "compensated"
    detail = client.get(f"/api/v1/orchestration/workflows/{workflow_id}", headers=auth).get_json()
    assert "left_behind" not in (detail["error"] or {})


def test_transient_errors_are_retried_with_backoff(client, worker, plan, operator_key):
    body = provision_body(plan.id)
    faults.arm("create_radius_account", ["transient", "transient"], username=body["username"])

    workflow_id, _ = submit(client, operator_key, body)

    assert wait_terminal(workflow_id).value == "completed"
    assert steps(workflow_id)["create_radius_account"].attempts == 3
    retries = events(workflow_id, ["step_retry_scheduled"])
    assert [e.attempt for e in retries] == [1, 2]
    assert all(e.details["retry_in_seconds"] > 0 for e in retries)
    assert all(e.details["error"]["type"] == "TransientError" for e in retries)
    assert radius_rows(body["username"])["radcheck"] == 1


def test_retry_after_effect_creates_one_account(client, worker, plan, operator_key):
    # The first attempt creates the account and then loses the answer; the retry adopts it.
    body = provision_body(plan.id)
    faults.arm("create_radius_account", ["transient_after_effect"], username=body["username"])

    workflow_id, _ = submit(client, operator_key, body)

    assert wait_terminal(workflow_id).value == "completed"
    radius_step = steps(workflow_id)["create_radius_account"]
    assert radius_step.attempts == 2
    assert radius_step.output["created"] is False
    assert radius_rows(body["username"]) == {"radcheck": 1, "radreply": 1, "radusergroup": 1}


def test_a_step_that_keeps_killing_its_worker_is_stopped_at_its_attempt_limit(
    client, worker, plan, operator_key, radius_server
):
    # Given a step whose every attempt kills the worker process after acting
    attempts = PROVISION_SUBSCRIBER.step("create_radius_account").max_attempts
    body = provision_body(plan.id)
    faults.arm(
        "create_radius_account", ["crash_after_effect"] * (attempts + 2), username=body["username"]
    )

    workflow_id, _ = submit(client, operator_key, body)

    # Then it is given up after its attempts, and what the attempts made is undone
    assert wait_terminal(workflow_id, timeout=120).value == "rolled_back"
    radius_step = steps(workflow_id)["create_radius_account"]
    assert radius_step.attempts == attempts
    assert "no attempts left" in radius_step.error["message"]
    assert radius_rows(body["username"]) == NO_RADIUS_ROWS


def test_secrets_that_cannot_be_opened_fail_the_step_and_roll_back(
    client, worker, tenant, plan, radius_server
):
    # Given a workflow whose sealed password is unreadable (say, a key rotated badly)
    workflow_id = submit_lost(tenant, provision_body(plan.id))
    with transaction() as session:
        session.execute(
            update(Workflow).where(Workflow.id == workflow_id).values(secrets=b"not-a-token")
        )

    # Then the step that needs it fails clearly and the rollback (which needs no secret) runs
    assert wait_terminal(workflow_id, timeout=30).value == "rolled_back"
    error = steps(workflow_id)["create_radius_account"].error
    assert error["type"] == "VaultError"
    assert our_rows(workflow_id) == NO_ROWS
