"""``/api/v1/webhooks``: an admin registers where the tenant's events are POSTed, signed."""

from __future__ import annotations

import uuid
from typing import Any

from flask import current_app, url_for
from flask.views import MethodView

from orchestrator.webhooks.endpoints import WebhookService
from webapp.auth import current_principal
from webapp.openapi import Blueprint
from webapp.schemas.webhooks import (
    WEBHOOK_EXAMPLE,
    DeliveryPageSchema,
    DeliveryQuerySchema,
    NewWebhookSchema,
    WebhookCreateSchema,
    WebhookListSchema,
    WebhookSchema,
    WebhookUpdateSchema,
)

blueprint = Blueprint(
    "webhooks",
    __name__,
    url_prefix="/api/v1/webhooks",
    description="Webhook endpoints of the caller's tenant (admin only): workflow events, "
    "POSTed with an X-Signature (HMAC-SHA256) made with a secret shown once.",
)


def _webhooks() -> WebhookService:
    return current_app.extensions["webhook_service"]


@blueprint.route("", endpoint="webhooks")
class Webhooks(MethodView):
    @blueprint.requires("admin")
    @blueprint.response(200, WebhookListSchema)
    def get(self) -> Any:
        """The tenant's endpoints; never their secrets."""
        return {"items": _webhooks().list(current_principal().tenant_id)}

    @blueprint.requires("admin")
    @blueprint.arguments(WebhookCreateSchema, example=WEBHOOK_EXAMPLE)
    @blueprint.response(
        201,
        NewWebhookSchema,
        headers={"Location": {"description": "the endpoint's URL", "schema": {"type": "string"}}},
    )
    @blueprint.errors(413, 415)
    def post(self, body: dict[str, Any]) -> Any:
        """Register an endpoint. The answer holds its signing secret: the only time it is shown."""
        endpoint, secret = _webhooks().create(current_principal().tenant_id, body)
        shown = {field: getattr(endpoint, field) for field in WebhookSchema().fields}
        created = shown | {"secret": secret}
        # Nothing may keep a copy of this answer: it is the only one that holds the secret.
        headers = {
            "Cache-Control": "no-store",
            "Location": url_for(".webhook", endpoint_id=endpoint.id),
        }
        return created, 201, headers


@blueprint.route("/<uuid:endpoint_id>", endpoint="webhook")
class Webhook(MethodView):
    @blueprint.requires("admin")
    @blueprint.response(200, WebhookSchema)
    @blueprint.errors(404)
    def get(self, endpoint_id: uuid.UUID) -> Any:
        return _webhooks().get(current_principal().tenant_id, endpoint_id)

    @blueprint.requires("admin")
    @blueprint.arguments(WebhookUpdateSchema)
    @blueprint.response(200, WebhookSchema)
    @blueprint.errors(404, 413, 415)
    def patch(self, body: dict[str, Any], endpoint_id: uuid.UUID) -> Any:
        """Change the URL, the events or whether it is enabled (enabling clears why it was
        disabled). Events already recorded keep going to it unless it is disabled."""
        return _webhooks().update(current_principal().tenant_id, endpoint_id, body)

    @blueprint.requires("admin")
    @blueprint.response(204)
    @blueprint.errors(404)
    def delete(self, endpoint_id: uuid.UUID) -> None:
        """Remove the endpoint and its delivery log."""
        _webhooks().delete(current_principal().tenant_id, endpoint_id)


@blueprint.route("/<uuid:endpoint_id>/deliveries", endpoint="deliveries")
class Deliveries(MethodView):
    @blueprint.requires("admin")
    @blueprint.arguments(DeliveryQuerySchema, location="query", unknown="raise")
    @blueprint.response(200, DeliveryPageSchema)
    @blueprint.errors(404)
    def get(self, query: dict[str, Any], endpoint_id: uuid.UUID) -> Any:
        """The endpoint's delivery log, newest first: each event, its attempts and outcome."""
        return _webhooks().deliveries(current_principal().tenant_id, endpoint_id, **query)
