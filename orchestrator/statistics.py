"""Workflow statistics of one tenant over a time window, computed by PostgreSQL.

Every figure is an aggregate query (counts, ``avg``, ``percentile_cont``): the cost grows with the
number of groups, not with the number of workflows, and no row travels to Python.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, extract, func, select
from sqlalchemy.orm import Session

from orchestrator.models import Workflow, WorkflowEvent, WorkflowStatus

#: Event kinds counted per step, and the name each is reported under.
STEP_EVENT_KINDS = {
    "step_failed": "failed",
    "step_retry_scheduled": "retried",
    "compensation_failed": "compensation_failed",
}
#: Outcomes that count for the success rate; a cancelled (compensated) workflow is neither.
DECIDED = (WorkflowStatus.COMPLETED, WorkflowStatus.ROLLED_BACK, WorkflowStatus.FAILED)


@dataclass(frozen=True)
class Duration:
    count: int
    mean: float | None
    p95: float | None


@dataclass(frozen=True)
class StepFailures:
    failed: int = 0
    retried: int = 0
    compensation_failed: int = 0


@dataclass(frozen=True)
class Window:
    created_after: datetime
    created_before: datetime


@dataclass(frozen=True)
class Statistics:
    window: Window
    total: int
    by_status: dict[str, int]
    by_type: dict[str, int]
    success_rate: float | None
    duration_seconds: Duration
    step_failures: dict[str, StepFailures] = field(default_factory=dict)
    active: int = 0


def compute(
    session: Session,
    tenant_id: str,
    window: Window,
    workflow_type: str | None = None,
) -> Statistics:
    in_window: list[ColumnElement[bool]] = [
        Workflow.tenant_id == tenant_id,
        Workflow.created_at >= window.created_after,
        Workflow.created_at < window.created_before,
    ]
    if workflow_type is not None:
        in_window.append(Workflow.workflow_type == workflow_type)

    by_status: dict[str, int] = {status.value: 0 for status in WorkflowStatus}
    by_type: dict[str, int] = defaultdict(int)
    for status, workflow_type_, count in session.execute(
        select(Workflow.status, Workflow.workflow_type, func.count())
        .where(*in_window)
        .group_by(Workflow.status, Workflow.workflow_type)
    ):
        by_status[status.value] += count
        by_type[workflow_type_] += count

    decided = sum(by_status[s.value] for s in DECIDED)
    success_rate = (
        round(by_status[WorkflowStatus.COMPLETED.value] / decided, 4) if decided else None
    )
    return Statistics(
        window=window,
        total=sum(by_status.values()),
        by_status=by_status,
        by_type=dict(by_type),
        success_rate=success_rate,
        duration_seconds=_durations(session, in_window),
        step_failures=_step_failures(session, in_window),
        active=_active(session, tenant_id, workflow_type),
    )


def _durations(session: Session, in_window: list[ColumnElement[bool]]) -> Duration:
    seconds = extract("epoch", Workflow.finished_at - Workflow.created_at)
    count, mean, p95 = session.execute(
        select(
            func.count(),
            func.avg(seconds),
            func.percentile_cont(0.95).within_group(seconds),
        ).where(*in_window, Workflow.status == WorkflowStatus.COMPLETED)
    ).one()
    return Duration(
        count=count,
        mean=None if mean is None else round(float(mean), 3),
        p95=None if p95 is None else round(float(p95), 3),
    )


def _step_failures(
    session: Session, in_window: list[ColumnElement[bool]]
) -> dict[str, StepFailures]:
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    for step_name, kind, count in session.execute(
        select(WorkflowEvent.step_name, WorkflowEvent.kind, func.count())
        .join(Workflow, Workflow.id == WorkflowEvent.workflow_id)
        .where(
            *in_window,
            WorkflowEvent.kind.in_(STEP_EVENT_KINDS),
            WorkflowEvent.step_name.is_not(None),
        )
        .group_by(WorkflowEvent.step_name, WorkflowEvent.kind)
    ):
        counts[step_name][STEP_EVENT_KINDS[kind]] = count
    return {name: StepFailures(**by_kind) for name, by_kind in sorted(counts.items())}


def _active(session: Session, tenant_id: str, workflow_type: str | None) -> int:
    query = select(func.count()).where(
        Workflow.tenant_id == tenant_id, Workflow.status.in_(WorkflowStatus.active())
    )
    if workflow_type is not None:
        query = query.where(Workflow.workflow_type == workflow_type)
    return session.scalar(query) or 0
