"""A circuit breaker per external system, shared by every worker through Redis.

After ``threshold`` consecutive failures of a system (a timeout, a connection that failed, a
5xx), its circuit opens: calls fail at once with :class:`CircuitOpen` (a TransientError, so the
step retries after its backoff) for ``cooldown`` seconds, without touching the system. Then one
call, the probe, is let through (a ``SET NX`` decides which worker sends it): its success closes
the circuit, its failure opens it for another cool-down. Any answer below 500 is a success: the
system is alive, even when it refuses.

State in Redis, per system: the hash ``circuit:<system>`` (``failures``, ``open_until``) and the
key ``circuit:<system>:probe`` (held by the call that probes). A Redis that does not answer never
blocks a call: the breaker then lets everything through (and logs it).

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

    @classmethod
    def for_system(cls, system: str) -> CircuitBreaker:
        settings = get_settings()
        return cls(
            system,
            max(settings.circuit_failure_threshold, 1),
            settings.circuit_cooldown_seconds,
            settings.circuit_redis_url,
        )

    @property
    def _key(self) -> str:
        return f"{_PREFIX}{self.system}"

    @property
    def _probe_key(self) -> str:
        return f"{_PREFIX}{self.system}:probe"

    def before_call(self, operation: str) -> None:
        """Raises :class:`CircuitOpen` unless the call may go out (closed, or the probe)."""
        try:
            open_until = _redis(self.redis_url).hget(self._key, "open_until")
            if open_until is None:
                return
            retry_at = float(open_until)
            if time.time() >= retry_at and _redis(self.redis_url).set(
                # the probe's claim outlives a call's timeouts, then lapses (a dead prober)
                self._probe_key,
                "1",
                nx=True,
                ex=max(int(self.cooldown), 30),
            ):
                log.info("circuit for %s half-open: %s is the probe", self.system, operation)
                return
        except redis.RedisError as exc:
            log.warning("circuit breaker store unavailable (%s): call let through", exc)
            return
        wait = max(retry_at - time.time(), 0.0)
        raise CircuitOpen(
            f"{self.system} {operation}: circuit open for {self.system} "
            f"(after {self.threshold} consecutive failures; next probe in {wait:.0f} s)",
            system=self.system,
            operation=operation,
        )

    def record_success(self) -> None:
        try:
            _redis(self.redis_url).delete(self._key, self._probe_key)
        except redis.RedisError as exc:
            log.warning("circuit breaker store unavailable (%s)", exc)

    def record_failure(self) -> None:
        try:
            store = _redis(self.redis_url)
            failures = int(store.hincrby(self._key, "failures", 1))
            if failures >= self.threshold:
                pipe = store.pipeline()
                pipe.hset(self._key, "open_until", time.time() + self.cooldown)
                pipe.delete(self._probe_key)
                pipe.expire(self._key, int(self.cooldown) + 3600)
                pipe.execute()
                if failures == self.threshold:
                    log.warning(
                        "circuit for %s open for %.0f s after %d consecutive failures",
                        self.system,
                        self.cooldown,
                        failures,
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
    store.delete(*keys)
