"""How many calls each external system gets at once, enforced across every worker and host.

An access network has its own limits: an ONOS that 300 workers call at once stalls for all of
them. Each call to a system holds one of its slots for as long as it runs; a call beyond the
limit waits for a slot (it does not fail). Slots are members of a Redis sorted set per system,
scored by when they lapse, so a worker that dies mid-call frees its slot after the call's
timeout instead of never.

A wait is bounded by the attempt it serves: a step's task says when its time limit falls
(:func:`attempt_deadline`), and a caller that could no longer make its call in time once a slot
is free stops waiting with SlotsBusy, which the engine takes as "not an attempt": the step runs
again shortly, and a long queue never uses up its attempts (nor hits its time limit).

Limits come from ``CONCURRENCY_LIMITS`` (``onos=80,voltha=120``; others take
``CONCURRENCY_LIMIT_DEFAULT``; 0 means unlimited) and can be changed at run time, for every
worker at once, with ``orchestrator concurrency set SYSTEM N`` (a Redis key read on each
acquire). A Redis that does not answer never blocks a call: it is let through, and logged.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import redis

from orchestrator.config import get_settings
from orchestrator.errors import SlotsBusy
from orchestrator.integrations.circuit import _redis

log = logging.getLogger(__name__)

_PREFIX = "concurrency:"
#: Waiting callers poll; jittered, so that they do not all ask at the same instant.
POLL_MIN, POLL_MAX = 0.01, 0.05

# Atomically: drop lapsed slots, then take one if fewer than the limit are held. The limit is
# the run-time override when one is set. Redis's own clock, so hosts need not agree on time.
_ACQUIRE = """
local now = redis.call('TIME')
local now_s = tonumber(now[1]) + tonumber(now[2]) / 1000000
local limit = tonumber(redis.call('GET', KEYS[2]) or ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_s)
if limit > 0 and redis.call('ZCARD', KEYS[1]) >= limit then
  return 0
end
redis.call('ZADD', KEYS[1], now_s + tonumber(ARGV[2]), ARGV[3])
return 1
"""


#: When the running attempt's time limit falls (time.monotonic()); None outside an attempt.
#: A context variable: each thread of a thread-pool worker runs its own attempt.
_ATTEMPT_DEADLINE: ContextVar[float | None] = ContextVar("attempt_deadline", default=None)


@contextmanager
def attempt_deadline(seconds: float) -> Iterator[None]:
    """Slot waits inside this block end in time for their call to fit in ``seconds``."""
    token = _ATTEMPT_DEADLINE.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _ATTEMPT_DEADLINE.reset(token)


@dataclass(frozen=True)
class ConcurrencyLimit:
    system: str
    #: The configured limit (a run-time override in Redis takes precedence); 0: unlimited.
    limit: int
    #: How long a slot is held at most: the longest a call to the system may take.
    lease_seconds: float
    redis_url: str

    @classmethod
    def for_system(cls, system: str, lease_seconds: float) -> ConcurrencyLimit:
        settings = get_settings()
        limit = settings.concurrency_limits.get(system, settings.concurrency_limit_default)
        return cls(system, limit, lease_seconds, settings.circuit_redis_url)

    @property
    def _key(self) -> str:
        return f"{_PREFIX}{self.system}"

    @property
    def override_key(self) -> str:
        return f"{_PREFIX}{self.system}:limit"

    def _try_acquire(self, holder: str) -> bool:
        store = _redis(self.redis_url)
        return bool(
            store.eval(
                _ACQUIRE, 2, self._key, self.override_key, self.limit, self.lease_seconds, holder
            )
        )

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one of the system's slots for the duration of a call; wait while none is free.

        Inside an attempt, waiting stops once the call (up to ``lease_seconds``) would no
        longer end before the attempt's time limit: SlotsBusy, the call not made."""
        holder = uuid.uuid4().hex
        waited_since: float | None = None
        deadline = _ATTEMPT_DEADLINE.get()
        give_up = None if deadline is None else deadline - self.lease_seconds
        try:
            while not self._try_acquire(holder):
                now = time.monotonic()
                if waited_since is None:
                    waited_since = now
                    log.debug("%s: all slots busy, waiting", self.system)
                if give_up is not None and now >= give_up:
                    raise SlotsBusy(
                        f"{self.system}: every concurrency slot stayed taken for "
                        f"{now - waited_since:.1f} s; the call was not sent",
                        system=self.system,
                        operation="concurrency_slot",
                    )
                time.sleep(random.uniform(POLL_MIN, POLL_MAX))
        except redis.RedisError as exc:
            log.warning("concurrency store unavailable (%s): %s call let through", exc, self.system)
            yield
            return
        if waited_since is not None:
            log.info("%s: got a slot after %.2f s", self.system, time.monotonic() - waited_since)
        try:
            yield
        finally:
            try:
                _redis(self.redis_url).zrem(self._key, holder)
            except redis.RedisError as exc:
                # It lapses at its lease's end instead.
                log.warning("concurrency store unavailable (%s): slot left to lapse", exc)

    def in_use(self) -> int:
        store = _redis(self.redis_url)
        # Redis's clock, as in _ACQUIRE: slots are scored by it, and this host's may differ.
        seconds, microseconds = store.time()
        store.zremrangebyscore(self._key, "-inf", seconds + microseconds / 1_000_000)
        return int(store.zcard(self._key))


def set_limit(system: str, limit: int | None) -> None:
    """Change a system's limit for every worker at once; ``None`` returns to the configured."""
    settings = get_settings()
    key = ConcurrencyLimit.for_system(system, 0).override_key
    store = _redis(settings.circuit_redis_url)
    if limit is None:
        store.delete(key)
    else:
        store.set(key, int(limit))


def current_limit(limit: ConcurrencyLimit) -> int:
    """The limit in force: the run-time override when one is set, else the configured one."""
    override = _redis(limit.redis_url).get(limit.override_key)
    return int(override) if override is not None else limit.limit
