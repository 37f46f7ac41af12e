"""Faults, latency and request counters, shared by every simulated system.

A request is identified by a *target*: ``"METHOD /path"`` relative to the system's root for HTTP
(``"POST /api/ipam/prefixes/1/available-ips/"`` for NetBox), the bare method name for gRPC
(``"ListDevices"``), or the packet type and the User-Name for RADIUS (``"Disconnect-Request
alice"`` for the NAS). Rules match a target with ``re.search``.
"""

from __future__ import annotations

import random
import re
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

SYSTEMS = ("netbox", "onos", "voltha", "genieacs", "nas")
MODES = ("error", "timeout", "reset", "after_effect")
# The NAS answers an "error" with a NAK whose Error-Cause is the fault's status: one of the
# causes RFC 5176 section 3.5 defines for a NAK. 506 "Resources Unavailable" stands in for HTTP's
# 500 when none is given.
NAS_ERROR_CAUSES = frozenset(range(401, 408)) | frozenset(range(501, 509))
_DEFAULT_STATUS = {"nas": 506}


class SpecError(ValueError):
    """Raised when a fault or latency rule posted to the control API is malformed."""


@dataclass
class Fault:
    system: str
    match: re.Pattern[str]
    mode: str
    status: int
    #: how many more requests this fault hits; None means forever
    remaining: int | None
    #: how long a "timeout" fault holds the request; None means the simulator's default
    hold_s: float | None
    #: the share of matching requests the fault hits (1.0: every one); a request it spares
    #: consumes no use and goes on to the next rule, so a campaign can stack one rule per mode
    probability: float = 1.0
    #: the seed the fault's draws start from (None: the OS's entropy), for repeatable tests
    seed: int | None = None
    #: how many requests it hit so far (shown by GET /_sim/faults: the share actually failed)
    hits: int = 0
    #: the fault's own generator: its draws do not depend on other faults or on threads' order
    #: of arrival at other rules (FaultBook draws under its lock)
    rng: random.Random = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def hits_now(self) -> bool:
        """One draw: does this matching request get the fault? (Called under the book's lock.)"""
        return self.probability >= 1.0 or self.rng.random() < self.probability

    def to_dict(self) -> dict[str, Any]:
        return {
            "system": self.system,
            "match": self.match.pattern,
            "mode": self.mode,
            "status": self.status,
            "remaining": self.remaining,
            "hold_s": self.hold_s,
            "probability": self.probability,
            "seed": self.seed,
            "hits": self.hits,
        }


@dataclass(frozen=True)
class Latency:
    system: str
    match: re.Pattern[str]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {"system": self.system, "match": self.match.pattern, "ms": self.seconds * 1000}


def _system(spec: Mapping[str, Any]) -> str:
    system = spec.get("system")
    if system not in SYSTEMS:
        raise SpecError(f"system must be one of {', '.join(SYSTEMS)}")
    return str(system)


def _pattern(spec: Mapping[str, Any]) -> re.Pattern[str]:
    match = spec.get("match", "")
    if not isinstance(match, str):
        raise SpecError("match must be a string (a regular expression)")
    try:
        return re.compile(match)
    except re.error as exc:
        raise SpecError(f"match is not a valid regular expression: {exc}") from exc


def _number(spec: Mapping[str, Any], name: str, default: float | None) -> float | None:
    value = spec.get(name, default)
    if value is None:
        return None
    # bool is an int subclass; "count": true is a mistake, not 1
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SpecError(f"{name} must be a number")
    return float(value)


def parse_fault(spec: Mapping[str, Any]) -> Fault:
    system = _system(spec)
    mode = spec.get("mode")
    if mode not in MODES:
        raise SpecError(f"mode must be one of {', '.join(MODES)}")
    status = _number(spec, "status", _DEFAULT_STATUS.get(system, 500))
    if system == "nas":
        if status not in NAS_ERROR_CAUSES:
            raise SpecError("for nas, status is the NAK's Error-Cause: 401-407 or 501-508")
    elif status is None or not 400 <= status <= 599 or status != int(status):
        raise SpecError("status must be an HTTP error status (400-599)")
    count = _number(spec, "count", 1)
    if count is None or count != int(count) or count < -1:
        raise SpecError("count must be a positive integer, or 0 / -1 for forever")
    hold_s = _number(spec, "hold_s", None)
    if hold_s is not None and hold_s < 0:
        raise SpecError("hold_s must not be negative")
    probability = _number(spec, "probability", 1.0)
    if probability is None or not 0.0 < probability <= 1.0:
        raise SpecError("probability must be a number in (0, 1]")
    seed = _number(spec, "seed", None)
    if seed is not None and seed != int(seed):
        raise SpecError("seed must be an integer")
    return Fault(
        system=system,
        match=_pattern(spec),
        mode=str(mode),
        status=int(status),
        remaining=None if count <= 0 else int(count),
        hold_s=hold_s,
        probability=probability,
        seed=None if seed is None else int(seed),
    )


def parse_latency(spec: Mapping[str, Any]) -> Latency:
    system = _system(spec)
    ms = _number(spec, "ms", None)
    if ms is None or ms < 0:
        raise SpecError("ms must be a non-negative number")
    return Latency(system=system, match=_pattern(spec), seconds=ms / 1000)


class FaultBook:
    """Thread-safe registry of faults, latencies and per-system request counters."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._latencies: list[Latency] = []
        self._counters: dict[str, Counter[str]] = {system: Counter() for system in SYSTEMS}

    def add_fault(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def add_latency(self, latency: Latency) -> None:
        with self._lock:
            self._latencies.append(latency)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def clear_latencies(self) -> None:
        with self._lock:
            self._latencies.clear()

    def reset(self) -> None:
        with self._lock:
            self._faults.clear()
            self._latencies.clear()
            for counter in self._counters.values():
                counter.clear()

    def record(self, system: str, target: str) -> None:
        with self._lock:
            self._counters[system][target] += 1

    def take(self, system: str, target: str) -> Fault | None:
        """The first fault that matches and hits (see ``Fault.probability``), with one use
        consumed (rules apply in insertion order)."""
        with self._lock:
            for fault in self._faults:
                if fault.system == system and fault.match.search(target) and fault.hits_now():
                    fault.hits += 1
                    if fault.remaining is not None:
                        fault.remaining -= 1
                        if fault.remaining == 0:
                            self._faults.remove(fault)
                    return fault
        return None

    def delay_for(self, system: str, target: str) -> float:
        with self._lock:
            return sum(
                rule.seconds
                for rule in self._latencies
                if rule.system == system and rule.match.search(target)
            )

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "faults": [fault.to_dict() for fault in self._faults],
                "latency": [rule.to_dict() for rule in self._latencies],
                "counters": {
                    system: {"total": sum(counter.values()), "by_target": dict(counter)}
                    for system, counter in self._counters.items()
                },
            }
