"""The service layer: what the API (and the CLI) can ask of the orchestrator.

Each public method is one unit of work: it opens the transaction, writes, commits, and only
then asks the dispatcher to publish (so a worker never sees an id whose rows are not yet
visible). Nothing here knows about Flask or Celery.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, raiseload

from orchestrator import engine, plans, statistics
from orchestrator.config import get_settings
from orchestrator.db import transaction
from orchestrator.definitions import PROVISION_SUBSCRIBER
from orchestrator.errors import ConflictError, InvalidTransition, NotFound, ValidationError
from orchestrator.models import (
    Customer,
    ResourceClaim,
    ServicePlan,
    Subscriber,
    Workflow,
    WorkflowEvent,
    WorkflowStatus,
)
from orchestrator.vault import seal


class Dispatcher(Protocol):
    def start(self, workflow_id: uuid.UUID) -> None: ...

    def compensate(self, workflow_id: uuid.UUID) -> None: ...

    def sync_plan(self, plan_id: int) -> None: ...


class IdempotencyMismatch(ConflictError):
    """Raised when an Idempotency-Key is reused with a different request body."""


@dataclass(frozen=True)
class Submission:
    workflow: Workflow
    #: False when an Idempotency-Key matched an earlier, identical submission.
    created: bool


@dataclass(frozen=True)
class WorkflowDetail:
    workflow: Workflow
    events: list[WorkflowEvent]


@dataclass(frozen=True)
class WorkflowFilter:
    """What a workflow list is narrowed to; every criterion is optional, all must hold."""

    statuses: tuple[WorkflowStatus, ...] = ()
    workflow_type: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    subscriber_id: uuid.UUID | None = None


@dataclass(frozen=True)
class WorkflowPage:
    items: list[Workflow]
    total: int
    limit: int
    offset: int

    @property
    def next_offset(self) -> int | None:
        following = self.offset + len(self.items)
        return following if following < self.total else None


def generate_password() -> str:
    return secrets.token_urlsafe(12)


def derive_username() -> str:
    # No realm: Debian's default filter_username rejects user@realm without a dot.
    return f"ppp-{secrets.token_hex(5)}"


def request_fingerprint(body: dict[str, Any]) -> str:
    """HMAC of the canonical request: compares bodies without storing (or leaking) them."""
    key = (get_settings().secret_key or "unset").encode()
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest()


def _plan_snapshot(plan: ServicePlan) -> dict[str, Any]:
    # The workflow carries the plan as it was at submission: editing a plan later does not
    # change a provisioning already under way.
    return {
        "id": plan.id,
        "name": plan.name,
        "download_mbps": plan.download_mbps,
        "upload_mbps": plan.upload_mbps,
        "radius_group": plan.radius_group,
        "ipv4_prefix": plan.ipv4_prefix,
        "s_tag": plan.s_tag,
        "c_tag": plan.c_tag,
        "tech_profile_id": plan.tech_profile_id,
    }


class OrchestrationService:
    def __init__(
        self,
        dispatcher: Dispatcher,
        unit_of_work: Callable[[], AbstractContextManager[Session]] = transaction,
    ) -> None:
        self._dispatcher = dispatcher
        self._unit_of_work = unit_of_work

    def submit_provisioning(
        self,
        tenant_id: str,
        request: dict[str, Any],
        *,
        idempotency_key: str | None = None,
        api_key_id: uuid.UUID | None = None,
    ) -> Submission:
        fingerprint = request_fingerprint(request)
        if idempotency_key:
            earlier = self._find_by_idempotency_key(tenant_id, idempotency_key, fingerprint)
            if earlier is not None:
                return Submission(earlier, created=False)
        try:
            with self._unit_of_work() as session:
                workflow = self._create_provisioning(
                    session, tenant_id, request, idempotency_key, fingerprint, api_key_id
                )
        except IntegrityError as exc:
            constraint = getattr(getattr(exc.orig, "diag", None), "constraint_name", None)
            if constraint == "uq_workflows_tenant_idempotency" and idempotency_key:
                # A concurrent twin with the same key won the race: answer with its workflow.
                earlier = self._find_by_idempotency_key(tenant_id, idempotency_key, fingerprint)
                if earlier is not None:
                    return Submission(earlier, created=False)
            if constraint == "pk_resource_claims":
                raise ConflictError(
                    "another provisioning for this username or ONU serial is in progress"
                ) from exc
            raise
        self._dispatcher.start(workflow.id)
        return Submission(workflow, created=True)

    def _find_by_idempotency_key(
        self, tenant_id: str, key: str, fingerprint: str
    ) -> Workflow | None:
        with self._unit_of_work() as session:
            workflow = session.scalar(
                select(Workflow).where(
                    Workflow.tenant_id == tenant_id, Workflow.idempotency_key == key
                )
            )
        if workflow is not None and workflow.request_hash != fingerprint:
            raise IdempotencyMismatch("this Idempotency-Key was used with a different request body")
        return workflow

    def _create_provisioning(
        self,
        session: Session,
        tenant_id: str,
        request: dict[str, Any],
        idempotency_key: str | None,
        fingerprint: str,
        api_key_id: uuid.UUID | None,
    ) -> Workflow:
        # FOR SHARE: a plan cannot be deleted between this check and our commit (the delete
        # takes FOR UPDATE and then sees this workflow as a user of the plan).
        plan = session.scalar(
            select(ServicePlan)
            .where(ServicePlan.id == request["service_plan_id"], ServicePlan.tenant_id == tenant_id)
            .with_for_update(read=True)
        )
        if plan is None:
            raise ValidationError(
                "unknown service plan", {"service_plan_id": ["no such service plan"]}
            )
        customer_id = request.get("customer_id")
        if (
            customer_id is not None
            and session.scalar(
                select(Customer.id).where(
                    Customer.id == uuid.UUID(str(customer_id)), Customer.tenant_id == tenant_id
                )
            )
            is None
        ):
            raise ValidationError("unknown customer", {"customer_id": ["no such customer"]})

        username = request.get("username") or derive_username()
        onu_serial = request.get("onu_serial")
        if session.scalar(select(Subscriber.id).where(Subscriber.username == username)):
            raise ConflictError(f"username {username!r} is already provisioned")
        if onu_serial and session.scalar(
            select(Subscriber.id).where(Subscriber.onu_serial == onu_serial)
        ):
            raise ConflictError(f"ONU {onu_serial} already serves a subscriber")

        input_data = {
            key: (str(value) if isinstance(value, uuid.UUID) else value)
            for key, value in request.items()
            if key != "password" and value is not None
        }
        input_data["username"] = username
        input_data["plan"] = _plan_snapshot(plan)
        workflow = engine.new_workflow(
            session,
            PROVISION_SUBSCRIBER,
            tenant_id=tenant_id,
            input_data=input_data,
            sealed_secrets=seal({"password": request.get("password") or generate_password()}),
            deadline=timedelta(seconds=get_settings().workflow_deadline_seconds),
            idempotency_key=idempotency_key,
            request_hash=fingerprint,
            api_key_id=api_key_id,
        )
        session.add_all(
            ResourceClaim(kind=kind, value=value, workflow_id=workflow.id)
            for kind, value in self._claims(username, onu_serial)
        )
        session.flush()
        return workflow

    @staticmethod
    def _claims(username: str, onu_serial: str | None) -> Iterator[tuple[str, str]]:
        yield "username", username
        if onu_serial:
            yield "onu_serial", onu_serial

    def get_workflow(self, tenant_id: str, workflow_id: uuid.UUID) -> WorkflowDetail:
        with self._unit_of_work() as session:
            workflow = session.scalar(
                select(Workflow).where(Workflow.id == workflow_id, Workflow.tenant_id == tenant_id)
            )
            if workflow is None:
                # Another tenant's workflow is indistinguishable from a missing one.
                raise NotFound(f"workflow {workflow_id} not found")
            events = list(
                session.scalars(
                    select(WorkflowEvent)
                    .where(WorkflowEvent.workflow_id == workflow_id)
                    .order_by(WorkflowEvent.id)
                )
            )
            return WorkflowDetail(workflow, events)

    def list_workflows(
        self, tenant_id: str, filters: WorkflowFilter, *, limit: int, offset: int
    ) -> WorkflowPage:
        """One page of the tenant's workflows, newest first, with the number of matches."""
        conditions = [Workflow.tenant_id == tenant_id, *self._conditions(tenant_id, filters)]
        with self._unit_of_work() as session:
            total = session.scalar(select(func.count()).select_from(Workflow).where(*conditions))
            items = list(
                session.scalars(
                    select(Workflow)
                    .where(*conditions)
                    # The list shows no steps: loading them would be a query per page for nothing.
                    .options(raiseload(Workflow.steps))
                    .order_by(Workflow.created_at.desc(), Workflow.id.desc())
                    .limit(limit)
                    .offset(offset)
                )
            )
        return WorkflowPage(items=items, total=total or 0, limit=limit, offset=offset)

    @staticmethod
    def _conditions(tenant_id: str, filters: WorkflowFilter) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = []
        if filters.statuses:
            conditions.append(Workflow.status.in_(filters.statuses))
        if filters.workflow_type is not None:
            conditions.append(Workflow.workflow_type == filters.workflow_type)
        if filters.created_after is not None:
            conditions.append(Workflow.created_at >= filters.created_after)
        if filters.created_before is not None:
            conditions.append(Workflow.created_at < filters.created_before)
        if filters.subscriber_id is not None:
            subscriber = str(filters.subscriber_id)
            conditions.append(
                or_(
                    # the provisioning that created it (also after a rollback removed the row),
                    Workflow.output["subscriber_id"].astext == subscriber,
                    # workflows about an existing subscriber (deprovision, suspend, ...),
                    Workflow.input["subscriber_id"].astext == subscriber,
                    # and whatever workflow the subscriber row points to.
                    Workflow.id.in_(
                        select(Subscriber.workflow_id).where(
                            Subscriber.id == filters.subscriber_id,
                            Subscriber.tenant_id == tenant_id,
                        )
                    ),
                )
            )
        return conditions

    def statistics(
        self, tenant_id: str, window: statistics.Window, workflow_type: str | None = None
    ) -> statistics.Statistics:
        with self._unit_of_work() as session:
            return statistics.compute(session, tenant_id, window, workflow_type)

    def retry(self, tenant_id: str, workflow_id: uuid.UUID) -> Workflow:
        """Run a rolled-back workflow again as a new run, or finish a failed rollback."""
        try:
            with self._unit_of_work() as session:
                workflow = self._locked(session, tenant_id, workflow_id)
                if workflow.status == WorkflowStatus.ROLLED_BACK:
                    self._check_plan_exists(session, workflow)
                    engine.start_new_run(
                        session, workflow, get_settings().workflow_deadline_seconds
                    )
                    session.add_all(
                        ResourceClaim(kind=kind, value=value, workflow_id=workflow.id)
                        for kind, value in self._claims(
                            workflow.input["username"], workflow.input.get("onu_serial")
                        )
                    )
                    session.flush()
                    action = self._dispatcher.start
                elif workflow.status == WorkflowStatus.FAILED:
                    engine.resume_rollback(session, workflow)
                    action = self._dispatcher.compensate
                else:
                    raise InvalidTransition(
                        f"a {workflow.status.value} workflow cannot be retried "
                        "(only rolled_back or failed ones)"
                    )
        except IntegrityError as exc:
            raise ConflictError(
                "the username or ONU serial is now held by another workflow"
            ) from exc
        action(workflow.id)
        return workflow

    def cancel(self, tenant_id: str, workflow_id: uuid.UUID) -> Workflow:
        """Ask a pending or running workflow to stop at the next step boundary and compensate."""
        with self._unit_of_work() as session:
            workflow = self._locked(session, tenant_id, workflow_id)
            if workflow.status not in engine.FORWARD_WORKFLOW_STATUSES:
                raise InvalidTransition(f"a {workflow.status.value} workflow cannot be cancelled")
            engine.request_cancel(session, workflow)
        return workflow

    @staticmethod
    def _check_plan_exists(session: Session, workflow: Workflow) -> None:
        """A new run provisions on the plan it was submitted with; it must still exist."""
        plan_id = (workflow.input.get("plan") or {}).get("id")
        if plan_id is None:
            return
        found = session.scalar(
            select(ServicePlan.id)
            .where(ServicePlan.id == plan_id, ServicePlan.tenant_id == workflow.tenant_id)
            .with_for_update(read=True)
        )
        if found is None:
            raise ConflictError(f"service plan {plan_id} of this workflow no longer exists")

    @staticmethod
    def _locked(session: Session, tenant_id: str, workflow_id: uuid.UUID) -> Workflow:
        workflow = session.scalar(
            select(Workflow)
            .where(Workflow.id == workflow_id, Workflow.tenant_id == tenant_id)
            .with_for_update()
        )
        if workflow is None:
            raise NotFound(f"workflow {workflow_id} not found")
        return workflow

    def update_plan(self, tenant_id: str, plan_id: int, changes: dict[str, Any]) -> ServicePlan:
        """Change a plan; new speeds reach every subscriber of it through its RADIUS group."""
        with self._unit_of_work() as session:
            plan = plans.update_plan(session, tenant_id, plan_id, changes)
        if {"download_mbps", "upload_mbps"} & changes.keys():
            self._dispatcher.sync_plan(plan.id)
        return plan
