"""The writers' shared intake: batches in arrival order, acknowledgements in arrival order."""

from __future__ import annotations

import threading

from hub.batch import Message
from hub.buffer import Intake


def messages(first: int, n: int) -> list[Message]:
    return [
        Message("ems/v1/meters/x/readings", b"{}", mid, 1, 0.0) for mid in range(first, first + n)
    ]


def intake_holding(n: int) -> tuple[Intake, list[list[tuple[int, int]]]]:
    """An intake with messages 1..n waiting, and the list its acknowledgements are sent to."""
    sent: list[list[tuple[int, int]]] = []
    intake = Intake(10_000, sent.append)
    intake.inbox.put_many(messages(1, n))
    return intake, sent


def test_a_batch_that_commits_first_waits_for_the_earlier_batches_acknowledgements() -> None:
    intake, sent = intake_holding(6)
    first = intake.take(2, timeout=0, linger=0)
    second = intake.take(2, timeout=0, linger=0)
    third = intake.take(2, timeout=0, linger=0)
    assert [t for t, _ in (first, second, third)] == [0, 1, 2]
    assert [m.mid for m in second[1]] == [3, 4]

    intake.release(third[0], [(m.mid, 1) for m in third[1]])
    intake.release(second[0], [(m.mid, 1) for m in second[1]])
    assert sent == []  # the first batch is still in the database
    assert not intake.idle(quiet_s=0)  # the first batch is still being written
    intake.release(first[0], [(m.mid, 1) for m in first[1]])
    assert sent == [[(1, 1), (2, 1)], [(3, 1), (4, 1)], [(5, 1), (6, 1)]]
    assert intake.idle(quiet_s=0)
    assert not intake.idle(quiet_s=60)  # a batch was taken a moment ago


def test_a_batch_with_nothing_to_acknowledge_does_not_hold_up_the_next() -> None:
    intake, sent = intake_holding(2)
    a = intake.take(1, timeout=0, linger=0)
    b = intake.take(1, timeout=0, linger=0)
    intake.release(a[0], [])  # e.g. the hub is stopping: left unacknowledged for redelivery
    intake.release(b[0], [(2, 1)])
    assert sent == [[(2, 1)]]
    assert intake.take(1, timeout=0, linger=0) == (-1, [])  # empty: no ticket spent


def test_concurrent_writers_acknowledge_every_message_once_in_order() -> None:
    intake, sent = intake_holding(5000)

    def writer(delay: threading.Event) -> None:
        while True:
            ticket, batch = intake.take(7, timeout=0, linger=0)
            if not batch:
                return
            delay.wait(0.0005 * (ticket % 3))  # later batches often finish first
            intake.release(ticket, [(m.mid, 1) for m in batch])

    threads = [threading.Thread(target=writer, args=(threading.Event(),)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert [mid for acks in sent for mid, _ in acks] == list(range(1, 5001))
