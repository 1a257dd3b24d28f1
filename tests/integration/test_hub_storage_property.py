"""Property: the hourly energy the hub stores equals an independent reference.

Generated meter series (steps, gaps on and off the hour, glitches, resets, spikes above the
rated power) reach the hub's own pipeline in any order, with redeliveries, in batches of any
size, with rollup passes at any point between them: decoding and de-duplication
(``hub.batch.prepare``), idempotent storage (``PgStorage.commit_batch``) and the rollup
(``rollup_pending``) on a real PostgreSQL. What ends in ``hourly_energy`` must equal the
reference of tests/unit/test_energy.py, computed from the sorted, de-duplicated series, and
conserve the energy booked across gaps. The live totals (``hub.running``) fed by the same
commits and passes end equal to the stored hours.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contract.payloads import Reading
from contract.readings import MAX_POWER_W, encode_reading
from contract.topics import readings_topic
from devkit.hubkit import add_devices
from hub.batch import Message, PreparedBatch, prepare
from hub.energy import MeterReading, compute_hourly
from hub.rollup_store import rollup_pending
from hub.running import LiveTotal, RunningTotals
from hub.storage import PgStorage
from tests.unit.test_energy import RATINGS, meter_series, reference, reference_labels

pytestmark = pytest.mark.integration


def stored(dsn: str, device: object) -> dict[object, tuple[float, str, int]]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT hour, energy_kwh, quality, readings FROM hourly_energy WHERE device_id = %s",
            (device,),
        ).fetchall()
    return {r[0]: (float(r[1]), str(r[2]), int(r[3])) for r in rows}


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(readings=meter_series(), rated=RATINGS, data=st.data())
def test_stored_hours_equal_the_reference_whatever_the_delivery(
    database_url: str, readings: list[MeterReading], rated: float | None, data: st.DataObject
) -> None:
    (device,) = add_devices(database_url, 1, rated_power_w=rated)
    topic = readings_topic(device)
    seq = {r.ts: n for n, r in enumerate(readings)}  # as firmware numbers its readings
    # Every reading at least once, some again (a redelivery is the same payload), any order.
    again = data.draw(st.lists(st.sampled_from(readings), max_size=len(readings)))
    stream = data.draw(st.permutations([*readings, *again]))
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(stream) - 1)), max_size=6)))
    batches = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    now = readings[-1].ts + timedelta(minutes=1)

    storage = PgStorage(database_url)
    try:
        registry = {d.device_id: d for d in storage.load_devices([device])}
        # The hub's live totals follow the same commits and passes (hub.running).
        running = RunningTotals(registry.get)
        published: list[LiveTotal] = []
        stored_count = duplicates = 0
        for n, batch in enumerate(batches):
            messages = [
                Message(
                    topic,
                    encode_reading(Reading(device, r.ts, r.energy_kwh, seq[r.ts])),
                    n,
                    1,
                    0.0,
                )
                for r in batch
            ]
            prepared = prepare(
                messages,
                registry.get,
                now=now,
                max_future=timedelta(minutes=5),
                max_lateness=timedelta(days=36500),
            )
            outcome = storage.commit_batch(prepared)
            assert not outcome.dead  # a redelivery is a duplicate, never a conflict
            stored_count += outcome.stored
            duplicates += outcome.duplicates
            published += running.committed(prepared.readings)
            if data.draw(st.booleans()):
                published += running.reseed(rollup_pending(storage.conn, registry.get))
        while True:
            rolled = rollup_pending(storage.conn, registry.get)
            published += running.reseed(rolled)
            if not rolled.more:
                break
    finally:
        storage.close()

    assert stored_count == len(readings)
    assert duplicates == len(again)
    got = stored(database_url, device)
    # The hub's power ceiling applies to a device without a rated power too.
    ceiling = rated if rated is not None else MAX_POWER_W
    expected = reference(readings, ceiling)
    assert sorted(got) == sorted(expected)
    for hour, (energy, quality, count) in expected.items():
        assert math.isclose(got[hour][0], energy, abs_tol=1e-6), hour
        assert got[hour][1:] == (quality, count), hour
    # Conserved: the hours hold exactly what the reference books, gaps spread included.
    _labels, booked = reference_labels(readings, ceiling)
    total = math.fsum(v[0] for v in got.values())
    assert math.isclose(total, math.fsum(b.amount for b in booked), rel_tol=1e-9, abs_tol=1e-6)
    # The last live total published is the stored hour of the newest reading.
    last = published[-1]
    assert last.reading.ts == readings[-1].ts
    if last.hour not in got:
        assert last.hour_kwh is None  # the newest reading quarantined, alone in its hour
    else:
        assert last.hour_kwh is not None
        assert math.isclose(last.hour_kwh, got[last.hour][0], rel_tol=1e-12, abs_tol=1e-9)
        assert last.quality == got[last.hour][1]


def test_a_pass_takes_the_longest_waiting_devices_and_logs_the_rest_back(
    database_url: str,
) -> None:
    devices = add_devices(database_url, 5)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    series = {
        d: [MeterReading(t0 + timedelta(minutes=10 * k), 10.0 + k + i) for k in range(9)]
        for i, d in enumerate(devices)
    }
    storage = PgStorage(database_url)
    try:
        registry = {d.device_id: d for d in storage.load_devices()}

        def commit(device: object, readings: list[MeterReading]) -> None:
            batch = PreparedBatch(readings=[Reading(device, r.ts, r.energy_kwh) for r in readings])  # type: ignore[arg-type]
            assert storage.commit_batch(batch).stored == len(readings)

        # Logged in this order: devices 0..4, then device 0 again with later readings.
        for d in devices:
            commit(d, series[d][:6])
        commit(devices[0], series[devices[0]][6:])

        first = rollup_pending(storage.conn, registry.get, limit=2)
        assert first.more
        assert [rw.device_id for rw in first.rewrites] == devices[:2]
        with psycopg.connect(database_url) as conn:
            rest = conn.execute("SELECT device_ids, from_ts FROM rollup_log").fetchall()
        assert rest == [(devices[2:], [t0] * 3)]  # in waiting order, earliest times kept

        second = rollup_pending(storage.conn, registry.get, limit=2)
        assert (second.more, [rw.device_id for rw in second.rewrites]) == (True, devices[2:4])
        third = rollup_pending(storage.conn, registry.get, limit=2)
        assert (third.more, [rw.device_id for rw in third.rewrites]) == (False, devices[4:])
        assert not rollup_pending(storage.conn, registry.get, limit=2).rewrites
    finally:
        storage.close()
    committed = {d: series[d] if d == devices[0] else series[d][:6] for d in devices}
    for d in devices:
        want = {
            h: (e.energy_kwh, e.quality.value)
            for h, e in compute_hourly(committed[d]).hours.items()
        }
        got = {h: v[:2] for h, v in stored(database_url, d).items()}
        assert got.keys() == want.keys()
        assert all(math.isclose(got[h][0], want[h][0], abs_tol=1e-9) for h in want)
        assert all(got[h][1] == want[h][1] for h in want)
