"""NetBox IPAM through pynetbox: a subscriber's address (``available-ips``) and IPv6 prefixes
(``available-prefixes``), each found again by a key we own.

The key is the object's ``description`` (an exact, case-sensitive filter in NetBox). Allocation
is find-or-create: a POST to ``available-*`` that timed out may still have allocated, so it is
never repeated blindly; the step's next attempt finds what the lost one made. NetBox serialises
allocations behind one PostgreSQL advisory lock per kind (netbox/ipam/api/views.py,
``AvailableObjectsView.post``), so two keys never get the same address or prefix; a pool with no
room answers 409 ``{"detail": "Insufficient resources are available to satisfy the request"}``.

The token needs view, add and delete on ipam.ipaddress and ipam.prefix, without constraints:
NetBox hides what a constrained token may not see, and a release that finds nothing by its key
would look done.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import pynetbox
import requests
from pynetbox.core.query import AllocationError, ContentError, RequestError

from orchestrator.config import Settings
from orchestrator.errors import IntegrationError, PermanentError, ResourceNotFound
from orchestrator.integrations.http import (
    RetryPolicy,
    Timeouts,
    build_session,
    error_class,
    error_for_status,
    retry_idempotent,
    transport_error,
)

SYSTEM = "netbox"
log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class IpAllocation:
    id: int
    #: with the prefix length, as NetBox stores it: "100.64.0.2/24"
    address: str

    @property
    def ip(self) -> str:
        return str(ipaddress.ip_interface(self.address).ip)


@dataclass(frozen=True)
class PrefixAllocation:
    id: int
    #: a child prefix of a pool, as NetBox stores it: "2001:db8:100::/56"
    prefix: str


@dataclass(frozen=True)
class _Kind:
    """What we allocate from a NetBox prefix: an address or a child prefix. Both are found by
    the key in their description, allocated through the pool's ``available-*`` endpoint and
    deleted by id the same way; only these names differ."""

    endpoint: str  # pynetbox's attribute under api.ipam
    available: str  # the pool record's DetailEndpoint
    field: str  # the record's value
    operation: str  # our operation names: allocate_<operation>, release_<operation>, ...
    make: Callable[[int, str], Any]  # IpAllocation or PrefixAllocation

    def allocation(self, record: Any) -> Any:
        return self.make(int(record.id), str(getattr(record, self.field)))


ADDRESS = _Kind("ip_addresses", "available_ips", "address", "ip", IpAllocation)
PREFIX = _Kind("prefixes", "available_prefixes", "prefix", "prefix", PrefixAllocation)


def _is_json(response: requests.Response) -> bool:
    return "json" in response.headers.get("Content-Type", "")


def _status_error(
    operation: str, response: requests.Response, *, missing_means_gone: bool
) -> IntegrationError:
    """The error for an unwanted status. A JSON body is NetBox's and worth quoting; anything
    else (the HTML page NetBox, or a proxy in front of it, answers for an unknown path) is
    named, not quoted: a page of markup in an operator's error message helps nobody."""
    if _is_json(response):
        return error_for_status(SYSTEM, operation, response, missing_means_gone=missing_means_gone)
    cls = error_class(response.status_code)
    if cls is ResourceNotFound and not missing_means_gone:
        cls = PermanentError  # a wrong URL must not pass for "already gone"
    kind = response.headers.get("Content-Type", "").split(";")[0] or "no content type"
    return cls(
        f"{SYSTEM} {operation}: HTTP {response.status_code} {response.reason or ''}".rstrip()
        + f" with a {kind} answer, not NetBox's API (wrong URL?)",
        system=SYSTEM,
        operation=operation,
        status=response.status_code,
    )


@contextmanager
def _translated(
    operation: str, *, missing_means_gone: bool = False, full: str = "no room left"
) -> Iterator[None]:
    """Turns pynetbox's and requests' exceptions into ours."""
    try:
        yield
    except AllocationError as exc:  # not a RequestError subclass: caught on its own
        raise PermanentError(
            f"{SYSTEM} {operation}: {full} (HTTP 409)",
            system=SYSTEM,
            operation=operation,
            status=409,
        ) from exc
    except RequestError as exc:
        raise _status_error(operation, exc.req, missing_means_gone=missing_means_gone) from exc
    except ContentError as exc:
        raise PermanentError(
            f"{SYSTEM} {operation}: the answer is not NetBox's JSON (wrong URL?)",
            system=SYSTEM,
            operation=operation,
            status=exc.req.status_code,
        ) from exc
    except requests.RequestException as exc:
        raise transport_error(SYSTEM, operation, exc) from exc


def netbox_prefix_lookup(settings: Settings) -> Callable[[str], bool]:
    """Whether NetBox holds a prefix, for plan validation; the client is built per call, in
    the process that asks (nothing at import or app-creation time)."""

    def prefix_exists(prefix: str) -> bool:
        client = NetBoxClient.from_settings(settings)
        try:
            return client.prefix_exists(prefix)
        finally:
            client.close()

    return prefix_exists


class NetBoxClient:
    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeouts: Timeouts | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self._url = url
        self._retry = retry or RetryPolicy()
        self._api = pynetbox.api(url, token=token)
        # pynetbox's own session has no timeouts; ours has, and never resends a request
        self._api.http_session = build_session(timeouts or Timeouts(), system=SYSTEM)

    @classmethod
    def from_settings(cls, settings: Settings) -> NetBoxClient:
        return cls(
            settings.netbox_url,
            settings.netbox_token,
            timeouts=Timeouts(settings.http_connect_timeout, settings.http_read_timeout),
        )

    def __repr__(self) -> str:
        return f"NetBoxClient(url={self._url!r})"

    def _read(
        self, operation: str, call: Callable[[], T], *, missing_means_gone: bool = False
    ) -> T:
        """An idempotent call: translated, and retried on transient errors."""

        def once() -> T:
            with _translated(operation, missing_means_gone=missing_means_gone):
                return call()

        return retry_idempotent(once, self._retry)

    # -- one pool's allocations, by key (addresses and prefixes alike) ---------------------

    def _find_all(self, kind: _Kind, key: str) -> list[Any]:
        endpoint = getattr(self._api.ipam, kind.endpoint)
        records = self._read(
            f"find_{kind.operation}_by_key", lambda: list(endpoint.filter(description=key))
        )
        return sorted((kind.allocation(r) for r in records), key=lambda a: a.id)

    def _settle(self, kind: _Kind, key: str) -> Any | None:
        """The oldest allocation carrying ``key``; any younger one (a lost race, or a POST whose
        answer was lost and that a racing attempt then repeated) is released, not left allocated.

        Every racer sees the same set and keeps the same (lowest id) one, so they converge; a
        release that fails is transient, and the step's next attempt settles again.
        """
        found = self._find_all(kind, key)
        for extra in found[1:]:
            log.warning(
                "netbox %s %s (id %s) duplicates key %s: released",
                kind.field,
                getattr(extra, kind.field),
                extra.id,
                key,
            )
            self._release(kind, extra.id)
        return found[0] if found else None

    def _pool(self, prefix: str) -> Any:
        try:
            record = self._read("get_prefix", lambda: self._api.ipam.prefixes.get(prefix=prefix))
        except ValueError as exc:  # pynetbox: get() matched more than one (prefix in several VRFs)
            raise PermanentError(
                f"{SYSTEM} get_prefix: {prefix} is ambiguous in NetBox",
                system=SYSTEM,
                operation="get_prefix",
            ) from exc
        if record is None:
            raise PermanentError(
                f"{SYSTEM} get_prefix: prefix {prefix} does not exist in NetBox",
                system=SYSTEM,
                operation="get_prefix",
            )
        return record

    def _allocate(
        self, kind: _Kind, pool: str, key: str, body: dict[str, Any], *, what: str
    ) -> Any:
        existing = self._settle(kind, key)
        if existing is not None:
            return existing
        record = self._pool(pool)
        operation = f"allocate_{kind.operation}"
        # Not retried: if the answer is lost the object may exist, and the next attempt of the
        # step finds it by its key instead of allocating a second one.
        with _translated(operation, full=f"no free {what} left in the pool {pool}"):
            created = kind.allocation(
                getattr(record, kind.available).create({**body, "description": key})
            )
        log.info(
            "netbox allocated %s (id %s) in %s", getattr(created, kind.field), created.id, pool
        )
        settled = self._settle(kind, key)
        return settled if settled is not None else created

    def _release(self, kind: _Kind, object_id: int) -> None:
        """Deletes by id; one that is already gone counts as released."""
        endpoint = getattr(self._api.ipam, kind.endpoint)
        # a Record with only an id deletes by id without fetching the object first
        record = endpoint.return_obj({"id": object_id}, self._api, endpoint)
        try:
            self._read(f"release_{kind.operation}", record.delete, missing_means_gone=True)
        except ResourceNotFound:
            log.info("netbox %s %s was already gone", kind.field, object_id)

    def _release_by_key(self, kind: _Kind, key: str) -> int:
        found = self._find_all(kind, key)
        for allocation in found:
            self._release(kind, allocation.id)
        return len(found)

    # -- addresses ---------------------------------------------------------------------------

    def find_ip_by_key(self, key: str) -> IpAllocation | None:
        """The address carrying ``key``; the oldest one if a race ever made two (the others
        are released)."""
        found: IpAllocation | None = self._settle(ADDRESS, key)
        return found

    def allocate_ip(self, prefix: str, key: str) -> IpAllocation:
        allocation: IpAllocation = self._allocate(
            ADDRESS, prefix, key, {"status": "active"}, what="address"
        )
        return allocation

    def release_ip(self, ip_id: int) -> None:
        """Deletes the address; one that is already gone counts as released."""
        self._release(ADDRESS, ip_id)

    def release_by_key(self, key: str) -> int:
        """Deletes every address carrying ``key``; returns how many there were."""
        return self._release_by_key(ADDRESS, key)

    # -- prefixes ----------------------------------------------------------------------------

    def prefix_exists(self, prefix: str) -> bool:
        """Whether NetBox holds ``prefix`` (in any VRF)."""
        found = self._read(
            "get_prefix", lambda: list(self._api.ipam.prefixes.filter(prefix=prefix))
        )
        return bool(found)

    def find_prefix_by_key(self, key: str) -> PrefixAllocation | None:
        found: PrefixAllocation | None = self._settle(PREFIX, key)
        return found

    def allocate_prefix(self, pool: str, length: int, key: str) -> PrefixAllocation:
        """A free child prefix of ``length`` in ``pool`` (NetBox's first fit), carrying ``key``;
        the one an earlier attempt made with the same key, if any."""
        allocation: PrefixAllocation = self._allocate(
            PREFIX, pool, key, {"prefix_length": length, "status": "active"}, what=f"/{length}"
        )
        return allocation

    def release_prefix(self, prefix_id: int) -> None:
        self._release(PREFIX, prefix_id)

    def release_prefixes_by_key(self, key: str) -> int:
        """Deletes every prefix carrying ``key``; returns how many there were."""
        return self._release_by_key(PREFIX, key)

    def close(self) -> None:
        self._api.http_session.close()
