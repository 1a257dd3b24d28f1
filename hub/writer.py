"""A writer: bounded inbox → batch → one transaction → acknowledge → publish.

Each writer thread owns a database connection. It takes up to ``batch_size`` messages (waiting
at most ``flush_interval_s`` after the first), commits them, and only then acknowledges them to
the broker. The hub runs ``HUB_WRITERS`` of them on one shared ``Intake``: while one waits for
PostgreSQL, another prepares its batch; acknowledgements still leave in the order of arrival.
A failing database is retried with backoff while the inbox fills and the broker holds the rest
(backpressure, nothing dropped). A batch that fails for a reason other than the
connection is split until the message that causes it is found and dead-lettered alone.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Protocol
from uuid import UUID

import psycopg

from common.backoff import Backoff, BackoffPolicy
from contract.codec import decode_device_event, decode_status
from contract.reasons import DecodeError, reason_family, truncate_payload
from hub.batch import DeadLetter, Message, MessageKind, PreparedBatch, meter_topic, prepare
from hub.buffer import Intake
from hub.metrics import HubMetrics
from hub.registry import DeviceRegistry
from hub.running import LiveTotal
from hub.settings import HubSettings
from hub.storage import BatchOutcome, Storage

log = logging.getLogger("hub.writer")

Ack = tuple[int, int]  # (mid, qos) of a message to acknowledge

# While the database is unreachable: 0.1-0.2 s, doubling up to 5-10 s between attempts (the
# jitter keeps a hub's writers, and replicas, from retrying in step).
DB_RETRY = BackoffPolicy(initial_s=0.2, maximum_s=10.0, factor=2.0, jitter=0.5)
# Connecting at start: 0.2 s doubling up to 5 s, no jitter (one attempt per writer).
CONNECT_RETRY = BackoffPolicy(initial_s=0.2, maximum_s=5.0, factor=2.0, jitter=0.0)


class WriterAlerts(Protocol):
    """The alert operations a writer triggers (``hub.alert_store.StorageAlerts``)."""

    def status_changed(self, device_ids: list[UUID], state: str) -> None: ...

    def close_hours(self) -> None: ...

    def at_commit(self, totals: Sequence[LiveTotal]) -> None: ...


class BatchWriter:
    def __init__(
        self,
        settings: HubSettings,
        storage: Storage,
        registry: DeviceRegistry,
        metrics: HubMetrics,
        intake: Intake,
        *,
        alerts: WriterAlerts | None = None,
        on_commit: Callable[[], None] | None = None,
        on_committed: Callable[[PreparedBatch, WriterAlerts | None], None] | None = None,
        housekeeping: bool = True,
        db_retry: BackoffPolicy = DB_RETRY,
        connect_retry: BackoffPolicy = CONNECT_RETRY,
        rng: random.Random | None = None,
    ) -> None:
        """``housekeeping``: this writer also marks stale meters offline and closes alert
        hours (one writer of a hub does). ``on_committed(prepared, alerts)``: after a batch
        that stored readings committed, on this thread (the hub's live totals and the alerts
        decided from them). ``db_retry``/``connect_retry``: the back-off while the database is
        unreachable."""
        self.settings = settings
        self.storage = storage
        self.registry = registry
        self.metrics = metrics
        self.intake = intake
        self.inbox = intake.inbox
        self.alerts = alerts
        self.on_commit = on_commit
        self.on_committed = on_committed
        self.housekeeping = housekeeping
        self.db_retry = db_retry
        self.connect_retry = connect_retry
        self._rng = rng if rng is not None else random.Random()  # noqa: S311 - jitter only
        self.db_ok = False
        self._next_stale_check = 0.0

    # --- the loop -----------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        self._connect(stop)
        stages = self.metrics.stages
        while not (stop.is_set() and not len(self.inbox)):
            mark = stages.mark()
            ticket, batch = self.intake.take(
                self.settings.batch_size, timeout=0.2, linger=self.settings.flush_interval_s
            )
            stages.lap("take", mark)
            if batch:
                acks = self._process(batch, stop)
                mark = stages.mark()
                self.intake.release(ticket, acks)
                stages.lap("ack", mark)
            if self.housekeeping:
                self._maybe_check_stale()

    def _connect(self, stop: threading.Event) -> None:
        backoff = Backoff(self.connect_retry, self._rng)
        while not stop.is_set():
            try:
                self.registry.replace_all(self.storage.load_devices())
                self.db_ok = True
                self.metrics.db_ok.set(1)
                log.info("database connected; %d devices registered", len(self.registry))
                return
            except psycopg.OperationalError as exc:
                self._db_down(exc)
                stop.wait(backoff.next_delay())

    def _process(self, batch: list[Message], stop: threading.Event) -> list[Ack]:
        """Handle a batch; returns the acknowledgements of what is done with (committed,
        dead-lettered or ignored). What is left out (``stop`` while the database is down) the
        broker redelivers to the next session."""
        acks: list[Ack] = []
        readings: list[Message] = []
        for msg in batch:
            kind = msg.kind
            if kind is MessageKind.READINGS:
                readings.append(msg)
            elif kind is MessageKind.STATUS:
                if self._status(msg, stop):
                    acks.append((msg.mid, msg.qos))
            elif kind is MessageKind.DEVICE_EVENT:
                self._device_event(msg)
                acks.append((msg.mid, msg.qos))
            else:  # a bug upstream, not bad input: classify() runs on every arrival
                raise ValueError(f"an unclassified message on {msg.topic!r} reached a writer")
        if readings:
            acks += [(msg.mid, msg.qos) for msg in self._commit_resilient(readings, stop)]
        self.metrics.backlog.dec(len(batch))
        return acks

    # --- readings -----------------------------------------------------------------------------

    def _prepare(self, messages: Sequence[Message]) -> PreparedBatch:
        s = self.settings
        now = datetime.now(UTC)

        def prepared_now() -> PreparedBatch:
            return prepare(
                messages,
                self.registry.get,
                now=now,
                max_future=s.max_future,
                max_lateness=s.max_lateness,
                max_power_w=s.max_power_w,
            )

        prepared = prepared_now()
        if not prepared.unknown:
            return prepared
        # A device created a moment ago, its event not here yet: ask the database, then
        # prepare again (what is still unknown is dead-lettered as such).
        found = self.storage.load_devices(prepared.unknown)
        if not found:
            return prepared
        self.registry.update(found)
        return prepared_now()

    def _commit_resilient(self, messages: list[Message], stop: threading.Event) -> list[Message]:
        """Commit ``messages`` (isolating and dead-lettering what the database refuses);
        returns those committed, in order: all of them unless ``stop`` came while the
        database was down."""
        backoff = Backoff(self.db_retry, self._rng)
        while True:
            started = time.perf_counter()
            try:
                mark = self.metrics.stages.mark()
                prepared = self._prepare(messages)
                self.metrics.stages.lap("prepare", mark)
                outcome = self.storage.commit_batch(prepared)  # books copy, insert, commit
            except psycopg.errors.DeadlockDetected:
                # Two writers' batches touching the same meters' status rows: PostgreSQL rolled
                # this one back whole; it goes again.
                log.info("a batch met another writer's in a deadlock; retrying it")
                stop.wait(self._rng.uniform(0, 0.05))
                continue
            except psycopg.OperationalError as exc:
                self._db_down(exc)
                if stop.is_set():
                    # Unacknowledged: the broker redelivers them to the next hub session.
                    log.warning(
                        "stopping with %d uncommitted messages (they will be redelivered)",
                        len(messages),
                    )
                    return []
                stop.wait(backoff.next_delay())
                continue
            except psycopg.errors.ForeignKeyViolation as exc:
                # A device deleted since the registry saw it: ask the database which of the
                # batch's devices exist; the deleted one's readings are then dead-lettered as
                # unknown. If the registry was already right, the cause is another: isolate it.
                if not self._refresh_registry(messages):
                    return self._isolate(messages, exc, stop)
                continue
            except psycopg.Error as exc:
                self.storage.reset()
                return self._isolate(messages, exc, stop)
            self._committed(messages, prepared, outcome, time.perf_counter() - started)
            return messages

    def _refresh_registry(self, messages: Sequence[Message]) -> bool:
        """Forget the batch's devices that no longer exist; True if there were any."""
        ids = {p[0] for m in messages if (p := meter_topic(m.topic)) is not None}
        try:
            existing = {d.device_id for d in self.storage.load_devices(ids)}
        except psycopg.Error:
            self.storage.reset()
            return False
        gone = {i for i in ids if i not in existing and self.registry.get(i) is not None}
        self.registry.forget(gone)
        return bool(gone)

    def _isolate(
        self, messages: list[Message], exc: psycopg.Error, stop: threading.Event
    ) -> list[Message]:
        if len(messages) == 1:
            msg = messages[0]
            log.error(
                "message on %s fails to store (%s); dead-lettering it",
                msg.topic,
                type(exc).__name__,
            )
            letter = DeadLetter(
                msg.topic, None, "storage_error", str(exc)[:500], truncate_payload(msg.payload)
            )
            return messages if self._commit_resilient_dead(msg, letter, stop) else []
        half = len(messages) // 2
        first = self._commit_resilient(messages[:half], stop)
        return first + self._commit_resilient(messages[half:], stop)

    def _commit_resilient_dead(
        self, msg: Message, letter: DeadLetter, stop: threading.Event
    ) -> bool:
        """Commit ``msg``'s dead letter; False if ``stop`` came first."""
        prepared = PreparedBatch(dead=[letter])
        backoff = Backoff(self.db_retry, self._rng)
        while not stop.is_set():
            try:
                outcome = self.storage.commit_batch(prepared)
            except psycopg.Error as exc:
                self._db_down(exc)
                stop.wait(backoff.next_delay())
                continue
            self._committed([msg], prepared, outcome, 0.0)
            return True
        return False

    def _committed(
        self,
        messages: Sequence[Message],
        prepared: PreparedBatch,
        outcome: BatchOutcome,
        seconds: float,
    ) -> None:
        now = time.monotonic()
        self.metrics.lag_seconds.observe_many([now - msg.received for msg in messages])
        m = self.metrics
        m.messages.inc(len(messages))
        m.received.inc(prepared.received)
        m.stored.inc(outcome.stored)
        m.duplicates.inc(outcome.duplicates)
        for letter in outcome.dead:
            if letter.reason == "conflict":
                m.conflicts.inc()
            m.rejected.labels(reason_family(letter.reason)).inc()
        m.flush_seconds.observe(seconds)
        self._status_alerts(outcome.back_online, "online")
        m.batch_size.observe(len(messages))
        if not self.db_ok:
            log.info("database is back")
        self.db_ok = True
        m.db_ok.set(1)
        if outcome.stored and self.on_committed is not None:
            mark = m.stages.mark()
            self.on_committed(prepared, self.alerts)
            m.stages.lap("live", mark)
        if outcome.stored and self.on_commit is not None:
            self.on_commit()  # new readings are marked: wake the rollup

    def _db_down(self, exc: Exception) -> None:
        if self.db_ok:
            log.error(
                "database unavailable (%s); retrying with backoff, holding messages",
                str(exc).strip().splitlines()[0][:200] if str(exc) else type(exc).__name__,
            )
        self.db_ok = False
        self.metrics.db_ok.set(0)
        self.metrics.flush_failures.inc()
        self.storage.reset()

    # --- status and device events ---------------------------------------------------------------

    def _status(self, msg: Message, stop: threading.Event) -> bool:
        """Record a meter's status; True when done with (to acknowledge), False if ``stop``
        came while the database was down."""
        parsed = meter_topic(msg.topic)
        if parsed is None or not msg.payload:  # an empty retained payload clears the status
            return True
        try:
            state, ts = decode_status(msg.payload)
        except DecodeError as exc:
            letter = DeadLetter(
                msg.topic, parsed[0], exc.reason, exc.message, truncate_payload(msg.payload)
            )
            return self._commit_resilient_dead(msg, letter, stop)
        reason = "birth" if state == "online" else "will"
        # A status replayed on (re)subscribe may be older than what the hub has recorded since
        # (a silent meter marked offline by staleness still has "online" retained): it counts
        # only if its own time is later than the recorded change. One without a time is left
        # to staleness, which catches a meter that died while no hub was listening.
        not_before = None
        if msg.retain:
            if ts is None:
                return True
            not_before = ts
        backoff = Backoff(self.db_retry, self._rng)
        while not stop.is_set():
            try:
                changed = self.storage.set_status(parsed[0], state, reason, not_before)
                break
            except psycopg.Error as exc:
                self._db_down(exc)
                stop.wait(backoff.next_delay())
        else:
            return False
        if changed:
            self._status_alerts([parsed[0]], state)
        return True

    def _device_event(self, msg: Message) -> None:
        try:
            self.registry.apply(decode_device_event(msg.payload))
        except DecodeError as exc:
            log.warning("ignoring a malformed device event: %s", exc.message)

    def _maybe_check_stale(self) -> None:
        now = time.monotonic()
        if now < self._next_stale_check or not self.db_ok:
            return
        self._next_stale_check = now + self.settings.status_check_interval_s
        try:
            stale = self.storage.mark_stale(self.settings.stale_intervals)
        except psycopg.Error as exc:
            self._db_down(exc)
            return
        self._status_alerts(stale, "offline")
        if self.alerts is not None:
            try:
                self.alerts.close_hours()
            except psycopg.Error as exc:
                self._db_down(exc)

    def _status_alerts(self, device_ids: list[UUID], state: str) -> None:
        if self.alerts is None or not device_ids:
            return
        try:
            self.alerts.status_changed(device_ids, state)
        except psycopg.Error as exc:
            # The status itself is recorded; only its alert is lost: say so, do not stop.
            log.error("could not record %s alerts for %d devices: %s", state, len(device_ids), exc)
            self.storage.reset()
