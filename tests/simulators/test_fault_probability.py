"""A fault with a ``probability`` hits about that share of matching requests, repeatably."""

from __future__ import annotations

import requests

from tests.support.simulator_process import SimulatorHandle

AUTH = {"Authorization": "Token 0123456789abcdef0123456789abcdef01234567"}
PREFIXES = "GET /api/ipam/prefixes/"


def statuses(sim: SimulatorHandle, n: int) -> list[int]:
    # a read: the answers differ only by the fault, and nothing piles up in NetBox
    return [
        requests.get(f"{sim.netbox_url}/api/ipam/prefixes/", headers=AUTH, timeout=5).status_code
        for _ in range(n)
    ]


def test_a_seeded_probability_hits_about_that_share(sim: SimulatorHandle) -> None:
    sim.fault("netbox", PREFIXES, "error", status=503, count=0, probability=0.1, seed=7)
    answers = statuses(sim, 400)
    failed = answers.count(503)
    # 400 draws at p = 0.1: 40 expected, a standard deviation of 6
    assert 22 <= failed <= 58, failed
    assert set(answers) == {200, 503}
    # a forever fault stays listed, its probability and seed with it
    assert [
        (f["probability"], f["seed"], f["remaining"], f["hits"])
        for f in sim.control("GET", "faults")
    ] == [(0.1, 7, None, failed)]


def test_the_same_seed_fails_the_same_requests(sim: SimulatorHandle) -> None:
    runs = []
    for _ in range(2):
        sim.reset()
        sim.fault("netbox", PREFIXES, "error", status=503, count=0, probability=0.2, seed=42)
        runs.append(statuses(sim, 50))
    assert runs[0] == runs[1]
    assert 503 in runs[0]


def test_a_spared_request_goes_on_to_the_next_rule_and_count_counts_hits(
    sim: SimulatorHandle,
) -> None:
    sim.fault("netbox", PREFIXES, "error", status=503, count=0, probability=0.5, seed=1)
    sim.fault("netbox", PREFIXES, "error", status=502, count=3, probability=1.0)
    answers = statuses(sim, 40)
    # the second rule takes exactly the first three requests the first one spared
    spared = [i for i, status in enumerate(answers) if status != 503]
    assert [answers[i] for i in spared[:3]] == [502, 502, 502]
    assert all(answers[i] == 200 for i in spared[3:])


def test_a_probability_outside_0_1_is_refused(sim: SimulatorHandle) -> None:
    for bad in (0, 1.5, -0.1, True, "0.5"):
        spec = {"system": "netbox", "match": "", "mode": "error", "probability": bad}
        assert sim.control("POST", "faults", spec, expect=400)["error"]
    spec = {"system": "netbox", "match": "", "mode": "error", "probability": 0.5, "seed": 1.5}
    assert "seed" in sim.control("POST", "faults", spec, expect=400)["error"]
