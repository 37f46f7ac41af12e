"""ONOS's olt app (SEBA): the subscriber's service on its UNI, by port name and VLAN tags.

A 200 from the olt app only means "queued": it answers so even when nothing will be programmed.
We confirm through ``programmed-subscribers``, whose entries name the port by location
(``of:<dpid>/<port number>``), so we first look the port name up in ONOS's device ports.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from orchestrator.config import Settings
from orchestrator.errors import TransientError
from orchestrator.integrations.http import RestClient, RetryPolicy, Timeouts

SYSTEM = "onos"
log = logging.getLogger(__name__)


def _segment(value: str | int) -> str:
    return quote(str(value), safe="")


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
        )
        self._confirm_timeout = confirm_timeout
        self._confirm_interval = confirm_interval
        self._clock = clock
        self._sleep = sleep

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

    def location_of(self, port_name: str) -> str | None:
        """``of:<dpid>/<port>`` of the port ONOS knows by this name, or None if it knows none."""
        response = self._rest.request(
            "GET", "/onos/v1/devices/ports", operation="list_ports", idempotent=True
        )
        for port in response.json().get("ports", []):
            if port.get("annotations", {}).get("portName") == port_name:
                return f"{port['element']}/{port['port']}"
        return None

    def programmed_services(self, port_name: str) -> list[dict[str, Any]]:
        """The tag information of every service programmed on the port (empty if none)."""
        location = self.location_of(port_name)
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

    def is_programmed(self, port_name: str, s_tag: int, c_tag: int) -> bool:
        return any(
            info.get("ponSTag") == s_tag and info.get("ponCTag") == c_tag
            for info in self.programmed_services(port_name)
        )

    def activate_service(self, port_name: str, s_tag: int, c_tag: int, tp_id: int) -> None:
        """Provisions the service and waits (bounded) until ONOS shows it programmed.

        Raises TransientError when ONOS accepted the request but has not programmed the service
        within ``confirm_timeout``; calling again is safe (an already programmed service is left
        alone, and ONOS takes a repeated request for the same service as the same service).
        """
        if self.is_programmed(port_name, s_tag, c_tag):
            return
        self._rest.request(
            "POST",
            self._service_path(port_name, s_tag, c_tag, tp_id),
            operation="activate_service",
            ok=(200, 204),
            idempotent=False,
        )
        deadline = self._clock() + self._confirm_timeout
        while True:
            if self.is_programmed(port_name, s_tag, c_tag):
                return
            if self._clock() >= deadline:
                raise TransientError(
                    f"{SYSTEM} activate_service: {port_name} s{s_tag}/c{c_tag} accepted but not "
                    f"programmed after {self._confirm_timeout:g} s",
                    system=SYSTEM,
                    operation="activate_service",
                )
            self._sleep(self._confirm_interval)

    def deactivate_service(self, port_name: str, s_tag: int, c_tag: int, tp_id: int) -> None:
        """Removes the service; one that is not there (or whose port is gone) counts as done."""
        try:
            self._rest.request(
                "DELETE",
                self._service_path(port_name, s_tag, c_tag, tp_id),
                operation="deactivate_service",
                ok=(200, 204),
                idempotent=True,
            )
        except TransientError:
            # ONOS answers 500 "ConnectPoint not found" when the ONU is gone, and 500 is also what
            # a real failure looks like: what is programmed decides, not the message
            if self.is_programmed(port_name, s_tag, c_tag):
                raise
            log.info("onos service on %s s%s/c%s already absent", port_name, s_tag, c_tag)

    def close(self) -> None:
        self._rest.close()
