"""State transitions of workflows and steps. Each one appends its event; none commits.

These are the only functions that change a status. They take rows the caller has locked and
the caller's session; the task layer owns the transaction.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from orchestrator import metrics
from orchestrator.bulk import feeder as bulk_feeder
from orchestrator.engine.events import EventKind, record_event
from orchestrator.engine.leases import Lease, release_lease, take_lease
from orchestrator.engine.rows import release_claims, utcnow
from orchestrator.models import StepStatus, Workflow, WorkflowStatus, WorkflowStep
from orchestrator.webhooks import outbox as webhooks


def set_workflow_status(
    session: Session, workflow: Workflow, status: WorkflowStatus, *, message: str | None = None
) -> None:
    previous = workflow.status
    if previous == status:
        return
    workflow.status = status
    if status == WorkflowStatus.RUNNING and workflow.started_at is None:
        workflow.started_at = utcnow()
    workflow.finished_at = utcnow() if status.is_terminal else None
    if status.is_terminal:
        counter = metrics.WORKFLOWS_FINISHED.labels(workflow.workflow_type, status.value)
        metrics.note(session, counter.inc)
        webhooks.workflow_finished(session, workflow)  # the event, in this same transaction
        bulk_feeder.workflow_finished(session, workflow)  # its bulk job may start another row
    record_event(
        session,
        workflow,
        EventKind.WORKFLOW_STATUS,
        from_status=previous.value,
        to_status=status.value,
        message=message,
    )


def set_step_status(
    session: Session,
    workflow: Workflow,
    step: WorkflowStep,
    status: StepStatus,
    kind: EventKind,
    *,
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


# -- forward ---------------------------------------------------------------------------------


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
    take_lease(step, lease, now)
    step.retry_due_at = None
    step.started_at = step.started_at or now
    step.error = None
    if step.intent is None and intent is not None:
        step.intent = intent
    set_step_status(
        session, workflow, step, StepStatus.RUNNING, EventKind.STEP_STARTED, attempt=step.attempts
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
        session,
        workflow,
        step,
        StepStatus.COMPLETED,
        EventKind.STEP_COMPLETED,
        attempt=step.attempts,
    )


def skip_step(session: Session, workflow: Workflow, step: WorkflowStep, reason: str) -> None:
    if workflow.status == WorkflowStatus.PENDING:
        set_workflow_status(session, workflow, WorkflowStatus.RUNNING)
    step.finished_at = utcnow()
    set_step_status(
        session, workflow, step, StepStatus.SKIPPED, EventKind.STEP_SKIPPED, message=reason
    )


def _await_retry(step: WorkflowStep, error: dict[str, Any], delay: float, now: datetime) -> None:
    """The attempt is over (its lease goes) and the next is due then (the sweeper reads it)."""
    step.error = error
    release_lease(step)
    step.retry_due_at = now + timedelta(seconds=delay)


def schedule_retry(
    session: Session,
    workflow: Workflow,
    step: WorkflowStep,
    error: dict[str, Any],
    delay: float,
    now: datetime,
    *,
    kind: EventKind = EventKind.STEP_RETRY_SCHEDULED,
    attempt: int | None = None,
) -> None:
    _await_retry(step, error, delay, now)
    set_step_status(
        session,
        workflow,
        step,
        StepStatus.PENDING,
        kind,
        attempt=attempt or step.attempts,
        message=error.get("message"),
        details={"error": error, "retry_in_seconds": round(delay, 3)},
    )


def defer_attempt(
    session: Session,
    workflow: Workflow,
    step: WorkflowStep,
    error: dict[str, Any],
    delay: float,
    now: datetime,
    *,
    backward: bool,
) -> None:
    """The attempt never reached its system (see failures.given_back): it is given back, so
    the step's attempts are what its systems did, and the step runs again after ``delay``.
    What it recorded (its intent) stays: a rollback still undoes whatever it may have done."""
    if backward:
        step.compensation_attempts -= 1
        schedule_compensation_retry(
            session,
            workflow,
            step,
            error,
            delay,
            now,
            kind=EventKind.COMPENSATION_DEFERRED,
            attempt=step.compensation_attempts + 1,
        )
    else:
        step.attempts -= 1
        schedule_retry(
            session,
            workflow,
            step,
            error,
            delay,
            now,
            kind=EventKind.STEP_DEFERRED,
            attempt=step.attempts + 1,
        )


def fail_step(
    session: Session,
    workflow: Workflow,
    step: WorkflowStep,
    error: dict[str, Any],
    kind: EventKind = EventKind.STEP_FAILED,
) -> None:
    step.error = error
    step.finished_at = utcnow()
    release_lease(step)
    set_step_status(
        session,
        workflow,
        step,
        StepStatus.FAILED,
        kind,
        attempt=step.attempts,
        message=error.get("message"),
        details={"error": error},
    )


def complete_workflow(session: Session, workflow: Workflow) -> None:
    set_workflow_status(session, workflow, WorkflowStatus.COMPLETED)
    release_claims(session, workflow)
    # What the secrets were for now lives where it belongs (RADIUS, the CPE); we keep no copy.
    workflow.secrets = None


def stop_forward_recovery(
    session: Session, workflow: Workflow, reason: str, left: list[dict[str, Any]]
) -> None:
    """A forward-recovery workflow cannot go on: it ends ``failed`` naming what is left.

    Claims stay: the subscriber is still held until a retry finishes the job.
    """
    workflow.error = {**(workflow.error or {"message": reason}), "left_behind": left}
    set_workflow_status(session, workflow, WorkflowStatus.FAILED, message=reason)


# -- backward --------------------------------------------------------------------------------


def begin_rollback(session: Session, workflow: Workflow, reason: str) -> bool:
    """Move a running workflow to rolling_back. False if another caller already did."""
    if workflow.status not in WorkflowStatus.forward():
        return False
    set_workflow_status(session, workflow, WorkflowStatus.ROLLING_BACK, message=reason)
    if workflow.error is None:
        workflow.error = {"message": reason}
    return True


def start_compensation(
    session: Session, workflow: Workflow, step: WorkflowStep, lease: Lease, now: datetime
) -> None:
    step.compensation_attempts += 1
    take_lease(step, lease, now)
    step.retry_due_at = None
    set_step_status(
        session,
        workflow,
        step,
        StepStatus.COMPENSATING,
        EventKind.COMPENSATION_STARTED,
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
        EventKind.COMPENSATION_COMPLETED,
        attempt=step.compensation_attempts,
    )


def schedule_compensation_retry(
    session: Session,
    workflow: Workflow,
    step: WorkflowStep,
    error: dict[str, Any],
    delay: float,
    now: datetime,
    *,
    kind: EventKind = EventKind.COMPENSATION_RETRY_SCHEDULED,
    attempt: int | None = None,
) -> None:
    _await_retry(step, error, delay, now)
    record_event(
        session,
        workflow,
        kind,
        step=step,
        attempt=attempt or step.compensation_attempts,
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
        EventKind.COMPENSATION_FAILED,
        attempt=step.compensation_attempts,
        message=error.get("message"),
        details={"error": error},
    )


def end_rollback(
    session: Session, workflow: Workflow, final: WorkflowStatus, left: list[dict[str, Any]]
) -> None:
    """Settle a rollback: ``failed`` with what is left, or rolled_back / compensated."""
    if left:
        workflow.error = {**(workflow.error or {}), "left_behind": left}
        set_workflow_status(
            session,
            workflow,
            WorkflowStatus.FAILED,
            message="compensation incomplete: "
            + ", ".join(f"{item['step']} ({item['system']})" for item in left),
        )
        # Claims stay: the resources left behind still hold the username and serial.
        return
    # Nothing is left behind any more (a retried rollback may have finished the job).
    workflow.error = {k: v for k, v in (workflow.error or {}).items() if k != "left_behind"}
    set_workflow_status(session, workflow, final)
    release_claims(session, workflow)


# -- operator requests -----------------------------------------------------------------------


def request_cancel(session: Session, workflow: Workflow, *, requested_by: str | None) -> None:
    if workflow.cancel_requested_at is None:
        workflow.cancel_requested_at = utcnow()
        record_event(
            session,
            workflow,
            EventKind.CANCEL_REQUESTED,
            details={"requested_by": requested_by} if requested_by else None,
        )


def start_new_run(session: Session, workflow: Workflow, deadline_seconds: float) -> None:
    """Reset a rolled-back workflow for another run; earlier runs stay in the event log."""
    workflow.run += 1
    workflow.error = None
    workflow.context = {}
    workflow.output = {}
    workflow.cancel_requested_at = None
    workflow.finished_at = None
    workflow.deadline_at = utcnow() + timedelta(seconds=deadline_seconds)
    workflow.generation += 1
    for step in workflow.steps:
        step.status = StepStatus.PENDING
        step.retry_due_at = None
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
    workflow.generation += 1
    for step in workflow.steps:
        if step.status == StepStatus.COMPENSATION_FAILED:
            step.compensation_attempts = 0
            # Back to the status the undo judges by: it may have acted, so it is undone again.
            step.status = StepStatus.COMPLETED if step.compensation else StepStatus.FAILED
    set_workflow_status(
        session, workflow, WorkflowStatus.ROLLING_BACK, message="retry of the failed compensations"
    )


def resume_forward(session: Session, workflow: Workflow, deadline_seconds: float) -> None:
    """Carry a stopped forward recovery on: failed steps get a fresh set of attempts."""
    workflow.generation += 1
    for step in workflow.steps:
        if step.status == StepStatus.FAILED:
            step.status = StepStatus.PENDING
            step.attempts = 0
            step.error = None
    workflow.error = None
    workflow.cancel_requested_at = None
    workflow.deadline_at = utcnow() + timedelta(seconds=deadline_seconds)
    set_workflow_status(
        session, workflow, WorkflowStatus.RUNNING, message="retry: carry on forward"
    )


def redrive(session: Session, workflow: Workflow, kind: EventKind) -> None:
    """The sweeper publishes the workflow's work again: a new generation, so copies of the
    earlier messages (still queued somewhere, or never) step aside if they come."""
    workflow.generation += 1
    record_event(session, workflow, kind, details={"generation": workflow.generation})
    direction = "backward" if workflow.status == WorkflowStatus.ROLLING_BACK else "forward"
    metrics.note(session, metrics.REDRIVES.labels(workflow.workflow_type, direction).inc)
