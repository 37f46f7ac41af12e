"""Recovery with the settings an operator runs (not the tests' fast clocks): a step whose worker
was SIGKILLed is re-driven within its lease plus the stall time plus one sweep."""

from __future__ import annotations

import time

import pytest

from orchestrator import faults
from tests.support.processes import VAR, BeatProcess, WorkerProcess
from tests.support.requests import provision_body, submit
from tests.support.workflows import events, step_running, steps, wait_terminal, wait_until

pytestmark = pytest.mark.slow

#: The defaults, spelled out over the tests' fast clocks (conftest.py sets those).
DEFAULTS = {
    "SWEEP_INTERVAL": "10",
    "STALL_SECONDS": "30",
    "STEP_TIMEOUT_CAP": "3600",
    "RETRY_BACKOFF_BASE": "2",
    "RETRY_BACKOFF_MAX": "300",
}


def test_a_killed_step_is_redriven_within_a_minute_with_default_settings(
    client, worker, plan, operator_key, radius_server
):
    # Given workers and a sweeper running with the default settings (the session's stopped)
    assert worker.beat is not None
    worker.stop()
    worker.beat.stop()
    beat = BeatProcess(log_path=VAR / "beat-defaults.log", env=DEFAULTS)
    first = WorkerProcess(app=worker.app, log_path=VAR / "worker-defaults.log", env=DEFAULTS)
    second = WorkerProcess(app=worker.app, log_path=VAR / "worker-defaults.log", env=DEFAULTS)
    try:
        beat.start()
        first.start()

        # ... and a step (15 s timeout, so a 25 s lease) in flight on a worker
        body = provision_body(plan.id)
        faults.arm("create_radius_account", ["hang"], username=body["username"])
        workflow_id, _ = submit(client, operator_key, body)
        wait_until(lambda: step_running(workflow_id, "create_radius_account"), 30, "the step")

        # When that worker is SIGKILLed and another one serves the queues
        first.kill()
        killed_at = time.monotonic()
        second.start()

        # Then the sweeper re-drives the step in under a minute, and the workflow completes
        wait_until(
            lambda: steps(workflow_id)["create_radius_account"].attempts == 2,
            60 - (time.monotonic() - killed_at),
            "the step to be re-driven within a minute of the kill",
        )
        assert events(workflow_id, ["sweeper_redrive"])
        assert wait_terminal(workflow_id, timeout=60).value == "completed"
    finally:
        second.stop()
        first.stop()
        beat.stop()
        worker.start()
        worker.beat.start()
