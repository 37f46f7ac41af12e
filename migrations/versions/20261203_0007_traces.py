"""traces: the trace context a workflow's steps join (orchestrator/tracing)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 09:12:40.118230
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable, no default: PostgreSQL adds it without rewriting the table; workflows started
    # before tracing (or while it is off) have none.
    op.add_column("workflows", sa.Column("traceparent", sa.String(length=55), nullable=True))


def downgrade() -> None:
    op.drop_column("workflows", "traceparent")
