-- Changes to the water watch asked for from outside the running gateway (`bidao household
-- away`, a grid import): written by any process, applied in order by the gateway's water
-- service, the only writer of watches, so its cache is never overwritten behind its back.
-- A request waits here until a gateway runs; `done_at` and `outcome` say what came of it.
CREATE TABLE water_requests (
    id             INTEGER PRIMARY KEY,
    household_code TEXT,              -- NULL: every household (a recheck after an import)
    action         TEXT NOT NULL CHECK (action IN ('away', 'clear', 'recheck')),
    until          REAL,
    by_contact     INTEGER,
    channel        TEXT NOT NULL,
    requested_at   REAL NOT NULL,
    done_at        REAL,
    outcome        TEXT
);
CREATE INDEX water_requests_pending ON water_requests (id) WHERE done_at IS NULL;
CREATE INDEX water_requests_household ON water_requests (household_code, id);
