"""Bearer API-key authentication and role checks for views."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import current_app, g, request

from orchestrator.apikeys import Principal, has_role
from orchestrator.models import Role
from webapp.errors import ApiError

F = TypeVar("F", bound=Callable[..., Any])

#: Longer "keys" are not ours: refuse them before hashing attacker-sized input.
MAX_KEY_LENGTH = 200
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="orchestrator"'}


class Unauthenticated(ApiError):
    """Raised when a request carries no valid, unrevoked API key."""

    def __init__(self, message: str) -> None:
        super().__init__(401, "unauthenticated", message, headers=_CHALLENGE)


def _principal_from_request() -> Principal:
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise Unauthenticated("send an API key as 'Authorization: Bearer <key>'")
    if len(key) > MAX_KEY_LENGTH:
        raise Unauthenticated("the API key is not valid")
    principal = current_app.extensions["api_key_service"].authenticate(key)
    if principal is None:
        # Unknown and revoked keys get the same answer: nothing to learn from probing.
        raise Unauthenticated("the API key is not valid")
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
