"""``/api/v1/api-keys``: an admin manages the keys of their own tenant."""

from __future__ import annotations

import uuid
from typing import Any

from flask import current_app, url_for
from flask.views import MethodView

from orchestrator.apikeys import ApiKeyService
from webapp.auth import current_principal
from webapp.openapi import Blueprint
from webapp.schemas.keys import (
    ApiKeyCreateSchema,
    ApiKeyListSchema,
    ApiKeySchema,
    NewApiKeySchema,
)

blueprint = Blueprint(
    "api_keys",
    __name__,
    url_prefix="/api/v1/api-keys",
    description="API keys of the caller's tenant (admin only). A key is shown once.",
)


def _keys() -> ApiKeyService:
    return current_app.extensions["api_key_service"]


@blueprint.route("", endpoint="keys")
class Keys(MethodView):
    @blueprint.requires("admin")
    @blueprint.response(200, ApiKeyListSchema)
    def get(self) -> Any:
        """The tenant's keys, revoked ones included; never the keys themselves."""
        return {"items": _keys().list(current_principal().tenant_id)}

    @blueprint.requires("admin")
    @blueprint.arguments(ApiKeyCreateSchema)
    @blueprint.response(201, NewApiKeySchema)
    @blueprint.errors(413, 415)
    def post(self, body: dict[str, Any]) -> Any:
        """Create a key for this tenant. The answer holds the key: the only time it is shown."""
        row, key = _keys().create(
            current_principal().tenant_id, body["role"].value, body["name"] or ""
        )
        created = {field: getattr(row, field) for field in ApiKeySchema().fields} | {"key": key}
        # Nothing may keep a copy of this answer: it is the only one that holds the key.
        headers = {"Cache-Control": "no-store", "Location": url_for(".key", key_id=row.id)}
        return created, 201, headers


@blueprint.route("/<uuid:key_id>", endpoint="key")
class Key(MethodView):
    @blueprint.requires("admin")
    @blueprint.response(200, ApiKeySchema)
    @blueprint.errors(404)
    def get(self, key_id: uuid.UUID) -> Any:
        return _keys().get(current_principal().tenant_id, key_id)

    @blueprint.requires("admin")
    @blueprint.response(204)
    @blueprint.errors(404)
    def delete(self, key_id: uuid.UUID) -> None:
        """Revoke a key (at once, for every process; revoking twice is fine)."""
        _keys().revoke(current_principal().tenant_id, key_id)
