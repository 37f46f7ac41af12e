"""The event log: every transition of a workflow or a step, appended, never changed."""

from __future__ import annotations

import enum
from typing import Any

from sqlalchemy import func
from sqlalchemy.orm import Session

from orchestrator.models import Workflow, WorkflowEvent, WorkflowStep


class EventKind(enum.StrEnum):
    WORKFLOW_CREATED = "workflow_created"
    WORKFLOW_STATUS = "workflow_status"
    STEP_STARTED = "step_started"
    STEP_COMPLETED = "step_completed"
    STEP_SKIPPED = "step_skipped"
    STEP_RETRY_SCHEDULED = "step_retry_scheduled"
    #: The attempt never reached its system (a concurrency limit's slots stayed taken): it is
    #: given back, not counted, and the step runs again shortly.
    STEP_DEFERRED = "step_deferred"
    STEP_FAILED = "step_failed"
    #: A step still in flight when the rollback began came back; its result is recorded, and it
    #: will not be tried again.
    STEP_SETTLED_DURING_ROLLBACK = "step_settled_during_rollback"
    COMPENSATION_STARTED = "compensation_started"
    COMPENSATION_COMPLETED = "compensation_completed"
    COMPENSATION_RETRY_SCHEDULED = "compensation_retry_scheduled"
    COMPENSATION_DEFERRED = "compensation_deferred"
    COMPENSATION_FAILED = "compensation_failed"
    DELIVERY_STEPPED_ASIDE = "delivery_stepped_aside"
    LEASE_TAKEN_OVER = "lease_taken_over"
    CANCEL_REQUESTED = "cancel_requested"
    CANCEL_HONOURED = "cancel_honoured"
    RETRY_REQUESTED = "retry_requested"
    SWEEPER_REDRIVE = "sweeper_redrive"
    SWEEPER_REDRIVE_COMPENSATION = "sweeper_redrive_compensation"


def record_event(
    session: Session,
    workflow: Workflow,
    kind: EventKind,
    *,
    step: WorkflowStep | None = None,
    from_status: str | None = None,
    to_status: str | None = None,
    attempt: int | None = None,
    message: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    session.add(
        WorkflowEvent(
            workflow_id=workflow.id,
            tenant_id=workflow.tenant_id,
            run=workflow.run,
            step_name=step.name if step else None,
            kind=kind.value,
            from_status=from_status,
            to_status=to_status,
            attempt=attempt,
            message=message,
            details=details,
        )
    )
    # Every transition is also a heartbeat: the sweeper judges staleness by updated_at. The
    # database's clock, like every time a lease or a staleness is judged by (see rows.db_now).
    workflow.updated_at = func.clock_timestamp()
