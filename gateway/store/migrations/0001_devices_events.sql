-- Devices, raw events, device status history and the deadline queue.

CREATE TABLE devices (
    device_id            TEXT    PRIMARY KEY CHECK (length(device_id) = 16),
    kind                 TEXT    NOT NULL CHECK (kind IN ('call_box', 'water_meter')),
    key                  BLOB    NOT NULL CHECK (length(key) = 16),
    key_version          INTEGER NOT NULL DEFAULT 0,
    household_code       TEXT,
    label                TEXT,
    enabled              INTEGER NOT NULL DEFAULT 1,
    heartbeat_interval_s INTEGER NOT NULL CHECK (heartbeat_interval_s > 0),
    status               TEXT    NOT NULL DEFAULT 'unknown'
                                 CHECK (status IN ('unknown', 'online', 'offline')),
    low_battery          INTEGER NOT NULL DEFAULT 0,
    firmware             TEXT,
    battery_pct          INTEGER,
    battery_mv           INTEGER,
    rssi_dbm             INTEGER,
    uptime_s             INTEGER,
    last_seen            REAL,
    last_link            TEXT,
    last_seq             INTEGER,
    downlink_seq         INTEGER NOT NULL DEFAULT 0,
    created_at           REAL    NOT NULL
);

CREATE TABLE events (
    id           INTEGER PRIMARY KEY,
    device_id    TEXT    NOT NULL REFERENCES devices (device_id),
    seq          INTEGER NOT NULL,
    msg_type     TEXT    NOT NULL,
    device_time  INTEGER NOT NULL,
    received_at  REAL    NOT NULL,
    transport    TEXT    NOT NULL,
    link         TEXT    NOT NULL,
    raw          BLOB    NOT NULL,
    fields       TEXT    NOT NULL,
    UNIQUE (device_id, seq)
);
CREATE INDEX events_received_at ON events (received_at);

CREATE TABLE device_transitions (
    id         INTEGER PRIMARY KEY,
    device_id  TEXT    NOT NULL REFERENCES devices (device_id),
    at         REAL    NOT NULL,
    kind       TEXT    NOT NULL
               CHECK (kind IN ('online', 'offline', 'low_battery', 'battery_ok')),
    detail     TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX device_transitions_device ON device_transitions (device_id, at);

-- One row per pending deadline; the scheduler serves them in due order.
CREATE TABLE deadlines (
    kind     TEXT NOT NULL,
    subject  TEXT NOT NULL,
    due_at   REAL NOT NULL,
    PRIMARY KEY (kind, subject)
);
CREATE INDEX deadlines_due ON deadlines (due_at);
