"""``orchestrator concurrency``: see and change the per-system call limits at run time."""

from __future__ import annotations

import argparse
from typing import Any

from orchestrator.integrations.concurrency import ConcurrencyLimit, current_limit, set_limit

#: The systems whose calls are limited (every client that calls out across the network).
SYSTEMS = ("netbox", "voltha", "onos", "genieacs", "nas")


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "concurrency", help="per-system limits on calls in flight, across every worker"
    ).add_subparsers(dest="concurrency", required=True)
    show = parser.add_parser("show", help="each system's limit and the calls in flight now")
    show.set_defaults(func=_show)
    change = parser.add_parser("set", help="change a system's limit for every worker at once")
    change.add_argument("system", choices=SYSTEMS)
    change.add_argument("limit", help="calls in flight at most (0: unlimited), or 'default'")
    change.set_defaults(func=_set)


def _show(_: argparse.Namespace) -> None:
    for system in SYSTEMS:
        limit = ConcurrencyLimit.for_system(system, 0)
        print(f"{system:<9} limit {current_limit(limit):>5}  in flight {limit.in_use():>5}")


def _set(args: argparse.Namespace) -> None:
    if args.limit == "default":
        set_limit(args.system, None)
    else:
        set_limit(args.system, max(int(args.limit), 0))
    print(f"{args.system}: limit {current_limit(ConcurrencyLimit.for_system(args.system, 0))}")
