"""``ems-sim provision`` and ``ems-sim check``: their flags, and the portal login they share."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

from device_sim.config import BrokerOptions, ConfigError, load_configs
from device_sim.plan import broker_plan
from device_sim.timeparse import parse_time

DEFAULT_PORTAL = "http://127.0.0.1:8000"


def _portal_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--portal",
        default=os.environ.get("EMS_SIM_PORTAL_URL", DEFAULT_PORTAL),
        help=f"portal base URL (default: $EMS_SIM_PORTAL_URL or {DEFAULT_PORTAL})",
    )
    p.add_argument(
        "--admin-user",
        default=os.environ.get("EMS_SIM_ADMIN_USER", "admin"),
        help="administrator to log in as (default: $EMS_SIM_ADMIN_USER or admin)",
    )
    p.add_argument(
        "--admin-password",
        default=os.environ.get("EMS_SIM_ADMIN_PASSWORD"),
        help="its password (default: $EMS_SIM_ADMIN_PASSWORD, else asked)",
    )


def _broker_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", help="broker host the meters connect to")
    p.add_argument("--port", type=int, help="broker port")
    p.add_argument("--tls", action="store_true", default=None, help="meters connect with TLS")
    p.add_argument("--ca-file", type=Path, help="CA certificate(s) for --tls")


def _admin_password(args: argparse.Namespace) -> str:
    if args.admin_password:
        return str(args.admin_password)
    if sys.stdin.isatty():
        return getpass.getpass(f"password for {args.admin_user} at {args.portal}: ")
    raise ConfigError("no administrator password: pass --admin-password or EMS_SIM_ADMIN_PASSWORD")


def add_portal_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "provision",
        help="create devices in the portal and write meter files",
        description="Create N devices through the portal API (as an "
        "administrator) and write their MQTT credentials to meter files.",
    )
    p.add_argument("-n", "--count", type=int, default=1, help="how many devices (1)")
    p.add_argument(
        "-o",
        "--out",
        type=Path,
        default=Path("fleet.toml"),
        help="fleet file to write (fleet.toml); with --split, a directory",
    )
    p.add_argument("--split", action="store_true", help="one file per meter in --out")
    p.add_argument("--force", action="store_true", help="overwrite existing meter files")
    p.add_argument("--owner", metavar="USERNAME", help="assign the devices to this client")
    p.add_argument("--name-prefix", default="sim", help="device names: PREFIX-00001...")
    p.add_argument("--interval", type=int, default=600, metavar="SECONDS")
    p.add_argument("--max-hourly-kwh", type=float, default=5.0)
    p.add_argument("--meter-kind", choices=("cumulative", "interval"), default="cumulative")
    p.add_argument("--rated-power-w", type=float)
    p.add_argument("--concurrency", type=int, default=8, help="requests at once (8)")
    _portal_flags(p)
    _broker_flags(p)
    p.set_defaults(handler=_cmd_provision)

    c = sub.add_parser(
        "check",
        help="check a deployment end to end",
        description="Publish a known series as a meter and verify through the "
        "portal API that the stored hourly energy matches. Exit 0 on a match.",
    )
    c.add_argument(
        "-c",
        "--config",
        type=Path,
        action="append",
        default=[],
        help="use the first meter of this file (default: provision one)",
    )
    c.add_argument("--device-id", help="use this device (with --password)")
    c.add_argument("--password", default=os.environ.get("EMS_SIM_PASSWORD"))
    c.add_argument("--hours", type=int, default=3, help="hours of readings to send (3)")
    c.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for a match")
    c.add_argument("--keep", action="store_true", help="keep the device the check created")
    c.add_argument("--seed", type=int, default=1)
    c.add_argument(
        "--end",
        metavar="TIME",
        help="the series ends at the start of this hour: the current hour (default), an offset "
        "like -1d, or RFC 3339 (the same data every time, within the hub's HUB_MAX_LATENESS_S)",
    )
    _portal_flags(c)
    _broker_flags(c)
    c.set_defaults(handler=_cmd_check)


def _cmd_provision(args: argparse.Namespace) -> int:
    from device_sim.portal_api import PortalClient
    from device_sim.provision import ProvisionRequest, check_output, provision

    broker = BrokerOptions(args.host, args.port, args.tls, args.ca_file)
    req = ProvisionRequest(
        count=args.count,
        out=args.out,
        name_prefix=args.name_prefix,
        owner=args.owner,
        split=args.split,
        force=args.force,
        interval_s=args.interval,
        max_hourly_kwh=args.max_hourly_kwh,
        meter_kind=args.meter_kind,
        rated_power_w=args.rated_power_w,
        concurrency=max(1, args.concurrency),
        broker=broker if broker != BrokerOptions() else None,
    )
    check_output(req)
    password = _admin_password(args)

    async def go() -> None:
        async with PortalClient(args.portal) as api:
            await api.login(args.admin_user, password)
            await provision(api, req, sys.stdout)

    asyncio.run(go())
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    from device_sim.check import CheckRequest, run_check

    files = load_configs(args.config) if args.config else []
    device: tuple[UUID, str] | None = None
    if args.device_id:
        if not args.password:
            raise ConfigError("--device-id needs --password (or EMS_SIM_PASSWORD)")
        try:
            device = (UUID(args.device_id), args.password)
        except ValueError:
            raise ConfigError(f"--device-id {args.device_id!r} is not a UUID") from None
    elif files:
        first = files[0].meters[0]
        device = (first.device_id, first.password)
    if args.hours < 1:
        raise ConfigError("--hours must be at least 1")
    end = _check_end(args.end)
    req = CheckRequest(
        portal_url=args.portal,
        admin_user=args.admin_user,
        admin_password=_admin_password(args),
        broker=broker_plan(files, BrokerOptions(args.host, args.port, args.tls, args.ca_file)),
        device=device,
        hours=args.hours,
        timeout_s=args.timeout,
        keep=args.keep,
        seed=args.seed,
        end=end,
    )
    return asyncio.run(run_check(req, sys.stdout))


def _check_end(text: str | None) -> datetime | None:
    if text is None:
        return None
    now = datetime.now(UTC)
    try:
        end = parse_time(text, now)
    except ValueError as exc:
        raise ConfigError(f"--end: {exc}") from None
    if end > now:
        raise ConfigError(f"--end {text}: the series must end in the past (the hub refuses it)")
    return end
