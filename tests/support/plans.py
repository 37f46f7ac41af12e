"""Service plans for tests, written straight to the database."""

from __future__ import annotations

from typing import Any

from orchestrator.db import transaction
from orchestrator.models import ServicePlan


def create_plan(tenant_id: str, name: str, **fields: Any) -> ServicePlan:
    """A plan with sensible network fields; ``fields`` override any of them."""
    values: dict[str, Any] = {
        "download_mbps": 100,
        "upload_mbps": 100,
        "radius_group": f"{tenant_id}-{name}",
        "ipv4_prefix": "100.64.0.0/24",
        "s_tag": 100,
        "c_tag": 200,
        "tech_profile_id": 64,
        **fields,
    }
    with transaction() as session:
        row = ServicePlan(tenant_id=tenant_id, name=name, **values)
        session.add(row)
        session.flush()
        return row
