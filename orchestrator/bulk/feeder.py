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
from typing import Any

from cryptography.fernet import InvalidToken
from sqlalchemy import exists, func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from orchestrator import engine
from orchestrator.aftercommit import after_commit
from orchestrator.bulk.counts import job_counts
from orchestrator.engine.rows import utcnow
from orchestrator.errors import ConflictError, ValidationError, VaultError
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
#: The most rows one feed tries to start: a long run of rows refused at start would otherwise
#: hold the job's row lock for one long transaction (the feed asks for the next one instead).
MAX_ROWS_PER_FEED = 1000
#: Why a row whose sealed password cannot be opened is refused (no part of the secret in it).
UNREADABLE = (
    "its password cannot be decrypted with the current ORCHESTRATOR_SECRET_KEY (was the key "
    "changed since the job was submitted?); submit this row again"
)


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
    dispatches, bound_reached = _start_rows(session, job, max(job.max_in_flight - running, 0))
    if bound_reached:
        # Rows may still wait with room for them: the next feed goes on at once, in a
        # transaction of its own, instead of at beat's pace.
        after_commit(session, partial(request_feed, job.id))
    elif not dispatches and running == 0:
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


def _start_rows(session: Session, job: BulkJob, room: int) -> tuple[list[engine.Dispatch], bool]:
    """Start waiting rows in order until ``room`` of them run or none waits.

    A refused row takes no room, so the rows after it are tried in the same feed: a window of
    refusals must not leave the job with nothing running and nothing to end (it would then
    start ``max_in_flight`` rows per beat round). At most MAX_ROWS_PER_FEED rows are tried, so
    one transaction holds the job's lock for a bounded time; returns the dispatches, and whether
    that bound stopped it with room left.
    """
    dispatches: list[engine.Dispatch] = []
    tried = 0
    while len(dispatches) < room and tried < MAX_ROWS_PER_FEED:
        batch = session.scalars(
            select(BulkJobRow)
            .where(BulkJobRow.job_id == job.id, BulkJobRow.status == BulkRowStatus.WAITING)
            .order_by(BulkJobRow.row_number)
            .limit(min(room - len(dispatches), MAX_ROWS_PER_FEED - tried))
        ).all()
        if not batch:
            return dispatches, False
        for row in batch:
            tried += 1
            # Each row leaves ``waiting`` (started or refused): the next batch is new rows.
            dispatch = _start_row(session, job, row)
            if dispatch is not None:
                dispatches.append(dispatch)
    return dispatches, len(dispatches) < room


def _start_row(session: Session, job: BulkJob, row: BulkJobRow) -> engine.Dispatch | None:
    """The row's workflow, created in a savepoint; or the row refused, and None."""
    # Imported here: the service imports this module (through bulk.jobs) for its trigger.
    from orchestrator.service import create_workflow

    try:
        request = _request_of(row)
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
    except UnreadableSecrets:
        log.warning("bulk job %s row %d: its password cannot be decrypted", job.id, row.row_number)
        _refuse(row, UNREADABLE, "VaultError")
        return None
    except (ConflictError, ValidationError, IntegrityError) as exc:
        _refuse(row, _refusal(exc), type(exc).__name__)
        return None
    except (OperationalError, VaultError):
        # The database is away, or this process has no usable key: no row's fault. The whole
        # feed is tried again (nothing committed); refusing would lose rows that can start.
        raise
    except Exception as exc:
        # A row we cannot start for a reason of ours must not stop the rows after it (the
        # job would be fed, and fail, forever): it is refused, and logged for a person.
        log.exception("bulk job %s row %d could not start", job.id, row.row_number)
        _refuse(row, f"internal error: {type(exc).__name__}", type(exc).__name__)
        return None
    row.status = BulkRowStatus.STARTED
    row.workflow_id = workflow.id
    # The workflow holds the password now (sealed); the row need not keep a copy.
    row.secrets = None
    return dispatch


class UnreadableSecrets(Exception):
    """A row's sealed password does not open with this process's key (it was sealed under
    another one: ORCHESTRATOR_SECRET_KEY rotated while the job waited, or the bytes damaged)."""


def _request_of(row: BulkJobRow) -> dict[str, Any]:
    """The row's request with its password unsealed."""
    request = dict(row.request or {})
    if row.secrets:
        try:
            request.update(unseal(row.secrets))
        except VaultError as exc:
            # Only a token the key does not open is the row's own problem; a missing or
            # malformed key (no cause, or a ValueError) is this process's, and propagates.
            if isinstance(exc.__cause__, InvalidToken):
                raise UnreadableSecrets from None
            raise
    return request


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
