"""The simulated access network: OLTs and the ONUs they discovered, seen by VOLTHA and ONOS alike.

Numbering follows VOLTHA's openolt/openonu adapters so that what our clients read looks real:
PON port numbers are ``0x20000000 + pon``; a UNI's port number is
``(pon << 12) | (onu_id << 4) | uni_index`` (16 for the first ONU on PON 0); the UNI's OpenFlow
name, which ONOS knows it by, is ``<serial>-<uni_index + 1>``.

Each device carries VOLTHA's three states under their enum names (voltha-protos common.proto):
``admin_state`` (what the operator asked: ENABLED, DISABLED, PREPROVISIONED), ``oper_status``
(what the adapter reports: ACTIVE, ACTIVATING, DISCOVERED, UNKNOWN, FAILED, ...) and
``connect_status`` (REACHABLE, UNREACHABLE). A usable ONU is ENABLED, ACTIVE and REACHABLE.
"""

from __future__ import annotations

import re
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

_PON_PORT_BASE = 0x20000000
_NNI_PORT_NO = 1048576
_IDS = uuid.UUID("6f1a0e64-2d61-4c1e-8f49-5a3c9d2b7e10")
SERIAL_RE = re.compile(r"^[A-Za-z0-9]{4,32}$")
ADMIN_STATES = ("ENABLED", "DISABLED", "PREPROVISIONED")
CONNECT_STATUSES = ("REACHABLE", "UNREACHABLE")
OPER_STATUSES = (
    "UNKNOWN",
    "DISCOVERED",
    "ACTIVATING",
    "TESTING",
    "ACTIVE",
    "FAILED",
    "RECONCILING",
    "RECONCILING_FAILED",
    "REBOOTED",
)
_USABLE = ("ENABLED", "ACTIVE", "REACHABLE")
# openonu adapter device reasons (voltha-openonu-adapter-go internal/pkg/common/defines.go)
_REASON_READY = "initial-mib-downloaded"
_REASON_DOWN = "stopping-openomci"
_REASON_LOCKED = "omci-admin-lock"
_REASON_REENABLED = "onu-reenabled"


class AccessError(ValueError):
    """Raised when a control request would make the access network inconsistent."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Port:
    port_no: int
    label: str
    #: "ETHERNET_NNI" | "ETHERNET_UNI" | "PON_OLT" | "PON_ONU" (voltha Port.PortType names)
    type: str
    #: OpenFlow port name (what ONOS calls portName); empty for ports ONOS does not see
    of_name: str = ""
    peer_device_id: str = ""
    peer_port_no: int = 0


@dataclass
class Device:
    id: str
    type: str
    root: bool
    serial_number: str
    vendor: str
    model: str
    parent_id: str = ""
    parent_port_no: int = 0
    mac_address: str = ""
    host_and_port: str = ""
    pon: int = 0
    onu_id: int = 0
    admin_state: str = "ENABLED"
    oper_status: str = "ACTIVE"
    connect_status: str = "REACHABLE"
    #: the adapter's last word on the device (Device.reason); empty for OLTs
    reason: str = ""
    ports: list[Port] = field(default_factory=list)

    @property
    def enabled(self) -> bool:
        return self.admin_state == "ENABLED"

    @property
    def usable(self) -> bool:
        return (self.admin_state, self.oper_status, self.connect_status) == _USABLE

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "root": self.root,
            "serial_number": self.serial_number,
            "parent_id": self.parent_id,
            "admin_state": self.admin_state,
            "oper_status": self.oper_status,
            "connect_status": self.connect_status,
            "reason": self.reason,
            "pon": self.pon,
            "onu_id": self.onu_id,
            "ports": [
                {"port_no": p.port_no, "label": p.label, "type": p.type, "name": p.of_name}
                for p in self.ports
            ],
        }


@dataclass(frozen=True)
class UniPort:
    """A UNI as ONOS sees it: a port of the OLT's logical device."""

    of_device_id: str
    port_no: int
    name: str
    enabled: bool
    onu_id: str

    @property
    def location(self) -> str:
        return f"{self.of_device_id}/{self.port_no}"


def _discovered_oper_status(admin_state: str, connect_status: str) -> str:
    if admin_state != "ENABLED":
        return "UNKNOWN"
    return "ACTIVE" if connect_status == "REACHABLE" else "DISCOVERED"


def _device_id(name: str) -> str:
    # deterministic ids keep test output stable across runs
    return str(uuid.uuid5(_IDS, name))


class AccessNetwork:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.devices: dict[str, Device] = {}

    def reset(self) -> Device:
        with self.lock:
            self.devices.clear()
            return self.add_olt("BBSIM_OLT_0")

    def add_olt(self, serial: str) -> Device:
        with self.lock:
            index = sum(1 for d in self.devices.values() if d.root)
            mac = f"0a:0a:0a:0a:0a:{index:02x}"
            olt = Device(
                id=_device_id(serial),
                type="openolt",
                root=True,
                serial_number=serial,
                vendor="BBSim",
                model="asfvolt16",
                mac_address=mac,
                host_and_port=f"bbsim{index}:50060",
            )
            olt.ports.append(Port(_NNI_PORT_NO, f"nni-{_NNI_PORT_NO}", "ETHERNET_NNI", "nni-1"))
            for pon in range(16):
                olt.ports.append(Port(_PON_PORT_BASE + pon, f"pon-{pon}", "PON_OLT"))
            self.devices[olt.id] = olt
            return olt

    def of_device_id(self, olt: Device) -> str:
        return "of:0000" + olt.mac_address.replace(":", "")

    def olts(self) -> list[Device]:
        with self.lock:
            return [d for d in self.devices.values() if d.root]

    def add_onu(
        self,
        serial: str,
        olt_id: str | None = None,
        pon: int | None = None,
        *,
        admin_state: str = "ENABLED",
        connect_status: str = "REACHABLE",
        oper_status: str | None = None,
    ) -> Device:
        """An ONU as the OLT adapter leaves it after discovery; by default ranged and usable.

        Without ``oper_status`` it is what the adapters report for the other two states: ACTIVE
        when enabled and reachable, DISCOVERED when unreachable (an ONU that went dark), UNKNOWN
        when disabled.
        """
        if not SERIAL_RE.match(serial):
            raise AccessError("serial must be 4-32 letters or digits", 400)
        for name, value, allowed in (
            ("admin_state", admin_state, ADMIN_STATES),
            ("connect_status", connect_status, CONNECT_STATUSES),
            ("oper_status", oper_status, (None, *OPER_STATUSES)),
        ):
            if value not in allowed:
                raise AccessError(f"{name} must be one of {', '.join(filter(None, allowed))}", 400)
        with self.lock:
            if any(d.serial_number == serial for d in self.devices.values()):
                raise AccessError(f"ONU {serial} is already discovered", 409)
            olts = self.olts()
            olt = next((o for o in olts if olt_id in (None, o.id, o.serial_number)), None)
            if olt is None:
                raise AccessError(f"no OLT {olt_id}", 404)
            pon = 0 if pon is None else pon
            if not 0 <= pon < 16:
                raise AccessError("pon must be 0-15", 400)
            used = {
                d.onu_id for d in self.devices.values() if d.parent_id == olt.id and d.pon == pon
            }
            onu_id = next(i for i in range(1, 512) if i not in used)
            onu = Device(
                id=_device_id(serial),
                type="brcm_openomci_onu",
                root=False,
                serial_number=serial,
                vendor="BBSM",
                model="BBSM_ONU",
                parent_id=olt.id,
                parent_port_no=_PON_PORT_BASE + pon,
                pon=pon,
                onu_id=onu_id,
                admin_state=admin_state,
                connect_status=connect_status,
                oper_status=oper_status or _discovered_oper_status(admin_state, connect_status),
                reason=_REASON_READY,
            )
            if connect_status == "UNREACHABLE":
                onu.reason = _REASON_DOWN
            elif admin_state == "DISABLED":
                onu.reason = _REASON_LOCKED
            uni_no = (pon << 12) | (onu_id << 4)
            onu.ports.append(
                Port(
                    1,
                    "PON port",
                    "PON_ONU",
                    peer_device_id=olt.id,
                    peer_port_no=_PON_PORT_BASE + pon,
                )
            )
            onu.ports.append(Port(uni_no, f"uni-{uni_no}", "ETHERNET_UNI", f"{serial}-1"))
            self.devices[onu.id] = onu
            return onu

    def remove_onu(self, serial: str) -> bool:
        with self.lock:
            onu = next(
                (d for d in self.devices.values() if d.serial_number == serial and not d.root), None
            )
            if onu is None:
                return False
            del self.devices[onu.id]
            return True

    def disable(self, device: Device) -> None:
        """What VOLTHA does once it has accepted a DisableDevice.

        The core sets DISABLED and oper status UNKNOWN (voltha-go ``Agent.disableDevice``); the
        openonu adapter admin-locks the ONU and leaves the connect status alone
        (``deviceHandler.disableDevice``: reason "omci-admin-lock").
        """
        with self.lock:
            device.admin_state, device.oper_status = "DISABLED", "UNKNOWN"
            if not device.root:
                device.reason = _REASON_LOCKED

    def enable(self, device: Device) -> None:
        """What VOLTHA does once it has accepted an EnableDevice.

        The core sets ENABLED and ACTIVATING (voltha-go ``Agent.enableDevice``) and asks the
        adapter to re-enable; the openonu adapter unlocks the ONU over OMCI and reports ACTIVE,
        reason "onu-reenabled". An unreachable ONU cannot answer, so it stays ACTIVATING.
        """
        with self.lock:
            device.admin_state, device.oper_status = "ENABLED", "ACTIVATING"
            if device.connect_status == "REACHABLE":
                device.oper_status = "ACTIVE"
                if not device.root:
                    device.reason = _REASON_REENABLED

    def uni_ports(self) -> list[UniPort]:
        """Every UNI of every ONU, as ports of its OLT's logical device."""
        with self.lock:
            result = []
            for onu in self.devices.values():
                olt = self.devices.get(onu.parent_id)
                if onu.root or olt is None:
                    continue
                for port in onu.ports:
                    if port.type == "ETHERNET_UNI":
                        result.append(
                            UniPort(
                                of_device_id=self.of_device_id(olt),
                                port_no=port.port_no,
                                name=port.of_name,
                                # VOLTHA takes a UNI's logical port down unless its ONU is
                                # usable: disabled, unreachable or still activating
                                enabled=onu.usable and olt.enabled,
                                onu_id=onu.id,
                            )
                        )
            return result

    def find_uni(self, name: str) -> UniPort | None:
        return next((uni for uni in self.uni_ports() if uni.name == name), None)

    def snapshot(self) -> list[dict[str, Any]]:
        with self.lock:
            return [device.to_dict() for device in self.devices.values()]
