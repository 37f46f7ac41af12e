"""A bulk job that finishes is heard: ``bulk_job.finished``, signed, with its counts."""

from __future__ import annotations

from tests.bulk.conftest import BULK, auth, rows, wait_job
from tests.support.receiver import Receiver
from tests.support.workflows import wait_until
from tests.webhooks.conftest import register


def test_a_finished_job_is_delivered_with_its_counts(
    client, worker, sim, operator_key, admin_key, plan, readme_verify
):
    with Receiver(204) as receiver:
        endpoint = register(client, admin_key, receiver, ["bulk_job.finished"])
        try:
            body_rows = rows(plan.id, 3)
            body_rows[2]["onu_serial"] = "bad"
            job_id = client.post(
                BULK, json={"rows": body_rows}, headers=auth(operator_key)
            ).get_json()["id"]
            wait_job(job_id)
            wait_until(lambda: receiver.requests, 30, "the bulk job's event")
        finally:
            client.delete(endpoint.location, headers=auth(admin_key))

    (request,) = receiver.requests
    assert readme_verify(endpoint.secret, request.body, request.headers["X-Signature"])
    event = request.json
    assert event["type"] == "bulk_job.finished"
    assert event["bulk_job"] == {
        "id": job_id,
        "status": "completed",
        "total": 3,
        "counts": {"completed": 2, "invalid": 1},
    }
    for row in body_rows:
        assert row["password"] not in request.body.decode()
