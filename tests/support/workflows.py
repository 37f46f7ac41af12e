"""Waiting for workflows and reading what they left, straight from PostgreSQL."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable

from sqlalchemy import func, select

from orchestrator.db import transaction
from orchestrator.models import (
    TERMINAL_WORKFLOW_STATUSES,
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
        lambda: workflow_status(workflow_id) in TERMINAL_WORKFLOW_STATUSES,
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
