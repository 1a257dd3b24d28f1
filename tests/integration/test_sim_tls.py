"""`ems-sim run --tls` against a Mosquitto TLS listener with a private CA."""

from __future__ import annotations

import secrets
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from contract.topics import parse_meter_topic
from devkit.helpers import Subscriber, wait_for
from ems.broker import MosquittoServer, render_config
from ems.procs import RunAs, free_port
from tests.conftest import BrokerInfo
from tests.integration.test_sim_run import provision

ROOT = Path(__file__).resolve().parents[2]


def make_certificates(directory: Path) -> None:
    """A private CA and a server certificate for 127.0.0.1, with the openssl command."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)

    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=ems-test-ca",
    )
    openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    )
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    )


class TlsMosquitto(MosquittoServer):
    """The harness's Mosquitto plus a TLS listener (ems.broker renders it; we only ask)."""

    tls_port: int = 0

    def prepare(self) -> None:
        super().prepare()
        self.conf_path.write_text(
            render_config(
                data_dir=self.base_dir / "data",
                port=self.port,
                host=self.host,
                dynsec_file=self.dynsec_path,
                tls={
                    "port": str(self.tls_port),
                    "certfile": str(self.base_dir / "server.pem"),
                    "keyfile": str(self.base_dir / "server.key"),
                },
            )
        )
        self.run_as.give(self.base_dir)


@pytest.fixture
def tls_broker(services_dir: Path, run_as: RunAs) -> Iterator[BrokerInfo]:
    base = services_dir / ("mqtls-" + uuid.uuid4().hex[:8])
    base.mkdir()
    make_certificates(base)
    server = TlsMosquitto(
        base, free_port(), secrets.token_urlsafe(16), secrets.token_urlsafe(16), run_as
    )
    server.tls_port = free_port()
    server.start()
    yield BrokerInfo(server)
    server.stop()


def test_meters_connect_over_tls_with_a_private_ca(tls_broker: BrokerInfo) -> None:
    server = tls_broker.server
    assert isinstance(server, TlsMosquitto)
    ((device_id, password),) = provision(tls_broker, 1)
    hub = Subscriber(
        tls_broker.host,
        tls_broker.port,
        tls_broker.hub_user,
        tls_broker.hub_password,
        "ems/v1/meters/+/readings",
    )
    sim = subprocess.Popen(
        [
            *(sys.executable, "-m", "device_sim", "run", "--no-state", "--speed", "600"),
            *("--device-id", str(device_id), f"--password={password}"),
            *("--host", "127.0.0.1", "--port", str(server.tls_port), "--tls"),
            *("--ca-file", str(server.base_dir / "ca.pem")),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:

        def over_tls() -> int:
            return sum(parse_meter_topic(m.topic) is not None for m in hub.received())

        wait_for(lambda: over_tls() >= 3, 30, "readings sent over TLS")
    finally:
        sim.terminate()
        output, _ = sim.communicate(timeout=20)
        hub.close()
    assert sim.returncode == 0, output
    assert "(TLS)" in output
