//! The SQLite backend of the server's store ([`super::Store`]): one file in `--data-dir`, one
//! writer at a time (`BEGIN IMMEDIATE`, also across processes sharing the file), so feed `seq`
//! values become visible in the order they were assigned. Schema migrations are numbered;
//! `PRAGMA user_version` holds how many were applied.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
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

/// The numbered migrations; `PRAGMA user_version` holds how many were applied.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE server_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;
CREATE TABLE devices (
    device_id     TEXT PRIMARY KEY,
    token_hash    BLOB NOT NULL UNIQUE,
    person        TEXT NOT NULL,
    role          TEXT NOT NULL,
    public_key    TEXT NOT NULL,
    device_name   TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE TABLE enrolment_codes (
    code_hash     BLOB PRIMARY KEY,
    person        TEXT NOT NULL,
    role          TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    used_by       TEXT
) STRICT;
CREATE TABLE records (
    idempotency_key TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,
    payload         TEXT NOT NULL,
    payload_hash    BLOB NOT NULL,
    device_id       TEXT NOT NULL,
    received_at_ms  INTEGER NOT NULL
) STRICT;
CREATE TABLE changes (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT,
    entity TEXT NOT NULL,
    change TEXT NOT NULL
) STRICT;
CREATE INDEX changes_by_entity ON changes (entity, seq);
"#,
    r#"
CREATE TABLE issuer_keys (
    kid            TEXT PRIMARY KEY,
    key_json       TEXT NOT NULL,
    valid_from_ms  INTEGER NOT NULL,
    valid_until_ms INTEGER,
    created_at_ms  INTEGER NOT NULL
) STRICT;
"#,
    // 3: token expiry and refresh by device-key proof (docs/adr/0010-token-refresh.md).
    r#"
ALTER TABLE devices ADD COLUMN token_expires_at_ms INTEGER;
ALTER TABLE devices ADD COLUMN retired_token_hash BLOB;
CREATE INDEX devices_by_retired_token ON devices (retired_token_hash);
CREATE TABLE auth_nonces (
    nonce_hash    BLOB PRIMARY KEY,
    device_id     TEXT NOT NULL,
    expires_at_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX auth_nonces_by_device ON auth_nonces (device_id, expires_at_ms);
CREATE INDEX auth_nonces_by_expiry ON auth_nonces (expires_at_ms);
"#,
    // 4: published snapshots, shared by every server process (docs/adr/0009-*).
    r#"
CREATE TABLE snapshots (
    snapshot_id TEXT PRIMARY KEY,
    manifest    BLOB NOT NULL,
    made_at_ms  INTEGER NOT NULL,
    chunks      INTEGER NOT NULL
) STRICT;
CREATE TABLE snapshot_chunks (
    snapshot_id TEXT NOT NULL REFERENCES snapshots (snapshot_id) ON DELETE CASCADE,
    idx         INTEGER NOT NULL,
    body_gzip   BLOB NOT NULL,
    PRIMARY KEY (snapshot_id, idx)
) STRICT;
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
    seq           INTEGER NOT NULL UNIQUE,
    updated_at_ms INTEGER NOT NULL
) STRICT;
CREATE TABLE permit_people (
    person    TEXT NOT NULL,
    permit_id TEXT NOT NULL,
    PRIMARY KEY (person, permit_id)
) STRICT;
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
    received_at_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX permit_steps_by_permit ON permit_steps (permit_id);
"#,
    // 6: bounded permit step placement (crate::permits): per step, the key of its version's event
    // log and how it was admitted over its base, so a new step finds its base by an index and no
    // stored version is re-parsed; indexes for the rival lookup and the lost-step caps. Rows
    // stored before are filled in by `backfill_step_facts` right after.
    r#"
ALTER TABLE permit_steps ADD COLUMN events_key BLOB;
ALTER TABLE permit_steps ADD COLUMN events_count INTEGER;
ALTER TABLE permit_steps ADD COLUMN signatures_count INTEGER;
ALTER TABLE permit_steps ADD COLUMN fork_action TEXT;
ALTER TABLE permit_steps ADD COLUMN fork_at INTEGER;
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
) STRICT;
ALTER TABLE snapshots ADD COLUMN cursor_seq INTEGER;
"#,
    // 8: who a device's person is (the id permits name them by) and the permit roles they may
    // sign as: the signer directory (docs/adr/0014-who-may-sign-what.md).
    r#"
ALTER TABLE enrolment_codes ADD COLUMN person_id TEXT;
ALTER TABLE enrolment_codes ADD COLUMN permit_roles TEXT NOT NULL DEFAULT '[]';
ALTER TABLE devices ADD COLUMN person_id TEXT;
ALTER TABLE devices ADD COLUMN permit_roles TEXT NOT NULL DEFAULT '[]';
ALTER TABLE devices ADD COLUMN disabled_at_ms INTEGER;
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
) STRICT;
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
) STRICT;
CREATE TABLE machine_starts (
    idempotency_key TEXT PRIMARY KEY,
    machine_id      TEXT NOT NULL,
    at_ms           INTEGER NOT NULL,
    allowed         INTEGER NOT NULL,
    latitude_e7     INTEGER,
    longitude_e7    INTEGER,
    accuracy_m      INTEGER
) STRICT;
CREATE INDEX machine_starts_by_machine ON machine_starts (machine_id, allowed, at_ms);
CREATE TABLE warnings (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    dedup_key          TEXT NOT NULL UNIQUE,
    kind               TEXT NOT NULL,
    records            TEXT NOT NULL,
    machine_id         TEXT NOT NULL,
    certificate_no     TEXT,
    district           TEXT,
    town               TEXT,
    grid               TEXT,
    site_id            TEXT,
    at_ms              INTEGER NOT NULL,
    raised_at_ms       INTEGER NOT NULL,
    detail             TEXT NOT NULL,
    state              TEXT NOT NULL DEFAULT 'open',
    acknowledged_by    TEXT,
    acknowledged_at_ms INTEGER,
    closed_by          TEXT,
    closed_at_ms       INTEGER,
    close_note         TEXT
) STRICT;
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
    n        INTEGER NOT NULL,
    PRIMARY KEY (day, district, town, metric)
) STRICT;
CREATE INDEX daily_counts_by_district ON daily_counts (district, day);
CREATE INDEX daily_counts_by_town ON daily_counts (town, day);
CREATE TABLE permit_counts (
    permit_id TEXT PRIMARY KEY,
    day       TEXT NOT NULL,
    district  TEXT NOT NULL,
    town      TEXT NOT NULL,
    state     TEXT NOT NULL
) STRICT;
CREATE TABLE ledger (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key TEXT NOT NULL UNIQUE,
    day             TEXT NOT NULL,
    at_ms           INTEGER NOT NULL,
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
    accuracy_m      INTEGER
) STRICT;
CREATE INDEX ledger_by_day ON ledger (day, id);
CREATE INDEX ledger_by_district ON ledger (district, day, id);
CREATE INDEX ledger_by_town ON ledger (town, day, id);
INSERT INTO daily_counts (day, district, town, metric, n)
SELECT date(at_ms / 1000 + 28800, 'unixepoch'), coalesce(district, ''), coalesce(town, ''),
       'warnings_open', count(*)
FROM warnings WHERE state = 'open' GROUP BY 1, 2, 3;
"#,
    // 11: the deadline queue (crate::deadlines; docs/adr/0017-warnings-and-scope.md): a row per
    // condition to check when it falls due, written in the push that made it, taken by a worker.
    r#"
CREATE TABLE deadlines (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    dedup_key  TEXT NOT NULL UNIQUE,
    kind       TEXT NOT NULL,
    due_at_ms  INTEGER NOT NULL,
    payload    TEXT NOT NULL
) STRICT;
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

/// The SQLite store (see the module documentation).
pub struct SqliteDb {
    /// Locked for the length of one store call.
    conn: Mutex<Connection>,
    epoch: String,
}

/// A machine's place, site and registered location (`PushTx::machine_facts`).
const MACHINE_FACTS: &str = "SELECT p.district, p.town, p.grid, p.site_id, \
     coalesce(p.latitude_e7, s.latitude_e7), coalesce(p.longitude_e7, s.longitude_e7), \
     p.watch FROM places p LEFT JOIN sites s ON s.site_id = p.site_id \
     WHERE p.subject = 'machine' AND p.id = ?1";

/// A machine's nearest positioned allowed start before and after a time, in one statement
/// (`PushTx::neighbour_starts`).
const NEIGHBOUR_STARTS: &str = "SELECT * FROM (SELECT idempotency_key, machine_id, at_ms, \
     decision = 'allowed', latitude_e7, longitude_e7, accuracy_m FROM ledger \
     WHERE machine_id = ?1 AND kind = 'start' AND decision = 'allowed' \
     AND latitude_e7 IS NOT NULL AND at_ms <= ?2 AND idempotency_key <> ?3 \
     ORDER BY at_ms DESC, idempotency_key DESC LIMIT 1) \
     UNION ALL \
     SELECT * FROM (SELECT idempotency_key, machine_id, at_ms, \
     decision = 'allowed', latitude_e7, longitude_e7, accuracy_m FROM ledger \
     WHERE machine_id = ?1 AND kind = 'start' AND decision = 'allowed' \
     AND latitude_e7 IS NOT NULL AND at_ms >= ?2 AND idempotency_key <> ?3 \
     ORDER BY at_ms, idempotency_key LIMIT 1)";

/// The newest change of a registry entity (`PushTx::registry_holds`, `PushTx::newest_change`).
const NEWEST_CHANGE: &str =
    "SELECT change FROM changes WHERE entity = ?1 ORDER BY seq DESC LIMIT 1";

/// Prepared statements kept per connection (see [`SqliteDb::open`]).
const STATEMENT_CACHE: usize = 256;

impl SqliteDb {
    /// Open (creating) `DIR/weldguard-server.sqlite` and migrate it.
    pub fn open(data_dir: &Path) -> Result<Self, DbError> {
        let mut conn = Connection::open(data_dir.join("weldguard-server.sqlite"))?;
        conn.busy_timeout(Duration::from_secs(10))?;
        // A push runs a few dozen distinct statements per record kind (records, flags, starts,
        // counters, ledger, the warning rules); rusqlite's default cache of 16 would evict and
        // re-parse them on every record.
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        // One plan per statement, whatever is bound: without this SQLite marks a statement to be
        // compiled again when a value its planner looked at is bound, and rusqlite's cache clears
        // the bindings of every statement it takes back, so the push's lookups were parsed and
        // planned again on every record (docs/adr/0017-warnings-and-scope.md, "What a push
        // costs").
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
        let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        migrate(&mut conn)?;
        let epoch = {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let found: Option<String> = tx
                .query_row(
                    "SELECT value FROM server_meta WHERE key = 'epoch'",
                    [],
                    |r| r.get(0),
                )
                .optional()?;
            let epoch = match found {
                Some(e) => e,
                None => {
                    let e = random_hex(8)?;
                    tx.execute(
                        "INSERT INTO server_meta (key, value) VALUES ('epoch', ?1)",
                        [&e],
                    )?;
                    e
                }
            };
            tx.commit()?;
            epoch
        };
        Ok(SqliteDb {
            conn: Mutex::new(conn),
            epoch,
        })
    }

    /// The connection, locked for one call (SQLite has one writer anyway).
    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A `BEGIN IMMEDIATE` transaction: the write lock from the start, also across processes.
fn immediate(conn: &mut Connection) -> Result<Transaction<'_>, DbError> {
    Ok(conn.transaction_with_behavior(TransactionBehavior::Immediate)?)
}

impl Store for SqliteDb {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn issuer_keys(&self) -> Result<Vec<StoredIssuerKey>, DbError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT kid, key_json, valid_from_ms, valid_until_ms FROM issuer_keys \
             ORDER BY created_at_ms, kid",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(StoredIssuerKey {
                kid: r.get(0)?,
                key_json: r.get(1)?,
                valid_from_ms: r.get(2)?,
                valid_until_ms: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn install_issuer_key(
        &self,
        new: &StoredIssuerKey,
        now_ms: i64,
        only_if_none: bool,
    ) -> Result<bool, DbError> {
        let mut conn = self.conn();
        let tx = immediate(&mut conn)?;
        let active: i64 = tx.query_row(
            "SELECT count(*) FROM issuer_keys WHERE valid_until_ms IS NULL",
            [],
            |r| r.get(0),
        )?;
        if only_if_none && active > 0 {
            return Ok(false);
        }
        tx.execute(
            "UPDATE issuer_keys SET valid_until_ms = ?1 WHERE valid_until_ms IS NULL",
            [now_ms],
        )?;
        tx.execute(
            "INSERT INTO issuer_keys (kid, key_json, valid_from_ms, valid_until_ms, created_at_ms) \
             VALUES (?1, ?2, ?3, NULL, ?3)",
            params![new.kid, new.key_json, now_ms],
        )?;
        tx.commit()?;
        Ok(true)
    }

    /// Make sure an admin can log in: with `token` when given (replacing the bootstrap admin's
    /// token), else with a new token when no admin exists yet. Returns the new token to print.
    fn bootstrap_admin(&self, token: Option<&str>) -> Result<Option<String>, DbError> {
        let mut conn = self.conn();
        let tx = immediate(&mut conn)?;
        let has_admin = tx
            .prepare("SELECT 1 FROM devices WHERE role = 'admin' AND disabled = 0")?
            .exists([])?;
        let (token, fresh) = match token {
            Some(t) => (t.to_owned(), false),
            None if has_admin => return Ok(None),
            None => (random_hex(32)?, true),
        };
        tx.execute(
            "INSERT OR REPLACE INTO devices \
             (device_id, token_hash, person, role, public_key, device_name, created_at_ms) \
             VALUES (?1, ?2, 'bootstrap', 'admin', '', 'bootstrap', ?3)",
            params![BOOTSTRAP_DEVICE, hash(&token), now_ms()],
        )?;
        tx.commit()?;
        Ok(fresh.then_some(token))
    }

    /// What a bearer token is at `now_ms`.
    fn check_token(&self, token: &str, now_ms: i64) -> Result<TokenCheck, DbError> {
        let digest = hash(token);
        let conn = self.conn();
        let row = conn
            .prepare_cached(
                "SELECT device_id, person, role, token_expires_at_ms, \
                 coalesce(person_id, person) FROM devices WHERE token_hash = ?1 AND disabled = 0",
            )?
            .query_row([&digest], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                    r.get::<_, String>(4)?,
                ))
            })
            .optional()?;
        match row {
            None => {
                let retired = conn
                    .prepare_cached(
                        "SELECT 1 FROM devices WHERE retired_token_hash = ?1 AND disabled = 0",
                    )?
                    .exists([&digest])?;
                Ok(if retired {
                    TokenCheck::Expired
                } else {
                    TokenCheck::Unknown
                })
            }
            Some((_, _, _, Some(expires), _)) if expires <= now_ms => Ok(TokenCheck::Expired),
            Some((device_id, person, role, _, person_id)) => {
                let role =
                    Role::parse(&role).ok_or_else(|| DbError::Invalid(format!("role {role:?}")))?;
                Ok(TokenCheck::Valid(Caller {
                    device_id,
                    person,
                    person_id,
                    role,
                }))
            }
        }
    }

    fn create_auth_nonce(
        &self,
        device_id: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<(String, i64), DbError> {
        let nonce = random_hex(32)?;
        let expires = now_ms.saturating_add(ttl_ms);
        let mut conn = self.conn();
        let tx = immediate(&mut conn)?;
        let disabled: Option<bool> = tx
            .prepare_cached("SELECT disabled <> 0 FROM devices WHERE device_id = ?1")?
            .query_row([device_id], |r| r.get(0))
            .optional()?;
        match disabled {
            None => return Err(DbError::Refresh(RefreshRefusal::UnknownDevice)),
            Some(true) => return Err(DbError::Refresh(RefreshRefusal::DeviceDisabled)),
            Some(false) => {}
        }
        tx.execute(
            "DELETE FROM auth_nonces WHERE expires_at_ms <= ?1",
            [now_ms],
        )?;
        tx.execute(
            "DELETE FROM auth_nonces WHERE device_id = ?1 AND nonce_hash NOT IN \
             (SELECT nonce_hash FROM auth_nonces WHERE device_id = ?1 \
              ORDER BY expires_at_ms DESC LIMIT ?2)",
            params![device_id, MAX_NONCES_PER_DEVICE - 1],
        )?;
        tx.execute(
            "INSERT INTO auth_nonces (nonce_hash, device_id, expires_at_ms) VALUES (?1, ?2, ?3)",
            params![hash(&nonce), device_id, expires],
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
        let mut conn = self.conn();
        let tx = immediate(&mut conn)?;
        // Consume the nonce; a refusal below rolls this back (dropping `tx`).
        let nonce_expires: Option<i64> = tx
            .prepare_cached(
                "DELETE FROM auth_nonces WHERE nonce_hash = ?1 AND device_id = ?2 \
                 RETURNING expires_at_ms",
            )?
            .query_row(params![hash(nonce), device_id], |r| r.get(0))
            .optional()?;
        let nonce_expires = nonce_expires.ok_or(DbError::Refresh(RefreshRefusal::BadNonce))?;
        if nonce_expires <= now_ms {
            tx.commit()?;
            return Err(DbError::Refresh(RefreshRefusal::NonceExpired));
        }
        let device: Option<(String, bool)> = tx
            .prepare_cached("SELECT public_key, disabled <> 0 FROM devices WHERE device_id = ?1")?
            .query_row([device_id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let (public_key, disabled) =
            device.ok_or(DbError::Refresh(RefreshRefusal::UnknownDevice))?;
        if disabled {
            return Err(DbError::Refresh(RefreshRefusal::DeviceDisabled));
        }
        if !refresh_signature_ok(&public_key, device_id, nonce, signature_hex) {
            return Err(DbError::Refresh(RefreshRefusal::BadSignature));
        }
        tx.execute(
            "UPDATE devices SET retired_token_hash = token_hash, token_hash = ?2, \
             token_expires_at_ms = ?3 WHERE device_id = ?1",
            params![device_id, hash(&token), expires_at_ms],
        )?;
        tx.commit()?;
        Ok(IssuedToken {
            token,
            expires_at_ms,
        })
    }

    /// Disable a device and drop its pending refresh nonces; `false` when there is no such device.
    fn disable_device(&self, device_id: &str) -> Result<bool, DbError> {
        let mut conn = self.conn();
        let tx = immediate(&mut conn)?;
        let changed = tx.execute(
            "UPDATE devices SET disabled = 1, disabled_at_ms = coalesce(disabled_at_ms, ?2) \
             WHERE device_id = ?1",
            params![device_id, now_ms()],
        )?;
        tx.execute(
            "DELETE FROM auth_nonces WHERE device_id = ?1",
            params![device_id],
        )?;
        tx.commit()?;
        Ok(changed > 0)
    }

    fn create_enrolment(&self, grant: &Grant) -> Result<String, DbError> {
        let code = random_hex(10)?.to_uppercase();
        let mut conn = self.conn();
        let tx = immediate(&mut conn)?;
        tx.execute(
            "INSERT INTO enrolment_codes (code_hash, person, role, created_at_ms, person_id, \
             permit_roles, scope) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                hash(&code),
                grant.person,
                grant.role.as_str(),
                now_ms(),
                grant.person_id,
                roles_json(&grant.permit_roles)?,
                grant.scope
            ],
        )?;
        tx.commit()?;
        Ok(code)
    }

    /// Use an enrolment code (once): register the device and return (token, caller).
    fn enrol_expiring(
        &self,
        code: &str,
        public_key: &str,
        device_name: &str,
        expires_at_ms: Option<i64>,
    ) -> Result<(String, Caller), DbError> {
        let token = random_hex(32)?;
        let device_id = random_hex(8)?;
        let mut conn = self.conn();
        let tx = immediate(&mut conn)?;
        let found = tx
            .prepare_cached(
                "SELECT person, role, person_id, permit_roles, scope FROM enrolment_codes \
                 WHERE code_hash = ?1 AND used_by IS NULL",
            )?
            .query_row([hash(code.trim())], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Option<String>>(4)?,
                ))
            })
            .optional()?;
        let (person, role, person_id, permit_roles, scope) =
            found.ok_or(DbError::BadEnrolmentCode)?;
        let role = Role::parse(&role).ok_or_else(|| DbError::Invalid(format!("role {role:?}")))?;
        tx.execute(
            "UPDATE enrolment_codes SET used_by = ?2 WHERE code_hash = ?1",
            params![hash(code.trim()), device_id],
        )?;
        tx.execute(
            "INSERT INTO devices (device_id, token_hash, person, role, public_key, device_name, \
             created_at_ms, token_expires_at_ms, person_id, permit_roles, scope) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                device_id,
                hash(&token),
                person,
                role.as_str(),
                public_key,
                device_name,
                now_ms(),
                expires_at_ms,
                person_id,
                permit_roles,
                scope
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

    /// Insert pushed records, all in one transaction. Each item is (key, kind, payload); items
    /// already rejected by validation are not passed here.
    fn insert_plain_records(
        &self,
        device_id: &str,
        items: &[(&str, &str, &str)],
        on_applied: &mut OnApplied<'_>,
    ) -> Result<Vec<Insert>, DbError> {
        let at = now_ms();
        let mut conn = self.conn();
        let tx = immediate(&mut conn)?;
        let mut out = Vec::with_capacity(items.len());
        {
            let mut find =
                tx.prepare_cached("SELECT payload_hash FROM records WHERE idempotency_key = ?1")?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO records (idempotency_key, kind, payload, payload_hash, device_id, received_at_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for (key, kind, payload) in items {
                let digest = hash(payload);
                let existing: Option<Vec<u8>> = find.query_row([key], |r| r.get(0)).optional()?;
                out.push(match existing {
                    Some(h) if h == digest => Insert::Duplicate,
                    Some(_) => Insert::Conflict,
                    None => {
                        insert.execute(params![key, kind, payload, digest, device_id, at])?;
                        let record = AppliedRecord {
                            key,
                            kind,
                            payload,
                            device_id,
                            at_ms: at,
                        };
                        on_applied(&mut SqliteTx(&tx), &record)?;
                        Insert::Applied
                    }
                });
            }
        }
        tx.commit()?;
        Ok(out)
    }

    /// The flags stored with the record under `key`, sorted.
    fn record_flags(&self, key: &str) -> Result<Vec<String>, DbError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT flag FROM record_flags WHERE idempotency_key = ?1 ORDER BY flag",
        )?;
        let rows = stmt
            .query_map([key], |r| r.get(0))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    fn records(&self, kind: Option<&str>) -> Result<Vec<StoredRecord>, DbError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT idempotency_key, kind, payload, device_id, received_at_ms FROM records \
             WHERE ?1 IS NULL OR kind = ?1 ORDER BY rowid",
        )?;
        let rows = stmt
            .query_map([kind], |r| {
                Ok(StoredRecord {
                    idempotency_key: r.get(0)?,
                    kind: r.get(1)?,
                    payload: r.get(2)?,
                    device_id: r.get(3)?,
                    received_at_ms: r.get(4)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    fn records_page(
        &self,
        kind: Option<&str>,
        after: i64,
        limit: u32,
    ) -> Result<super::RecordPage, DbError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT rowid, idempotency_key, kind, payload, device_id, received_at_ms FROM records \
             WHERE (?1 IS NULL OR kind = ?1) AND rowid > ?2 ORDER BY rowid LIMIT ?3",
        )?;
        let mut rows = stmt
            .query_map(params![kind, after, i64::from(limit) + 1], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    StoredRecord {
                        idempotency_key: r.get(1)?,
                        kind: r.get(2)?,
                        payload: r.get(3)?,
                        device_id: r.get(4)?,
                        received_at_ms: r.get(5)?,
                    },
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(super::record_page(&mut rows, limit))
    }

    /// Append registry changes to the feed in one transaction; returns the last seq.
    fn write_changes_queueing(
        &self,
        changes: &[RegistryChange],
        deadlines: &[NewDeadline],
    ) -> Result<i64, DbError> {
        let mut conn = self.conn();
        let tx = immediate(&mut conn)?;
        {
            let mut insert =
                tx.prepare_cached("INSERT INTO changes (entity, change) VALUES (?1, ?2)")?;
            for change in changes {
                insert.execute(params![entity_of(change), change_json(change)?])?;
            }
        }
        for deadline in deadlines {
            SqliteTx(&tx).schedule(deadline)?;
        }
        let last = high_water(&tx)?;
        tx.commit()?;
        Ok(last)
    }

    /// Forget history through `through` (default: everything): keep the newest change of each
    /// entity, drop tombstones. Returns the new floor.
    fn compact(&self, through: Option<i64>) -> Result<i64, DbError> {
        let mut conn = self.conn();
        let tx = immediate(&mut conn)?;
        let top = high_water(&tx)?;
        let floor_now = floor(&tx)?;
        let through = through.unwrap_or(top).clamp(floor_now, top);
        tx.execute(
            "DELETE FROM changes WHERE seq <= ?1 AND EXISTS \
             (SELECT 1 FROM changes later WHERE later.entity = changes.entity AND later.seq > changes.seq)",
            [through],
        )?;
        let tombstones: Vec<i64> = {
            let mut stmt = tx.prepare("SELECT seq, change FROM changes WHERE seq <= ?1")?;
            let rows = stmt
                .query_map([through], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            tombstone_seqs(rows)
        };
        for seq in tombstones {
            tx.execute("DELETE FROM changes WHERE seq = ?1", [seq])?;
        }
        tx.execute(
            "INSERT OR REPLACE INTO server_meta (key, value) VALUES ('history_floor', ?1)",
            [through.to_string()],
        )?;
        // The snapshots cut before the new floor would send devices to a cursor the feed no
        // longer serves: gone with the history, in this transaction.
        tx.execute(
            "DELETE FROM snapshot_chunks WHERE snapshot_id IN (SELECT snapshot_id FROM snapshots \
             WHERE cursor_seq IS NULL OR cursor_seq < ?1)",
            [through],
        )?;
        tx.execute(
            "DELETE FROM snapshots WHERE cursor_seq IS NULL OR cursor_seq < ?1",
            [through],
        )?;
        tx.commit()?;
        Ok(through)
    }

    /// One page of changes after `cursor` (`None`: from the start).
    fn pull(&self, cursor: Option<&str>, limit: u32) -> Result<Page, DbError> {
        let epoch = self.epoch.clone();
        // A deferred transaction: one consistent snapshot for the page and the high water.
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let floor = floor(&tx)?;
        let top = high_water(&tx)?;
        let after = parse_cursor(cursor, &epoch, floor, top)?;
        let rows: Vec<(i64, String)> = {
            let mut stmt = tx.prepare_cached(
                "SELECT seq, change FROM changes WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            )?;
            stmt.query_map(params![after, i64::from(limit) + 1], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?
            .collect::<Result<Vec<_>, _>>()?
        };
        tx.commit()?;
        Ok(make_page(&epoch, after, top, rows, limit))
    }

    /// Place one permit step in one `BEGIN IMMEDIATE` transaction (one writer at a time).
    fn push_permit_step(
        &self,
        device_id: &str,
        key: &str,
        payload: &str,
        admit: &dyn AdmitStep,
        on_applied: &mut OnApplied<'_>,
    ) -> Result<Insert, DbError> {
        let at = now_ms();
        let mut conn = self.conn();
        let tx = immediate(&mut conn)?;
        let mut ledger = SqliteTx(&tx);
        let result = crate::permits::push_step(&mut ledger, device_id, key, payload, at, admit)?;
        if result == Insert::Applied {
            let record = AppliedRecord {
                key,
                kind: PERMIT_STEP_KIND,
                payload,
                device_id,
                at_ms: at,
            };
            on_applied(&mut ledger, &record)?;
        }
        tx.commit()?;
        Ok(result)
    }

    /// The mutex is not fair: a thread that unlocks and locks again at once would keep the
    /// connection for a whole batch of permit steps (up to 500), so a request waiting for it
    /// (`/health`, another device) gets a moment between two steps.
    fn between_permit_steps(&self) {
        std::thread::sleep(Duration::from_micros(100));
    }

    /// Every device whose person may sign permits, disabled ones included (their validity ends).
    fn signer_rows(&self) -> Result<Vec<SignerRow>, DbError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT device_id, public_key, coalesce(person_id, person), person, permit_roles, \
             created_at_ms, CASE WHEN disabled = 0 THEN NULL ELSE coalesce(disabled_at_ms, 0) END \
             FROM devices WHERE permit_roles <> '[]' ORDER BY device_id",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok(SignerRow {
                    device_id: r.get(0)?,
                    public_key_hex: r.get(1)?,
                    person_id: r.get(2)?,
                    name: r.get(3)?,
                    permit_roles_json: r.get(4)?,
                    enrolled_at_ms: r.get(5)?,
                    disabled_at_ms: r.get(6)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    fn permit_heads(
        &self,
        cursor: Option<&str>,
        limit: u32,
        person: Option<&str>,
    ) -> Result<PermitPage, DbError> {
        let epoch = self.epoch.clone();
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let top: i64 = tx.query_row("SELECT coalesce(max(seq), 0) FROM permit_heads", [], |r| {
            r.get(0)
        })?;
        let after = parse_cursor(cursor, &epoch, 0, top)?;
        let rows = {
            let mut stmt = tx.prepare_cached(
                "SELECT permit_id, step_id, action, state, digest, body, seq FROM permit_heads h \
                 WHERE seq > ?1 AND (?3 IS NULL OR EXISTS (SELECT 1 FROM permit_people p \
                 WHERE p.person = ?3 AND p.permit_id = h.permit_id)) ORDER BY seq LIMIT ?2",
            )?;
            stmt.query_map(params![after, i64::from(limit) + 1, person], |r| {
                Ok(HeadEntry {
                    permit_id: r.get(0)?,
                    step_id: r.get(1)?,
                    action: r.get(2)?,
                    state: r.get(3)?,
                    digest: r.get(4)?,
                    body: r.get(5)?,
                    seq: r.get(6)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?
        };
        tx.commit()?;
        Ok(make_permit_page(&epoch, after, top, rows, limit))
    }

    fn permit_step_standings(&self, permit_id: &str) -> Result<Vec<PermitStepStanding>, DbError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT step_id, base_step, action, status, reason FROM permit_steps \
             WHERE permit_id = ?1 ORDER BY rowid",
        )?;
        let rows = stmt
            .query_map([permit_id], |r| {
                Ok(PermitStepStanding {
                    step_id: r.get(0)?,
                    base: r.get(1)?,
                    action: r.get(2)?,
                    status: r.get(3)?,
                    reason: r.get(4)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    // Published snapshots, shared by every server process on the file.

    fn save_snapshot(&self, snapshot: &StoredSnapshot, keep: u32) -> Result<bool, DbError> {
        let mut conn = self.conn();
        let tx = immediate(&mut conn)?;
        if snapshot.cursor_seq < floor(&tx)? {
            // Cut from a view older than a compaction that committed meanwhile: not published.
            return Ok(false);
        }
        let inserted = tx.execute(
            "INSERT OR IGNORE INTO snapshots (snapshot_id, manifest, made_at_ms, chunks, \
             cursor_seq) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                snapshot.snapshot_id,
                snapshot.manifest,
                snapshot.made_at_ms,
                snapshot.chunks_gzip.len() as i64,
                snapshot.cursor_seq
            ],
        )?;
        if inserted == 1 {
            let mut insert = tx.prepare(
                "INSERT INTO snapshot_chunks (snapshot_id, idx, body_gzip) VALUES (?1, ?2, ?3)",
            )?;
            for (idx, body) in snapshot.chunks_gzip.iter().enumerate() {
                insert.execute(params![snapshot.snapshot_id, idx as i64, body])?;
            }
        }
        let stale: Vec<String> = tx
            .prepare(
                "SELECT snapshot_id FROM snapshots ORDER BY made_at_ms DESC, snapshot_id \
                 LIMIT -1 OFFSET ?1",
            )?
            .query_map([keep], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for id in stale {
            tx.execute("DELETE FROM snapshot_chunks WHERE snapshot_id = ?1", [&id])?;
            tx.execute("DELETE FROM snapshots WHERE snapshot_id = ?1", [&id])?;
        }
        tx.commit()?;
        Ok(true)
    }

    fn latest_snapshot(&self) -> Result<Option<SnapshotHead>, DbError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT snapshot_id, manifest, made_at_ms, chunks FROM snapshots \
                 ORDER BY made_at_ms DESC, snapshot_id LIMIT 1",
                [],
                |r| {
                    Ok(SnapshotHead {
                        snapshot_id: r.get(0)?,
                        manifest: r.get(1)?,
                        made_at_ms: r.get(2)?,
                        chunks: r.get(3)?,
                    })
                },
            )
            .optional()?)
    }

    fn snapshot_chunk(&self, snapshot_id: &str, idx: i64) -> Result<Option<Vec<u8>>, DbError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT body_gzip FROM snapshot_chunks WHERE snapshot_id = ?1 AND idx = ?2",
                params![snapshot_id, idx],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn write_places(&self, changes: &[PlaceChange]) -> Result<(), DbError> {
        let mut conn = self.conn();
        let tx = immediate(&mut conn)?;
        for change in changes {
            match change {
                PlaceChange::UpsertSite(site) => {
                    tx.execute(
                        "INSERT INTO sites (site_id, name, district, town, grid, latitude_e7, \
                         longitude_e7) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
                         ON CONFLICT (site_id) DO UPDATE SET name = excluded.name, \
                         district = excluded.district, town = excluded.town, \
                         grid = excluded.grid, latitude_e7 = excluded.latitude_e7, \
                         longitude_e7 = excluded.longitude_e7",
                        params![
                            site.site_id,
                            site.name,
                            site.place.district,
                            site.place.town,
                            site.place.grid,
                            site.location.latitude_e7,
                            site.location.longitude_e7
                        ],
                    )?;
                }
                PlaceChange::DeleteSite { site_id } => {
                    tx.execute("DELETE FROM sites WHERE site_id = ?1", [site_id])?;
                }
                PlaceChange::PlaceMachine(m) => {
                    upsert_place(
                        &tx,
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
                        "DELETE FROM places WHERE subject = 'machine' AND id = ?1",
                        [machine_id],
                    )?;
                }
                PlaceChange::PlaceLicence(l) => {
                    upsert_place(
                        &tx,
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
                        "DELETE FROM places WHERE subject = 'licence' AND id = ?1",
                        [certificate_no],
                    )?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn device_scope(&self, device_id: &str) -> Result<Option<String>, DbError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT scope FROM devices WHERE device_id = ?1",
                [device_id],
                |r| r.get::<_, Option<String>>(0),
            )
            .optional()?
            .flatten())
    }

    fn warnings_page(&self, query: &WarningQuery) -> Result<Vec<WarningRow>, DbError> {
        let (tail, values) = query.page_sql(|n| format!("?{n}"));
        let values = values.into_iter().map(|v| match v {
            SqlValue::Text(t) => rusqlite::types::Value::Text(t),
            SqlValue::Int(i) => rusqlite::types::Value::Integer(i),
        });
        let conn = self.conn();
        let mut stmt =
            conn.prepare_cached(&format!("SELECT {WARNING_COLUMNS} FROM warnings {tail}"))?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(values), warning_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    fn warning(&self, id: i64) -> Result<Option<WarningRow>, DbError> {
        Ok(self
            .conn()
            .query_row(
                &format!("SELECT {WARNING_COLUMNS} FROM warnings WHERE id = ?1"),
                [id],
                warning_row,
            )
            .optional()?)
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
        let mut conn = self.conn();
        let tx = immediate(&mut conn)?;
        let sql = match to {
            WarningState::Closed => {
                "UPDATE warnings SET state = ?3, closed_by = ?4, closed_at_ms = ?5, \
                 close_note = ?6 WHERE id = ?1 AND state = ?2"
            }
            _ => {
                "UPDATE warnings SET state = ?3, acknowledged_by = ?4, acknowledged_at_ms = ?5 \
                 WHERE id = ?1 AND state = ?2 AND ?6 IS NULL"
            }
        };
        let n = tx.execute(
            sql,
            params![id, from.as_str(), to.as_str(), by, at_ms, note],
        )?;
        if n == 1 && from == WarningState::Open {
            let (at, district, town): (i64, Option<String>, Option<String>) = tx.query_row(
                "SELECT at_ms, district, town FROM warnings WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
            SqliteTx(&tx).count(
                &china_day(at),
                district.as_deref().unwrap_or(""),
                town.as_deref().unwrap_or(""),
                WARNINGS_OPEN,
                -1,
            )?;
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
        let (column, value) = match scope_filter(scope) {
            (Some(d), _) => ("district", Some(d)),
            (_, Some(t)) => ("town", Some(t)),
            _ => ("district", None),
        };
        let sql = match value {
            Some(_) => format!(
                "SELECT {WARNING_COLUMNS} FROM warnings WHERE {column} = ?3 AND id > ?1 \
                 ORDER BY id LIMIT ?2"
            ),
            None => format!(
                "SELECT {WARNING_COLUMNS} FROM warnings WHERE id > ?1 AND ?3 IS NULL \
                 ORDER BY id LIMIT ?2"
            ),
        };
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt
            .query_map(params![after_id, i64::from(limit), value], warning_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    fn last_warning_id(&self) -> Result<i64, DbError> {
        Ok(self
            .conn()
            .query_row("SELECT coalesce(max(id), 0) FROM warnings", [], |r| {
                r.get(0)
            })?)
    }

    fn counts(
        &self,
        scope: &Scope,
        from_day: &str,
        until_day: &str,
    ) -> Result<Vec<CountRow>, DbError> {
        let (district, town) = scope_filter(scope);
        let sql = match (district, town) {
            (Some(_), _) => {
                "SELECT day, district, town, metric, n FROM daily_counts \
                 WHERE district = ?3 AND day BETWEEN ?1 AND ?2"
            }
            (_, Some(_)) => {
                "SELECT day, district, town, metric, n FROM daily_counts \
                 WHERE town = ?3 AND day BETWEEN ?1 AND ?2"
            }
            _ => {
                "SELECT day, district, town, metric, n FROM daily_counts \
                 WHERE day BETWEEN ?1 AND ?2 AND ?3 IS NULL"
            }
        };
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(sql)?;
        let rows = stmt
            .query_map(params![from_day, until_day, district.or(town)], |r| {
                Ok(CountRow {
                    day: r.get(0)?,
                    district: r.get(1)?,
                    town: r.get(2)?,
                    metric: r.get(3)?,
                    n: r.get(4)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    fn run_due(&self, now_ms: i64, limit: u32, on_due: &mut OnDue<'_>) -> Result<usize, DbError> {
        let mut conn = self.conn();
        let tx = immediate(&mut conn)?;
        let rows = {
            let mut stmt = tx.prepare_cached(
                "SELECT id, dedup_key, kind, due_at_ms, payload FROM deadlines \
                 WHERE due_at_ms <= ?1 ORDER BY due_at_ms, id LIMIT ?2",
            )?;
            stmt.query_map(params![now_ms, i64::from(limit)], |r| {
                Ok(DueRow {
                    id: r.get(0)?,
                    dedup_key: r.get(1)?,
                    kind: r.get(2)?,
                    due_at_ms: r.get(3)?,
                    payload: r.get(4)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?
        };
        if rows.is_empty() {
            return Ok(0);
        }
        on_due(&mut SqliteTx(&tx), &rows)?;
        {
            let mut delete = tx.prepare_cached("DELETE FROM deadlines WHERE id = ?1")?;
            for row in &rows {
                delete.execute([row.id])?;
            }
        }
        tx.commit()?;
        Ok(rows.len())
    }

    fn deadlines_queued(&self) -> Result<i64, DbError> {
        let conn = self.conn();
        Ok(conn.query_row("SELECT count(*) FROM deadlines", [], |r| r.get(0))?)
    }

    fn ledger_page(
        &self,
        day: &str,
        scope: &Scope,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<LedgerRow>, DbError> {
        let (district, town) = scope_filter(scope);
        let filter = match (district, town) {
            (Some(_), _) => "district = ?4",
            (_, Some(_)) => "town = ?4",
            _ => "?4 IS NULL",
        };
        let sql = format!(
            "SELECT {LEDGER_COLUMNS} FROM ledger WHERE {filter} AND day = ?1 AND id > ?2 \
             ORDER BY id LIMIT ?3"
        );
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt
            .query_map(
                params![day, after_id, i64::from(limit), district.or(town)],
                ledger_row,
            )?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    // The dashboard's pages (crate::platform_views).

    fn view_sites(&self, scope: &Scope, site_id: Option<&str>) -> Result<Vec<SiteRow>, DbError> {
        let (district, town) = scope_filter(scope);
        let conn = self.conn();
        let mut sites = conn
            .prepare_cached(
                "SELECT s.site_id, s.name, s.district, s.town, s.grid, s.latitude_e7, \
                 s.longitude_e7, (SELECT count(*) FROM places p WHERE p.subject = 'machine' \
                 AND p.site_id = s.site_id AND (?1 IS NULL OR p.district = ?1) \
                 AND (?2 IS NULL OR p.town = ?2)) \
                 FROM sites s WHERE (?1 IS NULL OR s.district = ?1) \
                 AND (?2 IS NULL OR s.town = ?2) AND (?3 IS NULL OR s.site_id = ?3) \
                 ORDER BY s.site_id LIMIT ?4",
            )?
            .query_map(
                params![district, town, site_id, i64::from(MAX_SITES)],
                |r| {
                    Ok(SiteRow {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        district: r.get(2)?,
                        town: r.get(3)?,
                        grid: r.get(4)?,
                        lat_e7: r.get(5)?,
                        lon_e7: r.get(6)?,
                        machines: r.get(7)?,
                        open_by_kind: BTreeMap::new(),
                    })
                },
            )?
            .collect::<Result<Vec<_>, _>>()?;
        let open = conn
            .prepare_cached(
                "SELECT site_id, kind, count(*) FROM warnings WHERE state = 'open' \
                 AND site_id IS NOT NULL AND (?1 IS NULL OR district = ?1) \
                 AND (?2 IS NULL OR town = ?2) AND (?3 IS NULL OR site_id = ?3) \
                 GROUP BY site_id, kind",
            )?
            .query_map(params![district, town, site_id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
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
        let conn = self.conn();
        let rows = conn
            .prepare_cached(
                "SELECT p.id, p.watch, p.district, p.town, p.grid, p.site_id, s.name, \
                 coalesce(p.latitude_e7, s.latitude_e7), coalesce(p.longitude_e7, s.longitude_e7), \
                 (SELECT count(*) FROM warnings w WHERE w.machine_id = p.id AND w.state = 'open' \
                 AND (?1 IS NULL OR w.district = ?1) AND (?2 IS NULL OR w.town = ?2)) \
                 FROM places p LEFT JOIN sites s ON s.site_id = p.site_id \
                 WHERE p.subject = 'machine' AND (?1 IS NULL OR p.district = ?1) \
                 AND (?2 IS NULL OR p.town = ?2) AND (?3 IS NULL OR p.site_id = ?3) \
                 AND (?4 IS NULL OR p.id = ?4) ORDER BY p.id LIMIT ?5",
            )?
            .query_map(
                params![district, town, site_id, machine_id, i64::from(limit)],
                |r| {
                    Ok(MachineRow {
                        id: r.get(0)?,
                        watch: r.get(1)?,
                        district: r.get(2)?,
                        town: r.get(3)?,
                        grid: r.get(4)?,
                        site_id: r.get(5)?,
                        site_name: r.get(6)?,
                        lat_e7: r.get(7)?,
                        lon_e7: r.get(8)?,
                        open_warnings: r.get(9)?,
                    })
                },
            )?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    fn view_licence_place(
        &self,
        scope: &Scope,
        certificate_no: &str,
    ) -> Result<Option<Place>, DbError> {
        let (district, town) = scope_filter(scope);
        Ok(self
            .conn()
            .prepare_cached(
                "SELECT district, town, grid FROM places WHERE subject = 'licence' AND id = ?3 \
                 AND (?1 IS NULL OR district = ?1) AND (?2 IS NULL OR town = ?2)",
            )?
            .query_row(params![district, town, certificate_no], |r| {
                Ok(Place {
                    district: r.get(0)?,
                    town: r.get(1)?,
                    grid: r.get(2)?,
                })
            })
            .optional()?)
    }

    fn registry_entity(&self, entity: &str) -> Result<Option<String>, DbError> {
        Ok(self
            .conn()
            .prepare_cached(NEWEST_CHANGE)?
            .query_row([entity], |r| r.get(0))
            .optional()?)
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
             WHERE l.kind = 'start' AND l.{} = ?3 AND (?1 IS NULL OR l.district = ?1) \
             AND (?2 IS NULL OR l.town = ?2) ORDER BY l.at_ms DESC, l.id DESC LIMIT ?4",
            subject.ledger_column()
        );
        let conn = self.conn();
        let rows = conn
            .prepare_cached(&sql)?
            .query_map(
                params![district, town, subject.id(), i64::from(limit)],
                |r| {
                    Ok(StartRecord {
                        ledger: ledger_row(r)?,
                        payload: r.get(15)?,
                    })
                },
            )?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    fn view_warnings(
        &self,
        scope: &Scope,
        subject: &Subject<'_>,
        limit: u32,
    ) -> Result<Vec<WarningRow>, DbError> {
        let (district, town) = scope_filter(scope);
        let sql = format!(
            "SELECT {WARNING_COLUMNS} FROM warnings WHERE {} = ?3 \
             AND (?1 IS NULL OR district = ?1) AND (?2 IS NULL OR town = ?2) \
             ORDER BY id DESC LIMIT ?4",
            subject.warning_column()
        );
        let conn = self.conn();
        let rows = conn
            .prepare_cached(&sql)?
            .query_map(
                params![district, town, subject.id(), i64::from(limit)],
                warning_row,
            )?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    fn view_site_permits(&self, site_id: &str, limit: u32) -> Result<Vec<PermitHeadRow>, DbError> {
        let conn = self.conn();
        let rows = conn
            .prepare_cached(
                "SELECT h.permit_id, h.state, h.body, h.updated_at_ms FROM permit_heads h \
                 WHERE h.permit_id IN (SELECT ps.permit_id FROM ledger l \
                 JOIN permit_steps ps ON ps.step_id = l.idempotency_key \
                 WHERE l.kind = 'permit_step' AND l.site_id = ?1) \
                 ORDER BY h.updated_at_ms DESC, h.permit_id LIMIT ?2",
            )?
            .query_map(params![site_id, i64::from(limit)], permit_head_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    fn view_permit(
        &self,
        permit_id: &str,
    ) -> Result<Option<(PermitHeadRow, Vec<PermitStepRow>)>, DbError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let head = tx
            .prepare_cached(
                "SELECT permit_id, state, body, updated_at_ms FROM permit_heads \
                 WHERE permit_id = ?1",
            )?
            .query_row([permit_id], permit_head_row)
            .optional()?;
        let Some(head) = head else {
            return Ok(None);
        };
        let steps = tx
            .prepare_cached(
                "SELECT ps.step_id, ps.action, ps.body, ps.device_id, d.person, \
                 ps.received_at_ms FROM permit_steps ps \
                 LEFT JOIN devices d ON d.device_id = ps.device_id \
                 WHERE ps.permit_id = ?1 AND ps.status = 'applied' ORDER BY ps.rowid",
            )?
            .query_map([permit_id], |r| {
                Ok(PermitStepRow {
                    step_id: r.get(0)?,
                    action: r.get(1)?,
                    body: r.get(2)?,
                    device_id: r.get(3)?,
                    person: r.get(4)?,
                    received_at_ms: r.get(5)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        tx.commit()?;
        Ok(Some((head, steps)))
    }
}

fn permit_head_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<PermitHeadRow> {
    Ok(PermitHeadRow {
        permit_id: r.get(0)?,
        state: r.get(1)?,
        body: r.get(2)?,
        updated_at_ms: r.get(3)?,
    })
}

/// The columns of a ledger row, in [`ledger_row`]'s order.
const LEDGER_COLUMNS: &str = "id, idempotency_key, day, at_ms, kind, district, town, site_id, \
     machine_id, person, decision, detail, latitude_e7, longitude_e7, accuracy_m";

fn ledger_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<LedgerRow> {
    let lat: Option<i32> = r.get(12)?;
    let lon: Option<i32> = r.get(13)?;
    let acc: Option<u32> = r.get(14)?;
    Ok(LedgerRow {
        id: r.get(0)?,
        key: r.get(1)?,
        day: r.get(2)?,
        at_ms: r.get(3)?,
        kind: r.get(4)?,
        district: r.get(5)?,
        town: r.get(6)?,
        site_id: r.get(7)?,
        machine_id: r.get(8)?,
        person: r.get(9)?,
        decision: r.get(10)?,
        detail: r.get(11)?,
        position: match (lat, lon, acc) {
            (Some(a), Some(b), Some(c)) => Some((a, b, c)),
            _ => None,
        },
    })
}

/// The columns of a warning row, in [`warning_row`]'s order.
const WARNING_COLUMNS: &str = "id, kind, records, machine_id, certificate_no, district, town, \
     grid, site_id, at_ms, raised_at_ms, detail, state, acknowledged_by, acknowledged_at_ms, \
     closed_by, closed_at_ms, close_note";

fn warning_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<WarningRow> {
    Ok(WarningRow {
        id: r.get(0)?,
        kind: r.get(1)?,
        records_json: r.get(2)?,
        machine_id: r.get(3)?,
        certificate_no: r.get(4)?,
        district: r.get(5)?,
        town: r.get(6)?,
        grid: r.get(7)?,
        site_id: r.get(8)?,
        at_ms: r.get(9)?,
        raised_at_ms: r.get(10)?,
        detail_json: r.get(11)?,
        state: r.get(12)?,
        acknowledged_by: r.get(13)?,
        acknowledged_at_ms: r.get(14)?,
        closed_by: r.get(15)?,
        closed_at_ms: r.get(16)?,
        close_note: r.get(17)?,
    })
}

fn upsert_place(
    tx: &Transaction<'_>,
    subject: &str,
    id: &str,
    place: &Place,
    site_id: Option<&str>,
    location: Option<GeoPoint>,
    watch: &str,
) -> Result<(), DbError> {
    tx.execute(
        "INSERT INTO places (subject, id, district, town, grid, site_id, latitude_e7, \
         longitude_e7, watch) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
         ON CONFLICT (subject, id) DO UPDATE SET district = excluded.district, \
         town = excluded.town, grid = excluded.grid, site_id = excluded.site_id, \
         latitude_e7 = excluded.latitude_e7, longitude_e7 = excluded.longitude_e7, \
         watch = excluded.watch",
        params![
            subject,
            id,
            place.district,
            place.town,
            place.grid,
            site_id,
            location.map(|l| l.latitude_e7),
            location.map(|l| l.longitude_e7),
            watch
        ],
    )?;
    Ok(())
}

fn start_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StartRow> {
    let lat: Option<i32> = r.get(4)?;
    let lon: Option<i32> = r.get(5)?;
    let acc: Option<u32> = r.get(6)?;
    Ok(StartRow {
        key: r.get(0)?,
        machine_id: r.get(1)?,
        at_ms: r.get(2)?,
        allowed: r.get(3)?,
        fix: match (lat, lon, acc) {
            (Some(latitude_e7), Some(longitude_e7), Some(accuracy_m)) => Some(Fix {
                latitude_e7,
                longitude_e7,
                accuracy_m,
            }),
            _ => None,
        },
    })
}

/// A push's SQLite transaction, as [`PermitLedger`] (permit step placement) and [`PushTx`] (the
/// logic run for each applied record).
struct SqliteTx<'a, 'c>(&'a Transaction<'c>);

impl PushTx for SqliteTx<'_, '_> {
    fn pusher(&mut self, device_id: &str) -> Result<Option<(Role, String)>, DbError> {
        let row: Option<(String, String)> = self
            .0
            .prepare_cached(
                "SELECT role, coalesce(person_id, person) FROM devices WHERE device_id = ?1",
            )?
            .query_row([device_id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        Ok(row.and_then(|(role, id)| Role::parse(&role).map(|r| (r, id))))
    }

    fn registry_holds(&mut self, entity: &str) -> Result<bool, DbError> {
        let newest: Option<String> = self
            .0
            .prepare_cached(NEWEST_CHANGE)?
            .query_row([entity], |r| r.get(0))
            .optional()?;
        Ok(newest.is_some_and(|json| super::is_live_change(&json)))
    }

    fn newest_change(&mut self, entity: &str) -> Result<Option<String>, DbError> {
        Ok(self
            .0
            .prepare_cached(NEWEST_CHANGE)?
            .query_row([entity], |r| r.get(0))
            .optional()?)
    }

    fn add_record_flag(&mut self, key: &str, flag: &str) -> Result<(), DbError> {
        self.0
            .prepare_cached(
                "INSERT OR IGNORE INTO record_flags (idempotency_key, flag) VALUES (?1, ?2)",
            )?
            .execute(params![key, flag])?;
        Ok(())
    }

    fn lock_machines(&mut self, _machine_ids: &[String]) -> Result<(), DbError> {
        // `BEGIN IMMEDIATE`: this transaction is the only writer already.
        Ok(())
    }

    fn machine_facts(&mut self, machine_id: &str) -> Result<Option<MachineFacts>, DbError> {
        Ok(self
            .0
            .prepare_cached(MACHINE_FACTS)?
            .query_row([machine_id], |r| {
                let lat: Option<i32> = r.get(4)?;
                let lon: Option<i32> = r.get(5)?;
                Ok(MachineFacts {
                    place: Place {
                        district: r.get(0)?,
                        town: r.get(1)?,
                        grid: r.get(2)?,
                    },
                    site_id: r.get(3)?,
                    location: lat.zip(lon),
                    watch: r.get(6)?,
                })
            })
            .optional()?)
    }

    fn licence_place(&mut self, certificate_no: &str) -> Result<Option<Place>, DbError> {
        Ok(self
            .0
            .prepare_cached(
                "SELECT district, town, grid FROM places WHERE subject = 'licence' AND id = ?1",
            )?
            .query_row([certificate_no], |r| {
                Ok(Place {
                    district: r.get(0)?,
                    town: r.get(1)?,
                    grid: r.get(2)?,
                })
            })
            .optional()?)
    }

    fn refusals_between(
        &mut self,
        machine_id: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<(i64, String)>, DbError> {
        let rows = self
            .0
            .prepare_cached(
                "SELECT at_ms, idempotency_key FROM ledger WHERE machine_id = ?1 \
                 AND kind = 'start' AND decision = 'refused' AND at_ms BETWEEN ?2 AND ?3 \
                 ORDER BY at_ms LIMIT 1000",
            )?
            .query_map(params![machine_id, from_ms, to_ms], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    fn neighbour_starts(
        &mut self,
        machine_id: &str,
        at_ms: i64,
        key: &str,
    ) -> Result<Vec<StartRow>, DbError> {
        // The nearest before and the nearest after, in one statement.
        let mut out = Vec::new();
        let rows = self
            .0
            .prepare_cached(NEIGHBOUR_STARTS)?
            .query_map(params![machine_id, at_ms, key], start_row)?
            .collect::<Result<Vec<_>, _>>()?;
        for row in rows {
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
        Ok(self
            .0
            .prepare_cached(
                "SELECT 1 FROM warnings WHERE machine_id = ?1 AND kind = ?2 \
                 AND at_ms BETWEEN ?3 AND ?4 LIMIT 1",
            )?
            .query_row(params![machine_id, kind.as_str(), from_ms, to_ms], |_| {
                Ok(())
            })
            .optional()?
            .is_some())
    }

    fn raise_warning(&mut self, w: &NewWarning) -> Result<bool, DbError> {
        let records =
            serde_json::to_string(&w.records).map_err(|e| DbError::Invalid(e.to_string()))?;
        let n = self
            .0
            .prepare_cached(
                "INSERT INTO warnings (dedup_key, kind, records, machine_id, certificate_no, \
                 district, town, grid, site_id, at_ms, raised_at_ms, detail) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) \
                 ON CONFLICT (dedup_key) DO NOTHING",
            )?
            .execute(params![
                w.dedup_key,
                w.kind.as_str(),
                records,
                w.machine_id,
                w.certificate_no,
                w.place.as_ref().map(|p| p.district.as_str()),
                w.place.as_ref().and_then(|p| p.town.as_deref()),
                w.place.as_ref().and_then(|p| p.grid.as_deref()),
                w.site_id,
                w.at_ms,
                w.raised_at_ms,
                w.detail
            ])?;
        Ok(n == 1)
    }

    fn site_place(&mut self, site_id: &str) -> Result<Option<Place>, DbError> {
        Ok(self
            .0
            .prepare_cached("SELECT district, town, grid FROM sites WHERE site_id = ?1")?
            .query_row([site_id], |r| {
                Ok(Place {
                    district: r.get(0)?,
                    town: r.get(1)?,
                    grid: r.get(2)?,
                })
            })
            .optional()?)
    }

    fn count(
        &mut self,
        day: &str,
        district: &str,
        town: &str,
        metric: &str,
        n: i64,
    ) -> Result<(), DbError> {
        // One writer (`BEGIN IMMEDIATE`): no lock order to keep, so write at once.
        self.0
            .prepare_cached(
                "INSERT INTO daily_counts (day, district, town, metric, n) \
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (day, district, town, metric) \
                 DO UPDATE SET n = n + excluded.n",
            )?
            .execute(params![day, district, town, metric, n])?;
        Ok(())
    }

    fn ledger(&mut self, row: &LedgerRow) -> Result<(), DbError> {
        self.0
            .prepare_cached(
                "INSERT OR IGNORE INTO ledger (idempotency_key, day, at_ms, kind, district, town, \
                 site_id, machine_id, person, decision, detail, latitude_e7, longitude_e7, \
                 accuracy_m) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            )?
            .execute(params![
                row.key,
                row.day,
                row.at_ms,
                row.kind,
                row.district,
                row.town,
                row.site_id,
                row.machine_id,
                row.person,
                row.decision,
                row.detail,
                row.position.map(|p| p.0),
                row.position.map(|p| p.1),
                row.position.map(|p| p.2)
            ])?;
        Ok(())
    }

    fn permit_count(&mut self, permit_id: &str) -> Result<Option<PermitCount>, DbError> {
        Ok(self
            .0
            .prepare_cached(
                "SELECT day, district, town, state FROM permit_counts WHERE permit_id = ?1",
            )?
            .query_row([permit_id], |r| {
                Ok(PermitCount {
                    day: r.get(0)?,
                    district: r.get(1)?,
                    town: r.get(2)?,
                    state: r.get(3)?,
                })
            })
            .optional()?)
    }

    fn put_permit_count(&mut self, permit_id: &str, c: &PermitCount) -> Result<(), DbError> {
        self.0
            .prepare_cached(
                "INSERT INTO permit_counts (permit_id, day, district, town, state) \
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (permit_id) DO UPDATE SET \
                 day = excluded.day, district = excluded.district, town = excluded.town, \
                 state = excluded.state",
            )?
            .execute(params![permit_id, c.day, c.district, c.town, c.state])?;
        Ok(())
    }

    fn schedule(&mut self, d: &NewDeadline) -> Result<(), DbError> {
        self.0
            .prepare_cached(
                "INSERT INTO deadlines (dedup_key, kind, due_at_ms, payload) \
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT (dedup_key) DO NOTHING",
            )?
            .execute(params![d.dedup_key, d.kind, d.due_at_ms, d.payload])?;
        Ok(())
    }

    fn next_allowed_start(
        &mut self,
        machine_id: &str,
        after_ms: i64,
    ) -> Result<Option<i64>, DbError> {
        Ok(self
            .0
            .prepare_cached(
                "SELECT at_ms FROM ledger WHERE machine_id = ?1 AND kind = 'start' \
                 AND decision = 'allowed' AND at_ms > ?2 ORDER BY at_ms LIMIT 1",
            )?
            .query_row(params![machine_id, after_ms], |r| r.get(0))
            .optional()?)
    }

    fn permit_head(&mut self, permit_id: &str) -> Result<Option<String>, DbError> {
        Ok(PermitLedger::head(self, permit_id)?.map(|row| row.body))
    }
}

impl PermitLedger for SqliteTx<'_, '_> {
    fn record_hash(&mut self, key: &str) -> Result<Option<Vec<u8>>, DbError> {
        Ok(self
            .0
            .prepare_cached("SELECT payload_hash FROM records WHERE idempotency_key = ?1")?
            .query_row([key], |r| r.get(0))
            .optional()?)
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
        self.0
            .prepare_cached(
                "INSERT INTO records (idempotency_key, kind, payload, payload_hash, device_id, \
                 received_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![key, kind, payload, payload_hash, device_id, at_ms])?;
        Ok(())
    }

    fn lost_reason(&mut self, step_id: &str) -> Result<Option<String>, DbError> {
        Ok(self
            .0
            .prepare_cached(
                "SELECT coalesce(reason, '') FROM permit_steps WHERE step_id = ?1 AND status = 'lost'",
            )?
            .query_row([step_id], |r| r.get(0))
            .optional()?)
    }

    fn head(&mut self, permit_id: &str) -> Result<Option<StepRow>, DbError> {
        Ok(self
            .0
            .prepare_cached("SELECT step_id, action, body FROM permit_heads WHERE permit_id = ?1")?
            .query_row([permit_id], |r| {
                Ok(StepRow {
                    step_id: r.get(0)?,
                    base: None,
                    status: crate::permits::APPLIED.into(),
                    action: r.get(1)?,
                    body: r.get(2)?,
                    fork: None,
                })
            })
            .optional()?)
    }

    fn steps_by_events(
        &mut self,
        permit_id: &str,
        events_key: &[u8],
        limit: usize,
    ) -> Result<Vec<StepRow>, DbError> {
        let mut stmt = self.0.prepare_cached(&format!(
            "SELECT {STEP_COLUMNS} FROM permit_steps WHERE permit_id = ?1 AND events_key = ?2 \
             ORDER BY CASE status WHEN 'applied' THEN 0 WHEN 'superseded' THEN 1 ELSE 2 END, \
             rowid LIMIT ?3"
        ))?;
        let rows = stmt
            .query_map(
                params![
                    permit_id,
                    events_key,
                    i64::try_from(limit).unwrap_or(i64::MAX)
                ],
                step_row,
            )?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    fn applied_successor(&mut self, step_id: &str) -> Result<Option<StepRow>, DbError> {
        Ok(self
            .0
            .prepare_cached(&format!(
                "SELECT {STEP_COLUMNS} FROM permit_steps WHERE base_step = ?1 \
                 AND status = 'applied' ORDER BY rowid LIMIT 1"
            ))?
            .query_row([step_id], step_row)
            .optional()?)
    }

    fn base_of(&mut self, step_id: &str) -> Result<Option<Option<String>>, DbError> {
        Ok(self
            .0
            .prepare_cached("SELECT base_step FROM permit_steps WHERE step_id = ?1")?
            .query_row([step_id], |r| r.get(0))
            .optional()?)
    }

    fn lost_counts(
        &mut self,
        permit_id: &str,
        device_id: &str,
        since_ms: i64,
    ) -> Result<(i64, i64), DbError> {
        let per_permit: i64 = self
            .0
            .prepare_cached(
                "SELECT count(*) FROM permit_steps WHERE permit_id = ?1 AND status = 'lost'",
            )?
            .query_row([permit_id], |r| r.get(0))?;
        let per_device: i64 = self
            .0
            .prepare_cached(
                "SELECT count(*) FROM permit_steps WHERE device_id = ?1 AND status = 'lost' \
                 AND received_at_ms >= ?2",
            )?
            .query_row(params![device_id, since_ms], |r| r.get(0))?;
        Ok((per_permit, per_device))
    }

    fn insert_step(&mut self, s: &NewStep<'_>) -> Result<(), DbError> {
        self.0
            .prepare_cached(
                "INSERT INTO permit_steps (step_id, permit_id, base_step, action, digest, status, \
                 reason, body, device_id, received_at_ms, events_key, events_count, \
                 signatures_count, fork_action, fork_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
            )?
            .execute(params![
                s.step_id,
                s.permit_id,
                s.base,
                s.action,
                s.digest,
                s.status,
                s.reason,
                s.body,
                s.device_id,
                s.at_ms,
                s.facts.events_key,
                s.facts.events,
                s.facts.signatures,
                s.fork.map(|f| action_name(f.action)),
                s.fork.map(|f| f.at),
            ])?;
        Ok(())
    }

    fn set_superseded(&mut self, step_ids: &[String]) -> Result<(), DbError> {
        let mut stmt = self
            .0
            .prepare_cached("UPDATE permit_steps SET status = 'superseded' WHERE step_id = ?1")?;
        for id in step_ids {
            stmt.execute([id])?;
        }
        Ok(())
    }

    fn next_seq(&mut self) -> Result<i64, DbError> {
        Ok(self.0.query_row(
            "SELECT coalesce(max(seq), 0) + 1 FROM permit_heads",
            [],
            |r| r.get(0),
        )?)
    }

    fn put_head(&mut self, h: &HeadRow<'_>) -> Result<(), DbError> {
        self.0
            .prepare_cached(
                "INSERT INTO permit_heads (permit_id, step_id, action, state, digest, body, seq, \
                 updated_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
                 ON CONFLICT (permit_id) DO UPDATE SET step_id = excluded.step_id, \
                 action = excluded.action, state = excluded.state, digest = excluded.digest, \
                 body = excluded.body, seq = excluded.seq, updated_at_ms = excluded.updated_at_ms",
            )?
            .execute(params![
                h.permit_id,
                h.step_id,
                h.action,
                h.state,
                h.digest,
                h.body,
                h.seq,
                h.at_ms
            ])?;
        self.0
            .prepare_cached("DELETE FROM permit_people WHERE permit_id = ?1")?
            .execute([h.permit_id])?;
        let mut insert = self.0.prepare_cached(
            "INSERT OR IGNORE INTO permit_people (person, permit_id) VALUES (?1, ?2)",
        )?;
        for person in &h.people {
            insert.execute([person, h.permit_id])?;
        }
        Ok(())
    }

    fn touch_head(&mut self, permit_id: &str, seq: i64, at_ms: i64) -> Result<(), DbError> {
        self.0
            .prepare_cached(
                "UPDATE permit_heads SET seq = ?2, updated_at_ms = ?3 WHERE permit_id = ?1",
            )?
            .execute(params![permit_id, seq, at_ms])?;
        Ok(())
    }
}

/// The columns [`step_row`] reads.
const STEP_COLUMNS: &str = "step_id, base_step, status, action, body, digest, fork_action, fork_at";

fn step_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StepRow> {
    let fork_action: Option<String> = r.get(6)?;
    let fork_at: Option<i64> = r.get(7)?;
    let digest: String = r.get(5)?;
    Ok(StepRow {
        step_id: r.get(0)?,
        base: r.get(1)?,
        status: r.get(2)?,
        action: r.get(3)?,
        body: r.get(4)?,
        fork: match (fork_action.as_deref().and_then(action_from_name), fork_at) {
            (Some(action), Some(at)) => Some(ForkStep { action, at, digest }),
            _ => None,
        },
    })
}

/// Fill the event-log facts of steps stored before migration 6 (each parsed once, at start).
fn backfill_step_facts(tx: &Transaction<'_>) -> Result<(), DbError> {
    let rows: Vec<(String, String)> = tx
        .prepare("SELECT step_id, body FROM permit_steps WHERE events_key IS NULL")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut update = tx.prepare(
        "UPDATE permit_steps SET events_key = ?2, events_count = ?3, signatures_count = ?4 \
         WHERE step_id = ?1",
    )?;
    for (step_id, body) in rows {
        let Ok(permit) = serde_json::from_str::<weldguard_model::permit::Permit>(&body) else {
            continue;
        };
        let f = crate::permits::version_facts(&permit);
        update.execute(params![step_id, f.events_key, f.events, f.signatures])?;
    }
    Ok(())
}

fn high_water(tx: &Transaction<'_>) -> Result<i64, DbError> {
    let max: Option<i64> = tx.query_row("SELECT max(seq) FROM changes", [], |r| r.get(0))?;
    Ok(max.unwrap_or(0).max(floor(tx)?))
}

fn floor(tx: &Transaction<'_>) -> Result<i64, DbError> {
    let v: Option<String> = tx
        .query_row(
            "SELECT value FROM server_meta WHERE key = 'history_floor'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    Ok(v.and_then(|v| v.parse().ok()).unwrap_or(0))
}

fn migrate(conn: &mut Connection) -> Result<(), DbError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let known = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
    if version > known {
        return Err(DbError::NewerSchema {
            found: version,
            known,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.execute_batch(sql)?;
        tx.pragma_update(
            None,
            "user_version",
            i64::try_from(i + 1).unwrap_or(i64::MAX),
        )?;
    }
    if version < 6 {
        backfill_step_facts(&tx)?;
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use rusqlite::StatementStatus;

    use super::*;

    /// A fresh server database in a directory of its own, removed on drop.
    struct Scratch(std::path::PathBuf);

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn open(name: &str) -> (SqliteDb, Scratch) {
        let dir = std::env::temp_dir().join(format!("wg-sqlite-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        (SqliteDb::open(&dir).unwrap(), Scratch(dir))
    }

    /// The push's hot statements run once per record with new values bound. SQLite may mark a
    /// statement to be compiled again whenever a value is bound (its planner looked at the
    /// value), and rusqlite clears the bindings of every statement it takes back into its cache:
    /// without the query planner stability guarantee each of these was parsed and planned
    /// again on every record (a third of a push's time with warnings on).
    #[test]
    fn cached_push_statements_are_not_compiled_again_for_new_values() {
        let (db, _scratch) = open("reprepare");
        let conn = db.conn();
        for i in 0..5_i64 {
            let machine = format!("M{i}");
            conn.prepare_cached(MACHINE_FACTS)
                .unwrap()
                .query_row([&machine], |_| Ok(()))
                .optional()
                .unwrap();
            conn.prepare_cached(NEIGHBOUR_STARTS)
                .unwrap()
                .query_map(params![machine, i * 1000, format!("k{i}")], |_| Ok(()))
                .unwrap()
                .for_each(drop);
            conn.prepare_cached(NEWEST_CHANGE)
                .unwrap()
                .query_row([format!("machine:{machine}")], |_| Ok(()))
                .optional()
                .unwrap();
        }
        for sql in [MACHINE_FACTS, NEIGHBOUR_STARTS, NEWEST_CHANGE] {
            let statement = conn.prepare_cached(sql).unwrap();
            assert_eq!(
                statement.get_status(StatementStatus::RePrepare),
                0,
                "compiled again: {sql}"
            );
        }
    }
}
