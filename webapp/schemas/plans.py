"""Service plans: what a subscriber buys (speeds) and how the network delivers it."""

from __future__ import annotations

import ipaddress
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from webapp.schemas.base import RequestSchema, Text, int_field

# FreeRADIUS group names end up in radusergroup/radgroupreply and in log lines.
RADIUS_GROUP = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
#: 1 Mbit/s to 1 Tbit/s.
MAX_MBPS = 1_000_000


class CidrPrefix(fields.String):
    """A network of one IP version in CIDR notation with no host bits set, with room for
    subscribers (at most ``max_length`` long)."""

    def __init__(self, version: int, max_length: int, example: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.version, self.max_length, self.example = version, max_length, example

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if "/" not in text:
            raise ValidationError(f"give the prefix length too (e.g. {self.example})")
        try:
            network = ipaddress.ip_network(text, strict=True)
        except ValueError as exc:
            raise ValidationError(f"not an IPv{self.version} CIDR prefix: {exc}") from None
        if network.version != self.version:
            raise ValidationError(f"not an IPv{self.version} CIDR prefix (e.g. {self.example})")
        if network.prefixlen > self.max_length:
            raise ValidationError(f"a /{network.prefixlen} has no room for subscribers")
        return str(network)


def Ipv4Prefix(**kwargs: Any) -> CidrPrefix:  # a field, named like one
    return CidrPrefix(4, 30, "100.64.0.0/24", **kwargs)


def Ipv6Pool(**kwargs: Any) -> CidrPrefix:  # a field, named like one
    # Whatever comes out of it is at most a /64, so the pool itself is shorter.
    return CidrPrefix(6, 63, "2001:db8::/40", **kwargs)


def _vlan(**kwargs: Any) -> fields.Integer:
    # 802.1Q: 0 means "no VLAN" and 4095 is reserved.
    return int_field(minimum=1, maximum=4094, **kwargs)


PLAN_EXAMPLE = {
    "name": "fiber-1000",
    "download_mbps": 1000,
    "upload_mbps": 500,
    "radius_group": "demo-fiber-1000",
    "ipv4_prefix": "100.64.4.0/22",
    "s_tag": 100,
    "c_tag": 300,
    "tech_profile_id": 64,
    "ipv6_delegation_pool": "2001:db8:100::/40",
    "ipv6_delegated_length": 56,
}

_POOL_DOC = {
    "ipv6_delegation_pool": "NetBox prefix (IPv6 CIDR) each subscriber's delegated prefix "
    "(RADIUS Delegated-IPv6-Prefix) comes from; none: an IPv4-only plan",
    "ipv6_delegated_length": "length of the delegated prefix: longer than the pool's, at "
    "most 64 (default 56)",
    "ipv6_wan_pool": "NetBox prefix (IPv6 CIDR) each subscriber's WAN /64 (RADIUS "
    "Framed-IPv6-Prefix) comes from; optional, needs a delegation pool",
}


class PlanCreateSchema(RequestSchema):
    name = Text(required=True, validate=validate.Length(1, 100))
    download_mbps = int_field(required=True, minimum=1, maximum=MAX_MBPS)
    upload_mbps = int_field(required=True, minimum=1, maximum=MAX_MBPS)
    radius_group = fields.String(
        required=True,
        validate=validate.Regexp(RADIUS_GROUP),
        metadata={"description": "FreeRADIUS group; unique across all tenants"},
    )
    ipv4_prefix = Ipv4Prefix(
        load_default=None, allow_none=True, metadata={"description": "NetBox prefix (CIDR)"}
    )
    s_tag = _vlan(load_default=None, allow_none=True)
    c_tag = _vlan(load_default=None, allow_none=True)
    tech_profile_id = int_field(load_default=None, allow_none=True)
    suspended_radius_group = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Regexp(RADIUS_GROUP),
        metadata={
            "description": "RADIUS group of its suspended subscribers (a walled garden, "
            "configured in FreeRADIUS by the operator); none: they are rejected"
        },
    )
    ipv6_delegation_pool = Ipv6Pool(
        load_default=None,
        allow_none=True,
        metadata={"description": _POOL_DOC["ipv6_delegation_pool"]},
    )
    ipv6_delegated_length = int_field(
        load_default=None,
        allow_none=True,
        minimum=1,
        maximum=64,
        metadata={"description": _POOL_DOC["ipv6_delegated_length"]},
    )
    ipv6_wan_pool = Ipv6Pool(
        load_default=None, allow_none=True, metadata={"description": _POOL_DOC["ipv6_wan_pool"]}
    )


class PlanUpdateSchema(RequestSchema):
    """Every field optional; a nullable field can be cleared with null."""

    name = Text(validate=validate.Length(1, 100))
    download_mbps = int_field(minimum=1, maximum=MAX_MBPS)
    upload_mbps = int_field(minimum=1, maximum=MAX_MBPS)
    radius_group = fields.String(validate=validate.Regexp(RADIUS_GROUP))
    ipv4_prefix = Ipv4Prefix(allow_none=True)
    s_tag = _vlan(allow_none=True)
    c_tag = _vlan(allow_none=True)
    tech_profile_id = int_field(allow_none=True)
    suspended_radius_group = fields.String(allow_none=True, validate=validate.Regexp(RADIUS_GROUP))
    ipv6_delegation_pool = Ipv6Pool(allow_none=True)
    ipv6_delegated_length = int_field(allow_none=True, minimum=1, maximum=64)
    ipv6_wan_pool = Ipv6Pool(allow_none=True)


class PlanSchema(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    download_mbps = fields.Integer(required=True)
    upload_mbps = fields.Integer(required=True)
    radius_group = fields.String(required=True)
    ipv4_prefix = fields.String(allow_none=True)
    s_tag = fields.Integer(allow_none=True)
    c_tag = fields.Integer(allow_none=True)
    tech_profile_id = fields.Integer(allow_none=True)
    suspended_radius_group = fields.String(allow_none=True)
    ipv6_delegation_pool = fields.String(allow_none=True)
    ipv6_delegated_length = fields.Integer(allow_none=True)
    ipv6_wan_pool = fields.String(allow_none=True)
    created_at = fields.DateTime(required=True)


class PlanListSchema(Schema):
    items = fields.List(fields.Nested(PlanSchema), required=True)
