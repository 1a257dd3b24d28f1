"""Writing meter configuration files (``ems-sim provision``): TOML, readable by ``config``.

The files hold MQTT passwords, so they are created readable by their owner only.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from device_sim.config import BrokerOptions, MeterEntry


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    # A JSON string is a valid TOML basic string for everything json.dumps produces.
    return json.dumps(str(value), ensure_ascii=False)


def _lines(table: dict[str, object]) -> list[str]:
    return [f"{key} = {_value(value)}" for key, value in table.items() if value is not None]


def _broker_table(broker: BrokerOptions | None) -> list[str]:
    if broker is None:
        return []
    values: dict[str, object] = {
        "host": broker.host,
        "port": broker.port,
        "tls": broker.tls,
        "ca_file": str(broker.ca_file) if broker.ca_file else None,
    }
    body = _lines(values)
    return ["[broker]", *body, ""] if body else []


def _meter_table(meter: MeterEntry) -> dict[str, object]:
    return {"device_id": str(meter.device_id), "password": meter.password, "name": meter.name}


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def fleet_toml(meters: Iterable[MeterEntry], broker: BrokerOptions | None = None) -> str:
    out = ["# ems-sim fleet file (see device_sim/README.md). It holds MQTT passwords.", ""]
    out += _broker_table(broker)
    for meter in meters:
        out += ["[[meters]]", *_lines(_meter_table(meter)), ""]
    return "\n".join(out)


def meter_toml(meter: MeterEntry, broker: BrokerOptions | None = None) -> str:
    out = ["# ems-sim meter file (see device_sim/README.md). It holds an MQTT password.", ""]
    out += [*_lines(_meter_table(meter)), ""]
    out += _broker_table(broker)
    return "\n".join(out)


def write_fleet(path: Path, meters: Sequence[MeterEntry], broker: BrokerOptions | None) -> None:
    _write_private(path, fleet_toml(meters, broker))


def write_meter_files(
    directory: Path, meters: Sequence[MeterEntry], broker: BrokerOptions | None
) -> list[Path]:
    paths = []
    for meter in meters:
        path = directory / f"{meter.device_id}.toml"
        _write_private(path, meter_toml(meter, broker))
        paths.append(path)
    return paths
