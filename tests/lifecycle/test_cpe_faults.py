"""GenieACS faults do not bring rolled-back or deprovisioned credentials back (issue 8 item 2).

GenieACS keeps a faulted task's fault when a task with the same uniqueKey replaces the task, and
re-applies the fault's provisions by itself at an inform once its retry delay has passed. The
simulator's retry delay is set short here, and an inform is triggered through the control API.
"""

from __future__ import annotations

import time
from typing import Any

from tests.lifecycle.test_lifecycle import PPP_TR181, cpe, run
from tests.support.requests import provision_body, submit, unique_cpe_serial, unique_serial
from tests.support.workflows import steps, wait_terminal

RETRY_DELAY_S = 0.5


def assert_nothing_of_ours(sim, body: dict[str, Any]) -> None:
    device = cpe(sim, body["cpe_serial"])
    assert device["tasks"] == []
    assert device["faults"] == []
    assert device["parameters"][f"{PPP_TR181}.Username"] == ""
    assert body["password"] not in str(device["parameters"])


def inform_after_the_retry_delay(sim, serial: str) -> None:
    time.sleep(RETRY_DELAY_S + 0.1)
    sim.control("POST", f"cpes/{serial}/inform", expect=200)


def test_a_rollback_after_a_faulted_push_leaves_no_task_no_fault_and_nothing_comes_back(
    sim, client, worker, basic_plan, operator_key
):
    # Given a CPE that refuses the push (one CWMP fault), and GenieACS retrying faults quickly
    sim.control("POST", "config", {"genieacs_retry_delay_s": RETRY_DELAY_S}, expect=200)
    body = provision_body(
        basic_plan.id, discovered=False, onu_serial=unique_serial(), cpe_serial=unique_cpe_serial()
    )
    sim.add_onu(body["onu_serial"])
    sim.add_cpe(body["cpe_serial"], data_model="tr181", fail_tasks=1, fault_code="9002")

    # When the provisioning runs: the push faults, so the workflow rolls back
    workflow_id, _ = submit(client, operator_key, body)
    assert wait_terminal(workflow_id).value == "rolled_back"
    step = steps(workflow_id)["configure_cpe"]
    assert step.status.value in ("failed", "compensated")
    assert "refused" in step.error["message"]

    # Then GenieACS holds no task and no fault of ours
    assert_nothing_of_ours(sim, body)
    # And when the CPE informs after the retry delay, the credentials do not come back
    inform_after_the_retry_delay(sim, body["cpe_serial"])
    assert_nothing_of_ours(sim, body)


def test_deprovisioning_removes_a_faulted_push_that_genieacs_would_retry(
    sim, client, worker, basic_plan, operator_key
):
    # Given a subscriber whose CPE was offline at provisioning (the push queued), then refused
    # it when it came back: a fault of ours, with its task
    sim.control("POST", "config", {"genieacs_retry_delay_s": RETRY_DELAY_S}, expect=200)
    body = provision_body(
        basic_plan.id, discovered=False, onu_serial=unique_serial(), cpe_serial=unique_cpe_serial()
    )
    sim.add_onu(body["onu_serial"])
    sim.add_cpe(body["cpe_serial"], data_model="tr181", online=False)
    workflow_id, _ = submit(client, operator_key, body)
    assert wait_terminal(workflow_id).value == "completed"
    assert steps(workflow_id)["configure_cpe"].output["applied"] is False
    serial = body["cpe_serial"]
    sim.control("PATCH", f"cpes/{serial}", {"online": True, "fail_tasks": 1}, expect=200)
    assert len(cpe(sim, serial)["faults"]) == 1
    detail = client.get(
        f"/api/v1/orchestration/workflows/{workflow_id}",
        headers={"Authorization": f"Bearer {operator_key}"},
    ).get_json()
    subscriber_id = detail["output"]["subscriber_id"]

    # When the subscriber is deprovisioned
    deprovision = run(client, operator_key, "deprovision-subscriber", subscriber_id)
    assert wait_terminal(deprovision, timeout=90).value == "completed"

    # Then no task and no fault of ours is left, and an inform after the retry delay brings
    # nothing back
    assert_nothing_of_ours(sim, body)
    inform_after_the_retry_delay(sim, serial)
    assert_nothing_of_ours(sim, body)
