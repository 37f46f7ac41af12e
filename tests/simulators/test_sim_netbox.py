"""The NetBox simulator answers as NetBox 4.x does (shared/PROTOCOLS.md)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pynetbox
import requests

from tests.support.simulator_process import SimulatorHandle

TOKEN = "0123456789abcdef0123456789abcdef01234567"
AUTH = {"Authorization": f"Token {TOKEN}"}
FULL = "Insufficient resources are available to satisfy the request"


def nb(sim: SimulatorHandle, method: str, path: str, **kwargs: Any) -> requests.Response:
    headers = {**AUTH, **kwargs.pop("headers", {})}
    return requests.request(
        method, f"{sim.netbox_url}/api/{path}", headers=headers, timeout=5, **kwargs
    )


def allocate(sim: SimulatorHandle, prefix_id: int, body: Any = None) -> requests.Response:
    return nb(sim, "POST", f"ipam/prefixes/{prefix_id}/available-ips/", json=body or {})


def test_requests_without_a_token_are_refused(sim: SimulatorHandle) -> None:
    response = requests.get(f"{sim.netbox_url}/api/ipam/prefixes/", timeout=5)
    assert response.status_code == 403
    assert response.json() == {"detail": "Authentication credentials were not provided."}


def test_tokens_are_checked_against_the_configured_set_like_netbox(sim: SimulatorHandle) -> None:
    # Given NetBox knows the default v1 token and one v2 token
    sim.control("POST", "config", {"netbox_tokens": [TOKEN, "nbt_abc.def123"]}, expect=200)

    def status(header: str) -> tuple[int, str]:
        answer = nb(sim, "GET", "ipam/prefixes/", headers={"Authorization": header})
        return answer.status_code, answer.json()["detail"]

    # Then a well-formed token it does not know is refused as NetBox words it
    assert status("Token " + "f" * 40) == (403, "Invalid v1 token")
    assert status("Token short") == (403, "Invalid v1 token")
    assert status("Bearer nbt_abc.wrong") == (403, "Invalid v2 token")
    assert status("Bearer nbt_nodot")[1].startswith("Invalid authorization header: Could not")
    assert status("Token a b")[1].startswith("Invalid authorization header: Must be")
    # and the known ones pass, v1 under either keyword, as NetBox reads them
    assert nb(sim, "GET", "ipam/prefixes/", headers={"Authorization": f"Token {TOKEN}"}).ok
    assert nb(sim, "GET", "ipam/prefixes/", headers={"Authorization": f"Bearer {TOKEN}"}).ok
    assert nb(sim, "GET", "ipam/prefixes/", headers={"Authorization": "Bearer nbt_abc.def123"}).ok


def test_a_reset_restores_the_default_token_set(sim: SimulatorHandle) -> None:
    sim.control("POST", "config", {"netbox_tokens": ["other"]}, expect=200)
    assert nb(sim, "GET", "ipam/prefixes/").status_code == 403
    sim.reset()
    assert nb(sim, "GET", "ipam/prefixes/").ok
    assert sim.control("GET", "config")["netbox_tokens"] == [TOKEN]


def test_pynetbox_reads_the_api_version_and_finds_a_prefix(sim: SimulatorHandle) -> None:
    api = pynetbox.api(sim.netbox_url, token=TOKEN)
    assert api.version == "4.6"
    prefix = api.ipam.prefixes.get(prefix="100.64.1.0/24")
    assert prefix is not None
    assert prefix.id == 2
    assert api.ipam.prefixes.get(prefix="10.9.9.0/24") is None


def test_allocations_skip_the_network_address_and_are_sequential(sim: SimulatorHandle) -> None:
    first = allocate(sim, 1, {"description": "a", "status": "active"})
    second = allocate(sim, 1, {"description": "b"})
    assert first.status_code == 201
    assert first.json()["address"] == "100.64.0.1/24"
    assert second.json()["address"] == "100.64.0.2/24"
    body = first.json()
    assert body["status"] == {"value": "active", "label": "Active"}
    assert body["description"] == "a"
    assert body["url"] == f"{sim.netbox_url}/api/ipam/ip-addresses/{body['id']}/"
    assert {"display", "family", "tags", "custom_fields", "created"} <= body.keys()


def test_tiny_prefix_fills_then_answers_409(sim: SimulatorHandle) -> None:
    addresses = [allocate(sim, 3).json()["address"] for _ in range(2)]
    assert addresses == ["100.64.255.1/30", "100.64.255.2/30"]  # no broadcast (.3)
    full = allocate(sim, 3)
    assert full.status_code == 409
    assert full.json() == {"detail": FULL}


def test_a_list_asking_for_more_than_is_free_is_refused_whole(sim: SimulatorHandle) -> None:
    response = allocate(sim, 3, [{}, {}, {}])
    assert response.status_code == 409
    assert sim.state()["netbox"]["ip_addresses"] == []
    two = allocate(sim, 3, [{"description": "x"}, {"description": "y"}])
    assert two.status_code == 201
    assert [ip["address"] for ip in two.json()] == ["100.64.255.1/30", "100.64.255.2/30"]


def test_pools_and_point_to_point_prefixes_offer_every_address(sim: SimulatorHandle) -> None:
    p2p = sim.control("POST", "prefixes", {"prefix": "10.0.0.0/31"}, expect=201)
    pool = sim.control("POST", "prefixes", {"prefix": "10.0.1.0/30", "is_pool": True}, expect=201)
    assert allocate(sim, p2p["id"]).json()["address"] == "10.0.0.0/31"
    assert allocate(sim, p2p["id"]).json()["address"] == "10.0.0.1/31"
    assert allocate(sim, pool["id"]).json()["address"] == "10.0.1.0/30"


def test_an_address_in_the_body_is_overwritten(sim: SimulatorHandle) -> None:
    response = allocate(sim, 1, {"address": "100.64.0.200/24"})
    assert response.json()["address"] == "100.64.0.1/24"


def test_missing_prefix_and_bad_bodies(sim: SimulatorHandle) -> None:
    assert allocate(sim, 99).status_code == 404
    not_json = nb(
        sim,
        "POST",
        "ipam/prefixes/1/available-ips/",
        data="{oops",
        headers={"Content-Type": "application/json"},
    )
    assert not_json.status_code == 400
    assert "JSON parse error" in not_json.json()["detail"]
    bad_status = allocate(sim, 1, {"status": "bogus"})
    assert bad_status.status_code == 400
    assert "status" in bad_status.json()
    assert allocate(sim, 1, ["not an object"]).status_code == 400
    assert sim.state()["netbox"]["ip_addresses"] == []


def test_description_filter_is_exact_and_case_sensitive(sim: SimulatorHandle) -> None:
    for description in ("sub-1", "sub-10", "SUB-1"):
        allocate(sim, 1, {"description": description})
    found = nb(sim, "GET", "ipam/ip-addresses/", params={"description": "sub-1"}).json()
    assert found["count"] == 1
    assert [ip["description"] for ip in found["results"]] == ["sub-1"]


def test_lists_page_with_limit_and_offset(sim: SimulatorHandle) -> None:
    allocate(sim, 1, [{} for _ in range(5)])
    first = nb(sim, "GET", "ipam/ip-addresses/", params={"limit": 2}).json()
    assert first["count"] == 5
    assert len(first["results"]) == 2
    assert first["previous"] is None
    assert "offset=2" in first["next"]
    last = nb(sim, "GET", "ipam/ip-addresses/", params={"limit": 2, "offset": 4}).json()
    assert [ip["address"] for ip in last["results"]] == ["100.64.0.5/24"]
    assert last["next"] is None
    assert "offset=2" in last["previous"]
    # pynetbox follows "next" on its own
    api = pynetbox.api(sim.netbox_url, token=TOKEN)
    assert len(list(api.ipam.ip_addresses.filter(limit=2))) == 5


def test_patch_then_delete_twice(sim: SimulatorHandle) -> None:
    ip_id = allocate(sim, 1).json()["id"]
    patched = nb(sim, "PATCH", f"ipam/ip-addresses/{ip_id}/", json={"description": "new"})
    assert patched.status_code == 200
    assert patched.json()["description"] == "new"
    deleted = nb(sim, "DELETE", f"ipam/ip-addresses/{ip_id}/")
    assert deleted.status_code == 204
    assert deleted.content == b""
    again = nb(sim, "DELETE", f"ipam/ip-addresses/{ip_id}/")
    assert again.status_code == 404
    assert again.json() == {"detail": "No IPAddress matches the given query."}


def test_concurrent_allocations_never_share_an_address(sim: SimulatorHandle) -> None:
    with ThreadPoolExecutor(max_workers=16) as pool:
        responses = list(pool.map(lambda i: allocate(sim, 1, {"description": f"c{i}"}), range(40)))
    assert {r.status_code for r in responses} == {201}
    addresses = [r.json()["address"] for r in responses]
    assert len(set(addresses)) == 40


# -- available-prefixes (netbox/ipam/api/views.py AvailablePrefixesView) ---------------------

POOL = "2001:db8:100::/40"


def add_pool(sim: SimulatorHandle, prefix: str = POOL) -> int:
    created: dict[str, Any] = sim.control("POST", "prefixes", {"prefix": prefix}, expect=201)
    return int(created["id"])


def carve(sim: SimulatorHandle, pool_id: int, body: Any) -> requests.Response:
    return nb(sim, "POST", f"ipam/prefixes/{pool_id}/available-prefixes/", json=body)


def test_child_prefixes_are_first_fit_and_become_prefixes(sim: SimulatorHandle) -> None:
    pool = add_pool(sim)
    first = carve(sim, pool, {"prefix_length": 56, "description": "k1"})
    second = carve(sim, pool, {"prefix_length": 56, "description": "k2"})
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["prefix"] == "2001:db8:100::/56"
    assert second.json()["prefix"] == "2001:db8:100:100::/56"
    assert first.json()["status"]["value"] == "active"
    assert first.json()["_depth"] == 1
    # a list in, a list out; the whole pool minus what was taken stays free, in address order
    both = carve(sim, pool, [{"prefix_length": 64}, {"prefix_length": 60}])
    assert [p["prefix"] for p in both.json()] == ["2001:db8:100:200::/64", "2001:db8:100:210::/60"]
    found = nb(sim, "GET", "ipam/prefixes/", params={"description": "k2"}).json()
    assert [p["prefix"] for p in found["results"]] == ["2001:db8:100:100::/56"]


def test_the_get_lists_every_free_block_without_paging(sim: SimulatorHandle) -> None:
    pool = add_pool(sim, "2001:db8:300::/60")
    carve(sim, pool, {"prefix_length": 62})
    free = nb(sim, "GET", f"ipam/prefixes/{pool}/available-prefixes/", params={"limit": 1}).json()
    assert free == [
        {"family": 6, "prefix": "2001:db8:300:4::/62", "vrf": None},
        {"family": 6, "prefix": "2001:db8:300:8::/61", "vrf": None},
    ]


def test_a_full_pool_is_409_and_bad_lengths_are_400_lists(sim: SimulatorHandle) -> None:
    pool = add_pool(sim, "2001:db8:400::/63")
    assert carve(sim, pool, {"prefix_length": 64}).status_code == 201
    # a list asking for more than is free is refused whole
    refused = carve(sim, pool, [{"prefix_length": 64}, {"prefix_length": 64}])
    assert (refused.status_code, refused.json()) == (409, {"detail": FULL})
    assert carve(sim, pool, {"prefix_length": 64}).status_code == 201
    full = carve(sim, pool, {"prefix_length": 64})
    assert (full.status_code, full.json()) == (409, {"detail": FULL})
    # larger than the free space, or than the pool: nothing fits either
    assert carve(sim, add_pool(sim, "2001:db8:500::/56"), {"prefix_length": 48}).status_code == 409
    missing = carve(sim, pool, {"description": "x"})
    assert (missing.status_code, missing.json()) == (
        400,
        [{"prefix_length": ["this field can not be missing"]}],
    )
    assert carve(sim, pool, {"prefix_length": "64"}).json() == [
        {"prefix_length": ["this field must be int type"]}
    ]
    assert carve(sim, pool, {"prefix_length": 129}).json() == [
        {"prefix_length": ["Invalid prefix length (129) for IPv6"]}
    ]
    assert carve(sim, 999, {"prefix_length": 64}).status_code == 404


def test_a_deleted_child_prefix_is_free_again(sim: SimulatorHandle) -> None:
    pool = add_pool(sim, "2001:db8:600::/63")
    child = carve(sim, pool, {"prefix_length": 64}).json()
    assert nb(sim, "DELETE", f"ipam/prefixes/{child['id']}/").status_code == 204
    assert nb(sim, "DELETE", f"ipam/prefixes/{child['id']}/").status_code == 404
    assert carve(sim, pool, {"prefix_length": 64}).json()["prefix"] == child["prefix"]


def test_concurrent_prefix_allocations_never_overlap(sim: SimulatorHandle) -> None:
    pool = add_pool(sim, "2001:db8:700::/48")
    with ThreadPoolExecutor(max_workers=10) as executor:
        answers = list(
            executor.map(lambda i: carve(sim, pool, {"prefix_length": 56}).json(), range(40))
        )
    prefixes = {a["prefix"] for a in answers}
    assert len(prefixes) == 40
