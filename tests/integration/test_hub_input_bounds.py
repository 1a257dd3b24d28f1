"""Bad input through the real hub: absurd magnitudes are dead-lettered with a reason, and one bad
element of a flush is dead-lettered alone while its neighbours are stored (issue 13, 5 and 6)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import psycopg

from contract.payloads import Reading
from contract.readings import encode_classic, encode_reading
from contract.topics import readings_topic
from devkit.helpers import wait_for
from devkit.hubkit import Gateway, add_devices, count, create_gateway, start_hub, wait_rolled_up


def letters(dsn: str) -> list[tuple[str, str, str]]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT reason, detail, payload FROM dead_letters ORDER BY id")
        return [(str(r[0]), str(r[1]), str(r[2])) for r in rows]


def test_a_flush_with_one_corrupt_element_stores_the_rest(database_url: str, broker) -> None:
    (device,) = add_devices(database_url, 1)
    hub = start_hub(database_url, broker)
    gw = Gateway(broker, *create_gateway(broker))
    t0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=2)
    flush: list[object] = [
        json.loads(encode_reading(Reading(device, t0 + timedelta(minutes=i), 10.0 + i / 100)))
        for i in range(1000)
    ]
    flush[500] = {"ts": "bad", "energy_kwh": 15.0}
    try:
        gw.publish(readings_topic(device), json.dumps(flush).encode())
        gw.flush()
        wait_for(lambda: letters(database_url), what="the corrupt element's dead letter")
        assert count(database_url, "SELECT count(*) FROM readings") == 999
        assert (
            count(
                database_url,
                "SELECT count(*) FROM readings WHERE ts = %s",
                (t0 + timedelta(minutes=500),),
            )
            == 0
        )
        [(reason, detail, payload)] = letters(database_url)
        assert reason == "bad_timestamp"
        assert detail.startswith("element 500: ")
        assert json.loads(payload) == {"ts": "bad", "energy_kwh": 15.0}
        assert hub.metrics.stored._value.get() == 999
        assert hub.metrics.rejected.labels("bad_timestamp")._value.get() == 1
    finally:
        gw.close()
        hub.stop()


def test_absurd_magnitudes_are_dead_lettered_with_their_reason(database_url: str, broker) -> None:
    """No rated power set: 1e308 and other values no meter reports are refused at the door,
    and a register jump implying more power than any meter draws is quarantined by the
    rollup; nothing of them reaches the hours."""
    plain, classic = add_devices(database_url, 2)
    hub = start_hub(database_url, broker, rollup_interval_s=0.05)
    gw = Gateway(broker, *create_gateway(broker))
    t0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=6)
    topic = readings_topic(plain)

    def at(minutes: int) -> str:
        return (t0 + timedelta(minutes=minutes)).isoformat()

    refused = [
        (topic, json.dumps({"ts": at(1), "energy_kwh": 1e308}).encode()),
        (topic, json.dumps([{"ts": at(2), "energy_kwh": 1e308}] * 2).encode()),
        (topic, json.dumps({"ts": at(3), "energy_kwh": 2e9}).encode()),
        (topic, json.dumps({"ts": at(4), "energy_kwh": 1.0, "power_w": 1e12}).encode()),
        (topic, json.dumps({"ts": at(5), "energy_kwh": 1.0, "power_w": -1e308}).encode()),
        (readings_topic(classic), encode_classic(classic, t0, 1e308)),
    ]
    try:
        for message in refused:
            gw.publish(*message)
        gw.flush()
        wait_for(lambda: len(letters(database_url)) == 7, what="seven dead letters")
        assert sorted(reason for reason, _, _ in letters(database_url)) == sorted(
            ["out_of_range:energy_kwh"] * 4
            + ["out_of_range:power_w"] * 2
            + ["out_of_range:measurement_value"]
        )
        assert count(database_url, "SELECT count(*) FROM readings") == 0
        assert hub.metrics.rejected.labels("out_of_range")._value.get() == 7

        # Plausible registers, an impossible jump: 0.5 kWh in 10 minutes is 3 kW; 5e8 kWh in
        # the next 10 minutes would be 3e12 W. Quarantined, and the meter goes on from 1.
        for minutes, value in ((0, 0.0), (10, 0.5), (20, 5e8), (30, 1.0)):
            gw.publish(
                topic, encode_reading(Reading(plain, t0 + timedelta(minutes=minutes), value))
            )
        gw.flush()
        wait_for(lambda: count(database_url, "SELECT count(*) FROM readings") == 4)
        wait_rolled_up(database_url)
        [implausible] = [
            (detail, payload)
            for reason, detail, payload in letters(database_url)
            if reason == "implausible"
        ]
        assert "ceiling for any meter" in implausible[0]
        assert json.loads(implausible[1])["energy_kwh"] == 5e8
        assert (
            count(database_url, "SELECT round(sum(energy_kwh) * 1000) FROM hourly_energy") == 1000
        )
    finally:
        gw.close()
        hub.stop()


def test_an_interval_reading_no_meter_could_measure_is_quarantined(
    database_url: str, broker
) -> None:
    """An interval meter is held to the hub's ceiling, not to its rating (its implied power
    rests on its interval setting): 5e8 kWh in a ten-minute interval is 3e12 W, so it is
    dead-lettered as implausible and the hour holds only the other readings."""
    (device,) = add_devices(
        database_url, 1, meter_kind="interval", interval_s=600, rated_power_w=5000.0
    )
    hub = start_hub(database_url, broker, rollup_interval_s=0.05)
    gw = Gateway(broker, *create_gateway(broker))
    t0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=6)
    try:
        # 1.5 kWh in ten minutes is 9 kW: above the rating, counted all the same.
        for minutes, value in ((10, 1.5), (20, 5e8), (30, 0.25)):
            gw.publish(
                readings_topic(device),
                encode_classic(device, t0 + timedelta(minutes=minutes), value),
            )
        gw.flush()
        wait_for(lambda: count(database_url, "SELECT count(*) FROM readings") == 3)
        wait_rolled_up(database_url)
        [(reason, detail, payload)] = letters(database_url)
        assert reason == "implausible"
        assert "ceiling for any meter" in detail
        assert json.loads(payload)["energy_kwh"] == 5e8
        assert (
            count(database_url, "SELECT round(sum(energy_kwh) * 1000) FROM hourly_energy") == 1750
        )
    finally:
        gw.close()
        hub.stop()
