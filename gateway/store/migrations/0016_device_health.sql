-- Device health alarms: tamper and power loss become device flags and transitions beside
-- low battery, and each spell of a health condition (offline, low battery, tamper, power
-- loss) is a row from when it began until its all-clear, with who was told.

ALTER TABLE devices ADD COLUMN tamper INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN power_loss INTEGER NOT NULL DEFAULT 0;

-- The transitions gain the new kinds; SQLite cannot alter a CHECK, so the table is rebuilt
-- with its rows and index.
CREATE TABLE device_transitions_v2 (
    id         INTEGER PRIMARY KEY,
    device_id  TEXT    NOT NULL REFERENCES devices (device_id),
    at         REAL    NOT NULL,
    kind       TEXT    NOT NULL
               CHECK (kind IN ('online', 'offline', 'low_battery', 'battery_ok', 'tamper',
                               'tamper_ok', 'power_loss', 'power_ok')),
    detail     TEXT    NOT NULL DEFAULT ''
);
INSERT INTO device_transitions_v2 SELECT * FROM device_transitions;
DROP TABLE device_transitions;
ALTER TABLE device_transitions_v2 RENAME TO device_transitions;
CREATE INDEX device_transitions_device ON device_transitions (device_id, at);

CREATE TABLE device_health_alarms (
    id          INTEGER PRIMARY KEY,
    device_id   TEXT    NOT NULL REFERENCES devices (device_id),
    kind        TEXT    NOT NULL
                CHECK (kind IN ('offline', 'low_battery', 'tamper', 'power_loss')),
    since       REAL    NOT NULL,
    told_at     REAL,
    told        TEXT    NOT NULL DEFAULT '',
    ok_since    REAL,
    cleared_at  REAL
);
-- One open spell per device and condition.
CREATE UNIQUE INDEX device_health_alarms_open ON device_health_alarms (device_id, kind)
    WHERE cleared_at IS NULL;
CREATE INDEX device_health_alarms_since ON device_health_alarms (since);
