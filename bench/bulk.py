"""A bulk job against a running stack, side by side with bare Celery chains of the same shape.

    ORCHESTRATOR_FAULT_INJECTION=1 make run                           # one terminal
    .venv/bin/python bench/bulk.py --rows 1000 --profile instant      # another
    .venv/bin/python bench/bulk.py --rows 10000 --profile seed        # the night's campaign

In one invocation, on the same machine at the same time:

1. the bare baseline: ``--rows`` Celery chains of the same seven steps (sleeps of the profile's
   latencies, nothing else) submitted at once to a prefork worker (-c 4, acks_late, like ours),
   timed to the last one's end;
2. a portal request's latency with nothing else running (``--portal`` requests, one at a time);
3. this orchestrator: one bulk job of ``--rows`` rows (ONUs and CPEs discovered first), timed
   from its start to its last row, with p50/p95 of each row's own time (its workflow's start to
   its end), the worker processes' peak RSS, and ``--portal`` requests submitted while the job
   runs, timed each.

Profiles: ``instant`` (the simulators answer at once) and ``seed`` (customer 100, subscriber
100, RADIUS 500, NetBox 300, ONOS 2000, GenieACS 1000, billing 100 ms, played as in
bench/critical_path.py). Requests go to 127.0.0.1 only, bounded in number and time.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import redis
import requests
from celery import chain

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import baseline  # noqa: E402
from bench.critical_path import ON_THE_WIRE, PROFILE, latency_rules  # noqa: E402
from bench.provision_throughput import _api_key, _percentile  # noqa: E402
from orchestrator import faults  # noqa: E402

TERMINAL = {"completed", "rolled_back", "compensated", "failed"}
BENCH_POOL = "10.64.0.0/18"
BENCH_PLAN = {
    "name": "bench-bulk",
    "download_mbps": 100,
    "upload_mbps": 100,
    "radius_group": "bench-bulk",
    "ipv4_prefix": BENCH_POOL,
    "s_tag": 100,
    "c_tag": 200,
    "tech_profile_id": 64,
    "ipv6_delegation_pool": "2001:db8:100::/40",
    "ipv6_delegated_length": 56,
}


#: The Procfile's workers by their --hostname (a test run's workers, the supervisor around each
#: worker and the baseline's worker are not the stack's and are not counted).
STACK_WORKERS = (b"--hostname worker@", b"--hostname io@")


def _worker_rss_mb() -> dict[int, float]:
    """The resident memory (MiB) of each of the stack's Celery worker processes (main and
    pool children, which share their parent's command line), by pid."""
    sizes = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            if b"supervise.py" in cmdline or not any(w in cmdline for w in STACK_WORKERS):
                continue
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    sizes[int(pid)] = int(line.split()[1]) / 1024
        except OSError:
            continue
    return sizes


class RssSampler(threading.Thread):
    """The workers' total RSS before, at its peak and after; and the largest process, to tell
    growth spread over the workers from one process that grew."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.first = sum(_worker_rss_mb().values())
        self.peak = self.first
        self.last = self.first
        self.largest = 0.0
        self._halt = threading.Event()

    def _sample(self) -> None:
        sizes = _worker_rss_mb()
        self.last = sum(sizes.values())
        self.peak = max(self.peak, self.last)
        self.largest = max(self.largest, *sizes.values(), 0.0)

    def run(self) -> None:
        while not self._halt.wait(1.0):
            self._sample()

    def stop(self) -> None:
        self._halt.set()
        self.join()
        self._sample()


#: Who the machine's CPU goes to during the job, by command line (the first match names it).
CPU_USERS = (
    ("prefork worker", (b"--hostname worker@",)),
    ("thread worker", (b"--hostname io@",)),
    ("PostgreSQL", (b"postgres",)),
    ("Redis", (b"redis-server",)),
    ("Flower", (b"flower",)),
    ("gunicorn", (b"gunicorn",)),
    ("simulators", (b"orchestrator-simulators",)),
    ("FreeRADIUS", (b"freeradius", b"radiusd")),
)
_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds() -> dict[str, float]:
    """CPU seconds used so far by each of CPU_USERS: every process's own time and that of its
    children that ended (a prefork child replaced, a PostgreSQL backend closed)."""
    used: dict[str, float] = dict.fromkeys((name for name, _ in CPU_USERS), 0.0)
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            stat = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if b"supervise.py" in cmdline:
            continue
        for name, needles in CPU_USERS:
            if any(needle in cmdline for needle in needles):
                # utime, stime, cutime, cstime: fields 14-17, 12-15 after the command's ")"
                used[name] += sum(int(v) for v in stat[11:15]) / _TICKS
                break
    return used


def run_baseline(rows: int, profile: dict[str, float]) -> float:
    """Seconds for ``rows`` bare chains of the profile's sleeps, all submitted at once."""
    worker = subprocess.Popen(  # noqa: S603 - our own worker, fixed arguments
        [
            str(ROOT / ".venv/bin/celery"),
            *("-A", "bench.baseline", "worker", "-Q", baseline.QUEUE, "-c", "4"),
            *("--without-mingle", "--without-gossip", "--loglevel", "WARNING"),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    store = redis.Redis.from_url(baseline.BROKER)
    try:
        deadline = time.monotonic() + 60
        while not baseline.app.control.ping(timeout=0.5):
            if time.monotonic() > deadline or worker.poll() is not None:
                raise SystemExit("the baseline worker did not start")
        prefix = f"bench:bulk:{uuid.uuid4()}"
        started = time.time()
        for n in range(rows):
            sleeps = [baseline.step.si(seconds) for seconds in profile.values()]
            chain(*sleeps, baseline.done.si(f"{prefix}:{n}")).apply_async()
        while len(store.keys(f"{prefix}:*")) < rows:
            if time.time() - started > 3600:
                raise SystemExit("the baseline chains did not finish in an hour")
            time.sleep(0.2)
        ends = [float(v) for v in store.mget(store.keys(f"{prefix}:*"))]
        return max(ends) - started
    finally:
        worker.terminate()
        worker.wait(timeout=60)


class Stack:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.http = requests.Session()
        self._olt_lock = threading.Lock()
        self.headers = {"Authorization": f"Bearer {_api_key()}"}

    def bench_plan(self) -> int:
        """A plan of our own on a pool big enough for 10,000 rows and the portal requests
        (the demo plan's /24 runs out at 253), its tags those the simulated ONUs' SADIS has."""
        response = self.http.post(
            f"{self.args.sim}/_sim/prefixes", json={"prefix": BENCH_POOL}, timeout=10
        )
        if response.status_code not in (201, 409):  # 409: an earlier run made it
            response.raise_for_status()
        admin = {"Authorization": f"Bearer {_api_key('admin')}"}
        plans = self.http.get(f"{self.args.api}/api/v1/service-plans", headers=admin, timeout=10)
        plans.raise_for_status()
        items = plans.json()
        items = items["items"] if isinstance(items, dict) else items
        for plan in items:
            if plan["name"] == BENCH_PLAN["name"]:
                return int(plan["id"])
        created = self.http.post(
            f"{self.args.api}/api/v1/service-plans", json=BENCH_PLAN, headers=admin, timeout=10
        )
        if created.status_code != 201:
            raise SystemExit(f"cannot create the bench plan: {created.text}")
        return int(created.json()["id"])

    def play(self, profile: dict[str, float]) -> None:
        self.http.delete(f"{self.args.sim}/_sim/latency", timeout=10)
        if any(profile.values()):
            for rule in latency_rules(profile):
                self.http.post(
                    f"{self.args.sim}/_sim/latency", json=rule, timeout=10
                ).raise_for_status()
        faults.set_delays({s: v for s, v in profile.items() if s not in ON_THE_WIRE and v})

    def body(self, tag: str) -> dict:
        onu, cpe = f"BULK{tag}", f"BCPE{tag}"
        self._discover(onu)
        self.http.post(
            f"{self.args.sim}/_sim/cpes", json={"serial": cpe}, timeout=30
        ).raise_for_status()
        return {
            "customer": {"first_name": "Bulk", "last_name": tag, "email": "b@example.net"},
            "service_plan_id": self.args.plan_id,
            "service_address": "1 Bulk Street",
            "onu_serial": onu,
            "cpe_serial": cpe,
        }

    def _discover(self, serial: str) -> None:
        """The ONU in the simulated network; another OLT when every PON is full (409)."""
        for _ in range(3):
            response = self.http.post(
                f"{self.args.sim}/_sim/onus", json={"serial": serial}, timeout=30
            )
            if response.status_code == 201:
                return
            if response.status_code != 409 or "already holds" not in response.text:
                raise SystemExit(f"cannot add ONU {serial}: {response.text}")
            with self._olt_lock:
                self.http.post(f"{self.args.sim}/_sim/olts", json={}, timeout=30)
        raise SystemExit(f"no room for ONU {serial} after adding OLTs")

    def portal_request(self) -> float:
        """One provisioning through the API, submitted and followed to its end (seconds)."""
        body = self.body(secrets.token_hex(4).upper())
        started = time.monotonic()
        response = self.http.post(
            f"{self.args.api}/api/v1/orchestration/provision-subscriber",
            json=body,
            headers=self.headers,
            timeout=30,
        )
        response.raise_for_status()
        url = f"{self.args.api}/api/v1/orchestration/workflows/{response.json()['id']}"
        while True:
            status = self.http.get(url, headers=self.headers, timeout=30).json()["status"]
            if status in TERMINAL:
                return time.monotonic() - started
            if time.monotonic() - started > 600:
                raise SystemExit("a portal request did not finish in 10 minutes")
            time.sleep(0.02)

    def bulk(self, rows: int, portal: int) -> dict:
        # ONU serials are four letters and eight hex digits: BULK, a run tag, the row number.
        tag = secrets.token_hex(1).upper()
        with ThreadPoolExecutor(16) as pool:
            bodies = list(pool.map(lambda n: self.body(f"{tag}{n:06X}"), range(rows)))
        sampler = RssSampler()
        sampler.start()
        cpu_before = _cpu_seconds()
        submitted = time.monotonic()
        response = self.http.post(
            f"{self.args.api}/api/v1/orchestration/bulk-provision",
            json={"rows": bodies, "max_in_flight": self.args.max_in_flight},
            headers=self.headers,
            timeout=300,
        )
        response.raise_for_status()
        accepted = time.monotonic() - submitted
        if response.json()["invalid"]:
            raise SystemExit(f"the bench's own rows are invalid: {response.json()}")
        url = f"{self.args.api}{response.headers['Location']}"
        during: list[float] = []
        while True:
            detail = self.http.get(url, headers=self.headers, timeout=60).json()
            if detail["job"]["status"] in ("completed", "cancelled"):
                break
            if len(during) < portal and detail["counts"]["completed"] > rows * len(during) / portal:
                during.append(self.portal_request())
            time.sleep(1.0)
        sampler.stop()
        cpu_after = _cpu_seconds()
        cpu = {name: cpu_after[name] - cpu_before[name] for name in cpu_after}
        return {
            "detail": detail,
            "accepted_s": accepted,
            "during": during,
            "rss": sampler,
            "cpu": cpu,
            "wall_s": time.monotonic() - submitted,
        }


def _row_times(job_id: str) -> tuple[list[float], float]:
    """Each row's own seconds (its workflow's start to end), and the job's start to last end."""
    from sqlalchemy import select

    from orchestrator.db import transaction
    from orchestrator.models import BulkJob, Workflow

    with transaction() as session:
        job = session.get(BulkJob, uuid.UUID(job_id))
        rows = session.execute(
            select(Workflow.created_at, Workflow.finished_at).where(Workflow.bulk_job_id == job.id)
        ).all()
        last = max(end for _, end in rows)
        return [(end - start).total_seconds() for start, end in rows], (
            last - job.started_at
        ).total_seconds()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--profile", choices=("instant", "seed"), default="instant")
    parser.add_argument("--portal", type=int, default=5, help="portal requests, idle and during")
    parser.add_argument("--max-in-flight", type=int, default=150)
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument(
        "--plan-id", type=int, default=None, help="default: a plan on a /18 pool of its own"
    )
    parser.add_argument("--api", default="http://127.0.0.1:8000")
    parser.add_argument("--sim", default="http://127.0.0.1:8100")
    args = parser.parse_args()

    profile = PROFILE if args.profile == "seed" else dict.fromkeys(PROFILE, 0.0)
    base = None if args.skip_baseline else run_baseline(args.rows, profile)
    stack = Stack(args)
    if args.plan_id is None:
        args.plan_id = stack.bench_plan()
    stack.play(profile)
    try:
        idle = [stack.portal_request() for _ in range(args.portal)]
        run = stack.bulk(args.rows, args.portal)
    finally:
        stack.play(dict.fromkeys(PROFILE, 0.0))
    per_row, elapsed = _row_times(run["detail"]["job"]["id"])
    ours = args.rows / elapsed
    print(f"profile {args.profile}, {args.rows} rows, max_in_flight {args.max_in_flight}")
    print(f"counts:                   {run['detail']['counts']}")
    if base is not None:
        print(f"bare Celery chains:       {args.rows / base:.1f} rows/s ({base:.1f} s to the last)")
    print(f"this orchestrator:        {ours:.1f} rows/s ({elapsed:.1f} s to the last row)")
    if base is not None:
        print(f"ratio:                    {ours / (args.rows / base):.2f}x the bare chains")
    print(
        f"per row:                  p50 {statistics.median(per_row):.2f} s, "
        f"p95 {_percentile(per_row, 0.95):.2f} s"
    )
    print(f"job accepted in:          {run['accepted_s']:.2f} s (validation + storing)")
    rss = run["rss"]
    print(
        f"worker RSS:               {rss.first:.0f} MB before, peak {rss.peak:.0f} MB, "
        f"{rss.last:.0f} MB after; largest process {rss.largest:.0f} MB"
    )
    cpu, wall = run["cpu"], run["wall_s"]
    spent = ", ".join(
        f"{name} {seconds / args.rows * 1000:.0f}"
        for name, seconds in sorted(cpu.items(), key=lambda item: -item[1])
        if seconds > 0
    )
    print(
        f"CPU per row (ms):         {spent}; all {sum(cpu.values()) / args.rows * 1000:.0f} ms, "
        f"{sum(cpu.values()) / wall / (os.cpu_count() or 1):.0%} of the machine's "
        f"{os.cpu_count()} cores over {wall:.0f} s"
    )
    if idle and run["during"]:
        idle_p50, during_p50 = statistics.median(idle), statistics.median(run["during"])
        print(
            f"portal request:           idle p50 {idle_p50:.2f} s, during the job p50 "
            f"{during_p50:.2f} s ({during_p50 / idle_p50:.2f}x)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
