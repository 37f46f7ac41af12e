"""scripts/freeradius.sh gives a FreeRADIUS that authenticates PPPoE subscribers from PostgreSQL.

A private instance runs on free ports next to any dev instance (1812/1813). Subscribers are
written straight into FreeRADIUS's tables, the way the orchestrator's RADIUS step writes them
(PROTOCOLS.md): radcheck password, radreply Framed-IP-Address, radusergroup plan, and the plan's
radgroupreply rows.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import pytest

from tests.support.radius_client import authenticate

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "scripts" / "freeradius.sh"
SECRET = b"testing123"
RATE_LIMIT = "100M/100M"


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class Instance:
    env: dict[str, str]
    auth_port: int

    def script(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(SCRIPT), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=900,  # `start` may apt-get install on a fresh machine
        )
        if check and result.returncode != 0:
            pytest.fail(
                f"freeradius.sh {' '.join(args)} exited {result.returncode}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result

    def connect(self):  # -> psycopg2 connection
        conn = psycopg2.connect(
            host=self.env["PGHOST"],
            port=self.env["PGPORT"],
            user=self.env["PGUSER"],
            dbname=self.env["RADIUS_DB_NAME"],
        )
        conn.autocommit = True
        return conn


@pytest.fixture(scope="module")
def radius(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instance]:
    if not Path("/usr/sbin/freeradius").exists() and os.geteuid() != 0:
        pytest.skip("FreeRADIUS is not installed; run: sudo scripts/freeradius.sh install")
    auth_port = _free_udp_port()
    acct_port = _free_udp_port()
    while acct_port == auth_port:
        acct_port = _free_udp_port()
    env = {
        **os.environ,
        "FREERADIUS_DIR": str(tmp_path_factory.mktemp("freeradius")),
        "RADIUS_AUTH_PORT": str(auth_port),
        "RADIUS_ACCT_PORT": str(acct_port),
        "RADIUS_DB_NAME": os.environ.get("RADIUS_DB_NAME", "radius"),
        "PGHOST": os.environ.get("PGHOST", "127.0.0.1"),
        "PGPORT": os.environ.get("PGPORT", "5432"),
        "PGUSER": os.environ.get("PGUSER", "postgres"),
    }
    instance = Instance(env=env, auth_port=auth_port)
    instance.script("start")
    try:
        yield instance
    finally:
        instance.script("stop")


@dataclass(frozen=True)
class Subscriber:
    username: str
    password: str
    ip: str
    group: str


def _delete(conn, sub: Subscriber) -> None:
    with conn.cursor() as cur:
        for table in ("radcheck", "radreply", "radusergroup"):
            cur.execute(f"DELETE FROM {table} WHERE username = %s", (sub.username,))  # noqa: S608
        cur.execute("DELETE FROM radgroupreply WHERE groupname = %s", (sub.group,))


@pytest.fixture
def subscriber(radius: Instance) -> Iterator[Subscriber]:
    tag = secrets.token_hex(4)
    sub = Subscriber(
        username=f"fr-setup-{tag}",
        password=f"pw-{secrets.token_hex(6)}",
        ip=f"192.0.2.{secrets.randbelow(250) + 2}",
        group=f"fr-setup-plan-{tag}",
    )
    conn = radius.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(
                "INSERT INTO radcheck (username, attribute, op, value)"
                " VALUES (%s, 'Cleartext-Password', ':=', %s)",
                (sub.username, sub.password),
            )
            cur.execute(
                "INSERT INTO radreply (username, attribute, op, value)"
                " VALUES (%s, 'Framed-IP-Address', ':=', %s)",
                (sub.username, sub.ip),
            )
            cur.execute(
                "INSERT INTO radusergroup (username, groupname, priority) VALUES (%s, %s, 1)",
                (sub.username, sub.group),
            )
            cur.executemany(
                "INSERT INTO radgroupreply (groupname, attribute, op, value)"
                " VALUES (%s, %s, ':=', %s)",
                [
                    (sub.group, "Framed-Protocol", "PPP"),
                    (sub.group, "Service-Type", "Framed-User"),
                    (sub.group, "Mikrotik-Rate-Limit", RATE_LIMIT),
                ],
            )
        yield sub
    finally:
        _delete(conn, sub)
        conn.close()


def test_accepts_subscriber_with_plan_and_address(radius: Instance, subscriber: Subscriber):
    reply = authenticate(
        subscriber.username, subscriber.password, port=radius.auth_port, secret=SECRET
    )

    assert reply.accepted, reply
    assert reply.attributes["Framed-IP-Address"] == [subscriber.ip]
    assert reply.attributes["Framed-Protocol"] == ["PPP"]
    assert reply.attributes["Service-Type"] == ["Framed-User"]
    assert reply.attributes["Mikrotik-Rate-Limit"] == [RATE_LIMIT]


def test_rejects_wrong_password(radius: Instance, subscriber: Subscriber):
    reply = authenticate(subscriber.username, "not-" + subscriber.password, port=radius.auth_port)

    assert not reply.accepted
    assert "Framed-IP-Address" not in reply.attributes


def test_rejects_once_rows_are_deleted(radius: Instance, subscriber: Subscriber):
    assert authenticate(subscriber.username, subscriber.password, port=radius.auth_port).accepted

    conn = radius.connect()
    try:
        _delete(conn, subscriber)
    finally:
        conn.close()

    reply = authenticate(subscriber.username, subscriber.password, port=radius.auth_port)
    assert not reply.accepted
    assert reply.attributes.get("Framed-IP-Address") is None


def test_ownership_table_exists(radius: Instance):
    conn = radius.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT column_name, data_type, is_nullable FROM information_schema.columns"
                " WHERE table_name = 'orchestrator_radius_account' ORDER BY ordinal_position"
            )
            columns = cur.fetchall()
    finally:
        conn.close()
    assert columns == [
        ("username", "text", "NO"),
        ("workflow_id", "text", "NO"),
        ("created_at", "timestamp with time zone", "NO"),
    ]


def test_start_again_keeps_the_running_daemon(radius: Instance):
    before = radius.script("status")
    again = radius.script("start")

    assert "already running" in again.stderr
    assert radius.script("status").stdout == before.stdout
