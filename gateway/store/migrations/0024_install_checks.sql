-- Install checks: an installer presses each of the box's four keys (or runs water through a
-- meter) while the check runs; each key or reading that arrives is a step. A device whose
-- latest check passed is active; otherwise its installation is pending.
CREATE TABLE install_checks (
    id          INTEGER PRIMARY KEY,
    device_id   TEXT    NOT NULL REFERENCES devices (device_id),
    kind        TEXT    NOT NULL CHECK (kind IN ('call_box', 'water_meter')),
    started_at  REAL    NOT NULL,
    ends_at     REAL    NOT NULL,
    started_by  TEXT    NOT NULL,
    state       TEXT    NOT NULL CHECK (state IN ('running', 'passed', 'failed', 'cancelled')),
    ended_at    REAL,
    reason      TEXT
);
CREATE UNIQUE INDEX install_checks_one_running ON install_checks (device_id)
    WHERE state = 'running';
CREATE INDEX install_checks_device ON install_checks (device_id, id);
-- The ingest reads the running checks for every batch with a key press or a reading: only
-- the few running rows, however many checks were ever run.
CREATE INDEX install_checks_running ON install_checks (id) WHERE state = 'running';

CREATE TABLE install_check_steps (
    id        INTEGER PRIMARY KEY,
    check_id  INTEGER NOT NULL REFERENCES install_checks (id),
    at        REAL    NOT NULL,
    what      TEXT    NOT NULL CHECK (what IN (
                  'green', 'red', 'thumbs_up', 'thumbs_down', 'reading')),
    litres    INTEGER,
    flow_lph  INTEGER
);
CREATE INDEX install_check_steps_check ON install_check_steps (check_id, id);
