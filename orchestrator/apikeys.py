"""API keys: created once (shown once), stored as a SHA-256, bound to a tenant and a role."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.db import transaction
from orchestrator.engine import utcnow
from orchestrator.errors import NotFound, ValidationError
from orchestrator.models import ApiKey, Role, Tenant

KEY_PREFIX = "osk_"


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's id, its tenant and its role."""

    api_key_id: uuid.UUID
    tenant_id: str
    role: Role


ROLE_RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}


def has_role(principal: Principal, needed: Role) -> bool:
    return ROLE_RANK[principal.role] >= ROLE_RANK[needed]


def hash_key(key: str) -> str:
    # Keys are 256-bit random, so a plain SHA-256 is enough (no password stretching needed).
    return hashlib.sha256(key.encode()).hexdigest()


def ensure_tenant(session: Session, tenant_id: str, name: str | None = None) -> Tenant:
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        tenant = Tenant(id=tenant_id, name=name or tenant_id)
        session.add(tenant)
        session.flush()
    return tenant


def create_key(session: Session, tenant_id: str, role: str, name: str = "") -> tuple[ApiKey, str]:
    """Create a key; returns the row and the key itself (the only time it is visible)."""
    try:
        parsed_role = Role(role)
    except ValueError:
        raise ValidationError(
            "unknown role", {"role": [f"one of {', '.join(r.value for r in Role)}"]}
        ) from None
    ensure_tenant(session, tenant_id)
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(
        tenant_id=tenant_id,
        name=name or f"{parsed_role.value} key",
        role=parsed_role,
        key_hash=hash_key(key),
        prefix=key[: len(KEY_PREFIX) + 6],
    )
    session.add(row)
    session.flush()
    return row, key


def list_keys(session: Session, tenant_id: str) -> list[ApiKey]:
    return list(
        session.scalars(
            select(ApiKey)
            .where(ApiKey.tenant_id == tenant_id)
            .order_by(ApiKey.created_at, ApiKey.id)
        )
    )


def get_key(
    session: Session, key_id: uuid.UUID, tenant_id: str | None = None, *, lock: bool = False
) -> ApiKey:
    """A key's row. With ``tenant_id``, another tenant's key is "not found" like a missing one."""
    row = session.get(ApiKey, key_id, with_for_update=lock)
    if row is None or (tenant_id is not None and row.tenant_id != tenant_id):
        raise NotFound(f"API key {key_id} not found")
    return row


def revoke_key(session: Session, key_id: uuid.UUID, tenant_id: str | None = None) -> ApiKey:
    """Revoke a key (idempotent)."""
    row = get_key(session, key_id, tenant_id, lock=True)
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    return row


def authenticate(session: Session, key: str) -> Principal | None:
    row = session.scalar(
        select(ApiKey).where(ApiKey.key_hash == hash_key(key), ApiKey.revoked_at.is_(None))
    )
    if row is None:
        return None
    return Principal(api_key_id=row.id, tenant_id=row.tenant_id, role=row.role)


class ApiKeyService:
    """API keys as the API sees them: each method is one unit of work."""

    def __init__(
        self, unit_of_work: Callable[[], AbstractContextManager[Session]] = transaction
    ) -> None:
        self._unit_of_work = unit_of_work

    def list(self, tenant_id: str) -> list[ApiKey]:
        with self._unit_of_work() as session:
            return list_keys(session, tenant_id)

    def get(self, tenant_id: str, key_id: uuid.UUID) -> ApiKey:
        with self._unit_of_work() as session:
            return get_key(session, key_id, tenant_id)

    def create(self, tenant_id: str, role: str, name: str) -> tuple[ApiKey, str]:
        with self._unit_of_work() as session:
            return create_key(session, tenant_id, role, name)

    def revoke(self, tenant_id: str, key_id: uuid.UUID) -> None:
        with self._unit_of_work() as session:
            revoke_key(session, key_id, tenant_id)

    def authenticate(self, key: str) -> Principal | None:
        with self._unit_of_work() as session:
            return authenticate(session, key)
