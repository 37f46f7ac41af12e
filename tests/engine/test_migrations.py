"""The Alembic migrations and the models describe the same schema, both ways."""

from __future__ import annotations

import subprocess

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from orchestrator.migrate import alembic_config
from orchestrator.models import Base

SCRATCH = "orchestrator_migrations_check"
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
