"""Which URLs a webhook may be sent to.

A webhook makes this service send requests wherever a tenant's admin says: without a check, an
admin could reach our database, the metadata service of the cloud we run in, or the operator's
management network. So targets are http(s) only, and every address the host resolves to must be
globally routable, unless the deployment allows private targets (a lab, the tests). Checked at
registration and again before each delivery, because what a name resolves to can change.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from orchestrator.errors import ValidationError

SCHEMES = ("http", "https")


class TargetRefused(ValueError):
    """Raised when a URL may not be called; the message says why, for the field or the log."""


def _addresses(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise TargetRefused(f"the host {host!r} cannot be resolved") from exc
    # The scope of a link-local IPv6 address ("fe80::1%eth0") is not part of the address.
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


def _is_global(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    # ::ffff:127.0.0.1 is loopback in disguise: judge the IPv4 address it carries.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def check(url: str, *, allow_private: bool) -> None:
    """Refuse ``url`` (:class:`TargetRefused`) unless a webhook may be POSTed to it."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:  # a port out of range, a malformed IPv6 literal
        raise TargetRefused(f"not a valid URL: {exc}") from None
    if parts.scheme not in SCHEMES:
        raise TargetRefused("must be an http or https URL")
    if not parts.hostname:
        raise TargetRefused("must name a host")
    if parts.username is not None or parts.password is not None:
        # They would be stored and shown in every answer; sign requests instead.
        raise TargetRefused("must not contain credentials")
    if parts.fragment:
        raise TargetRefused("must not contain a fragment")
    if allow_private:
        return
    for address in _addresses(parts.hostname, port):
        if not _is_global(address):
            raise TargetRefused(
                f"resolves to {address}, a private, loopback, link-local or reserved address"
            )


def validate(url: str, *, allow_private: bool, field: str = "url") -> None:
    """:func:`check` for a request: a refused URL is a validation error naming ``field``."""
    try:
        check(url, allow_private=allow_private)
    except TargetRefused as exc:
        raise ValidationError("the webhook URL is not allowed", {field: [str(exc)]}) from None
