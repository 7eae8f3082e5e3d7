-- People who sign in (users, with a role and the units they answer for), their sessions and
-- API tokens (both stored only as SHA-256 digests), and the audit log of every write made
-- through the API or the `bidao user` command, with the acting user.
CREATE TABLE users (
    id                  INTEGER PRIMARY KEY,
    login               TEXT    NOT NULL UNIQUE COLLATE NOCASE,
    name                TEXT    NOT NULL,
    role                TEXT    NOT NULL CHECK (role IN (
                            'administrator', 'township_officer', 'secretary', 'grid_worker',
                            'installer', 'family')),
    password_hash       TEXT,
    contact_id          INTEGER REFERENCES contacts (id),
    created_at          REAL    NOT NULL,
    password_changed_at REAL,
    disabled_at         REAL
);

CREATE TABLE user_units (
    user_id   INTEGER NOT NULL REFERENCES users (id),
    unit_code TEXT    NOT NULL REFERENCES grid_units (code),
    PRIMARY KEY (user_id, unit_code)
);

CREATE TABLE user_sessions (
    token_sha256 TEXT    PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users (id),
    created_at   REAL    NOT NULL,
    expires_at   REAL    NOT NULL,
    client       TEXT    NOT NULL DEFAULT '',
    ended_at     REAL
);
CREATE INDEX user_sessions_user ON user_sessions (user_id);

CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users (id),
    name         TEXT    NOT NULL,
    token_sha256 TEXT    NOT NULL UNIQUE,
    created_at   REAL    NOT NULL,
    expires_at   REAL,
    revoked_at   REAL
);

CREATE TABLE audit_log (
    id      INTEGER PRIMARY KEY,
    at      REAL    NOT NULL,
    user_id INTEGER REFERENCES users (id),
    login   TEXT    NOT NULL,
    action  TEXT    NOT NULL,
    target  TEXT    NOT NULL DEFAULT '',
    detail  TEXT    NOT NULL DEFAULT '',
    client  TEXT    NOT NULL DEFAULT '',
    outcome TEXT    NOT NULL DEFAULT 'ok'
);
CREATE INDEX audit_log_user ON audit_log (user_id, at);
