"""The meter's connection: last will and birth, reconnect with backoff, refused credentials,
and a clean stop.

The will (``{"state":"offline"}``, retained) is set on every attempt; right after CONNACK the
birth (``{"state":"online","ts":…}``, retained) is published and the command topic subscribed -
on every connection, as the session is clean. A failed attempt or a lost connection waits a
jittered, growing delay (``common/backoff.py``); an attempt with no answer within
``connect_timeout_s`` is abandoned. Refused credentials end the attempts (``State.REFUSED``)
unless ``retry_refused``. ``stop()`` publishes ``{"state":"offline","ts":…}`` retained, waits
for its PUBACK (at most ``stop_timeout_s``) and disconnects, so that the will does not fire.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from uuid import UUID

from common.backoff import Backoff
from contract.codec import encode_status
from contract.topics import cmd_topic, status_topic
from firmware_stub.clock import Clock
from firmware_stub.model import MeterConfig, MeterStats, State
from firmware_stub.transport import MqttClient, Will

log = logging.getLogger("firmware_stub.meter")


class Session:
    def __init__(
        self,
        device_id: UUID,
        *,
        client: MqttClient,
        clock: Clock,
        config: MeterConfig,
        stats: MeterStats,
        rng: random.Random,
        up: Callable[[], None],
        down: Callable[[], None],
        finished: Callable[[], None],
        timer: Callable[[float], None],
    ) -> None:
        self.state = State.IDLE
        self.last_error: str | None = None
        self.deadline: float | None = None  # reconnect, connect timeout or stop timeout
        self._device_id = device_id
        self._client = client
        self._clock = clock
        self._config = config
        self._stats = stats
        self._backoff = Backoff(config.backoff, rng)
        self._up, self._down, self._finished, self._timer = up, down, finished, timer
        self._status_topic = status_topic(device_id)
        self._cmd_topic = cmd_topic(device_id)
        self._offline_mid: int | None = None
        client.on_connect = self._on_connect
        client.on_connect_failed = self._on_connect_failed
        client.on_disconnect = self._on_disconnect

    def connect(self) -> None:
        self.state = State.CONNECTING
        self._set_deadline(self._config.connect_timeout_s)
        self._client.connect(Will(self._status_topic, encode_status("offline", None), 1, True))

    def stop(self) -> None:
        if self.state is State.CONNECTED:
            payload = encode_status("offline", self._clock.now())
            self._offline_mid = self._client.publish(self._status_topic, payload, 1, True)
            self.state = State.STOPPING
            self._set_deadline(self._config.stop_timeout_s)
        else:
            if self.state is State.CONNECTING:
                self._client.disconnect()
            self._finish()

    def acknowledged(self, mid: int) -> None:
        """A PUBACK that was not for readings: the offline status lets the stop proceed."""
        if mid == self._offline_mid and self.state is State.STOPPING:
            self._client.disconnect()

    def on_deadline(self) -> None:
        self.deadline = None
        if self.state is State.WAITING:
            self.connect()
        elif self.state is State.CONNECTING:
            self._client.disconnect()  # abandon the attempt
            self._retry_later(f"no answer within {self._config.connect_timeout_s:.0f} s")
        elif self.state is State.STOPPING:
            self._client.disconnect()
            self._finish()

    # ---- client events -------------------------------------------------------------------

    def _on_connect(self) -> None:
        if self.state is not State.CONNECTING:
            return
        self.state, self.deadline = State.CONNECTED, None
        self._stats.connects += 1
        if self._backoff.attempt:
            log.info("meter %s: connected after %d retries", self._device_id, self._backoff.attempt)
        self._backoff.reset()
        birth = encode_status("online", self._clock.now())
        self._client.publish(self._status_topic, birth, 1, True)
        self._client.subscribe(self._cmd_topic, 1)
        self._up()

    def _on_connect_failed(self, reason: str, refused: bool) -> None:
        if self.state is State.STOPPING:
            self._finish()
        elif self.state is State.CONNECTING:
            if refused and not self._config.retry_refused:
                self.state, self.deadline = State.REFUSED, None
                self._stats.refused += 1
                self.last_error = (
                    f"credentials refused ({reason}) - check the device id and password (rotated?)"
                )
                log.error("meter %s: %s; not retrying", self._device_id, self.last_error)
            else:
                self._retry_later(f"cannot connect: {reason}")

    def _on_disconnect(self, reason: str) -> None:
        if self.state is State.STOPPING:
            self._finish()
        elif self.state is State.CONNECTED:
            self._stats.disconnects += 1
            self._down()
            self._retry_later(f"disconnected: {reason}")

    # ---- internals -----------------------------------------------------------------------

    def _retry_later(self, why: str) -> None:
        self.last_error = why
        delay = self._backoff.next_delay()
        self.state = State.WAITING
        self._set_deadline(delay)
        level = logging.WARNING if self._backoff.attempt == 1 else logging.DEBUG
        log.log(level, "meter %s: %s; next attempt in %.1f s", self._device_id, why, delay)

    def _set_deadline(self, seconds: float) -> None:
        self.deadline = self._clock.monotonic() + seconds
        self._timer(self.deadline)

    def _finish(self) -> None:
        self.state, self.deadline = State.STOPPED, None
        self._finished()
