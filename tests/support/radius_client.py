"""A small PAP client for tests: ask a real RADIUS server whether a subscriber may log in.

Dictionaries come from Debian's FreeRADIUS (/usr/share/freeradius/), loaded through
orchestrator/integrations/radius_dictionary.py. pyrad cannot parse the full ``dictionary`` there,
so only the RFC 2865/2866/2869/3162/4818 and MikroTik ones are loaded: enough for
User-Password, Framed-IP-Address, Framed-IPv6-Prefix, Delegated-IPv6-Prefix, Framed-Protocol,
Service-Type and Mikrotik-Rate-Limit.

FreeRADIUS delays every Access-Reject by ``reject_delay`` (1 s by default): a rejected
``authenticate`` takes about a second.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pyrad import packet
from pyrad.client import Client, Timeout
from pyrad.dictionary import Dictionary

from orchestrator.integrations.radius_dictionary import FREERADIUS_DIR, freeradius_dictionary

DICTIONARY_DIR = FREERADIUS_DIR
DICTIONARY_FILES = (
    "dictionary.rfc2865",
    "dictionary.rfc2866",
    "dictionary.rfc2869",
    "dictionary.rfc3162",  # Framed-IPv6-Prefix
    "dictionary.rfc4818",  # Delegated-IPv6-Prefix
    "dictionary.mikrotik",
)
# Integrity of the exchange, not an answer: left out of RadiusReply.attributes.
_TRANSPORT_ATTRIBUTES = frozenset({"Message-Authenticator"})


@dataclass(frozen=True)
class RadiusReply:
    """The server's answer: Access-Accept or not, and its attributes as strings.

    ``attributes`` maps attribute names (e.g. ``Framed-IP-Address``, ``Framed-Protocol``,
    ``Service-Type``, ``Mikrotik-Rate-Limit``) to their values in order; enumerated values are
    given by name (``PPP``, ``Framed-User``), octets as hex. Attributes missing from the loaded
    dictionaries are keyed by their code (``"26"`` or ``"(14988, 99)"``).
    """

    accepted: bool
    attributes: dict[str, list[str]] = field(default_factory=dict)
    code: int = 0

    def first(self, name: str) -> str | None:
        """The first value of attribute ``name``, or None."""
        values = self.attributes.get(name)
        return values[0] if values else None


def load_dictionary(directory: Path = DICTIONARY_DIR) -> Dictionary:
    """pyrad dictionary built from FreeRADIUS's RFC and MikroTik dictionary files (cached)."""
    return freeradius_dictionary(DICTIONARY_FILES, directory)


def _as_text(value: object) -> str:
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def authenticate(
    username: str,
    password: str,
    *,
    host: str = "127.0.0.1",
    port: int = 1812,
    secret: bytes = b"testing123",
    timeout: float = 5,
) -> RadiusReply:
    """Send one PAP Access-Request (User-Name, User-Password) and return the answer.

    Raises TimeoutError if the server does not answer within ``timeout`` seconds (wrong port,
    wrong secret: FreeRADIUS silently drops requests from unknown clients or with a bad
    Message-Authenticator).
    """
    client = Client(
        server=host,
        authport=port,
        secret=secret,
        dict=load_dictionary(),
        retries=1,
        timeout=timeout,
        enforce_ma=False,
    )
    try:
        request = client.CreateAuthPacket(code=packet.AccessRequest, User_Name=username)
        request["User-Password"] = request.PwCrypt(password)
        request["NAS-IP-Address"] = "127.0.0.1"
        try:
            reply = client.SendPacket(request)
        except Timeout as exc:
            raise TimeoutError(
                f"no RADIUS answer from {host}:{port} within {timeout} s "
                "(server down, wrong port or wrong secret?)"
            ) from exc
    finally:
        client._CloseSocket()

    attributes: dict[str, list[str]] = {}
    for key in reply.keys():  # noqa: SIM118 - pyrad's keys() decodes names, iteration does not
        name = key if isinstance(key, str) else str(key)
        if name in _TRANSPORT_ATTRIBUTES:
            continue
        attributes.setdefault(name, []).extend(_as_text(value) for value in reply[key])
    return RadiusReply(
        accepted=reply.code == packet.AccessAccept, attributes=attributes, code=reply.code
    )
