"""subscriber lifecycle: statuses as enums, live-only uniqueness, customer address,
suspended profile, the subscriber each workflow acts on

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 16:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SUBSCRIBER_STATUSES = ("pending", "active", "suspended", "terminated")
BILLING_STATUSES = ("active", "ended")


BACKFILL_RESOURCES = """
UPDATE subscribers s SET resources = jsonb_strip_nulls(jsonb_build_object(
  'radius', jsonb_build_object('username', s.username, 'group', p.radius_group),
  'ipv4', jsonb_build_object('address', s.ipv4_address),
  'netbox', (SELECT jsonb_build_object('key', s.workflow_id::text || ':' || 'allocate_ip',
                                       'ip_id', st.output->'ip_id',
                                       'address', st.output->'address')
             FROM workflow_steps st WHERE st.workflow_id = s.workflow_id
               AND st.name = 'allocate_ip' AND st.status = 'completed'),
  'onos', (SELECT st.compensation FROM workflow_steps st WHERE st.workflow_id = s.workflow_id
             AND st.name = 'activate_onu' AND st.status = 'completed'),
  'onu', CASE WHEN s.onu_serial IS NOT NULL THEN jsonb_build_object(
           'serial', s.onu_serial,
           'device_id', (SELECT st.output->'onu_device_id' FROM workflow_steps st
                         WHERE st.workflow_id = s.workflow_id AND st.name = 'activate_onu'),
           'disabled', false) END,
  'cpe', (SELECT jsonb_build_object('serial', s.cpe_serial,
                                    'device_id', st.output->'device_id',
                                    'tag', 'subscriber-' || s.id::text,
                                    'unique_key', s.workflow_id::text || ':' || 'configure_cpe')
          FROM workflow_steps st WHERE st.workflow_id = s.workflow_id
            AND st.name = 'configure_cpe' AND st.status = 'completed')
))
FROM service_plans p
WHERE p.id = s.service_plan_id AND s.status IN ('active', 'suspended')
"""


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    op.add_column("customers", sa.Column("address", sa.Text(), nullable=True))
    op.add_column(
        "service_plans", sa.Column("suspended_radius_group", sa.String(length=64), nullable=True)
    )

    op.add_column("workflows", sa.Column("subscriber_id", sa.UUID(), nullable=True))
    op.create_index(op.f("ix_workflows_subscriber_id"), "workflows", ["subscriber_id"])
    # Workflows written before this revision: the provisioning named its subscriber in output.
    op.execute(
        "UPDATE workflows SET subscriber_id = (output->>'subscriber_id')::uuid "
        "WHERE output ? 'subscriber_id'"
    )

    op.alter_column("subscribers", "status", type_=sa.String(length=32))
    op.create_check_constraint(
        op.f("ck_subscribers_subscriberstatus"), "subscribers", _in("status", SUBSCRIBER_STATUSES)
    )
    op.add_column(
        "subscribers", sa.Column("terminated_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column(
        "subscribers",
        sa.Column(
            "resources",
            postgresql.JSONB(astext_type=sa.Text()),
            nullable=False,
            server_default=sa.text("'{}'::jsonb"),
        ),
    )
    op.alter_column("subscribers", "resources", server_default=None)
    # Subscribers provisioned before: where they live, from their provisioning's step records,
    # so lifecycle workflows (a deprovisioning above all) find what to act on.
    op.execute(BACKFILL_RESOURCES)
    op.drop_constraint("uq_subscribers_username", "subscribers", type_="unique")
    op.drop_constraint("uq_subscribers_onu_serial", "subscribers", type_="unique")
    op.create_index(
        "uq_subscribers_username_live",
        "subscribers",
        ["username"],
        unique=True,
        postgresql_where=sa.text("status <> 'terminated'"),
    )
    op.create_index(
        "uq_subscribers_onu_serial_live",
        "subscribers",
        ["onu_serial"],
        unique=True,
        postgresql_where=sa.text("status <> 'terminated'"),
    )
    op.create_index("ix_subscribers_tenant_created", "subscribers", ["tenant_id", "created_at"])

    op.create_check_constraint(
        op.f("ck_billing_services_billingstatus"),
        "billing_services",
        _in("status", BILLING_STATUSES),
    )
    op.add_column(
        "billing_services", sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("billing_services", "ended_at")
    op.drop_constraint(op.f("ck_billing_services_billingstatus"), "billing_services", type_="check")
    op.drop_index("ix_subscribers_tenant_created", table_name="subscribers")
    op.drop_index("uq_subscribers_onu_serial_live", table_name="subscribers")
    op.drop_index("uq_subscribers_username_live", table_name="subscribers")
    op.create_unique_constraint("uq_subscribers_onu_serial", "subscribers", ["onu_serial"])
    op.create_unique_constraint("uq_subscribers_username", "subscribers", ["username"])
    op.drop_column("subscribers", "resources")
    op.drop_column("subscribers", "terminated_at")
    op.drop_constraint(op.f("ck_subscribers_subscriberstatus"), "subscribers", type_="check")
    op.drop_index(op.f("ix_workflows_subscriber_id"), table_name="workflows")
    op.drop_column("workflows", "subscriber_id")
    op.drop_column("service_plans", "suspended_radius_group")
    op.drop_column("customers", "address")
