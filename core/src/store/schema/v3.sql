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

-- A first sync (or a refetch) downloads the platform's registry snapshot chunk by chunk; this row
-- says which snapshot is being loaded and which chunk comes next, so an interrupted download resumes
-- at that chunk. Each chunk and this row change in one transaction; the row goes with the last chunk,
-- when the feed cursor is stored.
CREATE TABLE snapshot_progress (
    singleton     INTEGER NOT NULL PRIMARY KEY CHECK (singleton = 1),
    snapshot_id   TEXT NOT NULL,
    manifest      BLOB NOT NULL,
    next_chunk    INTEGER NOT NULL,
    started_at_ms INTEGER NOT NULL
);

-- The platform's work calendar: holiday arrangements by day, and announced sensitive periods. Permit
-- escalation (holidays, rest days, sensitive periods) reads them.
CREATE TABLE calendar_days (
    date INTEGER NOT NULL PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('holiday', 'rest_day', 'workday'))
) WITHOUT ROWID;

CREATE TABLE sensitive_periods (
    period_id TEXT NOT NULL PRIMARY KEY,
    name      TEXT NOT NULL,
    from_s    INTEGER NOT NULL,
    until_s   INTEGER NOT NULL
) WITHOUT ROWID;
