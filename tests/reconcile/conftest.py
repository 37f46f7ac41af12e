from __future__ import annotations

import secrets
from dataclasses import dataclass

import pytest

from orchestrator.apikeys import create_key, ensure_tenant
from orchestrator.db import transaction
from orchestrator.models import ServicePlan
from tests.support.plans import create_plan


@dataclass(frozen=True)
class Tenant:
    id: str
    plan: ServicePlan
    admin: str
    operator: str
    viewer: str


def make_tenant() -> Tenant:
    """A tenant of its own per test: the check is tenant-scoped, so what earlier tests left
    (their subscribers, now missing from the reset simulators) never shows."""
    tenant_id = f"recon-{secrets.token_hex(4)}"
    with transaction() as session:
        ensure_tenant(session, tenant_id, "Reconciliation test")
    plan = create_plan(tenant_id, "fiber", ipv4_prefix="100.64.1.0/24")
    with transaction() as session:
        keys = {
            role: create_key(session, tenant_id, role)[1]
            for role in ("admin", "operator", "viewer")
        }
    return Tenant(tenant_id, plan, keys["admin"], keys["operator"], keys["viewer"])


@pytest.fixture
def acme(database: str) -> Tenant:
    return make_tenant()


@pytest.fixture
def globex(database: str) -> Tenant:
    return make_tenant()
