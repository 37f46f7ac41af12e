"""Steps that write our own database: customer, subscriber and billing service.

They are local steps: each runs inside the transaction that records its result, so a crash
leaves either both the row and the bookkeeping or neither. Every lookup is by the workflow id,
which makes a second delivery of the same step find the row the first one wrote.
"""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

from sqlalchemy import delete, select

from orchestrator.errors import PermanentError
from orchestrator.models import BillingService, Customer, Subscriber
from orchestrator.step import Step, StepContext, StepResult

SYSTEM = "database"


class CreateCustomer(Step):
    local: ClassVar[bool] = True

    def execute(self, ctx: StepContext) -> StepResult:
        session = ctx.require_session()
        given = ctx.data.get("customer_id")
        if given:
            customer = session.scalar(
                select(Customer).where(
                    Customer.id == uuid.UUID(given), Customer.tenant_id == ctx.tenant_id
                )
            )
            if customer is None:
                raise PermanentError(
                    f"customer {given} does not exist", system=SYSTEM, operation="link_customer"
                )
            created = False
        else:
            customer = session.scalar(
                select(Customer).where(Customer.created_by_workflow_id == ctx.workflow_id)
            )
            created = True
            if customer is None:
                details: dict[str, Any] = ctx.data["customer"]
                customer = Customer(
                    tenant_id=ctx.tenant_id,
                    first_name=details["first_name"],
                    last_name=details["last_name"],
                    email=details["email"],
                    phone=details.get("phone"),
                    created_by_workflow_id=ctx.workflow_id,
                )
                session.add(customer)
                session.flush()
        customer_id = str(customer.id)
        return StepResult(
            output={"customer_id": customer_id, "created": created},
            compensation={"customer_id": customer_id, "created": created},
            context={"customer_id": customer_id},
            workflow_output={"customer_id": customer_id},
        )

    def compensate(self, ctx: StepContext) -> None:
        # Only a customer this workflow created is deleted; a linked one is left alone.
        ctx.require_session().execute(
            delete(Customer).where(Customer.created_by_workflow_id == ctx.workflow_id)
        )


class CreateSubscriber(Step):
    local: ClassVar[bool] = True

    def execute(self, ctx: StepContext) -> StepResult:
        session = ctx.require_session()
        subscriber = session.scalar(
            select(Subscriber).where(Subscriber.workflow_id == ctx.workflow_id)
        )
        if subscriber is None:
            data = ctx.data
            subscriber = Subscriber(
                tenant_id=ctx.tenant_id,
                customer_id=uuid.UUID(data["customer_id"]),
                service_plan_id=data["plan"]["id"],
                username=data["username"],
                service_address=data["service_address"],
                onu_serial=data.get("onu_serial"),
                cpe_serial=data.get("cpe_serial"),
                ipv4_address=data.get("static_ipv4"),
                status="pending",
                workflow_id=ctx.workflow_id,
            )
            session.add(subscriber)
            session.flush()
        subscriber_id = str(subscriber.id)
        return StepResult(
            output={"subscriber_id": subscriber_id, "username": subscriber.username},
            compensation={"subscriber_id": subscriber_id},
            context={"subscriber_id": subscriber_id},
            workflow_output={"subscriber_id": subscriber_id},
        )

    def compensate(self, ctx: StepContext) -> None:
        ctx.require_session().execute(
            delete(Subscriber).where(Subscriber.workflow_id == ctx.workflow_id)
        )


class CreateBillingService(Step):
    local: ClassVar[bool] = True

    def execute(self, ctx: StepContext) -> StepResult:
        session = ctx.require_session()
        billing = session.scalar(
            select(BillingService).where(BillingService.workflow_id == ctx.workflow_id)
        )
        subscriber = session.get(Subscriber, uuid.UUID(ctx.data["subscriber_id"]))
        if subscriber is None:
            raise PermanentError(
                "subscriber row vanished before billing", system=SYSTEM, operation="billing"
            )
        if billing is None:
            billing = BillingService(
                tenant_id=ctx.tenant_id,
                subscriber_id=subscriber.id,
                service_plan_id=ctx.data["plan"]["id"],
                status="active",
                workflow_id=ctx.workflow_id,
            )
            session.add(billing)
        # Billing is the last step: the subscriber is now live everywhere.
        subscriber.status = "active"
        if ctx.data.get("ipv4_address"):
            subscriber.ipv4_address = ctx.data["ipv4_address"]
        session.flush()
        billing_id = str(billing.id)
        return StepResult(
            output={"billing_service_id": billing_id},
            compensation={"billing_service_id": billing_id},
            workflow_output={"billing_service_id": billing_id},
        )

    def compensate(self, ctx: StepContext) -> None:
        session = ctx.require_session()
        session.execute(delete(BillingService).where(BillingService.workflow_id == ctx.workflow_id))
        subscriber = session.scalar(
            select(Subscriber).where(Subscriber.workflow_id == ctx.workflow_id)
        )
        if subscriber is not None:
            subscriber.status = "pending"
