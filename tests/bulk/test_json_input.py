"""A JSON body: malformed or misplaced input is a 4xx in the API's one error shape, and a
broker that is down once the job is stored does not turn an accepted job into an error.

No worker runs here; jobs that could start are scheduled an hour ahead, or cancelled.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kombu.exceptions import OperationalError as KombuOperationalError
from sqlalchemy import func, select

from orchestrator.bulk import feeder
from orchestrator.db import transaction
from orchestrator.models import BulkJob, BulkJobStatus
from tests.bulk.conftest import BULK, all_rows, auth, job_url
from tests.support.requests import provision_body


def _later() -> str:
    return (datetime.now(UTC) + timedelta(hours=1)).isoformat()


def _jobs() -> int:
    with transaction() as session:
        return session.scalar(select(func.count()).select_from(BulkJob)) or 0


def _error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body["error"]) == {"code", "message", "details"}
    return body["error"]


def test_unprintable_and_surrogate_field_names_are_stored_readable(client, operator_key, plan):
    row = provision_body(plan.id, discovered=False)
    row["\u0000"] = 1
    row["x\ud800"] = 2
    row["customer"]["\u2028"] = 3

    response = client.post(
        BULK, json={"rows": [row], "not_before": _later()}, headers=auth(operator_key)
    )

    assert response.status_code == 202, response.get_data(as_text=True)
    (item,) = all_rows(client, operator_key, response.get_json()["id"])
    assert item["status"] == "invalid"
    fields = item["error"]["fields"]
    assert fields["\\x00"] == ["Unknown field."]
    assert fields["x\\ud800"] == ["Unknown field."]
    assert fields["customer"] == {"\\u2028": ["Unknown field."]}


def test_a_very_long_unknown_field_name_is_shortened_in_the_error(client, operator_key, plan):
    row = provision_body(plan.id, discovered=False)
    row["n" * 10_000] = 1

    response = client.post(
        BULK, json={"rows": [row], "not_before": _later()}, headers=auth(operator_key)
    )

    assert response.status_code == 202
    (item,) = all_rows(client, operator_key, response.get_json()["id"])
    (name,) = item["error"]["fields"]
    assert name.startswith("nnn") and len(name) < 200


def test_all_or_nothing_names_unprintable_fields_readably(client, operator_key, plan):
    row = provision_body(plan.id, discovered=False)
    row["\u0000"] = 1
    before = _jobs()

    response = client.post(
        BULK, json={"rows": [row], "all_or_nothing_validation": True}, headers=auth(operator_key)
    )

    error = _error(response, 422)
    assert error["details"] == {"rows[1]": ["\\x00: Unknown field."]}
    assert _jobs() == before


@pytest.mark.parametrize(
    "body",
    ['{"rows": ' + "[" * 50_000, "[" * 5000 + "]" * 5000, '{"rows": [' + '{"a":' * 5000],
)
def test_a_deeply_nested_body_is_400_malformed_json(client, operator_key, body):
    response = client.post(
        BULK, data=body, content_type="application/json", headers=auth(operator_key)
    )

    assert _error(response, 400)["code"] == "malformed_json"


@pytest.mark.parametrize(
    "body", ['{"rows": [', '{"rows": [{"service_plan_id": ' + "9" * 5000 + "}]}", b"\xff"]
)
def test_invalid_json_is_400_malformed_json_like_the_rest_of_the_api(client, operator_key, body):
    response = client.post(
        BULK, data=body, content_type="application/json", headers=auth(operator_key)
    )

    assert _error(response, 400)["code"] == "malformed_json"


def test_query_parameters_with_a_json_body_are_named_and_refused(client, operator_key, plan):
    before = _jobs()

    response = client.post(
        BULK,
        json={"rows": [provision_body(plan.id, discovered=False)], "not_before": _later()},
        query_string={
            "all_or_nothing_validation": "true",
            "not_before": _later(),
            "bogus": "1",
        },
        headers=auth(operator_key),
    )

    error = _error(response, 422)
    assert set(error["details"]) == {"all_or_nothing_validation", "not_before", "bogus"}
    for reasons in error["details"].values():
        assert reasons == ["options go in the body for JSON"]
    assert _jobs() == before


def test_a_broker_down_after_the_commit_still_answers_with_the_stored_job(
    app, client, operator_key, plan, monkeypatch
):
    def broker_down(job_id: uuid.UUID) -> None:
        raise KombuOperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(app.extensions["bulk_service"], "_publish_feed", broker_down)

    response = client.post(
        BULK,
        json={"rows": [provision_body(plan.id, discovered=False)]},
        headers=auth(operator_key),
    )

    try:
        assert response.status_code == 202, response.get_data(as_text=True)
        job_id = uuid.UUID(response.get_json()["id"])
        assert response.get_json()["status"] == "running"
        # Beat feeds every running job: the first feed that was lost is made good there.
        with transaction() as session:
            assert job_id in feeder.due_jobs(session)
            assert session.get(BulkJob, job_id).status == BulkJobStatus.RUNNING
    finally:
        monkeypatch.undo()
        client.post(f"{job_url(response.get_json()['id'])}/cancel", headers=auth(operator_key))
