"""Waiting for workflows and reading what they left, straight from PostgreSQL."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable

from sqlalchemy import func, select

from orchestrator.db import transaction
from orchestrator.models import (
    BillingService,
    Customer,
    Subscriber,
    Workflow,
    WorkflowEvent,
    WorkflowStatus,
    WorkflowStep,
)

POLL_SECONDS = 0.05


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` (a database read) until it holds; fail with ``what`` after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(POLL_SECONDS)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def workflow_status(workflow_id: uuid.UUID) -> WorkflowStatus:
    with transaction() as session:
        return session.scalars(select(Workflow.status).where(Workflow.id == workflow_id)).one()


def wait_terminal(workflow_id: uuid.UUID, timeout: float = 60.0) -> WorkflowStatus:
    wait_until(
        lambda: workflow_status(workflow_id) in WorkflowStatus.terminal(),
        timeout,
        f"workflow {workflow_id} to finish",
    )
    return workflow_status(workflow_id)


def steps(workflow_id: uuid.UUID) -> dict[str, WorkflowStep]:
    with transaction() as session:
        rows = session.scalars(
            select(WorkflowStep).where(WorkflowStep.workflow_id == workflow_id)
        ).all()
        return {row.name: row for row in rows}


def events(workflow_id: uuid.UUID, kinds: Iterable[str] | None = None) -> list[WorkflowEvent]:
    with transaction() as session:
        query = select(WorkflowEvent).where(WorkflowEvent.workflow_id == workflow_id)
        if kinds is not None:
            query = query.where(WorkflowEvent.kind.in_(list(kinds)))
        return list(session.scalars(query.order_by(WorkflowEvent.id)))


def step_running(workflow_id: uuid.UUID, step_name: str) -> bool:
    row = steps(workflow_id)[step_name]
    return row.status.value == "running"


def our_rows(workflow_id: uuid.UUID) -> dict[str, int]:
    """How many rows of ours (customer, subscriber, billing) the workflow left."""
    with transaction() as session:
        return {
            "customers": session.scalar(
                select(func.count()).where(Customer.created_by_workflow_id == workflow_id)
            ),
            "subscribers": session.scalar(
                select(func.count()).where(Subscriber.workflow_id == workflow_id)
            ),
            "billing_services": session.scalar(
                select(func.count()).where(BillingService.workflow_id == workflow_id)
            ),
        }


FORWARD_ENDS = ("step_completed", "step_failed", "step_settled_during_rollback")
UNDO_ENDS = ("compensation_completed", "compensation_failed")


def assert_undone_in_reverse_dependency_order(workflow_id: uuid.UUID) -> list[str]:
    """Check, from the event log, that every undo started only after its own forward attempt
    ended and after everything built on its step was undone. Returns the steps undone, in the
    order their undo finished."""
    from orchestrator.engine import definition_of
    from orchestrator.engine.planning import all_dependents

    with transaction() as session:
        workflow = session.get(Workflow, workflow_id)
        definition = definition_of(workflow)
    log = events(workflow_id)
    run = max(e.run for e in log)
    log = [e for e in log if e.run == run]

    def ids(step: str, kinds: Iterable[str]) -> list[int]:
        return [e.id for e in log if e.step_name == step and e.kind in kinds]

    undone = [e.step_name for e in log if e.kind in UNDO_ENDS]
    for step in undone:
        started = min(ids(step, ["compensation_started"]))
        assert max(ids(step, FORWARD_ENDS), default=0) < started, (
            f"{step} was undone while its forward attempt could still act"
        )
        for dependent in all_dependents(definition, step):
            ended = ids(dependent, UNDO_ENDS)
            assert not ended or max(ended) < started, (
                f"{step} was undone before {dependent}, which is built on it"
            )
    return undone
