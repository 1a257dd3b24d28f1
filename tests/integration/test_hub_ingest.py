"""The hub against a real Mosquitto and PostgreSQL: exactly-once storage, correct hours."""

from __future__ import annotations

import json
import random
import signal
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from contract.payloads import Reading
from contract.readings import encode_classic, encode_reading, encode_readings
from contract.topics import readings_topic
from devkit.helpers import wait_for
from devkit.hubkit import (
    Gateway,
    add_devices,
    count,
    create_gateway,
    hub_process,
    start_hub,
    stored_hours,
    wait_rolled_up,
)
from hub.energy import MeterReading, compute_hourly
from hub.metrics import STAGES

SENSOR_CSV = Path(__file__).resolve().parents[2] / "data" / "sensor.csv"
# Ten days ago on the hour: long series stay in the past (future readings are rejected).
T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=10)


def series(rng: random.Random, n: int, start: datetime = T0) -> list[tuple[datetime, float]]:
    value = rng.uniform(0, 5000)
    out = []
    for i in range(n):
        value += rng.uniform(0.05, 3.0)
        out.append((start + timedelta(minutes=10 * i), round(value, 3)))
    return out


def expected_hours(points: list[tuple[datetime, float]]) -> dict[datetime, float]:
    result = compute_hourly([MeterReading(ts, v) for ts, v in sorted(points)])
    return {h: e.energy_kwh for h, e in result.hours.items()}


def assert_hours_match(dsn: str, device: uuid.UUID, points: list[tuple[datetime, float]]) -> None:
    wait_rolled_up(dsn)
    stored = stored_hours(dsn, device)
    expected = expected_hours(points)
    assert set(stored) == set(expected), device
    for hour, energy in expected.items():
        assert stored[hour][0] == pytest.approx(energy, abs=1e-6), (device, hour)


def test_hundred_meters_with_duplicates_and_disorder_store_exactly_the_unique_readings(
    database_url: str, broker
) -> None:
    rng = random.Random(7)
    devices = add_devices(database_url, 100)
    truth = {d: series(rng, 100) for d in devices}  # 100 x 100 = 10,000 unique readings
    messages = [(d, ts, v) for d, pts in truth.items() for ts, v in pts]
    # 5% duplicates (redelivery) and 5% moved out of order (late by up to 30 readings).
    messages += rng.sample(messages, len(messages) // 20)
    for _ in range(len(messages) // 20):
        i = rng.randrange(len(messages) - 30)
        messages.insert(i, messages.pop(i + rng.randrange(1, 30)))
    gw = Gateway(broker, *create_gateway(broker))
    hub = start_hub(database_url, broker)
    try:
        gw.publish_many(
            (readings_topic(d), encode_reading(Reading(d, ts, v))) for d, ts, v in messages
        )
        gw.flush()
        wait_for(
            lambda: hub.metrics.messages._value.get() >= len(messages),
            timeout=60,
            what="every message to be committed",
        )
        assert count(database_url, "SELECT count(*) FROM readings") == 10_000
        assert hub.metrics.duplicates._value.get() == len(messages) - 10_000
        assert count(database_url, "SELECT count(*) FROM dead_letters") == 0
        for d, pts in truth.items():
            assert_hours_match(database_url, d, pts)
    finally:
        hub.stop()
        gw.close()


def test_same_key_with_a_different_value_is_a_counted_conflict_not_an_overwrite(
    database_url: str, broker
) -> None:
    (d,) = add_devices(database_url, 1)
    gw = Gateway(broker, *create_gateway(broker))
    hub = start_hub(database_url, broker)
    try:
        gw.publish(readings_topic(d), encode_reading(Reading(d, T0, 10.0)))
        gw.flush()
        wait_for(lambda: count(database_url, "SELECT count(*) FROM readings") == 1)
        gw.publish(readings_topic(d), encode_reading(Reading(d, T0, 11.0)))
        gw.flush()
        wait_for(lambda: count(database_url, "SELECT count(*) FROM dead_letters") == 1)
        with psycopg.connect(database_url) as conn:
            (value,) = conn.execute("SELECT energy_kwh FROM readings").fetchone()  # type: ignore[misc]
            (reason,) = conn.execute("SELECT reason FROM dead_letters").fetchone()  # type: ignore[misc]
        assert value == 10.0
        assert reason == "conflict"
        assert hub.metrics.conflicts._value.get() == 1
    finally:
        hub.stop()
        gw.close()


def test_readings_of_a_device_deleted_behind_the_hubs_back_are_dead_lettered_not_lost(
    database_url: str, broker
) -> None:
    """The device is gone from the database but not from the hub's registry (its event never
    came): the batch's foreign-key violation must cost only that device's readings."""
    kept, gone = add_devices(database_url, 2)
    gw = Gateway(broker, *create_gateway(broker))
    hub = start_hub(database_url, broker)
    try:
        gw.publish(readings_topic(gone), encode_reading(Reading(gone, T0, 1.0)))
        gw.flush()
        wait_for(lambda: count(database_url, "SELECT count(*) FROM readings") == 1)
        with psycopg.connect(database_url) as conn:
            conn.execute("DELETE FROM devices WHERE id = %s", (gone,))
        assert hub.registry.get(gone) is not None
        batch = [
            (readings_topic(d), encode_reading(Reading(d, T0 + timedelta(minutes=10 * i), v)))
            for i in range(1, 4)
            for d, v in ((kept, 1.0 + i), (gone, 1.0 + i))
        ]
        gw.publish_many(batch)
        gw.flush()
        wait_for(
            lambda: (
                count(
                    database_url,
                    "SELECT count(*) FROM dead_letters WHERE reason = 'unknown_device'",
                )
                == 3
            )
        )
        assert count(database_url, "SELECT count(*) FROM readings") == 3
        assert count(database_url, f"SELECT count(*) FROM readings WHERE device_id = '{kept}'") == 3
        assert hub.registry.get(gone) is None
        assert hub.health()[0]
    finally:
        hub.stop()
        gw.close()


def test_malformed_payloads_are_dead_lettered_while_valid_readings_flow(
    database_url: str, broker
) -> None:
    rng = random.Random(3)
    good, unknown = add_devices(database_url, 1)[0], uuid.uuid4()
    junk: list[tuple[str, bytes]] = []
    shapes = [
        lambda: rng.randbytes(rng.randrange(1, 60)),
        lambda: b"{not json",
        lambda: json.dumps({"ts": "yesterday", "energy_kwh": 1}).encode(),
        lambda: json.dumps({"ts": "2026-11-20T00:00:00Z", "energy_kwh": -1}).encode(),
        lambda: json.dumps({"ts": "2026-11-20T00:00:00Z"}).encode(),
        lambda: json.dumps({"ts": "2026-11-20T00:00:00Z", "energy_kwh": "12"}).encode(),
        lambda: json.dumps([]).encode(),
        lambda: json.dumps({"ts": "2099-01-01T00:00:00Z", "energy_kwh": 1}).encode(),
        lambda: json.dumps(
            {"ts": "2026-11-20T00:00:00Z", "energy_kwh": 1, "device_id": str(uuid.uuid4())}
        ).encode(),
        lambda: json.dumps(7).encode(),
    ]
    for _ in range(3000):
        junk.append((readings_topic(good), rng.choice(shapes)()))
    for i in range(20):  # a device nobody registered
        junk.append(
            (
                readings_topic(unknown),
                encode_reading(Reading(unknown, T0 + timedelta(minutes=i), 1.0 + i)),
            )
        )
    valid = [
        (readings_topic(good), encode_reading(Reading(good, ts, v))) for ts, v in series(rng, 300)
    ]
    stream = junk + valid
    rng.shuffle(stream)
    gw = Gateway(broker, *create_gateway(broker))
    hub = start_hub(database_url, broker)
    try:
        gw.publish_many(stream)
        gw.flush()
        wait_for(
            lambda: hub.metrics.messages._value.get() >= len(stream),
            timeout=60,
            what="every message to be handled",
        )
        assert count(database_url, "SELECT count(*) FROM readings") == 300
        assert count(database_url, "SELECT count(*) FROM dead_letters") == len(junk)
        assert count(database_url, "SELECT count(*) FROM dead_letters WHERE reason = ''") == 0
        assert (
            count(database_url, "SELECT count(*) FROM dead_letters WHERE reason = 'unknown_device'")
            == 20
        )
        rejected = sum(
            s.value for s in hub.metrics.rejected.collect()[0].samples if s.name.endswith("_total")
        )
        assert rejected == len(junk)
    finally:
        hub.stop()
        gw.close()


def test_replaying_sensor_csv_in_classic_format_gives_the_index_differences(
    database_url: str, broker
) -> None:
    values = [float(line) for line in SENSOR_CSV.read_text().split()][:1500]
    devices = add_devices(database_url, 2)
    gw = Gateway(broker, *create_gateway(broker))
    hub = start_hub(database_url, broker)
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=11)
    try:
        for d in devices:
            gw.publish_many(
                (readings_topic(d), encode_classic(d, start + timedelta(minutes=10 * i), v))
                for i, v in enumerate(values)
            )
        gw.flush()
        wait_for(
            lambda: count(database_url, "SELECT count(*) FROM readings") == 2 * len(values),
            timeout=60,
            what="every reading",
        )
        wait_rolled_up(database_url)
        for d in devices:
            hours = stored_hours(database_url, d)
            # A reading at hh:00 falls in hour hh: hour h gets readings 6h+1 .. 6h+6, so its
            # energy is values[6h+5] - values[6h-1] (hour 0: values[5] - values[0]).
            assert hours[start][0] == pytest.approx(values[5] - values[0])
            for h in range(1, len(values) // 6 - 1):
                hour = start + timedelta(hours=h)
                assert hours[hour][0] == pytest.approx(values[6 * h + 5] - values[6 * h - 1]), h
                assert hours[hour][1] == "measured"
    finally:
        hub.stop()
        gw.close()


def test_hub_killed_mid_stream_loses_nothing_and_counts_nothing_twice(
    database_url: str, broker, tmp_path: Path
) -> None:
    rng = random.Random(11)
    devices = add_devices(database_url, 50)
    truth = {d: series(rng, 1000) for d in devices}  # 50,000 readings
    gw = Gateway(broker, *create_gateway(broker))
    log = tmp_path / "hub.log"
    proc = hub_process(database_url, broker, "hub-kill-test", log)
    try:
        wait_for(lambda: "connected to" in log.read_text(), timeout=30, what="hub connected")
        # Single readings and store-and-forward arrays, interleaved across meters.
        stream = []
        for i in range(0, 1000, 10):
            for d in devices:
                chunk = truth[d][i : i + 10]
                if i % 20 == 0:
                    stream.append(
                        (readings_topic(d), encode_readings([Reading(d, ts, v) for ts, v in chunk]))
                    )
                else:
                    stream += [
                        (readings_topic(d), encode_reading(Reading(d, ts, v))) for ts, v in chunk
                    ]
        gw.publish_many(stream)
        wait_for(
            lambda: count(database_url, "SELECT count(*) FROM readings") > 5_000,
            timeout=60,
            what="the hub to be mid-stream",
        )
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        at_kill = count(database_url, "SELECT count(*) FROM readings")
        assert at_kill < 50_000, "the kill must happen mid-stream"
        gw.flush()
        proc = hub_process(database_url, broker, "hub-kill-test", log)
        wait_for(
            lambda: count(database_url, "SELECT count(*) FROM readings") == 50_000,
            timeout=120,
            what="all 50,000 readings after the restart",
        )
        assert count(database_url, "SELECT count(*) FROM readings") == 50_000
        assert count(database_url, "SELECT count(*) FROM dead_letters") == 0
        for d, pts in truth.items():
            assert_hours_match(database_url, d, pts)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        gw.close()


def test_database_outage_mid_stream_holds_messages_until_it_returns(
    database_url: str, broker, pg_server
) -> None:
    rng = random.Random(5)
    devices = add_devices(database_url, 20)
    truth = {d: series(rng, 500) for d in devices}  # 10,000 readings
    gw = Gateway(broker, *create_gateway(broker))
    hub = start_hub(database_url, broker)
    stream = [
        (readings_topic(d), encode_reading(Reading(d, ts, v)))
        for i in range(500)
        for d, pts in truth.items()
        for ts, v in [pts[i]]
    ]
    try:
        gw.publish_many(stream[:3000])
        wait_for(
            lambda: count(database_url, "SELECT count(*) FROM readings") >= 1000,
            what="the first readings",
        )
        pg_server.stop()
        try:
            gw.publish_many(stream[3000:])
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:  # the outage lasts 20 s; the hub must stay up
                assert hub.http.port and hub.workers_alive()
                time.sleep(0.5)
            ok, health = hub.health()
            assert not ok
            assert health["database"] == "unavailable"
        finally:
            pg_server.start()
        gw.flush()
        wait_for(
            lambda: count(database_url, "SELECT count(*) FROM readings") == 10_000,
            timeout=90,
            what="every reading after the database returned",
        )
        assert hub.health()[0]
        for d, pts in truth.items():
            assert_hours_match(database_url, d, pts)
    finally:
        hub.stop()
        gw.close()


# The thread's death is the point: its unhandled exception is expected here.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_dead_worker_thread_fails_the_health_check(database_url: str, broker) -> None:
    """A bug that kills the writer must not leave a hub that looks healthy and takes nothing."""
    (device,) = add_devices(database_url, 1)
    hub = start_hub(database_url, broker)
    gw = Gateway(broker, *create_gateway(broker))
    try:

        def broken(*_args: object) -> None:
            raise RuntimeError("a bug in the writer")

        for writer in hub.writers:
            writer._process = broken  # type: ignore[method-assign]
        gw.publish(readings_topic(device), encode_reading(Reading(device, datetime.now(UTC), 1.0)))
        gw.flush()
        wait_for(lambda: not hub.workers_alive(), what="the writer thread to die")
        ok, body = hub.health()
        assert not ok
        assert (body["status"], body["workers"]) == ("failed", "dead")
        assert count(database_url, "SELECT count(*) FROM readings") == 0  # nothing acked either
    finally:
        gw.close()
        hub.stop()


def test_an_implausible_reading_is_quarantined_and_the_gap_around_it_still_adds_up(
    database_url: str, broker
) -> None:
    """Rated 1 kW: a jump of 99.9 kWh in 31 minutes is dead-lettered, not counted, and the
    0.1 kWh the meter really used from 00:59 to 02:11 is spread over hours 0, 1 and 2."""
    (device,) = add_devices(database_url, 1, rated_power_w=1000.0)
    hub = start_hub(database_url, broker, rollup_interval_s=0.05)
    gw = Gateway(broker, *create_gateway(broker))
    h0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=6)
    try:
        for minute, value in ((0, 0.0), (59, 0.1), (90, 100.0), (131, 0.2)):
            ts = h0 + timedelta(minutes=minute)
            gw.publish(readings_topic(device), encode_reading(Reading(device, ts, value)))
            gw.flush()  # one at a time: each arrives in its own rollup pass, as meters send
            wait_for(
                lambda ts=ts: count(
                    database_url, f"SELECT count(*) FROM readings WHERE ts = '{ts}'"
                )
            )
            wait_rolled_up(database_url)
        hours = stored_hours(database_url, device)
        assert sorted(hours) == [h0, h0 + timedelta(hours=1), h0 + timedelta(hours=2)]
        assert sum(v for v, _q in hours.values()) == pytest.approx(0.2)
        assert hours[h0][0] == pytest.approx(0.1 + 0.1 / 72)  # 00:59-01:00 of the 72-min gap
        assert {q for _v, q in hours.values()} == {"estimated"}
        assert (
            count(database_url, "SELECT count(*) FROM dead_letters WHERE reason = 'implausible'")
            == 1
        )
    finally:
        gw.close()
        hub.stop()


def test_the_hub_books_its_time_to_every_stage_of_ingest(database_url: str, broker) -> None:
    """Each stage a reading passes, from its decoding on the MQTT reader to its
    acknowledgement after the commit, and the rollup beside them, has its wall and CPU
    seconds in the metrics (what bench/ingest.py prints per reading)."""
    (d,) = add_devices(database_url, 1)
    gw = Gateway(broker, *create_gateway(broker))
    hub = start_hub(database_url, broker)
    registry = hub.metrics.registry

    def booked(name: str, stage: str) -> float:
        return registry.get_sample_value(name, {"stage": stage}) or 0.0

    try:
        gw.publish_many(
            (
                readings_topic(d),
                encode_reading(Reading(d, T0 + timedelta(minutes=10 * i), float(i))),
            )
            for i in range(50)
        )
        gw.flush()
        wait_for(
            lambda: all(booked("hub_stage_seconds_total", s) > 0 for s in STAGES),
            timeout=30,
            what="time booked to every stage",
        )
        assert count(database_url, "SELECT count(*) FROM readings") == 50
        for stage in ("decode", "prepare", "copy", "live"):  # Python work on its thread
            assert booked("hub_stage_cpu_seconds_total", stage) > 0, stage
    finally:
        hub.stop()
        gw.close()
