"""Rows the feeder cannot start (a password sealed with another key), a window of refused rows,
the job's reads (``?failed=true``, throughput) and duplicates within a job's CPE MACs."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.fernet import Fernet
from sqlalchemy import delete, select, update

from orchestrator.bulk import feeder
from orchestrator.bulk.jobs import BulkService
from orchestrator.db import transaction
from orchestrator.engine.rows import utcnow
from orchestrator.models import (
    BulkJob,
    BulkJobRow,
    BulkJobStatus,
    BulkRowStatus,
    ServicePlan,
    WorkflowStatus,
)
from orchestrator.vault import seal
from tests.bulk.conftest import BULK, all_rows, auth, job_status, job_url, rows, wait_job
from tests.support.plans import create_plan
from tests.support.requests import provision_body

#: What a row sealed before ORCHESTRATOR_SECRET_KEY was rotated looks like to the feeder.
OTHER_KEY = Fernet.generate_key().decode()


def _scheduled(client: Any, key: str, body_rows: list[dict[str, Any]], **options: Any) -> str:
    not_before = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    response = client.post(
        BULK, json={"rows": body_rows, "not_before": not_before, **options}, headers=auth(key)
    )
    assert response.status_code == 202, response.get_json()
    return response.get_json()["id"]


def _seal_with_another_key(job_id: str, row_numbers: list[int]) -> None:
    with transaction() as session:
        session.execute(
            update(BulkJobRow)
            .where(BulkJobRow.job_id == uuid.UUID(job_id), BulkJobRow.row_number.in_(row_numbers))
            .values(secrets=seal({"password": "sealed-elsewhere"}, key=OTHER_KEY))
        )


def _make_due(session: Any, job_id: str) -> None:
    session.execute(
        update(BulkJob)
        .where(BulkJob.id == uuid.UUID(job_id))
        .values(not_before=utcnow() - timedelta(seconds=1))
    )


def _row_statuses(job_id: str) -> list[BulkRowStatus]:
    with transaction() as session:
        return list(
            session.scalars(
                select(BulkJobRow.status)
                .where(BulkJobRow.job_id == uuid.UUID(job_id))
                .order_by(BulkJobRow.row_number)
            )
        )


def test_a_row_that_cannot_be_decrypted_is_refused_and_the_others_run(
    client, worker, sim, operator_key, plan
):
    body_rows = rows(plan.id, 3)
    job_id = _scheduled(client, operator_key, body_rows)
    _seal_with_another_key(job_id, [2])
    with transaction() as session:
        _make_due(session, job_id)  # beat starts it within a second

    wait_job(job_id, timeout=90)

    items = all_rows(client, operator_key, job_id)
    assert [item["status"] for item in items] == ["completed", "refused", "completed"]
    message = items[1]["error"]["message"]
    assert "decrypt" in message and "ORCHESTRATOR_SECRET_KEY" in message
    assert "sealed-elsewhere" not in message
    with transaction() as session:
        refused = session.get(BulkJobRow, (uuid.UUID(job_id), 2))
        assert refused.secrets is None


def test_a_window_of_refused_rows_does_not_stall_the_job(client, operator_key, tenant):
    doomed = create_plan(tenant, f"doomed-{uuid.uuid4().hex[:8]}")
    body_rows = [provision_body(doomed.id, discovered=False) for _ in range(5)]
    job_id = _scheduled(client, operator_key, body_rows, max_in_flight=2)
    with transaction() as session:  # every row is refused when it is to start
        session.execute(delete(ServicePlan).where(ServicePlan.id == doomed.id))

    with transaction() as session:
        _make_due(session, job_id)
        dispatches = feeder.feed(session, uuid.UUID(job_id))

    # One feed went on past the first window of refusals, to the end of the job.
    assert dispatches == []
    assert _row_statuses(job_id) == [BulkRowStatus.REFUSED] * 5
    assert job_status(job_id) == BulkJobStatus.COMPLETED


def test_one_feed_examines_a_bounded_number_of_rows_and_asks_for_the_next(
    client, operator_key, plan, monkeypatch
):
    body_rows = [provision_body(plan.id, discovered=False) for _ in range(5)]
    job_id = _scheduled(client, operator_key, body_rows, max_in_flight=2)
    _seal_with_another_key(job_id, [1, 2, 3, 4, 5])
    monkeypatch.setattr(feeder, "MAX_ROWS_PER_FEED", 3)
    requested: list[uuid.UUID] = []
    monkeypatch.setattr(feeder, "_publisher", requested.append)

    with transaction() as session:
        _make_due(session, job_id)
        feeder.feed(session, uuid.UUID(job_id))

    assert _row_statuses(job_id) == [BulkRowStatus.REFUSED] * 3 + [BulkRowStatus.WAITING] * 2
    assert requested == [uuid.UUID(job_id)]  # the rest follows at once, not at beat's pace
    with transaction() as session:
        feeder.feed(session, uuid.UUID(job_id))
    assert job_status(job_id) == BulkJobStatus.COMPLETED


def test_failed_rows_include_the_skipped_ones(client, operator_key, plan):
    body_rows = [provision_body(plan.id, discovered=False) for _ in range(3)]
    body_rows[1]["onu_serial"] = "bad"
    job_id = _scheduled(client, operator_key, body_rows)
    assert client.post(f"{job_url(job_id)}/cancel", headers=auth(operator_key)).status_code == 202

    response = client.get(f"{job_url(job_id)}?failed=true", headers=auth(operator_key))

    assert response.status_code == 200
    page = response.get_json()["rows"]
    assert [(item["row"], item["status"]) for item in page["items"]] == [
        (1, "skipped"),
        (2, "invalid"),
        (3, "skipped"),
    ]
    assert page["total"] == 3


def test_a_cancelled_jobs_throughput_is_measured_to_its_end():
    started = utcnow() - timedelta(hours=2)
    job = BulkJob(
        status=BulkJobStatus.CANCELLED,
        started_at=started,
        finished_at=started + timedelta(seconds=10),
    )
    counts = {status.value: 0 for status in (*WorkflowStatus, *BulkRowStatus)}
    counts.update(completed=4, rolled_back=1)

    throughput, eta = BulkService._pace(None, job, counts)  # type: ignore[arg-type]

    assert (throughput, eta) == (0.5, None)


def test_the_same_cpe_mac_twice_in_a_job_is_invalid_in_any_notation(client, operator_key, plan):
    body_rows = [provision_body(plan.id, discovered=False) for _ in range(3)]
    body_rows[0]["cpe_mac"] = "00:11:22:AA:BB:CC"
    body_rows[1]["cpe_mac"] = "0011.22aa.bbcc"
    body_rows[2]["cpe_mac"] = "00-11-22-aa-bb-cd"

    job_id = _scheduled(client, operator_key, body_rows)

    items = all_rows(client, operator_key, job_id)
    assert [item["status"] for item in items] == ["waiting", "invalid", "waiting"]
    assert items[1]["error"]["fields"] == {
        "cpe_mac": ["CPE MAC 00:11:22:aa:bb:cc is also in row 1"]
    }
