"""The demo tenant, plans and customer that `make run` seeds, so the README's examples work."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.apikeys import ensure_tenant
from orchestrator.models import Customer, ServicePlan

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
    # dual-stack: a /56 per subscriber from this pool (the simulators' --demo seed has it)
    "ipv6_delegation_pool": "2001:db8:100::/40",
    "ipv6_delegated_length": 56,
}

#: A faster plan on other tags and another tech profile: a plan change re-programs ONOS.
DEMO_FASTER_PLAN = {
    "name": "fiber-500",
    "download_mbps": 500,
    "upload_mbps": 100,
    "radius_group": "demo-fiber-500",
    "ipv4_prefix": "100.64.0.0/24",
    "s_tag": 110,
    "c_tag": 210,
    "tech_profile_id": 65,
    # another pool: a change to this plan moves the subscriber's prefix
    "ipv6_delegation_pool": "2001:db8:200::/40",
    "ipv6_delegated_length": 56,
}
#: A known customer with an address, for the four-field request of the original design.
DEMO_CUSTOMER_ID = uuid.UUID("00000000-0000-4000-8000-00000000c001")
DEMO_CUSTOMER = {
    "first_name": "Grace",
    "last_name": "Hopper",
    "email": "grace@example.net",
    "address": "1 Harvard Mark Way, Cambridge",
}


def _plan(session: Session, values: dict[str, object]) -> ServicePlan:
    plan = session.scalar(
        select(ServicePlan).where(
            ServicePlan.tenant_id == DEMO_TENANT, ServicePlan.name == values["name"]
        )
    )
    if plan is None:
        plan = ServicePlan(tenant_id=DEMO_TENANT, **values)
        session.add(plan)
        session.flush()
    elif plan.ipv6_delegation_pool is None:
        # seeded before plans had IPv6: the demo becomes dual-stack (nothing else is changed)
        plan.ipv6_delegation_pool = str(values["ipv6_delegation_pool"])
        plan.ipv6_delegated_length = int(str(values["ipv6_delegated_length"]))
        session.flush()
    return plan


def seed_demo(session: Session) -> ServicePlan:
    """Create the demo tenant, plans and customer if absent (idempotent); return the first
    plan (id 1 on a fresh database; fiber-500 is id 2)."""
    ensure_tenant(session, DEMO_TENANT, "Demo ISP")
    plan = _plan(session, DEMO_PLAN)
    _plan(session, DEMO_FASTER_PLAN)
    if session.get(Customer, DEMO_CUSTOMER_ID) is None:
        session.add(Customer(id=DEMO_CUSTOMER_ID, tenant_id=DEMO_TENANT, **DEMO_CUSTOMER))
        session.flush()
    return plan
