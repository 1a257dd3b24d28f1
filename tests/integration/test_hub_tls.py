"""The hub's broker connection over TLS (HUB_MQTT_TLS, HUB_MQTT_CA_FILE) against a real
Mosquitto TLS listener with a private CA: ingests, and refuses a certificate its CA did not sign.
"""

from __future__ import annotations

import logging
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from contract.payloads import Reading
from contract.readings import encode_reading
from contract.topics import readings_topic
from devkit.helpers import wait_for
from devkit.hubkit import Gateway, add_devices, count, create_gateway, hub_settings, start_hub
from hub.app import connection_settings
from hub.mqtt.connection import MqttConnection
from tests.conftest import BrokerInfo
from tests.integration.test_sim_tls import TlsMosquitto, tls_broker  # noqa: F401 - fixture

# Days in the past, within HUB_MAX_LATENESS_S, whatever today is.
T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=5)
STORED = "SELECT (SELECT count(*) FROM readings) + (SELECT count(*) FROM dead_letters)"


def tls_port(broker: BrokerInfo) -> int:
    assert isinstance(broker.server, TlsMosquitto)
    return broker.server.tls_port


def test_the_hub_ingests_over_tls(database_url: str, tls_broker: BrokerInfo) -> None:  # noqa: F811
    devices = add_devices(database_url, 20)
    # Enough readings that acknowledgements go out while more PUBLISHes come in: the TLS
    # connection is written by the writers' threads while the reader thread reads it.
    sent = [
        (readings_topic(d), encode_reading(Reading(d, T0 + timedelta(minutes=10 * k), 1.0 + k)))
        for k in range(200)
        for d in devices
    ]
    gateway = Gateway(tls_broker, *create_gateway(tls_broker))  # plain port: not under test
    hub = start_hub(
        database_url,
        tls_broker,
        mqtt_port=tls_port(tls_broker),
        mqtt_tls=True,
        mqtt_ca_file=str(tls_broker.server.base_dir / "ca.pem"),
    )
    try:
        gateway.publish_many(sent)
        gateway.flush()
        wait_for(lambda: count(database_url, STORED) == len(sent), 60, "every reading handled")
        assert count(database_url, "SELECT count(*) FROM dead_letters") == 0
        assert hub.mqtt.connects == 1
        assert hub.health()[1]["mqtt"] == "connected"
    finally:
        hub.stop()
        gateway.close()


def make_other_ca(directory: Path) -> Path:
    directory.mkdir()
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes"),
            *("-keyout", "other.key", "-out", "other.pem", "-days", "2"),
            *("-subj", "/CN=not-the-brokers-ca"),
        ],
        cwd=directory,
        check=True,
        capture_output=True,
    )
    return directory / "other.pem"


def test_a_certificate_the_ca_did_not_sign_is_refused(
    tls_broker: BrokerInfo,  # noqa: F811
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    other_ca = make_other_ca(tmp_path / "ca")
    caplog.set_level(logging.WARNING, logger="hub.mqtt")
    settings = hub_settings(
        "postgresql://unused",
        tls_broker,
        mqtt_port=tls_port(tls_broker),
        mqtt_tls=True,
        mqtt_ca_file=str(other_ca),
    )
    client = MqttConnection(connection_settings(settings), lambda _: None, [("ems/#", 1)])
    client.start()
    try:
        wait_for(
            lambda: any("certificate verify failed" in r.getMessage() for r in caplog.records),
            15,
            "the refusal to be logged",
        )
        assert not client.connected.is_set()
        assert client.connects == 0
        assert client.fatal is None  # retried: the broker's certificate may yet be fixed
        # Refused at the handshake, before a CONNECT (and its password) went out: the broker
        # never heard of this client.
        assert settings.client_id not in tls_broker.server.log_path.read_text()
    finally:
        client.stop()
