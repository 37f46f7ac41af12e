"""Bulk jobs on the ``bulk`` queue: start a job's next rows, and beat's round of due jobs."""

from __future__ import annotations

import logging
import uuid

from sqlalchemy.exc import OperationalError

from orchestrator.bulk import feeder
from orchestrator.db import transaction
from tasks.app import app
from tasks.dispatch import publish

log = logging.getLogger(__name__)


@app.task(
    name="tasks.bulk.feed",
    # PostgreSQL away: feed again later; nothing was started in a transaction that failed.
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=None,
)
def feed(job_id: str) -> int:
    """Start as many of the job's next rows as its window has room for."""
    with transaction() as session:
        dispatches = feeder.feed(session, uuid.UUID(job_id))
    # Published once the rows are committed (a worker never sees a workflow not yet visible);
    # a publish lost here is found by the sweeper, like any other.
    for dispatch in dispatches:
        publish(dispatch)
    return len(dispatches)


@app.task(name="tasks.bulk.start_due")
def start_due() -> int:
    """Beat: feed every running job (a trigger may have been lost) and every scheduled job
    whose ``not_before`` has come."""
    with transaction() as session:
        job_ids = feeder.due_jobs(session)
    for job_id in job_ids:
        feeder.request_feed(job_id)
    return len(job_ids)
