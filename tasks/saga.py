"""Saga tasks (queue ``saga``): the on-error link and the sweeper. Both only ask the engine."""

from __future__ import annotations

import logging
import uuid

from sqlalchemy.exc import OperationalError

from orchestrator import engine, tracing
from orchestrator.config import get_settings
from orchestrator.db import transaction
from orchestrator.queues import QUEUES, priority_keys
from tasks.app import app
from tasks.dispatch import publish
from tasks.holder import holder_is_gone

log = logging.getLogger(__name__)


@app.task(
    name="tasks.saga.on_step_failed",
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=None,
)
def on_step_failed(workflow_id: str) -> None:
    """The on-error link of every step message.

    A queued task (not an in-process errback), so it survives the failing worker; it may fire
    more than once (siblings failing together), and the row lock makes it idempotent.
    """
    tracing.annotate(workflow_id=workflow_id)
    with transaction() as session:
        dispatch = engine.start_rollback(session, uuid.UUID(workflow_id), holder_is_gone)
    publish(dispatch)


#: While the broker holds messages, a quiet workflow may be waiting its turn in a queue: it
#: counts as lost only after this many times STALL_SECONDS.
BACKLOG_FACTOR = 10


def _backlog_factor() -> float:
    """BACKLOG_FACTOR when any queue holds messages, else 1 (a broker that cannot be asked
    counts as busy: a re-drive that waits is cheaper than a storm of copies)."""
    try:
        with app.connection_for_read() as connection:
            store = connection.default_channel.client
            depth = sum(store.llen(key) for queue in QUEUES for key in priority_keys(queue))
    except Exception as exc:
        log.warning("sweeper cannot read the queue depths (%s)", type(exc).__name__)
        return BACKLOG_FACTOR
    return BACKLOG_FACTOR if depth else 1


@app.task(name="tasks.saga.sweep")
def sweep() -> dict[str, int]:
    """Re-drive or roll back workflows left behind by a dead worker or a lost message."""
    stall = get_settings().stall_seconds
    with transaction() as session:
        dispatches = engine.sweep(
            session, stall, holder_is_gone, lost_after=stall * _backlog_factor()
        )
    published = 0
    for dispatch in dispatches:
        # One workflow that cannot be published must not keep the sweeper from the others.
        try:
            publish(dispatch)
            published += 1
        except Exception:
            log.exception("sweeper could not publish workflow %s", dispatch.workflow_id)
    if dispatches:
        log.warning("sweeper re-drove %d workflows", len(dispatches))
    return {"redriven": published}
