-- Closing the loop: operators (the command line) and the signed link act on tickets; a
-- ticket remembers since when its current owner has it; contacts may choose what they are
-- told; a press long after the helper arrived opens a new ticket beside the old one.

-- The audit trail accepts the new channels: 'cli' (an operator) and 'link' (the signed page).
-- SQLite cannot change a CHECK in place: the table is rebuilt (nothing references it).
CREATE TABLE ticket_events_new (
    id         INTEGER PRIMARY KEY,
    ticket_id  INTEGER NOT NULL REFERENCES tickets (id),
    at         REAL    NOT NULL,
    kind       TEXT    NOT NULL,
    contact_id INTEGER REFERENCES contacts (id),
    channel    TEXT    NOT NULL
               CHECK (channel IN ('box_key', 'voice_keypress', 'dashboard', 'api', 'system',
                                  'cli', 'link')),
    detail     TEXT    NOT NULL DEFAULT ''
);
-- A contact id that names no contact (written while foreign keys were off) is not carried.
INSERT INTO ticket_events_new (id, ticket_id, at, kind, contact_id, channel, detail)
    SELECT id, ticket_id, at, kind,
           CASE WHEN contact_id IN (SELECT id FROM contacts) THEN contact_id END,
           channel, detail
    FROM ticket_events;
DROP TABLE ticket_events;
ALTER TABLE ticket_events_new RENAME TO ticket_events;
CREATE INDEX ticket_events_ticket ON ticket_events (ticket_id, id);

-- Since when the current owner has the ticket (accepted it, or had it handed over).
ALTER TABLE tickets ADD COLUMN owner_since REAL;
UPDATE tickets SET owner_since = accepted_at WHERE owner_contact_id IS NOT NULL;

-- What a contact is told, as a comma-separated list of events ('' nothing); NULL follows
-- the defaults of the contact's role.
ALTER TABLE contacts ADD COLUMN notify TEXT;

-- At most one ticket per household that nobody has reached yet (open or accepted). A ticket
-- whose helper arrived long before may stay on site beside a new call.
DROP INDEX tickets_one_live_per_household;
CREATE UNIQUE INDEX tickets_one_waiting_per_household ON tickets (household_code)
    WHERE status IN ('open', 'accepted');
