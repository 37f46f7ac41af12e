"""NetBoxClient against the NetBox simulator, through pynetbox's own calls."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from orchestrator.config import Settings
from orchestrator.errors import PermanentError, ResourceNotFound, TransientError
from orchestrator.integrations.http import RetryPolicy, Timeouts
from orchestrator.integrations.netbox import IpAllocation, NetBoxClient
from tests.support.simulator_process import SimulatorHandle

TOKEN = "0123456789abcdef0123456789abcdef01234567"
PREFIX = "100.64.0.0/24"
ALLOCATE = "^POST /api/ipam/prefixes/1/available-ips/$"


def make_client(sim: SimulatorHandle, token: str = TOKEN) -> NetBoxClient:
    return NetBoxClient(
        sim.netbox_url,
        token,
        timeouts=Timeouts(connect=1, read=0.5),
        retry=RetryPolicy(attempts=3, initial_wait=0.01, max_wait=0.02),
    )


@pytest.fixture
def netbox(sim: SimulatorHandle) -> NetBoxClient:
    return make_client(sim)


def ips(sim: SimulatorHandle) -> list[tuple[str, str]]:
    return [(ip["address"], ip["description"]) for ip in sim.state()["netbox"]["ip_addresses"]]


def posts(sim: SimulatorHandle) -> int:
    by_target = sim.state()["counters"]["netbox"]["by_target"]
    return by_target.get("POST /api/ipam/prefixes/1/available-ips/", 0)


def test_from_settings_uses_the_configured_url() -> None:
    client = NetBoxClient.from_settings(Settings(netbox_url="http://netbox.example"))
    assert "netbox.example" in repr(client)


def test_allocate_takes_the_first_free_host_and_is_idempotent_by_key(
    sim: SimulatorHandle, netbox: NetBoxClient
) -> None:
    first = netbox.allocate_ip(PREFIX, "sub-1")
    again = netbox.allocate_ip(PREFIX, "sub-1")
    other = netbox.allocate_ip(PREFIX, "sub-2")
    assert first == again == IpAllocation(id=first.id, address="100.64.0.1/24")
    assert first.ip == "100.64.0.1"
    assert other.address == "100.64.0.2/24"
    assert posts(sim) == 2


def test_the_post_has_the_shape_netbox_documents(
    sim: SimulatorHandle, netbox: NetBoxClient
) -> None:
    netbox.allocate_ip(PREFIX, "sub-1")
    [post] = [r for r in sim.requests("netbox") if r["method"] == "POST"]
    assert post["path"] == "/api/ipam/prefixes/1/available-ips/"
    assert post["body"] == {"description": "sub-1", "status": "active"}
    assert post["auth_scheme"] == "Token"


def test_a_v2_token_is_sent_as_bearer(sim: SimulatorHandle) -> None:
    sim.control("POST", "config", {"netbox_tokens": ["nbt_abc123.secretpart"]}, expect=200)
    make_client(sim, token="nbt_abc123.secretpart").allocate_ip(PREFIX, "sub-1")
    assert {r["auth_scheme"] for r in sim.requests("netbox")} == {"Bearer"}


def test_find_by_key_is_exact(sim: SimulatorHandle, netbox: NetBoxClient) -> None:
    created = netbox.allocate_ip(PREFIX, "sub-1")
    assert netbox.find_ip_by_key("sub-1") == created
    assert netbox.find_ip_by_key("SUB-1") is None
    assert netbox.find_ip_by_key("sub-") is None


def test_a_full_prefix_is_permanent_and_not_retried(
    sim: SimulatorHandle, netbox: NetBoxClient
) -> None:
    tiny = "100.64.255.0/30"
    netbox.allocate_ip(tiny, "a")
    netbox.allocate_ip(tiny, "b")
    with pytest.raises(PermanentError) as raised:
        netbox.allocate_ip(tiny, "c")
    assert raised.value.status == 409
    counters = sim.state()["counters"]["netbox"]["by_target"]
    assert counters["POST /api/ipam/prefixes/3/available-ips/"] == 3


def test_a_missing_prefix_is_permanent_with_a_clear_message(
    sim: SimulatorHandle, netbox: NetBoxClient
) -> None:
    with pytest.raises(PermanentError) as raised:
        netbox.allocate_ip("10.99.0.0/24", "sub-1")
    assert "10.99.0.0/24 does not exist" in str(raised.value)
    assert ips(sim) == []


def test_after_effect_then_retry_finds_the_same_address(
    sim: SimulatorHandle, netbox: NetBoxClient
) -> None:
    # Given NetBox allocates but the answer is lost
    sim.fault("netbox", ALLOCATE, "after_effect")
    with pytest.raises(TransientError):
        netbox.allocate_ip(PREFIX, "sub-1")
    # When the step tries again
    allocation = netbox.allocate_ip(PREFIX, "sub-1")
    # Then it adopts the address the lost call made: one address, one POST
    assert allocation.address == "100.64.0.1/24"
    assert ips(sim) == [("100.64.0.1/24", "sub-1")]
    assert posts(sim) == 1


def test_a_timed_out_post_is_transient_and_not_resent(
    sim: SimulatorHandle, netbox: NetBoxClient
) -> None:
    sim.fault("netbox", ALLOCATE, "timeout")
    with pytest.raises(TransientError) as raised:
        netbox.allocate_ip(PREFIX, "sub-1")
    assert "timed out" in str(raised.value)
    assert posts(sim) == 1
    assert ips(sim) == []


def test_a_reset_post_is_transient(sim: SimulatorHandle, netbox: NetBoxClient) -> None:
    sim.fault("netbox", ALLOCATE, "reset")
    with pytest.raises(TransientError):
        netbox.allocate_ip(PREFIX, "sub-1")
    assert ips(sim) == []
    assert netbox.allocate_ip(PREFIX, "sub-1").address == "100.64.0.1/24"


@pytest.mark.parametrize(("status", "error"), [(500, TransientError), (403, PermanentError)])
def test_post_errors_are_mapped_and_not_retried(
    sim: SimulatorHandle, netbox: NetBoxClient, status: int, error: type[Exception]
) -> None:
    sim.fault("netbox", ALLOCATE, "error", status=status, count=0)
    with pytest.raises(error) as raised:
        netbox.allocate_ip(PREFIX, "sub-1")
    assert raised.value.status == status  # type: ignore[attr-defined]
    assert raised.value.operation == "allocate_ip"  # type: ignore[attr-defined]
    assert posts(sim) == 1


def test_reads_are_retried_through_brief_failures(
    sim: SimulatorHandle, netbox: NetBoxClient
) -> None:
    sim.fault("netbox", "^GET /api/ipam/ip-addresses/", "error", status=503, count=2)
    assert netbox.allocate_ip(PREFIX, "sub-1").address == "100.64.0.1/24"


def test_reads_give_up_as_transient(sim: SimulatorHandle, netbox: NetBoxClient) -> None:
    sim.fault("netbox", "^GET ", "reset", count=0)
    with pytest.raises(TransientError):
        netbox.find_ip_by_key("sub-1")
    assert sim.state()["counters"]["netbox"]["total"] == 3


def test_release_twice_is_fine_and_errors_are_transient(
    sim: SimulatorHandle, netbox: NetBoxClient
) -> None:
    allocation = netbox.allocate_ip(PREFIX, "sub-1")
    netbox.release_ip(allocation.id)
    netbox.release_ip(allocation.id)  # 404: already released
    assert ips(sim) == []
    other = netbox.allocate_ip(PREFIX, "sub-2")
    sim.fault("netbox", "^DELETE ", "error", status=502, count=0)
    with pytest.raises(TransientError):
        netbox.release_ip(other.id)
    assert len(ips(sim)) == 1


def test_release_by_key_removes_every_copy(sim: SimulatorHandle, netbox: NetBoxClient) -> None:
    requests.post(
        f"{sim.netbox_url}/api/ipam/prefixes/1/available-ips/",
        headers={"Authorization": f"Token {TOKEN}"},
        json=[{"description": "dup"}, {"description": "dup"}, {"description": "keep"}],
        timeout=5,
    )
    assert netbox.release_by_key("dup") == 2
    assert netbox.release_by_key("dup") == 0
    assert [d for _, d in ips(sim)] == ["keep"]


def test_racing_allocations_of_one_key_converge_on_one_address(sim: SimulatorHandle) -> None:
    clients = [make_client(sim) for _ in range(6)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda c: c.allocate_ip(PREFIX, "sub-1"), clients))
    assert len(set(results)) == 1
    assert ips(sim) == [(results[0].address, "sub-1")]


def test_a_wrong_url_is_not_mistaken_for_a_released_address(sim: SimulatorHandle) -> None:
    wrong = NetBoxClient(f"{sim.http_url}/not-netbox", TOKEN, retry=RetryPolicy(attempts=1))
    with pytest.raises(PermanentError) as raised:
        wrong.release_by_key("sub-1")
    assert not isinstance(raised.value, ResourceNotFound)
    assert raised.value.status == 404


def test_the_token_appears_in_no_error_or_repr(sim: SimulatorHandle, netbox: NetBoxClient) -> None:
    sim.fault("netbox", ALLOCATE, "error", status=403)
    with pytest.raises(PermanentError) as raised:
        netbox.allocate_ip(PREFIX, "sub-1")
    assert TOKEN not in str(raised.value)
    assert TOKEN not in repr(raised.value.to_dict())
    assert TOKEN not in repr(netbox)


# -- IPv6 prefixes and the findings of issue 8 item 6 ----------------------------------------

POOL = "2001:db8:100::/40"


def add_pool(sim: SimulatorHandle, prefix: str = POOL) -> int:
    return int(sim.control("POST", "prefixes", {"prefix": prefix}, expect=201)["id"])


def child_prefixes(sim: SimulatorHandle) -> list[tuple[str, str]]:
    return [
        (p["prefix"], p["description"])
        for p in sim.state()["netbox"]["prefixes"]
        if p["description"]
    ]


def test_a_prefix_is_carved_once_per_key(sim: SimulatorHandle, netbox: NetBoxClient) -> None:
    pool_id = add_pool(sim)
    first = netbox.allocate_prefix(POOL, 56, "sub-1")
    again = netbox.allocate_prefix(POOL, 56, "sub-1")
    wan = netbox.allocate_prefix(POOL, 64, "sub-1:wan")
    assert first == again
    assert first.prefix == "2001:db8:100::/56"
    assert wan.prefix == "2001:db8:100:100::/64"
    assert netbox.find_prefix_by_key("sub-1") == first
    [post, _] = [r for r in sim.requests("netbox") if r["method"] == "POST"]
    assert post["path"] == f"/api/ipam/prefixes/{pool_id}/available-prefixes/"
    assert post["body"] == {"prefix_length": 56, "status": "active", "description": "sub-1"}
    assert netbox.release_prefixes_by_key("sub-1") == 1
    assert netbox.release_prefixes_by_key("sub-1") == 0
    assert child_prefixes(sim) == [("2001:db8:100:100::/64", "sub-1:wan")]


def test_a_lost_answer_is_adopted_not_repeated(sim: SimulatorHandle, netbox: NetBoxClient) -> None:
    pool_id = add_pool(sim)
    sim.fault("netbox", f"^POST /api/ipam/prefixes/{pool_id}/available-prefixes/", "after_effect")
    with pytest.raises(TransientError):
        netbox.allocate_prefix(POOL, 56, "sub-1")
    assert netbox.allocate_prefix(POOL, 56, "sub-1").prefix == "2001:db8:100::/56"
    assert child_prefixes(sim) == [("2001:db8:100::/56", "sub-1")]


def test_a_full_pool_is_permanent_and_names_the_pool(
    sim: SimulatorHandle, netbox: NetBoxClient
) -> None:
    add_pool(sim, "2001:db8:200::/63")
    netbox.allocate_prefix("2001:db8:200::/63", 64, "a")
    netbox.allocate_prefix("2001:db8:200::/63", 64, "b")
    with pytest.raises(PermanentError) as raised:
        netbox.allocate_prefix("2001:db8:200::/63", 64, "c")
    assert raised.value.status == 409
    assert "no free /64 left in the pool 2001:db8:200::/63" in str(raised.value)


def test_prefix_exists(sim: SimulatorHandle, netbox: NetBoxClient) -> None:
    add_pool(sim)
    assert netbox.prefix_exists(POOL)
    assert not netbox.prefix_exists("2001:db8:9900::/40")


@pytest.mark.parametrize("kind", ["address", "prefix"])
def test_duplicates_of_a_key_are_released_but_the_oldest(
    sim: SimulatorHandle, netbox: NetBoxClient, kind: str
) -> None:
    # Given a lost race left three objects carrying one key
    pool_id = add_pool(sim)
    path, item = (
        ("1/available-ips/", {"description": "dup"})
        if kind == "address"
        else (f"{pool_id}/available-prefixes/", {"prefix_length": 56, "description": "dup"})
    )
    made = requests.post(
        f"{sim.netbox_url}/api/ipam/prefixes/{path}",
        headers={"Authorization": f"Token {TOKEN}"},
        json=[item, item, item],
        timeout=5,
    ).json()
    # When the key is looked up (as a retry of the step does)
    find = netbox.find_ip_by_key if kind == "address" else netbox.find_prefix_by_key
    kept = find("dup")
    # Then the oldest is kept and the others are released, not left allocated
    assert kept is not None and kept.id == made[0]["id"]
    state = sim.state()["netbox"]
    holders = state["ip_addresses"] if kind == "address" else state["prefixes"]
    assert [o["id"] for o in holders if o["description"] == "dup"] == [made[0]["id"]]


class _HtmlNotFound(BaseHTTPRequestHandler):
    """What NetBox (Django) answers for a path it does not know: a page of HTML."""

    def do_GET(self) -> None:  # http.server's naming
        body = b"<!DOCTYPE html><html><head><title>Page Not Found</title></head></html>"
        self.send_response(404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_an_html_answer_is_named_not_quoted() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _HtmlNotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/netbox"
        wrong = NetBoxClient(url, TOKEN, retry=RetryPolicy(attempts=1))
        with pytest.raises(PermanentError) as raised:
            wrong.release_by_key("sub-1")
    finally:
        server.shutdown()
        server.server_close()
    assert "<" not in str(raised.value)
    assert "text/html" in str(raised.value)
    assert raised.value.status == 404
    assert not isinstance(raised.value, ResourceNotFound)


def test_an_unknown_token_is_a_permanent_403(sim: SimulatorHandle) -> None:
    with pytest.raises(PermanentError) as raised:
        make_client(sim, token="f" * 40).find_ip_by_key("sub-1")
    assert raised.value.status == 403
    assert "Invalid v1 token" in str(raised.value)
    assert "f" * 40 not in str(raised.value)
