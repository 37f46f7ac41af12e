"""The Flask app factory: nothing is built at import time."""

from __future__ import annotations

import logging
from typing import Any

import redis
from flask import Flask

from orchestrator import tracing
from orchestrator.apikeys import ApiKeyService
from orchestrator.bulk.jobs import BulkService
from orchestrator.config import get_settings
from orchestrator.db import get_sessionmaker
from orchestrator.integrations import circuit
from orchestrator.integrations.netbox import netbox_prefix_lookup
from orchestrator.metrics import StateCollector
from orchestrator.plans import PlanService
from orchestrator.queues import QUEUES, priority_keys
from orchestrator.service import OrchestrationService
from orchestrator.subscribers import SubscriberService
from orchestrator.webhooks.endpoints import WebhookService
from webapp.docs_assets import ASSETS_URL

#: Bodies above this are refused with 413 before they are parsed.
MAX_BODY_BYTES = 64 * 1024

OPENAPI_CONFIG: dict[str, Any] = {
    "API_TITLE": "ISP provisioning orchestrator",
    "API_VERSION": "1",
    "OPENAPI_VERSION": "3.0.3",
    "OPENAPI_URL_PREFIX": "/api/v1",
    "OPENAPI_JSON_PATH": "openapi.json",
    # A browsable page whose Swagger UI assets the app serves itself (webapp/docs_assets.py).
    "OPENAPI_SWAGGER_UI_PATH": "docs",
    "OPENAPI_SWAGGER_UI_URL": ASSETS_URL,
    "API_SPEC_OPTIONS": {
        "info": {
            "description": "Provision ISP subscribers across the database, FreeRADIUS, NetBox, "
            "VOLTHA/ONOS and GenieACS, all or nothing. Authenticate with "
            "`Authorization: Bearer <API key>`. Every error is "
            '`{"error": {"code", "message", "details"}}`.'
        },
    },
}


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.update(MAX_CONTENT_LENGTH=MAX_BODY_BYTES, **OPENAPI_CONFIG)
    if test_config:
        app.config.update(test_config)
    # Answers keep the order the schemas declare (id and status first), not alphabetical.
    app.json.sort_keys = False  # type: ignore[attr-defined]
    # First: before any engine is made (its queries are traced), and its before_request
    # handler before every other, so authentication runs inside the request's span.
    tracing.instrument_app(app)

    settings = get_settings()
    dispatcher = app.config.get("DISPATCHER")
    if dispatcher is None:
        from tasks.dispatch import CeleryDispatcher  # the web process only publishes

        dispatcher = CeleryDispatcher()
    app.extensions["orchestration_service"] = OrchestrationService(dispatcher)
    app.extensions["plan_service"] = PlanService(
        dispatcher.sync_plan,
        prefix_exists=app.config.get("PREFIX_EXISTS") or netbox_prefix_lookup(settings),
    )
    app.extensions["api_key_service"] = ApiKeyService()
    app.extensions["bulk_service"] = BulkService()
    app.extensions["subscriber_service"] = SubscriberService()
    app.extensions["webhook_service"] = WebhookService(
        app.config.get("WEBHOOK_ALLOW_PRIVATE_TARGETS", settings.webhook_allow_private_targets)
    )
    broker = redis.Redis.from_url(settings.broker_url, socket_timeout=2, socket_connect_timeout=2)
    app.extensions["broker_ping"] = broker.ping
    app.extensions["metrics_state"] = StateCollector(
        get_sessionmaker(),
        lambda: {queue: sum(broker.llen(key) for key in priority_keys(queue)) for queue in QUEUES},
        circuit.snapshot,
    )

    from webapp import (
        apikeys,
        bulk,  # noqa: F401 - adds the bulk URLs to the workflows blueprint
        console,
        docs_assets,
        health,
        lifecycle,  # noqa: F401 - adds the lifecycle URLs to the workflows blueprint
        metrics,
        plans,
        reconciliation,
        request_id,
        statistics,
        subscribers,
        webhooks,
        workflows,
    )
    from webapp.errors import register_error_handlers
    from webapp.openapi import BEARER, SECURITY_SCHEME, Api

    api = Api(app)
    api.spec.components.security_scheme(BEARER, SECURITY_SCHEME)
    for blueprint in (
        workflows.blueprint,
        subscribers.blueprint,
        statistics.blueprint,
        plans.blueprint,
        apikeys.blueprint,
        webhooks.blueprint,
        reconciliation.blueprint,
    ):
        api.register_blueprint(blueprint)
    app.register_blueprint(health.blueprint)
    app.register_blueprint(docs_assets.blueprint)
    app.register_blueprint(metrics.blueprint)
    app.register_blueprint(console.blueprint)
    request_id.init_app(app)
    register_error_handlers(app)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    return app
