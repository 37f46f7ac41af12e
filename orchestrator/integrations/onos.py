"""ONOS's olt app (SEBA): the subscriber's service on its UNI, by port name and VLAN tags.

On the tagged route the olt app decides at once (opencord/olt ``OltWebResource``,
``Olt.provisionSubscriber``): 200 when it took the request, 204 when it refused (no SADIS entry
for the port, no service with exactly these tags in it, or already requested). A refusal is
explained from SADIS (``GET /onos/sadis/subscriber/{portName}``). We confirm through
``programmed-subscribers``, whose entries name the port by location (``of:<dpid>/<port number>``),
so we first look the port name up in ONOS's device ports; it lists services whose flows are
pending, added or in error, so it proves the request was taken, not that traffic passes.

ONOS finds a port by name only by scanning every port of every device (its REST has
``/onos/v1/devices/ports`` and ``/onos/v1/devices/{id}/ports``, no port by name; the olt app's
own ``Olt.findSubscriberConnectPoint`` loops over them all). So the client keeps the names it has
seen with their locations, and those VOLTHA gives (the provisioning step has just found the ONU
there): a name it does not know refreshes the whole map, and a known one costs nothing. The
map is read one device at a time (the device list, then each device's ports), so no answer
holds more than one OLT's ports, however large the network. A location changes only when an
ONU ranges elsewhere, so the polls trust the map; where an answer decides something (send
nothing, call a removal done) the location is first checked against its one device's ports,
and a poll that ends without the service looks again on a checked location before it gives up.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

from orchestrator.config import Settings
from orchestrator.errors import PermanentError, TransientError
from orchestrator.integrations.http import RestClient, RetryPolicy, Timeouts
from orchestrator.integrations.lookup_cache import LookupCache

SYSTEM = "onos"
log = logging.getLogger(__name__)


def _segment(value: str | int) -> str:
    return quote(str(value), safe="")


def _same_service(info: dict[str, Any], s_tag: int, c_tag: int, tp_id: int) -> bool:
    # what the olt app matches a request against (OltUtils.getUniTagInformation)
    return (info.get("ponSTag"), info.get("ponCTag"), info.get("technologyProfileId")) == (
        s_tag,
        c_tag,
        tp_id,
    )


class OnosClient:
    def __init__(
        self,
        url: str,
        user: str,
        password: str,
        *,
        timeouts: Timeouts | None = None,
        retry: RetryPolicy | None = None,
        confirm_timeout: float = 5.0,
        confirm_interval: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._rest = RestClient(
            SYSTEM,
            url,
            timeouts=timeouts or Timeouts(),
            retry=retry or RetryPolicy(),
            auth=(user, password),
            secrets=(password,),
            # the olt app has no exception mapper: an unknown port or a bad VLAN is a 500, an
            # answer about the request, not a sign that ONOS is unwell (the circuit ignores it)
            healthy_statuses=frozenset({500}),
        )
        self._confirm_timeout = confirm_timeout
        self._confirm_interval = confirm_interval
        self._clock = clock
        self._sleep = sleep
        #: port name -> "of:<dpid>/<port>", as of the last listing of every device's ports
        self._locations: LookupCache[str] = LookupCache()

    @classmethod
    def from_settings(cls, settings: Settings) -> OnosClient:
        return cls(
            settings.onos_url,
            settings.onos_user,
            settings.onos_password,
            timeouts=Timeouts(settings.http_connect_timeout, settings.http_read_timeout),
        )

    def __repr__(self) -> str:
        return f"OnosClient(url={self._rest.base_url!r})"

    @staticmethod
    def _service_path(port_name: str, s_tag: int, c_tag: int, tp_id: int) -> str:
        parts = "/".join(_segment(p) for p in (port_name, s_tag, c_tag, tp_id))
        return f"/onos/olt/oltapp/services/{parts}"

    def location_of(self, port_name: str, *, verify: bool = False) -> str | None:
        """``of:<dpid>/<port>`` of the port ONOS knows by this name, or None if it knows none.

        From the client's map; a name not in it refreshes the map (one listing of every
        device's ports). With ``verify`` a location from the map is first checked against its
        device's ports (the port still has this name), and refreshed if it does not.
        """
        location, seen = self._locations.get(port_name)
        if location is None or (verify and not self._still_named(location, port_name)):
            return self._locations.refresh(port_name, seen, lambda _known: self._list_locations())
        return location

    def learn_location(self, port_name: str, location: str) -> None:
        """Where VOLTHA says the port is (``of:<dpid>/<port>``, see ``OnuLocation``): a port
        of a newly ranged ONU is then found without listing every port of the network."""
        self._locations.learn(port_name, location)

    def _list_locations(self) -> dict[str, str]:
        """Every named port's location."""
        return dict(self.named_ports())

    def named_ports(self) -> Iterator[tuple[str, str]]:
        """(name, ``of:<dpid>/<port>``) of every named port, one device at a time
        (DevicesWebResource: ``/onos/v1/devices``, then ``/onos/v1/devices/{id}/ports``), so a
        caller keeping only some of them holds one OLT's ports at most, not the network's."""
        devices = self._rest.request(
            "GET", "/onos/v1/devices", operation="list_devices", idempotent=True
        ).json()
        for device in devices.get("devices", []):
            device_id = str(device["id"])
            response = self._rest.request(
                "GET",
                f"/onos/v1/devices/{_segment(device_id)}/ports",
                operation="device_ports",
                ok=(200, 404),  # removed since the list was read: it has no ports to name
                idempotent=True,
            )
            if response.status_code == 404:
                continue
            for port in response.json().get("ports", []):
                if name := port.get("annotations", {}).get("portName"):
                    yield name, f"{device_id}/{port['port']}"

    def _still_named(self, location: str, port_name: str) -> bool:
        """Whether the port at ``location`` is still the one named ``port_name`` (one device's
        ports: DevicesWebResource.getDevicePorts; 404 "Device is not found")."""
        device_id, port = location.rsplit("/", 1)
        response = self._rest.request(
            "GET",
            f"/onos/v1/devices/{_segment(device_id)}/ports",
            operation="device_ports",
            ok=(200, 404),
            idempotent=True,
        )
        if response.status_code == 404:
            return False
        return any(
            str(p.get("port")) == port and p.get("annotations", {}).get("portName") == port_name
            for p in response.json().get("ports", [])
        )

    def programmed_services(self, port_name: str, *, verify: bool = False) -> list[dict[str, Any]]:
        """The tag information of every service programmed on the port (empty if none); with
        ``verify``, on a location checked against ONOS (see :meth:`location_of`)."""
        location = self.location_of(port_name, verify=verify)
        if location is None:
            return []
        device_id, port = location.rsplit("/", 1)
        response = self._rest.request(
            "GET",
            f"/onos/olt/oltapp/programmed-subscribers/{_segment(device_id)}/{_segment(port)}",
            operation="programmed_subscribers",
            idempotent=True,
        )
        return [
            entry.get("tagInfo", {})
            for entry in response.json().get("entries", [])
            if entry.get("location") == location
        ]

    def is_programmed(
        self,
        port_name: str,
        s_tag: int,
        c_tag: int,
        tp_id: int | None = None,
        *,
        verify: bool = False,
    ) -> bool:
        """Whether programmed-subscribers lists this service on the port.

        Listed means the olt app took the request and works on its flows (pending-add, added or
        in error): it proves the request was taken, not that traffic passes. Pass ``verify``
        when the answer decides something (see :meth:`location_of`).
        """
        return any(
            info.get("ponSTag") == s_tag
            and info.get("ponCTag") == c_tag
            and tp_id in (None, info.get("technologyProfileId"))
            for info in self.programmed_services(port_name, verify=verify)
        )

    def sadis_services(self, port_name: str) -> list[dict[str, Any]] | None:
        """The uniTagList of the port's SADIS entry, or None if SADIS has no entry for it."""
        response = self._rest.request(
            "GET",
            f"/onos/sadis/subscriber/{_segment(port_name)}",
            operation="sadis_subscriber",
            ok=(200, 404),
            idempotent=True,
        )
        if response.status_code == 404:  # sadis: ItemNotFoundException "Subscriber not found"
            return None
        entries = response.json().get("entry", [])
        return [tag for entry in entries for tag in entry.get("uniTagList") or []]

    def _await(self, condition: Callable[[], bool]) -> bool:
        """Polls ``condition`` until it holds or ``confirm_timeout`` has passed."""
        deadline = self._clock() + self._confirm_timeout
        while True:
            if condition():
                return True
            if self._clock() >= deadline:
                return False
            self._sleep(self._confirm_interval)

    def activate_service(self, port_name: str, s_tag: int, c_tag: int, tp_id: int) -> None:
        """Provisions the service and waits (bounded) until ONOS lists it.

        200 is the only acceptance: the olt app answers 204 when it refused (opencord/olt
        ``Olt.provisionSubscriber`` returned false), and then SADIS tells why.

        Raises PermanentError when ONOS refused (no SADIS entry for the port, no service with
        exactly these tags in it, or already requested but not ours to adopt); TransientError
        when ONOS accepted but does not list the service within ``confirm_timeout`` (calling again
        is safe: a listed service is left alone).
        """
        # a listed service is left alone; positive answers only are checked, as a wrong
        # negative merely sends a POST that ONOS refuses (204) and we then adopt
        if self.is_programmed(port_name, s_tag, c_tag, tp_id) and self.is_programmed(
            port_name, s_tag, c_tag, tp_id, verify=True
        ):
            return
        response = self._rest.request(
            "POST",
            self._service_path(port_name, s_tag, c_tag, tp_id),
            operation="activate_service",
            ok=(200, 204),
            idempotent=False,
        )
        if response.status_code == 204:
            self._explain_refusal(port_name, s_tag, c_tag, tp_id)
            return
        if not self._listed(port_name, s_tag, c_tag, tp_id):
            raise TransientError(
                f"{SYSTEM} activate_service: {port_name} s{s_tag}/c{c_tag}/tp{tp_id} accepted but "
                f"not listed in programmed-subscribers after {self._confirm_timeout:g} s",
                system=SYSTEM,
                operation="activate_service",
            )

    def _listed(self, port_name: str, s_tag: int, c_tag: int, tp_id: int) -> bool:
        """Polls until the service is listed. Called once ONOS has the request (by port name,
        which it resolves itself), so a listing is ours; a poll that ends without one looks
        again on a checked location, in case the map's went stale (the ONU ranged elsewhere)."""
        return self._await(
            lambda: self.is_programmed(port_name, s_tag, c_tag, tp_id)
        ) or self.is_programmed(port_name, s_tag, c_tag, tp_id, verify=True)

    def _explain_refusal(self, port_name: str, s_tag: int, c_tag: int, tp_id: int) -> None:
        """After a 204 to our POST: adopt the service if it is exactly ours, else fail for good."""
        wanted = f"s{s_tag}/c{c_tag}/tp{tp_id}"
        services = self.sadis_services(port_name)
        if services is None:
            raise self._refused(f"SADIS has no entry for {port_name}")
        if not any(_same_service(info, s_tag, c_tag, tp_id) for info in services):
            offered = ", ".join(
                f"s{i.get('ponSTag')}/c{i.get('ponCTag')}/tp{i.get('technologyProfileId')}"
                for i in services
            )
            raise self._refused(
                f"the SADIS entry for {port_name} has no service {wanted} "
                f"(it has: {offered or 'none'})"
            )
        # SADIS has the service, so the olt app refused because it was requested already: by an
        # earlier attempt of ours whose answer was lost, or by someone else with the same tags
        if self._listed(port_name, s_tag, c_tag, tp_id):
            log.info("onos service %s %s already requested: adopted", port_name, wanted)
            return
        raise self._refused(
            f"{wanted} on {port_name} was already requested, but programmed-subscribers does "
            "not list it"
        )

    @staticmethod
    def _refused(cause: str) -> PermanentError:
        return PermanentError(
            f"{SYSTEM} activate_service refused (HTTP 204): {cause}",
            system=SYSTEM,
            operation="activate_service",
            status=204,
        )

    def deactivate_service(self, port_name: str, s_tag: int, c_tag: int, tp_id: int) -> None:
        """Removes the service and confirms it left programmed-subscribers.

        A service that is not there (or whose port is gone) counts as done. ONOS answers 204 both
        when it was not provisioned and when SADIS no longer has the service (nothing removed),
        so the listing decides, not the status.
        """
        try:
            response = self._rest.request(
                "DELETE",
                self._service_path(port_name, s_tag, c_tag, tp_id),
                operation="deactivate_service",
                ok=(200, 204),
                idempotent=True,
            )
        except TransientError:
            # ONOS answers 500 "ConnectPoint not found" when the ONU is gone, and 500 is also what
            # a real failure looks like: what is programmed decides, not the message
            if self.is_programmed(port_name, s_tag, c_tag, tp_id, verify=True):
                raise
            log.info("onos service on %s s%s/c%s already absent", port_name, s_tag, c_tag)
            return
        if response.status_code == 204:
            if self.is_programmed(port_name, s_tag, c_tag, tp_id, verify=True):
                raise PermanentError(
                    f"{SYSTEM} deactivate_service: ONOS removed nothing (HTTP 204) but "
                    f"programmed-subscribers still lists s{s_tag}/c{c_tag}/tp{tp_id} on "
                    f"{port_name}: its SADIS entry no longer has the service",
                    system=SYSTEM,
                    operation="deactivate_service",
                    status=204,
                )
            return
        if not self._await(lambda: not self.is_programmed(port_name, s_tag, c_tag, tp_id)):
            raise TransientError(
                f"{SYSTEM} deactivate_service: s{s_tag}/c{c_tag}/tp{tp_id} on {port_name} still "
                f"listed {self._confirm_timeout:g} s after ONOS took the removal",
                system=SYSTEM,
                operation="deactivate_service",
            )

    def close(self) -> None:
        self._rest.close()
