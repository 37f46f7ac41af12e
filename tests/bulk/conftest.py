from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from orchestrator import faults
from orchestrator.db import transaction
from orchestrator.models import BulkJob, BulkJobStatus
from tests.support.requests import provision_body
from tests.support.workflows import wait_until
from tests.webhooks.conftest import admin_key, readme_verify  # noqa: F401 - fixtures

BULK = "/api/v1/orchestration/bulk-provision"


def auth(key: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **headers}


def rows(plan_id: int, count: int) -> list[dict[str, Any]]:
    """``count`` valid provisioning bodies, their ONUs discovered in the simulators."""
    return [provision_body(plan_id) for _ in range(count)]


def job_url(job_id: str) -> str:
    return f"/api/v1/orchestration/bulk-jobs/{job_id}"


def job_status(job_id: str) -> BulkJobStatus:
    with transaction() as session:
        job = session.get(BulkJob, uuid.UUID(job_id))
        assert job is not None
        return job.status


def wait_job(job_id: str, timeout: float = 240.0) -> None:
    wait_until(lambda: job_status(job_id).is_finished, timeout, f"bulk job {job_id} to finish")


def read_report(client: Any, key: str, job_id: str) -> list[dict[str, str]]:
    response = client.get(f"{job_url(job_id)}/report.csv", headers=auth(key))
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


def all_rows(client: Any, key: str, job_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    offset: int | None = 0
    while offset is not None:
        body = client.get(f"{job_url(job_id)}?limit=100&offset={offset}", headers=auth(key))
        assert body.status_code == 200, body.get_json()
        page = body.get_json()["rows"]
        items.extend(page["items"])
        offset = page["next_offset"]
    return items


@pytest.fixture(autouse=True)
def _no_leftover_faults() -> Iterator[None]:
    yield
    faults.clear()
