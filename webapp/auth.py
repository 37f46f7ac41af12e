"""Bearer API-key authentication and role checks for views."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import g, request

from orchestrator.apikeys import Principal, authenticate, has_role
from orchestrator.db import transaction
from orchestrator.models import Role
from webapp.errors import ApiError

F = TypeVar("F", bound=Callable[..., Any])


def _principal_from_request() -> Principal:
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise ApiError(401, "unauthenticated", "send an API key as 'Authorization: Bearer <key>'")
    with transaction() as session:
        principal = authenticate(session, key.strip())
    if principal is None:
        raise ApiError(401, "unauthenticated", "the API key is not valid")
    return principal


def require_role(role: str) -> Callable[[F], F]:
    needed = Role(role)

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            principal = _principal_from_request()
            if not has_role(principal, needed):
                raise ApiError(403, "forbidden", f"this needs the {needed.value} role")
            g.principal = principal
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorator


def current_principal() -> Principal:
    return g.principal
