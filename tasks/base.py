"""The Celery side of every step and compensation task: claim, call, record, publish.

A step message carries only ``(workflow_id, step_name)``. What the delivery should do, what an
outcome means and what runs next are the engine's decisions (orchestrator/engine/saga.py);
this module maps them onto Celery: a retry countdown, an exception that fires the on-error
link, a delivery that steps aside.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, replace
from typing import NoReturn

from celery import Celery, Task
from celery.exceptions import Retry, SoftTimeLimitExceeded
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from orchestrator import engine, faults, metrics, tracing
from orchestrator.db import transaction
from orchestrator.definitions import registry
from orchestrator.errors import AttemptTimedOut, LeaseLost, StepFailed, WorkflowCancelled
from orchestrator.integrations.concurrency import attempt_deadline
from orchestrator.step import Step
from tasks.dispatch import publish
from tasks.holder import current_holder, holder_is_gone

log = logging.getLogger(__name__)


class SagaTask(Task):
    """One direction of one step: ``run(workflow_id, step_name)``."""

    abstract = True
    behaviour: Step
    direction: engine.Direction
    # Our own retries are counted in PostgreSQL; Celery's counter must never stop them.
    max_retries = None
    throws = (StepFailed, WorkflowCancelled)

    def run(self, workflow_id: str, step_name: str, generation: int | None = None) -> None:
        # The task's span (Celery's instrumentation) says which workflow and step it served.
        tracing.annotate(
            workflow_id=workflow_id,
            step=step_name,
            direction=self.direction.name,
            generation=generation,
        )
        if self.behaviour.local:
            self._run_locally(uuid.UUID(workflow_id), step_name, generation)
            return
        claimed = self._claim(uuid.UUID(workflow_id), step_name, generation)
        if claimed is None:
            return
        try:
            self._attempt(claimed)
        except LeaseLost:
            # Our lease expired and another copy took the step over; its result stands.
            log.warning("%s of %s lost its lease", step_name, workflow_id)

    def _observe(self, claimed: engine.Claimed, started: float, outcome: str) -> None:
        """After the outcome's transaction committed: the attempt's duration, and a retry."""
        labels = (claimed.definition.name, claimed.ctx.step_name, self.direction.name)
        metrics.STEP_SECONDS.labels(*labels, outcome).observe(time.monotonic() - started)
        if outcome == "retry":
            metrics.RETRIES.labels(*labels).inc()

    def _attempt(self, claimed: engine.Claimed) -> None:
        forward = self.direction is engine.FORWARD
        started = time.monotonic()
        soft_limit, _ = claimed.step_def.time_limits()
        try:
            if forward:
                faults.delay(claimed.ctx.step_name)
            self._before_effect(claimed)
            # Waits for a system's concurrency slot end in time for the call to fit.
            with attempt_deadline(soft_limit):
                result = self._act(claimed)
            if forward:
                faults.after_effect(claimed.ctx.step_name, claimed.ctx.data.get("username"))
        except (Retry, LeaseLost):
            raise
        except SoftTimeLimitExceeded as exc:
            self._record_failure(claimed, AttemptTimedOut(str(exc)), started)
            return
        except Exception as exc:
            self._record_failure(claimed, exc, started)
            return
        self._record_success(claimed, result, started)

    def _act(self, claimed: engine.Claimed):  # type: ignore[no-untyped-def]
        if self.direction is engine.FORWARD:
            return self.behaviour.execute(claimed.ctx)
        self.behaviour.compensate(claimed.ctx)
        return None

    def _before_effect(self, claimed: engine.Claimed) -> None:
        """Where fault injection acts before an effect (a no-op unless it is switched on)."""
        step_name, username = claimed.ctx.step_name, claimed.ctx.data.get("username")
        if self.direction is engine.FORWARD:
            faults.before_effect(step_name, username)
        else:
            faults.before_compensation(step_name, username)

    def _run_locally(self, workflow_id: uuid.UUID, step_name: str, generation: int | None) -> None:
        """A local step writes only our database, so crash safety needs one transaction: the
        claim, the effect and their record commit together or not at all. A crash anywhere
        loses all three and the redelivered message starts over; no lease or intent outlives
        the transaction, because nothing outside it can have happened. (A step that calls a
        system needs two: its intent and lease must be committed before the call.)

        The price: an attempt whose process dies (a crash, the hard time limit) is not counted,
        so what ends a run of such deaths is the workflow's deadline (the sweeper then rolls
        it back), not the step's attempts. An attempt that fails or times out softly is
        counted as before."""
        if self.direction is engine.FORWARD:
            faults.delay(step_name)
        started = time.monotonic()
        settled: _Settled | None = None
        try:
            with transaction() as session:
                outcome = self._decide(session, workflow_id, step_name, generation)
                if outcome.claimed is not None:
                    settled = self._act_locally(session, outcome.claimed)
        except OperationalError as exc:
            self._retry_for_database(workflow_id, step_name, exc)
        except Exception as exc:
            # A defect met claiming or recording (the effect's own errors are recorded):
            # nothing of this transaction committed, so the step is failed from outside it.
            outcome = self._unclaimable(workflow_id, step_name, exc)
            settled = None
        self._after_claim(workflow_id, step_name, outcome)
        if settled is None:
            return
        claimed = outcome.claimed
        assert claimed is not None
        if settled.failure is None:
            self._observe(claimed, started, "succeeded")
            publish(settled.dispatch)
            return
        assert settled.error is not None
        self._after_failure(claimed, settled.failure, settled.error, started)

    def _act_locally(self, session: Session, claimed: engine.Claimed) -> _Settled:
        """The effect in a savepoint of the claim's transaction, then its record: an effect
        that fails is rolled back alone, and its failure is recorded beside the claim."""
        workflow, step = engine.held(session, claimed)
        local = replace(claimed, ctx=replace(claimed.ctx, session=session))
        try:
            with session.begin_nested():
                self._before_effect(claimed)
                result = self._act(local)
                session.flush()
                if self.direction is engine.FORWARD:
                    # A crash here loses the effect and the bookkeeping together.
                    faults.after_effect(claimed.ctx.step_name, claimed.ctx.data.get("username"))
        except SoftTimeLimitExceeded as exc:
            error: Exception = AttemptTimedOut(str(exc))
        except Exception as exc:
            error = exc
        else:
            dispatch = engine.record_success(
                session, claimed, workflow, step, result, holder_is_gone
            )
            return _Settled(dispatch=dispatch)
        failure = engine.record_failure(session, claimed, workflow, step, error, holder_is_gone)
        return _Settled(failure=failure, error=error)

    def owner(self) -> str:
        return current_holder(self.request.id)

    def _claim(
        self, workflow_id: uuid.UUID, step_name: str, generation: int | None
    ) -> engine.Claimed | None:
        try:
            with transaction() as session:
                outcome = self._decide(session, workflow_id, step_name, generation)
        except OperationalError as exc:
            self._retry_for_database(workflow_id, step_name, exc)
        except Exception as exc:
            outcome = self._unclaimable(workflow_id, step_name, exc)
        self._after_claim(workflow_id, step_name, outcome)
        return outcome.claimed

    def _decide(
        self, session: Session, workflow_id: uuid.UUID, step_name: str, generation: int | None
    ) -> engine.ClaimOutcome:
        return engine.claim(
            session,
            self.direction,
            self.behaviour,
            workflow_id,
            step_name,
            self.owner(),
            holder_is_gone,
            generation,
        )

    def _retry_for_database(
        self, workflow_id: uuid.UUID, step_name: str, exc: OperationalError
    ) -> NoReturn:
        """Our own database is unreachable: no attempt has started, nothing is counted, so
        wait for it (Celery's retry sends the same message again later)."""
        delay = engine.backoff(self.request.retries + 1)
        log.warning("%s of %s: database unavailable, retry in %.1fs", step_name, workflow_id, delay)
        raise self.retry(countdown=delay, exc=exc) from exc

    def _unclaimable(
        self, workflow_id: uuid.UUID, step_name: str, exc: Exception
    ) -> engine.ClaimOutcome:
        log.exception("%s of %s could not be claimed", step_name, workflow_id)
        with transaction() as session:
            return engine.fail_unclaimable(
                session, self.direction, workflow_id, step_name, exc, holder_is_gone
            )

    def _after_claim(
        self, workflow_id: uuid.UUID, step_name: str, outcome: engine.ClaimOutcome
    ) -> None:
        """Published, and stopping raised, only now that the transaction that decided has
        committed (raising inside it would roll the record back)."""
        if outcome.aside:
            log.info("%s of %s steps aside: %s", step_name, workflow_id, outcome.aside)
        publish(outcome.dispatch)
        if outcome.stop is not None:
            raise outcome.stop

    def _record_success(self, claimed: engine.Claimed, result: object, started: float) -> None:
        with transaction() as session:
            workflow, step = engine.relock(session, claimed, self.owner())
            dispatch = engine.record_success(
                session,
                claimed,
                workflow,
                step,
                result,
                holder_is_gone,  # type: ignore[arg-type]
            )
        self._observe(claimed, started, "succeeded")
        publish(dispatch)

    def _record_failure(self, claimed: engine.Claimed, exc: Exception, started: float) -> None:
        with transaction() as session:
            workflow, step = engine.relock(session, claimed, self.owner())
            outcome = engine.record_failure(session, claimed, workflow, step, exc, holder_is_gone)
        self._after_failure(claimed, outcome, exc, started)

    def _after_failure(
        self,
        claimed: engine.Claimed,
        outcome: engine.FailureOutcome,
        exc: Exception,
        started: float,
    ) -> None:
        """Once the failure's record has committed: publish, then retry or stop."""
        ctx = claimed.ctx
        self._observe(claimed, started, _failure_outcome(outcome, exc))
        publish(outcome.dispatch)
        if outcome.retry_in is not None:
            log.info(
                "%s %s of %s attempt %s failed (%s); retry in %.2fs",
                self.direction.name,
                ctx.step_name,
                ctx.workflow_id,
                ctx.attempt,
                outcome.error.get("type"),
                outcome.retry_in,
            )
            raise self.retry(countdown=outcome.retry_in, exc=exc)
        log.warning(
            "%s %s of %s failed for good: %s",
            self.direction.name,
            ctx.step_name,
            ctx.workflow_id,
            outcome.error.get("message"),
        )
        if outcome.stop is not None:
            raise outcome.stop from exc


@dataclass(frozen=True)
class _Settled:
    """How a local step's one transaction ended: its successor messages, or its failure."""

    dispatch: engine.Dispatch | None = None
    failure: engine.FailureOutcome | None = None
    error: Exception | None = None


def _failure_outcome(outcome: engine.FailureOutcome, exc: Exception) -> str:
    """The outcome label of an attempt that did not succeed, for the step metrics."""
    if outcome.retry_in is None:
        return "failed"
    return "deferred" if engine.given_back(exc) else "retry"


def _default_limits(task_name: str) -> dict[str, float]:
    """Time limits for a message published without its own (by hand, from Flower): the
    longest any definition gives this task, so no attempt can outlive its lease."""
    steps = [
        step
        for definition in registry
        for step in definition.steps
        if task_name in (step.task, step.compensation)
    ]
    if not steps:
        return {}
    soft, hard = max(step.time_limits() for step in steps)
    return {"soft_time_limit": soft, "time_limit": hard}


def _register(app: Celery, name: str, behaviour: Step, direction: engine.Direction) -> Task:
    class_name = "".join(part.title() for part in name.replace(".", "_").split("_")) + "Task"
    attributes = {
        "name": name,
        "behaviour": behaviour,
        "direction": direction,
        **_default_limits(name),
    }
    return app.register_task(type(class_name, (SagaTask,), attributes)())


def step_task(app: Celery, name: str, behaviour: Step) -> Task:
    """Register the forward task ``name`` running ``behaviour``."""
    return _register(app, name, behaviour, engine.FORWARD)


def compensation_task(app: Celery, name: str, behaviour: Step) -> Task:
    """Register the compensation task ``name`` undoing ``behaviour``."""
    return _register(app, name, behaviour, engine.BACKWARD)
