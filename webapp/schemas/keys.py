"""API keys as an admin sees them: never the key, except once in the answer that creates it."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from orchestrator.models import Role
from webapp.schemas.base import RequestSchema, Text


class ApiKeyCreateSchema(RequestSchema):
    role = fields.Enum(Role, by_value=True, required=True)
    name = Text(load_default=None, validate=validate.Length(1, 200))


class ApiKeySchema(Schema):
    id = fields.UUID(required=True)
    name = fields.String(required=True)
    role = fields.Enum(Role, by_value=True, required=True)
    prefix = fields.String(
        required=True, metadata={"description": "the key's first characters, to recognise it"}
    )
    created_at = fields.DateTime(required=True)
    revoked_at = fields.DateTime(allow_none=True)


class NewApiKeySchema(ApiKeySchema):
    key = fields.String(
        required=True, metadata={"description": "the key itself: shown this once, never again"}
    )


class ApiKeyListSchema(Schema):
    items = fields.List(fields.Nested(ApiKeySchema), required=True)
