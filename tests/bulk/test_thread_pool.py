"""The production topology: the Procfile's queues, those that wait on other systems on a
thread-pool worker (worker-io), the rest on prefork (worker).

Waiting on a network call must not hold a worker process. With ONOS answering in one second,
a prefork pool of 4 can never have more than 4 ONOS calls open; the thread-pool worker carries
as many as there are workflows, and every workflow still completes, one of everything.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import redis
from celery import Celery

from orchestrator.queues import QUEUES
from orchestrator.service import OrchestrationService
from tasks.dispatch import CeleryDispatcher
from tests.support.processes import WorkerProcess
from tests.support.procfile import procfile_command
from tests.support.requests import provision_body
from tests.support.workflows import wait_terminal

WORKFLOWS = 12


def _queues(process: str) -> list[str]:
    command = procfile_command(process)
    return command[command.index("-Q") + 1].split(",")


THREAD_QUEUES = _queues("worker-io")
PREFORK_QUEUES = _queues("worker")


def test_the_procfiles_workers_consume_every_queue_once():
    assert sorted(THREAD_QUEUES + PREFORK_QUEUES) == sorted(QUEUES)
    # RADIUS waits on FreeRADIUS's database: a thread waits, not a process
    assert "radius" in THREAD_QUEUES


@pytest.fixture
def topology(worker, celery_app, tmp_path) -> Iterator[Celery]:  # type: ignore[no-untyped-def]
    """Two workers on a broker database of their own (the session's worker never sees it)."""
    base = os.environ["BROKER_URL"].rsplit("/", 1)[0]
    url = f"{base}/{int(os.environ.get('TEST_REDIS_DB', '15')) - 8}"
    redis.Redis.from_url(url).flushdb()
    app = Celery("topology", broker=url)
    app.conf.update(celery_app.conf.table(with_defaults=False))
    app.conf.broker_url = url
    env = {"BROKER_URL": url, "DB_POOL_SIZE": "10"}
    prefork = WorkerProcess(
        app=app,
        log_path=tmp_path / "prefork.log",
        env=env,
        extra_args=("-Q", ",".join(PREFORK_QUEUES)),
    )
    threads = WorkerProcess(
        app=app,
        log_path=tmp_path / "threads.log",
        concurrency=32,
        env=env,
        extra_args=("-P", "threads", "-Q", ",".join(THREAD_QUEUES)),
    )
    prefork.start()
    threads.start()
    try:
        yield app
    finally:
        threads.stop()
        prefork.stop()
        redis.Redis.from_url(url).flushdb()


def test_a_thread_pool_carries_many_network_calls_at_once(topology, sim, tenant, plan):
    sim.control("POST", "latency", {"system": "onos", "match": "^POST ", "ms": 1000}, expect=201)
    service = OrchestrationService(CeleryDispatcher(topology))
    ids = [
        service.submit("provision_subscriber", tenant, provision_body(plan.id)).workflow.id
        for _ in range(WORKFLOWS)
    ]

    statuses = [wait_terminal(workflow_id, timeout=120) for workflow_id in ids]

    assert [s.value for s in statuses] == ["completed"] * WORKFLOWS
    # More ONOS calls open at once than a prefork pool of 4 processes could ever hold.
    assert sim.state()["max_concurrent"]["onos"] > 4
    assert len({uuid.UUID(str(i)) for i in ids}) == WORKFLOWS
