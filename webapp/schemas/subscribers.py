"""Subscribers: the list, its filters, and one subscriber with its resources and workflows."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, pre_dump, validate

from orchestrator.models import SubscriberStatus
from webapp.schemas.base import RequestSchema, Text, int_field
from webapp.schemas.workflows import ONU_SERIAL, WorkflowSummarySchema


class SubscriberSummarySchema(Schema):
    id = fields.UUID(required=True)
    status = fields.Enum(SubscriberStatus, by_value=True, required=True)
    username = fields.String(required=True)
    customer_id = fields.UUID(required=True)
    service_plan_id = fields.Integer(required=True)
    service_address = fields.String(required=True)
    onu_serial = fields.String(allow_none=True)
    cpe_serial = fields.String(allow_none=True)
    ipv4_address = fields.String(allow_none=True)
    created_at = fields.DateTime(required=True)
    terminated_at = fields.DateTime(allow_none=True)
    provisioned_by = fields.UUID(
        attribute="workflow_id",
        required=True,
        metadata={"description": "the provisioning workflow that created it"},
    )


class PlanRefSchema(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    download_mbps = fields.Integer(required=True)
    upload_mbps = fields.Integer(required=True)
    radius_group = fields.String(required=True)


class SubscriberSchema(SubscriberSummarySchema):
    plan = fields.Nested(PlanRefSchema, required=True)
    resources = fields.Dict(
        required=True,
        metadata={
            "description": "where it lives in each system: radius (username, group), netbox "
            "(address and its key), onos (port, tags, tech profile), onu (serial, device, "
            "disabled), cpe (serial, device, tag)"
        },
    )
    workflows = fields.List(
        fields.Nested(WorkflowSummarySchema),
        required=True,
        metadata={"description": "every workflow that acted on it, newest first"},
    )

    @pre_dump
    def _merge(self, detail: Any, **_: Any) -> Any:
        return _SubscriberView(detail)


class _SubscriberView:
    def __init__(self, detail: Any) -> None:
        self._subscriber = detail.subscriber
        self.plan = detail.plan
        self.workflows = detail.workflows

    def __getattr__(self, name: str) -> Any:
        return getattr(self._subscriber, name)


class SubscriberQuerySchema(RequestSchema):
    status = fields.Enum(SubscriberStatus, by_value=True)
    username = Text(validate=validate.Length(1, 64))
    onu_serial = fields.String(validate=validate.Regexp(ONU_SERIAL))
    limit = int_field(load_default=50, minimum=1, maximum=200, strict=False)
    offset = int_field(load_default=0, maximum=1_000_000, strict=False)


class SubscriberPageSchema(Schema):
    items = fields.List(
        fields.Nested(SubscriberSummarySchema),
        required=True,
        metadata={"description": "newest first"},
    )
    total = fields.Integer(required=True)
    limit = fields.Integer(required=True)
    offset = fields.Integer(required=True)
    next_offset = fields.Integer(allow_none=True)
