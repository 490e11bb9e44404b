-- FROZEN snapshot of schema version 5 as shipped. Never edit: tests build 'old' files from it to
-- prove that every later migration upgrades a real v5 file. Add a new frozen file per version.
-- Schema version 1: registry cache, sync cursors, outbox, work sessions.
-- Dates are INTEGER days since 1970-01-01; instants are INTEGER milliseconds since the Unix epoch (UTC).
-- Enumerations are stored as their snake_case names; licence categories as a bit set
-- (1 = fusion welding and cutting, 2 = pressure welding, 4 = brazing).
-- The registry tables cache what the platform hands out; its pages may arrive in any order, so they
-- carry no foreign keys between them.

CREATE TABLE licences (
    certificate_no  TEXT NOT NULL PRIMARY KEY,
    id_number       TEXT NOT NULL,
    name            TEXT NOT NULL,
    categories      INTEGER NOT NULL,
    issued_on       INTEGER NOT NULL,
    expires_on      INTEGER NOT NULL,
    next_review_on  INTEGER NOT NULL,
    review_extended INTEGER NOT NULL,
    status          TEXT NOT NULL,
    employer_org    TEXT
) WITHOUT ROWID;

CREATE TABLE machines (
    machine_id TEXT NOT NULL PRIMARY KEY,
    kind       TEXT NOT NULL,
    class      TEXT NOT NULL,
    owner_org  TEXT NOT NULL,
    region     INTEGER NOT NULL,
    status     TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE bindings (
    machine_id     TEXT NOT NULL,
    certificate_no TEXT NOT NULL,
    PRIMARY KEY (machine_id, certificate_no)
) WITHOUT ROWID;

CREATE TABLE revocations (
    target TEXT NOT NULL,
    id     TEXT NOT NULL,
    PRIMARY KEY (target, id)
) WITHOUT ROWID;

CREATE TABLE issuer_keys (
    kid        TEXT NOT NULL PRIMARY KEY,
    algorithm  TEXT NOT NULL,
    public_key BLOB NOT NULL,
    issuer     TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE sync_cursors (
    feed          TEXT NOT NULL PRIMARY KEY,
    cursor        TEXT NOT NULL,
    updated_at_ms INTEGER NOT NULL
) WITHOUT ROWID;

-- Every record made on the device has exactly one outbox entry, written in the same transaction.
CREATE TABLE outbox (
    seq                INTEGER PRIMARY KEY,
    idempotency_key    TEXT NOT NULL UNIQUE,
    kind               TEXT NOT NULL,
    payload            TEXT NOT NULL,
    created_at_ms      INTEGER NOT NULL,
    state              TEXT NOT NULL DEFAULT 'pending'
                       CHECK (state IN ('pending', 'sent', 'applied', 'rejected')),
    attempts           INTEGER NOT NULL DEFAULT 0,
    last_error         TEXT,
    last_attempt_at_ms INTEGER,
    resolved_at_ms     INTEGER
);

CREATE INDEX outbox_unresolved ON outbox (seq) WHERE state IN ('pending', 'sent');

CREATE TABLE work_sessions (
    id             TEXT NOT NULL PRIMARY KEY REFERENCES outbox (idempotency_key),
    machine_id     TEXT NOT NULL,
    certificate_no TEXT NOT NULL,
    started_at_ms  INTEGER NOT NULL,
    allowed        INTEGER NOT NULL,
    reason_codes   TEXT NOT NULL,
    permit_id      TEXT,
    created_at_ms  INTEGER NOT NULL
) WITHOUT ROWID;
-- Schema version 2: hot-work permits (whole state + signature chain, one row per life-cycle step)
-- and sealed inspection records. Each step and each inspection has its outbox entry, written in the
-- same transaction; the outbox key is the row's id.

CREATE TABLE permits (
    permit_id     TEXT NOT NULL PRIMARY KEY,
    site_id       TEXT NOT NULL,
    state         TEXT NOT NULL,
    valid_from    INTEGER NOT NULL,
    valid_until   INTEGER NOT NULL,
    body          TEXT NOT NULL,
    digest        BLOB NOT NULL,
    last_step     TEXT NOT NULL REFERENCES outbox (idempotency_key),
    updated_at_ms INTEGER NOT NULL
) WITHOUT ROWID;

CREATE INDEX permits_by_state ON permits (state, permit_id);

CREATE TABLE permit_welders (
    certificate_no TEXT NOT NULL,
    permit_id      TEXT NOT NULL REFERENCES permits (permit_id),
    PRIMARY KEY (certificate_no, permit_id)
) WITHOUT ROWID;

CREATE TABLE permit_steps (
    id            TEXT NOT NULL PRIMARY KEY REFERENCES outbox (idempotency_key),
    permit_id     TEXT NOT NULL REFERENCES permits (permit_id),
    action        TEXT NOT NULL,
    state         TEXT NOT NULL,
    digest        BLOB NOT NULL,
    created_at_ms INTEGER NOT NULL
) WITHOUT ROWID;

CREATE INDEX permit_steps_by_permit ON permit_steps (permit_id, created_at_ms);

CREATE TABLE inspections (
    id              TEXT NOT NULL PRIMARY KEY REFERENCES outbox (idempotency_key),
    site_id         TEXT NOT NULL,
    permit_id       TEXT,
    at              INTEGER NOT NULL,
    report_required INTEGER NOT NULL,
    violations      INTEGER NOT NULL,
    body            TEXT NOT NULL,
    created_at_ms   INTEGER NOT NULL
) WITHOUT ROWID;

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

-- Schema version 5: what the application layer keeps (docs/adr/0015-application-layer.md).
-- The platform's trust file (its issuer keys with their validity periods, as fetched at enrolment
-- and at each sync), so a profile's trust is loaded when it opens instead of being handed in again;
-- and the device's position at a scan-to-start when the shell had one (integer 1e-7 degrees and
-- the fix's accuracy in metres; all null when the phone had no position).

CREATE TABLE trust_file (
    singleton     INTEGER NOT NULL PRIMARY KEY CHECK (singleton = 1),
    trust_json    TEXT NOT NULL,
    fetched_at_ms INTEGER NOT NULL
);

ALTER TABLE work_sessions ADD COLUMN latitude_e7 INTEGER;
ALTER TABLE work_sessions ADD COLUMN longitude_e7 INTEGER;
ALTER TABLE work_sessions ADD COLUMN accuracy_m INTEGER;
