"""A probe task for broker tests, registered in a worker that lists this module in
ORCHESTRATOR_WORKFLOW_MODULES. It touches neither PostgreSQL nor the simulators: the test is
about the worker and the broker, and a task whose duration it sets.
"""

from __future__ import annotations

import time
from pathlib import Path

from celery import shared_task

PROBE_TASK = "tests.probe.sleep_then_mark"


@shared_task(name=PROBE_TASK)
def sleep_then_mark(marker: str, seconds: float) -> None:
    # The marker appears only once the task ran to its end, so the test sees completed work.
    Path(marker).with_suffix(".started").touch()
    time.sleep(seconds)
    Path(marker).touch()
