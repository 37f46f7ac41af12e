"""Every hot query can be answered from an index: its cost follows the work, not the history.

The queries are captured as the code runs them (a submission, the workflow list and detail,
statistics, the sweeper, a bulk job's checks, feeding and counts), then each is EXPLAINed with
sequential scans priced out (``enable_seqscan = off``): where an index can serve a query the
planner then takes it, so a ``Seq Scan`` left on a table that grows with history, or an index
read whole (no Index Cond), means no index fits. A test on a small table cannot measure
speed; it can prove the index exists and fits.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event

from orchestrator import engine, statistics
from orchestrator.bulk import feeder
from orchestrator.bulk.jobs import BulkService, RowInput
from orchestrator.db import get_sessionmaker, transaction
from orchestrator.engine.rows import stalled_workflows
from orchestrator.service import OrchestrationService, WorkflowFilter
from tests.support.requests import provision_body

#: Tables that grow with the number of subscribers, workflows and years of history.
GROWING = (
    "workflows",
    "workflow_steps",
    "workflow_events",
    "resource_claims",
    "subscribers",
    "customers",
    "billing_services",
    "bulk_job_rows",
    "webhook_deliveries",
)


class _Publishes:
    def publish(self, dispatch: engine.Dispatch) -> None:
        pass

    def sync_plan(self, plan_id: int) -> None:
        pass


@contextmanager
def _captured() -> Iterator[list[tuple[str, Any]]]:
    statements: list[tuple[str, Any]] = []

    def remember(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("SELECT") and not executemany:
            statements.append((statement, parameters))

    target = get_sessionmaker().kw["bind"]  # the engine the units of work run on
    event.listen(target, "before_cursor_execute", remember)
    try:
        yield statements
    finally:
        event.remove(target, "before_cursor_execute", remember)


def _full_scans(node: dict[str, Any]) -> Iterator[str]:
    """Scans that read a whole growing table, or a whole index of one (no Index Cond: the
    index only served a partial index's predicate or an order)."""
    kind = node.get("Node Type", "")
    table = node.get("Relation Name")
    if table in GROWING and kind == "Seq Scan":
        yield f"Seq Scan on {table}"
    if kind in ("Index Scan", "Index Only Scan", "Bitmap Index Scan") and "Index Cond" not in node:
        index = node.get("Index Name", "")
        if table in GROWING or any(
            index.startswith(f"{prefix}{t}") for t in GROWING for prefix in ("ix_", "uq_", "pk_")
        ):
            yield f"{kind} of all of {index}"
    for child in node.get("Plans", []):
        yield from _full_scans(child)


def _scans(statement: str, parameters: Any) -> list[str]:
    raw = get_sessionmaker().kw["bind"].raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("SET enable_seqscan = off")
        cursor.execute("EXPLAIN (FORMAT JSON) " + statement, parameters)
        (plan,) = cursor.fetchone()
        return list(_full_scans(plan[0]["Plan"]))
    finally:
        raw.rollback()
        raw.close()


def test_hot_queries_use_indexes(database, tenant, plan):
    service = OrchestrationService(_Publishes())
    bulk = BulkService(publish_feed=lambda job_id: None)
    body = provision_body(plan.id, discovered=False, cpe_serial="PLANCPE" + uuid.uuid4().hex[:6])
    with _captured() as statements:
        submitted = service.submit("provision_subscriber", tenant, body)
        service.get_workflow(tenant, submitted.workflow.id)
        service.list_workflows(tenant, WorkflowFilter(), limit=20, offset=0)
        service.list_workflows(
            tenant,
            WorkflowFilter(subscriber_id=submitted.workflow.subscriber_id),
            limit=5,
            offset=0,
        )
        now = datetime.now(UTC)
        service.statistics(tenant, statistics.Window(now - timedelta(hours=1), now))
        with transaction() as session:
            stalled_workflows(session, now, 30.0, lost_after=300.0)
        rows = [RowInput(1, request=provision_body(plan.id, discovered=False, cpe_serial="X1"))]
        job = bulk.create(tenant, rows, fingerprint_body={"n": uuid.uuid4().hex}).job
        with transaction() as session:
            feeder.feed(session, job.id)
            feeder.due_jobs(session)
        bulk.get(tenant, job.id)

    assert len(statements) > 20, "the capture saw too little to mean anything"
    scans = {
        statement: tables
        for statement, parameters in statements
        if (tables := _scans(statement, parameters))
    }
    assert scans == {}, "\n\n".join(f"{sorted(t)}:\n{s}" for s, t in scans.items())
