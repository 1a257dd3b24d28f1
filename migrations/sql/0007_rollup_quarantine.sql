-- The newest reading of each device that the hourly rollup has quarantined (implausible against
-- the device's rated power, ARCHITECTURE.md section 4). The rollup normally recomputes a device
-- from an anchor just before its new readings; that is exact only if no reading around the
-- anchor was quarantined, since a quarantined reading is not the reference for the next one.
-- When this time falls inside the part of the series a rollup loads, the hub recomputes the
-- device's whole series instead. Derived data: rebuilt by any full recompute.
CREATE TABLE rollup_quarantine (
    device_id uuid PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,
    last_ts   timestamptz NOT NULL
);
