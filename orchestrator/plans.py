"""Service plans of a tenant: create, read, change and delete, with the rules that keep
provisioning consistent.

Functions take the caller's session and never commit. A plan is locked ``FOR UPDATE`` before it
changes; submissions read it ``FOR SHARE`` (see ``service``), so a plan cannot be deleted between
a submission's check and its commit.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from orchestrator.db import transaction
from orchestrator.errors import IntegrationError, NotFound, PlanConflict, ValidationError
from orchestrator.models import ServicePlan, Subscriber, Workflow, WorkflowStatus

FIELDS = (
    "name",
    "download_mbps",
    "upload_mbps",
    "radius_group",
    "ipv4_prefix",
    "s_tag",
    "c_tag",
    "tech_profile_id",
    "suspended_radius_group",
    "ipv6_delegation_pool",
    "ipv6_delegated_length",
    "ipv6_wan_pool",
)

#: The delegated prefix's length when a plan with a delegation pool names none (RIPE-690).
DEFAULT_DELEGATED_LENGTH = 56
#: The WAN link's prefix: one /64 per subscriber (RFC 6177).
WAN_PREFIX_LENGTH = 64
#: The plan fields that name an IPv6 pool, a NetBox prefix that must exist there.
_IPV6_POOLS = ("ipv6_delegation_pool", "ipv6_wan_pool")

#: Answers whether NetBox holds this prefix (CIDR); raises IntegrationError if it cannot tell.
PrefixLookup = Callable[[str], bool]

# Unique constraints, by name, and the field each one is about.
_UNIQUE = {
    "uq_service_plans_radius_group": ("radius_group", "this RADIUS group is already in use"),
    "uq_service_plans_tenant_name": ("name", "a plan with this name already exists"),
}


def snapshot(plan: ServicePlan) -> dict[str, Any]:
    """The plan as a workflow carries it: editing the plan later does not change a workflow
    already under way (nor what its rollback restores)."""
    return {field: getattr(plan, field) for field in ("id", *FIELDS)}


def plan_for_workflow(session: Session, tenant_id: str, plan_id: int, field: str) -> ServicePlan:
    """The tenant's plan a submission names, read FOR SHARE: it cannot be deleted between this
    check and the submission's commit (the delete takes FOR UPDATE and then sees the workflow
    as a user of the plan). An unknown plan is a validation error on ``field``."""
    plan = session.scalar(
        select(ServicePlan)
        .where(ServicePlan.id == plan_id, ServicePlan.tenant_id == tenant_id)
        .with_for_update(read=True)
    )
    if plan is None:
        raise ValidationError("unknown service plan", {field: ["no such service plan"]})
    return plan


def list_plans(session: Session, tenant_id: str) -> list[ServicePlan]:
    return list(
        session.scalars(
            select(ServicePlan).where(ServicePlan.tenant_id == tenant_id).order_by(ServicePlan.id)
        )
    )


def get_plan(session: Session, tenant_id: str, plan_id: int, *, lock: bool = False) -> ServicePlan:
    query = select(ServicePlan).where(ServicePlan.id == plan_id, ServicePlan.tenant_id == tenant_id)
    plan = session.scalar(query.with_for_update() if lock else query)
    if plan is None:
        # Another tenant's plan is indistinguishable from a missing one.
        raise NotFound(f"service plan {plan_id} not found")
    return plan


def create_plan(
    session: Session,
    tenant_id: str,
    values: dict[str, Any],
    prefix_exists: PrefixLookup | None = None,
) -> ServicePlan:
    plan = ServicePlan(tenant_id=tenant_id, **{f: values.get(f) for f in FIELDS})
    _check_ipv6(plan)
    _check_pools_exist(plan, [f for f in _IPV6_POOLS if values.get(f)], prefix_exists)
    _check_unique(session, plan)
    session.add(plan)
    _flush(session)
    return plan


def update_plan(
    session: Session,
    tenant_id: str,
    plan_id: int,
    changes: dict[str, Any],
    prefix_exists: PrefixLookup | None = None,
) -> ServicePlan:
    plan = get_plan(session, tenant_id, plan_id, lock=True)
    group = changes.get("radius_group", plan.radius_group)
    if group != plan.radius_group and _in_use(session, plan):
        # Provisioned subscribers sit in the old group in FreeRADIUS: renaming would strand them.
        raise PlanConflict(
            "the RADIUS group of a plan in use cannot change",
            {"radius_group": ["the plan is in use; create a new plan instead"]},
        )
    for field in FIELDS:
        if field in changes:
            setattr(plan, field, changes[field])
    _check_ipv6(plan)
    _check_pools_exist(plan, [f for f in _IPV6_POOLS if changes.get(f)], prefix_exists)
    _check_unique(session, plan)
    _flush(session)
    return plan


def delete_plan(session: Session, tenant_id: str, plan_id: int) -> None:
    plan = get_plan(session, tenant_id, plan_id, lock=True)
    if _in_use(session, plan):
        raise PlanConflict(
            f"service plan {plan_id} is in use by a subscriber or an active workflow"
        )
    session.delete(plan)
    _flush(session)


def _in_use(session: Session, plan: ServicePlan) -> bool:
    by_subscriber = exists().where(Subscriber.service_plan_id == plan.id)
    by_workflow = exists().where(
        Workflow.tenant_id == plan.tenant_id,
        Workflow.status.in_(WorkflowStatus.active()),
        (Workflow.input["plan"]["id"].as_integer() == plan.id)
        # a plan change in flight uses its target plan too
        | (Workflow.input["new_plan"]["id"].as_integer() == plan.id),
    )
    return bool(session.scalar(select(by_subscriber | by_workflow)))


def _check_ipv6(plan: ServicePlan) -> None:
    """The plan's IPv6 fields fit together (the schema has checked each one alone): a delegated
    prefix lies strictly inside its pool and is at most a /64 (SLAAC needs a /64 per link)."""
    if not plan.ipv6_delegation_pool:
        if plan.ipv6_wan_pool:
            message = "a WAN pool needs an ipv6_delegation_pool too"
            raise ValidationError(message, {"ipv6_wan_pool": [message]})
        plan.ipv6_delegated_length = None  # nothing to delegate: an IPv4-only plan
        return
    if plan.ipv6_delegated_length is None:
        plan.ipv6_delegated_length = DEFAULT_DELEGATED_LENGTH
    pool = ipaddress.IPv6Network(plan.ipv6_delegation_pool)
    if not pool.prefixlen < plan.ipv6_delegated_length <= WAN_PREFIX_LENGTH:
        message = (
            f"must be longer than the pool's /{pool.prefixlen} and at most /{WAN_PREFIX_LENGTH}"
        )
        raise ValidationError(
            "the delegated length does not fit the pool", {"ipv6_delegated_length": [message]}
        )


def _check_pools_exist(
    plan: ServicePlan, fields: list[str], prefix_exists: PrefixLookup | None
) -> None:
    """Each pool newly named exists in NetBox (one missing there fails every provisioning)."""
    if prefix_exists is None:
        return
    for field in fields:
        prefix = getattr(plan, field)
        try:
            found = prefix_exists(prefix)
        except IntegrationError as exc:
            message = f"could not be checked in NetBox ({exc}); try again"
            raise ValidationError("NetBox could not be asked", {field: [message]}) from exc
        if not found:
            message = f"NetBox has no prefix {prefix}"
            raise ValidationError(message, {field: [message]})


def _check_unique(session: Session, plan: ServicePlan) -> None:
    """Name the clashing field up front; the constraints still decide races (see _flush)."""
    others = select(ServicePlan.id)
    if plan.id is not None:
        others = others.where(ServicePlan.id != plan.id)
    checks = {
        "uq_service_plans_radius_group": ServicePlan.radius_group == plan.radius_group,
        "uq_service_plans_tenant_name": (ServicePlan.tenant_id == plan.tenant_id)
        & (ServicePlan.name == plan.name),
    }
    # No autoflush: the pending change itself would hit the constraint before we could name it.
    with session.no_autoflush:
        for constraint, clash in checks.items():
            if session.scalar(others.where(clash).limit(1)) is not None:
                field, message = _UNIQUE[constraint]
                raise PlanConflict(message, {field: [message]})


def _flush(session: Session) -> None:
    try:
        session.flush()
    except IntegrityError as exc:
        constraint = getattr(getattr(exc.orig, "diag", None), "constraint_name", None)
        if constraint in _UNIQUE:
            field, message = _UNIQUE[constraint]
            raise PlanConflict(message, {field: [message]}) from exc
        if constraint is not None and constraint.startswith("fk_"):
            # A subscriber or billing service appeared after our check.
            raise PlanConflict("the service plan is in use") from exc
        raise


class PlanService:
    """Plans as the API sees them: each method is one unit of work."""

    def __init__(
        self,
        sync_plan: Callable[[int], None],
        unit_of_work: Callable[[], AbstractContextManager[Session]] = transaction,
        prefix_exists: PrefixLookup | None = None,
    ) -> None:
        #: Publishes the rewrite of a plan's RADIUS group (tasks.radius.sync_plan_group).
        self._sync_plan = sync_plan
        self._unit_of_work = unit_of_work
        #: Checks that the IPv6 pools a plan names exist in NetBox (None: not checked).
        self._prefix_exists = prefix_exists

    def list(self, tenant_id: str) -> list[ServicePlan]:
        with self._unit_of_work() as session:
            return list_plans(session, tenant_id)

    def get(self, tenant_id: str, plan_id: int) -> ServicePlan:
        with self._unit_of_work() as session:
            return get_plan(session, tenant_id, plan_id)

    def create(self, tenant_id: str, values: dict[str, Any]) -> ServicePlan:
        with self._unit_of_work() as session:
            return create_plan(session, tenant_id, values, self._prefix_exists)

    def update(self, tenant_id: str, plan_id: int, changes: dict[str, Any]) -> ServicePlan:
        """Change a plan; new speeds reach every subscriber of it through its RADIUS group."""
        with self._unit_of_work() as session:
            plan = update_plan(session, tenant_id, plan_id, changes, self._prefix_exists)
        if {"download_mbps", "upload_mbps"} & changes.keys():
            self._sync_plan(plan.id)
        return plan

    def delete(self, tenant_id: str, plan_id: int) -> None:
        with self._unit_of_work() as session:
            delete_plan(session, tenant_id, plan_id)
