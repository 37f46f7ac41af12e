"""What the API and the CLI can ask of bulk jobs: create, read, report, cancel.

Creating a job writes every row (valid or not) in one transaction; nothing starts here: the
feeder (:mod:`orchestrator.bulk.feeder`) starts rows, a window at a time, once the job is due.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from orchestrator import engine
from orchestrator.bulk import feeder
from orchestrator.bulk.checks import check_rows
from orchestrator.bulk.counts import job_counts
from orchestrator.config import get_settings
from orchestrator.db import transaction
from orchestrator.engine.rows import utcnow
from orchestrator.errors import IdempotencyMismatch, InvalidTransition, NotFound, ValidationError
from orchestrator.models import (
    BulkJob,
    BulkJobRow,
    BulkJobStatus,
    BulkRowStatus,
    Workflow,
    WorkflowStatus,
)
from orchestrator.paging import Page
from orchestrator.service import BROKER_ERRORS, request_fingerprint
from orchestrator.vault import seal
from orchestrator.webhooks import outbox as webhooks

log = logging.getLogger(__name__)

#: The most rows one job may hold.
MAX_ROWS = 100_000
WORKFLOW_TYPE = "provision_subscriber"
#: A field name longer than this is cut short in errors: a CSV column's name is repeated in the
#: error of every row, so a long one would be stored 100,000 times.
MAX_NAME_IN_ERROR = 100
#: Reasons are the schema's and the checks' own sentences; the bound is only a backstop.
MAX_REASON_IN_ERROR = 1000


@dataclass
class RowInput:
    """One row as the caller gave it: its number (from 1), and either a request the schema
    accepted or the schema's errors by field."""

    row_number: int
    request: dict[str, Any] | None = None
    errors: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BulkSubmission:
    job: BulkJob
    #: False when an Idempotency-Key matched an earlier, identical job.
    created: bool


@dataclass(frozen=True)
class RowView:
    row_number: int
    #: The row's own status until it starts; then its workflow's.
    status: str
    workflow_id: uuid.UUID | None
    error: dict[str, Any] | None


@dataclass(frozen=True)
class BulkJobView:
    job: BulkJob
    #: Rows by outcome: invalid, refused, waiting, skipped, and each workflow status.
    counts: dict[str, int]
    throughput_per_second: float | None
    eta_seconds: float | None
    rows: list[RowView]
    rows_total: int
    limit: int
    offset: int

    @property
    def next_offset(self) -> int | None:
        following = self.offset + len(self.rows)
        return following if following < self.rows_total else None


@dataclass(frozen=True)
class BulkJobSummary:
    job: BulkJob
    counts: dict[str, int]

    @property
    def finished_rows(self) -> int:
        """Rows that will not change any more: never started, or their workflow ended."""
        ended = (BulkRowStatus.INVALID, BulkRowStatus.REFUSED, BulkRowStatus.SKIPPED)
        return sum(self.counts[s.value] for s in ended) + sum(
            self.counts[s.value] for s in WorkflowStatus.terminal()
        )


BulkJobPage = Page[BulkJobSummary]


def _jsonable(request: dict[str, Any]) -> dict[str, Any]:
    return {
        key: (str(value) if isinstance(value, uuid.UUID) else value)
        for key, value in request.items()
        if value is not None
    }


def _row_error(row: BulkJobRow, workflow: Workflow | None) -> dict[str, Any] | None:
    if workflow is not None:
        if workflow.status in (
            WorkflowStatus.ROLLED_BACK,
            WorkflowStatus.FAILED,
            WorkflowStatus.COMPENSATED,
        ):
            return workflow.error or {"message": workflow.status.value}
        return None
    return row.error


class BulkService:
    def __init__(
        self,
        publish_feed: Callable[[uuid.UUID], None] | None = None,
        unit_of_work: Callable[[], AbstractContextManager[Session]] = transaction,
    ) -> None:
        self._publish_feed = publish_feed or feeder.request_feed
        self._unit_of_work = unit_of_work

    def create(
        self,
        tenant_id: str,
        rows: list[RowInput],
        *,
        fingerprint_body: Any,
        not_before: datetime | None = None,
        all_or_nothing_validation: bool = False,
        max_in_flight: int | None = None,
        idempotency_key: str | None = None,
        api_key_id: uuid.UUID | None = None,
    ) -> BulkSubmission:
        """Store a job and its rows; start it at once unless ``not_before`` is still ahead.

        Every row is checked first (the schema's errors came with ``rows``; the database's are
        added here). With ``all_or_nothing_validation`` one invalid row refuses the whole job
        (ValidationError naming each row and field) and nothing is stored.
        """
        if not rows:
            raise ValidationError("no rows", {"rows": ["give at least one row"]})
        if len(rows) > MAX_ROWS:
            raise ValidationError("too many rows", {"rows": [f"at most {MAX_ROWS} rows a job"]})
        fingerprint = request_fingerprint(f"bulk:{WORKFLOW_TYPE}", fingerprint_body)
        if idempotency_key:
            earlier = self._find_by_idempotency_key(tenant_id, idempotency_key, fingerprint)
            if earlier is not None:
                return BulkSubmission(earlier, created=False)
        try:
            with self._unit_of_work() as session:
                valid = {row.row_number: row.request for row in rows if row.request is not None}
                for row_number, errors in check_rows(session, tenant_id, valid).items():
                    by_number = rows[row_number - 1]
                    by_number.errors = {**errors, **by_number.errors}
                invalid = [row for row in rows if row.errors or row.request is None]
                for row in invalid:
                    # Unknown field names are the caller's own text: stored and answered readable.
                    row.errors = readable_errors(row.errors)
                if invalid and all_or_nothing_validation:
                    raise ValidationError(
                        f"{len(invalid)} of {len(rows)} rows are invalid; nothing was started",
                        {f"rows[{row.row_number}]": [_flatten(row.errors)] for row in invalid},
                    )
                job = self._store(
                    session,
                    tenant_id,
                    rows,
                    invalid_rows=len(invalid),
                    max_in_flight=max_in_flight or get_settings().bulk_window,
                    not_before=not_before,
                    idempotency_key=idempotency_key,
                    fingerprint=fingerprint,
                    api_key_id=api_key_id,
                )
        except IntegrityError as exc:
            constraint = getattr(getattr(exc.orig, "diag", None), "constraint_name", None)
            if constraint == "uq_bulk_jobs_tenant_idempotency" and idempotency_key:
                earlier = self._find_by_idempotency_key(tenant_id, idempotency_key, fingerprint)
                if earlier is not None:
                    return BulkSubmission(earlier, created=False)
            raise
        if job.status == BulkJobStatus.RUNNING:
            self._request_first_feed(job)
        return BulkSubmission(job, created=True)

    def _request_first_feed(self, job: BulkJob) -> None:
        """Ask for the job's first feed; a broker that is down does not undo a stored job.

        The job is committed, so it is accepted: beat's ``tasks.bulk.start_due`` feeds every
        running job each SWEEP_INTERVAL (``feeder.due_jobs`` selects them by status, whether a
        feed of theirs was ever published or not), so this job starts once the broker is back.
        An error here would only make a client without an Idempotency-Key submit it again.
        """
        try:
            self._publish_feed(job.id)
        except BROKER_ERRORS as exc:
            log.warning(
                "bulk job %s stored but its first feed not published (broker unavailable: %s); "
                "beat will feed it",
                job.id,
                type(exc).__name__,
            )

    @staticmethod
    def _store(
        session: Session,
        tenant_id: str,
        rows: list[RowInput],
        *,
        invalid_rows: int,
        max_in_flight: int,
        not_before: datetime | None,
        idempotency_key: str | None,
        fingerprint: str,
        api_key_id: uuid.UUID | None,
    ) -> BulkJob:
        now = utcnow()
        due = not_before is None or not_before <= now
        job = BulkJob(
            id=uuid.uuid4(),
            tenant_id=tenant_id,
            workflow_type=WORKFLOW_TYPE,
            status=BulkJobStatus.RUNNING if due else BulkJobStatus.SCHEDULED,
            total_rows=len(rows),
            max_in_flight=max_in_flight,
            invalid_rows=invalid_rows,
            not_before=not_before,
            idempotency_key=idempotency_key,
            request_hash=fingerprint,
            api_key_id=api_key_id,
            started_at=now if due else None,
        )
        session.add(job)
        session.flush()
        values = []
        for row in rows:
            if row.errors or row.request is None:
                values.append(
                    {
                        "job_id": job.id,
                        "row_number": row.row_number,
                        "status": BulkRowStatus.INVALID,
                        "request": None,
                        "secrets": None,
                        "error": {"fields": row.errors},
                    }
                )
                continue
            request = dict(row.request)
            password = request.pop("password", None)
            values.append(
                {
                    "job_id": job.id,
                    "row_number": row.row_number,
                    "status": BulkRowStatus.WAITING,
                    "request": _jsonable(request),
                    # Sealed now: the password never rests in clear, in the row or anywhere.
                    "secrets": seal({"password": password}) if password else None,
                    "error": None,
                }
            )
        for start in range(0, len(values), 5000):
            session.execute(insert(BulkJobRow), values[start : start + 5000])
        log.info(
            "bulk job %s: %d rows (%d invalid), %s",
            job.id,
            len(rows),
            invalid_rows,
            "started" if due else f"scheduled for {not_before}",
        )
        return job

    def _find_by_idempotency_key(
        self, tenant_id: str, key: str, fingerprint: str
    ) -> BulkJob | None:
        with self._unit_of_work() as session:
            job = session.scalar(
                select(BulkJob).where(
                    BulkJob.tenant_id == tenant_id, BulkJob.idempotency_key == key
                )
            )
        if job is not None and job.request_hash != fingerprint:
            raise IdempotencyMismatch("this Idempotency-Key was used with a different request body")
        return job

    def get(
        self,
        tenant_id: str,
        job_id: uuid.UUID,
        *,
        limit: int = 100,
        offset: int = 0,
        failed_only: bool = False,
    ) -> BulkJobView:
        with self._unit_of_work() as session:
            job = self._job(session, tenant_id, job_id)
            counts = job_counts(session, job.id)
            rows_query = self._rows_query(job, failed_only)
            rows_total = (
                session.scalar(select(func.count()).select_from(rows_query.subquery())) or 0
            )
            page = session.execute(
                rows_query.order_by(BulkJobRow.row_number).limit(limit).offset(offset)
            ).all()
            rows = [self._view(row, workflow) for row, workflow in page]
            throughput, eta = self._pace(session, job, counts)
        return BulkJobView(job, counts, throughput, eta, rows, rows_total, limit, offset)

    def list(self, tenant_id: str, *, limit: int = 20, offset: int = 0) -> BulkJobPage:
        """A tenant's jobs, newest first, each with its counts (two grouped queries per job
        of the page, on the job's own rows: the cost follows the page, not the history)."""
        with self._unit_of_work() as session:
            condition = BulkJob.tenant_id == tenant_id
            total = session.scalar(select(func.count()).select_from(BulkJob).where(condition))
            jobs = session.scalars(
                select(BulkJob)
                .where(condition)
                .order_by(BulkJob.created_at.desc(), BulkJob.id.desc())
                .limit(limit)
                .offset(offset)
            ).all()
            items = [BulkJobSummary(job, job_counts(session, job.id)) for job in jobs]
        return BulkJobPage(items, total or 0, limit, offset)

    def report(self, tenant_id: str, job_id: uuid.UUID) -> Iterator[RowView]:
        """Every row's outcome in order, read in batches (a job may hold 100,000 rows)."""
        with self._unit_of_work() as session:
            job = self._job(session, tenant_id, job_id)
            result = session.execute(
                self._rows_query(job, False)
                .order_by(BulkJobRow.row_number)
                .execution_options(yield_per=2000)
            )
            for row, workflow in result:
                yield self._view(row, workflow)

    def cancel(
        self, tenant_id: str, job_id: uuid.UUID, *, requested_by: str | None = None
    ) -> BulkJob:
        """No row starts any more; the rows running are cancelled (they compensate)."""
        with self._unit_of_work() as session:
            job = session.scalar(
                select(BulkJob)
                .where(BulkJob.id == job_id, BulkJob.tenant_id == tenant_id)
                .with_for_update()
            )
            if job is None:
                raise NotFound(f"bulk job {job_id} not found")
            if job.status.is_finished:
                raise InvalidTransition(f"a {job.status.value} bulk job cannot be cancelled")
            now = utcnow()
            job.status = BulkJobStatus.CANCELLED
            job.cancel_requested_at = now
            job.finished_at = now
            session.execute(
                update(BulkJobRow)
                .where(BulkJobRow.job_id == job.id, BulkJobRow.status == BulkRowStatus.WAITING)
                .values(status=BulkRowStatus.SKIPPED, secrets=None)
            )
            running = session.scalars(
                select(Workflow)
                .where(
                    Workflow.bulk_job_id == job.id,
                    Workflow.status.in_(WorkflowStatus.forward()),
                )
                .with_for_update()
            )
            cancelled = 0
            for workflow in running:
                engine.request_cancel(session, workflow, requested_by=requested_by)
                cancelled += 1
            # The counts of the moment: the rows running now end compensated soon after.
            webhooks.bulk_job_finished(session, job, job_counts(session, job.id))
            log.info("bulk job %s cancelled; %d running workflows asked to stop", job.id, cancelled)
        return job

    @staticmethod
    def _job(session: Session, tenant_id: str, job_id: uuid.UUID) -> BulkJob:
        job = session.scalar(
            select(BulkJob).where(BulkJob.id == job_id, BulkJob.tenant_id == tenant_id)
        )
        if job is None:
            # Another tenant's job is indistinguishable from a missing one.
            raise NotFound(f"bulk job {job_id} not found")
        return job

    @staticmethod
    def _rows_query(job: BulkJob, failed_only: bool):  # type: ignore[no-untyped-def]
        query = (
            select(BulkJobRow, Workflow)
            .outerjoin(Workflow, Workflow.id == BulkJobRow.workflow_id)
            .where(BulkJobRow.job_id == job.id)
        )
        if failed_only:
            # Every row that did not complete: never started (invalid, refused, skipped by a
            # cancel) or its workflow ended otherwise.
            never_started = (BulkRowStatus.INVALID, BulkRowStatus.REFUSED, BulkRowStatus.SKIPPED)
            query = query.where(
                BulkJobRow.status.in_(never_started)
                | Workflow.status.in_(
                    (WorkflowStatus.ROLLED_BACK, WorkflowStatus.FAILED, WorkflowStatus.COMPENSATED)
                )
            )
        return query

    @staticmethod
    def _view(row: BulkJobRow, workflow: Workflow | None) -> RowView:
        status = workflow.status.value if workflow is not None else row.status.value
        return RowView(row.row_number, status, row.workflow_id, _row_error(row, workflow))

    @staticmethod
    def _pace(
        session: Session, job: BulkJob, counts: dict[str, int]
    ) -> tuple[float | None, float | None]:
        """Rows finished per second since the job started, and the seconds left at that pace."""
        if job.started_at is None:
            return None, None
        finished = sum(counts[status.value] for status in WorkflowStatus.terminal())
        # A finished job (completed or cancelled) is measured to its end, not to now: its
        # throughput must not decay while it is read afterwards.
        finished_at = job.finished_at if job.status.is_finished else None
        end = finished_at or utcnow()
        elapsed = (end - job.started_at).total_seconds()
        if finished == 0 or elapsed <= 0:
            return None, None
        throughput = finished / elapsed
        left = counts[BulkRowStatus.WAITING.value] + sum(
            counts[status.value] for status in WorkflowStatus.active()
        )
        eta = None if job.status.is_finished else round(left / throughput, 1)
        return round(throughput, 3), eta


def _flatten(errors: dict[str, Any], prefix: str = "") -> str:
    """``{"customer": {"email": ["bad"]}}`` as ``customer.email: bad`` (one line per row)."""
    parts: list[str] = []
    for key, value in errors.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            parts.append(_flatten(value, f"{name}."))
        else:
            reasons = value if isinstance(value, list) else [value]
            parts.append(f"{name}: {'; '.join(str(reason) for reason in reasons)}")
    return "; ".join(parts)


def readable(text: str, limit: int = MAX_NAME_IN_ERROR) -> str:
    """``text`` as PostgreSQL can store it and a person can read it: each unprintable character
    (NUL, which JSONB refuses; a lone surrogate, which is no UTF-8; other controls) as a visible
    escape such as ``\\x00`` or ``\\ud800``; cut at ``limit`` characters."""
    shown = "".join(char if char.isprintable() else _escape(char) for char in text[:limit])
    return shown + ("..." if len(text) > limit else "")


def _escape(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def readable_errors(errors: Any) -> Any:
    """Field errors (nested dicts of lists of reasons) with every name and reason readable."""
    if isinstance(errors, dict):
        return {readable(str(name)): readable_errors(value) for name, value in errors.items()}
    if isinstance(errors, list):
        return [readable_errors(value) for value in errors]
    if isinstance(errors, str):
        return readable(errors, MAX_REASON_IN_ERROR)
    return errors


def describe_error(error: dict[str, Any] | None) -> str:
    """One line for a report: a row's field errors, or a workflow's message."""
    if not error:
        return ""
    if "fields" in error:
        return _flatten(error["fields"])
    return str(error.get("message") or error)
