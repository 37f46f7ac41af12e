"""RADIUS dictionaries for pyrad: the one we ship, and FreeRADIUS's when a test needs them.

pyrad names attributes only through a dictionary. Ours (``dictionary.dynauth``, beside this file)
holds what RFC 5176 Disconnect-Requests and their answers carry, plus the names of the packet
codes; the NAS client and the NAS simulator read it, so neither needs FreeRADIUS installed.

FreeRADIUS's dictionaries (Debian: /usr/share/freeradius/, from ``scripts/freeradius.sh install``)
are for talking to FreeRADIUS itself (tests/support/radius_client.py). pyrad 2.6 cannot parse
the full ``dictionary`` there (PROTOCOLS.md), so callers name the files they need.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

from pyrad.dictionary import Dictionary

DYNAUTH_DICTIONARY = Path(__file__).with_name("dictionary.dynauth")
FREERADIUS_DIR = Path("/usr/share/freeradius")


@functools.cache
def dynauth_dictionary() -> Dictionary:
    """Our dictionary: User-Name, NAS-IP-Address, Acct-Session-Id, Event-Timestamp,
    Message-Authenticator, Error-Cause (with its RFC 5176 values) and Packet-Type's names."""
    return Dictionary(str(DYNAUTH_DICTIONARY))


@functools.cache
def freeradius_dictionary(names: Sequence[str], directory: Path = FREERADIUS_DIR) -> Dictionary:
    """pyrad dictionary built from the named FreeRADIUS dictionary files (pass a tuple).

    Raises FileNotFoundError naming the missing files and how to get them, rather than pyrad's
    bare "No such file" for the first one.
    """
    missing = [name for name in names if not (directory / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"RADIUS dictionaries {missing} not in {directory}: install freeradius-common "
            "(scripts/freeradius.sh install)"
        )
    return Dictionary(*(str(directory / name) for name in names))


def value_name(dictionary: Dictionary, attribute: str, value: int) -> str | None:
    """The name the dictionary gives an integer attribute's value (Error-Cause 503 ->
    "Session-Context-Not-Found"), or None when it names none."""
    if attribute not in dictionary:
        return None
    values = dictionary[attribute].values
    # pyrad keys named values by their encoded form: a 32-bit big-endian integer
    encoded = value.to_bytes(4, "big") if 0 <= value < 2**32 else None
    if encoded is None or not values.HasBackward(encoded):
        return None
    name: str = values.GetBackward(encoded)
    return name


def packet_type_name(code: int) -> str:
    """A packet code's name ("Disconnect-Request" for 40), or "code N" for one we do not name."""
    return value_name(dynauth_dictionary(), "Packet-Type", code) or f"code {code}"
