"""The sweeper finds what a lost message or a dead worker left behind, without a person."""

from __future__ import annotations

from datetime import timedelta

from celery import chain
from sqlalchemy import update

from orchestrator import engine, faults
from orchestrator.db import transaction
from orchestrator.models import Workflow
from tests.support.requests import provision_body, submit_lost
from tests.support.workflows import events, our_rows, steps, wait_terminal


def test_a_lost_first_message_is_redriven(worker, tenant, plan):
    workflow_id = submit_lost(tenant, provision_body(plan.id))

    assert wait_terminal(workflow_id, timeout=30).value == "completed"
    assert events(workflow_id, ["sweeper_redrive"])


def test_a_lost_on_error_link_still_rolls_back(worker, celery_app, tenant, plan):
    # Given a chain whose on-error link never fires (as if its worker died publishing it)
    body = provision_body(plan.id)
    faults.arm("create_subscriber", ["permanent"], username=body["username"])
    workflow_id = submit_lost(tenant, body)
    args = str(workflow_id)
    chain(
        celery_app.signature("tasks.database.create_customer", (args, "create_customer")),
        celery_app.signature("tasks.database.create_subscriber", (args, "create_subscriber")),
    ).apply_async()

    # Then the sweeper sees the failed step and compensates what the first one did
    assert wait_terminal(workflow_id, timeout=30).value == "rolled_back"
    assert steps(workflow_id)["create_customer"].status.value == "compensated"
    assert our_rows(workflow_id)["customers"] == 0


def test_a_workflow_past_its_deadline_is_compensated(worker, tenant, plan):
    workflow_id = submit_lost(tenant, provision_body(plan.id))
    with transaction() as session:
        session.execute(
            update(Workflow)
            .where(Workflow.id == workflow_id)
            .values(deadline_at=engine.utcnow() - timedelta(seconds=1))
        )

    assert wait_terminal(workflow_id, timeout=30).value == "rolled_back"
    detail = [e.message for e in events(workflow_id, ["workflow_status"])]
    assert "deadline exceeded" in detail


def test_a_chain_error_without_a_failed_step_does_not_roll_back(worker, celery_app, tenant, plan):
    # Given a workflow whose chain broke around a task (no step failed, no cancel)
    workflow_id = submit_lost(tenant, provision_body(plan.id))

    # When the on-error link fires anyway
    celery_app.signature("tasks.saga.on_step_failed", (str(workflow_id),)).apply_async()

    # Then nothing is undone: the sweeper re-drives it to completion instead
    assert wait_terminal(workflow_id, timeout=30).value == "completed"
    assert not events(workflow_id, ["compensation_started"])
