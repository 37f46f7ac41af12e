"""Events into the outbox, in the transaction that caused them; published after its commit.

A workflow that ends writes one ``webhook_deliveries`` row per enabled endpoint of its tenant
that subscribed to the event, in the same transaction as the status change: the event exists
exactly when the status does. Once that transaction commits, each row's id is published to the
``webhooks`` queue (ids only: the payload stays in PostgreSQL, the secret in its sealed
column). A publish that is lost (a crash, a broker down) is found by the delivery sweeper.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.aftercommit import after_commit
from orchestrator.models import (
    BulkJob,
    DeliveryStatus,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEventType,
    Workflow,
)

log = logging.getLogger(__name__)

#: Publishes delivery messages by id (``bulk``: a bulk job's event, which yields to interactive
#: ones); set by the process that owns a Celery app (tasks.app). A process without one leaves
#: its events to the delivery sweeper.
Publisher = Callable[..., None]
_publisher: Publisher | None = None


def publish_with(publisher: Publisher | None) -> None:
    """Make this process publish new deliveries with ``publisher`` after each commit."""
    global _publisher
    _publisher = publisher


def _publish(delivery_ids: Sequence[uuid.UUID], bulk: bool) -> None:
    if _publisher is None:
        log.info("no webhook publisher here: %d deliveries left to the sweeper", len(delivery_ids))
        return
    _publisher(delivery_ids, bulk=bulk)


def workflow_payload(workflow: Workflow, event_id: uuid.UUID, now: datetime) -> dict[str, Any]:
    """What a receiver gets: the workflow's outcome, never its input (nor any secret)."""
    return {
        "id": str(event_id),
        "type": WebhookEventType.for_workflow(workflow.status).value,
        "created_at": now.isoformat(),
        "tenant_id": workflow.tenant_id,
        "workflow": {
            "id": str(workflow.id),
            "workflow_type": workflow.workflow_type,
            "status": workflow.status.value,
            "subscriber_id": str(workflow.subscriber_id) if workflow.subscriber_id else None,
            "output": workflow.output or {},
            # For failed, with left_behind: what a person has to clean up, and where.
            "error": workflow.error,
        },
    }


def workflow_finished(session: Session, workflow: Workflow) -> list[uuid.UUID]:
    """Record the event of a workflow that just reached a terminal status, for every endpoint
    of its tenant that wants it; publish them once the caller's transaction commits."""
    event_type = WebhookEventType.for_workflow(workflow.status)
    return _record(
        session,
        workflow.tenant_id,
        event_type,
        partial(workflow_payload, workflow),
        workflow_id=workflow.id,
        bulk=workflow.bulk_job_id is not None,
    )


def bulk_job_finished(session: Session, job: BulkJob, counts: dict[str, int]) -> list[uuid.UUID]:
    """Record ``bulk_job.finished`` for a job that completed or was cancelled."""

    def payload(event_id: uuid.UUID, now: datetime) -> dict[str, Any]:
        return {
            "id": str(event_id),
            "type": WebhookEventType.BULK_JOB_FINISHED.value,
            "created_at": now.isoformat(),
            "tenant_id": job.tenant_id,
            "bulk_job": {
                "id": str(job.id),
                "status": job.status.value,
                "total": job.total_rows,
                "counts": {name: number for name, number in counts.items() if number},
            },
        }

    return _record(session, job.tenant_id, WebhookEventType.BULK_JOB_FINISHED, payload, bulk=True)


def _record(
    session: Session,
    tenant_id: str,
    event_type: WebhookEventType,
    payload: Callable[[uuid.UUID, datetime], dict[str, Any]],
    *,
    workflow_id: uuid.UUID | None = None,
    bulk: bool = False,
) -> list[uuid.UUID]:
    endpoints = session.scalars(
        select(WebhookEndpoint).where(
            WebhookEndpoint.tenant_id == tenant_id, WebhookEndpoint.enabled.is_(True)
        )
    )
    now = datetime.now(UTC)
    ids: list[uuid.UUID] = []
    for endpoint in endpoints:
        if event_type.value not in endpoint.events:
            continue
        event_id = uuid.uuid4()
        session.add(
            WebhookDelivery(
                id=event_id,
                endpoint_id=endpoint.id,
                tenant_id=tenant_id,
                event_type=event_type.value,
                workflow_id=workflow_id,
                payload=payload(event_id, now),
                status=DeliveryStatus.PENDING,
                attempts=0,
                next_attempt_at=now,
            )
        )
        ids.append(event_id)
    if ids:
        after_commit(session, partial(_publish, tuple(ids), bulk))
    return ids
