"""The Flask app factory: nothing is built at import time."""

from __future__ import annotations

import logging
from typing import Any

import redis
from flask import Flask

from orchestrator.config import get_settings
from orchestrator.service import OrchestrationService

#: Bodies above this are refused with 413 before they are parsed.
MAX_BODY_BYTES = 64 * 1024


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.update(MAX_CONTENT_LENGTH=MAX_BODY_BYTES, JSON_SORT_KEYS=False)
    if test_config:
        app.config.update(test_config)

    settings = get_settings()
    dispatcher = app.config.get("DISPATCHER")
    if dispatcher is None:
        from tasks.canvas import CeleryDispatcher  # the web process only publishes

        dispatcher = CeleryDispatcher()
    app.extensions["orchestration_service"] = OrchestrationService(dispatcher)
    broker = redis.Redis.from_url(settings.broker_url, socket_timeout=2, socket_connect_timeout=2)
    app.extensions["broker_ping"] = broker.ping

    from webapp import api, health
    from webapp.errors import register_error_handlers

    for blueprint in (health.blueprint, api.blueprint):
        app.register_blueprint(blueprint)
    register_error_handlers(app)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    return app
