"""What ``ems-sim run`` will do, resolved from flags, environment and configuration files.

Precedence, for each setting: a command-line flag, then an ``EMS_SIM_*`` variable (broker
only), then the meter's own entry, then its file's ``[defaults]`` / ``[broker]``, then the
built-in default. ``EMS_HOST`` and ``EMS_MQTT_PORT`` (what ``ems up`` uses) are the last
fallback for the broker, so a simulator next to ``ems up`` needs no broker flags.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from uuid import UUID

from common.backoff import BackoffPolicy
from device_sim.config import BrokerOptions, ConfigError, ConfigFile, MeterEntry
from device_sim.scenario import Fault


@dataclass(frozen=True, slots=True)
class MeterPlan:
    device_id: UUID
    password: str
    name: str | None = None
    interval_s: int = 600
    format: str = "v1"
    source: str = "profile"
    replay_file: Path | None = None
    timezone: str = "UTC"
    seed: int = 0


@dataclass(frozen=True, slots=True)
class BrokerPlan:
    host: str = "127.0.0.1"
    port: int = 1883
    tls: bool = False
    ca_file: Path | None = None


@dataclass(frozen=True, slots=True)
class RunPlan:
    broker: BrokerPlan
    meters: Sequence[MeterPlan]
    start: datetime
    speed: float = 1.0
    faults: Sequence[Fault] = ()
    state_dir: Path | None = None
    progress_s: float = 5.0
    duration_s: float | None = None
    buffer_capacity: int = 10_000
    connect_concurrency: int = 256  # connection attempts at once (the broker's listen backlog)
    backoff: BackoffPolicy = field(default_factory=lambda: BackoffPolicy(1.0, 30.0))


@dataclass(frozen=True, slots=True)
class MeterFlags:
    """Per-meter settings given on the command line (None: not given)."""

    interval_s: int | None = None
    format: str | None = None
    source: str | None = None
    replay_file: Path | None = None
    timezone: str | None = None
    seed: int | None = None


def seed_for(device_id: UUID) -> int:
    """A meter's default seed: stable for its device id."""
    return device_id.int % 2**32


def meter_plan(entry: MeterEntry, flags: MeterFlags, index: int = 0) -> MeterPlan:
    """``index``: the meter's place in the run, so that ``--seed`` gives each meter its own."""
    own = entry.options
    replay = flags.replay_file or own.replay_file
    if flags.seed is not None:
        seed = flags.seed + index
    else:
        seed = own.seed if own.seed is not None else seed_for(entry.device_id)
    return MeterPlan(
        device_id=entry.device_id,
        password=entry.password,
        name=entry.name,
        interval_s=flags.interval_s or own.interval_s or 600,
        format=flags.format or own.format or "v1",
        source=flags.source or own.source or ("replay" if replay is not None else "profile"),
        replay_file=replay,
        timezone=flags.timezone or own.timezone or "UTC",
        seed=seed,
    )


def broker_plan(
    files: Sequence[ConfigFile],
    flags: BrokerOptions,
    env: Mapping[str, str] | None = None,
) -> BrokerPlan:
    env = os.environ if env is None else env
    named = {f.broker for f in files if f.broker != BrokerOptions()}
    if len(named) > 1:
        paths = ", ".join(str(f.path) for f in files if f.broker != BrokerOptions())
        raise ConfigError(f"{paths}: these files name different brokers - run them separately")
    from_file = named.pop() if named else BrokerOptions()

    def port(name: str) -> int | None:
        raw = env.get(name)
        if not raw:
            return None
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"{name}={raw!r} is not a port number") from None

    tls_env = env.get("EMS_SIM_TLS", "").lower()
    ca_env = env.get("EMS_SIM_CA_FILE")
    host = flags.host or env.get("EMS_SIM_HOST") or from_file.host or env.get("EMS_HOST")
    return BrokerPlan(
        host=host or "127.0.0.1",
        port=flags.port or port("EMS_SIM_PORT") or from_file.port or port("EMS_MQTT_PORT") or 1883,
        tls=bool(flags.tls or tls_env in ("1", "true", "yes") or from_file.tls),
        ca_file=flags.ca_file or (Path(ca_env) if ca_env else None) or from_file.ca_file,
    )
