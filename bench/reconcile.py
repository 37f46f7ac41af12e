"""The hourly reconciliation at a network's scale: one check's time and memory over N live
subscribers, and where the time goes.

    ORCHESTRATOR_FAULT_INJECTION=1 make run               # one terminal (or a stack already up)
    # provision one subscriber with a CPE through the API (README, "Provision a subscriber")
    .venv/bin/python bench/reconcile.py --subscribers 2000
    .venv/bin/python bench/reconcile.py --subscribers 10000 [--profile var/reconcile.prof]
                                                          [--tracemalloc]

Adds live subscribers until the database holds ``--subscribers`` of them (idempotent in effect:
it only ever adds up to the total asked), each a copy of the newest completed provisioning
(its workflow and step rows under new ids, the template's ids, username and serials replaced
wherever they appear), with everything it holds made where the check looks for it: a NetBox
address and delegated prefix carrying its key, a RADIUS account with its ownership row, an ONU
whose UNI is programmed in ONOS, a CPE in GenieACS with its tag, and active billing. Rows are
inserted directly and the simulators are filled through their APIs, so no workflow runs.

Then it runs ``orchestrator.reconcile.check.check()`` in this process and prints its wall time,
the process's peak RSS growth during it (VmHWM, reset first), the time of each of its phases,
and the findings by kind and system (a clean stack has none: every subscriber's resources are
where they should be). ``--tracemalloc`` runs it again under tracemalloc for the peak of Python
allocations (slower); ``--profile`` writes a cProfile of one more run. Talks to 127.0.0.1 only,
with the stack's own settings (its .env, or the environment).
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import json
import sys
import time
import tracemalloc
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests
from sqlalchemy import create_engine, func, insert, select, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.history import discover_onu  # noqa: E402
from orchestrator.config import get_settings  # noqa: E402
from orchestrator.db import transaction  # noqa: E402
from orchestrator.models import (  # noqa: E402
    BillingService,
    Subscriber,
    SubscriberStatus,
    Workflow,
    WorkflowStatus,
    WorkflowStep,
)
from orchestrator.reconcile import check as check_module  # noqa: E402

#: Subscribers made per round: one NetBox list POST each for addresses and prefixes, one
#: transaction of rows.
BATCH = 500
#: The bench's own IPv4 parent: big enough for 10^5 subscribers, apart from the demo's /24s.
POOL_V4 = "100.96.0.0/15"


# -- the template ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Template:
    workflow: dict[str, Any]
    steps: list[dict[str, Any]]
    subscriber: dict[str, Any]
    billing: dict[str, Any]

    @property
    def onos(self) -> dict[str, Any]:
        return self.subscriber["resources"]["onos"]

    @property
    def ipv6_pool(self) -> str | None:
        intent = next((s["intent"] for s in self.steps if s["name"] == "allocate_ipv6_prefix"), {})
        return (intent or {}).get("delegation_pool")

    def replacements(self, new: Clone) -> dict[str, str]:
        """The template's identifying strings, and what stands for each in ``new``."""
        sub = self.subscriber
        return {
            str(self.workflow["id"]): str(new.workflow_id),
            str(sub["id"]): str(new.subscriber_id),
            str(self.billing["id"]): str(new.billing_id),
            sub["username"]: new.username,
            sub["onu_serial"]: new.onu_serial,
            sub["cpe_serial"]: new.cpe_serial,
        }


def load_template() -> Template:
    with transaction() as session:
        row = session.execute(
            select(Subscriber.__table__)
            .join(Workflow, Workflow.id == Subscriber.workflow_id)
            .where(
                Workflow.status == WorkflowStatus.COMPLETED,
                Subscriber.status == SubscriberStatus.ACTIVE,
                Subscriber.cpe_serial.is_not(None),
                Subscriber.onu_serial.is_not(None),
            )
            .order_by(Workflow.finished_at.desc())
            .limit(1)
        ).first()
        if row is None:
            raise SystemExit("no active subscriber with a CPE to copy: provision one first")
        subscriber = dict(row._mapping)
        workflow_id = subscriber["workflow_id"]
        workflow = session.execute(
            select(Workflow.__table__).where(Workflow.id == workflow_id)
        ).one()
        steps = session.execute(
            select(WorkflowStep.__table__).where(WorkflowStep.workflow_id == workflow_id)
        )
        billing = session.execute(
            select(BillingService.__table__).where(BillingService.workflow_id == workflow_id)
        ).one()
        return Template(
            dict(workflow._mapping),
            [dict(s._mapping) for s in steps],
            subscriber,
            dict(billing._mapping),
        )


def rewrite(value: Any, replacements: dict[str, str]) -> Any:
    """``value`` with every replacement made inside its strings (JSON values and columns)."""
    if isinstance(value, str):
        for old, new in replacements.items():
            value = value.replace(old, new)
        return value
    if isinstance(value, uuid.UUID):
        return uuid.UUID(rewrite(str(value), replacements))
    if isinstance(value, dict):
        return {k: rewrite(v, replacements) for k, v in value.items()}
    if isinstance(value, list):
        return [rewrite(v, replacements) for v in value]
    return value


# -- one new subscriber, in the systems first ------------------------------------------------


@dataclass
class Clone:
    n: int
    run: str
    workflow_id: uuid.UUID
    subscriber_id: uuid.UUID
    billing_id: uuid.UUID
    address: str = ""
    ip_id: int = 0
    prefix: str = ""
    prefix_id: int = 0

    @classmethod
    def new(cls, n: int, run: str) -> Clone:
        return cls(n, run, uuid.uuid4(), uuid.uuid4(), uuid.uuid4())

    @property
    def username(self) -> str:
        return f"rbench-{self.run}-{self.n:06d}"

    @property
    def onu_serial(self) -> str:
        return f"RB{self.run}{self.n:06X}"

    @property
    def cpe_serial(self) -> str:
        return f"RBCPE{self.run}{self.n:06X}"

    def key(self, step: str) -> str:
        return f"{self.workflow_id}:{step}"


class Systems:
    """The simulators and the RADIUS database, as the stack's settings name them."""

    def __init__(self, sim: str) -> None:
        self.settings = get_settings()
        self.sim = sim
        self.http = requests.Session()
        self.netbox = self.settings.netbox_url.rstrip("/")
        self.radius = create_engine(self.settings.radius_database_url)

    def netbox_call(self, path: str, body: Any) -> Any:
        response = self.http.post(
            f"{self.netbox}/api/ipam/{path}",
            json=body,
            headers={"Authorization": f"Token {self.settings.netbox_token}"},
            timeout=120,
        )
        response.raise_for_status()
        return response.json()

    def prefix_id(self, prefix: str) -> int:
        response = self.http.get(
            f"{self.netbox}/api/ipam/prefixes/",
            params={"prefix": prefix},
            headers={"Authorization": f"Token {self.settings.netbox_token}"},
            timeout=30,
        )
        response.raise_for_status()
        results = response.json()["results"]
        if results:
            return int(results[0]["id"])
        made = self.http.post(f"{self.sim}/_sim/prefixes", json={"prefix": prefix}, timeout=30)
        made.raise_for_status()
        return int(made.json()["id"])

    def allocate(self, clones: list[Clone], template: Template) -> None:
        """Each clone's address and delegated prefix, keyed as its steps key them: two calls."""
        v4 = self.prefix_id(POOL_V4)
        made = self.netbox_call(
            f"prefixes/{v4}/available-ips/",
            [{"description": c.key("allocate_ip"), "status": "active"} for c in clones],
        )
        for clone, address in zip(clones, made, strict=True):
            clone.address, clone.ip_id = address["address"], int(address["id"])
        pool = template.ipv6_pool
        if pool is None:
            return
        length = template.subscriber["resources"]["ipv6"]["delegated_prefix"].split("/")[1]
        made = self.netbox_call(
            f"prefixes/{self.prefix_id(pool)}/available-prefixes/",
            [
                {"prefix_length": int(length), "description": c.key("allocate_ipv6_prefix")}
                for c in clones
            ],
        )
        for clone, prefix in zip(clones, made, strict=True):
            clone.prefix, clone.prefix_id = prefix["prefix"], int(prefix["id"])

    def access_and_cpe(self, clone: Clone, template: Template, subscriber_tag: str) -> None:
        """Its ONU discovered and its service programmed in ONOS; its CPE known and tagged."""
        discover_onu(self.http, self.sim, clone.onu_serial)
        onos = template.onos
        response = self.http.post(
            f"{self.settings.onos_url.rstrip('/')}/onos/olt/oltapp/services/"
            f"{clone.onu_serial}-1/{onos['s_tag']}/{onos['c_tag']}/{onos['tp_id']}",
            auth=(self.settings.onos_user, self.settings.onos_password),
            timeout=30,
        )
        if response.status_code != 200:
            raise SystemExit(f"ONOS refused {clone.onu_serial}: {response.status_code}")
        cpe = self.http.post(f"{self.sim}/_sim/cpes", json={"serial": clone.cpe_serial}, timeout=30)
        cpe.raise_for_status()
        device = quote(cpe.json()["id"], safe="")
        tagged = self.http.post(
            f"{self.settings.genieacs_url.rstrip('/')}/devices/{device}/tags/{subscriber_tag}",
            timeout=30,
        )
        tagged.raise_for_status()

    def radius_accounts(self, clones: list[Clone], template: Template) -> None:
        group = template.subscriber["resources"]["radius"]["group"]
        with self.radius.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO orchestrator_radius_account (username, workflow_id) "
                    "VALUES (:u, :w)"
                ),
                [{"u": c.username, "w": str(c.workflow_id)} for c in clones],
            )
            conn.execute(
                text(
                    "INSERT INTO radcheck (username, attribute, op, value) "
                    "VALUES (:u, 'Cleartext-Password', ':=', 'not-a-real-password')"
                ),
                [{"u": c.username} for c in clones],
            )
            conn.execute(
                text(
                    "INSERT INTO radreply (username, attribute, op, value) "
                    "VALUES (:u, 'Framed-IP-Address', ':=', :ip)"
                ),
                [{"u": c.username, "ip": c.address.split("/")[0]} for c in clones],
            )
            conn.execute(
                text("INSERT INTO radusergroup (username, groupname, priority) VALUES (:u, :g, 1)"),
                [{"u": c.username, "g": group} for c in clones],
            )


# -- the rows --------------------------------------------------------------------------------


def clone_rows(template: Template, clone: Clone) -> dict[str, list[dict[str, Any]]]:
    replacements = template.replacements(clone)
    workflow = rewrite(template.workflow, replacements)
    workflow["idempotency_key"] = None
    steps = []
    for step in template.steps:
        row = rewrite({k: v for k, v in step.items() if k != "id"}, replacements)
        steps.append(row)
    subscriber = rewrite(template.subscriber, replacements)
    resources = subscriber["resources"]
    resources["netbox"] = {
        **resources.get("netbox", {}),
        "address": clone.address,
        "ip_id": clone.ip_id,
    }
    resources["ipv4"] = {"address": clone.address.split("/")[0]}
    subscriber["ipv4_address"] = clone.address.split("/")[0]
    if clone.prefix:
        resources["ipv6"] = {
            **resources["ipv6"],
            "delegated_prefix": clone.prefix,
            "prefix_id": clone.prefix_id,
        }
    billing = rewrite(template.billing, replacements)
    return {
        "workflow": [workflow],
        "steps": steps,
        "subscriber": [subscriber],
        "billing": [billing],
    }


def insert_rows(rows: list[dict[str, list[dict[str, Any]]]]) -> None:
    """Workflows before their steps and subscribers, subscribers before their billing."""
    with transaction() as session:
        for table, part in (
            (Workflow.__table__, "workflow"),
            (WorkflowStep.__table__, "steps"),
            (Subscriber.__table__, "subscriber"),
            (BillingService.__table__, "billing"),
        ):
            session.execute(insert(table), [r for row in rows for r in row[part]])


def live_subscribers() -> int:
    with transaction() as session:
        return session.scalar(
            select(func.count())
            .select_from(Subscriber)
            .where(Subscriber.status != SubscriberStatus.TERMINATED)
        )


def add_subscribers(total: int, sim: str) -> None:
    have = live_subscribers()
    needed = max(total - have, 0)
    print(f"{have} live subscribers now; adding {needed}")
    if not needed:
        return
    template = load_template()
    systems = Systems(sim)
    run = uuid.uuid4().hex[:4].upper()
    from orchestrator.steps.genieacs import subscriber_tag

    with ThreadPoolExecutor(16) as pool:
        for start in range(0, needed, BATCH):
            began = time.monotonic()
            clones = [Clone.new(n, run) for n in range(start, min(start + BATCH, needed))]
            systems.allocate(clones, template)
            list(
                pool.map(
                    lambda c: systems.access_and_cpe(c, template, subscriber_tag(c.subscriber_id)),
                    clones,
                )
            )
            systems.radius_accounts(clones, template)
            insert_rows([clone_rows(template, c) for c in clones])
            done = start + len(clones)
            print(f"  {done}/{needed} added ({time.monotonic() - began:.1f} s)")
    with transaction() as session:
        session.execute(text("ANALYZE workflows, workflow_steps, subscribers, billing_services"))


# -- the measurement -------------------------------------------------------------------------


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_peak_rss() -> None:
    # "5" resets VmHWM to the current RSS (proc(5), /proc/pid/clear_refs)
    Path("/proc/self/clear_refs").write_text("5")


class PhaseTimer:
    """Wall time of each named function the check calls, patched in place for one run."""

    def __init__(self, targets: list[tuple[Any, str]]) -> None:
        self.targets = [(owner, name) for owner, name in targets if hasattr(owner, name)]
        self.seconds: dict[str, float] = {}

    def _wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - began

        return timed

    def __enter__(self) -> PhaseTimer:
        self.saved = [(owner, name, getattr(owner, name)) for owner, name in self.targets]
        for owner, name, fn in self.saved:
            setattr(owner, name, self._wrap(name, fn))
        return self

    def __exit__(self, *_: object) -> None:
        for owner, name, fn in self.saved:
            setattr(owner, name, fn)


def phases() -> list[tuple[Any, str]]:
    from orchestrator.reconcile import inventory

    readers = [
        (inventory.NetBoxInventory, "marked_addresses"),
        (inventory.NetBoxInventory, "marked_prefixes"),
        (inventory.RadiusInventory, "ownership"),
        (inventory.RadiusInventory, "with_password"),
        (inventory.OnosInventory, "programmed_on"),
        (inventory.GenieAcsInventory, "tagged_devices"),
        (inventory.GenieAcsInventory, "devices_by_serial"),
        (inventory.GenieAcsInventory, "our_tasks"),
    ]
    steps = ["read_scope", "read_systems", "read_ownership", "judge"]
    return [(check_module, name) for name in steps] + readers


def measure() -> None:
    rss = _status_kib("VmRSS")
    _reset_peak_rss()
    with PhaseTimer(phases()) as timer:
        began = time.perf_counter()
        report = check_module.check()
        wall = time.perf_counter() - began
    peak = _status_kib("VmHWM")
    print(f"check: {wall:.1f} s, peak RSS +{(peak - rss) / 1024:.0f} MiB (from {rss / 1024:.0f})")
    for name, seconds in timer.seconds.items():
        print(f"  {name:20} {seconds:7.2f} s")
    counts = {f"{kind}:{system}": n for (kind, system), n in sorted(report.counts().items())}
    print(f"findings: {json.dumps(counts)}; unavailable: {list(report.unavailable)}")


def measure_allocations() -> None:
    tracemalloc.start()
    began = time.perf_counter()
    check_module.check()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    wall = time.perf_counter() - began
    print(f"under tracemalloc: {wall:.1f} s, peak Python allocations {peak / 2**20:.0f} MiB")


def profile(path: str) -> None:
    profiler = cProfile.Profile()
    profiler.runcall(check_module.check)
    profiler.dump_stats(path)
    print(f"profile written to {path} (python -m pstats {path})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=2000)
    parser.add_argument("--sim", default="http://127.0.0.1:8100")
    parser.add_argument("--tracemalloc", action="store_true")
    parser.add_argument("--profile", metavar="PATH")
    args = parser.parse_args()
    add_subscribers(args.subscribers, args.sim)
    print(f"{live_subscribers()} live subscribers")
    measure()
    if args.tracemalloc:
        measure_allocations()
    if args.profile:
        profile(args.profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
