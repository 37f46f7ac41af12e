"""The circuit breaker opens on a streak of failures only while failures dominate: a healthy
system's unlucky streak under load does not fail fast for a whole cool-down."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import redis

from orchestrator.integrations.circuit import CircuitBreaker


@pytest.fixture
def breaker() -> Iterator[CircuitBreaker]:
    url = os.environ["BROKER_URL"]
    system = f"test-{uuid.uuid4().hex[:8]}"  # its own keys, whatever else runs
    yield CircuitBreaker(system, threshold=3, cooldown=30.0, redis_url=url, failure_rate=0.5)
    store = redis.Redis.from_url(url)
    keys = list(store.scan_iter(f"circuit:{system}*"))
    if keys:
        store.delete(*keys)


def test_three_failures_in_a_row_among_many_successes_keep_it_closed(breaker):
    for _ in range(17):
        breaker.record_success()
    for _ in range(3):
        breaker.record_failure()

    assert breaker.state()["state"] == "closed"
    assert breaker.state()["failures"] == 3
    breaker.before_call("probe")  # does not raise


def test_a_system_failing_most_calls_opens_it(breaker):
    for _ in range(5):
        breaker.record_success()
    for _ in range(2):
        breaker.record_failure()
    assert breaker.state()["state"] == "closed"  # streak of 2: not yet

    for _ in range(4):
        breaker.record_failure()  # 6 of 11 failed, 6 in a row

    assert breaker.state()["state"] == "open"


def test_a_hung_system_opens_it_after_the_streak(breaker):
    for _ in range(3):
        breaker.record_failure()
    assert breaker.state()["state"] == "open"
