-- A notification that kept failing is quarantined: failed, with its reason, and the time it
-- was given up on, so an operator can list what never reached its person.
ALTER TABLE notifications ADD COLUMN quarantined_at REAL;

CREATE INDEX notifications_quarantined ON notifications (quarantined_at)
    WHERE quarantined_at IS NOT NULL;
