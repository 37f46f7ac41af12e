"""Every row of a bulk job checked against the database before anything starts, set-wise.

A row that ``prepare`` would refuse when it starts (an unknown plan or customer, a username or
serial a live subscriber or another row already holds, no service address) is reported now, by
row and field, instead of hours later. These checks read in a handful of queries whatever the
number of rows; ``prepare`` stays the authority when each row starts (the database may have
changed since), and a row it refuses then is reported as ``refused``.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.models import Customer, ServicePlan, Subscriber, SubscriberStatus

FieldErrors = dict[str, list[str]]

#: The fields that name a unique resource: a live subscriber (through its column), or an
#: earlier row, may hold it. A subscriber keeps no CPE MAC (only the serial the MAC led to), so
#: a MAC is checked within the job only; the values are the schema's, so a MAC given in any
#: notation arrives here as aa:bb:cc:dd:ee:ff and two notations of one MAC are one value.
UNIQUE_FIELDS: dict[str, tuple[Any | None, str]] = {
    "username": (Subscriber.username, "username"),
    "onu_serial": (Subscriber.onu_serial, "ONU"),
    "cpe_serial": (Subscriber.cpe_serial, "CPE"),
    "cpe_mac": (None, "CPE MAC"),
}


def _chunks(values: Sequence[Any], size: int = 5000) -> Iterable[Sequence[Any]]:
    # Keeps each IN list to a size PostgreSQL plans well.
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _existing(session: Session, column: Any, values: Iterable[Any], *where: Any) -> set[Any]:
    found: set[Any] = set()
    for chunk in _chunks(sorted(set(values), key=str)):
        found.update(session.scalars(select(column).where(column.in_(chunk), *where)))
    return found


def check_rows(
    session: Session, tenant_id: str, requests: Mapping[int, Mapping[str, Any]]
) -> dict[int, FieldErrors]:
    """Errors by row number for the rows (already schema-valid) that could not start."""
    errors: dict[int, FieldErrors] = defaultdict(dict)

    plans = _existing(
        session,
        ServicePlan.id,
        (r["service_plan_id"] for r in requests.values()),
        ServicePlan.tenant_id == tenant_id,
    )
    customer_ids = {
        row: uuid.UUID(str(r["customer_id"]))
        for row, r in requests.items()
        if r.get("customer_id") is not None
    }
    customers = dict(
        session.execute(
            select(Customer.id, Customer.address).where(
                Customer.id.in_(set(customer_ids.values())), Customer.tenant_id == tenant_id
            )
        ).all()
    )
    for row, request in requests.items():
        if request["service_plan_id"] not in plans:
            errors[row]["service_plan_id"] = ["no such service plan"]
        customer_id = customer_ids.get(row)
        if customer_id is not None and customer_id not in customers:
            errors[row]["customer_id"] = ["no such customer"]
        address = (
            request.get("service_address")
            or (customers.get(customer_id) if customer_id else None)
            or (request.get("customer") or {}).get("address")
        )
        if not address and "customer_id" not in errors[row]:
            errors[row]["service_address"] = ["required when the customer has no address on file"]

    live = Subscriber.status != SubscriberStatus.TERMINATED
    for field, (column, what) in UNIQUE_FIELDS.items():
        given = {row: r[field] for row, r in requests.items() if r.get(field)}
        taken = _existing(session, column, given.values(), live) if column is not None else set()
        first_row: dict[str, int] = {}
        for row in sorted(given):
            value = given[row]
            if value in taken:
                errors[row][field] = [f"{what} {value} is already provisioned"]
            elif value in first_row:
                errors[row][field] = [f"{what} {value} is also in row {first_row[value]}"]
            else:
                first_row[value] = row
    return {row: fields for row, fields in errors.items() if fields}
