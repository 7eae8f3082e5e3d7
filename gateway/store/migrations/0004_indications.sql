-- Box indications (what the box shows and says), written in the transaction of the ticket
-- change that causes them and delivered after the commit. A newer indication for the same
-- box and ticket supersedes a pending older one: the box hears the ticket's current state.

CREATE TABLE indications (
    id              INTEGER PRIMARY KEY,
    device_id       TEXT    NOT NULL REFERENCES devices (device_id),
    ticket_ref      INTEGER NOT NULL,
    kind            INTEGER NOT NULL,
    led             INTEGER NOT NULL,
    voice_prompt    INTEGER NOT NULL,
    created_at      REAL    NOT NULL,
    status          TEXT    NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'delivered', 'superseded')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL    NOT NULL DEFAULT 0,
    last_error      TEXT,
    updated_at      REAL
);

CREATE UNIQUE INDEX indications_one_pending ON indications (device_id, ticket_ref)
    WHERE status = 'pending';
CREATE INDEX indications_due ON indications (status, next_attempt_at);
