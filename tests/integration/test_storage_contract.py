"""The in-memory storage keeps the real one's semantics: one scenario, both storages, same answers.

The writer's unit tests (tests/unit/test_writer.py) run on ``FakeStorage``; they prove
something about the hub only as long as the fake answers as ``PgStorage`` does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from uuid import UUID

import psycopg
import pytest

from contract.payloads import Reading
from devkit.hubkit import add_devices
from hub.batch import PreparedBatch
from hub.storage import BatchOutcome, PgStorage, Storage, pg_array
from hub.storage_fake import FakeStorage

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def at(minute: int) -> datetime:
    return T0 + timedelta(minutes=minute)


@pytest.fixture(params=["pg", "fake"])
def side(
    request: pytest.FixtureRequest, database_url: str
) -> Iterator[tuple[Storage, list[UUID], Callable[[UUID], None]]]:
    """A storage with two devices, and how to delete one behind its back."""
    ids = add_devices(database_url, 2)
    if request.param == "fake":
        pg = PgStorage(database_url)
        fake = FakeStorage(pg.load_devices())
        pg.close()
        yield fake, ids, fake.delete_device
        return
    storage = PgStorage(database_url)

    def delete(device_id: UUID) -> None:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("DELETE FROM devices WHERE id = %s", (device_id,))

    yield storage, ids, delete
    storage.close()


def summary(out: BatchOutcome) -> tuple[int, int, list[tuple[UUID | None, str]], list[UUID]]:
    return out.stored, out.duplicates, [(d.device_id, d.reason) for d in out.dead], out.back_online


def test_both_storages_answer_alike(
    side: tuple[Storage, list[UUID], Callable[[UUID], None]],
) -> None:
    storage, (a, b), delete = side
    assert sorted(d.device_id for d in storage.load_devices()) == sorted([a, b])

    first = PreparedBatch(readings=[Reading(a, at(0), 1.0), Reading(a, at(10), 2.0)])
    assert summary(storage.commit_batch(first)) == (2, 0, [], [])

    # Redelivered: the same value is a duplicate, another value a conflict (dead-lettered).
    again = PreparedBatch(readings=[Reading(a, at(0), 1.0), Reading(a, at(10), 2.5)])
    assert summary(storage.commit_batch(again)) == (0, 1, [(a, "conflict")], [])

    # A meter that went offline and sends a reading is back online.
    assert storage.set_status(a, "offline", "will")
    assert not storage.set_status(a, "offline", "will")  # no change
    back = PreparedBatch(readings=[Reading(a, at(20), 3.0)])
    assert summary(storage.commit_batch(back)) == (1, 0, [], [a])

    # A device deleted behind the registry's back fails the whole batch on its foreign key.
    delete(b)
    mixed = PreparedBatch(readings=[Reading(a, at(30), 4.0), Reading(b, at(30), 1.0)])
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        storage.commit_batch(mixed)
    storage.reset()
    assert [d.device_id for d in storage.load_devices([a, b])] == [a]
    retry = PreparedBatch(readings=[Reading(a, at(30), 4.0)])
    assert summary(storage.commit_batch(retry)) == (1, 0, [], [])  # the failed one left nothing
    assert not storage.set_status(b, "online", "birth")  # no such device


def test_pg_array_literals_read_back_as_the_values(database_url: str) -> None:
    """The literals the hub sends in place of list parameters (alerts, rollup, status): None is
    NULL (not the text "None"), booleans and numbers keep their value, text its quotes."""
    owner = UUID(int=7)
    values = (
        [owner, None],
        [1.5, None, float("inf")],
        [True, False],
        [at(0).isoformat(), None],
        ['say "hi"', "back\\slash", "NULL"],
    )
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT %s::uuid[], %s::float8[], %s::bool[], %s::timestamptz[], %s::text[]",
            [pg_array(v) for v in values],
        ).fetchone()
    assert row == (
        [owner, None],
        [1.5, None, float("inf")],
        [True, False],
        [at(0), None],
        values[4],
    )
