"""The one place that starts a bulk job's rows.

A job keeps at most ``max_in_flight`` of its workflows running (``BULK_WINDOW`` by default).
Rows start in order, a few at a time, whenever a workflow of the job ends (depth first: what
is in flight finishes before more starts, so a job completes rows steadily, not all at the
end, and its backlog waits in PostgreSQL instead of in the broker, in front of the portal's
messages).

Feeding is triggered three ways, all idempotent: when a job is created (if due), after each of
its workflows ends (the transaction that ended it notes the trigger; it is published after the
commit), and by beat every sweep interval (a scheduled job that became due, a trigger lost with
a crash). Feeds of one job are serialized by its row lock; each row starts under an
idempotency key of its own, so no row can start twice.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from functools import partial

from sqlalchemy import exists, func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from orchestrator import engine
from orchestrator.aftercommit import after_commit
from orchestrator.bulk.counts import job_counts
from orchestrator.engine.rows import utcnow
from orchestrator.errors import ConflictError, ValidationError
from orchestrator.models import (
    BulkJob,
    BulkJobRow,
    BulkJobStatus,
    BulkRowStatus,
    Workflow,
    WorkflowStatus,
)
from orchestrator.vault import unseal
from orchestrator.webhooks import outbox as webhooks

log = logging.getLogger(__name__)

#: Publishes a "feed this job" message; set by the process that owns a Celery app. A process
#: without one leaves the job to beat's next round.
Publisher = Callable[[uuid.UUID], None]
_publisher: Publisher | None = None


def publish_with(publisher: Publisher | None) -> None:
    global _publisher
    _publisher = publisher


def request_feed(job_id: uuid.UUID) -> None:
    if _publisher is None:
        log.info("no feed publisher here: bulk job %s waits for beat", job_id)
        return
    _publisher(job_id)


def workflow_finished(session: Session, workflow: Workflow) -> None:
    """A workflow of a bulk job ended: once that commits, its job may start another row."""
    if workflow.bulk_job_id is not None:
        after_commit(session, partial(request_feed, workflow.bulk_job_id))


def in_flight(session: Session, job_id: uuid.UUID) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(Workflow)
            .where(Workflow.bulk_job_id == job_id, Workflow.status.in_(WorkflowStatus.active()))
        )
        or 0
    )


def feed(session: Session, job_id: uuid.UUID) -> list[engine.Dispatch]:
    """Start as many of the job's next rows as its window has room for; returns what to
    publish once the caller's transaction commits. Marks the job completed when nothing is
    left to start and nothing runs."""
    # Imported here: the service imports this module (through bulk.jobs) for its trigger.
    from orchestrator.service import create_workflow

    job = session.get(BulkJob, job_id, with_for_update=True)
    if job is None or job.status.is_finished:
        return []
    now = utcnow()
    if job.status == BulkJobStatus.SCHEDULED:
        if job.not_before is not None and job.not_before > now:
            return []
        job.status = BulkJobStatus.RUNNING
        job.started_at = now
        log.info("bulk job %s is due and starts", job.id)
    running = in_flight(session, job.id)
    room = max(job.max_in_flight - running, 0)
    rows = list(
        session.scalars(
            select(BulkJobRow)
            .where(BulkJobRow.job_id == job.id, BulkJobRow.status == BulkRowStatus.WAITING)
            .order_by(BulkJobRow.row_number)
            .limit(room)
        )
    )
    dispatches = []
    for row in rows:
        request = dict(row.request or {})
        if row.secrets:
            request.update(unseal(row.secrets))
        try:
            # A savepoint per row: one row refused does not undo the others.
            with session.begin_nested():
                workflow, dispatch = create_workflow(
                    session,
                    job.workflow_type,
                    job.tenant_id,
                    request,
                    idempotency_key=f"bulk:{job.id}:{row.row_number}",
                    api_key_id=job.api_key_id,
                    bulk_job_id=job.id,
                )
        except (ConflictError, ValidationError, IntegrityError) as exc:
            _refuse(row, _refusal(exc), type(exc).__name__)
            continue
        except OperationalError:
            raise  # the database is away: the whole feed is tried again (nothing committed)
        except Exception as exc:
            # A row we cannot start for a reason of ours must not stop the rows after it (the
            # job would be fed, and fail, forever): it is refused, and logged for a person.
            log.exception("bulk job %s row %d could not start", job.id, row.row_number)
            _refuse(row, f"internal error: {type(exc).__name__}", type(exc).__name__)
            continue
        row.status = BulkRowStatus.STARTED
        row.workflow_id = workflow.id
        # The workflow holds the password now (sealed); the row need not keep a copy.
        row.secrets = None
        dispatches.append(dispatch)
    if not dispatches and running == 0:
        pending = session.scalar(
            select(
                exists().where(
                    BulkJobRow.job_id == job.id, BulkJobRow.status == BulkRowStatus.WAITING
                )
            )
        )
        if not pending:
            job.status = BulkJobStatus.COMPLETED
            job.finished_at = now
            webhooks.bulk_job_finished(session, job, job_counts(session, job.id))
            log.info("bulk job %s completed", job.id)
    return dispatches


def _refuse(row: BulkJobRow, message: str, kind: str) -> None:
    row.status = BulkRowStatus.REFUSED
    row.error = {"message": message, "type": kind}
    row.secrets = None


def _refusal(exc: Exception) -> str:
    if isinstance(exc, IntegrityError):
        # A claim taken meanwhile by another workflow (the row's username, ONU or CPE).
        return "its username, ONU or CPE is held by another workflow in progress"
    fields = getattr(exc, "fields", None) or {}
    detail = "; ".join(f"{name}: {', '.join(reasons)}" for name, reasons in fields.items())
    return f"{exc}" + (f" ({detail})" if detail else "")


def due_jobs(session: Session) -> list[uuid.UUID]:
    """Jobs beat should feed: running ones, and scheduled ones whose time has come."""
    return list(
        session.scalars(
            select(BulkJob.id).where(
                (BulkJob.status == BulkJobStatus.RUNNING)
                | ((BulkJob.status == BulkJobStatus.SCHEDULED) & (BulkJob.not_before <= utcnow()))
            )
        )
    )
