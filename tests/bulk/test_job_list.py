"""GET /bulk-jobs: a tenant's jobs, newest first, with their counts; bad paging is a 422."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.api.helpers import make_key
from tests.bulk.conftest import BULK, auth, rows

JOBS = "/api/v1/orchestration/bulk-jobs"


def _scheduled_job(client, key: str, plan_id: int, count: int) -> str:  # type: ignore[no-untyped-def]
    """A job due in an hour: it stays scheduled, with every row waiting."""
    not_before = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    response = client.post(
        BULK, json={"rows": rows(plan_id, count), "not_before": not_before}, headers=auth(key)
    )
    assert response.status_code == 202, response.get_json()
    return response.get_json()["id"]


def test_the_list_is_newest_first_with_counts_and_only_the_tenants_own(
    client, sim, plan, operator_key
):
    older = _scheduled_job(client, operator_key, plan.id, 2)
    newer = _scheduled_job(client, operator_key, plan.id, 3)

    page = client.get(f"{JOBS}?limit=2", headers=auth(operator_key)).get_json()

    assert [item["job"]["id"] for item in page["items"]] == [newer, older]
    assert page["items"][0]["job"]["status"] == "scheduled"
    assert page["items"][0]["counts"]["waiting"] == 3
    assert page["items"][0]["finished_rows"] == 0
    assert (page["limit"], page["offset"]) == (2, 0)
    assert page["total"] >= 2
    second = client.get(f"{JOBS}?limit=1&offset=1", headers=auth(operator_key)).get_json()
    assert [item["job"]["id"] for item in second["items"]] == [older]

    other_tenant = make_key("globex", "viewer")
    theirs = client.get(JOBS, headers=auth(other_tenant)).get_json()
    assert {older, newer}.isdisjoint(item["job"]["id"] for item in theirs["items"])
    for job_id in (older, newer):
        client.post(f"{JOBS}/{job_id}/cancel", headers=auth(operator_key))


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "offset=-1", "limit=ten", "page=2"])
def test_bad_paging_is_a_422_naming_the_parameter(client, tenant, query):
    response = client.get(f"{JOBS}?{query}", headers=auth(make_key(tenant, "viewer")))
    assert response.status_code == 422
    assert list(response.get_json()["error"]["details"]) == [query.split("=")[0]]
