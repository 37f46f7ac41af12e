"""Admins manage their tenant's keys; a key is shown once and works until it is revoked."""

from __future__ import annotations

import uuid

from tests.api.helpers import WORKFLOWS, auth

KEYS = "/api/v1/api-keys"


def test_create_use_list_revoke(api, admin_key):
    created = api.post(KEYS, json={"role": "viewer", "name": "grafana"}, headers=auth(admin_key))
    assert created.status_code == 201
    assert created.headers["Cache-Control"] == "no-store"
    body = created.get_json()
    key = body.pop("key")
    assert key.startswith(body["prefix"])
    assert (body["role"], body["name"], body["revoked_at"]) == ("viewer", "grafana", None)

    # The key works, with its role
    assert api.get(WORKFLOWS, headers=auth(key)).status_code == 200
    assert api.post(f"{WORKFLOWS}/{uuid.uuid4()}/cancel", headers=auth(key)).status_code == 403

    # Listed and readable without the key itself
    listing = api.get(KEYS, headers=auth(admin_key))
    assert body in listing.get_json()["items"]
    assert key not in listing.get_data(as_text=True)
    one = api.get(created.headers["Location"], headers=auth(admin_key))
    assert one.get_json() == body

    # Revoked: refused at once; revoking again is fine
    assert api.delete(f"{KEYS}/{body['id']}", headers=auth(admin_key)).status_code == 204
    assert api.get(WORKFLOWS, headers=auth(key)).status_code == 401
    assert api.delete(f"{KEYS}/{body['id']}", headers=auth(admin_key)).status_code == 204
    assert api.get(f"{KEYS}/{body['id']}", headers=auth(admin_key)).get_json()["revoked_at"]


def test_a_created_key_belongs_to_the_admins_tenant(api, globex_admin_key, plan):
    key = api.post(KEYS, json={"role": "operator"}, headers=auth(globex_admin_key)).get_json()
    assert key["name"] == "operator key"
    # It cannot see acme's plan
    response = api.get(f"/api/v1/service-plans/{plan.id}", headers=auth(key["key"]))
    assert response.status_code == 404


def test_another_tenants_key_is_not_found_and_stays_valid(api, admin_key, globex_admin_key):
    theirs = api.post(KEYS, json={"role": "viewer"}, headers=auth(globex_admin_key)).get_json()

    for method in ("get", "delete"):
        response = getattr(api, method)(f"{KEYS}/{theirs['id']}", headers=auth(admin_key))
        assert response.status_code == 404
    assert theirs["id"] not in str(api.get(KEYS, headers=auth(admin_key)).get_json())
    assert api.get(WORKFLOWS, headers=auth(theirs["key"])).status_code == 200


def test_bad_key_requests_are_422(api, admin_key):
    for body in (
        {"role": "root"},
        {},
        {"role": "viewer", "scope": "all"},
        {"role": "viewer", "name": ""},
    ):
        response = api.post(KEYS, json=body, headers=auth(admin_key))
        assert response.status_code == 422
    assert api.get(f"{KEYS}/not-a-uuid", headers=auth(admin_key)).status_code == 404
