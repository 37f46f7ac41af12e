"""The simulated access network: OLTs and the ONUs they discovered, seen by VOLTHA and ONOS alike.

Numbering follows VOLTHA's openolt/openonu adapters so that what our clients read looks real:
PON port numbers are ``0x20000000 + pon``; a UNI's port number is
``(pon << 12) | (onu_id << 4) | uni_index`` (16 for the first ONU on PON 0; the openolt adapter's
``MkUniPortNum`` before VOL-4413 moved to 8 bits of UNI in 2021); the UNI's OpenFlow name, which
ONOS knows it by, is ``<serial>-<uni_index + 1>``.

Each OLT has 16 PONs of at most 128 ONUs (GPON), ONU ids 1-128, so a UNI number names one
(PON, ONU) and never another PON's. A new ONU goes, unless told where, to the least loaded PON of
the least loaded OLT; a full PON (or network) is refused with 409. More OLTs are added on
demand (``POST /_sim/olts``; ``--demo N`` adds as many as N ONUs need). Every lookup a request
makes goes through an index (serial, UNI name, ONOS location), so answers about one device cost
the same at any size; only the listings of everything grow with the network.

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


#: PON ports of a simulated OLT (BBSim's default asfvolt16 has 16)
PONS_PER_OLT = 16
#: GPON serves at most 128 ONUs on a PON (ITU-T G.984 split); ONU ids 1-128 also fit the 8 bits
#: the UNI numbering leaves for them, so UNI port numbers never collide across PONs
ONUS_PER_PON = 128
#: OLT MACs (and so ONOS device ids) differ in their last byte
MAX_OLTS = 256


def uni_port_no(pon: int, onu_id: int, uni_index: int = 0) -> int:
    """The openolt adapter's UNI number (voltha-openolt-adapter ``MkUniPortNum`` before VOL-4413):
    4 bits of UNI, 8 of ONU id, then the PON id."""
    return (pon << 12) | (onu_id << 4) | uni_index


class AccessNetwork:
    """The devices, with indexes so that every lookup a request makes costs the same at 50
    ONUs as at 50,000: by serial, by UNI name, by ONOS location, and the ONU ids in use per PON.
    """

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.devices: dict[str, Device] = {}
        self._olts: list[Device] = []
        #: ONU serial -> device id
        self._onu_ids: dict[str, str] = {}
        #: UNI OpenFlow name -> ONU device id
        self._uni_names: dict[str, str] = {}
        #: ONOS device id of an OLT -> its VOLTHA device id
        self._of_ids: dict[str, str] = {}
        #: (OLT id, PON) -> ONU ids in use
        self._slots: dict[tuple[str, int], set[int]] = {}
        #: OLT id -> UNI port number -> ONU device id
        self._unis_by_olt: dict[str, dict[int, str]] = {}
        #: OLT id -> how many ONUs it holds
        self._olt_load: dict[str, int] = {}

    def reset(self) -> Device:
        with self.lock:
            self.devices.clear()
            self._olts.clear()
            self._onu_ids.clear()
            self._uni_names.clear()
            self._of_ids.clear()
            self._slots.clear()
            self._unis_by_olt.clear()
            self._olt_load.clear()
            return self.add_olt()

    def add_olt(self, serial: str | None = None) -> Device:
        """Another OLT with 16 empty PONs, as BBSim starts one; its MAC (and so its ONOS id)
        differs from the others' in the last byte."""
        with self.lock:
            index = len(self._olts)
            if index >= MAX_OLTS:
                raise AccessError(f"at most {MAX_OLTS} OLTs", 409)
            serial = serial or f"BBSIM_OLT_{index}"
            if not SERIAL_RE.match(serial.replace("_", "")):
                raise AccessError("serial must be 4-32 letters, digits or _", 400)
            if any(o.serial_number == serial for o in self._olts) or serial in self._onu_ids:
                raise AccessError(f"device {serial} already exists", 409)
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
            for pon in range(PONS_PER_OLT):
                olt.ports.append(Port(_PON_PORT_BASE + pon, f"pon-{pon}", "PON_OLT"))
                self._slots[(olt.id, pon)] = set()
            self.devices[olt.id] = olt
            self._olts.append(olt)
            self._of_ids[self.of_device_id(olt)] = olt.id
            self._unis_by_olt[olt.id] = {}
            self._olt_load[olt.id] = 0
            return olt

    def of_device_id(self, olt: Device) -> str:
        return "of:0000" + olt.mac_address.replace(":", "")

    def olts(self) -> list[Device]:
        with self.lock:
            return list(self._olts)

    def onu(self, serial: str) -> Device | None:
        with self.lock:
            device_id = self._onu_ids.get(serial)
            return None if device_id is None else self.devices.get(device_id)

    def _place(self, olt_id: str | None, pon: int | None) -> tuple[Device, int, int]:
        """Where a new ONU ranges: the given OLT and PON, or else the least loaded PON of the
        least loaded OLT (first in order on a tie), and there the lowest free ONU id."""
        if olt_id is None:
            olts = self._olts
        else:
            olts = [o for o in self._olts if olt_id in (o.id, o.serial_number)]
            if not olts:
                raise AccessError(f"no OLT {olt_id}", 404)
        if pon is not None and not 0 <= pon < PONS_PER_OLT:
            raise AccessError(f"pon must be 0-{PONS_PER_OLT - 1}", 400)
        pons = range(PONS_PER_OLT) if pon is None else (pon,)

        def load(olt: Device) -> int:
            return self._olt_load[olt.id] if pon is None else len(self._slots[(olt.id, pon)])

        olt = min(olts, key=load)
        chosen = min(pons, key=lambda p: len(self._slots[(olt.id, p)]))
        used = self._slots[(olt.id, chosen)]
        if len(used) >= ONUS_PER_PON:
            where = f"PON {chosen} of {olt.serial_number}" if pon is not None else "every PON"
            if olt_id is None and pon is None:
                where = "every PON of every OLT"
            raise AccessError(f"{where} already holds {ONUS_PER_PON} ONUs (GPON)", 409)
        onu_id = next(i for i in range(1, ONUS_PER_PON + 1) if i not in used)
        return olt, chosen, onu_id

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
            if serial in self._onu_ids or any(o.serial_number == serial for o in self._olts):
                raise AccessError(f"ONU {serial} is already discovered", 409)
            olt, pon, onu_id = self._place(olt_id, pon)
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
            uni_no = uni_port_no(pon, onu_id)
            onu.ports.append(
                Port(
                    1,
                    "PON port",
                    "PON_ONU",
                    peer_device_id=olt.id,
                    peer_port_no=_PON_PORT_BASE + pon,
                )
            )
            uni = Port(uni_no, f"uni-{uni_no}", "ETHERNET_UNI", f"{serial}-1")
            onu.ports.append(uni)
            self.devices[onu.id] = onu
            self._onu_ids[serial] = onu.id
            self._uni_names[uni.of_name] = onu.id
            self._slots[(olt.id, pon)].add(onu_id)
            self._olt_load[olt.id] += 1
            self._unis_by_olt[olt.id][uni_no] = onu.id
            return onu

    def remove_onu(self, serial: str) -> bool:
        with self.lock:
            onu = self.onu(serial)
            if onu is None:
                return False
            del self.devices[onu.id]
            del self._onu_ids[serial]
            self._slots[(onu.parent_id, onu.pon)].discard(onu.onu_id)
            self._olt_load[onu.parent_id] -= 1
            for port in onu.ports:
                if port.type == "ETHERNET_UNI":
                    self._uni_names.pop(port.of_name, None)
                    self._unis_by_olt[onu.parent_id].pop(port.port_no, None)
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

    def _uni(self, onu: Device) -> UniPort | None:
        olt = self.devices.get(onu.parent_id)
        port = next((p for p in onu.ports if p.type == "ETHERNET_UNI"), None)
        if olt is None or port is None:
            return None
        return UniPort(
            of_device_id=self.of_device_id(olt),
            port_no=port.port_no,
            name=port.of_name,
            # VOLTHA takes a UNI's logical port down unless its ONU is usable: disabled,
            # unreachable or still activating
            enabled=onu.usable and olt.enabled,
            onu_id=onu.id,
        )

    def uni_ports(self) -> list[UniPort]:
        """Every UNI of every ONU, as ports of its OLT's logical device (for /_sim/state and
        the all-devices port list: the only answers that grow with the network)."""
        with self.lock:
            unis = (self._uni(d) for d in self.devices.values() if not d.root)
            return [uni for uni in unis if uni is not None]

    def find_uni(self, name: str) -> UniPort | None:
        """The UNI ONOS knows by this port name, by index."""
        with self.lock:
            device_id = self._uni_names.get(name)
            onu = None if device_id is None else self.devices.get(device_id)
            return None if onu is None else self._uni(onu)

    def uni_at(self, of_device_id: str, port_no: int) -> UniPort | None:
        """The UNI at an ONOS location (``of:<dpid>/<port>``), by index."""
        with self.lock:
            olt_id = self._of_ids.get(of_device_id)
            device_id = None if olt_id is None else self._unis_by_olt[olt_id].get(port_no)
            onu = None if device_id is None else self.devices.get(device_id)
            return None if onu is None else self._uni(onu)

    def olt_by_of_id(self, of_device_id: str) -> Device | None:
        with self.lock:
            olt_id = self._of_ids.get(of_device_id)
            return None if olt_id is None else self.devices.get(olt_id)

    def olt_unis(self, olt: Device) -> list[UniPort]:
        """The UNIs of one OLT's logical device (ONOS's ports of that one device)."""
        with self.lock:
            onus = (self.devices[i] for i in self._unis_by_olt[olt.id].values())
            unis = (self._uni(onu) for onu in onus)
            return [uni for uni in unis if uni is not None]

    def snapshot(self) -> list[dict[str, Any]]:
        with self.lock:
            return [device.to_dict() for device in self.devices.values()]
