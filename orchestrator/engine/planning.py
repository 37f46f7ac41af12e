"""What may run next, forward and backward, read from the dependency graph and the step rows.

Forward, a step may run once every step it depends on is done. Backward (a rollback), a step
is undone once every step that depends on it has been dealt with and no attempt of its own may
still be acting. Both are pure functions of the definition and the rows, so they have unit
tests without a worker.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from orchestrator.definitions import StepDefinition, WorkflowDefinition
from orchestrator.engine.leases import HolderGone, in_flight
from orchestrator.models import StepStatus, Workflow, WorkflowStep


def needs_compensation(step: WorkflowStep, step_def: StepDefinition) -> bool:
    """Whether the step may have left something that its compensation must remove."""
    if step_def.compensation is None:
        return False
    if step.status in (StepStatus.COMPENSATED, StepStatus.SKIPPED):
        return False
    if step.status == StepStatus.COMPLETED:
        return True
    # A step that ever started (or recorded its intent) may have acted even if it never
    # reported back: failed, timed out, waiting for a retry, or killed mid-call.
    return step.attempts > 0 or step.intent is not None


def undo_outstanding(step: WorkflowStep, step_def: StepDefinition) -> bool:
    """Whether the rollback still has to deal with this step."""
    return needs_compensation(step, step_def) and step.status not in StepStatus.undone()


def _rows(workflow: Workflow) -> dict[str, WorkflowStep]:
    return {step.name: step for step in workflow.steps}


def dependencies_done(definition: WorkflowDefinition, rows: dict[str, WorkflowStep], name: str):
    return all(rows[d].status in StepStatus.done() for d in definition.step(name).depends_on)


def runnable_forward(
    workflow: Workflow,
    definition: WorkflowDefinition,
    candidates: Iterable[str] | None = None,
    *,
    include_started: bool = False,
) -> list[str]:
    """Steps (of ``candidates``, default all) whose dependencies are done and that have not
    started. ``include_started`` adds steps that started but are neither done nor failed: the
    sweeper's re-drive, whose earlier messages may be lost (their leases have run out)."""
    rows = _rows(workflow)
    names = list(candidates) if candidates is not None else [s.name for s in definition.steps]
    ready = []
    for name in names:
        row = rows[name]
        # never started: a deferred attempt (given back, see failures.given_back) leaves
        # attempts at 0 but a retry due, and only its own retry message runs it
        waiting = (
            row.status == StepStatus.PENDING and row.attempts == 0 and row.retry_due_at is None
        )
        lost = include_started and row.status in (StepStatus.PENDING, StepStatus.RUNNING)
        if (waiting or lost) and dependencies_done(definition, rows, name):
            ready.append(name)
    return ready


def unblocked_by(workflow: Workflow, definition: WorkflowDefinition, name: str) -> list[str]:
    """The steps that ``name`` being done lets start now (the join is decided here: of two
    siblings finishing, only the second sees every dependency done)."""
    return runnable_forward(workflow, definition, definition.dependents(name))


def all_done(workflow: Workflow) -> bool:
    return all(step.status in StepStatus.done() for step in workflow.steps)


def undoable(
    workflow: Workflow,
    definition: WorkflowDefinition,
    now: datetime,
    holder_gone: HolderGone,
    candidates: Iterable[str] | None = None,
) -> list[str]:
    """Steps (of ``candidates``, default all) whose undo may start now: outstanding, not in
    flight (forward or undo), and every step depending on them dealt with."""
    rows = _rows(workflow)
    names = list(candidates) if candidates is not None else [s.name for s in definition.steps]
    ready = []
    for name in names:
        row = rows[name]
        if not undo_outstanding(row, definition.step(name)):
            continue
        if in_flight(row, now, holder_gone):
            continue
        if any(
            undo_outstanding(rows[d], definition.step(d)) or in_flight(rows[d], now, holder_gone)
            for d in all_dependents(definition, name)
        ):
            continue
        ready.append(name)
    return ready


def all_dependents(definition: WorkflowDefinition, name: str) -> set[str]:
    found: set[str] = set()
    pending = list(definition.dependents(name))
    while pending:
        current = pending.pop()
        if current not in found:
            found.add(current)
            pending.extend(definition.dependents(current))
    return found


def rollback_settled(
    workflow: Workflow, definition: WorkflowDefinition, now: datetime, holder_gone: HolderGone
) -> bool:
    """Whether nothing is left for the rollback to do or wait for."""
    return not any(
        in_flight(step, now, holder_gone)
        or (
            undo_outstanding(step, definition.step(step.name))
            and step.status != StepStatus.COMPENSATION_FAILED
        )
        for step in workflow.steps
    )


def left_behind(workflow: Workflow, definition: WorkflowDefinition) -> list[dict[str, Any]]:
    """What a rollback could not remove, for the operator: each step, where, and how to find it."""
    return [
        {
            "step": step.name,
            "system": step.system,
            "status": step.status.value,
            "resource": step.compensation or step.intent,
            "error": step.error,
        }
        for step in sorted(workflow.steps, key=lambda s: -definition.stage(s.name))
        if step.status == StepStatus.COMPENSATION_FAILED
    ]


def forward_left_undone(workflow: Workflow) -> list[dict[str, Any]]:
    """What a forward recovery (a deprovisioning) has not done yet: every step not done."""
    return [
        {
            "step": step.name,
            "system": step.system,
            "status": step.status.value,
            "resource": step.compensation or step.intent,
            "error": step.error,
        }
        for step in workflow.steps
        if step.status not in StepStatus.done()
    ]
