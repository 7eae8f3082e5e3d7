-- Deadlines whose handler raised: retried a bounded number of times, then quarantined.

CREATE TABLE deadline_failures (
    id         INTEGER PRIMARY KEY,
    kind       TEXT    NOT NULL,
    subject    TEXT    NOT NULL,
    due_at     REAL    NOT NULL,  -- when the deadline was first due
    attempts   INTEGER NOT NULL CHECK (attempts >= 1),
    reason     TEXT    NOT NULL,  -- the last error
    failed_at  REAL    NOT NULL,  -- the last failed attempt
    status     TEXT    NOT NULL CHECK (status IN ('retrying', 'quarantined'))
);
-- At most one deadline of a kind and subject is being retried; quarantined rows are history.
CREATE UNIQUE INDEX deadline_failures_retrying
    ON deadline_failures (kind, subject) WHERE status = 'retrying';

-- A deadline that is handled (deleted) at last leaves no retry count behind.
CREATE TRIGGER deadline_handled AFTER DELETE ON deadlines
BEGIN
    DELETE FROM deadline_failures
     WHERE status = 'retrying' AND kind = OLD.kind AND subject = OLD.subject;
END;
