"""A circuit breaker per external system, shared by every worker through Redis.

After ``threshold`` consecutive failures of a system (a timeout, a connection that failed, a
5xx), when also at least ``failure_rate`` of its calls in the last :data:`WINDOW_SECONDS` failed,
its circuit opens: calls fail at once with :class:`CircuitOpen` (a TransientError, so the
step retries after its backoff) for ``cooldown`` seconds, without touching the system. Then one
call, the probe, is let through (a ``SET NX`` decides which worker sends it): its success closes
the circuit, its failure opens it for another cool-down. Any answer below 500 is a success: the
system is alive, even when it refuses.

State in Redis, per system: the hash ``circuit:<system>`` (``failures`` in a row, ``open_until``),
the key ``circuit:<system>:probe`` (held by the call that probes), and the calls and failures of
each 10 s bucket (``circuit:<system>:window:<n>``, lapsing after the window) for the rate.

Why both: every worker's calls count in one streak, so with hundreds of calls in flight a
healthy system that fails one call in twenty still shows three failures in a row now and then;
opening then failed fast, for a whole cool-down, steps that would have succeeded. A hung or
broken system fails nearly every call, so the rate changes nothing there.

A Redis that does not answer never blocks a call: the breaker then lets everything through (and
logs it).

It lives at the client layer (:mod:`orchestrator.integrations.http` for the HTTP clients,
``voltha.py`` for gRPC), so every client uses this one implementation.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import redis

from orchestrator.config import get_settings
from orchestrator.errors import CircuitOpen

log = logging.getLogger(__name__)

#: The systems whose breakers /healthz reports.
SYSTEMS = ("netbox", "onos", "genieacs", "voltha")
_PREFIX = "circuit:"
#: The failure rate is taken over this many seconds, in buckets of BUCKET_SECONDS.
WINDOW_SECONDS = 30
BUCKET_SECONDS = 10


@lru_cache(maxsize=4)
def _redis(url: str) -> redis.Redis:
    # short timeouts: the breaker must never be the thing that hangs
    return redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)


@dataclass(frozen=True)
class CircuitBreaker:
    system: str
    threshold: int
    cooldown: float
    redis_url: str
    #: The share of the window's calls that must have failed for the streak to open it.
    failure_rate: float = 0.0

    @classmethod
    def for_system(cls, system: str) -> CircuitBreaker:
        settings = get_settings()
        return cls(
            system,
            max(settings.circuit_failure_threshold, 1),
            settings.circuit_cooldown_seconds,
            settings.circuit_redis_url,
            min(max(settings.circuit_failure_rate, 0.0), 1.0),
        )

    @property
    def _key(self) -> str:
        return f"{_PREFIX}{self.system}"

    @property
    def _probe_key(self) -> str:
        return f"{_PREFIX}{self.system}:probe"

    def before_call(self, operation: str) -> bool:
        """Raises :class:`CircuitOpen` unless the call may go out (closed, or the probe);
        True when this call is the half-open probe (see :meth:`abandon_probe`)."""
        try:
            open_until = _redis(self.redis_url).hget(self._key, "open_until")
            if open_until is None:
                return False
            retry_at = float(open_until)
            if time.time() >= retry_at and _redis(self.redis_url).set(
                # the probe's claim outlives a call's timeouts, then lapses (a dead prober)
                self._probe_key,
                "1",
                nx=True,
                ex=max(int(self.cooldown), 30),
            ):
                log.info("circuit for %s half-open: %s is the probe", self.system, operation)
                return True
        except redis.RedisError as exc:
            log.warning("circuit breaker store unavailable (%s): call let through", exc)
            return False
        wait = max(retry_at - time.time(), 0.0)
        raise CircuitOpen(
            f"{self.system} {operation}: circuit open for {self.system} "
            f"(after {self.threshold} consecutive failures; next probe in {wait:.0f} s)",
            system=self.system,
            operation=operation,
        )

    def abandon_probe(self) -> None:
        """The probe was never sent (no concurrency slot): the next call may probe instead of
        everyone waiting for the claim to lapse."""
        try:
            _redis(self.redis_url).delete(self._probe_key)
        except redis.RedisError as exc:
            log.warning("circuit breaker store unavailable (%s): probe claim left to lapse", exc)

    def _buckets(self, now: float) -> list[str]:
        """The window's bucket keys, the current one first."""
        current = int(now // BUCKET_SECONDS)
        count = WINDOW_SECONDS // BUCKET_SECONDS
        return [f"{self._key}:window:{current - n}" for n in range(count)]

    def _count_call(self, pipe: Any, bucket: str, failed: bool) -> None:
        pipe.hincrby(bucket, "calls", 1)
        if failed:
            pipe.hincrby(bucket, "failures", 1)
        pipe.expire(bucket, WINDOW_SECONDS + BUCKET_SECONDS)

    def record_success(self) -> None:
        try:
            pipe = _redis(self.redis_url).pipeline(transaction=False)
            pipe.delete(self._key, self._probe_key)
            self._count_call(pipe, self._buckets(time.time())[0], failed=False)
            pipe.execute()
        except redis.RedisError as exc:
            log.warning("circuit breaker store unavailable (%s)", exc)

    def record_failure(self) -> None:
        try:
            store = _redis(self.redis_url)
            now = time.time()
            buckets = self._buckets(now)
            pipe = store.pipeline(transaction=False)
            pipe.hincrby(self._key, "failures", 1)
            pipe.hget(self._key, "open_until")
            self._count_call(pipe, buckets[0], failed=True)
            for bucket in buckets:
                pipe.hmget(bucket, "calls", "failures")
            results = pipe.execute()
            failures, was_open = int(results[0]), results[1] is not None
            window = results[-len(buckets) :]
            calls = sum(int(c or 0) for c, _ in window)
            failed = sum(int(f or 0) for _, f in window)
            if failures >= self.threshold and failed >= self.failure_rate * calls:
                pipe = store.pipeline()
                pipe.hset(self._key, "open_until", now + self.cooldown)
                pipe.delete(self._probe_key)
                pipe.expire(self._key, int(self.cooldown) + 3600)
                pipe.execute()
                if not was_open:
                    log.warning(
                        "circuit for %s open for %.0f s after %d consecutive failures "
                        "(%d of %d calls in %d s)",
                        self.system,
                        self.cooldown,
                        failures,
                        failed,
                        calls,
                        WINDOW_SECONDS,
                    )
            else:
                store.expire(self._key, int(self.cooldown) + 3600)
        except redis.RedisError as exc:
            log.warning("circuit breaker store unavailable (%s)", exc)

    def state(self) -> dict[str, Any]:
        """``{"state": "closed"|"open"|"half_open", "failures": n, "retry_in_s"?: s}``."""
        values = _redis(self.redis_url).hgetall(self._key)
        failures = int(values.get(b"failures", 0))
        open_until = values.get(b"open_until")
        if open_until is None:
            return {"state": "closed", "failures": failures}
        wait = float(open_until) - time.time()
        if wait > 0:
            return {"state": "open", "failures": failures, "retry_in_s": round(wait, 1)}
        return {"state": "half_open", "failures": failures}


def snapshot() -> dict[str, dict[str, Any]]:
    """Every system's breaker, for /healthz."""
    return {system: CircuitBreaker.for_system(system).state() for system in SYSTEMS}


def reset_all() -> None:
    """Closes every breaker (tests, or an operator after a repair)."""
    store = _redis(get_settings().circuit_redis_url)
    keys = [k for s in SYSTEMS for k in (f"{_PREFIX}{s}", f"{_PREFIX}{s}:probe")]
    keys += [k for s in SYSTEMS for k in store.scan_iter(f"{_PREFIX}{s}:window:*")]
    store.delete(*keys)
