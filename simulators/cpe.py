"""A simulated CPE: its TR-098 or TR-181 parameters, and how it runs a GenieACS task.

Its WAN MAC sits where each data model puts the MAC of the WAN frames: TR-098 on the WAN
connections (``WANIPConnection.1.MACAddress`` and ``WANPPPConnection.1.MACAddress``, "the physical
address of the connection"); TR-181 on the WAN's ``Device.Ethernet.Link.1.MACAddress`` ("the MAC
address used for packets sent via this interface"), with the same address as the burned-in
``Device.Ethernet.Interface.1.MACAddress`` of its upstream port. It is stored as given, in the
case the CPE reports it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def escape_id_part(value: str) -> str:
    """GenieACS's device-id escaping: every character outside [A-Za-z0-9_] becomes %XX."""
    return "".join(
        ch
        if (ch.isascii() and ch.isalnum()) or ch == "_"
        else "".join(f"%{byte:02X}" for byte in ch.encode())
        for ch in value
    )


MAC_RE = re.compile(r"^(?:[0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}$")  # TR-181's MACAddress pattern


def default_mac(serial: str) -> str:
    """A stable, locally administered WAN MAC for a CPE created without one (02:xx:...)."""
    digest = hashlib.sha256(serial.encode()).digest()
    return ":".join(f"{b:02X}" for b in (0x02, *digest[:5]))


@dataclass
class Param:
    value: Any
    type: str = "xsd:string"
    writable: bool = True


def default_parameters(
    data_model: str, serial: str, oui: str, product_class: str, mac: str
) -> dict[str, Param]:
    root = "InternetGatewayDevice" if data_model == "tr098" else "Device"
    params = {
        f"{root}.DeviceInfo.Manufacturer": Param("SimVendor", writable=False),
        f"{root}.DeviceInfo.ManufacturerOUI": Param(oui, writable=False),
        f"{root}.DeviceInfo.ProductClass": Param(product_class, writable=False),
        f"{root}.DeviceInfo.SerialNumber": Param(serial, writable=False),
        f"{root}.DeviceInfo.SoftwareVersion": Param("1.0.0", writable=False),
        f"{root}.ManagementServer.ConnectionRequestURL": Param(
            "http://192.0.2.1:7547/", writable=False
        ),
    }
    if data_model == "tr098":
        wan = "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1"
        ppp = f"{wan}.WANPPPConnection.1"
        wlan = "InternetGatewayDevice.LANDevice.1.WLANConfiguration.1"
        params |= {
            # read-write in TR-098 (a MAC override); both connections run over the one WAN port
            f"{wan}.WANIPConnection.1.MACAddress": Param(mac),
            f"{wan}.WANIPConnection.1.ConnectionStatus": Param("Unconfigured", writable=False),
            f"{ppp}.MACAddress": Param(mac),
            f"{ppp}.Enable": Param(False, "xsd:boolean"),
            f"{ppp}.Username": Param(""),
            f"{ppp}.Password": Param(""),
            f"{ppp}.ConnectionStatus": Param("Unconfigured", writable=False),
            f"{wlan}.SSID": Param(f"SIM-{serial[-4:]}"),
            f"{wlan}.KeyPassphrase": Param("changeme-wifi"),
        }
    else:
        params |= {
            "Device.Ethernet.Interface.1.MACAddress": Param(mac, writable=False),
            "Device.Ethernet.Interface.1.Upstream": Param(True, "xsd:boolean", writable=False),
            "Device.Ethernet.Link.1.MACAddress": Param(mac),
            "Device.Ethernet.Link.1.LowerLayers": Param("Device.Ethernet.Interface.1"),
            "Device.PPP.Interface.1.LowerLayers": Param("Device.Ethernet.Link.1"),
            "Device.PPP.Interface.1.Enable": Param(False, "xsd:boolean"),
            "Device.PPP.Interface.1.Username": Param(""),
            "Device.PPP.Interface.1.Password": Param(""),
            "Device.PPP.Interface.1.ConnectionStatus": Param("Unconfigured", writable=False),
            "Device.WiFi.SSID.1.SSID": Param(f"SIM-{serial[-4:]}"),
            "Device.WiFi.AccessPoint.1.Security.KeyPassphrase": Param("changeme-wifi"),
        }
    return params


@dataclass
class Cpe:
    id: str
    serial: str
    oui: str
    product_class: str
    data_model: str
    #: the WAN MAC as the CPE reports it (the case is the CPE's)
    mac: str
    online: bool = True
    in_session: bool = False
    params: dict[str, Param] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    registered: str = field(default_factory=now)
    last_inform: str = field(default_factory=now)
    #: how many of the next tasks (or fault retries) this CPE refuses, and with which CWMP code
    fail_tasks: int = 0
    fault_code: str = "9002"

    def document(self) -> dict[str, Any]:
        """The device as GenieACS stores it in MongoDB: nested objects, leaves with _value."""
        doc: dict[str, Any] = {
            "_id": self.id,
            "_deviceId": {
                "_Manufacturer": "SimVendor",
                "_OUI": self.oui,
                "_ProductClass": self.product_class,
                "_SerialNumber": self.serial,
            },
            "_lastInform": self.last_inform,
            "_registered": self.registered,
        }
        if self.tags:
            doc["_tags"] = list(self.tags)
        for path, param in self.params.items():
            node = doc
            *parents, leaf = path.split(".")
            for segment in parents:
                node = node.setdefault(
                    segment, {"_object": True, "_writable": False, "_timestamp": self.last_inform}
                )
            node[leaf] = {
                "_value": param.value,
                "_type": param.type,
                "_writable": param.writable,
                "_timestamp": self.last_inform,
            }
        return doc


def _coerce(value: Any, type_: str) -> Any:
    if type_ == "xsd:boolean":
        return value in (True, 1, "1", "true", "True")
    if type_ in ("xsd:int", "xsd:unsignedInt"):
        return int(value)
    return value if isinstance(value, str) else str(value)


def apply_task(cpe: Cpe, task: dict[str, Any]) -> dict[str, Any] | None:
    """Runs a task on the CPE; returns a CWMP fault if the CPE refuses it (nothing changes)."""
    if cpe.fail_tasks > 0:
        # the control knob: this CPE refuses its next tasks, whatever they ask
        cpe.fail_tasks -= 1
        return {
            "code": f"cwmp.{cpe.fault_code}",
            "message": "Fault injected by the simulator",
            "detail": {"faultCode": cpe.fault_code, "faultString": "Internal error"},
        }
    name = task["name"]
    if name == "setParameterValues":
        for path, *_ in task["parameterValues"]:
            param = cpe.params.get(path)
            if param is None:
                return {
                    "code": "cwmp.9005",
                    "message": "Invalid parameter name",
                    "detail": {
                        "faultCode": "9005",
                        "faultString": f"Invalid parameter name: {path}",
                    },
                }
            if not param.writable:
                return {
                    "code": "cwmp.9008",
                    "message": "Attempt to set a non-writable parameter",
                    "detail": {"faultCode": "9008", "faultString": path},
                }
        updates = {}
        for path, value, *rest in task["parameterValues"]:
            type_ = rest[0] if rest else cpe.params[path].type
            try:
                updates[path] = Param(_coerce(value, type_), type_)
            except ValueError:
                return {
                    "code": "cwmp.9007",
                    "message": "Invalid parameter value",
                    "detail": {"faultCode": "9007", "faultString": path},
                }
        # all or nothing, as a CPE applies one SetParameterValues
        cpe.params.update(updates)
    elif name == "factoryReset":
        cpe.params = default_parameters(
            cpe.data_model, cpe.serial, cpe.oui, cpe.product_class, cpe.mac
        )
    return None
