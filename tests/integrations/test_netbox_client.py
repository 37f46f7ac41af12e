"""NetBoxClient against the NetBox simulator, through pynetbox's own calls."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

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
