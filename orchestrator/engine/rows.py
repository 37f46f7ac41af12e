"""Row access: creating, locking and finding workflows, and the clocks they are judged by.

A workflow's row lock (``FOR UPDATE``) guards its steps as well: every change to a step is made
holding it, so two deliveries of the same message, or two sibling steps of one stage, serialise
instead of racing, and the steps need no lock of their own (one statement fewer per decision).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, exists, func, select
from sqlalchemy.orm import Session

from orchestrator import metrics
from orchestrator.definitions import WorkflowDefinition, registry
from orchestrator.engine.events import EventKind, record_event
from orchestrator.models import (
    ResourceClaim,
    StepStatus,
    Workflow,
    WorkflowStatus,
    WorkflowStep,
)


def utcnow() -> datetime:
    return datetime.now(UTC)


def db_now(session: Session) -> datetime:
    """The database's time. Leases and staleness are stamped and judged by this one clock, so
    workers on hosts whose clocks drift apart still agree on when a lease has run out."""
    return session.scalars(select(func.clock_timestamp())).one()


def definition_of(workflow: Workflow) -> WorkflowDefinition:
    """The definition the workflow started on (not necessarily the latest)."""
    return registry.get(workflow.workflow_type, workflow.definition_version)


def new_workflow(
    session: Session,
    definition: WorkflowDefinition,
    *,
    tenant_id: str,
    input_data: dict[str, Any],
    sealed_secrets: bytes | None,
    deadline: timedelta,
    claims: Iterable[tuple[str, str]] = (),
    subscriber_id: uuid.UUID | None = None,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
    api_key_id: uuid.UUID | None = None,
    bulk_job_id: uuid.UUID | None = None,
    traceparent: str | None = None,
) -> Workflow:
    workflow = Workflow(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        workflow_type=definition.name,
        definition_version=definition.version,
        status=WorkflowStatus.PENDING,
        run=1,
        subscriber_id=subscriber_id,
        input=input_data,
        context={},
        output={},
        secrets=sealed_secrets,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        api_key_id=api_key_id,
        bulk_job_id=bulk_job_id,
        deadline_at=utcnow() + deadline,
        traceparent=traceparent,
    )
    workflow.steps = [
        WorkflowStep(
            position=index,
            name=step.name,
            system=step.system,
            status=StepStatus.PENDING,
            attempts=0,
            compensation_attempts=0,
        )
        for index, step in enumerate(definition.steps)
    ]
    session.add(workflow)
    session.flush()
    add_claims(session, workflow, claims)
    metrics.note(session, metrics.WORKFLOWS_STARTED.labels(definition.name).inc)
    record_event(
        session,
        workflow,
        EventKind.WORKFLOW_CREATED,
        to_status=WorkflowStatus.PENDING.value,
        # From the timeline to the trace: every event of the workflow belongs to this one.
        details={"trace_id": workflow.trace_id} if workflow.trace_id else None,
    )
    return workflow


def add_claims(session: Session, workflow: Workflow, claims: Iterable[tuple[str, str]]) -> None:
    """Hold unique resources (a username, a serial, a subscriber) for the workflow's life.

    A second workflow claiming the same one fails at the flush with ``pk_resource_claims``.
    """
    session.add_all(
        ResourceClaim(kind=kind, value=value, workflow_id=workflow.id) for kind, value in claims
    )
    session.flush()


def release_claims(session: Session, workflow: Workflow) -> None:
    session.execute(delete(ResourceClaim).where(ResourceClaim.workflow_id == workflow.id))


def lock_workflow(session: Session, workflow_id: uuid.UUID) -> Workflow | None:
    """The workflow with its steps, locked: whoever holds this may change any of them."""
    return session.scalar(
        select(Workflow)
        .where(Workflow.id == workflow_id)
        .with_for_update()
        # The rows as they are now that we hold the lock, not as an earlier load saw them (the
        # option reaches the steps' selectin load too). The steps come in a statement of their
        # own on purpose: joined to this one, they would be read from its snapshot, taken
        # before any wait for the lock (READ COMMITTED re-reads only the locked row), and the
        # second of two siblings finishing together would not see the first one's completion.
        .execution_options(populate_existing=True)
    )


def step_of(workflow: Workflow, name: str) -> WorkflowStep:
    """One of a locked workflow's steps (loaded with it)."""
    for step in workflow.steps:
        if step.name == name:
            return step
    raise LookupError(f"workflow {workflow.id} has no step {name!r}")


def stalled_workflows(
    session: Session,
    now: datetime,
    stall_seconds: float,
    limit: int = 100,
    *,
    lost_after: float | None = None,
) -> list[Workflow]:
    """Active workflows quiet for ``stall_seconds`` (the time a published message may take to
    be picked up) in which a step was lost: one still running (or undoing) whose lease ran
    out, so its attempt is dead, whatever its siblings are doing; or, with nothing running and
    no retry to come, whatever was to run next (a publish lost between commit and publish).

    ``lost_after`` (default ``stall_seconds``) is how quiet a workflow with nothing running
    must be before its next message counts as lost: longer while the broker holds a backlog,
    where a message may simply be waiting its turn (re-driving it would only add copies, each
    behind the last, and make the backlog worse).

    SKIP LOCKED lets several sweepers (one per beat host) share the work without waiting.
    """
    lost_after = stall_seconds if lost_after is None else max(lost_after, stall_seconds)
    live_lease = exists().where(
        WorkflowStep.workflow_id == Workflow.id, WorkflowStep.lease_expires_at > now
    )
    dead_attempt = exists().where(
        WorkflowStep.workflow_id == Workflow.id,
        WorkflowStep.status.in_((StepStatus.RUNNING, StepStatus.COMPENSATING)),
        WorkflowStep.lease_expires_at <= now,
    )
    retry_to_come = exists().where(
        WorkflowStep.workflow_id == Workflow.id,
        WorkflowStep.retry_due_at > now - timedelta(seconds=stall_seconds),
    )
    return list(
        session.scalars(
            select(Workflow)
            .where(
                Workflow.status.in_(WorkflowStatus.active()),
                Workflow.updated_at < now - timedelta(seconds=stall_seconds),
                dead_attempt
                | (
                    ~live_lease
                    & ~retry_to_come
                    & (Workflow.updated_at < now - timedelta(seconds=lost_after))
                ),
            )
            .order_by(Workflow.updated_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
