"""A hung GenieACS opens its circuit: later workflows fail fast without calling it (issue 8
item 5). Tests run with the default threshold (3) and a 5 s cool-down (tests/conftest.py)."""

from __future__ import annotations

import time

from orchestrator.integrations.circuit import CircuitBreaker
from tests.support.requests import provision_body, submit, unique_cpe_serial, unique_serial
from tests.support.workflows import steps, wait_terminal, wait_until


def new_body(sim, plan_id: int) -> dict:
    body = provision_body(
        plan_id, discovered=False, onu_serial=unique_serial(), cpe_serial=unique_cpe_serial()
    )
    sim.add_onu(body["onu_serial"])
    sim.add_cpe(body["cpe_serial"])
    return body


def genieacs_calls(sim) -> int:
    return len(sim.requests("genieacs"))


def circuit_state() -> str:
    return str(CircuitBreaker.for_system("genieacs").state()["state"])


def test_a_hung_genieacs_opens_the_circuit_and_a_probe_closes_it(
    sim, client, worker, network_plan, operator_key
):
    # Given a GenieACS that answers nothing at all
    sim.fault("genieacs", "", "timeout", count=0, hold_s=2)

    # When a provisioning needs it: three timeouts open the circuit
    first, _ = submit(client, operator_key, new_body(sim, network_plan.id))
    wait_until(lambda: circuit_state() == "open", 30, "GenieACS's circuit to open")
    opened = time.monotonic()
    calls = genieacs_calls(sim)
    assert calls == 3

    # Then a later workflow fails at once, without a single call to GenieACS
    second, _ = submit(client, operator_key, new_body(sim, network_plan.id))
    wait_until(
        lambda: steps(second)["configure_cpe"].status.value not in ("pending", "running"),
        10,
        "the second workflow's CPE step to give up",
    )
    assert circuit_state() == "open", "the check below must happen while the circuit is open"
    assert genieacs_calls(sim) == calls
    step = steps(second)["configure_cpe"]
    assert step.attempts == 5
    assert "circuit open for genieacs" in step.error["message"]
    assert step.error["type"] == "CircuitOpen"

    # And /healthz shows the open circuit (the API itself stays healthy)
    health = client.get("/healthz")
    assert health.status_code == 200
    genieacs = health.get_json()["details"]["circuits"]["genieacs"]
    assert genieacs["state"] == "open"
    assert genieacs["failures"] >= 3
    assert health.get_json()["details"]["circuits"]["netbox"]["state"] == "closed"

    # When GenieACS answers again and the cool-down has passed, one probe closes the circuit
    sim.control("DELETE", "faults", expect=200)
    time.sleep(max(0.0, opened + 5.1 - time.monotonic()))
    third, _ = submit(client, operator_key, new_body(sim, network_plan.id))
    assert wait_terminal(third).value == "completed"
    assert circuit_state() == "closed"
    assert client.get("/healthz").get_json()["details"]["circuits"]["genieacs"] == {
        "state": "closed",
        "failures": 0,
    }
    # the earlier two end too: rolled back, or failed naming only the CPE step, whose undo
    # could not ask GenieACS while it was down (POST .../retry then finishes it)
    for workflow_id in (first, second):
        status = wait_terminal(workflow_id, timeout=60).value
        assert status in ("rolled_back", "failed")
