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


class Ipv4Prefix(fields.String):
    """An IPv4 network in CIDR notation with no host bits set (e.g. 100.64.0.0/24)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if "/" not in text:
            raise ValidationError("give the prefix length too (e.g. 100.64.0.0/24)")
        try:
            network = ipaddress.IPv4Network(text, strict=True)
        except ValueError as exc:
            raise ValidationError(f"not an IPv4 CIDR prefix: {exc}") from None
        if network.prefixlen > 30:
            raise ValidationError("a /31 or /32 has no room for subscribers")
        return str(network)


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
    created_at = fields.DateTime(required=True)


class PlanListSchema(Schema):
    items = fields.List(fields.Nested(PlanSchema), required=True)
