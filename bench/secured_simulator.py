"""A scenario's simulator whose OPC UA servers offer security (for bench/opcua_security.py).

    .venv/bin/python -m bench.secured_simulator --scenario S --endpoint SOURCE_ID=URL \
        --cert server.der --key server.pem --trusted DIR --policy NoSecurity --policy ...

Every OPC UA server of the scenario offers the ``--policy`` endpoints (asyncua
``SecurityPolicyType`` names, e.g. ``NoSecurity``, ``Basic256Sha256_SignAndEncrypt``) with
the one login of tests/edge/opcua/security_kit.py (``USER`` / ``PASSWORD``) and accepts
client certificates found in ``--trusted``. Runs until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Run as a script: this checkout first, for `bench.*` and so a worktree measures its own code.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from asyncua import ua  # noqa: E402

from common.endpoints import parse_overrides  # noqa: E402
from common.service import run_until_signal, setup_logging  # noqa: E402
from simulators.opcua_server import OpcUaSourceServer, ServerSecurity  # noqa: E402
from simulators.runner import Simulator  # noqa: E402
from simulators.scenario import load_scenario  # noqa: E402
from tests.edge.opcua.security_kit import PASSWORD, USER  # noqa: E402

log = logging.getLogger("bench.secured_simulator")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", type=Path, required=True)
    parser.add_argument("--endpoint", action="append", default=[], metavar="SOURCE_ID=URL")
    parser.add_argument("--cert", type=Path, required=True, help="server certificate (DER)")
    parser.add_argument("--key", type=Path, required=True, help="its private key (PEM)")
    parser.add_argument("--trusted", type=Path, required=True, help="trusted client certs")
    parser.add_argument(
        "--policy",
        action="append",
        required=True,
        choices=[p.name for p in ua.SecurityPolicyType],
        help="an endpoint to offer (repeatable)",
    )
    parser.add_argument("--log-level", default="WARNING")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging(args.log_level)
    security = ServerSecurity(
        args.cert,
        args.key,
        tuple(ua.SecurityPolicyType[name] for name in args.policy),
        users={USER: PASSWORD},
        trusted_dir=args.trusted,
    )
    simulator = Simulator(
        load_scenario(args.scenario), endpoints=parse_overrides(args.endpoint, "--endpoint")
    )
    for server in simulator.equipment.values():
        if isinstance(server, OpcUaSourceServer):
            server.security = security  # read by prepare(), at start
    run_until_signal(lambda stop: simulator.run(stop=stop))
    return 0


if __name__ == "__main__":
    sys.exit(main())
