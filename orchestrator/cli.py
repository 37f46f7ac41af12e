"""``orchestrator`` command: database migrations, demo seed, API keys, secret keys."""

from __future__ import annotations

import argparse
import sys
import uuid

from orchestrator import apikeys, limits_cli, migrate, tracing
from orchestrator.bulk import cli as bulk_cli
from orchestrator.db import transaction
from orchestrator.demo import seed_demo
from orchestrator.errors import OrchestratorError
from orchestrator.reconcile import cli as reconcile_cli
from orchestrator.vault import generate_key


def _db_upgrade(_: argparse.Namespace) -> None:
    migrate.upgrade()
    print("database schema is at head")


def _seed_demo(_: argparse.Namespace) -> None:
    with transaction() as session:
        plan = seed_demo(session)
        print(f"demo tenant 'demo', service plan '{plan.name}' id={plan.id}")


def _secret_key(_: argparse.Namespace) -> None:
    print(generate_key())


def _api_key_create(args: argparse.Namespace) -> None:
    with transaction() as session:
        row, key = apikeys.create_key(session, args.tenant, args.role, args.name or "")
        print(f"created {row.role.value} key {row.id} for tenant {row.tenant_id}")
    # The key itself is the last line, so scripts can take it with `tail -n 1`.
    print(key)


def _api_key_revoke(args: argparse.Namespace) -> None:
    with transaction() as session:
        apikeys.revoke_key(session, args.key_id)
    print(f"revoked {args.key_id}")


def _api_key_list(args: argparse.Namespace) -> None:
    with transaction() as session:
        for row in apikeys.list_keys(session, args.tenant):
            state = f"revoked {row.revoked_at:%Y-%m-%d %H:%M}" if row.revoked_at else "active"
            print(f"{row.id}  {row.role.value:<8}  {row.prefix}…  {state:<24}  {row.name}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="orchestrator")
    commands = parser.add_subparsers(dest="command", required=True)

    db = commands.add_parser("db", help="database schema").add_subparsers(dest="db", required=True)
    db.add_parser("upgrade", help="apply migrations").set_defaults(func=_db_upgrade)

    commands.add_parser("seed-demo", help="create the demo tenant and plan").set_defaults(
        func=_seed_demo
    )
    commands.add_parser("secret-key", help="print a new ORCHESTRATOR_SECRET_KEY").set_defaults(
        func=_secret_key
    )

    keys = commands.add_parser("api-key", help="API keys").add_subparsers(
        dest="keys", required=True
    )
    create = keys.add_parser("create", help="create a key (printed once, last line)")
    create.add_argument("--tenant", required=True)
    create.add_argument("--role", required=True, choices=["viewer", "operator", "admin"])
    create.add_argument("--name")
    create.set_defaults(func=_api_key_create)
    revoke = keys.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("key_id", type=uuid.UUID)
    revoke.set_defaults(func=_api_key_revoke)
    listing = keys.add_parser("list", help="a tenant's keys (ids, roles, prefixes; never keys)")
    listing.add_argument("--tenant", required=True)
    listing.set_defaults(func=_api_key_list)
    bulk_cli.add_parser(commands)
    limits_cli.add_parser(commands)
    reconcile_cli.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        # Workflows a command submits (reconcile --fix) start traces of their own.
        tracing.configure()
        # A command may return its own exit status (bulk-provision: 2 when rows failed).
        status = args.func(args)
    except OrchestratorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return status or 0


if __name__ == "__main__":
    sys.exit(main())
