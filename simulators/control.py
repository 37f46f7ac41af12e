"""The ``/_sim/...`` control API that tests and scripts drive the simulators with.

Errors are ``{"error": message}`` with 400 (malformed), 404 (unknown thing) or 409 (exists).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from simulators.access import ONUS_PER_PON, PONS_PER_OLT, AccessError
from simulators.cpe import MAC_RE
from simulators.faults import SpecError, parse_fault, parse_latency
from simulators.nas import SessionExists
from simulators.netbox import PrefixExists
from simulators.onos import SadisService
from simulators.web import BadJson, Reply, Request, json_reply

if TYPE_CHECKING:
    from simulators.world import World


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _body(request: Request) -> dict[str, Any]:
    if not request.body:
        return {}
    try:
        payload = request.json()
    except BadJson as exc:
        raise _Refused(400, f"body is not JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise _Refused(400, "body must be a JSON object")
    return payload


def _field(
    body: dict[str, Any], name: str, kind: type | tuple[type, ...], default: Any = None
) -> Any:
    value = body.get(name, default)
    if value is not None and (
        not isinstance(value, kind) or (kind is int and isinstance(value, bool))
    ):
        raise _Refused(400, f"{name} has the wrong type")
    return value


def handle(world: World, request: Request) -> Reply:
    try:
        return _route(world, request)
    except _Refused as exc:
        return json_reply(exc.status, {"error": exc.message})
    except SpecError as exc:
        return json_reply(400, {"error": str(exc)})
    except AccessError as exc:
        return json_reply(exc.status, {"error": str(exc)})


def _route(world: World, request: Request) -> Reply:
    parts = [unquote(p) for p in request.path.split("/") if p][1:]  # drop "_sim"
    method = request.method
    match (method, parts):
        case ("POST", ["reset"]):
            world.reset()
            return json_reply(200, _seed(world, request))
        case ("GET", ["state"]):
            return json_reply(200, world.state(request.base_url))
        case ("GET", ["requests"]):
            return json_reply(200, world.journal(request.arg("system")))
        case ("POST", ["onus"]):
            return _add_onu(world, _body(request))
        case ("POST", ["olts"]):
            return _add_olt(world, _body(request))
        case ("POST", ["sadis"]):
            return _add_sadis(world, _body(request))
        case ("DELETE", ["sadis", port_name]):
            if not world.onos.remove_sadis_entry(port_name):
                raise _Refused(404, f"no SADIS entry for {port_name}")
            return json_reply(200, {"removed": port_name})
        case ("DELETE", ["onus", serial]):
            if not world.access.remove_onu(serial):
                raise _Refused(404, f"no ONU {serial}")
            return json_reply(200, {"removed": serial})
        case ("POST", ["cpes"]):
            return _add_cpe(world, _body(request))
        case ("PATCH", ["cpes", serial]):
            return _update_cpe(world, serial, _body(request))
        case ("POST", ["cpes", serial, "inform"]):
            if world.genieacs.inform(serial) is None:
                raise _Refused(404, f"no CPE {serial}")
            return json_reply(200, _cpe_json(world, serial))
        case ("POST", ["prefixes"]):
            return _add_prefix(world, request, _body(request))
        case ("POST", ["nas", "sessions"]):
            return _add_nas_session(world, _body(request))
        case ("GET", ["faults"]):
            return json_reply(200, world.faults.snapshot()["faults"])
        case ("POST", ["faults"]):
            fault = parse_fault(_body(request))
            world.faults.add_fault(fault)
            return json_reply(201, fault.to_dict())
        case ("DELETE", ["faults"]):
            world.faults.clear_faults()
            # requests held by a timeout fault are let go too: "no faults" means no hangs
            world.release_held()
            return json_reply(200, {"faults": []})
        case ("GET", ["latency"]):
            return json_reply(200, world.faults.snapshot()["latency"])
        case ("POST", ["latency"]):
            latency = parse_latency(_body(request))
            world.faults.add_latency(latency)
            return json_reply(201, latency.to_dict())
        case ("DELETE", ["latency"]):
            world.faults.clear_latencies()
            return json_reply(200, {"latency": []})
        case ("GET", ["config"]):
            return json_reply(200, world.config.to_dict())
        case ("POST", ["config"]):
            return _configure(world, _body(request))
    raise _Refused(404, f"no control endpoint {method} {request.path}")


def _seed(world: World, request: Request) -> dict[str, Any]:
    state = world.state(request.base_url)
    return {"netbox": {"prefixes": state["netbox"]["prefixes"]}, "voltha": state["voltha"]}


#: the SADIS services a discovered ONU's UNI gets by default: the demo plans' two (fiber-100 on
#: 100/200/64, fiber-500 on 110/210/65), so a plan change between them finds its tags in SADIS
DEFAULT_SERVICES = (
    SadisService(100, 200, 64, "hsia"),
    SadisService(110, 210, 65, "hsia-fast", "High-Speed-Internet", "High-Speed-Internet"),
)


def _vlan(body: dict[str, Any], name: str, default: int | None = None) -> int:
    value = _field(body, name, int, default)
    if value is None:
        raise _Refused(400, f"{name} is required")
    if not 0 <= value <= 4095:
        raise _Refused(400, f"{name} must be 0-4095")
    return int(value)


def _sadis_service(body: dict[str, Any]) -> SadisService:
    return SadisService(
        _vlan(body, "s_tag"),
        _vlan(body, "c_tag"),
        _vlan(body, "tp_id", 64),
        _field(body, "service_name", str, "hsia"),
        _field(body, "upstream_bp", str, "Default"),
        _field(body, "downstream_bp", str, "Default"),
    )


def _onu_services(body: dict[str, Any]) -> list[SadisService]:
    """The SADIS services of a new ONU's UNI: ``services``, or one from s_tag/c_tag/tp_id."""
    services = _field(body, "services", list)
    if services is not None:
        if not all(isinstance(item, dict) for item in services):
            raise _Refused(400, "services must be a list of objects")
        return [_sadis_service(item) for item in services]
    if any(name in body for name in ("s_tag", "c_tag", "tp_id")):
        return [
            SadisService(
                _vlan(body, "s_tag", 100), _vlan(body, "c_tag", 200), _vlan(body, "tp_id", 64)
            )
        ]
    return list(DEFAULT_SERVICES)


def _add_sadis(world: World, body: dict[str, Any]) -> Reply:
    port_name = _field(body, "port_name", str)
    if not port_name:
        raise _Refused(400, "port_name is required")
    world.onos.add_sadis_service(port_name, _sadis_service(body))
    return json_reply(201, {"port_name": port_name, "services": world.onos.sadis_entry(port_name)})


def _add_onu(world: World, body: dict[str, Any]) -> Reply:
    serial = _field(body, "serial", str)
    if not serial:
        raise _Refused(400, "serial is required")
    services = _onu_services(body)
    onu = world.access.add_onu(
        serial,
        _field(body, "olt", str),
        _field(body, "pon", int),
        admin_state=_field(body, "admin_state", str, "ENABLED"),
        connect_status=_field(body, "connect_status", str, "REACHABLE"),
        oper_status=_field(body, "oper_status", str),
    )
    uni = world.access.find_uni(f"{onu.serial_number}-1")
    assert uni is not None  # add_onu just made it
    # the operator's OSS fills SADIS for the subscriber on this UNI, keyed by its port name
    world.onos.set_sadis_entry(uni.name, services)
    return json_reply(
        201,
        {
            "device_id": onu.id,
            "serial": onu.serial_number,
            "olt_id": onu.parent_id,
            "pon": onu.pon,
            "onu_id": onu.onu_id,
            "admin_state": onu.admin_state,
            "oper_status": onu.oper_status,
            "connect_status": onu.connect_status,
            "of_device_id": uni.of_device_id,
            "uni_port_no": uni.port_no,
            "uni_port_name": uni.name,
            "location": uni.location,
            "sadis": world.onos.sadis_entry(uni.name),
        },
    )


def _add_olt(world: World, body: dict[str, Any]) -> Reply:
    olt = world.access.add_olt(_field(body, "serial", str))
    return json_reply(
        201,
        {
            "device_id": olt.id,
            "serial": olt.serial_number,
            "of_device_id": world.access.of_device_id(olt),
            "pons": PONS_PER_OLT,
            "onus_per_pon": ONUS_PER_PON,
        },
    )


def _cpe_json(world: World, serial: str) -> dict[str, Any]:
    device = world.genieacs.device_json(serial)
    assert device is not None  # callers found it just before
    return device


def _add_cpe(world: World, body: dict[str, Any]) -> Reply:
    serial = _field(body, "serial", str)
    if not serial:
        raise _Refused(400, "serial is required")
    data_model = _field(body, "data_model", str, "tr181")
    if data_model not in ("tr098", "tr181"):
        raise _Refused(400, "data_model must be tr098 or tr181")
    mac = _field(body, "mac", str)
    if mac is not None and not MAC_RE.match(mac):
        raise _Refused(400, "mac must be six colon-separated hex pairs")
    try:
        world.genieacs.add_cpe(
            serial,
            _field(body, "oui", str, "A4230F"),
            _field(body, "product_class", str, "SimCPE"),
            data_model,
            online=_field(body, "online", bool, True),
            in_session=_field(body, "in_session", bool, False),
            mac=mac,
        )
    except ValueError as exc:
        raise _Refused(409, str(exc)) from exc
    fail_tasks, fault_code = _task_faults(body)
    if fail_tasks is not None or fault_code is not None:
        world.genieacs.update_cpe(
            serial, online=None, in_session=None, fail_tasks=fail_tasks, fault_code=fault_code
        )
    return json_reply(201, _cpe_json(world, serial))


def _task_faults(body: dict[str, Any]) -> tuple[int | None, str | None]:
    """``fail_tasks``: the CPE refuses its next N tasks (and fault retries) with the CWMP
    fault ``fault_code`` (default 9002, Internal error)."""
    fail_tasks = _field(body, "fail_tasks", int)
    if fail_tasks is not None and fail_tasks < 0:
        raise _Refused(400, "fail_tasks must not be negative")
    fault_code = _field(body, "fault_code", str)
    if fault_code is not None and not (fault_code.isdigit() and len(fault_code) == 4):
        raise _Refused(400, "fault_code must be a four-digit CWMP fault code, e.g. 9002")
    return fail_tasks, fault_code


def _update_cpe(world: World, serial: str, body: dict[str, Any]) -> Reply:
    fail_tasks, fault_code = _task_faults(body)
    cpe = world.genieacs.update_cpe(
        serial,
        online=_field(body, "online", bool),
        in_session=_field(body, "in_session", bool),
        fail_tasks=fail_tasks,
        fault_code=fault_code,
    )
    if cpe is None:
        raise _Refused(404, f"no CPE {serial}")
    return json_reply(200, _cpe_json(world, serial))


def _add_prefix(world: World, request: Request, body: dict[str, Any]) -> Reply:
    prefix = _field(body, "prefix", str)
    if not prefix:
        raise _Refused(400, "prefix is required")
    try:
        created = world.netbox.add_prefix(prefix, _field(body, "is_pool", bool, False))
    except PrefixExists as exc:
        raise _Refused(409, str(exc)) from exc
    except ValueError as exc:
        raise _Refused(400, str(exc)) from exc
    prefixes = world.state(request.base_url)["netbox"]["prefixes"]
    return json_reply(201, next(p for p in prefixes if p["id"] == created.id))


def _add_nas_session(world: World, body: dict[str, Any]) -> Reply:
    username = _field(body, "username", str)
    if not username:
        raise _Refused(400, "username is required")
    session_id = _field(body, "session_id", str)
    if session_id == "":
        raise _Refused(400, "session_id must not be empty")
    try:
        session = world.nas.add_session(username, session_id)
    except SessionExists as exc:
        raise _Refused(409, str(exc)) from exc
    return json_reply(201, {"username": session.username, "session_id": session.session_id})


def _configure(world: World, body: dict[str, Any]) -> Reply:
    hold_s = _field(body, "hold_s", (int, float))
    delay_ms = _field(body, "onos_program_delay_ms", (int, float))
    for value in (hold_s, delay_ms):
        if value is not None and (isinstance(value, bool) or value < 0):
            raise _Refused(400, "values must be non-negative numbers")
    retry_delay = _field(body, "genieacs_retry_delay_s", (int, float))
    lock_wait = _field(body, "genieacs_lock_wait_s", (int, float))
    for value in (retry_delay, lock_wait):
        if value is not None and (isinstance(value, bool) or value < 0):
            raise _Refused(400, "values must be non-negative numbers")
    tokens = _field(body, "netbox_tokens", list)
    if tokens is not None and not all(isinstance(t, str) and t for t in tokens):
        raise _Refused(400, "netbox_tokens must be a list of non-empty strings")
    if hold_s is not None:
        world.config.hold_s = float(hold_s)
    if delay_ms is not None:
        world.config.onos_program_delay_s = float(delay_ms) / 1000
    if tokens is not None:
        world.config.netbox_tokens = tuple(tokens)
    if retry_delay is not None:
        world.config.genieacs_retry_delay_s = float(retry_delay)
    if lock_wait is not None:
        world.config.genieacs_lock_wait_s = float(lock_wait)
    return json_reply(200, world.config.to_dict())
