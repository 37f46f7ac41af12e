"""Bulk work yields to interactive work in every message it sends, and the concurrency store
counts slots by Redis's clock alone."""

from __future__ import annotations

import time
import uuid
from typing import Any

from celery import Celery

from orchestrator.config import get_settings
from orchestrator.integrations import concurrency
from orchestrator.queues import BULK_PRIORITY, INTERACTIVE_PRIORITY
from tasks.dispatch import publish_deliveries, publish_delivery, publish_feed


class _Probe(Celery):
    """A Celery app that records what it would send instead of sending it."""

    def __init__(self) -> None:
        super().__init__("probe", broker="memory://")
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def send_task(self, name: str, args: Any = None, kwargs: Any = None, **options: Any) -> None:  # type: ignore[override]
        self.sent.append((name, options))


def test_a_feed_message_is_published_at_bulk_priority():
    app = _Probe()

    publish_feed(uuid.uuid4(), app=app)

    ((name, options),) = app.sent
    assert name == "tasks.bulk.feed"
    assert options["priority"] == BULK_PRIORITY


def test_a_bulk_workflows_webhook_deliveries_can_be_published_at_bulk_priority():
    app = _Probe()

    publish_deliveries(app, [uuid.uuid4()], bulk=True)
    publish_delivery(str(uuid.uuid4()), app=app, bulk=True, countdown=3)
    publish_deliveries(app, [uuid.uuid4()])

    assert [options["priority"] for _, options in app.sent] == [
        BULK_PRIORITY,
        BULK_PRIORITY,
        INTERACTIVE_PRIORITY,
    ]
    assert app.sent[1][1]["countdown"] == 3


def test_in_use_prunes_by_redis_time_not_the_hosts(monkeypatch):
    limit = concurrency.ConcurrencyLimit(
        f"probe-{uuid.uuid4().hex}", 0, 60.0, get_settings().circuit_redis_url
    )
    real = time.time
    with limit.slot():
        # A host whose clock runs an hour ahead of Redis's must not call a live slot lapsed.
        monkeypatch.setattr(concurrency.time, "time", lambda: real() + 3600)
        assert limit.in_use() == 1
        monkeypatch.undo()
    assert limit.in_use() == 0
