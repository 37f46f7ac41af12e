"""The operator commands refuse bad input with one clear line and exit 1, never a traceback."""

from __future__ import annotations

import json

import pytest

from orchestrator import cli
from orchestrator.integrations.concurrency import ConcurrencyLimit, current_limit, set_limit
from tests.support.requests import provision_body


def _bulk(path, tenant):  # type: ignore[no-untyped-def]
    return cli.main(["bulk-provision", str(path), "--tenant", tenant])


def test_an_unknown_tenant_is_named(tmp_path, database, plan, capsys):
    path = tmp_path / "rows.json"
    path.write_text(json.dumps([provision_body(plan.id, discovered=False)]))

    status = _bulk(path, "no-such-tenant")

    captured = capsys.readouterr()
    assert status == 1
    assert "tenant no-such-tenant does not exist" in captured.err
    assert "Traceback" not in captured.err


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("customer,customer.first_name\na,b\n", "customer"),
        ("service_plan_id,service_plan_id.x\n1,2\n", "service_plan_id"),
        ("username\n" + "x" * 200_000 + "\r\n", None),  # parses: the row is invalid, not the file
    ],
)
def test_a_bad_csv_file_is_a_clear_error(tmp_path, tenant, text, named, capsys):
    path = tmp_path / "rows.csv"
    path.write_text(text)

    status = _bulk(path, tenant)

    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    if named is None:
        assert status == 2, captured.err  # the job was stored, with an invalid row
        return
    assert status == 1
    assert f"header: column {named!r}" in captured.err


@pytest.mark.parametrize("body", ["[" * 50_000, '{"rows": 5}', '"rows"'])
def test_a_json_file_that_holds_no_rows_is_a_clear_error(tmp_path, tenant, body, capsys):
    path = tmp_path / "rows.json"
    path.write_text(body)

    status = _bulk(path, tenant)

    captured = capsys.readouterr()
    assert status == 1
    assert captured.err.startswith("error: cannot read"), captured.err


@pytest.mark.parametrize("value", ["-1", "abc", "1.5", "\u0663", " 4"])
def test_a_concurrency_limit_must_be_a_whole_number(value, capsys):
    before = current_limit(ConcurrencyLimit.for_system("onos", 0))

    status = cli.main(["concurrency", "set", "onos", value])

    captured = capsys.readouterr()
    assert status == 1
    assert "0 (unlimited)" in captured.err and "Traceback" not in captured.err
    assert current_limit(ConcurrencyLimit.for_system("onos", 0)) == before


def test_a_concurrency_limit_of_0_is_unlimited_and_default_resets_it(capsys):
    try:
        assert cli.main(["concurrency", "set", "onos", "0"]) == 0
        assert current_limit(ConcurrencyLimit.for_system("onos", 0)) == 0
        assert cli.main(["concurrency", "set", "onos", "default"]) == 0
        configured = ConcurrencyLimit.for_system("onos", 0).limit
        assert current_limit(ConcurrencyLimit.for_system("onos", 0)) == configured
    finally:
        set_limit("onos", None)
