"""Work that must happen only once a session's transaction has committed.

A metric counted, a message published: both would lie if the transaction then rolled back, and
SQLAlchemy has no ``on_commit``. Callers note the work on the session (:func:`after_commit`);
it runs after the commit, in the order noted, and is dropped on a rollback, so a retried
transaction never does it twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import event
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

_KEY = "after_commit"


def after_commit(session: Session, work: Callable[[], None]) -> None:
    """Run ``work`` once the session's transaction commits (never if it rolls back)."""
    session.info.setdefault(_KEY, []).append(work)


@event.listens_for(Session, "after_commit")
def _run(session: Session) -> None:
    for work in session.info.pop(_KEY, []):
        # The transaction is committed whatever happens here: one failing piece of work (a
        # broker that is down) must neither stop the others nor fail the caller. What it was
        # for is recoverable from the committed rows (the sweepers re-publish).
        try:
            work()
        except Exception:
            log.exception("work after commit failed: %r", work)


@event.listens_for(Session, "after_rollback")
def _drop(session: Session) -> None:
    session.info.pop(_KEY, None)
