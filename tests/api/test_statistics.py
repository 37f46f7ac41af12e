"""Statistics of a tenant's workflows over a window, against numbers worked out by hand."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote

import pytest

from orchestrator import engine
from orchestrator.models import WorkflowStatus
from tests.api.helpers import auth, make_key, seed_workflow

STATS = "/api/v1/orchestration/statistics"
S = WorkflowStatus


@pytest.fixture(scope="module")
def stats_key(tenant, plan) -> str:  # type: ignore[no-untyped-def]
    """Tenant "stats", seeded with workflows whose figures are known."""
    now = engine.utcnow()
    recent = now - timedelta(hours=1)
    old = now - timedelta(days=3)
    for seconds in (1, 2, 3, 4, 10):
        seed_workflow("stats", S.COMPLETED, created_at=recent, duration=timedelta(seconds=seconds))
    seed_workflow(
        "stats",
        S.ROLLED_BACK,
        created_at=recent,
        events=[("create_radius_account", "step_failed"), ("allocate_ip", "step_retry_scheduled")],
    )
    seed_workflow(
        "stats",
        S.ROLLED_BACK,
        created_at=recent,
        workflow_type="suspend_service",
        events=[("create_radius_account", "step_failed")],
    )
    seed_workflow(
        "stats",
        S.FAILED,
        created_at=recent,
        events=[
            ("allocate_ip", "step_retry_scheduled"),
            ("allocate_ip", "step_retry_scheduled"),
            ("activate_onu", "compensation_failed"),
            ("activate_onu", "compensation_completed"),  # not a failure
        ],
    )
    seed_workflow("stats", S.COMPENSATED, created_at=recent)
    seed_workflow("stats", S.RUNNING, created_at=recent)
    seed_workflow("stats", S.PENDING, created_at=recent)
    # Three days ago: outside the default window (but the running one is still active)
    seed_workflow("stats", S.COMPLETED, created_at=old, duration=timedelta(seconds=100))
    seed_workflow("stats", S.RUNNING, created_at=old)
    return make_key("stats", "viewer")


def test_statistics_of_the_last_day(api, stats_key):
    response = api.get(STATS, headers=auth(stats_key))

    assert response.status_code == 200
    stats = response.get_json()
    assert stats["total"] == 11
    assert stats["by_status"] == {
        "pending": 1,
        "running": 1,
        "completed": 5,
        "rolling_back": 0,
        "rolled_back": 2,
        "compensated": 1,
        "failed": 1,
    }
    assert stats["by_type"] == {"provision_subscriber": 10, "suspend_service": 1}
    # 5 completed of 8 decided (the cancelled one does not count either way)
    assert stats["success_rate"] == 0.625
    # [1, 2, 3, 4, 10]: mean 4; p95 interpolates 80% of the way from 4 to 10
    assert stats["duration_seconds"] == {"count": 5, "mean": 4.0, "p95": 8.8}
    assert stats["step_failures"] == {
        "activate_onu": {"failed": 0, "retried": 0, "compensation_failed": 1},
        "allocate_ip": {"failed": 0, "retried": 3, "compensation_failed": 0},
        "create_radius_account": {"failed": 2, "retried": 0, "compensation_failed": 0},
    }
    assert stats["active"] == 3
    window = stats["window"]
    assert window["created_after"] < window["created_before"]


def test_a_wider_window_and_a_type(api, stats_key):
    since = quote((engine.utcnow() - timedelta(days=4)).isoformat())
    wide = api.get(f"{STATS}?created_after={since}", headers=auth(stats_key)).get_json()
    assert wide["total"] == 13
    assert wide["duration_seconds"]["count"] == 6
    assert wide["success_rate"] == round(6 / 9, 4)

    only = api.get(f"{STATS}?workflow_type=suspend_service", headers=auth(stats_key)).get_json()
    assert (only["total"], only["by_type"], only["success_rate"]) == (
        1,
        {"suspend_service": 1},
        0.0,
    )
    assert only["active"] == 0


def test_an_empty_window(api, stats_key):
    stats = api.get(
        f"{STATS}?created_after=2001-01-01T00:00:00Z&created_before=2001-01-02T00:00:00Z",
        headers=auth(stats_key),
    ).get_json()
    assert stats["total"] == 0
    assert stats["success_rate"] is None
    assert stats["duration_seconds"] == {"count": 0, "mean": None, "p95": None}
    assert stats["step_failures"] == {}
    assert stats["active"] == 3  # now, whatever the window


def test_exotic_utc_offsets_are_converted_not_refused(api, stats_key):
    # Python parses offsets up to ±23:59; PostgreSQL refuses beyond ±15:59 (found by schemathesis)
    query = "created_after=2026-01-01T00:00:00-23:59&created_before=2950-02-06T03:51:31.2%2B22:11"
    response = api.get(f"{STATS}?{query}", headers=auth(stats_key))
    assert response.status_code == 200
    assert response.get_json()["window"]["created_after"] == "2026-01-01T23:59:00+00:00"


def test_another_tenant_sees_none_of_it(api, stats_key, globex_key):
    stats = api.get(STATS, headers=auth(globex_key)).get_json()
    assert stats["by_type"].get("suspend_service") is None
    assert stats["step_failures"].get("activate_onu") is None


@pytest.mark.parametrize(
    "query",
    [
        "created_after=2026-01-02T00:00:00Z&created_before=2026-01-01T00:00:00Z",
        "created_after=last-week",
        "created_before=99999-01-01",
        "window=7d",
    ],
)
def test_bad_windows_are_422(api, viewer_key, query):
    response = api.get(f"{STATS}?{query}", headers=auth(viewer_key))
    assert response.status_code == 422
    assert response.get_json()["error"]["details"]
