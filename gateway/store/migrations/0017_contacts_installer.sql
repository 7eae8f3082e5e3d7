-- bidao: foreign keys off
-- Contacts may be installers (安装维护员): a unit's contact for device health alarms, never
-- a responder of the call chain. SQLite cannot alter a CHECK, so the table is rebuilt with
-- its rows (ids kept) and indexes. Tickets, notifications and events refer to contacts by
-- id: the runner turns foreign keys off for this migration (the SQLite way to rebuild a
-- referenced table) and checks every reference before it commits.
CREATE TABLE contacts_v17 (
    id             INTEGER PRIMARY KEY,
    name           TEXT    NOT NULL,
    role           TEXT    NOT NULL CHECK (role IN (
                       'village_secretary', 'deputy_secretary', 'grid_worker', 'neighbour_chief',
                       'group_leader', 'area_chief', 'township_duty', 'family', 'installer')),
    unit_code      TEXT    REFERENCES grid_units (code),
    household_code TEXT    REFERENCES households (code),
    phone          TEXT    NOT NULL,
    language       TEXT    NOT NULL DEFAULT 'zh-CN',
    available_from TEXT    NOT NULL DEFAULT '00:00',
    available_to   TEXT    NOT NULL DEFAULT '24:00',
    bad_number     INTEGER NOT NULL DEFAULT 0,
    notify         TEXT,
    CHECK ((unit_code IS NULL) <> (household_code IS NULL))
);
INSERT INTO contacts_v17 (id, name, role, unit_code, household_code, phone, language,
                          available_from, available_to, bad_number, notify)
SELECT id, name, role, unit_code, household_code, phone, language,
       available_from, available_to, bad_number, notify
FROM contacts;
DROP TABLE contacts;
ALTER TABLE contacts_v17 RENAME TO contacts;
CREATE INDEX contacts_unit_role ON contacts (unit_code, role);
CREATE INDEX contacts_household ON contacts (household_code);
