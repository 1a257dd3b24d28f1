"""Test kit for the hub: devices in the database, a gateway publisher, a running hub."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections import deque
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

from contract.topics import READINGS_SUB, STATUS_SUB
from ems.procs import free_port
from hub.app import Hub
from hub.settings import HubSettings
from portal.broker_admin import BrokerAdmin

GATEWAY_USER = "test-gateway"


def add_devices(
    dsn: str,
    n: int,
    *,
    meter_kind: str = "cumulative",
    max_hourly_kwh: float = 1000.0,
    rated_power_w: float | None = None,
    owner_id: uuid.UUID | None = None,
    interval_s: int = 600,
) -> list[uuid.UUID]:
    ids = [uuid.uuid4() for _ in range(n)]
    with psycopg.connect(dsn) as conn:
        conn.cursor().executemany(
            "INSERT INTO devices (id, name, max_hourly_kwh, meter_kind, rated_power_w, owner_id,"
            " interval_s) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            [
                (i, f"meter {k}", max_hourly_kwh, meter_kind, rated_power_w, owner_id, interval_s)
                for k, i in enumerate(ids)
            ],
        )
    return ids


def create_gateway(broker: Any, password: str = "gateway-password") -> tuple[str, str]:  # noqa: S107
    """A test-only client allowed to publish readings for any meter (and nothing else)."""

    async def go() -> None:
        # The operator tools' account: a running portal holds the client id of its own.
        async with BrokerAdmin(
            broker.host, broker.port, broker.admin_user, broker.portal_password
        ) as admin:
            await admin.command(
                command="createRole",
                rolename="test-gateway",
                acls=[
                    {
                        "acltype": "publishClientSend",
                        "topic": READINGS_SUB,
                        "allow": True,
                    },
                    {
                        "acltype": "publishClientSend",
                        "topic": STATUS_SUB,
                        "allow": True,
                    },
                ],
            )
            await admin.command(
                command="createClient",
                username=GATEWAY_USER,
                password=password,
                clientid=GATEWAY_USER,  # pinned like every account the broker starts with
                roles=[{"rolename": "test-gateway"}],
            )

    asyncio.run(go())
    return GATEWAY_USER, password


class Gateway:
    """Publishes many messages quickly (QoS 1) and waits until the broker has them all."""

    def __init__(self, broker: Any, username: str, password: str) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=username,  # the id pinned to the account (create_gateway)
            protocol=mqtt.MQTTv5,
        )
        self.client.username_pw_set(username, password)
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        self._last: mqtt.MQTTMessageInfo | None = None
        self._window: deque[mqtt.MQTTMessageInfo] = deque()

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        # paho keeps at most 65,535 unacknowledged QoS 1 messages (packet ids): wait for old
        # ones before queueing many more.
        if len(self._window) >= 20_000:
            self._window.popleft().wait_for_publish(60)
        self._last = self.client.publish(topic, payload, qos=qos)
        self._window.append(self._last)

    def publish_many(self, messages: Iterable[tuple[str, bytes]]) -> int:
        n = 0
        for topic, payload in messages:
            self.publish(topic, payload)
            n += 1
        return n

    def flush(self, timeout: float = 60) -> None:
        if self._last is not None:
            self._last.wait_for_publish(timeout)

    def close(self) -> None:
        self.flush()
        self.client.disconnect()
        self.client.loop_stop()


def hub_settings(dsn: str, broker: Any, **overrides: Any) -> HubSettings:
    values: dict[str, Any] = {
        "database_url": dsn,
        "mqtt_username": broker.hub_user,
        "mqtt_password": broker.hub_password,
        "mqtt_host": broker.host,
        "mqtt_port": broker.port,
        "client_id": f"hub-{uuid.uuid4().hex[:6]}",
        "http_port": free_port(),
        "status_check_interval_s": 0.5,
    }
    values.update(overrides)
    return HubSettings(**values)


def start_hub(dsn: str, broker: Any, **overrides: Any) -> Hub:
    hub = Hub(hub_settings(dsn, broker, **overrides))
    hub.start()
    if not hub.mqtt.connected.wait(10):
        hub.stop()
        raise AssertionError("hub did not connect to the broker")
    return hub


def hub_process(
    dsn: str, broker: Any, client_id: str, log: Path, **env: str
) -> subprocess.Popen[bytes]:
    """The hub as users run it (python -m hub), for tests that kill it."""
    environ = {
        **os.environ,
        "HUB_DATABASE_URL": dsn,
        "HUB_MQTT_HOST": broker.host,
        "HUB_MQTT_PORT": str(broker.port),
        "HUB_MQTT_USERNAME": broker.hub_user,
        "HUB_MQTT_PASSWORD": broker.hub_password,
        "HUB_CLIENT_ID": client_id,
        "HUB_HTTP_PORT": str(free_port()),
        **env,
    }
    out = log.open("ab")
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "hub"], env=environ, stdout=out, stderr=subprocess.STDOUT
        )
    finally:
        out.close()


def count(dsn: str, sql: str, params: Sequence[Any] = ()) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(sql, params).fetchone()
    return int(row[0]) if row else 0


def wait_rolled_up(dsn: str, timeout: float = 30) -> None:
    """Readings are committed with a rollup mark; hours are final once no mark is left."""
    from devkit.helpers import wait_for

    wait_for(
        lambda: count(dsn, "SELECT count(*) FROM rollup_log") == 0,
        timeout=timeout,
        what="the hourly rollup to catch up",
    )


def stored_hours(dsn: str, device_id: uuid.UUID) -> dict[Any, tuple[float, str]]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT hour, energy_kwh, quality FROM hourly_energy WHERE device_id = %s",
            (device_id,),
        ).fetchall()
    return {r[0]: (float(r[1]), str(r[2])) for r in rows}
