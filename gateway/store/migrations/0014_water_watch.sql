-- The water watch (issue 13): one watch per watched household, its record for people to read,
-- and tickets of their own kind for the watch's alarms.

-- A household's watch as the pure rule keeps it (gateway.domain.water.WaterWatch, as JSON).
-- Written when something that matters changes, never for a quiet reading.
CREATE TABLE water_watches (
    household_code TEXT PRIMARY KEY REFERENCES households (code),
    phase          TEXT NOT NULL,
    state          TEXT NOT NULL,
    updated_at     REAL NOT NULL
);

-- What the watch did and why, one line per step, for a person to read.
CREATE TABLE water_log (
    id             INTEGER PRIMARY KEY,
    household_code TEXT    NOT NULL,
    at             REAL    NOT NULL,
    kind           TEXT    NOT NULL,
    detail         TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX water_log_household ON water_log (household_code, id);

-- A ticket is a call (the green key) or an alarm of the water watch; every existing one is a
-- call. Its outcome label (real, or which kind of false alarm) is set when it is resolved.
ALTER TABLE tickets ADD COLUMN kind TEXT NOT NULL DEFAULT 'call'
    CHECK (kind IN ('call', 'no_water', 'leak'));
ALTER TABLE tickets ADD COLUMN outcome TEXT;

-- At most one ticket of each kind per household that nobody has reached yet.
DROP INDEX tickets_one_waiting_per_household;
CREATE UNIQUE INDEX tickets_one_waiting_per_household_kind ON tickets (household_code, kind)
    WHERE status IN ('open', 'accepted');
