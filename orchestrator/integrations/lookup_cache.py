"""A name -> value map that a process's threads share, refreshed on a miss.

VOLTHA finds a device by id only and ONOS a port by its device only, so a client keeps what the
last full listing said (serial -> device id, port name -> location). A thread-pool worker runs
a hundred steps at once: when a bulk job starts, every thread misses at the same moment, and a
refresh each would ask VOLTHA or ONOS for the whole network a hundred times over (and hold a
hundred copies of it). Here one listing runs at a time; a thread that missed while another
listed takes that listing's answer instead of listing again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Generic, TypeVar

V = TypeVar("V")


class LookupCache(Generic[V]):
    def __init__(self) -> None:
        self._values: dict[str, V] = {}
        #: How many listings have replaced the map; a miss remembers the one it saw.
        self._version = 0
        #: What learn() was told since the running refresh took its copy of the map: newer
        #: than that refresh's listing, so laid over its answer.
        self._learned: dict[str, V] = {}
        self._lock = threading.Lock()
        self._listing = threading.Lock()

    def get(self, key: str) -> tuple[V | None, int]:
        """The value known for ``key`` (None if none), and the map's version it came from."""
        with self._lock:
            return self._values.get(key), self._version

    def learn(self, key: str, value: V) -> None:
        """What another source has just told of one key (it replaces what the map held)."""
        with self._lock:
            if self._values.get(key) != value:
                # a copy: a refresh may be reading the map it was given (it is never changed)
                self._values = {**self._values, key: value}
            self._learned[key] = value

    def refresh(
        self, key: str, seen: int, update: Callable[[Mapping[str, V]], dict[str, V]]
    ) -> V | None:
        """``key``'s value after a refresh newer than version ``seen``: another thread's, if
        one finished since, else our own. ``update`` is given the map as it stands and answers
        the whole new one (from a full listing, or the old map and what changed)."""
        with self._listing:
            with self._lock:
                if self._version != seen and key in self._values:
                    return self._values[key]
                current = self._values
                self._learned = {}
            # the map is replaced, never changed in place: ``current`` stays as it was
            fresh = update(current)
            with self._lock:
                if self._learned:
                    fresh = {**fresh, **self._learned}
                    self._learned = {}
                self._values = fresh
                self._version += 1
            return fresh.get(key)
