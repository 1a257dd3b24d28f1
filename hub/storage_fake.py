"""An in-memory ``Storage`` that fails on cue: the writer's failure paths, without a database.

Shipped beside the real one (as httpx ships ``MockTransport``): the semantics the writer relies
on are kept — a batch is stored whole or not at all; readings are keyed by (device, ts), the
same value again is a duplicate and another value a conflict (dead-lettered as such); a reading
of a device that does not exist fails the batch with ``ForeignKeyViolation``, as the
database's foreign key does. ``fail`` makes the next calls (or the batches that match) raise
any ``psycopg.Error``: an unreachable database, a deadlock, a value PostgreSQL refuses.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal
from uuid import UUID

import psycopg

from contract.topics import readings_topic
from hub.batch import DeadLetter, PreparedBatch, conflict_letter, same_value
from hub.registry import DeviceInfo
from hub.storage import BatchOutcome, Storage

Method = Literal["load_devices", "commit_batch", "set_status", "mark_stale"]
Error = type[psycopg.Error] | psycopg.Error


@dataclass(slots=True)
class Failure:
    """A cue: ``method`` raises ``error`` while ``times`` lasts (None: until ``clear()``),
    on the calls ``when`` accepts (``commit_batch``: it is given the batch)."""

    method: Method
    error: Error
    times: int | None
    when: Callable[[PreparedBatch], bool] | None
    raised: int = 0

    def clear(self) -> None:
        self.times = 0

    def matches(self, method: Method, batch: PreparedBatch | None) -> bool:
        if self.method != method or self.times == 0:
            return False
        return self.when is None or (batch is not None and self.when(batch))


class FakeStorage:
    """``hub.storage.Storage`` in memory. Thread-safe: a writer thread uses it while a test
    reads it."""

    def __init__(
        self,
        devices: Iterable[DeviceInfo] = (),
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.devices = {d.device_id: d for d in devices}
        self.readings: dict[tuple[UUID, datetime], float] = {}
        self.dead_letters: list[DeadLetter] = []
        self.status: dict[UUID, str] = {}
        self.since: dict[UUID, datetime] = {}
        self.last_seen: dict[UUID, datetime] = {}
        self.calls: dict[Method, int] = {}  # every call, failed or not
        self.commits = 0  # commit_batch calls that stored their batch
        self.resets = 0
        self.closed = False
        self._clock = clock
        self._failures: list[Failure] = []
        self._lock = threading.RLock()

    # --- cues -----------------------------------------------------------------------------------

    def fail(
        self,
        error: Error,
        *,
        method: Method = "commit_batch",
        times: int | None = 1,
        when: Callable[[PreparedBatch], bool] | None = None,
    ) -> Failure:
        """Make ``method`` raise ``error`` (a class is instantiated with a message) the next
        ``times`` calls (None: until the returned cue is cleared), only for the batches
        ``when`` accepts if given."""
        cue = Failure(method, error, times, when)
        with self._lock:
            self._failures.append(cue)
        return cue

    def delete_device(self, device_id: UUID) -> None:
        """As the portal would: the device, its readings and its status are gone."""
        with self._lock:
            self.devices.pop(device_id, None)
            for key in [k for k in self.readings if k[0] == device_id]:
                del self.readings[key]
            self.status.pop(device_id, None)

    def _enter(self, method: Method, batch: PreparedBatch | None = None) -> None:
        self.calls[method] = self.calls.get(method, 0) + 1
        for cue in self._failures:
            if cue.matches(method, batch):
                cue.raised += 1
                if cue.times is not None:
                    cue.times -= 1
                error = cue.error
                raise error(f"fake {method} failure") if isinstance(error, type) else error

    # --- Storage --------------------------------------------------------------------------------

    def load_devices(self, ids: Iterable[UUID] | None = None) -> list[DeviceInfo]:
        with self._lock:
            self._enter("load_devices")
            if ids is None:
                return list(self.devices.values())
            return [self.devices[i] for i in ids if i in self.devices]

    def commit_batch(self, batch: PreparedBatch) -> BatchOutcome:
        with self._lock:
            self._enter("commit_batch", batch)
            # Checked before anything is written: the batch is one transaction.
            if any(r.device_id not in self.devices for r in batch.readings):
                raise psycopg.errors.ForeignKeyViolation(
                    'insert on table "readings" violates foreign key constraint'
                )
            out = BatchOutcome(duplicates=batch.duplicates, dead=list(batch.dead))
            now = self._clock()
            for r in batch.readings:
                stored = self.readings.get((r.device_id, r.ts))
                if stored is None:
                    self.readings[(r.device_id, r.ts)] = r.energy_kwh
                    out.stored += 1
                elif same_value(stored, r.energy_kwh):
                    out.duplicates += 1
                else:
                    out.dead.append(conflict_letter(readings_topic(r.device_id), r, stored))
            for device_id in sorted({r.device_id for r in batch.readings}):
                if self.status.get(device_id, "online") != "online":
                    out.back_online.append(device_id)
                    self.since[device_id] = now
                elif device_id not in self.status:
                    self.since[device_id] = now
                self.status[device_id] = "online"
                self.last_seen[device_id] = now
            self.dead_letters += out.dead
            self.commits += 1
            return out

    def set_status(
        self, device_id: UUID, state: str, reason: str, not_before: datetime | None = None
    ) -> bool:
        with self._lock:
            self._enter("set_status")
            if device_id not in self.devices or self.status.get(device_id) == state:
                return False
            since = self.since.get(device_id)
            if not_before is not None and since is not None and since >= not_before:
                return False
            now = self._clock()
            self.status[device_id] = state
            self.since[device_id] = now
            if state == "online":
                self.last_seen[device_id] = now
            return True

    def mark_stale(self, stale_intervals: float) -> list[UUID]:
        with self._lock:
            self._enter("mark_stale")
            now = self._clock()
            stale = sorted(
                device_id
                for device_id, state in self.status.items()
                if state == "online"
                and device_id in self.devices
                and now - self.last_seen[device_id]
                > timedelta(seconds=self.devices[device_id].interval_s * stale_intervals)
            )
            for device_id in stale:
                self.status[device_id] = "offline"
                self.since[device_id] = now
            return stale

    def reset(self) -> None:
        with self._lock:
            self.resets += 1

    def close(self) -> None:
        with self._lock:
            self.closed = True


if TYPE_CHECKING:  # mypy holds the fake to the protocol the writer takes
    _conforms: Storage = FakeStorage()
