"""``orchestrator bulk-provision FILE --tenant T``: a bulk job from cron, without the API.

The rows are validated exactly as the API validates them (the same schema), the job is stored
and fed by the workers like any other. ``--wait`` follows it with a progress bar and exits 0
when every row completed, 2 when any row was invalid, refused or did not complete.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from marshmallow import ValidationError as SchemaError

from orchestrator.errors import ValidationError

#: Exit status when the job ran but some rows did not complete (or never started).
ROWS_FAILED = 2
POLL_SECONDS = 1.0
BAR_WIDTH = 30
NOT_COMPLETED = ("invalid", "refused", "skipped", "rolled_back", "compensated", "failed")


def add_parser(commands: Any) -> None:
    bulk = commands.add_parser(
        "bulk-provision", help="provision many subscribers from a CSV or JSON file as one job"
    )
    bulk.add_argument("file", type=Path, help="rows as CSV (header of field names) or JSON")
    bulk.add_argument("--tenant", required=True)
    bulk.add_argument(
        "--not-before", type=datetime.fromisoformat, help="ISO time: start no row before it"
    )
    bulk.add_argument(
        "--all-or-nothing", action="store_true", help="one invalid row refuses the whole job"
    )
    bulk.add_argument(
        "--idempotency-key", help="the same key and file give the same job (safe to re-run)"
    )
    bulk.add_argument("--wait", action="store_true", help="follow the job until it finishes")
    bulk.set_defaults(func=run)


def _read_rows(path: Path) -> list[Any]:
    from webapp.schemas.bulk import rows_from_csv

    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".csv":
        return rows_from_csv(text)
    data = json.loads(text)
    rows = data["rows"] if isinstance(data, dict) else data
    if not isinstance(rows, list):
        raise ValueError('give a list of rows, or an object with "rows": [...]')
    return rows


def _check_tenant(tenant_id: str) -> None:
    """An unknown tenant named as such (storing the job would fail on its foreign key)."""
    from orchestrator.db import transaction
    from orchestrator.models import Tenant

    with transaction() as session:
        if session.get(Tenant, tenant_id) is None:
            raise ValidationError(f"tenant {tenant_id} does not exist")


def run(args: argparse.Namespace) -> int:
    import tasks.app  # noqa: F401 - this process publishes the job's first feed
    from orchestrator.bulk.jobs import BulkService, describe_error
    from webapp.schemas.bulk import validate_rows

    _check_tenant(args.tenant)
    try:
        raw_rows = _read_rows(args.file)
    except SchemaError as exc:
        # The file as a whole is refused (its header, a line, too many rows): name where.
        for name, reasons in _messages(exc).items():
            print(f"  {name}: {'; '.join(reasons)}", file=sys.stderr)
        raise ValidationError(f"cannot read {args.file}: see above") from exc
    except (OSError, ValueError, KeyError, RecursionError) as exc:
        # RecursionError: JSON nested deeper than the parser can recurse.
        raise ValidationError(f"cannot read {args.file}: {_reason(exc)}") from exc
    not_before = args.not_before
    if not_before is not None and not_before.tzinfo is None:
        not_before = not_before.astimezone()  # a local time, as cron users write it
    service = BulkService()
    try:
        submission = service.create(
            args.tenant,
            validate_rows(raw_rows),
            fingerprint_body={"rows": raw_rows, "not_before": str(not_before)},
            not_before=not_before,
            all_or_nothing_validation=args.all_or_nothing,
            idempotency_key=args.idempotency_key,
        )
    except ValidationError as exc:
        for name, reasons in exc.fields.items():  # the rows and fields, before the summary
            print(f"  {name}: {'; '.join(reasons)}", file=sys.stderr)
        raise
    job = submission.job
    verb = "created" if submission.created else "already exists (same idempotency key):"
    print(f"bulk job {verb} {job.id}: {job.total_rows} rows, {job.invalid_rows} invalid")
    if job.invalid_rows:
        for row in service.get(job.tenant_id, job.id, limit=1000, failed_only=True).rows:
            if row.status == "invalid":
                print(f"  row {row.row_number}: {describe_error(row.error)}", file=sys.stderr)
    if not args.wait:
        return ROWS_FAILED if job.invalid_rows else 0
    return _follow(service, job.tenant_id, job.id)


def _messages(exc: SchemaError) -> dict[str, list[str]]:
    messages = exc.messages if isinstance(exc.messages, dict) else {"file": exc.messages}
    return {str(name): [str(reason) for reason in reasons] for name, reasons in messages.items()}


def _reason(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "the JSON is nested too deeply"
    if isinstance(exc, KeyError):
        return f"no {exc} in the JSON object"
    return str(exc)


def _follow(service: Any, tenant_id: str, job_id: Any) -> int:
    while True:
        view = service.get(tenant_id, job_id, limit=1)
        _progress(view)
        if view.job.status.is_finished:
            break
        time.sleep(POLL_SECONDS)  # a person watching: one read a second is enough
    print(file=sys.stderr)
    failed = {status: view.counts[status] for status in NOT_COMPLETED if view.counts[status]}
    print(
        f"bulk job {job_id} {view.job.status.value}: {view.counts['completed']} completed"
        + "".join(f", {n} {status}" for status, n in failed.items())
    )
    return ROWS_FAILED if failed or view.job.status.value == "cancelled" else 0


def _progress(view: Any) -> None:
    total = view.job.total_rows
    done = sum(view.counts[status] for status in ("completed", *NOT_COMPLETED))
    filled = int(BAR_WIDTH * done / total) if total else BAR_WIDTH
    eta = f" eta {view.eta_seconds:.0f}s" if view.eta_seconds is not None else ""
    rate = f" {view.throughput_per_second:.1f}/s" if view.throughput_per_second is not None else ""
    sys.stderr.write(
        f"\r[{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {done}/{total}"
        f" ok {view.counts['completed']} failed {done - view.counts['completed']}{rate}{eta}  "
    )
    sys.stderr.flush()
