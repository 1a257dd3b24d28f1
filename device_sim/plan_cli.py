"""``ems-sim run`` flags -> a ``RunPlan`` (validation with messages that say what to do)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

from common.backoff import BackoffPolicy
from device_sim.config import BrokerOptions, ConfigError, ConfigFile, MeterEntry, load_configs
from device_sim.plan import MeterFlags, RunPlan, broker_plan, meter_plan
from device_sim.replay import read_values
from device_sim.scenario import Fault, load_scenario, parse_fault
from device_sim.sources import zone
from device_sim.timeparse import floor_time, parse_time


def _entries(args: argparse.Namespace) -> tuple[list[ConfigFile], list[MeterEntry]]:
    if args.device_id and args.config:
        raise ConfigError("give either --device-id (one meter) or -c FILE, not both")
    if args.device_id:
        if not args.password:
            raise ConfigError("--device-id needs --password (or EMS_SIM_PASSWORD)")
        try:
            device_id = UUID(args.device_id)
        except ValueError:
            raise ConfigError(f"--device-id {args.device_id!r} is not a UUID") from None
        return [], [MeterEntry(device_id, args.password, origin="--device-id")]
    if not args.config:
        raise ConfigError(
            "no meters to run: give -c FILE (ems-sim provision writes one) "
            "or --device-id ID --password PASSWORD"
        )
    files = load_configs(args.config)
    return files, [m for f in files for m in f.meters]


def _check_numbers(args: argparse.Namespace) -> None:
    for name, value in (("--speed", args.speed), ("--progress", args.progress)):
        if not value > 0:
            raise ConfigError(f"{name} must be greater than 0")
    if args.interval is not None and args.interval < 1:
        raise ConfigError("--interval must be at least 1 second")
    if args.duration is not None and args.duration <= 0:
        raise ConfigError("--duration must be greater than 0")
    if args.buffer_capacity < 1 or args.backoff_max < 1:
        raise ConfigError("--buffer-capacity and --backoff-max must be at least 1")


def plan_from_args(args: argparse.Namespace, *, state_dir: Path | None) -> RunPlan:
    _check_numbers(args)
    files, entries = _entries(args)
    flags = MeterFlags(
        interval_s=args.interval,
        format=args.format,
        source=args.source,
        replay_file=args.replay,
        timezone=args.timezone,
        seed=args.seed,
    )
    meters = [meter_plan(entry, flags, i) for i, entry in enumerate(entries)]
    for meter in meters:
        zone(meter.timezone)  # fail now, not while the fleet starts
        if meter.source == "replay":
            if meter.replay_file is None:
                raise ConfigError(f"meter {meter.device_id}: source replay needs --replay FILE")
            read_values(meter.replay_file)  # fail now, with the file's own error
    now = datetime.now(UTC)
    grid = timedelta(seconds=min(m.interval_s for m in meters))
    try:
        start = floor_time(now, grid) if args.start is None else parse_time(args.start, now)
    except ValueError as exc:
        raise ConfigError(f"--start: {exc}") from None
    faults: list[Fault] = [parse_fault(spec, start) for spec in args.fault]
    if args.scenario is not None:
        faults += load_scenario(args.scenario, start)
    broker = broker_plan(files, BrokerOptions(args.host, args.port, args.tls, args.ca_file))
    return RunPlan(
        broker=broker,
        meters=meters,
        start=start,
        speed=args.speed,
        faults=faults,
        state_dir=state_dir,
        progress_s=args.progress,
        duration_s=args.duration,
        buffer_capacity=args.buffer_capacity,
        backoff=BackoffPolicy(initial_s=min(1.0, args.backoff_max), maximum_s=args.backoff_max),
    )
