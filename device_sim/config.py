"""Meter configuration files: one per meter, or one for a fleet (TOML or JSON).

The format is documented in device_sim/README.md. Errors name the file, the place in it and
what to do (``fleet.toml: meters[3].device_id: 'abc' is not a UUID``).
"""

from __future__ import annotations

import difflib
import json
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

FORMATS = ("v1", "classic")
SOURCES = ("profile", "replay")
_BROKER_KEYS = {"host": str, "port": int, "tls": bool, "ca_file": str}
_OPTION_KEYS = {
    "interval_s": int,
    "format": str,
    "source": str,
    "replay_file": str,
    "timezone": str,
    "seed": int,
}
_METER_KEYS = {"device_id": str, "password": str, "name": str, **_OPTION_KEYS}


class ConfigError(ValueError):
    """A configuration a person must fix; the message says where and how."""


@dataclass(frozen=True, slots=True)
class BrokerOptions:
    host: str | None = None
    port: int | None = None
    tls: bool | None = None
    ca_file: Path | None = None


@dataclass(frozen=True, slots=True)
class MeterOptions:
    interval_s: int | None = None
    format: str | None = None
    source: str | None = None
    replay_file: Path | None = None
    timezone: str | None = None
    seed: int | None = None


@dataclass(frozen=True, slots=True)
class MeterEntry:
    device_id: UUID
    password: str
    name: str | None = None
    options: MeterOptions = field(default_factory=MeterOptions)
    origin: str = ""


@dataclass(frozen=True, slots=True)
class ConfigFile:
    path: Path
    broker: BrokerOptions
    meters: list[MeterEntry]


def _read(path: Path) -> dict[str, Any]:
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".json"):
        raise ConfigError(f"{path}: unknown file type {suffix!r} - use .toml or .json")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    try:
        doc = tomllib.loads(text) if suffix == ".toml" else json.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: expected an object at the top level")
    return doc


def _table(where: str, value: object, allowed: Mapping[str, type]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a table of keys")
    for key, item in value.items():
        kind = allowed.get(key)
        if kind is None:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{where}: unknown key {key!r}{hint}")
        if type(item) is not kind:
            raise ConfigError(
                f"{where}.{key}: expected {kind.__name__}, got {type(item).__name__} {item!r}"
            )
    return value


def _options(where: str, raw: Mapping[str, Any], base: Path) -> MeterOptions:
    interval = raw.get("interval_s")
    if interval is not None and interval < 1:
        raise ConfigError(f"{where}.interval_s: must be a positive number of seconds")
    for key, choices in (("format", FORMATS), ("source", SOURCES)):
        if key in raw and raw[key] not in choices:
            raise ConfigError(f"{where}.{key}: {raw[key]!r} is not one of {', '.join(choices)}")
    replay = raw.get("replay_file")
    return MeterOptions(
        interval_s=interval,
        format=raw.get("format"),
        source=raw.get("source"),
        replay_file=(base / replay) if replay is not None else None,
        timezone=raw.get("timezone"),
        seed=raw.get("seed"),
    )


def _merge(defaults: MeterOptions, own: MeterOptions) -> MeterOptions:
    return MeterOptions(
        **{
            name: getattr(own, name) if getattr(own, name) is not None else getattr(defaults, name)
            for name in MeterOptions.__slots__
        }
    )


def _meter(where: str, raw: object, defaults: MeterOptions, base: Path) -> MeterEntry:
    table = _table(where, raw, _METER_KEYS)
    for key in ("device_id", "password"):
        if not table.get(key):
            raise ConfigError(f"{where}: {key} is missing")
    try:
        device_id = UUID(table["device_id"])
    except ValueError:
        raise ConfigError(f"{where}.device_id: {table['device_id']!r} is not a UUID") from None
    own = _options(where, table, base)
    return MeterEntry(device_id, table["password"], table.get("name"), _merge(defaults, own), where)


def load_file(path: Path) -> ConfigFile:
    doc = _read(path)
    base, name = path.parent, str(path)
    raw_broker = _table(f"{name}: broker", doc.pop("broker", {}), _BROKER_KEYS)
    ca_file = raw_broker.get("ca_file")
    broker = BrokerOptions(
        host=raw_broker.get("host"),
        port=raw_broker.get("port"),
        tls=raw_broker.get("tls"),
        ca_file=base / ca_file if ca_file is not None else None,
    )
    if "meters" not in doc:  # a file for one meter: its keys at the top level
        return ConfigFile(path, broker, [_meter(name, doc, MeterOptions(), base)])
    raw_defaults = _table(f"{name}: defaults", doc.pop("defaults", {}), _OPTION_KEYS)
    defaults = _options(f"{name}: defaults", raw_defaults, base)
    raw_meters = doc.pop("meters")
    if doc:
        raise ConfigError(f"{name}: unknown top-level key {next(iter(doc))!r}")
    if not isinstance(raw_meters, list) or not raw_meters:
        raise ConfigError(f"{name}: meters must be a non-empty list of meter tables")
    meters = [
        _meter(f"{name}: meters[{i}]", raw, defaults, base) for i, raw in enumerate(raw_meters)
    ]
    return ConfigFile(path, broker, meters)


def load_configs(paths: Sequence[Path]) -> list[ConfigFile]:
    """Files, or directories of ``*.toml``/``*.json`` files; a device may appear only once."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in (".toml", ".json"))
            if not found:
                raise ConfigError(f"{path}: no .toml or .json files in this directory")
            files += found
        elif not path.exists():
            raise ConfigError(f"{path}: no such file")
        else:
            files.append(path)
    loaded = [load_file(f) for f in files]
    seen: dict[UUID, str] = {}
    for config in loaded:
        for meter in config.meters:
            if meter.device_id in seen:
                raise ConfigError(
                    f"{meter.origin}: device {meter.device_id} is already configured "
                    f"in {seen[meter.device_id]} - a meter can run only once"
                )
            seen[meter.device_id] = meter.origin
    return loaded
