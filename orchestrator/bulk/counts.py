"""A bulk job's rows by outcome: the row's own status until it starts, then its workflow's.

Two grouped counts over the job's own rows and workflows (both indexed by job): the cost
follows the job's size, never the history.
"""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from orchestrator.models import BulkJobRow, BulkRowStatus, Workflow, WorkflowStatus


def job_counts(session: Session, job_id: uuid.UUID) -> dict[str, int]:
    counts = {status.value: 0 for status in WorkflowStatus}
    counts.update({status.value: 0 for status in BulkRowStatus if status != BulkRowStatus.STARTED})
    for status, number in session.execute(
        select(BulkJobRow.status, func.count())
        .where(BulkJobRow.job_id == job_id, BulkJobRow.status != BulkRowStatus.STARTED)
        .group_by(BulkJobRow.status)
    ):
        counts[status.value] = number
    for status, number in session.execute(
        select(Workflow.status, func.count())
        .where(Workflow.bulk_job_id == job_id)
        .group_by(Workflow.status)
    ):
        counts[status.value] = number
    return counts
