-- Each reading the hourly rollup has quarantined (implausible: the energy since the previous
-- reading implies more power than the device's rating or the hub's ceiling allows, ARCHITECTURE.md
-- section 4), once. A late reading makes the rollup recompute a device from before its last
-- quarantined reading, which finds the same reading implausible again; the rollup dead-letters
-- and counts only the readings it inserts here, so one reading gives one dead letter and one
-- count however many recomputes see it. (Readings are immutable per (device_id, ts).)
CREATE TABLE quarantined_readings (
    device_id uuid        NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    ts        timestamptz NOT NULL,
    PRIMARY KEY (device_id, ts)
);
