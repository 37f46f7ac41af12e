"""Service plans of a tenant: create, read, change and delete, with the rules that keep
provisioning consistent.

Functions take the caller's session and never commit. A plan is locked ``FOR UPDATE`` before it
changes; submissions read it ``FOR SHARE`` (see ``service``), so a plan cannot be deleted between
a submission's check and its commit.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from orchestrator.db import transaction
from orchestrator.errors import NotFound, PlanConflict, ValidationError
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
)

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


def create_plan(session: Session, tenant_id: str, values: dict[str, Any]) -> ServicePlan:
    plan = ServicePlan(tenant_id=tenant_id, **{f: values.get(f) for f in FIELDS})
    _check_unique(session, plan)
    session.add(plan)
    _flush(session)
    return plan


def update_plan(
    session: Session, tenant_id: str, plan_id: int, changes: dict[str, Any]
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
    ) -> None:
        #: Publishes the rewrite of a plan's RADIUS group (tasks.radius.sync_plan_group).
        self._sync_plan = sync_plan
        self._unit_of_work = unit_of_work

    def list(self, tenant_id: str) -> list[ServicePlan]:
        with self._unit_of_work() as session:
            return list_plans(session, tenant_id)

    def get(self, tenant_id: str, plan_id: int) -> ServicePlan:
        with self._unit_of_work() as session:
            return get_plan(session, tenant_id, plan_id)

    def create(self, tenant_id: str, values: dict[str, Any]) -> ServicePlan:
        with self._unit_of_work() as session:
            return create_plan(session, tenant_id, values)

    def update(self, tenant_id: str, plan_id: int, changes: dict[str, Any]) -> ServicePlan:
        """Change a plan; new speeds reach every subscriber of it through its RADIUS group."""
        with self._unit_of_work() as session:
            plan = update_plan(session, tenant_id, plan_id, changes)
        if {"download_mbps", "upload_mbps"} & changes.keys():
            self._sync_plan(plan.id)
        return plan

    def delete(self, tenant_id: str, plan_id: int) -> None:
        with self._unit_of_work() as session:
            delete_plan(session, tenant_id, plan_id)
