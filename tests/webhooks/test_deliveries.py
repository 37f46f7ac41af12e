"""Every terminal state reaches a loopback endpoint as one signed event; a failing endpoint is
retried with growing delays, then disabled. Real worker, beat, PostgreSQL and Redis."""

from __future__ import annotations

import itertools
import logging
import uuid

from orchestrator import faults
from tests.api.helpers import auth
from tests.support.receiver import Receiver
from tests.support.requests import provision_body, submit
from tests.support.workflows import step_running, wait_terminal, wait_until
from tests.webhooks.conftest import Endpoint, register

WORKFLOWS = "/api/v1/orchestration/workflows"


def _event(endpoint: Endpoint, workflow_id: uuid.UUID, event_type: str, timeout: float = 30):  # type: ignore[no-untyped-def]
    """Wait for the event of ``workflow_id``'s end; return it (it must come exactly once)."""
    endpoint.receiver.wait_for(
        lambda _: any(
            r.json["type"] == event_type for r in endpoint.receiver.events_of(workflow_id)
        ),
        timeout,
        f"{event_type} of {workflow_id}",
    )
    matching = [r for r in endpoint.receiver.events_of(workflow_id) if r.json["type"] == event_type]
    assert len(matching) == 1, matching
    return matching[0]


def _assert_signed_event(
    endpoint,
    request,
    workflow_id,
    status,
    *,
    readme_verify,
    client,
    operator_key,
    admin_key,
    secrets=(),
):  # type: ignore[no-untyped-def]
    payload = request.json
    # Signed with the endpoint's secret, verifiable with the README recipe; a forgery is not
    assert readme_verify(endpoint.secret, request.body, request.headers["X-Signature"])
    assert not readme_verify("whsec_forged", request.body, request.headers["X-Signature"])
    assert not readme_verify(
        endpoint.secret, request.body.replace(b"}", b" }", 1), request.headers["X-Signature"]
    )
    # The event id (for de-duplication) is in the header and the body
    assert request.headers["X-Webhook-Id"] == payload["id"]
    assert set(payload) == {"id", "type", "created_at", "tenant_id", "workflow"}
    assert payload["type"] == f"workflow.{status}"
    assert payload["tenant_id"] == "acme"
    # The workflow as the API shows it, without its input
    detail = client.get(f"{WORKFLOWS}/{workflow_id}", headers=auth(operator_key)).get_json()
    assert payload["workflow"] == {
        "id": str(workflow_id),
        "workflow_type": "provision_subscriber",
        "status": status,
        "subscriber_id": detail["subscriber_id"],
        "output": detail["output"],
        "error": detail["error"],
    }
    # No secret in the payload: not the endpoint's, not the subscriber's password
    for secret in (endpoint.secret, *secrets):
        assert secret.encode() not in request.body
    # And the delivery log says delivered, once
    log = client.get(f"{endpoint.location}/deliveries", headers=auth(admin_key)).get_json()
    (entry,) = [item for item in log["items"] if item["id"] == payload["id"]]
    assert (entry["status"], entry["attempts"], entry["last_status_code"]) == ("delivered", 1, 204)
    assert entry["workflow_id"] == str(workflow_id)
    assert entry["event_type"] == payload["type"]
    return payload


def test_each_terminal_state_is_delivered_signed(
    client, worker, plan, operator_key, admin_key, endpoint, readme_verify, caplog
):
    caplog.set_level(logging.DEBUG)
    check = {
        "client": client,
        "operator_key": operator_key,
        "admin_key": admin_key,
        "readme_verify": readme_verify,
    }

    # Given a provisioning that completes
    body = provision_body(plan.id)
    completed, _ = submit(client, operator_key, body)
    assert wait_terminal(completed).value == "completed"
    # Then the endpoint hears it, signed
    request = _event(endpoint, completed, "workflow.completed")
    payload = _assert_signed_event(
        endpoint, request, completed, "completed", secrets=[body["password"]], **check
    )
    assert payload["workflow"]["output"]["subscriber_id"]

    # Given one whose last step fails for good: rolled back
    body = provision_body(plan.id)
    faults.arm("create_billing_service", ["permanent"], username=body["username"])
    rolled_back, _ = submit(client, operator_key, body)
    assert wait_terminal(rolled_back).value == "rolled_back"
    request = _event(endpoint, rolled_back, "workflow.rolled_back")
    payload = _assert_signed_event(
        endpoint, request, rolled_back, "rolled_back", secrets=[body["password"]], **check
    )
    assert payload["workflow"]["error"]["message"]

    # Given one cancelled while a step runs: compensated
    body = provision_body(plan.id)
    faults.arm("create_radius_account", ["slow"], username=body["username"])
    compensated, _ = submit(client, operator_key, body)
    wait_until(lambda: step_running(compensated, "create_radius_account"), 30, "the step to run")
    response = client.post(f"{WORKFLOWS}/{compensated}/cancel", headers=auth(operator_key))
    assert response.status_code == 202
    assert wait_terminal(compensated).value == "compensated"
    request = _event(endpoint, compensated, "workflow.compensated")
    _assert_signed_event(
        endpoint, request, compensated, "compensated", secrets=[body["password"]], **check
    )

    # Given one whose rollback cannot remove the RADIUS account: failed, naming what is left
    body = provision_body(plan.id)
    faults.arm("create_billing_service", ["permanent"], username=body["username"])
    faults.arm("create_radius_account", ["permanent"], compensation=True, username=body["username"])
    failed, _ = submit(client, operator_key, body)
    assert wait_terminal(failed).value == "failed"
    request = _event(endpoint, failed, "workflow.failed")
    payload = _assert_signed_event(
        endpoint, request, failed, "failed", secrets=[body["password"]], **check
    )
    (left,) = payload["workflow"]["error"]["left_behind"]
    assert (left["step"], left["system"]) == ("create_radius_account", "radius")

    # When an operator retries it, the rollback finishes: another event, rolled_back
    response = client.post(f"{WORKFLOWS}/{failed}/retry", headers=auth(operator_key))
    assert response.status_code == 202
    assert wait_terminal(failed).value == "rolled_back"
    request = _event(endpoint, failed, "workflow.rolled_back")
    assert "left_behind" not in (request.json["workflow"]["error"] or {})

    # Every event had its own id
    ids = [r.headers["X-Webhook-Id"] for r in endpoint.receiver.requests]
    assert len(ids) == len(set(ids)) == 5

    # And the secret was in no log line, here or in the worker and beat processes
    assert endpoint.secret not in caplog.text
    for log_path in (worker.log_path, worker.beat.log_path):
        assert endpoint.secret not in log_path.read_text(errors="replace")


def test_a_failing_endpoint_is_retried_with_growing_delays_then_disabled(
    client, worker, plan, operator_key, admin_key
):
    with Receiver(500) as failing:
        # Given an endpoint that answers 500 to everything
        endpoint = register(client, admin_key, failing, ["workflow.completed"])

        # When a workflow completes
        workflow_id, _ = submit(client, operator_key, provision_body(plan.id))
        assert wait_terminal(workflow_id).value == "completed"

        # Then the event is tried again and again, further and further apart, until the
        # retry window (4 s in the tests; a day by default) has passed; then the endpoint is off
        def disabled() -> bool:
            shown = client.get(endpoint.location, headers=auth(admin_key)).get_json()
            return shown["enabled"] is False

        wait_until(disabled, 30, "the failing endpoint to be disabled")
        attempts = failing.requests
        assert len(attempts) >= 4
        assert {r.headers["X-Webhook-Id"] for r in attempts} == {attempts[0].json["id"]}
        gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(attempts)]
        # 0.2 s, 0.4 s, 0.8 s, then the cap (1 s)
        assert gaps[0] >= 0.15, gaps
        assert gaps[1] > gaps[0] * 1.4 and gaps[2] > gaps[1] * 1.4, gaps
        assert max(gaps) < 2.5, gaps

        # And the endpoint says why, the delivery log shows every attempt
        shown = client.get(endpoint.location, headers=auth(admin_key)).get_json()
        assert shown["disabled_at"]
        assert "no delivery succeeded for 4 s" in shown["disabled_reason"]
        assert "HTTP 500" in shown["disabled_reason"]
        log = client.get(f"{endpoint.location}/deliveries", headers=auth(admin_key)).get_json()
        (entry,) = log["items"]
        assert entry["id"] == attempts[0].json["id"]
        assert (entry["status"], entry["last_status_code"], entry["last_error"]) == (
            "failed",
            500,
            "HTTP 500",
        )
        assert entry["attempts"] == len(attempts)
        assert entry["next_attempt_at"] is None and entry["delivered_at"] is None

        # And a disabled endpoint gets no new events
        workflow_id, _ = submit(client, operator_key, provision_body(plan.id))
        assert wait_terminal(workflow_id).value == "completed"
        log = client.get(f"{endpoint.location}/deliveries", headers=auth(admin_key)).get_json()
        assert log["total"] == 1

        # When an admin turns it back on, the reason goes
        response = client.patch(endpoint.location, json={"enabled": True}, headers=auth(admin_key))
        assert response.get_json()["disabled_reason"] is None
        assert response.get_json()["disabled_at"] is None
        client.delete(endpoint.location, headers=auth(admin_key))
