-- Schema version 3: the platform's signed revocation status list, fetched first at every sync. One
-- row holds the newest verified list (its bytes kept for audit and re-verification); its entries are
-- copied out for lookups. Revocations from the registry feed stay in `revocations`; a code is refused
-- when either table names it.

CREATE TABLE status_list (
    singleton     INTEGER NOT NULL PRIMARY KEY CHECK (singleton = 1),
    sequence      INTEGER NOT NULL,
    issued_at     INTEGER NOT NULL,
    signer_kid    TEXT NOT NULL,
    fetched_at_ms INTEGER NOT NULL,
    document      BLOB NOT NULL
);

CREATE TABLE status_revocations (
    target TEXT NOT NULL,
    id     TEXT NOT NULL,
    PRIMARY KEY (target, id)
) WITHOUT ROWID;
