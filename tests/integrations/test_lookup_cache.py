"""The lookup cache the VOLTHA and ONOS clients share between a worker's threads."""

from __future__ import annotations

import threading
import tracemalloc
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

from orchestrator.integrations.lookup_cache import LookupCache


def test_threads_that_miss_together_list_once():
    cache: LookupCache[str] = LookupCache()
    listings = 0
    release = threading.Event()
    all_missed = threading.Barrier(20)

    def list_all(known: Mapping[str, str]) -> dict[str, str]:
        nonlocal listings
        listings += 1
        release.wait(5)  # the others pile up behind this listing meanwhile
        return {f"onu-{n}": f"id-{n}" for n in range(20)}

    def look_up(n: int) -> str | None:
        value, seen = cache.get(f"onu-{n}")
        assert value is None
        all_missed.wait(5)
        if n == 0:
            threading.Timer(0.2, release.set).start()
        return cache.refresh(f"onu-{n}", seen, list_all)

    with ThreadPoolExecutor(20) as pool:
        found = list(pool.map(look_up, range(20)))

    assert found == [f"id-{n}" for n in range(20)]
    assert listings == 1


def test_a_key_missing_from_a_newer_listing_lists_again():
    cache: LookupCache[str] = LookupCache()
    _, seen = cache.get("a")
    assert cache.refresh("a", seen, lambda known: {"b": "1"}) is None
    # a miss that saw the old version, for a key the newer listing lacks, lists for itself
    assert cache.refresh("a", seen, lambda known: {**known, "a": "2"}) == "2"
    assert cache.get("a") == ("2", 2)


def test_a_refresh_is_given_the_map_as_it_stands():
    # what lets a client fetch only what it does not know yet (VOLTHA's new device ids)
    cache: LookupCache[str] = LookupCache()
    cache.refresh("a", 0, lambda known: {"a": "1", "b": "2"})
    given: list[dict[str, str]] = []

    def update(known: Mapping[str, str]) -> dict[str, str]:
        given.append(dict(known))
        return {**known, "c": "3"}

    _, seen = cache.get("c")
    assert cache.refresh("c", seen, update) == "3"
    assert given == [{"a": "1", "b": "2"}]
    assert cache.get("b") == ("2", 2)


def test_what_is_learnt_while_a_refresh_lists_outlives_that_refresh():
    # A port VOLTHA located while a listing of every port was on its way: the listing is older
    cache: LookupCache[str] = LookupCache()

    def listing_from_before(known: Mapping[str, str]) -> dict[str, str]:
        cache.learn("onu-new", "of:0000000000000001/16")  # another thread, meanwhile
        return {"onu-old": "of:0000000000000001/32", "onu-new": "of:0000000000000002/48"}

    assert cache.refresh("onu-old", 0, listing_from_before) == "of:0000000000000001/32"
    assert cache.get("onu-new")[0] == "of:0000000000000001/16"
    # and it is not laid over the next refresh's answer again
    cache.refresh("onu-x", 1, lambda known: {"onu-new": "of:0000000000000003/64"})
    assert cache.get("onu-new")[0] == "of:0000000000000003/64"


def test_a_learn_allocates_one_entry_not_a_copy_of_the_network():
    # Given a map of 50,000 ONUs (one worker's view of a carrier's network)
    cache: LookupCache[str] = LookupCache()
    cache.refresh("x", 0, lambda known: {f"ONU{n:08d}": f"device-{n}" for n in range(50_000)})

    # When a thousand activations each learn one location
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(1000):
            cache.learn(f"ONU{n:08d}", f"moved-{n}")
        grown = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()

    # Then their peak allocation is that of a thousand entries (a copy of the map each, or even
    # one, is megabytes), and each is read back
    assert grown < 500_000, grown
    assert cache.get("ONU00000999")[0] == "moved-999"
    assert cache.get("ONU00001000")[0] == "device-1000"
