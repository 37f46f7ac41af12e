"""Dual-stack plans: IPv6 pools that exist in NetBox (the simulator here), lengths that fit,
and a 422 naming the field otherwise."""

from __future__ import annotations

import pytest

from tests.api.helpers import auth
from tests.api.test_plans import PLANS, plan_body

POOL = "2001:db8:100::/40"
WAN_POOL = "2001:db8:200::/48"


@pytest.fixture
def pools(sim) -> None:  # type: ignore[no-untyped-def]
    for pool in (POOL, WAN_POOL):
        sim.control("POST", "prefixes", {"prefix": pool}, expect=201)


def test_a_dual_stack_plan_is_created_with_the_default_length(api, admin_key, pools):
    response = api.post(
        PLANS,
        json=plan_body(ipv6_delegation_pool=POOL, ipv6_wan_pool=WAN_POOL),
        headers=auth(admin_key),
    )
    assert response.status_code == 201, response.get_json()
    plan = response.get_json()
    assert (plan["ipv6_delegation_pool"], plan["ipv6_delegated_length"]) == (POOL, 56)
    assert plan["ipv6_wan_pool"] == WAN_POOL


def test_a_plan_without_pools_stays_ipv4_only(api, admin_key):
    plan = api.post(PLANS, json=plan_body(), headers=auth(admin_key)).get_json()
    assert plan["ipv6_delegation_pool"] is plan["ipv6_delegated_length"] is None


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"ipv6_delegation_pool": "2001:db8:9900::/40"}, "ipv6_delegation_pool", "NetBox has no"),
        ({"ipv6_delegation_pool": "100.64.0.0/24"}, "ipv6_delegation_pool", "not an IPv6"),
        ({"ipv6_delegation_pool": "2001:db8:100::1/40"}, "ipv6_delegation_pool", "not an IPv6"),
        ({"ipv6_delegation_pool": "2001:db8::/64"}, "ipv6_delegation_pool", "no room"),
        (
            {"ipv6_delegation_pool": POOL, "ipv6_delegated_length": 40},
            "ipv6_delegated_length",
            "longer than the pool's /40",
        ),
        (
            {"ipv6_delegation_pool": POOL, "ipv6_delegated_length": 65},
            "ipv6_delegated_length",
            "",
        ),
        ({"ipv6_wan_pool": WAN_POOL}, "ipv6_wan_pool", "needs an ipv6_delegation_pool"),
        (
            {"ipv6_delegation_pool": POOL, "ipv6_wan_pool": "2001:db8:9900::/48"},
            "ipv6_wan_pool",
            "NetBox has no",
        ),
    ],
)
def test_bad_ipv6_fields_are_422_naming_the_field(api, admin_key, pools, fields, field, words):
    response = api.post(PLANS, json=plan_body(**fields), headers=auth(admin_key))
    assert response.status_code == 422, response.get_json()
    messages = response.get_json()["error"]["details"][field]
    assert words in " ".join(messages)


def test_a_change_is_checked_against_the_plan_as_it_will_be(api, admin_key, pools):
    plan = api.post(
        PLANS, json=plan_body(ipv6_delegation_pool=POOL), headers=auth(admin_key)
    ).get_json()
    url = f"{PLANS}/{plan['id']}"
    too_short = api.patch(url, json={"ipv6_delegated_length": 32}, headers=auth(admin_key))
    assert too_short.status_code == 422
    assert "ipv6_delegated_length" in too_short.get_json()["error"]["details"]
    moved = api.patch(url, json={"ipv6_delegated_length": 60}, headers=auth(admin_key))
    assert moved.get_json()["ipv6_delegated_length"] == 60
    cleared = api.patch(url, json={"ipv6_delegation_pool": None}, headers=auth(admin_key))
    assert cleared.status_code == 200
    assert cleared.get_json()["ipv6_delegated_length"] is None
