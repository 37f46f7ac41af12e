"""Bulk provisioning: the job request (JSON or CSV), each row checked by the provisioning
schema on its own, and the job as it is read back."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from orchestrator.bulk.jobs import MAX_ROWS, RowInput, readable
from webapp.schemas.base import RequestSchema, StrictBoolean, aware_datetime, int_field
from webapp.schemas.workflows import ProvisionSubscriberSchema

_ROW_SCHEMA = ProvisionSubscriberSchema()
#: The provisioning fields a CSV cell is converted to a number for.
_INTEGERS = frozenset(
    name for name, field in _ROW_SCHEMA.fields.items() if isinstance(field, fields.Integer)
)
#: An integer as a CSV writes one: ASCII digits only (str.isdigit() also takes "²" and other
#: scripts' digits, which int() then refuses), and few enough of them that int() is cheap and
#: the schema's range check names the field; anything else stays text for the schema to refuse.
_DECIMAL = re.compile(r"-?[0-9]{1,18}")
#: The csv module refuses a cell over 131,072 characters with an error for the whole file. A
#: cell that long is simply invalid for its field, which the schema says by row and field; the
#: request body's own limit (64 MB) bounds a cell instead. Process-wide, and only ever raised.
_CSV_CELL_LIMIT = 64 * 1024 * 1024
csv.field_size_limit(max(csv.field_size_limit(), _CSV_CELL_LIMIT))


class BulkProvisionSchema(RequestSchema):
    rows = fields.List(
        fields.Raw(),
        required=True,
        validate=validate.Length(1, MAX_ROWS),
        metadata={"description": "provision-subscriber bodies; each is checked on its own"},
    )
    not_before = aware_datetime(
        load_default=None, metadata={"description": "start no row before this time"}
    )
    max_in_flight = int_field(
        load_default=None,
        minimum=1,
        maximum=10_000,
        metadata={"description": "rows running at once (default: the BULK_WINDOW setting)"},
    )
    all_or_nothing_validation = StrictBoolean(
        load_default=False,
        metadata={"description": "one invalid row refuses the whole job (422, nothing starts)"},
    )


class BulkCsvQuerySchema(RequestSchema):
    """With a CSV body, the job's options come in the query string."""

    not_before = aware_datetime(load_default=None)
    all_or_nothing_validation = fields.Boolean(load_default=False)
    max_in_flight = int_field(load_default=None, minimum=1, maximum=10_000, strict=False)


def rows_from_csv(text: str) -> list[dict[str, Any]]:
    """One dict per data row; ``customer.first_name`` columns nest; empty cells are absent.

    Integer fields of the provisioning schema are converted here (CSV has only text); a value
    that is not a number stays text, and the schema names the field. A header the rows cannot
    be built from (a column twice, a column that is also a nested column's parent) refuses the
    whole file, as does a line the CSV reader cannot parse; parsing stops one row past MAX_ROWS.
    """
    # newline="": the csv module's own line handling (a quoted cell may hold line breaks).
    lines = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(lines, None)
        if not header:
            raise ValidationError({"body": ["the CSV has no header row"]})
        conflicts = _header_conflicts(header)
        if conflicts:
            raise ValidationError({"header": conflicts})
        rows: list[dict[str, Any]] = []
        for cells in lines:
            if not cells:  # a blank line
                continue
            if len(rows) == MAX_ROWS:
                # Refused before the rest is parsed: a job's rows are all held in memory.
                raise ValidationError({"body": [f"at most {MAX_ROWS} rows a job"]})
            record: dict[str | None, Any] = dict(zip(header, cells, strict=False))
            if len(cells) > len(header):  # more cells than the header has columns
                record[None] = cells[len(header) :]
            rows.append(_row_from_record(record))
    except csv.Error as exc:
        raise ValidationError({"body": [f"line {lines.line_num}: {exc}"]}) from None
    if not rows:
        raise ValidationError({"body": ["the CSV has no data rows"]})
    return rows


def _header_conflicts(header: Sequence[str]) -> list[str]:
    """Why the header cannot name each cell's place in a row: a column given twice, or a
    column with a value of its own that is also the parent of a nested one."""
    conflicts = []
    seen: set[str] = set()
    for column in header:
        if column in seen:
            conflicts.append(f"column '{readable(column)}' appears more than once")
        seen.add(column)
    parents = {column.partition(".")[0] for column in header if "." in column}
    for column in dict.fromkeys(header):
        if column in parents:
            conflicts.append(
                f"column '{readable(column)}' cannot have a value of its own and nested columns "
                f"({readable(column)}.*) too"
            )
    return conflicts


def _row_from_record(record: dict[str | None, Any]) -> dict[str, Any]:
    """One CSV record as a request: empty cells absent, integers converted, dotted columns
    nested (the header was checked: no column is both a value and a parent)."""
    row: dict[str, Any] = {}
    for column, cell in record.items():
        if column is None:  # the cells beyond the header's columns
            row["_extra_cells"] = cell
            continue
        if cell.strip() == "":
            continue
        # A password is taken as given: its spaces are part of it. Other cells are trimmed
        # (a spreadsheet pads them).
        value = cell if column == "password" else cell.strip()
        if column in _INTEGERS and _DECIMAL.fullmatch(value):
            row[column] = int(value)
            continue
        head, _, tail = column.partition(".")
        if tail:
            row.setdefault(head, {})[tail] = value
        else:
            row[column] = value
    return row


def validate_rows(raw_rows: list[Any]) -> list[RowInput]:
    """Each row through the provisioning schema; rows are numbered from 1 in the given order
    (for a CSV, row 1 is the first record after the header: blank lines are not rows, and a
    record whose quoted cells hold line breaks is one row)."""
    checked = []
    for number, raw in enumerate(raw_rows, start=1):
        if not isinstance(raw, dict):
            checked.append(RowInput(number, errors={"_row": ["not an object"]}))
            continue
        try:
            checked.append(RowInput(number, request=_ROW_SCHEMA.load(raw)))
        except ValidationError as exc:
            messages = exc.messages if isinstance(exc.messages, dict) else {"_row": exc.messages}
            checked.append(RowInput(number, errors=messages))
    return checked


class BulkRowSchema(Schema):
    row = fields.Integer(attribute="row_number", required=True)
    status = fields.String(
        required=True,
        metadata={
            "description": "invalid, refused, waiting or skipped until the row starts; then "
            "its workflow's status"
        },
    )
    workflow_id = fields.UUID(allow_none=True)
    error = fields.Dict(allow_none=True)


class BulkJobSchema(Schema):
    id = fields.UUID(required=True)
    workflow_type = fields.String(required=True)
    status = fields.Function(lambda job: job.status.value, required=True)
    total = fields.Integer(attribute="total_rows", required=True)
    invalid = fields.Integer(attribute="invalid_rows", required=True)
    max_in_flight = fields.Integer(required=True)
    not_before = fields.DateTime(allow_none=True)
    created_at = fields.DateTime(required=True)
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)


class BulkRowPageSchema(Schema):
    items = fields.List(fields.Nested(BulkRowSchema), required=True)
    total = fields.Integer(required=True)
    limit = fields.Integer(required=True)
    offset = fields.Integer(required=True)
    next_offset = fields.Integer(allow_none=True)


class BulkJobDetailSchema(Schema):
    job = fields.Nested(BulkJobSchema, required=True)
    counts = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(),
        required=True,
        metadata={"description": "rows by row status (before they start) and workflow status"},
    )
    throughput_per_second = fields.Float(allow_none=True)
    eta_seconds = fields.Float(allow_none=True)
    rows = fields.Method("_rows")

    def _rows(self, view: Any) -> dict[str, Any]:
        return BulkRowPageSchema().dump(
            {
                "items": view.rows,
                "total": view.rows_total,
                "limit": view.limit,
                "offset": view.offset,
                "next_offset": view.next_offset,
            }
        )


class BulkJobSummarySchema(Schema):
    job = fields.Nested(BulkJobSchema, required=True)
    counts = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    finished_rows = fields.Integer(
        required=True, metadata={"description": "rows that never started or whose workflow ended"}
    )


class BulkJobPageSchema(Schema):
    items = fields.List(
        fields.Nested(BulkJobSummarySchema), required=True, metadata={"description": "newest first"}
    )
    total = fields.Integer(required=True)
    limit = fields.Integer(required=True)
    offset = fields.Integer(required=True)
    next_offset = fields.Integer(allow_none=True)


class BulkJobListQuerySchema(RequestSchema):
    limit = int_field(load_default=20, minimum=1, maximum=100, strict=False)
    offset = int_field(load_default=0, strict=False)


class BulkJobQuerySchema(RequestSchema):
    limit = int_field(load_default=100, minimum=1, maximum=1000, strict=False)
    offset = int_field(load_default=0, strict=False)
    failed = fields.Boolean(
        load_default=False, metadata={"description": "only rows that did not complete"}
    )
