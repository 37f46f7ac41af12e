"""A prefork child that grew past WORKER_MAX_MEMORY_MB is replaced once its task ends."""

from __future__ import annotations

import time
import uuid

from tests.support.processes import VAR, WorkerProcess


def _children(worker: WorkerProcess) -> set[int]:
    stats = worker.app.control.inspect(destination=[worker.hostname], timeout=2).stats() or {}
    return set(stats.get(worker.hostname, {}).get("pool", {}).get("processes", []))


def test_a_child_past_the_memory_limit_is_replaced_after_its_task(worker):
    # Given a prefork worker of one child whose limit (1 MiB) every child is past, on a queue
    # of its own
    queue = f"memory-{uuid.uuid4().hex[:8]}"
    small = WorkerProcess(
        app=worker.app,
        log_path=VAR / "worker-memory.log",
        concurrency=1,
        env={"WORKER_MAX_MEMORY_MB": "1"},
        extra_args=("-Q", queue),
    )
    small.start()
    try:
        [first] = _children(small)

        # When the child runs a task (beat's round of due bulk jobs: it reads the database)
        worker.app.send_task("tasks.bulk.start_due", queue=queue)

        # Then, its task over, a new child takes its place
        deadline = time.monotonic() + 30
        children = {first}
        while children in ({first}, set()) and time.monotonic() < deadline:
            children = _children(small)
        assert children and first not in children
    finally:
        small.stop()
