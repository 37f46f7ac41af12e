"""Bulk jobs in the console, in a real headless Chromium: a job's progress and counts, the rows
that did not complete with their errors, the CSV report, cancelling a scheduled job; what a
viewer and another tenant get."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

from playwright.sync_api import expect

from orchestrator import faults
from tests.bulk.conftest import BULK, auth, rows, wait_job
from tests.console.helpers import CONSOLE, sign_in


def test_a_finished_job_shows_its_counts_its_failed_rows_and_its_report(
    page, client, worker, sim, plan, operator_key, screenshots
):
    # Given a job of six rows: row 2 invalid, row 4 failing for good at the RADIUS step
    body_rows = rows(plan.id, 6)
    body_rows[1]["onu_serial"] = "not-a-serial"
    faults.arm("create_radius_account", ["permanent"], username=body_rows[3]["username"])
    response = client.post(BULK, json={"rows": body_rows}, headers=auth(operator_key))
    assert response.status_code == 202, response.get_json()
    job_id = response.get_json()["id"]
    wait_job(job_id)
    faults.clear()

    # When an operator opens the bulk jobs and then this one
    sign_in(page, operator_key)
    page.click("nav >> text=Bulk jobs")
    listed = page.locator(f"#bulk-job-list tr[data-job='{job_id}']")
    expect(listed).to_contain_text("completed")
    expect(listed).to_contain_text("6 / 6")
    expect(listed.locator("svg.progress rect.bar.ok")).to_have_count(1)
    listed.locator("a").click()

    # Then it shows the counts by outcome and a progress bar of them
    expect(page.locator("#counts td[data-outcome=completed]")).to_have_text("4")
    expect(page.locator("#counts td[data-outcome=invalid]")).to_have_text("1")
    expect(page.locator("#counts td[data-outcome=rolled_back]")).to_have_text("1")
    expect(page.locator("#progress svg.progress rect.bar")).to_have_count(3)
    # And, first, only the rows that did not complete, with why and a link to the workflow
    expect(page.locator("#rows tbody tr[data-row]")).to_have_count(2)
    expect(page.locator("#rows tr[data-row='2']")).to_contain_text("onu_serial")
    failed = page.locator("#rows tr[data-row='4']")
    expect(failed).to_contain_text("rolled_back")
    expect(failed).to_contain_text("injected permanent failure")
    expect(page.locator("#actions")).to_have_count(0)  # nothing to cancel any more
    page.screenshot(path=screenshots / "bulk-job.png", full_page=True)
    failed.locator("a").click()
    expect(page.locator("#status")).to_have_attribute("data-status", "rolled_back")
    page.go_back()

    # And every row on request
    page.click("text=show every row")
    expect(page.locator("#rows tbody tr[data-row]")).to_have_count(6)

    # And the report downloads as CSV, one line per row
    with page.expect_download() as download:
        page.click("#report")
    text = download.value.path().read_text()
    report = list(csv.DictReader(io.StringIO(text)))
    assert [line["row"] for line in report] == ["1", "2", "3", "4", "5", "6"]
    assert [line["status"] for line in report].count("completed") == 4
    assert "onu_serial" in report[1]["error"]


def test_an_operator_cancels_a_scheduled_job_a_viewer_cannot_another_tenant_finds_nothing(
    page, client, sim, plan, operator_key, console_viewer_key, console_globex_key
):
    # Given a job scheduled for an hour from now
    not_before = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    response = client.post(
        BULK,
        json={"rows": rows(plan.id, 3), "not_before": not_before},
        headers=auth(operator_key),
    )
    assert response.status_code == 202, response.get_json()
    job_id = response.get_json()["id"]
    job_page = f"{CONSOLE}/bulk-jobs/{job_id}"

    # A viewer sees it, without a button
    sign_in(page, console_viewer_key)
    page.goto(job_page)
    expect(page.locator("h1")).to_contain_text("scheduled")
    expect(page.locator("#counts td[data-outcome=waiting]")).to_have_text("3")
    expect(page.locator("#cancel-job")).to_have_count(0)
    page.context.clear_cookies()

    # Another tenant finds nothing there
    sign_in(page, console_globex_key)
    response = page.goto(job_page)
    assert response is not None and response.status == 404
    page.context.clear_cookies()

    # An operator cancels it: no row will start
    sign_in(page, operator_key)
    page.goto(job_page)
    page.click("#cancel-job")
    expect(page.locator(".flash.ok")).to_contain_text("Cancel requested")
    expect(page.locator("h1")).to_contain_text("cancelled")
    expect(page.locator("#counts td[data-outcome=skipped]")).to_have_text("3")
    expect(page.locator("#cancel-job")).to_have_count(0)
