"""A chaos campaign: many provisionings on a stack of its own while everything around them fails.

    .venv/bin/python bench/chaos.py --workflows 1000 [--rate 3] [--fault-share 0.05]
                                    [--doomed-share 0.1] [--offline-share 0.2] [--seed 1]

It starts an isolated copy of `make run` on free ports (so it runs beside one, and beside the
tests): a private PostgreSQL cluster (initdb in a temporary directory, trust auth, the
orchestrator and radius databases, `orchestrator db upgrade` + `seed-demo`, FreeRADIUS's schema
through `scripts/freeradius.sh db`), a private Redis, the simulators, and the `Procfile`'s web,
worker, worker-io and beat lines, each under `scripts/supervise.py` as `make run` has them. No
FreeRADIUS daemon: the RADIUS steps write its SQL tables, nothing authenticates.

Then it submits ``--workflows`` provisionings through the API at ``--rate`` a second while

- every NetBox, ONOS, VOLTHA and GenieACS call fails with ``--fault-share`` probability, split
  evenly over the four fault modes (error, timeout, reset, after_effect);
- ``--doomed-share`` of the requests are bound to fail for good, so compensations run under the
  same faults: half name an ONU VOLTHA does not know, half a CPE that refuses every push;
- ``--offline-share`` of the CPEs are offline, so pushes are queued (and deleted on rollback);
- a worker process is SIGKILLed every ``--kill-every`` seconds (a prefork child of `worker` and
  the thread-pool `worker-io` in turn; supervise.py starts the latter again);
- Redis and PostgreSQL are each killed and restarted once.

Once every workflow is terminal (or ``--deadline`` passed) the faults are cleared and it checks:
every workflow terminal, `orchestrator reconcile --json` clean, no duplicates (NetBox addresses
per key, RADIUS rows per username, ONOS services per port, CPE tags and pushes, subscribers and
workflows per username), no false `failed` (one whose `left_behind` names nothing that still
exists). It prints a report and exits 1 if any check failed. Logs stay in the printed directory.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg2
import requests

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv" / "bin"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
TERMINAL = ("completed", "rolled_back", "compensated", "failed")
SYSTEMS = ("netbox", "onos", "voltha", "genieacs")  # the NAS takes no part in provisioning
MODES = ("error", "timeout", "reset", "after_effect")
# The chaos plan: a /20 holds 4,094 addresses, enough for any campaign this machine can run
# (the demo plan's /24 runs out at 254). Its tags are the demo ONUs' SADIS service.
PLAN = {
    "name": "chaos",
    "download_mbps": 100,
    "upload_mbps": 100,
    "radius_group": "chaos-fiber",
    "ipv4_prefix": "100.96.0.0/20",
    "s_tag": 100,
    "c_tag": 200,
    "tech_profile_id": 64,
    "ipv6_delegation_pool": "2001:db8:100::/40",
    "ipv6_delegated_length": 56,
}


def log(message: str) -> None:
    print(f"[chaos {time.strftime('%H:%M:%S')}] {message}", flush=True)


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(what: str, check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.2)  # a poll interval; readiness is the check's answer
    raise RuntimeError(f"{what} not ready within {timeout:.0f}s")


def children(pid: int) -> list[int]:
    """The direct children of ``pid`` (Linux /proc), for picking a worker process to kill."""
    found: list[int] = []
    with contextlib.suppress(FileNotFoundError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(FileNotFoundError):
                found += [int(p) for p in (task / "children").read_text().split()]
    return found


# --------------------------------------------------------------------------- the private stack


@dataclass
class Postgres:
    """A cluster of our own: the machine's PostgreSQL is shared, and we restart ours."""

    base: Path
    port: int = field(default_factory=free_port)

    @property
    def data(self) -> Path:
        return self.base / "data"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{database}"

    def _as_postgres(self, *args: str) -> None:
        # initdb and postgres refuse to run as root: as root, become the postgres user
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, *args], check=True, stdout=subprocess.DEVNULL)  # noqa: S603

    def init(self) -> None:
        self.base.mkdir(parents=True)
        if os.geteuid() == 0:
            shutil.chown(self.base, "postgres", "postgres")
        self._as_postgres(
            str(PG_BIN / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "--no-sync",
        )

    def start(self) -> None:
        # fsync off: a killed postgres loses nothing the OS has (the OS is not what we crash);
        # synchronous_commit stays on, so a commit the orchestrator saw survives the kill
        options = (
            f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 "
            "-c max_connections=300 -c fsync=off -c full_page_writes=off"
        )
        self._as_postgres(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.base / "postgres.log"),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "stop")

    def restart(self, down_s: float) -> None:
        """A crash (immediate stop: no checkpoint, recovery at start), then back after down_s."""
        self.stop("immediate")
        time.sleep(down_s)  # the outage the workers and the API live through
        self.start()

    def connect(self, database: str) -> Any:
        return psycopg2.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname=database, connect_timeout=5
        )

    def query(self, database: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with contextlib.closing(self.connect(database)) as conn, conn.cursor() as cursor:
            cursor.execute(sql, params)
            return list(cursor.fetchall())

    def create_database(self, name: str) -> None:
        with contextlib.closing(self.connect("postgres")) as conn:
            conn.autocommit = True
            with conn.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{name}"')


@dataclass
class Redis:
    """A broker of our own, without persistence: a restart loses every queued message."""

    base: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - fixed arguments
            [
                shutil.which("redis-server") or "/usr/bin/redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.base),
            ],
            stdout=(self.base / "redis.log").open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

        def answers() -> bool:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")

        wait_for("redis", answers, 15)

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()  # as a crash or an OOM kill would
            self.process.wait(timeout=15)

    def restart(self, down_s: float) -> None:
        self.kill()
        time.sleep(down_s)
        self.start()


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]

    def stop(self) -> None:
        """SIGTERM to its process group (supervise.py and what it runs), SIGKILL if it lingers."""
        if self.popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=10)


@dataclass
class Stack:
    work: Path
    workflows: int
    postgres: Postgres = field(init=False)
    redis: Redis = field(init=False)
    api_port: int = field(default_factory=free_port)
    sim_port: int = field(default_factory=free_port)
    grpc_port: int = field(default_factory=free_port)
    nas_port: int = field(default_factory=lambda: free_port(socket.SOCK_DGRAM))
    processes: dict[str, Process] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.postgres = Postgres(self.work / "pg")
        self.redis = Redis(self.work)

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def sim(self) -> str:
        return f"http://127.0.0.1:{self.sim_port}"

    def environment(self) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            # nothing of the machine's stack (or of a traced shell) leaks into ours
            if not key.startswith(("OTEL_", "PROMETHEUS_", "PG"))
        }
        env.update(
            PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
            PYTHONPATH=str(ROOT),
            DATABASE_URL=self.postgres.url("orchestrator"),
            RADIUS_DATABASE_URL=self.postgres.url("radius"),
            BROKER_URL=f"{self.redis.url}/0",
            RESULT_BACKEND=f"{self.redis.url}/1",
            CIRCUIT_REDIS_URL=f"{self.redis.url}/0",
            NETBOX_URL=f"{self.sim}/netbox",
            ONOS_URL=self.sim,
            GENIEACS_URL=f"{self.sim}/genieacs",
            VOLTHA_ADDRESS=f"127.0.0.1:{self.grpc_port}",
            NAS_ADDRESS="127.0.0.1",
            NAS_COA_PORT=str(self.nas_port),
            NAS_SECRET="testing123",  # noqa: S106 - the simulated NAS's shared secret
        )
        return env

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - our own CLI
            [str(BIN / "orchestrator"), *args],
            env=self.env,
            cwd=ROOT,
            check=check,
            capture_output=True,
            text=True,
        )

    def spawn(self, name: str, command: str) -> None:
        logfile = (self.work / f"{name}.log").open("ab")
        popen = subprocess.Popen(  # noqa: S603 - Procfile lines of this checkout
            [shutil.which("bash") or "/bin/bash", "-c", f"exec {command}"],
            cwd=ROOT,
            env=self.env,
            stdout=logfile,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: stop() signals supervise.py and its child
        )
        self.processes[name] = Process(name, popen)

    def procfile(self) -> dict[str, str]:
        """The `Procfile` lines, with our ports and files in place of `make run`'s."""
        lines = dict(
            line.split(":", 1)
            for line in (ROOT / "Procfile").read_text().splitlines()
            if line.strip() and not line.startswith("#")
        )
        lines = {name.strip(): command.strip() for name, command in lines.items()}
        lines["web"] = lines["web"].replace("127.0.0.1:8000", f"127.0.0.1:{self.api_port}")
        lines["beat"] = lines["beat"].replace(
            "var/celerybeat-schedule", str(self.work / "celerybeat-schedule")
        )
        return lines

    def start(self) -> None:
        self.postgres.init()
        self.postgres.start()
        self.redis.start()
        self.env = self.environment()
        self.env["ORCHESTRATOR_SECRET_KEY"] = self.cli("secret-key").stdout.strip()
        for database in ("orchestrator", "radius"):
            self.postgres.create_database(database)
        # FreeRADIUS's schema, grants and our ownership table, exactly as `make run` makes them
        subprocess.run(  # noqa: S603 - our own script
            [str(ROOT / "scripts" / "freeradius.sh"), "db"],
            env={
                **self.env,
                "PGHOST": "127.0.0.1",
                "PGPORT": str(self.postgres.port),
                "PGUSER": "postgres",
                "RADIUS_DB_NAME": "radius",
            },
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        self.cli("db", "upgrade")
        self.cli("seed-demo")
        self.spawn(
            "simulators",
            f"{BIN / 'orchestrator-simulators'} --host 127.0.0.1 --http-port {self.sim_port} "
            f"--grpc-port {self.grpc_port} --nas-port {self.nas_port} --log-level WARNING "
            f"--demo {self.workflows}",
        )
        wait_for("simulators", lambda: requests.get(f"{self.sim}/_sim/config", timeout=2).ok, 60)
        lines = self.procfile()
        for name in ("web", "worker", "worker-io", "beat"):
            self.spawn(name, lines[name])
        wait_for("the API", lambda: requests.get(f"{self.api}/healthz", timeout=2).ok, 60)
        wait_for("the prefork pool", lambda: len(self.pool_children()) >= 2, 90)
        wait_for("worker-io", lambda: bool(self.child_of("worker-io")), 60)

    def child_of(self, name: str) -> int | None:
        """The command supervise.py runs for the Procfile line ``name`` (None between starts)."""
        found = children(self.processes[name].popen.pid)
        return found[0] if found else None

    def pool_children(self) -> list[int]:
        main = self.child_of("worker")
        return children(main) if main else []

    def stop(self) -> None:
        for process in reversed(list(self.processes.values())):
            process.stop()
        self.redis.kill()
        with contextlib.suppress(subprocess.CalledProcessError):
            self.postgres.stop("fast")


# --------------------------------------------------------------------------- the campaign


@dataclass
class Request:
    index: int
    username: str
    onu_serial: str
    cpe_serial: str
    doomed: str | None  # why it must fail: "unknown_onu", "refusing_cpe"; None: may succeed
    offline: bool
    workflow_id: str | None = None
    submit_error: str | None = None


@dataclass
class Chaos:
    kills: list[str] = field(default_factory=list)
    restarts: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def plan_requests(args: argparse.Namespace, run: str) -> list[Request]:
    rng = random.Random(args.seed)
    made = []
    for i in range(1, args.workflows + 1):
        doomed = None
        if rng.random() < args.doomed_share:
            doomed = "unknown_onu" if rng.random() < 0.5 else "refusing_cpe"
        made.append(
            Request(
                index=i,
                username=f"chaos-{run}-{i:05d}",
                # DEAD in the serial: never one of the demo ONUs BBSM00000001...
                onu_serial=f"BBSMDEAD{i:04X}" if doomed == "unknown_onu" else f"BBSM{i:08d}",
                cpe_serial=f"DEMOCPE{i:04d}",
                doomed=doomed,
                # a refusing CPE must be online to refuse: offline, the push just waits
                offline=rng.random() < args.offline_share and doomed != "refusing_cpe",
            )
        )
    return made


def control(stack: Stack, method: str, path: str, body: Any = None) -> Any:
    response = requests.request(method, f"{stack.sim}/_sim/{path}", json=body, timeout=30)
    if response.status_code >= 400:
        raise RuntimeError(f"{method} /_sim/{path}: {response.status_code} {response.text[:200]}")
    return response.json()


def prepare_world(stack: Stack, requests_: list[Request], args: argparse.Namespace) -> None:
    control(stack, "POST", "prefixes", {"prefix": PLAN["ipv4_prefix"]})
    control(stack, "POST", "config", {"hold_s": args.hold_s})
    for request in requests_:
        patch: dict[str, Any] = {}
        if request.offline:
            patch["online"] = False
        if request.doomed == "refusing_cpe":
            # every push (and retry) refused with a CWMP fault: a permanent failure
            patch["fail_tasks"] = 1000
        if patch:
            control(stack, "PATCH", f"cpes/{request.cpe_serial}", patch)


def arm_faults(stack: Stack, share: float, hold_s: float, seed: int) -> int:
    """One rule per system and mode; a request spared by one meets the next, so each rule's
    probability q makes 1 - (1 - q)^4 = share of all calls fail."""
    q = 1 - (1 - share) ** (1 / len(MODES))
    rules = 0
    for system in SYSTEMS:
        for mode in MODES:
            spec = {
                "system": system,
                "match": "",
                "mode": mode,
                "count": 0,
                "probability": q,
                "seed": seed + rules,
                "hold_s": hold_s,
            }
            control(stack, "POST", "faults", spec)
            rules += 1
    return rules


def admin_setup(stack: Stack) -> tuple[str, int]:
    """An operator key, and the chaos plan created over the API with an admin key."""
    admin = stack.cli("api-key", "create", "--tenant", "demo", "--role", "admin")
    operator = stack.cli("api-key", "create", "--tenant", "demo", "--role", "operator")
    response = requests.post(
        f"{stack.api}/api/v1/service-plans",
        headers={"Authorization": f"Bearer {admin.stdout.strip().splitlines()[-1]}"},
        json=PLAN,
        timeout=30,
    )
    response.raise_for_status()
    return operator.stdout.strip().splitlines()[-1], int(response.json()["id"])


def submit(stack: Stack, key: str, plan_id: int, request: Request, give_up_s: float) -> None:
    """Submits once, idempotently: a lost answer or a 503 (PostgreSQL down) is sent again with
    the same Idempotency-Key, so a retry can never start a second workflow."""
    body = {
        "customer": {
            "first_name": "Chaos",
            "last_name": f"No{request.index}",
            "email": f"{request.username}@example.net",
        },
        "service_plan_id": plan_id,
        "service_address": f"{request.index} Chaos Street",
        "username": request.username,
        "onu_serial": request.onu_serial,
        "cpe_serial": request.cpe_serial,
    }
    headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": request.username}
    deadline = time.monotonic() + give_up_s
    while True:
        try:
            response = requests.post(
                f"{stack.api}/api/v1/orchestration/provision-subscriber",
                json=body,
                headers=headers,
                timeout=30,
            )
            if response.status_code in (200, 202):
                request.workflow_id = response.json()["id"]
                return
            outcome = f"{response.status_code} {response.text[:200]}"
            if response.status_code < 500:
                request.submit_error = outcome
                return
        except requests.RequestException as exc:
            outcome = repr(exc)
        if time.monotonic() > deadline:
            request.submit_error = outcome
            return
        time.sleep(1)  # the API answers 503 while PostgreSQL restarts; try again shortly


def submit_all(stack: Stack, key: str, plan_id: int, requests_: list[Request], rate: float) -> None:
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=16) as pool:
        for n, request in enumerate(requests_):
            # paced, not bursty: the chaos must meet workflows at every stage
            time.sleep(max(0.0, start + n / rate - time.monotonic()))
            pool.submit(submit, stack, key, plan_id, request, 300.0)


def kill_a_worker(stack: Stack, turn: int, chaos: Chaos) -> None:
    if turn % 2 == 0:
        pool = stack.pool_children()
        if pool:
            victim = random.choice(pool)
            os.kill(victim, signal.SIGKILL)
            chaos.kills.append(f"worker child {victim}")
            return
    victim_io = stack.child_of("worker-io")
    if victim_io:
        os.kill(victim_io, signal.SIGKILL)  # supervise.py starts it again
        chaos.kills.append(f"worker-io {victim_io}")


def run_chaos(
    stack: Stack, args: argparse.Namespace, window_s: float, stop: threading.Event, chaos: Chaos
) -> None:
    """Kills a worker every kill_every seconds while submissions go on; restarts Redis at a third
    of the submission window and PostgreSQL at two thirds."""
    start = time.monotonic()
    events: list[tuple[float, str]] = [(window_s / 3, "redis"), (2 * window_s / 3, "postgres")]
    next_kill, turn = start + args.kill_every, 0
    while not stop.is_set():
        now = time.monotonic()
        try:
            if events and now - start >= events[0][0]:
                _, what = events.pop(0)
                log(f"restarting {what}")
                (stack.redis if what == "redis" else stack.postgres).restart(args.down_s)
                chaos.restarts.append(f"{what} at {now - start:.0f}s")
                log(f"{what} is back")
            if now >= next_kill:
                kill_a_worker(stack, turn, chaos)
                turn, next_kill = turn + 1, now + args.kill_every
        except Exception as exc:  # a failed chaos action is reported, the campaign goes on
            chaos.errors.append(repr(exc))
        if not events and now - start > window_s:
            return
        stop.wait(0.5)


def status_counts(stack: Stack, ids: list[str]) -> Counter[str]:
    rows = stack.postgres.query(
        "orchestrator",
        "SELECT status, count(*) FROM workflows WHERE id::text = ANY(%s) GROUP BY 1",
        ids,
    )
    return Counter({str(status): int(n) for status, n in rows})


def wait_terminal(stack: Stack, ids: list[str], deadline_s: float) -> Counter[str]:
    deadline = time.monotonic() + deadline_s
    counts: Counter[str] = Counter()
    while time.monotonic() < deadline:
        with contextlib.suppress(psycopg2.Error):
            counts = status_counts(stack, ids)
            done = sum(counts[s] for s in TERMINAL)
            log(f"terminal {done}/{len(ids)}: {dict(counts)}")
            if done == len(ids):
                return counts
        time.sleep(10)
    return counts


# --------------------------------------------------------------------------- the checks


def duplicates(stack: Stack, state: dict[str, Any]) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    keys = Counter(ip["description"] for ip in state["netbox"]["ip_addresses"])
    keys.update(p.get("description") for p in state["netbox"]["prefixes"] if p.get("description"))
    found["netbox objects per idempotency key"] = [k for k, n in keys.items() if k and n > 1]
    addresses = Counter(ip["address"] for ip in state["netbox"]["ip_addresses"])
    found["netbox addresses allocated twice"] = [a for a, n in addresses.items() if n > 1]
    onos = state["onos"]
    ports = Counter(s["port_name"] for s in onos["programmed_subscribers"])
    ports.update(s["port_name"] for s in onos["pending_subscribers"])
    found["onos services per port"] = [p for p, n in ports.items() if n > 1]
    tags, pushes = [], []
    for device in state["genieacs"]["devices"]:
        if sum(tag.startswith("subscriber-") for tag in device["tags"]) > 1:
            tags.append(device["serial"])
        per_key = Counter(
            task.get("uniqueKey") for task in device["tasks"] if task.get("uniqueKey")
        )
        pushes += [f"{device['serial']} {k}" for k, n in per_key.items() if n > 1]
    found["genieacs subscriber tags per CPE"] = tags
    found["genieacs tasks per unique key"] = pushes
    found["radius rows per username and attribute"] = stack.postgres.query(
        "radius",
        "SELECT username, attribute, count(*) FROM radcheck GROUP BY 1, 2 HAVING count(*) > 1 "
        "UNION ALL SELECT username, groupname, count(*) FROM radusergroup GROUP BY 1, 2 "
        "HAVING count(*) > 1",
    )
    found["live subscribers per username"] = stack.postgres.query(
        "orchestrator",
        "SELECT username, count(*) FROM subscribers WHERE status <> 'terminated' "
        "GROUP BY 1 HAVING count(*) > 1",
    )
    found["workflows per username"] = stack.postgres.query(
        "orchestrator",
        "SELECT input->>'username', count(*) FROM workflows "
        "WHERE workflow_type = 'provision_subscriber' GROUP BY 1 HAVING count(*) > 1",
    )
    return {what: items for what, items in found.items() if items}


def still_there(stack: Stack, state: dict[str, Any], workflow: dict[str, Any], system: str) -> bool:
    """Whether ``system`` still holds anything of this workflow (as left_behind names it)."""
    wid, data = workflow["id"], workflow["input"]
    if system == "netbox":
        objects = state["netbox"]["ip_addresses"] + state["netbox"]["prefixes"]
        return any(str(o.get("description") or "").startswith(f"{wid}:") for o in objects)
    if system == "radius":
        rows = stack.postgres.query(
            "radius", "SELECT 1 FROM radcheck WHERE username = %s", data["username"]
        )
        return bool(rows)
    if system == "access":
        port = f"{data['onu_serial']}-1"
        onos = state["onos"]
        services = onos["programmed_subscribers"] + onos["pending_subscribers"]
        return any(s["port_name"] == port for s in services)
    if system == "genieacs":
        tag = f"subscriber-{data['subscriber_id']}"
        return any(
            tag in device["tags"]
            or any(str(t.get("uniqueKey", "")).startswith(f"{wid}:") for t in device["tasks"])
            or device["faults"]
            for device in state["genieacs"]["devices"]
            if device["serial"] == data.get("cpe_serial")
        )
    # our own database (customer, subscriber, billing) and anything unforeseen: assume it is
    # there rather than call a `failed` false on a guess
    return True


def false_failed(stack: Stack, state: dict[str, Any], ids: list[str]) -> list[str]:
    rows = stack.postgres.query(
        "orchestrator",
        "SELECT id::text, input, error FROM workflows WHERE status = 'failed' "
        "AND id::text = ANY(%s)",
        ids,
    )
    false = []
    for wid, data, error in rows:
        workflow = {"id": wid, "input": data}
        left = (error or {}).get("left_behind") or []
        log(f"failed {wid}: left_behind {json.dumps(left)[:600]}")
        if not any(still_there(stack, state, workflow, entry.get("system", "")) for entry in left):
            false.append(wid)
    return false


def reconcile(stack: Stack) -> tuple[int, dict[str, Any]]:
    result = stack.cli("reconcile", "--json", check=False)
    try:
        document = json.loads(result.stdout)
    except json.JSONDecodeError:
        document = {"stdout": result.stdout[-2000:], "stderr": result.stderr[-2000:]}
    return result.returncode, document


def rollback_causes(stack: Stack, planned: list[Request]) -> Counter[str]:
    """Why the rolled-back workflows failed: the bound-to-fail ones by design, the others by
    the first words of their error (an open circuit breaker, a step out of attempts...)."""
    doom = {r.workflow_id: r.doomed for r in planned}
    rows = stack.postgres.query(
        "orchestrator",
        "SELECT id::text, error->>'message' FROM workflows WHERE status = 'rolled_back' "
        "AND id::text = ANY(%s)",
        list(doom),
    )
    causes: Counter[str] = Counter()
    for wid, message in rows:
        text = str(message or "")
        if doom.get(wid):
            causes[f"bound to fail ({doom[wid]})"] += 1
        elif "circuit open" in text:
            causes[f"circuit open: {text.split(':', 1)[0]}"] += 1
        else:
            causes[text[:60]] += 1
    return causes


def event_counts(stack: Stack) -> dict[str, int]:
    rows = stack.postgres.query(
        "orchestrator",
        "SELECT kind, count(*) FROM workflow_events WHERE kind IN ('sweeper_redrive', "
        "'sweeper_redrive_compensation', 'step_retry_scheduled', 'step_deferred', "
        "'compensation_deferred', 'compensation_started', "
        "'step_failed', 'compensation_failed') GROUP BY 1 ORDER BY 1",
    )
    return {str(kind): int(n) for kind, n in rows}


# --------------------------------------------------------------------------- the run


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workflows", type=int, default=200)
    parser.add_argument("--rate", type=float, default=3.0, help="submissions per second")
    parser.add_argument("--fault-share", type=float, default=0.05)
    parser.add_argument("--doomed-share", type=float, default=0.1)
    parser.add_argument("--offline-share", type=float, default=0.2)
    parser.add_argument("--kill-every", type=float, default=20.0)
    parser.add_argument("--hold-s", type=float, default=2.0, help="how long a timeout holds")
    parser.add_argument("--down-s", type=float, default=3.0, help="Redis/PostgreSQL outage")
    parser.add_argument("--deadline", type=float, default=1800.0, help="wait at most this long")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL data directory")
    return parser.parse_args(argv)


@contextlib.contextmanager
def running_stack(args: argparse.Namespace) -> Iterator[Stack]:
    work = Path(tempfile.mkdtemp(prefix="chaos-"))
    work.chmod(0o755)  # the postgres user must reach its data directory below
    stack = Stack(work, args.workflows)
    log(f"stack in {work}")
    try:
        stack.start()
        yield stack
    finally:
        log("stopping the stack")
        stack.stop()
        if not args.keep:
            shutil.rmtree(stack.postgres.base, ignore_errors=True)
        log(f"logs in {work}")


def campaign(stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    run = f"{args.seed:x}"
    planned = plan_requests(args, run)
    prepare_world(stack, planned, args)
    key, plan_id = admin_setup(stack)
    rules = arm_faults(stack, args.fault_share, args.hold_s, args.seed * 1000)
    log(f"{rules} fault rules at {args.fault_share:.0%} in all; submitting {len(planned)}")
    window_s = len(planned) / args.rate
    chaos, stop = Chaos(), threading.Event()
    chaos_thread = threading.Thread(
        target=run_chaos, args=(stack, args, window_s, stop, chaos), daemon=True
    )
    started = time.monotonic()
    chaos_thread.start()
    submit_all(stack, key, plan_id, planned, args.rate)
    chaos_thread.join()  # both restarts happen before we only wait
    submitted = time.monotonic() - started
    ids = [r.workflow_id for r in planned if r.workflow_id]
    log(f"submitted {len(ids)} in {submitted:.0f}s; waiting for every workflow to end")
    counts = wait_terminal(stack, ids, args.deadline)
    elapsed = time.monotonic() - started
    stop.set()
    hits: Counter[str] = Counter()
    for fault in control(stack, "GET", "faults"):
        hits[f"{fault['system']} {fault['mode']}"] += fault["hits"]
    control(stack, "DELETE", "faults")  # reconcile must see every system, not 5 % of errors
    state = control(stack, "GET", "state")
    exit_code, report = reconcile(stack)
    calls = {system: data["total"] for system, data in state["counters"].items() if data["total"]}
    return {
        "workflows": len(planned),
        "accepted": len(ids),
        "submit_errors": [f"{r.username}: {r.submit_error}" for r in planned if r.submit_error],
        "doomed": Counter(r.doomed for r in planned if r.doomed),
        "offline_cpes": sum(r.offline for r in planned),
        "seconds": elapsed,
        "counts": counts,
        "terminal": sum(counts[s] for s in TERMINAL),
        "doomed_completed": completed_doomed(stack, planned),  # (wrong ones, queued pushes)
        "events": event_counts(stack),
        "rollback_causes": rollback_causes(stack, planned),
        "calls": calls,
        "fault_hits": hits,
        "reconcile_exit": exit_code,
        "reconcile": report,
        "duplicates": duplicates(stack, state),
        "false_failed": false_failed(stack, state, ids),
        "chaos": chaos,
    }


def completed_doomed(stack: Stack, planned: list[Request]) -> tuple[list[str], int]:
    """Doomed requests that completed: wrong for an unknown ONU (activation must fail), and
    for a refusing CPE unless its push was only queued (a faulted connection request leaves it
    for the next inform, and the step rightly completes); returns those and the queued ones."""
    ids = [r.workflow_id for r in planned if r.doomed and r.workflow_id]
    doom = {r.workflow_id: r.doomed for r in planned}
    rows = stack.postgres.query(
        "orchestrator",
        "SELECT w.id::text, s.output FROM workflows w JOIN workflow_steps s "
        "ON s.workflow_id = w.id AND s.name = 'configure_cpe' "
        "WHERE w.status = 'completed' AND w.id::text = ANY(%s)",
        ids,
    )
    wrong = [
        wid
        for wid, output in rows
        if doom[wid] == "unknown_onu" or (output or {}).get("applied") is not False
    ]
    return wrong, len(rows) - len(wrong)


def report(result: dict[str, Any]) -> bool:
    n, terminal, counts = result["accepted"], result["terminal"], result["counts"]
    chaos: Chaos = result["chaos"]
    orphans = result["reconcile"].get("orphans", [])
    missing = result["reconcile"].get("missing", [])
    checks = {
        "every request accepted": not result["submit_errors"],
        "100 % terminal": n > 0 and terminal == n,
        "reconcile clean": result["reconcile_exit"] == 0,
        "no duplicates": not result["duplicates"],
        "no false failed": not result["false_failed"],
        "no doomed request completed": not result["doomed_completed"][0],
    }
    print()
    print(f"chaos campaign: {result['workflows']} provisionings, {result['seconds']:.0f} s")
    print(f"  accepted      {n} (submit errors: {len(result['submit_errors'])})")
    print(f"  terminal      {terminal}/{n} = {100 * terminal / max(n, 1):.1f} %")
    print(f"  by status     {dict(sorted(counts.items()))}")
    print(
        f"  bound to fail {dict(result['doomed'])} ({result['doomed_completed'][1]} refusing "
        f"CPEs completed with the push queued); CPEs offline {result['offline_cpes']}"
    )
    print(f"  events        {result['events']}")
    print(f"  rolled back   {dict(result['rollback_causes'].most_common(8))}")
    calls, hits = sum(result["calls"].values()), sum(result["fault_hits"].values())
    print(f"  calls         {result['calls']}")
    print(
        f"  faults        {hits} of {calls} calls = {100 * hits / max(calls, 1):.1f} %: "
        f"{dict(result['fault_hits'])}"
    )
    print(f"  chaos         {len(chaos.kills)} worker kills, restarts: {chaos.restarts}")
    print(
        f"  reconcile     exit {result['reconcile_exit']}, {len(orphans)} orphans, "
        f"{len(missing)} missing"
    )
    print(f"  duplicates    {sum(len(v) for v in result['duplicates'].values())}")
    print(f"  false failed  {len(result['false_failed'])}")
    for error in result["submit_errors"][:10] + chaos.errors:
        print(f"    ! {error}")
    for what, items in result["duplicates"].items():
        print(f"    duplicate {what}: {items[:10]}")
    for finding in (orphans + missing)[:20]:
        print(f"    reconcile: {json.dumps(finding)[:300]}")
    if result["reconcile_exit"] not in (0, 1):
        print(f"    reconcile: {json.dumps(result['reconcile'])[:1000]}")
    for wid in result["false_failed"] + result["doomed_completed"][0]:
        print(f"    workflow {wid}")
    for name, ok in checks.items():
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")
    return all(checks.values())


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    with running_stack(args) as stack:
        result = campaign(stack, args)
    return 0 if report(result) else 1


if __name__ == "__main__":
    sys.exit(main())
