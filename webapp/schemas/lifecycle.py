"""Requests of the lifecycle workflows: each names the subscriber, plus its own fields."""

from __future__ import annotations

from marshmallow import fields, validate

from webapp.schemas.base import RequestSchema, StrictBoolean, Text, int_field


class LifecycleRequestSchema(RequestSchema):
    subscriber_id = fields.UUID(required=True, metadata={"description": "the subscriber acted on"})


class DeprovisionSubscriberSchema(LifecycleRequestSchema):
    pass


class SuspendServiceSchema(LifecycleRequestSchema):
    reason = Text(load_default=None, validate=validate.Length(1, 500))
    disable_onu = StrictBoolean(
        load_default=False,
        metadata={"description": "also disable the ONU in VOLTHA (activation enables it again)"},
    )


class ActivateServiceSchema(LifecycleRequestSchema):
    pass


class ChangeServicePlanSchema(LifecycleRequestSchema):
    service_plan_id = int_field(required=True, minimum=1)
