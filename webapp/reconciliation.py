"""``/api/v1/reconciliation``: the read-only orphan check, for a tenant's admins.

The same report as ``orchestrator reconcile --json``, narrowed to the key's tenant; removal is
not offered here (it is ``orchestrator reconcile --fix``, an operator's deliberate act).
"""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from marshmallow import Schema, fields

from orchestrator.reconcile.check import check
from webapp.auth import current_principal
from webapp.openapi import Blueprint

blueprint = Blueprint(
    "reconciliation",
    __name__,
    url_prefix="/api/v1/reconciliation",
    description="Resources of the tenant that carry our markers but no workflow owns (orphans), "
    "and live subscribers' resources gone from a system (missing). Admin only, read-only.",
)


class OrphanSchema(Schema):
    system = fields.String(required=True, metadata={"example": "radius"})
    resource = fields.String(required=True, metadata={"example": "account ppp-1a2b3c4d5e"})
    workflow_id = fields.UUID(
        required=True, allow_none=True, metadata={"description": "the workflow that made it"}
    )
    reason = fields.String(required=True)


class MissingSchema(OrphanSchema):
    subscriber_id = fields.UUID(required=True)


class ReconciliationSchema(Schema):
    orphans = fields.List(fields.Nested(OrphanSchema), required=True)
    missing = fields.List(fields.Nested(MissingSchema), required=True)
    unavailable = fields.List(
        fields.String(),
        metadata={"description": "systems that could not be read: nothing is judged there"},
    )


@blueprint.route("", endpoint="reconciliation")
class Reconciliation(MethodView):
    @blueprint.requires("admin")
    @blueprint.response(200, ReconciliationSchema)
    def get(self) -> Any:
        """Check every system now (a few calls to each) and answer what is out of place. A
        system that cannot be read is named in ``unavailable`` and judged on nothing."""
        return check().for_tenant(current_principal().tenant_id).to_json()
