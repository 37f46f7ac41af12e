"""Webhook tasks (queue ``webhooks``): one delivery attempt, and the sweeper of lost ones.

Both only ask ``orchestrator.webhooks.delivery``; the messages carry the delivery id alone (the
payload stays in PostgreSQL, the secret in its sealed column).
"""

from __future__ import annotations

import logging
import uuid

from sqlalchemy.exc import OperationalError

from orchestrator.config import get_settings
from orchestrator.db import transaction
from orchestrator.webhooks import delivery
from tasks.app import app
from tasks.dispatch import publish_delivery

log = logging.getLogger(__name__)


@app.task(
    name="tasks.webhooks.deliver",
    # PostgreSQL away: try the bookkeeping again; the receiver's own faults are outcomes.
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=None,
)
def deliver(delivery_id: str) -> None:
    """POST one event, signed; schedule the next attempt if it failed and time remains."""
    retry_in = delivery.attempt(uuid.UUID(delivery_id))
    if retry_in is not None:
        # A lost countdown message (a worker restart, a broker flush) is found by the sweeper.
        publish_delivery(delivery_id, countdown=retry_in)


@app.task(name="tasks.webhooks.sweep")
def sweep() -> dict[str, int]:
    """Re-publish deliveries that are due but whose message was lost."""
    with transaction() as session:
        lost = delivery.redrive_due(session, get_settings().stall_seconds)
    for delivery_id in lost:
        publish_delivery(str(delivery_id))
    if lost:
        log.warning("webhook sweeper re-published %d deliveries", len(lost))
    return {"republished": len(lost)}
