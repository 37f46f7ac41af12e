"""Admins register their tenant's webhook endpoints; the secret is shown once; bad input and
forbidden targets are a 422 naming the field; another tenant's endpoint is not found."""

from __future__ import annotations

import uuid

import pytest

from orchestrator.config import get_settings
from orchestrator.db import transaction
from orchestrator.models import WebhookEndpoint
from orchestrator.vault import unseal
from tests.api.helpers import auth

WEBHOOKS = "/api/v1/webhooks"
PUBLIC_URL = "https://93.184.215.14/hooks"  # a global address: no DNS needed to judge it


def register(api, key, **overrides):  # type: ignore[no-untyped-def]
    body = {"url": "http://127.0.0.1:9/hook", "events": ["workflow.completed"], **overrides}
    response = api.post(WEBHOOKS, json=body, headers=auth(key))
    assert response.status_code == 201, response.get_json()
    return response


def test_register_read_change_delete(api, admin_key):
    # Given an admin registers an endpoint
    created = register(api, admin_key, events=["workflow.failed", "workflow.completed"])

    # Then the answer holds the secret, this once, and nothing may keep it
    assert created.headers["Cache-Control"] == "no-store"
    body = created.get_json()
    secret = body.pop("secret")
    assert secret.startswith("whsec_") and len(secret) > 40
    assert body["events"] == ["workflow.failed", "workflow.completed"]
    assert (body["enabled"], body["disabled_reason"], body["disabled_at"]) == (True, None, None)

    # And it is stored sealed, readable only with the service's key
    with transaction() as session:
        row = session.get(WebhookEndpoint, uuid.UUID(body["id"]))
        assert secret.encode() not in row.secret
        assert unseal(row.secret)["secret"] == secret

    # When it is read, listed and changed, no answer shows the secret again
    one = api.get(created.headers["Location"], headers=auth(admin_key))
    assert one.get_json() == body
    listing = api.get(WEBHOOKS, headers=auth(admin_key))
    assert body in listing.get_json()["items"]
    changed = api.patch(
        created.headers["Location"],
        json={"url": PUBLIC_URL, "events": ["workflow.rolled_back"], "enabled": False},
        headers=auth(admin_key),
    )
    assert changed.status_code == 200
    assert changed.get_json()["url"] == PUBLIC_URL
    assert changed.get_json()["events"] == ["workflow.rolled_back"]
    assert changed.get_json()["enabled"] is False
    deliveries = api.get(f"{created.headers['Location']}/deliveries", headers=auth(admin_key))
    assert deliveries.get_json() == {
        "items": [],
        "total": 0,
        "limit": 50,
        "offset": 0,
        "next_offset": None,
    }
    for response in (one, listing, changed, deliveries):
        assert secret not in response.get_data(as_text=True)

    # When it is deleted, it is gone
    assert api.delete(created.headers["Location"], headers=auth(admin_key)).status_code == 204
    assert api.get(created.headers["Location"], headers=auth(admin_key)).status_code == 404


def test_only_admins_manage_webhooks(api, viewer_key, operator_key):
    for key in (viewer_key, operator_key):
        assert api.get(WEBHOOKS, headers=auth(key)).status_code == 403
        body = {"url": PUBLIC_URL, "events": ["workflow.failed"]}
        assert api.post(WEBHOOKS, json=body, headers=auth(key)).status_code == 403
    assert api.get(WEBHOOKS).status_code == 401


def test_another_tenants_endpoint_is_not_found(api, admin_key, globex_admin_key):
    # Given an endpoint of globex
    theirs = register(api, globex_admin_key).get_json()
    url = f"{WEBHOOKS}/{theirs['id']}"

    # Then acme's admin can neither see, change, delete nor read its log: 404 like a missing one
    for method, kwargs in (
        ("get", {}),
        ("patch", {"json": {"enabled": False}}),
        ("delete", {}),
    ):
        response = getattr(api, method)(url, headers=auth(admin_key), **kwargs)
        assert response.status_code == 404
    assert api.get(f"{url}/deliveries", headers=auth(admin_key)).status_code == 404
    missing = api.get(f"{WEBHOOKS}/{uuid.uuid4()}", headers=auth(admin_key)).get_json()
    assert (
        api.get(url, headers=auth(admin_key)).get_json()["error"]["code"]
        == missing["error"]["code"]
    )
    assert theirs["id"] not in api.get(WEBHOOKS, headers=auth(admin_key)).get_data(as_text=True)
    # And it is untouched
    assert api.get(url, headers=auth(globex_admin_key)).get_json()["enabled"] is True


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"events": ["workflow.failed"]}, "url"),
        ({"url": PUBLIC_URL}, "events"),
        ({"url": PUBLIC_URL, "events": []}, "events"),
        ({"url": PUBLIC_URL, "events": ["workflow.exploded"]}, "events"),
        ({"url": PUBLIC_URL, "events": "workflow.failed"}, "events"),
        ({"url": "ftp://93.184.215.14/x", "events": ["workflow.failed"]}, "url"),
        ({"url": "file:///etc/passwd", "events": ["workflow.failed"]}, "url"),
        ({"url": "93.184.215.14/hooks", "events": ["workflow.failed"]}, "url"),
        ({"url": "https://user:pw@93.184.215.14/", "events": ["workflow.failed"]}, "url"),
        ({"url": "http://93.184.215.14:99999/", "events": ["workflow.failed"]}, "url"),
        ({"url": "", "events": ["workflow.failed"]}, "url"),
        ({"url": PUBLIC_URL, "events": ["workflow.failed"], "enabled": "yes please"}, "enabled"),
        ({"url": PUBLIC_URL, "events": ["workflow.failed"], "enabled": 0}, "enabled"),
        ({"url": PUBLIC_URL, "events": ["workflow.failed"], "secret": "mine"}, "secret"),
    ],
)
def test_bad_input_is_422_naming_the_field(api, admin_key, body, field):
    response = api.post(WEBHOOKS, json=body, headers=auth(admin_key))
    assert response.status_code == 422, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == "validation_error"
    assert field in error["details"], error


def test_bad_changes_are_422_naming_the_field(api, admin_key):
    location = register(api, admin_key).headers["Location"]
    for body, field in (
        ({"url": "gopher://93.184.215.14/"}, "url"),
        ({"events": []}, "events"),
        ({"enabled": None}, "enabled"),
        ({"name": "x"}, "name"),
    ):
        response = api.patch(location, json=body, headers=auth(admin_key))
        assert response.status_code == 422, body
        assert field in response.get_json()["error"]["details"], body
    api.delete(location, headers=auth(admin_key))


@pytest.fixture(scope="module")
def strict_api(database, dispatcher):  # type: ignore[no-untyped-def]
    """The API as deployed by default: private targets refused."""
    from webapp import create_app

    assert get_settings().webhook_allow_private_targets  # the tests' own setting...
    app = create_app(
        {"TESTING": True, "DISPATCHER": dispatcher, "WEBHOOK_ALLOW_PRIVATE_TARGETS": False}
    )
    return app.test_client()  # ...overridden here


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://192.168.1.1/hook",
        "http://172.16.0.1/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://100.64.0.1/hook",
        "http://0.0.0.0/hook",
        "http://[::1]/hook",
        "http://[fe80::1]/hook",
        "http://[fd00::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://224.0.0.1/hook",
    ],
)
def test_private_targets_are_refused_unless_allowed(strict_api, api, admin_key, url):
    # Given the default configuration, a private, loopback or link-local target is refused
    response = strict_api.post(
        WEBHOOKS, json={"url": url, "events": ["workflow.failed"]}, headers=auth(admin_key)
    )
    assert response.status_code == 422
    assert "url" in response.get_json()["error"]["details"]

    # And a change to one is refused too
    location = register(strict_api, admin_key, url=PUBLIC_URL).headers["Location"]
    response = strict_api.patch(location, json={"url": url}, headers=auth(admin_key))
    assert response.status_code == 422
    assert "url" in response.get_json()["error"]["details"]
    strict_api.delete(location, headers=auth(admin_key))

    # But a deployment that allows private targets (the tests' one) takes it
    allowed = register(api, admin_key, url=url)
    api.delete(allowed.headers["Location"], headers=auth(admin_key))
