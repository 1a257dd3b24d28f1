"""bench/load.py, the background stream bench/alerts.py --load times alerts under (issue 15
item 4): paced at the rate asked, and plausible enough that the hub stores every reading in
order, quarantines none and raises no alert. Real broker, database and hub."""

from __future__ import annotations

from itertools import pairwise
from typing import Any
from uuid import UUID

import psycopg

from bench.load import BackgroundStream, add_load_devices, create_load_account, power_kw
from devkit.helpers import wait_for
from devkit.hubkit import count, create_gateway, start_hub, wait_rolled_up

RATE = 400
METERS = 40


def test_the_stream_is_paced_in_order_and_raises_nothing(database_url: str, broker: Any) -> None:
    devices = add_load_devices(database_url, METERS, RATE)
    create_gateway(broker)  # the gateway role the stream's account takes
    user = create_load_account(broker, "load-password")
    hub = start_hub(database_url, broker, rollup_interval_s=0.05)
    stream = BackgroundStream(broker, user, "load-password", devices, rate=RATE)
    try:
        stream.start()
        stream.mark()
        stored = "SELECT count(*) FROM readings"
        wait_for(lambda: count(database_url, stored) >= 15 * METERS, 30, "15 rounds stored")
        summary = stream.stop()
        wait_for(lambda: count(database_url, stored) == summary["sent"], 30, "every reading")
        wait_rolled_up(database_url)
    finally:
        stream.kill()
        hub.stop()

    assert 0.85 * RATE <= summary["marked_rate"] <= 1.15 * RATE, summary
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT device_id, ts, seq, energy_kwh FROM readings ORDER BY device_id, ts"
        ).fetchall()
        qualities = {q for (q,) in conn.execute("SELECT DISTINCT quality FROM hourly_energy")}
    series: dict[UUID, list[tuple[Any, int, float]]] = {}
    for device_id, ts, seq, energy in rows:
        series.setdefault(device_id, []).append((ts, seq, energy))
    assert set(series) == set(devices)
    for k, device_id in enumerate(devices):
        readings = series[device_id]
        assert [seq for _, seq, _ in readings] == list(range(len(readings)))
        for (t1, _, e1), (t2, _, e2) in pairwise(readings):
            kw = (e2 - e1) / ((t2 - t1).total_seconds() / 3600)
            assert abs(kw - power_kw(k)) < 0.01, (k, kw)
    assert qualities == {"measured"}
    assert count(database_url, "SELECT count(*) FROM quarantined_readings") == 0
    assert count(database_url, "SELECT count(*) FROM dead_letters") == 0
    hourly = "SELECT count(*) FROM alerts WHERE kind IN ('hourly_limit', 'early_warning')"
    assert count(database_url, hourly) == 0
