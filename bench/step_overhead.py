"""What a step's bookkeeping costs, part by part, without Celery, the network or the steps.

    .venv/bin/python bench/step_overhead.py --workflows 200

Against the database `make run` uses (or $DATABASE_URL), in this one process: it creates
provisioning workflows and walks each through its graph with steps that do nothing, timing
the parts every step pays for (the claim's transaction, the record's transaction, building
and publishing the next messages) and counting the SQL statements each part sends. Messages
go to a Redis database no worker reads (``--broker``), emptied before and after.

Run it twice (before and after a change to the engine) on a quiet machine; the statement
counts are exact, the times are this machine's. Side by side, in the same invocation, it
times a bare transaction of the same shape (lock one row, insert one row, commit) so a
noisy machine shows in both.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from celery import Celery  # noqa: E402
from sqlalchemy import event, text  # noqa: E402

from orchestrator import engine, workflows  # noqa: E402, F401 - registers the definitions
from orchestrator.apikeys import ensure_tenant  # noqa: E402
from orchestrator.db import get_engine, transaction  # noqa: E402
from orchestrator.definitions import registry  # noqa: E402
from orchestrator.models import Workflow  # noqa: E402
from orchestrator.step import Step, StepResult  # noqa: E402
from tasks.dispatch import publish  # noqa: E402

TENANT = "bench-overhead"


class Nothing(Step):
    """A step whose effect is not measured."""


def _never_gone(owner: str | None) -> bool:
    return False


class Meter:
    """Wall time and SQL statements per named part."""

    def __init__(self) -> None:
        self.seconds: dict[str, list[float]] = defaultdict(list)
        #: This process's CPU time: what the part costs a worker, whatever PostgreSQL waits.
        self.cpu: dict[str, list[float]] = defaultdict(list)
        self.statements: dict[str, list[int]] = defaultdict(list)
        self._count = 0
        event.listen(get_engine(), "before_cursor_execute", self._on_statement)

    def _on_statement(self, *args: object) -> None:
        self._count += 1

    @contextmanager
    def part(self, name: str) -> Iterator[None]:
        count, started, cpu = self._count, time.perf_counter(), time.process_time()
        yield
        self.seconds[name].append(time.perf_counter() - started)
        self.cpu[name].append(time.process_time() - cpu)
        self.statements[name].append(self._count - count)

    def report(self) -> None:
        print(
            f"{'part':<22} {'p50 ms':>8} {'mean ms':>8} {'cpu ms':>8} {'statements':>11} {'n':>6}"
        )
        for name, values in self.seconds.items():
            statements = statistics.mean(self.statements[name])
            print(
                f"{name:<22} {statistics.median(values) * 1000:8.2f} "
                f"{statistics.mean(values) * 1000:8.2f} "
                f"{statistics.mean(self.cpu[name]) * 1000:8.2f} {statements:11.1f} {len(values):6d}"
            )


def _new_workflow(index: int) -> uuid.UUID:
    with transaction() as session:
        workflow = engine.new_workflow(
            session,
            registry.get("provision_subscriber"),
            tenant_id=TENANT,
            input_data={"username": f"overhead-{uuid.uuid4().hex[:12]}", "index": index},
            sealed_secrets=None,
            deadline=timedelta(hours=1),
        )
        return workflow.id


def _local_steps() -> frozenset[str]:
    """The provisioning's steps that run locally (claim, effect and record in one
    transaction), as the registered tasks say."""
    from tasks.app import app as tasks_app

    tasks_app.loader.import_default_modules()  # registers the step tasks
    definition = registry.get("provision_subscriber")
    return frozenset(
        step.name for step in definition.steps if tasks_app.tasks[step.task].behaviour.local
    )


def _walk(meter: Meter, app: Celery, workflow_id: uuid.UUID, local: frozenset[str]) -> int:
    """Claim and record every step of the workflow, in an order its graph allows: a local
    step in one transaction, as tasks/base.py runs it, any other in two around its call."""
    with transaction() as session:
        workflow = session.get(Workflow, workflow_id)
        first = engine.start(workflow)
        todo, generation = list(first.forward), first.generation
    steps = 0
    while todo:
        name = todo.pop(0)
        args = (engine.FORWARD, Nothing(), workflow_id, name, "bench", _never_gone, generation)
        if name in local:
            with meter.part("local step"), transaction() as session:
                outcome = engine.claim(session, *args)
                assert outcome.claimed is not None, outcome
                workflow, step = engine.held(session, outcome.claimed)
                with session.begin_nested():  # where the effect runs, as in tasks/base.py
                    pass
                dispatch = engine.record_success(
                    session, outcome.claimed, workflow, step, StepResult(), _never_gone
                )
        else:
            with meter.part("claim"), transaction() as session:
                outcome = engine.claim(session, *args)
            assert outcome.claimed is not None, outcome
            with meter.part("record"), transaction() as session:
                workflow, step = engine.relock(session, outcome.claimed, "bench")
                dispatch = engine.record_success(
                    session, outcome.claimed, workflow, step, StepResult(), _never_gone
                )
        with meter.part("publish"):
            publish(dispatch, app)
        todo.extend(dispatch.forward)
        steps += 1
    return steps


def _bare(meter: Meter) -> None:
    """The least a step's bookkeeping could be: lock a row, append a row, commit."""
    with meter.part("bare transaction"), transaction() as session:
        session.execute(text("SELECT 1 FROM bench_overhead WHERE id = 1 FOR UPDATE"))
        session.execute(text("INSERT INTO bench_overhead_log (at) VALUES (clock_timestamp())"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workflows", type=int, default=200)
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/13")
    args = parser.parse_args()

    app = Celery("bench-overhead", broker=args.broker)
    app.conf.task_routes = {"*": {"queue": "bench-overhead"}}
    with transaction() as session:
        # The workflows it walks end completed, in a tenant of their own.
        ensure_tenant(session, TENANT)
        session.execute(text("CREATE TABLE IF NOT EXISTS bench_overhead (id int primary key)"))
        session.execute(text("INSERT INTO bench_overhead VALUES (1) ON CONFLICT DO NOTHING"))
        session.execute(
            text("CREATE TABLE IF NOT EXISTS bench_overhead_log (at timestamptz not null)")
        )
    meter = Meter()
    local = _local_steps()
    steps = 0
    started = time.perf_counter()
    try:
        for index in range(args.workflows):
            _bare(meter)
            with meter.part("create workflow"):
                workflow_id = _new_workflow(index)
            steps += _walk(meter, app, workflow_id, local)
    finally:
        with app.connection_for_write() as connection:
            connection.default_channel.client.flushdb()
        with transaction() as session:
            session.execute(text("DROP TABLE IF EXISTS bench_overhead, bench_overhead_log"))
    elapsed = time.perf_counter() - started
    print(f"{args.workflows} workflows, {steps} steps in {elapsed:.1f} s")
    meter.report()
    per_part = {part: meter.seconds[part] for part in ("claim", "record", "local step")}
    cpu_part = {part: meter.cpu[part] for part in per_part}
    bare = statistics.mean(meter.seconds["bare transaction"])
    bare_cpu = statistics.mean(meter.cpu["bare transaction"])
    publish_mean = statistics.mean(meter.seconds["publish"])
    publish_cpu = statistics.mean(meter.cpu["publish"])
    for kind, parts in (
        ("a step that calls a system", ("claim", "record")),
        ("a local step", ("local step",)),
    ):
        if not all(per_part[part] for part in parts):
            continue
        wall = sum(statistics.mean(per_part[part]) for part in parts) + publish_mean
        cpu = sum(statistics.mean(cpu_part[part]) for part in parts) + publish_cpu
        print(
            f"bookkeeping of {kind}: {wall * 1000:.2f} ms ({wall / bare:.1f}x a bare "
            f"transaction), CPU in this process {cpu * 1000:.2f} ms ({cpu / bare_cpu:.1f}x)"
        )
    total_wall = sum(sum(v) for v in per_part.values()) + sum(meter.seconds["publish"])
    total_cpu = sum(sum(v) for v in cpu_part.values()) + sum(meter.cpu["publish"])
    print(
        f"per step, all {steps} steps: {total_wall / steps * 1000:.2f} ms, "
        f"CPU {total_cpu / steps * 1000:.2f} ms"
    )


if __name__ == "__main__":
    main()
