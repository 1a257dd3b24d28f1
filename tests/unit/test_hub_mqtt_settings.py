"""The hub's broker options: HUB_MQTT_TLS / HUB_MQTT_CA_FILE, and what the connection gets."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from hub.app import connection_settings
from hub.settings import SettingsError, load_settings

ENV = {
    "HUB_DATABASE_URL": "postgresql://ems:pw@127.0.0.1:5432/ems",
    "HUB_MQTT_USERNAME": "ems-hub-2",
    "HUB_MQTT_PASSWORD": "a-real-secret",
    "HUB_MQTT_HOST": "broker.example",
    "HUB_MQTT_PORT": "8883",
}


@pytest.fixture(scope="module")
def ca_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("ca")
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
            *("-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=ems-test-ca"),
        ],
        cwd=directory,
        check=True,
        capture_output=True,
    )
    return directory / "ca.pem"


def test_plain_tcp_by_default() -> None:
    settings = load_settings(ENV)
    assert (settings.mqtt_tls, settings.mqtt_ca_file) == (False, None)
    assert connection_settings(settings).tls is None


@pytest.mark.parametrize("value", ["true", "1", "yes", "TRUE"])
def test_tls_with_a_ca_file_verifies_the_broker(value: str, ca_file: Path) -> None:
    env = {**ENV, "HUB_MQTT_TLS": value, "HUB_MQTT_CA_FILE": str(ca_file)}
    connection = connection_settings(load_settings(env))
    assert connection.tls is not None
    assert connection.tls.check_hostname
    assert [c["subject"] for c in connection.tls.get_ca_certs()] == [
        ((("commonName", "ems-test-ca"),),)
    ]


def test_the_connection_gets_the_broker_options_and_nothing_else() -> None:
    settings = load_settings({**ENV, "HUB_RECEIVE_MAXIMUM": "1234", "HUB_CLIENT_ID": "ems-hub-2"})
    connection = connection_settings(settings)
    assert (connection.host, connection.port, connection.client_id) == (
        "broker.example",
        8883,
        "ems-hub-2",
    )
    assert (connection.username, connection.password) == ("ems-hub-2", "a-real-secret")
    assert connection.receive_maximum == 1234
    assert connection.session_expiry_s == settings.session_expiry_s
    assert "a-real-secret" not in repr(connection)  # settings get logged; the password never


@pytest.mark.parametrize(
    ("env", "error"),
    [
        ({"HUB_MQTT_TLS": "maybe"}, r"HUB_MQTT_TLS must be true or false .*, got 'maybe'"),
        ({"HUB_MQTT_CA_FILE": "/etc/ca.pem"}, "HUB_MQTT_CA_FILE is set but HUB_MQTT_TLS is not"),
        (
            {"HUB_MQTT_TLS": "true", "HUB_MQTT_CA_FILE": "/nonexistent/ca.pem"},
            "HUB_MQTT_CA_FILE='/nonexistent/ca.pem' cannot be loaded",
        ),
    ],
)
def test_bad_tls_options_fail_at_start_clearly(env: dict[str, str], error: str) -> None:
    with pytest.raises(SettingsError, match=error):
        load_settings({**ENV, **env})


def test_a_file_that_is_no_certificate_fails_at_start(tmp_path: Path) -> None:
    bogus = tmp_path / "ca.pem"
    bogus.write_text("not a certificate\n")
    with pytest.raises(SettingsError, match="cannot be loaded"):
        load_settings({**ENV, "HUB_MQTT_TLS": "true", "HUB_MQTT_CA_FILE": str(bogus)})
