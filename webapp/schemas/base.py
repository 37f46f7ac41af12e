"""Field types and base schemas shared by every resource."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate

#: PostgreSQL INTEGER: larger numbers would fail in the database instead of in validation.
MAX_INT32 = 2**31 - 1
#: Query dates outside this range are typos, and near the ends datetime arithmetic overflows.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2999, 12, 31, tzinfo=UTC)

# C0/C1 control characters (NUL among them, which PostgreSQL text and JSONB refuse).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def plain_text(value: str) -> None:
    """Reject what PostgreSQL cannot store or an operator cannot read back."""
    if _CONTROL.search(value):
        raise ValidationError("must not contain control characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a JSON \ud800 escape
        raise ValidationError("must be valid Unicode text") from None


class Text(fields.String):
    """A free-text string: no control characters, valid UTF-8, trimmed length checked."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        validators = kwargs.pop("validate", None)
        extra = [validators] if callable(validators) else list(validators or [])
        super().__init__(*args, validate=[plain_text, *extra], **kwargs)


class StrictBoolean(fields.Boolean):
    """JSON true or false only: marshmallow's Boolean also takes 0, 1, "yes", "on"..."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class Email(fields.Email):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, validate=[plain_text, validate.Length(max=254)], **kwargs)


def int_field(
    *,
    minimum: int = 0,
    maximum: int = MAX_INT32,
    required: bool = False,
    strict: bool = True,
    **kwargs: Any,
) -> fields.Integer:
    """An integer that fits the column it is stored in; in a JSON body (``strict``) never a
    string or a float. Query strings are text, so their integers are parsed (strict=False)."""
    return fields.Integer(
        required=required, strict=strict, validate=validate.Range(minimum, maximum), **kwargs
    )


class UtcDateTime(fields.AwareDateTime):
    """An ISO 8601 timestamp, converted to UTC; one without an offset is taken as UTC.

    Python accepts offsets up to ±23:59, PostgreSQL only up to ±15:59: converting here keeps
    an exotic (but parseable) offset from ever reaching the database.
    """

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        parsed = super()._deserialize(value, attr, data, **kwargs)
        try:
            return parsed.astimezone(UTC)
        except OverflowError:  # 0001-01-01T00:00-01:00 and the like
            raise self.make_error("invalid", input=value, obj_type=self.OBJ_TYPE) from None


def aware_datetime(**kwargs: Any) -> fields.AwareDateTime:
    """An ISO 8601 timestamp in UTC, within a sane range."""
    return UtcDateTime(default_timezone=UTC, validate=validate.Range(EARLIEST, LATEST), **kwargs)


class RequestSchema(Schema):
    """Every request body and query string: an unknown field is an error, named in the answer."""

    class Meta:
        unknown = RAISE


class HeadersSchema(Schema):
    """Request headers: everything not declared (Host, User-Agent, ...) is ignored."""

    class Meta:
        unknown = "exclude"


class ErrorBodySchema(Schema):
    code = fields.String(required=True, metadata={"description": "stable machine-readable code"})
    message = fields.String(required=True)
    details = fields.Dict(
        required=True,
        metadata={
            "description": "per field (or header, or query parameter) a list of reasons; "
            "request_id for unexpected errors"
        },
    )


class ErrorSchema(Schema):
    """The one shape of every error the API returns."""

    error = fields.Nested(ErrorBodySchema, required=True)
