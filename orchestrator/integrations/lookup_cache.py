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
        #: What the last listing said (with what was learnt before it began). Replaced whole,
        #: never changed: a refresh reads the one it was given without the lock.
        self._values: dict[str, V] = {}
        #: What learn() was told since the last listing began: newer than that listing, so it
        #: is read first, and merged into the next listing's starting point. A learn is O(1):
        #: copying a map of 50,000 ONUs at each activation cost a millisecond of CPU and
        #: megabytes of allocation a time.
        self._learned: dict[str, V] = {}
        #: How many listings have replaced the map; a miss remembers the one it saw.
        self._version = 0
        self._lock = threading.Lock()
        self._listing = threading.Lock()

    def _known(self, key: str) -> V | None:
        """Under the lock: the newest value known for ``key``."""
        if key in self._learned:
            return self._learned[key]
        return self._values.get(key)

    def get(self, key: str) -> tuple[V | None, int]:
        """The value known for ``key`` (None if none), and the map's version it came from."""
        with self._lock:
            return self._known(key), self._version

    def learn(self, key: str, value: V) -> None:
        """What another source has just told of one key (it replaces what the map held)."""
        with self._lock:
            self._learned[key] = value

    def refresh(
        self, key: str, seen: int, update: Callable[[Mapping[str, V]], dict[str, V]]
    ) -> V | None:
        """``key``'s value after a refresh newer than version ``seen``: another thread's, if
        one finished since, else our own. ``update`` is given the map as it stands and answers
        the whole new one (from a full listing, or the old map and what changed)."""
        with self._listing:
            with self._lock:
                if self._version != seen and self._known(key) is not None:
                    return self._known(key)
                if self._learned:
                    # What was learnt joins the map this listing starts from; what is learnt
                    # while it runs stays over its answer.
                    self._values = {**self._values, **self._learned}
                    self._learned = {}
                current = self._values
            fresh = update(current)
            with self._lock:
                self._values = fresh
                self._version += 1
                return self._known(key)
