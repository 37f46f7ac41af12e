"""Steps that write our own database: customer, subscriber and billing service.

They are local steps: each runs inside the transaction that records its result, so a crash
leaves either both the row and the bookkeeping or neither. Every lookup is by the workflow id,
which makes a second delivery of the same step find the row the first one wrote.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, ClassVar

from sqlalchemy import delete, func, select, update

from orchestrator.errors import PermanentError
from orchestrator.models import (
    BillingService,
    BillingStatus,
    Customer,
    Subscriber,
    SubscriberStatus,
)
from orchestrator.step import Step, StepContext, StepResult
from orchestrator.subscribers import merged_resources

SYSTEM = "database"


def provisioned_resources(data: Mapping[str, Any]) -> dict[str, Any]:
    """Where a freshly provisioned subscriber lives in each system (from the steps' context)."""
    resources: dict[str, Any] = {
        "radius": {"username": data["username"], "group": data["plan"]["radius_group"]},
        "ipv4": {"address": data.get("ipv4_address")},
    }
    if data.get("netbox_ip"):
        resources["netbox"] = data["netbox_ip"]
    if data.get("netbox_ipv6"):
        resources["ipv6"] = data["netbox_ipv6"]
    elif data.get("static_ipv6_prefix"):
        resources["ipv6"] = {"delegated_prefix": data["static_ipv6_prefix"]}
    if data.get("onos_service"):
        resources["onos"] = data["onos_service"]
    if data.get("onu_serial"):
        resources["onu"] = {
            "serial": data["onu_serial"],
            "device_id": data.get("onu_device_id"),
            "disabled": False,
        }
    if data.get("cpe"):
        resources["cpe"] = data["cpe"]
    return resources


def _subscriber(ctx: StepContext) -> Subscriber:
    """The subscriber a lifecycle workflow acts on, locked (it was checked at submission)."""
    subscriber = ctx.require_session().scalar(
        select(Subscriber)
        .where(Subscriber.id == uuid.UUID(ctx.data["subscriber_id"]))
        .with_for_update()
    )
    if subscriber is None:
        raise PermanentError(
            f"subscriber {ctx.data['subscriber_id']} vanished", system=SYSTEM, operation="lock"
        )
    return subscriber


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
                    address=details.get("address"),
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
                # Chosen at submission, so steps running beside this one can name it (workflows
                # of provision_subscriber v1 did not choose one: a new id then).
                id=uuid.UUID(data["subscriber_id"]) if data.get("subscriber_id") else uuid.uuid4(),
                tenant_id=ctx.tenant_id,
                customer_id=uuid.UUID(data["customer_id"]),
                service_plan_id=data["plan"]["id"],
                username=data["username"],
                service_address=data["service_address"],
                onu_serial=data.get("onu_serial"),
                cpe_serial=data.get("cpe_serial"),
                ipv4_address=data.get("static_ipv4"),
                status=SubscriberStatus.PENDING,
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
                status=BillingStatus.ACTIVE,
                workflow_id=ctx.workflow_id,
            )
            session.add(billing)
        # Billing is the last step: the subscriber is now live everywhere.
        subscriber.status = SubscriberStatus.ACTIVE
        if ctx.data.get("ipv4_address"):
            subscriber.ipv4_address = ctx.data["ipv4_address"]
        subscriber.resources = provisioned_resources(ctx.data)
        if ctx.data.get("cpe"):  # found by its MAC, the CPE's serial is known only now
            subscriber.cpe_serial = ctx.data["cpe"]["serial"]
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
            subscriber.status = SubscriberStatus.PENDING
            subscriber.resources = {}


class SetSubscriberStatus(Step):
    """The lifecycle's commit point: the subscriber's status and what it now holds."""

    local: ClassVar[bool] = True

    def plan(self, ctx: StepContext) -> dict[str, Any]:
        return {
            "idempotency_key": ctx.idempotency_key,
            "from": ctx.data["subscriber_status"],
            "to": ctx.data["target_status"],
        }

    def execute(self, ctx: StepContext) -> StepResult:
        subscriber = _subscriber(ctx)
        subscriber.status = SubscriberStatus(ctx.intent["to"])
        changes: dict[str, Any] = {"radius": {"group": ctx.data["target_radius_group"]}}
        if "onu_disabled" in ctx.data and subscriber.resources.get("onu"):
            changes["onu"] = {"disabled": ctx.data["onu_disabled"]}
        subscriber.resources = merged_resources(subscriber.resources, changes)
        return StepResult(output={"status": ctx.intent["to"]})

    def compensate(self, ctx: StepContext) -> None:
        subscriber = _subscriber(ctx)
        subscriber.status = SubscriberStatus(ctx.intent["from"])
        subscriber.resources = ctx.data["resources"]  # as it was at submission


class ChangeBillingPlan(Step):
    """A plan change's commit point: billing and the subscriber follow the new plan."""

    local: ClassVar[bool] = True

    def plan(self, ctx: StepContext) -> dict[str, Any]:
        return {
            "idempotency_key": ctx.idempotency_key,
            "from": ctx.data["plan"]["id"],
            "to": ctx.data["new_plan"]["id"],
        }

    def execute(self, ctx: StepContext) -> StepResult:
        subscriber = _subscriber(ctx)
        self._set_plan(ctx, subscriber, ctx.intent["to"])
        changes: dict[str, Any] = {"radius": {"group": ctx.data["target_radius_group"]}}
        if ctx.data.get("onos_service") and "onos_service" in ctx.data:
            changes["onos"] = ctx.data["onos_service"]
        resources = merged_resources(subscriber.resources, changes)
        if ctx.data.get("ipv6_moves"):
            # replaced whole (keys of the old prefixes must not survive a merge)
            resources.pop("ipv6", None)
            if ctx.data.get("new_ipv6"):
                resources["ipv6"] = ctx.data["new_ipv6"]
        subscriber.resources = resources
        return StepResult(output={"service_plan_id": ctx.intent["to"]})

    def compensate(self, ctx: StepContext) -> None:
        subscriber = _subscriber(ctx)
        self._set_plan(ctx, subscriber, ctx.intent["from"])
        subscriber.resources = ctx.data["resources"]

    @staticmethod
    def _set_plan(ctx: StepContext, subscriber: Subscriber, plan_id: int) -> None:
        subscriber.service_plan_id = plan_id
        ctx.require_session().execute(
            update(BillingService)
            .where(
                BillingService.subscriber_id == subscriber.id,
                BillingService.status == BillingStatus.ACTIVE,
            )
            .values(service_plan_id=plan_id)
        )


class EndBilling(Step):
    """Deprovisioning begins where provisioning ended: the billing service stops."""

    local: ClassVar[bool] = True

    def execute(self, ctx: StepContext) -> StepResult:
        ended = (
            ctx.require_session()
            .execute(
                update(BillingService)
                .where(
                    BillingService.subscriber_id == uuid.UUID(ctx.data["subscriber_id"]),
                    BillingService.status == BillingStatus.ACTIVE,
                )
                .values(status=BillingStatus.ENDED, ended_at=func.now())
                .returning(BillingService.id)
            )
            .scalars()
            .all()
        )
        return StepResult(output={"ended": [str(i) for i in ended]})

    def compensate(self, ctx: StepContext) -> None:
        raise NotImplementedError("removal is forward recovery: never undone")


class MarkTerminated(Step):
    """Deprovisioning's end: the subscriber holds nothing anywhere; its row stays for history."""

    local: ClassVar[bool] = True

    def execute(self, ctx: StepContext) -> StepResult:
        subscriber = _subscriber(ctx)
        subscriber.status = SubscriberStatus.TERMINATED
        subscriber.terminated_at = func.now()
        subscriber.resources = {}
        return StepResult(output={"status": SubscriberStatus.TERMINATED.value})

    def compensate(self, ctx: StepContext) -> None:
        raise NotImplementedError("removal is forward recovery: never undone")
