//! The server's SQLite database: devices and enrolment codes, the records devices pushed (one row
//! per idempotency key), and the registry change feed.
//!
//! ## The change feed and its cursors
//! Every registry write appends rows to `changes`, whose `seq` increases by one per change. A
//! device's cursor is `EPOCH.SEQ`: the database's random epoch (so a cursor from another database
//! is recognised) and the last `seq` it holds. Pull answers the changes with `seq > SEQ` in order.
//!
//! Nothing can be skipped on SQLite: there is one writer at a time (`BEGIN IMMEDIATE`, also across
//! processes sharing the file), so `seq` values become visible in the order they were assigned.
//! On PostgreSQL a plain sequence is not enough: a transaction can take seq 7, commit after seq 8
//! was read, and a device that moved past 8 would never see 7. The PostgreSQL backend (a later
//! step) must therefore serialise feed writers at commit time: each writing transaction takes
//! `pg_advisory_xact_lock(FEED_LOCK)` just before it inserts its change rows and assigns `seq` from
//! a counter row updated under that lock, so seq order equals commit order. (The alternative, a
//! transaction-id watermark — serve only rows whose `xmin` is below `pg_snapshot_xmin` of the
//! reader's snapshot — avoids the lock at the price of a little latency.)
//!
//! ## History and must-refetch
//! [`Db::compact`] forgets history: for every registry entity it keeps only the newest change, and
//! it drops deletes (tombstones) altogether, up to a `seq`; that `seq` becomes the history floor.
//! A cursor below the floor may have missed a delete, so its pull is answered with
//! [`DbError::MustRefetch`]; the device then clears its cache and pulls from the start.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use sha2::{Digest, Sha256};
use weldguard_core::store::RegistryChange;
use weldguard_core::sync::protocol::{Role, StoredRecord};

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
];

/// An issuer key as the server keeps it: the key file (with its secret) and its validity period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredIssuerKey {
    pub kid: String,
    /// [`weldguard_core::codes::IssuerKey::to_json`].
    pub key_json: String,
    pub valid_from_ms: i64,
    /// Set when the key was rotated out; `None` for the signing key.
    pub valid_until_ms: Option<i64>,
}

/// The device id of the admin created from the bootstrap token.
pub const BOOTSTRAP_DEVICE: &str = "bootstrap-admin";

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error(
        "the database was written by a newer server (schema {found}, this server knows {known})"
    )]
    NewerSchema { found: i64, known: i64 },
    #[error("the random source failed: {0}")]
    Random(String),
    #[error("the cursor is older than the history the server keeps, or from another server")]
    MustRefetch,
    #[error("invalid cursor")]
    InvalidCursor,
    #[error("unknown or used enrolment code")]
    BadEnrolmentCode,
    #[error("stored data is invalid: {0}")]
    Invalid(String),
}

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub device_id: String,
    pub person: String,
    pub role: Role,
}

/// How one pushed entry ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Insert {
    Applied,
    Duplicate,
    /// The key is known with a different payload.
    Conflict,
}

/// One page of the feed. Changes are kept as the JSON text stored when they were written (by
/// this server, from a typed [`RegistryChange`]), so a page is served without re-encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub changes_json: Vec<String>,
    pub next_cursor: String,
    pub has_more: bool,
}

pub struct Db {
    conn: Connection,
    epoch: String,
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

pub fn random_hex(bytes: usize) -> Result<String, DbError> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| DbError::Random(e.to_string()))?;
    Ok(hex(&buf))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// The feed entity a change is about: later changes to the same entity supersede earlier ones.
pub fn entity_of(change: &RegistryChange) -> String {
    use weldguard_core::domain::RevocationTarget;
    match change {
        RegistryChange::UpsertLicence(l) => format!("licence\u{1f}{}", l.certificate_no),
        RegistryChange::DeleteLicence { certificate_no } => {
            format!("licence\u{1f}{certificate_no}")
        }
        RegistryChange::UpsertMachine(m) => format!("machine\u{1f}{}", m.machine_id),
        RegistryChange::DeleteMachine { machine_id } => format!("machine\u{1f}{machine_id}"),
        RegistryChange::Bind(b) | RegistryChange::Unbind(b) => {
            format!("binding\u{1f}{}\u{1f}{}", b.machine_id, b.certificate_no)
        }
        RegistryChange::Revoke(r) | RegistryChange::Unrevoke(r) => {
            let target = match r.target {
                RevocationTarget::Licence => "licence",
                RevocationTarget::Credential => "credential",
                RevocationTarget::IssuerKey => "issuer_key",
                RevocationTarget::Machine => "machine",
            };
            format!("revocation\u{1f}{target}\u{1f}{}", r.id)
        }
        RegistryChange::UpsertIssuerKey(k) => format!("issuer_key\u{1f}{}", k.kid),
        RegistryChange::DeleteIssuerKey { kid } => format!("issuer_key\u{1f}{kid}"),
        RegistryChange::SetCalendarDay(day) => format!("calendar_day\u{1f}{}", day.date),
        RegistryChange::ClearCalendarDay { date } => format!("calendar_day\u{1f}{date}"),
        RegistryChange::AnnouncePeriod(p) => format!("sensitive_period\u{1f}{}", p.period_id),
        RegistryChange::WithdrawPeriod { period_id } => {
            format!("sensitive_period\u{1f}{period_id}")
        }
    }
}

fn is_tombstone(change: &RegistryChange) -> bool {
    matches!(
        change,
        RegistryChange::DeleteLicence { .. }
            | RegistryChange::DeleteMachine { .. }
            | RegistryChange::Unbind(_)
            | RegistryChange::Unrevoke(_)
            | RegistryChange::DeleteIssuerKey { .. }
            | RegistryChange::ClearCalendarDay { .. }
            | RegistryChange::WithdrawPeriod { .. }
    )
}

impl Db {
    /// Open (creating) `DIR/weldguard-server.sqlite` and migrate it.
    pub fn open(data_dir: &Path) -> Result<Self, DbError> {
        let mut conn = Connection::open(data_dir.join("weldguard-server.sqlite"))?;
        conn.busy_timeout(Duration::from_secs(10))?;
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
        Ok(Db { conn, epoch })
    }

    fn immediate(&mut self) -> Result<Transaction<'_>, DbError> {
        Ok(self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?)
    }

    /// The issuer keys the server holds, oldest first.
    pub fn issuer_keys(&mut self) -> Result<Vec<StoredIssuerKey>, DbError> {
        let mut stmt = self.conn.prepare(
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

    /// Make `new` the signing key from `now_ms`: the signing key until now stops signing (its
    /// validity ends now, so codes it signed before stay valid until they expire), in one
    /// transaction. With `only_if_none`, nothing happens when a signing key exists (first start).
    pub fn install_issuer_key(
        &mut self,
        new: &StoredIssuerKey,
        now_ms: i64,
        only_if_none: bool,
    ) -> Result<bool, DbError> {
        let tx = self.immediate()?;
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
    pub fn bootstrap_admin(&mut self, token: Option<&str>) -> Result<Option<String>, DbError> {
        let tx = self.immediate()?;
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

    /// The device a bearer token belongs to.
    pub fn caller(&self, token: &str) -> Result<Option<Caller>, DbError> {
        let row = self
            .conn
            .prepare_cached(
                "SELECT device_id, person, role FROM devices WHERE token_hash = ?1 AND disabled = 0",
            )?
            .query_row([hash(token)], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))
            })
            .optional()?;
        match row {
            None => Ok(None),
            Some((device_id, person, role)) => {
                let role =
                    Role::parse(&role).ok_or_else(|| DbError::Invalid(format!("role {role:?}")))?;
                Ok(Some(Caller {
                    device_id,
                    person,
                    role,
                }))
            }
        }
    }

    pub fn create_enrolment(&mut self, person: &str, role: Role) -> Result<String, DbError> {
        let code = random_hex(10)?.to_uppercase();
        let tx = self.immediate()?;
        tx.execute(
            "INSERT INTO enrolment_codes (code_hash, person, role, created_at_ms) VALUES (?1, ?2, ?3, ?4)",
            params![hash(&code), person, role.as_str(), now_ms()],
        )?;
        tx.commit()?;
        Ok(code)
    }

    /// Use an enrolment code (once): register the device and return (device id, token, caller).
    pub fn enrol(
        &mut self,
        code: &str,
        public_key: &str,
        device_name: &str,
    ) -> Result<(String, Caller), DbError> {
        let token = random_hex(32)?;
        let device_id = random_hex(8)?;
        let tx = self.immediate()?;
        let found = tx
            .prepare_cached(
                "SELECT person, role FROM enrolment_codes WHERE code_hash = ?1 AND used_by IS NULL",
            )?
            .query_row([hash(code.trim())], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .optional()?;
        let (person, role) = found.ok_or(DbError::BadEnrolmentCode)?;
        let role = Role::parse(&role).ok_or_else(|| DbError::Invalid(format!("role {role:?}")))?;
        tx.execute(
            "UPDATE enrolment_codes SET used_by = ?2 WHERE code_hash = ?1",
            params![hash(code.trim()), device_id],
        )?;
        tx.execute(
            "INSERT INTO devices (device_id, token_hash, person, role, public_key, device_name, created_at_ms) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![device_id, hash(&token), person, role.as_str(), public_key, device_name, now_ms()],
        )?;
        tx.commit()?;
        Ok((
            token,
            Caller {
                device_id,
                person,
                role,
            },
        ))
    }

    /// Insert pushed records, all in one transaction. Each item is (key, kind, payload); items
    /// already rejected by validation are not passed here.
    pub fn insert_records(
        &mut self,
        device_id: &str,
        items: &[(&str, &str, &str)],
    ) -> Result<Vec<Insert>, DbError> {
        let at = now_ms();
        let tx = self.immediate()?;
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
                        Insert::Applied
                    }
                });
            }
        }
        tx.commit()?;
        Ok(out)
    }

    pub fn records(&self, kind: Option<&str>) -> Result<Vec<StoredRecord>, DbError> {
        let mut stmt = self.conn.prepare_cached(
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

    /// Append registry changes to the feed in one transaction; returns the last seq.
    pub fn write_changes(&mut self, changes: &[RegistryChange]) -> Result<i64, DbError> {
        let tx = self.immediate()?;
        {
            let mut insert =
                tx.prepare_cached("INSERT INTO changes (entity, change) VALUES (?1, ?2)")?;
            for change in changes {
                let json =
                    serde_json::to_string(change).map_err(|e| DbError::Invalid(e.to_string()))?;
                insert.execute(params![entity_of(change), json])?;
            }
        }
        let last = high_water(&tx)?;
        tx.commit()?;
        Ok(last)
    }

    /// Forget history through `through` (default: everything): keep the newest change of each
    /// entity, drop tombstones. Returns the new floor.
    pub fn compact(&mut self, through: Option<i64>) -> Result<i64, DbError> {
        let tx = self.immediate()?;
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
            rows.into_iter()
                .filter(|(_, json)| {
                    serde_json::from_str::<RegistryChange>(json).is_ok_and(|c| is_tombstone(&c))
                })
                .map(|(seq, _)| seq)
                .collect()
        };
        for seq in tombstones {
            tx.execute("DELETE FROM changes WHERE seq = ?1", [seq])?;
        }
        tx.execute(
            "INSERT OR REPLACE INTO server_meta (key, value) VALUES ('history_floor', ?1)",
            [through.to_string()],
        )?;
        tx.commit()?;
        Ok(through)
    }

    /// One page of changes after `cursor` (`None`: from the start).
    pub fn pull(&mut self, cursor: Option<&str>, limit: u32) -> Result<Page, DbError> {
        let epoch = self.epoch.clone();
        // A deferred transaction: one consistent snapshot for the page and the high water.
        let tx = self.conn.transaction()?;
        let floor = floor(&tx)?;
        let top = high_water(&tx)?;
        let after = match cursor {
            None => 0,
            Some(text) => {
                let (their_epoch, seq) = text.split_once('.').ok_or(DbError::InvalidCursor)?;
                let seq: i64 = seq.parse().map_err(|_| DbError::InvalidCursor)?;
                if their_epoch != epoch || seq < floor || seq > top {
                    return Err(DbError::MustRefetch);
                }
                seq
            }
        };
        let rows: Vec<(i64, String)> = {
            let mut stmt = tx.prepare_cached(
                "SELECT seq, change FROM changes WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            )?;
            stmt.query_map(params![after, i64::from(limit) + 1], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?
            .collect::<Result<Vec<_>, _>>()?
        };
        let has_more = rows.len() > limit as usize;
        let mut changes_json = Vec::with_capacity(rows.len().min(limit as usize));
        let mut last = after;
        for (seq, json) in rows.into_iter().take(limit as usize) {
            changes_json.push(json);
            last = seq;
        }
        // The last page brings the device to the high water (covers compacted-away seqs).
        let next = if has_more { last } else { top.max(last) };
        tx.commit()?;
        Ok(Page {
            changes_json,
            next_cursor: format!("{epoch}.{next}"),
            has_more,
        })
    }
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
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use weldguard_core::domain::Binding;

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("wg-server-db-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn changes(page: &Page) -> Vec<RegistryChange> {
        page.changes_json
            .iter()
            .map(|j| serde_json::from_str(j).unwrap())
            .collect()
    }

    fn bind(m: &str, c: &str) -> Binding {
        Binding {
            machine_id: m.into(),
            certificate_no: c.into(),
        }
    }

    #[test]
    fn pages_follow_the_feed_and_compaction_forces_old_cursors_to_refetch() {
        let dir = temp_dir("feed");
        let mut db = Db::open(&dir).unwrap();
        db.write_changes(&[
            RegistryChange::Bind(bind("M1", "T1")),
            RegistryChange::Bind(bind("M2", "T1")),
            RegistryChange::Unbind(bind("M1", "T1")),
        ])
        .unwrap();
        let p1 = db.pull(None, 2).unwrap();
        assert_eq!(p1.changes_json.len(), 2);
        assert!(p1.has_more);
        let p2 = db.pull(Some(&p1.next_cursor), 2).unwrap();
        assert_eq!(changes(&p2), vec![RegistryChange::Unbind(bind("M1", "T1"))]);
        assert!(!p2.has_more);
        let p3 = db.pull(Some(&p2.next_cursor), 2).unwrap();
        assert!(p3.changes_json.is_empty());
        assert_eq!(p3.next_cursor, p2.next_cursor);

        db.compact(None).unwrap();
        assert!(matches!(
            db.pull(Some(&p1.next_cursor), 10),
            Err(DbError::MustRefetch)
        ));
        // The device at the high water is not affected; a refetch sees only the live binding.
        assert!(
            db.pull(Some(&p2.next_cursor), 10)
                .unwrap()
                .changes_json
                .is_empty()
        );
        let fresh = db.pull(None, 10).unwrap();
        assert_eq!(
            changes(&fresh),
            vec![RegistryChange::Bind(bind("M2", "T1"))]
        );
        assert_eq!(fresh.next_cursor, p2.next_cursor);
        // A cursor from another database must refetch too.
        assert!(matches!(
            db.pull(Some("0000.1"), 10),
            Err(DbError::MustRefetch)
        ));
        assert!(matches!(
            db.pull(Some("junk"), 10),
            Err(DbError::InvalidCursor)
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_key_is_applied_once_and_a_changed_payload_under_it_is_a_conflict() {
        let dir = temp_dir("records");
        let mut db = Db::open(&dir).unwrap();
        let first = db
            .insert_records(
                "d1",
                &[("k1", "work_session", "{}"), ("k2", "work_session", "{}")],
            )
            .unwrap();
        assert_eq!(first, vec![Insert::Applied, Insert::Applied]);
        let again = db
            .insert_records(
                "d1",
                &[
                    ("k1", "work_session", "{}"),
                    ("k2", "work_session", "{\"x\":1}"),
                ],
            )
            .unwrap();
        assert_eq!(again, vec![Insert::Duplicate, Insert::Conflict]);
        assert_eq!(db.records(None).unwrap().len(), 2);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn enrolment_codes_work_once_and_tokens_identify_the_device() {
        let dir = temp_dir("enrol");
        let mut db = Db::open(&dir).unwrap();
        let admin = db.bootstrap_admin(None).unwrap().unwrap();
        assert_eq!(
            db.bootstrap_admin(None).unwrap(),
            None,
            "only at first start"
        );
        assert_eq!(db.caller(&admin).unwrap().unwrap().role, Role::Admin);
        let code = db.create_enrolment("张三", Role::Welder).unwrap();
        let (token, caller) = db.enrol(&code, "04ab", "phone").unwrap();
        assert_eq!(caller.role, Role::Welder);
        assert_eq!(db.caller(&token).unwrap().unwrap().person, "张三");
        assert!(matches!(
            db.enrol(&code, "04ab", "phone"),
            Err(DbError::BadEnrolmentCode)
        ));
        assert_eq!(db.caller("nope").unwrap(), None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
