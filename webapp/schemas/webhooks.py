"""Webhook endpoints and their delivery log as an admin sees them: never the secret, except
once in the answer that creates the endpoint."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from orchestrator.models import DeliveryStatus, WebhookEventType
from webapp.schemas.base import RequestSchema, StrictBoolean, Text, int_field

_EVENTS = [event.value for event in WebhookEventType]

WEBHOOK_EXAMPLE = {
    "url": "https://portal.example.net/hooks/orchestrator",
    "events": ["workflow.completed", "workflow.failed"],
    "enabled": True,
}


def _url(**kwargs: object) -> Text:
    return Text(
        validate=validate.Length(1, 2048),
        metadata={
            "description": "http(s) only; a host resolving to a private, loopback or link-local "
            "address is refused unless the deployment allows it"
        },
        **kwargs,
    )


def _events(**kwargs: object) -> fields.List:
    return fields.List(
        fields.String(validate=validate.OneOf(_EVENTS)),
        validate=validate.Length(1, len(_EVENTS)),
        metadata={"description": f"a non-empty subset of {', '.join(_EVENTS)}"},
        **kwargs,
    )


class WebhookCreateSchema(RequestSchema):
    url = _url(required=True)
    events = _events(required=True)
    enabled = StrictBoolean(load_default=True)


class WebhookUpdateSchema(RequestSchema):
    url = _url()
    events = _events()
    enabled = StrictBoolean(
        metadata={"description": "true also clears disabled_reason and disabled_at"}
    )


class WebhookSchema(Schema):
    id = fields.UUID(required=True)
    url = fields.String(required=True)
    events = fields.List(fields.String(), required=True)
    enabled = fields.Boolean(required=True)
    disabled_reason = fields.String(
        allow_none=True,
        metadata={"description": "why the endpoint was turned off (deliveries failing for a day)"},
    )
    disabled_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)


class NewWebhookSchema(WebhookSchema):
    secret = fields.String(
        required=True,
        metadata={"description": "the signing secret: shown this once, never again"},
    )


class WebhookListSchema(Schema):
    items = fields.List(fields.Nested(WebhookSchema), required=True)


class DeliveryQuerySchema(RequestSchema):
    status = fields.Enum(DeliveryStatus, by_value=True)
    limit = int_field(load_default=50, minimum=1, maximum=200, strict=False)
    offset = int_field(load_default=0, maximum=1_000_000, strict=False)


class DeliverySchema(Schema):
    id = fields.UUID(required=True, metadata={"description": "the event id (X-Webhook-Id)"})
    event_type = fields.String(required=True)
    workflow_id = fields.UUID(allow_none=True)
    status = fields.Enum(DeliveryStatus, by_value=True, required=True)
    attempts = fields.Integer(required=True)
    last_status_code = fields.Integer(
        allow_none=True, metadata={"description": "the HTTP status of the last attempt"}
    )
    last_error = fields.String(
        allow_none=True, metadata={"description": "why the last attempt failed"}
    )
    next_attempt_at = fields.DateTime(
        allow_none=True, metadata={"description": "null once delivered or given up"}
    )
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)
    delivered_at = fields.DateTime(allow_none=True)


class DeliveryPageSchema(Schema):
    items = fields.List(
        fields.Nested(DeliverySchema), required=True, metadata={"description": "newest first"}
    )
    total = fields.Integer(required=True)
    limit = fields.Integer(required=True)
    offset = fields.Integer(required=True)
    next_offset = fields.Integer(
        allow_none=True, metadata={"description": "offset of the next page; null on the last"}
    )
