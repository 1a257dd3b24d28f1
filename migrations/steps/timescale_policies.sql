-- Compression and retention of readings, where TimescaleDB's community (TSL) licence allows them.
-- A step, not a migration: the runner runs it after every migrate, because the licence is a
-- server setting (timescaledb.license) that can change after the migrations ran — a database
-- migrated under the Apache edition gets its policies once the community licence is on.
-- Idempotent: it adds only what is missing, and says nothing when everything is in place.
-- Nothing happens on plain PostgreSQL, nor where readings is a plain table.
DO $$
DECLARE
    licence text;
    missing text[] := '{}';
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        RETURN;
    END IF;
    IF current_setting('shared_preload_libraries', true) NOT LIKE '%timescaledb%' THEN
        RAISE WARNING 'timescaledb is installed in this database but not preloaded'
            ' (shared_preload_libraries): compression and retention not checked';
        RETURN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM timescaledb_information.hypertables
                   WHERE hypertable_schema = current_schema() AND hypertable_name = 'readings') THEN
        RETURN;
    END IF;
    licence := current_setting('timescaledb.license', true);
    IF licence IS DISTINCT FROM 'timescale' THEN
        RAISE NOTICE 'TimescaleDB % edition: compression and retention policies skipped'
            ' (need the community licence)', coalesce(licence, 'apache');
        -- Left from a time under the community licence: this edition cannot run them, and
        -- cannot read compressed chunks either.
        IF EXISTS (SELECT 1 FROM timescaledb_information.jobs
                   WHERE hypertable_schema = current_schema() AND hypertable_name = 'readings')
           OR EXISTS (SELECT 1 FROM timescaledb_information.chunks
                      WHERE hypertable_schema = current_schema()
                        AND hypertable_name = 'readings' AND is_compressed) THEN
            RAISE WARNING 'readings has compression or retention set up under the community'
                ' licence, which this edition cannot run (nor read compressed chunks):'
                ' set timescaledb.license = ''timescale'' again';
        END IF;
        RETURN;
    END IF;

    IF NOT (SELECT compression_enabled FROM timescaledb_information.hypertables
            WHERE hypertable_schema = current_schema() AND hypertable_name = 'readings') THEN
        ALTER TABLE readings SET (timescaledb.compress,
                                  timescaledb.compress_segmentby = 'device_id',
                                  timescaledb.compress_orderby = 'ts');
        missing := missing || 'compression by device_id'::text;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM timescaledb_information.jobs
                   WHERE proc_name = 'policy_compression' AND hypertable_schema = current_schema()
                     AND hypertable_name = 'readings') THEN
        -- Late readings are accepted for a while; compress only chunks well past that window.
        PERFORM add_compression_policy('readings', interval '30 days');
        missing := missing || 'compression policy (after 30 days)'::text;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM timescaledb_information.jobs
                   WHERE proc_name = 'policy_retention' AND hypertable_schema = current_schema()
                     AND hypertable_name = 'readings') THEN
        -- Raw readings are kept five years; hourly_energy (the derived series) is kept.
        PERFORM add_retention_policy('readings', interval '5 years');
        missing := missing || 'retention policy (5 years)'::text;
    END IF;
    IF cardinality(missing) > 0 THEN
        RAISE NOTICE 'TimescaleDB community edition: readings got %',
            array_to_string(missing, ', ');
    END IF;
END
$$;
