"""Helpers of the API tests: auth headers, and workflows written straight to the database in a
chosen state (for tests about the API, not the engine)."""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from orchestrator import engine
from orchestrator.apikeys import create_key, ensure_tenant
from orchestrator.db import transaction
from orchestrator.models import (
    Customer,
    ResourceClaim,
    Subscriber,
    Workflow,
    WorkflowEvent,
    WorkflowStatus,
    WorkflowStep,
)
from orchestrator.workflows.provision_subscriber import DEFINITION as PROVISION_SUBSCRIBER
from tests.support.requests import provision_body

WORKFLOWS = "/api/v1/orchestration/workflows"
PROVISION = "/api/v1/orchestration/provision-subscriber"


def make_key(tenant_id: str, role: str) -> str:
    """A new API key (the key itself) of ``role`` for ``tenant_id``, created if need be."""
    with transaction() as session:
        return create_key(session, tenant_id, role, f"test {role}")[1]


def auth(key: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **headers}


def seed_workflow(
    tenant_id: str,
    status: WorkflowStatus = WorkflowStatus.COMPLETED,
    *,
    plan_id: int = 1,
    created_at: datetime | None = None,
    duration: timedelta | None = None,
    workflow_type: str | None = None,
    output: dict[str, Any] | None = None,
    events: list[tuple[str, str]] = (),  # type: ignore[assignment]
) -> uuid.UUID:
    """A workflow in ``status``, as if it had run.

    Active ones get a live lease on their first step, so the test worker's sweeper (if one
    runs) leaves them alone instead of re-driving them.
    """
    created = created_at or engine.utcnow()
    with transaction() as session:
        ensure_tenant(session, tenant_id)
        workflow = engine.new_workflow(
            session,
            PROVISION_SUBSCRIBER,
            tenant_id=tenant_id,
            input_data={"username": f"seed-{secrets.token_hex(4)}", "plan": {"id": plan_id}},
            sealed_secrets=None,
            deadline=timedelta(hours=1),
        )
        workflow.status = status
        workflow.created_at = created
        workflow.output = output or {}
        if "subscriber_id" in workflow.output:
            workflow.subscriber_id = uuid.UUID(workflow.output["subscriber_id"])
        if workflow_type is not None:
            workflow.workflow_type = workflow_type
        if status.is_terminal:
            workflow.started_at = created
            workflow.finished_at = created + (duration or timedelta(seconds=1))
        else:
            step = workflow.steps[0]
            step.lease_owner = "api-tests"
            step.lease_expires_at = engine.utcnow() + timedelta(hours=1)
        for step_name, kind in events:
            session.add(
                WorkflowEvent(
                    workflow_id=workflow.id,
                    tenant_id=tenant_id,
                    run=1,
                    step_name=step_name,
                    kind=kind,
                )
            )
        return workflow.id


def snapshot(workflow_id: uuid.UUID) -> dict[str, Any]:
    """Everything an API call could change about a workflow."""
    with transaction() as session:
        workflow = session.get(Workflow, workflow_id)
        assert workflow is not None
        return {
            "status": workflow.status,
            "run": workflow.run,
            "cancel_requested_at": workflow.cancel_requested_at,
            "updated_at": workflow.updated_at,
            "steps": [
                (s.name, s.status, s.attempts, s.compensation_attempts) for s in workflow.steps
            ],
            "events": session.scalar(
                select(func.count()).where(WorkflowEvent.workflow_id == workflow_id)
            ),
        }


def row_counts(tenant_id: str) -> dict[str, int]:
    """The tenant's rows in every table a provisioning request writes, and all claims."""
    with transaction() as session:
        counts = {
            model.__tablename__: session.scalar(
                select(func.count()).select_from(model).where(model.tenant_id == tenant_id)
            )
            for model in (Workflow, WorkflowEvent, Customer, Subscriber)
        }
        counts["workflow_steps"] = session.scalar(
            select(func.count())
            .select_from(WorkflowStep)
            .join(Workflow)
            .where(Workflow.tenant_id == tenant_id)
        )
        counts["resource_claims"] = session.scalar(
            select(func.count())
            .select_from(ResourceClaim)
            .join(Workflow)
            .where(Workflow.tenant_id == tenant_id)
        )
        return counts


def request_body(plan_id: int, **overrides: Any) -> dict[str, Any]:
    """A valid provisioning request, for tests that run no worker (the ONU is not registered
    with the simulators)."""
    return provision_body(plan_id, discovered=False, **overrides)
