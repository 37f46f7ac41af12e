"""The console in a real headless Chromium: signing in and out, finding a workflow, reading its
failed step, retrying it and watching it complete; what a viewer, another tenant and a forged
form get."""

from __future__ import annotations

import base64
import json
import uuid
import zlib

from playwright.sync_api import expect
from sqlalchemy import select

from orchestrator import faults
from orchestrator.apikeys import hash_key, revoke_key
from orchestrator.db import transaction
from orchestrator.models import ApiKey, WorkflowStatus
from tests.api.helpers import make_key, seed_workflow, snapshot
from tests.console.helpers import CONSOLE, csrf_token, sign_in
from tests.support.requests import provision_body, submit
from tests.support.workflows import wait_terminal

#: A retry runs every step again; the page reloads itself every 2 s until it is done.
COMPLETION_TIMEOUT_MS = 60_000


def test_operator_finds_a_failed_workflow_retries_it_and_watches_it_complete(
    page, client, worker, plan, operator_key, screenshots
):
    # Given a provisioning that failed for good at the RADIUS step and was rolled back
    body = provision_body(plan.id)
    faults.arm("create_radius_account", ["permanent"], username=body["username"])
    workflow_id, _ = submit(client, operator_key, body)
    assert wait_terminal(workflow_id).value == "rolled_back"

    # When an operator signs in and filters the list down to rolled-back workflows
    sign_in(page, operator_key)
    expect(page.locator("#who")).to_contain_text("operator")
    page.check("input[name=status][value=rolled_back]")
    page.click("#apply")
    row = page.locator(f"tr[data-workflow='{workflow_id}']")
    expect(row).to_contain_text(body["username"])
    expect(page.locator("#workflow-list tbody tr[data-status]")).not_to_have_count(0)
    for status in page.locator("#workflow-list tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.status)"
    ):
        assert status == "rolled_back"
    page.screenshot(path=screenshots / "workflow-list-rolled-back.png", full_page=True)

    # Then its page shows the failed step, in the table, the timeline and the error
    row.locator("a").click()
    expect(page.locator("#status")).to_have_attribute("data-status", "rolled_back")
    expect(page.locator("#workflow-error")).to_contain_text("create_radius_account")
    radius = page.locator("tr[data-step=create_radius_account]")
    expect(radius).to_contain_text("injected permanent failure")
    failed_bar = page.locator("#timeline g.attempt.failed")
    expect(failed_bar).to_have_count(1)
    expect(failed_bar).to_contain_text("injected permanent failure")
    assert page.locator("#timeline g.attempt.undo").count() >= 1  # what was done was undone
    expect(page.locator("#events tr[data-kind=step_failed]")).to_have_count(1)
    # The password is nowhere on the page; the input shows what was asked without it
    assert body["password"] not in page.content()
    expect(page.locator("#input")).to_contain_text(body["onu_serial"])
    page.screenshot(path=screenshots / "workflow-rolled-back.png", full_page=True)

    # When the fault is gone and the operator retries, giving a reason
    faults.clear()
    page.fill("#retry-reason", "RADIUS fixed by ops")
    page.click("#retry")

    # Then the page follows the new run until it completes
    expect(page.locator(".flash.ok")).to_contain_text("run 2 started")
    expect(page.locator("#status")).to_have_attribute(
        "data-status", "completed", timeout=COMPLETION_TIMEOUT_MS
    )
    expect(page.locator("#run")).to_have_text("2")
    expect(page.locator("#actions")).to_have_count(0)  # nothing to retry or cancel now
    expect(page.locator("#timeline g.attempt.ok")).not_to_have_count(0)
    # Who asked and why are in the event log
    retry_event = page.locator("#events tr[data-kind=retry_requested]")
    expect(retry_event.locator("q.reason")).to_have_text("RADIUS fixed by ops")
    expect(retry_event.locator("td.who")).to_contain_text("operator key")
    page.screenshot(path=screenshots / "workflow-completed.png", full_page=True)

    # And the output links to the subscriber it made, with what it holds in each system
    page.click("#output a")
    expect(page.locator("#subscriber-status")).to_contain_text("active")
    expect(page.locator("#resources table[data-system=radius]")).to_contain_text(body["username"])
    expect(page.locator("#history")).to_contain_text("provision_subscriber")
    page.screenshot(path=screenshots / "subscriber.png", full_page=True)

    # And a search by username, or by ONU serial, finds the workflow again
    for text in (body["username"], body["onu_serial"]):
        page.goto(f"{CONSOLE}/workflows")
        page.fill("#q", text)
        page.click("#apply")
        expect(page.locator("#workflow-list tbody tr[data-workflow]")).to_have_count(1)
        expect(page.locator(f"tr[data-workflow='{workflow_id}']")).to_have_count(1)


def test_operator_cancels_a_running_workflow_with_a_reason(page, plan, operator_key):
    # Given a running workflow (its first step holds a live lease: the sweeper leaves it alone)
    workflow_id = seed_workflow("acme", WorkflowStatus.RUNNING, plan_id=plan.id)
    sign_in(page, operator_key)
    page.goto(f"{CONSOLE}/workflows/{workflow_id}")
    expect(page.locator("#retry")).to_have_count(0)  # nothing to retry while it runs

    # When the operator cancels it, saying why (the page does not reload while they type)
    page.fill("#cancel-reason", "customer withdrew the order")
    page.click("#cancel")

    # Then the request is recorded, with who asked and why
    expect(page.locator(".flash.ok")).to_contain_text("Cancel requested")
    cancel_event = page.locator("#events tr[data-kind=cancel_requested]")
    expect(cancel_event.locator("q.reason")).to_have_text("customer withdrew the order")
    expect(cancel_event.locator("td.who")).to_contain_text("operator key")

    # And a reason over 500 characters is refused, naming the problem, and changes nothing
    before = snapshot(workflow_id)
    page.locator("#cancel-reason").evaluate("(el, v) => el.value = v", "x" * 501)
    page.click("#cancel")
    expect(page.locator(".flash.error")).to_contain_text("longer than 500")
    assert snapshot(workflow_id) == before


def test_a_viewer_sees_no_buttons_and_cannot_post(page, plan, console_viewer_key):
    # Given a rolled-back workflow, which an operator could retry
    workflow_id = seed_workflow("acme", WorkflowStatus.ROLLED_BACK, plan_id=plan.id)
    before = snapshot(workflow_id)

    # When a viewer opens it
    sign_in(page, console_viewer_key)
    page.goto(f"{CONSOLE}/workflows/{workflow_id}")

    # Then the page shows it, without Retry or Cancel
    expect(page.locator("#status")).to_have_attribute("data-status", "rolled_back")
    expect(page.locator("#who")).to_contain_text("viewer")
    expect(page.locator("#actions")).to_have_count(0)
    expect(page.locator("#retry")).to_have_count(0)

    # And a hand-made retry, even with this session's form token, is refused
    response = page.request.post(
        f"{CONSOLE}/workflows/{workflow_id}/retry", form={"csrf_token": csrf_token(page)}
    )
    assert response.status == 403
    assert snapshot(workflow_id) == before


def test_another_tenants_workflow_is_not_found(page, plan, operator_key, console_globex_key):
    # Given a workflow of the other tenant
    theirs = seed_workflow("globex", WorkflowStatus.ROLLED_BACK, plan_id=plan.id)

    # When an operator of acme opens it by its id
    sign_in(page, operator_key)
    response = page.goto(f"{CONSOLE}/workflows/{theirs}")

    # Then it is a 404, word for word the page of a workflow that does not exist
    assert response.status == 404
    expect(page.locator("#error-code")).to_contain_text("404")
    missing = page.goto(f"{CONSOLE}/workflows/{uuid.uuid4()}")
    assert missing.status == 404
    # Nor can it be retried from here
    forged = page.request.post(
        f"{CONSOLE}/workflows/{theirs}/retry", form={"csrf_token": csrf_token(page)}
    )
    assert forged.status == 404


def test_a_post_without_the_form_token_is_refused(page, plan, operator_key):
    # Given a signed-in operator and a workflow that could be retried
    workflow_id = seed_workflow("acme", WorkflowStatus.ROLLED_BACK, plan_id=plan.id)
    before = snapshot(workflow_id)
    sign_in(page, operator_key)

    # When a form arrives without this session's token (as from another site), or a wrong one
    for form in ({}, {"csrf_token": "forged"}):
        response = page.request.post(f"{CONSOLE}/workflows/{workflow_id}/retry", form=form)
        # Then it is refused and nothing changes
        assert response.status == 400
    assert snapshot(workflow_id) == before
    # And signing out needs the token too, and so does signing in (no login CSRF)
    assert page.request.post(f"{CONSOLE}/sign-out", form={}).status == 400
    signing_in = page.request.post(f"{CONSOLE}/sign-in", form={"api_key": operator_key})
    assert signing_in.status == 400
    page.goto(f"{CONSOLE}/workflows")
    expect(page.locator("#who")).to_be_visible()


def test_the_cookie_holds_no_key_and_sign_out_works(page, tenant):
    # Given an operator key of its own (it is revoked below)
    key = make_key(tenant, "operator")
    sign_in(page, key)

    # Then the session cookie is HttpOnly, SameSite, for the console only, and holds no key
    (cookie,) = [c for c in page.context.cookies() if c["name"] == "orchestrator_console"]
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Lax"
    assert cookie["path"] == "/console"
    assert key not in json.dumps(_cookie_payload(cookie["value"]))
    assert key not in cookie["value"]

    # When the operator signs out
    page.click("#sign-out")

    # Then the sign-in page shows, and the console is closed until signing in again
    page.wait_for_url("**/console/sign-in**")
    page.goto(f"{CONSOLE}/workflows")
    page.wait_for_url("**/console/sign-in**")
    expect(page.locator("#sign-in")).to_be_visible()

    # And a revoked key is signed out at its next click
    sign_in(page, key)
    with transaction() as session:
        row = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(key)))
        revoke_key(session, row.id)
    page.goto(f"{CONSOLE}/statistics")
    page.wait_for_url("**/console/sign-in**")
    # And it cannot sign in again
    page.fill("#api_key", key)
    page.click("#sign-in")
    expect(page.locator("#sign-in-error")).to_be_visible()


def test_statistics_draw_success_rate_durations_and_failures_per_step(
    page, plan, operator_key, screenshots
):
    # Given finished workflows, some of which failed at a step
    seed_workflow("acme", WorkflowStatus.COMPLETED, plan_id=plan.id)
    seed_workflow(
        "acme",
        WorkflowStatus.ROLLED_BACK,
        plan_id=plan.id,
        events=[("allocate_ip", "step_retry_scheduled"), ("allocate_ip", "step_failed")],
    )

    # When an operator opens the statistics
    sign_in(page, operator_key)
    page.goto(f"{CONSOLE}/statistics")

    # Then the success rate and the charts are drawn, failures per step among them
    expect(page.locator("#success-rate")).to_contain_text("%")
    failures = page.locator("figure.chart", has_text="Failures per step")
    expect(failures.locator("svg")).to_contain_text("allocate_ip")
    expect(failures.locator("rect.bar.failed")).not_to_have_count(0)
    p95 = page.locator("figure.chart", has_text="p95 duration by type")
    expect(p95.locator("svg")).to_contain_text("provision_subscriber")
    page.screenshot(path=screenshots / "statistics.png", full_page=True)

    # And the list shows them all, newest first, each with its status
    page.goto(f"{CONSOLE}/workflows")
    statuses = page.locator("#workflow-list tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.status)"
    )
    assert {"completed", "rolled_back"} <= set(statuses)
    page.screenshot(path=screenshots / "workflow-list.png", full_page=True)


def _cookie_payload(value: str) -> object:
    """What Flask's signed cookie carries (signed, not encrypted: anyone can read it)."""
    compressed = value.startswith(".")
    data = value.lstrip(".").split(".")[0]
    raw = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
    return json.loads(zlib.decompress(raw) if compressed else raw)
