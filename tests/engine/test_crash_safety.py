"""Crashes and duplicate deliveries: the workflow still ends terminal with one of everything."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from orchestrator import faults
from orchestrator.config import get_settings
from orchestrator.db import transaction
from orchestrator.integrations.radius import RadiusStore
from orchestrator.models import WorkflowEvent
from tests.support.radius_client import authenticate
from tests.support.requests import provision_body, submit
from tests.support.workflows import (
    assert_undone_in_reverse_dependency_order,
    events,
    our_rows,
    step_running,
    steps,
    wait_terminal,
    wait_until,
)

pytestmark = pytest.mark.slow


def test_worker_killed_mid_step_recovers_without_a_person(
    client, worker, plan, operator_key, radius_server
):
    # Given a step that is in flight on a worker
    body = provision_body(plan.id)
    faults.arm("create_radius_account", ["hang"], username=body["username"])
    workflow_id, _ = submit(client, operator_key, body)
    wait_until(lambda: step_running(workflow_id, "create_radius_account"), 30, "the step to run")

    # When the whole worker is killed with SIGKILL and a new one starts
    worker.kill()
    worker.start()

    # Then the sweeper re-drives the stalled step and the workflow completes, once
    assert wait_terminal(workflow_id, timeout=90).value == "completed"
    assert events(workflow_id, ["sweeper_redrive"])
    assert steps(workflow_id)["create_radius_account"].attempts == 2
    assert our_rows(workflow_id) == {"customers": 1, "subscribers": 1, "billing_services": 1}
    rows = RadiusStore.from_settings(get_settings()).account_rows(body["username"])
    assert rows == {"radcheck": 1, "radreply": 1, "radusergroup": 1}
    host, port = radius_server
    assert authenticate(body["username"], body["password"], host=host, port=port).accepted


def test_same_step_delivered_twice_creates_one_account(
    client, worker, celery_app, plan, operator_key
):
    # Given a step whose first copy is still running
    body = provision_body(plan.id)
    faults.arm("create_radius_account", ["slow"], username=body["username"])
    workflow_id, _ = submit(client, operator_key, body)
    wait_until(lambda: step_running(workflow_id, "create_radius_account"), 30, "the step to run")

    # When a second copy of the same message arrives (as after a redelivery)
    celery_app.signature(
        "tasks.radius.create_account", args=(str(workflow_id), "create_radius_account")
    ).apply_async()

    # Then the copy steps aside at the lease, and one account exists
    wait_until(
        lambda: bool(events(workflow_id, ["delivery_stepped_aside"])), 30, "the copy to step aside"
    )
    assert wait_terminal(workflow_id).value == "completed"
    assert steps(workflow_id)["create_radius_account"].attempts == 1
    rows = RadiusStore.from_settings(get_settings()).account_rows(body["username"])
    assert rows["radcheck"] == 1

    # And copies of every step delivered after completion change nothing
    for name in ("create_customer", "create_subscriber", "create_radius_account"):
        task = {
            "create_customer": "tasks.database.create_customer",
            "create_subscriber": "tasks.database.create_subscriber",
            "create_radius_account": "tasks.radius.create_account",
        }[name]
        celery_app.signature(task, args=(str(workflow_id), name)).apply_async()
    wait_until(
        lambda: len(events(workflow_id, ["delivery_stepped_aside"])) == 4, 30, "three more copies"
    )
    assert our_rows(workflow_id) == {"customers": 1, "subscribers": 1, "billing_services": 1}
    assert all(s.attempts == 1 for s in steps(workflow_id).values() if s.status.value != "skipped")


def test_a_stale_message_for_a_later_step_waits_its_turn(
    client, worker, celery_app, plan, operator_key
):
    # Given a workflow busy with its RADIUS step
    body = provision_body(plan.id)
    faults.arm("create_radius_account", ["slow"], username=body["username"])
    workflow_id, _ = submit(client, operator_key, body)
    wait_until(lambda: step_running(workflow_id, "create_radius_account"), 30, "the step to run")

    # When a copy of a later step (a local one) arrives early (say, redelivered from an earlier
    # run)
    celery_app.signature(
        "tasks.database.create_billing_service", args=(str(workflow_id), "create_billing_service")
    ).apply_async()

    # Then it steps aside, and the workflow runs in dependency order and completes
    wait_until(
        lambda: any(
            "out of order" in (e.message or "")
            for e in events(workflow_id, ["delivery_stepped_aside"])
        ),
        30,
        "the early copy to step aside",
    )
    assert wait_terminal(workflow_id).value == "completed"
    assert steps(workflow_id)["create_billing_service"].attempts == 1


def test_worker_killed_inside_a_parallel_stage_recovers_without_a_person(
    client, worker, plan, operator_key, radius_server
):
    # Given a stage-0 step in flight while its siblings have finished
    body = provision_body(plan.id)
    faults.arm("activate_onu", ["hang"], username=body["username"])
    workflow_id, _ = submit(client, operator_key, body)
    wait_until(
        lambda: (
            step_running(workflow_id, "activate_onu")
            and steps(workflow_id)["assign_framed_ip"].status.value == "completed"
        ),
        30,
        "the siblings to finish around the hanging step",
    )

    # When the whole worker is SIGKILLed and a new one starts
    worker.kill()
    worker.start()

    # Then the lost step is re-driven and the workflow completes, with one of everything
    assert wait_terminal(workflow_id, timeout=90).value == "completed"
    assert steps(workflow_id)["activate_onu"].attempts == 2
    others = [s for n, s in steps(workflow_id).items() if n != "activate_onu"]
    assert all(s.attempts == 1 for s in others if s.status.value == "completed")
    rows = RadiusStore.from_settings(get_settings()).account_rows(body["username"])
    assert rows == {"radcheck": 1, "radreply": 1, "radusergroup": 1}
    host, port = radius_server
    assert authenticate(body["username"], body["password"], host=host, port=port).accepted


def test_worker_killed_while_a_sibling_rolls_back_leaves_nothing(
    client, worker, plan, operator_key, radius_server
):
    # Given a step that fails for good while a sibling of its stage is still in flight
    body = provision_body(plan.id)
    faults.arm("activate_onu", ["hang"], username=body["username"])
    faults.arm("allocate_ip", ["permanent"], username=body["username"])
    workflow_id, _ = submit(client, operator_key, body)
    wait_until(
        lambda: (
            step_running(workflow_id, "activate_onu")
            and steps(workflow_id)["allocate_ip"].status.value == "compensated"
        ),
        30,
        "the rollback to wait for the sibling in flight",
    )

    # When the worker holding that sibling is SIGKILLed and a new one starts
    worker.kill()
    worker.start()

    # Then the sibling is undone once its lease is gone, and nothing is left anywhere
    assert wait_terminal(workflow_id, timeout=90).value == "rolled_back"
    assert steps(workflow_id)["activate_onu"].status.value == "compensated"
    assert_undone_in_reverse_dependency_order(workflow_id)
    assert our_rows(workflow_id) == {"customers": 0, "subscribers": 0, "billing_services": 0}
    rows = RadiusStore.from_settings(get_settings()).account_rows(body["username"])
    assert rows == {"radcheck": 0, "radreply": 0, "radusergroup": 0}


def test_a_local_step_is_one_transaction_with_its_claim(client, worker, plan, operator_key):
    # Given a provisioning (its database steps are local; its RADIUS step calls a system)
    body = provision_body(plan.id)
    workflow_id, _ = submit(client, operator_key, body)

    # When it completes
    assert wait_terminal(workflow_id).value == "completed"

    # Then each local step's start and completion were written by one transaction (one xmin):
    # there is nothing to commit before the effect when the effect is our own database
    def writers(step_name: str) -> set[int]:
        with transaction() as session:
            return set(
                session.scalars(
                    select(text("xmin::text::bigint"))
                    .select_from(WorkflowEvent)
                    .where(
                        WorkflowEvent.workflow_id == workflow_id,
                        WorkflowEvent.step_name == step_name,
                    )
                )
            )

    for local in ("create_customer", "create_subscriber", "create_billing_service"):
        assert len(writers(local)) == 1, local
    # while a step that calls a system commits its intent and lease before the call
    assert len(writers("create_radius_account")) == 2


def test_a_crash_inside_a_local_step_leaves_no_trace_of_the_attempt(
    client, worker, plan, operator_key
):
    # Given a local step whose worker dies right after its effect, before anything commits
    body = provision_body(plan.id)
    faults.arm("create_customer", ["crash_after_effect"], username=body["username"])

    # When the subscriber is provisioned
    workflow_id, _ = submit(client, operator_key, body)

    # Then the redelivered message runs the step as if for the first time: one customer, one
    # attempt, no lease to wait out or take over
    assert wait_terminal(workflow_id).value == "completed"
    assert our_rows(workflow_id) == {"customers": 1, "subscribers": 1, "billing_services": 1}
    assert steps(workflow_id)["create_customer"].attempts == 1
    kinds = [e.kind for e in events(workflow_id) if e.step_name == "create_customer"]
    assert kinds == ["step_started", "step_completed"]
