"""Saga tasks (queue ``saga``): the on-error link and the sweeper. Both only ask the engine."""

from __future__ import annotations

import logging
import uuid

from sqlalchemy.exc import OperationalError

from orchestrator import engine
from orchestrator.config import get_settings
from orchestrator.db import transaction
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
    with transaction() as session:
        dispatch = engine.start_rollback(session, uuid.UUID(workflow_id), holder_is_gone)
    publish(dispatch)


@app.task(name="tasks.saga.sweep")
def sweep() -> dict[str, int]:
    """Re-drive or roll back workflows left behind by a dead worker or a lost message."""
    with transaction() as session:
        dispatches = engine.sweep(session, get_settings().stall_seconds, holder_is_gone)
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
