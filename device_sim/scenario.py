"""Fault scenarios: what goes wrong, when, and for how long (device_sim/README.md has the table).

On the command line: ``--fault KIND@WHEN[,key=value...]``, e.g. ``outage@2h,for=45m``,
``skew@1h,by=+10m``, ``duplicates@30m,for=1h,copies=3``. In a scenario file (TOML or JSON):
a list ``faults`` of tables with ``kind``, ``at``, the same keys, and optionally ``devices``
(the device ids it applies to; default all). WHEN is an offset from the simulation start
(``90m``) or an RFC 3339 time. Times are simulated time.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from device_sim.timeparse import parse_duration, parse_offset_or_time

KINDS = ("reset", "glitch", "outage", "duplicates", "reorder", "skew", "malformed")
VALUE_KINDS = frozenset({"reset", "glitch", "skew"})  # change what the meter measures
_PARAMS: dict[str, tuple[str, ...]] = {
    "reset": (),
    "glitch": (),
    "outage": ("for",),
    "duplicates": ("for", "copies"),
    "reorder": ("for",),
    "malformed": ("for",),
    "skew": ("by",),
}
_DEFAULT_FOR = {"outage": "30m", "duplicates": "1h", "reorder": "1h", "malformed": "1h"}


class ScenarioError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Fault:
    kind: str
    at: datetime
    duration: timedelta = timedelta(0)
    copies: int = 2
    skew: timedelta = timedelta(0)
    devices: frozenset[UUID] | None = None

    @property
    def end(self) -> datetime:
        return self.at + self.duration

    def active(self, ts: datetime) -> bool:
        return self.at <= ts < self.end

    def applies_to(self, device_id: UUID) -> bool:
        return self.devices is None or device_id in self.devices


def _build(where: str, kind: str, when: str, params: Mapping[str, Any], start: datetime) -> Fault:
    if kind not in _PARAMS:
        raise ScenarioError(f"{where}: unknown fault {kind!r} (one of: {', '.join(KINDS)})")
    unknown = set(params) - set(_PARAMS[kind]) - {"devices"}
    if unknown:
        allowed = ", ".join(_PARAMS[kind]) or "no parameters"
        raise ScenarioError(f"{where}: {kind} takes {allowed}, not {sorted(unknown)[0]!r}")
    try:
        at = parse_offset_or_time(when, start)
        duration = parse_duration(str(params.get("for", _DEFAULT_FOR.get(kind, "0"))))
        skew = parse_duration(str(params.get("by", "+10m")), signed=True)
        copies = int(params.get("copies", 2))
    except ValueError as exc:
        raise ScenarioError(f"{where}: {exc}") from None
    if kind in _DEFAULT_FOR and duration <= timedelta(0):
        raise ScenarioError(f"{where}: {kind} needs a positive duration (for=30m)")
    if copies < 1:
        raise ScenarioError(f"{where}: copies must be at least 1")
    devices = None
    if "devices" in params:
        try:
            devices = frozenset(UUID(str(d)) for d in params["devices"])
        except (TypeError, ValueError):
            raise ScenarioError(f"{where}: devices must be a list of device ids") from None
    return Fault(kind, at, duration, copies, skew, devices)


def parse_fault(text: str, start: datetime) -> Fault:
    """``KIND@WHEN[,key=value...]``."""
    head, _, rest = text.partition(",")
    kind, sep, when = head.partition("@")
    if not sep or not when:
        raise ScenarioError(f"--fault {text!r}: expected KIND@WHEN, e.g. outage@2h,for=45m")
    params: dict[str, str] = {}
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        if not eq:
            raise ScenarioError(f"--fault {text!r}: {item!r} is not key=value")
        params[key.strip()] = value.strip()
    return _build(f"--fault {text!r}", kind.strip(), when, params, start)


def load_scenario(path: Path, start: datetime) -> list[Fault]:
    try:
        text = path.read_text(encoding="utf-8")
        doc = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ScenarioError(f"{path}: not valid {path.suffix.lstrip('.').upper()}: {exc}") from None
    faults = doc.get("faults") if isinstance(doc, dict) else None
    if not isinstance(faults, list) or not faults:
        raise ScenarioError(f"{path}: expected a non-empty list 'faults'")
    out = []
    for i, raw in enumerate(faults):
        where = f"{path}: faults[{i}]"
        if not isinstance(raw, dict) or "kind" not in raw or "at" not in raw:
            raise ScenarioError(f"{where}: each fault needs 'kind' and 'at'")
        params = {k: v for k, v in raw.items() if k not in ("kind", "at")}
        out.append(_build(where, str(raw["kind"]), str(raw["at"]), params, start))
    return out
