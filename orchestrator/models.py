"""The orchestrator's tables. Every row carries a tenant id; statuses keep operators' names."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Annotated, Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from orchestrator.tracing import trace_id_of

# Stable constraint names, so migrations can address every constraint by name.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

uuid_pk = Annotated[
    uuid.UUID, mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
]
tenant_fk = Annotated[str, mapped_column(String(64), ForeignKey("tenants.id"), index=True)]
created_at = Annotated[
    datetime, mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)
]
json_dict = Annotated[dict[str, Any], mapped_column(JSONB, nullable=False, default=dict)]
json_or_null = Annotated[dict[str, Any] | None, mapped_column(JSONB, nullable=True)]
tstz_or_null = Annotated[datetime | None, mapped_column(DateTime(timezone=True), nullable=True)]


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _enum(cls: type[enum.Enum]) -> Enum:
    # Stored as VARCHAR + CHECK: adding a status later is a one-line migration, not an
    # ALTER TYPE that cannot run inside a transaction.
    return Enum(
        cls,
        native_enum=False,
        create_constraint=True,
        length=32,
        values_callable=lambda e: [m.value for m in e],
        name=cls.__name__.lower(),
    )


class WorkflowStatus(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    ROLLING_BACK = "rolling_back"
    ROLLED_BACK = "rolled_back"  # failed, fully compensated
    COMPENSATED = "compensated"  # cancelled, fully compensated
    FAILED = "failed"  # compensation incomplete (or a forward recovery stopped): needs a person

    @classmethod
    def forward(cls) -> frozenset[WorkflowStatus]:
        """Statuses in which steps may still start."""
        return frozenset({cls.PENDING, cls.RUNNING})

    @classmethod
    def active(cls) -> frozenset[WorkflowStatus]:
        """Statuses of a workflow that is not finished."""
        return frozenset({cls.PENDING, cls.RUNNING, cls.ROLLING_BACK})

    @classmethod
    def terminal(cls) -> frozenset[WorkflowStatus]:
        return frozenset(set(cls) - cls.active())

    @property
    def is_terminal(self) -> bool:
        return self not in WorkflowStatus.active()


class StepStatus(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"
    COMPENSATING = "compensating"
    COMPENSATED = "compensated"
    COMPENSATION_FAILED = "compensation_failed"

    @classmethod
    def done(cls) -> frozenset[StepStatus]:
        """A step in one of these lets the steps that depend on it run."""
        return frozenset({cls.COMPLETED, cls.SKIPPED})

    @classmethod
    def undone(cls) -> frozenset[StepStatus]:
        """A step in one of these has been dealt with by the rollback, well or not."""
        return frozenset({cls.COMPENSATED, cls.COMPENSATION_FAILED})


class SubscriberStatus(enum.StrEnum):
    PENDING = "pending"  # being provisioned
    ACTIVE = "active"
    SUSPENDED = "suspended"
    TERMINATED = "terminated"


class BillingStatus(enum.StrEnum):
    ACTIVE = "active"
    ENDED = "ended"


class Role(enum.StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"


class WebhookEventType(enum.StrEnum):
    """What a webhook endpoint can subscribe to."""

    WORKFLOW_COMPLETED = "workflow.completed"
    WORKFLOW_ROLLED_BACK = "workflow.rolled_back"
    WORKFLOW_COMPENSATED = "workflow.compensated"
    WORKFLOW_FAILED = "workflow.failed"
    BULK_JOB_FINISHED = "bulk_job.finished"  # a bulk job completed or was cancelled

    @classmethod
    def for_workflow(cls, status: WorkflowStatus) -> WebhookEventType:
        return cls(f"workflow.{status.value}")


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"  # waiting for its (next) attempt, or being attempted
    DELIVERED = "delivered"  # the endpoint answered 2xx
    FAILED = "failed"  # given up: the retry window passed, or the endpoint was disabled


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[created_at]


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[uuid_pk]
    tenant_id: Mapped[tenant_fk]
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[Role] = mapped_column(_enum(Role))
    # Only a SHA-256 of the key is stored; the key itself is shown once, at creation.
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[created_at]
    revoked_at: Mapped[tstz_or_null]


class ServicePlan(Base):
    __tablename__ = "service_plans"
    __table_args__ = (UniqueConstraint("tenant_id", "name", name="uq_service_plans_tenant_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[tenant_fk]
    name: Mapped[str] = mapped_column(String(100))
    download_mbps: Mapped[int] = mapped_column(Integer)
    upload_mbps: Mapped[int] = mapped_column(Integer)
    # FreeRADIUS groups are global to the RADIUS server, so the group name is unique overall.
    radius_group: Mapped[str] = mapped_column(String(64), unique=True)
    # Network fields: the NetBox prefix addresses come from, the ONOS service tags and profile.
    ipv4_prefix: Mapped[str | None] = mapped_column(String(64), nullable=True)
    s_tag: Mapped[int | None] = mapped_column(Integer, nullable=True)
    c_tag: Mapped[int | None] = mapped_column(Integer, nullable=True)
    tech_profile_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # The RADIUS group a suspended subscriber is moved to; None: the built-in reject group.
    suspended_radius_group: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # IPv6 (all None: an IPv4-only plan): the NetBox prefix each subscriber's delegated prefix
    # (ipv6_delegated_length long) comes from, and the one its WAN /64 comes from, if any.
    ipv6_delegation_pool: Mapped[str | None] = mapped_column(String(64), nullable=True)
    ipv6_delegated_length: Mapped[int | None] = mapped_column(Integer, nullable=True)
    ipv6_wan_pool: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[created_at]


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[uuid_pk]
    tenant_id: Mapped[tenant_fk]
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # Where the customer lives; a subscriber's service address defaults to it.
    address: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Set when a workflow created the customer: its compensation deletes only such rows.
    created_by_workflow_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), nullable=True, unique=True
    )
    created_at: Mapped[created_at]


class Subscriber(Base):
    __tablename__ = "subscribers"
    __table_args__ = (
        # RADIUS usernames are global to the RADIUS server, and an ONU serves one subscriber;
        # a terminated subscriber keeps its row (history) but frees both for reuse.
        Index(
            "uq_subscribers_username_live",
            "username",
            unique=True,
            postgresql_where=text("status <> 'terminated'"),
        ),
        Index(
            "uq_subscribers_onu_serial_live",
            "onu_serial",
            unique=True,
            postgresql_where=text("status <> 'terminated'"),
        ),
        # Every provisioning with a CPE asks whether a live subscriber holds it.
        Index(
            "ix_subscribers_cpe_serial_live",
            "cpe_serial",
            postgresql_where=text("status <> 'terminated'"),
        ),
        Index("ix_subscribers_tenant_created", "tenant_id", "created_at"),
    )

    id: Mapped[uuid_pk]
    tenant_id: Mapped[tenant_fk]
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"), index=True)
    service_plan_id: Mapped[int] = mapped_column(ForeignKey("service_plans.id"), index=True)
    username: Mapped[str] = mapped_column(String(64))
    service_address: Mapped[str] = mapped_column(Text)
    onu_serial: Mapped[str | None] = mapped_column(String(32), nullable=True)
    cpe_serial: Mapped[str | None] = mapped_column(String(64), nullable=True)
    ipv4_address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[SubscriberStatus] = mapped_column(
        _enum(SubscriberStatus), default=SubscriberStatus.PENDING
    )
    # Where it lives in each system (RADIUS group, NetBox address, ONOS service, ONU, CPE),
    # written by the workflow that changed it; lifecycle workflows act on what it says.
    resources: Mapped[json_dict]
    # The provisioning workflow that created it (it also owns the RADIUS account).
    workflow_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), unique=True)
    created_at: Mapped[created_at]
    terminated_at: Mapped[tstz_or_null]


class BillingService(Base):
    __tablename__ = "billing_services"

    id: Mapped[uuid_pk]
    tenant_id: Mapped[tenant_fk]
    subscriber_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("subscribers.id"), index=True)
    service_plan_id: Mapped[int] = mapped_column(ForeignKey("service_plans.id"))
    status: Mapped[BillingStatus] = mapped_column(
        _enum(BillingStatus), default=BillingStatus.ACTIVE
    )
    workflow_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), unique=True)
    created_at: Mapped[created_at]
    ended_at: Mapped[tstz_or_null]


class Workflow(Base):
    __tablename__ = "workflows"
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key", name="uq_workflows_tenant_idempotency"),
        Index("ix_workflows_tenant_created", "tenant_id", "created_at"),
        Index("ix_workflows_status_updated", "status", "updated_at"),
        # A bulk job's counts by status and its rows in flight, without a scan of history.
        Index("ix_workflows_bulk_job_status", "bulk_job_id", "status"),
    )

    id: Mapped[uuid_pk]
    tenant_id: Mapped[tenant_fk]
    workflow_type: Mapped[str] = mapped_column(String(64))
    # The subscriber the workflow acts on (set at submission; a provisioning names the row
    # it is about to create).
    subscriber_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), nullable=True, index=True
    )
    definition_version: Mapped[int] = mapped_column(Integer)
    status: Mapped[WorkflowStatus] = mapped_column(
        _enum(WorkflowStatus), default=WorkflowStatus.PENDING
    )
    # Which execution this is: a retry of a rolled-back workflow starts run + 1.
    run: Mapped[int] = mapped_column(Integer, default=1)
    # Bumped by every re-drive (the sweeper's, an operator's retry): step messages carry the
    # generation they were published in, and an older copy steps aside without acting.
    generation: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    input: Mapped[json_dict]
    context: Mapped[json_dict]
    output: Mapped[json_dict]
    error: Mapped[json_or_null]
    # Secrets the steps need (the PPPoE password), Fernet-encrypted; never in input/context.
    secrets: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    request_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    api_key_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), nullable=True)
    # The bulk job that started this workflow: its messages yield to interactive ones, and its
    # end lets the job start its next row.
    bulk_job_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("bulk_jobs.id", ondelete="SET NULL"), nullable=True
    )
    cancel_requested_at: Mapped[tstz_or_null]
    deadline_at: Mapped[tstz_or_null]
    created_at: Mapped[created_at]
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
    started_at: Mapped[tstz_or_null]
    finished_at: Mapped[tstz_or_null]
    # The trace every step and undo of this workflow joins, whoever publishes its messages
    # (orchestrator/tracing): a W3C traceparent (version 00, 55 characters), set at creation
    # while tracing is on, else null.
    traceparent: Mapped[str | None] = mapped_column(String(55), nullable=True)

    steps: Mapped[list[WorkflowStep]] = relationship(
        back_populates="workflow", order_by="WorkflowStep.position", lazy="selectin"
    )

    @property
    def trace_id(self) -> str | None:
        return trace_id_of(self.traceparent)


class WorkflowStep(Base):
    __tablename__ = "workflow_steps"
    __table_args__ = (UniqueConstraint("workflow_id", "name", name="uq_workflow_steps_name"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    workflow_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workflows.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(64))
    system: Mapped[str] = mapped_column(String(32))
    status: Mapped[StepStatus] = mapped_column(_enum(StepStatus), default=StepStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    compensation_attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Intent before effect: how to find what this step is about to create, written and
    # committed before the external call.
    intent: Mapped[json_or_null]
    output: Mapped[json_or_null]
    compensation: Mapped[json_or_null]
    error: Mapped[json_or_null]
    # When a retry (forward or undo) scheduled after a failed attempt is due: until then the
    # workflow is waiting, not lost, however quiet it is.
    retry_due_at: Mapped[tstz_or_null]
    lease_owner: Mapped[str | None] = mapped_column(String(200), nullable=True)
    lease_expires_at: Mapped[tstz_or_null]
    started_at: Mapped[tstz_or_null]
    finished_at: Mapped[tstz_or_null]
    compensated_at: Mapped[tstz_or_null]

    workflow: Mapped[Workflow] = relationship(back_populates="steps")


class WorkflowEvent(Base):
    """Append-only audit trail: every transition with its time, attempt and error."""

    __tablename__ = "workflow_events"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    workflow_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workflows.id", ondelete="CASCADE"), index=True
    )
    tenant_id: Mapped[tenant_fk]
    run: Mapped[int] = mapped_column(Integer)
    step_name: Mapped[str | None] = mapped_column(String(64), nullable=True)
    kind: Mapped[str] = mapped_column(String(48))
    from_status: Mapped[str | None] = mapped_column(String(32), nullable=True)
    to_status: Mapped[str | None] = mapped_column(String(32), nullable=True)
    attempt: Mapped[int | None] = mapped_column(Integer, nullable=True)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    details: Mapped[json_or_null]
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.clock_timestamp(), nullable=False
    )


class ResourceClaim(Base):
    """A unique resource (a RADIUS username, an ONU serial) held by an in-flight workflow.

    Two concurrent submissions for the same subscriber collide here, before any step runs;
    the claim is released when the workflow ends.
    """

    __tablename__ = "resource_claims"

    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str] = mapped_column(String(200), primary_key=True)
    workflow_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workflows.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[created_at]


class WebhookEndpoint(Base):
    """Where a tenant wants its events POSTed, signed with a secret only this row holds."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[uuid_pk]
    tenant_id: Mapped[tenant_fk]
    url: Mapped[str] = mapped_column(String(2048))
    # Event type names (WebhookEventType values); a list, filtered in Python per tenant.
    events: Mapped[list[str]] = mapped_column(JSONB, nullable=False)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # The signing secret, Fernet-sealed (orchestrator.vault): the app must read it to sign,
    # so it cannot be hashed like an API key; it is shown once, at creation.
    secret: Mapped[bytes] = mapped_column(LargeBinary)
    disabled_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    disabled_at: Mapped[tstz_or_null]
    created_at: Mapped[created_at]
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class WebhookDelivery(Base):
    """The outbox: one event for one endpoint, written in the transaction that caused it, and
    the log of its attempts. Its id is the event id receivers de-duplicate by."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_endpoint_created", "endpoint_id", "created_at"),
        Index("ix_webhook_deliveries_status_next_attempt", "status", "next_attempt_at"),
    )

    id: Mapped[uuid_pk]
    endpoint_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE")
    )
    tenant_id: Mapped[tenant_fk]
    event_type: Mapped[str] = mapped_column(String(64))
    workflow_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), nullable=True)
    # The body as it was when the event happened (no secret, no password: built from the
    # workflow's status, output and error, never its input).
    payload: Mapped[json_dict]
    status: Mapped[DeliveryStatus] = mapped_column(
        _enum(DeliveryStatus), default=DeliveryStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # When the next attempt is due; while an attempt is in flight, when it counts as lost.
    next_attempt_at: Mapped[tstz_or_null]
    created_at: Mapped[created_at]
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
    delivered_at: Mapped[tstz_or_null]


class BulkJobStatus(enum.StrEnum):
    SCHEDULED = "scheduled"  # waiting for not_before
    RUNNING = "running"  # starting rows, or waiting for the ones started to end
    COMPLETED = "completed"  # every valid row started and ended (each its own outcome)
    CANCELLED = "cancelled"  # no row starts any more; those running were cancelled

    @property
    def is_finished(self) -> bool:
        return self in (BulkJobStatus.COMPLETED, BulkJobStatus.CANCELLED)


class BulkRowStatus(enum.StrEnum):
    # Not "pending": a row's statuses and its workflow's share one list of counts.
    WAITING = "waiting"  # valid, not started yet
    INVALID = "invalid"  # failed validation: never starts
    REFUSED = "refused"  # valid, but refused when it was to start (its username is taken...)
    STARTED = "started"  # a workflow runs it: the workflow's status is the row's outcome
    SKIPPED = "skipped"  # the job was cancelled before the row started


class BulkJob(Base):
    """Many provisionings submitted as one: started a window at a time, newest rows last."""

    __tablename__ = "bulk_jobs"
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key", name="uq_bulk_jobs_tenant_idempotency"),
        Index("ix_bulk_jobs_status_not_before", "status", "not_before"),
        Index("ix_bulk_jobs_tenant_created", "tenant_id", "created_at"),
    )

    id: Mapped[uuid_pk]
    tenant_id: Mapped[tenant_fk]
    workflow_type: Mapped[str] = mapped_column(String(64))
    status: Mapped[BulkJobStatus] = mapped_column(_enum(BulkJobStatus))
    total_rows: Mapped[int] = mapped_column(Integer)
    # How many of its workflows may run at once (BULK_WINDOW unless the job says).
    max_in_flight: Mapped[int] = mapped_column(Integer)
    invalid_rows: Mapped[int] = mapped_column(Integer, default=0)
    not_before: Mapped[tstz_or_null]
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    request_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    api_key_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), nullable=True)
    created_at: Mapped[created_at]
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
    started_at: Mapped[tstz_or_null]
    finished_at: Mapped[tstz_or_null]
    cancel_requested_at: Mapped[tstz_or_null]


class BulkJobRow(Base):
    """One row of a bulk job: its validated request (no password: that is sealed apart)."""

    __tablename__ = "bulk_job_rows"
    __table_args__ = (
        # The feeder takes the next pending rows in order.
        Index("ix_bulk_job_rows_job_status_row", "job_id", "status", "row_number"),
    )

    job_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("bulk_jobs.id", ondelete="CASCADE"), primary_key=True
    )
    row_number: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[BulkRowStatus] = mapped_column(_enum(BulkRowStatus))
    request: Mapped[json_or_null]
    # The row's PPPoE password (when it gave one), Fernet-encrypted like a workflow's secrets.
    secrets: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    workflow_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("workflows.id", ondelete="SET NULL"), nullable=True, index=True
    )
    # Invalid: {"fields": {...}}; refused: {"message": ...}.
    error: Mapped[json_or_null]
