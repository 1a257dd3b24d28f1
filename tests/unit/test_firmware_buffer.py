"""The store-and-forward buffer: what survives a crash, what a full buffer gives up."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_stub.buffer import ReadingBuffer
from firmware_stub.records import RECORD_SIZE, StoredReading, seq_of
from firmware_stub.storage import FileRecordStore, MemoryRecordStore

T0 = 1_790_000_000_000  # epoch ms


def fill(buffer: ReadingBuffer, n: int) -> list[StoredReading]:
    return [buffer.append(T0 + 600_000 * i, 1000.0 + i * 0.25, 500.0 + i) for i in range(n)]


def test_unacknowledged_readings_survive_a_crash_in_order_and_acknowledged_ones_are_gone(
    tmp_path: Path,
) -> None:
    store = FileRecordStore(tmp_path / "meter.buf")
    buffer = ReadingBuffer(store)
    written = fill(buffer, 10)
    buffer.ack_through(3)
    buffer.sync()
    del buffer  # a crash: no close()

    reopened = ReadingBuffer(FileRecordStore(tmp_path / "meter.buf"))
    assert reopened.pending(limit=100) == written[4:]
    assert reopened.pending_count == 6
    assert reopened.acked_seq == 3
    # Readings written after the last sync may have been published: their seqs are not reused.
    assert reopened.recovered_unclean
    assert reopened.append(T0, 1.0, None).seq >= 10 + 16


def test_a_clean_close_resumes_the_seq_exactly(tmp_path: Path) -> None:
    buffer = ReadingBuffer(FileRecordStore(tmp_path / "m.buf"))
    fill(buffer, 5)
    buffer.close()
    reopened = ReadingBuffer(FileRecordStore(tmp_path / "m.buf"))
    assert not reopened.recovered_unclean
    assert reopened.append(T0, 1.0, None).seq == 5


def test_records_not_yet_synced_are_lost_in_a_crash_but_their_seqs_are_skipped() -> None:
    store = MemoryRecordStore()
    buffer = ReadingBuffer(store, recovery_gap=64)
    fill(buffer, 5)
    buffer.sync()
    fill(buffer, 3)  # never synced
    reopened = ReadingBuffer(store, recovery_gap=64)
    assert [r.seq for r in reopened.pending(limit=100)] == [0, 1, 2, 3, 4]
    assert reopened.next_seq == 5 + 64


def test_a_record_torn_by_a_power_cut_is_cut_off(tmp_path: Path) -> None:
    path = tmp_path / "m.buf"
    buffer = ReadingBuffer(FileRecordStore(path))
    written = fill(buffer, 3)
    buffer.sync()
    with path.open("ab") as f:
        f.write(b"\x01" * (RECORD_SIZE // 2))
    reopened = ReadingBuffer(FileRecordStore(path))
    assert reopened.pending(limit=10) == written
    assert path.stat().st_size == 3 * RECORD_SIZE


def test_a_full_buffer_drops_the_oldest_unacknowledged_readings_and_counts_them(
    tmp_path: Path,
) -> None:
    buffer = ReadingBuffer(FileRecordStore(tmp_path / "m.buf"), capacity=5)
    fill(buffer, 8)
    assert [r.seq for r in buffer.pending(limit=100)] == [3, 4, 5, 6, 7]
    assert buffer.dropped == 3
    buffer.close()
    reopened = ReadingBuffer(FileRecordStore(tmp_path / "m.buf"), capacity=5)
    assert [r.seq for r in reopened.pending(limit=100)] == [3, 4, 5, 6, 7]
    assert reopened.dropped == 3


def test_a_full_buffer_gives_up_remembered_readings_before_pending_ones() -> None:
    buffer = ReadingBuffer(MemoryRecordStore(), capacity=5, history=5)
    fill(buffer, 5)
    buffer.ack_through(2)
    fill(buffer, 3)
    assert buffer.dropped == 0
    assert [r.seq for r in buffer.pending(limit=100)] == [3, 4, 5, 6, 7]
    assert buffer.since(0) == buffer.pending(limit=100)


def test_acknowledged_readings_are_remembered_for_resend_across_a_restart() -> None:
    store = MemoryRecordStore()
    buffer = ReadingBuffer(store, history=4)
    written = fill(buffer, 10)
    buffer.ack_through(9)
    buffer.close()
    reopened = ReadingBuffer(store, history=4)
    assert reopened.pending_count == 0
    assert reopened.since(0) == written[6:]
    assert reopened.since(8, 8) == [written[8]]
    assert reopened.last() == written[9]


def test_the_file_is_compacted_as_readings_are_acknowledged(tmp_path: Path) -> None:
    path = tmp_path / "m.buf"
    buffer = ReadingBuffer(FileRecordStore(path), history=10)
    for i in range(2000):
        buffer.append(T0 + i, float(i), None)
        buffer.ack_through(i)
        buffer.sync()
    assert path.stat().st_size <= 4 * 64 * RECORD_SIZE
    reopened = ReadingBuffer(FileRecordStore(path), history=10)
    assert [r.seq for r in reopened.since(0)] == list(range(1990, 2000))
    assert reopened.pending_count == 0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.integers(1, 30), st.integers(-30, -1)), max_size=40))
def test_replaying_the_file_gives_the_same_pending_readings(ops: list[int]) -> None:
    # Positive: append that many readings; negative: acknowledge that many of the oldest.
    store = MemoryRecordStore()
    buffer = ReadingBuffer(store, capacity=50, history=7)
    for op in ops:
        if op > 0:
            fill(buffer, op)
        else:
            pending = buffer.pending(limit=-op)
            if pending:
                buffer.ack_through(pending[-1].seq)
        buffer.sync()
    reopened = ReadingBuffer(store, capacity=50, history=7)
    assert reopened.pending(limit=100) == buffer.pending(limit=100)
    assert reopened.since(0) == buffer.since(0)
    assert reopened.dropped == buffer.dropped


def test_finding_the_pending_readings_does_not_search_the_remembered_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The meter asks for pending readings once per reading and per PUBACK: with many readings
    # remembered for resend, searching them each time was a good part of a reading's cost.
    buffer = ReadingBuffer(MemoryRecordStore(), history=5000)
    fill(buffer, 4000)
    buffer.ack_through(3997)
    looked_at: list[bytes] = []

    def counting_seq_of(record: bytes) -> int:
        looked_at.append(record)
        return seq_of(record)

    monkeypatch.setattr("firmware_stub.buffer.seq_of", counting_seq_of)
    assert buffer.pending_count == 2
    assert [r.seq for r in buffer.pending(3997, 10)] == [3998, 3999]
    assert [r.seq for r in buffer.pending(3998, 10)] == [3999]
    buffer.ack_through(3998)
    assert len(looked_at) <= 6  # the pending ones, not log2(4000) of the remembered


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.one_of(st.integers(1, 400), st.integers(-400, -1), st.just(0)),
        max_size=30,
    ),
    st.integers(20, 600),
)
def test_the_pending_cursor_agrees_with_a_plain_model(ops: list[int], capacity: int) -> None:
    # Positive: append that many; negative: acknowledge that many of the oldest pending;
    # zero: sync and re-open the buffer. Big appends push the buffer past its capacity and
    # its list past the point where the head is cut off (the cursor moves with both).
    store = MemoryRecordStore()
    history = 9
    buffer = ReadingBuffer(store, capacity=capacity, history=history)
    model: list[int] = []  # seqs held, oldest first
    acked = -1
    for op in ops:
        if op > 0:
            for _ in range(op):
                seq = buffer.append(T0, 1.0, None).seq
                if len(model) >= capacity:
                    model.pop(0)
                model.append(seq)
        elif op < 0:
            pending = [s for s in model if s > acked][:-op]
            if pending:
                acked = pending[-1]
                buffer.ack_through(acked)
                remembered = [s for s in model if s <= acked]
                model = remembered[-history:] + [s for s in model if s > acked]
        else:
            buffer.close()
            buffer = ReadingBuffer(store, capacity=capacity, history=history)
        want = [s for s in model if s > acked]
        assert buffer.pending_count == len(want)
        assert [r.seq for r in buffer.pending(limit=10_000)] == want
        if want:
            middle = want[len(want) // 2]
            assert [r.seq for r in buffer.pending(middle, 3)] == [s for s in want if s > middle][:3]
        assert [r.seq for r in buffer.since(0)] == model
