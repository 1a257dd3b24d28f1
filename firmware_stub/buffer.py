"""The store-and-forward buffer: every reading the broker has not acknowledged, in order.

A reading enters with the next ``seq`` and stays *pending* until the broker acknowledges its
publish (``ack_through``); it is then *remembered* (the most recent ``history`` of them) so that
a ``resend`` command can republish it. The buffer holds at most ``capacity`` readings: when it
is full the oldest remembered reading goes first, and only when every held reading is still
pending does the oldest pending one go - counted in ``dropped``.

Durability: readings and acknowledgements are appended as records (``records.py``) to a
``RecordStore``, in batches (``sync()``; the meter decides when). Re-opening the store replays
the records: the same pending readings in the same order, acknowledged ones gone, the same
``next_seq``. When the file has grown to several times what it holds, ``sync()`` rewrites it
(compaction). ``close()`` appends a meta record that marks a clean shutdown; after an unclean
one (power cut) ``next_seq`` skips ``recovery_gap`` numbers, because readings written after the
last sync may have been published before the crash and their seq must not be reused.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right

from firmware_stub.records import (
    ACK,
    META,
    READING,
    StoredReading,
    decode_reading,
    pack,
    pack_reading,
    scan,
    seq_of,
)
from firmware_stub.storage import RecordStore


class ReadingBuffer:
    def __init__(
        self,
        store: RecordStore,
        *,
        capacity: int = 10_000,
        history: int = 144,
        recovery_gap: int = 64,
    ) -> None:
        if capacity < 1 or history < 0 or recovery_gap < 0:
            raise ValueError("capacity must be >= 1, history and recovery_gap >= 0")
        self._store = store
        self._capacity = capacity
        self._history = history
        self._recovery_gap = recovery_gap
        # Reading records in seq order; [_head:] is live (a list with a moving head rather than
        # a deque, so that bisect can find a seq in O(log n)), [_pend:] is pending. The pending
        # cursor moves as acknowledgements come: the meter asks for pending readings once per
        # reading and per PUBACK, and a search through the remembered ones (up to ``history``)
        # each time was a good part of a reading's cost.
        self._records: list[bytes] = []
        self._head = 0
        self._pend = 0
        self._unsynced: list[bytes] = []
        self._file_records = 0
        self.next_seq = 0
        self.acked_seq = -1
        self.dropped = 0
        self.recovered_unclean = False
        self._load()

    # ---- queries -------------------------------------------------------------------------

    @property
    def pending_count(self) -> int:
        return len(self._records) - self._pend

    @property
    def held_count(self) -> int:
        return len(self._records) - self._head

    @property
    def unsynced(self) -> int:
        return len(self._unsynced)

    def pending(self, after_seq: int = -1, limit: int = 1000) -> list[StoredReading]:
        """Up to ``limit`` pending readings with seq > ``after_seq``, oldest first."""
        # Only the pending records are searched: usually a few (those in flight).
        start = bisect_right(self._records, after_seq, lo=self._pend, key=seq_of)
        return [decode_reading(r) for r in self._records[start : start + limit]]

    def since(self, from_seq: int, through_seq: int | None = None) -> list[StoredReading]:
        """Held readings (remembered and pending) with ``from_seq <= seq <= through_seq``."""
        start = bisect_left(self._records, from_seq, lo=self._head, key=seq_of)
        end = len(self._records)
        if through_seq is not None:
            end = bisect_right(self._records, through_seq, lo=start, key=seq_of)
        return [decode_reading(r) for r in self._records[start:end]]

    def last(self) -> StoredReading | None:
        return decode_reading(self._records[-1]) if self.held_count else None

    # ---- changes -------------------------------------------------------------------------

    def append(self, ts_ms: int, energy_kwh: float, power_w: float | None) -> StoredReading:
        seq = self.next_seq
        record = pack_reading(seq, ts_ms, energy_kwh, power_w)
        self._push(record, seq)
        self._unsynced.append(record)
        return StoredReading(seq, ts_ms, energy_kwh, power_w)

    def ack_through(self, seq: int) -> None:
        """The broker acknowledged every reading up to ``seq``."""
        if seq <= self.acked_seq:
            return
        self._ack(seq)
        self._unsynced.append(pack(ACK, seq))

    def sync(self) -> None:
        """Write the records added since the last sync, durably; compact when worthwhile."""
        if not self._unsynced:
            return
        if self._file_records + len(self._unsynced) > max(64, 4 * self.held_count):
            self._compact()
        else:
            self._store.append(b"".join(self._unsynced))
            self._file_records += len(self._unsynced)
        self._unsynced.clear()

    def close(self) -> None:
        self._unsynced.append(pack(META, self.next_seq, self.dropped))
        self.sync()

    # ---- internals -----------------------------------------------------------------------

    def _push(self, record: bytes, seq: int) -> None:
        if self.held_count >= self._capacity:
            if self._pend == self._head:
                self.dropped += 1  # nothing remembered left to give up: a reading is lost
                self._pend += 1
            self._head += 1
        if self._pend == len(self._records) and seq <= self.acked_seq:
            self._pend += 1  # (a replayed file never has this; kept exact all the same)
        self._records.append(record)
        self.next_seq = seq + 1
        if self._head > 1024 and self._head * 2 > len(self._records):
            del self._records[: self._head]
            self._pend -= self._head
            self._head = 0

    def _ack(self, seq: int) -> None:
        self.acked_seq = seq
        self._pend = bisect_right(self._records, seq, lo=self._pend, key=seq_of)
        remembered = self._pend - self._head
        if remembered > self._history:
            self._head += remembered - self._history

    def _compact(self) -> None:
        out = self._records[self._head :]
        if self.acked_seq >= 0:
            out.append(pack(ACK, self.acked_seq))
        out.append(pack(META, self.next_seq, self.dropped))
        self._store.replace(b"".join(out))
        self._file_records = len(out)

    def _load(self) -> None:
        data = self._store.load()
        records, valid = scan(data)
        if valid < len(data):
            self._store.replace(data[:valid])  # cut a record torn by a crash
        for record, raw in records:
            if record.kind == READING and record.a >= self.next_seq:
                self._push(raw, record.a)
            elif record.kind == ACK:
                self._ack(max(record.a, self.acked_seq))
            elif record.kind == META:
                self.next_seq = max(self.next_seq, record.a)
                self.dropped = record.b
        if records and records[-1][0].kind != META:
            self.recovered_unclean = True
            self.next_seq += self._recovery_gap
        self._file_records = len(records)
