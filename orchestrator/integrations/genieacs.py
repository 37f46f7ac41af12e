"""GenieACS NBI: find a CPE by serial or WAN MAC, push PPPoE credentials as a task, tag devices.

Tasks carry a ``uniqueKey``: a new task with the same key replaces a queued one, so pushing again
after a lost answer leaves one task, not two. But the replaced task's **fault** stays (genieacs
lib/api-functions.ts ``insertTasks`` deletes the task only), and GenieACS re-applies a fault's
provisions by itself after ``cwmp.retryDelay`` (300 s x 2^retries) at a later inform: a rollback
must delete our tasks *and* our faults (:meth:`GenieAcsClient.remove_pushes`).

A push is sent **without** ``?connection_request``: GenieACS then inserts the task and answers
202 at once. With it, the NBI first waits up to 30 s for the device's session lock and then up
to 4 s + 120 s for the session, longer than any sane read timeout (and a client that gives up
does not stop the insertion, which may then land after a rollback's clean-up). The session is
asked for separately, by a bare connection request (``POST .../tasks?connection_request``
without a body), which only sends the request to the CPE and does not wait for the lock or the
session; a short poll of ``/tasks`` and ``/faults`` then tells an applied or a refused push
from one still queued for the CPE's next inform (success for us too).
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass
from typing import Any

from orchestrator.config import Settings
from orchestrator.errors import IntegrationError, PermanentError, ResourceNotFound, SlotsBusy
from orchestrator.integrations.http import RestClient, RetryPolicy, Timeouts

SYSTEM = "genieacs"
log = logging.getLogger(__name__)

_TR098_WAN = "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1"
_TR098_PPP = f"{_TR098_WAN}.WANPPPConnection.1"
_TR181_PPP = "Device.PPP.Interface.1"
# Where each data model keeps the MAC of the WAN frames. TR-098: the WAN connection's MACAddress
# ("the physical address of the WANIPConnection/WANPPPConnection"). TR-181: Ethernet.Link's
# MACAddress ("the MAC address used for packets sent via this interface"); not
# Ethernet.Interface's, the burned-in address that TR-181 says need not be the one in use.
# GenieACS matches literal paths (no wildcard instance numbers), so like the PPPoE paths these
# take the first instance.
_WAN_MAC_PATHS = (
    f"{_TR098_WAN}.WANIPConnection.1.MACAddress",
    f"{_TR098_WAN}.WANPPPConnection.1.MACAddress",
    "Device.Ethernet.Link.1.MACAddress",
)
_MAC_SEPARATORS = re.compile(r"[:\-.]")
_MAC_DIGITS = re.compile(r"[0-9A-Fa-f]{12}")
# the roots tell the data model apart without fetching the whole parameter tree
_PROJECTION = (
    "_id,_deviceId,_tags,"
    "Device.DeviceInfo.SerialNumber,InternetGatewayDevice.DeviceInfo.SerialNumber"
)
_PPP_ROOTS = {"tr098": _TR098_PPP, "tr181": _TR181_PPP}
_UNSAFE = re.compile(r"[^A-Za-z0-9_\-]")
# GenieACS's tag route takes [A-Za-z0-9-_%]; requests un-escapes "%2E" and the like back to "."
# (unreserved characters), so a tag outside this set cannot reach GenieACS intact
_TAG = re.compile(r"^[A-Za-z0-9_\-]+$")
#: How long a push waits after the connection request to see the CPE apply or refuse it.
CONFIRM_SECONDS = 3.0
_CONFIRM_POLL = 0.25


@dataclass(frozen=True)
class CpeDevice:
    #: GenieACS's id, already %-escaped once: "A4230F-SimCPE-S1%2D2"
    device_id: str
    serial: str
    #: "tr098" | "tr181"
    data_model: str
    #: GenieACS tags (ours mark whose CPE it is: ``subscriber-<id>``)
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class TaskOutcome:
    task_id: str | None
    #: True when the CPE ran it in a session now; False when queued for its next inform
    applied: bool


@dataclass(frozen=True)
class Cleanup:
    """What :meth:`GenieAcsClient.remove_pushes` deleted."""

    task_ids: tuple[str, ...]
    fault_ids: tuple[str, ...]


def _segment(value: str) -> str:
    """Escapes a path segment for the NBI, whose routes accept only [A-Za-z0-9-_%].

    Device ids contain "%" already: escaping them again is what GenieACS expects.
    """
    return _UNSAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m[0].encode()), value)


def _canonical_mac(mac: str) -> str | None:
    """The MAC as TR-181 writes it, upper case (``00:1A:2B:3C:4D:5E``), from any common form:
    either case, separated by ":" or "-", in Cisco's dotted groups, or bare; None if not a MAC."""
    digits = _MAC_SEPARATORS.sub("", mac.strip())
    if not _MAC_DIGITS.fullmatch(digits):
        return None
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2)).upper()


def _provisions(fault: dict[str, Any]) -> list[Any]:
    """A fault's provisions: GenieACS stores them as a JSON string (lib/cwmp/db.ts saveFault)."""
    raw = fault.get("provisions")
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return []
    return raw if isinstance(raw, list) else []


def _data_model(document: dict[str, Any]) -> str | None:
    if "Device" in document:
        return "tr181"
    if "InternetGatewayDevice" in document:
        return "tr098"
    return None


class GenieAcsClient:
    def __init__(
        self,
        url: str,
        *,
        timeouts: Timeouts | None = None,
        retry: RetryPolicy | None = None,
        confirm_seconds: float = CONFIRM_SECONDS,
    ) -> None:
        # the NBI has no authentication (it is meant to be reachable only from the back office)
        self._rest = RestClient(
            SYSTEM,
            url,
            timeouts=timeouts or Timeouts(),
            retry=retry or RetryPolicy(),
            # every 503 of the NBI is "Device is in session": one device, not GenieACS, is busy
            healthy_statuses=frozenset({503}),
        )
        self._confirm_seconds = confirm_seconds

    @classmethod
    def from_settings(cls, settings: Settings) -> GenieAcsClient:
        return cls(
            settings.genieacs_url,
            timeouts=Timeouts(settings.http_connect_timeout, settings.http_read_timeout),
        )

    def __repr__(self) -> str:
        return f"GenieAcsClient(url={self._rest.base_url!r})"

    def find_device(self, serial: str) -> CpeDevice:
        documents = self._find({"_deviceId._SerialNumber": serial}, operation="find_device")
        if not documents:
            raise ResourceNotFound(
                f"{SYSTEM} find_device: no CPE with serial {serial} has informed GenieACS",
                system=SYSTEM,
                operation="find_device",
            )
        if len(documents) > 1:
            raise PermanentError(
                f"{SYSTEM} find_device: {len(documents)} CPEs share serial {serial}",
                system=SYSTEM,
                operation="find_device",
            )
        return self._device(documents[0], operation="find_device")

    def find_device_by_mac(self, mac: str) -> CpeDevice:
        """The CPE whose WAN MAC is ``mac`` (any case; ":", "-" or "." separated, or none).

        TR-098 CPEs are matched on ``WANIPConnection.1`` or ``WANPPPConnection.1``, TR-181 CPEs
        on ``Device.Ethernet.Link.1`` (see ``_WAN_MAC_PATHS``). GenieACS compares strings exactly
        and CPEs report MACs in upper or lower case, so both spellings are asked for.
        """
        operation = "find_device_by_mac"
        canonical = _canonical_mac(mac)
        if canonical is None:
            raise PermanentError(
                f"{SYSTEM} {operation}: {mac!r} is not a MAC address",
                system=SYSTEM,
                operation=operation,
            )
        spellings = [canonical, canonical.lower()]
        # GenieACS turns each path into "<path>._value" (lib/query.ts expand) and keeps $or/$in
        query = {"$or": [{path: {"$in": spellings}} for path in _WAN_MAC_PATHS]}
        documents = self._find(query, operation=operation)
        if not documents:
            raise ResourceNotFound(
                f"{SYSTEM} {operation}: no CPE in GenieACS has WAN MAC {canonical}",
                system=SYSTEM,
                operation=operation,
            )
        if len(documents) > 1:
            # a cloned MAC: pushing to either could configure the wrong subscriber's router
            ids = ", ".join(str(d.get("_id")) for d in documents)
            raise PermanentError(
                f"{SYSTEM} {operation}: WAN MAC {canonical} is ambiguous: "
                f"{len(documents)} CPEs have it ({ids})",
                system=SYSTEM,
                operation=operation,
                response={"device_ids": [d.get("_id") for d in documents]},
            )
        return self._device(documents[0], operation=operation)

    def _find(self, query: dict[str, Any], *, operation: str) -> list[dict[str, Any]]:
        response = self._rest.request(
            "GET",
            "/devices/",
            operation=operation,
            idempotent=True,
            params={"query": json.dumps(query), "projection": _PROJECTION},
        )
        documents: list[dict[str, Any]] = response.json()
        return documents

    @staticmethod
    def _device(document: dict[str, Any], *, operation: str) -> CpeDevice:
        serial = document.get("_deviceId", {}).get("_SerialNumber", "")
        data_model = _data_model(document)
        if data_model is None:
            raise PermanentError(
                f"{SYSTEM} {operation}: CPE {serial} has neither a TR-098 nor a TR-181 root",
                system=SYSTEM,
                operation=operation,
            )
        return CpeDevice(
            device_id=document["_id"],
            serial=serial,
            data_model=data_model,
            tags=tuple(str(tag) for tag in document.get("_tags") or ()),
        )

    def _set_parameters(
        self,
        device: CpeDevice,
        values: list[list[Any]],
        unique_key: str,
        *,
        operation: str,
        secrets: tuple[str, ...] = (),
        confirm: bool = False,
    ) -> TaskOutcome:
        task = {"name": "setParameterValues", "parameterValues": values, "uniqueKey": unique_key}
        # Not retried here: a lost answer leaves the task queued, and the step's next attempt
        # replaces it through the same uniqueKey. No ?connection_request (see the module doc):
        # the NBI inserts the task and answers 202 without waiting for any lock or session.
        response = self._rest.request(
            "POST",
            f"/devices/{_segment(device.device_id)}/tasks",
            operation=operation,
            ok=(200, 202),
            idempotent=False,
            missing_means_gone=True,  # 404 "No such device"
            secrets=secrets,
            json=task,
        )
        body = response.json()  # the task echoed back: it holds the password, never log it
        task_id = body.get("_id") if isinstance(body, dict) else None
        requested = self.connection_request(device)
        applied = False
        if confirm and requested and task_id:
            applied = self._confirm(device, task_id, unique_key, operation=operation)
        log.info(
            "genieacs %s on %s: task %s %s",
            operation,
            device.serial,
            task_id,
            "applied" if applied else "queued for the CPE's next session",
        )
        return TaskOutcome(task_id=task_id, applied=applied)

    def connection_request(self, device: CpeDevice) -> bool:
        """Asks the CPE to open a session now (its queued tasks then run): True if the request
        reached it. Best effort: a CPE that cannot be reached runs them at its next periodic
        inform, and a failure here changes nothing that was queued."""
        try:
            self._rest.request(
                "POST",
                f"/devices/{_segment(device.device_id)}/tasks?connection_request",
                operation="connection_request",
                ok=(200,),
                idempotent=False,
            )
        except SlotsBusy:
            raise  # not the CPE's answer: the attempt is given back and runs again
        except IntegrationError as exc:
            # 504 carries the reason, e.g. "Device is offline"
            log.info("genieacs connection request to %s: %s", device.serial, exc)
            return False
        return True

    def _confirm(self, device: CpeDevice, task_id: str, unique_key: str, *, operation: str) -> bool:
        """True once the task is done; PermanentError if the CPE refused it (a CWMP fault);
        False if it is still queued after ``confirm_seconds`` (it runs at a later session)."""
        fault_id = f"{device.device_id}:task_{task_id}"
        deadline = time.monotonic() + self._confirm_seconds
        while True:
            faults = self._query("faults", {"_id": fault_id}, operation=operation)
            if faults:
                fault = faults[0]
                raise PermanentError(
                    f"{SYSTEM} {operation}: CPE {device.serial} refused the task (task "
                    f"{task_id}: {fault.get('code')} {fault.get('message')})",
                    system=SYSTEM,
                    operation=operation,
                    status=202,
                    response={"task_id": task_id, "fault": fault.get("code")},
                )
            tasks = self.find_tasks(device, unique_key)
            if not any(t.get("_id") == task_id for t in tasks):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(_CONFIRM_POLL)

    def _query(
        self, collection: str, query: dict[str, Any], *, operation: str
    ) -> list[dict[str, Any]]:
        response = self._rest.request(
            "GET",
            f"/{collection}/",
            operation=operation,
            idempotent=True,
            params={"query": json.dumps(query)},
        )
        documents: list[dict[str, Any]] = response.json()
        return documents

    def find_tasks(self, device: CpeDevice, unique_key: str) -> list[dict[str, Any]]:
        """The device's tasks that carry ``unique_key`` (at most one, unless raced)."""
        return self._query(
            "tasks", {"device": device.device_id, "uniqueKey": unique_key}, operation="find_tasks"
        )

    def find_faults(self, device: CpeDevice) -> list[dict[str, Any]]:
        return self._query("faults", {"device": device.device_id}, operation="find_faults")

    def delete_fault(self, fault_id: str) -> bool:
        """Deletes a fault (and, for a task's fault, the task): True if it was there.

        503 "Device is in session" is retried a few times, then left to the caller."""
        try:
            self._rest.request(
                "DELETE",
                f"/faults/{_segment(fault_id)}",
                operation="delete_fault",
                idempotent=True,
                missing_means_gone=True,
            )
        except ResourceNotFound:
            return False
        return True

    def remove_pushes(self, device: CpeDevice, unique_key: str, username: str | None) -> Cleanup:
        """Deletes every task and fault of ours on the device, so nothing of a push can run or
        be retried by GenieACS later.

        Ours: the tasks that carry ``unique_key`` (``DELETE /tasks/<id>`` removes the task and
        its fault), and the task faults whose provisions set the PPPoE username to
        ``username``: those of pushes that a later task with the same key replaced (the task is
        gone, its fault stays and would be retried).
        """
        task_ids = []
        for task in self.find_tasks(device, unique_key):
            if self.delete_task(task["_id"]):
                task_ids.append(task["_id"])
        fault_ids = []
        if username:
            marker = ["value", f"{self._ppp_root(device)}.Username", username]
            for fault in self.find_faults(device):
                ours = str(fault.get("channel", "")).startswith("task_") and (
                    marker in _provisions(fault)
                )
                if ours and self.delete_fault(fault["_id"]):
                    fault_ids.append(fault["_id"])
        return Cleanup(tuple(task_ids), tuple(fault_ids))

    def pppoe_username(self, device: CpeDevice) -> str | None:
        """The PPPoE username GenieACS last saw on the CPE (None if it does not know)."""
        path = f"{self._ppp_root(device)}.Username"
        response = self._rest.request(
            "GET",
            "/devices/",
            operation="pppoe_username",
            idempotent=True,
            params={"query": json.dumps({"_id": device.device_id}), "projection": path},
        )
        documents = response.json()
        if not documents:
            return None
        node: Any = documents[0]
        for segment in path.split("."):
            node = node.get(segment) if isinstance(node, dict) else None
        value = node.get("_value") if isinstance(node, dict) else None
        return value if isinstance(value, str) else None

    def push_pppoe_credentials(
        self, device: CpeDevice, username: str, password: str, unique_key: str
    ) -> TaskOutcome:
        root = self._ppp_root(device)
        return self._set_parameters(
            device,
            [
                [f"{root}.Username", username, "xsd:string"],
                [f"{root}.Password", password, "xsd:string"],
                [f"{root}.Enable", True, "xsd:boolean"],
            ],
            unique_key,
            operation="push_pppoe_credentials",
            secrets=(password,),
            confirm=True,
        )

    def clear_pppoe_credentials(self, device: CpeDevice, unique_key: str) -> TaskOutcome:
        root = self._ppp_root(device)
        return self._set_parameters(
            device,
            [
                [f"{root}.Enable", False, "xsd:boolean"],
                [f"{root}.Username", "", "xsd:string"],
                [f"{root}.Password", "", "xsd:string"],
            ],
            unique_key,
            operation="clear_pppoe_credentials",
            confirm=True,
        )

    @staticmethod
    def _ppp_root(device: CpeDevice) -> str:
        try:
            return _PPP_ROOTS[device.data_model]
        except KeyError:
            raise PermanentError(
                f"{SYSTEM}: unknown data model {device.data_model!r} for CPE {device.serial}",
                system=SYSTEM,
                operation="set_parameters",
            ) from None

    def delete_task(self, task_id: str) -> bool:
        """Deletes a queued task: True if this call removed it, False if it was already gone
        (run by the CPE, or deleted before) - 404 "Task not found" counts as done.

        GenieACS answers 503 "Device is in session" while the CPE talks to it: that is retried a
        few times, then left to the caller as a TransientError.
        """
        try:
            self._rest.request(
                "DELETE",
                f"/tasks/{_segment(task_id)}",
                operation="delete_task",
                idempotent=True,
                missing_means_gone=True,  # 404 "Task not found"
            )
        except ResourceNotFound:
            log.info("genieacs task %s was already gone", task_id)
            return False
        return True

    @staticmethod
    def _tag_path(device: CpeDevice, tag: str) -> str:
        if not _TAG.match(tag):
            raise PermanentError(
                f"{SYSTEM}: tag {tag!r} must be letters, digits, '-' or '_'",
                system=SYSTEM,
                operation="tag",
            )
        return f"/devices/{_segment(device.device_id)}/tags/{tag}"

    def add_tag(self, device: CpeDevice, tag: str) -> None:
        # adding a tag is a set union in GenieACS ($addToSet): safe to repeat, so retried
        self._rest.request(
            "POST",
            self._tag_path(device, tag),
            operation="add_tag",
            idempotent=True,
            missing_means_gone=True,  # 404 "No such device"
        )

    def remove_tag(self, device: CpeDevice, tag: str) -> None:
        """Removes the tag; a device that is gone has no tag left to remove."""
        try:
            self._rest.request(
                "DELETE",
                self._tag_path(device, tag),
                operation="remove_tag",
                idempotent=True,
                missing_means_gone=True,  # 404 "No such device"
            )
        except ResourceNotFound:
            log.info("genieacs device %s is gone; tag %s is too", device.device_id, tag)

    def close(self) -> None:
        self._rest.close()
