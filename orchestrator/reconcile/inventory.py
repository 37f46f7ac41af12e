"""Reading what carries our markers from each system, in bulk (a few calls per system, not a
few per subscriber). Readers extend the integration clients, so they speak through the same
sessions, timeouts, retries and error classes; none of them writes anything.

Lists are read page by page and only what carries a marker is kept, as the few fields the
comparison needs: never a whole inventory, nor a client library's record objects, at once."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from sqlalchemy import bindparam, text

from orchestrator.config import Settings
from orchestrator.integrations.genieacs import GenieAcsClient
from orchestrator.integrations.netbox import NetBoxClient
from orchestrator.integrations.onos import OnosClient
from orchestrator.integrations.radius import RadiusStore
from orchestrator.reconcile import markers


@dataclass(frozen=True)
class NetBoxObject:
    #: "ip-address" or "prefix"
    kind: str
    id: int
    value: str
    key: markers.NetBoxKey


#: Objects per NetBox list page (``?limit=``): NetBox's own cap (MAX_PAGE_SIZE, 1000 by
#: default), so a network's addresses take few round trips while one page is all we hold.
NETBOX_PAGE = 1000


class NetBoxInventory(NetBoxClient):
    def marked_addresses(self, parents: Iterable[str]) -> list[NetBoxObject]:
        """Our addresses inside ``parents`` (the prefixes our plans and intents allocate from:
        NetBox filters addresses by parent, never by a pattern of their description)."""
        wanted = sorted(set(parents))
        if not wanted:
            return []
        endpoint = self._api.ipam.ip_addresses
        return self._read(
            "list_ips",
            lambda: self._marked(
                "ip-address",
                endpoint.filter(parent=wanted, limit=NETBOX_PAGE),
                "address",
                markers.NETBOX_ADDRESS_STEPS,
            ),
        )

    def marked_prefixes(self) -> list[NetBoxObject]:
        endpoint = self._api.ipam.prefixes
        return self._read(
            "list_prefixes",
            lambda: self._marked(
                "prefix",
                endpoint.all(limit=NETBOX_PAGE),
                "prefix",
                markers.NETBOX_PREFIX_STEPS,
            ),
        )

    @staticmethod
    def _marked(
        kind: str, records: Iterable[Any], field: str, steps: frozenset[str]
    ) -> list[NetBoxObject]:
        """Ours among ``records``, consumed as pynetbox fetches them page by page."""
        found = []
        for record in records:
            key = markers.netbox_key(getattr(record, "description", None), steps)
            if key is not None:
                found.append(NetBoxObject(kind, int(record.id), str(getattr(record, field)), key))
        return found


class RadiusInventory(RadiusStore):
    def dispose(self) -> None:
        # a check builds its own store: its connections go with it
        self._engine.dispose()

    def ownership(self) -> dict[str, str]:
        """Every account we created: username -> the workflow that owns it."""
        with self._transaction("list_ownership") as conn:
            rows = conn.execute(
                text("SELECT username, workflow_id FROM orchestrator_radius_account")
            )
            return {str(username): str(owner) for username, owner in rows}

    def with_password(self, usernames: Iterable[str]) -> set[str]:
        """Which of ``usernames`` have their password row (the account FreeRADIUS checks)."""
        names = sorted(set(usernames))
        if not names:
            return set()
        with self._transaction("list_accounts") as conn:
            rows = conn.execute(
                text(
                    "SELECT DISTINCT username FROM radcheck "
                    "WHERE attribute = 'Cleartext-Password' AND username IN :names"
                ).bindparams(bindparam("names", expanding=True)),
                {"names": names},
            )
            return {str(row[0]) for row in rows}


#: An ONOS service as our intents name it: (port name, S-tag, C-tag, tech profile).
Service = tuple[str, int, int, int]


class OnosInventory(OnosClient):
    def programmed_on(self, port_names: Iterable[str]) -> set[Service]:
        """The services programmed-subscribers lists on these ports: the ports read one device
        at a time, keeping only these names, then programmed-subscribers (one list, the only
        way the olt app gives it but per port)."""
        wanted = set(port_names)
        if not wanted:
            return set()
        names = {location: name for name, location in self.named_ports() if name in wanted}
        entries = self._rest.request(
            "GET",
            "/onos/olt/oltapp/programmed-subscribers",
            operation="programmed_subscribers",
            idempotent=True,
        ).json()
        found: set[Service] = set()
        for entry in entries.get("entries", []):
            name = names.get(entry.get("location", ""))
            info = entry.get("tagInfo", {})
            if name in wanted:
                found.add(
                    (
                        name,
                        info.get("ponSTag"),
                        info.get("ponCTag"),
                        info.get("technologyProfileId"),
                    )
                )
        return found


@dataclass(frozen=True)
class Device:
    device_id: str
    serial: str
    tags: tuple[str, ...]


@dataclass(frozen=True)
class QueuedTask:
    task_id: str
    device_id: str
    #: The CPE's serial (None if GenieACS no longer knows the device).
    serial: str | None
    workflow_id: str
    #: True for a task that clears the PPPoE credentials (deprovisioning's); False for a push.
    clears: bool


def _clears(task: dict[str, Any]) -> bool:
    # Read without keeping the values: a push's values hold the PPPoE password.
    values = task.get("parameterValues") or []
    return any(
        isinstance(v, list) and len(v) > 1 and str(v[0]).endswith(".Username") and v[1] == ""
        for v in values
    )


#: How many bytes of values (JSON-encoded, then percent-encoded) one ``$in`` query carries in
#: its URL. GenieACS's Node server reads 16 KiB of request line and headers, then answers 431
#: (simulators/genieacs.py HEAD_LIMIT): half of it leaves room for the rest of the request.
IN_QUERY_BYTES = 8 * 1024


def in_batches(values: list[str], budget: int = IN_QUERY_BYTES) -> Iterator[list[str]]:
    """``values`` in consecutive batches whose ``$in`` lists fit ``budget`` bytes of URL."""
    batch: list[str] = []
    size = 0
    for value in values:
        cost = len(quote(json.dumps(value), safe="")) + 6  # and the separator, ", " encoded
        if batch and size + cost > budget:
            yield batch
            batch, size = [], 0
        batch.append(value)
        size += cost
    if batch:
        yield batch


class GenieAcsInventory(GenieAcsClient):
    _DEVICE_FIELDS = "_id,_deviceId,_tags"

    def _devices_in(self, field: str, values: Iterable[str], operation: str) -> list[Device]:
        """The devices whose ``field`` is one of ``values``, in as many queries as their URLs
        need (a network's worth of serials in one URL is refused)."""
        return [
            device
            for batch in in_batches(sorted(set(values)), IN_QUERY_BYTES)
            for device in self._devices({field: {"$in": batch}}, operation)
        ]

    def _devices(self, query: dict[str, Any], operation: str) -> list[Device]:
        response = self._rest.request(
            "GET",
            "/devices/",
            operation=operation,
            idempotent=True,
            params={"query": json.dumps(query), "projection": self._DEVICE_FIELDS},
        )
        return [
            Device(
                device_id=str(doc["_id"]),
                serial=str(doc.get("_deviceId", {}).get("_SerialNumber", "")),
                tags=tuple(doc.get("_tags") or ()),
            )
            for doc in response.json()
        ]

    def tagged_devices(self) -> list[Device]:
        """The devices that carry one of our subscriber tags."""
        return self._devices({"_tags": {"$regex": markers.TAG_PATTERN}}, "list_tagged_devices")

    def devices_by_serial(
        self, serials: Iterable[str], known: Iterable[Device] = ()
    ) -> dict[str, Device]:
        """The devices with these serials. Those among ``known`` (read already: our tagged
        devices, nearly every subscriber's CPE) are not asked for again; GenieACS is asked
        only for the rest, which a ``$in`` of a whole network's serials would make slow."""
        wanted = set(serials)
        found = {d.serial: d for d in known if d.serial in wanted}
        rest = wanted - found.keys()
        found.update(
            (d.serial, d) for d in self._devices_in("_deviceId._SerialNumber", rest, "list_devices")
        )
        return found

    def our_tasks(self) -> list[QueuedTask]:
        """Queued tasks whose uniqueKey is a configure_cpe key of ours, with their CPE."""
        tasks = self._query(
            "tasks", {"uniqueKey": {"$regex": markers.TASK_KEY_PATTERN}}, operation="list_tasks"
        )
        ours = [(t, markers.task_workflow(t.get("uniqueKey"))) for t in tasks]
        ids = sorted({str(t.get("device")) for t, workflow_id in ours if workflow_id})
        serials = {d.device_id: d.serial for d in self._devices_in("_id", ids, "list_devices")}
        return [
            QueuedTask(
                task_id=str(task["_id"]),
                device_id=str(task.get("device")),
                serial=serials.get(str(task.get("device"))),
                workflow_id=workflow_id,
                clears=_clears(task),
            )
            for task, workflow_id in ours
            if workflow_id
        ]


@dataclass
class Inventory:
    """One reader per system."""

    netbox: NetBoxInventory
    radius: RadiusInventory
    onos: OnosInventory
    genieacs: GenieAcsInventory

    @classmethod
    def from_settings(cls, settings: Settings) -> Inventory:
        return cls(
            netbox=NetBoxInventory.from_settings(settings),  # type: ignore[arg-type]
            radius=RadiusInventory.from_settings(settings),  # type: ignore[arg-type]
            onos=OnosInventory.from_settings(settings),  # type: ignore[arg-type]
            genieacs=GenieAcsInventory.from_settings(settings),  # type: ignore[arg-type]
        )

    def close(self) -> None:
        self.radius.dispose()
        self.netbox.close()
        self.onos.close()
        self.genieacs.close()
