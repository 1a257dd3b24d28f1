"""The meter on a PC: paho driven by a select() superloop, the way firmware runs.

``run_forever`` is the device main loop: poll the meter, then wait for network events until
the meter's next timer, over and over. One thread, no callbacks from elsewhere.
"""

from __future__ import annotations

import select
import ssl
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt

from firmware_stub.clock import Clock
from firmware_stub.meter import Meter
from firmware_stub.model import State
from firmware_stub.paho_session import BrokerAddress, PahoSession, Phase
from firmware_stub.transport import Will


class PahoClient(PahoSession):
    def __init__(self, address: BrokerAddress) -> None:
        super().__init__(address)
        self._failure: tuple[mqtt.Client, str] | None = None

    def connect(self, will: Will) -> None:
        c = self._new_attempt(will)
        # With a write callback set, paho never writes from inside publish() (where a failed
        # write would report the disconnect in the middle of the caller); loop() writes.
        c.on_socket_register_write = _ignore
        a = self.address
        try:
            c.connect(a.host, a.port, a.keepalive, clean_start=True)
        except (OSError, ValueError) as exc:
            self._failure = (c, str(exc) or type(exc).__name__)  # reported from loop()

    def loop(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for network events and handle them."""
        if self._failure is not None:
            (failed, reason), self._failure = self._failure, None
            self._end(failed, reason)
            return
        c = self._paho
        sock = c.socket() if c is not None and self._phase is not Phase.CLOSED else None
        if c is None or sock is None:
            time.sleep(timeout)
            return
        pending = isinstance(sock, ssl.SSLSocket) and sock.pending() > 0
        readable, writable, _ = select.select(
            [sock], [sock] if c.want_write() else [], [], 0 if pending else timeout
        )
        if readable or pending:
            c.loop_read()
        if writable and c.socket() is not None:
            c.loop_write()
        if c.socket() is not None:
            c.loop_misc()


def _ignore(*_args: Any) -> None:
    return None


def run_forever(
    meter: Meter,
    client: PahoClient,
    clock: Clock,
    should_stop: Callable[[], bool],
    *,
    max_wait: float = 1.0,
) -> None:
    """Start the meter and run it until ``should_stop()``; then stop it cleanly (offline
    status, DISCONNECT, buffer closed)."""
    meter.start()
    while not should_stop():
        wake = meter.poll()
        client.loop(min(max(wake - clock.monotonic(), 0.0), max_wait))
    meter.stop()
    while meter.state is not State.STOPPED:
        meter.poll()
        client.loop(0.05)
