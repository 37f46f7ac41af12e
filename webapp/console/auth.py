"""Who is signed in to the console, and the CSRF check of its forms.

The session cookie is signed, not encrypted: it holds the API key's *id* and tenant (never the
key), the time of sign-in and the form token. Every request looks the key up again through the
ApiKeyService, so a revoked key is signed out at its next click, and a changed role applies at
once. A stolen cookie gives no key, and stops working with the key or after SESSION_HOURS.
"""

from __future__ import annotations

import hmac
import secrets
import time
import uuid
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import abort, current_app, g, request, session

from orchestrator.apikeys import ApiKeyService, Principal, has_role
from orchestrator.errors import NotFound
from orchestrator.models import Role

F = TypeVar("F", bound=Callable[..., Any])

#: A sign-in lasts this long at most, even while the key stays valid.
SESSION_HOURS = 12
#: Longer "keys" are not ours: refuse them before hashing attacker-sized input (as the API).
MAX_KEY_LENGTH = 200
CSRF_FIELD = "csrf_token"


def _keys() -> ApiKeyService:
    return current_app.extensions["api_key_service"]


def sign_in(key: str) -> Principal | None:
    """Check ``key``; if it is valid, start a new session for it (nothing of the old kept)."""
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH:
        return None
    principal = _keys().authenticate(key)
    if principal is None:
        return None
    session.clear()
    session["key_id"] = str(principal.api_key_id)
    session["tenant"] = principal.tenant_id
    session["since"] = int(time.time())
    # A fresh form token per sign-in: one an attacker saw before sign-in is worth nothing.
    session[CSRF_FIELD] = secrets.token_urlsafe(32)
    return principal


def sign_out() -> None:
    session.clear()


def load_principal() -> Principal | None:
    """The signed-in key as it is *now* in the database; None (and signed out) if it is not."""
    key_id, tenant = session.get("key_id"), session.get("tenant")
    if not key_id or not tenant:
        return None
    if time.time() - session.get("since", 0) > SESSION_HOURS * 3600:
        sign_out()
        return None
    try:
        row = _keys().get(tenant, uuid.UUID(key_id))
    except (NotFound, ValueError):
        sign_out()
        return None
    if row.revoked_at is not None:
        sign_out()
        return None
    return Principal(api_key_id=row.id, tenant_id=row.tenant_id, role=row.role)


def principal() -> Principal:
    return g.principal


def can(role: str) -> bool:
    """Whether the signed-in key has ``role`` (templates show buttons by it)."""
    current = g.get("principal")
    return current is not None and has_role(current, Role(role))


def require_role(role: str) -> Callable[[F], F]:
    """A view for ``role`` and above; a lower role gets a 403 page (never the action)."""

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not can(role):
                abort(403)
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorator


def csrf_token() -> str:
    """The session's form token, made on first use (the sign-in form needs one too)."""
    token = session.get(CSRF_FIELD)
    if not token:
        token = session[CSRF_FIELD] = secrets.token_urlsafe(32)
    return token


def check_csrf() -> None:
    """Refuse a POST whose hidden form token is not this session's (400)."""
    expected = session.get(CSRF_FIELD)
    sent = request.form.get(CSRF_FIELD, "")
    if not expected or not hmac.compare_digest(expected.encode(), sent.encode()):
        abort(400, description="the form has expired or did not come from this console")
