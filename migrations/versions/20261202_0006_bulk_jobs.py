"""bulk jobs: many provisionings as one job, started a window at a time; live CPE index

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 21:43:11.771493
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "bulk_jobs",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("workflow_type", sa.String(length=64), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "scheduled",
                "running",
                "completed",
                "cancelled",
                name="bulkjobstatus",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("total_rows", sa.Integer(), nullable=False),
        sa.Column("max_in_flight", sa.Integer(), nullable=False),
        sa.Column("invalid_rows", sa.Integer(), nullable=False),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=True),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("request_hash", sa.String(length=64), nullable=True),
        sa.Column("api_key_id", sa.UUID(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancel_requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_bulk_jobs_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bulk_jobs")),
        sa.UniqueConstraint("tenant_id", "idempotency_key", name="uq_bulk_jobs_tenant_idempotency"),
    )
    op.create_index(
        "ix_bulk_jobs_status_not_before", "bulk_jobs", ["status", "not_before"], unique=False
    )
    op.create_index(
        "ix_bulk_jobs_tenant_created", "bulk_jobs", ["tenant_id", "created_at"], unique=False
    )
    op.create_index(op.f("ix_bulk_jobs_tenant_id"), "bulk_jobs", ["tenant_id"], unique=False)
    op.create_table(
        "bulk_job_rows",
        sa.Column("job_id", sa.UUID(), nullable=False),
        sa.Column("row_number", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "waiting",
                "invalid",
                "refused",
                "started",
                "skipped",
                name="bulkrowstatus",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("request", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("secrets", sa.LargeBinary(), nullable=True),
        sa.Column("workflow_id", sa.UUID(), nullable=True),
        sa.Column("error", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["bulk_jobs.id"],
            name=op.f("fk_bulk_job_rows_job_id_bulk_jobs"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workflow_id"],
            ["workflows.id"],
            name=op.f("fk_bulk_job_rows_workflow_id_workflows"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("job_id", "row_number", name=op.f("pk_bulk_job_rows")),
    )
    op.create_index(
        "ix_bulk_job_rows_job_status_row",
        "bulk_job_rows",
        ["job_id", "status", "row_number"],
        unique=False,
    )
    op.create_index(
        op.f("ix_bulk_job_rows_workflow_id"), "bulk_job_rows", ["workflow_id"], unique=False
    )
    op.add_column("workflows", sa.Column("bulk_job_id", sa.UUID(), nullable=True))
    op.create_index(
        "ix_workflows_bulk_job_status", "workflows", ["bulk_job_id", "status"], unique=False
    )
    op.create_foreign_key(
        op.f("fk_workflows_bulk_job_id_bulk_jobs"),
        "workflows",
        "bulk_jobs",
        ["bulk_job_id"],
        ["id"],
        ondelete="SET NULL",
    )

    # Every provisioning with a CPE asks whether a live subscriber holds it.
    op.create_index(
        "ix_subscribers_cpe_serial_live",
        "subscribers",
        ["cpe_serial"],
        unique=False,
        postgresql_where=sa.text("status <> 'terminated'"),
    )

def downgrade() -> None:
    op.drop_index(
        "ix_subscribers_cpe_serial_live",
        table_name="subscribers",
        postgresql_where=sa.text("status <> 'terminated'"),
    )
    op.drop_constraint(op.f("fk_workflows_bulk_job_id_bulk_jobs"), "workflows", type_="foreignkey")
    op.drop_index("ix_workflows_bulk_job_status", table_name="workflows")
    op.drop_column("workflows", "bulk_job_id")
    op.drop_index(op.f("ix_bulk_job_rows_workflow_id"), table_name="bulk_job_rows")
    op.drop_index("ix_bulk_job_rows_job_status_row", table_name="bulk_job_rows")
    op.drop_table("bulk_job_rows")
    op.drop_index(op.f("ix_bulk_jobs_tenant_id"), table_name="bulk_jobs")
    op.drop_index("ix_bulk_jobs_tenant_created", table_name="bulk_jobs")
    op.drop_index("ix_bulk_jobs_status_not_before", table_name="bulk_jobs")
    op.drop_table("bulk_jobs")
