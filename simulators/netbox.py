"""NetBox 4.x IPAM REST, the part we use: prefixes, available-ips, available-prefixes and
ip-addresses.

Shapes, status codes and messages follow NetBox's (see shared/PROTOCOLS.md). Every allocation and
every change happens under one lock, as NetBox serializes allocations behind a PostgreSQL
advisory lock (netbox/ipam/api/views.py, ``AvailableObjectsView.post``): two concurrent
allocations never get the same address or prefix.

Tokens are checked against a configured set (``tokens``), the way NetBox looks them up
(netbox/netbox/api/authentication.py): ``Token <t>`` or ``Bearer <t>``, a ``nbt_``-prefixed
value being a v2 token; one not in the set is 403 ``Invalid v1 token`` (or v2).
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from simulators.web import BadJson, Reply, Request, json_reply

API_VERSION = "4.6"
NETBOX_VERSION = "4.6.8"
DEFAULT_PAGE = 50
MAX_PAGE = 1000
#: The token our settings use by default (orchestrator/config.py netbox_token).
DEFAULT_TOKENS = ("0123456789abcdef0123456789abcdef01234567",)
_V2_PREFIX = "nbt_"
_STATUSES = {
    "active": "Active",
    "reserved": "Reserved",
    "deprecated": "Deprecated",
    "dhcp": "DHCP",
    "slaac": "SLAAC",
}
_PREFIX_STATUSES = {
    "container": "Container",
    "active": "Active",
    "reserved": "Reserved",
    "deprecated": "Deprecated",
}
_FULL = "Insufficient resources are available to satisfy the request"

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IpInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
#: a network as (IP version, first address as an int, prefix length): cheap to hash and to mask
NetKey = tuple[int, int, int]


def _key(network: IpNetwork) -> NetKey:
    return network.version, int(network.network_address), network.prefixlen


def _supernets(key: NetKey) -> Iterator[NetKey]:
    """Every network strictly containing ``key``, from the nearest to /0."""
    version, address, length = key
    bits = 32 if version == 4 else 128
    for shorter in range(length - 1, -1, -1):
        mask = ((1 << bits) - 1) ^ ((1 << (bits - shorter)) - 1)
        yield version, address & mask, shorter


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class PrefixExists(ValueError):
    """Raised when a prefix is added twice (NetBox would allow it; our seed must not)."""


class _Invalid(Exception):
    """A request NetBox would answer with 400 and this body."""

    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__(body)
        self.body = body


@dataclass
class Prefix:
    id: int
    prefix: IpNetwork
    is_pool: bool = False
    status: str = "active"
    description: str = ""
    created: str = field(default_factory=_now)

    def contains(self, other: Prefix) -> bool:
        """``other`` lies strictly inside this prefix (NetBox's ``net_contained``)."""
        return (
            other.prefix.version == self.prefix.version
            and other.prefix != self.prefix
            and other.prefix.subnet_of(self.prefix)  # type: ignore[arg-type]
        )

    def usable_hosts(self) -> Iterator[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        net = self.prefix
        first, last = int(net.network_address), int(net.broadcast_address)
        # NetBox offers the network (and, for IPv4, broadcast) address only in pools and
        # point-to-point prefixes (/31, /32, /127, /128)
        whole = self.is_pool or net.num_addresses <= 2
        if not whole:
            first += 1
            if net.version == 4:
                last -= 1
        for value in range(first, last + 1):
            yield ipaddress.ip_address(value)


@dataclass
class IpAddress:
    id: int
    address: IpInterface
    status: str = "active"
    description: str = ""
    dns_name: str = ""
    comments: str = ""
    tags: list[Any] = field(default_factory=list)
    custom_fields: dict[str, Any] = field(default_factory=dict)
    created: str = field(default_factory=_now)
    last_updated: str = field(default_factory=_now)


def _family(version: int) -> dict[str, Any]:
    return {"value": version, "label": f"IPv{version}"}


class NetBoxSim:
    name = "netbox"

    def __init__(self, tokens: Callable[[], Collection[str]] = lambda: DEFAULT_TOKENS) -> None:
        #: The tokens NetBox knows now (the world's config: a reset restores the defaults).
        self._tokens = tokens
        self.lock = threading.Lock()
        self.prefixes: dict[int, Prefix] = {}
        self.addresses: dict[int, IpAddress] = {}
        #: address ids by description, and how many addresses hold each IP: the lookups a
        #: find-by-key and an allocation make, at the same cost however many addresses exist
        self._described: dict[str, set[int]] = {}
        self._taken: dict[Any, int] = {}
        #: prefix ids by network and by description, and for every network how many prefixes
        #: lie strictly inside it: children, depth and the next free prefix of a pool are then
        #: found by walking at most 128 supernets or subnets, never by scanning every prefix
        self._nets: dict[NetKey, set[int]] = {}
        self._prefix_described: dict[str, set[int]] = {}
        self._inside: dict[NetKey, int] = {}
        #: for every network, how many of its addresses the prefixes within it (equal or
        #: inside) cover, each address once; for a network that is a prefix, ``_inner`` is the
        #: same for the prefixes strictly inside it. A pool's free space is found from these.
        self._covered: dict[NetKey, int] = {}
        self._inner: dict[NetKey, int] = {}
        self._next_prefix_id = 1
        self._next_ip_id = 1

    # -- state -------------------------------------------------------------------------------

    def reset(self) -> None:
        with self.lock:
            self.prefixes.clear()
            self.addresses.clear()
            self._described.clear()
            self._taken.clear()
            self._nets.clear()
            self._prefix_described.clear()
            self._inside.clear()
            self._covered.clear()
            self._inner.clear()
            self._next_prefix_id = 1
            self._next_ip_id = 1
        for prefix in ("100.64.0.0/24", "100.64.1.0/24", "100.64.255.0/30"):
            self.add_prefix(prefix)

    def add_prefix(self, prefix: str, is_pool: bool = False) -> Prefix:
        network = ipaddress.ip_network(prefix)  # ValueError for the caller to report
        with self.lock:
            if self._nets.get(_key(network)):
                raise PrefixExists(f"prefix {network} already exists")
            created = Prefix(self._next_prefix_id, network, is_pool)
            self.prefixes[created.id] = created
            self._index_prefix(created)
            self._next_prefix_id += 1
            return created

    def snapshot(self, base_url: str) -> dict[str, Any]:
        with self.lock:
            return {
                "prefixes": [self._prefix_json(p, base_url) for p in self.prefixes.values()],
                "ip_addresses": [self._ip_json(a, base_url) for a in self.addresses.values()],
            }

    # -- HTTP --------------------------------------------------------------------------------

    def error_reply(self, status: int, request: Request) -> Reply:
        details = {
            400: {"detail": "Bad request."},
            403: {"detail": "You do not have permission to perform this action."},
            404: {"detail": "Not found."},
            409: {"detail": _FULL},
            429: {"detail": "Request was throttled."},
        }
        if status >= 500:
            body: dict[str, Any] = {
                "error": "Simulated server error",
                "exception": "OperationalError",
                "netbox_version": NETBOX_VERSION,
                "python_version": "3.12.3",
            }
        else:
            body = details.get(status, {"detail": "Request failed."})
        return self._json(status, body)

    def handle(self, request: Request) -> Reply:
        if not request.path.startswith("/api/"):
            return self._json(404, {"detail": "Not found."})
        refused = self._authenticate(request.headers.get("authorization") or "")
        if refused:
            return self._json(403, {"detail": refused})
        try:
            return self._route(request)
        except BadJson as exc:
            return self._json(400, {"detail": f"JSON parse error - {exc}"})
        except _Invalid as exc:
            return self._json(400, exc.body)

    def _authenticate(self, header: str) -> str | None:
        """Why NetBox refuses this Authorization header, or None (TokenAuthentication)."""
        parts = header.split()
        if not parts or parts[0].lower() not in ("token", "bearer"):
            # not a token header: anonymous, and the API needs a login
            return "Authentication credentials were not provided."
        if len(parts) != 2:
            return (
                'Invalid authorization header: Must be in the form "Bearer <key>.<token>" or '
                '"Token <token>"'
            )
        value = parts[1]
        version = 2 if value.startswith(_V2_PREFIX) else 1
        if version == 2 and "." not in value:
            return (
                "Invalid authorization header: Could not parse key from v2 token. Did you mean "
                "to use 'Token' instead of 'Bearer'?"
            )
        return None if value in self._tokens() else f"Invalid v{version} token"

    def _route(self, request: Request) -> Reply:
        parts = [p for p in request.path.split("/") if p][1:]  # drop "api"
        method = request.method
        match parts:
            case []:
                return self._only(method, "GET") or self._json(200, self._root(request))
            case ["status"]:
                return self._only(method, "GET") or self._json(200, self._status())
            case ["ipam", "prefixes"]:
                return self._only(method, "GET") or self._list_prefixes(request)
            case ["ipam", "prefixes", key]:
                if method == "GET":
                    return self._get_prefix(request, key)
                return self._only(method, "DELETE") or self._delete_prefix(key)
            case ["ipam", "prefixes", key, "available-prefixes"]:
                if method == "GET":
                    return self._list_available_prefixes(request, key)
                return self._only(method, "POST") or self._allocate_prefixes(request, key)
            case ["ipam", "prefixes", key, "available-ips"]:
                if method == "GET":
                    return self._list_available(request, key)
                return self._only(method, "POST") or self._allocate(request, key)
            case ["ipam", "ip-addresses"]:
                return self._only(method, "GET") or self._list_addresses(request)
            case ["ipam", "ip-addresses", key]:
                if method == "GET":
                    return self._get_address(request, key)
                if method in ("PATCH", "PUT"):
                    return self._update_address(request, key)
                return self._only(method, "DELETE") or self._delete_address(key)
        return self._json(404, {"detail": "Not found."})

    def _only(self, method: str, allowed: str) -> Reply | None:
        if method == allowed:
            return None
        return self._json(405, {"detail": f'Method "{method}" not allowed.'})

    @staticmethod
    def _json(status: int, body: Any) -> Reply:
        # NetBox sends its API version on every API response; pynetbox reads it from here
        return json_reply(status, body, {"API-Version": API_VERSION})

    def _root(self, request: Request) -> dict[str, str]:
        apps = (
            "circuits",
            "core",
            "dcim",
            "extras",
            "ipam",
            "plugins",
            "status",
            "tenancy",
            "users",
            "virtualization",
            "vpn",
            "wireless",
        )
        return {app: f"{request.base_url}/api/{app}/" for app in apps}

    def _status(self) -> dict[str, Any]:
        return {
            "django-version": "5.2.5",
            "installed-apps": {},
            "netbox-version": NETBOX_VERSION,
            "netbox-full-version": f"{NETBOX_VERSION}-Docker",
            "plugins": {},
            "python-version": "3.12.3",
            "rq-workers-running": 1,
        }

    # -- prefixes ----------------------------------------------------------------------------

    def _prefix_json(self, prefix: Prefix, base: str) -> dict[str, Any]:
        text = str(prefix.prefix)
        return {
            "id": prefix.id,
            "url": f"{base}/api/ipam/prefixes/{prefix.id}/",
            "display_url": f"{base}/ipam/prefixes/{prefix.id}/",
            "display": text,
            "family": _family(prefix.prefix.version),
            "prefix": text,
            "vrf": None,
            "scope_type": None,
            "scope_id": None,
            "scope": None,
            "tenant": None,
            "vlan": None,
            "status": {"value": prefix.status, "label": _PREFIX_STATUSES[prefix.status]},
            "role": None,
            "is_pool": prefix.is_pool,
            "mark_utilized": False,
            "description": prefix.description,
            "owner": None,
            "comments": "",
            "tags": [],
            "custom_fields": {},
            "created": prefix.created,
            "last_updated": prefix.created,
            "children": self._inside.get(_key(prefix.prefix), 0),
            "_depth": sum(len(self._nets.get(k, ())) for k in _supernets(_key(prefix.prefix))),
        }

    def _index_net(self, key: NetKey, prefix_id: int, step: int) -> None:
        """Adds (step 1) or removes (step -1) a prefix at ``key`` in the network indexes."""
        ids = self._nets.setdefault(key, set())
        first_or_last = not ids if step > 0 else ids == {prefix_id}
        if step > 0:
            ids.add(prefix_id)
        else:
            ids.discard(prefix_id)
        for outer in _supernets(key):
            self._inside[outer] = self._inside.get(outer, 0) + step
        if first_or_last:  # a network held twice covers its addresses once
            self._cover(key, step)

    def _cover(self, key: NetKey, step: int) -> None:
        """Updates the covered counts for the first prefix to take ``key`` (step 1) or the last
        one to leave it (step -1): up to the nearest prefix containing it, whose inner count
        changes and above which nothing does."""
        bits = 32 if key[0] == 4 else 128
        size = 1 << (bits - key[2])
        inner = self._covered.get(key, 0) if step > 0 else self._inner.pop(key, 0)
        delta = (size - inner) * step
        if step > 0:
            self._inner[key] = inner
        self._covered[key] = size if step > 0 else inner
        for outer in _supernets(key):
            if self._nets.get(outer):
                self._inner[outer] = self._inner.get(outer, 0) + delta
                return
            self._covered[outer] = self._covered.get(outer, 0) + delta

    def _index_prefix(self, prefix: Prefix) -> None:
        self._index_net(_key(prefix.prefix), prefix.id, 1)
        self._prefix_described.setdefault(prefix.description, set()).add(prefix.id)

    def _unindex_prefix(self, prefix: Prefix) -> None:
        self._index_net(_key(prefix.prefix), prefix.id, -1)
        self._prefix_described.get(prefix.description, set()).discard(prefix.id)

    def _first_free(self, parent: Prefix, length: int) -> NetKey | None:
        """NetBox's first fit (``get_next_available_prefix``: the first free block at least as
        large as asked gives its first subnet) as a descent from the pool: the first subnet of
        that length, in address order, that holds no prefix and lies in none. A subnet with
        nothing inside is free whole; a taken one is skipped whole; only a partly used one is
        split. Equal to taking the first large enough block of the free set, since every aligned
        free subnet lies in one such block."""
        version, base, top = _key(parent.prefix)
        if length < top:
            return None
        bits = 32 if version == 4 else 128
        pending = [(base, top)]  # a stack: the lower half is looked at first
        while pending:
            address, size = pending.pop()
            key = (version, address, size)
            if size > top and self._nets.get(key):
                continue  # a prefix has it all
            used = self._inner.get(key, 0) if size == top else self._covered.get(key, 0)
            if used == 0:
                return version, address, length
            if size < length and used < 1 << (bits - size):  # partly used: split it
                half = 1 << (bits - size - 1)
                pending.extend(((address + half, size + 1), (address, size + 1)))
        return None

    def _find_prefix(self, key: str) -> Prefix | None:
        return self.prefixes.get(int(key)) if key.isdigit() else None

    def _list_prefixes(self, request: Request) -> Reply:
        with self.lock:
            wanted_ids: set[int] | None = None  # from the indexes; None: every prefix
            for value in request.query.get("prefix", []):
                try:
                    wanted = ipaddress.ip_network(value)
                except ValueError as exc:
                    raise _Invalid({"prefix": [f"Invalid prefix: {value}"]}) from exc
                found = self._nets.get(_key(wanted), set())
                wanted_ids = set(found) if wanted_ids is None else wanted_ids & found
            descriptions = request.query.get("description")
            if descriptions:
                found = {i for d in descriptions for i in self._prefix_described.get(d, ())}
                wanted_ids = found if wanted_ids is None else wanted_ids & found
            if wanted_ids is None:
                items = list(self.prefixes.values())
            else:
                items = [self.prefixes[i] for i in wanted_ids if i in self.prefixes]
            ids = request.query.get("id")
            if ids:
                items = [p for p in items if str(p.id) in ids]
            # NetBox orders prefixes by VRF, then prefix, then id
            items.sort(key=lambda p: (p.prefix.version, p.prefix, p.id))
            rows = [self._prefix_json(p, request.base_url) for p in items]
        return self._page(request, rows)

    def _get_prefix(self, request: Request, key: str) -> Reply:
        with self.lock:
            prefix = self._find_prefix(key)
            if prefix is None:
                return self._json(404, {"detail": "No Prefix matches the given query."})
            return self._json(200, self._prefix_json(prefix, request.base_url))

    def _delete_prefix(self, key: str) -> Reply:
        with self.lock:
            prefix = self.prefixes.pop(int(key), None) if key.isdigit() else None
            if prefix is not None:
                self._unindex_prefix(prefix)
        if prefix is None:
            return self._json(404, {"detail": "No Prefix matches the given query."})
        return Reply(204, headers={"API-Version": API_VERSION})

    def _free_blocks(self, parent: Prefix) -> list[IpNetwork]:
        """What ``get_available_prefixes`` returns: the parent less every prefix inside it (any
        status), as the fewest CIDR blocks, in address order (netaddr's IPSet.iter_cidrs)."""
        free: list[IpNetwork] = [parent.prefix]
        for child in self.prefixes.values():
            if not parent.contains(child):
                continue
            remaining: list[IpNetwork] = []
            for block in free:
                if child.prefix.subnet_of(block):  # type: ignore[arg-type]
                    remaining.extend(block.address_exclude(child.prefix))  # type: ignore[arg-type]
                elif not block.subnet_of(child.prefix):  # type: ignore[arg-type]
                    remaining.append(block)
            free = remaining
        return list(ipaddress.collapse_addresses(sorted(free)))  # type: ignore[type-var]

    def _list_available_prefixes(self, request: Request, key: str) -> Reply:
        # Every free block: NetBox applies no limit and no paging to this list.
        with self.lock:
            parent = self._find_prefix(key)
            if parent is None:
                return self._json(404, {"detail": "No Prefix matches the given query."})
            rows = [
                {"family": block.version, "prefix": str(block), "vrf": None}
                for block in self._free_blocks(parent)
            ]
        return self._json(200, rows)

    def _allocate_prefixes(self, request: Request, key: str) -> Reply:
        payload = request.json() if request.body else {}
        many = isinstance(payload, list)
        items = payload if many else [payload]
        with self.lock:
            parent = self._find_prefix(key)
            if parent is None:
                return self._json(404, {"detail": "No Prefix matches the given query."})
            # PrefixLengthSerializer(many=True): its errors are a list, one entry per item
            errors = [self._length_error(item, parent) for item in items]
            if any(errors):
                return self._json(400, [e or {} for e in errors])
            fields = [self._prefix_fields(item) for item in items]
            chosen: list[NetKey] = []
            for item in items:
                block = self._first_free(parent, int(item["prefix_length"]))
                if block is None:
                    break
                self._index_net(block, 0, 1)  # held while the rest of the list is placed
                chosen.append(block)
            for block in chosen:
                self._index_net(block, 0, -1)
            if len(chosen) < len(items):
                # nothing is created unless all fit: a list is refused whole
                return self._json(409, {"detail": _FULL})
            created = []
            for (_, address, length), values in zip(chosen, fields, strict=True):
                family = (
                    ipaddress.IPv4Network if parent.prefix.version == 4 else ipaddress.IPv6Network
                )
                network = family((address, length))
                prefix = Prefix(self._next_prefix_id, network, **values)
                self._next_prefix_id += 1
                self.prefixes[prefix.id] = prefix
                self._index_prefix(prefix)
                created.append(self._prefix_json(prefix, request.base_url))
        return self._json(201, created if many else created[0])

    @staticmethod
    def _length_error(item: Any, parent: Prefix) -> dict[str, list[str]] | None:
        if not isinstance(item, dict):
            return {"non_field_errors": ["Invalid data. Expected a dictionary."]}
        length = item.get("prefix_length")
        if length is None:
            return {"prefix_length": ["this field can not be missing"]}
        if not isinstance(length, int) or isinstance(length, bool):
            return {"prefix_length": ["this field must be int type"]}
        version = parent.prefix.version
        if length > parent.prefix.max_prefixlen:
            return {"prefix_length": [f"Invalid prefix length ({length}) for IPv{version}"]}
        return None

    @staticmethod
    def _prefix_fields(item: dict[str, Any]) -> dict[str, Any]:
        """The writable prefix fields we model (PrefixSerializer; unknown keys ignored)."""
        errors: dict[str, list[str]] = {}
        status = item.get("status", "active")
        if status not in _PREFIX_STATUSES:
            errors["status"] = [f'"{status}" is not a valid choice.']
        description = item.get("description", "")
        if not isinstance(description, str):
            errors["description"] = ["Not a valid string."]
        elif len(description) > 200:
            errors["description"] = ["Ensure this field has no more than 200 characters."]
        if errors:
            raise _Invalid(errors)
        return {"status": status, "description": description, "is_pool": bool(item.get("is_pool"))}

    def _index(self, address: IpAddress) -> None:
        self._described.setdefault(address.description, set()).add(address.id)
        self._taken[address.address.ip] = self._taken.get(address.address.ip, 0) + 1

    def _unindex(self, address: IpAddress) -> None:
        self._described.get(address.description, set()).discard(address.id)
        left = self._taken.get(address.address.ip, 0) - 1
        if left > 0:
            self._taken[address.address.ip] = left
        else:
            self._taken.pop(address.address.ip, None)

    def _free(self, prefix: Prefix) -> Iterator[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        return (ip for ip in prefix.usable_hosts() if ip not in self._taken)

    def _list_available(self, request: Request, key: str) -> Reply:
        limit = self._int_arg(request, "limit", DEFAULT_PAGE) or DEFAULT_PAGE
        with self.lock:
            prefix = self._find_prefix(key)
            if prefix is None:
                return self._json(404, {"detail": "No Prefix matches the given query."})
            rows: list[dict[str, Any]] = []
            for ip in self._free(prefix):
                if len(rows) >= limit:
                    break
                rows.append(
                    {
                        "family": prefix.prefix.version,
                        "address": f"{ip}/{prefix.prefix.prefixlen}",
                        "vrf": None,
                    }
                )
        return self._json(200, rows)

    def _allocate(self, request: Request, key: str) -> Reply:
        payload = request.json() if request.body else {}
        many = isinstance(payload, list)
        items = payload if many else [payload]
        if not items or not all(isinstance(item, dict) for item in items):
            raise _Invalid({"non_field_errors": ["Invalid data. Expected a dictionary."]})
        fields = [self._validated(item, partial=False) for item in items]
        with self.lock:
            prefix = self._find_prefix(key)
            if prefix is None:
                return self._json(404, {"detail": "No Prefix matches the given query."})
            free = []
            for ip in self._free(prefix):
                free.append(ip)
                if len(free) == len(items):
                    break
            if len(free) < len(items):
                # a list asking for more than is free is refused whole: nothing is allocated
                return self._json(409, {"detail": _FULL})
            created = []
            for ip, values in zip(free, fields, strict=True):
                values.pop("address", None)  # NetBox overwrites any address in the body
                address = IpAddress(
                    id=self._next_ip_id,
                    address=ipaddress.ip_interface(f"{ip}/{prefix.prefix.prefixlen}"),
                    **values,
                )
                self._next_ip_id += 1
                self.addresses[address.id] = address
                self._index(address)
                created.append(self._ip_json(address, request.base_url))
        return self._json(201, created if many else created[0])

    # -- ip addresses ------------------------------------------------------------------------

    def _ip_json(self, address: IpAddress, base: str) -> dict[str, Any]:
        text = address.address.with_prefixlen
        return {
            "id": address.id,
            "url": f"{base}/api/ipam/ip-addresses/{address.id}/",
            "display_url": f"{base}/ipam/ip-addresses/{address.id}/",
            "display": text,
            "family": _family(address.address.version),
            "address": text,
            "vrf": None,
            "tenant": None,
            "status": {"value": address.status, "label": _STATUSES[address.status]},
            "role": None,
            "assigned_object_type": None,
            "assigned_object_id": None,
            "assigned_object": None,
            "nat_inside": None,
            "nat_outside": [],
            "dns_name": address.dns_name,
            "description": address.description,
            "owner": None,
            "comments": address.comments,
            "tags": address.tags,
            "custom_fields": address.custom_fields,
            "created": address.created,
            "last_updated": address.last_updated,
        }

    def _validated(self, item: dict[str, Any], *, partial: bool) -> dict[str, Any]:
        """The writable fields we model, checked like NetBox's serializer (unknown keys ignored)."""
        errors: dict[str, list[str]] = {}
        values: dict[str, Any] = {}
        if "status" in item or not partial:
            status = item.get("status", "active")
            if status not in _STATUSES:
                errors["status"] = [f'"{status}" is not a valid choice.']
            values["status"] = status
        for name, limit in (("description", 200), ("dns_name", 255), ("comments", 100000)):
            if name in item:
                value = item[name]
                if not isinstance(value, str):
                    errors[name] = ["Not a valid string."]
                elif len(value) > limit:
                    errors[name] = [f"Ensure this field has no more than {limit} characters."]
                values[name] = value
        if "tags" in item:
            if not isinstance(item["tags"], list):
                errors["tags"] = ['Expected a list of items but got type "dict".']
            values["tags"] = item["tags"]
        if "custom_fields" in item:
            if not isinstance(item["custom_fields"], dict):
                errors["custom_fields"] = ["Invalid data. Expected a dictionary."]
            values["custom_fields"] = item["custom_fields"]
        if "address" in item:
            try:
                values["address"] = ipaddress.ip_interface(str(item["address"]))
            except ValueError:
                errors["address"] = [f"Invalid IP address format: {item['address']}"]
        if errors:
            raise _Invalid(errors)
        return values

    def _list_addresses(self, request: Request) -> Reply:
        with self.lock:
            descriptions = request.query.get("description")
            if descriptions:
                # exact and case-sensitive; repeated values are ORed, as in NetBox's filtersets
                # (found through the index: a find by key does not scan every address)
                ids = sorted({i for d in descriptions for i in self._described.get(d, ())})
                items = [self.addresses[i] for i in ids]
            else:
                items = list(self.addresses.values())
            addresses = request.query.get("address")
            if addresses:
                items = [
                    a for a in items if str(a.address.ip) in {v.split("/")[0] for v in addresses}
                ]
            parents = request.query.get("parent")
            if parents:
                try:
                    nets = [ipaddress.ip_network(v) for v in parents]
                except ValueError as exc:
                    raise _Invalid({"parent": ["Invalid prefix."]}) from exc
                items = [a for a in items if any(a.address.ip in net for net in nets)]
            ids = request.query.get("id")
            if ids:
                items = [a for a in items if str(a.id) in ids]
            rows = [self._ip_json(a, request.base_url) for a in items]
        return self._page(request, rows)

    def _get_address(self, request: Request, key: str) -> Reply:
        with self.lock:
            address = self.addresses.get(int(key)) if key.isdigit() else None
            if address is None:
                return self._json(404, {"detail": "No IPAddress matches the given query."})
            return self._json(200, self._ip_json(address, request.base_url))

    def _update_address(self, request: Request, key: str) -> Reply:
        payload = request.json()
        if not isinstance(payload, dict):
            raise _Invalid({"non_field_errors": ["Invalid data. Expected a dictionary."]})
        values = self._validated(payload, partial=True)
        with self.lock:
            address = self.addresses.get(int(key)) if key.isdigit() else None
            if address is None:
                return self._json(404, {"detail": "No IPAddress matches the given query."})
            self._unindex(address)
            for name, value in values.items():
                setattr(address, name, value)
            self._index(address)
            address.last_updated = _now()
            return self._json(200, self._ip_json(address, request.base_url))

    def _delete_address(self, key: str) -> Reply:
        with self.lock:
            address = self.addresses.pop(int(key), None) if key.isdigit() else None
            if address is not None:
                self._unindex(address)
        if address is None:
            return self._json(404, {"detail": "No IPAddress matches the given query."})
        return Reply(204, headers={"API-Version": API_VERSION})

    # -- paging ------------------------------------------------------------------------------

    @staticmethod
    def _int_arg(request: Request, name: str, default: int) -> int:
        value = request.arg(name)
        if value is None or value == "":
            return default
        if not value.isdigit():
            raise _Invalid({name: ["A valid integer is required."]})
        return int(value)

    def _page(self, request: Request, rows: list[dict[str, Any]]) -> Reply:
        limit = self._int_arg(request, "limit", DEFAULT_PAGE)
        limit = MAX_PAGE if limit == 0 else min(limit, MAX_PAGE)
        offset = self._int_arg(request, "offset", 0)
        page = rows[offset : offset + limit]

        def link(new_offset: int) -> str:
            params = {k: v for k, v in request.query.items() if k not in ("limit", "offset")}
            params["limit"] = [str(limit)]
            if new_offset > 0:
                params["offset"] = [str(new_offset)]
            return f"{request.base_url}{request.path}?{urlencode(params, doseq=True)}"

        return self._json(
            200,
            {
                "count": len(rows),
                "next": link(offset + limit) if offset + limit < len(rows) else None,
                "previous": link(max(offset - limit, 0)) if offset > 0 else None,
                "results": page,
            },
        )
