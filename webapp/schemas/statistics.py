"""Workflow statistics for a time window."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from webapp.schemas.base import RequestSchema, Text, aware_datetime


class StatisticsQuerySchema(RequestSchema):
    created_after = aware_datetime(
        metadata={"description": "window start, inclusive (default: 24 hours ago)"}
    )
    created_before = aware_datetime(
        metadata={"description": "window end, exclusive (default: now)"}
    )
    workflow_type = Text(validate=validate.Length(1, 64))

    @validates_schema
    def _ordered(self, data: dict[str, Any], **_: Any) -> None:
        start, end = data.get("created_after"), data.get("created_before")
        if start is not None and end is not None and start >= end:
            raise ValidationError("must be before created_before", field_name="created_after")


class WindowSchema(Schema):
    created_after = fields.DateTime(required=True)
    created_before = fields.DateTime(required=True)


class DurationSchema(Schema):
    count = fields.Integer(required=True, metadata={"description": "completed workflows measured"})
    mean = fields.Float(allow_none=True)
    p95 = fields.Float(allow_none=True)


class StepFailuresSchema(Schema):
    failed = fields.Integer(required=True, metadata={"description": "attempts that gave up"})
    retried = fields.Integer(required=True, metadata={"description": "attempts retried"})
    compensation_failed = fields.Integer(required=True)


class StatisticsSchema(Schema):
    window = fields.Nested(WindowSchema, required=True)
    total = fields.Integer(required=True, metadata={"description": "workflows in the window"})
    by_status = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    by_type = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    success_rate = fields.Float(
        allow_none=True,
        metadata={
            "description": "completed / (completed + rolled_back + failed); cancelled "
            "workflows do not count; null when none has finished"
        },
    )
    duration_seconds = fields.Nested(
        DurationSchema,
        required=True,
        metadata={"description": "submission to completion, of completed workflows"},
    )
    step_failures = fields.Dict(
        keys=fields.String(), values=fields.Nested(StepFailuresSchema), required=True
    )
    active = fields.Integer(
        required=True,
        metadata={"description": "pending, running or rolling back now (whatever the window)"},
    )
