-- Device administration: who attached, moved, replaced or removed which box, and when;
-- operator alarms (a call that reached nobody, an installer's mistake); and the
-- "box offline for a day" notices already sent, so each offline spell is told once.

CREATE TABLE device_history (
    id             INTEGER PRIMARY KEY,
    device_id      TEXT    NOT NULL REFERENCES devices (device_id),
    at             REAL    NOT NULL,
    action         TEXT    NOT NULL
                   CHECK (action IN ('added', 'attached', 'moved', 'replaced', 'replaces',
                                     'removed')),
    from_household TEXT,
    to_household   TEXT,
    unit_code      TEXT,
    other_device   TEXT,
    actor          TEXT    NOT NULL,
    note           TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX device_history_device ON device_history (device_id, id);

CREATE TABLE operator_alarms (
    id          INTEGER PRIMARY KEY,
    kind        TEXT    NOT NULL,
    device_id   TEXT,
    detail      TEXT    NOT NULL,
    at          REAL    NOT NULL,
    last_at     REAL    NOT NULL,
    count       INTEGER NOT NULL DEFAULT 1,
    notified_at REAL,
    cleared_at  REAL,
    cleared_by  TEXT
);
-- One open alarm per kind and device: a repeat counts on the open one.
CREATE UNIQUE INDEX operator_alarms_open ON operator_alarms (kind, device_id)
    WHERE cleared_at IS NULL;
CREATE INDEX operator_alarms_at ON operator_alarms (at);

CREATE TABLE device_offline_notices (
    device_id   TEXT PRIMARY KEY REFERENCES devices (device_id),
    last_heard  REAL NOT NULL,
    notified_at REAL NOT NULL
);

-- There is no foreign key from devices.household_code to households (SQLite cannot add one
-- without rebuilding the table). Boxes already registered to a household that does not
-- exist are raised as alarms now, so the mistake is seen before the next call for help.
INSERT INTO operator_alarms (kind, device_id, detail, at, last_at)
SELECT 'unknown_household', d.device_id, d.household_code,
       (julianday('now') - 2440587.5) * 86400.0, (julianday('now') - 2440587.5) * 86400.0
FROM devices d
WHERE d.household_code IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM households h WHERE h.code = d.household_code);
