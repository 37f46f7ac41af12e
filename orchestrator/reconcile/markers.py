"""How we recognise what we wrote, read from what the steps write today.

- NetBox: an address or prefix whose ``description`` is a step's idempotency key,
  ``<workflow id>:<step>`` (``:wan`` added for the WAN /64); see orchestrator/steps/netbox.py.
  Nothing else marks them (no tag, no custom field).
- RADIUS: a row in our ownership table ``orchestrator_radius_account`` (username, workflow id),
  written in the transaction that creates the account; an account without one is not ours.
- ONOS: nothing on the service itself. Ours are the services whose exact port name and tags an
  intent of ours (activate_onu, reprogram_onu) recorded before it asked ONOS.
- GenieACS: the tag ``subscriber-<subscriber id>`` on a device, and tasks whose ``uniqueKey`` is
  configure_cpe's idempotency key ``<workflow id>:configure_cpe`` (the push, and the clearing
  task deprovisioning queues under the same key).

Anything without these is someone else's and is never listed, let alone removed.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from orchestrator.steps.genieacs import subscriber_tag

_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"

#: The NetBox steps that stamp their key on what they allocate, by kind of object.
NETBOX_ADDRESS_STEPS = frozenset({"allocate_ip"})
NETBOX_PREFIX_STEPS = frozenset({"allocate_ipv6_prefix", "move_ipv6_prefix"})
#: The steps whose intents name an ONOS service (port name and tags).
ONOS_STEPS = frozenset({"activate_onu", "reprogram_onu"})
#: The step whose idempotency key is the uniqueKey of our GenieACS tasks.
CPE_STEP = "configure_cpe"

_NETBOX_KEY = re.compile(rf"^(?P<workflow>{_UUID}):(?P<step>[a-z0-9_]+)(?P<wan>:wan)?$")
_TASK_KEY = re.compile(rf"^(?P<workflow>{_UUID}):{CPE_STEP}$")
_TAG_PREFIX = subscriber_tag("")
_TAG = re.compile(rf"^{re.escape(_TAG_PREFIX)}(?P<subscriber>{_UUID})$")
#: For GenieACS queries: the regexes above without their groups.
TAG_PATTERN = rf"^{re.escape(_TAG_PREFIX)}{_UUID}$"
TASK_KEY_PATTERN = rf"^{_UUID}:{CPE_STEP}$"


@dataclass(frozen=True)
class NetBoxKey:
    workflow_id: str
    step: str
    wan: bool

    @property
    def key(self) -> str:
        """The step's idempotency key (the WAN /64's key is this plus ``:wan``)."""
        return f"{self.workflow_id}:{self.step}"


def netbox_key(description: str | None, steps: frozenset[str]) -> NetBoxKey | None:
    """The key in a NetBox description, if it is one of ``steps``' keys."""
    match = _NETBOX_KEY.match(description or "")
    if match is None or match["step"] not in steps:
        return None
    if match["wan"] and match["step"] not in NETBOX_PREFIX_STEPS:
        return None
    return NetBoxKey(match["workflow"], match["step"], bool(match["wan"]))


def tag_subscriber(tag: str) -> str | None:
    """The subscriber id in one of our CPE tags."""
    match = _TAG.match(tag)
    return match["subscriber"] if match else None


def task_workflow(unique_key: str | None) -> str | None:
    """The workflow whose configure_cpe step queued a task with this uniqueKey."""
    match = _TASK_KEY.match(unique_key or "")
    return match["workflow"] if match else None


def is_uuid(value: str | None) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


#: The steps whose undo (or, for our own rows, deprovisioning's forward step) a cleanup runs on
#: behalf of the workflow that made an orphan; orchestrator/reconcile/cleanup.py maps each to
#: its one implementation.
CLEANUP_STEPS = frozenset(
    {
        "allocate_ip",
        "allocate_ipv6_prefix",
        "move_ipv6_prefix",
        "create_radius_account",
        "activate_onu",
        "configure_cpe",
        "end_billing",
        "mark_terminated",
    }
)
