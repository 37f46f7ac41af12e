"""The Alembic migrations and the models describe the same schema, both ways."""

from __future__ import annotations

import os
import subprocess
import uuid

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from orchestrator.migrate import alembic_config
from orchestrator.models import Base

# Per TEST_NAMESPACE, so concurrent test sessions do not drop each other's scratch database.
SCRATCH = "orchestrator_migrations_check" + (
    f"_{os.environ['TEST_NAMESPACE']}" if os.environ.get("TEST_NAMESPACE") else ""
)
URL = f"postgresql+psycopg2://postgres@127.0.0.1:5432/{SCRATCH}"


def _psql(sql: str) -> None:
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", sql], check=True)


def test_migrations_match_the_models_and_downgrade_cleanly():
    _psql(f'DROP DATABASE IF EXISTS "{SCRATCH}" WITH (FORCE)')
    _psql(f'CREATE DATABASE "{SCRATCH}"')
    engine = create_engine(URL)
    try:
        config = alembic_config(URL)
        command.upgrade(config, "head")
        with engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        assert diff == [], f"models and migrations differ: {diff}"

        command.downgrade(config, "base")
        command.upgrade(config, "head")
    finally:
        engine.dispose()
        _psql(f'DROP DATABASE IF EXISTS "{SCRATCH}" WITH (FORCE)')


def test_subscribers_provisioned_before_the_lifecycle_learn_where_they_live():
    # Given a database at the first revision, holding a provisioned subscriber
    _psql(f'DROP DATABASE IF EXISTS "{SCRATCH}" WITH (FORCE)')
    _psql(f'CREATE DATABASE "{SCRATCH}"')
    engine = create_engine(URL)
    workflow_id, subscriber_id = uuid.uuid4(), uuid.uuid4()
    try:
        config = alembic_config(URL)
        command.upgrade(config, "0001")
        with engine.begin() as db:
            for sql in SEED_0001:
                db.execute(text(sql), {"w": workflow_id, "s": subscriber_id})

        # When the schema is upgraded
        command.upgrade(config, "head")

        # Then the subscriber's resources come from its provisioning's steps
        with engine.connect() as db:
            resources = db.execute(
                text("SELECT resources FROM subscribers WHERE id = :s"), {"s": subscriber_id}
            ).scalar_one()
            found = db.execute(
                text("SELECT subscriber_id FROM workflows WHERE id = :w"), {"w": workflow_id}
            ).scalar_one()
        assert resources == {
            "radius": {"username": "old.timer", "group": "g-old"},
            "ipv4": {"address": "100.64.0.9"},
            "netbox": {"key": f"{workflow_id}:allocate_ip", "ip_id": 9, "address": "100.64.0.9/24"},
            "onos": {"port_name": "OLDX00000001-1", "s_tag": 100, "c_tag": 200, "tp_id": 64},
            "onu": {"serial": "OLDX00000001", "device_id": "onu-1", "disabled": False},
            "cpe": {
                "serial": "OLDCPE1",
                "device_id": "dev-1",
                "tag": f"subscriber-{subscriber_id}",
                "unique_key": f"{workflow_id}:configure_cpe",
            },
        }
        assert found == subscriber_id
    finally:
        engine.dispose()
        _psql(f'DROP DATABASE IF EXISTS "{SCRATCH}" WITH (FORCE)')


SEED_0001 = [
    "INSERT INTO tenants (id, name) VALUES ('t', 'T')",
    "INSERT INTO service_plans (id, tenant_id, name, download_mbps, upload_mbps, radius_group) "
    "VALUES (1, 't', 'old', 10, 10, 'g-old')",
    "INSERT INTO customers (id, tenant_id, first_name, last_name, email) "
    "VALUES (gen_random_uuid(), 't', 'A', 'B', 'a@b.net')",
    "INSERT INTO workflows (id, tenant_id, workflow_type, definition_version, status, run, input, "
    "context, output) VALUES (:w, 't', 'provision_subscriber', 1, 'completed', 1, '{}', '{}', "
    "jsonb_build_object('subscriber_id', CAST(:s AS text)))",
    "INSERT INTO subscribers (id, tenant_id, customer_id, service_plan_id, username, "
    "service_address, onu_serial, cpe_serial, ipv4_address, status, workflow_id) "
    "SELECT :s, 't', id, 1, 'old.timer', 'x', 'OLDX00000001', 'OLDCPE1', '100.64.0.9', 'active', "
    ":w FROM customers LIMIT 1",
    "INSERT INTO workflow_steps (workflow_id, position, name, system, status, attempts, "
    "compensation_attempts, output, compensation) VALUES "
    "(:w, 3, 'allocate_ip', 'netbox', 'completed', 1, 0, "
    '\'{"ip_id": 9, "address": "100.64.0.9/24"}\', \'{"ip_id": 9}\'), '
    "(:w, 4, 'activate_onu', 'access', 'completed', 1, 0, '{\"onu_device_id\": \"onu-1\"}', "
    '\'{"port_name": "OLDX00000001-1", "s_tag": 100, "c_tag": 200, "tp_id": 64}\'), '
    "(:w, 5, 'configure_cpe', 'genieacs', 'completed', 1, 0, '{\"device_id\": \"dev-1\"}', '{}')",
]
