"""Subscribers after provisioning: what a lifecycle workflow may do to one, and what it holds.

A subscriber's ``resources`` say where it lives in each system (RADIUS account and group, NetBox
address, ONOS service, ONU, CPE); the workflow that changes one of them records the new value
when it commits. Lifecycle workflows read them at submission, so their steps (and their undo)
act on exactly what the subscriber held then.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from orchestrator import plans
from orchestrator.db import transaction
from orchestrator.errors import ConflictError, NotFound, ValidationError
from orchestrator.models import ServicePlan, Subscriber, SubscriberStatus, Workflow
from orchestrator.paging import Page

#: The RADIUS group a suspended subscriber is moved to when its plan names none: FreeRADIUS
#: rejects its members (radgroupcheck Auth-Type := Reject).
DEFAULT_SUSPENDED_GROUP = "orchestrator-suspended"


def suspended_group(plan: Mapping[str, Any]) -> str:
    return plan.get("suspended_radius_group") or DEFAULT_SUSPENDED_GROUP


def current_group(subscriber_status: SubscriberStatus, plan: Mapping[str, Any]) -> str:
    """The RADIUS group a subscriber in this status sits in."""
    if subscriber_status == SubscriberStatus.SUSPENDED:
        return suspended_group(plan)
    return plan["radius_group"]


def lock_for_lifecycle(
    session: Session,
    tenant_id: str,
    subscriber_id: uuid.UUID,
    allowed: Collection[SubscriberStatus],
    action: str,
) -> Subscriber:
    """The tenant's subscriber, locked, in a status ``action`` may start from (else 409)."""
    subscriber = session.scalar(
        select(Subscriber)
        .where(Subscriber.id == subscriber_id, Subscriber.tenant_id == tenant_id)
        .with_for_update()
    )
    if subscriber is None:
        # Another tenant's subscriber is indistinguishable from a missing one.
        raise ValidationError("unknown subscriber", {"subscriber_id": ["no such subscriber"]})
    if subscriber.status not in allowed:
        raise ConflictError(
            f"cannot {action} a subscriber that is {subscriber.status.value}",
            {"subscriber_id": [f"subscriber is {subscriber.status.value}"]},
        )
    return subscriber


def lifecycle_input(session: Session, subscriber: Subscriber) -> dict[str, Any]:
    """What every lifecycle workflow carries about its subscriber, as it is now."""
    plan = session.get(ServicePlan, subscriber.service_plan_id)
    assert plan is not None  # a plan in use cannot be deleted
    plan_snapshot = plans.snapshot(plan)
    return {
        "subscriber_id": str(subscriber.id),
        "username": subscriber.username,
        # The provisioning workflow created the RADIUS account and owns it.
        "radius_owner": str(subscriber.workflow_id),
        "subscriber_status": subscriber.status.value,
        "radius_group": current_group(subscriber.status, plan_snapshot),
        "plan": plan_snapshot,
        "onu_serial": subscriber.onu_serial,
        "cpe_serial": subscriber.cpe_serial,
        "resources": subscriber.resources or {},
    }


def lifecycle_claims(input_data: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    # One lifecycle workflow at a time per subscriber: a second one collides on this claim.
    return (("subscriber", input_data["subscriber_id"]),)


@dataclass(frozen=True)
class SubscriberFilter:
    status: SubscriberStatus | None = None
    username: str | None = None
    onu_serial: str | None = None


SubscriberPage = Page[Subscriber]


@dataclass(frozen=True)
class SubscriberDetail:
    subscriber: Subscriber
    plan: ServicePlan
    workflows: list[Workflow]


def _conditions(tenant_id: str, filters: SubscriberFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [Subscriber.tenant_id == tenant_id]
    if filters.status is not None:
        conditions.append(Subscriber.status == filters.status)
    if filters.username is not None:
        conditions.append(Subscriber.username == filters.username)
    if filters.onu_serial is not None:
        conditions.append(Subscriber.onu_serial == filters.onu_serial)
    return conditions


def list_subscribers(
    session: Session, tenant_id: str, filters: SubscriberFilter, *, limit: int, offset: int
) -> SubscriberPage:
    conditions = _conditions(tenant_id, filters)
    total = session.scalar(select(func.count()).select_from(Subscriber).where(*conditions))
    items = list(
        session.scalars(
            select(Subscriber)
            .where(*conditions)
            .order_by(Subscriber.created_at.desc(), Subscriber.id.desc())
            .limit(limit)
            .offset(offset)
        )
    )
    return SubscriberPage(items=items, total=total or 0, limit=limit, offset=offset)


def get_subscriber(session: Session, tenant_id: str, subscriber_id: uuid.UUID) -> SubscriberDetail:
    subscriber = session.scalar(
        select(Subscriber).where(Subscriber.id == subscriber_id, Subscriber.tenant_id == tenant_id)
    )
    if subscriber is None:
        raise NotFound(f"subscriber {subscriber_id} not found")
    plan = session.get(ServicePlan, subscriber.service_plan_id)
    assert plan is not None
    workflows = list(
        session.scalars(
            select(Workflow)
            .where(Workflow.tenant_id == tenant_id, Workflow.subscriber_id == subscriber_id)
            .order_by(Workflow.created_at.desc(), Workflow.id.desc())
        )
    )
    return SubscriberDetail(subscriber, plan, workflows)


def merged_resources(current: Mapping[str, Any] | None, changes: Mapping[str, Any]) -> dict:
    """A new resources document: ``changes`` per system over ``current`` (replaced, never
    mutated in place: an in-place change to a JSON column is not saved)."""
    merged = dict(current or {})
    for system, value in changes.items():
        merged[system] = {**(merged.get(system) or {}), **value} if value else value
    return merged


class SubscriberService:
    """Subscribers as the API sees them: each method is one unit of work."""

    def __init__(
        self, unit_of_work: Callable[[], AbstractContextManager[Session]] = transaction
    ) -> None:
        self._unit_of_work = unit_of_work

    def list(
        self, tenant_id: str, filters: SubscriberFilter, *, limit: int, offset: int
    ) -> SubscriberPage:
        with self._unit_of_work() as session:
            return list_subscribers(session, tenant_id, filters, limit=limit, offset=offset)

    def get(self, tenant_id: str, subscriber_id: uuid.UUID) -> SubscriberDetail:
        with self._unit_of_work() as session:
            return get_subscriber(session, tenant_id, subscriber_id)
