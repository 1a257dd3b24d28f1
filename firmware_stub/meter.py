"""The meter: a reading every interval, store-and-forward, birth and last will, commands.

A single-threaded state machine. The owner calls ``start()``, then ``poll()`` when the time it
returned has come (``on_timer`` says when an event moved that time earlier); the client's
events arrive as method calls on the same thread. Nothing here blocks or sleeps.

Each reading (``schedule.py``) gets the next ``seq`` and goes into the buffer first; while
connected (``session.py``) the buffer is pumped in seq order: one reading as an object, a
backlog as arrays of up to ``batch_max``, at most ``window`` publishes unacknowledged
(``window.py``). A new connection starts again from what the broker acknowledged.

A PUBACK "no matching subscribers" (MQTT 5 reason 0x10: EMS was not subscribed, e.g. right
after a broker restart) means the broker dropped the message: its readings stay pending, the
pump pauses for a back-off (``common/backoff.py``, growing while it lasts) and then starts again
from the acknowledged prefix - as after a reconnect, without dropping the connection.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from datetime import datetime
from uuid import UUID

from common.backoff import Backoff
from contract.topics import cmd_topic, readings_topic
from firmware_stub.buffer import ReadingBuffer
from firmware_stub.clock import Clock
from firmware_stub.model import MeterConfig, MeterStats, Sensor, State
from firmware_stub.records import StoredReading, to_ms
from firmware_stub.schedule import ReadingSchedule
from firmware_stub.session import Session
from firmware_stub.transport import MqttClient, PublishOutcome
from firmware_stub.window import InFlightWindow
from firmware_stub.wire import Encoder, encode_v1, handle_command

log = logging.getLogger("firmware_stub.meter")


class Meter:
    def __init__(
        self,
        device_id: UUID,
        *,
        client: MqttClient,
        clock: Clock,
        buffer: ReadingBuffer,
        sensor: Sensor,
        config: MeterConfig | None = None,
        encoder: Encoder = encode_v1,
        rng: random.Random | None = None,
    ) -> None:
        self.device_id = device_id
        self.config = config or MeterConfig()
        self.buffer = buffer
        self.stats = MeterStats()
        self.schedule = ReadingSchedule(self.config.interval_s)
        self.on_timer: Callable[[float], None] | None = None
        """Called with a monotonic time when an event sets a timer; poll() is due then."""
        self._client = client
        self._clock = clock
        self._sensor = sensor
        self._encoder = encoder
        self._readings_topic = readings_topic(device_id)
        self._cmd_topic = cmd_topic(device_id)
        self._sync_at: float | None = None
        self._inflight = InFlightWindow(self.config.window)
        self._sent_through = -1
        rng = rng or random.Random()  # noqa: S311 - jitter, not security
        # While set, readings found no subscriber: the pump waits until then (see _unrouted).
        self._resync_at: float | None = None
        self._unrouted_backoff = Backoff(self.config.backoff, rng)
        self._session = Session(
            device_id,
            client=client,
            clock=clock,
            config=self.config,
            stats=self.stats,
            rng=rng,
            up=self._connected,
            down=self._inflight.clear,
            finished=self._finished,
            timer=self._timer,
        )
        client.on_publish = self._on_publish
        client.on_message = self._on_message

    @property
    def state(self) -> State:
        return self._session.state

    @property
    def window_full(self) -> bool:
        """As many publishes in flight as the window allows: readings wait for PUBACKs (the
        broker is not keeping up)."""
        return not self._inflight.has_room()

    @property
    def last_error(self) -> str | None:
        """Why the last connection attempt failed or the connection ended (for diagnosis)."""
        return self._session.last_error

    # ---- owner API -----------------------------------------------------------------------

    def start(self, first_reading_at: datetime | None = None) -> None:
        """Take the first reading (for ``first_reading_at``, default now), then connect."""
        if self.state is not State.IDLE:
            raise RuntimeError("a meter starts once")
        first = first_reading_at or self._clock.now()
        self._take(first)
        self.schedule.start(first)
        self._session.connect()

    def poll(self) -> float:
        """Run what is due; return the monotonic time at which to call again."""
        mono = self._clock.monotonic()
        now = self._clock.now()
        if due := self.schedule.due(now):
            slot, skipped = due
            self.stats.missed_slots += skipped
            self._take(slot)
        deadline = self._session.deadline
        if deadline is not None and mono >= deadline:
            self._session.on_deadline()
        if self._sync_at is not None and mono >= self._sync_at:
            self._sync()
        if self._resync_at is not None and mono >= self._resync_at:
            self._resync_at = None
            if self.state is State.CONNECTED:
                self._pump_from_prefix()
        return self._next_wake(mono, now)

    def stop(self) -> None:
        """Stop taking readings, say offline, disconnect cleanly, close the buffer; ``state``
        becomes STOPPED (at once, or within ``stop_timeout_s``)."""
        if self.state not in (State.STOPPING, State.STOPPED):
            self.schedule.stop()
            self._session.stop()

    def set_interval(self, interval_s: int) -> None:
        """Take readings every ``interval_s`` from the next slot of the new grid on."""
        self.schedule.change_interval(interval_s, self._clock.now())
        self._timer(self._clock.monotonic())

    def resend(self, from_seq: int) -> int:
        """Republish the acknowledged readings still remembered from ``from_seq`` on (pending
        ones are on their way anyway); return how many."""
        if self.state is not State.CONNECTED:
            return 0
        readings = self.buffer.since(from_seq, self.buffer.acked_seq)
        for i in range(0, len(readings), self.config.batch_max):
            self._send(readings[i : i + self.config.batch_max])
        self.stats.resent += len(readings)
        return len(readings)

    # ---- readings and the pump -----------------------------------------------------------

    def _take(self, slot: datetime) -> None:
        m = self._sensor(slot)
        self.buffer.append(to_ms(m.ts or slot), m.energy_kwh, m.power_w)
        self.stats.produced += 1
        if self.buffer.unsynced >= self.config.sync_every:
            self._sync()
        elif self._sync_at is None:
            self._sync_at = self._clock.monotonic() + self.config.sync_interval_s
        if self.state is State.CONNECTED:
            self._pump()

    def _sync(self) -> None:
        self._sync_at = None
        self.buffer.sync()

    def _send(self, batch: Sequence[StoredReading]) -> int:
        payload = self._encoder(self.device_id, batch)
        return self._client.publish(self._readings_topic, payload, 1, False)

    def _pump(self) -> None:
        if self._resync_at is not None:
            return  # backing off: nobody was subscribed to the last readings
        while self._inflight.has_room():
            if self._sent_through >= self.buffer.next_seq - 1:
                return  # all sent: skip the buffer search (each PUBACK pumps; most find nothing)
            batch = self.buffer.pending(self._sent_through, self.config.batch_max)
            if not batch:
                return
            self._inflight.sent(self._send(batch), batch[-1].seq, len(batch))
            self._sent_through = batch[-1].seq
            self.stats.messages += 1

    # ---- events --------------------------------------------------------------------------

    def _connected(self) -> None:
        self._resync_at = None  # the reconnect was the back-off
        self._pump_from_prefix()

    def _pump_from_prefix(self) -> None:
        # Everything after what the broker acknowledged is sent again, oldest first (the hub
        # absorbs a reading it already has). PUBACKs still due for the cleared window are
        # then ignored: their mids are unknown, the copies sent now get their own.
        self._inflight.clear()
        self._sent_through = self.buffer.acked_seq
        self._pump()

    def _on_publish(self, mid: int, outcome: PublishOutcome) -> None:
        if self.state is State.STOPPED:
            return
        count = self._inflight.count_of(mid)
        if count is None:
            self._session.acknowledged(mid)
            return
        if outcome is PublishOutcome.UNROUTED:
            # Not marked done in the window: no later PUBACK can move the prefix past it.
            self._unrouted(count)
            return
        if outcome is PublishOutcome.ACCEPTED:
            self._routed()
        else:
            # Retrying cannot help (the broker's ACL said no); keep the buffer moving.
            self.stats.rejected += count
            log.warning("meter %s: the broker refused %d readings", self.device_id, count)
        if moved := self._inflight.acknowledged(mid):
            through, readings = moved
            self.buffer.ack_through(through)
            self.stats.acked += readings
        if self._sync_at is None and self.buffer.unsynced:
            self._sync_at = self._clock.monotonic() + self.config.sync_interval_s
            self._timer(self._sync_at)
        if self.state is State.CONNECTED:
            self._pump()

    def _unrouted(self, count: int) -> None:
        self.stats.unrouted += count
        if self._resync_at is not None:
            return  # the rest of the window answering the same: one back-off for all
        delay = self._unrouted_backoff.next_delay()
        self._resync_at = self._clock.monotonic() + delay
        self._timer(self._resync_at)
        level = logging.WARNING if self._unrouted_backoff.attempt == 1 else logging.DEBUG
        log.log(
            level,
            "meter %s: no subscriber for its readings (PUBACK 0x10 no matching subscribers);"
            " keeping them, sending again in %.1f s",
            self.device_id,
            delay,
        )

    def _routed(self) -> None:
        if not self._unrouted_backoff.attempt:
            return
        log.info(
            "meter %s: readings reach a subscriber again after %d retries",
            self.device_id,
            self._unrouted_backoff.attempt,
        )
        self._unrouted_backoff.reset()
        if self._resync_at is not None:
            # A later publish got through while backing off: subscribers are back, so resend
            # the unrouted ones now rather than after the rest of the delay.
            self._resync_at = self._clock.monotonic()
            self._timer(self._resync_at)

    def _on_message(self, topic: str, payload: bytes) -> None:
        if (
            topic == self._cmd_topic
            and self.state is State.CONNECTED
            and not handle_command(self, payload)
        ):
            self.stats.bad_commands += 1

    def _finished(self) -> None:
        self._inflight.clear()
        self._sync_at = self._resync_at = None
        self.buffer.close()

    # ---- timers --------------------------------------------------------------------------

    def _timer(self, at: float) -> None:
        if self.on_timer is not None:
            self.on_timer(at)

    def _next_wake(self, mono: float, now: datetime) -> float:
        wake = mono + 3600.0
        if self.schedule.next_slot is not None:
            ahead = (self.schedule.next_slot - now).total_seconds() / self._clock.speed
            wake = min(wake, mono + max(ahead, 0.0))
        for at in (self._session.deadline, self._sync_at, self._resync_at):
            if at is not None:
                wake = min(wake, at)
        return wake
