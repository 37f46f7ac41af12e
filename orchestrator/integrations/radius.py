"""FreeRADIUS accounts, written straight into FreeRADIUS's own SQL schema.

FreeRADIUS reads radcheck/radreply/radusergroup on every request, so a committed row is live
at once. Each account is written in one transaction together with a row in our ownership
table ``orchestrator_radius_account``: a retry can then tell an account it created itself
(adopt it) from one that was already there (a conflict it must not touch, nor delete later).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache

from sqlalchemy import Connection, Engine, bindparam, create_engine, text
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from orchestrator import tracing
from orchestrator.config import Settings, get_settings
from orchestrator.errors import PermanentError, TransientError

SYSTEM = "radius"

FRAMED_IP = "Framed-IP-Address"
#: The WAN link's prefix (RFC 3162).
FRAMED_IPV6_PREFIX = "Framed-IPv6-Prefix"
#: The prefix delegated to the subscriber's network, by DHCPv6-PD on the BNG (RFC 4818).
DELEGATED_IPV6_PREFIX = "Delegated-IPv6-Prefix"
#: The radreply attributes that carry a subscriber's own addresses.
FRAMED_ATTRIBUTES = (FRAMED_IP, FRAMED_IPV6_PREFIX, DELEGATED_IPV6_PREFIX)


@dataclass(frozen=True)
class RadiusAttribute:
    attribute: str
    op: str
    value: str


def plan_group_attributes(download_mbps: int, upload_mbps: int) -> list[RadiusAttribute]:
    """The reply attributes every subscriber of a plan gets through its RADIUS group."""
    return [
        RadiusAttribute("Framed-Protocol", ":=", "PPP"),
        RadiusAttribute("Service-Type", ":=", "Framed-User"),
        # MikroTik reads rx/tx from the router's side: the subscriber's upload comes first.
        RadiusAttribute("Mikrotik-Rate-Limit", ":=", f"{upload_mbps}M/{download_mbps}M"),
    ]


class RadiusStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @classmethod
    def from_url(cls, url: str, *, pool_size: int = 2, max_overflow: int = 2) -> RadiusStore:
        engine = create_engine(
            url,
            pool_pre_ping=True,
            pool_size=pool_size,
            max_overflow=max_overflow,
            hide_parameters=True,
        )
        return cls(tracing.instrument_engine(engine))

    @classmethod
    def from_settings(cls, settings: Settings) -> RadiusStore:
        return cls.from_url(settings.radius_database_url)

    @contextmanager
    def _transaction(self, operation: str) -> Iterator[Connection]:
        try:
            with self._engine.begin() as connection:
                yield connection
        except OperationalError as exc:
            raise TransientError(
                f"RADIUS database unavailable during {operation}",
                system=SYSTEM,
                operation=operation,
            ) from exc
        except IntegrityError as exc:
            raise TransientError(
                f"concurrent write during {operation}; safe to retry",
                system=SYSTEM,
                operation=operation,
            ) from exc
        except DBAPIError as exc:
            raise PermanentError(
                f"RADIUS database rejected {operation}: {type(exc.orig).__name__}",
                system=SYSTEM,
                operation=operation,
            ) from exc

    def ensure_group(
        self, group: str, attributes: Sequence[RadiusAttribute], *, replace: bool = True
    ) -> None:
        """Make the group's reply attributes exactly ``attributes`` (idempotent). With
        ``replace=False`` a group that already has attributes is left as it is."""
        with self._transaction("ensure_group") as conn:
            # Serialise writers of the same group so two workers never interleave the rewrite.
            conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:g))"), {"g": group})
            if (
                not replace
                and conn.execute(
                    text("SELECT 1 FROM radgroupreply WHERE groupname = :g LIMIT 1"), {"g": group}
                ).first()
            ):
                return
            conn.execute(text("DELETE FROM radgroupreply WHERE groupname = :g"), {"g": group})
            for attr in attributes:
                conn.execute(
                    text(
                        "INSERT INTO radgroupreply (groupname, attribute, op, value) "
                        "VALUES (:g, :a, :o, :v)"
                    ),
                    {"g": group, "a": attr.attribute, "o": attr.op, "v": attr.value},
                )

    def ensure_reject_group(self, group: str) -> None:
        """A group whose members FreeRADIUS rejects (radgroupcheck Auth-Type := Reject)."""
        with self._transaction("ensure_reject_group") as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:g))"), {"g": group})
            exists_ = conn.execute(
                text(
                    "SELECT 1 FROM radgroupcheck WHERE groupname = :g AND attribute = 'Auth-Type'"
                ),
                {"g": group},
            ).first()
            if not exists_:
                conn.execute(
                    text(
                        "INSERT INTO radgroupcheck (groupname, attribute, op, value) "
                        "VALUES (:g, 'Auth-Type', ':=', 'Reject')"
                    ),
                    {"g": group},
                )

    def group_attributes(self, group: str) -> list[RadiusAttribute]:
        """The reply attributes FreeRADIUS gives every member of ``group``."""
        with self._transaction("group_attributes") as conn:
            rows = conn.execute(
                text(
                    "SELECT attribute, op, value FROM radgroupreply "
                    "WHERE groupname = :g ORDER BY id"
                ),
                {"g": group},
            )
            return [RadiusAttribute(*row) for row in rows]

    def owner_of(self, username: str) -> str | None:
        with self._transaction("owner_of") as conn:
            return self._owner(conn, username)

    def create_account(
        self,
        *,
        username: str,
        password: str,
        group: str,
        framed_ip: str | None,
        owner: str,
    ) -> bool:
        """Create the account, or adopt it if ``owner`` already created it. True if created."""
        with self._transaction("create_account") as conn:
            current_owner = self._owner(conn, username, lock=True)
            if current_owner == owner:
                return False
            if current_owner is not None:
                raise PermanentError(
                    f"RADIUS username {username!r} belongs to another workflow",
                    system=SYSTEM,
                    operation="create_account",
                )
            existing = conn.execute(
                text("SELECT count(*) FROM radcheck WHERE username = :u"), {"u": username}
            ).scalar_one()
            if existing:
                raise PermanentError(
                    f"RADIUS username {username!r} already exists and is not ours",
                    system=SYSTEM,
                    operation="create_account",
                )
            # The ownership row goes first: its primary key makes a concurrent twin fail here.
            conn.execute(
                text(
                    "INSERT INTO orchestrator_radius_account (username, workflow_id) "
                    "VALUES (:u, :w)"
                ),
                {"u": username, "w": owner},
            )
            conn.execute(
                text(
                    "INSERT INTO radcheck (username, attribute, op, value) "
                    "VALUES (:u, 'Cleartext-Password', ':=', :p)"
                ),
                {"u": username, "p": password},
            )
            if framed_ip:
                self._write_reply(conn, username, FRAMED_IP, framed_ip)
            conn.execute(
                text("INSERT INTO radusergroup (username, groupname, priority) VALUES (:u, :g, 1)"),
                {"u": username, "g": group},
            )
            return True

    def set_framed_ip(self, *, username: str, framed_ip: str, owner: str) -> None:
        self.set_framed(username=username, owner=owner, values={FRAMED_IP: framed_ip})

    def set_framed(self, *, username: str, owner: str, values: Mapping[str, str | None]) -> None:
        """Each radreply attribute named gets its value (None: it is removed), in one
        transaction, on an account ``owner`` created."""
        with self._transaction("set_framed") as conn:
            self._require_owner(conn, username, owner, "set_framed")
            for attribute, value in values.items():
                self._write_reply(conn, username, attribute, value)

    def clear_framed_ip(self, *, username: str, owner: str) -> None:
        """Remove the addresses (IPv4 and IPv6) from an account ``owner`` created; nothing if it
        is not ours."""
        with self._transaction("clear_framed_ip") as conn:
            if self._owner(conn, username, lock=True) != owner:
                return
            for attribute in FRAMED_ATTRIBUTES:
                self._write_reply(conn, username, attribute, None)

    def framed(self, username: str) -> dict[str, str]:
        """The account's address attributes in radreply (for checks and tests)."""
        with self._transaction("framed") as conn:
            rows = conn.execute(
                text(
                    "SELECT attribute, value FROM radreply "
                    "WHERE username = :u AND attribute IN :names"
                ).bindparams(bindparam("names", expanding=True)),
                {"u": username, "names": list(FRAMED_ATTRIBUTES)},
            )
            return dict(rows.tuples())

    def set_group(self, *, username: str, group: str, owner: str) -> str | None:
        """Move the account to ``group`` (its profile: speeds, or a suspended profile); returns
        the group it was in."""
        with self._transaction("set_group") as conn:
            self._require_owner(conn, username, owner, "set_group")
            previous = conn.execute(
                text("SELECT groupname FROM radusergroup WHERE username = :u"), {"u": username}
            ).scalar_one_or_none()
            conn.execute(text("DELETE FROM radusergroup WHERE username = :u"), {"u": username})
            conn.execute(
                text("INSERT INTO radusergroup (username, groupname, priority) VALUES (:u, :g, 1)"),
                {"u": username, "g": group},
            )
            return previous

    def group_of(self, username: str) -> str | None:
        with self._transaction("group_of") as conn:
            return conn.execute(
                text("SELECT groupname FROM radusergroup WHERE username = :u"), {"u": username}
            ).scalar_one_or_none()

    def delete_account(self, *, username: str, owner: str) -> bool:
        """Delete the account if ``owner`` created it. True if something was deleted."""
        with self._transaction("delete_account") as conn:
            current_owner = self._owner(conn, username, lock=True)
            if current_owner != owner:
                # Not ours (or already gone): never delete another subscriber's account.
                return False
            for table in ("radcheck", "radreply", "radusergroup"):
                conn.execute(text(f"DELETE FROM {table} WHERE username = :u"), {"u": username})  # noqa: S608
            conn.execute(
                text("DELETE FROM orchestrator_radius_account WHERE username = :u"),
                {"u": username},
            )
            return True

    def account_rows(self, username: str) -> dict[str, int]:
        """How many rows each FreeRADIUS table holds for ``username`` (for checks and tests)."""
        with self._transaction("account_rows") as conn:
            return {
                table: conn.execute(
                    text(f"SELECT count(*) FROM {table} WHERE username = :u"),  # noqa: S608
                    {"u": username},
                ).scalar_one()
                for table in ("radcheck", "radreply", "radusergroup")
            }

    @staticmethod
    def _owner(conn: Connection, username: str, *, lock: bool = False) -> str | None:
        """The workflow that created ``username``'s account; ``lock`` holds its row."""
        query = "SELECT workflow_id FROM orchestrator_radius_account WHERE username = :u"
        return conn.execute(
            text(query + (" FOR UPDATE" if lock else "")), {"u": username}
        ).scalar_one_or_none()

    @staticmethod
    def _require_owner(conn: Connection, username: str, owner: str, operation: str) -> None:
        if RadiusStore._owner(conn, username) != owner:
            raise PermanentError(
                f"RADIUS account {username!r} is not owned by this workflow",
                system=SYSTEM,
                operation=operation,
            )

    @staticmethod
    def _write_reply(conn: Connection, username: str, attribute: str, value: str | None) -> None:
        """One value of ``attribute`` in radreply (``:=``: it replaces whatever a group says),
        or none."""
        conn.execute(
            text("DELETE FROM radreply WHERE username = :u AND attribute = :a"),
            {"u": username, "a": attribute},
        )
        if value is None:
            return
        conn.execute(
            text("INSERT INTO radreply (username, attribute, op, value) VALUES (:u, :a, ':=', :v)"),
            {"u": username, "a": attribute, "v": value},
        )


@cache
def shared_store() -> RadiusStore:
    """The process's one store, built on first use (in a worker's pool process, not before the
    fork). Every RADIUS step and task shares its pool, sized like the orchestrator's own
    (DB_POOL_SIZE, DB_MAX_OVERFLOW): in a thread-pool worker, its threads queue for one pool's
    connections instead of each step holding a pool of 2+2 of its own."""
    settings = get_settings()
    return RadiusStore.from_url(
        settings.radius_database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
    )
