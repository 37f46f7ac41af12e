"""The Celery queues: one per system, so operators can scale and rate-limit each one apart.

Named here, where the Celery app (routing), the web process (queue depths in /metrics) and the
tools that start workers all read them.
"""

QUEUES = ("saga", "database", "radius", "netbox", "access", "genieacs", "nas", "webhooks")
