"""``/api/v1/service-plans``: read with any key, change with an admin key."""

from __future__ import annotations

from typing import Any

from flask import current_app, url_for
from flask.views import MethodView

from orchestrator.plans import PlanService
from webapp.auth import current_principal
from webapp.openapi import Blueprint
from webapp.schemas.plans import (
    PLAN_EXAMPLE,
    PlanCreateSchema,
    PlanListSchema,
    PlanSchema,
    PlanUpdateSchema,
)

blueprint = Blueprint(
    "service_plans",
    __name__,
    url_prefix="/api/v1/service-plans",
    description="Service plans: speeds, RADIUS group, IP prefix, VLANs, tech profile.",
)


def _plans() -> PlanService:
    return current_app.extensions["plan_service"]


# Flask's int converter takes any size; ids are PostgreSQL INTEGERs.
PLAN_ID = "<int(max=2147483647):plan_id>"


@blueprint.route("", endpoint="plans")
class Plans(MethodView):
    @blueprint.requires("viewer")
    @blueprint.response(200, PlanListSchema)
    def get(self) -> Any:
        """The tenant's service plans."""
        return {"items": _plans().list(current_principal().tenant_id)}

    @blueprint.requires("admin")
    @blueprint.arguments(PlanCreateSchema, example=PLAN_EXAMPLE)
    @blueprint.response(
        201,
        PlanSchema,
        headers={"Location": {"description": "the plan's URL", "schema": {"type": "string"}}},
    )
    @blueprint.errors(409, 413, 415)
    def post(self, body: dict[str, Any]) -> Any:
        """Create a plan. Its RADIUS group must be unused (by any tenant): else 409."""
        plan = _plans().create(current_principal().tenant_id, body)
        return plan, 201, {"Location": url_for(".plan", plan_id=plan.id)}


@blueprint.route(f"/{PLAN_ID}", endpoint="plan")
class Plan(MethodView):
    @blueprint.requires("viewer")
    @blueprint.response(200, PlanSchema)
    @blueprint.errors(404)
    def get(self, plan_id: int) -> Any:
        return _plans().get(current_principal().tenant_id, plan_id)

    @blueprint.requires("admin")
    @blueprint.arguments(PlanUpdateSchema)
    @blueprint.response(200, PlanSchema)
    @blueprint.errors(404, 409, 413, 415)
    def patch(self, body: dict[str, Any], plan_id: int) -> Any:
        """Change some fields. Workflows keep the plan as it was when they were submitted.

        New speeds reach the plan's subscribers through its RADIUS group (asynchronously, on
        their next authentication). The RADIUS group of a plan in use cannot change (409).
        """
        return _plans().update(current_principal().tenant_id, plan_id, body)

    @blueprint.requires("admin")
    @blueprint.response(204)
    @blueprint.errors(404, 409)
    def delete(self, plan_id: int) -> None:
        """Delete a plan no subscriber and no active workflow uses (else 409)."""
        _plans().delete(current_principal().tenant_id, plan_id)
