"""Provisioning on two PONs of one OLT, end to end through the engine.

UNI ports are numbered ``pon << 12 | onu_id << 4``: once ONU ids ran past 255 on PON 0, its ports
took the numbers of PON 1's (ONU 257 of PON 0 and ONU 1 of PON 1 were both port 4112), and
provisionings on PON 1 completed by adopting another subscriber's ONOS service. A full PON now
refuses more ONUs, so the numbers never meet: each subscriber gets its own service on its own
port.
"""

from __future__ import annotations

from typing import Any

from simulators.access import ONUS_PER_PON
from tests.support.requests import provision_body, submit, unique_cpe_serial, unique_serial
from tests.support.workflows import steps, wait_terminal


def new_subscriber(sim: Any, plan_id: int, pon: int) -> tuple[dict[str, Any], dict[str, Any]]:
    body = provision_body(
        plan_id, discovered=False, onu_serial=unique_serial(), cpe_serial=unique_cpe_serial()
    )
    onu = sim.add_onu(body["onu_serial"], pon=pon)
    sim.add_cpe(body["cpe_serial"])
    return body, onu


def test_subscribers_on_two_pons_get_their_own_services(
    sim, client, worker, network_plan, operator_key
):
    # Given PON 0 full (its last ONU is one subscriber's), and another subscriber on PON 1,
    # both on the same plan: the same S-tag, C-tag and tech profile
    for n in range(ONUS_PER_PON - 1):
        sim.add_onu(f"PONZ{n:04d}", pon=0)
    first, first_onu = new_subscriber(sim, network_plan.id, pon=0)
    second, second_onu = new_subscriber(sim, network_plan.id, pon=1)
    assert first_onu["onu_id"] == ONUS_PER_PON
    assert (second_onu["pon"], second_onu["onu_id"]) == (1, 1)
    assert first_onu["location"] != second_onu["location"]
    # and PON 0 refuses a 129th ONU instead of numbering it into PON 1's ports
    refused = sim.session.post(
        f"{sim.http_url}/_sim/onus", json={"serial": unique_serial(), "pon": 0}, timeout=10
    )
    assert refused.status_code == 409

    # When both are provisioned through the engine
    workflows = [submit(client, operator_key, body)[0] for body in (first, second)]

    # Then both complete, each with its own service on its own port: none adopted another's
    assert [wait_terminal(w).value for w in workflows] == ["completed", "completed"]
    programmed = sim.state()["onos"]["programmed_subscribers"]
    by_port = {s["port_name"]: s["location"] for s in programmed}
    assert by_port == {
        f"{first['onu_serial']}-1": first_onu["location"],
        f"{second['onu_serial']}-1": second_onu["location"],
    }
    pairs = ((first, first_onu), (second, second_onu))
    for (body, onu), workflow_id in zip(pairs, workflows, strict=True):
        posts = [
            r
            for r in sim.requests("onos")
            if r["method"] == "POST" and f"/services/{body['onu_serial']}-1/" in r["path"]
        ]
        assert len(posts) == 1  # its own request, accepted, not a refusal it then adopted
        activate = steps(workflow_id)["activate_onu"]
        assert activate.output["port_name"] == f"{body['onu_serial']}-1"
        assert activate.output["onu_device_id"] == onu["device_id"]
