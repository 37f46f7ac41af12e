"""The demo tenant and service plan that `make run` seeds, so the README's example works."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.apikeys import ensure_tenant
from orchestrator.models import ServicePlan

DEMO_TENANT = "demo"
DEMO_PLAN = {
    "name": "fiber-100",
    "download_mbps": 100,
    "upload_mbps": 100,
    "radius_group": "demo-fiber-100",
    "ipv4_prefix": "100.64.0.0/24",
    "s_tag": 100,
    "c_tag": 200,
    "tech_profile_id": 64,
}


def seed_demo(session: Session) -> ServicePlan:
    """Create the demo tenant and plan if absent (idempotent); return the plan."""
    ensure_tenant(session, DEMO_TENANT, "Demo ISP")
    plan = session.scalar(
        select(ServicePlan).where(
            ServicePlan.tenant_id == DEMO_TENANT, ServicePlan.name == DEMO_PLAN["name"]
        )
    )
    if plan is None:
        plan = ServicePlan(tenant_id=DEMO_TENANT, **DEMO_PLAN)
        session.add(plan)
        session.flush()
    return plan
