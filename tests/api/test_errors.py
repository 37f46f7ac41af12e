"""One error shape for everything that can go wrong, and nothing left behind by bad input."""

from __future__ import annotations

import logging

import pytest

from orchestrator.service import OrchestrationService
from tests.api.helpers import PROVISION, WORKFLOWS, auth, make_key, request_body, row_counts


def error_of(response, status: int) -> dict:  # type: ignore[no-untyped-def,type-arg]
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert isinstance(body["error"]["details"], dict)
    return body["error"]


def test_malformed_json_is_400(api, operator_key):
    response = api.post(
        PROVISION,
        data='{"service_plan_id": 1,',
        content_type="application/json",
        headers=auth(operator_key),
    )
    assert error_of(response, 400)["code"] == "malformed_json"


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml", None]
)
def test_a_body_that_is_not_json_is_415(api, operator_key, plan, content_type):
    import json

    response = api.post(
        PROVISION,
        data=json.dumps(request_body(plan.id)),
        headers=auth(operator_key, **({"Content-Type": content_type} if content_type else {})),
    )
    assert error_of(response, 415)["code"] == "unsupported_media_type"


def test_unknown_fields_are_named(api, operator_key, plan):
    body = request_body(plan.id, vlan=7)
    body["customer"]["nickname"] = "Ada"
    error = error_of(api.post(PROVISION, json=body, headers=auth(operator_key)), 422)
    assert error["code"] == "validation_error"
    assert error["details"] == {
        "vlan": ["Unknown field."],
        "customer": {"nickname": ["Unknown field."]},
    }


def test_unknown_query_parameters_are_named(api, viewer_key):
    error = error_of(api.get(f"{WORKFLOWS}?stauts=failed", headers=auth(viewer_key)), 422)
    assert error["details"] == {"stauts": ["Unknown field."]}


def test_oversized_bodies_are_413(api, operator_key, plan):
    body = request_body(plan.id, service_address="x" * (65 * 1024))
    error = error_of(api.post(PROVISION, json=body, headers=auth(operator_key)), 413)
    assert error["code"] == "request_entity_too_large"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("onu_serial", "BBSM0000001"),  # one digit short
        ("onu_serial", "bbsm00000001"),  # vendor id in lower case
        ("cpe_serial", "-starts-with-dash"),
        ("cpe_mac", "00:11:22:33:44"),
        ("cpe_mac", "01:00:5e:00:00:01"),  # multicast
        ("cpe_mac", "00:11:22:33:44:gg"),
        ("static_ipv4", "10.0.0.256"),
        ("static_ipv4", "224.0.0.1"),
        ("static_ipv4", "::1"),
        ("c_tag", 0),
        ("c_tag", 4095),
        ("c_tag", "100"),
        ("service_plan_id", 2**31),
        ("service_plan_id", True),
        ("username", "a b"),
        ("password", "short"),
        ("service_address", "12 Row\x00"),
        ("service_address", "\ud800"),
    ],
)
def test_invalid_values_are_422_naming_the_field(api, operator_key, plan, field, value):
    body = request_body(plan.id, **{field: value})
    error = error_of(api.post(PROVISION, json=body, headers=auth(operator_key)), 422)
    assert list(error["details"]) == [field]


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("customer", "email"), "ada@"),
        (("customer", "email"), "ada@example..net"),
        (("customer", "phone"), "call me"),
        (("customer", "first_name"), ""),
        (("customer", "last_name"), "Love\x07lace"),
    ],
)
def test_invalid_nested_values_name_the_field(api, operator_key, plan, path, value):
    body = request_body(plan.id)
    body[path[0]][path[1]] = value
    error = error_of(api.post(PROVISION, json=body, headers=auth(operator_key)), 422)
    assert error["details"] == {path[0]: {path[1]: error["details"][path[0]][path[1]]}}


def test_a_mac_is_normalised(api, operator_key, plan):
    body = request_body(plan.id, cpe_mac="00-1A-2B-3C-4D-5E")
    response = api.post(PROVISION, json=body, headers=auth(operator_key))
    assert response.status_code == 202
    assert response.get_json()["input"]["cpe_mac"] == "00:1a:2b:3c:4d:5e"


def test_a_bad_idempotency_key_header_is_400(api, operator_key, plan):
    headers = auth(operator_key, **{"Idempotency-Key": "x" * 201})
    error = error_of(api.post(PROVISION, json=request_body(plan.id), headers=headers), 400)
    assert error["code"] == "invalid_header"
    assert list(error["details"]) == ["Idempotency-Key"]


def test_unknown_routes_and_methods(api, operator_key):
    assert error_of(api.get("/api/v1/nothing-here"), 404)["code"] == "not_found"
    assert error_of(api.get(f"{WORKFLOWS}/not-a-uuid", headers=auth(operator_key)), 404)
    response = api.delete(WORKFLOWS, headers=auth(operator_key))
    assert error_of(response, 405)["code"] == "method_not_allowed"
    assert "GET" in response.headers["Allow"]
    assert error_of(api.put(PROVISION, json={}), 405)


def test_unexpected_errors_are_500_with_a_request_id_that_is_in_the_log(
    api, viewer_key, monkeypatch, caplog
):
    def explode(*_args, **_kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("database on fire: secret detail")

    monkeypatch.setattr(OrchestrationService, "list_workflows", explode)
    with caplog.at_level(logging.ERROR, logger="webapp.errors"):
        response = api.get(WORKFLOWS, headers=auth(viewer_key))

    error = error_of(response, 500)
    request_id = error["details"]["request_id"]
    assert response.headers["X-Request-ID"] == request_id
    text = response.get_data(as_text=True)
    assert "Traceback" not in text and "secret detail" not in text and "RuntimeError" not in text
    logged = [r for r in caplog.records if request_id in r.getMessage()]
    assert logged and logged[0].exc_info is not None


def test_every_answer_carries_a_request_id(api, viewer_key):
    mine = "req-0123456789abcdef"
    assert api.get("/healthz", headers={"X-Request-ID": mine}).headers["X-Request-ID"] == mine
    assert api.get("/nowhere", headers={"X-Request-ID": mine}).headers["X-Request-ID"] == mine
    # An id that could forge log lines (or is absurdly long) is replaced by a fresh one.
    for insane in ("evil\tX-Admin: 1", "has spaces in it", "x" * 500, "short", "ünïcode-id"):
        answered = api.get(WORKFLOWS, headers=auth(viewer_key, **{"X-Request-ID": insane}))
        assert answered.headers["X-Request-ID"] != insane
        assert len(answered.headers["X-Request-ID"]) == 32


def test_bad_input_leaves_nothing_behind(api, tenant, plan, globex_plan):
    # Given a tenant of its own, so nothing else writes to it meanwhile
    key = make_key("hygiene", "operator")
    before = row_counts("hygiene")

    # When every kind of bad request is sent, including ones only the service can refuse
    bad = [
        request_body(plan.id, onu_serial="nope"),
        request_body(plan.id, customer={"first_name": "A", "last_name": "B", "email": "x"}),
        request_body(globex_plan.id),  # another tenant's plan: unknown here
        request_body(987654),  # no such plan
        {**request_body(plan.id), "customer_id": "4b1d0c2e-0000-4000-8000-000000000000"},
        request_body(plan.id, customer=None, customer_id="4b1d0c2e-0000-4000-8000-000000000000"),
    ]
    statuses = [api.post(PROVISION, json=body, headers=auth(key)).status_code for body in bad]
    statuses.append(
        api.post(
            PROVISION, data="{", content_type="application/json", headers=auth(key)
        ).status_code
    )

    # Then each was refused and no row of any kind was written
    assert all(400 <= status < 500 for status in statuses), statuses
    assert row_counts("hygiene") == before


@pytest.mark.parametrize("opener", ["[", '{"a":'])
def test_a_deeply_nested_body_is_400_like_any_malformed_body(api, operator_key, opener):
    # Given a body nested 5,000 levels deep: valid JSON, but deeper than the parser can recurse
    closer = "]" if opener == "[" else "}"
    body = opener * 5000 + "1" + closer * 5000
    response = api.post(
        PROVISION, data=body, content_type="application/json", headers=auth(operator_key)
    )
    # Then it is a 400 malformed body, not a 500
    assert error_of(response, 400)["code"] == "malformed_json"


def test_a_number_too_long_to_read_is_400_like_any_malformed_body(api, operator_key):
    # Given a JSON integer of 5,000 digits: Python refuses to read more than 4,300
    body = '{"service_plan_id": ' + "9" * 5000 + "}"
    response = api.post(
        PROVISION, data=body, content_type="application/json", headers=auth(operator_key)
    )
    # Then it is a 400 malformed body, not a 500
    assert error_of(response, 400)["code"] == "malformed_json"
