"""Hub settings, parsed once from an explicit mapping (the environment in production)."""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from common.env import Env, SettingsError
from contract.readings import MAX_POWER_W
from hub.mqtt.connection import tls_context

__all__ = ["HubSettings", "SettingsError", "load_settings"]


@dataclass(frozen=True, slots=True)
class HubSettings:
    database_url: str
    mqtt_username: str
    mqtt_password: str
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    # TLS to the broker, verifying its certificate (and host name) against mqtt_ca_file, or
    # against the system's CAs without one.
    mqtt_tls: bool = False
    mqtt_ca_file: str | None = None
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


def _mqtt_tls(env: Env) -> tuple[bool, str | None]:
    tls = env.bool("HUB_MQTT_TLS", False)
    ca_file = env.str("HUB_MQTT_CA_FILE", "") or None
    if ca_file is None:
        return tls, None
    if not tls:  # a CA file alone would suggest TLS while the hub connects in the clear
        raise SettingsError("HUB_MQTT_CA_FILE is set but HUB_MQTT_TLS is not")
    try:
        tls_context(ca_file)  # load it now: fail at start, clearly
    except (OSError, ssl.SSLError) as exc:
        raise SettingsError(f"HUB_MQTT_CA_FILE={ca_file!r} cannot be loaded: {exc}") from None
    return tls, ca_file


def load_settings(environ: Mapping[str, str]) -> HubSettings:
    env = Env(environ, who="the hub")
    # MQTT 5 caps Receive Maximum at 65535.
    receive_maximum = env.int("HUB_RECEIVE_MAXIMUM", 40000, ge=1, le=0xFFFF)
    mqtt_username = env.secret("HUB_MQTT_USERNAME")
    mqtt_tls, mqtt_ca_file = _mqtt_tls(env)
    return HubSettings(
        database_url=env.secret("HUB_DATABASE_URL"),
        mqtt_username=mqtt_username,
        mqtt_password=env.secret("HUB_MQTT_PASSWORD"),
        mqtt_host=env.str("HUB_MQTT_HOST", "127.0.0.1"),
        mqtt_port=env.int("HUB_MQTT_PORT", 1883),
        mqtt_tls=mqtt_tls,
        mqtt_ca_file=mqtt_ca_file,
        # The broker pins each account to the client id of its own name (broker/README.md).
        client_id=env.str("HUB_CLIENT_ID", mqtt_username),
        share_group=env.str("HUB_SHARE_GROUP", "hub"),
        http_host=env.str("HUB_HTTP_HOST", "127.0.0.1"),
        http_port=env.int("HUB_HTTP_PORT", 8001),
        receive_maximum=receive_maximum,
        # A batch is held unacknowledged, so it can never outgrow the in-flight window.
        batch_size=min(env.int("HUB_BATCH_SIZE", 5000, ge=1), receive_maximum),
        writers=env.int("HUB_WRITERS", 2, ge=1, le=16),
        flush_interval_s=env.float("HUB_FLUSH_INTERVAL_S", 0.01),
        max_lateness=timedelta(seconds=env.float("HUB_MAX_LATENESS_S", 30 * 86400)),
        stale_intervals=env.float("HUB_STALE_INTERVALS", 3.0),
        status_check_interval_s=env.float("HUB_STATUS_CHECK_INTERVAL_S", 5.0),
        live_min_interval_s=env.float("HUB_LIVE_MIN_INTERVAL_S", 1.0),
        rollup_interval_s=env.float("HUB_ROLLUP_INTERVAL_S", 10.0),
        max_power_w=env.float("HUB_MAX_POWER_W", MAX_POWER_W, gt=0),
    )
