"""Fault injection for tests: make a named step fail, hang or crash at a chosen point.

Faults are queued in Redis per step and per subscriber username (so the test process can arm
them, the worker process consume them, and no other workflow, say one the sweeper re-drives,
can take a fault meant for the test's own) and used up one per matching hook, in order. With
``ORCHESTRATOR_FAULT_INJECTION`` off (the default) every hook returns at once without
touching Redis.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from functools import lru_cache

import redis

from orchestrator.config import get_settings
from orchestrator.errors import PermanentError, TransientError

log = logging.getLogger(__name__)

KEY_PREFIX = "orchestrator:faults:"

#: Applied before the step's effect.
BEFORE = frozenset({"permanent", "transient", "hang", "slow"})
#: Applied after the effect, before its bookkeeping commits.
AFTER = frozenset({"crash_after_effect", "transient_after_effect"})
#: Applied to a compensation, before its effect.
COMPENSATION = frozenset({"permanent", "transient"})
MODES = BEFORE | AFTER

HANG_SECONDS = 120.0
#: A slow but successful call: long enough to act on a step in flight.
SLOW_SECONDS = 1.5


@lru_cache(maxsize=1)
def _client() -> redis.Redis:
    return redis.Redis.from_url(get_settings().broker_url)


def _key(step_name: str, username: str | None, compensation: bool) -> str:
    return f"{KEY_PREFIX}{'compensate:' if compensation else ''}{step_name}:{username}"


def arm(step_name: str, modes: Iterable[str], *, username: str, compensation: bool = False) -> None:
    """Queue faults for ``step_name`` of the workflow provisioning ``username`` (test side)."""
    allowed = COMPENSATION if compensation else MODES
    modes = list(modes)
    unknown = [m for m in modes if m not in allowed]
    if unknown:
        raise ValueError(f"unknown fault modes {unknown}")
    if modes:
        _client().rpush(_key(step_name, username, compensation), *modes)


#: Per-step added latency (seconds), for benchmarks that play a latency profile on steps that
#: no simulator stands in front of (our database, FreeRADIUS's SQL).
DELAY_KEY = f"{KEY_PREFIX}delay"


def set_delays(seconds_by_step: dict[str, float]) -> None:
    """Make every attempt of each named step take at least this long more (bench side)."""
    client = _client()
    client.delete(DELAY_KEY)
    if seconds_by_step:
        client.hset(DELAY_KEY, mapping={k: str(v) for k, v in seconds_by_step.items()})


def delay(step_name: str) -> None:
    """The latency set for the step (see :func:`set_delays`), before it acts: outside any
    transaction of ours, as a system's latency would be (a no-op unless switched on)."""
    if not get_settings().fault_injection:
        return
    seconds = _client().hget(DELAY_KEY, step_name)
    if seconds:
        time.sleep(float(seconds))


def clear() -> None:
    client = _client()
    for key in client.scan_iter(f"{KEY_PREFIX}*"):
        client.delete(key)


def _take(
    step_name: str, username: str | None, allowed: frozenset[str], compensation: bool
) -> str | None:
    client = _client()
    key = _key(step_name, username, compensation)
    head = client.lindex(key, 0)
    if head is None or head.decode() not in allowed:
        return None
    # LPOP of the value we peeked: a concurrent consumer may have taken it; then we did not.
    mode = head.decode()
    if not client.lrem(key, 1, mode):
        return None
    log.warning("fault injection: %s into %s", mode, key.removeprefix(KEY_PREFIX))
    return mode


def _system(step_name: str) -> str:
    return f"fault-injection:{step_name}"


def before_effect(step_name: str, username: str | None) -> None:
    if not get_settings().fault_injection:
        return
    mode = _take(step_name, username, BEFORE, compensation=False)
    if mode == "permanent":
        raise PermanentError(
            "injected permanent failure", system=_system(step_name), operation="before"
        )
    if mode == "transient":
        raise TransientError(
            "injected transient failure", system=_system(step_name), operation="before"
        )
    if mode == "hang":
        # Interrupted by the soft time limit (or by SIGKILL in crash tests).
        time.sleep(HANG_SECONDS)
    if mode == "slow":
        time.sleep(SLOW_SECONDS)


def after_effect(step_name: str, username: str | None) -> None:
    if not get_settings().fault_injection:
        return
    mode = _take(step_name, username, AFTER, compensation=False)
    if mode == "crash_after_effect":
        # The process dies between the side effect and its bookkeeping, as on a power cut.
        os._exit(137)
    if mode == "transient_after_effect":
        raise TransientError(
            "injected failure after the effect", system=_system(step_name), operation="after"
        )


def before_compensation(step_name: str, username: str | None) -> None:
    if not get_settings().fault_injection:
        return
    mode = _take(step_name, username, COMPENSATION, compensation=True)
    if mode == "permanent":
        raise PermanentError(
            "injected permanent compensation failure", system=_system(step_name), operation="undo"
        )
    if mode == "transient":
        raise TransientError(
            "injected transient compensation failure", system=_system(step_name), operation="undo"
        )
