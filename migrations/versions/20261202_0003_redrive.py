"""re-drive generations and retry due times: the sweeper tells a waiting workflow from a lost one

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 17:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "workflows", sa.Column("generation", sa.Integer(), server_default="1", nullable=False)
    )
    op.add_column(
        "workflow_steps",
        sa.Column("retry_due_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("workflow_steps", "retry_due_at")
    op.drop_column("workflows", "generation")
