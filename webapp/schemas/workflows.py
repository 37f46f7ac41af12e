"""Provisioning requests, workflows (with steps and events), the workflow list and its filters."""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime
from typing import Any

from marshmallow import (
    Schema,
    ValidationError,
    fields,
    pre_dump,
    validate,
    validates,
    validates_schema,
)

from orchestrator.engine import definition_of
from orchestrator.errors import DefinitionError
from orchestrator.models import StepStatus, WorkflowStatus
from webapp.schemas.base import (
    Email,
    HeadersSchema,
    RequestSchema,
    Text,
    aware_datetime,
    int_field,
)

# GPON ONU serial: 4-letter vendor id and 8 hex digits (e.g. BBSM00000001, ALCLf0f0f0f0).
ONU_SERIAL = r"^[A-Z]{4}[0-9A-Fa-f]{8}$"
# RADIUS user: letters, digits, . _ -; an optional @realm must contain a dot (FreeRADIUS's
# default filter_username rejects undotted realms).
USERNAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{2,63}(@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+)?$"
CPE_SERIAL = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
PHONE = r"^\+?[0-9 ()-]{5,32}$"
# aa:bb:cc:dd:ee:ff, aa-bb-cc-dd-ee-ff, aabb.ccdd.eeff or aabbccddeeff, any case. Written
# without back-references, so the same pattern serves in the OpenAPI document.
MAC = (
    r"^(?:(?:[0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}|(?:[0-9A-Fa-f]{2}-){5}[0-9A-Fa-f]{2}"
    r"|[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}|[0-9A-Fa-f]{12})$"
)
#: Idempotency keys are stored and compared: visible ASCII only, so no encoding surprises.
IDEMPOTENCY_KEY = r"^[\x21-\x7e]{1,200}$"


class MacAddress(fields.String):
    """A unicast MAC address in any common notation, stored as lower-case aa:bb:cc:dd:ee:ff."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if not re.match(MAC, text):
            raise ValidationError("not a MAC address (e.g. 00:11:22:aa:bb:cc)")
        digits = re.sub(r"[^0-9a-f]", "", text.lower())
        if int(digits[:2], 16) & 1:
            raise ValidationError("a multicast MAC address cannot identify a CPE")
        if int(digits, 16) == 0:
            raise ValidationError("not a usable MAC address")
        return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


class CustomerSchema(RequestSchema):
    first_name = Text(required=True, validate=validate.Length(1, 100))
    last_name = Text(required=True, validate=validate.Length(1, 100))
    email = Email(required=True)
    phone = fields.String(load_default=None, validate=validate.Regexp(PHONE))
    address = Text(
        load_default=None,
        validate=validate.Length(1, 500),
        metadata={"description": "where the customer lives; the default service address"},
    )


class ProvisionSubscriberSchema(RequestSchema):
    customer_id = fields.UUID(load_default=None)
    customer = fields.Nested(CustomerSchema, load_default=None)
    service_plan_id = int_field(required=True, minimum=1)
    service_address = Text(
        load_default=None,
        validate=validate.Length(1, 500),
        metadata={"description": "defaults to the customer's address"},
    )
    username = fields.String(load_default=None, validate=validate.Regexp(USERNAME))
    password = fields.String(
        load_default=None,
        load_only=True,
        validate=[validate.Length(8, 128), validate.Regexp(r"^[\x20-\x7e]+$")],
        metadata={"description": "PPPoE password, printable ASCII; generated when absent"},
    )
    onu_serial = fields.String(required=True, validate=validate.Regexp(ONU_SERIAL))
    cpe_serial = fields.String(load_default=None, validate=validate.Regexp(CPE_SERIAL))
    cpe_mac = MacAddress(
        load_default=None,
        metadata={
            "pattern": MAC,
            "description": "the CPE's WAN MAC (any notation, stored as aa:bb:cc:dd:ee:ff): "
            "without cpe_serial the CPE is found in GenieACS by it",
        },
    )
    static_ipv4 = fields.String(load_default=None, metadata={"format": "ipv4"})
    static_ipv6_prefix = fields.String(
        load_default=None,
        metadata={
            "description": "the delegated IPv6 prefix (CIDR, /64 or shorter) instead of one "
            "from the plan's pool",
            "example": "2001:db8:ff00::/56",
        },
    )
    c_tag = int_field(load_default=None, minimum=1, maximum=4094)

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

    @validates("static_ipv6_prefix")
    def _valid_ipv6_prefix(self, value: str | None, **_: Any) -> str | None:
        if value is None:
            return None
        try:
            network = ipaddress.IPv6Network(value, strict=True)
        except ValueError as exc:
            raise ValidationError("not an IPv6 CIDR prefix without host bits") from exc
        if network.prefixlen > 64 or network.is_multicast or network.is_loopback:
            raise ValidationError("not a delegable unicast prefix (/64 or shorter)")
        return None

    @validates_schema
    def _one_customer(self, data: dict[str, Any], **_: Any) -> None:
        if (data.get("customer_id") is None) == (data.get("customer") is None):
            raise ValidationError(
                "give exactly one of customer_id or customer", field_name="customer"
            )


#: A complete request, shown in the API document (and tried by schemathesis).
PROVISION_EXAMPLE = {
    "customer": {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.net"},
    "service_plan_id": 1,
    "service_address": "12 Analytical Row, London",
    "username": "ada.lovelace",
    "password": "correct-horse-battery",
    "onu_serial": "BBSM00000001",
    "cpe_serial": "DEMOCPE0001",
}


class IdempotencyHeadersSchema(HeadersSchema):
    idempotency_key = fields.String(
        data_key="Idempotency-Key",
        validate=validate.Regexp(IDEMPOTENCY_KEY, error="1-200 visible ASCII characters"),
        metadata={
            "description": "the same key and body return the first workflow (200); "
            "the same key with another body is refused (422); keys are per tenant"
        },
    )


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds(), 3)


_NULLABLE_NUMBER = {"type": "number", "nullable": True}


class StepSchema(Schema):
    name = fields.String(required=True)
    system = fields.String(required=True)
    position = fields.Integer(required=True)
    stage = fields.Integer(
        allow_none=True,
        metadata={"description": "depth in the dependency graph; a stage's steps run together"},
    )
    depends_on = fields.List(fields.String(), metadata={"description": "it runs after these"})
    status = fields.Enum(StepStatus, by_value=True, required=True)
    attempts = fields.Integer(required=True, metadata={"description": "in the current run"})
    compensation_attempts = fields.Integer(required=True)
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)
    compensated_at = fields.DateTime(allow_none=True)
    duration_seconds = fields.Method("_duration", metadata=_NULLABLE_NUMBER)
    output = fields.Dict(allow_none=True)
    error = fields.Dict(allow_none=True)

    def _duration(self, step: Any) -> float | None:
        return _seconds(step.started_at, step.finished_at)


class EventSchema(Schema):
    at = fields.DateTime(attribute="created_at", required=True)
    run = fields.Integer(required=True)
    kind = fields.String(required=True)
    step = fields.String(attribute="step_name", allow_none=True)
    from_status = fields.String(allow_none=True)
    to_status = fields.String(allow_none=True)
    attempt = fields.Integer(allow_none=True)
    message = fields.String(allow_none=True)
    details = fields.Dict(allow_none=True)


class WorkflowSummarySchema(Schema):
    """A workflow without its steps: one item of the list."""

    id = fields.UUID(required=True)
    workflow_id = fields.Function(
        lambda workflow: str(workflow.id),
        metadata={"type": "string", "format": "uuid", "description": "the same as id"},
    )
    workflow_type = fields.String(required=True)
    definition_version = fields.Integer(
        required=True, metadata={"description": "it runs, retries and undoes with this version"}
    )
    subscriber_id = fields.UUID(
        allow_none=True, metadata={"description": "the subscriber it acts on"}
    )
    status = fields.Enum(WorkflowStatus, by_value=True, required=True)
    run = fields.Integer(required=True, metadata={"description": "1, plus one per retry"})
    submitted_by = fields.UUID(
        attribute="api_key_id",
        allow_none=True,
        metadata={"description": "id of the API key that submitted it (never the key)"},
    )
    output = fields.Dict(required=True, metadata={"description": "ids of what it created"})
    error = fields.Dict(allow_none=True)
    cancel_requested_at = fields.DateTime(allow_none=True)
    deadline_at = fields.DateTime(allow_none=True)
    trace_id = fields.String(
        allow_none=True,
        metadata={
            "description": "the OpenTelemetry trace of every step and undo (32 hex digits); "
            "null while tracing is off"
        },
    )
    created_at = fields.DateTime(required=True)
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)
    duration_seconds = fields.Method("_duration", metadata=_NULLABLE_NUMBER)

    def _duration(self, workflow: Any) -> float | None:
        return _seconds(workflow.created_at, workflow.finished_at)


class _Viewed:
    """Reads as the wrapped object, plus the given attributes."""

    def __init__(self, wrapped: Any, **extra: Any) -> None:
        self._wrapped = wrapped
        self.__dict__.update(extra)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._wrapped, name)


def _with_graph(workflow: Any, events: list[Any] | None) -> _Viewed:
    """The workflow with each step's place in its definition's graph (and its events)."""
    try:
        definition = definition_of(workflow)
    except DefinitionError:  # a version this code no longer has: show the rows as they are
        definition = None
    steps = [
        _Viewed(
            step,
            stage=definition.stage(step.name) if definition else None,
            depends_on=list(definition.step(step.name).depends_on) if definition else [],
        )
        for step in workflow.steps
    ]
    return _Viewed(workflow, steps=steps, events=events)


class WorkflowSchema(WorkflowSummarySchema):
    input = fields.Dict(required=True, metadata={"description": "the request, without secrets"})
    steps = fields.List(fields.Nested(StepSchema), required=True)

    @pre_dump
    def _graph(self, obj: Any, **_: Any) -> _Viewed:
        if hasattr(obj, "workflow"):  # a WorkflowDetail: the workflow and its events
            return _with_graph(obj.workflow, obj.events)
        return _with_graph(obj, None)


class WorkflowDetailSchema(WorkflowSchema):
    events = fields.List(
        fields.Nested(EventSchema),
        required=True,
        metadata={"description": "every transition of every run, oldest first"},
    )


class WorkflowQuerySchema(RequestSchema):
    status = fields.List(
        fields.Enum(WorkflowStatus, by_value=True),
        metadata={"description": "repeat for several: ?status=failed&status=rolled_back"},
    )
    workflow_type = Text(validate=validate.Length(1, 64))
    created_after = aware_datetime(metadata={"description": "inclusive"})
    created_before = aware_datetime(metadata={"description": "exclusive"})
    subscriber_id = fields.UUID()
    limit = int_field(load_default=50, minimum=1, maximum=200, strict=False)
    offset = int_field(load_default=0, maximum=1_000_000, strict=False)


class WorkflowPageSchema(Schema):
    items = fields.List(
        fields.Nested(WorkflowSummarySchema),
        required=True,
        metadata={"description": "newest first"},
    )
    total = fields.Integer(required=True, metadata={"description": "matching workflows"})
    limit = fields.Integer(required=True)
    offset = fields.Integer(required=True)
    next_offset = fields.Integer(
        allow_none=True, metadata={"description": "offset of the next page; null on the last"}
    )
