"""What a delivered step message should do, decided under the row locks.

One :class:`Direction` describes each half of a saga (running steps, undoing them), so the
rules that are the same both ways are written once: leases, attempt limits, the order the
dependency graph imposes.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from orchestrator.definitions import StepDefinition, WorkflowDefinition
from orchestrator.engine.leases import HolderGone, Lease, held_by_another, in_flight
from orchestrator.engine.planning import all_dependents, undo_outstanding
from orchestrator.models import StepStatus, Workflow, WorkflowStatus, WorkflowStep


class Claim(enum.Enum):
    RUN = "run"  # this copy owns the attempt
    NOTHING = "nothing"  # already done, skipped or undone: nothing to do
    STEP_ASIDE = "step_aside"  # another copy holds a live lease, or it is not this step's turn
    FAIL = "fail"  # out of attempts or past the deadline: give the step up
    CANCEL = "cancel"  # an operator asked to cancel: stop at this boundary


@dataclass(frozen=True)
class Direction:
    name: str
    #: The status a step holds its lease in while this direction acts on it.
    leased_status: StepStatus
    #: The workflow status in which this direction acts.
    workflow_statuses: frozenset[WorkflowStatus]

    def task(self, step_def: StepDefinition) -> str:
        return step_def.task if self is FORWARD else step_def.compensation  # type: ignore[return-value]

    def attempts(self, step: WorkflowStep) -> int:
        return step.attempts if self is FORWARD else step.compensation_attempts

    def max_attempts(self, step_def: StepDefinition) -> int:
        return step_def.max_attempts if self is FORWARD else step_def.compensation_max_attempts

    def decide(
        self,
        workflow: Workflow,
        definition: WorkflowDefinition,
        step: WorkflowStep,
        lease: Lease,
        now: datetime,
        holder_gone: HolderGone,
    ) -> tuple[Claim, str | None]:
        if workflow.status not in self.workflow_statuses:
            return Claim.STEP_ASIDE, f"workflow is {workflow.status.value}"
        step_def = definition.step(step.name)
        settled = self._settled(workflow, definition, step)
        if settled is not None:
            return settled
        blocker = self._blocker(workflow, definition, step, now, holder_gone)
        if blocker is not None:
            # A stale copy (an earlier run's redelivered message, a sweeper re-drive) must not
            # act before (or, undoing, after) the steps its own step is bound to.
            return Claim.STEP_ASIDE, f"out of order: {blocker}"
        if held_by_another(step, self.leased_status, lease, now, holder_gone):
            return Claim.STEP_ASIDE, f"leased by {step.lease_owner}"
        if self is FORWARD:
            if workflow.cancel_requested_at is not None:
                return Claim.CANCEL, "cancel requested"
            if workflow.deadline_at is not None and workflow.deadline_at < now:
                return Claim.FAIL, "workflow deadline exceeded"
        if self.attempts(step) >= self.max_attempts(step_def):
            what = "attempts" if self is FORWARD else "compensation attempts"
            return Claim.FAIL, (
                f"no {what} left ({self.attempts(step)}/{self.max_attempts(step_def)})"
            )
        return Claim.RUN, None

    def _settled(
        self, workflow: Workflow, definition: WorkflowDefinition, step: WorkflowStep
    ) -> tuple[Claim, str | None] | None:
        if self is FORWARD:
            if step.status in StepStatus.done():
                return Claim.NOTHING, None
            if step.status == StepStatus.FAILED:
                # Failed for good, yet the workflow still runs: the on-error link was lost.
                return Claim.FAIL, "the step had already failed"
            if step.status not in (StepStatus.PENDING, StepStatus.RUNNING):
                return Claim.STEP_ASIDE, f"step is {step.status.value}"
            return None
        if not undo_outstanding(step, definition.step(step.name)):
            return Claim.NOTHING, None
        return None

    def _blocker(
        self,
        workflow: Workflow,
        definition: WorkflowDefinition,
        step: WorkflowStep,
        now: datetime,
        holder_gone: HolderGone,
    ) -> str | None:
        rows = {s.name: s for s in workflow.steps}
        if self is FORWARD:
            for name in definition.step(step.name).depends_on:
                if rows[name].status not in StepStatus.done():
                    return f"{name} has not finished"
            return None
        if step.status == StepStatus.RUNNING and in_flight(step, now, holder_gone):
            return "its forward attempt is still running"
        for name in sorted(all_dependents(definition, step.name)):
            row = rows[name]
            if undo_outstanding(row, definition.step(name)) or in_flight(row, now, holder_gone):
                return f"{name} is not undone yet"
        return None


FORWARD = Direction(
    name="forward",
    leased_status=StepStatus.RUNNING,
    workflow_statuses=WorkflowStatus.forward(),
)
BACKWARD = Direction(
    name="backward",
    leased_status=StepStatus.COMPENSATING,
    workflow_statuses=frozenset({WorkflowStatus.ROLLING_BACK}),
)
