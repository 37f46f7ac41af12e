"""`orchestrator bulk-provision FILE --tenant T --wait`, as cron runs it."""

from __future__ import annotations

import csv
import json

from orchestrator import cli
from tests.bulk.conftest import rows

COLUMNS = ["customer.first_name", "customer.last_name", "customer.email", "service_plan_id"]
COLUMNS += ["service_address", "username", "password", "onu_serial"]


def _write_csv(path, bodies):  # type: ignore[no-untyped-def]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for body in bodies:
            customer = body["customer"]
            writer.writerow(
                [customer["first_name"], customer["last_name"], customer["email"]]
                + [body[c] for c in COLUMNS[3:]]
            )


def test_a_csv_file_provisions_and_waits_exit_0(tmp_path, worker, sim, tenant, plan, capsys):
    bodies = rows(plan.id, 3)
    path = tmp_path / "night.csv"
    _write_csv(path, bodies)

    status = cli.main(["bulk-provision", str(path), "--tenant", tenant, "--wait"])

    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert "completed: 3 completed" in captured.out
    assert "3/3" in captured.err  # the progress bar reached the end
    for body in bodies:  # no password on the terminal either
        assert body["password"] not in captured.out + captured.err


def test_a_failed_or_invalid_row_exits_2_naming_it(tmp_path, worker, sim, tenant, plan, capsys):
    bodies = rows(plan.id, 2)
    bodies[1]["onu_serial"] = "bad"
    path = tmp_path / "night.json"
    path.write_text(json.dumps({"rows": bodies}))

    status = cli.main(["bulk-provision", str(path), "--tenant", tenant, "--wait"])

    captured = capsys.readouterr()
    assert status == 2
    assert "row 2: onu_serial" in captured.err
    assert "1 completed, 1 invalid" in captured.out


def test_all_or_nothing_refuses_and_exits_1(tmp_path, worker, sim, tenant, plan, capsys):
    bodies = rows(plan.id, 2)
    bodies[0]["customer"]["email"] = "nope"
    path = tmp_path / "night.json"
    path.write_text(json.dumps(bodies))

    status = cli.main(["bulk-provision", str(path), "--tenant", tenant, "--all-or-nothing"])

    captured = capsys.readouterr()
    assert status == 1
    assert "rows[1]: customer.email" in captured.err
