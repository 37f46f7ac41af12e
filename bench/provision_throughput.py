"""Throughput and latency of provisioning, end to end, against a running stack (`make run`).

    .venv/bin/python bench/provision_throughput.py --count 200 --concurrency 20 \
        [--netbox-ms 70] [--api http://127.0.0.1:8000] [--sim http://127.0.0.1:8100]

It discovers fresh ONUs and CPEs in the simulators (optionally adding NetBox's measured ~70 ms
per allocation), submits ``count`` provisioning requests through the API from ``concurrency``
threads, waits for every workflow to finish, and prints throughput, end-to-end latency
percentiles and the mean duration of each step. Requests are bounded in number and time and go
to 127.0.0.1 only. The API key comes from $API_KEY or is created for the demo tenant.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
TERMINAL = {"completed", "rolled_back", "compensated", "failed"}


def _api_key(role: str = "operator") -> str:
    if role == "operator" and os.environ.get("API_KEY"):
        return os.environ["API_KEY"]
    out = subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
        [
            str(ROOT / ".venv/bin/orchestrator"),
            "api-key",
            "create",
            "--tenant",
            "demo",
            "--role",
            role,
            "--name",
            f"bench-{role}",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip().splitlines()[-1]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _seconds(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--plan-id", type=int, default=1)
    parser.add_argument("--netbox-ms", type=int, default=0, help="added latency per allocation")
    parser.add_argument("--api", default="http://127.0.0.1:8000")
    parser.add_argument("--sim", default="http://127.0.0.1:8100")
    parser.add_argument("--timeout", type=float, default=600.0, help="give up after this long")
    args = parser.parse_args()

    session = requests.Session()
    headers = {"Authorization": f"Bearer {_api_key()}"}
    run = secrets.token_hex(3).upper()
    if args.netbox_ms:
        session.post(
            f"{args.sim}/_sim/latency",
            json={"system": "netbox", "match": "available-ips", "ms": args.netbox_ms},
            timeout=10,
        ).raise_for_status()

    bodies = []
    for n in range(args.count):
        # GPON serials: 4 letters and 8 hex digits, unique per run and request.
        onu = f"BNCH{int(run, 16) % 0xFFFF:04X}{n:04X}"
        cpe = f"BENCH{run}{n:05d}"
        session.post(f"{args.sim}/_sim/onus", json={"serial": onu}, timeout=10).raise_for_status()
        session.post(f"{args.sim}/_sim/cpes", json={"serial": cpe}, timeout=10).raise_for_status()
        bodies.append(
            {
                "customer": {
                    "first_name": "Bench",
                    "last_name": f"Run{run}",
                    "email": "b@example.net",
                },
                "service_plan_id": args.plan_id,
                "service_address": f"{n} Benchmark Road",
                "username": f"bench-{run.lower()}-{n}",
                "password": secrets.token_urlsafe(12),
                "onu_serial": onu,
                "cpe_serial": cpe,
            }
        )

    def submit(body: dict) -> str:
        response = session.post(
            f"{args.api}/api/v1/orchestration/provision-subscriber",
            json=body,
            headers=headers,
            timeout=30,
        )
        response.raise_for_status()
        return response.json()["id"]

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
        ids = list(pool.map(submit, bodies))
    submitted = time.monotonic() - started

    pending, details = set(ids), {}
    deadline = started + args.timeout
    while pending and time.monotonic() < deadline:
        for workflow_id in list(pending):
            detail = session.get(
                f"{args.api}/api/v1/orchestration/workflows/{workflow_id}",
                headers=headers,
                timeout=30,
            ).json()
            if detail["status"] in TERMINAL:
                pending.discard(workflow_id)
                details[workflow_id] = detail
        time.sleep(0.2)
    elapsed = time.monotonic() - started

    outcomes: dict[str, int] = defaultdict(int)
    latencies, step_times = [], defaultdict(list)
    for detail in details.values():
        outcomes[detail["status"]] += 1
        total = _seconds(detail["created_at"], detail["finished_at"])
        if total is not None:
            latencies.append(total)
        for step in detail["steps"]:
            took = _seconds(step["started_at"], step["finished_at"])
            if took is not None:
                step_times[step["name"]].append(took)

    print(f"workflows: {args.count} submitted in {submitted:.2f}s, concurrency {args.concurrency}")
    print(f"outcomes:  {dict(outcomes)}; unfinished after {args.timeout:g}s: {len(pending)}")
    print(f"throughput: {len(details) / elapsed:.1f} workflows/s ({elapsed:.1f}s in all)")
    if latencies:
        p50, p95 = _percentile(latencies, 0.5), _percentile(latencies, 0.95)
        print(f"latency:   p50 {p50:.2f}s  p95 {p95:.2f}s  max {max(latencies):.2f}s")
    for name, times in step_times.items():
        print(f"  {name:24s} mean {statistics.mean(times) * 1000:7.1f} ms  n={len(times)}")
    if args.netbox_ms:
        session.delete(f"{args.sim}/_sim/latency", timeout=10)
    return 0 if not pending and outcomes.get("completed") == args.count else 1


if __name__ == "__main__":
    sys.exit(main())
