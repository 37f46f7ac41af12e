"""What our database says is owned, read in one transaction.

Owned is what a live subscriber holds (its ``resources``, its RADIUS account) and whatever a
workflow in flight may be creating or removing. A live subscriber is one whose provisioning
completed and who is not terminated (or one whose provisioning is still in flight). Anything a
workflow touched while the check was reading the systems counts as in flight: what changed
while we looked is not judged.

Read as plain rows of the few columns the comparison needs, streamed in pages (never ORM
objects, which would drag each workflow's steps and JSON along): what is kept per subscriber is
a handful of keys, so a check's memory grows by a few hundred bytes per subscriber, not by its
history.
"""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, or_, select
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
#: Rows fetched per round trip while streaming a table (a server-side cursor): memory holds one
#: page of rows, whatever the table's size.
PAGE_ROWS = 1000


def _stream(session: Session, statement: Select[Any]) -> Iterator[Any]:
    """The statement's rows, fetched page by page (psycopg2's named cursor) instead of whole."""
    return iter(session.execute(statement.execution_options(yield_per=PAGE_ROWS)))


@dataclass(frozen=True, slots=True)
class WorkflowRow:
    id: str
    tenant_id: str
    workflow_type: str
    status: WorkflowStatus
    subscriber_id: str | None
    username: str | None
    busy: bool


@dataclass(frozen=True, slots=True)
class Holdings:
    """What a subscriber's ``resources`` say it holds, as far as the check compares: the keys
    and names, not the whole document."""

    netbox_key: str | None = None
    netbox_address: str | None = None
    ipv6_key: str | None = None
    ipv6_prefix: str | None = None
    wan_key: str | None = None
    wan_prefix: str | None = None
    onos: Service | None = None
    cpe_serial: str | None = None
    cpe_tag: str | None = None
    cpe_device_id: str | None = None
    cpe_unique_key: str | None = None

    @classmethod
    def of(cls, resources: dict[str, Any] | None) -> Holdings:
        resources = resources or {}
        netbox = resources.get("netbox") or {}
        ipv6 = resources.get("ipv6") or {}
        cpe = resources.get("cpe") or {}
        return cls(
            netbox_key=netbox.get("key"),
            netbox_address=netbox.get("address"),
            ipv6_key=ipv6.get("key"),
            ipv6_prefix=ipv6.get("delegated_prefix"),
            wan_key=ipv6.get("wan_key"),
            wan_prefix=ipv6.get("wan_prefix"),
            onos=subscriber_service(resources),
            cpe_serial=cpe.get("serial"),
            cpe_tag=cpe.get("tag"),
            cpe_device_id=cpe.get("device_id"),
            cpe_unique_key=cpe.get("unique_key"),
        )

    def netbox_keys(self) -> set[str]:
        """The NetBox keys it holds: its address's, its delegated prefix's and WAN /64's."""
        return {k for k in (self.netbox_key, self.ipv6_key, self.wan_key) if k}


@dataclass(frozen=True, slots=True)
class SubscriberRow:
    id: str
    tenant_id: str
    username: str
    status: SubscriberStatus
    workflow_id: str
    holds: Holdings
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
    rows = _stream(
        session,
        select(WorkflowStep.name, WorkflowStep.intent, Workflow.id)
        .join(Workflow, Workflow.id == WorkflowStep.workflow_id)
        .where(
            WorkflowStep.name.in_(["allocate_ip", *markers.ONOS_STEPS]),
            WorkflowStep.intent.is_not(None),
        )
        .order_by(Workflow.created_at),
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
    for resources, serial in _stream(
        session,
        select(Subscriber.resources, Subscriber.cpe_serial).where(
            Subscriber.status != SubscriberStatus.TERMINATED
        ),
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
    #: recorded intents of configure_cpe, by workflow id (only of the workflows whose CPE
    #: markers nothing holds: the ones a cleanup may need)
    cpe_intents: dict[str, dict[str, Any]]

    def workflow(self, workflow_id: str | None) -> WorkflowRow | None:
        return self.workflows.get(workflow_id) if workflow_id else None

    def busy(self, workflow_id: str | None) -> bool:
        row = self.workflow(workflow_id)
        return bool(row and row.busy)

    def holders(self) -> Iterable[SubscriberRow]:
        """Subscribers whose resources are owned: live ones, and those in flight."""
        return (s for s in self.subscribers.values() if s.live or s.busy)


#: A workflow as the check needs it: no input, context or output beyond the username (and a
#: cleanup's orphans), which can be large.
_WORKFLOW_COLUMNS = (
    Workflow.id,
    Workflow.tenant_id,
    Workflow.workflow_type,
    Workflow.status,
    Workflow.subscriber_id,
    Workflow.input["username"].astext,
    Workflow.updated_at,
)


def read_ownership(
    session: Session,
    started: datetime,
    referenced: Iterable[str],
    tagged: Iterable[str],
    cpe_markers: Iterable[tuple[str, str]] = (),
) -> Ownership:
    """The snapshot after the systems were read. ``referenced``: workflow ids our markers name;
    ``tagged``: subscriber ids our CPE tags name; ``cpe_markers``: (subscriber id, device id)
    of each of our tags and (workflow id, "") of each of our queued tasks, whose makers'
    configure_cpe intents are read when nothing holds them."""
    referenced_ids = {uuid.UUID(w) for w in referenced if markers.is_uuid(w)}
    tagged_ids = {uuid.UUID(s) for s in tagged if markers.is_uuid(s)}
    workflows: dict[str, WorkflowRow] = {}
    provisioning_of: dict[str, str] = {}
    busy_subscribers: set[str] = set()
    cleanups: list[uuid.UUID] = []

    def load(condition: ColumnElement[bool]) -> None:
        for id_, tenant, kind, status, subscriber, username, updated in _stream(
            session, select(*_WORKFLOW_COLUMNS).where(condition)
        ):
            busy = status in WorkflowStatus.active() or updated >= started
            row = WorkflowRow(
                id=str(id_),
                tenant_id=tenant,
                workflow_type=kind,
                status=status,
                subscriber_id=str(subscriber) if subscriber else None,
                username=username,
                busy=busy,
            )
            workflows[row.id] = row
            if row.subscriber_id and kind == "provision_subscriber":
                provisioning_of[row.subscriber_id] = row.id
            if busy and row.subscriber_id:
                busy_subscribers.add(row.subscriber_id)
            if busy and kind == CLEANUP_TYPE:
                cleanups.append(id_)

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
    in_cleanup = _cleanup_orphans(session, cleanups)
    named = {uuid.UUID(w.subscriber_id) for w in workflows.values() if w.subscriber_id}
    subscribers = _subscribers(session, tagged_ids | named)
    # Their makers: a subscriber is live only if its provisioning completed.
    makers = {uuid.UUID(s[4]) for s in subscribers} - {uuid.UUID(w) for w in workflows}
    if makers:
        load(Workflow.id.in_(makers))
    rows: dict[str, SubscriberRow] = {}
    for sid, tenant, username, status, workflow_id, holds in subscribers:
        maker = workflows.get(workflow_id)
        completed = maker is not None and maker.status == WorkflowStatus.COMPLETED
        live = status in (SubscriberStatus.ACTIVE, SubscriberStatus.SUSPENDED) and completed
        rows[sid] = SubscriberRow(
            id=sid,
            tenant_id=tenant,
            username=username,
            status=status,
            workflow_id=workflow_id,
            holds=holds,
            live=live,
            busy=sid in busy_subscribers or bool(maker and maker.busy),
        )
        provisioning_of.setdefault(sid, workflow_id)
    billing = [
        (str(b_id), tenant, str(sid), str(workflow_id))
        for b_id, tenant, sid, workflow_id in _stream(
            session,
            select(
                BillingService.id,
                BillingService.tenant_id,
                BillingService.subscriber_id,
                BillingService.workflow_id,
            ).where(BillingService.status == BillingStatus.ACTIVE),
        )
    ]
    unheld = _unheld_cpe_makers(cpe_markers, rows, provisioning_of)
    return Ownership(
        started=started,
        workflows=workflows,
        subscribers=rows,
        provisioning_of=provisioning_of,
        in_cleanup=in_cleanup,
        active_billing=billing,
        cpe_intents=_cpe_intents(session, unheld),
    )


def _cleanup_orphans(session: Session, cleanups: list[uuid.UUID]) -> set[tuple[str, str]]:
    """(system, resource) of what the cleanups in flight are removing."""
    if not cleanups:
        return set()
    return {
        (orphan["system"], orphan["resource"])
        for orphans in session.scalars(
            select(Workflow.input["orphans"]).where(Workflow.id.in_(cleanups))
        )
        for orphan in orphans or []
    }


SubscriberTuple = tuple[str, str, str, SubscriberStatus, str, Holdings]


def _subscribers(session: Session, also: set[uuid.UUID]) -> list[SubscriberTuple]:
    """Every subscriber not terminated, and the terminated ones in ``also``, as compact rows."""
    return [
        (str(sid), tenant, username, status, str(workflow_id), Holdings.of(resources))
        for sid, tenant, username, status, workflow_id, resources in _stream(
            session,
            select(
                Subscriber.id,
                Subscriber.tenant_id,
                Subscriber.username,
                Subscriber.status,
                Subscriber.workflow_id,
                Subscriber.resources,
            ).where(
                or_(
                    Subscriber.status != SubscriberStatus.TERMINATED,
                    Subscriber.id.in_(also),
                )
            ),
        )
    ]


def _unheld_cpe_makers(
    cpe_markers: Iterable[tuple[str, str]],
    subscribers: dict[str, SubscriberRow],
    provisioning_of: dict[str, str],
) -> set[str]:
    """The workflows whose configure_cpe intent a cleanup of our CPE markers could need: a
    tag's maker unless a holder has that tag's device, and a queued task's workflow unless
    its key is held (a superset of the orphans': busy ones are dropped later)."""
    holders = [s for s in subscribers.values() if s.live or s.busy]
    held_devices = {(s.id, s.holds.cpe_device_id) for s in holders}
    held_keys = {s.holds.cpe_unique_key for s in holders}
    wanted: set[str] = set()
    for owner, device_id in cpe_markers:
        if not device_id:  # a task's workflow
            if f"{owner}:{markers.CPE_STEP}" not in held_keys:
                wanted.add(owner)
        elif (owner, device_id) not in held_devices and owner in provisioning_of:
            wanted.add(provisioning_of[owner])
    return wanted


def _cpe_intents(session: Session, workflow_ids: set[str]) -> dict[str, dict[str, Any]]:
    ids = {uuid.UUID(w) for w in workflow_ids if markers.is_uuid(w)}
    if not ids:
        return {}
    return {
        str(workflow_id): dict(intent)
        for workflow_id, intent in session.execute(
            select(WorkflowStep.workflow_id, WorkflowStep.intent).where(
                WorkflowStep.name == markers.CPE_STEP,
                WorkflowStep.intent.is_not(None),
                WorkflowStep.workflow_id.in_(ids),
            )
        )
    }
