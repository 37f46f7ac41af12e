"""A workflow waiting its turn behind a backlog is not lost; a dead attempt is, regardless."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from orchestrator import engine
from orchestrator.db import transaction
from orchestrator.engine.rows import stalled_workflows, utcnow
from orchestrator.models import StepStatus, Workflow, WorkflowStep
from orchestrator.service import OrchestrationService
from tests.support.requests import provision_body


class _Nowhere:
    def publish(self, dispatch: engine.Dispatch) -> None:
        pass

    def sync_plan(self, plan_id: int) -> None:
        pass


def _quiet_workflow(tenant: str, plan_id: int, seconds: float):  # type: ignore[no-untyped-def]
    """A submitted workflow whose first messages were 'published' ``seconds`` ago."""
    service = OrchestrationService(_Nowhere())
    workflow = service.submit(
        "provision_subscriber", tenant, provision_body(plan_id, discovered=False)
    ).workflow
    with transaction() as session:
        session.execute(
            update(Workflow)
            .where(Workflow.id == workflow.id)
            .values(updated_at=utcnow() - timedelta(seconds=seconds))
        )
    return workflow.id


def _stalled(now, lost_after):  # type: ignore[no-untyped-def]
    with transaction() as session:
        return {w.id for w in stalled_workflows(session, now, 3.0, 1000, lost_after=lost_after)}


def test_a_queued_workflow_is_lost_only_after_the_backlog_allowance(database, tenant, plan):
    waiting = _quiet_workflow(tenant, plan.id, seconds=10)
    now = utcnow()

    assert waiting in _stalled(now, lost_after=None)  # quiet 10 s > 3 s: lost, no backlog
    assert waiting not in _stalled(now, lost_after=30.0)  # behind a backlog: waiting its turn
    assert waiting in _stalled(now + timedelta(seconds=25), lost_after=30.0)


def test_a_dead_attempt_is_re_driven_whatever_the_backlog(database, tenant, plan):
    dead = _quiet_workflow(tenant, plan.id, seconds=10)
    with transaction() as session:
        session.execute(
            update(WorkflowStep)
            .where(WorkflowStep.workflow_id == dead, WorkflowStep.name == "create_customer")
            .values(
                status=StepStatus.RUNNING,
                lease_owner="gone",
                lease_expires_at=utcnow() - timedelta(seconds=1),
            )
        )

    assert dead in _stalled(utcnow(), lost_after=30.0)
