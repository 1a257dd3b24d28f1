-- Rollup work as an append-only log. Each ingest transaction adds one row: the devices it stored
-- new readings for and, for each, the time of its earliest new reading. The rollup step deletes
-- the rows it has taken in the same transaction that writes the recomputed hours, so a hub that
-- dies at any instant loses no rollup work and does none twice.
--
-- It replaces rollup_dirty (one row per device, upserted by every ingest batch). A rollup pass
-- held those rows locked while it recomputed thousands of devices, and every ingest batch naming
-- one of them waited for the whole pass: with 10,000 busy meters the writer spent most of its
-- time there. Ingest now only appends, and never waits for a rollup.
CREATE TABLE rollup_log (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_ids uuid[]        NOT NULL,
    from_ts    timestamptz[] NOT NULL,
    logged_at  timestamptz   NOT NULL DEFAULT now(),
    CHECK (cardinality(device_ids) = cardinality(from_ts))
);

INSERT INTO rollup_log (device_ids, from_ts)
SELECT array_agg(device_id ORDER BY marked_at), array_agg(from_ts ORDER BY marked_at)
FROM rollup_dirty
HAVING count(*) > 0;

DROP TABLE rollup_dirty;
