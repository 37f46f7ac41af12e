"""Engine and session factory. Nothing is built at import time: callers ask for them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker

from orchestrator import tracing
from orchestrator.config import get_settings


def get_engine(url: str | None = None) -> Engine:
    """The process's engine for ``url`` (the configured database by default): one pool per
    database, however it is asked for (``get_engine()`` and ``get_engine(None)`` alike)."""
    return _engine_for(url or get_settings().database_url)


@lru_cache(maxsize=4)
def _engine_for(url: str) -> Engine:
    # pool_pre_ping: a worker that sat idle across a PostgreSQL restart gets a fresh connection
    # instead of failing its next step on a dead socket.
    engine = create_engine(
        url,
        pool_pre_ping=True,
        # Bound parameters (passwords among them) never appear in exception messages.
        hide_parameters=True,
        pool_size=get_settings().db_pool_size,
        max_overflow=get_settings().db_max_overflow,
        future=True,
    )
    return tracing.instrument_engine(engine)


def get_sessionmaker(url: str | None = None) -> sessionmaker[Session]:
    return _sessionmaker_for(url or get_settings().database_url)


@lru_cache(maxsize=4)
def _sessionmaker_for(url: str) -> sessionmaker[Session]:
    # expire_on_commit=False: objects stay readable after the unit of work commits (the API
    # serialises them after commit, and tasks publish after commit).
    return sessionmaker(bind=get_engine(url), expire_on_commit=False)


@contextmanager
def transaction() -> Iterator[Session]:
    """One unit of work: commit on success, roll back on error. The caller owns it."""
    session_factory = get_sessionmaker()
    with session_factory() as session, session.begin():
        yield session
