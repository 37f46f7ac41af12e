"""Measurement, not a regular test (run with MEASURE_HUNG=1): how long a provisioning takes to
give up on, and to roll back from, a GenieACS that never answers, with the DEFAULT settings
(10 s read timeout, no step-timeout cap, 2 s backoff base), in a worker of its own."""

from __future__ import annotations

import os
import time

import pytest

from orchestrator.config import get_settings
from orchestrator.models import WorkflowStatus
from tests.conftest import VAR
from tests.support.processes import WorkerProcess
from tests.support.requests import provision_body, submit, unique_cpe_serial, unique_serial
from tests.support.workflows import steps, workflow_status

pytestmark = pytest.mark.skipif(not os.environ.get("MEASURE_HUNG"), reason="a measurement")

DEFAULTS = {
    "HTTP_READ_TIMEOUT": "10",
    "STEP_TIMEOUT_CAP": "3600",
    "RETRY_BACKOFF_BASE": "2",
    "RETRY_BACKOFF_MAX": "300",
    "SWEEP_INTERVAL": "10",
    "STALL_SECONDS": "30",
    "CIRCUIT_FAILURE_THRESHOLD": "3",
    "CIRCUIT_COOLDOWN_SECONDS": "30",
}


def test_measure_a_hung_genieacs(
    sim,
    client,
    database,
    radius_server,
    celery_app,
    redis_clean,
    network_plan,
    operator_key,
    monkeypatch,
):
    # the publisher computes the time limits too: this process needs the defaults as well
    for name, value in DEFAULTS.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    worker = WorkerProcess(
        app=celery_app, log_path=VAR / "measure-worker.log", env=dict(DEFAULTS), concurrency=4
    )
    worker.start()
    try:
        body = provision_body(
            network_plan.id,
            discovered=False,
            onu_serial=unique_serial(),
            cpe_serial=unique_cpe_serial(),
        )
        sim.add_onu(body["onu_serial"])
        sim.add_cpe(body["cpe_serial"])
        sim.fault("genieacs", "", "timeout", count=0, hold_s=3600)
        started = time.monotonic()
        workflow_id, _ = submit(client, operator_key, body)
        gave_up = None
        deadline = started + float(os.environ.get("MEASURE_LIMIT", "600"))
        while time.monotonic() < deadline:
            status = workflow_status(workflow_id)
            if gave_up is None and status not in (WorkflowStatus.PENDING, WorkflowStatus.RUNNING):
                gave_up = time.monotonic() - started
            if status in WorkflowStatus.terminal():
                break
            time.sleep(0.2)
        ended = time.monotonic() - started
        row = steps(workflow_id)["configure_cpe"]
        print(
            f"\nMEASURE status={workflow_status(workflow_id).value} gave_up_after={gave_up} "
            f"terminal_after={ended:.1f}s configure_cpe attempts={row.attempts} "
            f"compensation_attempts={row.compensation_attempts} error={row.error}"
        )
    finally:
        sim.control("DELETE", "faults", expect=200)
        worker.stop()
        monkeypatch.undo()
        get_settings.cache_clear()
