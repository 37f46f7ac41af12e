"""A tenant's webhook endpoints: registered by an admin, the signing secret shown once.

Functions take the caller's session and never commit; :class:`WebhookService` is the unit of
work the API calls. Another tenant's endpoint is "not found", like a missing one.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from orchestrator import vault
from orchestrator.config import get_settings
from orchestrator.db import transaction
from orchestrator.errors import NotFound, ValidationError
from orchestrator.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint, WebhookEventType
from orchestrator.paging import Page
from orchestrator.webhooks import signing, targets

_SEALED_FIELD = "secret"  # the name of the value inside the sealed blob


def seal_secret(secret: str) -> bytes:
    return vault.seal({_SEALED_FIELD: secret})


def secret_of(endpoint: WebhookEndpoint) -> str:
    """The endpoint's signing secret, opened only where a request is signed."""
    return vault.unseal(endpoint.secret)[_SEALED_FIELD]


def _events(values: Iterable[str]) -> list[str]:
    events = list(dict.fromkeys(values))  # unique, in the order given
    if not events:
        raise ValidationError("no events", {"events": ["subscribe to at least one event"]})
    known = {event.value for event in WebhookEventType}
    unknown = [event for event in events if event not in known]
    if unknown:
        raise ValidationError(
            "unknown event",
            {"events": [f"unknown event {e!r}; one of {sorted(known)}" for e in unknown]},
        )
    return events


def create_endpoint(
    session: Session,
    tenant_id: str,
    values: dict[str, Any],
    *,
    allow_private: bool,
) -> tuple[WebhookEndpoint, str]:
    """Register an endpoint; returns the row and its secret (the only time it is visible)."""
    targets.validate(values["url"], allow_private=allow_private)
    secret = signing.new_secret()
    endpoint = WebhookEndpoint(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        url=values["url"],
        events=_events(values["events"]),
        enabled=values.get("enabled", True),
        secret=seal_secret(secret),
    )
    session.add(endpoint)
    session.flush()
    return endpoint, secret


def list_endpoints(session: Session, tenant_id: str) -> list[WebhookEndpoint]:
    return list(
        session.scalars(
            select(WebhookEndpoint)
            .where(WebhookEndpoint.tenant_id == tenant_id)
            .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
        )
    )


def get_endpoint(
    session: Session, tenant_id: str, endpoint_id: uuid.UUID, *, lock: bool = False
) -> WebhookEndpoint:
    endpoint = session.get(WebhookEndpoint, endpoint_id, with_for_update=lock)
    if endpoint is None or endpoint.tenant_id != tenant_id:
        raise NotFound(f"webhook endpoint {endpoint_id} not found")
    return endpoint


def update_endpoint(
    session: Session,
    tenant_id: str,
    endpoint_id: uuid.UUID,
    changes: dict[str, Any],
    *,
    allow_private: bool,
) -> WebhookEndpoint:
    endpoint = get_endpoint(session, tenant_id, endpoint_id, lock=True)
    if "url" in changes:
        targets.validate(changes["url"], allow_private=allow_private)
        endpoint.url = changes["url"]
    if "events" in changes:
        endpoint.events = _events(changes["events"])
    if "enabled" in changes:
        endpoint.enabled = changes["enabled"]
        if endpoint.enabled:
            # Turned back on by a person: why it was off no longer describes it.
            endpoint.disabled_reason = endpoint.disabled_at = None
    session.flush()
    # updated_at is stamped by the database: read it back while the session is open.
    session.refresh(endpoint, ["updated_at"])
    return endpoint


def delete_endpoint(session: Session, tenant_id: str, endpoint_id: uuid.UUID) -> None:
    """Remove an endpoint and its delivery log; deliveries still queued find nothing to do."""
    session.delete(get_endpoint(session, tenant_id, endpoint_id, lock=True))


DeliveryPage = Page[WebhookDelivery]


def list_deliveries(
    session: Session,
    tenant_id: str,
    endpoint_id: uuid.UUID,
    *,
    status: DeliveryStatus | None = None,
    limit: int,
    offset: int,
) -> DeliveryPage:
    """An endpoint's delivery log, newest first."""
    get_endpoint(session, tenant_id, endpoint_id)
    conditions = [WebhookDelivery.endpoint_id == endpoint_id]
    if status is not None:
        conditions.append(WebhookDelivery.status == status)
    total = session.scalar(select(func.count()).select_from(WebhookDelivery).where(*conditions))
    items = session.scalars(
        select(WebhookDelivery)
        .where(*conditions)
        .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id)
        .limit(limit)
        .offset(offset)
    )
    return DeliveryPage(items=list(items), total=total or 0, limit=limit, offset=offset)


class WebhookService:
    """Webhook endpoints as the API sees them: each method is one unit of work."""

    def __init__(
        self,
        allow_private_targets: bool | None = None,
        unit_of_work: Callable[[], AbstractContextManager[Session]] = transaction,
    ) -> None:
        if allow_private_targets is None:
            allow_private_targets = get_settings().webhook_allow_private_targets
        self._allow_private = allow_private_targets
        self._unit_of_work = unit_of_work

    def list(self, tenant_id: str) -> list[WebhookEndpoint]:
        with self._unit_of_work() as session:
            return list_endpoints(session, tenant_id)

    def get(self, tenant_id: str, endpoint_id: uuid.UUID) -> WebhookEndpoint:
        with self._unit_of_work() as session:
            return get_endpoint(session, tenant_id, endpoint_id)

    def create(self, tenant_id: str, values: dict[str, Any]) -> tuple[WebhookEndpoint, str]:
        with self._unit_of_work() as session:
            return create_endpoint(session, tenant_id, values, allow_private=self._allow_private)

    def update(
        self, tenant_id: str, endpoint_id: uuid.UUID, changes: dict[str, Any]
    ) -> WebhookEndpoint:
        with self._unit_of_work() as session:
            return update_endpoint(
                session, tenant_id, endpoint_id, changes, allow_private=self._allow_private
            )

    def delete(self, tenant_id: str, endpoint_id: uuid.UUID) -> None:
        with self._unit_of_work() as session:
            delete_endpoint(session, tenant_id, endpoint_id)

    def deliveries(
        self,
        tenant_id: str,
        endpoint_id: uuid.UUID,
        *,
        status: DeliveryStatus | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> DeliveryPage:
        with self._unit_of_work() as session:
            return list_deliveries(
                session, tenant_id, endpoint_id, status=status, limit=limit, offset=offset
            )
