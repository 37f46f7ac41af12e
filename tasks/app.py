"""The one Celery app. Importing it registers every task module and checks the definitions."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from celery import Celery
from celery.app.amqp import AMQP
from celery.signals import beat_init, worker_init, worker_process_init, worker_process_shutdown
from kombu import Connection, Queue

from orchestrator import tracing
from orchestrator.bulk import feeder as bulk_feeder
from orchestrator.config import get_settings
from orchestrator.definitions import registry
from orchestrator.queues import QUEUES
from orchestrator.webhooks import outbox as webhook_outbox
from orchestrator.workflows import workflow_types  # noqa: F401 - registers the definitions
from tasks.dispatch import publish_deliveries, publish_feed

if TYPE_CHECKING:
    from celery.worker import WorkController

TASK_MODULES = (
    "tasks.saga",
    "tasks.database",
    "tasks.radius",
    "tasks.netbox",
    "tasks.access",
    "tasks.genieacs",
    "tasks.nas",
    "tasks.webhooks",
    "tasks.reconcile",
    "tasks.bulk",
)

# Longest a single step attempt may take, hard limit included; see visibility_timeout below.
MAX_STEP_SECONDS = 300


class BrokerConnection(Connection):
    """kombu's Connection, minus the stale default channel that kills a worker on reconnect.

    When the broker goes away, the worker's consumer first ``collect()``s its connection and
    then ``close()``s it (celery.worker.consumer.Consumer.on_connection_error_after_connected).
    kombu closes the default channel in both calls but never forgets it. If the first close
    stopped halfway (the Redis channel re-reads its in-flight BRPOP reply while closing, which
    raises on a dead socket whenever the loss surfaced on another socket first, e.g. the
    pidbox's), the second close runs the channel's restore of unacknowledged messages (every
    acks_late task still running) after collect() detached the transport (``client = None``):
    ``'NoneType' object has no attribute 'hostname'`` in kombu's Redis ``_connparams``, which
    is no connection error, so Celery calls it unrecoverable and the worker exits.
    Forgetting the channel once closed skips that second close; the running tasks still
    acknowledge through the channel they came on, and the broker's restore of unacknowledged
    messages (visibility_timeout) or our sweeper covers what a restart lost.
    """

    def _do_close_self(self) -> None:
        try:
            super()._do_close_self()
        finally:
            self._default_channel = None


class BrokerAMQP(AMQP):
    # Every connection the app opens (the worker's consumer, publishers) is a BrokerConnection.
    Connection = BrokerConnection
    BrokerConnection = BrokerConnection


def create_celery() -> Celery:
    settings = get_settings()
    app = Celery(
        "orchestrator",
        broker=settings.broker_url,
        include=list(TASK_MODULES),
        amqp=BrokerAMQP,
    )
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        # Step results live in PostgreSQL; Celery's result backend would be a second truth.
        task_ignore_result=True,
        # Crash safety: a message is acknowledged only after its task finished, and a task
        # whose worker process died goes back to the queue instead of vanishing.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # In KiB; None never replaces a child for its memory (see Settings).
        worker_max_memory_per_child=settings.worker_max_memory_mb * 1024 or None,
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            # Redis redelivers an unacknowledged message after this long. It must outlast the
            # longest step attempt and the longest retry countdown (a countdown message is held
            # unacknowledged by the worker), or a healthy step is delivered twice.
            "visibility_timeout": max(3600, int(settings.retry_backoff_max) * 4),
        },
        task_routes={f"tasks.{queue}.*": {"queue": queue} for queue in QUEUES},
        # A worker started without -Q consumes every queue; `-Q access` serves one system.
        task_queues=[Queue(queue) for queue in QUEUES],
        task_default_queue="saga",
        # Flower needs events; sent events let it show queued tasks too.
        worker_send_task_events=True,
        task_send_sent_event=True,
        task_track_started=True,
        beat_schedule={
            "sweep-stalled-workflows": {
                "task": "tasks.saga.sweep",
                "schedule": settings.sweep_interval,
            },
            "start-due-bulk-jobs": {
                "task": "tasks.bulk.start_due",
                "schedule": settings.sweep_interval,
            },
            "redrive-lost-webhook-deliveries": {
                "task": "tasks.webhooks.sweep",
                "schedule": settings.sweep_interval,
            },
            # Read-only: orphan and missing counts to the log and /metrics (`reconcile --fix`
            # is an operator's decision, never a timer's).
            "reconcile-orphans": {"task": "tasks.reconcile.check", "schedule": 3600.0},
        },
    )
    # Events a workflow's end writes to the outbox are published through this app once their
    # transaction commits, in whichever process (worker or web) ended it.
    webhook_outbox.publish_with(partial(publish_deliveries, app))
    # Likewise the trigger that lets a bulk job start its next row when one of its ends.
    bulk_feeder.publish_with(partial(publish_feed, app=app))
    return app


app = create_celery()


@worker_init.connect
@beat_init.connect
def _verify_definitions(sender: object = None, **_: object) -> None:
    # Runs in every worker once the task modules are imported: a definition that names a
    # task nobody registered stops the worker at start, not a subscriber at step five.
    registry.verify_tasks(lambda name: name in app.tasks)


# Traces (orchestrator/tracing), started where tasks run and before the first one: the SDK's
# export thread does not survive a fork, so a prefork pool's children start their own (and
# its parent, which runs no task, none); a thread, solo or gevent pool runs tasks in the
# worker's own process, which starts it. Nothing is imported while tracing is off.
@worker_init.connect
def _trace_worker_process(sender: WorkController, **_: object) -> None:
    # Imported here: only a worker needs the pool classes (the web process imports this app).
    from celery.concurrency import get_implementation
    from celery.concurrency.prefork import TaskPool as PreforkPool

    pool = get_implementation(sender.pool_cls)
    if not (isinstance(pool, type) and issubclass(pool, PreforkPool)):
        tracing.configure()


@worker_process_init.connect
def _trace_pool_child(**_: object) -> None:
    tracing.configure()


@worker_process_shutdown.connect
def _flush_pool_child(**_: object) -> None:
    # A pool child leaves by os._exit, past the SDK's atexit flush.
    tracing.shutdown()
