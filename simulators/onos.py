"""ONOS with the SEBA/VOLTHA olt app and SADIS: subscriber services on a UNI, device ports REST.

As the real apps (opencord/olt ``OltWebResource`` + ``Olt.provisionSubscriber(cp, cTag, sTag,
tpId)``, opencord/sadis ``SadisWebResource``):

- The tagged POST decides at once: a port name ONOS does not know is a 500 "ConnectPoint not found
  for <name>"; then the port's SADIS entry must hold a service with exactly this ponSTag, ponCTag
  and technologyProfileId, and that service must not be requested already; otherwise **204**
  (refused, nothing done). 200 means the request was taken in.
- The tagged DELETE is 200 when it removed a requested service, **204** when SADIS has no such
  service or it was not requested (nothing done).
- ``programmed-subscribers`` lists a service once the olt app has started on its flows (after a
  configurable delay, while the UNI is up, and only if the bandwidth profiles its SADIS service
  names exist: without meters the subscriber stays queued), whether its flows are pending-add,
  added or in error; a removed service leaves the list at once (pending-remove is left out).
- ``GET /onos/sadis/subscriber/{id}`` is 200 ``{"entry": [<SubscriberAndDeviceInformation>]}``
  or 404 "Subscriber not found"; ``GET /onos/sadis/bandwidthprofile/{id}`` likewise.
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

from simulators.access import AccessNetwork, Device, UniPort
from simulators.web import Reply, Request, json_reply, text_reply

#: bandwidth profiles SADIS knows (a service naming another one never gets its meters)
BANDWIDTH_PROFILES = ("Default", "High-Speed-Internet")


@dataclass(frozen=True)
class ServiceKey:
    port_name: str
    s_tag: int
    c_tag: int
    tp_id: int


@dataclass(frozen=True)
class SadisService:
    """One service of a port's SADIS entry (a ``UniTagInformation``)."""

    s_tag: int
    c_tag: int
    tp_id: int
    service_name: str = "hsia"
    upstream_bp: str = "Default"
    downstream_bp: str = "Default"

    def matches(self, key: ServiceKey) -> bool:
        # opencord/olt OltUtils.getUniTagInformation: ponCTag, ponSTag and tech profile, exactly
        return (self.s_tag, self.c_tag, self.tp_id) == (key.s_tag, key.c_tag, key.tp_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "s_tag": self.s_tag,
            "c_tag": self.c_tag,
            "tp_id": self.tp_id,
            "service_name": self.service_name,
            "upstream_bp": self.upstream_bp,
            "downstream_bp": self.downstream_bp,
        }


def _tag_info(service: SadisService) -> dict[str, Any]:
    # the field set of sadis' UniTagInformationCodec; values as for a plain HSIA service
    return {
        "uniTagMatch": 0,
        "ponCTag": service.c_tag,
        "ponSTag": service.s_tag,
        "usPonCTagPriority": -1,
        "usPonSTagPriority": -1,
        "dsPonCTagPriority": -1,
        "dsPonSTagPriority": -1,
        "technologyProfileId": service.tp_id,
        "upstreamBandwidthProfile": service.upstream_bp,
        "downstreamBandwidthProfile": service.downstream_bp,
        "serviceName": service.service_name,
        "enableMacLearning": False,
        "configuredMacAddress": "A4:23:05:00:00:00",
        "isDhcpRequired": False,
        "isIgmpRequired": False,
    }


def _bandwidth_profile(name: str) -> dict[str, Any]:
    # sadis BandwidthProfileCodec fields; figures of the SEBA sample configuration
    return {"id": name, "cir": 50000, "cbs": 10000, "eir": 50000, "ebs": 10000, "air": 1000}


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
        #: services requested (the olt app's provisionedSubscribers), with the monotonic time
        #: the olt app starts on their flows (from then on programmed-subscribers lists them)
        self.services: dict[ServiceKey, tuple[SadisService, float]] = {}
        #: the keys of ``services`` by port name, so a port's services are found without a scan
        self._port_keys: dict[str, set[ServiceKey]] = {}
        #: SADIS subscriber entries by port name (the id SADIS knows a UNI by)
        self.sadis: dict[str, list[SadisService]] = {}

    def reset(self) -> None:
        with self.lock:
            self.services.clear()
            self._port_keys.clear()
            self.sadis.clear()

    # -- SADIS (the control API fills it: SADIS is read-only over ONOS's REST) ----------------

    def add_sadis_service(self, port_name: str, service: SadisService) -> None:
        """Adds a service to the port's entry (replacing one with the same tags)."""
        with self.lock:
            kept = [
                s
                for s in self.sadis.get(port_name, [])
                if (s.s_tag, s.c_tag, s.tp_id) != (service.s_tag, service.c_tag, service.tp_id)
            ]
            self.sadis[port_name] = [*kept, service]

    def set_sadis_entry(self, port_name: str, services: list[SadisService]) -> None:
        with self.lock:
            self.sadis[port_name] = list(services)

    def sadis_entry(self, port_name: str) -> list[dict[str, Any]]:
        with self.lock:
            return [s.to_dict() for s in self.sadis.get(port_name, [])]

    def remove_sadis_entry(self, port_name: str) -> bool:
        with self.lock:
            return self.sadis.pop(port_name, None) is not None

    def _sadis_service(self, key: ServiceKey) -> SadisService | None:
        return next((s for s in self.sadis.get(key.port_name, []) if s.matches(key)), None)

    def programmed(
        self, unis: list[UniPort] | None = None
    ) -> list[tuple[ServiceKey, SadisService, UniPort]]:
        """The services programmed-subscribers lists, on the given UNIs (default: all of them).

        Found through the port-name index: the cost is that of the UNIs asked about, not of
        the network."""
        if unis is None:
            unis = self._access.uni_ports()
        now = time.monotonic()
        found = []
        with self.lock:
            for uni in unis:
                if not uni.enabled:
                    continue
                for key in self._port_keys.get(uni.name, ()):
                    service, ready_at = self.services[key]
                    if ready_at <= now and {service.upstream_bp, service.downstream_bp} <= set(
                        BANDWIDTH_PROFILES
                    ):
                        found.append((key, service, uni))
        return found

    def snapshot(self) -> dict[str, Any]:
        programmed = self.programmed()
        with self.lock:
            listed = {key for key, _, _ in programmed}
            pending = [key for key in self.services if key not in listed]
            sadis = {port: [s.to_dict() for s in services] for port, services in self.sadis.items()}
        return {
            "sadis": sadis,
            "programmed_subscribers": [
                {
                    "port_name": k.port_name,
                    "location": uni.location,
                    "s_tag": k.s_tag,
                    "c_tag": k.c_tag,
                    "tp_id": k.tp_id,
                }
                for k, _, uni in programmed
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
            case ["onos", "sadis", "subscriber", port_name] if method == "GET":
                return self._sadis_subscriber(port_name)
            case ["onos", "sadis", "bandwidthprofile", name] if method == "GET":
                if name not in BANDWIDTH_PROFILES:
                    return json_reply(404, {"code": 404, "message": "Bandwidth Profile not found"})
                return json_reply(200, {"entry": [_bandwidth_profile(name)]})
            case ["onos", "v1", "devices", "ports"] if method == "GET":
                return self._ports()
            case ["onos", "v1", "devices"] if method == "GET":
                return json_reply(200, {"devices": [self._device_json(o) for o in self._olts()]})
            case ["onos", "v1", "devices", device_id] if method == "GET":
                olt = self._access.olt_by_of_id(device_id)
                if olt is None:
                    return self._device_not_found()
                return json_reply(200, self._device_json(olt))
            case ["onos", "v1", "devices", device_id, "ports"] if method == "GET":
                return self._device_ports(device_id)
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
            service = self._sadis_service(key)
            # Olt.provisionSubscriber/removeSubscriber: no SADIS service with exactly these tags,
            # or (POST) already requested / (DELETE) not requested -> false -> 204, nothing done
            if service is None:
                return text_reply(204)
            if method == "POST":
                if key in self.services:
                    return text_reply(204)
                self.services[key] = (service, time.monotonic() + self._program_delay())
                self._port_keys.setdefault(port_name, set()).add(key)
                return text_reply(200)
            if self.services.pop(key, None) is None:
                return text_reply(204)
            self._port_keys[port_name].discard(key)
            return text_reply(200)

    def _sadis_subscriber(self, port_name: str) -> Reply:
        with self.lock:
            services = self.sadis.get(port_name)
        if services is None:
            # ItemNotFoundException through ONOS's exception mapper
            return json_reply(404, {"code": 404, "message": "Subscriber not found"})
        entry = {
            "id": port_name,
            "nasPortId": port_name,
            "uplinkPort": -1,
            "slot": -1,
            "hardwareIdentifier": "",
            "ipAddress": "",
            "nasId": "",
            "circuitId": port_name,
            "remoteId": "",
            "nniDhcpTrapVid": 0,
            "uniTagList": [_tag_info(s) for s in services],
        }
        return json_reply(200, {"entry": [entry]})

    def _programmed_subscribers(
        self, device_id: str | None = None, port: str | None = None
    ) -> Reply:
        # OltWebResource filters the whole map by device id, then by port number; we look the
        # filtered UNIs up by index instead of scanning (same answer, cost of the answer)
        unis: list[UniPort] | None = None
        if device_id is not None:
            olt = self._access.olt_by_of_id(device_id)
            if olt is None:
                unis = []
            elif port is None:
                unis = self._access.olt_unis(olt)
            else:
                uni = self._access.uni_at(device_id, int(port)) if port.isdigit() else None
                unis = [uni] if uni is not None else []
        entries = [
            {"location": uni.location, "tagInfo": _tag_info(service)}
            for _, service, uni in self.programmed(unis)
        ]
        return json_reply(200, {"entries": entries})

    def _olts(self) -> list[Device]:
        return self._access.olts()

    def _nni_ports(self, olt: Device) -> list[dict[str, Any]]:
        of_id = self._access.of_device_id(olt)
        return [
            self._port_json(of_id, port.port_no, port.of_name, olt.enabled)
            for port in olt.ports
            if port.type == "ETHERNET_NNI"
        ]

    def _ports(self) -> Reply:
        # DevicesWebResource.getDevicesPorts: every port of every device (grows with the network)
        ports = [port for olt in self._olts() for port in self._nni_ports(olt)]
        for uni in self._access.uni_ports():
            ports.append(self._port_json(uni.of_device_id, uni.port_no, uni.name, uni.enabled))
        return json_reply(200, {"ports": ports})

    def _device_ports(self, device_id: str) -> Reply:
        # DevicesWebResource.getDevicePorts: the device's JSON with a "ports" array
        olt = self._access.olt_by_of_id(device_id)
        if olt is None:
            return self._device_not_found()
        ports = self._nni_ports(olt) + [
            self._port_json(uni.of_device_id, uni.port_no, uni.name, uni.enabled)
            for uni in self._access.olt_unis(olt)
        ]
        return json_reply(200, {**self._device_json(olt), "ports": ports})

    @staticmethod
    def _device_not_found() -> Reply:
        # nullIsNotFound(..., DEVICE_NOT_FOUND) through ONOS's EntityNotFoundMapper
        return json_reply(404, {"code": 404, "message": "Device is not found"})

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

    def _device_json(self, olt: Device) -> dict[str, Any]:
        return {
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
