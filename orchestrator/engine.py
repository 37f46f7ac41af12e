"""State transitions of workflows and steps, and compensation planning.

Every function takes the caller's session and never commits: the task layer owns the
transaction. Every transition appends a :class:`WorkflowEvent`, so the event log is the
complete timeline an operator reads. Rows are locked ``FOR UPDATE`` in one order (workflow,
then step), so two deliveries of the same message serialise instead of racing.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, exists, func, select
from sqlalchemy.orm import Session

from orchestrator.definitions import StepDefinition, WorkflowDefinition, registry
from orchestrator.models import (
    ResourceClaim,
    StepStatus,
    Workflow,
    WorkflowEvent,
    WorkflowStatus,
    WorkflowStep,
)

FORWARD_WORKFLOW_STATUSES = (WorkflowStatus.PENDING, WorkflowStatus.RUNNING)
ACTIVE_WORKFLOW_STATUSES = (
    WorkflowStatus.PENDING,
    WorkflowStatus.RUNNING,
    WorkflowStatus.ROLLING_BACK,
)


def utcnow() -> datetime:
    return datetime.now(UTC)


def db_now(session: Session) -> datetime:
    """The database's time. Leases and staleness are stamped and judged by this one clock, so
    workers on hosts whose clocks drift apart still agree on when a lease has run out."""
    return session.scalars(select(func.clock_timestamp())).one()


def record_event(
    session: Session,
    workflow: Workflow,
    kind: str,
    *,
    step: WorkflowStep | None = None,
    from_status: str | None = None,
    to_status: str | None = None,
    attempt: int | None = None,
    message: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    session.add(
        WorkflowEvent(
            workflow_id=workflow.id,
            tenant_id=workflow.tenant_id,
            run=workflow.run,
            step_name=step.name if step else None,
            kind=kind,
            from_status=from_status,
            to_status=to_status,
            attempt=attempt,
            message=message,
            details=details,
        )
    )
    # Every transition is also a heartbeat: the sweeper judges staleness by updated_at. The
    # database's clock, like every time a lease or a staleness is judged by (see db_now).
    workflow.updated_at = func.clock_timestamp()


def set_workflow_status(
    session: Session, workflow: Workflow, status: WorkflowStatus, *, message: str | None = None
) -> None:
    previous = workflow.status
    if previous == status:
        return
    workflow.status = status
    if status == WorkflowStatus.RUNNING and workflow.started_at is None:
        workflow.started_at = utcnow()
    if status.is_terminal:
        workflow.finished_at = utcnow()
    record_event(
        session,
        workflow,
        "workflow_status",
        from_status=previous.value,
        to_status=status.value,
        message=message,
    )


def set_step_status(
    session: Session,
    workflow: Workflow,
    step: WorkflowStep,
    status: StepStatus,
    *,
    kind: str = "step_status",
    attempt: int | None = None,
    message: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    previous = step.status
    step.status = status
    record_event(
        session,
        workflow,
        kind,
        step=step,
        from_status=previous.value,
        to_status=status.value,
        attempt=attempt,
        message=message,
        details=details,
    )


def definition_of(workflow: Workflow) -> WorkflowDefinition:
    definition = registry.get(workflow.workflow_type)
    if definition.version != workflow.definition_version:
        # A later deploy changed the definition; the rows still describe the old one.
        raise RuntimeError(
            f"workflow {workflow.id} uses {workflow.workflow_type} v{workflow.definition_version},"
            f" this code knows v{definition.version}"
        )
    return definition


def new_workflow(
    session: Session,
    definition: WorkflowDefinition,
    *,
    tenant_id: str,
    input_data: dict[str, Any],
    sealed_secrets: bytes | None,
    deadline: timedelta,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
    api_key_id: uuid.UUID | None = None,
) -> Workflow:
    workflow = Workflow(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        workflow_type=definition.name,
        definition_version=definition.version,
        status=WorkflowStatus.PENDING,
        run=1,
        input=input_data,
        context={},
        output={},
        secrets=sealed_secrets,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        api_key_id=api_key_id,
        deadline_at=utcnow() + deadline,
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
    record_event(session, workflow, "workflow_created", to_status=WorkflowStatus.PENDING.value)
    return workflow


def lock_workflow(session: Session, workflow_id: uuid.UUID) -> Workflow | None:
    return session.scalar(select(Workflow).where(Workflow.id == workflow_id).with_for_update())


def lock_step(session: Session, workflow_id: uuid.UUID, name: str) -> WorkflowStep:
    return session.scalars(
        select(WorkflowStep)
        .where(WorkflowStep.workflow_id == workflow_id, WorkflowStep.name == name)
        .with_for_update()
        # The row as it is now that we hold its lock, not as an earlier load saw it.
        .execution_options(populate_existing=True)
    ).one()


class Claim(enum.Enum):
    """What a delivered step message should do, decided under the row locks."""

    RUN = "run"  # this copy owns the attempt
    CONTINUE = "continue"  # already done (or skipped): let the chain go on
    STEP_ASIDE = "step_aside"  # another copy holds a live lease, or the workflow moved on
    FAIL = "fail"  # out of attempts or past the deadline: fail the step for good
    CANCEL = "cancel"  # an operator asked to cancel: stop at this boundary


@dataclass(frozen=True)
class Lease:
    owner: str
    seconds: float


def held_by_another(
    step: WorkflowStep, status: StepStatus, lease: Lease, now: datetime, *, holder_gone: bool
) -> bool:
    """Whether another living holder has the step leased in ``status``."""
    return (
        step.status == status
        and lease_is_live(step, now)
        and step.lease_owner != lease.owner
        and not holder_gone
    )


def release_lease(step: WorkflowStep) -> None:
    step.lease_owner = None
    step.lease_expires_at = None


def lease_is_live(step: WorkflowStep, now: datetime) -> bool:
    return step.lease_expires_at is not None and step.lease_expires_at > now


def decide_forward(
    workflow: Workflow,
    step: WorkflowStep,
    step_def: StepDefinition,
    lease: Lease,
    now: datetime,
    *,
    holder_gone: bool = False,
) -> tuple[Claim, str | None]:
    """``holder_gone``: the process holding the step's lease is known to be dead, so the lease
    counts as expired (every other check still applies: attempts, deadline, cancel)."""
    if workflow.status not in FORWARD_WORKFLOW_STATUSES:
        return Claim.STEP_ASIDE, f"workflow is {workflow.status.value}"
    if step.status in (StepStatus.COMPLETED, StepStatus.SKIPPED):
        return Claim.CONTINUE, None
    if step.status == StepStatus.FAILED:
        # Failed for good, yet the workflow still runs: the on-error link was lost.
        return Claim.FAIL, "the step had already failed"
    if step.status not in (StepStatus.PENDING, StepStatus.RUNNING):
        return Claim.STEP_ASIDE, f"step is {step.status.value}"
    unfinished = [
        s.name
        for s in workflow.steps
        if s.position < step.position and s.status not in (StepStatus.COMPLETED, StepStatus.SKIPPED)
    ]
    if unfinished:
        # A stale copy (an earlier run's redelivered message, a duplicate chain) must not run
        # a step before the ones it builds on.
        return Claim.STEP_ASIDE, f"out of order: {unfinished[0]} has not finished"
    if held_by_another(step, StepStatus.RUNNING, lease, now, holder_gone=holder_gone):
        return Claim.STEP_ASIDE, f"leased by {step.lease_owner}"
    if workflow.cancel_requested_at is not None:
        return Claim.CANCEL, "cancel requested"
    if workflow.deadline_at is not None and workflow.deadline_at < now:
        return Claim.FAIL, "workflow deadline exceeded"
    if step.attempts >= step_def.max_attempts:
        return Claim.FAIL, f"no attempts left ({step.attempts}/{step_def.max_attempts})"
    return Claim.RUN, None


def start_attempt(
    session: Session,
    workflow: Workflow,
    step: WorkflowStep,
    lease: Lease,
    now: datetime,
    intent: dict[str, Any] | None,
) -> None:
    if workflow.status == WorkflowStatus.PENDING:
        set_workflow_status(session, workflow, WorkflowStatus.RUNNING)
    step.attempts += 1
    step.lease_owner = lease.owner
    step.lease_expires_at = now + timedelta(seconds=lease.seconds)
    step.started_at = step.started_at or now
    step.error = None
    if step.intent is None and intent is not None:
        step.intent = intent
    set_step_status(
        session, workflow, step, StepStatus.RUNNING, kind="step_started", attempt=step.attempts
    )


def complete_step(
    session: Session,
    workflow: Workflow,
    step: WorkflowStep,
    *,
    output: dict[str, Any],
    compensation: dict[str, Any],
    context: dict[str, Any],
    workflow_output: dict[str, Any],
) -> None:
    step.output = output
    step.compensation = compensation
    step.finished_at = utcnow()
    release_lease(step)
    # JSON columns are replaced, never mutated in place (in-place changes are not tracked).
    if context:
        workflow.context = {**workflow.context, **context}
    if workflow_output:
        workflow.output = {**workflow.output, **workflow_output}
    set_step_status(
        session, workflow, step, StepStatus.COMPLETED, kind="step_completed", attempt=step.attempts
    )


def skip_step(session: Session, workflow: Workflow, step: WorkflowStep, reason: str) -> None:
    if workflow.status == WorkflowStatus.PENDING:
        set_workflow_status(session, workflow, WorkflowStatus.RUNNING)
    step.finished_at = utcnow()
    set_step_status(
        session, workflow, step, StepStatus.SKIPPED, kind="step_skipped", message=reason
    )


def schedule_retry(
    session: Session, workflow: Workflow, step: WorkflowStep, error: dict[str, Any], delay: float
) -> None:
    step.error = error
    release_lease(step)
    set_step_status(
        session,
        workflow,
        step,
        StepStatus.PENDING,
        kind="step_retry_scheduled",
        attempt=step.attempts,
        message=error.get("message"),
        details={"error": error, "retry_in_seconds": round(delay, 3)},
    )


def fail_step(
    session: Session, workflow: Workflow, step: WorkflowStep, error: dict[str, Any]
) -> None:
    step.error = error
    step.finished_at = utcnow()
    release_lease(step)
    set_step_status(
        session,
        workflow,
        step,
        StepStatus.FAILED,
        kind="step_failed",
        attempt=step.attempts,
        message=error.get("message"),
        details={"error": error},
    )


def all_steps_done(workflow: Workflow) -> bool:
    return all(s.status in (StepStatus.COMPLETED, StepStatus.SKIPPED) for s in workflow.steps)


def complete_workflow(session: Session, workflow: Workflow) -> None:
    set_workflow_status(session, workflow, WorkflowStatus.COMPLETED)
    release_claims(session, workflow)


def needs_compensation(step: WorkflowStep, step_def: StepDefinition) -> bool:
    if step_def.compensation is None:
        return False
    if step.status in (StepStatus.COMPENSATED, StepStatus.SKIPPED):
        return False
    if step.status == StepStatus.COMPLETED:
        return True
    # A step that ever started (or recorded its intent) may have acted even if it never
    # reported back: failed, timed out, waiting for a retry, or killed mid-call.
    return step.attempts > 0 or step.intent is not None


def compensation_plan(workflow: Workflow) -> list[WorkflowStep]:
    """Steps to undo, last first."""
    definition = definition_of(workflow)
    return [
        step
        for step in sorted(workflow.steps, key=lambda s: s.position, reverse=True)
        if needs_compensation(step, definition.step(step.name))
    ]


def begin_rollback(session: Session, workflow: Workflow, reason: str) -> bool:
    """Move a running workflow to rolling_back. False if another caller already did."""
    if workflow.status not in FORWARD_WORKFLOW_STATUSES:
        return False
    set_workflow_status(session, workflow, WorkflowStatus.ROLLING_BACK, message=reason)
    if workflow.error is None:
        workflow.error = {"message": reason}
    return True


def decide_compensation(
    workflow: Workflow,
    step: WorkflowStep,
    step_def: StepDefinition,
    lease: Lease,
    now: datetime,
    *,
    holder_gone: bool = False,
) -> tuple[Claim, str | None]:
    if workflow.status != WorkflowStatus.ROLLING_BACK:
        return Claim.STEP_ASIDE, f"workflow is {workflow.status.value}"
    if not needs_compensation(step, step_def):
        return Claim.CONTINUE, None
    later = [
        s.name
        for s in compensation_plan(workflow)
        if s.position > step.position and s.status != StepStatus.COMPENSATION_FAILED
    ]
    if later:
        # Undo runs last-first (billing before subscriber, or the foreign key refuses).
        return Claim.STEP_ASIDE, f"out of order: {later[0]} is not undone yet"
    if held_by_another(step, StepStatus.COMPENSATING, lease, now, holder_gone=holder_gone):
        return Claim.STEP_ASIDE, f"leased by {step.lease_owner}"
    if step.compensation_attempts >= step_def.compensation_max_attempts:
        return Claim.FAIL, (
            f"no compensation attempts left "
            f"({step.compensation_attempts}/{step_def.compensation_max_attempts})"
        )
    return Claim.RUN, None


def start_compensation(
    session: Session, workflow: Workflow, step: WorkflowStep, lease: Lease, now: datetime
) -> None:
    step.compensation_attempts += 1
    step.lease_owner = lease.owner
    step.lease_expires_at = now + timedelta(seconds=lease.seconds)
    set_step_status(
        session,
        workflow,
        step,
        StepStatus.COMPENSATING,
        kind="compensation_started",
        attempt=step.compensation_attempts,
    )


def finish_compensation(session: Session, workflow: Workflow, step: WorkflowStep) -> None:
    step.compensated_at = utcnow()
    release_lease(step)
    set_step_status(
        session,
        workflow,
        step,
        StepStatus.COMPENSATED,
        kind="compensation_completed",
        attempt=step.compensation_attempts,
    )


def schedule_compensation_retry(
    session: Session, workflow: Workflow, step: WorkflowStep, error: dict[str, Any], delay: float
) -> None:
    step.error = error
    release_lease(step)
    record_event(
        session,
        workflow,
        "compensation_retry_scheduled",
        step=step,
        attempt=step.compensation_attempts,
        message=error.get("message"),
        details={"error": error, "retry_in_seconds": round(delay, 3)},
    )


def fail_compensation(
    session: Session, workflow: Workflow, step: WorkflowStep, error: dict[str, Any]
) -> None:
    step.error = error
    release_lease(step)
    set_step_status(
        session,
        workflow,
        step,
        StepStatus.COMPENSATION_FAILED,
        kind="compensation_failed",
        attempt=step.compensation_attempts,
        message=error.get("message"),
        details={"error": error},
    )


def finalize_rollback(session: Session, workflow: Workflow) -> WorkflowStatus | None:
    """Settle a rolling-back workflow once its compensations have run. None if not applicable
    (not rolling back, or some undo has not run yet: a stale finalizer must not judge)."""
    if workflow.status != WorkflowStatus.ROLLING_BACK:
        return None
    leftovers = compensation_plan(workflow)
    if any(s.status != StepStatus.COMPENSATION_FAILED for s in leftovers):
        return None
    if leftovers:
        workflow.error = {
            **(workflow.error or {}),
            "left_behind": [
                {
                    "step": s.name,
                    "system": s.system,
                    "status": s.status.value,
                    "resource": s.compensation or s.intent,
                    "error": s.error,
                }
                for s in leftovers
            ],
        }
        set_workflow_status(
            session,
            workflow,
            WorkflowStatus.FAILED,
            message="compensation incomplete: "
            + ", ".join(f"{s.name} ({s.system})" for s in leftovers),
        )
        # Claims stay: the resources left behind still hold the username and serial.
        return WorkflowStatus.FAILED
    # Nothing is left behind any more (a retried rollback may have finished the job).
    workflow.error = {k: v for k, v in (workflow.error or {}).items() if k != "left_behind"}
    cancelled = workflow.cancel_requested_at is not None and not _a_step_failed(session, workflow)
    final = WorkflowStatus.COMPENSATED if cancelled else WorkflowStatus.ROLLED_BACK
    set_workflow_status(session, workflow, final)
    release_claims(session, workflow)
    return final


def _a_step_failed(session: Session, workflow: Workflow) -> bool:
    """Whether this run's rollback began with a step failing (not only with a cancel)."""
    return (
        session.scalar(
            select(
                exists().where(
                    WorkflowEvent.workflow_id == workflow.id,
                    WorkflowEvent.run == workflow.run,
                    WorkflowEvent.kind == "step_failed",
                )
            )
        )
        or False
    )


def release_claims(session: Session, workflow: Workflow) -> None:
    session.execute(delete(ResourceClaim).where(ResourceClaim.workflow_id == workflow.id))


def first_unfinished_step(workflow: Workflow) -> WorkflowStep | None:
    for step in workflow.steps:
        if step.status not in (StepStatus.COMPLETED, StepStatus.SKIPPED):
            return step
    return None


def stalled_workflows(session: Session, now: datetime, stall_seconds: float, limit: int = 100):
    """Active workflows with no live lease and no transition for ``stall_seconds``.

    SKIP LOCKED lets several sweepers (one per beat host) share the work without waiting.
    """
    live_lease = exists().where(
        WorkflowStep.workflow_id == Workflow.id, WorkflowStep.lease_expires_at > now
    )
    return session.scalars(
        select(Workflow)
        .where(
            Workflow.status.in_(ACTIVE_WORKFLOW_STATUSES),
            Workflow.updated_at < now - timedelta(seconds=stall_seconds),
            ~live_lease,
        )
        .order_by(Workflow.updated_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()


def request_cancel(session: Session, workflow: Workflow) -> None:
    if workflow.cancel_requested_at is None:
        workflow.cancel_requested_at = utcnow()
        record_event(session, workflow, "cancel_requested")


def start_new_run(session: Session, workflow: Workflow, deadline_seconds: float) -> None:
    """Reset a rolled-back workflow for another run; earlier runs stay in the event log."""
    workflow.run += 1
    workflow.error = None
    workflow.context = {}
    workflow.output = {}
    workflow.cancel_requested_at = None
    workflow.finished_at = None
    workflow.deadline_at = utcnow() + timedelta(seconds=deadline_seconds)
    for step in workflow.steps:
        step.status = StepStatus.PENDING
        step.attempts = 0
        step.compensation_attempts = 0
        step.intent = step.output = step.compensation = step.error = None
        step.lease_owner = None
        step.lease_expires_at = step.started_at = step.finished_at = step.compensated_at = None
    set_workflow_status(
        session, workflow, WorkflowStatus.PENDING, message=f"retry: run {workflow.run}"
    )


def resume_rollback(session: Session, workflow: Workflow) -> None:
    """Give a failed rollback's outstanding compensations a fresh set of attempts."""
    for step in compensation_plan(workflow):
        step.compensation_attempts = 0
    workflow.finished_at = None
    set_workflow_status(
        session, workflow, WorkflowStatus.ROLLING_BACK, message="retry of the failed compensations"
    )
