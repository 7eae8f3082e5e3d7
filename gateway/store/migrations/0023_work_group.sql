-- How far the village work groups' poster has read the ticket audit trail (one row).
CREATE TABLE work_group_cursor (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    event_id INTEGER NOT NULL
);
