"""A single provisioning's end-to-end time under the seed's latency profile, next to the
critical path of its graph and to a bare Celery chain of the same steps, in one invocation.

    ORCHESTRATOR_FAULT_INJECTION=1 make run            # one terminal: the stack
    .venv/bin/python bench/critical_path.py --runs 5   # another: this benchmark

The profile (ms per step: customer 100, subscriber 100, RADIUS 500, NetBox 300, ONOS 2000,
GenieACS 1000, billing 100) is played where each system is met: as simulator latency for
NetBox, ONOS and GenieACS (on the wire), and as an added delay for the steps on our own
database and FreeRADIUS's SQL (the fault-injection hook, hence the setting above). The bare
baseline runs the same seven sleeps as one Celery chain on a worker this script starts.
Requests go to 127.0.0.1 only, bounded in number and time.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path

import redis
import requests
from celery import chain

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import baseline  # noqa: E402
from bench.provision_throughput import _api_key  # noqa: E402
from orchestrator import faults  # noqa: E402
from orchestrator.workflows.provision_subscriber import DEFINITION  # noqa: E402

#: The seed's latency profile, seconds per step.
PROFILE = {
    "create_customer": 0.1,
    "create_subscriber": 0.1,
    "create_radius_account": 0.5,
    "allocate_ip": 0.3,
    "activate_onu": 2.0,
    "configure_cpe": 1.0,
    "create_billing_service": 0.1,
}
#: Where the network part of the profile is played: simulator latency rules, as (system,
#: the requests' target, how many such requests the step makes). configure_cpe makes two
#: (the push, then the connection request, one target for the simulator), so each is given
#: half of the step's time.
ON_THE_WIRE = {
    "allocate_ip": ("netbox", "^POST /api/ipam/prefixes/.*/available-ips/", 1),
    "activate_onu": ("onos", "^POST /onos/olt/oltapp/services/", 1),
    "configure_cpe": ("genieacs", "^POST /devices/.*/tasks", 2),
}


def latency_rules(profile: dict[str, float]) -> list[dict[str, object]]:
    """The simulator latency rules that play ``profile``'s network part."""
    return [
        {"system": system, "match": match, "ms": profile[step] * 1000 / calls}
        for step, (system, match, calls) in ON_THE_WIRE.items()
    ]


def critical_path(weights: dict[str, float]) -> tuple[float, list[str]]:
    """The longest path through the graph, weighted by each step's latency."""
    best: dict[str, tuple[float, list[str]]] = {}
    for step in DEFINITION.steps:  # declaration order is a topological order
        before = max((best[d] for d in step.depends_on), default=(0.0, []), key=lambda b: b[0])
        best[step.name] = (before[0] + weights.get(step.name, 0.0), [*before[1], step.name])
    return max(best.values(), key=lambda b: b[0])


def _seconds(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def run_ours(args: argparse.Namespace) -> list[float]:
    session = requests.Session()
    headers = {"Authorization": f"Bearer {_api_key()}"}
    for rule in latency_rules(PROFILE):
        session.post(f"{args.sim}/_sim/latency", json=rule, timeout=10).raise_for_status()
    faults.set_delays({s: v for s, v in PROFILE.items() if s not in ON_THE_WIRE})
    times = []
    try:
        for n in range(args.runs):
            tag = secrets.token_hex(3).upper()
            onu, cpe = f"CRIT{tag}{n:02X}", f"CRIT{tag}{n:02d}"
            session.post(f"{args.sim}/_sim/onus", json={"serial": onu}, timeout=10)
            session.post(f"{args.sim}/_sim/cpes", json={"serial": cpe}, timeout=10)
            body = {
                "customer": {"first_name": "Crit", "last_name": tag, "email": "c@example.net"},
                "service_plan_id": args.plan_id,
                "service_address": "1 Critical Path",
                "onu_serial": onu,
                "cpe_serial": cpe,
            }
            response = session.post(
                f"{args.api}/api/v1/orchestration/provision-subscriber",
                json=body,
                headers=headers,
                timeout=30,
            )
            response.raise_for_status()
            url = f"{args.api}/api/v1/orchestration/workflows/{response.json()['id']}"
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                detail = session.get(url, headers=headers, timeout=30).json()
                if detail["status"] not in ("pending", "running"):
                    break
                time.sleep(0.05)
            if detail["status"] != "completed":
                raise SystemExit(f"run {n}: workflow ended {detail['status']}: {detail['error']}")
            times.append(_seconds(detail["created_at"], detail["finished_at"]))
    finally:
        faults.set_delays({})
        session.delete(f"{args.sim}/_sim/latency", timeout=10)
    return times


def run_baseline(args: argparse.Namespace) -> list[float]:
    """The same seven sleeps as one bare Celery chain (each waits for the one before)."""
    worker = subprocess.Popen(  # noqa: S603 - our own worker, fixed arguments
        [
            str(ROOT / ".venv/bin/celery"),
            "-A",
            "bench.baseline",
            "worker",
            "-Q",
            baseline.QUEUE,
            "-c",
            "4",
            "--without-mingle",
            "--without-gossip",
            "--loglevel",
            "WARNING",
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    store = redis.Redis.from_url(baseline.BROKER)
    times = []
    try:
        deadline = time.monotonic() + 60
        while not baseline.app.control.ping(timeout=0.5):
            if time.monotonic() > deadline or worker.poll() is not None:
                raise SystemExit("the baseline worker did not start")
        for _ in range(args.runs):
            key = f"bench:chain:{uuid.uuid4()}"
            started = time.time()
            steps = [
                baseline.step.si(PROFILE[s.name]) for s in DEFINITION.steps if s.name in PROFILE
            ]
            chain(*steps, baseline.done.si(key)).apply_async()
            while not store.exists(key):
                if time.time() - started > 60:
                    raise SystemExit("the baseline chain did not finish")
                time.sleep(0.01)
            times.append(float(store.get(key)) - started)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--plan-id", type=int, default=1)
    parser.add_argument("--api", default="http://127.0.0.1:8000")
    parser.add_argument("--sim", default="http://127.0.0.1:8100")
    args = parser.parse_args()

    sequential = sum(PROFILE.values())
    critical, path = critical_path(PROFILE)
    base = run_baseline(args)
    ours = run_ours(args)
    print(f"latency profile (s):       {PROFILE}")
    print(f"sum of the steps:          {sequential:.2f} s  (one after another)")
    print(f"critical path:             {critical:.2f} s  ({' -> '.join(path)})")
    print(
        f"bare Celery chain:         p50 {statistics.median(base):.2f} s  "
        f"(min {min(base):.2f}, max {max(base):.2f}, n={len(base)})"
    )
    print(
        f"this orchestrator:         p50 {statistics.median(ours):.2f} s  "
        f"(min {min(ours):.2f}, max {max(ours):.2f}, n={len(ours)})"
    )
    overhead = statistics.median(ours) - critical
    print(f"over the critical path:    {overhead * 1000:.0f} ms at p50 (goal: at most 100 ms)")
    speedup = statistics.median(base) / statistics.median(ours)
    print(f"against the bare chain:    {speedup:.2f}x as fast")
    return 0


if __name__ == "__main__":
    sys.exit(main())
