"""The Celery queues: one per system, so operators can scale and rate-limit each one apart.

Named here, where the Celery app (routing), the web process (queue depths in /metrics) and the
tools that start workers all read them.
"""

QUEUES = (
    "saga",
    "database",
    "radius",
    "netbox",
    "access",
    "genieacs",
    "nas",
    "webhooks",
    "bulk",
)

#: Message priorities on the Redis transport, where a lower number is served first: a worker
#: asks Redis for every queue's priority-0 list before any queue's priority-9 list. Interactive
#: work (the portal, an operator) publishes at 0; a bulk job's workflows at 9, so a portal
#: request overtakes a backlog of bulk messages on every queue instead of waiting behind it.
INTERACTIVE_PRIORITY = 0
BULK_PRIORITY = 9
#: The priority lists kombu keeps per queue (its default steps): queue depth is their sum.
PRIORITY_STEPS = (0, 3, 6, 9)


def priority_keys(queue: str) -> tuple[str, ...]:
    """The Redis lists that hold ``queue``'s messages, one per priority step (kombu's layout:
    the plain name for priority 0, ``<name>\\x06\\x16<step>`` for the others)."""
    return tuple(queue if step == 0 else f"{queue}\x06\x16{step}" for step in PRIORITY_STEPS)
