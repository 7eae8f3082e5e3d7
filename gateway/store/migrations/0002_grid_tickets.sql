-- The grid (county .. neighbourhood), households, residents, contacts, tickets and the outbox.

CREATE TABLE grid_units (
    code        TEXT PRIMARY KEY,
    level       TEXT NOT NULL
                CHECK (level IN ('county', 'township', 'village', 'area', 'group', 'neighbourhood')),
    name        TEXT NOT NULL,
    parent_code TEXT REFERENCES grid_units (code),
    CHECK ((level = 'county') = (parent_code IS NULL))
);
CREATE INDEX grid_units_parent ON grid_units (parent_code);

CREATE TABLE households (
    code               TEXT PRIMARY KEY,
    neighbourhood_code TEXT NOT NULL REFERENCES grid_units (code),
    address            TEXT NOT NULL DEFAULT ''
);

CREATE TABLE residents (
    id             INTEGER PRIMARY KEY,
    household_code TEXT    NOT NULL REFERENCES households (code),
    name           TEXT    NOT NULL,
    phone          TEXT,
    lives_alone    INTEGER NOT NULL DEFAULT 0,
    five_guarantee INTEGER NOT NULL DEFAULT 0,
    needs_care     INTEGER NOT NULL DEFAULT 0,
    consent        INTEGER NOT NULL DEFAULT 0,
    key_safe_code  TEXT,
    health_notes   TEXT
);
CREATE INDEX residents_household ON residents (household_code);

CREATE TABLE contacts (
    id             INTEGER PRIMARY KEY,
    name           TEXT    NOT NULL,
    role           TEXT    NOT NULL CHECK (role IN (
                       'village_secretary', 'deputy_secretary', 'grid_worker', 'neighbour_chief',
                       'group_leader', 'area_chief', 'township_duty', 'family')),
    unit_code      TEXT    REFERENCES grid_units (code),
    household_code TEXT    REFERENCES households (code),
    phone          TEXT    NOT NULL,
    language       TEXT    NOT NULL DEFAULT 'zh-CN',
    available_from TEXT    NOT NULL DEFAULT '00:00',
    available_to   TEXT    NOT NULL DEFAULT '24:00',
    bad_number     INTEGER NOT NULL DEFAULT 0,
    CHECK ((unit_code IS NULL) <> (household_code IS NULL))
);
CREATE INDEX contacts_unit_role ON contacts (unit_code, role);
CREATE INDEX contacts_household ON contacts (household_code);

CREATE TABLE tickets (
    id                 INTEGER PRIMARY KEY,
    household_code     TEXT    REFERENCES households (code),
    device_id          TEXT    REFERENCES devices (device_id),
    village_code       TEXT    REFERENCES grid_units (code),
    neighbourhood_code TEXT    REFERENCES grid_units (code),
    status             TEXT    NOT NULL
                       CHECK (status IN ('open', 'accepted', 'on_site', 'resolved', 'rated',
                                         'cancelled')),
    category           TEXT    CHECK (category IN ('urgent', 'ordinary', 'hard', 'complex')),
    press_count        INTEGER NOT NULL DEFAULT 1,
    responder_step     INTEGER NOT NULL DEFAULT 0,
    escalation_level   INTEGER NOT NULL DEFAULT 0,
    escalated          INTEGER NOT NULL DEFAULT 0,
    owner_contact_id   INTEGER REFERENCES contacts (id),
    opened_at          REAL    NOT NULL,
    last_press_at      REAL    NOT NULL,
    last_notified_at   REAL    NOT NULL,
    accepted_at        REAL,
    on_site_at         REAL,
    resolved_at        REAL,
    rated_at           REAL,
    cancelled_at       REAL,
    day_due_at         REAL,
    rating             TEXT    CHECK (rating IN ('up', 'down')),
    review_flag        INTEGER NOT NULL DEFAULT 0
);
-- A household has at most one live ticket: repeated presses merge into it.
CREATE UNIQUE INDEX tickets_one_live_per_household ON tickets (household_code)
    WHERE status IN ('open', 'accepted', 'on_site');
CREATE INDEX tickets_village ON tickets (village_code, opened_at);
CREATE INDEX tickets_household_resolved ON tickets (household_code, resolved_at);

CREATE TABLE ticket_events (
    id         INTEGER PRIMARY KEY,
    ticket_id  INTEGER NOT NULL REFERENCES tickets (id),
    at         REAL    NOT NULL,
    kind       TEXT    NOT NULL,
    contact_id INTEGER REFERENCES contacts (id),
    channel    TEXT    NOT NULL
               CHECK (channel IN ('box_key', 'voice_keypress', 'dashboard', 'api', 'system')),
    detail     TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX ticket_events_ticket ON ticket_events (ticket_id, id);

CREATE TABLE feedback (
    id             INTEGER PRIMARY KEY,
    household_code TEXT,
    device_id      TEXT    NOT NULL,
    at             REAL    NOT NULL,
    rating         TEXT    NOT NULL CHECK (rating IN ('up', 'down')),
    ticket_id      INTEGER REFERENCES tickets (id)
);

-- The durable outbox: written in the same transaction as what caused it; a sender delivers.
CREATE TABLE notifications (
    id         INTEGER PRIMARY KEY,
    created_at REAL    NOT NULL,
    channel    TEXT    NOT NULL CHECK (channel IN ('sms', 'voice')),
    contact_id INTEGER REFERENCES contacts (id),
    recipient  TEXT    NOT NULL,
    template   TEXT    NOT NULL,
    params     TEXT    NOT NULL,
    language   TEXT    NOT NULL,
    ticket_id  INTEGER REFERENCES tickets (id),
    priority   INTEGER NOT NULL DEFAULT 0,
    status     TEXT    NOT NULL DEFAULT 'pending'
               CHECK (status IN ('pending', 'sending', 'sent', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL    NOT NULL DEFAULT 0,
    provider        TEXT,
    provider_id     TEXT,
    delivery        TEXT,
    last_error      TEXT,
    updated_at      REAL
);
-- The sender takes due rows, urgent first.
CREATE INDEX notifications_due ON notifications (status, next_attempt_at, priority);
CREATE INDEX notifications_provider_id ON notifications (provider_id);
