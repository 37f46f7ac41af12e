"""ONOS with the SEBA/VOLTHA olt app: subscriber services on a UNI, and the device ports REST.

As in the real app (``OltWebResource``), a POST only queues the service: it shows up in
``programmed-subscribers`` once "flows are pushed", which here means after a configurable delay and
only while the UNI's ONU (and its OLT) are enabled. A port name ONOS does not know is a 500
"ConnectPoint not found for <name>".
"""

from __future__ import annotations

import base64
import binascii
import hmac
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from simulators.access import AccessNetwork, UniPort
from simulators.web import Reply, Request, json_reply, text_reply


@dataclass(frozen=True)
class ServiceKey:
    port_name: str
    s_tag: int
    c_tag: int
    tp_id: int


def _tag_info(key: ServiceKey) -> dict[str, Any]:
    # the field set of sadis' UniTagInformationCodec; values as for a plain HSIA service
    return {
        "uniTagMatch": 0,
        "ponCTag": key.c_tag,
        "ponSTag": key.s_tag,
        "usPonCTagPriority": -1,
        "usPonSTagPriority": -1,
        "dsPonCTagPriority": -1,
        "dsPonSTagPriority": -1,
        "technologyProfileId": key.tp_id,
        "upstreamBandwidthProfile": "Default",
        "downstreamBandwidthProfile": "Default",
        "serviceName": "hsia",
        "enableMacLearning": False,
        "configuredMacAddress": "A4:23:05:00:00:00",
        "isDhcpRequired": False,
        "isIgmpRequired": False,
    }


class OnosSim:
    name = "onos"

    def __init__(
        self,
        access: AccessNetwork,
        *,
        user: str,
        password: str,
        program_delay: Callable[[], float],
    ) -> None:
        self._access = access
        self._credentials = f"{user}:{password}".encode()
        self._program_delay = program_delay
        self.lock = threading.Lock()
        #: services asked for, with the monotonic time their flows count as pushed
        self.services: dict[ServiceKey, float] = {}

    def reset(self) -> None:
        with self.lock:
            self.services.clear()

    def programmed(self) -> list[tuple[ServiceKey, UniPort]]:
        unis = {uni.name: uni for uni in self._access.uni_ports()}
        now = time.monotonic()
        with self.lock:
            return [
                (key, unis[key.port_name])
                for key, ready_at in self.services.items()
                if key.port_name in unis and unis[key.port_name].enabled and ready_at <= now
            ]

    def snapshot(self) -> dict[str, Any]:
        programmed = self.programmed()
        with self.lock:
            pending = [key for key in self.services if all(key != k for k, _ in programmed)]
        return {
            "programmed_subscribers": [
                {
                    "port_name": k.port_name,
                    "location": uni.location,
                    "s_tag": k.s_tag,
                    "c_tag": k.c_tag,
                    "tp_id": k.tp_id,
                }
                for k, uni in programmed
            ],
            "pending_subscribers": [
                {"port_name": k.port_name, "s_tag": k.s_tag, "c_tag": k.c_tag, "tp_id": k.tp_id}
                for k in pending
            ],
        }

    # -- HTTP --------------------------------------------------------------------------------

    def error_reply(self, status: int, request: Request) -> Reply:
        # ONOS's exception mappers answer {"code", "message"}
        return json_reply(status, {"code": status, "message": "Simulated ONOS failure"})

    def _authorized(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            given = base64.b64decode(header[6:], validate=True)
        except (binascii.Error, ValueError):
            return False
        return hmac.compare_digest(given, self._credentials)

    def handle(self, request: Request) -> Reply:
        if not self._authorized(request):
            reply = text_reply(401, "Unauthorized")
            reply.headers["WWW-Authenticate"] = 'Basic realm="karaf"'
            return reply
        parts = [unquote(p) for p in request.path.split("/") if p]
        method = request.method
        match parts:
            case ["onos", "olt", "oltapp", "status"] if method == "GET":
                return text_reply(200)
            case ["onos", "olt", "oltapp", "services", port_name, s_tag, c_tag, tp_id]:
                if method not in ("POST", "DELETE"):
                    return self._not_allowed()
                return self._service(method, port_name, s_tag, c_tag, tp_id)
            case ["onos", "olt", "oltapp", "programmed-subscribers", *where] if len(where) <= 2:
                if method != "GET":
                    return self._not_allowed()
                return self._programmed_subscribers(*where)
            case ["onos", "v1", "devices", "ports"] if method == "GET":
                return self._ports()
            case ["onos", "v1", "devices"] if method == "GET":
                return self._devices()
        return json_reply(404, {"code": 404, "message": "HTTP 404 Not Found"})

    @staticmethod
    def _not_allowed() -> Reply:
        return json_reply(405, {"code": 405, "message": "HTTP 405 Method Not Allowed"})

    def _service(self, method: str, port_name: str, s: str, c: str, tp: str) -> Reply:
        try:
            s_tag, c_tag, tp_id = int(s), int(c), int(tp)
        except ValueError as exc:
            return json_reply(400, {"code": 400, "message": str(exc)})
        for tag in (s_tag, c_tag):
            if not 0 <= tag <= 4095:
                return json_reply(
                    400,
                    {
                        "code": 400,
                        "message": f"value exceeds allowed maximum VLAN ID value (4095): {tag}",
                    },
                )
        if self._access.find_uni(port_name) is None:
            return text_reply(500, f"ConnectPoint not found for {port_name}")
        key = ServiceKey(port_name, s_tag, c_tag, tp_id)
        with self.lock:
            if method == "POST":
                self.services.setdefault(key, time.monotonic() + self._program_delay())
                return text_reply(200)
            if self.services.pop(key, None) is None:
                return text_reply(204)
            return text_reply(200)

    def _programmed_subscribers(
        self, device_id: str | None = None, port: str | None = None
    ) -> Reply:
        entries = [
            {"location": uni.location, "tagInfo": _tag_info(key)}
            for key, uni in self.programmed()
            if device_id in (None, uni.of_device_id) and port in (None, str(uni.port_no))
        ]
        return json_reply(200, {"entries": entries})

    def _ports(self) -> Reply:
        ports = []
        for olt in self._access.olts():
            of_id = self._access.of_device_id(olt)
            for port in olt.ports:
                if port.type == "ETHERNET_NNI":
                    ports.append(self._port_json(of_id, port.port_no, port.of_name, olt.enabled))
        for uni in self._access.uni_ports():
            ports.append(self._port_json(uni.of_device_id, uni.port_no, uni.name, uni.enabled))
        return json_reply(200, {"ports": ports})

    @staticmethod
    def _port_json(element: str, port_no: int, name: str, enabled: bool) -> dict[str, Any]:
        return {
            "element": element,
            "port": str(port_no),
            "isEnabled": enabled,
            "type": "fiber",
            "portSpeed": 1000,
            "annotations": {
                "adminState": "enabled" if enabled else "disabled",
                "portMac": "08:00:00:00:00:01",
                "portName": name,
            },
        }

    def _devices(self) -> Reply:
        devices = [
            {
                "id": self._access.of_device_id(olt),
                "type": "SWITCH",
                "available": olt.enabled,
                "role": "MASTER",
                "mfr": "VOLTHA Project",
                "hw": "open_pon",
                "sw": "open_pon",
                "serial": olt.serial_number,
                "driver": "voltha",
                "chassisId": olt.mac_address.replace(":", "").lstrip("0"),
                "annotations": {"managementAddress": olt.host_and_port, "protocol": "OF_13"},
            }
            for olt in self._access.olts()
        ]
        return json_reply(200, {"devices": devices})
