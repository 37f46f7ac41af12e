"""A bulk job's outcome as CSV, one line per row: the API's ``report.csv`` and the console's.

Streamed in chunks (a job may hold 100,000 rows), and safe to open in a spreadsheet.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator

from orchestrator.bulk.jobs import BulkService, describe_error

HEADER = ("row", "workflow_id", "status", "error")
#: Characters of CSV gathered before a chunk is handed on.
CHUNK = 65536


def _cell(text: str) -> str:
    """An error can quote the row's own values: a leading = + - @ would make a spreadsheet
    run it as a formula (CSV injection), so such a cell starts with a quote instead."""
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def report_filename(job_id: uuid.UUID) -> str:
    return f"bulk-job-{job_id}.csv"


def report_csv(service: BulkService, tenant_id: str, job_id: uuid.UUID) -> Iterator[str]:
    """The report's text, chunk by chunk. The caller reads the job first (a missing job is a
    404 there, not a broken stream here)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HEADER)
    for row in service.report(tenant_id, job_id):
        writer.writerow(
            [row.row_number, row.workflow_id or "", row.status, _cell(describe_error(row.error))]
        )
        if buffer.tell() > CHUNK:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
