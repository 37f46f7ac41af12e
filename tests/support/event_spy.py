"""Listens to the Celery event stream, as Flower does, to see what it would show."""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any

from celery import Celery

from tests.support.workflows import wait_until


class TaskEventSpy:
    """Collects every event workers and publishers send while the ``with`` block runs."""

    def __init__(self, app: Celery) -> None:
        self._app = app
        self.events: list[dict[str, Any]] = []
        self._receiver: Any = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with self._app.connection_for_read() as connection:
            self._receiver = self._app.events.Receiver(
                connection, handlers={"*": self.events.append}
            )
            self._receiver.capture(limit=None, timeout=None, wakeup=True)

    def __enter__(self) -> TaskEventSpy:
        self._thread.start()
        # Ready once the first event (a worker heartbeat at the latest) has come through.
        wait_until(lambda: bool(self.events), 30, "the first Celery event")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._receiver is not None:
            self._receiver.should_stop = True
        self._thread.join(timeout=10)

    def task_events(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("type", "").startswith("task-")]
