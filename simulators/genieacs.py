"""GenieACS NBI (port 7557): device queries, tasks, tags; CPEs with TR-098 or TR-181 parameters.

Routing, status codes and reason phrases follow GenieACS's ``lib/nbi.ts``; a ``/devices`` query is
expanded as GenieACS's ``lib/query.ts`` does (a parameter path is matched on its ``_value``) before
MongoDB's rules apply (see ``simulators/mongo.py``). A CPE that is online
and not in a session runs its queued tasks as soon as a task arrives with ``?connection_request``
(200); otherwise the task stays queued (202 with the reason in the status line) until the CPE
comes online through the control API, which stands for its next inform.

Faults as in GenieACS (lib/cwmp.ts, lib/cwmp/db.ts, lib/api-functions.ts, lib/nbi.ts): a task
the CPE refuses leaves a fault ``<device>:task_<id>`` holding the task's provisions (a JSON
string of ``["value", path, value]``); the task is skipped while its fault exists; a new task with
the same ``uniqueKey`` deletes the old task but **not** its fault; at an inform, the first fault
whose ``timestamp + retry_delay * 2^retries`` has passed is retried: its provisions are applied
again (success deletes the fault and its task, failure counts a retry). ``DELETE /tasks/<id>``
deletes the task and its fault, ``DELETE /faults/<id>`` the fault and (for a task's) its task;
both answer 503 "Device is in session" while the CPE is in a session. A POST with
``?connection_request`` waits up to ``lock_wait`` seconds for the device's session to end, then
queues the task (202 "Task queued but not processed").
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import threading
import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

from simulators.cpe import (
    Cpe,
    apply_task,
    default_mac,
    default_parameters,
    escape_id_part,
    now,
)
from simulators.mongo import BadQuery, expand, matches, normalize, project
from simulators.web import BadJson, HeadLimit, Reply, Request, json_reply, text_reply

VERSION = "1.2.13"
#: GenieACS serves the NBI with Node's http.createServer and no maxHeaderSize (lib/server.ts):
#: Node reads 16 KiB of request line and headers, then answers 431 and closes the connection.
#: A query of a few hundred serials in one URL goes past it.
HEAD_LIMIT = HeadLimit(
    16 * 1024,
    lambda: Reply(431, reason="Request Header Fields Too Large", headers={"Connection": "close"}),
)
_SEGMENT = r"([a-zA-Z0-9\-_%]+)"
_DEVICE_TASKS = re.compile(rf"^/devices/{_SEGMENT}/tasks/?$")
_TASK = re.compile(rf"^/tasks/{_SEGMENT}/?$")
_FAULT = re.compile(r"^/faults/([a-zA-Z0-9\-_%:]+)/?$")
_TAGS = re.compile(rf"^/devices/{_SEGMENT}/tags/{_SEGMENT}/?$")
_DEVICE = re.compile(rf"^/devices/{_SEGMENT}/?$")
_COLLECTION = re.compile(r"^/([a-zA-Z0-9_]+)/?$")
_OBJECT_ID = re.compile(r"^[0-9a-f]{24}$")
_TASK_NAMES = {
    "getParameterValues",
    "setParameterValues",
    "refreshObject",
    "addObject",
    "deleteObject",
    "reboot",
    "factoryReset",
    "download",
}
_QUEUED = "Task queued but not processed"


class GenieAcsSim:
    name = "genieacs"

    def __init__(
        self,
        *,
        retry_delay: Callable[[], float] = lambda: 300.0,
        lock_wait: Callable[[], float] = lambda: 30.0,
    ) -> None:
        self.lock = threading.Lock()
        #: notified whenever a CPE's session ends (the NBI's wait for the session lock)
        self.session_changed = threading.Condition(self.lock)
        self.devices: dict[str, Cpe] = {}
        #: device ids by serial, and by tag, so a query by either costs the same at any number of
        #: devices. GenieACS itself indexes only _id (and tasks by device and timestamp: lib/db/
        #: db.ts); at scale an operator adds MongoDB indexes on these two paths
        self._serials: dict[str, str] = {}
        self._tagged: dict[str, set[str]] = {}
        #: queued tasks by id in insertion order, as GenieACS's tasks collection; and by device
        self.tasks: dict[str, dict[str, Any]] = {}
        self._device_tasks: dict[str, dict[str, dict[str, Any]]] = {}
        #: task faults by "<device>:task_<id>", as GenieACS's faults collection
        self.faults: dict[str, dict[str, Any]] = {}
        #: when each fault was last (re)tried, as epoch seconds (its "timestamp")
        self._fault_times: dict[str, float] = {}
        self._ids = itertools.count(1)
        #: cwmp.retryDelay in seconds (GenieACS: 300)
        self.retry_delay = retry_delay
        #: how long a connection-request POST waits for the session lock (GenieACS: 30 s)
        self.lock_wait = lock_wait

    # -- state -------------------------------------------------------------------------------

    def reset(self) -> None:
        with self.lock:
            self.devices.clear()
            self._serials.clear()
            self._tagged.clear()
            self.tasks.clear()
            self._device_tasks.clear()
            self.faults.clear()
            self._fault_times.clear()
            self.session_changed.notify_all()

    def add_cpe(
        self,
        serial: str,
        oui: str,
        product_class: str,
        data_model: str,
        *,
        online: bool,
        in_session: bool,
        mac: str | None = None,
    ) -> Cpe:
        device_id = "-".join(escape_id_part(p) for p in (oui, product_class, serial))
        # no uniqueness check on the MAC: cloned WAN MACs happen, and GenieACS does not mind
        mac = mac or default_mac(serial)
        cpe = Cpe(
            id=device_id,
            serial=serial,
            oui=oui,
            product_class=product_class,
            data_model=data_model,
            mac=mac,
            online=online,
            in_session=in_session,
            params=default_parameters(data_model, serial, oui, product_class, mac),
        )
        with self.lock:
            if device_id in self.devices or serial in self._serials:
                raise ValueError(f"CPE {serial} already exists")
            self.devices[device_id] = cpe
            self._serials[serial] = device_id
        return cpe

    def update_cpe(
        self,
        serial: str,
        *,
        online: bool | None,
        in_session: bool | None,
        fail_tasks: int | None = None,
        fault_code: str | None = None,
    ) -> Cpe | None:
        with self.lock:
            cpe = self._by_serial(serial)
            if cpe is None:
                return None
            if fail_tasks is not None:
                cpe.fail_tasks = fail_tasks
            if fault_code is not None:
                cpe.fault_code = fault_code
            if online is not None:
                cpe.online = online
            if in_session is not None:
                cpe.in_session = in_session
                self.session_changed.notify_all()
            # a CPE that comes back (or ends its session) informs, and runs what is queued
            if (online is not None or in_session is not None) and cpe.online and not cpe.in_session:
                self._session(cpe)
            return cpe

    def inform(self, serial: str) -> Cpe | None:
        """The CPE informs (a periodic inform): queued tasks run, due faults are retried.
        Nothing happens for a CPE that is offline or already in a session."""
        with self.lock:
            cpe = self._by_serial(serial)
            if cpe is not None and cpe.online and not cpe.in_session:
                self._session(cpe)
            return cpe

    def _by_serial(self, serial: str) -> Cpe | None:
        device_id = self._serials.get(serial)
        return None if device_id is None else self.devices.get(device_id)

    def _add_task(self, task: dict[str, Any]) -> None:
        self.tasks[task["_id"]] = task
        self._device_tasks.setdefault(task["device"], {})[task["_id"]] = task

    def _remove_task(self, task_id: str) -> None:
        task = self.tasks.pop(task_id, None)
        if task is not None:
            self._device_tasks.get(task["device"], {}).pop(task_id, None)

    def _tasks_of(self, device_id: str) -> list[dict[str, Any]]:
        return list(self._device_tasks.get(device_id, {}).values())

    def device_json(self, serial: str) -> dict[str, Any] | None:
        """One CPE as ``snapshot`` shows it (the control API's answers: no whole-state build)."""
        with self.lock:
            cpe = self._by_serial(serial)
            return None if cpe is None else self._cpe_json(cpe)

    def _cpe_json(self, cpe: Cpe) -> dict[str, Any]:
        return {
            "id": cpe.id,
            "serial": cpe.serial,
            "oui": cpe.oui,
            "product_class": cpe.product_class,
            "data_model": cpe.data_model,
            "mac": cpe.mac,
            "online": cpe.online,
            "in_session": cpe.in_session,
            "parameters": {path: p.value for path, p in cpe.params.items()},
            "tags": list(cpe.tags),
            "fail_tasks": cpe.fail_tasks,
            "faults": [copy.deepcopy(f) for f in self.faults.values() if f["device"] == cpe.id],
            "tasks": [
                {**task, "fault": self.faults.get(f"{cpe.id}:task_{task['_id']}")}
                for task in self._tasks_of(cpe.id)
            ],
        }

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {"devices": [self._cpe_json(cpe) for cpe in self.devices.values()]}

    # -- HTTP --------------------------------------------------------------------------------

    def error_reply(self, status: int, request: Request) -> Reply:
        if status == 503:
            return text_reply(503, "Device is in session")
        if status == 500:
            reply = text_reply(500, "MongoNetworkError: connection timed out")
            reply.headers["Connection"] = "close"
            return reply
        return text_reply(status, HTTPStatus(status).phrase)

    def handle(self, request: Request) -> Reply:
        reply = self._route(request)
        reply.headers["GenieACS-Version"] = VERSION
        return reply

    def _route(self, request: Request) -> Reply:
        path, method = request.path, request.method
        if m := _TAGS.match(path):
            if method not in ("POST", "DELETE"):
                return self._not_allowed("POST, DELETE")
            return self._tag(method, unquote(m[1]), unquote(m[2]))
        if m := _DEVICE_TASKS.match(path):
            if method != "POST":
                return self._not_allowed("POST")
            return self._post_task(request, unquote(m[1]))
        if m := _FAULT.match(path):
            if method != "DELETE":
                return self._not_allowed("DELETE")
            return self._delete_fault(unquote(m[1]))
        if m := _TASK.match(path):
            if method != "DELETE":
                return self._not_allowed("PUT DELETE")
            return self._delete_task(unquote(m[1]))
        if m := _DEVICE.match(path):
            if method != "DELETE":
                return self._not_allowed("DELETE")
            return self._delete_device(unquote(m[1]))
        if m := _COLLECTION.match(path):
            if method not in ("GET", "HEAD"):
                return self._not_allowed("GET, HEAD")
            return self._query(request, m[1])
        return text_reply(404, "404 Not Found")

    @staticmethod
    def _not_allowed(allow: str) -> Reply:
        reply = text_reply(405, "405 Method Not Allowed")
        reply.headers["Allow"] = allow
        return reply

    def _query(self, request: Request, collection: str) -> Reply:
        raw = request.arg("query")
        try:
            query = json.loads(raw) if raw else {}
        except ValueError as exc:
            return text_reply(400, f"SyntaxError: {exc}")
        if not isinstance(query, dict):
            return text_reply(400, "Error: query must be an object")
        with self.lock:
            if collection == "devices":
                docs = [cpe.document() for cpe in self._device_candidates(query)]
            elif collection == "tasks":
                docs = copy.deepcopy(self._task_candidates(query))
            elif collection == "faults":
                fault_id = query.get("_id")
                if isinstance(fault_id, str):
                    docs = copy.deepcopy([self.faults[fault_id]] if fault_id in self.faults else [])
                else:
                    docs = copy.deepcopy(list(self.faults.values()))
            else:
                return text_reply(404, "404 Not Found")
        try:
            if collection == "devices":
                query = expand(query)
            docs = [doc for doc in docs if matches(doc, query)]
        except BadQuery as exc:
            return text_reply(400, f"Error: {exc}")
        total = len(docs)
        projection = request.arg("projection")
        if projection:
            fields = [p.strip() for p in projection.split(",") if p.strip()]
            docs = [project(doc, fields) for doc in docs]
        skip, limit = request.arg("skip"), request.arg("limit")
        if skip and skip.isdigit():
            docs = docs[int(skip) :]
        if limit and limit.isdigit():
            docs = docs[: int(limit)]
        return json_reply(200, docs, {"total": str(total)})

    def _device_candidates(self, query: dict[str, Any]) -> list[Cpe]:
        """The devices a query can match, narrowed by an index when a top-level condition on
        ``_deviceId._SerialNumber``, ``_tags`` or ``_id`` is a plain string or an ``$in`` of
        plain strings (ones GenieACS's expand leaves as they are: no regex, number or
        wildcard), as MongoDB answers them from the indexes an operator at scale adds (GenieACS
        itself creates none on devices but _id's; see __init__). The query still decides."""
        indexes: tuple[tuple[str, Callable[[str], Iterable[str]]], ...] = (
            (
                "_deviceId._SerialNumber",
                lambda v: (self._serials[v],) if v in self._serials else (),
            ),
            ("_tags", lambda v: self._tagged.get(v, ())),
            ("_id", lambda v: (v,)),
        )
        for field, lookup in indexes:
            keys = _index_keys(query.get(field))
            if keys is not None:
                ids = {device_id for key in keys for device_id in lookup(key)}
                break
        else:
            return list(self.devices.values())
        # (sorted by id: a stable order, as MongoDB's natural order is stable)
        return [self.devices[i] for i in sorted(ids) if i in self.devices]

    def _task_candidates(self, query: dict[str, Any]) -> list[dict[str, Any]]:
        task_id, device_id = query.get("_id"), query.get("device")
        if isinstance(task_id, str):
            return [self.tasks[task_id]] if task_id in self.tasks else []
        if isinstance(device_id, str):
            return self._tasks_of(device_id)
        return list(self.tasks.values())

    def _tag(self, method: str, device_id: str, tag: str) -> Reply:
        with self.lock:
            cpe = self.devices.get(device_id)
            if cpe is None:
                return text_reply(404, "No such device")
            if method == "POST" and tag not in cpe.tags:
                cpe.tags.append(tag)
                self._tagged.setdefault(tag, set()).add(device_id)
            elif method == "DELETE" and tag in cpe.tags:
                cpe.tags.remove(tag)
                self._tagged.get(tag, set()).discard(device_id)
        return text_reply(200)

    def _delete_device(self, device_id: str) -> Reply:
        with self.lock:
            cpe = self.devices.get(device_id)
            if cpe is not None and cpe.in_session:
                return text_reply(503, "Device is in session")
            gone = self.devices.pop(device_id, None)
            if gone is not None:
                self._serials.pop(gone.serial, None)
                for tag in gone.tags:
                    self._tagged.get(tag, set()).discard(device_id)
            for task in self._tasks_of(device_id):
                self._remove_task(task["_id"])
        return text_reply(200)

    def _delete_task(self, task_id: str) -> Reply:
        if not _OBJECT_ID.match(task_id):
            # what MongoDB's driver says for a malformed ObjectId, surfacing as a 500
            return text_reply(500, "BSONError: input must be a 24 character hex string")
        with self.lock:
            task = self.tasks.get(task_id)
            if task is None:
                return text_reply(404, "Task not found")
            if self.devices[task["device"]].in_session:
                return text_reply(503, "Device is in session")
            self._remove_task(task_id)
            self._drop_fault(f"{task['device']}:task_{task_id}")
        return text_reply(200)

    def _delete_fault(self, fault_id: str) -> Reply:
        # lib/api-functions.ts deleteFault: under the device's session lock; a task's fault
        # takes its task along; deleting what is not there is no error
        device_id, _, channel = fault_id.partition(":")
        with self.lock:
            cpe = self.devices.get(device_id)
            if cpe is not None and cpe.in_session:
                return text_reply(503, "Device is in session")
            self._drop_fault(fault_id)
            if channel.startswith("task_"):
                self._remove_task(channel[len("task_") :])
        return text_reply(200)

    def _drop_fault(self, fault_id: str) -> None:
        self.faults.pop(fault_id, None)
        self._fault_times.pop(fault_id, None)

    def _post_task(self, request: Request, device_id: str) -> Reply:
        connection_request = "connection_request" in request.query
        task: dict[str, Any] | None = None
        if request.body:
            try:
                parsed = request.json()
            except BadJson as exc:
                return text_reply(400, f"SyntaxError: {exc}")
            if not isinstance(parsed, dict):
                return text_reply(400, "Error: Invalid task")
            task = parsed
            problem = _task_problem(task)
            if problem:
                return text_reply(400, f"Error: {problem}")
        if task is None and not connection_request:
            return text_reply(400)
        with self.lock:
            cpe = self.devices.get(device_id)
            if cpe is None:
                return text_reply(404, "No such device")
            if task is None:  # a bare connection request
                if not cpe.online:
                    return text_reply(504, "Device is offline", reason="Device is offline")
                if not cpe.in_session:
                    self._session(cpe)
                return text_reply(200)
            if not connection_request:
                return json_reply(202, self._insert(cpe, task))
            # lib/nbi.ts: acquireLock("cwmp_session_<id>", 5000, 30000) before inserting
            self.session_changed.wait_for(lambda: not cpe.in_session, self.lock_wait())
            if self.devices.get(device_id) is not cpe:  # reset or deleted meanwhile
                return text_reply(404, "No such device")
            task = self._insert(cpe, task)
            if cpe.in_session or not cpe.online:
                reply = json_reply(202, task)
                reply.reason = _QUEUED
                return reply
            self._session(cpe)
            if f"{cpe.id}:task_{task['_id']}" in self.faults:
                reply = json_reply(202, task)
                reply.reason = "Task faulted"
                return reply
            return json_reply(200, task)

    def _insert(self, cpe: Cpe, task: dict[str, Any]) -> dict[str, Any]:
        task = {**task, "device": cpe.id, "timestamp": now(), "_id": f"{next(self._ids):024x}"}
        key = task.get("uniqueKey")
        if key is not None:
            replaced = [t for t in self._tasks_of(cpe.id) if t.get("uniqueKey") == key]
            for old in replaced:
                # lib/api-functions.ts insertTasks: the task only; its fault stays (and will
                # be retried)
                self._remove_task(old["_id"])
        self._add_task(task)
        return task

    def _session(self, cpe: Cpe) -> None:
        """One CWMP session: every queued, unfaulted task of the CPE runs in order; then the
        first fault whose retry is due is retried (lib/cwmp.ts applyPresets' whiteList)."""
        cpe.last_inform = now()
        for task in self._tasks_of(cpe.id):
            fault_id = f"{cpe.id}:task_{task['_id']}"
            if fault_id in self.faults:
                continue
            fault = apply_task(cpe, task)
            if fault is None:
                self._remove_task(task["_id"])
            else:
                self._record_fault(cpe, fault_id, task, fault)
        self._retry_due_fault(cpe)

    def _record_fault(
        self, cpe: Cpe, fault_id: str, task: dict[str, Any], fault: dict[str, Any]
    ) -> None:
        provisions = [
            ["value", path, value] for path, value, *_ in task.get("parameterValues") or []
        ]
        self.faults[fault_id] = {
            "_id": fault_id,
            "device": cpe.id,
            "channel": fault_id.partition(":")[2],
            "timestamp": cpe.last_inform,
            "retries": 0,
            **fault,
            # lib/cwmp/db.ts saveFault stores the provisions as a JSON string
            "provisions": json.dumps(provisions),
        }
        self._fault_times[fault_id] = time.time()

    def _retry_due_fault(self, cpe: Cpe) -> None:
        for fault_id, fault in list(self.faults.items()):
            if fault["device"] != cpe.id:
                continue
            due = self._fault_times.get(fault_id, 0.0) + self.retry_delay() * 2 ** fault["retries"]
            if due > time.time():
                continue
            values = [
                [path, value]
                for kind, path, value, *_ in json.loads(fault["provisions"])
                if kind == "value"
            ]
            refused = apply_task(cpe, {"name": "setParameterValues", "parameterValues": values})
            if refused is None:
                self._drop_fault(fault_id)
                self._remove_task(fault["channel"].removeprefix("task_"))
            else:
                fault.update(refused, retries=fault["retries"] + 1, timestamp=cpe.last_inform)
                self._fault_times[fault_id] = time.time()
            return


def _index_keys(condition: Any) -> list[str] | None:
    """The strings a top-level condition can only equal (itself, or its ``$in`` list), when an
    index can answer it; None when only a scan can."""
    if isinstance(condition, str):
        return [condition] if _literal(condition) else None
    if isinstance(condition, dict) and set(condition) == {"$in"}:
        values = condition["$in"]
        if isinstance(values, list) and all(isinstance(v, str) and _literal(v) for v in values):
            return values
    return None


def _literal(value: str) -> bool:
    """Whether lib/query.ts expand leaves this string as it is (an index can then answer)."""
    return normalize(value) == [value]


def _task_problem(task: dict[str, Any]) -> str | None:
    name = task.get("name")
    if name not in _TASK_NAMES:
        return "Invalid task name"
    if name == "setParameterValues":
        values = task.get("parameterValues")
        if not isinstance(values, list) or not all(
            isinstance(v, list) and 2 <= len(v) <= 3 and isinstance(v[0], str) for v in values
        ):
            return "Invalid parameterValues"
    return None
