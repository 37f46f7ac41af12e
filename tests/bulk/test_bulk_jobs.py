"""Bulk jobs end to end: real worker, beat, PostgreSQL, Redis, FreeRADIUS and simulators."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from orchestrator import faults
from orchestrator.db import transaction
from orchestrator.models import BulkJobRow, Subscriber, Workflow
from tests.bulk.conftest import BULK, all_rows, auth, job_url, read_report, rows, wait_job
from tests.support.workflows import wait_until

FAILING_STEPS = (
    "activate_onu",
    "create_radius_account",
    "allocate_ip",
    "assign_framed_ip",
    "create_billing_service",
)


def test_200_rows_with_invalid_and_failing_rows(client, worker, sim, operator_key, plan):
    body_rows = rows(plan.id, 200)
    invalid = set(range(5, 200, 20))  # 10 rows, numbered from 1: 6, 26, ...
    failing = set(range(12, 200, 20))  # 10 others
    for index in invalid:
        body_rows[index]["onu_serial"] = "not-a-serial"
    for n, index in enumerate(sorted(failing)):
        step = FAILING_STEPS[n % len(FAILING_STEPS)]
        faults.arm(step, ["permanent"], username=body_rows[index]["username"])

    response = client.post(BULK, json={"rows": body_rows}, headers=auth(operator_key))

    assert response.status_code == 202, response.get_json()
    job = response.get_json()
    assert response.headers["Location"] == job_url(job["id"])
    assert (job["total"], job["invalid"]) == (200, 10)
    wait_job(job["id"])
    detail = client.get(job_url(job["id"]), headers=auth(operator_key)).get_json()
    assert detail["job"]["status"] == "completed"
    counts = detail["counts"]
    assert (counts["completed"], counts["invalid"], counts["rolled_back"]) == (180, 10, 10)
    assert counts["running"] == counts["waiting"] == counts["refused"] == 0
    assert detail["throughput_per_second"] > 0

    by_row = {item["row"]: item for item in all_rows(client, operator_key, job["id"])}
    for index in invalid:
        item = by_row[index + 1]
        assert item["status"] == "invalid" and item["workflow_id"] is None
        assert "onu_serial" in item["error"]["fields"]
    for index in failing:
        assert by_row[index + 1]["status"] == "rolled_back"
        assert by_row[index + 1]["error"]["message"]
    # The invalid rows never started: no workflow, no subscriber for them.
    with transaction() as session:
        started = session.scalar(
            select(func.count()).select_from(Workflow).where(Workflow.bulk_job_id == job["id"])
        )
        usernames = [body_rows[i]["username"] for i in invalid]
        leaked = session.scalar(
            select(func.count()).select_from(Subscriber).where(Subscriber.username.in_(usernames))
        )
    assert (started, leaked) == (190, 0)

    report = read_report(client, operator_key, job["id"])
    assert [int(line["row"]) for line in report] == list(range(1, 201))
    for line in report:
        item = by_row[int(line["row"])]
        assert line["status"] == item["status"]
        assert line["workflow_id"] == (item["workflow_id"] or "")
        assert bool(line["error"]) == (item["status"] != "completed")
    assert "onu_serial" in report[5]["error"]


def test_the_same_key_is_the_same_job_and_the_same_usernames_never_provision_twice(
    client, worker, sim, operator_key, plan
):
    body = {"rows": rows(plan.id, 5)}
    headers = auth(operator_key, **{"Idempotency-Key": f"night-{uuid.uuid4()}"})
    first = client.post(BULK, json=body, headers=headers)
    again = client.post(BULK, json=body, headers=headers)
    assert (first.status_code, again.status_code) == (202, 200)
    assert first.get_json()["id"] == again.get_json()["id"]
    # A second job with the same rows while the first runs: each row refused or invalid.
    second = client.post(BULK, json=body, headers=auth(operator_key))
    assert second.status_code == 202
    wait_job(first.get_json()["id"])
    wait_job(second.get_json()["id"])

    first_rows = all_rows(client, operator_key, first.get_json()["id"])
    second_rows = all_rows(client, operator_key, second.get_json()["id"])
    assert [r["status"] for r in first_rows] == ["completed"] * 5
    assert {r["status"] for r in second_rows} <= {"invalid", "refused"}
    with transaction() as session:
        usernames = [row["username"] for row in body["rows"]]
        subscribers = session.scalar(
            select(func.count()).select_from(Subscriber).where(Subscriber.username.in_(usernames))
        )
    assert subscribers == 5


def test_all_or_nothing_validation_refuses_the_job_and_stores_nothing(
    client, worker, sim, operator_key, plan
):
    body_rows = rows(plan.id, 3)
    body_rows[1]["customer"]["email"] = "not-an-email"
    body_rows[2]["username"] = body_rows[0]["username"]  # the same username twice

    response = client.post(
        BULK,
        json={"rows": body_rows, "all_or_nothing_validation": True},
        headers=auth(operator_key),
    )

    assert response.status_code == 422
    details = response.get_json()["error"]["details"]
    assert "customer.email" in details["rows[2]"][0]
    assert "also in row 1" in details["rows[3]"][0]
    with transaction() as session:
        stored = session.scalar(
            select(func.count())
            .select_from(Subscriber)
            .where(Subscriber.username == body_rows[0]["username"])
        )
    assert stored == 0


def test_csv_rows_with_nested_columns_and_errors_by_row(client, worker, sim, operator_key, plan):
    good = rows(plan.id, 2)
    header = "customer.first_name,customer.last_name,customer.email,service_plan_id,"
    header += "service_address,username,onu_serial,c_tag\n"
    lines = [
        f"Ada,Lovelace,ada@example.net,{plan.id},12 Row,{good[0]['username']},"
        f"{good[0]['onu_serial']},\n",
        f"Bob,Babbage,bob@example.net,{plan.id},13 Row,{good[1]['username']},"
        f"{good[1]['onu_serial']},\n",
        "Eve,Bad,eve@example.net,not-a-number,14 Row,eve.bad,BBSM00000099,9999\n",
    ]
    response = client.post(
        BULK,
        data=header + "".join(lines),
        headers=auth(operator_key, **{"Content-Type": "text/csv"}),
    )
    assert response.status_code == 202, response.get_json()
    job_id = response.get_json()["id"]
    wait_job(job_id)
    items = all_rows(client, operator_key, job_id)
    assert [item["status"] for item in items] == ["completed", "completed", "invalid"]
    assert set(items[2]["error"]["fields"]) == {"service_plan_id", "c_tag"}
    # No password was given: one was generated, and none is stored with the rows.
    with transaction() as session:
        stored = session.scalars(select(BulkJobRow).where(BulkJobRow.job_id == job_id)).all()
    assert all(row.secrets is None and "password" not in (row.request or {}) for row in stored)


def test_a_password_never_rests_in_clear(client, worker, sim, operator_key, plan):
    body_rows = rows(plan.id, 1)
    response = client.post(
        BULK,
        json={
            "rows": body_rows,
            "not_before": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
        },
        headers=auth(operator_key),
    )
    job_id = response.get_json()["id"]
    assert response.get_json()["status"] == "scheduled"
    with transaction() as session:
        row = session.scalars(select(BulkJobRow).where(BulkJobRow.job_id == job_id)).one()
        assert row.secrets is not None
        assert body_rows[0]["password"].encode() not in row.secrets
        assert "password" not in row.request
    assert body_rows[0]["password"] not in client.get(
        job_url(job_id), headers=auth(operator_key)
    ).get_data(as_text=True)
    assert client.post(f"{job_url(job_id)}/cancel", headers=auth(operator_key)).status_code == 202


def test_a_scheduled_job_starts_when_due_without_a_person(client, worker, sim, operator_key, plan):
    not_before = datetime.now(UTC) + timedelta(seconds=4)
    response = client.post(
        BULK,
        json={"rows": rows(plan.id, 2), "not_before": not_before.isoformat()},
        headers=auth(operator_key),
    )
    job_id = response.get_json()["id"]
    assert response.get_json()["status"] == "scheduled"

    wait_job(job_id, timeout=60)

    with transaction() as session:
        first_started = session.scalar(
            select(func.min(Workflow.created_at)).where(Workflow.bulk_job_id == job_id)
        )
    assert first_started >= not_before
    detail = client.get(job_url(job_id), headers=auth(operator_key)).get_json()
    assert detail["counts"]["completed"] == 2


def test_cancel_mid_run_starts_no_row_and_compensates_the_running(
    client, worker, sim, operator_key, plan
):
    body_rows = rows(plan.id, 60)
    for row in body_rows:  # slow enough that rows are in flight when the cancel comes
        faults.arm("activate_onu", ["slow"], username=row["username"])
    response = client.post(BULK, json={"rows": body_rows}, headers=auth(operator_key))
    job_id = response.get_json()["id"]
    wait_until(
        lambda: (
            client.get(job_url(job_id), headers=auth(operator_key)).get_json()["counts"]["running"]
            >= 5
        ),
        60,
        "rows running",
    )

    cancelled = client.post(f"{job_url(job_id)}/cancel", headers=auth(operator_key))
    cancelled_at = datetime.now(UTC)

    assert cancelled.status_code == 202
    assert cancelled.get_json()["status"] == "cancelled"
    wait_until(
        lambda: all(
            item["status"] not in ("waiting", "pending", "running", "rolling_back")
            for item in all_rows(client, operator_key, job_id)
        ),
        120,
        "the cancelled job's rows to settle",
    )
    items = all_rows(client, operator_key, job_id)
    statuses = {item["status"] for item in items}
    assert "skipped" in statuses
    assert statuses <= {"skipped", "compensated", "completed"}
    assert any(item["status"] == "compensated" for item in items)
    with transaction() as session:
        latest = session.scalar(
            select(func.max(Workflow.created_at)).where(Workflow.bulk_job_id == job_id)
        )
    assert latest < cancelled_at
    again = client.post(f"{job_url(job_id)}/cancel", headers=auth(operator_key))
    assert again.status_code == 409
