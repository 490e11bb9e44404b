-- Schema version 4: the platform's signed signer directory (docs/adr/0014-who-may-sign-what.md):
-- who may sign permits, with which key and roles. One row holds the newest verified directory, its
-- signed bytes kept for audit and its decoded entries as JSON for the permit checks.

CREATE TABLE signer_directory (
    singleton     INTEGER NOT NULL PRIMARY KEY CHECK (singleton = 1),
    sequence      INTEGER NOT NULL,
    issued_at     INTEGER NOT NULL,
    fetched_at_ms INTEGER NOT NULL,
    entries_json  TEXT NOT NULL,
    document      BLOB NOT NULL
);
