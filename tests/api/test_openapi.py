"""The OpenAPI document is the contract: schemathesis generates requests from it (valid and
invalid ones) and checks every answer against it. No 5xx, no undocumented status or shape."""

from __future__ import annotations

import secrets

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from orchestrator.apikeys import KEY_PREFIX, ensure_tenant, hash_key
from orchestrator.db import transaction
from orchestrator.models import ApiKey, Role, ServicePlan
from tests.api.conftest import RecordingDispatcher
from webapp.schemas.base import MAX_INT32

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


@pytest.fixture(scope="module")
def fuzz_key(database) -> str:  # type: ignore[no-untyped-def]
    """An admin (who may call everything) of a tenant of its own."""
    with transaction() as session:
        ensure_tenant(session, "fuzz")
        session.add(
            ApiKey(
                tenant_id="fuzz",
                name="schemathesis",
                role=Role.ADMIN,
                key_hash=hash_key(FUZZ_KEY),
                prefix=FUZZ_KEY[:10],
            )
        )
    return FUZZ_KEY


@pytest.fixture(scope="module")
def fuzz_plan_id(fuzz_key) -> int:  # type: ignore[no-untyped-def]
    with transaction() as session:
        plan = ServicePlan(
            tenant_id="fuzz",
            name="fuzz-plan",
            download_mbps=10,
            upload_mbps=10,
            radius_group="fuzz-plan",
            ipv4_prefix="100.70.0.0/24",
        )
        session.add(plan)
        session.flush()
        return plan.id


def _schema() -> schemathesis.BaseSchema:
    # Loaded at import (schemathesis.pytest.from_fixture does not work with pytest 9): building
    # the app connects to nothing, and the document is served without a database.
    from webapp import create_app

    app = create_app({"TESTING": True, "DISPATCHER": RecordingDispatcher()})
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)


schema = _schema()
#: The key every generated request carries. Cases are generated (and authenticated) as early as
#: collection, before the database exists, so the key is chosen here and stored by fuzz_key.
FUZZ_KEY = KEY_PREFIX + secrets.token_urlsafe(32)


@schema.auth(refresh_interval=None)
class _FuzzKey:
    """Authenticates generated requests, except those meant to test a missing Authorization
    (schemathesis skips providers for those, and expects the 401)."""

    def get(self, case, context) -> str:  # type: ignore[no-untyped-def]
        return FUZZ_KEY

    def set(self, case, data: str, context) -> None:  # type: ignore[no-untyped-def]
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@schema.parametrize()
@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_answer_keeps_the_documented_contract(case, fuzz_key, fuzz_plan_id):
    body = case.body
    if (
        case.operation.path.endswith("/provision-subscriber")
        and isinstance(body, dict)
        and isinstance(body.get("service_plan_id"), int)
        and 1 <= body["service_plan_id"] <= MAX_INT32
    ):
        # Any valid id is as good as another; this one exists, so valid requests get to the end.
        body["service_plan_id"] = fuzz_plan_id
    case.call_and_validate(checks=CHECKS)
