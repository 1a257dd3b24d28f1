-- TimescaleDB's create_hypertable (0002) also creates an index on readings (ts DESC): its
-- create_default_indexes argument defaults to true. Every EMS query on readings names one device,
-- so the primary key (device_id, ts) serves them all; the ts index only adds a second index write
-- to every reading, and on a small table the planner even picks it over the primary key.
-- Drop it where 0002 made it; on plain PostgreSQL there is no such index and this is a no-op.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')
       AND to_regclass('readings_ts_idx') IS NOT NULL THEN
        DROP INDEX readings_ts_idx;
    END IF;
END
$$;
