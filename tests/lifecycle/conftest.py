from __future__ import annotations

import pytest

from orchestrator.models import ServicePlan
from tests.support.plans import create_plan


@pytest.fixture(scope="session")
def basic_plan(tenant: str) -> ServicePlan:
    """100/20 on S-tag 100, C-tag 200, tech profile 64 (the simulators' SADIS defaults)."""
    return create_plan(
        tenant, "lifecycle-basic", download_mbps=100, upload_mbps=20, ipv4_prefix="100.64.1.0/24"
    )


@pytest.fixture(scope="session")
def faster_plan(tenant: str) -> ServicePlan:
    """500/100 on other tags and another tech profile: a change re-programs ONOS."""
    return create_plan(
        tenant,
        "lifecycle-faster",
        download_mbps=500,
        upload_mbps=100,
        ipv4_prefix="100.64.1.0/24",
        s_tag=110,
        c_tag=210,
        tech_profile_id=65,
    )


@pytest.fixture(scope="session")
def same_tags_plan(tenant: str) -> ServicePlan:
    """200/40 on the basic plan's tags: a change leaves ONOS alone."""
    return create_plan(
        tenant,
        "lifecycle-same-tags",
        download_mbps=200,
        upload_mbps=40,
        ipv4_prefix="100.64.1.0/24",
    )
