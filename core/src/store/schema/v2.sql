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
