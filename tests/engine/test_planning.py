"""The engine's pure decisions, without a database or a worker: what runs next, what is undone
next, and what a delivered message should do."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from orchestrator.definitions import StepDefinition, WorkflowDefinition
from orchestrator.engine import planning
from orchestrator.engine.delivery import BACKWARD, FORWARD, Claim
from orchestrator.engine.leases import Lease
from orchestrator.models import StepStatus, Workflow, WorkflowStatus, WorkflowStep

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
S = StepStatus


def never_gone(owner: str | None) -> bool:
    return False


def always_gone(owner: str | None) -> bool:
    return True


def step(name: str, *depends_on: str) -> StepDefinition:
    return StepDefinition(
        name=name, system="x", task=f"t.{name}", compensation=f"u.{name}", depends_on=depends_on
    )


# a ─▶ c ─▶ d
# b ───────┘     e (alone)
DEFINITION = WorkflowDefinition(
    "w", 1, (step("a"), step("b"), step("c", "a"), step("d", "b", "c"), step("e"))
)


def workflow(status: WorkflowStatus = WorkflowStatus.RUNNING, **states: StepStatus) -> Workflow:
    rows = []
    for position, definition in enumerate(DEFINITION.steps):
        status_of = states.get(definition.name, S.PENDING)
        rows.append(
            WorkflowStep(
                position=position,
                name=definition.name,
                system="x",
                status=status_of,
                attempts=0 if status_of == S.PENDING else 1,
                compensation_attempts=0,
                intent=None,
            )
        )
    return Workflow(id=uuid.uuid4(), status=status, steps=rows, cancel_requested_at=None)


def lease_running(row: WorkflowStep, seconds: float = 30) -> None:
    row.lease_owner = "someone"
    row.lease_expires_at = NOW + timedelta(seconds=seconds)


def test_every_step_without_dependencies_starts_at_once():
    assert planning.runnable_forward(workflow(), DEFINITION) == ["a", "b", "e"]


def test_a_join_starts_only_when_its_last_dependency_is_done():
    half = workflow(a=S.COMPLETED, b=S.RUNNING, c=S.COMPLETED)
    assert planning.unblocked_by(half, DEFINITION, "c") == []
    both = workflow(a=S.COMPLETED, b=S.COMPLETED, c=S.COMPLETED)
    assert planning.unblocked_by(both, DEFINITION, "b") == ["d"]


def test_a_deferred_step_is_left_to_its_own_retry_message():
    # an attempt given back (a slot wait): attempts back to 0, a retry due; a redelivered
    # message of its dependency must not start it before that (nor count as its first start)
    wf = workflow(a=S.COMPLETED)
    deferred = {row.name: row for row in wf.steps}["c"]
    deferred.retry_due_at = NOW + timedelta(seconds=1)
    deferred.intent = {}
    assert planning.unblocked_by(wf, DEFINITION, "a") == []
    assert planning.runnable_forward(wf, DEFINITION, include_started=True) == ["b", "c", "e"]


def test_a_skipped_step_counts_as_done():
    wf = workflow(a=S.SKIPPED)
    assert planning.unblocked_by(wf, DEFINITION, "a") == ["c"]


def test_undo_waits_for_everything_built_on_a_step():
    # a, b and c completed; d failed after acting; e completed
    wf = workflow(
        WorkflowStatus.ROLLING_BACK,
        a=S.COMPLETED,
        b=S.COMPLETED,
        c=S.COMPLETED,
        d=S.FAILED,
        e=S.COMPLETED,
    )
    assert planning.undoable(wf, DEFINITION, NOW, never_gone) == ["d", "e"]
    rows = {r.name: r for r in wf.steps}
    rows["d"].status = S.COMPENSATED
    assert planning.undoable(wf, DEFINITION, NOW, never_gone, ["d", "b", "c"]) == ["b", "c"]
    rows["c"].status = S.COMPENSATION_FAILED  # dealt with, if badly: a is undone all the same
    assert planning.undoable(wf, DEFINITION, NOW, never_gone, ["c", "a"]) == ["a"]


def test_a_sibling_still_running_is_not_undone_until_it_comes_back():
    wf = workflow(WorkflowStatus.ROLLING_BACK, a=S.FAILED, b=S.RUNNING, e=S.COMPLETED)
    rows = {r.name: r for r in wf.steps}
    lease_running(rows["b"])
    assert planning.undoable(wf, DEFINITION, NOW, never_gone) == ["a", "e"]
    assert not planning.rollback_settled(wf, DEFINITION, NOW, never_gone)
    # Its holder is known to be dead: the attempt can no longer act.
    assert planning.undoable(wf, DEFINITION, NOW, always_gone) == ["a", "b", "e"]


def test_a_step_that_never_started_needs_no_undo():
    wf = workflow(WorkflowStatus.ROLLING_BACK, a=S.FAILED)
    assert planning.undoable(wf, DEFINITION, NOW, never_gone) == ["a"]
    {r.name: r for r in wf.steps}["a"].status = S.COMPENSATED
    assert planning.rollback_settled(wf, DEFINITION, NOW, never_gone)


@pytest.mark.parametrize(
    ("states", "name", "expected"),
    [
        ({"a": S.COMPLETED}, "c", Claim.RUN),
        ({"a": S.RUNNING}, "c", Claim.STEP_ASIDE),  # out of order
        ({"a": S.COMPLETED, "c": S.COMPLETED}, "c", Claim.NOTHING),
        ({"a": S.FAILED}, "a", Claim.FAIL),  # the on-error link was lost
    ],
)
def test_forward_delivery_decisions(states, name, expected):
    wf = workflow(**states)
    row = {r.name: r for r in wf.steps}[name]
    decision, _ = FORWARD.decide(wf, DEFINITION, row, Lease("me", 30), NOW, never_gone)
    assert decision == expected


def test_a_second_copy_steps_aside_at_a_live_lease_and_takes_over_a_dead_one():
    wf = workflow(a=S.RUNNING)
    row = {r.name: r for r in wf.steps}["a"]
    lease_running(row)
    decision, reason = FORWARD.decide(wf, DEFINITION, row, Lease("me", 30), NOW, never_gone)
    assert (decision, reason) == (Claim.STEP_ASIDE, "leased by someone")
    decision, _ = FORWARD.decide(wf, DEFINITION, row, Lease("me", 30), NOW, always_gone)
    assert decision == Claim.RUN


def test_backward_delivery_waits_for_dependents_and_for_its_own_forward_attempt():
    wf = workflow(WorkflowStatus.ROLLING_BACK, a=S.COMPLETED, c=S.RUNNING)
    rows = {r.name: r for r in wf.steps}
    lease_running(rows["c"])
    decision, reason = BACKWARD.decide(wf, DEFINITION, rows["a"], Lease("me", 30), NOW, never_gone)
    assert decision == Claim.STEP_ASIDE and "c is not undone yet" in reason
    decision, reason = BACKWARD.decide(wf, DEFINITION, rows["c"], Lease("me", 30), NOW, never_gone)
    assert decision == Claim.STEP_ASIDE and "forward attempt is still running" in reason


def test_cancel_and_deadline_stop_forward_deliveries():
    wf = workflow()
    row = wf.steps[0]
    wf.cancel_requested_at = NOW
    assert FORWARD.decide(wf, DEFINITION, row, Lease("me", 30), NOW, never_gone)[0] == Claim.CANCEL
    wf.cancel_requested_at = None
    wf.deadline_at = NOW - timedelta(seconds=1)
    assert FORWARD.decide(wf, DEFINITION, row, Lease("me", 30), NOW, never_gone)[0] == Claim.FAIL
