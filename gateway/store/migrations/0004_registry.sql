-- 0004: written once for SQLite and PostgreSQL; {ID} and {BLOB} are the only words that differ.
CREATE TABLE parties (
    herid BIGINT PRIMARY KEY,
    parent_herid BIGINT,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    active INTEGER NOT NULL,
    kommunenummer TEXT,
    service_type TEXT,
    formats TEXT NOT NULL,
    given_name TEXT,
    family_name TEXT,
    hpr TEXT
);
CREATE INDEX parties_kommune ON parties(kommunenummer);
CREATE INDEX parties_parent ON parties(parent_herid);
CREATE TABLE gp_assignments (
    fnr TEXT NOT NULL,
    gp_herid BIGINT NOT NULL,
    valid_from TEXT NOT NULL,
    valid_to TEXT,
    relation TEXT NOT NULL
);
CREATE INDEX gp_assignments_fnr ON gp_assignments(fnr);
CREATE TABLE registry_imports (
    id {ID},
    kind TEXT NOT NULL,
    source TEXT NOT NULL,
    rows BIGINT NOT NULL,
    imported_at TEXT NOT NULL
);
