"""VOLTHA's northbound gRPC API, through the stubs generated in voltha-protos.

ONUs are never created through the API: the OLT adapter discovers them when they range. We find
an ONU by its serial number, with its OLT, its UNI port (whose OpenFlow name is what ONOS knows
the subscriber's port by) and its state; a disabled or unreachable ONU is still found, so that it
can be enabled again, unless the caller asks for a usable one.

VOLTHA's northbound finds a device by id only: ``GetDevice``/``ListDevicePorts`` take an id,
``ListDevices`` takes nothing (voltha-protos voltha.proto) and answers every device the core
holds (voltha-go rw_core/core/device/manager_nbi.go). An ONU's id is a random UUID made when it
is discovered (``ChildDeviceDetected``: ``utils.CreateDeviceID``), so it cannot be derived from
its serial. The client therefore keeps a serial -> id map: a known serial costs one
``GetDevice`` (whose serial must still match). A serial not in the map, or an id VOLTHA no longer
knows, asks ``ListDeviceIds`` (ids only, ~40 bytes a device) and fetches just the devices not seen
before; only an empty map, or many new devices at once, takes the whole ``ListDevices`` (~260
bytes a device: 13 MB at 50,000 ONUs, past gRPC's default 4 MB limit on what a client receives).

Disabling and enabling are made idempotent after voltha-go's core (rw_core/core/device/agent.go):
``disableDevice`` answers OK for a device that is already disabled, but ``enableDevice`` refuses
an ENABLED device with FAILED_PRECONDITION unless its oper status is FAILED.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

import grpc
from google.protobuf import empty_pb2
from voltha_protos import common_pb2, device_pb2, voltha_pb2_grpc

from orchestrator.config import Settings
from orchestrator.errors import (
    IntegrationError,
    PermanentError,
    ResourceNotFound,
    SlotsBusy,
    TransientError,
)
from orchestrator.integrations.circuit import CircuitBreaker
from orchestrator.integrations.concurrency import ConcurrencyLimit
from orchestrator.integrations.http import RetryPolicy, retry_idempotent
from orchestrator.integrations.lookup_cache import LookupCache

SYSTEM = "voltha"
log = logging.getLogger(__name__)
T = TypeVar("T")

_TRANSIENT_CODES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.CANCELLED,
    }
)


_USABLE = ("ENABLED", "ACTIVE", "REACHABLE")

#: More unknown devices than this are read with one ListDevices rather than a GetDevice each.
FULL_LISTING_ABOVE = 64

#: What a carrier's ListDevices needs (gRPC refuses answers over 4 MB by default, as
#: RESOURCE_EXHAUSTED): 256 MB holds about a million devices.
_CHANNEL_OPTIONS = [("grpc.max_receive_message_length", 256 * 1024 * 1024)]


@dataclass(frozen=True)
class OnuLocation:
    device_id: str
    serial: str
    olt_id: str
    uni_port_no: int
    #: the UNI's OpenFlow port name, "<serial>-1": what ONOS's olt app calls portName
    uni_port_name: str
    #: VOLTHA's enum names: what the operator asked for (ENABLED, DISABLED, PREPROVISIONED, ...)
    admin_state: str
    #: what the adapter reports (ACTIVE, ACTIVATING, DISCOVERED, UNKNOWN, FAILED, ...)
    oper_status: str
    #: whether the OLT can talk to it (REACHABLE, UNREACHABLE, UNKNOWN)
    connect_status: str
    #: the UNI as ONOS knows it, ``of:<dpid>/<port>`` (None if the OLT has no MAC address)
    onos_location: str | None = None

    @property
    def usable(self) -> bool:
        """Whether it can carry a subscriber's service now: ENABLED, ACTIVE and REACHABLE."""
        return (self.admin_state, self.oper_status, self.connect_status) == _USABLE


def _states(device: device_pb2.Device) -> tuple[str, str, str]:
    return (
        common_pb2.AdminState.Types.Name(device.admin_state),
        common_pb2.OperStatus.Types.Name(device.oper_status),
        common_pb2.ConnectStatus.Types.Name(device.connect_status),
    )


def onos_location(olt_mac: str, uni_port_no: int) -> str | None:
    """Where ONOS finds a UNI: VOLTHA's core makes the OLT's logical device's datapath id from
    the OLT's MAC address (voltha-go logical_manager.go createLogicalDevice, utils
    CreateDataPathID: the MAC's hex digits as a number), ONOS names that switch
    ``of:<datapath id as 16 hex digits>``, and a UNI's logical port keeps the device port's
    number (logical_agent_port.go)."""
    digits = olt_mac.replace(":", "")
    try:
        return f"of:{int(digits, 16):016x}/{uni_port_no}" if digits else None
    except ValueError:
        return None


def _already_enabled(device: device_pb2.Device) -> bool:
    # what voltha-go's enableDevice refuses as "cannot-enable-an-already-enabled-device"
    return (
        device.admin_state == common_pb2.AdminState.ENABLED
        and device.oper_status != common_pb2.OperStatus.FAILED
    )


def error_for_rpc(operation: str, exc: grpc.RpcError) -> IntegrationError:
    code = exc.code() if isinstance(exc, grpc.Call) else grpc.StatusCode.UNKNOWN
    details = (exc.details() if isinstance(exc, grpc.Call) else None) or ""
    message = f"{SYSTEM} {operation}: gRPC {code.name}: {details}".rstrip(": ")
    if code == grpc.StatusCode.NOT_FOUND:
        cls: type[IntegrationError] = ResourceNotFound
    elif code in _TRANSIENT_CODES:
        cls = TransientError
    else:
        cls = PermanentError
    return cls(message, system=SYSTEM, operation=operation, response=code.name)


class VolthaClient:
    def __init__(
        self, address: str, *, timeout: float = 10.0, retry: RetryPolicy | None = None
    ) -> None:
        self._address = address
        self._timeout = timeout
        self._retry = retry or RetryPolicy()
        self._channel = grpc.insecure_channel(address, options=_CHANNEL_OPTIONS)
        self._stub = voltha_pb2_grpc.VolthaServiceStub(self._channel)
        self._breaker = CircuitBreaker.for_system(SYSTEM)
        # A slot lapses a little after the longest a call can take (a dead worker's is freed).
        self._limit = ConcurrencyLimit.for_system(SYSTEM, timeout + 5.0)
        #: ONU serial -> VOLTHA device id, as of the last refresh
        self._onu_ids: LookupCache[str] = LookupCache()
        #: ids of the OLTs seen, so that a refresh does not fetch them again (refreshes only)
        self._olt_ids: set[str] = set()
        #: OLT id -> its MAC address (few, and fixed for a device id): ONOS's name for it
        self._olt_macs: dict[str, str] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> VolthaClient:
        return cls(settings.voltha_address, timeout=settings.http_read_timeout)

    def __repr__(self) -> str:
        return f"VolthaClient(address={self._address!r})"

    def __enter__(self) -> VolthaClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _rpc(self, operation: str, call: Callable[[], T], *, idempotent: bool = True) -> T:
        def once() -> T:
            probe = self._breaker.before_call(operation)
            try:
                # One of VOLTHA's slots while the call runs; an open circuit never waits for one.
                with self._limit.slot():
                    result = call()
            except SlotsBusy:
                if probe:  # never sent: let the next call probe
                    self._breaker.abandon_probe()
                raise
            except grpc.RpcError as exc:
                error = error_for_rpc(operation, exc)
                # the system is unwell only when it did not answer or failed inside
                if isinstance(error, TransientError):
                    self._breaker.record_failure()
                else:
                    self._breaker.record_success()
                raise error from exc
            self._breaker.record_success()
            return result

        return retry_idempotent(once, self._retry) if idempotent else once()

    def list_devices(self) -> list[device_pb2.Device]:
        devices = self._rpc(
            "list_devices", lambda: self._stub.ListDevices(empty_pb2.Empty(), timeout=self._timeout)
        )
        return list(devices.items)

    def list_device_ids(self) -> list[common_pb2.ID]:
        ids = self._rpc(
            "list_device_ids",
            lambda: self._stub.ListDeviceIds(empty_pb2.Empty(), timeout=self._timeout),
        )
        return list(ids.items)

    def get_device(self, device_id: str) -> device_pb2.Device:
        return self._rpc(
            "get_device",
            lambda: self._stub.GetDevice(common_pb2.ID(id=device_id), timeout=self._timeout),
        )

    def list_ports(self, device_id: str) -> list[device_pb2.Port]:
        ports = self._rpc(
            "list_ports",
            lambda: self._stub.ListDevicePorts(common_pb2.ID(id=device_id), timeout=self._timeout),
        )
        return list(ports.items)

    def find_onu(self, serial: str, *, require_usable: bool = False) -> OnuLocation:
        """The ONU with this serial, whatever its state, with its state.

        With ``require_usable`` an ONU that is not ENABLED, ACTIVE and REACHABLE is a
        PermanentError naming its state; without it a disabled or unreachable ONU is returned
        too (to enable it again, or to undo a service on it).
        """
        onu = self._onu_by_serial(serial)
        if onu is None:
            raise ResourceNotFound(
                f"{SYSTEM} find_onu: ONU {serial} not discovered by VOLTHA",
                system=SYSTEM,
                operation="find_onu",
            )
        admin_state, oper_status, connect_status = _states(onu)
        if require_usable and (admin_state, oper_status, connect_status) != _USABLE:
            raise PermanentError(
                f"{SYSTEM} find_onu: ONU {serial} is not usable: admin_state {admin_state}, "
                f"oper_status {oper_status}, connect_status {connect_status} "
                "(needs ENABLED, ACTIVE, REACHABLE)",
                system=SYSTEM,
                operation="find_onu",
                response={
                    "admin_state": admin_state,
                    "oper_status": oper_status,
                    "connect_status": connect_status,
                },
            )
        unis = sorted(
            (p for p in self.list_ports(onu.id) if p.type == device_pb2.Port.ETHERNET_UNI),
            key=lambda p: p.port_no,
        )
        if not unis:
            # the adapter adds the UNIs after the MIB upload: a young ONU has none yet
            raise TransientError(
                f"{SYSTEM} find_onu: ONU {serial} has no UNI port yet",
                system=SYSTEM,
                operation="find_onu",
            )
        uni = unis[0]
        olt_mac = self._olt_mac(onu.parent_id)
        return OnuLocation(
            device_id=onu.id,
            serial=serial,
            olt_id=onu.parent_id,
            uni_port_no=uni.port_no,
            uni_port_name=uni.ofp_port.name or f"{serial}-1",
            admin_state=admin_state,
            oper_status=oper_status,
            connect_status=connect_status,
            onos_location=onos_location(olt_mac, uni.port_no) if olt_mac else None,
        )

    def _olt_mac(self, olt_id: str) -> str:
        """The OLT's MAC address, asked once per OLT (a device keeps its MAC)."""
        mac = self._olt_macs.get(olt_id)
        if not mac:
            mac = self.get_device(olt_id).mac_address
            if mac:  # an OLT still connecting may have none yet: ask again next time
                self._olt_macs[olt_id] = mac
        return mac

    def _onu_by_serial(self, serial: str) -> device_pb2.Device | None:
        """The ONU with this serial: by its id in the map if VOLTHA still has it under that
        serial, else after the map is brought up to date."""
        device_id, seen = self._onu_ids.get(serial)
        if device_id is not None and (device := self._onu_if_still(device_id, serial)):
            return device
        fetched: dict[str, device_pb2.Device] = {}
        device_id = self._onu_ids.refresh(
            serial, seen, lambda known: self._refreshed_ids(known, fetched)
        )
        if serial in fetched:  # our own refresh: the device as VOLTHA has just told
            return fetched[serial]
        return None if device_id is None else self._onu_if_still(device_id, serial)

    def _refreshed_ids(
        self, known: Mapping[str, str], fetched: dict[str, device_pb2.Device]
    ) -> dict[str, str]:
        """The serial -> id map as VOLTHA has it now; the devices read are put in ``fetched``.

        The ids VOLTHA lists drop the devices it no longer has; only the ids never seen are
        read, one GetDevice each, or with one ListDevices when the map is empty or many are
        new (a worker's first lookup, a newly installed OLT)."""
        if known:
            ids = [item.id for item in self.list_device_ids()]
            seen = set(known.values()) | self._olt_ids
            new = [device_id for device_id in ids if device_id not in seen]
            if len(new) <= FULL_LISTING_ABOVE:
                still = set(ids)
                fresh = {s: device_id for s, device_id in known.items() if device_id in still}
                self._olt_ids &= still
                for device_id in new:
                    try:
                        self._remember(self.get_device(device_id), fresh, fetched)
                    except ResourceNotFound:  # deleted since it was listed
                        continue
                return fresh
        fresh = {}
        self._olt_ids.clear()
        for device in self.list_devices():
            self._remember(device, fresh, fetched)
        return fresh

    def _remember(
        self,
        device: device_pb2.Device,
        ids: dict[str, str],
        fetched: dict[str, device_pb2.Device],
    ) -> None:
        if device.root:
            self._olt_ids.add(device.id)
            if device.mac_address:  # an OLT still connecting may have none yet: ask later
                self._olt_macs[device.id] = device.mac_address
        elif device.serial_number not in ids:  # two with one serial: the first, as listed
            ids[device.serial_number] = device.id
            fetched[device.serial_number] = device

    def _onu_if_still(self, device_id: str, serial: str) -> device_pb2.Device | None:
        """The device with this id, if it is still the ONU with this serial."""
        try:
            device = self.get_device(device_id)
        except ResourceNotFound:  # deleted (and perhaps discovered again under a new id)
            return None
        return device if not device.root and device.serial_number == serial else None

    def disable_onu(self, device_id: str) -> None:
        """Blocks the ONU: VOLTHA admin-locks it and its UNIs go down.

        An ONU that is already disabled counts as done, and VOLTHA agrees: DisableDevice on a
        disabled device answers OK ("device-already-disabled"), so a call whose answer was lost
        is simply asked again.
        """
        if self._onu(device_id, "disable_onu").admin_state == common_pb2.AdminState.DISABLED:
            return
        self._rpc(
            "disable_onu",
            lambda: self._stub.DisableDevice(common_pb2.ID(id=device_id), timeout=self._timeout),
        )

    def enable_onu(self, device_id: str) -> None:
        """Unblocks the ONU. One that is already enabled counts as done, unless it FAILED: then
        VOLTHA accepts EnableDevice again, which asks its adapter to bring it back.

        VOLTHA refuses to enable an enabled device (FAILED_PRECONDITION): we look first, and a
        refusal of a retried call (the first one took effect, its answer was lost) is checked
        against the device before it counts as a failure.
        """
        if _already_enabled(self._onu(device_id, "enable_onu")):
            return
        try:
            self._rpc(
                "enable_onu",
                lambda: self._stub.EnableDevice(common_pb2.ID(id=device_id), timeout=self._timeout),
            )
        except PermanentError as exc:
            refused = exc.response == grpc.StatusCode.FAILED_PRECONDITION.name
            if not (refused and _already_enabled(self.get_device(device_id))):
                raise

    def _onu(self, device_id: str, operation: str) -> device_pb2.Device:
        device = self.get_device(device_id)
        if device.root:
            # disabling an OLT takes every subscriber on it down: never by mistake
            raise PermanentError(
                f"{SYSTEM} {operation}: device {device_id} is an OLT, not an ONU",
                system=SYSTEM,
                operation=operation,
            )
        return device

    def close(self) -> None:
        self._channel.close()
