"""Saga tasks (queue ``saga``): the on-error link, the finalizers and the sweeper."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

from sqlalchemy.exc import OperationalError

from orchestrator import engine
from orchestrator.config import get_settings
from orchestrator.db import transaction
from orchestrator.models import StepStatus, WorkflowStatus
from tasks.app import app
from tasks.canvas import CeleryDispatcher

log = logging.getLogger(__name__)
dispatcher = CeleryDispatcher()


def start_rollback(workflow_id: uuid.UUID, reason: str | None = None) -> bool:
    """Move the workflow to rolling_back and publish its compensations. Idempotent: the first
    caller to make the transition (under the row lock) dispatches, later callers do nothing."""
    with transaction() as session:
        workflow = engine.lock_workflow(session, workflow_id)
        if workflow is None:
            return False
        if reason is None:
            failed = [s for s in workflow.steps if s.status == StepStatus.FAILED]
            if workflow.cancel_requested_at is not None:
                reason = "cancelled by an operator"
            elif failed:
                error = failed[0].error or {}
                reason = f"step {failed[0].name} failed: {error.get('message', 'unknown error')}"
            else:
                # The chain broke without a step failing (an infrastructure error around a
                # task, not in a step): rolling back would undo good work. The sweeper
                # re-drives the workflow once it has been quiet for a while.
                log.warning("workflow %s: chain error without a failed step", workflow_id)
                return False
        if not engine.begin_rollback(session, workflow, reason):
            return False
    dispatcher.compensate(workflow_id)
    return True


@app.task(
    name="tasks.saga.on_step_failed",
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=None,
)
def on_step_failed(workflow_id: str) -> None:
    """The chain's on-error link.

    A queued task (not an in-process errback), so it survives the failing worker; it may fire
    more than once, and the row lock makes it idempotent.
    """
    start_rollback(uuid.UUID(workflow_id))


@app.task(name="tasks.saga.complete_workflow")
def complete_workflow(workflow_id: str) -> None:
    with transaction() as session:
        workflow = engine.lock_workflow(session, uuid.UUID(workflow_id))
        if workflow is None or workflow.status != WorkflowStatus.RUNNING:
            return
        if not engine.all_steps_done(workflow):
            # A duplicate chain overtook a step still in flight; the real chain finishes it.
            return
        cancelled = workflow.cancel_requested_at is not None
        if cancelled:
            # The cancel came while the last step ran: this is the boundary it stops at.
            engine.record_event(session, workflow, "cancel_honoured")
            engine.begin_rollback(session, workflow, "cancelled by an operator")
        else:
            engine.complete_workflow(session, workflow)
            # The password now lives where it belongs (RADIUS, the CPE); we keep no copy.
            workflow.secrets = None
    if cancelled:
        dispatcher.compensate(uuid.UUID(workflow_id))


@app.task(name="tasks.saga.finalize_rollback")
def finalize_rollback(workflow_id: str) -> None:
    with transaction() as session:
        workflow = engine.lock_workflow(session, uuid.UUID(workflow_id))
        if workflow is None:
            return
        result = engine.finalize_rollback(session, workflow)
    if result == WorkflowStatus.FAILED:
        log.error("workflow %s needs a person: compensation incomplete", workflow_id)


def _dispatch_safely(dispatch: Callable[[uuid.UUID], None], workflow_id: uuid.UUID) -> None:
    # One workflow that cannot be dispatched (say, its definition changed) must not keep the
    # sweeper from the others; it stays stalled and is logged on every sweep.
    try:
        dispatch(workflow_id)
    except Exception:
        log.exception("sweeper could not dispatch workflow %s", workflow_id)


@app.task(name="tasks.saga.sweep")
def sweep() -> dict[str, int]:
    """Re-drive or compensate workflows left behind by a dead worker or a lost message."""
    settings = get_settings()
    forward: list[uuid.UUID] = []
    backward: list[uuid.UUID] = []
    with transaction() as session:
        now = engine.db_now(session)
        for workflow in engine.stalled_workflows(session, now, settings.stall_seconds):
            failed = [s for s in workflow.steps if s.status == StepStatus.FAILED]
            if workflow.status == WorkflowStatus.ROLLING_BACK:
                engine.record_event(session, workflow, "sweeper_redrive_compensation")
                backward.append(workflow.id)
            elif failed:
                # The on-error link was lost (its worker died before publishing it).
                error = failed[0].error or {}
                engine.begin_rollback(
                    session, workflow, f"step {failed[0].name} failed: {error.get('message')}"
                )
                backward.append(workflow.id)
            elif workflow.deadline_at is not None and workflow.deadline_at < now:
                engine.begin_rollback(session, workflow, "deadline exceeded")
                backward.append(workflow.id)
            else:
                engine.record_event(session, workflow, "sweeper_redrive")
                forward.append(workflow.id)
    for workflow_id in forward:
        _dispatch_safely(dispatcher.start, workflow_id)
    for workflow_id in backward:
        _dispatch_safely(dispatcher.compensate, workflow_id)
    if forward or backward:
        log.warning("sweeper re-drove %d and compensated %d workflows", len(forward), len(backward))
    return {"redriven": len(forward), "compensating": len(backward)}
