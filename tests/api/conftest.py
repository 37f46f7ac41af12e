"""Fixtures of the API tests: keys of every role in two tenants, and an app whose dispatcher
only records what it was asked to publish (for tests that need no worker)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from orchestrator import engine, faults
from orchestrator.models import ServicePlan
from tests.api.helpers import make_key
from tests.support.plans import create_plan


@pytest.fixture(autouse=True)
def _no_leftover_faults() -> Iterator[None]:
    yield
    # Redis may be what a test took down.
    with contextlib.suppress(Exception):
        faults.clear()


@dataclass
class RecordingDispatcher:
    """Publishes nothing; remembers which workflows (and plans) it was asked to act on."""

    started: list[uuid.UUID] = field(default_factory=list)
    compensated: list[uuid.UUID] = field(default_factory=list)
    synced_plans: list[int] = field(default_factory=list)

    def publish(self, dispatch: engine.Dispatch) -> None:
        if dispatch.forward:
            self.started.append(dispatch.workflow_id)
        if dispatch.backward:
            self.compensated.append(dispatch.workflow_id)

    def sync_plan(self, plan_id: int) -> None:
        self.synced_plans.append(plan_id)


@pytest.fixture(scope="session")
def dispatcher() -> RecordingDispatcher:
    return RecordingDispatcher()


@pytest.fixture(scope="session")
def api_app(database: str, dispatcher: RecordingDispatcher):  # type: ignore[no-untyped-def]
    from webapp import create_app

    return create_app({"TESTING": True, "DISPATCHER": dispatcher})


@pytest.fixture
def api(api_app):  # type: ignore[no-untyped-def]
    """A client of the app without a worker (its dispatcher only records)."""
    return api_app.test_client()


@pytest.fixture(scope="session")
def viewer_key(tenant: str) -> str:
    return make_key(tenant, "viewer")


@pytest.fixture(scope="session")
def admin_key(tenant: str) -> str:
    return make_key(tenant, "admin")


@pytest.fixture(scope="session")
def globex_key(tenant: str) -> str:
    """An operator of the other tenant."""
    return make_key("globex", "operator")


@pytest.fixture(scope="session")
def globex_admin_key(tenant: str) -> str:
    return make_key("globex", "admin")


@pytest.fixture(scope="session")
def globex_plan(tenant: str) -> ServicePlan:
    return create_plan(
        "globex",
        "globex-500",
        download_mbps=500,
        upload_mbps=250,
        radius_group="globex-500",
        ipv4_prefix="100.65.0.0/24",
        s_tag=300,
        c_tag=400,
    )
