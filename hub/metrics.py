"""The hub's counters, on a registry of its own (several hubs can live in one test process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class HubMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.received = Counter(
            "hub_readings_received", "Readings decoded from MQTT messages", registry=r
        )
        self.messages = Counter("hub_messages_received", "MQTT messages received", registry=r)
        self.stored = Counter("hub_readings_stored", "Readings committed (new)", registry=r)
        self.duplicates = Counter(
            "hub_readings_duplicate",
            "Redelivered readings absorbed (same key, same value)",
            registry=r,
        )
        self.conflicts = Counter(
            "hub_readings_conflict",
            "Readings with a stored key but a different value",
            registry=r,
        )
        self.rejected = Counter(
            "hub_messages_rejected",
            "Messages or readings dead-lettered, by reason",
            ["reason"],
            registry=r,
        )
        self.backlog = Gauge("hub_backlog", "Messages received and not yet committed", registry=r)
        self.flush_seconds = Histogram(
            "hub_flush_seconds",
            "Time to commit one batch",
            buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=r,
        )
        self.batch_size = Histogram(
            "hub_batch_messages",
            "Messages per committed batch",
            buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 4000),
            registry=r,
        )
        self.lag_seconds = Histogram(
            "hub_receive_to_commit_seconds",
            "Time from the hub receiving a message to its batch being committed",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.flush_failures = Counter(
            "hub_flush_failures", "Batches whose commit failed and was retried", registry=r
        )
        self.rollups = Counter(
            "hub_device_rollups", "Device hour recomputations (coalesced)", registry=r
        )
        self.alerts = Counter("hub_alerts_raised", "Alerts raised, by kind", ["kind"], registry=r)
        self.mqtt_connected = Gauge(
            "hub_mqtt_connected", "1 while connected to the broker", registry=r
        )
        self.db_ok = Gauge(
            "hub_database_ok", "1 while the last database operation succeeded", registry=r
        )
