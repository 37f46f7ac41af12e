"""What our database says is owned, read in one transaction.

Owned is what a live subscriber holds (its ``resources``, its RADIUS account) and whatever a
workflow in flight may be creating or removing. A live subscriber is one whose provisioning
completed and who is not terminated (or one whose provisioning is still in flight). Anything a
workflow touched while the check was reading the systems counts as in flight: what changed
while we looked is not judged.
"""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from orchestrator.models import (
    BillingService,
    BillingStatus,
    ServicePlan,
    Subscriber,
    SubscriberStatus,
    Workflow,
    WorkflowStatus,
    WorkflowStep,
)
from orchestrator.reconcile import markers
from orchestrator.reconcile.inventory import Service
from orchestrator.steps.access import uni_port_name

CLEANUP_TYPE = "cleanup_orphans"


@dataclass(frozen=True)
class WorkflowRow:
    id: str
    tenant_id: str
    workflow_type: str
    status: WorkflowStatus
    subscriber_id: str | None
    username: str | None
    busy: bool


@dataclass(frozen=True)
class SubscriberRow:
    id: str
    tenant_id: str
    username: str
    status: SubscriberStatus
    workflow_id: str
    resources: dict[str, Any]
    #: Its provisioning completed (or runs) and it is not terminated: what it holds is owned.
    live: bool
    #: A workflow acting on it is in flight (or changed it during the check): not judged.
    busy: bool


@dataclass(frozen=True)
class Intent:
    """An ONOS service an intent of ours named, and the latest workflow that named it."""

    workflow_id: str
    onu_serial: str | None


def _service(raw: Any) -> Service | None:
    if not isinstance(raw, dict) or not raw.get("port_name"):
        return None
    return (str(raw["port_name"]), raw.get("s_tag"), raw.get("c_tag"), raw.get("tp_id"))


def subscriber_service(resources: dict[str, Any]) -> Service | None:
    return _service(resources.get("onos"))


def intent_services(step: str, intent: dict[str, Any]) -> list[Service]:
    """The ONOS services an activate_onu or reprogram_onu intent names."""
    if step == "reprogram_onu":
        return [s for s in (_service(intent.get("old")), _service(intent.get("new"))) if s]
    port = intent.get("port_name") or (
        uni_port_name(intent["onu_serial"]) if intent.get("onu_serial") else None
    )
    service = _service({**intent, "port_name": port})
    return [service] if service else []


@dataclass
class Scope:
    """What to read from the systems (where our things may be), taken before reading them."""

    started: datetime
    address_parents: set[str] = field(default_factory=set)
    onos_services: dict[Service, Intent] = field(default_factory=dict)
    cpe_serials: set[str] = field(default_factory=set)

    @property
    def onos_ports(self) -> set[str]:
        return {service[0] for service in self.onos_services}


def read_scope(session: Session, started: datetime) -> Scope:
    scope = Scope(started=started)
    scope.address_parents.update(
        p for p in session.scalars(select(ServicePlan.ipv4_prefix)) if p is not None
    )
    rows = session.execute(
        select(WorkflowStep.name, WorkflowStep.intent, Workflow.id)
        .join(Workflow, Workflow.id == WorkflowStep.workflow_id)
        .where(
            WorkflowStep.name.in_(["allocate_ip", *markers.ONOS_STEPS]),
            WorkflowStep.intent.is_not(None),
        )
        .order_by(Workflow.created_at)
    )
    for name, intent, workflow_id in rows:
        if name == "allocate_ip":
            if intent.get("prefix"):
                scope.address_parents.add(str(intent["prefix"]))
            continue
        for service in intent_services(name, intent):
            # ordered by creation: the latest workflow to name a service is its maker now
            serial = intent.get("onu_serial") or service[0].rsplit("-", 1)[0]
            scope.onos_services[service] = Intent(str(workflow_id), serial)
    for resources, serial in session.execute(
        select(Subscriber.resources, Subscriber.cpe_serial).where(
            Subscriber.status != SubscriberStatus.TERMINATED
        )
    ):
        address = (resources.get("netbox") or {}).get("address")
        if address:
            scope.address_parents.add(str(ipaddress.ip_interface(address).network))
        service = subscriber_service(resources)
        if service and service not in scope.onos_services:
            scope.onos_services[service] = Intent("", None)
        cpe = resources.get("cpe") or {}
        if cpe.get("serial") or serial:
            scope.cpe_serials.add(str(cpe.get("serial") or serial))
    return scope


@dataclass
class Ownership:
    started: datetime
    workflows: dict[str, WorkflowRow]
    subscribers: dict[str, SubscriberRow]
    #: subscriber id -> the provisioning workflow that chose it (also for rows since deleted)
    provisioning_of: dict[str, str]
    #: (system, resource) of what an in-flight cleanup is removing
    in_cleanup: set[tuple[str, str]]
    #: active billing services: (id, tenant, subscriber id, the workflow that made it)
    active_billing: list[tuple[str, str, str, str]]
    #: recorded intents of configure_cpe, by workflow id
    cpe_intents: dict[str, dict[str, Any]]

    def workflow(self, workflow_id: str | None) -> WorkflowRow | None:
        return self.workflows.get(workflow_id) if workflow_id else None

    def busy(self, workflow_id: str | None) -> bool:
        row = self.workflow(workflow_id)
        return bool(row and row.busy)

    def holders(self) -> Iterable[SubscriberRow]:
        """Subscribers whose resources are owned: live ones, and those in flight."""
        return (s for s in self.subscribers.values() if s.live or s.busy)


def read_ownership(
    session: Session, started: datetime, referenced: Iterable[str], tagged: Iterable[str]
) -> Ownership:
    """The snapshot after the systems were read. ``referenced``: workflow ids our markers name;
    ``tagged``: subscriber ids our CPE tags name."""
    referenced_ids = {uuid.UUID(w) for w in referenced if markers.is_uuid(w)}
    tagged_ids = {uuid.UUID(s) for s in tagged if markers.is_uuid(s)}
    workflows: dict[str, WorkflowRow] = {}
    in_cleanup: set[tuple[str, str]] = set()
    provisioning_of: dict[str, str] = {}
    busy_subscribers: set[str] = set()

    def load(condition: Any) -> None:
        for row in session.scalars(select(Workflow).where(condition)):
            busy = row.status in WorkflowStatus.active() or row.updated_at >= started
            workflows[str(row.id)] = WorkflowRow(
                id=str(row.id),
                tenant_id=row.tenant_id,
                workflow_type=row.workflow_type,
                status=row.status,
                subscriber_id=str(row.subscriber_id) if row.subscriber_id else None,
                username=(row.input or {}).get("username"),
                busy=busy,
            )
            if row.subscriber_id and row.workflow_type == "provision_subscriber":
                provisioning_of[str(row.subscriber_id)] = str(row.id)
            if busy and row.subscriber_id:
                busy_subscribers.add(str(row.subscriber_id))
            if busy and row.workflow_type == CLEANUP_TYPE:
                for orphan in (row.input or {}).get("orphans", []):
                    in_cleanup.add((orphan["system"], orphan["resource"]))

    # What the markers name, what is in flight (or moved during the check), and who made
    # the subscribers our CPE tags name.
    load(
        or_(
            Workflow.id.in_(referenced_ids),
            Workflow.status.in_(WorkflowStatus.active()),
            Workflow.updated_at >= started,
            Workflow.subscriber_id.in_(tagged_ids),
        )
    )
    named = {uuid.UUID(w.subscriber_id) for w in workflows.values() if w.subscriber_id}
    subscribers = list(
        session.scalars(
            select(Subscriber).where(
                or_(
                    Subscriber.status != SubscriberStatus.TERMINATED,
                    Subscriber.id.in_(tagged_ids | named),
                )
            )
        )
    )
    # Their makers: a subscriber is live only if its provisioning completed.
    makers = {s.workflow_id for s in subscribers} - {uuid.UUID(w) for w in workflows}
    if makers:
        load(Workflow.id.in_(makers))
    rows: dict[str, SubscriberRow] = {}
    for sub in subscribers:
        maker = workflows.get(str(sub.workflow_id))
        completed = maker is not None and maker.status == WorkflowStatus.COMPLETED
        live = sub.status in (SubscriberStatus.ACTIVE, SubscriberStatus.SUSPENDED) and completed
        rows[str(sub.id)] = SubscriberRow(
            id=str(sub.id),
            tenant_id=sub.tenant_id,
            username=sub.username,
            status=sub.status,
            workflow_id=str(sub.workflow_id),
            resources=dict(sub.resources or {}),
            live=live,
            busy=str(sub.id) in busy_subscribers or bool(maker and maker.busy),
        )
        provisioning_of.setdefault(str(sub.id), str(sub.workflow_id))
    billing = [
        (str(b.id), b.tenant_id, str(b.subscriber_id), str(b.workflow_id))
        for b in session.scalars(
            select(BillingService).where(BillingService.status == BillingStatus.ACTIVE)
        )
    ]
    cpe_intents = {
        str(workflow_id): dict(intent)
        for workflow_id, intent in session.execute(
            select(WorkflowStep.workflow_id, WorkflowStep.intent).where(
                WorkflowStep.name == markers.CPE_STEP,
                WorkflowStep.intent.is_not(None),
                WorkflowStep.workflow_id.in_({uuid.UUID(w) for w in workflows} | referenced_ids),
            )
        )
    }
    return Ownership(
        started=started,
        workflows=workflows,
        subscribers=rows,
        provisioning_of=provisioning_of,
        in_cleanup=in_cleanup,
        active_billing=billing,
        cpe_intents=cpe_intents,
    )
