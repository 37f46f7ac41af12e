from __future__ import annotations

import pytest

from orchestrator.models import ServicePlan
from tests.support.plans import create_plan


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
