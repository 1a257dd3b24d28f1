-- Devices whose hourly energy must be recomputed from `from_ts` on. Written in the same
-- transaction as the readings (so a hub that dies after the commit loses no rollup work) and
-- consumed by the rollup step, which coalesces many readings of a device into one recompute.
CREATE TABLE rollup_dirty (
    device_id uuid PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,
    from_ts   timestamptz NOT NULL,
    marked_at timestamptz NOT NULL DEFAULT now()
);
