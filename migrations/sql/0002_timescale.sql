-- TimescaleDB when it is there: readings become a hypertable. Hypertables are in every edition
-- of TimescaleDB, the Apache-2 one that Linux distributions package too; compression and
-- retention need the community (TSL) licence, so they are not here but in
-- migrations/steps/timescale_policies.sql, which the runner checks on every run (the licence is a
-- server setting that can change after this migration ran).
-- On plain PostgreSQL this migration is a no-op (readings keep their (device_id, ts) index).
-- The extension must be preloaded (shared_preload_libraries) to be created, so check both.
--
-- The first text of this migration also set compression and the two policies, which failed on
-- the Apache edition. Where it ran (plain PostgreSQL, or the community licence) the step now
-- finds everything in place, so the schema is the same and its checksum is accepted:
-- ems:replaces dfc4a937ccf7bf0f69c581c9e8aa0695d44c990a151b4b8276e7611c7e3474d3
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
END
$$;
