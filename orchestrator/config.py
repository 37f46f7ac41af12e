"""Settings, read once from the environment (twelve-factor), with defaults for a dev machine."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


def _env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _env_bool(name: str, default: bool = False) -> bool:
    return os.environ.get(name, "1" if default else "0").lower() in {"1", "true", "yes", "on"}


def _limits(text: str) -> dict[str, int]:
    limits = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        system, _, number = item.partition("=")
        limits[system.strip()] = int(number)
    return limits


@dataclass(frozen=True)
class Settings:
    database_url: str = field(
        default_factory=lambda: _env(
            "DATABASE_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/orchestrator"
        )
    )
    radius_database_url: str = field(
        default_factory=lambda: _env(
            "RADIUS_DATABASE_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/radius"
        )
    )
    # Connections each process keeps to PostgreSQL. A thread-pool worker (the network queues,
    # see the Procfile) runs many steps at once but holds a connection only for a step's short
    # transactions, never across its network call: a pool far smaller than its threads serves.
    db_pool_size: int = field(default_factory=lambda: _env_int("DB_POOL_SIZE", 5))
    db_max_overflow: int = field(default_factory=lambda: _env_int("DB_MAX_OVERFLOW", 5))
    broker_url: str = field(default_factory=lambda: _env("BROKER_URL", "redis://127.0.0.1:6379/0"))
    result_backend: str = field(
        default_factory=lambda: _env("RESULT_BACKEND", "redis://127.0.0.1:6379/1")
    )
    # Fernet key (urlsafe base64, 32 bytes) for secrets we must keep until they are pushed.
    secret_key: str = field(default_factory=lambda: _env("ORCHESTRATOR_SECRET_KEY", ""))

    netbox_url: str = field(
        default_factory=lambda: _env("NETBOX_URL", "http://127.0.0.1:8100/netbox")
    )
    netbox_token: str = field(
        default_factory=lambda: _env("NETBOX_TOKEN", "0123456789abcdef0123456789abcdef01234567")
    )
    voltha_address: str = field(default_factory=lambda: _env("VOLTHA_ADDRESS", "127.0.0.1:8155"))
    onos_url: str = field(default_factory=lambda: _env("ONOS_URL", "http://127.0.0.1:8100"))
    onos_user: str = field(default_factory=lambda: _env("ONOS_USER", "onos"))
    onos_password: str = field(default_factory=lambda: _env("ONOS_PASSWORD", "rocks"))
    genieacs_url: str = field(
        default_factory=lambda: _env("GENIEACS_URL", "http://127.0.0.1:8100/genieacs")
    )
    http_connect_timeout: float = field(
        default_factory=lambda: _env_float("HTTP_CONNECT_TIMEOUT", 3.05)
    )
    http_read_timeout: float = field(default_factory=lambda: _env_float("HTTP_READ_TIMEOUT", 10.0))
    # Keep-alive connections per system and process: as many as a thread-pool worker runs
    # calls at once, or each call beyond them opens (and then drops) a connection of its own.
    http_pool_size: int = field(default_factory=lambda: _env_int("HTTP_POOL_SIZE", 64))
    # Circuit breaker per external system (NetBox, ONOS, GenieACS, VOLTHA), shared by every
    # worker through Redis: after CIRCUIT_FAILURE_THRESHOLD consecutive timeouts, connection
    # failures or 5xx, calls fail fast for CIRCUIT_COOLDOWN_SECONDS, then one probe is let
    # through (success closes it). 3 x a 10 s read timeout + the step's backoff keeps a hung
    # system from holding a workflow for more than about a minute.
    circuit_failure_threshold: int = field(
        default_factory=lambda: _env_int("CIRCUIT_FAILURE_THRESHOLD", 3)
    )
    circuit_cooldown_seconds: float = field(
        default_factory=lambda: _env_float("CIRCUIT_COOLDOWN_SECONDS", 30.0)
    )
    # ... and only when at least this share of the system's calls in the last 30 s failed: a
    # healthy system under load sees three unlucky calls in a row now and then (the chaos
    # campaign, 5 % of calls failing, opened circuits for 30 s and rolled back healthy work).
    circuit_failure_rate: float = field(
        default_factory=lambda: _env_float("CIRCUIT_FAILURE_RATE", 0.5)
    )
    # Where the breakers keep their state (default: the broker's Redis).
    circuit_redis_url: str = field(
        default_factory=lambda: _env(
            "CIRCUIT_REDIS_URL", _env("BROKER_URL", "redis://127.0.0.1:6379/0")
        )
    )
    # The NAS/BNG's RFC 5176 listener, where Disconnect-Requests end live PPPoE sessions.
    nas_address: str = field(default_factory=lambda: _env("NAS_ADDRESS", "127.0.0.1"))
    nas_coa_port: int = field(default_factory=lambda: _env_int("NAS_COA_PORT", 3799))
    # Signs our requests and authenticates the NAS's answers; kept out of repr (and so of logs).
    nas_secret: str = field(default_factory=lambda: _env("NAS_SECRET", "testing123"), repr=False)
    # Seconds to wait for an answer after each send (the request is sent up to 3 times).
    nas_timeout: float = field(default_factory=lambda: _env_float("NAS_TIMEOUT", 2.0))

    # Modules of the operator's own workflow types, imported (and so registered) after ours:
    # comma-separated import paths. Every process (web, worker, beat) must load the same.
    workflow_modules: tuple[str, ...] = field(
        default_factory=lambda: tuple(
            name.strip() for name in _env("ORCHESTRATOR_WORKFLOW_MODULES", "").split(",") if name
        )
    )

    # Traces (orchestrator/tracing.py): on when an OTLP/HTTP collector is named, off (and
    # nothing of OpenTelemetry imported) otherwise. The exporter reads the rest of the standard
    # OTEL_* variables itself (OTEL_EXPORTER_OTLP_HEADERS, OTEL_BSP_SCHEDULE_DELAY, ...).
    otlp_endpoint: str | None = field(
        default_factory=lambda: os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or None
    )
    otel_service_name: str = field(
        default_factory=lambda: _env("OTEL_SERVICE_NAME", "isp-orchestrator")
    )

    # Test hook: lets tests make a named step fail, hang or crash. Never enable in production.
    fault_injection: bool = field(
        default_factory=lambda: _env_bool("ORCHESTRATOR_FAULT_INJECTION", False)
    )
    # How often the sweeper looks for workflows left behind, and when it calls one stalled.
    # A workflow is lost when no lease is live, no retry is due and nothing happened for
    # STALL_SECONDS (how long a published message may wait to be picked up): a step whose
    # worker died is re-driven within its lease + STALL_SECONDS + SWEEP_INTERVAL.
    sweep_interval: float = field(default_factory=lambda: _env_float("SWEEP_INTERVAL", 10.0))
    stall_seconds: float = field(default_factory=lambda: _env_float("STALL_SECONDS", 30.0))
    # Upper bound on every step's per-attempt timeout (lets tests use short leases).
    step_timeout_cap: float = field(default_factory=lambda: _env_float("STEP_TIMEOUT_CAP", 3600.0))
    # Base delay of step retries (exponential backoff with full jitter from here).
    retry_backoff_base: float = field(default_factory=lambda: _env_float("RETRY_BACKOFF_BASE", 2.0))
    retry_backoff_max: float = field(default_factory=lambda: _env_float("RETRY_BACKOFF_MAX", 300.0))
    workflow_deadline_seconds: float = field(
        default_factory=lambda: _env_float("WORKFLOW_DEADLINE_SECONDS", 3600.0)
    )

    # Calls in flight per external system, across all workers (orchestrator/integrations/
    # concurrency.py): "onos=80,voltha=120"; systems not named take the default; 0: unlimited.
    concurrency_limits: dict[str, int] = field(
        default_factory=lambda: _limits(_env("CONCURRENCY_LIMITS", ""))
    )
    concurrency_limit_default: int = field(
        default_factory=lambda: _env_int("CONCURRENCY_LIMIT_DEFAULT", 100)
    )

    # A prefork child whose resident memory passed this many MiB is replaced once its task
    # ends (Celery's worker_max_memory_per_child; 0: never). A child runs at ~110 MiB; the
    # hourly reconciliation reads whole inventories (at 10,000 subscribers a child kept
    # 250 MiB after it), and what a child's heap grew to it keeps, so without this the
    # workers' memory would ratchet up with the network instead of staying flat.
    worker_max_memory_mb: int = field(default_factory=lambda: _env_int("WORKER_MAX_MEMORY_MB", 200))

    # How many of a bulk job's workflows run at once. The rest wait in PostgreSQL, not in the
    # broker: a portal request never queues behind them. 10,000 rows in 5 minutes with 2 s
    # ONOS calls need about 70 in flight; the per-system limits below cap each system apart.
    bulk_window: int = field(default_factory=lambda: _env_int("BULK_WINDOW", 150))

    # Webhooks. Targets resolving to private, loopback, link-local or other non-global
    # addresses are refused (at registration and again at every delivery, as DNS can change)
    # unless this allows them: never in a shared deployment, where a tenant could make us
    # POST into our own network.
    webhook_allow_private_targets: bool = field(
        default_factory=lambda: _env_bool("WEBHOOK_ALLOW_PRIVATE_TARGETS", False)
    )
    # A failed delivery is retried after base, 2 x base, ... (at most max) seconds, until
    # WEBHOOK_RETRY_WINDOW seconds after its event; an endpoint that got nothing through in
    # that window is disabled.
    webhook_backoff_base: float = field(
        default_factory=lambda: _env_float("WEBHOOK_BACKOFF_BASE", 30.0)
    )
    webhook_backoff_max: float = field(
        default_factory=lambda: _env_float("WEBHOOK_BACKOFF_MAX", 3600.0)
    )
    webhook_retry_window: float = field(
        default_factory=lambda: _env_float("WEBHOOK_RETRY_WINDOW", 86400.0)
    )
    # How long a receiver has to answer (connect and read each); a slow one counts as failed.
    webhook_timeout: float = field(default_factory=lambda: _env_float("WEBHOOK_TIMEOUT", 5.0))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
