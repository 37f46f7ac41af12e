"""The bare Celery baseline: tasks that only sleep, on the same broker, no bookkeeping at all.

Started by the benchmarks in their own invocation (``celery -A bench.baseline worker``) on a
Redis database of its own, so what they compare against is measured on the same machine, at
the same time.
"""

from __future__ import annotations

import os
import time

import redis
from celery import Celery

BROKER = os.environ.get("BENCH_BASELINE_BROKER", "redis://127.0.0.1:6379/2")
QUEUE = "bench-baseline"

app = Celery("bench_baseline", broker=BROKER, backend=None)
app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    task_ignore_result=True,
    # The same delivery guarantees as the orchestrator's own app, so the comparison is fair.
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_default_queue=QUEUE,
)


@app.task(name="bench.baseline.step")
def step(seconds: float) -> None:
    time.sleep(seconds)


@app.task(name="bench.baseline.done")
def done(key: str) -> None:
    """Marks the end of a chain: the bench waits for this key (there is no result backend)."""
    redis.Redis.from_url(BROKER).set(key, time.time(), ex=600)
