-- The dashboards read a device's hours by (device_id, hour) range: a day is 24 rows, a year
-- 8,784. The hub writes hour rows for all devices together, so one device's year lies on ~8,760
-- different heap pages; fetching them is most of a year query's time. Carrying the values the
-- charts read in the primary key's index makes those reads index-only scans (~70 index pages
-- for a year) wherever the visibility map is set, which autovacuum keeps true for all but the
-- most recent hours. The key itself (uniqueness of device_id, hour) is unchanged, and it stays
-- the only index on the table: the hub rewrites hours by DELETE + INSERT, so no update was HOT
-- before either and each written row still costs exactly one index entry.
ALTER TABLE hourly_energy
    DROP CONSTRAINT hourly_energy_pkey,
    ADD CONSTRAINT hourly_energy_pkey PRIMARY KEY (device_id, hour)
        INCLUDE (energy_kwh, quality, readings);
