-- Protocol v2: key rotation, counter reset, pending configuration.
--
-- events.seq and devices.last_seq hold a frame's position, session << 32 | seq, so the
-- (device_id, seq) key orders and deduplicates by (session, seq). devices.downlink_seq holds
-- session << 32 | downlink seq of the last downlink sent in that session.
--
-- next_key / next_key_id: a rotation under way; the gateway accepts frames MACed with
-- either key until the first one MACed with the next key, which then becomes the key.
-- counters_reset_at: `bidao device reset-counters`; only frames received since count for
-- the device's order. pending_heartbeat_s / pending_clock: a CONFIG `bidao device
-- configure` asked for, sent after each frame until the box confirms it.

ALTER TABLE devices ADD COLUMN next_key BLOB CHECK (next_key IS NULL OR length(next_key) = 16);
ALTER TABLE devices ADD COLUMN next_key_id INTEGER;
ALTER TABLE devices ADD COLUMN counters_reset_at REAL;
ALTER TABLE devices ADD COLUMN pending_heartbeat_s INTEGER;
ALTER TABLE devices ADD COLUMN pending_clock INTEGER NOT NULL DEFAULT 0;

-- No v1 box ships, so v1 positions (plain seqs) are kept as they are: session 0.

-- The history gains the protocol actions; SQLite cannot alter a CHECK, so the table is
-- rebuilt with its rows and index.
CREATE TABLE device_history_v2 (
    id             INTEGER PRIMARY KEY,
    device_id      TEXT    NOT NULL REFERENCES devices (device_id),
    at             REAL    NOT NULL,
    action         TEXT    NOT NULL
                   CHECK (action IN ('added', 'attached', 'moved', 'replaced', 'replaces',
                                     'removed', 'key_rotation', 'configured',
                                     'counters_reset')),
    from_household TEXT,
    to_household   TEXT,
    unit_code      TEXT,
    other_device   TEXT,
    actor          TEXT    NOT NULL,
    note           TEXT    NOT NULL DEFAULT ''
);
INSERT INTO device_history_v2 SELECT * FROM device_history;
DROP TABLE device_history;
ALTER TABLE device_history_v2 RENAME TO device_history;
CREATE INDEX device_history_device ON device_history (device_id, id);
