//! The PostgreSQL backend of the server's store ([`super::Store`]), for deployments where several
//! server processes share one database.
//!
//! - Connections: the blocking `postgres` client (rust-postgres) in a small pool; handlers call
//!   it on tokio's blocking pool. No TLS here (`NoTls`): run the database on loopback or a unix
//!   socket, or put TLS in front of it (see docs/adr/0007-server-postgres.md).
//! - Migrations: numbered, each applied in one transaction that first takes the advisory lock
//!   [`MIGRATE_LOCK`], so two servers starting together do not race; `schema_migrations` records
//!   which were applied.
//! - Feed: a writer takes the advisory transaction lock [`FEED_LOCK`] before drawing `seq`
//!   values from a sequence and holds it until commit, so seq order equals commit order and a
//!   reader that sees seq N also sees every seq below N that will ever exist (or was compacted).
//! - Push: `INSERT … ON CONFLICT DO NOTHING` on the idempotency key, then the payload digest of
//!   the rows that were not inserted decides duplicate or conflict.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Condvar, Mutex, MutexGuard};

use postgres::types::ToSql;
use postgres::{Client, Config, IsolationLevel, NoTls, Row, Statement, Transaction};
use weldguard_model::protocol::{Role, StoredRecord};
use weldguard_model::records::RegistryChange;

use super::{
    AppliedRecord, BOOTSTRAP_DEVICE, Caller, DbError, Grant, HeadEntry, Insert, IssuedToken,
    MAX_NONCES_PER_DEVICE, OnApplied, OnDue, PERMIT_STEP_KIND, Page, PermitPage,
    PermitStepStanding, PushTx, RefreshRefusal, SignerRow, SnapshotHead, Store, StoredIssuerKey,
    StoredSnapshot, TokenCheck, change_json, entity_of, hash, make_page, make_permit_page, now_ms,
    parse_cursor, random_hex, refresh_signature_ok, roles_json, tombstone_seqs,
};
use crate::deadlines::{DueRow, NewDeadline};
use crate::permits::{AdmitStep, HeadRow, NewStep, PermitLedger, StepRow, action_from_name};
use crate::platform::{CountRow, LedgerRow, PermitCount, WARNINGS_OPEN, china_day, scope_filter};
use crate::platform_views::{
    MAX_SITES, MachineRow, PermitHeadRow, PermitStepRow, SiteRow, StartRecord, Subject,
    add_open_warnings,
};
use crate::warnings::{
    Fix, MachineFacts, NewWarning, SqlValue, StartRow, WarningQuery, WarningRow,
};
use weldguard_model::permit::ForkStep;
use weldguard_model::records::action_name;
use weldguard_model::warnings::{GeoPoint, Place, PlaceChange, Scope, WarningKind, WarningState};

/// Advisory lock key a push holds from raising its first warning to commit ("wgwarn"), so
/// warning ids become visible in the order they were assigned: a stream reading by id cursor
/// (`GET /v1/warnings/stream`) never passes an id whose row commits later.
pub const WARNINGS_LOCK: i64 = 0x7767_7761_726e;
/// Advisory lock key held while migrations run ("wgmigrat").
pub const MIGRATE_LOCK: i64 = 0x7767_6d69_6772_6174;
/// Advisory lock key serialising feed writers and compaction ("wgfeed").
pub const FEED_LOCK: i64 = 0x7767_6665_6564;
/// Advisory lock taken while the signing key changes.
pub const KEYS_LOCK: i64 = 0x7767_6b65_7973;
/// Advisory lock serialising permit step placement ("wgpermit"): two server processes never place
/// steps of one permit at once, and head feed seqs commit in the order they are drawn.
pub const PERMITS_LOCK: i64 = 0x7767_7065_726d_6974;

/// Advisory lock serialising snapshot saves with compaction ("wgsnap"): a snapshot cut before a
/// compaction's floor is either dropped by it or refused after it, never left behind. Compaction
/// takes it after [`FEED_LOCK`]; a save takes only this one, so feed writers never wait on a save.
pub const SNAPSHOTS_LOCK: i64 = 0x7767_736e_6170;

/// How many connections one server process opens at most.
const MAX_OPEN: usize = 16;

/// The numbered migrations; migration `i` has version `i + 1`.
pub(super) const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE server_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE devices (
    device_id     TEXT PRIMARY KEY,
    token_hash    BYTEA NOT NULL UNIQUE,
    person        TEXT NOT NULL,
    role          TEXT NOT NULL,
    public_key    TEXT NOT NULL,
    device_name   TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    disabled      BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE TABLE enrolment_codes (
    code_hash     BYTEA PRIMARY KEY,
    person        TEXT NOT NULL,
    role          TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    used_by       TEXT
);
CREATE TABLE records (
    idempotency_key TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,
    payload         TEXT NOT NULL,
    payload_hash    BYTEA NOT NULL,
    device_id       TEXT NOT NULL,
    received_at_ms  BIGINT NOT NULL,
    arrival         BIGSERIAL NOT NULL
);
CREATE INDEX records_by_arrival ON records (arrival);
CREATE SEQUENCE changes_seq;
CREATE TABLE changes (
    seq    BIGINT PRIMARY KEY,
    entity TEXT NOT NULL,
    change TEXT NOT NULL
);
CREATE INDEX changes_by_entity ON changes (entity, seq);
"#,
    r#"
CREATE TABLE issuer_keys (
    kid            TEXT PRIMARY KEY,
    key_json       TEXT NOT NULL,
    valid_from_ms  BIGINT NOT NULL,
    valid_until_ms BIGINT,
    created_at_ms  BIGINT NOT NULL
);
"#,
    // 3: token expiry and refresh by device-key proof (docs/adr/0010-token-refresh.md).
    r#"
ALTER TABLE devices ADD COLUMN token_expires_at_ms BIGINT;
ALTER TABLE devices ADD COLUMN retired_token_hash BYTEA;
CREATE INDEX devices_by_retired_token ON devices (retired_token_hash);
CREATE TABLE auth_nonces (
    nonce_hash    BYTEA PRIMARY KEY,
    device_id     TEXT NOT NULL,
    expires_at_ms BIGINT NOT NULL
);
CREATE INDEX auth_nonces_by_device ON auth_nonces (device_id, expires_at_ms);
CREATE INDEX auth_nonces_by_expiry ON auth_nonces (expires_at_ms);
"#,
    // 4: published snapshots, shared by every server process (docs/adr/0009-*).
    r#"
CREATE TABLE snapshots (
    snapshot_id TEXT PRIMARY KEY,
    manifest    BYTEA NOT NULL,
    made_at_ms  BIGINT NOT NULL,
    chunks      BIGINT NOT NULL
);
CREATE TABLE snapshot_chunks (
    snapshot_id TEXT NOT NULL REFERENCES snapshots (snapshot_id) ON DELETE CASCADE,
    idx         BIGINT NOT NULL,
    body_gzip   BYTEA NOT NULL,
    PRIMARY KEY (snapshot_id, idx)
);
"#,
    // 5: permit heads (each permit's current version, with its feed seq), whom each names, and
    // every placed permit step with its standing (see crate::permits).
    r#"
CREATE TABLE permit_heads (
    permit_id     TEXT PRIMARY KEY,
    step_id       TEXT NOT NULL,
    action        TEXT NOT NULL,
    state         TEXT NOT NULL,
    digest        TEXT NOT NULL,
    body          TEXT NOT NULL,
    seq           BIGINT NOT NULL UNIQUE,
    updated_at_ms BIGINT NOT NULL
);
CREATE TABLE permit_people (
    person    TEXT NOT NULL,
    permit_id TEXT NOT NULL,
    PRIMARY KEY (person, permit_id)
);
CREATE TABLE permit_steps (
    step_id        TEXT PRIMARY KEY,
    permit_id      TEXT NOT NULL,
    base_step      TEXT,
    action         TEXT NOT NULL,
    digest         TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('applied', 'superseded', 'lost')),
    reason         TEXT,
    body           TEXT NOT NULL,
    device_id      TEXT NOT NULL,
    received_at_ms BIGINT NOT NULL,
    arrival        BIGSERIAL NOT NULL
);
CREATE INDEX permit_steps_by_permit ON permit_steps (permit_id, arrival);
"#,
    // 6: bounded permit step placement (crate::permits): per step, the key of its version's event
    // log and how it was admitted over its base, so a new step finds its base by an index and no
    // stored version is re-parsed; indexes for the rival lookup and the lost-step caps. Rows
    // stored before are filled in by `backfill_step_facts` right after.
    r#"
ALTER TABLE permit_steps ADD COLUMN events_key BYTEA;
ALTER TABLE permit_steps ADD COLUMN events_count BIGINT;
ALTER TABLE permit_steps ADD COLUMN signatures_count BIGINT;
ALTER TABLE permit_steps ADD COLUMN fork_action TEXT;
ALTER TABLE permit_steps ADD COLUMN fork_at BIGINT;
CREATE INDEX permit_steps_by_events ON permit_steps (permit_id, events_key);
CREATE INDEX permit_steps_by_base ON permit_steps (base_step, status);
CREATE INDEX permit_steps_by_status ON permit_steps (permit_id, status);
CREATE INDEX permit_steps_by_device ON permit_steps (device_id, status, received_at_ms);
"#,
    // 7: flags on stored records (what the platform kept but could not vouch for, e.g. a work
    // session naming a machine the registry does not hold; crate::validate), and each snapshot's
    // feed position, so a compaction drops the snapshots it outdates.
    r#"
CREATE TABLE record_flags (
    idempotency_key TEXT NOT NULL,
    flag            TEXT NOT NULL,
    PRIMARY KEY (idempotency_key, flag)
);
ALTER TABLE snapshots ADD COLUMN cursor_seq BIGINT;
"#,
    // 8: who a device's person is (the id permits name them by) and the permit roles they may
    // sign as: the signer directory (docs/adr/0014-who-may-sign-what.md).
    r#"
ALTER TABLE enrolment_codes ADD COLUMN person_id TEXT;
ALTER TABLE enrolment_codes ADD COLUMN permit_roles TEXT NOT NULL DEFAULT '[]';
ALTER TABLE devices ADD COLUMN person_id TEXT;
ALTER TABLE devices ADD COLUMN permit_roles TEXT NOT NULL DEFAULT '[]';
ALTER TABLE devices ADD COLUMN disabled_at_ms BIGINT;
"#,
    // 9: places, monitoring scopes and warnings (docs/adr/0017-warnings-and-scope.md).
    r#"
ALTER TABLE enrolment_codes ADD COLUMN scope TEXT;
ALTER TABLE devices ADD COLUMN scope TEXT;
CREATE TABLE sites (
    site_id      TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    district     TEXT NOT NULL,
    town         TEXT,
    grid         TEXT,
    latitude_e7  INTEGER NOT NULL,
    longitude_e7 INTEGER NOT NULL
);
CREATE TABLE places (
    subject      TEXT NOT NULL,
    id           TEXT NOT NULL,
    district     TEXT NOT NULL,
    town         TEXT,
    grid         TEXT,
    site_id      TEXT,
    latitude_e7  INTEGER,
    longitude_e7 INTEGER,
    watch        TEXT NOT NULL DEFAULT 'normal',
    PRIMARY KEY (subject, id)
);
CREATE TABLE machine_starts (
    idempotency_key TEXT PRIMARY KEY,
    machine_id      TEXT NOT NULL,
    at_ms           BIGINT NOT NULL,
    allowed         BOOLEAN NOT NULL,
    latitude_e7     INTEGER,
    longitude_e7    INTEGER,
    accuracy_m      BIGINT
);
CREATE INDEX machine_starts_by_machine ON machine_starts (machine_id, allowed, at_ms);
CREATE TABLE warnings (
    id                 BIGSERIAL PRIMARY KEY,
    dedup_key          TEXT NOT NULL UNIQUE,
    kind               TEXT NOT NULL,
    records            TEXT NOT NULL,
    machine_id         TEXT NOT NULL,
    certificate_no     TEXT,
    district           TEXT,
    town               TEXT,
    grid               TEXT,
    site_id            TEXT,
    at_ms              BIGINT NOT NULL,
    raised_at_ms       BIGINT NOT NULL,
    detail             TEXT NOT NULL,
    state              TEXT NOT NULL DEFAULT 'open',
    acknowledged_by    TEXT,
    acknowledged_at_ms BIGINT,
    closed_by          TEXT,
    closed_at_ms       BIGINT,
    close_note         TEXT
);
CREATE INDEX warnings_by_district ON warnings (district, id);
CREATE INDEX warnings_by_town ON warnings (town, id);
CREATE INDEX warnings_by_machine ON warnings (machine_id, kind, at_ms);
"#,
    // 10: per-day per-place counters, how each permit is counted, and the day's ledger
    // (crate::platform; docs/adr/0017-warnings-and-scope.md). Open warnings are counted from
    // the warnings already raised; starts, inspections and permits from here on.
    r#"
CREATE TABLE daily_counts (
    day      TEXT NOT NULL,
    district TEXT NOT NULL,
    town     TEXT NOT NULL,
    metric   TEXT NOT NULL,
    n        BIGINT NOT NULL,
    PRIMARY KEY (day, district, town, metric)
);
CREATE INDEX daily_counts_by_district ON daily_counts (district, day);
CREATE INDEX daily_counts_by_town ON daily_counts (town, day);
CREATE TABLE permit_counts (
    permit_id TEXT PRIMARY KEY,
    day       TEXT NOT NULL,
    district  TEXT NOT NULL,
    town      TEXT NOT NULL,
    state     TEXT NOT NULL
);
CREATE TABLE ledger (
    id              BIGSERIAL PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    day             TEXT NOT NULL,
    at_ms           BIGINT NOT NULL,
    kind            TEXT NOT NULL,
    district        TEXT NOT NULL,
    town            TEXT NOT NULL,
    site_id         TEXT,
    machine_id      TEXT,
    person          TEXT,
    decision        TEXT NOT NULL,
    detail          TEXT NOT NULL,
    latitude_e7     INTEGER,
    longitude_e7    INTEGER,
    accuracy_m      BIGINT
);
CREATE INDEX ledger_by_day ON ledger (day, id);
CREATE INDEX ledger_by_district ON ledger (district, day, id);
CREATE INDEX ledger_by_town ON ledger (town, day, id);
INSERT INTO daily_counts (day, district, town, metric, n)
SELECT to_char(to_timestamp((at_ms + 28800000) / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD'),
       coalesce(district, ''), coalesce(town, ''), 'warnings_open', count(*)
FROM warnings WHERE state = 'open' GROUP BY 1, 2, 3;
"#,
    // 11: the deadline queue (crate::deadlines; docs/adr/0017-warnings-and-scope.md): a row per
    // condition to check when it falls due, written in the push that made it, taken by a worker.
    r#"
CREATE TABLE deadlines (
    id         BIGSERIAL PRIMARY KEY,
    dedup_key  TEXT NOT NULL UNIQUE,
    kind       TEXT NOT NULL,
    due_at_ms  BIGINT NOT NULL,
    payload    TEXT NOT NULL
);
CREATE INDEX deadlines_by_due ON deadlines (due_at_ms, id);
"#,
    // 12: the dashboard's pages read a site's, a machine's and a welder's ledger rows newest
    // first (crate::platform_views), and the warning rules read a machine's starts from the
    // ledger (crate::warnings), which every push writes whether warnings are on or off; the
    // starts table of migration 9 duplicated those rows (docs/adr/0017-warnings-and-scope.md).
    r#"
DROP TABLE machine_starts;
CREATE INDEX ledger_by_machine ON ledger (machine_id, kind, at_ms, idempotency_key);
CREATE INDEX ledger_by_person ON ledger (person, kind, at_ms);
CREATE INDEX ledger_by_site ON ledger (site_id, kind, at_ms);
"#,
];

/// A small pool of blocking connections: at most [`MAX_OPEN`] open, idle ones reused, broken
/// ones dropped; a caller waits when all are busy.
struct Pool {
    config: Config,
    state: Mutex<PoolState>,
    freed: Condvar,
}

#[derive(Default)]
struct PoolState {
    idle: Vec<Conn>,
    /// Connections open, idle or lent out.
    open: usize,
}

/// One connection and the statements prepared on it (named statements live as long as the
/// session): a push's transaction prepares each of its statements once per connection instead of
/// once per record, which on PostgreSQL is a round trip each.
struct Conn {
    client: Client,
    statements: Statements,
}

/// Prepared statements by their SQL text.
type Statements = HashMap<String, Statement>;

/// A connection taken from the pool, given back on drop unless it broke.
struct Pooled<'a> {
    pool: &'a Pool,
    conn: Option<Conn>,
}

impl Pool {
    fn new(config: Config) -> Self {
        Pool {
            config,
            state: Mutex::new(PoolState::default()),
            freed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get(&self) -> Result<Pooled<'_>, DbError> {
        let mut state = self.lock();
        loop {
            if let Some(conn) = state.idle.pop() {
                if conn.client.is_closed() {
                    state.open = state.open.saturating_sub(1);
                    continue;
                }
                return Ok(Pooled {
                    pool: self,
                    conn: Some(conn),
                });
            }
            if state.open < MAX_OPEN {
                state.open += 1;
                drop(state);
                return match self.config.connect(NoTls) {
                    Ok(client) => Ok(Pooled {
                        pool: self,
                        conn: Some(Conn {
                            client,
                            statements: Statements::new(),
                        }),
                    }),
                    Err(e) => {
                        self.lock().open -= 1;
                        self.freed.notify_one();
                        Err(e.into())
                    }
                };
            }
            state = self.freed.wait(state).unwrap_or_else(|p| p.into_inner());
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Closing a blocking client drives its own small runtime; do it on a plain thread so a
        // pool dropped inside an async context cannot trip tokio's nested-runtime check.
        let clients = std::mem::take(&mut self.lock().idle);
        if !clients.is_empty() {
            let _ = std::thread::spawn(move || drop(clients)).join();
        }
    }
}

impl Pooled<'_> {
    fn client(&mut self) -> Result<&mut Client, DbError> {
        Ok(self.parts()?.0)
    }

    /// The client and the statements prepared on it.
    fn parts(&mut self) -> Result<(&mut Client, &mut Statements), DbError> {
        self.conn
            .as_mut()
            .map(|c| (&mut c.client, &mut c.statements))
            .ok_or_else(|| DbError::Invalid("pooled connection already returned".into()))
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            let mut state = self.pool.lock();
            if conn.client.is_closed() {
                state.open = state.open.saturating_sub(1);
            } else {
                state.idle.push(conn);
            }
            drop(state);
            self.pool.freed.notify_one();
        }
    }
}

/// The PostgreSQL store (see the module documentation).
pub struct PgDb {
    pool: Pool,
    epoch: String,
}

fn parse_role(role: &str) -> Result<Role, DbError> {
    Role::parse(role).ok_or_else(|| DbError::Invalid(format!("role {role:?}")))
}

impl PgDb {
    /// Connect, migrate (under [`MIGRATE_LOCK`]) and read or create the feed epoch.
    pub fn connect(url: &str) -> Result<Self, DbError> {
        let config: Config = url.parse()?;
        let pool = Pool::new(config);
        let epoch = {
            let mut conn = pool.get()?;
            migrate(conn.client()?)?
        };
        Ok(PgDb { pool, epoch })
    }
}

impl Store for PgDb {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn issuer_keys(&self) -> Result<Vec<StoredIssuerKey>, DbError> {
        let mut conn = self.pool.get()?;
        let rows = conn.client()?.query(
            "SELECT kid, key_json, valid_from_ms, valid_until_ms FROM issuer_keys \
             ORDER BY created_at_ms, kid",
            &[],
        )?;
        rows.iter()
            .map(|r| {
                Ok(StoredIssuerKey {
                    kid: r.try_get(0)?,
                    key_json: r.try_get(1)?,
                    valid_from_ms: r.try_get(2)?,
                    valid_until_ms: r.try_get(3)?,
                })
            })
            .collect()
    }

    fn install_issuer_key(
        &self,
        new: &StoredIssuerKey,
        now_ms: i64,
        only_if_none: bool,
    ) -> Result<bool, DbError> {
        let mut conn = self.pool.get()?;
        let mut tx = conn.client()?.transaction()?;
        // Two servers starting together, or two rotations at once, must leave one signing key.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&KEYS_LOCK])?;
        let active: i64 = tx
            .query_one(
                "SELECT count(*) FROM issuer_keys WHERE valid_until_ms IS NULL",
                &[],
            )?
            .try_get(0)?;
        if only_if_none && active > 0 {
            return Ok(false);
        }
        tx.execute(
            "UPDATE issuer_keys SET valid_until_ms = $1 WHERE valid_until_ms IS NULL",
            &[&now_ms],
        )?;
        tx.execute(
            "INSERT INTO issuer_keys (kid, key_json, valid_from_ms, valid_until_ms, created_at_ms) \
             VALUES ($1, $2, $3, NULL, $3)",
            &[&new.kid, &new.key_json, &now_ms],
        )?;
        tx.commit()?;
        Ok(true)
    }

    fn bootstrap_admin(&self, token: Option<&str>) -> Result<Option<String>, DbError> {
        let mut conn = self.pool.get()?;
        let mut tx = conn.client()?.transaction()?;
        // Two servers starting together must not both mint a first admin.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATE_LOCK])?;
        let has_admin = tx
            .query_opt(
                "SELECT 1 FROM devices WHERE role = 'admin' AND NOT disabled LIMIT 1",
                &[],
            )?
            .is_some();
        let (token, fresh) = match token {
            Some(t) => (t.to_owned(), false),
            None if has_admin => return Ok(None),
            None => (random_hex(32)?, true),
        };
        tx.execute(
            "INSERT INTO devices \
             (device_id, token_hash, person, role, public_key, device_name, created_at_ms) \
             VALUES ($1, $2, 'bootstrap', 'admin', '', 'bootstrap', $3) \
             ON CONFLICT (device_id) DO UPDATE SET token_hash = EXCLUDED.token_hash, disabled = FALSE",
            &[&BOOTSTRAP_DEVICE, &hash(&token), &now_ms()],
        )?;
        tx.commit()?;
        Ok(fresh.then_some(token))
    }

    fn check_token(&self, token: &str, now_ms: i64) -> Result<TokenCheck, DbError> {
        let digest = hash(token);
        let mut conn = self.pool.get()?;
        let client = conn.client()?;
        let row = client.query_opt(
            "SELECT device_id, person, role, token_expires_at_ms, coalesce(person_id, person) \
             FROM devices WHERE token_hash = $1 AND NOT disabled",
            &[&digest],
        )?;
        let Some(row) = row else {
            let retired = client
                .query_opt(
                    "SELECT 1 FROM devices WHERE retired_token_hash = $1 AND NOT disabled LIMIT 1",
                    &[&digest],
                )?
                .is_some();
            return Ok(if retired {
                TokenCheck::Expired
            } else {
                TokenCheck::Unknown
            });
        };
        let expires: Option<i64> = row.try_get(3)?;
        if expires.is_some_and(|e| e <= now_ms) {
            return Ok(TokenCheck::Expired);
        }
        let role: String = row.try_get(2)?;
        Ok(TokenCheck::Valid(Caller {
            device_id: row.try_get(0)?,
            person: row.try_get(1)?,
            person_id: row.try_get(4)?,
            role: parse_role(&role)?,
        }))
    }

    fn create_auth_nonce(
        &self,
        device_id: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<(String, i64), DbError> {
        let nonce = random_hex(32)?;
        let expires = now_ms.saturating_add(ttl_ms);
        let mut conn = self.pool.get()?;
        let mut tx = conn.client()?.transaction()?;
        let disabled: Option<bool> = tx
            .query_opt(
                "SELECT disabled FROM devices WHERE device_id = $1",
                &[&device_id],
            )?
            .map(|r| r.try_get(0))
            .transpose()?;
        match disabled {
            None => return Err(DbError::Refresh(RefreshRefusal::UnknownDevice)),
            Some(true) => return Err(DbError::Refresh(RefreshRefusal::DeviceDisabled)),
            Some(false) => {}
        }
        tx.execute(
            "DELETE FROM auth_nonces WHERE expires_at_ms <= $1",
            &[&now_ms],
        )?;
        tx.execute(
            "DELETE FROM auth_nonces WHERE device_id = $1 AND nonce_hash NOT IN \
             (SELECT nonce_hash FROM auth_nonces WHERE device_id = $1 \
              ORDER BY expires_at_ms DESC LIMIT $2)",
            &[&device_id, &(MAX_NONCES_PER_DEVICE - 1)],
        )?;
        tx.execute(
            "INSERT INTO auth_nonces (nonce_hash, device_id, expires_at_ms) VALUES ($1, $2, $3)",
            &[&hash(&nonce), &device_id, &expires],
        )?;
        tx.commit()?;
        Ok((nonce, expires))
    }

    fn refresh_token(
        &self,
        device_id: &str,
        nonce: &str,
        signature_hex: &str,
        now_ms: i64,
        expires_at_ms: Option<i64>,
    ) -> Result<IssuedToken, DbError> {
        let token = random_hex(32)?;
        let mut conn = self.pool.get()?;
        let mut tx = conn.client()?.transaction()?;
        // Consume the nonce in one statement: of two servers racing with it, the second waits for
        // the first to commit and then finds nothing (or, if the first was refused and rolled
        // back, the nonce). A refusal below rolls this back (dropping `tx`).
        let nonce_expires: i64 = tx
            .query_opt(
                "DELETE FROM auth_nonces WHERE nonce_hash = $1 AND device_id = $2 \
                 RETURNING expires_at_ms",
                &[&hash(nonce), &device_id],
            )?
            .ok_or(DbError::Refresh(RefreshRefusal::BadNonce))?
            .try_get(0)?;
        if nonce_expires <= now_ms {
            tx.commit()?;
            return Err(DbError::Refresh(RefreshRefusal::NonceExpired));
        }
        let device = tx
            .query_opt(
                "SELECT public_key, disabled FROM devices WHERE device_id = $1 FOR UPDATE",
                &[&device_id],
            )?
            .ok_or(DbError::Refresh(RefreshRefusal::UnknownDevice))?;
        let public_key: String = device.try_get(0)?;
        let disabled: bool = device.try_get(1)?;
        if disabled {
            return Err(DbError::Refresh(RefreshRefusal::DeviceDisabled));
        }
        if !refresh_signature_ok(&public_key, device_id, nonce, signature_hex) {
            return Err(DbError::Refresh(RefreshRefusal::BadSignature));
        }
        tx.execute(
            "UPDATE devices SET retired_token_hash = token_hash, token_hash = $2, \
             token_expires_at_ms = $3 WHERE device_id = $1",
            &[&device_id, &hash(&token), &expires_at_ms],
        )?;
        tx.commit()?;
        Ok(IssuedToken {
            token,
            expires_at_ms,
        })
    }

    /// Disable a device and drop its pending refresh nonces; `false` when there is no such device.
    fn disable_device(&self, device_id: &str) -> Result<bool, DbError> {
        let mut conn = self.pool.get()?;
        let mut tx = conn.client()?.transaction()?;
        let changed = tx.execute(
            "UPDATE devices SET disabled = TRUE, disabled_at_ms = coalesce(disabled_at_ms, $2) \
             WHERE device_id = $1",
            &[&device_id, &now_ms()],
        )?;
        tx.execute(
            "DELETE FROM auth_nonces WHERE device_id = $1",
            &[&device_id],
        )?;
        tx.commit()?;
        Ok(changed > 0)
    }

    fn create_enrolment(&self, grant: &Grant) -> Result<String, DbError> {
        let code = random_hex(10)?.to_uppercase();
        let mut conn = self.pool.get()?;
        conn.client()?.execute(
            "INSERT INTO enrolment_codes (code_hash, person, role, created_at_ms, person_id, \
             permit_roles, scope) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &hash(&code),
                &grant.person,
                &grant.role.as_str(),
                &now_ms(),
                &grant.person_id,
                &roles_json(&grant.permit_roles)?,
                &grant.scope,
            ],
        )?;
        Ok(code)
    }

    fn enrol_expiring(
        &self,
        code: &str,
        public_key: &str,
        device_name: &str,
        expires_at_ms: Option<i64>,
    ) -> Result<(String, Caller), DbError> {
        let token = random_hex(32)?;
        let device_id = random_hex(8)?;
        let mut conn = self.pool.get()?;
        let mut tx = conn.client()?.transaction()?;
        // Claim the code in one statement: of two servers racing with the same code, one wins.
        let row = tx.query_opt(
            "UPDATE enrolment_codes SET used_by = $2 WHERE code_hash = $1 AND used_by IS NULL \
             RETURNING person, role, person_id, permit_roles, scope",
            &[&hash(code.trim()), &device_id],
        )?;
        let row = row.ok_or(DbError::BadEnrolmentCode)?;
        let person: String = row.try_get(0)?;
        let role = parse_role(&row.try_get::<_, String>(1)?)?;
        let person_id: Option<String> = row.try_get(2)?;
        let permit_roles: String = row.try_get(3)?;
        let scope: Option<String> = row.try_get(4)?;
        tx.execute(
            "INSERT INTO devices (device_id, token_hash, person, role, public_key, device_name, \
             created_at_ms, token_expires_at_ms, person_id, permit_roles, scope) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            &[
                &device_id,
                &hash(&token),
                &person,
                &role.as_str(),
                &public_key,
                &device_name,
                &now_ms(),
                &expires_at_ms,
                &person_id,
                &permit_roles,
                &scope,
            ],
        )?;
        tx.commit()?;
        Ok((
            token,
            Caller {
                device_id,
                person_id: person_id.unwrap_or_else(|| person.clone()),
                person,
                role,
            },
        ))
    }

    fn insert_plain_records(
        &self,
        device_id: &str,
        items: &[(&str, &str, &str)],
        on_applied: &mut OnApplied<'_>,
    ) -> Result<Vec<Insert>, DbError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let at = now_ms();
        let digests: Vec<Vec<u8>> = items.iter().map(|(_, _, p)| hash(p)).collect();
        // Insert in key order: two batches sharing keys then lock them in the same order and
        // cannot deadlock each other. Items are indexes into `items`.
        let mut order: Vec<usize> = (0..items.len()).collect();
        order.sort_by(|&a, &b| items.get(a).map(|i| i.0).cmp(&items.get(b).map(|i| i.0)));
        let mut keys = Vec::with_capacity(items.len());
        let mut kinds = Vec::with_capacity(items.len());
        let mut payloads = Vec::with_capacity(items.len());
        let mut hashes = Vec::with_capacity(items.len());
        for &i in &order {
            if let (Some((k, kind, p)), Some(d)) = (items.get(i), digests.get(i)) {
                keys.push(*k);
                kinds.push(*kind);
                payloads.push(*p);
                hashes.push(d.as_slice());
            }
        }
        let mut conn = self.pool.get()?;
        let (client, statements) = conn.parts()?;
        let mut tx = client.transaction()?;
        // ON CONFLICT DO NOTHING waits for a concurrent inserter of the same key (another server)
        // to finish, so a key is applied by exactly one transaction.
        let inserted: HashSet<String> = tx
            .query(
                "INSERT INTO records (idempotency_key, kind, payload, payload_hash, device_id, received_at_ms) \
                 SELECT k, t, p, h, $5, $6 FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[]) \
                 WITH ORDINALITY AS u(k, t, p, h, n) ORDER BY n \
                 ON CONFLICT (idempotency_key) DO NOTHING RETURNING idempotency_key",
                &[&keys, &kinds, &payloads, &hashes, &device_id, &at],
            )?
            .iter()
            .map(|r| r.try_get::<_, String>(0))
            .collect::<Result<_, _>>()?;
        let stored: HashMap<String, Vec<u8>> = tx
            .query(
                "SELECT idempotency_key, payload_hash FROM records WHERE idempotency_key = ANY($1)",
                &[&keys],
            )?
            .iter()
            .map(|r| Ok((r.try_get::<_, String>(0)?, r.try_get::<_, Vec<u8>>(1)?)))
            .collect::<Result<_, postgres::Error>>()?;
        // The first item under each inserted key is the one applied (a key twice in one batch:
        // the second is its duplicate).
        let mut claimed: HashSet<&str> = HashSet::new();
        let mut out = Vec::with_capacity(items.len());
        let mut push_tx = PgTx::new(&mut tx, statements);
        for ((key, kind, payload), digest) in items.iter().zip(&digests) {
            let verdict = if inserted.contains(*key) && claimed.insert(key) {
                let record = AppliedRecord {
                    key,
                    kind,
                    payload,
                    device_id,
                    at_ms: at,
                };
                on_applied(&mut push_tx, &record)?;
                Insert::Applied
            } else {
                match stored.get(*key) {
                    Some(h) if h == digest => Insert::Duplicate,
                    Some(_) => Insert::Conflict,
                    None => {
                        return Err(DbError::Invalid(format!(
                            "record {key:?} neither inserted nor found"
                        )));
                    }
                }
            };
            out.push(verdict);
        }
        push_tx.write_counts()?;
        tx.commit()?;
        Ok(out)
    }

    /// The flags stored with the record under `key`, sorted.
    fn record_flags(&self, key: &str) -> Result<Vec<String>, DbError> {
        let mut conn = self.pool.get()?;
        conn.client()?
            .query(
                "SELECT flag FROM record_flags WHERE idempotency_key = $1 ORDER BY flag",
                &[&key],
            )?
            .iter()
            .map(|r| Ok(r.try_get(0)?))
            .collect()
    }

    fn records(&self, kind: Option<&str>) -> Result<Vec<StoredRecord>, DbError> {
        let mut conn = self.pool.get()?;
        let rows = conn.client()?.query(
            "SELECT idempotency_key, kind, payload, device_id, received_at_ms FROM records \
             WHERE $1::text IS NULL OR kind = $1 ORDER BY arrival",
            &[&kind],
        )?;
        rows.iter()
            .map(|r| {
                Ok(StoredRecord {
                    idempotency_key: r.try_get(0)?,
                    kind: r.try_get(1)?,
                    payload: r.try_get(2)?,
                    device_id: r.try_get(3)?,
                    received_at_ms: r.try_get(4)?,
                })
            })
            .collect()
    }

    fn records_page(
        &self,
        kind: Option<&str>,
        after: i64,
        limit: u32,
    ) -> Result<super::RecordPage, DbError> {
        let mut conn = self.pool.get()?;
        let rows = conn.client()?.query(
            "SELECT arrival, idempotency_key, kind, payload, device_id, received_at_ms FROM records \
             WHERE ($1::text IS NULL OR kind = $1) AND arrival > $2 ORDER BY arrival LIMIT $3",
            &[&kind, &after, &(i64::from(limit) + 1)],
        )?;
        let mut rows = rows
            .iter()
            .map(|r| {
                Ok((
                    r.try_get::<_, i64>(0)?,
                    StoredRecord {
                        idempotency_key: r.try_get(1)?,
                        kind: r.try_get(2)?,
                        payload: r.try_get(3)?,
                        device_id: r.try_get(4)?,
                        received_at_ms: r.try_get(5)?,
                    },
                ))
            })
            .collect::<Result<Vec<_>, DbError>>()?;
        Ok(super::record_page(&mut rows, limit))
    }

    fn write_changes_queueing(
        &self,
        changes: &[RegistryChange],
        deadlines: &[NewDeadline],
    ) -> Result<i64, DbError> {
        let mut entities = Vec::with_capacity(changes.len());
        let mut jsons = Vec::with_capacity(changes.len());
        for change in changes {
            entities.push(entity_of(change));
            jsons.push(change_json(change)?);
        }
        let mut conn = self.pool.get()?;
        let mut tx = conn.client()?.transaction()?;
        // Seq order = commit order: no other writer draws seqs until this one committed.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&FEED_LOCK])?;
        tx.execute(
            "INSERT INTO changes (seq, entity, change) \
             SELECT nextval('changes_seq'), e, c FROM unnest($1::text[], $2::text[]) \
             WITH ORDINALITY AS u(e, c, n) ORDER BY n",
            &[&entities, &jsons],
        )?;
        if !deadlines.is_empty() {
            let (keys, kinds, at, payloads) = deadline_columns(deadlines);
            tx.execute(QUEUE_DEADLINES, &[&keys, &kinds, &at, &payloads])?;
        }
        let last = high_water(&mut tx)?;
        tx.commit()?;
        Ok(last)
    }

    fn compact(&self, through: Option<i64>) -> Result<i64, DbError> {
        let mut conn = self.pool.get()?;
        let mut tx = conn.client()?.transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&FEED_LOCK])?;
        let top = high_water(&mut tx)?;
        let floor_now = floor(&mut tx)?;
        let through = through.unwrap_or(top).clamp(floor_now, top);
        tx.execute(
            "DELETE FROM changes c WHERE c.seq <= $1 AND EXISTS \
             (SELECT 1 FROM changes later WHERE later.entity = c.entity AND later.seq > c.seq)",
            &[&through],
        )?;
        let rows: Vec<(i64, String)> = tx
            .query(
                "SELECT seq, change FROM changes WHERE seq <= $1",
                &[&through],
            )?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<_, postgres::Error>>()?;
        let dead = tombstone_seqs(rows);
        tx.execute("DELETE FROM changes WHERE seq = ANY($1)", &[&dead])?;
        tx.execute(
            "INSERT INTO server_meta (key, value) VALUES ('history_floor', $1) \
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            &[&through.to_string()],
        )?;
        // The snapshots cut before the new floor would send devices to a cursor the feed no
        // longer serves: gone with the history, in this transaction (chunks cascade).
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SNAPSHOTS_LOCK])?;
        tx.execute(
            "DELETE FROM snapshots WHERE cursor_seq IS NULL OR cursor_seq < $1",
            &[&through],
        )?;
        tx.commit()?;
        Ok(through)
    }

    fn pull(&self, cursor: Option<&str>, limit: u32) -> Result<Page, DbError> {
        let mut conn = self.pool.get()?;
        // One snapshot for the floor, the high water and the rows.
        let mut tx = conn
            .client()?
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()?;
        let floor = floor(&mut tx)?;
        let top = high_water(&mut tx)?;
        let after = parse_cursor(cursor, &self.epoch, floor, top)?;
        let rows: Vec<(i64, String)> = tx
            .query(
                "SELECT seq, change FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2",
                &[&after, &(i64::from(limit) + 1)],
            )?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<_, postgres::Error>>()?;
        tx.commit()?;
        Ok(make_page(&self.epoch, after, top, rows, limit))
    }

    /// Place one permit step in one transaction under [`PERMITS_LOCK`].
    fn push_permit_step(
        &self,
        device_id: &str,
        key: &str,
        payload: &str,
        admit: &dyn AdmitStep,
        on_applied: &mut OnApplied<'_>,
    ) -> Result<Insert, DbError> {
        let at = now_ms();
        let mut conn = self.pool.get()?;
        let (client, statements) = conn.parts()?;
        let mut tx = client.transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&PERMITS_LOCK])?;
        let result = {
            let mut ledger = PgTx::new(&mut tx, statements);
            let result =
                crate::permits::push_step(&mut ledger, device_id, key, payload, at, admit)?;
            if result == Insert::Applied {
                let record = AppliedRecord {
                    key,
                    kind: PERMIT_STEP_KIND,
                    payload,
                    device_id,
                    at_ms: at,
                };
                on_applied(&mut ledger, &record)?;
                ledger.write_counts()?;
            }
            result
        };
        tx.commit()?;
        Ok(result)
    }

    /// Every device whose person may sign permits, disabled ones included (their validity ends).
    fn signer_rows(&self) -> Result<Vec<SignerRow>, DbError> {
        let mut conn = self.pool.get()?;
        let rows = conn.client()?.query(
            "SELECT device_id, public_key, coalesce(person_id, person), person, permit_roles, \
             created_at_ms, CASE WHEN disabled THEN coalesce(disabled_at_ms, 0) ELSE NULL END \
             FROM devices WHERE permit_roles <> '[]' ORDER BY device_id",
            &[],
        )?;
        rows.iter()
            .map(|r| {
                Ok(SignerRow {
                    device_id: r.try_get(0)?,
                    public_key_hex: r.try_get(1)?,
                    person_id: r.try_get(2)?,
                    name: r.try_get(3)?,
                    permit_roles_json: r.try_get(4)?,
                    enrolled_at_ms: r.try_get(5)?,
                    disabled_at_ms: r.try_get(6)?,
                })
            })
            .collect()
    }

    fn permit_heads(
        &self,
        cursor: Option<&str>,
        limit: u32,
        person: Option<&str>,
    ) -> Result<PermitPage, DbError> {
        let mut conn = self.pool.get()?;
        let mut tx = conn
            .client()?
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()?;
        let top: i64 = tx
            .query_one(
                "SELECT coalesce(max(seq), 0)::bigint FROM permit_heads",
                &[],
            )?
            .try_get(0)?;
        let after = parse_cursor(cursor, &self.epoch, 0, top)?;
        let rows = tx
            .query(
                "SELECT permit_id, step_id, action, state, digest, body, seq FROM permit_heads h \
                 WHERE seq > $1 AND ($3::text IS NULL OR EXISTS (SELECT 1 FROM permit_people p \
                 WHERE p.person = $3 AND p.permit_id = h.permit_id)) ORDER BY seq LIMIT $2",
                &[&after, &(i64::from(limit) + 1), &person],
            )?
            .iter()
            .map(|r| {
                Ok(HeadEntry {
                    permit_id: r.try_get(0)?,
                    step_id: r.try_get(1)?,
                    action: r.try_get(2)?,
                    state: r.try_get(3)?,
                    digest: r.try_get(4)?,
                    body: r.try_get(5)?,
                    seq: r.try_get(6)?,
                })
            })
            .collect::<Result<Vec<_>, postgres::Error>>()?;
        tx.commit()?;
        Ok(make_permit_page(&self.epoch, after, top, rows, limit))
    }

    fn permit_step_standings(&self, permit_id: &str) -> Result<Vec<PermitStepStanding>, DbError> {
        let mut conn = self.pool.get()?;
        let rows = conn.client()?.query(
            "SELECT step_id, base_step, action, status, reason FROM permit_steps \
             WHERE permit_id = $1 ORDER BY arrival",
            &[&permit_id],
        )?;
        rows.iter()
            .map(|r| {
                Ok(PermitStepStanding {
                    step_id: r.try_get(0)?,
                    base: r.try_get(1)?,
                    action: r.try_get(2)?,
                    status: r.try_get(3)?,
                    reason: r.try_get(4)?,
                })
            })
            .collect()
    }

    // Published snapshots, shared by every server process on the database.

    fn save_snapshot(&self, snapshot: &StoredSnapshot, keep: u32) -> Result<bool, DbError> {
        let mut conn = self.pool.get()?;
        let mut tx = conn.client()?.transaction()?;
        // Serialised with compaction: a snapshot older than the floor is not published.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SNAPSHOTS_LOCK])?;
        if snapshot.cursor_seq < floor(&mut tx)? {
            return Ok(false);
        }
        let chunks = snapshot.chunks_gzip.len() as i64;
        // Two processes cutting at the same cursor name the snapshot alike: the first one stores it.
        let inserted = tx.execute(
            "INSERT INTO snapshots (snapshot_id, manifest, made_at_ms, chunks, cursor_seq) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (snapshot_id) DO NOTHING",
            &[
                &snapshot.snapshot_id,
                &snapshot.manifest,
                &snapshot.made_at_ms,
                &chunks,
                &snapshot.cursor_seq,
            ],
        )?;
        if inserted == 1 {
            let insert = tx.prepare(
                "INSERT INTO snapshot_chunks (snapshot_id, idx, body_gzip) VALUES ($1, $2, $3)",
            )?;
            for (idx, body) in snapshot.chunks_gzip.iter().enumerate() {
                tx.execute(&insert, &[&snapshot.snapshot_id, &(idx as i64), body])?;
            }
        }
        let keep = i64::from(keep);
        tx.execute(
            "DELETE FROM snapshots WHERE snapshot_id IN (SELECT snapshot_id FROM snapshots \
             ORDER BY made_at_ms DESC, snapshot_id OFFSET $1)",
            &[&keep],
        )?;
        tx.commit()?;
        Ok(true)
    }

    fn latest_snapshot(&self) -> Result<Option<SnapshotHead>, DbError> {
        let mut conn = self.pool.get()?;
        let row = conn.client()?.query_opt(
            "SELECT snapshot_id, manifest, made_at_ms, chunks FROM snapshots \
             ORDER BY made_at_ms DESC, snapshot_id LIMIT 1",
            &[],
        )?;
        row.map(|r| {
            Ok(SnapshotHead {
                snapshot_id: r.try_get(0)?,
                manifest: r.try_get(1)?,
                made_at_ms: r.try_get(2)?,
                chunks: r.try_get(3)?,
            })
        })
        .transpose()
    }

    fn snapshot_chunk(&self, snapshot_id: &str, idx: i64) -> Result<Option<Vec<u8>>, DbError> {
        let mut conn = self.pool.get()?;
        let row = conn.client()?.query_opt(
            "SELECT body_gzip FROM snapshot_chunks WHERE snapshot_id = $1 AND idx = $2",
            &[&snapshot_id, &idx],
        )?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    fn write_places(&self, changes: &[PlaceChange]) -> Result<(), DbError> {
        let mut conn = self.pool.get()?;
        let mut tx = conn.client()?.transaction()?;
        for change in changes {
            match change {
                PlaceChange::UpsertSite(site) => {
                    tx.execute(
                        "INSERT INTO sites (site_id, name, district, town, grid, latitude_e7, \
                         longitude_e7) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                         ON CONFLICT (site_id) DO UPDATE SET name = excluded.name, \
                         district = excluded.district, town = excluded.town, \
                         grid = excluded.grid, latitude_e7 = excluded.latitude_e7, \
                         longitude_e7 = excluded.longitude_e7",
                        &[
                            &site.site_id,
                            &site.name,
                            &site.place.district,
                            &site.place.town,
                            &site.place.grid,
                            &site.location.latitude_e7,
                            &site.location.longitude_e7,
                        ],
                    )?;
                }
                PlaceChange::DeleteSite { site_id } => {
                    tx.execute("DELETE FROM sites WHERE site_id = $1", &[site_id])?;
                }
                PlaceChange::PlaceMachine(m) => {
                    upsert_place(
                        &mut tx,
                        "machine",
                        &m.machine_id,
                        &m.place,
                        m.site_id.as_deref(),
                        m.location,
                        m.watch.as_str(),
                    )?;
                }
                PlaceChange::UnplaceMachine { machine_id } => {
                    tx.execute(
                        "DELETE FROM places WHERE subject = 'machine' AND id = $1",
                        &[machine_id],
                    )?;
                }
                PlaceChange::PlaceLicence(l) => {
                    upsert_place(
                        &mut tx,
                        "licence",
                        &l.certificate_no,
                        &l.place,
                        None,
                        None,
                        "normal",
                    )?;
                }
                PlaceChange::UnplaceLicence { certificate_no } => {
                    tx.execute(
                        "DELETE FROM places WHERE subject = 'licence' AND id = $1",
                        &[certificate_no],
                    )?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn device_scope(&self, device_id: &str) -> Result<Option<String>, DbError> {
        let mut conn = self.pool.get()?;
        let row = conn.client()?.query_opt(
            "SELECT scope FROM devices WHERE device_id = $1",
            &[&device_id],
        )?;
        Ok(row
            .map(|r| r.try_get::<_, Option<String>>(0))
            .transpose()?
            .flatten())
    }

    fn warnings_page(&self, query: &WarningQuery) -> Result<Vec<WarningRow>, DbError> {
        let (tail, values) = query.page_sql(|n| format!("${n}"));
        let params: Vec<Box<dyn postgres::types::ToSql + Sync>> = values
            .into_iter()
            .map(|v| -> Box<dyn postgres::types::ToSql + Sync> {
                match v {
                    SqlValue::Text(t) => Box::new(t),
                    SqlValue::Int(i) => Box::new(i),
                }
            })
            .collect();
        let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
            params.iter().map(|p| p.as_ref()).collect();
        let mut conn = self.pool.get()?;
        let rows = conn.client()?.query(
            &format!("SELECT {WARNING_COLUMNS} FROM warnings {tail}"),
            &refs,
        )?;
        rows.iter().map(warning_row).collect()
    }

    fn warning(&self, id: i64) -> Result<Option<WarningRow>, DbError> {
        let mut conn = self.pool.get()?;
        let row = conn.client()?.query_opt(
            &format!("SELECT {WARNING_COLUMNS} FROM warnings WHERE id = $1"),
            &[&id],
        )?;
        row.as_ref().map(warning_row).transpose()
    }

    fn move_warning(
        &self,
        id: i64,
        from: WarningState,
        to: WarningState,
        by: &str,
        at_ms: i64,
        note: Option<&str>,
    ) -> Result<bool, DbError> {
        let sql = match to {
            WarningState::Closed => {
                "UPDATE warnings SET state = $3, closed_by = $4, closed_at_ms = $5, \
                 close_note = $6 WHERE id = $1 AND state = $2"
            }
            _ => {
                "UPDATE warnings SET state = $3, acknowledged_by = $4, acknowledged_at_ms = $5 \
                 WHERE id = $1 AND state = $2 AND $6::text IS NULL"
            }
        };
        let mut conn = self.pool.get()?;
        let (client, statements) = conn.parts()?;
        let mut tx = client.transaction()?;
        let n = tx.execute(
            sql,
            &[&id, &from.as_str(), &to.as_str(), &by, &at_ms, &note],
        )?;
        if n == 1 && from == WarningState::Open {
            let row = tx.query_one(
                "SELECT at_ms, coalesce(district, ''), coalesce(town, '') FROM warnings \
                 WHERE id = $1",
                &[&id],
            )?;
            let (at, district, town): (i64, String, String) =
                (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
            let mut counts = PgTx::new(&mut tx, statements);
            counts.count(&china_day(at), &district, &town, WARNINGS_OPEN, -1)?;
            counts.write_counts()?;
        }
        tx.commit()?;
        Ok(n == 1)
    }

    fn warnings_after(
        &self,
        scope: &Scope,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<WarningRow>, DbError> {
        let (district, town) = scope_filter(scope);
        let (sql, value) = match (district, town) {
            (Some(d), _) => ("district = $3", Some(d)),
            (_, Some(t)) => ("town = $3", Some(t)),
            _ => ("$3::text IS NULL", None),
        };
        let mut conn = self.pool.get()?;
        let rows = conn.client()?.query(
            &format!(
                "SELECT {WARNING_COLUMNS} FROM warnings WHERE {sql} AND id > $1 \
                 ORDER BY id LIMIT $2"
            ),
            &[&after_id, &i64::from(limit), &value],
        )?;
        rows.iter().map(warning_row).collect()
    }

    fn last_warning_id(&self) -> Result<i64, DbError> {
        let mut conn = self.pool.get()?;
        let row = conn
            .client()?
            .query_one("SELECT coalesce(max(id), 0)::bigint FROM warnings", &[])?;
        Ok(row.try_get(0)?)
    }

    fn counts(
        &self,
        scope: &Scope,
        from_day: &str,
        until_day: &str,
    ) -> Result<Vec<CountRow>, DbError> {
        let (district, town) = scope_filter(scope);
        let (filter, value) = match (district, town) {
            (Some(d), _) => ("district = $3", Some(d)),
            (_, Some(t)) => ("town = $3", Some(t)),
            _ => ("$3::text IS NULL", None),
        };
        let mut conn = self.pool.get()?;
        let rows = conn.client()?.query(
            &format!(
                "SELECT day, district, town, metric, n FROM daily_counts \
                 WHERE {filter} AND day BETWEEN $1 AND $2"
            ),
            &[&from_day, &until_day, &value],
        )?;
        rows.iter()
            .map(|r| {
                Ok(CountRow {
                    day: r.try_get(0)?,
                    district: r.try_get(1)?,
                    town: r.try_get(2)?,
                    metric: r.try_get(3)?,
                    n: r.try_get(4)?,
                })
            })
            .collect()
    }

    fn run_due(&self, now_ms: i64, limit: u32, on_due: &mut OnDue<'_>) -> Result<usize, DbError> {
        let mut conn = self.pool.get()?;
        let (client, statements) = conn.parts()?;
        let mut tx = client.transaction()?;
        // SKIP LOCKED: rows another process took are passed over, not waited for, so each row
        // is handled by exactly one transaction (the one that deletes it).
        let rows = tx
            .query(
                "SELECT id, dedup_key, kind, due_at_ms, payload FROM deadlines \
                 WHERE due_at_ms <= $1 ORDER BY due_at_ms, id LIMIT $2 FOR UPDATE SKIP LOCKED",
                &[&now_ms, &i64::from(limit)],
            )?
            .iter()
            .map(|r| {
                Ok(DueRow {
                    id: r.try_get(0)?,
                    dedup_key: r.try_get(1)?,
                    kind: r.try_get(2)?,
                    due_at_ms: r.try_get(3)?,
                    payload: r.try_get(4)?,
                })
            })
            .collect::<Result<Vec<_>, postgres::Error>>()?;
        if rows.is_empty() {
            return Ok(0);
        }
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        {
            let mut due_tx = PgTx::new(&mut tx, statements);
            on_due(&mut due_tx, &rows)?;
            due_tx.write_counts()?;
        }
        tx.execute("DELETE FROM deadlines WHERE id = ANY($1)", &[&ids])?;
        tx.commit()?;
        Ok(rows.len())
    }

    fn deadlines_queued(&self) -> Result<i64, DbError> {
        let mut conn = self.pool.get()?;
        Ok(conn
            .client()?
            .query_one("SELECT count(*) FROM deadlines", &[])?
            .try_get(0)?)
    }

    fn ledger_page(
        &self,
        day: &str,
        scope: &Scope,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<LedgerRow>, DbError> {
        let (district, town) = scope_filter(scope);
        let (filter, value) = match (district, town) {
            (Some(d), _) => ("district = $4", Some(d)),
            (_, Some(t)) => ("town = $4", Some(t)),
            _ => ("$4::text IS NULL", None),
        };
        let mut conn = self.pool.get()?;
        let rows = conn.client()?.query(
            &format!(
                "SELECT id, idempotency_key, day, at_ms, kind, district, town, site_id, \
                 machine_id, person, decision, detail, latitude_e7, longitude_e7, accuracy_m \
                 FROM ledger WHERE {filter} AND day = $1 AND id > $2 ORDER BY id LIMIT $3"
            ),
            &[&day, &after_id, &i64::from(limit), &value],
        )?;
        rows.iter()
            .map(|r| {
                let lat: Option<i32> = r.try_get(12)?;
                let lon: Option<i32> = r.try_get(13)?;
                let acc: Option<i64> = r.try_get(14)?;
                Ok(LedgerRow {
                    id: r.try_get(0)?,
                    key: r.try_get(1)?,
                    day: r.try_get(2)?,
                    at_ms: r.try_get(3)?,
                    kind: r.try_get(4)?,
                    district: r.try_get(5)?,
                    town: r.try_get(6)?,
                    site_id: r.try_get(7)?,
                    machine_id: r.try_get(8)?,
                    person: r.try_get(9)?,
                    decision: r.try_get(10)?,
                    detail: r.try_get(11)?,
                    position: match (lat, lon, acc) {
                        (Some(a), Some(b), Some(c)) => {
                            Some((a, b, u32::try_from(c).unwrap_or(u32::MAX)))
                        }
                        _ => None,
                    },
                })
            })
            .collect()
    }

    // The dashboard's pages (crate::platform_views).

    fn view_sites(&self, scope: &Scope, site_id: Option<&str>) -> Result<Vec<SiteRow>, DbError> {
        let (district, town) = scope_filter(scope);
        let mut conn = self.pool.get()?;
        let client = conn.client()?;
        let mut sites = client
            .query(
                "SELECT s.site_id, s.name, s.district, s.town, s.grid, s.latitude_e7, \
                 s.longitude_e7, (SELECT count(*) FROM places p WHERE p.subject = 'machine' \
                 AND p.site_id = s.site_id AND ($1::text IS NULL OR p.district = $1) \
                 AND ($2::text IS NULL OR p.town = $2)) \
                 FROM sites s WHERE ($1::text IS NULL OR s.district = $1) \
                 AND ($2::text IS NULL OR s.town = $2) AND ($3::text IS NULL OR s.site_id = $3) \
                 ORDER BY s.site_id LIMIT $4",
                &[&district, &town, &site_id, &i64::from(MAX_SITES)],
            )?
            .iter()
            .map(|r| {
                Ok(SiteRow {
                    id: r.try_get(0)?,
                    name: r.try_get(1)?,
                    district: r.try_get(2)?,
                    town: r.try_get(3)?,
                    grid: r.try_get(4)?,
                    lat_e7: r.try_get(5)?,
                    lon_e7: r.try_get(6)?,
                    machines: r.try_get(7)?,
                    open_by_kind: BTreeMap::new(),
                })
            })
            .collect::<Result<Vec<_>, DbError>>()?;
        let open = client
            .query(
                "SELECT site_id, kind, count(*) FROM warnings WHERE state = 'open' \
                 AND site_id IS NOT NULL AND ($1::text IS NULL OR district = $1) \
                 AND ($2::text IS NULL OR town = $2) AND ($3::text IS NULL OR site_id = $3) \
                 GROUP BY site_id, kind",
                &[&district, &town, &site_id],
            )?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect::<Result<Vec<(String, String, i64)>, DbError>>()?;
        add_open_warnings(&mut sites, open);
        Ok(sites)
    }

    fn view_machines(
        &self,
        scope: &Scope,
        site_id: Option<&str>,
        machine_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<MachineRow>, DbError> {
        let (district, town) = scope_filter(scope);
        let mut conn = self.pool.get()?;
        let rows = conn.client()?.query(
            "SELECT p.id, p.watch, p.district, p.town, p.grid, p.site_id, s.name, \
             coalesce(p.latitude_e7, s.latitude_e7), coalesce(p.longitude_e7, s.longitude_e7), \
             (SELECT count(*) FROM warnings w WHERE w.machine_id = p.id AND w.state = 'open' \
             AND ($1::text IS NULL OR w.district = $1) AND ($2::text IS NULL OR w.town = $2)) \
             FROM places p LEFT JOIN sites s ON s.site_id = p.site_id \
             WHERE p.subject = 'machine' AND ($1::text IS NULL OR p.district = $1) \
             AND ($2::text IS NULL OR p.town = $2) AND ($3::text IS NULL OR p.site_id = $3) \
             AND ($4::text IS NULL OR p.id = $4) ORDER BY p.id LIMIT $5",
            &[&district, &town, &site_id, &machine_id, &i64::from(limit)],
        )?;
        rows.iter()
            .map(|r| {
                Ok(MachineRow {
                    id: r.try_get(0)?,
                    watch: r.try_get(1)?,
                    district: r.try_get(2)?,
                    town: r.try_get(3)?,
                    grid: r.try_get(4)?,
                    site_id: r.try_get(5)?,
                    site_name: r.try_get(6)?,
                    lat_e7: r.try_get(7)?,
                    lon_e7: r.try_get(8)?,
                    open_warnings: r.try_get(9)?,
                })
            })
            .collect()
    }

    fn view_licence_place(
        &self,
        scope: &Scope,
        certificate_no: &str,
    ) -> Result<Option<Place>, DbError> {
        let (district, town) = scope_filter(scope);
        let mut conn = self.pool.get()?;
        let row = conn.client()?.query_opt(
            "SELECT district, town, grid FROM places WHERE subject = 'licence' AND id = $3 \
             AND ($1::text IS NULL OR district = $1) AND ($2::text IS NULL OR town = $2)",
            &[&district, &town, &certificate_no],
        )?;
        row.map(|r| {
            Ok(Place {
                district: r.try_get(0)?,
                town: r.try_get(1)?,
                grid: r.try_get(2)?,
            })
        })
        .transpose()
    }

    fn registry_entity(&self, entity: &str) -> Result<Option<String>, DbError> {
        let mut conn = self.pool.get()?;
        let row = conn.client()?.query_opt(
            "SELECT change FROM changes WHERE entity = $1 ORDER BY seq DESC LIMIT 1",
            &[&entity],
        )?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    fn view_starts(
        &self,
        scope: &Scope,
        subject: &Subject<'_>,
        limit: u32,
    ) -> Result<Vec<StartRecord>, DbError> {
        let (district, town) = scope_filter(scope);
        let sql = format!(
            "SELECT l.id, l.idempotency_key, l.day, l.at_ms, l.kind, l.district, l.town, \
             l.site_id, l.machine_id, l.person, l.decision, l.detail, l.latitude_e7, \
             l.longitude_e7, l.accuracy_m, r.payload FROM ledger l \
             LEFT JOIN records r ON r.idempotency_key = l.idempotency_key \
             WHERE l.kind = 'start' AND l.{} = $3 AND ($1::text IS NULL OR l.district = $1) \
             AND ($2::text IS NULL OR l.town = $2) ORDER BY l.at_ms DESC, l.id DESC LIMIT $4",
            subject.ledger_column()
        );
        let mut conn = self.pool.get()?;
        let rows = conn
            .client()?
            .query(&sql, &[&district, &town, &subject.id(), &i64::from(limit)])?;
        rows.iter()
            .map(|r| {
                Ok(StartRecord {
                    ledger: pg_ledger_row(r)?,
                    payload: r.try_get(15)?,
                })
            })
            .collect()
    }

    fn view_warnings(
        &self,
        scope: &Scope,
        subject: &Subject<'_>,
        limit: u32,
    ) -> Result<Vec<WarningRow>, DbError> {
        let (district, town) = scope_filter(scope);
        let sql = format!(
            "SELECT {WARNING_COLUMNS} FROM warnings WHERE {} = $3 \
             AND ($1::text IS NULL OR district = $1) AND ($2::text IS NULL OR town = $2) \
             ORDER BY id DESC LIMIT $4",
            subject.warning_column()
        );
        let mut conn = self.pool.get()?;
        let rows = conn
            .client()?
            .query(&sql, &[&district, &town, &subject.id(), &i64::from(limit)])?;
        rows.iter().map(warning_row).collect()
    }

    fn view_site_permits(&self, site_id: &str, limit: u32) -> Result<Vec<PermitHeadRow>, DbError> {
        let mut conn = self.pool.get()?;
        let rows = conn.client()?.query(
            "SELECT h.permit_id, h.state, h.body, h.updated_at_ms FROM permit_heads h \
             WHERE h.permit_id IN (SELECT ps.permit_id FROM ledger l \
             JOIN permit_steps ps ON ps.step_id = l.idempotency_key \
             WHERE l.kind = 'permit_step' AND l.site_id = $1) \
             ORDER BY h.updated_at_ms DESC, h.permit_id LIMIT $2",
            &[&site_id, &i64::from(limit)],
        )?;
        rows.iter().map(pg_permit_head_row).collect()
    }

    fn view_permit(
        &self,
        permit_id: &str,
    ) -> Result<Option<(PermitHeadRow, Vec<PermitStepRow>)>, DbError> {
        let mut conn = self.pool.get()?;
        let mut tx = conn
            .client()?
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()?;
        let head = tx.query_opt(
            "SELECT permit_id, state, body, updated_at_ms FROM permit_heads \
             WHERE permit_id = $1",
            &[&permit_id],
        )?;
        let Some(head) = head.as_ref().map(pg_permit_head_row).transpose()? else {
            return Ok(None);
        };
        let steps = tx
            .query(
                "SELECT ps.step_id, ps.action, ps.body, ps.device_id, d.person, \
                 ps.received_at_ms FROM permit_steps ps \
                 LEFT JOIN devices d ON d.device_id = ps.device_id \
                 WHERE ps.permit_id = $1 AND ps.status = 'applied' ORDER BY ps.arrival",
                &[&permit_id],
            )?
            .iter()
            .map(|r| {
                Ok(PermitStepRow {
                    step_id: r.try_get(0)?,
                    action: r.try_get(1)?,
                    body: r.try_get(2)?,
                    device_id: r.try_get(3)?,
                    person: r.try_get(4)?,
                    received_at_ms: r.try_get(5)?,
                })
            })
            .collect::<Result<Vec<_>, DbError>>()?;
        tx.commit()?;
        Ok(Some((head, steps)))
    }
}

fn pg_permit_head_row(r: &postgres::Row) -> Result<PermitHeadRow, DbError> {
    Ok(PermitHeadRow {
        permit_id: r.try_get(0)?,
        state: r.try_get(1)?,
        body: r.try_get(2)?,
        updated_at_ms: r.try_get(3)?,
    })
}

/// A ledger row from the first 15 columns of `r`, in `ledger_page`'s order.
fn pg_ledger_row(r: &postgres::Row) -> Result<LedgerRow, DbError> {
    let lat: Option<i32> = r.try_get(12)?;
    let lon: Option<i32> = r.try_get(13)?;
    let acc: Option<i64> = r.try_get(14)?;
    Ok(LedgerRow {
        id: r.try_get(0)?,
        key: r.try_get(1)?,
        day: r.try_get(2)?,
        at_ms: r.try_get(3)?,
        kind: r.try_get(4)?,
        district: r.try_get(5)?,
        town: r.try_get(6)?,
        site_id: r.try_get(7)?,
        machine_id: r.try_get(8)?,
        person: r.try_get(9)?,
        decision: r.try_get(10)?,
        detail: r.try_get(11)?,
        position: match (lat, lon, acc) {
            (Some(a), Some(b), Some(c)) => Some((a, b, u32::try_from(c).unwrap_or(u32::MAX))),
            _ => None,
        },
    })
}

/// The columns of a warning row, in [`warning_row`]'s order.
const WARNING_COLUMNS: &str = "id, kind, records, machine_id, certificate_no, district, town, \
     grid, site_id, at_ms, raised_at_ms, detail, state, acknowledged_by, acknowledged_at_ms, \
     closed_by, closed_at_ms, close_note";

fn warning_row(r: &postgres::Row) -> Result<WarningRow, DbError> {
    Ok(WarningRow {
        id: r.try_get(0)?,
        kind: r.try_get(1)?,
        records_json: r.try_get(2)?,
        machine_id: r.try_get(3)?,
        certificate_no: r.try_get(4)?,
        district: r.try_get(5)?,
        town: r.try_get(6)?,
        grid: r.try_get(7)?,
        site_id: r.try_get(8)?,
        at_ms: r.try_get(9)?,
        raised_at_ms: r.try_get(10)?,
        detail_json: r.try_get(11)?,
        state: r.try_get(12)?,
        acknowledged_by: r.try_get(13)?,
        acknowledged_at_ms: r.try_get(14)?,
        closed_by: r.try_get(15)?,
        closed_at_ms: r.try_get(16)?,
        close_note: r.try_get(17)?,
    })
}

fn upsert_place(
    tx: &mut Transaction<'_>,
    subject: &str,
    id: &str,
    place: &Place,
    site_id: Option<&str>,
    location: Option<GeoPoint>,
    watch: &str,
) -> Result<(), DbError> {
    tx.execute(
        "INSERT INTO places (subject, id, district, town, grid, site_id, latitude_e7, \
         longitude_e7, watch) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (subject, id) DO UPDATE SET district = excluded.district, \
         town = excluded.town, grid = excluded.grid, site_id = excluded.site_id, \
         latitude_e7 = excluded.latitude_e7, longitude_e7 = excluded.longitude_e7, \
         watch = excluded.watch",
        &[
            &subject,
            &id,
            &place.district,
            &place.town,
            &place.grid,
            &site_id,
            &location.map(|l| l.latitude_e7),
            &location.map(|l| l.longitude_e7),
            &watch,
        ],
    )?;
    Ok(())
}

fn start_row(r: &postgres::Row) -> Result<StartRow, DbError> {
    let lat: Option<i32> = r.try_get(4)?;
    let lon: Option<i32> = r.try_get(5)?;
    let acc: Option<i64> = r.try_get(6)?;
    Ok(StartRow {
        key: r.try_get(0)?,
        machine_id: r.try_get(1)?,
        at_ms: r.try_get(2)?,
        allowed: r.try_get(3)?,
        fix: match (lat, lon, acc.and_then(|a| u32::try_from(a).ok())) {
            (Some(latitude_e7), Some(longitude_e7), Some(accuracy_m)) => Some(Fix {
                latitude_e7,
                longitude_e7,
                accuracy_m,
            }),
            _ => None,
        },
    })
}

/// The advisory lock key of a machine's starts: the first 8 bytes of its id's SHA-256.
fn machine_lock_key(machine_id: &str) -> i64 {
    let digest = hash(machine_id);
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

/// A push's PostgreSQL transaction, as [`PermitLedger`] (permit step placement, the transaction
/// holding [`PERMITS_LOCK`]) and [`PushTx`] (the logic run for each applied record).
///
/// The second field gathers the push's counter additions ([`PushTx::count`]), written sorted by
/// [`PgTx::write_counts`] just before commit.
/// The third holds the connection's prepared statements ([`Conn`]); the fourth the deadlines
/// the push queued ([`PushTx::schedule`]) and the fifth the warnings it raised
/// ([`PushTx::raise_warning`]), written together by the same call: the warnings under
/// [`WARNINGS_LOCK`], taken only there, so parallel pushes hold it from their last statements to
/// commit instead of from their first warning (the lock orders warning ids for the stream).
struct PgTx<'a, 'c>(
    &'a mut Transaction<'c>,
    Counts,
    &'a mut Statements,
    Vec<NewDeadline>,
    Vec<NewWarning>,
);

/// Counter additions by (day, district, town, metric).
type Counts = BTreeMap<(String, String, String, String), i64>;

impl<'a, 'c> PgTx<'a, 'c> {
    fn new(tx: &'a mut Transaction<'c>, statements: &'a mut Statements) -> Self {
        PgTx(tx, Counts::new(), statements, Vec::new(), Vec::new())
    }

    /// `sql` prepared on this connection (once per connection).
    fn prepared(&mut self, sql: &str) -> Result<Statement, DbError> {
        if let Some(statement) = self.2.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.0.prepare(sql)?;
        self.2.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }

    fn execute(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, DbError> {
        let statement = self.prepared(sql)?;
        Ok(self.0.execute(&statement, params)?)
    }

    fn query(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, DbError> {
        let statement = self.prepared(sql)?;
        Ok(self.0.query(&statement, params)?)
    }

    fn query_opt(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, DbError> {
        let statement = self.prepared(sql)?;
        Ok(self.0.query_opt(&statement, params)?)
    }

    fn query_one(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Row, DbError> {
        let statement = self.prepared(sql)?;
        Ok(self.0.query_one(&statement, params)?)
    }

    /// Write the warnings the push raised, in the order raised, under [`WARNINGS_LOCK`] (held to
    /// commit). A row another transaction wrote first (its `dedup_key` exists) is not written and
    /// its `warnings_open` addition is taken back.
    fn write_warnings(&mut self) -> Result<(), DbError> {
        let pending = std::mem::take(&mut self.4);
        if pending.is_empty() {
            return Ok(());
        }
        self.0
            .execute("SELECT pg_advisory_xact_lock($1)", &[&WARNINGS_LOCK])?;
        for w in pending {
            let records =
                serde_json::to_string(&w.records).map_err(|e| DbError::Invalid(e.to_string()))?;
            let n = self.execute(
                "INSERT INTO warnings (dedup_key, kind, records, machine_id, certificate_no, \
                 district, town, grid, site_id, at_ms, raised_at_ms, detail) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
                 ON CONFLICT (dedup_key) DO NOTHING",
                &[
                    &w.dedup_key,
                    &w.kind.as_str(),
                    &records,
                    &w.machine_id,
                    &w.certificate_no,
                    &w.place.as_ref().map(|p| p.district.as_str()),
                    &w.place.as_ref().and_then(|p| p.town.as_deref()),
                    &w.place.as_ref().and_then(|p| p.grid.as_deref()),
                    &w.site_id,
                    &w.at_ms,
                    &w.raised_at_ms,
                    &w.detail,
                ],
            )?;
            if n == 0 {
                let (district, town) = crate::platform::place_key(w.place.as_ref());
                *self
                    .1
                    .entry((china_day(w.at_ms), district, town, WARNINGS_OPEN.to_owned()))
                    .or_insert(0) -= 1;
            }
        }
        Ok(())
    }

    /// Write the gathered counter additions in key order (two pushes lock shared counter rows in
    /// the same order, so they never deadlock), and the queued deadlines in one statement; forget
    /// them.
    fn write_counts(&mut self) -> Result<(), DbError> {
        self.write_warnings()?;
        let mut due = std::mem::take(&mut self.3);
        if !due.is_empty() {
            due.sort_by(|a, b| a.dedup_key.cmp(&b.dedup_key));
            let (keys, kinds, at, payloads) = deadline_columns(&due);
            self.execute(QUEUE_DEADLINES, &[&keys, &kinds, &at, &payloads])?;
        }
        for ((day, district, town, metric), n) in std::mem::take(&mut self.1) {
            if n == 0 {
                continue;
            }
            self.execute(
                "INSERT INTO daily_counts (day, district, town, metric, n) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (day, district, town, metric) \
                 DO UPDATE SET n = daily_counts.n + excluded.n",
                &[&day, &district, &town, &metric, &n],
            )?;
        }
        Ok(())
    }
}

impl PushTx for PgTx<'_, '_> {
    fn pusher(&mut self, device_id: &str) -> Result<Option<(Role, String)>, DbError> {
        let row = self.query_opt(
            "SELECT role, coalesce(person_id, person) FROM devices WHERE device_id = $1",
            &[&device_id],
        )?;
        let Some(row) = row else {
            return Ok(None);
        };
        let role: String = row.try_get(0)?;
        let id: String = row.try_get(1)?;
        Ok(Role::parse(&role).map(|r| (r, id)))
    }

    fn registry_holds(&mut self, entity: &str) -> Result<bool, DbError> {
        let newest: Option<String> = self
            .query_opt(
                "SELECT change FROM changes WHERE entity = $1 ORDER BY seq DESC LIMIT 1",
                &[&entity],
            )?
            .map(|r| r.try_get(0))
            .transpose()?;
        Ok(newest.is_some_and(|json| super::is_live_change(&json)))
    }

    fn newest_change(&mut self, entity: &str) -> Result<Option<String>, DbError> {
        Ok(self
            .query_opt(
                "SELECT change FROM changes WHERE entity = $1 ORDER BY seq DESC LIMIT 1",
                &[&entity],
            )?
            .map(|r| r.try_get(0))
            .transpose()?)
    }

    fn add_record_flag(&mut self, key: &str, flag: &str) -> Result<(), DbError> {
        self.execute(
            "INSERT INTO record_flags (idempotency_key, flag) VALUES ($1, $2) \
             ON CONFLICT DO NOTHING",
            &[&key, &flag],
        )?;
        Ok(())
    }

    fn lock_machines(&mut self, machine_ids: &[String]) -> Result<(), DbError> {
        // Plain pushes run in parallel in READ COMMITTED: the rules that count or compare a
        // machine's starts hold its lock until commit, so they see every start committed before.
        let mut keys: Vec<i64> = machine_ids.iter().map(|m| machine_lock_key(m)).collect();
        keys.sort_unstable();
        keys.dedup();
        // One round trip: unnest yields the sorted keys in array order, and each row's lock is
        // taken as the row is produced.
        self.query(
            "SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) AS u(k)",
            &[&keys],
        )?;
        Ok(())
    }

    fn machine_facts(&mut self, machine_id: &str) -> Result<Option<MachineFacts>, DbError> {
        let row = self.query_opt(
            "SELECT p.district, p.town, p.grid, p.site_id, \
             coalesce(p.latitude_e7, s.latitude_e7), coalesce(p.longitude_e7, s.longitude_e7), \
             p.watch FROM places p LEFT JOIN sites s ON s.site_id = p.site_id \
             WHERE p.subject = 'machine' AND p.id = $1",
            &[&machine_id],
        )?;
        let Some(r) = row else {
            return Ok(None);
        };
        let lat: Option<i32> = r.try_get(4)?;
        let lon: Option<i32> = r.try_get(5)?;
        Ok(Some(MachineFacts {
            place: Place {
                district: r.try_get(0)?,
                town: r.try_get(1)?,
                grid: r.try_get(2)?,
            },
            site_id: r.try_get(3)?,
            location: lat.zip(lon),
            watch: r.try_get(6)?,
        }))
    }

    fn licence_place(&mut self, certificate_no: &str) -> Result<Option<Place>, DbError> {
        let row = self.query_opt(
            "SELECT district, town, grid FROM places WHERE subject = 'licence' AND id = $1",
            &[&certificate_no],
        )?;
        let Some(r) = row else {
            return Ok(None);
        };
        Ok(Some(Place {
            district: r.try_get(0)?,
            town: r.try_get(1)?,
            grid: r.try_get(2)?,
        }))
    }

    fn refusals_between(
        &mut self,
        machine_id: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<(i64, String)>, DbError> {
        let rows = self.query(
            "SELECT at_ms, idempotency_key FROM ledger WHERE machine_id = $1 \
             AND kind = 'start' AND decision = 'refused' AND at_ms BETWEEN $2 AND $3 \
             ORDER BY at_ms LIMIT 1000",
            &[&machine_id, &from_ms, &to_ms],
        )?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    fn neighbour_starts(
        &mut self,
        machine_id: &str,
        at_ms: i64,
        key: &str,
    ) -> Result<Vec<StartRow>, DbError> {
        // The nearest before and the nearest after, in one round trip.
        let mut out = Vec::new();
        for r in self.query(
            "(SELECT idempotency_key, machine_id, at_ms, decision = 'allowed', latitude_e7, \
             longitude_e7, accuracy_m FROM ledger WHERE machine_id = $1 AND kind = 'start' \
             AND decision = 'allowed' AND latitude_e7 IS NOT NULL AND at_ms <= $2 \
             AND idempotency_key <> $3 ORDER BY at_ms DESC, idempotency_key DESC LIMIT 1) \
             UNION ALL \
             (SELECT idempotency_key, machine_id, at_ms, decision = 'allowed', latitude_e7, \
             longitude_e7, accuracy_m FROM ledger WHERE machine_id = $1 AND kind = 'start' \
             AND decision = 'allowed' AND latitude_e7 IS NOT NULL AND at_ms >= $2 \
             AND idempotency_key <> $3 ORDER BY at_ms, idempotency_key LIMIT 1)",
            &[&machine_id, &at_ms, &key],
        )? {
            let row = start_row(&r)?;
            if !out.contains(&row) {
                out.push(row);
            }
        }
        Ok(out)
    }

    fn warning_between(
        &mut self,
        kind: WarningKind,
        machine_id: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<bool, DbError> {
        if self.4.iter().any(|w| {
            w.kind == kind && w.machine_id == machine_id && (from_ms..=to_ms).contains(&w.at_ms)
        }) {
            return Ok(true);
        }
        Ok(self
            .query_opt(
                "SELECT 1 FROM warnings WHERE machine_id = $1 AND kind = $2 \
                 AND at_ms BETWEEN $3 AND $4 LIMIT 1",
                &[&machine_id, &kind.as_str(), &from_ms, &to_ms],
            )?
            .is_some())
    }

    fn raise_warning(&mut self, w: &NewWarning) -> Result<bool, DbError> {
        // Written just before commit (PgTx::write_warnings); here: not if this push raised it
        // already or the table holds it.
        if self.4.iter().any(|p| p.dedup_key == w.dedup_key)
            || self
                .query_opt(
                    "SELECT 1 FROM warnings WHERE dedup_key = $1",
                    &[&w.dedup_key],
                )?
                .is_some()
        {
            return Ok(false);
        }
        self.4.push(w.clone());
        Ok(true)
    }

    fn site_place(&mut self, site_id: &str) -> Result<Option<Place>, DbError> {
        let row = self.query_opt(
            "SELECT district, town, grid FROM sites WHERE site_id = $1",
            &[&site_id],
        )?;
        row.map(|r| -> Result<Place, DbError> {
            Ok(Place {
                district: r.try_get(0)?,
                town: r.try_get(1)?,
                grid: r.try_get(2)?,
            })
        })
        .transpose()
    }

    fn count(
        &mut self,
        day: &str,
        district: &str,
        town: &str,
        metric: &str,
        n: i64,
    ) -> Result<(), DbError> {
        *self
            .1
            .entry((
                day.to_owned(),
                district.to_owned(),
                town.to_owned(),
                metric.to_owned(),
            ))
            .or_insert(0) += n;
        Ok(())
    }

    fn ledger(&mut self, row: &LedgerRow) -> Result<(), DbError> {
        self.execute(
            "INSERT INTO ledger (idempotency_key, day, at_ms, kind, district, town, site_id, \
             machine_id, person, decision, detail, latitude_e7, longitude_e7, accuracy_m) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
             ON CONFLICT (idempotency_key) DO NOTHING",
            &[
                &row.key,
                &row.day,
                &row.at_ms,
                &row.kind,
                &row.district,
                &row.town,
                &row.site_id,
                &row.machine_id,
                &row.person,
                &row.decision,
                &row.detail,
                &row.position.map(|p| p.0),
                &row.position.map(|p| p.1),
                &row.position.map(|p| i64::from(p.2)),
            ],
        )?;
        Ok(())
    }

    fn permit_count(&mut self, permit_id: &str) -> Result<Option<PermitCount>, DbError> {
        let row = self.query_opt(
            "SELECT day, district, town, state FROM permit_counts WHERE permit_id = $1",
            &[&permit_id],
        )?;
        row.map(|r| -> Result<PermitCount, DbError> {
            Ok(PermitCount {
                day: r.try_get(0)?,
                district: r.try_get(1)?,
                town: r.try_get(2)?,
                state: r.try_get(3)?,
            })
        })
        .transpose()
    }

    fn put_permit_count(&mut self, permit_id: &str, c: &PermitCount) -> Result<(), DbError> {
        self.execute(
            "INSERT INTO permit_counts (permit_id, day, district, town, state) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (permit_id) DO UPDATE SET \
             day = excluded.day, district = excluded.district, town = excluded.town, \
             state = excluded.state",
            &[&permit_id, &c.day, &c.district, &c.town, &c.state],
        )?;
        Ok(())
    }

    fn schedule(&mut self, d: &NewDeadline) -> Result<(), DbError> {
        // Written with the counters, just before commit (PgTx::write_counts).
        self.3.push(d.clone());
        Ok(())
    }

    fn next_allowed_start(
        &mut self,
        machine_id: &str,
        after_ms: i64,
    ) -> Result<Option<i64>, DbError> {
        Ok(self
            .query_opt(
                "SELECT at_ms FROM ledger WHERE machine_id = $1 AND kind = 'start' \
                 AND decision = 'allowed' AND at_ms > $2 ORDER BY at_ms LIMIT 1",
                &[&machine_id, &after_ms],
            )?
            .map(|r| r.try_get(0))
            .transpose()?)
    }

    fn permit_head(&mut self, permit_id: &str) -> Result<Option<String>, DbError> {
        Ok(PermitLedger::head(self, permit_id)?.map(|row| row.body))
    }
}

impl PermitLedger for PgTx<'_, '_> {
    fn record_hash(&mut self, key: &str) -> Result<Option<Vec<u8>>, DbError> {
        Ok(self
            .query_opt(
                "SELECT payload_hash FROM records WHERE idempotency_key = $1",
                &[&key],
            )?
            .map(|r| r.try_get(0))
            .transpose()?)
    }

    fn insert_record(
        &mut self,
        key: &str,
        kind: &str,
        payload: &str,
        payload_hash: &[u8],
        device_id: &str,
        at_ms: i64,
    ) -> Result<(), DbError> {
        self.execute(
            "INSERT INTO records (idempotency_key, kind, payload, payload_hash, device_id, \
             received_at_ms) VALUES ($1, $2, $3, $4, $5, $6)",
            &[&key, &kind, &payload, &payload_hash, &device_id, &at_ms],
        )?;
        Ok(())
    }

    fn lost_reason(&mut self, step_id: &str) -> Result<Option<String>, DbError> {
        Ok(self.query_opt(
                "SELECT coalesce(reason, '') FROM permit_steps WHERE step_id = $1 AND status = 'lost'",
                &[&step_id],
            )?
            .map(|r| r.try_get(0))
            .transpose()?)
    }

    fn head(&mut self, permit_id: &str) -> Result<Option<StepRow>, DbError> {
        self.0
            .query_opt(
                "SELECT step_id, action, body FROM permit_heads WHERE permit_id = $1 FOR UPDATE",
                &[&permit_id],
            )?
            .map(|r| {
                Ok(StepRow {
                    step_id: r.try_get(0)?,
                    base: None,
                    status: crate::permits::APPLIED.into(),
                    action: r.try_get(1)?,
                    body: r.try_get(2)?,
                    fork: None,
                })
            })
            .transpose()
    }

    fn steps_by_events(
        &mut self,
        permit_id: &str,
        events_key: &[u8],
        limit: usize,
    ) -> Result<Vec<StepRow>, DbError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.0
            .query(
                &format!(
                    "SELECT {STEP_COLUMNS} FROM permit_steps WHERE permit_id = $1 \
                     AND events_key = $2 ORDER BY CASE status WHEN 'applied' THEN 0 \
                     WHEN 'superseded' THEN 1 ELSE 2 END, arrival LIMIT $3"
                ),
                &[&permit_id, &events_key, &limit],
            )?
            .iter()
            .map(step_row)
            .collect()
    }

    fn applied_successor(&mut self, step_id: &str) -> Result<Option<StepRow>, DbError> {
        self.0
            .query_opt(
                &format!(
                    "SELECT {STEP_COLUMNS} FROM permit_steps WHERE base_step = $1 \
                     AND status = 'applied' ORDER BY arrival LIMIT 1"
                ),
                &[&step_id],
            )?
            .as_ref()
            .map(step_row)
            .transpose()
    }

    fn base_of(&mut self, step_id: &str) -> Result<Option<Option<String>>, DbError> {
        Ok(self
            .query_opt(
                "SELECT base_step FROM permit_steps WHERE step_id = $1",
                &[&step_id],
            )?
            .map(|r| r.try_get(0))
            .transpose()?)
    }

    fn lost_counts(
        &mut self,
        permit_id: &str,
        device_id: &str,
        since_ms: i64,
    ) -> Result<(i64, i64), DbError> {
        let per_permit: i64 = self
            .query_one(
                "SELECT count(*) FROM permit_steps WHERE permit_id = $1 AND status = 'lost'",
                &[&permit_id],
            )?
            .try_get(0)?;
        let per_device: i64 = self
            .query_one(
                "SELECT count(*) FROM permit_steps WHERE device_id = $1 AND status = 'lost' \
                 AND received_at_ms >= $2",
                &[&device_id, &since_ms],
            )?
            .try_get(0)?;
        Ok((per_permit, per_device))
    }

    fn insert_step(&mut self, s: &NewStep<'_>) -> Result<(), DbError> {
        self.execute(
            "INSERT INTO permit_steps (step_id, permit_id, base_step, action, digest, status, \
             reason, body, device_id, received_at_ms, events_key, events_count, \
             signatures_count, fork_action, fork_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
            &[
                &s.step_id,
                &s.permit_id,
                &s.base,
                &s.action,
                &s.digest,
                &s.status,
                &s.reason,
                &s.body,
                &s.device_id,
                &s.at_ms,
                &s.facts.events_key,
                &s.facts.events,
                &s.facts.signatures,
                &s.fork.map(|f| action_name(f.action)),
                &s.fork.map(|f| f.at),
            ],
        )?;
        Ok(())
    }

    fn set_superseded(&mut self, step_ids: &[String]) -> Result<(), DbError> {
        self.execute(
            "UPDATE permit_steps SET status = 'superseded' WHERE step_id = ANY($1)",
            &[&step_ids],
        )?;
        Ok(())
    }

    fn next_seq(&mut self) -> Result<i64, DbError> {
        Ok(self
            .query_one(
                "SELECT (coalesce(max(seq), 0) + 1)::bigint FROM permit_heads",
                &[],
            )?
            .try_get(0)?)
    }

    fn put_head(&mut self, h: &HeadRow<'_>) -> Result<(), DbError> {
        self.execute(
            "INSERT INTO permit_heads (permit_id, step_id, action, state, digest, body, seq, \
             updated_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (permit_id) DO UPDATE SET step_id = EXCLUDED.step_id, \
             action = EXCLUDED.action, state = EXCLUDED.state, digest = EXCLUDED.digest, \
             body = EXCLUDED.body, seq = EXCLUDED.seq, updated_at_ms = EXCLUDED.updated_at_ms",
            &[
                &h.permit_id,
                &h.step_id,
                &h.action,
                &h.state,
                &h.digest,
                &h.body,
                &h.seq,
                &h.at_ms,
            ],
        )?;
        self.execute(
            "DELETE FROM permit_people WHERE permit_id = $1",
            &[&h.permit_id],
        )?;
        self.execute(
            "INSERT INTO permit_people (person, permit_id) SELECT DISTINCT p, $2 \
             FROM unnest($1::text[]) AS u(p) ON CONFLICT DO NOTHING",
            &[&h.people, &h.permit_id],
        )?;
        Ok(())
    }

    fn touch_head(&mut self, permit_id: &str, seq: i64, at_ms: i64) -> Result<(), DbError> {
        self.execute(
            "UPDATE permit_heads SET seq = $2, updated_at_ms = $3 WHERE permit_id = $1",
            &[&permit_id, &seq, &at_ms],
        )?;
        Ok(())
    }
}

/// The columns [`step_row`] reads.
const STEP_COLUMNS: &str = "step_id, base_step, status, action, body, digest, fork_action, fork_at";

fn step_row(r: &::postgres::Row) -> Result<StepRow, DbError> {
    let fork_action: Option<String> = r.try_get(6)?;
    let fork_at: Option<i64> = r.try_get(7)?;
    let digest: String = r.try_get(5)?;
    Ok(StepRow {
        step_id: r.try_get(0)?,
        base: r.try_get(1)?,
        status: r.try_get(2)?,
        action: r.try_get(3)?,
        body: r.try_get(4)?,
        fork: match (fork_action.as_deref().and_then(action_from_name), fork_at) {
            (Some(action), Some(at)) => Some(ForkStep { action, at, digest }),
            _ => None,
        },
    })
}

/// Fill the event-log facts of steps stored before migration 6 (each parsed once).
fn backfill_step_facts(tx: &mut Transaction<'_>) -> Result<(), DbError> {
    let rows = tx.query(
        "SELECT step_id, body FROM permit_steps WHERE events_key IS NULL",
        &[],
    )?;
    for row in rows {
        let step_id: String = row.try_get(0)?;
        let body: String = row.try_get(1)?;
        let Ok(permit) = serde_json::from_str::<weldguard_model::permit::Permit>(&body) else {
            continue;
        };
        let f = crate::permits::version_facts(&permit);
        tx.execute(
            "UPDATE permit_steps SET events_key = $2, events_count = $3, signatures_count = $4 \
             WHERE step_id = $1",
            &[&step_id, &f.events_key, &f.events, &f.signatures],
        )?;
    }
    Ok(())
}

/// Queue deadlines in one statement (columns from [`deadline_columns`]), once per `dedup_key`.
const QUEUE_DEADLINES: &str = "INSERT INTO deadlines (dedup_key, kind, due_at_ms, payload) \
     SELECT k, t, d, p FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[]) \
     AS u(k, t, d, p) ON CONFLICT (dedup_key) DO NOTHING";

/// The columns of [`QUEUE_DEADLINES`].
type DeadlineColumns<'a> = (Vec<&'a str>, Vec<&'a str>, Vec<i64>, Vec<&'a str>);

fn deadline_columns(due: &[NewDeadline]) -> DeadlineColumns<'_> {
    (
        due.iter().map(|d| d.dedup_key.as_str()).collect(),
        due.iter().map(|d| d.kind.as_str()).collect(),
        due.iter().map(|d| d.due_at_ms).collect(),
        due.iter().map(|d| d.payload.as_str()).collect(),
    )
}

/// The newest seq visible in this transaction's snapshot (not the sequence's value: a seq drawn
/// by a writer that has not committed must not be counted), at least the history floor.
fn high_water(tx: &mut Transaction<'_>) -> Result<i64, DbError> {
    let max: Option<i64> = tx
        .query_one("SELECT max(seq) FROM changes", &[])?
        .try_get(0)?;
    Ok(max.unwrap_or(0).max(floor(tx)?))
}

fn floor(tx: &mut Transaction<'_>) -> Result<i64, DbError> {
    let v: Option<String> = tx
        .query_opt(
            "SELECT value FROM server_meta WHERE key = 'history_floor'",
            &[],
        )?
        .map(|r| r.try_get(0))
        .transpose()?;
    Ok(v.and_then(|v| v.parse().ok()).unwrap_or(0))
}

/// Apply the missing migrations under [`MIGRATE_LOCK`] and return the feed epoch.
fn migrate(client: &mut Client) -> Result<String, DbError> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATE_LOCK])?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (\
             version    INTEGER PRIMARY KEY, \
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    )?;
    let version: i64 = tx
        .query_one(
            "SELECT coalesce(max(version), 0)::bigint FROM schema_migrations",
            &[],
        )?
        .try_get(0)?;
    let known = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
    if version > known {
        return Err(DbError::NewerSchema {
            found: version,
            known,
        });
    }
    for (i, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(version).unwrap_or(0))
    {
        tx.batch_execute(sql)?;
        let v = i32::try_from(i + 1).unwrap_or(i32::MAX);
        tx.execute("INSERT INTO schema_migrations (version) VALUES ($1)", &[&v])?;
    }
    if version < 6 {
        backfill_step_facts(&mut tx)?;
    }
    tx.execute(
        "INSERT INTO server_meta (key, value) VALUES ('epoch', $1) ON CONFLICT (key) DO NOTHING",
        &[&random_hex(8)?],
    )?;
    let epoch: String = tx
        .query_one("SELECT value FROM server_meta WHERE key = 'epoch'", &[])?
        .try_get(0)?;
    tx.commit()?;
    Ok(epoch)
}
