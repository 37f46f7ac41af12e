"""A CSV body: every way a file can be wrong is a 422 naming the header, line or row field.

No worker runs here: every job is scheduled an hour ahead (or holds no valid row), so nothing
starts; what is checked is what was stored and answered.
"""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from marshmallow import ValidationError as SchemaError
from sqlalchemy import func, select

from orchestrator.db import transaction
from orchestrator.models import BulkJob, BulkJobRow
from orchestrator.vault import unseal
from tests.bulk.conftest import BULK, all_rows, auth
from tests.support.requests import provision_body
from webapp.schemas import bulk as bulk_schema

HEADER = "customer.first_name,customer.last_name,customer.email,service_plan_id,"
HEADER += "service_address,username,password,onu_serial"


def _line(plan_id: int, **cells: str) -> str:
    body = provision_body(plan_id, discovered=False)
    values = {
        "customer.first_name": "Ada",
        "customer.last_name": "Lovelace",
        "customer.email": "ada@example.net",
        "service_plan_id": str(plan_id),
        "service_address": "12 Analytical Row",
        "username": body["username"],
        "password": body["password"],
        "onu_serial": body["onu_serial"],
        **cells,
    }
    buffer = io.StringIO()
    csv.writer(buffer).writerow([values[name] for name in HEADER.split(",")])
    return buffer.getvalue()


def _post_csv(client: Any, key: str, text: str, **query: str) -> Any:
    query.setdefault("not_before", (datetime.now(UTC) + timedelta(hours=1)).isoformat())
    return client.post(
        BULK,
        data=text.encode(),
        query_string=query,
        headers=auth(key, **{"Content-Type": "text/csv"}),
    )


def _jobs() -> int:
    with transaction() as session:
        return session.scalar(select(func.count()).select_from(BulkJob)) or 0


def _error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body["error"]) == {"code", "message", "details"}
    return body["error"]


@pytest.mark.parametrize(
    ("header", "named"),
    [
        ("customer,customer.first_name", "customer"),
        ("customer.first_name,customer", "customer"),
        ("service_plan_id,service_plan_id.x", "service_plan_id"),
        ("username,onu_serial,username", "username"),
    ],
)
def test_a_conflicting_header_refuses_the_file_naming_the_column(
    client, operator_key, plan, header, named
):
    before = _jobs()
    text = f"{header}\n" + ",".join(["1"] * len(header.split(","))) + "\n"

    error = _error(_post_csv(client, operator_key, text), 422)

    assert error["code"] == "validation_error"
    (reason,) = error["details"]["header"]
    assert named in reason
    assert _jobs() == before


@pytest.mark.parametrize("cell", ["\u00b2", "--1", "9" * 5000, "\u0661", "1.0", "+-2"])
def test_a_bad_integer_cell_makes_the_row_invalid_naming_the_field(
    client, operator_key, plan, cell
):
    text = HEADER + "\n" + _line(plan.id) + _line(plan.id, service_plan_id=cell)

    response = _post_csv(client, operator_key, text)

    assert response.status_code == 202, response.get_json()
    assert response.get_json()["invalid"] == 1
    items = all_rows(client, operator_key, response.get_json()["id"])
    assert [item["status"] for item in items] == ["waiting", "invalid"]
    assert set(items[1]["error"]["fields"]) == {"service_plan_id"}


def test_rows_are_records_not_lines(client, operator_key, plan):
    # Given a blank line, then a record whose quoted address holds a line break (an address is
    # one line: that record is invalid), then a record with a bad plan: it starts on the
    # file's sixth line, yet it is the third record after the header
    text = (
        HEADER
        + "\n"
        + _line(plan.id)
        + "\n"
        + _line(plan.id, service_address="Flat 2\n12 Analytical Row")
        + _line(plan.id, service_plan_id="x")
    )
    assert text.splitlines()[5].startswith("Ada,")

    # When it is submitted
    response = _post_csv(client, operator_key, text)

    # Then rows are numbered as a spreadsheet numbers records (under its header row)
    assert response.status_code == 202, response.get_json()
    items = all_rows(client, operator_key, response.get_json()["id"])
    assert [(item["row"], item["status"]) for item in items] == [
        (1, "waiting"),
        (2, "invalid"),
        (3, "invalid"),
    ]
    assert set(items[1]["error"]["fields"]) == {"service_address"}
    assert set(items[2]["error"]["fields"]) == {"service_plan_id"}


def test_a_cell_longer_than_the_csv_module_allows_is_that_rows_field(client, operator_key, plan):
    text = HEADER + "\n" + _line(plan.id, service_address="x" * 200_000) + _line(plan.id)

    response = _post_csv(client, operator_key, text)

    assert response.status_code == 202, response.get_json()
    items = all_rows(client, operator_key, response.get_json()["id"])
    assert [item["status"] for item in items] == ["invalid", "waiting"]
    assert set(items[0]["error"]["fields"]) == {"service_address"}


def test_a_line_the_csv_reader_cannot_parse_refuses_the_file_naming_the_line(
    client, operator_key, plan
):
    previous = csv.field_size_limit(50)  # stands in for any csv.Error the reader raises
    try:
        text = HEADER + "\n" + _line(plan.id) + _line(plan.id, service_address="y" * 60)
        error = _error(_post_csv(client, operator_key, text), 422)
    finally:
        csv.field_size_limit(previous)
    (reason,) = error["details"]["body"]
    assert reason.startswith("line 3:"), reason


def test_parsing_stops_one_row_past_the_limit(monkeypatch, plan):
    monkeypatch.setattr(bulk_schema, "MAX_ROWS", 3)
    built: list[int] = []
    original = bulk_schema._row_from_record

    def counting(record: dict[str | None, Any]) -> dict[str, Any]:
        built.append(1)
        return original(record)

    monkeypatch.setattr(bulk_schema, "_row_from_record", counting)
    text = HEADER + "\n" + "".join(_line(plan.id) for _ in range(10))

    with pytest.raises(SchemaError) as caught:
        bulk_schema.rows_from_csv(text)

    assert caught.value.messages == {"body": ["at most 3 rows a job"]}
    assert len(built) <= 4  # not the 10 rows of the file


def test_too_many_csv_rows_is_a_422(client, operator_key, plan, monkeypatch):
    monkeypatch.setattr(bulk_schema, "MAX_ROWS", 2)
    text = HEADER + "\n" + "".join(_line(plan.id) for _ in range(3))

    error = _error(_post_csv(client, operator_key, text), 422)

    assert error["details"] == {"body": ["at most 2 rows a job"]}


def test_the_password_cell_keeps_its_spaces_and_the_others_are_trimmed(client, operator_key, plan):
    line = _line(plan.id, password="  pass word  ")
    username = next(csv.reader([line]))[5]
    line = line.replace(username, f"  {username} ")

    response = _post_csv(client, operator_key, HEADER + "\n" + line)

    assert response.status_code == 202, response.get_json()
    with transaction() as session:
        row = session.scalars(
            select(BulkJobRow).where(BulkJobRow.job_id == uuid.UUID(response.get_json()["id"]))
        ).one()
        assert row.request["username"] == username
        assert unseal(row.secrets)["password"] == "  pass word  "


def test_unknown_columns_with_unprintable_names_are_stored_readable(client, operator_key, plan):
    header = HEADER + ",nick\x00name,customer.\x07bell"
    text = header + "\n" + _line(plan.id).rstrip("\r\n") + ",a,b\n"

    response = _post_csv(client, operator_key, text)

    assert response.status_code == 202, response.get_json()
    (item,) = all_rows(client, operator_key, response.get_json()["id"])
    assert item["status"] == "invalid"
    fields = item["error"]["fields"]
    assert fields["nick\\x00name"] == ["Unknown field."]
    assert fields["customer"] == {"\\x07bell": ["Unknown field."]}


def test_unknown_query_parameters_are_refused_with_a_csv_body(client, operator_key, plan):
    before = _jobs()

    error = _error(_post_csv(client, operator_key, HEADER + "\n" + _line(plan.id), bogus="1"), 422)

    assert error["details"] == {"bogus": ["Unknown field."]}
    assert _jobs() == before
