from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from orchestrator import faults
from orchestrator.models import ServicePlan
from tests.support.plans import create_plan
from tests.support.simulator_process import SimulatorHandle


@pytest.fixture
def sim(simulators: SimulatorHandle) -> Iterator[SimulatorHandle]:
    """The session's simulators, reset to their seed for this test."""
    simulators.reset()
    yield simulators
    with contextlib.suppress(Exception):
        faults.clear()


@pytest.fixture(scope="session")
def tiny_plan(tenant: str) -> ServicePlan:
    """A plan on the simulators' /30 prefix: two addresses, easy to exhaust."""
    return create_plan(
        tenant,
        "tiny-pool",
        download_mbps=10,
        upload_mbps=10,
        ipv4_prefix="100.64.255.0/30",
        s_tag=101,
        c_tag=201,
    )


@pytest.fixture(scope="session")
def network_plan(tenant: str) -> ServicePlan:
    """A plan on the simulators' second prefix, which no other test module allocates from."""
    return create_plan(
        tenant, "network-tests", download_mbps=300, upload_mbps=100, ipv4_prefix="100.64.1.0/24"
    )
