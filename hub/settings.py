"""Hub settings, parsed once from an explicit mapping (the environment in production)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from contract.readings import MAX_POWER_W


class SettingsError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class HubSettings:
    database_url: str
    mqtt_username: str
    mqtt_password: str
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    client_id: str = "ems-hub-1"
    share_group: str = "hub"
    http_host: str = "127.0.0.1"
    http_port: int = 8001
    # Acknowledge-after-commit: the broker lets us hold at most `receive_maximum`
    # unacknowledged readings, so a batch can never be larger than that. With `writers`
    # batches in the database at once, it must hold more than that many batches, or the
    # writers wait for the broker to refill. 40,000 rather than 20,000: draining a backlog of
    # 200,000 readings, 66.3k/s became 69.6k/s (three runs each), for 9 MB more RSS; 60,000
    # gained nothing more.
    receive_maximum: int = 40000
    batch_size: int = 5000
    writers: int = 2
    flush_interval_s: float = 0.01
    max_lateness: timedelta = timedelta(days=30)
    max_future: timedelta = timedelta(minutes=5)
    stale_intervals: float = 3.0
    status_check_interval_s: float = 5.0
    live_min_interval_s: float = 1.0
    rollup_interval_s: float = 10.0
    # The power no single meter point exceeds (protocol.MAX_POWER_W): bounds power_w, and the
    # power an energy increase implies on a device without a rated power (ARCHITECTURE.md §4).
    max_power_w: float = MAX_POWER_W
    session_expiry_s: int = 7 * 24 * 3600


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not an integer") from None


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number") from None


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "")
    if not value or value.lower() in {"changeme", "change-me", "secret", "password"}:
        raise SettingsError(f"{name} must be set (and not to a placeholder) — the hub cannot start")
    return value


def load_settings(env: Mapping[str, str]) -> HubSettings:
    receive_maximum = _int(env, "HUB_RECEIVE_MAXIMUM", 40000)
    if not 1 <= receive_maximum <= 0xFFFF:
        raise SettingsError("HUB_RECEIVE_MAXIMUM must be between 1 and 65535 (MQTT 5)")
    batch_size = min(_int(env, "HUB_BATCH_SIZE", 5000), receive_maximum)
    if batch_size <= 0:
        raise SettingsError("HUB_BATCH_SIZE must be positive")
    writers = _int(env, "HUB_WRITERS", 2)
    if not 1 <= writers <= 16:
        raise SettingsError("HUB_WRITERS must be between 1 and 16")
    max_power_w = _float(env, "HUB_MAX_POWER_W", MAX_POWER_W)
    if not (math.isfinite(max_power_w) and max_power_w > 0):
        raise SettingsError("HUB_MAX_POWER_W must be a positive number of watts")
    mqtt_username = _required(env, "HUB_MQTT_USERNAME")
    return HubSettings(
        database_url=_required(env, "HUB_DATABASE_URL"),
        mqtt_username=mqtt_username,
        mqtt_password=_required(env, "HUB_MQTT_PASSWORD"),
        mqtt_host=env.get("HUB_MQTT_HOST", "127.0.0.1"),
        mqtt_port=_int(env, "HUB_MQTT_PORT", 1883),
        # The broker pins each account to the client id of its own name (broker/README.md).
        client_id=env.get("HUB_CLIENT_ID") or mqtt_username,
        share_group=env.get("HUB_SHARE_GROUP", "hub"),
        http_host=env.get("HUB_HTTP_HOST", "127.0.0.1"),
        http_port=_int(env, "HUB_HTTP_PORT", 8001),
        receive_maximum=receive_maximum,
        batch_size=batch_size,
        writers=writers,
        flush_interval_s=_float(env, "HUB_FLUSH_INTERVAL_S", 0.01),
        max_lateness=timedelta(seconds=_float(env, "HUB_MAX_LATENESS_S", 30 * 86400)),
        stale_intervals=_float(env, "HUB_STALE_INTERVALS", 3.0),
        status_check_interval_s=_float(env, "HUB_STATUS_CHECK_INTERVAL_S", 5.0),
        live_min_interval_s=_float(env, "HUB_LIVE_MIN_INTERVAL_S", 1.0),
        rollup_interval_s=_float(env, "HUB_ROLLUP_INTERVAL_S", 10.0),
        max_power_w=max_power_w,
    )
