"""Give a stack a year of history and a carrier's network: cost must not grow with them.

    .venv/bin/python bench/history.py --events 1000000 --onus 50000

Copies the newest completed provisioning (its workflow row, steps and events) under new ids
until the database holds ``--events`` events, spread over the past year (no subscriber, no
idempotency key: history only), and discovers ONUs and CPEs in the simulators until they hold
``--onus`` of each. Then run bench/bulk.py again and compare with a run on a fresh stack (the
README's "Bulk benchmark"). Idempotent in effect: it only ever adds up to the totals asked.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from orchestrator.db import transaction

#: Workflows copied per statement: big enough to be quick, small enough for one transaction.
BATCH = 5000


def _columns(session, table: str, *, skip: tuple[str, ...]) -> list[str]:  # type: ignore[no-untyped-def]
    rows = session.execute(
        text(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = :t ORDER BY ordinal_position"
        ),
        {"t": table},
    )
    return [name for (name,) in rows if name not in skip]


def add_history(events: int) -> None:
    with transaction() as session:
        have = session.scalar(text("SELECT count(*) FROM workflow_events")) or 0
        template = session.scalar(
            text(
                "SELECT id FROM workflows WHERE status = 'completed' "
                "AND workflow_type = 'provision_subscriber' ORDER BY finished_at DESC LIMIT 1"
            )
        )
        if template is None:
            raise SystemExit("no completed provisioning to copy: run one first")
        per_workflow = session.scalar(
            text("SELECT count(*) FROM workflow_events WHERE workflow_id = :w"), {"w": template}
        )
        workflow_cols = _columns(session, "workflows", skip=("id",))
        step_cols = _columns(session, "workflow_steps", skip=("id", "workflow_id"))
        event_cols = _columns(session, "workflow_events", skip=("id", "workflow_id"))
    needed = max(events - have, 0) // max(per_workflow, 1)
    print(f"{have} events now; copying workflow {template} ({per_workflow} events) {needed} times")
    overrides = {
        "idempotency_key": "NULL",
        "subscriber_id": "NULL",
        "bulk_job_id": "NULL",
        "secrets": "NULL",
        "created_at": "w.created_at - m.age",
        "updated_at": "w.updated_at - m.age",
        "started_at": "w.started_at - m.age",
        "finished_at": "w.finished_at - m.age",
    }
    select_workflow = ", ".join(overrides.get(c, f"w.{c}") for c in workflow_cols)
    done = 0
    while done < needed:
        count = min(BATCH, needed - done)
        started = time.monotonic()
        with transaction() as session:
            session.execute(
                text(
                    "CREATE TEMP TABLE copies ON COMMIT DROP AS SELECT gen_random_uuid() AS id, "
                    "random() * interval '365 days' AS age FROM generate_series(1, :n)"
                ),
                {"n": count},
            )
            session.execute(
                text(
                    # Column names from information_schema, never from input.
                    f"INSERT INTO workflows (id, {', '.join(workflow_cols)}) "  # noqa: S608
                    f"SELECT m.id, {select_workflow} FROM copies m, workflows w WHERE w.id = :t"
                ),
                {"t": template},
            )
            for table, cols in (("workflow_steps", step_cols), ("workflow_events", event_cols)):
                dated = ("created_at", "started_at", "finished_at")
                select = ", ".join(f"s.{c} - m.age" if c in dated else f"s.{c}" for c in cols)
                session.execute(
                    text(
                        f"INSERT INTO {table} (workflow_id, {', '.join(cols)}) "  # noqa: S608
                        f"SELECT m.id, {select} FROM copies m, {table} s WHERE s.workflow_id = :t"
                    ),
                    {"t": template},
                )
        done += count
        print(f"  {done}/{needed} workflows copied ({time.monotonic() - started:.1f} s)")
    with transaction() as session:
        session.execute(text("ANALYZE workflows, workflow_steps, workflow_events"))


def discover_onu(http: requests.Session, sim: str, serial: str) -> None:
    """An ONU the simulated OLTs discover, with a new OLT whenever the last one is full."""
    for _ in range(3):
        response = http.post(f"{sim}/_sim/onus", json={"serial": serial}, timeout=30)
        if response.status_code == 201:
            return
        if response.status_code == 409 and "already holds" in response.text:
            http.post(f"{sim}/_sim/olts", json={}, timeout=30)
            continue
        raise SystemExit(f"cannot add ONU {serial}: {response.text}")
    raise SystemExit(f"cannot add ONU {serial}: every OLT stays full")


def add_network(sim: str, onus: int) -> None:
    state = requests.get(f"{sim}/_sim/state", timeout=120).json()
    have = sum(1 for d in state["voltha"]["devices"] if not d["root"])
    missing = max(onus - have, 0)
    print(f"{have} ONUs now; adding {missing} ONUs and CPEs")
    tag = secrets.token_hex(1).upper()
    http = requests.Session()

    def add(n: int) -> None:
        discover_onu(http, sim, f"HIST{tag}{n:06X}")
        http.post(f"{sim}/_sim/cpes", json={"serial": f"HCPE{tag}{n:06X}"}, timeout=30)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(add, range(missing)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--onus", type=int, default=50_000)
    parser.add_argument("--sim", default="http://127.0.0.1:8100")
    args = parser.parse_args()
    add_history(args.events)
    add_network(args.sim, args.onus)
    return 0


if __name__ == "__main__":
    sys.exit(main())
