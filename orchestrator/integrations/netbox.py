"""NetBox IPAM through pynetbox: one address per subscriber, found again by a key we own.

The key is the address's ``description`` (an exact, case-sensitive filter in NetBox). Allocation
is find-or-create: a POST to ``available-ips`` that timed out may still have allocated, so it is
never repeated blindly; the step's next attempt finds what the lost one made.
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
from pynetbox.models.ipam import IpAddresses

from orchestrator.config import Settings
from orchestrator.errors import PermanentError, ResourceNotFound
from orchestrator.integrations.http import (
    RetryPolicy,
    Timeouts,
    build_session,
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


def _allocation(record: Any) -> IpAllocation:
    return IpAllocation(id=int(record.id), address=str(record.address))


@contextmanager
def _translated(operation: str, *, missing_means_gone: bool = False) -> Iterator[None]:
    """Turns pynetbox's and requests' exceptions into ours."""
    try:
        yield
    except AllocationError as exc:  # not a RequestError subclass: caught on its own
        raise PermanentError(
            f"{SYSTEM} {operation}: no free address left in the prefix (HTTP 409)",
            system=SYSTEM,
            operation=operation,
            status=409,
        ) from exc
    except RequestError as exc:
        raise error_for_status(
            SYSTEM, operation, exc.req, missing_means_gone=missing_means_gone
        ) from exc
    except ContentError as exc:
        raise PermanentError(
            f"{SYSTEM} {operation}: the answer is not NetBox's JSON (wrong URL?)",
            system=SYSTEM,
            operation=operation,
            status=exc.req.status_code,
        ) from exc
    except requests.RequestException as exc:
        raise transport_error(SYSTEM, operation, exc) from exc


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
        self._api.http_session = build_session(timeouts or Timeouts())

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

    def _find_all(self, key: str) -> list[IpAllocation]:
        records = self._read(
            "find_ip_by_key", lambda: list(self._api.ipam.ip_addresses.filter(description=key))
        )
        return sorted((_allocation(r) for r in records), key=lambda a: a.id)

    def find_ip_by_key(self, key: str) -> IpAllocation | None:
        """The address carrying ``key``; the oldest one if a race ever made two."""
        found = self._find_all(key)
        return found[0] if found else None

    def allocate_ip(self, prefix: str, key: str) -> IpAllocation:
        existing = self.find_ip_by_key(key)
        if existing is not None:
            return existing
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
        # Not retried: if the answer is lost the address may exist, and the next attempt of the
        # step finds it by its key instead of allocating a second one.
        with _translated("allocate_ip"):
            created = _allocation(
                record.available_ips.create({"description": key, "status": "active"})
            )
        log.info("netbox allocated %s (id %s) in %s", created.address, created.id, prefix)
        return self._keep_oldest(key, created)

    def _keep_oldest(self, key: str, created: IpAllocation) -> IpAllocation:
        """Two workers racing on one key each allocated: the younger one gives its address back.

        Both see the same set and keep the same (lowest id) address, so they converge. If this
        check fails the error is transient, and the step's next attempt adopts the address.
        """
        owners = self._find_all(key)
        if not owners or owners[0].id == created.id:
            return created
        if created.id in {a.id for a in owners}:
            self.release_ip(created.id)
        return owners[0]

    def release_ip(self, ip_id: int) -> None:
        """Deletes the address; one that is already gone counts as released."""
        endpoint = self._api.ipam.ip_addresses
        # a Record with only an id deletes by id without fetching the address first
        record = IpAddresses({"id": ip_id}, self._api, endpoint)
        try:
            self._read("release_ip", record.delete, missing_means_gone=True)
        except ResourceNotFound:
            log.info("netbox address %s was already gone", ip_id)

    def release_by_key(self, key: str) -> int:
        """Deletes every address carrying ``key``; returns how many there were."""
        found = self._find_all(key)
        for allocation in found:
            self.release_ip(allocation.id)
        return len(found)

    def close(self) -> None:
        self._api.http_session.close()
