"""What a test's own workflows left behind, by the reconciliation an operator runs.

The suite's promise is the product's: a workflow either completes everywhere or leaves nothing
behind. So after every test that runs workflows on the worker, the reconciliation is run over
the systems as the test left them, and whatever it reports against a workflow or subscriber
made during that test fails the test, unless the test says why it leaves something on purpose
(``@pytest.mark.leaves_behind("why")``: a `failed` workflow, an orphan made behind our back).

Earlier tests' subscribers are not judged: the simulators are reset per test, so what those
hold there is gone by design (and reported as missing), which says nothing about this test.
"""

from __future__ import annotations

import time
from datetime import datetime

from sqlalchemy import func, select

from orchestrator.db import transaction
from orchestrator.engine.rows import db_now
from orchestrator.integrations import circuit
from orchestrator.models import Subscriber, Workflow, WorkflowStatus
from orchestrator.reconcile.check import check

#: How long the check waits for a test's workflows still in flight to settle: what is in
#: flight is not judged (it may still make or remove things), so give it a moment to end.
SETTLE_SECONDS = 10.0


def now() -> datetime:
    with transaction() as session:
        return db_now(session)


def _in_flight_since(started: datetime) -> int:
    with transaction() as session:
        return session.scalar(
            select(func.count())
            .select_from(Workflow)
            .where(
                Workflow.created_at >= started,
                Workflow.status.not_in(list(WorkflowStatus.terminal())),
            )
        )


def left_behind_since(started: datetime) -> list[str]:
    """Every orphan and missing resource whose workflow or subscriber was made since
    ``started``, one line each (empty when clean); and a system that could not be read.
    The caller has cleared the simulators' faults."""
    # A test that broke a system leaves its circuit open: read the systems, not the breaker.
    circuit.reset_all()
    deadline = time.monotonic() + SETTLE_SECONDS
    while _in_flight_since(started) and time.monotonic() < deadline:
        time.sleep(0.1)  # polling the database: the workflows' end is its rows' state
    report = check()
    with transaction() as session:
        workflows = {
            str(i)
            for i in session.scalars(select(Workflow.id).where(Workflow.created_at >= started))
        }
        subscribers = {
            str(i)
            for i in session.scalars(select(Subscriber.id).where(Subscriber.created_at >= started))
        }

    def ours(workflow_id: str | None, subscriber_id: str | None) -> bool:
        return workflow_id in workflows or subscriber_id in subscribers

    lines = [
        f"orphan in {o.system}: {o.resource} ({o.reason})"
        for o in report.orphans
        if ours(o.workflow_id, o.subscriber_id)
    ]
    lines += [
        f"missing from {m.system}: {m.resource} ({m.reason})"
        for m in report.missing
        if ours(m.workflow_id, m.subscriber_id)
    ]
    lines += [f"{name} could not be read: nothing in it was judged" for name in report.unavailable]
    return lines
