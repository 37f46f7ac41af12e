"""The saga's decisions: which step runs, when a rollback starts and why, what is undone next,
when a workflow is finished, and what the sweeper does. This is the one module that decides.

Every function here runs inside the caller's transaction with the workflow row locked, records
its events, and returns a :class:`Dispatch`: the step messages to publish once that transaction
has committed (a worker must never receive an id whose rows it cannot see yet). The Celery
layer only adapts: it claims, calls the step, records the outcome through these functions, and
publishes what they return.

A step that settles publishes the steps it unblocked; a join is decided under the workflow's
row lock (of two siblings finishing, only the second sees every dependency done), which is what
a Celery chord would do with a counter in a result backend, without a second store of truth.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from orchestrator.definitions import Recovery, StepDefinition, WorkflowDefinition
from orchestrator.engine import planning, transitions
from orchestrator.engine.delivery import BACKWARD, FORWARD, Claim, Direction
from orchestrator.engine.events import EventKind, record_event
from orchestrator.engine.failures import backoff, classify, given_back
from orchestrator.engine.leases import HolderGone, Lease, in_flight, lease_is_live
from orchestrator.engine.rows import (
    db_now,
    definition_of,
    lock_workflow,
    stalled_workflows,
    step_of,
)
from orchestrator.errors import LeaseLost, StepFailed, WorkflowCancelled
from orchestrator.models import StepStatus, Workflow, WorkflowEvent, WorkflowStatus, WorkflowStep
from orchestrator.step import Step, StepContext, StepResult

log = logging.getLogger(__name__)

CANCELLED_REASON = "cancelled by an operator"


@dataclass(frozen=True)
class Dispatch:
    """Step messages to publish after the deciding transaction commits."""

    workflow_id: uuid.UUID
    definition: WorkflowDefinition
    #: The workflow's generation: each message carries it (see Workflow.generation).
    generation: int
    forward: tuple[str, ...] = ()
    backward: tuple[str, ...] = ()
    #: A bulk job's workflow: its messages yield to interactive ones (orchestrator.queues).
    bulk: bool = False
    #: The workflow's trace context (Workflow.traceparent): its messages join that trace,
    #: whoever publishes them (orchestrator/tracing).
    traceparent: str | None = None

    def __bool__(self) -> bool:
        return bool(self.forward or self.backward)

    def messages(self) -> list[tuple[Direction, StepDefinition]]:
        return [(FORWARD, self.definition.step(n)) for n in self.forward] + [
            (BACKWARD, self.definition.step(n)) for n in self.backward
        ]


@dataclass(frozen=True)
class Claimed:
    """A step this delivery now holds the lease of."""

    ctx: StepContext
    definition: WorkflowDefinition
    direction: Direction

    @property
    def step_def(self) -> StepDefinition:
        return self.definition.step(self.ctx.step_name)


@dataclass(frozen=True)
class ClaimOutcome:
    claimed: Claimed | None = None
    dispatch: Dispatch | None = None
    #: Raised by the task once the claim's transaction has committed (fires the on-error link).
    stop: StepFailed | WorkflowCancelled | None = None
    #: Why this delivery stepped aside, if it did.
    aside: str | None = None


@dataclass(frozen=True)
class FailureOutcome:
    #: Seconds until the attempt is tried again; None if it is not.
    retry_in: float | None = None
    #: Raised by the task once recorded: the step failed for good.
    stop: StepFailed | None = None
    dispatch: Dispatch | None = None
    error: dict[str, Any] = field(default_factory=dict)


def _dispatch(
    workflow: Workflow,
    definition: WorkflowDefinition,
    *,
    forward: list[str] | None = None,
    backward: list[str] | None = None,
) -> Dispatch:
    return Dispatch(
        workflow.id,
        definition,
        workflow.generation,
        tuple(forward or ()),
        tuple(backward or ()),
        bulk=workflow.bulk_job_id is not None,
        traceparent=workflow.traceparent,
    )


def context_of(workflow: Workflow, step: WorkflowStep, attempt: int) -> StepContext:
    return StepContext(
        workflow_id=workflow.id,
        tenant_id=workflow.tenant_id,
        step_name=step.name,
        run=workflow.run,
        attempt=attempt,
        data={**workflow.input, **workflow.context},
        sealed_secrets=workflow.secrets,
        intent=step.intent or {},
        compensation=step.compensation or {},
    )


# -- starting ---------------------------------------------------------------------------------


def start(workflow: Workflow) -> Dispatch:
    """The first messages of a new (or newly retried) workflow: every step it can run now."""
    definition = definition_of(workflow)
    return _dispatch(workflow, definition, forward=planning.runnable_forward(workflow, definition))


# -- claiming ---------------------------------------------------------------------------------


def claim(
    session: Session,
    direction: Direction,
    behaviour: Step,
    workflow_id: uuid.UUID,
    step_name: str,
    owner: str,
    holder_gone: HolderGone,
    generation: int | None = None,
) -> ClaimOutcome:
    workflow = lock_workflow(session, workflow_id)
    if workflow is None:
        return ClaimOutcome(aside=f"workflow {workflow_id} does not exist")
    if generation is not None and generation < workflow.generation:
        # A copy from before a re-drive: the re-drive's own messages do its work.
        return ClaimOutcome(aside=f"superseded by re-drive generation {workflow.generation}")
    step = step_of(workflow, step_name)
    now = db_now(session)  # read under the lock: the time the claim is judged at
    definition = definition_of(workflow)
    step_def = definition.step(step_name)
    lease = Lease(owner=owner, seconds=step_def.lease_seconds())
    decision, reason = direction.decide(workflow, definition, step, lease, now, holder_gone)
    if decision == Claim.NOTHING:
        # Settled already. The copy that settled it may have died between its commit and its
        # publish (this may be that message, redelivered): what follows is published again;
        # copies of it step aside at their leases.
        return ClaimOutcome(
            dispatch=_after_settled(session, workflow, definition, step, now, holder_gone)
        )
    if decision == Claim.STEP_ASIDE:
        # Visible in the timeline: operators see redeliveries and sweeper re-drives meet.
        record_event(session, workflow, EventKind.DELIVERY_STEPPED_ASIDE, step=step, message=reason)
        return ClaimOutcome(aside=reason)
    if decision == Claim.CANCEL:
        record_event(session, workflow, EventKind.CANCEL_HONOURED, step=step)
        return ClaimOutcome(stop=WorkflowCancelled(f"workflow {workflow_id} cancelled"))
    if decision == Claim.FAIL:
        error = {"type": "Exhausted", "message": reason}
        if direction is BACKWARD:
            transitions.fail_compensation(session, workflow, step, error)
            return ClaimOutcome(
                dispatch=_undo_progress(session, workflow, definition, step.name, now, holder_gone)
            )
        if step.status != StepStatus.FAILED:
            transitions.fail_step(session, workflow, step, error)
        # Raised again for a step already failed: its on-error link may have been lost.
        return ClaimOutcome(stop=StepFailed(f"{step_name}: {reason}"))
    if lease_is_live(step, now):
        record_event(
            session,
            workflow,
            EventKind.LEASE_TAKEN_OVER,
            step=step,
            message=f"previous holder {step.lease_owner} is gone",
        )
    if direction is BACKWARD:
        transitions.start_compensation(session, workflow, step, lease, now)
        ctx = context_of(workflow, step, step.compensation_attempts)
        return ClaimOutcome(claimed=Claimed(ctx, definition, direction))
    ctx = context_of(workflow, step, step.attempts + 1)
    skip_reason = behaviour.skip(ctx)
    if skip_reason:
        transitions.skip_step(session, workflow, step, skip_reason)
        return ClaimOutcome(
            dispatch=_forward_progress(session, workflow, definition, step.name, now, holder_gone)
        )
    try:
        intent = behaviour.plan(ctx) if step.intent is None else None
    except Exception as exc:  # a request the step cannot act on
        _, error = classify(exc)
        transitions.fail_step(session, workflow, step, error)
        return ClaimOutcome(stop=StepFailed(f"{step_name}: {error['message']}"))
    transitions.start_attempt(session, workflow, step, lease, now, intent)
    return ClaimOutcome(
        claimed=Claimed(replace(ctx, intent=step.intent or {}), definition, direction)
    )


def _after_settled(
    session: Session,
    workflow: Workflow,
    definition: WorkflowDefinition,
    step: WorkflowStep,
    now: datetime,
    holder_gone: HolderGone,
) -> Dispatch:
    if workflow.status in WorkflowStatus.forward():
        return _dispatch(
            workflow, definition, forward=planning.unblocked_by(workflow, definition, step.name)
        )
    if workflow.status == WorkflowStatus.ROLLING_BACK:
        candidates = list(definition.step(step.name).depends_on)
        return _dispatch(
            workflow,
            definition,
            backward=planning.undoable(workflow, definition, now, holder_gone, candidates),
        )
    return _dispatch(workflow, definition)


def fail_unclaimable(
    session: Session,
    direction: Direction,
    workflow_id: uuid.UUID,
    step_name: str,
    exc: Exception,
    holder_gone: HolderGone,
) -> ClaimOutcome:
    """A defect or a bad deploy met while claiming (secrets that do not open, a definition
    version this code does not have): recorded on the step, so the workflow settles, not loops."""
    _, error = classify(exc)
    workflow = lock_workflow(session, workflow_id)
    if workflow is None or workflow.status not in direction.workflow_statuses:
        return ClaimOutcome()
    step = step_of(workflow, step_name)
    if in_flight(step, db_now(session), holder_gone):
        # Another copy holds the step and may be acting: it settles the step, not this one.
        return ClaimOutcome(aside=f"leased by {step.lease_owner}")
    if direction is BACKWARD and step.status in StepStatus.undone():
        return ClaimOutcome()
    if direction is FORWARD:
        if step.status in (StepStatus.PENDING, StepStatus.RUNNING):
            transitions.fail_step(session, workflow, step, error)
        return ClaimOutcome(stop=StepFailed(f"{step_name}: {error['message']}"))
    transitions.fail_compensation(session, workflow, step, error)
    return ClaimOutcome()  # recorded; without the definition nothing else can be planned


def relock(session: Session, claimed: Claimed, owner: str) -> tuple[Workflow, WorkflowStep]:
    """Lock the rows again after the external call, checking that our lease still holds."""
    ctx = claimed.ctx
    workflow = lock_workflow(session, ctx.workflow_id)
    if workflow is None:
        raise LeaseLost(f"{ctx.step_name} of {ctx.workflow_id} lost its lease")
    step = step_of(workflow, ctx.step_name)
    if step.status != claimed.direction.leased_status or step.lease_owner != owner:
        raise LeaseLost(f"{ctx.step_name} of {ctx.workflow_id} lost its lease")
    return workflow, step


def held(session: Session, claimed: Claimed) -> tuple[Workflow, WorkflowStep]:
    """The rows a claim made in this same transaction locked, as it left them (the lock is
    still ours): read from the session, with no second round trip."""
    workflow = session.get(Workflow, claimed.ctx.workflow_id)
    if workflow is None:  # pragma: no cover - the claim just locked it
        raise LookupError(f"workflow {claimed.ctx.workflow_id} is not held here")
    return workflow, step_of(workflow, claimed.ctx.step_name)


# -- recording outcomes -----------------------------------------------------------------------


def record_success(
    session: Session,
    claimed: Claimed,
    workflow: Workflow,
    step: WorkflowStep,
    result: StepResult | None,
    holder_gone: HolderGone,
) -> Dispatch:
    """The step (``result`` given) or its undo (``result`` None) succeeded."""
    now = db_now(session)
    if claimed.direction is BACKWARD:
        transitions.finish_compensation(session, workflow, step)
        return _undo_progress(session, workflow, claimed.definition, step.name, now, holder_gone)
    assert result is not None
    transitions.complete_step(
        session,
        workflow,
        step,
        output=result.output,
        compensation=result.compensation,
        context=result.context,
        workflow_output=result.workflow_output,
    )
    return _forward_progress(session, workflow, claimed.definition, step.name, now, holder_gone)


def record_failure(
    session: Session,
    claimed: Claimed,
    workflow: Workflow,
    step: WorkflowStep,
    exc: BaseException,
    holder_gone: HolderGone,
) -> FailureOutcome:
    direction, step_def, definition = claimed.direction, claimed.step_def, claimed.definition
    retryable, error = classify(exc)
    now = db_now(session)
    if direction is FORWARD and workflow.status not in WorkflowStatus.forward():
        # The rollback began while this attempt ran: it is not tried again, and its undo
        # (it may have acted) can go ahead now.
        transitions.fail_step(
            session, workflow, step, error, kind=EventKind.STEP_SETTLED_DURING_ROLLBACK
        )
        dispatch = _forward_progress(session, workflow, definition, step.name, now, holder_gone)
        return FailureOutcome(dispatch=dispatch, error=error)
    if given_back(exc):
        delay = backoff(1)
        transitions.defer_attempt(
            session, workflow, step, error, delay, now, backward=direction is BACKWARD
        )
        return FailureOutcome(retry_in=delay, error=error)
    if retryable and direction.attempts(step) < direction.max_attempts(step_def):
        delay = backoff(direction.attempts(step))
        if direction is FORWARD:
            transitions.schedule_retry(session, workflow, step, error, delay, now)
        else:
            transitions.schedule_compensation_retry(session, workflow, step, error, delay, now)
        return FailureOutcome(retry_in=delay, error=error)
    if direction is BACKWARD:
        transitions.fail_compensation(session, workflow, step, error)
        dispatch = _undo_progress(session, workflow, definition, step.name, now, holder_gone)
        return FailureOutcome(dispatch=dispatch, error=error)
    transitions.fail_step(session, workflow, step, error)
    return FailureOutcome(stop=StepFailed(f"{step.name}: {error['message']}"), error=error)


def _forward_progress(
    session: Session,
    workflow: Workflow,
    definition: WorkflowDefinition,
    step_name: str,
    now: datetime,
    holder_gone: HolderGone,
) -> Dispatch:
    """What follows a step that completed, was skipped, or came back during a rollback."""
    if workflow.status == WorkflowStatus.ROLLING_BACK:
        return _undo_progress(session, workflow, definition, step_name, now, holder_gone)
    if workflow.status == WorkflowStatus.FAILED and definition.recovery == Recovery.FORWARD:
        # A sibling stopped the forward recovery while this one ran: keep "what is left" true.
        left = planning.forward_left_undone(workflow)
        workflow.error = {**(workflow.error or {}), "left_behind": left}
        return _dispatch(workflow, definition)
    if workflow.status not in WorkflowStatus.forward():
        return _dispatch(workflow, definition)
    if workflow.cancel_requested_at is not None:
        # A step boundary: the cancel is honoured here rather than at the next claim.
        record_event(session, workflow, EventKind.CANCEL_HONOURED)
        return _rollback(session, workflow, definition, CANCELLED_REASON, now, holder_gone)
    reason = failure_reason(workflow)
    if reason is not None:
        # A sibling failed for good and its on-error link is on its way: start nothing new
        # (the link, when it comes, finds the rollback begun).
        return _rollback(session, workflow, definition, reason, now, holder_gone)
    if planning.all_done(workflow):
        transitions.complete_workflow(session, workflow)
        return _dispatch(workflow, definition)
    return _dispatch(
        workflow, definition, forward=planning.unblocked_by(workflow, definition, step_name)
    )


def _undo_progress(
    session: Session,
    workflow: Workflow,
    definition: WorkflowDefinition,
    step_name: str,
    now: datetime,
    holder_gone: HolderGone,
) -> Dispatch:
    """What follows a step whose undo ended (or that came back during the rollback): the undo
    of the steps it was built on, or the end of the rollback."""
    if planning.rollback_settled(workflow, definition, now, holder_gone):
        _end_rollback(session, workflow, definition)
        return _dispatch(workflow, definition)
    candidates = [step_name, *definition.step(step_name).depends_on]
    return _dispatch(
        workflow,
        definition,
        backward=planning.undoable(workflow, definition, now, holder_gone, candidates),
    )


def _end_rollback(session: Session, workflow: Workflow, definition: WorkflowDefinition) -> None:
    left = planning.left_behind(workflow, definition)
    cancelled = workflow.cancel_requested_at is not None and not _a_step_failed(session, workflow)
    final = WorkflowStatus.COMPENSATED if cancelled else WorkflowStatus.ROLLED_BACK
    transitions.end_rollback(session, workflow, final, left)
    if left:
        log.error("workflow %s needs a person: compensation incomplete", workflow.id)


def _a_step_failed(session: Session, workflow: Workflow) -> bool:
    """Whether this run's rollback began with a step failing (not only with a cancel)."""
    return bool(
        session.scalar(
            select(
                exists().where(
                    WorkflowEvent.workflow_id == workflow.id,
                    WorkflowEvent.run == workflow.run,
                    WorkflowEvent.kind == EventKind.STEP_FAILED.value,
                )
            )
        )
    )


# -- rolling back -----------------------------------------------------------------------------


def failure_reason(workflow: Workflow) -> str | None:
    """Why a workflow must stop going forward, from its rows; None if nothing says it must."""
    if workflow.cancel_requested_at is not None:
        return CANCELLED_REASON
    failed = [s for s in workflow.steps if s.status == StepStatus.FAILED]
    if failed:
        error = failed[0].error or {}
        return f"step {failed[0].name} failed: {error.get('message', 'unknown error')}"
    return None


def start_rollback(
    session: Session, workflow_id: uuid.UUID, holder_gone: HolderGone
) -> Dispatch | None:
    """The on-error link's decision. Idempotent: the first caller to make the transition (under
    the row lock) gets the messages to publish, later callers get None."""
    workflow = lock_workflow(session, workflow_id)
    if workflow is None or workflow.status not in WorkflowStatus.forward():
        return None
    reason = failure_reason(workflow)
    if reason is None:
        # The chain broke without a step failing (an infrastructure error around a task, not
        # in a step): rolling back would undo good work. The sweeper re-drives it instead.
        log.warning("workflow %s: on-error link without a failed step", workflow_id)
        return None
    definition = definition_of(workflow)
    return _rollback(session, workflow, definition, reason, db_now(session), holder_gone)


def _rollback(
    session: Session,
    workflow: Workflow,
    definition: WorkflowDefinition,
    reason: str,
    now: datetime,
    holder_gone: HolderGone,
) -> Dispatch:
    if definition.recovery == Recovery.FORWARD:
        transitions.stop_forward_recovery(
            session, workflow, reason, planning.forward_left_undone(workflow)
        )
        return _dispatch(workflow, definition)
    transitions.begin_rollback(session, workflow, reason)
    return _resume_undo(session, workflow, definition, now, holder_gone)


def _resume_undo(
    session: Session,
    workflow: Workflow,
    definition: WorkflowDefinition,
    now: datetime,
    holder_gone: HolderGone,
) -> Dispatch:
    if planning.rollback_settled(workflow, definition, now, holder_gone):
        _end_rollback(session, workflow, definition)
        return _dispatch(workflow, definition)
    return _dispatch(
        workflow, definition, backward=planning.undoable(workflow, definition, now, holder_gone)
    )


# -- operator requests ------------------------------------------------------------------------


def retry(
    session: Session, workflow: Workflow, deadline_seconds: float, holder_gone: HolderGone
) -> Dispatch:
    """Run a rolled-back workflow again, finish a failed rollback, or carry a stopped forward
    recovery on. The caller checked the status and holds the row lock."""
    definition = definition_of(workflow)
    if workflow.status == WorkflowStatus.ROLLED_BACK:
        transitions.start_new_run(session, workflow, deadline_seconds)
        return start(workflow)
    if definition.recovery == Recovery.FORWARD:
        transitions.resume_forward(session, workflow, deadline_seconds)
        return _dispatch(
            workflow,
            definition,
            forward=planning.runnable_forward(workflow, definition, include_started=True),
        )
    transitions.resume_rollback(session, workflow)
    return _resume_undo(session, workflow, definition, db_now(session), holder_gone)


# -- the sweeper ------------------------------------------------------------------------------


def sweep(
    session: Session,
    stall_seconds: float,
    holder_gone: HolderGone,
    *,
    lost_after: float | None = None,
) -> list[Dispatch]:
    """Re-drive or roll back workflows left behind by a dead worker or a lost message
    (``lost_after``: see :func:`stalled_workflows`)."""
    now = db_now(session)
    dispatches = []
    for workflow in stalled_workflows(session, now, stall_seconds, lost_after=lost_after):
        try:
            # A savepoint each: one workflow that cannot be judged (its definition version is
            # gone) must not keep the sweeper from the others; it is logged on every sweep.
            with session.begin_nested():
                dispatch = _sweep_one(session, workflow, now, holder_gone)
        except Exception:
            log.exception("sweeper could not judge workflow %s", workflow.id)
            continue
        if dispatch is not None:
            dispatches.append(dispatch)
    return dispatches


def _sweep_one(
    session: Session, workflow: Workflow, now: datetime, holder_gone: HolderGone
) -> Dispatch | None:
    definition = definition_of(workflow)
    if workflow.status == WorkflowStatus.ROLLING_BACK:
        transitions.redrive(session, workflow, EventKind.SWEEPER_REDRIVE_COMPENSATION)
        return _resume_undo(session, workflow, definition, now, holder_gone)
    reason = failure_reason(workflow)
    if reason is None and workflow.deadline_at is not None and workflow.deadline_at < now:
        reason = "deadline exceeded"
    if reason is not None:
        # The on-error link was lost (its worker died before publishing it), or time is up.
        return _rollback(session, workflow, definition, reason, now, holder_gone)
    transitions.redrive(session, workflow, EventKind.SWEEPER_REDRIVE)
    if planning.all_done(workflow):
        transitions.complete_workflow(session, workflow)  # the last step's commit was all
        return None
    return _dispatch(
        workflow,
        definition,
        forward=planning.runnable_forward(workflow, definition, include_started=True),
    )
