"""The read-only check: what carries our markers but nothing owns (orphans), and what a live
subscriber should hold but a system lacks (missing).

Three reads, in this order: what to look for (our plans' prefixes, the ports our intents
named, our subscribers' CPEs), then the systems, then who owns what. Ownership is read last and
anything a workflow touched since the check began counts as in flight, so a workflow finishing
mid-check is never judged on a half-old picture.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy.orm import Session

from orchestrator.config import get_settings
from orchestrator.db import transaction
from orchestrator.engine import db_now
from orchestrator.errors import IntegrationError
from orchestrator.models import SubscriberStatus, WorkflowStatus
from orchestrator.reconcile import markers
from orchestrator.reconcile.findings import Missing, Orphan, Report, Undo
from orchestrator.reconcile.inventory import (
    Device,
    Inventory,
    NetBoxObject,
    QueuedTask,
    Service,
)
from orchestrator.reconcile.ownership import (
    Ownership,
    Scope,
    SubscriberRow,
    read_ownership,
    read_scope,
)
from orchestrator.steps.genieacs import subscriber_tag

UnitOfWork = Callable[[], AbstractContextManager[Session]]
T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Seen:
    """What the systems hold that carries our markers (and, for the missing side, the state of
    every live subscriber's resources)."""

    netbox: list[NetBoxObject]
    radius: dict[str, str]
    radius_with_password: set[str]
    onos: set[Service]
    tagged_devices: list[Device]
    devices_by_serial: dict[str, Device]
    tasks: list[QueuedTask]
    #: Systems that could not be read: nothing is judged about them (no orphan, no missing).
    unavailable: frozenset[str] = frozenset()

    def referenced(self, scope: Scope) -> set[str]:
        """Every workflow id a marker names."""
        ids = {o.key.workflow_id for o in self.netbox}
        ids |= set(self.radius.values())
        ids |= {t.workflow_id for t in self.tasks}
        ids |= {i.workflow_id for i in scope.onos_services.values() if i.workflow_id}
        return ids

    def tagged(self) -> set[str]:
        return {sid for sid, _ in self._tags()}

    def _tags(self) -> Iterator[tuple[str, str]]:
        """(subscriber id, device id) of each of our tags."""
        for device in self.tagged_devices:
            for tag in device.tags:
                if sid := markers.tag_subscriber(tag):
                    yield sid, device.device_id

    def cpe_markers(self) -> set[tuple[str, str]]:
        """Our tags as (subscriber id, device id) and our queued tasks as (workflow id, "")."""
        return set(self._tags()) | {(t.workflow_id, "") for t in self.tasks}


def _read(unavailable: set[str], system: str, read: Callable[[], T], empty: T) -> T:
    """One system's read; a system that cannot be read is named, and judged on nothing."""
    try:
        return read()
    except IntegrationError as exc:
        log.warning("reconciliation: %s could not be read: %s", system, exc)
        unavailable.add(system)
        return empty


def read_systems(inventory: Inventory, scope: Scope) -> Seen:
    down: set[str] = set()
    netbox = inventory.netbox
    addresses = _read(down, "netbox", lambda: netbox.marked_addresses(scope.address_parents), [])
    prefixes = _read(down, "netbox", netbox.marked_prefixes, [])
    accounts = _read(down, "radius", inventory.radius.ownership, {})
    with_password = _read(down, "radius", lambda: inventory.radius.with_password(accounts), set())
    genieacs = inventory.genieacs
    tagged = _read(down, "genieacs", genieacs.tagged_devices, [])
    return Seen(
        netbox=addresses + prefixes,
        radius=accounts,
        radius_with_password=with_password,
        onos=_read(down, "onos", lambda: inventory.onos.programmed_on(scope.onos_ports), set()),
        tagged_devices=tagged,
        devices_by_serial=_read(
            down, "genieacs", lambda: genieacs.devices_by_serial(scope.cpe_serials, tagged), {}
        ),
        tasks=_read(down, "genieacs", genieacs.our_tasks, []),
        unavailable=frozenset(down),
    )


def check(inventory: Inventory | None = None, unit_of_work: UnitOfWork = transaction) -> Report:
    """The whole picture, every tenant (narrow it with :meth:`Report.for_tenant`)."""
    with unit_of_work() as session:
        started = db_now(session)
        scope = read_scope(session, started)
    own = inventory is None
    systems = inventory or Inventory.from_settings(get_settings())
    try:
        seen = read_systems(systems, scope)
    finally:
        if own:
            systems.close()
    with unit_of_work() as session:
        owners = read_ownership(
            session, started, seen.referenced(scope), seen.tagged(), seen.cpe_markers()
        )
    return judge(scope, seen, owners)


def judge(scope: Scope, seen: Seen, owners: Ownership) -> Report:
    orphans = [
        o
        for o in (
            *_netbox(seen, owners),
            *_radius(seen, owners),
            *_onos(scope, seen, owners),
            *_genieacs(seen, owners),
            *_database(owners),
        )
        if (o.system, o.resource) not in owners.in_cleanup
    ]
    missing = [m for m in _missing(seen, owners) if m.system not in seen.unavailable]
    return Report(
        tuple(sorted(orphans, key=lambda o: (o.system, o.resource))),
        tuple(sorted(missing, key=lambda m: (m.system, m.subscriber_id, m.resource))),
        tuple(sorted(seen.unavailable)),
    )


# -- why nothing owns it ---------------------------------------------------------------------


def _why(owners: Ownership, workflow_id: str | None, subscriber_id: str | None = None) -> str:
    row = owners.workflow(workflow_id)
    if row is None:
        return f"its marker names workflow {workflow_id}, of which there is no record"
    made_by = f"{row.workflow_type} {row.id}"
    if row.status == WorkflowStatus.FAILED:
        return f"left behind by {made_by}, which failed"
    if row.status != WorkflowStatus.COMPLETED:
        return f"left behind by {made_by}, {row.status.value}: its undo should have removed it"
    subscriber_id = subscriber_id or row.subscriber_id
    subscriber = owners.subscribers.get(subscriber_id or "")
    if subscriber is None:
        return f"made by {made_by}; its subscriber {subscriber_id} no longer exists"
    if subscriber.status == SubscriberStatus.TERMINATED:
        return f"made by {made_by}; its subscriber {subscriber_id} is terminated"
    if not subscriber.live:
        return f"made by {made_by}; its subscriber {subscriber_id} was never provisioned"
    return f"made by {made_by}; subscriber {subscriber_id} holds another one now"


def _orphan(
    owners: Ownership,
    system: str,
    resource: str,
    workflow_id: str | None,
    undo: Undo | None,
    *,
    subscriber_id: str | None = None,
    reason: str | None = None,
    tenant_id: str | None = None,
) -> Orphan:
    row = owners.workflow(workflow_id)
    subscriber = owners.subscribers.get(subscriber_id or "")
    return Orphan(
        system=system,
        resource=resource,
        workflow_id=workflow_id,
        reason=reason or _why(owners, workflow_id, subscriber_id),
        tenant_id=tenant_id
        or (row.tenant_id if row else None)
        or (subscriber.tenant_id if subscriber else None),
        subscriber_id=subscriber_id or (row.subscriber_id if row else None),
        # Without a record of its maker there is no tenant to audit a removal under.
        undo=undo if row is not None else None,
    )


def _held_keys(owners: Ownership) -> set[str]:
    return {key for holder in owners.holders() for key in holder.holds.netbox_keys()}


# -- orphans, system by system ---------------------------------------------------------------


def _netbox(seen: Seen, owners: Ownership) -> Iterator[Orphan]:
    held = _held_keys(owners)
    for obj in seen.netbox:
        key = obj.key.key + (":wan" if obj.key.wan else "")
        if key in held or owners.busy(obj.key.workflow_id):
            continue
        intent = {"idempotency_key": obj.key.key}
        if obj.kind == "prefix":
            intent["wan_key"] = f"{obj.key.key}:wan"
        yield _orphan(
            owners,
            "netbox",
            f"{obj.kind} {obj.value} (id {obj.id}, key {key})",
            obj.key.workflow_id,
            Undo(obj.key.step, intent),
        )


def _radius(seen: Seen, owners: Ownership) -> Iterator[Orphan]:
    held = {(s.username, s.workflow_id) for s in owners.holders()}
    for username, owner in seen.radius.items():
        if (username, owner) in held or owners.busy(owner):
            continue
        yield _orphan(
            owners,
            "radius",
            f"account {username}",
            owner,
            Undo("create_radius_account", {"username": username}),
        )


def _onos(scope: Scope, seen: Seen, owners: Ownership) -> Iterator[Orphan]:
    held = {s.holds.onos for s in owners.holders()}
    for service in seen.onos:
        named = scope.onos_services.get(service)
        # a service no intent of ours named is someone else's, even on a port we programmed
        if named is None or not named.workflow_id:
            continue
        if service in held or owners.busy(named.workflow_id):
            continue
        port, s_tag, c_tag, tp_id = service
        intent = {
            "port_name": port,
            "s_tag": s_tag,
            "c_tag": c_tag,
            "tp_id": tp_id,
            "onu_serial": named.onu_serial,
        }
        yield _orphan(
            owners,
            "onos",
            f"service {port} s{s_tag}/c{c_tag}/tp{tp_id}",
            named.workflow_id,
            Undo("activate_onu", intent),
        )


def _cpe_undo(
    owners: Ownership, workflow_id: str, serial: str | None, tag: str | None
) -> Undo | None:
    """configure_cpe's undo for its maker, on the device the orphan was found on."""
    row = owners.workflow(workflow_id)
    tag = tag or (subscriber_tag(row.subscriber_id) if row and row.subscriber_id else None)
    if row is None or serial is None or tag is None:
        return None
    recorded = owners.cpe_intents.get(workflow_id, {})
    return Undo(
        markers.CPE_STEP,
        {**recorded, "cpe_serial": serial, "tag": tag},
        {"username": row.username},
    )


def _genieacs(seen: Seen, owners: Ownership) -> Iterator[Orphan]:
    held_devices = {(s.id, s.holds.cpe_device_id) for s in owners.holders()}
    for device in seen.tagged_devices:
        for tag in device.tags:
            sid = markers.tag_subscriber(tag)
            if sid is None:
                continue
            subscriber = owners.subscribers.get(sid)
            maker = owners.provisioning_of.get(sid)
            if (sid, device.device_id) in held_devices or (subscriber and subscriber.busy):
                continue
            if owners.busy(maker):
                continue
            yield _orphan(
                owners,
                "genieacs",
                f"tag {tag} on CPE {device.serial}",
                maker,
                _cpe_undo(owners, maker, device.serial, tag) if maker else None,
                subscriber_id=sid,
            )
    held_keys = {s.holds.cpe_unique_key for s in owners.holders()}
    for task in seen.tasks:
        # A clearing task takes credentials away: removing it would leave them on the CPE.
        if task.clears or owners.busy(task.workflow_id):
            continue
        if f"{task.workflow_id}:{markers.CPE_STEP}" in held_keys:
            continue
        yield _orphan(
            owners,
            "genieacs",
            f"task {task.task_id} (PPPoE push) on CPE {task.serial or task.device_id}",
            task.workflow_id,
            _cpe_undo(owners, task.workflow_id, task.serial, None),
        )


def _database(owners: Ownership) -> Iterator[Orphan]:
    for sub in owners.subscribers.values():
        if sub.status == SubscriberStatus.TERMINATED or sub.live or sub.busy:
            continue
        maker = owners.workflow(sub.workflow_id)
        state = f"{maker.status.value}" if maker else "unknown here"
        yield _orphan(
            owners,
            "database",
            f"subscriber {sub.id} ({sub.username}, {sub.status.value})",
            sub.workflow_id,
            Undo("mark_terminated", data={"subscriber_id": sub.id}),
            subscriber_id=sub.id,
            reason=f"no completed provisioning: its workflow {sub.workflow_id} is {state}",
            tenant_id=sub.tenant_id,
        )
    for billing_id, tenant_id, sid, workflow_id in owners.active_billing:
        sub = owners.subscribers.get(sid)
        if sub is not None and (sub.live or sub.busy):
            continue
        state = (
            "was never provisioned"
            if sub is not None and sub.status != SubscriberStatus.TERMINATED
            else "is terminated"
        )
        yield _orphan(
            owners,
            "database",
            f"billing_service {billing_id}",
            workflow_id,
            Undo("end_billing", data={"subscriber_id": sid}),
            subscriber_id=sid,
            reason=f"active, but its subscriber {sid} {state}",
            tenant_id=tenant_id,
        )


# -- missing: a live subscriber's resource gone from a system ---------------------------------


def _missing(seen: Seen, owners: Ownership) -> Iterator[Missing]:
    keys = {o.key.key + (":wan" if o.key.wan else "") for o in seen.netbox}
    billed = {sid for _, _, sid, _ in owners.active_billing}
    for sub in owners.subscribers.values():
        if not sub.live or sub.busy:
            continue
        yield from _missing_for(sub, seen, keys, billed)


def _missing_for(
    sub: SubscriberRow, seen: Seen, netbox_keys: set[str], billed: set[str]
) -> Iterator[Missing]:
    def missing(system: str, resource: str, reason: str) -> Missing:
        return Missing(system, resource, sub.workflow_id, reason, sub.tenant_id, sub.id)

    owner = seen.radius.get(sub.username)
    if owner != sub.workflow_id:
        yield missing(
            "radius",
            f"account {sub.username}",
            "no RADIUS account owned by its provisioning"
            + (f" (owned by {owner})" if owner else ""),
        )
    elif sub.username not in seen.radius_with_password:
        yield missing("radius", f"account {sub.username}", "the account has no password row")
    holds = sub.holds
    if holds.netbox_key and holds.netbox_key not in netbox_keys:
        yield missing(
            "netbox",
            f"ip-address {holds.netbox_address} (key {holds.netbox_key})",
            "no NetBox address carries its key",
        )
    for key, value in ((holds.ipv6_key, holds.ipv6_prefix), (holds.wan_key, holds.wan_prefix)):
        if key and key not in netbox_keys:
            yield missing(
                "netbox", f"prefix {value} (key {key})", "no NetBox prefix carries its key"
            )
    service = holds.onos
    if service and service not in seen.onos:
        port, s_tag, c_tag, tp_id = service
        yield missing(
            "onos",
            f"service {port} s{s_tag}/c{c_tag}/tp{tp_id}",
            "programmed-subscribers does not list it",
        )
    if holds.cpe_serial:
        device = seen.devices_by_serial.get(holds.cpe_serial)
        if device is None:
            yield missing("genieacs", f"CPE {holds.cpe_serial}", "GenieACS has no such device")
        elif holds.cpe_tag and holds.cpe_tag not in device.tags:
            yield missing(
                "genieacs",
                f"tag {holds.cpe_tag} on CPE {holds.cpe_serial}",
                "the device lacks our tag",
            )
    if sub.id not in billed:
        yield missing("database", f"billing for subscriber {sub.id}", "no active billing service")
