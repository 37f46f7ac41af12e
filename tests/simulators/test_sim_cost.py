"""The simulators' work per lookup does not grow with their size (counted, never timed).

In process: the same request against a world of 50 and of 5,000 ONUs and CPEs, counting the
per-device work the simulator does to answer it (documents built for a GenieACS query, UNIs
built for an ONOS answer, addresses rendered for a NetBox find).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlencode

import pytest

from simulators import access, cpe, netbox
from simulators.server import seed_demo
from simulators.web import Reply, Request
from simulators.world import World

SIZES = (50, 5_000)
ONOS_AUTH = {"authorization": "Basic " + base64.b64encode(b"onos:rocks").decode()}
NETBOX_AUTH = {"authorization": f"Token {netbox.DEFAULT_TOKENS[0]}"}


@pytest.fixture(scope="module")
def worlds() -> dict[int, World]:
    built = {}
    for size in SIZES:
        world = World(onos_user="onos", onos_password="rocks", nas_secret="s")
        seed_demo(world, size)
        # and as many addresses in NetBox, each with its own key, in a pool large enough
        world.netbox.add_prefix("10.0.0.0/16")
        pool = next(p for p in world.netbox.prefixes.values() if str(p.prefix) == "10.0.0.0/16")
        body = json.dumps([{"description": f"key-{n}"} for n in range(size)]).encode()
        reply = world.netbox.handle(
            request("POST", f"/api/ipam/prefixes/{pool.id}/available-ips/", NETBOX_AUTH, body)
        )
        assert reply.status == 201
        built[size] = world
    return built


def request(
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    query: dict[str, str] | None = None,
) -> Request:
    raw = urlencode(query or {})
    return Request(
        method=method,
        path=path,
        query={k: [v] for k, v in (query or {}).items()},
        raw_query=raw,
        headers=headers or {},
        body=body,
        base_url="http://sim",
    )


@pytest.fixture
def count(monkeypatch: pytest.MonkeyPatch) -> Callable[[Any, str], list[int]]:
    """Wraps ``owner.name`` so that each call adds one to the returned counter."""

    def wrap(owner: Any, name: str) -> list[int]:
        calls = [0]
        original = getattr(owner, name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            calls[0] += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, name, counted)
        return calls

    return wrap


def work(
    worlds: dict[int, World], counter: list[int], ask: Callable[[World], Reply]
) -> Iterator[tuple[int, int, bytes]]:
    for size, world in worlds.items():
        counter[0] = 0
        reply = ask(world)
        yield size, counter[0], reply.body


def test_genieacs_queries_by_serial_id_and_tag_build_only_what_they_match(
    worlds: dict[int, World], count: Callable[[Any, str], list[int]]
) -> None:
    documents = count(cpe.Cpe, "document")
    device_id = "A4230F-SimCPE-DEMOCPE0001"
    for world in worlds.values():
        world.genieacs.handle(request("POST", f"/devices/{device_id}/tags/vip"))
    for query in (
        {"_deviceId._SerialNumber": "DEMOCPE0001"},
        {"_id": device_id},
        {"_tags": "vip"},
        # as the reconciliation asks, a batch at a time
        {"_deviceId._SerialNumber": {"$in": ["DEMOCPE0001", "NOSUCHCPE"]}},
        {"_id": {"$in": [device_id, "A4230F-SimCPE-NOSUCHCPE"]}},
        {"_tags": {"$in": ["vip", "nobody"]}},
    ):
        answers = list(
            work(
                worlds,
                documents,
                lambda w, q=query: w.genieacs.handle(  # type: ignore[misc]
                    request("GET", "/devices/", query={"query": json.dumps(q)})
                ),
            )
        )
        # one document built, at either size, and an answer of the same size (the two worlds'
        # timestamps differ)
        assert [built for _, built, _ in answers] == [1, 1], query
        assert len(answers[0][2]) == len(answers[1][2])
        assert json.loads(answers[0][2])[0]["_id"] == device_id


def test_onos_answers_about_one_port_build_only_that_port(
    worlds: dict[int, World], count: Callable[[Any, str], list[int]]
) -> None:
    unis = count(access.AccessNetwork, "_uni")
    paths = (
        ("POST", "/onos/olt/oltapp/services/BBSM00000001-1/100/200/64"),
        ("GET", "/onos/olt/oltapp/programmed-subscribers/of:00000a0a0a0a0a00/16"),
        ("DELETE", "/onos/olt/oltapp/services/BBSM00000001-1/100/200/64"),
    )
    for method, path in paths:
        answers = list(
            work(
                worlds,
                unis,
                lambda w, m=method, p=path: w.onos.handle(  # type: ignore[misc]
                    request(m, p, ONOS_AUTH)
                ),
            )
        )
        assert [built for _, built, _ in answers] == [1, 1], path
        assert answers[0][2] == answers[1][2], path


class ScanCountingDict(dict[Any, Any]):
    """A dict that counts full scans (``values()``), to tell an index lookup from a scan."""

    scans = 0

    def values(self) -> Any:
        type(self).scans += 1
        return super().values()


def test_netbox_finds_an_address_by_its_key_without_scanning_the_others(
    worlds: dict[int, World], monkeypatch: pytest.MonkeyPatch
) -> None:
    for size, world in worlds.items():
        monkeypatch.setattr(world.netbox, "addresses", ScanCountingDict(world.netbox.addresses))
        ScanCountingDict.scans = 0
        reply = world.netbox.handle(
            request("GET", "/api/ipam/ip-addresses/", NETBOX_AUTH, query={"description": "key-7"})
        )
        assert json.loads(reply.body)["count"] == 1, size
        # found through the description index: no pass over the other addresses
        assert ScanCountingDict.scans == 0, size
        # and allocating the next free address does not scan them either
        pool = next(p for p in world.netbox.prefixes.values() if str(p.prefix) == "10.0.0.0/16")
        body = json.dumps({"description": "one-more"}).encode()
        path = f"/api/ipam/prefixes/{pool.id}/available-ips/"
        assert world.netbox.handle(request("POST", path, NETBOX_AUTH, body)).status == 201
        assert ScanCountingDict.scans == 0, size
