"""The ONOS simulator answers as the olt app's OltWebResource and ONOS's device REST do."""

from __future__ import annotations

from typing import Any

import grpc
import requests
from voltha_protos import common_pb2, voltha_pb2_grpc

from tests.support.simulator_process import SimulatorHandle

AUTH = ("onos", "rocks")
# the field set of sadis' UniTagInformationCodec
TAG_INFO_FIELDS = {
    "uniTagMatch", "ponCTag", "ponSTag", "usPonCTagPriority", "usPonSTagPriority",
    "dsPonCTagPriority", "dsPonSTagPriority", "technologyProfileId", "upstreamBandwidthProfile",
    "downstreamBandwidthProfile", "serviceName", "enableMacLearning", "configuredMacAddress",
    "isDhcpRequired", "isIgmpRequired",
}  # fmt: skip


def onos(sim: SimulatorHandle, method: str, path: str, auth: Any = AUTH) -> requests.Response:
    return requests.request(method, f"{sim.onos_url}/onos/{path}", auth=auth, timeout=5)


def service(port: str, s: int = 100, c: int = 200, tp: int = 64) -> str:
    return f"olt/oltapp/services/{port}/{s}/{c}/{tp}"


def entries(sim: SimulatorHandle, where: str = "") -> list[dict[str, Any]]:
    response = onos(sim, "GET", f"olt/oltapp/programmed-subscribers{where}")
    assert response.status_code == 200
    return response.json()["entries"]


def test_basic_auth_is_required(sim: SimulatorHandle) -> None:
    assert onos(sim, "GET", "olt/oltapp/programmed-subscribers", auth=None).status_code == 401
    assert onos(sim, "GET", "olt/oltapp/programmed-subscribers", ("onos", "x")).status_code == 401


def test_unknown_port_name_is_a_500_like_onos(sim: SimulatorHandle) -> None:
    response = onos(sim, "POST", service("BBSM00000099-1"))
    assert response.status_code == 500
    assert response.text == "ConnectPoint not found for BBSM00000099-1"


def test_a_service_on_a_discovered_onu_is_programmed(sim: SimulatorHandle) -> None:
    onu = sim.add_onu("BBSM00000001")
    assert onu["uni_port_name"] == "BBSM00000001-1"
    assert onos(sim, "POST", service("BBSM00000001-1")).status_code == 200
    [entry] = entries(sim)
    assert entry["location"] == onu["location"] == "of:00000a0a0a0a0a00/16"
    assert set(entry["tagInfo"]) == TAG_INFO_FIELDS
    assert (entry["tagInfo"]["ponSTag"], entry["tagInfo"]["ponCTag"]) == (100, 200)
    assert entry["tagInfo"]["technologyProfileId"] == 64


def test_programmed_subscribers_filter_by_device_and_port(sim: SimulatorHandle) -> None:
    first = sim.add_onu("BBSM00000001")
    second = sim.add_onu("BBSM00000002", c_tag=201)
    onos(sim, "POST", service("BBSM00000001-1"))
    onos(sim, "POST", service("BBSM00000002-1", c=201))
    device = first["of_device_id"]
    assert len(entries(sim, f"/{device}")) == 2
    [only] = entries(sim, f"/{device}/{second['uni_port_no']}")
    assert only["tagInfo"]["ponCTag"] == 201
    assert entries(sim, "/of:00000000000000ff") == []


def test_programming_waits_for_the_configured_delay(sim: SimulatorHandle) -> None:
    sim.add_onu("BBSM00000001")
    sim.control("POST", "config", {"onos_program_delay_ms": 60_000}, expect=200)
    assert onos(sim, "POST", service("BBSM00000001-1")).status_code == 200
    assert entries(sim) == []
    assert sim.state()["onos"]["pending_subscribers"][0]["port_name"] == "BBSM00000001-1"


def test_a_disabled_onu_is_not_programmed_until_enabled(sim: SimulatorHandle) -> None:
    onu = sim.add_onu("BBSM00000001")
    with grpc.insecure_channel(sim.grpc_address) as channel:
        stub = voltha_pb2_grpc.VolthaServiceStub(channel)
        stub.DisableDevice(common_pb2.ID(id=onu["device_id"]), timeout=5)
        onos(sim, "POST", service("BBSM00000001-1"))
        assert entries(sim) == []
        stub.EnableDevice(common_pb2.ID(id=onu["device_id"]), timeout=5)
    assert len(entries(sim)) == 1


def test_an_unreachable_onus_port_is_down_and_not_programmed(sim: SimulatorHandle) -> None:
    # VOLTHA takes the UNI's logical port down while its ONU cannot be reached
    sim.add_onu("BBSM00000001", connect_status="UNREACHABLE")
    ports = onos(sim, "GET", "v1/devices/ports").json()["ports"]
    uni = next(p for p in ports if p["annotations"]["portName"] == "BBSM00000001-1")
    assert uni["isEnabled"] is False
    onos(sim, "POST", service("BBSM00000001-1"))
    assert entries(sim) == []


def test_a_port_without_a_sadis_entry_is_refused_with_204(sim: SimulatorHandle) -> None:
    # Given an ONU whose UNI SADIS knows nothing about
    sim.add_onu("BBSM00000001")
    sim.control("DELETE", "sadis/BBSM00000001-1", expect=200)
    # When the tagged POST arrives, Then the olt app refuses it and programs nothing
    assert onos(sim, "POST", service("BBSM00000001-1")).status_code == 204
    assert entries(sim) == []
    assert sim.state()["onos"]["pending_subscribers"] == []
    response = onos(sim, "GET", "sadis/subscriber/BBSM00000001-1")
    assert (response.status_code, response.json()["message"]) == (404, "Subscriber not found")


def test_only_a_service_with_exactly_these_tags_is_accepted(sim: SimulatorHandle) -> None:
    sim.add_onu("BBSM00000001", s_tag=100, c_tag=200, tp_id=64)
    for s, c, tp in ((100, 201, 64), (101, 200, 64), (100, 200, 65)):
        assert onos(sim, "POST", service("BBSM00000001-1", s, c, tp)).status_code == 204
    assert onos(sim, "POST", service("BBSM00000001-1", 100, 200, 64)).status_code == 200
    assert len(entries(sim)) == 1


def test_a_service_already_requested_is_refused_with_204(sim: SimulatorHandle) -> None:
    sim.add_onu("BBSM00000001")
    assert onos(sim, "POST", service("BBSM00000001-1")).status_code == 200
    assert onos(sim, "POST", service("BBSM00000001-1")).status_code == 204
    assert len(entries(sim)) == 1


def test_sadis_shows_the_ports_entry_and_control_adds_services(sim: SimulatorHandle) -> None:
    # Given a discovered ONU: SADIS has the demo plans' two services for its UNI
    sim.add_onu("BBSM00000001")
    sim.control(
        "POST", "sadis", {"port_name": "BBSM00000001-1", "s_tag": 300, "c_tag": 400, "tp_id": 66},
        expect=201,
    )  # fmt: skip
    response = onos(sim, "GET", "sadis/subscriber/BBSM00000001-1")
    assert response.status_code == 200
    [entry] = response.json()["entry"]
    assert entry["id"] == "BBSM00000001-1"
    tags = [(t["ponSTag"], t["ponCTag"], t["technologyProfileId"]) for t in entry["uniTagList"]]
    assert tags == [(100, 200, 64), (110, 210, 65), (300, 400, 66)]
    assert set(entry["uniTagList"][0]) == TAG_INFO_FIELDS
    profile = entry["uniTagList"][0]["upstreamBandwidthProfile"]
    assert onos(sim, "GET", f"sadis/bandwidthprofile/{profile}").status_code == 200
    assert onos(sim, "GET", "sadis/bandwidthprofile/Nope").status_code == 404
    assert onos(sim, "POST", service("BBSM00000001-1", 300, 400, 66)).status_code == 200


def test_a_service_naming_an_unknown_bandwidth_profile_is_never_listed(
    sim: SimulatorHandle,
) -> None:
    # Given a SADIS service whose bandwidth profile does not exist: no meters, flows never start
    sim.add_onu(
        "BBSM00000001",
        services=[{"s_tag": 100, "c_tag": 200, "tp_id": 64, "upstream_bp": "Missing"}],
    )
    assert onos(sim, "POST", service("BBSM00000001-1")).status_code == 200
    assert entries(sim) == []
    assert len(sim.state()["onos"]["pending_subscribers"]) == 1


def test_delete_of_a_service_sadis_no_longer_has_does_nothing(sim: SimulatorHandle) -> None:
    sim.add_onu("BBSM00000001")
    onos(sim, "POST", service("BBSM00000001-1"))
    sim.control("DELETE", "sadis/BBSM00000001-1", expect=200)
    assert onos(sim, "DELETE", service("BBSM00000001-1")).status_code == 204
    assert len(entries(sim)) == 1


def test_delete_answers_200_then_204(sim: SimulatorHandle) -> None:
    sim.add_onu("BBSM00000001")
    onos(sim, "POST", service("BBSM00000001-1"))
    assert onos(sim, "DELETE", service("BBSM00000001-1")).status_code == 200
    assert entries(sim) == []
    assert onos(sim, "DELETE", service("BBSM00000001-1")).status_code == 204


def test_an_invalid_vlan_is_a_400(sim: SimulatorHandle) -> None:
    sim.add_onu("BBSM00000001")
    assert onos(sim, "POST", service("BBSM00000001-1", s=5000)).status_code == 400
    assert onos(sim, "POST", "olt/oltapp/services/BBSM00000001-1/x/1/64").status_code == 400


def test_device_ports_carry_the_port_name(sim: SimulatorHandle) -> None:
    onu = sim.add_onu("BBSM00000001")
    ports = onos(sim, "GET", "v1/devices/ports").json()["ports"]
    uni = next(p for p in ports if p["annotations"]["portName"] == "BBSM00000001-1")
    assert f"{uni['element']}/{uni['port']}" == onu["location"]
    assert uni["isEnabled"] is True


def test_demo_onus_carry_both_demo_plans_services() -> None:
    # make run's plans: fiber-100 on 100/200/64 and fiber-500 on 110/210/65 (a plan change)
    from simulators.server import seed_demo
    from simulators.world import World

    world = World(onos_user="onos", onos_password="rocks", nas_secret="testing123")
    seed_demo(world, 2)
    tags = [(s["s_tag"], s["c_tag"], s["tp_id"]) for s in world.onos.sadis_entry("BBSM00000002-1")]
    assert tags == [(100, 200, 64), (110, 210, 65)]
