"""VOLTHA's northbound gRPC API, through the stubs generated in voltha-protos.

ONUs are never created through the API: the OLT adapter discovers them when they range. We find
an ONU by its serial number, with its OLT and its UNI port, whose OpenFlow name is what ONOS
knows the subscriber's port by.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
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
    TransientError,
)
from orchestrator.integrations.http import RetryPolicy, retry_idempotent

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


@dataclass(frozen=True)
class OnuLocation:
    device_id: str
    serial: str
    olt_id: str
    uni_port_no: int
    #: the UNI's OpenFlow port name, "<serial>-1": what ONOS's olt app calls portName
    uni_port_name: str


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
        self._channel = grpc.insecure_channel(address)
        self._stub = voltha_pb2_grpc.VolthaServiceStub(self._channel)

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
            try:
                return call()
            except grpc.RpcError as exc:
                raise error_for_rpc(operation, exc) from exc

        return retry_idempotent(once, self._retry) if idempotent else once()

    def list_devices(self) -> list[device_pb2.Device]:
        devices = self._rpc(
            "list_devices", lambda: self._stub.ListDevices(empty_pb2.Empty(), timeout=self._timeout)
        )
        return list(devices.items)

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

    def find_onu(self, serial: str) -> OnuLocation:
        onu = next(
            (d for d in self.list_devices() if not d.root and d.serial_number == serial), None
        )
        if onu is None:
            raise ResourceNotFound(
                f"{SYSTEM} find_onu: ONU {serial} not discovered by VOLTHA",
                system=SYSTEM,
                operation="find_onu",
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
        return OnuLocation(
            device_id=onu.id,
            serial=serial,
            olt_id=onu.parent_id,
            uni_port_no=uni.port_no,
            uni_port_name=uni.ofp_port.name or f"{serial}-1",
        )

    def disable_device(self, device_id: str) -> None:
        """Blocks the device; one that is already disabled counts as done."""
        self._set_admin_state(device_id, enable=False)

    def enable_device(self, device_id: str) -> None:
        """Unblocks the device; one that is already enabled counts as done."""
        self._set_admin_state(device_id, enable=True)

    def _set_admin_state(self, device_id: str, *, enable: bool) -> None:
        wanted = common_pb2.AdminState.ENABLED if enable else common_pb2.AdminState.DISABLED
        if self.get_device(device_id).admin_state == wanted:
            return
        method = self._stub.EnableDevice if enable else self._stub.DisableDevice
        operation = "enable_device" if enable else "disable_device"
        try:
            # setting a state is idempotent, so a lost answer may be asked again
            self._rpc(operation, lambda: method(common_pb2.ID(id=device_id), timeout=self._timeout))
        except PermanentError:
            # VOLTHA refuses a change to the state the device is already in (FAILED_PRECONDITION):
            # if that is why, the work is done
            if self.get_device(device_id).admin_state != wanted:
                raise

    def close(self) -> None:
        self._channel.close()
