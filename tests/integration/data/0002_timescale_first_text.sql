-- TimescaleDB when it is there: readings become a hypertable with compression and retention.
-- On plain PostgreSQL this migration is a no-op (readings keep their (device_id, ts) index).
-- The extension must be preloaded (shared_preload_libraries) to be created, so check both.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')
       OR current_setting('shared_preload_libraries', true) NOT LIKE '%timescaledb%' THEN
        RAISE NOTICE 'timescaledb not available: readings stay a plain table';
        RETURN;
    END IF;
    CREATE EXTENSION IF NOT EXISTS timescaledb;
    PERFORM create_hypertable('readings', 'ts', chunk_time_interval => interval '7 days',
                              migrate_data => true, if_not_exists => true);
    ALTER TABLE readings SET (timescaledb.compress,
                              timescaledb.compress_segmentby = 'device_id',
                              timescaledb.compress_orderby = 'ts');
    -- Late readings are accepted for a while; compress only chunks well past that window.
    PERFORM add_compression_policy('readings', interval '30 days', if_not_exists => true);
    -- Raw readings are kept five years; hourly_energy (the derived series) is kept.
    PERFORM add_retention_policy('readings', interval '5 years', if_not_exists => true);
END
$$;
