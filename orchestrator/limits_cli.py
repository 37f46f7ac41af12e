"""``orchestrator concurrency``: see and change the per-system call limits at run time."""

from __future__ import annotations

import argparse
import re
from typing import Any

from orchestrator.errors import ValidationError
from orchestrator.integrations.concurrency import ConcurrencyLimit, current_limit, set_limit

#: The systems whose calls are limited (every client that calls out across the network).
SYSTEMS = ("netbox", "voltha", "onos", "genieacs", "nas")
#: Far above any system's capacity; a bound keeps a typo of many digits out of Redis.
MAX_LIMIT = 100_000
_WHOLE_NUMBER = re.compile(r"[0-9]{1,9}")


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
    set_limit(args.system, _limit(args.limit))
    print(f"{args.system}: limit {current_limit(ConcurrencyLimit.for_system(args.system, 0))}")


def _limit(text: str) -> int | None:
    """The limit an operator typed: a whole number (0: unlimited), or 'default' (None).

    ASCII digits only: int() would also take " 4", "٣" or "1_0", and a negative number must be
    refused, not silently made 0 (unlimited), the opposite of what was asked.
    """
    if text == "default":
        return None
    if not _WHOLE_NUMBER.fullmatch(text):
        raise ValidationError(
            f"limit {text!r}: give a whole number from 0 (unlimited) to {MAX_LIMIT}, or 'default'"
        )
    limit = int(text)
    if limit > MAX_LIMIT:
        raise ValidationError(f"limit {limit}: at most {MAX_LIMIT} (0 is unlimited)")
    return limit
