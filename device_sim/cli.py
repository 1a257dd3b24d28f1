"""ems-sim command line: ``run``, ``provision``, ``check``."""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from device_sim import eventloop
from device_sim.config import ConfigError
from device_sim.eventloop import CHOICES as LOOP_CHOICES
from device_sim.eventloop import LoopError
from device_sim.fleet import FleetError
from device_sim.portal_api import PortalError
from device_sim.replay import ReplayError
from device_sim.scenario import ScenarioError

USER_ERRORS = (ConfigError, ScenarioError, ReplayError, FleetError, PortalError, LoopError)
# Options whose value may be a signed offset such as -1d or -2h (see timeparse.parse_time).
SIGNED_TIME_OPTIONS = frozenset({"--start", "--end"})
_SIGNED = re.compile(r"[+-]\d")


def default_state_dir() -> Path:
    if env := os.environ.get("EMS_SIM_STATE_DIR"):
        return Path(env)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "ems-sim"


def _run_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("run", help="run simulated meters", description="Run simulated meters.")
    p.add_argument(
        "-c",
        "--config",
        type=Path,
        action="append",
        default=[],
        metavar="PATH",
        help="a meter or fleet file (.toml/.json), or a directory of them; repeatable",
    )
    p.add_argument("--device-id", help="run one meter with this device id (instead of -c)")
    p.add_argument(
        "--password",
        default=os.environ.get("EMS_SIM_PASSWORD"),
        help="its MQTT password (default: $EMS_SIM_PASSWORD)",
    )
    p.add_argument("--host", help="broker host (default: $EMS_SIM_HOST, the file, 127.0.0.1)")
    p.add_argument("--port", type=int, help="broker port (default: $EMS_SIM_PORT, ..., 1883)")
    p.add_argument("--tls", action="store_true", default=None, help="connect with TLS")
    p.add_argument("--ca-file", type=Path, help="CA certificate(s) for --tls")
    p.add_argument("--interval", type=int, metavar="SECONDS", help="reading interval (600)")
    p.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="simulated seconds per real second (600: ten minutes pass each second)",
    )
    p.add_argument(
        "--start",
        default=None,
        metavar="TIME",
        help="simulated start: now (default, on the interval grid), -1d, or RFC 3339",
    )
    p.add_argument("--format", choices=("v1", "classic"), help="payload format (v1)")
    p.add_argument("--source", choices=("profile", "replay"), help="where energy comes from")
    p.add_argument(
        "--replay",
        type=Path,
        metavar="FILE",
        help="replay a sensor.csv-format file (implies --source replay)",
    )
    p.add_argument("--seed", type=int, help="profile seed (meter i gets SEED+i)")
    p.add_argument("--timezone", help="households' local time zone for the profile (UTC)")
    p.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="SPEC",
        help="KIND@WHEN[,key=value...], e.g. outage@2h,for=45m; repeatable",
    )
    p.add_argument("--scenario", type=Path, metavar="FILE", help="fault scenario file")
    p.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help=f"where buffers survive restarts (default {default_state_dir()})",
    )
    p.add_argument("--no-state", action="store_true", help="keep buffers in memory only")
    p.add_argument("--buffer-capacity", type=int, default=10_000, metavar="N")
    p.add_argument(
        "--backoff-max",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="longest wait between reconnect attempts (30)",
    )
    p.add_argument(
        "--progress",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="seconds between progress lines (5)",
    )
    p.add_argument("--duration", type=float, metavar="SECONDS", help="stop after this long")
    p.add_argument(
        "--loop",
        choices=LOOP_CHOICES,
        default="auto",
        help="event loop: uvloop if installed (auto, the fastest), or asyncio's own",
    )
    p.set_defaults(handler=_cmd_run)


def _cmd_run(args: argparse.Namespace) -> int:
    from device_sim.plan_cli import plan_from_args
    from device_sim.run import run

    plan = plan_from_args(
        args, state_dir=None if args.no_state else args.state_dir or default_state_dir()
    )
    return eventloop.run(run(plan, sys.stdout), args.loop)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ems-sim",
        description="Simulated EMS meters for field engineers: run, provision, check.",
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="log meter state changes (-vv: debug)"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _run_parser(sub)
    from device_sim.portal_cli import add_portal_commands

    add_portal_commands(sub)
    return parser


def join_signed_values(argv: Sequence[str]) -> list[str]:
    """``--start -1d`` → ``--start=-1d``: argparse takes a value that starts with "-" and is
    not a plain negative number for an option of its own, so the documented spelling would
    fail with "expected one argument". Joined, both spellings mean the same."""
    out: list[str] = []
    args = iter(argv)
    for arg in args:
        if arg == "--":  # everything after it is positional: leave it alone
            out += [arg, *args]
            break
        if arg in SIGNED_TIME_OPTIONS:
            value = next(args, None)
            if value is not None and _SIGNED.match(value):
                out.append(f"{arg}={value}")
                continue
            out += [arg] if value is None else [arg, value]
            continue
        out.append(arg)
    return out


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    return build_parser().parse_args(join_signed_values(sys.argv[1:] if argv is None else argv))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    logging.basicConfig(level=level, format="ems-sim: %(levelname)s: %(message)s")
    if not args.verbose:
        # Thousands of meters would log thousands of lines; the progress lines sum them up.
        logging.getLogger("firmware_stub").setLevel(logging.CRITICAL)
    try:
        code: int = args.handler(args)
    except USER_ERRORS as exc:
        print(f"ems-sim: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code
