"""provision_subscriber: a new subscriber everywhere, or nowhere.

The graph (each step touches one system; arrows point at what a step needs first)::

    stage 0                      stage 1              stage 2
    create_customer ──────────▶ create_subscriber ──┐
    create_radius_account ──┐                       │
    allocate_ip ────────────┼─▶ assign_framed_ip ───┤
    allocate_ipv6_prefix ───┘                       │
    activate_onu ───────────────────────────────────┼──▶ create_billing_service
    configure_cpe ──────────────────────────────────┘

Why these edges: the subscriber row needs the customer; the framed addresses need the RADIUS
account, the NetBox address and the NetBox IPv6 prefixes (skipped on an IPv4-only plan or with
``static_ipv6_prefix``); billing is the commit point that makes the subscriber ``active``, so it
waits for everything. Nothing else needs anything: the ONU service, the CPE push, the RADIUS
account and the addresses only need the request (the subscriber's id is chosen at submission, so
the CPE tag can name it before the row exists). The critical path is activate_onu (ONOS, the
slowest system) then billing.

Versions: v1 is the sequential chain that ran before the graph, v2 the graph without IPv6, v3
this one; all stay registered for workflows started on them.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator import plans
from orchestrator.definitions import StepDefinition, WorkflowDefinition, registry
from orchestrator.errors import ConflictError, ValidationError
from orchestrator.models import Customer, ServicePlan, Subscriber, SubscriberStatus, Workflow
from orchestrator.workflows.base import Claims, Prepared, WorkflowType

NAME = "provision_subscriber"

STEPS = (
    # Roots first, slowest first: their messages are published (and picked up) in this order,
    # so the critical path (ONOS) starts before the quick steps queue in front of it.
    StepDefinition(
        name="activate_onu",
        system="access",
        task="tasks.access.activate_onu",
        compensation="tasks.access.deactivate_onu",
        # ONOS only queues the request; confirmation polls programmed-subscribers.
        timeout=60,
    ),
    StepDefinition(
        name="configure_cpe",
        system="genieacs",
        task="tasks.genieacs.configure_cpe",
        compensation="tasks.genieacs.unconfigure_cpe",
        # A connection request makes GenieACS wait for the CPE's session.
        timeout=60,
    ),
    StepDefinition(
        name="create_radius_account",
        system="radius",
        task="tasks.radius.create_account",
        compensation="tasks.radius.delete_account",
        timeout=15,
    ),
    StepDefinition(
        name="allocate_ip",
        system="netbox",
        task="tasks.netbox.allocate_ip",
        compensation="tasks.netbox.release_ip",
        timeout=30,
    ),
    StepDefinition(
        name="create_customer",
        system="database",
        task="tasks.database.create_customer",
        compensation="tasks.database.delete_customer",
        timeout=15,
    ),
    StepDefinition(
        name="create_subscriber",
        system="database",
        task="tasks.database.create_subscriber",
        compensation="tasks.database.delete_subscriber",
        depends_on=("create_customer",),
        timeout=15,
    ),
    StepDefinition(
        name="assign_framed_ip",
        system="radius",
        task="tasks.radius.assign_framed_ip",
        compensation="tasks.radius.clear_framed_ip",
        depends_on=("create_radius_account", "allocate_ip"),
        timeout=15,
    ),
    StepDefinition(
        name="create_billing_service",
        system="database",
        task="tasks.database.create_billing_service",
        compensation="tasks.database.delete_billing_service",
        depends_on=("create_subscriber", "assign_framed_ip", "activate_onu", "configure_cpe"),
        timeout=15,
    ),
)

#: Version 1, the sequential chain that ran before the graph: kept while workflows started on
#: it may still run, retry or roll back (its address step also wrote RADIUS's framed address).
V1_STEPS = (
    replace(STEPS[4]),  # create_customer
    replace(STEPS[5], depends_on=("create_customer",)),  # create_subscriber
    replace(STEPS[2], depends_on=("create_subscriber",)),  # create_radius_account
    replace(
        STEPS[3],
        task="tasks.netbox.allocate_ip_and_framed_ip",
        depends_on=("create_radius_account",),
    ),
    replace(STEPS[0], depends_on=("create_subscriber",)),  # activate_onu
    replace(STEPS[1], depends_on=("create_subscriber",)),  # configure_cpe
    replace(STEPS[7], depends_on=("allocate_ip", "activate_onu", "configure_cpe")),
)
registry.register(WorkflowDefinition(name=NAME, version=1, steps=V1_STEPS))
#: Version 2, the graph before IPv6: kept for workflows started on it.
registry.register(WorkflowDefinition(name=NAME, version=2, steps=STEPS))

V3_STEPS = (
    *STEPS[:4],
    StepDefinition(
        name="allocate_ipv6_prefix",
        system="netbox",
        task="tasks.netbox.allocate_ipv6_prefix",
        compensation="tasks.netbox.release_ipv6_prefix",
        timeout=30,
    ),
    STEPS[4],
    STEPS[5],
    replace(STEPS[6], depends_on=("create_radius_account", "allocate_ip", "allocate_ipv6_prefix")),
    STEPS[7],
)
DEFINITION = registry.register(WorkflowDefinition(name=NAME, version=3, steps=V3_STEPS))


def generate_password() -> str:
    return secrets.token_urlsafe(12)


def derive_username() -> str:
    # No realm: Debian's default filter_username rejects user@realm without a dot.
    return f"ppp-{secrets.token_hex(5)}"


class ProvisionSubscriber(WorkflowType):
    name = NAME

    def prepare(self, session: Session, tenant_id: str, request: Mapping[str, Any]) -> Prepared:
        plan = plans.plan_for_workflow(
            session, tenant_id, request["service_plan_id"], "service_plan_id"
        )
        customer = self._customer(session, tenant_id, request.get("customer_id"))
        username = request.get("username") or derive_username()
        onu_serial = request.get("onu_serial")
        self._check_free(session, username, onu_serial, request.get("cpe_serial"))
        service_address = (
            request.get("service_address")
            or (customer.address if customer else None)
            or (request.get("customer") or {}).get("address")
        )
        if not service_address:
            raise ValidationError(
                "no service address",
                {"service_address": ["required when the customer has no address on file"]},
            )
        # Chosen now, so steps that run before the row exists (the CPE's tag) can name it.
        subscriber_id = uuid.uuid4()
        input_data = {
            key: (str(value) if isinstance(value, uuid.UUID) else value)
            for key, value in request.items()
            if key != "password" and value is not None
        }
        input_data.update(
            username=username,
            service_address=service_address,
            plan=plans.snapshot(plan),
            subscriber_id=str(subscriber_id),
        )
        return Prepared(
            input=input_data,
            subscriber_id=subscriber_id,
            secrets={"password": request.get("password") or generate_password()},
            claims=self.claims(input_data),
        )

    @staticmethod
    def _check_free(
        session: Session, username: str, onu_serial: str | None, cpe_serial: str | None
    ) -> None:
        """No live subscriber holds the username, the ONU or the CPE (a terminated one does
        not: its row stays for history)."""
        live = Subscriber.status != SubscriberStatus.TERMINATED
        if session.scalar(select(Subscriber.id).where(Subscriber.username == username, live)):
            raise ConflictError(f"username {username!r} is already provisioned")
        if onu_serial and session.scalar(
            select(Subscriber.id).where(Subscriber.onu_serial == onu_serial, live)
        ):
            raise ConflictError(f"ONU {onu_serial} already serves a subscriber")
        if cpe_serial and session.scalar(
            select(Subscriber.id).where(Subscriber.cpe_serial == cpe_serial, live)
        ):
            raise ConflictError(f"CPE {cpe_serial} already serves a subscriber")

    @staticmethod
    def _customer(session: Session, tenant_id: str, customer_id: Any) -> Customer | None:
        if customer_id is None:
            return None
        customer = session.scalar(
            select(Customer).where(
                Customer.id == uuid.UUID(str(customer_id)), Customer.tenant_id == tenant_id
            )
        )
        if customer is None:
            raise ValidationError("unknown customer", {"customer_id": ["no such customer"]})
        return customer

    def claims(self, input_data: Mapping[str, Any]) -> Claims:
        claims = [("username", input_data["username"]), ("subscriber", input_data["subscriber_id"])]
        if input_data.get("onu_serial"):
            claims.append(("onu_serial", input_data["onu_serial"]))
        # Two provisionings pushing credentials to one CPE would overwrite each other.
        if input_data.get("cpe_serial"):
            claims.append(("cpe_serial", input_data["cpe_serial"]))
        elif input_data.get("cpe_mac"):
            claims.append(("cpe_mac", input_data["cpe_mac"]))
        return tuple(claims)

    def check_retry(self, session: Session, workflow: Workflow) -> None:
        """A new run provisions on the plan it was submitted with; it must still exist."""
        plan_id = workflow.input["plan"]["id"]
        found = session.scalar(
            select(ServicePlan.id)
            .where(ServicePlan.id == plan_id, ServicePlan.tenant_id == workflow.tenant_id)
            .with_for_update(read=True)
        )
        if found is None:
            raise ConflictError(f"service plan {plan_id} of this workflow no longer exists")
        # Another provisioning may have taken the username, ONU or CPE since: a new run would
        # then adopt (and its rollback remove) what belongs to that subscriber.
        data = workflow.input
        self._check_free(session, data["username"], data.get("onu_serial"), data.get("cpe_serial"))


WORKFLOW = ProvisionSubscriber()
