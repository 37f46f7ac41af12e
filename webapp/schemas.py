"""Request and response shapes. Every request schema rejects unknown fields."""

from __future__ import annotations

import ipaddress
from typing import Any

from marshmallow import (
    RAISE,
    Schema,
    ValidationError,
    fields,
    validate,
    validates,
    validates_schema,
)

# GPON ONU serial: 4-letter vendor id and 8 hex digits (e.g. BBSM00000001, ALCLf0f0f0f0).
ONU_SERIAL = r"^[A-Z]{4}[0-9A-Fa-f]{8}$"
# RADIUS user: letters, digits, . _ -; an optional @realm must contain a dot (FreeRADIUS's
# default filter_username rejects undotted realms).
USERNAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{2,63}(@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+)?$"
CPE_SERIAL = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
PHONE = r"^\+?[0-9 ()-]{5,32}$"


class RequestSchema(Schema):
    class Meta:
        unknown = RAISE


class CustomerSchema(RequestSchema):
    first_name = fields.String(required=True, validate=validate.Length(1, 100))
    last_name = fields.String(required=True, validate=validate.Length(1, 100))
    email = fields.Email(required=True, validate=validate.Length(max=254))
    phone = fields.String(load_default=None, validate=validate.Regexp(PHONE))


class ProvisionSubscriberSchema(RequestSchema):
    customer_id = fields.UUID(load_default=None)
    customer = fields.Nested(CustomerSchema, load_default=None)
    service_plan_id = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    service_address = fields.String(required=True, validate=validate.Length(1, 500))
    username = fields.String(load_default=None, validate=validate.Regexp(USERNAME))
    password = fields.String(load_default=None, load_only=True, validate=validate.Length(8, 128))
    onu_serial = fields.String(required=True, validate=validate.Regexp(ONU_SERIAL))
    cpe_serial = fields.String(load_default=None, validate=validate.Regexp(CPE_SERIAL))
    static_ipv4 = fields.String(load_default=None)
    c_tag = fields.Integer(load_default=None, strict=True, validate=validate.Range(1, 4094))

    @validates("static_ipv4")
    def _valid_ipv4(self, value: str | None, **_: Any) -> None:
        if value is None:
            return
        try:
            address = ipaddress.IPv4Address(value)
        except ValueError as exc:
            raise ValidationError("not an IPv4 address") from exc
        if address.is_multicast or address.is_loopback or address.is_unspecified:
            raise ValidationError("not a usable unicast address")

    @validates_schema
    def _one_customer(self, data: dict[str, Any], **_: Any) -> None:
        if (data.get("customer_id") is None) == (data.get("customer") is None):
            raise ValidationError(
                "give exactly one of customer_id or customer", field_name="customer"
            )


class StepSchema(Schema):
    name = fields.String()
    system = fields.String()
    position = fields.Integer()
    status = fields.Function(lambda s: s.status.value)
    attempts = fields.Integer()
    compensation_attempts = fields.Integer()
    started_at = fields.DateTime()
    finished_at = fields.DateTime()
    compensated_at = fields.DateTime()
    output = fields.Dict()
    error = fields.Dict()


class EventSchema(Schema):
    at = fields.DateTime(attribute="created_at")
    run = fields.Integer()
    kind = fields.String()
    step = fields.String(attribute="step_name")
    from_status = fields.String()
    to_status = fields.String()
    attempt = fields.Integer()
    message = fields.String()
    details = fields.Dict()


class WorkflowSchema(Schema):
    id = fields.UUID()
    workflow_type = fields.String()
    status = fields.Function(lambda w: w.status.value)
    run = fields.Integer()
    input = fields.Dict()
    output = fields.Dict()
    error = fields.Dict()
    cancel_requested_at = fields.DateTime()
    deadline_at = fields.DateTime()
    created_at = fields.DateTime()
    started_at = fields.DateTime()
    finished_at = fields.DateTime()
    steps = fields.List(fields.Nested(StepSchema))
