-- Delivery follow-ups (SMS falls back to voice, an unanswered call is retried once), per-number
-- throttling with merged messages, keypresses on calls, in-doubt sends, and calls bridged
-- to the resident. SQLite cannot change a CHECK constraint in place: the outbox is rebuilt.

CREATE TABLE notifications_v3 (
    id          INTEGER PRIMARY KEY,
    created_at  REAL    NOT NULL,
    channel     TEXT    NOT NULL CHECK (channel IN ('sms', 'voice')),
    contact_id  INTEGER REFERENCES contacts (id),
    recipient   TEXT    NOT NULL,
    template    TEXT    NOT NULL,
    params      TEXT    NOT NULL,
    language    TEXT    NOT NULL,
    ticket_id   INTEGER REFERENCES tickets (id),
    priority    INTEGER NOT NULL DEFAULT 0,
    status      TEXT    NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'sending', 'sent', 'delivered', 'failed', 'merged')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL    NOT NULL DEFAULT 0,
    provider        TEXT,
    provider_id     TEXT,
    delivery        TEXT,
    last_error      TEXT,
    updated_at      REAL,
    -- The notification this one follows up, and how: a voice fallback of a failed SMS, or
    -- the one retry of an unanswered call. At most one of each per origin.
    origin_id   INTEGER REFERENCES notifications_v3 (id),
    origin_kind TEXT    CHECK (origin_kind IN ('fallback', 'retry')),
    keypress    TEXT,
    merged_into INTEGER REFERENCES notifications_v3 (id),
    sent_text   TEXT,
    claimed_at  REAL,
    sent_at     REAL,
    in_doubt    INTEGER NOT NULL DEFAULT 0,
    CHECK ((origin_id IS NULL) = (origin_kind IS NULL))
);

INSERT INTO notifications_v3 (id, created_at, channel, contact_id, recipient, template, params,
    language, ticket_id, priority, status, attempts, next_attempt_at, provider, provider_id,
    delivery, last_error, updated_at, sent_at)
SELECT id, created_at, channel, contact_id, recipient, template, params, language, ticket_id,
    priority, status, attempts, next_attempt_at, provider, provider_id, delivery, last_error,
    updated_at, CASE WHEN status IN ('sent', 'delivered') THEN updated_at END
FROM notifications;

DROP TABLE notifications;
ALTER TABLE notifications_v3 RENAME TO notifications;

CREATE INDEX notifications_due ON notifications (status, next_attempt_at, priority);
CREATE INDEX notifications_provider_id ON notifications (provider_id);
CREATE INDEX notifications_recipient_sent ON notifications (recipient, sent_at);
CREATE INDEX notifications_ticket ON notifications (ticket_id);
CREATE UNIQUE INDEX notifications_one_follow_up ON notifications (origin_id, origin_kind)
    WHERE origin_id IS NOT NULL;

-- The provider's id of a responder's call while it is connected to the resident's phone.
ALTER TABLE tickets ADD COLUMN bridged_call TEXT;
