"""Entry point: ``orchestrator-simulators --host 127.0.0.1 --http-port 8100 --grpc-port 8155``.

One process serves NetBox (``/netbox``), ONOS (``/onos``), GenieACS (``/genieacs``) and the control
API (``/_sim``) over HTTP, VOLTHA over gRPC, and a NAS's RFC 5176 Disconnect-Request port over UDP
(``--nas-port``, 3799). SIGTERM or SIGINT stops it cleanly, even while requests are being held by
a "timeout" fault.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from collections.abc import Sequence
from types import FrameType

from simulators import control
from simulators.access import ONUS_PER_PON, PONS_PER_OLT
from simulators.nas import NasServer
from simulators.netbox import DEFAULT_TOKENS
from simulators.voltha import start_grpc_server
from simulators.web import SimulatorHTTPServer, serve_in_thread
from simulators.world import World

log = logging.getLogger("simulators")


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="orchestrator-simulators", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--http-port", type=int, default=8100)
    parser.add_argument("--grpc-port", type=int, default=8155)
    parser.add_argument(
        "--hold-s", type=float, default=30.0, help="how long a timeout fault holds a request"
    )
    parser.add_argument(
        "--nas-port", type=int, default=3799, help="UDP port of the NAS's Disconnect-Requests"
    )
    parser.add_argument(
        "--nas-secret", default="testing123", help="RADIUS secret the NAS shares with its clients"
    )
    parser.add_argument("--onos-user", default="onos")
    parser.add_argument("--onos-password", default="rocks")
    parser.add_argument(
        "--netbox-token",
        action="append",
        dest="netbox_tokens",
        metavar="TOKEN",
        help="an API token NetBox accepts (repeatable; v2 as nbt_<key>.<token>); default: the "
        "one the orchestrator's settings use by default",
    )
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument(
        "--demo",
        type=int,
        default=0,
        metavar="N",
        help="start with N discovered ONUs (BBSM00000001...) and CPEs (DEMOCPE0001...)",
    )
    return parser.parse_args(argv)


#: The IPv6 pools of the demo plans (orchestrator/demo.py): delegated /56s come from them.
DEMO_IPV6_POOLS = ("2001:db8:100::/40", "2001:db8:200::/40")


def seed_demo(world: World, count: int) -> None:
    """What a lab has after its ONUs ranged and its CPEs informed: `make run`'s example uses it.

    As many OLTs as the ONUs need (2,048 a 16-PON OLT), the ONUs spread over their PONs."""
    per_olt = PONS_PER_OLT * ONUS_PER_PON
    while len(world.access.olts()) * per_olt < count:
        world.access.add_olt()
    for number in range(1, count + 1):
        onu = world.access.add_onu(f"BBSM{number:08d}")
        for port in onu.ports:
            if port.of_name:  # the UNI: SADIS has both demo plans' services for it
                world.onos.set_sadis_entry(port.of_name, list(control.DEFAULT_SERVICES))
        world.genieacs.add_cpe(
            f"DEMOCPE{number:04d}",
            "A4230F",
            "SimCPE",
            "tr181",
            online=True,
            in_session=False,
            # the index in the last two bytes, in hex: DEMOCPE0010 is 02:DE:00:00:00:0A
            mac=f"02:DE:00:00:{number >> 8:02X}:{number & 0xFF:02X}",
        )


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(name)s %(message)s")
    world = World(
        hold_s=args.hold_s,
        onos_user=args.onos_user,
        onos_password=args.onos_password,
        nas_secret=args.nas_secret,
        netbox_tokens=tuple(args.netbox_tokens or DEFAULT_TOKENS),
    )

    seed_demo(world, args.demo)
    if args.demo:
        for pool in DEMO_IPV6_POOLS:  # the demo plans' IPv6 pools
            world.netbox.add_prefix(pool)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    # gRPC and the NAS first: once HTTP answers /_sim/state, everything is up
    grpc_server, grpc_port = start_grpc_server(world.access, world, args.host, args.grpc_port)
    nas_server = NasServer(world.nas, world, args.host, args.nas_port).start()
    http_server = SimulatorHTTPServer((args.host, args.http_port), world)
    http_thread = serve_in_thread(http_server)
    http_port = http_server.server_address[1]
    log.info(
        "simulators ready: http://%s:%s grpc %s:%s nas udp %s:%s",
        args.host,
        http_port,
        args.host,
        grpc_port,
        args.host,
        nas_server.port,
    )

    while not stop.wait(0.5):
        pass

    log.info("stopping simulators")
    world.release_held(for_good=True)
    http_server.shutdown()
    http_server.server_close()
    http_thread.join(timeout=5)
    grpc_server.stop(grace=1).wait(timeout=5)
    nas_server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
