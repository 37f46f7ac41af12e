"""The bookkeeping every step and compensation task shares.

A step message carries only ``(workflow_id, step_name)``. The task claims the step row under a
lock, records intent, calls the step's business logic, and stores the result, in that order;
see DESIGN.md section 4. Copies of the same message (redelivery, sweeper re-drive) meet at the
step row's lease: a copy that finds a live lease of a living owner steps aside.
"""

from __future__ import annotations

import logging
import random
import uuid
from dataclasses import dataclass, replace
from typing import Any

from celery import Celery, Task
from celery.exceptions import Ignore, Retry, SoftTimeLimitExceeded
from sqlalchemy.exc import IntegrityError, OperationalError

from orchestrator import engine, faults
from orchestrator.config import get_settings
from orchestrator.db import transaction
from orchestrator.definitions import StepDefinition, registry
from orchestrator.errors import IntegrationError
from orchestrator.models import StepStatus, Workflow, WorkflowStatus, WorkflowStep
from orchestrator.step import Step, StepContext
from orchestrator.vault import VaultError
from tasks.holder import current_holder, holder_is_gone

log = logging.getLogger(__name__)

#: Added to a step's timeout for its hard time limit, and again for its lease: a lease can
#: only expire after Celery has killed the attempt that held it.
GRACE_SECONDS = 5.0


class StepFailed(Exception):
    """Raised to fail the chain after a step failed for good (the on-error link takes over)."""


class WorkflowCancelled(Exception):
    """Raised at a step boundary when an operator asked to cancel the workflow."""


def step_timeout(step_def: StepDefinition) -> float:
    return min(step_def.timeout, get_settings().step_timeout_cap)


def time_limits(step_def: StepDefinition) -> tuple[float, float]:
    """(soft, hard) time limits for one attempt."""
    soft = step_timeout(step_def)
    return soft, soft + GRACE_SECONDS


def lease_seconds(step_def: StepDefinition) -> float:
    return step_timeout(step_def) + 2 * GRACE_SECONDS


def backoff(attempt: int) -> float:
    """Exponential backoff with jitter: half fixed, half random, capped."""
    settings = get_settings()
    ceiling = min(settings.retry_backoff_max, settings.retry_backoff_base * 2 ** (attempt - 1))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def classify(exc: BaseException) -> tuple[bool, dict[str, Any]]:
    """(retryable, error record) for an exception raised by a step or compensation."""
    if isinstance(exc, IntegrationError):
        return exc.retryable, exc.to_dict()
    if isinstance(exc, SoftTimeLimitExceeded):
        # The call may or may not have taken effect; a retry finds out through the intent.
        return True, {"type": "Timeout", "message": "attempt exceeded its time limit"}
    if isinstance(exc, OperationalError):
        return True, {"type": "DatabaseUnavailable", "message": str(exc.orig)[:500]}
    if isinstance(exc, IntegrityError):
        return False, {"type": "Conflict", "message": str(exc.orig).split("\n")[0][:500]}
    if isinstance(exc, VaultError):
        return False, {"type": "VaultError", "message": str(exc)}
    # Anything else is a defect: retrying would repeat it, so fail the step and compensate.
    return False, {"type": type(exc).__name__, "message": str(exc)[:500]}


@dataclass(frozen=True)
class Claimed:
    ctx: StepContext
    step_def: StepDefinition


class SagaTask(Task):
    """Common parts of step and compensation tasks."""

    abstract = True
    behaviour: Step
    #: The step status that this kind of task holds a lease in.
    leased_status: StepStatus
    # Our own retries are counted in PostgreSQL; Celery's counter must never stop them.
    max_retries = None

    def lease_owner(self) -> str:
        return current_holder(self.request.id)

    def _lease(self, step_def: StepDefinition) -> engine.Lease:
        return engine.Lease(owner=self.lease_owner(), seconds=lease_seconds(step_def))

    @staticmethod
    def _context(workflow: Workflow, step: WorkflowStep, attempt: int) -> StepContext:
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

    def _claim(self, workflow_id: uuid.UUID, step_name: str) -> Claimed | None:
        raise NotImplementedError

    def _claim_or_wait(self, workflow_id: uuid.UUID, step_name: str) -> Claimed | None:
        """Claim the step; while our own database is unreachable, wait for it instead.

        No attempt has started yet, so nothing is counted and nothing needs undoing: the same
        message comes back later (Celery's retry keeps the rest of the chain).
        """
        try:
            return self._claim(workflow_id, step_name)
        except (Ignore, Retry, StepFailed, WorkflowCancelled):
            raise
        except OperationalError as exc:
            delay = backoff(self.request.retries + 1)
            log.warning(
                "%s of %s: database unavailable, retry in %.1fs", step_name, workflow_id, delay
            )
            raise self.retry(countdown=delay, exc=exc) from exc
        except Exception as exc:
            # A defect or a bad deploy (secrets that do not open, a definition that changed)
            # met while claiming: recorded on the step, so the workflow settles, not loops.
            log.exception("%s of %s could not be claimed", step_name, workflow_id)
            return self._claim_failed(workflow_id, step_name, exc)

    def _claim_failed(
        self, workflow_id: uuid.UUID, step_name: str, exc: Exception
    ) -> Claimed | None:
        raise NotImplementedError

    def _relock(self, session: Any, ctx: StepContext) -> tuple[Workflow, WorkflowStep]:
        """Lock the rows again after the external call, checking that our lease still holds."""
        workflow = engine.lock_workflow(session, ctx.workflow_id)
        step = engine.lock_step(session, ctx.workflow_id, ctx.step_name)
        if (
            workflow is None
            or step.status != self.leased_status
            or step.lease_owner != self.lease_owner()
        ):
            # Our lease expired and another copy took the step over; its result stands.
            log.warning("%s of %s lost its lease", ctx.step_name, ctx.workflow_id)
            raise Ignore()
        return workflow, step


class ForwardStepTask(SagaTask):
    """Runs one step of a workflow: ``run(workflow_id, step_name)``."""

    abstract = True
    leased_status = StepStatus.RUNNING
    throws = (StepFailed, WorkflowCancelled)

    def run(self, workflow_id: str, step_name: str) -> None:
        claimed = self._claim_or_wait(uuid.UUID(workflow_id), step_name)
        if claimed is None:
            return  # already done or skipped: the chain goes on
        try:
            faults.before_effect(step_name, claimed.ctx.data.get("username"))
            if self.behaviour.local:
                self._execute_local(claimed)
            else:
                self._execute_remote(claimed)
        except (Ignore, Retry):
            raise
        except Exception as exc:
            self._on_failure(claimed, exc)

    def _claim(self, workflow_id: uuid.UUID, step_name: str) -> Claimed | None:
        # Outcomes that end the chain are raised only after the transaction that recorded
        # them has committed (raising inside it would roll the record back).
        stop: Exception | None = None
        with transaction() as session:
            claimed, stop = self._decide(session, workflow_id, step_name)
        if stop is not None:
            raise stop
        return claimed

    def _claim_failed(
        self, workflow_id: uuid.UUID, step_name: str, exc: Exception
    ) -> Claimed | None:
        _, error = classify(exc)
        with transaction() as session:
            workflow = engine.lock_workflow(session, workflow_id)
            if workflow is None or workflow.status not in engine.FORWARD_WORKFLOW_STATUSES:
                raise Ignore()
            step = engine.lock_step(session, workflow_id, step_name)
            if step.status in (StepStatus.PENDING, StepStatus.RUNNING):
                engine.fail_step(session, workflow, step, error)
        raise StepFailed(f"{step_name}: {error['message']}") from exc

    def _decide(
        self, session: Any, workflow_id: uuid.UUID, step_name: str
    ) -> tuple[Claimed | None, Exception | None]:
        workflow = engine.lock_workflow(session, workflow_id)
        if workflow is None:
            log.warning("step %s: workflow %s does not exist", step_name, workflow_id)
            raise Ignore()
        step = engine.lock_step(session, workflow_id, step_name)
        now = engine.db_now(session)  # read under the locks: the time the claim is judged at
        step_def = engine.definition_of(workflow).step(step_name)
        lease = self._lease(step_def)
        holder_gone = holder_is_gone(step.lease_owner)
        decision, reason = engine.decide_forward(
            workflow, step, step_def, lease, now, holder_gone=holder_gone
        )
        if decision == engine.Claim.CONTINUE:
            return None, None
        if decision == engine.Claim.STEP_ASIDE:
            log.info("step %s of %s steps aside: %s", step_name, workflow_id, reason)
            # Visible in the timeline: operators see redeliveries and sweeper re-drives meet.
            engine.record_event(
                session, workflow, "delivery_stepped_aside", step=step, message=reason
            )
            return None, Ignore()
        if decision == engine.Claim.CANCEL:
            engine.record_event(session, workflow, "cancel_honoured", step=step)
            return None, WorkflowCancelled(f"workflow {workflow_id} cancelled at {step_name}")
        if decision == engine.Claim.FAIL:
            if step.status != StepStatus.FAILED:
                engine.fail_step(session, workflow, step, {"type": "Exhausted", "message": reason})
            # Raised again for a step already failed: its on-error link may have been lost.
            return None, StepFailed(f"{step_name}: {reason}")
        if step.status == StepStatus.RUNNING and engine.lease_is_live(step, now):
            engine.record_event(
                session,
                workflow,
                "lease_taken_over",
                step=step,
                message=f"previous holder {step.lease_owner} is gone",
            )
        ctx = self._context(workflow, step, step.attempts + 1)
        skip_reason = self.behaviour.skip(ctx)
        if skip_reason:
            engine.skip_step(session, workflow, step, skip_reason)
            return None, None
        try:
            intent = self.behaviour.plan(ctx) if step.intent is None else None
        except Exception as exc:  # a request the step cannot act on
            _, error = classify(exc)
            engine.fail_step(session, workflow, step, error)
            return None, StepFailed(f"{step_name}: {error['message']}")
        engine.start_attempt(session, workflow, step, lease, now, intent)
        return Claimed(ctx=replace(ctx, intent=step.intent or {}), step_def=step_def), None

    def _execute_local(self, claimed: Claimed) -> None:
        ctx = claimed.ctx
        with transaction() as session:
            workflow, step = self._relock(session, ctx)
            result = self.behaviour.execute(replace(ctx, session=session))
            session.flush()
            # For a local step a crash here loses the effect and the bookkeeping together.
            faults.after_effect(ctx.step_name, ctx.data.get("username"))
            engine.complete_step(
                session,
                workflow,
                step,
                output=result.output,
                compensation=result.compensation,
                context=result.context,
                workflow_output=result.workflow_output,
            )

    def _execute_remote(self, claimed: Claimed) -> None:
        ctx = claimed.ctx
        result = self.behaviour.execute(ctx)
        faults.after_effect(ctx.step_name, ctx.data.get("username"))
        with transaction() as session:
            workflow, step = self._relock(session, ctx)
            engine.complete_step(
                session,
                workflow,
                step,
                output=result.output,
                compensation=result.compensation,
                context=result.context,
                workflow_output=result.workflow_output,
            )

    def _on_failure(self, claimed: Claimed, exc: Exception) -> None:
        ctx, step_def = claimed.ctx, claimed.step_def
        retryable, error = classify(exc)
        with transaction() as session:
            workflow, step = self._relock(session, ctx)
            if retryable and step.attempts < step_def.max_attempts:
                delay = backoff(step.attempts)
                engine.schedule_retry(session, workflow, step, error, delay)
            else:
                engine.fail_step(session, workflow, step, error)
                delay = None
        if delay is not None:
            log.info(
                "step %s of %s attempt %s failed (%s); retry in %.2fs",
                ctx.step_name,
                ctx.workflow_id,
                ctx.attempt,
                error["type"],
                delay,
            )
            raise self.retry(countdown=delay, exc=exc)
        log.warning(
            "step %s of %s failed for good: %s", ctx.step_name, ctx.workflow_id, error["message"]
        )
        raise StepFailed(f"{ctx.step_name}: {error['message']}") from exc


class CompensationTask(SagaTask):
    """Undoes one step: ``run(workflow_id, step_name)``. Never fails the chain it runs in:
    a compensation that fails for good is recorded and the next one still runs."""

    abstract = True
    leased_status = StepStatus.COMPENSATING

    def run(self, workflow_id: str, step_name: str) -> None:
        claimed = self._claim_or_wait(uuid.UUID(workflow_id), step_name)
        if claimed is None:
            return
        ctx = claimed.ctx
        try:
            faults.before_compensation(step_name, ctx.data.get("username"))
            if self.behaviour.local:
                with transaction() as session:
                    workflow, step = self._relock(session, ctx)
                    self.behaviour.compensate(replace(ctx, session=session))
                    engine.finish_compensation(session, workflow, step)
            else:
                self.behaviour.compensate(ctx)
                with transaction() as session:
                    workflow, step = self._relock(session, ctx)
                    engine.finish_compensation(session, workflow, step)
        except (Ignore, Retry):
            raise
        except Exception as exc:
            self._on_failure(claimed, exc)

    def _claim(self, workflow_id: uuid.UUID, step_name: str) -> Claimed | None:
        with transaction() as session:
            workflow = engine.lock_workflow(session, workflow_id)
            if workflow is None:
                raise Ignore()
            step = engine.lock_step(session, workflow_id, step_name)
            now = engine.db_now(session)
            step_def = engine.definition_of(workflow).step(step_name)
            wait = self._attempt_still_running(step, now)
            if wait is None:
                return self._decide(session, workflow, step, step_def, now)
            # The forward attempt may still act: undo only once it is over.
            engine.record_event(
                session,
                workflow,
                "compensation_waits_for_attempt",
                step=step,
                message=f"forward attempt still leased for {wait:.0f}s",
            )
        raise self.retry(countdown=wait)

    def _claim_failed(
        self, workflow_id: uuid.UUID, step_name: str, exc: Exception
    ) -> Claimed | None:
        _, error = classify(exc)
        with transaction() as session:
            workflow = engine.lock_workflow(session, workflow_id)
            if workflow is None or workflow.status != WorkflowStatus.ROLLING_BACK:
                raise Ignore()
            step = engine.lock_step(session, workflow_id, step_name)
            engine.fail_compensation(session, workflow, step, error)
        return None  # recorded; the rest of the undo still runs

    def _decide(
        self,
        session: Any,
        workflow: Workflow,
        step: WorkflowStep,
        step_def: StepDefinition,
        now: Any,
    ) -> Claimed | None:
        lease = self._lease(step_def)
        decision, reason = engine.decide_compensation(
            workflow, step, step_def, lease, now, holder_gone=holder_is_gone(step.lease_owner)
        )
        if decision == engine.Claim.CONTINUE:
            return None
        if decision == engine.Claim.STEP_ASIDE:
            log.info("compensation %s of %s steps aside: %s", step.name, workflow.id, reason)
            raise Ignore()
        if decision == engine.Claim.FAIL:
            engine.fail_compensation(
                session, workflow, step, {"type": "Exhausted", "message": reason}
            )
            return None  # recorded; the rest of the undo still runs
        engine.start_compensation(session, workflow, step, lease, now)
        ctx = self._context(workflow, step, step.compensation_attempts)
        return Claimed(ctx=ctx, step_def=step_def)

    @staticmethod
    def _attempt_still_running(step: WorkflowStep, now: Any) -> float | None:
        """Seconds to wait while a forward attempt of this step may still act, else None."""
        if step.status != StepStatus.RUNNING or not engine.lease_is_live(step, now):
            return None
        if holder_is_gone(step.lease_owner):
            return None
        return (step.lease_expires_at - now).total_seconds() + 1  # type: ignore[operator]

    def _on_failure(self, claimed: Claimed, exc: Exception) -> None:
        ctx, step_def = claimed.ctx, claimed.step_def
        retryable, error = classify(exc)
        with transaction() as session:
            workflow, step = self._relock(session, ctx)
            if retryable and step.compensation_attempts < step_def.compensation_max_attempts:
                delay = backoff(step.compensation_attempts)
                engine.schedule_compensation_retry(session, workflow, step, error, delay)
            else:
                engine.fail_compensation(session, workflow, step, error)
                delay = None
        if delay is not None:
            raise self.retry(countdown=delay, exc=exc)
        log.error(
            "compensation %s of %s failed for good: %s",
            ctx.step_name,
            ctx.workflow_id,
            error["message"],
        )


def _default_limits(task_name: str) -> dict[str, float]:
    """Time limits for a message published without its own (by hand, from Flower): the
    longest any definition gives this task, so no attempt can outlive its lease."""
    timeouts = [
        step.timeout
        for definition in registry
        for step in definition.steps
        if task_name in (step.task, step.compensation)
    ]
    if not timeouts:
        return {}
    soft = min(max(timeouts), get_settings().step_timeout_cap)
    return {"soft_time_limit": soft, "time_limit": soft + GRACE_SECONDS}


def step_task(app: Celery, name: str, behaviour: Step) -> Task:
    """Register the forward task ``name`` running ``behaviour``."""
    attributes = {"name": name, "behaviour": behaviour, **_default_limits(name)}
    return app.register_task(type(_class_name(name), (ForwardStepTask,), attributes)())


def compensation_task(app: Celery, name: str, behaviour: Step) -> Task:
    """Register the compensation task ``name`` undoing ``behaviour``."""
    attributes = {"name": name, "behaviour": behaviour, **_default_limits(name)}
    return app.register_task(type(_class_name(name), (CompensationTask,), attributes)())


def _class_name(task_name: str) -> str:
    return "".join(part.title() for part in task_name.replace(".", "_").split("_")) + "Task"
