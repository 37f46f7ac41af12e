"""dual-stack plans: the IPv6 delegation pool, the delegated length and the WAN pool

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 18:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    ("ipv6_delegation_pool", sa.String(length=64)),
    ("ipv6_delegated_length", sa.Integer()),
    ("ipv6_wan_pool", sa.String(length=64)),
)


def upgrade() -> None:
    # Nullable, no backfill: every existing plan stays IPv4-only.
    for name, kind in COLUMNS:
        op.add_column("service_plans", sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    for name, _ in reversed(COLUMNS):
        op.drop_column("service_plans", name)
