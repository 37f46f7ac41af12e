"""Our markers, and nothing else, are recognised as ours (no database, no systems)."""

from __future__ import annotations

import uuid

from orchestrator.reconcile import markers
from orchestrator.reconcile.inventory import _clears

WF = str(uuid.uuid4())


def test_netbox_keys_of_our_steps_only():
    key = markers.netbox_key(f"{WF}:allocate_ip", markers.NETBOX_ADDRESS_STEPS)
    assert key is not None and key.workflow_id == WF and key.key == f"{WF}:allocate_ip"
    wan = markers.netbox_key(f"{WF}:allocate_ipv6_prefix:wan", markers.NETBOX_PREFIX_STEPS)
    assert wan is not None and wan.wan and wan.key == f"{WF}:allocate_ipv6_prefix"
    for foreign in (
        "reserved for the NOC",
        "",
        None,
        f"{WF}:allocate_ip ",  # exact, like NetBox's filter
        f"{WF.upper()}:allocate_ip",
        f"{WF}:allocate_ip:wan",  # an address has no WAN twin
        f"{WF}:configure_cpe",  # not a NetBox step
        f"see {WF}:allocate_ip",
    ):
        assert markers.netbox_key(foreign, markers.NETBOX_ADDRESS_STEPS) is None, foreign


def test_cpe_tags_and_task_keys():
    assert markers.tag_subscriber(f"subscriber-{WF}") == WF
    assert markers.tag_subscriber("vip") is None
    assert markers.tag_subscriber(f"subscriber-{WF}-old") is None
    assert markers.task_workflow(f"{WF}:configure_cpe") == WF
    assert markers.task_workflow("noc-firmware") is None
    assert markers.task_workflow(f"{WF}:allocate_ip") is None


def test_a_clearing_task_is_told_from_a_push_without_keeping_values():
    push = {"parameterValues": [["Device.PPP.Interface.1.Username", "ppp-1", "xsd:string"]]}
    clear = {"parameterValues": [["Device.PPP.Interface.1.Username", "", "xsd:string"]]}
    assert not _clears(push) and _clears(clear) and not _clears({})
