from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from orchestrator import faults
from orchestrator.db import transaction
from orchestrator.models import ServicePlan
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
    with transaction() as session:
        row = ServicePlan(
            tenant_id=tenant,
            name="tiny-pool",
            download_mbps=10,
            upload_mbps=10,
            radius_group="acme-tiny-pool",
            ipv4_prefix="100.64.255.0/30",
            s_tag=101,
            c_tag=201,
            tech_profile_id=64,
        )
        session.add(row)
        session.flush()
        return row
