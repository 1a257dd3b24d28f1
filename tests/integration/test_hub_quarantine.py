"""A quarantined reading is dead-lettered and counted once, however many recomputes see it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from contract.payloads import Reading
from contract.readings import encode_reading
from contract.topics import readings_topic
from devkit.helpers import wait_for
from devkit.hubkit import Gateway, add_devices, count, create_gateway, start_hub, wait_rolled_up


def test_late_readings_before_spikes_do_not_dead_letter_them_again(
    database_url: str, broker
) -> None:
    """Rated 5 kW: two spikes, then three late readings before them. Each late reading makes
    the rollup recompute the series from before the spikes, which finds them implausible
    again: still one dead letter and one count per spike."""
    (device,) = add_devices(database_url, 1, rated_power_w=5000.0)
    hub = start_hub(database_url, broker, rollup_interval_s=0.05)
    gw = Gateway(broker, *create_gateway(broker))
    h0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=6)
    # (minute, kWh): 3 kW steady; 100 at :20 and 300 at :40 are spikes; :05, :15, :25 late.
    arrivals = [(0, 0.0), (10, 0.5), (20, 100.0), (30, 1.5), (40, 300.0), (50, 2.5)]
    arrivals += [(5, 0.25), (15, 0.75), (25, 1.25)]
    try:
        for minute, value in arrivals:
            ts = h0 + timedelta(minutes=minute)
            gw.publish(readings_topic(device), encode_reading(Reading(device, ts, value)))
            gw.flush()  # one at a time: each arrives in its own rollup pass
            wait_for(
                lambda ts=ts: count(
                    database_url, "SELECT count(*) FROM readings WHERE ts = %s", (ts,)
                )
            )
            wait_rolled_up(database_url)
        letters = count(
            database_url, "SELECT count(*) FROM dead_letters WHERE reason = 'implausible'"
        )
        assert letters == 2
        assert hub.metrics.rejected.labels("implausible")._value.get() == 2
        # The steady 3 kW is what the hour holds: 2.5 kWh, the spikes counted nowhere.
        energy = count(database_url, "SELECT round(sum(energy_kwh) * 1000) FROM hourly_energy")
        assert energy == 2500
    finally:
        gw.close()
        hub.stop()
