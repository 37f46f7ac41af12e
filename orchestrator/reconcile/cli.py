"""``orchestrator reconcile [--tenant T] [--fix] [--json]``.

Exit status: 0 clean, 3 orphans or missing resources found (also with ``--fix``: it reports
what it found, and the cleanup workflows it started run on the workers), 1 on an error (among
them a system that could not be read: what the others hold is still printed).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from orchestrator.reconcile.check import check
from orchestrator.reconcile.findings import Report
from orchestrator.reconcile.fix import Submitted, fixable, submit


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "reconcile",
        help="list resources of ours that no workflow owns, and live subscribers' missing ones",
    )
    parser.add_argument("--tenant", help="only this tenant's (default: every tenant's)")
    parser.add_argument(
        "--fix", action="store_true", help="remove the orphans through cleanup workflows"
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    report = check().for_tenant(args.tenant)
    cleanups = _fix(report) if args.fix and report.orphans else []
    if args.json:
        document: dict[str, Any] = report.to_json()
        if args.fix:
            document["cleanup"] = [c.to_json() for c in cleanups]
        print(json.dumps(document, indent=2))
    else:
        _print(report, cleanups, args.fix)
    return report.exit_status


def _fix(report: Report) -> list[Submitted]:
    from orchestrator.service import OrchestrationService
    from tasks.dispatch import CeleryDispatcher  # this process publishes the cleanups

    return submit(report, OrchestrationService(CeleryDispatcher()))


def _print(report: Report, cleanups: list[Submitted], fix: bool) -> None:
    for o in report.orphans:
        print(f"orphan   {o.system:<9} {o.resource}  [workflow {o.workflow_id}]  {o.reason}")
    for m in report.missing:
        print(f"missing  {m.system:<9} {m.resource}  [subscriber {m.subscriber_id}]  {m.reason}")
    for c in cleanups:
        if c.workflow_id:
            print(
                f"cleanup  workflow {c.workflow_id} removes {len(c.resources)} orphan(s) "
                f"of subscriber {c.subscriber_id}"
            )
        else:
            print(f"cleanup  refused for subscriber {c.subscriber_id}: {c.refused}")
    if fix:
        for o in report.orphans:
            if not fixable(o):
                print(
                    f"not fixed: {o.system} {o.resource} (no record of its maker: remove it "
                    "by hand if it is ours)"
                )
    if report.unavailable:
        print(f"could not read: {', '.join(report.unavailable)} (nothing judged there)")
    print(
        "clean"
        if report.clean
        else f"{len(report.orphans)} orphan(s), {len(report.missing)} missing"
    )
