"""Everything the simulators hold, in one object: the systems, the faults and the knobs."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from simulators import control
from simulators.access import AccessNetwork
from simulators.faults import SYSTEMS, Fault, FaultBook
from simulators.genieacs import HEAD_LIMIT as GENIEACS_HEAD_LIMIT
from simulators.genieacs import GenieAcsSim
from simulators.nas import NasSim
from simulators.netbox import DEFAULT_TOKENS, NetBoxSim
from simulators.onos import OnosSim
from simulators.web import Mount, Reply, Request

JOURNAL_SIZE = 1000


@dataclass
class SimConfig:
    #: how long a "timeout" fault holds a request when the fault names no hold_s
    hold_s: float = 30.0
    #: how long after a POST ONOS shows a service as programmed
    onos_program_delay_s: float = 0.0
    #: the API tokens NetBox knows (v1 plaintexts, v2 as "nbt_<key>.<token>")
    netbox_tokens: tuple[str, ...] = DEFAULT_TOKENS
    #: GenieACS's cwmp.retryDelay: a fault is retried at an inform this long (x 2^retries) later
    genieacs_retry_delay_s: float = 300.0
    #: how long a GenieACS POST with ?connection_request waits for the device's session lock
    genieacs_lock_wait_s: float = 30.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "hold_s": self.hold_s,
            "onos_program_delay_ms": self.onos_program_delay_s * 1000,
            "netbox_tokens": list(self.netbox_tokens),
            "genieacs_retry_delay_s": self.genieacs_retry_delay_s,
            "genieacs_lock_wait_s": self.genieacs_lock_wait_s,
        }


class World:
    def __init__(
        self,
        *,
        hold_s: float = 30.0,
        onos_user: str,
        onos_password: str,
        nas_secret: str,
        netbox_tokens: tuple[str, ...] = DEFAULT_TOKENS,
    ) -> None:
        self._defaults = SimConfig(hold_s=hold_s, netbox_tokens=netbox_tokens)
        self.config = replace(self._defaults)
        self.faults = FaultBook()
        self.access = AccessNetwork()
        self.netbox = NetBoxSim(tokens=lambda: self.config.netbox_tokens)
        self.onos = OnosSim(
            self.access,
            user=onos_user,
            password=onos_password,
            program_delay=lambda: self.config.onos_program_delay_s,
        )
        self.genieacs = GenieAcsSim(
            retry_delay=lambda: self.config.genieacs_retry_delay_s,
            lock_wait=lambda: self.config.genieacs_lock_wait_s,
        )
        # not mounted: the NAS speaks RADIUS over UDP (simulators/nas.py NasServer)
        self.nas = NasSim(nas_secret)
        self._mounts = [
            Mount("/netbox", True, self.netbox),
            Mount("/genieacs", True, self.genieacs, GENIEACS_HEAD_LIMIT),
            Mount("/onos", False, self.onos),
        ]
        self._journal: deque[dict[str, Any]] = deque(maxlen=JOURNAL_SIZE)
        self._journal_lock = threading.Lock()
        self._release_lock = threading.Lock()
        self._release = threading.Event()
        self._flight_lock = threading.Lock()
        #: requests being handled now, and the most ever at once since the last reset, per system
        self._in_flight = dict.fromkeys(SYSTEMS, 0)
        self._max_concurrent = dict.fromkeys(SYSTEMS, 0)
        self.reset()

    # -- the hooks the HTTP front and the gRPC servicer call ---------------------------------

    def mounts(self) -> list[Mount]:
        return self._mounts

    def before(self, system: str, target: str, record: dict[str, Any]) -> Fault | None:
        self.faults.record(system, target)
        with self._journal_lock:
            self._journal.append({"system": system, "target": target, **record})
        delay = self.faults.delay_for(system, target)
        if delay:
            self.hold(delay)
        return self.faults.take(system, target)

    @contextmanager
    def in_flight(self, system: str) -> Iterator[None]:
        """Counts a request of ``system`` as in flight for the block's duration.

        The fronts enter once the request is read and leave before the answer is written: a
        client that sends its next call only after an answer can never be counted twice, so
        ``max_concurrent`` is exactly the most calls a client had open at once (what a
        per-system concurrency limit in the orchestrator is tested against).
        """
        with self._flight_lock:
            self._in_flight[system] += 1
            self._max_concurrent[system] = max(
                self._max_concurrent[system], self._in_flight[system]
            )
        try:
            yield
        finally:
            with self._flight_lock:
                self._in_flight[system] -= 1

    def max_concurrent(self) -> dict[str, int]:
        with self._flight_lock:
            return dict(self._max_concurrent)

    def hold(self, seconds: float | None, *, at_most: float | None = None) -> None:
        duration = self.config.hold_s if seconds is None else seconds
        if at_most is not None:
            duration = min(duration, at_most)
        with self._release_lock:
            release = self._release
        # an Event, not sleep(): a reset or a shutdown lets every held request go at once
        release.wait(max(duration, 0.0))

    def control(self, request: Request) -> Reply:
        return control.handle(self, request)

    # -- whole-world operations --------------------------------------------------------------

    def release_held(self, *, for_good: bool = False) -> None:
        with self._release_lock:
            self._release.set()
            if not for_good:
                self._release = threading.Event()

    def reset(self) -> None:
        self.release_held()
        self.faults.reset()
        self.config = replace(self._defaults)
        self.access.reset()
        self.netbox.reset()
        self.onos.reset()
        self.genieacs.reset()
        self.nas.reset()
        with self._journal_lock:
            self._journal.clear()
        with self._flight_lock:
            # requests still being answered (held ones just let go) stay counted until they end
            self._max_concurrent = dict(self._in_flight)

    def journal(self, system: str | None) -> list[dict[str, Any]]:
        with self._journal_lock:
            return [entry for entry in self._journal if system in (None, entry["system"])]

    def voltha_view(self) -> dict[str, Any]:
        devices = self.access.snapshot()
        of_ids = {olt.id: self.access.of_device_id(olt) for olt in self.access.olts()}
        for device in devices:
            device["of_device_id"] = of_ids.get(
                device["id"] if device["root"] else device["parent_id"]
            )
        return {"devices": devices}

    def state(self, base_url: str) -> dict[str, Any]:
        faults = self.faults.snapshot()
        return {
            "netbox": self.netbox.snapshot(f"{base_url}/netbox"),
            "onos": self.onos.snapshot(),
            "genieacs": self.genieacs.snapshot(),
            "voltha": self.voltha_view(),
            "nas": self.nas.snapshot(),
            "counters": faults["counters"],
            "max_concurrent": self.max_concurrent(),
            "faults": faults["faults"],
            "latency": faults["latency"],
            "config": self.config.to_dict(),
        }
