"""/metrics: Prometheus's text format, counters that move as workflows run (in every process),
and no tenant or subscriber in any label."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from orchestrator import faults
from tests.support.requests import provision_body, submit
from tests.support.workflows import wait_terminal

ALLOWED_LABELS = {
    "workflow_type",
    "status",
    "step",
    "direction",
    "outcome",
    "queue",
    "le",
    "system",
    "state",
    # orchestrator_reconcile_findings: "orphan" or "missing" (set whenever beat's hourly check
    # has run in a worker by the time of the scrape)
    "kind",
}


def scrape(client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:  # type: ignore[no-untyped-def]
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels: str) -> float:  # type: ignore[no-untyped-def]
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_counters_move_as_workflows_run_in_the_workers(client, worker, plan, operator_key):
    # Given the counters before
    before = scrape(client)

    # When one provisioning completes (a step retried once) and one is rolled back
    good = provision_body(plan.id)
    faults.arm("create_radius_account", ["transient"], username=good["username"])
    bad = provision_body(plan.id)
    faults.arm("create_billing_service", ["permanent"], username=bad["username"])
    for body, final in ((good, "completed"), (bad, "rolled_back")):
        workflow_id, _ = submit(client, operator_key, body)
        assert wait_terminal(workflow_id).value == final

    # Then /metrics, which adds up every process's counters, shows them
    after = scrape(client)
    kind = {"workflow_type": "provision_subscriber"}

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    # (a workflow left by an earlier test may finish meanwhile: only starts are all ours)
    assert grew("orchestrator_workflows_started_total", **kind) == 2
    assert grew("orchestrator_workflows_finished_total", **kind, status="completed") >= 1
    assert grew("orchestrator_workflows_finished_total", **kind, status="rolled_back") >= 1
    assert (
        grew(
            "orchestrator_step_retries_total",
            **kind,
            step="create_radius_account",
            direction="forward",
        )
        >= 1
    )
    assert (
        grew(
            "orchestrator_step_duration_seconds_count",
            **kind,
            step="create_billing_service",
            direction="forward",
            outcome="failed",
        )
        >= 1
    )
    assert (
        grew(
            "orchestrator_step_duration_seconds_count",
            **kind,
            step="create_customer",
            direction="backward",
            outcome="succeeded",
        )
        >= 1
    )
    # And the state read at scrape time: every queue's depth
    assert {
        dict(labels)["queue"] for name, labels in after if name == "orchestrator_queue_depth"
    } >= {
        "saga",
        "access",
        "nas",
    }


def test_no_label_names_a_tenant_or_a_subscriber(client, worker, plan, operator_key):
    body = provision_body(plan.id)
    workflow_id, _ = submit(client, operator_key, body)
    wait_terminal(workflow_id)
    samples = scrape(client)
    names = {label for _, labels in samples for label, _ in labels}
    assert names <= ALLOWED_LABELS
    text = client.get("/metrics").get_data(as_text=True)
    assert body["username"] not in text and "acme" not in text and str(workflow_id) not in text


def test_circuit_states_are_exported_one_hot_per_system(client):
    from orchestrator.integrations.circuit import CircuitBreaker, reset_all

    # Given ONOS failing often enough to open its circuit (from a clean slate: other tests'
    # successful calls in the breaker's window would keep the failure rate low)
    reset_all()
    onos = CircuitBreaker.for_system("onos")
    try:
        for _ in range(onos.threshold):
            onos.record_failure()

        samples = scrape(client)

        # Then ONOS's breaker reads open, and only open; the others closed
        assert value(samples, "orchestrator_circuit_state", system="onos", state="open") == 1
        assert value(samples, "orchestrator_circuit_state", system="onos", state="closed") == 0
        assert value(samples, "orchestrator_circuit_failures", system="onos") >= 3
        assert value(samples, "orchestrator_circuit_state", system="netbox", state="closed") == 1
    finally:
        reset_all()
    # And a closed one again once reset
    assert value(scrape(client), "orchestrator_circuit_state", system="onos", state="closed") == 1
