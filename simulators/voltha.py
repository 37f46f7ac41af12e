"""VOLTHA's northbound gRPC (``voltha.VolthaService``): the device calls our client makes.

Served from the generated voltha-protos servicer, so a request our client builds with the real
stubs is decoded exactly as VOLTHA's core decodes it. Methods we do not model answer UNIMPLEMENTED
(the servicer base class does that).

EnableDevice and DisableDevice decide as voltha-go's core does (rw_core/core/device/agent.go
``enableDevice``/``disableDevice``, manager_nbi.go): an unknown id is NOT_FOUND with the id as the
message; disabling a disabled device succeeds and changes nothing ("device-already-disabled");
disabling a PREPROVISIONED one is FAILED_PRECONDITION "deviceId:<id>, invalid-admin-state:
PREPROVISIONED"; enabling an ENABLED device is FAILED_PRECONDITION "cannot-enable-an-already-
enabled-device: <id>" unless its oper status is FAILED.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent import futures
from contextlib import AbstractContextManager
from typing import Any, NoReturn, Protocol, TypeVar

import grpc
from google.protobuf import empty_pb2
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from voltha_protos import common_pb2, device_pb2, openflow_13_pb2, voltha_pb2_grpc

from simulators.access import AccessNetwork, Device
from simulators.faults import Fault

T = TypeVar("T")

_GRPC_CODES = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    409: grpc.StatusCode.ALREADY_EXISTS,
    412: grpc.StatusCode.FAILED_PRECONDITION,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    499: grpc.StatusCode.CANCELLED,
    500: grpc.StatusCode.INTERNAL,
    501: grpc.StatusCode.UNIMPLEMENTED,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}


def grpc_code(status: int) -> grpc.StatusCode:
    """The gRPC status an HTTP-style error status stands for (grpc-gateway's mapping)."""
    return _GRPC_CODES.get(status, grpc.StatusCode.UNKNOWN)


class Guard(Protocol):
    """What the servicer needs from the world: counting, latency, faults, holding."""

    def before(self, system: str, target: str, record: dict[str, Any]) -> Fault | None: ...

    def hold(self, seconds: float | None, *, at_most: float | None = None) -> None: ...

    def in_flight(self, system: str) -> AbstractContextManager[None]: ...


def _abort(context: grpc.ServicerContext, code: grpc.StatusCode, details: str) -> NoReturn:
    context.abort(code, details)
    raise AssertionError("grpc context.abort returned")  # abort always raises


def _device_pb(device: Device, parent: Device | None) -> device_pb2.Device:
    message = device_pb2.Device(
        id=device.id,
        type=device.type,
        root=device.root,
        parent_id=device.parent_id,
        parent_port_no=device.parent_port_no,
        vendor=device.vendor,
        model=device.model,
        hardware_version="v1",
        firmware_version="1.0.0",
        serial_number=device.serial_number,
        vendor_id=device.vendor,
        adapter_endpoint="openolt" if device.root else "brcm_openomci_onu",
        admin_state=common_pb2.AdminState.Types.Value(device.admin_state),
        oper_status=common_pb2.OperStatus.Types.Value(device.oper_status),
        connect_status=common_pb2.ConnectStatus.Types.Value(device.connect_status),
        reason=device.reason,
    )
    if device.root:
        message.mac_address = device.mac_address
        message.host_and_port = device.host_and_port
    else:
        message.proxy_address.device_id = device.parent_id
        message.proxy_address.device_type = parent.type if parent else ""
        message.proxy_address.channel_id = device.pon
        message.proxy_address.onu_id = device.onu_id
        message.proxy_address.onu_session_id = device.onu_id
    return message


def _ports_pb(device: Device) -> device_pb2.Ports:
    ports = device_pb2.Ports()
    admin = common_pb2.AdminState.ENABLED if device.enabled else common_pb2.AdminState.DISABLED
    # the adapters report their ports up only while the device is
    oper = common_pb2.OperStatus.ACTIVE if device.usable else common_pb2.OperStatus.UNKNOWN
    for port in device.ports:
        message = ports.items.add(
            port_no=port.port_no,
            label=port.label,
            type=device_pb2.Port.PortType.Value(port.type),
            admin_state=admin,
            oper_status=oper,
            device_id=device.id,
        )
        if port.of_name:
            message.ofp_port.CopyFrom(
                openflow_13_pb2.ofp_port(port_no=port.port_no, name=port.of_name)
            )
        if port.peer_device_id:
            message.peers.add(device_id=port.peer_device_id, port_no=port.peer_port_no)
    return ports


class VolthaServicer(voltha_pb2_grpc.VolthaServiceServicer):  # type: ignore[misc]  # untyped stubs
    def __init__(self, access: AccessNetwork, guard: Guard) -> None:
        self._access = access
        self._guard = guard

    def _call(
        self,
        method: str,
        request: Message,
        context: grpc.ServicerContext,
        effect: Callable[[], T],
    ) -> T:
        # in flight until the servicer returns; gRPC sends the answer after
        with self._guard.in_flight("voltha"):
            return self._answer(method, request, context, effect)

    def _answer(
        self,
        method: str,
        request: Message,
        context: grpc.ServicerContext,
        effect: Callable[[], T],
    ) -> T:
        record = {"method": method, "request": MessageToDict(request)}
        fault = self._guard.before("voltha", method, record)
        if fault is None:
            return effect()
        if fault.mode == "error":
            _abort(context, grpc_code(fault.status), f"simulated error {fault.status}")
        if fault.mode == "timeout":
            remaining = context.time_remaining()
            # stay silent until the caller's deadline has passed (a little margin), or the hold
            self._guard.hold(fault.hold_s, at_most=None if remaining is None else remaining + 0.2)
            _abort(context, grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")
        if fault.mode == "after_effect":
            effect()
        _abort(context, grpc.StatusCode.UNAVAILABLE, "Connection reset by peer")

    def _device(self, device_id: str, context: grpc.ServicerContext) -> Device:
        with self._access.lock:
            device = self._access.devices.get(device_id)
        if device is None:
            _abort(context, grpc.StatusCode.NOT_FOUND, device_id)
        return device

    def ListDevices(
        self, request: empty_pb2.Empty, context: grpc.ServicerContext
    ) -> device_pb2.Devices:
        def effect() -> device_pb2.Devices:
            with self._access.lock:
                devices = list(self._access.devices.values())
                return device_pb2.Devices(
                    items=[_device_pb(d, self._access.devices.get(d.parent_id)) for d in devices]
                )

        return self._call("ListDevices", request, context, effect)

    def ListDeviceIds(
        self, request: empty_pb2.Empty, context: grpc.ServicerContext
    ) -> common_pb2.IDs:
        # voltha-go answers the ids of its device agents (manager_nbi.go ListDeviceIds): what a
        # client that knows most devices asks to find the few it does not
        def effect() -> common_pb2.IDs:
            with self._access.lock:
                ids = list(self._access.devices)
            return common_pb2.IDs(items=[common_pb2.ID(id=i) for i in ids])

        return self._call("ListDeviceIds", request, context, effect)

    def GetDevice(self, request: common_pb2.ID, context: grpc.ServicerContext) -> device_pb2.Device:
        def effect() -> device_pb2.Device:
            device = self._device(request.id, context)
            with self._access.lock:
                return _device_pb(device, self._access.devices.get(device.parent_id))

        return self._call("GetDevice", request, context, effect)

    def ListDevicePorts(
        self, request: common_pb2.ID, context: grpc.ServicerContext
    ) -> device_pb2.Ports:
        def effect() -> device_pb2.Ports:
            device = self._device(request.id, context)
            with self._access.lock:
                return _ports_pb(device)

        return self._call("ListDevicePorts", request, context, effect)

    def EnableDevice(
        self, request: common_pb2.ID, context: grpc.ServicerContext
    ) -> empty_pb2.Empty:
        def effect() -> empty_pb2.Empty:
            with self._access.lock:
                device = self._device(request.id, context)
                # vol-4275: an ENABLED device may be enabled again only when it FAILED
                if device.admin_state == "ENABLED" and device.oper_status != "FAILED":
                    _abort(
                        context,
                        grpc.StatusCode.FAILED_PRECONDITION,
                        f"cannot-enable-an-already-enabled-device: {device.id}",
                    )
                self._access.enable(device)
            return empty_pb2.Empty()

        return self._call("EnableDevice", request, context, effect)

    def DisableDevice(
        self, request: common_pb2.ID, context: grpc.ServicerContext
    ) -> empty_pb2.Empty:
        def effect() -> empty_pb2.Empty:
            with self._access.lock:
                device = self._device(request.id, context)
                if device.admin_state == "DISABLED":
                    return empty_pb2.Empty()  # "device-already-disabled": OK, nothing changes
                if device.admin_state == "PREPROVISIONED":
                    _abort(
                        context,
                        grpc.StatusCode.FAILED_PRECONDITION,
                        f"deviceId:{device.id}, invalid-admin-state:PREPROVISIONED",
                    )
                self._access.disable(device)
            return empty_pb2.Empty()

        return self._call("DisableDevice", request, context, effect)


def start_grpc_server(
    access: AccessNetwork, guard: Guard, host: str, port: int
) -> tuple[grpc.Server, int]:
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="sim-grpc"),
        # gRPC sets SO_REUSEPORT by default: a port already taken would then bind "successfully"
        # and share traffic with a stranger instead of failing
        options=[("grpc.so_reuseport", 0)],
    )
    voltha_pb2_grpc.add_VolthaServiceServicer_to_server(VolthaServicer(access, guard), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot bind gRPC to {host}:{port}")
    server.start()
    return server, bound
