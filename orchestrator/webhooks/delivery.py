"""Delivering one event: claim it, POST it signed, record what happened.

No transaction stays open across the HTTP call: a claim commits first (``attempts`` + 1, and
``next_attempt_at`` pushed past the longest the call may take, a lease), the call is made, and
the outcome is recorded in a second transaction. A copy of the message that comes while the
attempt runs, or after it succeeded, finds the row not due and does nothing; an attempt whose
worker died is re-published by :func:`redrive_due` once its lease has passed. Receivers may
still see an event twice (a worker dying after their 2xx): they de-duplicate by its id.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import requests
from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator import tracing
from orchestrator.config import Settings, get_settings
from orchestrator.db import transaction
from orchestrator.engine.rows import db_now
from orchestrator.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from orchestrator.webhooks import signing, targets
from orchestrator.webhooks.endpoints import secret_of

log = logging.getLogger(__name__)

#: A message may arrive this early (its countdown is timed by the worker's clock, the due time
#: by the database's) and still count as due.
EARLY_TOLERANCE = timedelta(seconds=1)
#: The lease beyond the call's own time limits: how long an attempt counts as in flight.
LEASE_MARGIN = timedelta(seconds=10)
#: At most this many lost deliveries are re-published per sweep.
REDRIVE_BATCH = 500
_MAX_ERROR = 500


def backoff(attempts: int, base: float, cap: float) -> float:
    """Seconds before the next attempt after ``attempts`` failed ones: base, 2 x base, ..."""
    return min(cap, base * 2 ** max(0, attempts - 1))


@dataclass(frozen=True)
class Attempt:
    """A claimed delivery, with what its POST needs."""

    delivery_id: uuid.UUID
    number: int
    url: str
    body: bytes
    secret: str = field(repr=False)  # never in a log line, even by accident


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def encode(payload: dict[str, object]) -> bytes:
    """The exact bytes sent and signed."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def claim(session: Session, delivery_id: uuid.UUID, settings: Settings) -> Attempt | None:
    """Take a due delivery for one attempt, or None if there is nothing to do now."""
    row = session.scalar(
        select(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id)
        .with_for_update(skip_locked=True)  # another copy is claiming or recording it
    )
    if row is None or row.status != DeliveryStatus.PENDING:
        return None  # gone with its endpoint, or already settled
    now = db_now(session)
    if row.next_attempt_at is not None and row.next_attempt_at > now + EARLY_TOLERANCE:
        return None  # in flight elsewhere, or its retry is not due yet
    endpoint = session.get(WebhookEndpoint, row.endpoint_id)
    if endpoint is None or not endpoint.enabled:
        row.status = DeliveryStatus.FAILED
        row.last_error = "endpoint disabled"
        row.next_attempt_at = None
        return None
    row.attempts += 1
    lease = timedelta(seconds=2 * settings.webhook_timeout) + LEASE_MARGIN
    row.next_attempt_at = now + lease
    return Attempt(
        delivery_id=row.id,
        number=row.attempts,
        url=endpoint.url,
        body=encode(row.payload),
        secret=secret_of(endpoint),
    )


def _http() -> requests.Session:
    http = requests.Session()
    # No proxy from the environment (it would bypass the address check) and no .netrc.
    http.trust_env = False
    return http


def send(attempt: Attempt, settings: Settings) -> Outcome:
    """POST the signed event once. Never raises for the receiver's faults: they are outcomes."""
    try:
        targets.check(attempt.url, allow_private=settings.webhook_allow_private_targets)
    except targets.TargetRefused as exc:
        return Outcome(None, f"target refused: {exc}")
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "isp-orchestrator-webhooks/1",
        "X-Webhook-Id": str(attempt.delivery_id),
        "X-Signature": signing.header(attempt.secret, attempt.body),
    }
    timeout = settings.webhook_timeout
    try:
        with (
            tracing.untraced(),  # the tenant's endpoint gets no trace id of ours
            _http() as http,
            http.post(
                attempt.url,
                data=attempt.body,
                headers=headers,
                timeout=(timeout, timeout),
                allow_redirects=False,  # a redirect could lead anywhere, past the address check
                stream=True,  # the answer's body is not read: its status is all that counts
            ) as response,
        ):
            status = response.status_code
    except requests.Timeout:
        return Outcome(None, f"no answer within {timeout:g} s")
    except requests.RequestException as exc:
        return Outcome(None, f"{type(exc).__name__}: {exc}"[:_MAX_ERROR])
    return Outcome(status, None if 200 <= status < 300 else f"HTTP {status}")


def record(
    session: Session, attempt: Attempt, outcome: Outcome, settings: Settings
) -> float | None:
    """Write the attempt's outcome; returns in how many seconds to try again (None: done)."""
    row = session.get(WebhookDelivery, attempt.delivery_id, with_for_update=True)
    if row is None or row.status != DeliveryStatus.PENDING or row.attempts != attempt.number:
        return None  # deleted, or a later attempt took over: its outcome stands
    now = db_now(session)
    row.last_status_code = outcome.status_code
    row.last_error = outcome.error
    if outcome.delivered:
        row.status = DeliveryStatus.DELIVERED
        row.delivered_at = now
        row.next_attempt_at = None
        return None
    delay = backoff(row.attempts, settings.webhook_backoff_base, settings.webhook_backoff_max)
    if now + timedelta(seconds=delay) > row.created_at + timedelta(
        seconds=settings.webhook_retry_window
    ):
        row.status = DeliveryStatus.FAILED
        row.next_attempt_at = None
        _disable_if_dead(session, row, now, settings)
        return None
    row.next_attempt_at = now + timedelta(seconds=delay)
    return delay


def _disable_if_dead(
    session: Session, given_up: WebhookDelivery, now: datetime, settings: Settings
) -> None:
    """An endpoint that took nothing since this event, for the whole retry window, is off."""
    endpoint = session.get(WebhookEndpoint, given_up.endpoint_id, with_for_update=True)
    if endpoint is None or not endpoint.enabled:
        return
    succeeded_since = session.scalar(
        select(WebhookDelivery.id)
        .where(
            WebhookDelivery.endpoint_id == endpoint.id,
            WebhookDelivery.delivered_at >= given_up.created_at,
        )
        .limit(1)
    )
    if succeeded_since is not None:
        return
    endpoint.enabled = False
    endpoint.disabled_at = now
    endpoint.disabled_reason = (
        f"no delivery succeeded for {_duration(settings.webhook_retry_window)} "
        f"(since {given_up.created_at:%Y-%m-%d %H:%M:%S %Z}, {given_up.attempts} attempts of "
        f"event {given_up.id}; last: {given_up.last_error})"
    )
    # What is still waiting would only fail against a disabled endpoint: settle it now.
    for pending in session.scalars(
        select(WebhookDelivery).where(
            WebhookDelivery.endpoint_id == endpoint.id,
            WebhookDelivery.status == DeliveryStatus.PENDING,
            WebhookDelivery.id != given_up.id,
        )
    ):
        pending.status = DeliveryStatus.FAILED
        pending.last_error = "endpoint disabled"
        pending.next_attempt_at = None
    log.warning("webhook endpoint %s disabled: %s", endpoint.id, endpoint.disabled_reason)


def _duration(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    return f"{seconds:g} s"


def attempt(delivery_id: uuid.UUID, settings: Settings | None = None) -> float | None:
    """One attempt of a delivery, end to end; returns in how many seconds to try again."""
    settings = settings or get_settings()
    with transaction() as session:
        claimed = claim(session, delivery_id, settings)
    if claimed is None:
        return None
    outcome = send(claimed, settings)
    with transaction() as session:
        return record(session, claimed, outcome, settings)


def redrive_due(session: Session, stall_seconds: float) -> list[uuid.UUID]:
    """Pending deliveries due for longer than a message may wait in a queue: their message was
    lost (or their worker died mid-attempt). Each is stamped so the next sweep waits again."""
    now = db_now(session)
    rows = session.scalars(
        select(WebhookDelivery)
        .where(
            WebhookDelivery.status == DeliveryStatus.PENDING,
            WebhookDelivery.next_attempt_at <= now - timedelta(seconds=stall_seconds),
        )
        .order_by(WebhookDelivery.next_attempt_at)
        .limit(REDRIVE_BATCH)
        .with_for_update(skip_locked=True)
    ).all()
    for row in rows:
        row.next_attempt_at = now
    return [row.id for row in rows]
