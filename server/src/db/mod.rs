//! The server's store, behind one backend-neutral API the HTTP handlers call: devices and
//! enrolment codes, the records devices pushed (one row per idempotency key), and the registry
//! change feed. Two backends: embedded SQLite ([`sqlite`], the default, a file in `--data-dir`)
//! and PostgreSQL ([`postgres`], `--database postgres://…`, several server processes may share
//! one database). Each implements [`Store`] (every query once per backend); [`Db`] holds one of
//! them and adds what both do alike (docs/adr/0016-server-store-trait.md).
//!
//! ## The change feed and its cursors
//! Every registry write appends rows to `changes`, whose `seq` increases with every change. A
//! device's cursor is `EPOCH.SEQ` ([`format_cursor`]): the database's random epoch (so a cursor
//! from another database is recognised) and the last `seq` it holds. Pull answers the changes with
//! `seq > SEQ` in order.
//!
//! A cursor must never pass over a change that commits late. On SQLite there is one writer at a
//! time (`BEGIN IMMEDIATE`, also across processes sharing the file), so `seq` values become
//! visible in the order they were assigned. On PostgreSQL a plain sequence is not enough: a
//! transaction can take seq 7, commit after seq 8 was read, and a device that moved past 8 would
//! never see 7. The PostgreSQL backend therefore serialises feed writers: each writing transaction
//! takes `pg_advisory_xact_lock(FEED_LOCK)` before it draws its `seq` values, and holds it until
//! it commits, so seq order equals commit order (see docs/adr/0007-server-postgres.md).
//!
//! ## History and must-refetch
//! [`Store::compact`] forgets history: for every registry entity it keeps only the newest change,
//! and it drops deletes (tombstones) altogether, up to a `seq`; that `seq` becomes the history
//! floor. A cursor below the floor may have missed a delete, so its pull is answered with
//! [`DbError::MustRefetch`]; the device then clears its cache and pulls from the start.

pub mod postgres;
pub mod sqlite;
mod store;
pub mod test_support;

pub use store::{AppliedRecord, OnApplied, OnDue, PushTx, Store};

use std::path::Path;

use sha2::{Digest, Sha256};
use weldguard_model::checksum::Collection;
use weldguard_model::protocol::{Role, StoredRecord};
use weldguard_model::records::RegistryChange;

use crate::permits::AdmitStep;

/// The device id of the admin created from the bootstrap token.
pub const BOOTSTRAP_DEVICE: &str = "bootstrap-admin";

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database error: {0}")]
    Postgres(#[from] ::postgres::Error),
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
    #[error("unsupported database address {0:?} (expected postgres://… or postgresql://…)")]
    UnsupportedUrl(String),
    #[error("{0}")]
    Refresh(RefreshRefusal),
}

/// Why a token refresh (or the challenge before it) was refused; nothing changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RefreshRefusal {
    #[error("unknown device")]
    UnknownDevice,
    #[error("the device is disabled")]
    DeviceDisabled,
    #[error("unknown or already used nonce")]
    BadNonce,
    #[error("the nonce has expired; ask for a new challenge")]
    NonceExpired,
    #[error("the signature does not verify with the device's enrolled key")]
    BadSignature,
}

impl RefreshRefusal {
    /// The stable error code of the answer (all are 401).
    pub fn code(self) -> &'static str {
        match self {
            RefreshRefusal::UnknownDevice => "auth.unknown_device",
            RefreshRefusal::DeviceDisabled => "auth.device_disabled",
            RefreshRefusal::BadNonce => "auth.bad_nonce",
            RefreshRefusal::NonceExpired => "auth.nonce_expired",
            RefreshRefusal::BadSignature => "auth.bad_signature",
        }
    }
}

/// What a bearer token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenCheck {
    /// A live token of an enabled device.
    Valid(Caller),
    /// The device's token past its expiry, or the token it had before its last refresh.
    Expired,
    /// Not a token of any enabled device.
    Unknown,
}

/// A token a device received, with its expiry (Unix ms; `None`: it does not expire).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    pub token: String,
    pub expires_at_ms: Option<i64>,
}

/// Most refresh nonces one device may hold at once (older ones are dropped).
pub const MAX_NONCES_PER_DEVICE: i64 = 5;

/// Whether `signature_hex` is the ES256 signature of the refresh message by `public_key_hex`.
pub(crate) fn refresh_signature_ok(
    public_key_hex: &str,
    device_id: &str,
    nonce: &str,
    signature_hex: &str,
) -> bool {
    use weldguard_model::codes::{from_hex, verify_es256};
    let (Some(key), Some(signature)) = (from_hex(public_key_hex), from_hex(signature_hex)) else {
        return false;
    };
    let message = weldguard_model::protocol::token_refresh_message(device_id, nonce);
    verify_es256(&key, &message, &signature)
}

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub device_id: String,
    /// The person's name as enrolled.
    pub person: String,
    /// The id permits name the person by (certificate, ID or staff number); the name for devices
    /// enrolled without one.
    pub person_id: String,
    pub role: Role,
}

/// What an enrolment code grants the device that uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub person: String,
    pub person_id: Option<String>,
    pub role: Role,
    /// Permit roles the person may sign as (the signer directory).
    pub permit_roles: Vec<String>,
    /// A monitoring account's scope ([`weldguard_model::warnings::Scope`] as text).
    pub scope: Option<String>,
}

impl Grant {
    /// A person who signs no permit, named by their name alone.
    pub fn plain(person: &str, role: Role) -> Self {
        Grant {
            person: person.to_owned(),
            person_id: None,
            role,
            permit_roles: Vec::new(),
            scope: None,
        }
    }
}

/// A device whose person may sign permits, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignerRow {
    pub device_id: String,
    pub public_key_hex: String,
    pub person_id: String,
    pub name: String,
    pub permit_roles_json: String,
    pub enrolled_at_ms: i64,
    /// When the device was disabled (its key stops vouching from then on).
    pub disabled_at_ms: Option<i64>,
}

impl SignerRow {
    /// The directory entry of this device (times in whole seconds).
    pub fn entry(&self) -> Result<weldguard_model::signers::SignerEntry, DbError> {
        let roles: Vec<String> = serde_json::from_str(&self.permit_roles_json)
            .map_err(|e| DbError::Invalid(format!("permit roles of {}: {e}", self.device_id)))?;
        let public_key = weldguard_model::codes::from_hex(&self.public_key_hex)
            .ok_or_else(|| DbError::Invalid(format!("public key of device {}", self.device_id)))?;
        Ok(weldguard_model::signers::SignerEntry {
            public_key,
            person_id: self.person_id.clone(),
            name: self.name.clone(),
            roles,
            device_id: self.device_id.clone(),
            valid_from: self.enrolled_at_ms.div_euclid(1000),
            valid_until: self.disabled_at_ms.map(|ms| ms.div_euclid(1000)),
        })
    }
}

/// Permit roles as stored (a JSON array).
pub(crate) fn roles_json(roles: &[String]) -> Result<String, DbError> {
    serde_json::to_string(roles).map_err(|e| DbError::Invalid(e.to_string()))
}

/// How one pushed entry ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Insert {
    Applied,
    Duplicate,
    /// The key is known with a different payload.
    Conflict,
    /// Refused after reading the database (a permit step that loses a conflict or follows no
    /// version the platform holds); the reason starts with a stable code.
    Refused(String),
}

/// One page of the permit head feed: each head as `(step_id, action, state, digest, body)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermitPage {
    pub heads: Vec<HeadEntry>,
    pub next_cursor: String,
    pub has_more: bool,
}

/// A permit's current version as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadEntry {
    pub permit_id: String,
    pub step_id: String,
    pub action: String,
    pub state: String,
    pub digest: String,
    /// The permit version, JSON.
    pub body: String,
    pub seq: i64,
}

/// A stored permit step with its standing (audit view).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermitStepStanding {
    pub step_id: String,
    pub base: Option<String>,
    pub action: String,
    /// `applied`, `superseded` or `lost` ([`crate::permits`]).
    pub status: String,
    pub reason: Option<String>,
}

/// The record kind whose entries go through [`crate::permits::push_step`].
pub const PERMIT_STEP_KIND: &str = "permit_step";

/// One page of the feed. Changes are kept as the JSON text stored when they were written (by
/// this server, from a typed [`RegistryChange`]), so a page is served without re-encoding.
/// A page from `limit + 1` rows read (position, record): the first `limit`, and whether more follow.
pub(crate) fn record_page(rows: &mut Vec<(i64, StoredRecord)>, limit: u32) -> RecordPage {
    let has_more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    RecordPage {
        last: rows.last().map_or(0, |(position, _)| *position),
        records: rows.drain(..).map(|(_, record)| record).collect(),
        has_more,
    }
}

/// One page of stored records ([`Store::records_page`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordPage {
    pub records: Vec<StoredRecord>,
    /// The position of the page's last record (0 when the page is empty): `after` for the next.
    pub last: i64,
    pub has_more: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub changes_json: Vec<String>,
    pub next_cursor: String,
    pub has_more: bool,
}

/// The store: one backend behind [`Store`] (whose methods it derefs to, so `db.pull(…)` calls
/// the backend's query), plus what both backends do alike. Methods take `&self`: the SQLite
/// connection sits behind a mutex (SQLite has one writer anyway), PostgreSQL work runs on pooled
/// connections in parallel.
pub struct Db {
    store: Box<dyn Store>,
    /// The warning rules' thresholds (`crate::warnings`), applied inside every push.
    warnings: crate::warnings::WarningConfig,
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

/// How secrets (tokens, codes) and payloads are stored: their SHA-256.
pub(crate) fn hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// The cursor text for `seq` of the database with `epoch`.
pub fn format_cursor(epoch: &str, seq: i64) -> String {
    format!("{epoch}.{seq}")
}

/// The `seq` a cursor stands for, checked against this database: its epoch, the history floor
/// and the high water of the reader's snapshot. `None` starts from the beginning.
pub(crate) fn parse_cursor(
    cursor: Option<&str>,
    epoch: &str,
    floor: i64,
    top: i64,
) -> Result<i64, DbError> {
    match cursor {
        None => Ok(0),
        Some(text) => {
            let (their_epoch, seq) = text.split_once('.').ok_or(DbError::InvalidCursor)?;
            let seq: i64 = seq.parse().map_err(|_| DbError::InvalidCursor)?;
            if their_epoch != epoch || seq < floor || seq > top {
                return Err(DbError::MustRefetch);
            }
            Ok(seq)
        }
    }
}

/// Build a page from up to `limit + 1` rows `(seq, json)` read after `after`; the last page
/// brings the device to the high water `top` (covers compacted-away seqs).
pub(crate) fn make_page(
    epoch: &str,
    after: i64,
    top: i64,
    rows: Vec<(i64, String)>,
    limit: u32,
) -> Page {
    let has_more = rows.len() > limit as usize;
    let mut changes_json = Vec::with_capacity(rows.len().min(limit as usize));
    let mut last = after;
    for (seq, json) in rows.into_iter().take(limit as usize) {
        changes_json.push(json);
        last = seq;
    }
    let next = if has_more { last } else { top.max(last) };
    Page {
        changes_json,
        next_cursor: format_cursor(epoch, next),
        has_more,
    }
}

/// A page of permit heads from up to `limit + 1` rows read after `after`, in seq order; the last
/// page brings the device to `top`, the newest head seq.
pub(crate) fn make_permit_page(
    epoch: &str,
    after: i64,
    top: i64,
    mut rows: Vec<HeadEntry>,
    limit: u32,
) -> PermitPage {
    let has_more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let last = rows.last().map_or(after, |h| h.seq);
    let next = if has_more { last } else { top.max(last) };
    PermitPage {
        heads: rows,
        next_cursor: format_cursor(epoch, next),
        has_more,
    }
}

/// The start of the feed entity keys of a collection's rows (and of their tombstones).
pub fn collection_prefix(collection: Collection) -> &'static str {
    match collection {
        Collection::Licences => "licence\u{1f}",
        Collection::Machines => "machine\u{1f}",
        Collection::Bindings => "binding\u{1f}",
        Collection::Revocations => "revocation\u{1f}",
        Collection::IssuerKeys => "issuer_key\u{1f}",
        Collection::CalendarDays => "calendar_day\u{1f}",
        Collection::SensitivePeriods => "sensitive_period\u{1f}",
    }
}

/// The feed entity a change is about: later changes to the same entity supersede earlier ones.
pub fn entity_of(change: &RegistryChange) -> String {
    use weldguard_model::domain::RevocationTarget;
    let key = |c: Collection, rest: &str| format!("{}{rest}", collection_prefix(c));
    match change {
        RegistryChange::UpsertLicence(l) => key(Collection::Licences, &l.certificate_no),
        RegistryChange::DeleteLicence { certificate_no } => {
            key(Collection::Licences, certificate_no)
        }
        RegistryChange::UpsertMachine(m) => key(Collection::Machines, &m.machine_id),
        RegistryChange::DeleteMachine { machine_id } => key(Collection::Machines, machine_id),
        RegistryChange::Bind(b) | RegistryChange::Unbind(b) => key(
            Collection::Bindings,
            &format!("{}\u{1f}{}", b.machine_id, b.certificate_no),
        ),
        RegistryChange::Revoke(r) | RegistryChange::Unrevoke(r) => {
            let target = match r.target {
                RevocationTarget::Licence => "licence",
                RevocationTarget::Credential => "credential",
                RevocationTarget::IssuerKey => "issuer_key",
                RevocationTarget::Machine => "machine",
            };
            key(Collection::Revocations, &format!("{target}\u{1f}{}", r.id))
        }
        RegistryChange::UpsertIssuerKey(k) => key(Collection::IssuerKeys, &k.kid),
        RegistryChange::DeleteIssuerKey { kid } => key(Collection::IssuerKeys, kid),
        RegistryChange::SetCalendarDay(day) => key(Collection::CalendarDays, &day.date.to_string()),
        RegistryChange::ClearCalendarDay { date } => {
            key(Collection::CalendarDays, &date.to_string())
        }
        RegistryChange::AnnouncePeriod(p) => key(Collection::SensitivePeriods, &p.period_id),
        RegistryChange::WithdrawPeriod { period_id } => {
            key(Collection::SensitivePeriods, period_id)
        }
    }
}

pub(crate) fn is_tombstone(change: &RegistryChange) -> bool {
    weldguard_model::checksum::collection_of(change).is_none()
}

/// Whether a stored change (its feed JSON) keeps its entity in the registry: it parses and is
/// not a delete.
pub(crate) fn is_live_change(json: &str) -> bool {
    serde_json::from_str::<RegistryChange>(json).is_ok_and(|c| !is_tombstone(&c))
}

/// An issuer key as the server keeps it: the key file (with its secret) and its validity period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredIssuerKey {
    pub kid: String,
    /// [`weldguard_model::codes::IssuerKey::to_json`].
    pub key_json: String,
    pub valid_from_ms: i64,
    /// Set when the key was rotated out; `None` for the signing key.
    pub valid_until_ms: Option<i64>,
}

/// A published registry snapshot as the database keeps it: the signed manifest and each chunk's
/// exact bytes, gzip-compressed (served as they are to clients that accept gzip).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSnapshot {
    pub snapshot_id: String,
    pub manifest: Vec<u8>,
    pub made_at_ms: i64,
    /// The feed `seq` it was cut at: a compaction past it drops it ([`Store::compact`]).
    pub cursor_seq: i64,
    pub chunks_gzip: Vec<Vec<u8>>,
}

/// The newest stored snapshot without its chunks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotHead {
    pub snapshot_id: String,
    pub manifest: Vec<u8>,
    pub made_at_ms: i64,
    pub chunks: i64,
}

/// The flags to store with a newly applied record: for a work session, the machine and licence
/// the registry does not hold and another welder's certificate ([`crate::validate::session_flags`];
/// `pusher` is the pushing device's role and person id); `holds(entity)` says whether
/// the registry's newest change of a feed entity is not a delete.
pub(crate) fn record_flags_of(
    kind: &str,
    payload: &str,
    pusher: Option<(Role, &str)>,
    mut holds: impl FnMut(&str) -> Result<bool, DbError>,
) -> Result<Vec<&'static str>, DbError> {
    if kind != "work_session" {
        return Ok(Vec::new());
    }
    let Ok(session) = serde_json::from_str::<weldguard_model::records::WorkSession>(payload) else {
        return Ok(Vec::new());
    };
    crate::validate::session_flags(&session, pusher, |collection, id| {
        holds(&format!("{}{id}", collection_prefix(collection)))
    })
}

/// Serialise a change for the feed.
pub(crate) fn change_json(change: &RegistryChange) -> Result<String, DbError> {
    serde_json::to_string(change).map_err(|e| DbError::Invalid(e.to_string()))
}

/// The seqs among `rows` whose change is a tombstone.
pub(crate) fn tombstone_seqs(rows: Vec<(i64, String)>) -> Vec<i64> {
    rows.into_iter()
        .filter(|(_, json)| {
            serde_json::from_str::<RegistryChange>(json).is_ok_and(|c| is_tombstone(&c))
        })
        .map(|(seq, _)| seq)
        .collect()
}

impl Db {
    /// The store over `store`.
    pub fn new(store: Box<dyn Store>) -> Self {
        Db {
            store,
            warnings: crate::warnings::WarningConfig::default(),
        }
    }

    /// The same store, computing warnings with `config`.
    pub fn with_warnings(mut self, config: crate::warnings::WarningConfig) -> Self {
        self.warnings = config;
        self
    }

    /// The warning thresholds in force.
    pub fn warning_config(&self) -> &crate::warnings::WarningConfig {
        &self.warnings
    }

    /// Append registry changes to the feed in one transaction; returns the last seq. With
    /// warnings on, the same transaction queues the registry's own checks (a licence coming
    /// within the expiry window: [`crate::warnings::licence_deadlines`]).
    pub fn write_changes(&self, changes: &[RegistryChange]) -> Result<i64, DbError> {
        let deadlines = if self.warnings.enabled {
            crate::warnings::licence_deadlines(changes, &self.warnings, now_ms())
        } else {
            Vec::new()
        };
        self.store.write_changes_queueing(changes, &deadlines)
    }

    /// Open (creating) the SQLite database `DIR/weldguard-server.sqlite` and migrate it.
    pub fn open(data_dir: &Path) -> Result<Self, DbError> {
        Ok(Db::new(Box::new(sqlite::SqliteDb::open(data_dir)?)))
    }

    /// Connect to PostgreSQL at `url` (`postgres://…`) and migrate the database.
    pub fn connect_postgres(url: &str) -> Result<Self, DbError> {
        Ok(Db::new(Box::new(postgres::PgDb::connect(url)?)))
    }

    /// The backend the options select: PostgreSQL when `database` is given, else SQLite in
    /// `data_dir` (which is created when missing by the caller).
    pub fn from_options(database: Option<&str>, data_dir: &Path) -> Result<Self, DbError> {
        match database {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Db::connect_postgres(url)
            }
            Some(other) => Err(DbError::UnsupportedUrl(other.to_owned())),
            None => Db::open(data_dir),
        }
    }

    /// The device a live bearer token belongs to (an expired token is `None`).
    pub fn caller(&self, token: &str) -> Result<Option<Caller>, DbError> {
        Ok(match self.check_token(token, now_ms())? {
            TokenCheck::Valid(caller) => Some(caller),
            TokenCheck::Expired | TokenCheck::Unknown => None,
        })
    }

    /// The signer directory's entries: every device whose person may sign permits.
    pub fn signer_entries(&self) -> Result<Vec<weldguard_model::signers::SignerEntry>, DbError> {
        self.signer_rows()?.iter().map(SignerRow::entry).collect()
    }

    /// Use an enrolment code (once): register the device and return (token, caller).
    pub fn enrol(
        &self,
        code: &str,
        public_key: &str,
        device_name: &str,
    ) -> Result<(String, Caller), DbError> {
        self.enrol_expiring(code, public_key, device_name, None)
    }

    /// Insert pushed records. Each item is (key, kind, payload); items already rejected by
    /// validation are not passed here. A key is applied at most once, also across server
    /// processes; a known key with another payload is a conflict. Permit steps are placed one by
    /// one, in order, each in its own transaction against its permit's head
    /// ([`crate::permits::push_step`], asking `admit` which versions a step may follow); the
    /// other records go in together in one transaction. Inside those transactions each applied
    /// record gets its flags (`PushEffects`).
    pub fn insert_records(
        &self,
        device_id: &str,
        items: &[(&str, &str, &str)],
        admit: &dyn AdmitStep,
    ) -> Result<Vec<Insert>, DbError> {
        let registry = crate::registry_facts::RegistryFacts::from_transaction(Default::default());
        self.insert_records_in(device_id, items, admit, &registry)
    }

    /// [`Db::insert_records`], the rules reading `registry` (the registry and work calendar the
    /// feed holds; [`crate::registry_facts`]).
    pub fn insert_records_in(
        &self,
        device_id: &str,
        items: &[(&str, &str, &str)],
        admit: &dyn AdmitStep,
        registry: &crate::registry_facts::RegistryFacts,
    ) -> Result<Vec<Insert>, DbError> {
        let mut effects = PushEffects {
            pusher: None,
            registry,
            warnings: self.warnings,
            machines: if self.warnings.enabled {
                crate::warnings::machines_of(items)
            } else {
                Vec::new()
            },
            locked: false,
        };
        let on_applied =
            &mut |tx: &mut dyn PushTx, record: &AppliedRecord<'_>| effects.applied(tx, record);
        if !items.iter().any(|(_, kind, _)| *kind == PERMIT_STEP_KIND) {
            return self.insert_plain_records(device_id, items, on_applied);
        }
        let plain: Vec<(&str, &str, &str)> = items
            .iter()
            .filter(|(_, kind, _)| *kind != PERMIT_STEP_KIND)
            .copied()
            .collect();
        let mut plain_results = self
            .insert_plain_records(device_id, &plain, on_applied)?
            .into_iter();
        let mut out = Vec::with_capacity(items.len());
        for (key, kind, payload) in items {
            out.push(if *kind == PERMIT_STEP_KIND {
                if !out.is_empty() {
                    self.between_permit_steps();
                }
                self.push_permit_step(device_id, key, payload, admit, on_applied)?
            } else {
                plain_results
                    .next()
                    .ok_or_else(|| DbError::Invalid("a record was not answered".into()))?
            });
        }
        Ok(out)
    }
}

impl std::ops::Deref for Db {
    type Target = dyn Store;

    fn deref(&self) -> &Self::Target {
        &*self.store
    }
}

/// What a push does inside its transaction for every record it applies, on either backend: a
/// work session gets its flags ([`record_flags_of`]) and raises its warnings
/// ([`crate::warnings::on_work_session`]).
struct PushEffects<'c> {
    /// The pushing device's role and person id, read once per push when first needed.
    pusher: Option<Option<(Role, String)>>,
    /// What the rules read of the registry: classes, expiry, the work calendar.
    registry: &'c crate::registry_facts::RegistryFacts,
    warnings: crate::warnings::WarningConfig,
    /// The machines the push's work sessions name, sorted: locked before the first rule reads.
    machines: Vec<String>,
    locked: bool,
}

impl PushEffects<'_> {
    fn applied(&mut self, tx: &mut dyn PushTx, record: &AppliedRecord<'_>) -> Result<(), DbError> {
        match record.kind {
            "work_session" => {}
            "inspection" => {
                if let Ok(inspection) =
                    serde_json::from_str::<weldguard_model::inspect::Inspection>(record.payload)
                {
                    crate::platform::on_inspection(tx, record, &inspection)?;
                }
                return Ok(());
            }
            PERMIT_STEP_KIND => {
                if let Ok(step) = serde_json::from_str::<weldguard_model::records::PermitStepRecord>(
                    record.payload,
                ) {
                    let pusher = self.pusher(tx, record)?;
                    crate::platform::on_permit_step(tx, record, &step, pusher.map(|p| p.1))?;
                    if self.warnings.enabled {
                        crate::work_rules::on_permit_step(
                            tx,
                            &self.warnings,
                            record,
                            &step,
                            now_ms(),
                        )?;
                    }
                }
                return Ok(());
            }
            _ => return Ok(()),
        }
        let pusher = self.pusher(tx, record)?;
        for flag in record_flags_of(record.kind, record.payload, pusher, |entity| {
            tx.registry_holds(entity)
        })? {
            tx.add_record_flag(record.key, flag)?;
        }
        let Ok(session) =
            serde_json::from_str::<weldguard_model::records::WorkSession>(record.payload)
        else {
            return Ok(());
        };
        if self.warnings.enabled && !self.locked {
            tx.lock_machines(&self.machines)?;
            self.locked = true;
        }
        let facts = tx.machine_facts(&session.machine_id)?;
        let place = crate::platform::session_place(tx, facts.as_ref(), &session.certificate_no)?;
        let site_id = facts.as_ref().and_then(|f| f.site_id.clone());
        crate::platform::on_session(tx, record, &session, place.as_ref(), site_id.as_deref())?;
        if self.warnings.enabled {
            crate::warnings::on_work_session(
                tx,
                &crate::warnings::RuleContext {
                    config: &self.warnings,
                    registry: self.registry,
                    now_ms: now_ms(),
                },
                record,
                &session,
                facts,
                place,
            )?;
            crate::work_rules::on_session(
                tx,
                &self.warnings,
                self.registry,
                record,
                &session,
                now_ms(),
            )?;
        }
        Ok(())
    }

    /// The pushing device's role and person id, read once per push.
    fn pusher<'s>(
        &'s mut self,
        tx: &mut dyn PushTx,
        record: &AppliedRecord<'_>,
    ) -> Result<Option<(Role, &'s str)>, DbError> {
        if self.pusher.is_none() {
            self.pusher = Some(tx.pusher(record.device_id)?);
        }
        Ok(self
            .pusher
            .as_ref()
            .and_then(|p| p.as_ref())
            .map(|(role, id)| (*role, id.as_str())))
    }
}

#[cfg(test)]
mod tests {
    //! The same test bodies run on both backends: `sqlite_*` always, `postgres_*` when a test
    //! cluster is configured (see [`test_support`]).
    use super::test_support::TestDatabase;
    use super::*;
    use crate::permits::SuccessorOnly;
    use weldguard_model::domain::Binding;

    /// A database of one backend, with what must live as long as it.
    enum Fixture {
        Sqlite(std::path::PathBuf),
        Postgres(Box<TestDatabase>),
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            if let Fixture::Sqlite(dir) = self {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }

    #[derive(Clone, Copy)]
    enum Backend {
        Sqlite,
        Postgres,
    }

    /// Open a fresh database; `None` when the PostgreSQL test is skipped.
    fn open(backend: Backend, name: &str) -> Option<(Db, Fixture)> {
        match backend {
            Backend::Sqlite => {
                let dir = std::env::temp_dir()
                    .join(format!("wg-server-db-{name}-{}", std::process::id()));
                let _ = std::fs::remove_dir_all(&dir);
                std::fs::create_dir_all(&dir).unwrap();
                Some((Db::open(&dir).unwrap(), Fixture::Sqlite(dir)))
            }
            Backend::Postgres => {
                let fixture = TestDatabase::for_test(name)?;
                let db = Db::connect_postgres(fixture.url()).unwrap();
                Some((db, Fixture::Postgres(Box::new(fixture))))
            }
        }
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

    fn pages_follow_the_feed_and_compaction_forces_old_cursors_to_refetch(backend: Backend) {
        let Some((db, _fixture)) = open(backend, "feed") else {
            return;
        };
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
    }

    fn a_key_is_applied_once_and_a_changed_payload_under_it_is_a_conflict(backend: Backend) {
        let Some((db, _fixture)) = open(backend, "records") else {
            return;
        };
        let first = db
            .insert_records(
                "d1",
                &[("k1", "work_session", "{}"), ("k2", "work_session", "{}")],
                &SuccessorOnly,
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
                &SuccessorOnly,
            )
            .unwrap();
        assert_eq!(again, vec![Insert::Duplicate, Insert::Conflict]);
        // The same key twice in one batch: the first is applied, the second is its duplicate.
        let twice = db
            .insert_records(
                "d2",
                &[("k3", "inspection", "{}"), ("k3", "inspection", "{}")],
                &SuccessorOnly,
            )
            .unwrap();
        assert_eq!(twice, vec![Insert::Applied, Insert::Duplicate]);
        let stored = db.records(None).unwrap();
        assert_eq!(
            stored
                .iter()
                .map(|r| r.idempotency_key.as_str())
                .collect::<Vec<_>>(),
            vec!["k1", "k2", "k3"]
        );
        assert_eq!(db.records(Some("inspection")).unwrap().len(), 1);
    }

    fn records_come_a_page_at_a_time_each_once_in_arrival_order(backend: Backend) {
        let Some((db, _fixture)) = open(backend, "record_pages") else {
            return;
        };
        let keys: Vec<String> = (0..25).map(|i| format!("k{i:02}")).collect();
        let items: Vec<(&str, &str, &str)> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let kind = if i % 5 == 0 {
                    "inspection"
                } else {
                    "work_session"
                };
                (k.as_str(), kind, "{}")
            })
            .collect();
        db.insert_records("d1", &items, &SuccessorOnly).unwrap();
        let read_all = |kind: Option<&str>, limit: u32| {
            let (mut seen, mut after, mut pages) = (Vec::new(), 0, 0);
            loop {
                let page = db.records_page(kind, after, limit).unwrap();
                assert!(page.records.len() <= limit as usize);
                pages += 1;
                seen.extend(page.records.into_iter().map(|r| r.idempotency_key));
                if !page.has_more {
                    return (seen, pages);
                }
                assert!(page.last > after);
                after = page.last;
            }
        };
        assert_eq!(read_all(None, 10), (keys.clone(), 3));
        assert_eq!(read_all(None, 25), (keys.clone(), 1));
        let (inspections, pages) = read_all(Some("inspection"), 2);
        assert_eq!(inspections, ["k00", "k05", "k10", "k15", "k20"]);
        assert_eq!(pages, 3);
        let end = db.records_page(None, i64::MAX, 10).unwrap();
        assert!(end.records.is_empty() && !end.has_more && end.last == 0);
    }

    fn enrolment_codes_work_once_and_tokens_identify_the_device(backend: Backend) {
        let Some((db, _fixture)) = open(backend, "enrol") else {
            return;
        };
        let admin = db.bootstrap_admin(None).unwrap().unwrap();
        assert_eq!(
            db.bootstrap_admin(None).unwrap(),
            None,
            "only at first start"
        );
        assert_eq!(db.caller(&admin).unwrap().unwrap().role, Role::Admin);
        let code = db
            .create_enrolment(&Grant::plain("张三", Role::Welder))
            .unwrap();
        let (token, caller) = db.enrol(&code, "04ab", "phone").unwrap();
        assert_eq!(caller.role, Role::Welder);
        assert_eq!(db.caller(&token).unwrap().unwrap().person, "张三");
        assert!(matches!(
            db.enrol(&code, "04ab", "phone"),
            Err(DbError::BadEnrolmentCode)
        ));
        assert_eq!(db.caller("nope").unwrap(), None);
    }

    /// An enrolment with a person id and permit roles puts the device's key in the signer
    /// directory, with its end once the device is disabled; a welder's phone recording someone
    /// else's certificate is kept and flagged; a welder is named by id.
    fn signers_come_from_enrolments_and_other_welders_certificates_are_flagged(backend: Backend) {
        use weldguard_model::codes::{DeviceSigner, SoftwareSigner, to_hex};
        let Some((db, _fixture)) = open(backend, "signers") else {
            return;
        };
        let key = SoftwareSigner::generate().unwrap();
        let signer = Grant {
            person: "周八".into(),
            person_id: Some("S-004".into()),
            role: Role::Supervisor,
            permit_roles: vec!["unit_head".into()],
            scope: None,
        };
        let (_, approver) = db
            .enrol(
                &db.create_enrolment(&signer).unwrap(),
                &to_hex(&key.public_key()),
                "p",
            )
            .unwrap();
        assert_eq!(approver.person_id, "S-004");
        let welder = Grant {
            person: "李四".into(),
            person_id: Some("T370983199001011234".into()),
            role: Role::Welder,
            permit_roles: Vec::new(),
            scope: None,
        };
        let (token, caller) = db
            .enrol(&db.create_enrolment(&welder).unwrap(), "04ab", "p")
            .unwrap();
        assert_eq!(
            db.caller(&token).unwrap().unwrap().person_id,
            "T370983199001011234"
        );
        // Only who signs is in the directory.
        let entries = db.signer_entries().unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(
            (entries[0].person_id.as_str(), entries[0].roles.clone()),
            ("S-004", vec!["unit_head".to_owned()])
        );
        assert_eq!(entries[0].public_key, key.public_key());
        assert_eq!(entries[0].valid_until, None);
        assert!(db.disable_device(&approver.device_id).unwrap());
        assert!(db.signer_entries().unwrap()[0].valid_until.is_some());
        // The welder's phone starts work with their own certificate, then with someone else's.
        let session = |id: &str, cert: &str| {
            serde_json::to_string(&weldguard_model::records::WorkSession {
                id: id.into(),
                machine_id: "M-1".into(),
                certificate_no: cert.into(),
                started_at_ms: now_ms() - 60_000,
                allowed: true,
                reason_codes: vec![],
                permit_id: None,
                position: None,
                created_at_ms: now_ms() - 60_000,
            })
            .unwrap()
        };
        let (own, other) = (
            session("s-own", "T370983199001011234"),
            session("s-other", "T370983198001011111"),
        );
        let items = [
            ("s-own", "work_session", own.as_str()),
            ("s-other", "work_session", other.as_str()),
        ];
        db.insert_records(&caller.device_id, &items, &SuccessorOnly)
            .unwrap();
        let flags = |key| db.record_flags(key).unwrap();
        assert!(!flags("s-own").contains(&"session.other_welders_certificate".to_owned()));
        assert!(flags("s-other").contains(&"session.other_welders_certificate".to_owned()));
    }

    /// Tokens expire; a nonce signed with the enrolled key buys a new token once; every refusal
    /// (used, foreign or expired nonce, bad signature, disabled or unknown device) changes nothing.
    fn tokens_expire_and_a_signed_nonce_refreshes_them_once(backend: Backend) {
        use weldguard_model::codes::{DeviceSigner, SoftwareSigner, to_hex};
        use weldguard_model::protocol::token_refresh_message;
        let Some((db, _fixture)) = open(backend, "refresh") else {
            return;
        };
        let admin = db.bootstrap_admin(None).unwrap().unwrap();
        let key = SoftwareSigner::generate().unwrap();
        let other_key = SoftwareSigner::generate().unwrap();
        let t0 = now_ms();
        let code = db
            .create_enrolment(&Grant::plain("李四", Role::Inspector))
            .unwrap();
        let (token, caller) = db
            .enrol_expiring(&code, &to_hex(&key.public_key()), "phone", Some(t0 + 1000))
            .unwrap();
        let id = caller.device_id.clone();
        assert!(matches!(
            db.check_token(&token, t0),
            Ok(TokenCheck::Valid(_))
        ));
        assert_eq!(
            db.check_token(&token, t0 + 1000).unwrap(),
            TokenCheck::Expired
        );
        assert_eq!(db.check_token("nope", t0).unwrap(), TokenCheck::Unknown);
        // The bootstrap admin's token never expires.
        assert!(matches!(
            db.check_token(&admin, i64::MAX),
            Ok(TokenCheck::Valid(_))
        ));
        let sign = |k: &SoftwareSigner, nonce: &str| {
            to_hex(&k.sign(&token_refresh_message(&id, nonce)).unwrap())
        };
        let refused = |r: Result<IssuedToken, DbError>| match r {
            Err(DbError::Refresh(why)) => why,
            other => panic!("expected a refusal, got {other:?}"),
        };

        // A signature by another key, or over another device's message: refused, nonce kept.
        let (nonce, expires) = db.create_auth_nonce(&id, t0, 300_000).unwrap();
        assert_eq!(expires, t0 + 300_000);
        assert_eq!(
            refused(db.refresh_token(&id, &nonce, &sign(&other_key, &nonce), t0, None)),
            RefreshRefusal::BadSignature
        );
        let wrong_message = to_hex(&key.sign(&token_refresh_message("x", &nonce)).unwrap());
        assert_eq!(
            refused(db.refresh_token(&id, &nonce, &wrong_message, t0, None)),
            RefreshRefusal::BadSignature
        );
        assert_eq!(
            refused(db.refresh_token(&id, &nonce, "zz", t0, None)),
            RefreshRefusal::BadSignature
        );
        assert_eq!(
            db.check_token(&token, t0).unwrap(),
            TokenCheck::Valid(caller.clone())
        );
        // The right signature: a new token; the old one reads as expired from now on.
        let fresh = db
            .refresh_token(&id, &nonce, &sign(&key, &nonce), t0 + 1, Some(t0 + 5000))
            .unwrap();
        assert_eq!(fresh.expires_at_ms, Some(t0 + 5000));
        assert_ne!(fresh.token, token);
        assert_eq!(db.check_token(&token, t0).unwrap(), TokenCheck::Expired);
        assert_eq!(
            db.check_token(&fresh.token, t0 + 4999).unwrap(),
            TokenCheck::Valid(caller.clone())
        );
        // The nonce was single-use.
        assert_eq!(
            refused(db.refresh_token(&id, &nonce, &sign(&key, &nonce), t0 + 2, None)),
            RefreshRefusal::BadNonce
        );
        // A nonce of this device presented for another device is unknown there.
        let (nonce2, _) = db.create_auth_nonce(&id, t0, 300_000).unwrap();
        let code2 = db
            .create_enrolment(&Grant::plain("王五", Role::Welder))
            .unwrap();
        let (_, other) = db
            .enrol_expiring(&code2, &to_hex(&other_key.public_key()), "p2", None)
            .unwrap();
        assert_eq!(
            refused(db.refresh_token(&other.device_id, &nonce2, "00", t0, None)),
            RefreshRefusal::BadNonce
        );
        // An expired nonce is refused and dropped.
        assert_eq!(
            refused(db.refresh_token(&id, &nonce2, &sign(&key, &nonce2), t0 + 300_000, None)),
            RefreshRefusal::NonceExpired
        );
        assert_eq!(
            refused(db.refresh_token(&id, &nonce2, &sign(&key, &nonce2), t0, None)),
            RefreshRefusal::BadNonce
        );
        // Unknown devices get no nonce; the bootstrap admin has no key to prove.
        assert!(matches!(
            db.create_auth_nonce("nobody", t0, 1000),
            Err(DbError::Refresh(RefreshRefusal::UnknownDevice))
        ));
        let (n3, _) = db.create_auth_nonce(BOOTSTRAP_DEVICE, t0, 1000).unwrap();
        assert_eq!(
            refused(db.refresh_token(BOOTSTRAP_DEVICE, &n3, &sign(&key, &n3), t0, None)),
            RefreshRefusal::BadSignature
        );
        // A device holds a few nonces at most: the oldest go.
        let nonces: Vec<String> = (0..MAX_NONCES_PER_DEVICE + 2)
            .map(|i| db.create_auth_nonce(&id, t0 + i, 300_000).unwrap().0)
            .collect();
        assert_eq!(
            refused(db.refresh_token(&id, &nonces[0], &sign(&key, &nonces[0]), t0 + 10, None)),
            RefreshRefusal::BadNonce
        );
        let last = nonces.last().unwrap();
        db.refresh_token(&id, last, &sign(&key, last), t0 + 10, None)
            .unwrap();
    }

    /// Many threads race to spend one nonce: exactly one gets a token.
    fn a_nonce_is_spent_exactly_once_under_a_race(backend: Backend) {
        use weldguard_model::codes::{DeviceSigner, SoftwareSigner, to_hex};
        use weldguard_model::protocol::token_refresh_message;
        let Some((db, _fixture)) = open(backend, "nonce-race") else {
            return;
        };
        let key = SoftwareSigner::generate().unwrap();
        let code = db
            .create_enrolment(&Grant::plain("赵六", Role::Welder))
            .unwrap();
        let (_, caller) = db
            .enrol_expiring(&code, &to_hex(&key.public_key()), "phone", Some(1))
            .unwrap();
        let id = caller.device_id;
        let (nonce, _) = db.create_auth_nonce(&id, now_ms(), 300_000).unwrap();
        let signature = to_hex(&key.sign(&token_refresh_message(&id, &nonce)).unwrap());
        let won: Vec<bool> = std::thread::scope(|s| {
            let racers: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(
                        || match db.refresh_token(&id, &nonce, &signature, now_ms(), None) {
                            Ok(_) => true,
                            Err(DbError::Refresh(RefreshRefusal::BadNonce)) => false,
                            Err(e) => panic!("{e}"),
                        },
                    )
                })
                .collect();
            racers.into_iter().map(|r| r.join().unwrap()).collect()
        });
        assert_eq!(won.iter().filter(|w| **w).count(), 1, "{won:?}");
    }

    /// Writers and readers at once: every page a reader walks is a prefix of the final feed,
    /// in order, so following cursors never passes over a change.
    fn concurrent_writers_never_make_a_reader_skip(backend: Backend) {
        let Some((db, _fixture)) = open(backend, "concurrent") else {
            return;
        };
        let db = std::sync::Arc::new(db);
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let db = db.clone();
                std::thread::spawn(move || {
                    for i in 0..40 {
                        db.write_changes(&[RegistryChange::Bind(bind(
                            &format!("M{w}"),
                            &format!("T{i}"),
                        ))])
                        .unwrap();
                    }
                })
            })
            .collect();
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        let mut done = false;
        loop {
            let page = db.pull(cursor.as_deref(), 7).unwrap();
            seen.extend(page.changes_json);
            cursor = Some(page.next_cursor);
            if done && !page.has_more {
                break;
            }
            if !page.has_more && writers.iter().all(|w| w.is_finished()) {
                done = true;
            }
        }
        for w in writers {
            w.join().unwrap();
        }
        let all = db.pull(None, 10_000).unwrap().changes_json;
        assert_eq!(all.len(), 160);
        assert_eq!(seen, all, "the reader missed or reordered changes");
    }

    fn migrations_are_idempotent_and_keep_the_epoch(backend: Backend) {
        let Some((db, fixture)) = open(backend, "reopen") else {
            return;
        };
        db.write_changes(&[RegistryChange::Bind(bind("M1", "T1"))])
            .unwrap();
        let cursor = db.pull(None, 10).unwrap().next_cursor;
        let again = match &fixture {
            Fixture::Sqlite(dir) => Db::open(dir).unwrap(),
            Fixture::Postgres(t) => Db::connect_postgres(t.url()).unwrap(),
        };
        assert_eq!(again.pull(Some(&cursor), 10).unwrap().next_cursor, cursor);
        drop(db);
        drop(again);
    }

    /// Servers starting together on a fresh database: the migration lock lets exactly one of
    /// them migrate, and all of them agree on the feed epoch.
    #[test]
    fn postgres_servers_starting_together_migrate_once() {
        let Some(fixture) = TestDatabase::for_test("startup") else {
            return;
        };
        let url = fixture.url().to_owned();
        let started: Vec<(String, bool)> = std::thread::scope(|s| {
            let starts: Vec<_> = (0..6)
                .map(|_| {
                    s.spawn(|| {
                        let db = Db::connect_postgres(&url).unwrap();
                        let fresh = db.bootstrap_admin(None).unwrap().is_some();
                        (db.pull(None, 1).unwrap().next_cursor, fresh)
                    })
                })
                .collect();
            starts.into_iter().map(|t| t.join().unwrap()).collect()
        });
        assert!(started.windows(2).all(|w| w[0].0 == w[1].0), "{started:?}");
        assert_eq!(
            started.iter().filter(|(_, fresh)| *fresh).count(),
            1,
            "one server mints the first admin token"
        );
        let mut client = ::postgres::Client::connect(&url, ::postgres::NoTls).unwrap();
        let applied: i64 = client
            .query_one("SELECT count(*) FROM schema_migrations", &[])
            .unwrap()
            .get(0);
        assert_eq!(
            applied,
            postgres::MIGRATIONS.len() as i64,
            "every migration once"
        );
        drop(client);
    }

    /// A stored snapshot is read back whole by id, a second store of the same id changes nothing,
    /// and only the newest `keep` survive.
    fn snapshots_are_kept_by_id_and_the_oldest_dropped(backend: Backend) {
        let Some((db, _fixture)) = open(backend, "snapshots") else {
            return;
        };
        assert_eq!(db.latest_snapshot().unwrap(), None);
        let snap = |id: &str, at: i64| StoredSnapshot {
            snapshot_id: id.into(),
            manifest: format!("manifest of {id}").into_bytes(),
            made_at_ms: at,
            cursor_seq: 0,
            chunks_gzip: vec![vec![1, 2, 3], format!("second of {id}").into_bytes()],
        };
        db.save_snapshot(&snap("s1", 1_000), 2).unwrap();
        // The same id again (another process cut at the same cursor): the first one stays.
        db.save_snapshot(&snap("s1", 5_000), 2).unwrap();
        let head = db.latest_snapshot().unwrap().unwrap();
        assert_eq!(
            (head.snapshot_id.as_str(), head.made_at_ms, head.chunks),
            ("s1", 1_000, 2)
        );
        assert_eq!(head.manifest, b"manifest of s1");
        assert_eq!(
            db.snapshot_chunk("s1", 1).unwrap().unwrap(),
            b"second of s1"
        );
        assert_eq!(db.snapshot_chunk("s1", 2).unwrap(), None);
        assert_eq!(db.snapshot_chunk("s9", 0).unwrap(), None);

        db.save_snapshot(&snap("s2", 2_000), 2).unwrap();
        db.save_snapshot(&snap("s3", 3_000), 2).unwrap();
        assert_eq!(db.latest_snapshot().unwrap().unwrap().snapshot_id, "s3");
        assert_eq!(db.snapshot_chunk("s1", 0).unwrap(), None, "dropped");
        assert!(
            db.snapshot_chunk("s2", 0).unwrap().is_some(),
            "kept for late readers"
        );
        assert!(db.snapshot_chunk("s3", 1).unwrap().is_some());
    }

    /// A compaction drops, in its transaction, the snapshots cut before its new floor, keeps
    /// those at or after it, and a snapshot cut before it is not stored afterwards.
    fn compaction_drops_the_snapshots_it_outdates(backend: Backend) {
        let Some((db, _fixture)) = open(backend, "compact-snapshots") else {
            return;
        };
        let snap = |id: &str, at: i64, cursor_seq: i64| StoredSnapshot {
            snapshot_id: id.into(),
            manifest: id.as_bytes().to_vec(),
            made_at_ms: at,
            cursor_seq,
            chunks_gzip: vec![vec![1]],
        };
        let first = db
            .write_changes(&[RegistryChange::Bind(bind("M1", "T1"))])
            .unwrap();
        assert!(db.save_snapshot(&snap("old", 1_000, first), 2).unwrap());
        let top = db
            .write_changes(&[RegistryChange::Unbind(bind("M1", "T1"))])
            .unwrap();
        assert!(db.save_snapshot(&snap("top", 2_000, top), 2).unwrap());
        assert_eq!(db.compact(Some(top)).unwrap(), top);
        assert_eq!(db.latest_snapshot().unwrap().unwrap().snapshot_id, "top");
        assert_eq!(db.snapshot_chunk("old", 0).unwrap(), None);
        // Newer than "top" but cut before the floor: not published.
        assert!(!db.save_snapshot(&snap("late", 3_000, first), 2).unwrap());
        assert_eq!(db.latest_snapshot().unwrap().unwrap().snapshot_id, "top");
        // A compaction past "top" drops it too.
        let newest = db
            .write_changes(&[RegistryChange::Bind(bind("M2", "T2"))])
            .unwrap();
        db.compact(Some(newest)).unwrap();
        assert_eq!(db.latest_snapshot().unwrap(), None);
    }

    /// Permit steps on the database: applied, duplicate, a fork decided the same in both arrival
    /// orders, the loser kept as lost (not a record), heads in the feed, a welder's scope.
    fn permit_forks_end_on_the_same_head_in_either_order(backend: Backend) {
        use crate::permits::fixture::{DAY, Fx, H, PERMIT_ID, payload};
        let f = Fx::new();
        let draft = f.draft();
        let submitted = f.step(&draft, "submit", DAY + 7 * H);
        let checked = f.step(&submitted, "site_check", DAY + 7 * H + 900);
        let approved = f.step(&checked, "approve", DAY + 7 * H + 2400);
        let rejected = f.step(&checked, "reject", DAY + 7 * H + 3000);
        let mut heads = Vec::new();
        for approve_first in [true, false] {
            let name = if approve_first { "fork-a" } else { "fork-r" };
            let Some((db, _fixture)) = open(backend, name) else {
                return;
            };
            let push = |device: &str, (key, body): (String, String)| {
                let out = db
                    .insert_records(device, &[(&key, PERMIT_STEP_KIND, &body)], &SuccessorOnly)
                    .unwrap();
                out.into_iter().next().unwrap()
            };
            let chain = [
                payload("s0", "draft", &draft),
                payload("s1", "submit", &submitted),
                payload("s2", "site_check", &checked),
            ];
            // A batch mixing kinds: answered in order.
            let batch: Vec<(&str, &str, &str)> = vec![
                (&chain[0].0, PERMIT_STEP_KIND, &chain[0].1),
                ("w1", "work_session", "{}"),
                (&chain[1].0, PERMIT_STEP_KIND, &chain[1].1),
                (&chain[2].0, PERMIT_STEP_KIND, &chain[2].1),
            ];
            assert_eq!(
                db.insert_records("welder", &batch, &SuccessorOnly).unwrap(),
                vec![Insert::Applied; 4]
            );
            assert_eq!(push("welder", chain[1].clone()), Insert::Duplicate);
            let a = payload("a", "approve", &approved);
            let r = payload("r", "reject", &rejected);
            let (first, second) = if approve_first { (a, r) } else { (r, a) };
            assert_eq!(push("first", first), Insert::Applied);
            let late = push("second", second.clone());
            if approve_first {
                assert_eq!(late, Insert::Applied, "the rejection wins");
            } else {
                let Insert::Refused(reason) = &late else {
                    panic!("the approval loses: {late:?}");
                };
                assert!(reason.starts_with("permit.conflict"), "{reason}");
                // Pushed again: the same answer, still not a record.
                assert_eq!(push("second", second), late);
            }
            let standings = db.permit_step_standings(PERMIT_ID).unwrap();
            let status = |id: &str| {
                standings
                    .iter()
                    .find(|s| s.step_id == id)
                    .map(|s| s.status.as_str())
                    .unwrap()
                    .to_owned()
            };
            assert_eq!(status("r"), "applied");
            assert_eq!(
                status("a"),
                if approve_first { "superseded" } else { "lost" }
            );
            // Records: each applied step once; a lost step is no record.
            let keys: Vec<String> = db
                .records(Some(PERMIT_STEP_KIND))
                .unwrap()
                .into_iter()
                .map(|r| r.idempotency_key)
                .collect();
            assert_eq!(
                keys.iter().filter(|k| *k == "a").count(),
                usize::from(approve_first)
            );
            assert_eq!(keys.iter().filter(|k| *k == "r").count(), 1);
            // The feed: the one head, for everyone and for the welder it names (by id, never by
            // name: another 李四 sees nothing), not for others.
            let page = db.permit_heads(None, 10, None).unwrap();
            assert_eq!(page.heads.len(), 1);
            assert!(!page.has_more);
            let head = page.heads.into_iter().next().unwrap();
            assert_eq!(
                (head.step_id.as_str(), head.state.as_str()),
                ("r", "rejected")
            );
            assert_eq!(
                db.permit_heads(None, 10, Some("T370983199001011234"))
                    .unwrap()
                    .heads
                    .len(),
                1
            );
            assert!(
                db.permit_heads(None, 10, Some("李四"))
                    .unwrap()
                    .heads
                    .is_empty()
            );
            assert!(
                db.permit_heads(None, 10, Some("赵六"))
                    .unwrap()
                    .heads
                    .is_empty()
            );
            // Nothing after the cursor until the head moves again; a foreign cursor refetches.
            let after = db.permit_heads(Some(&page.next_cursor), 10, None).unwrap();
            assert!(after.heads.is_empty());
            assert_eq!(after.next_cursor, page.next_cursor);
            assert!(matches!(
                db.permit_heads(Some("0000.1"), 10, None),
                Err(DbError::MustRefetch)
            ));
            // A second permit (a draft): pages of one head follow the change order.
            let mut other = draft.clone();
            other.content.permit_id = "0193a1b2-0000-7000-8000-0000000000d2".into();
            assert_eq!(
                push("welder", payload("o0", "draft", &other)),
                Insert::Applied
            );
            let p1 = db.permit_heads(None, 1, None).unwrap();
            assert!(p1.has_more);
            assert_eq!(p1.heads[0].step_id, "r");
            let p2 = db.permit_heads(Some(&p1.next_cursor), 1, None).unwrap();
            assert!(!p2.has_more);
            assert_eq!(p2.heads[0].step_id, "o0");
            heads.push(head.body);
        }
        assert_eq!(heads[0], heads[1], "the same head in both arrival orders");
    }

    /// Several threads (on PostgreSQL: several pooled connections, as several servers would) push
    /// competing steps of one permit at once: exactly one head, the rule's winner.
    fn concurrent_forks_leave_one_head(backend: Backend) {
        use crate::permits::fixture::{DAY, Fx, H, payload};
        let Some((db, _fixture)) = open(backend, "fork-race") else {
            return;
        };
        let f = Fx::new();
        let draft = f.draft();
        let submitted = f.step(&draft, "submit", DAY + 7 * H);
        let checked = f.step(&submitted, "site_check", DAY + 7 * H + 900);
        for (k, p, a) in [
            ("s0", &draft, "draft"),
            ("s1", &submitted, "submit"),
            ("s2", &checked, "site_check"),
        ] {
            let (key, body) = payload(k, a, p);
            db.insert_records("w", &[(&key, PERMIT_STEP_KIND, &body)], &SuccessorOnly)
                .unwrap();
        }
        let forks: Vec<(String, String)> = (0..6)
            .map(|i| {
                let action = if i % 2 == 0 { "approve" } else { "reject" };
                let next = f.step(&checked, action, DAY + 7 * H + 1200 + i * 60);
                payload(&format!("f{i}"), action, &next)
            })
            .collect();
        let db = std::sync::Arc::new(db);
        let answers: Vec<Insert> = std::thread::scope(|s| {
            let handles: Vec<_> = forks
                .iter()
                .map(|(key, body)| {
                    let db = db.clone();
                    s.spawn(move || {
                        db.insert_records("d", &[(key, PERMIT_STEP_KIND, body)], &SuccessorOnly)
                            .unwrap()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        assert_eq!(answers.len(), 6);
        // The earliest rejection (f1, at +1260 s) wins whatever the interleaving.
        let head = db.permit_heads(None, 10, None).unwrap().heads;
        assert_eq!(head.len(), 1);
        assert_eq!(head[0].step_id, "f1");
        let applied = db
            .permit_step_standings(crate::permits::fixture::PERMIT_ID)
            .unwrap()
            .into_iter()
            .filter(|s| s.status == "applied")
            .count();
        assert_eq!(applied, 4, "draft, submit, site check and the winner");
    }

    /// The push hook ([`OnApplied`]) runs once for each record a push applies, in order, inside
    /// the push's transaction: not for a duplicate or a conflict; what it writes commits with the
    /// push, and its error rolls the whole push back (records and what it wrote). Permit steps
    /// likewise, each in its own transaction.
    fn the_push_hook_runs_once_per_applied_record_inside_the_push(backend: Backend) {
        use crate::permits::fixture::{DAY, Fx, H, payload};
        let Some((db, _fixture)) = open(backend, "push-hook") else {
            return;
        };
        let mut seen: Vec<(String, String)> = Vec::new();
        let answers = db
            .insert_plain_records(
                "d1",
                &[
                    ("k1", "inspection", "{}"),
                    ("k2", "work_session", "{}"),
                    ("k1", "inspection", "{}"),
                ],
                &mut |_, r| {
                    seen.push((r.key.to_owned(), r.kind.to_owned()));
                    assert_eq!(r.device_id, "d1");
                    Ok(())
                },
            )
            .unwrap();
        assert_eq!(
            answers,
            vec![Insert::Applied, Insert::Applied, Insert::Duplicate]
        );
        assert_eq!(
            seen,
            vec![
                ("k1".to_owned(), "inspection".to_owned()),
                ("k2".to_owned(), "work_session".to_owned())
            ]
        );
        let again = db
            .insert_plain_records(
                "d1",
                &[
                    ("k1", "inspection", "{}"),
                    ("k2", "work_session", "{\"x\":1}"),
                ],
                &mut |_, r| panic!("called for {}", r.key),
            )
            .unwrap();
        assert_eq!(again, vec![Insert::Duplicate, Insert::Conflict]);

        db.insert_plain_records("d1", &[("k3", "inspection", "{}")], &mut |tx, r| {
            tx.add_record_flag(r.key, "test.flag")
        })
        .unwrap();
        assert_eq!(db.record_flags("k3").unwrap(), vec!["test.flag".to_owned()]);
        let failed = db.insert_plain_records(
            "d1",
            &[("k4", "inspection", "{}"), ("k5", "inspection", "{}")],
            &mut |tx, r| {
                tx.add_record_flag(r.key, "test.flag")?;
                if r.key == "k5" {
                    return Err(DbError::Invalid("refused by the hook".into()));
                }
                Ok(())
            },
        );
        assert!(matches!(failed, Err(DbError::Invalid(_))), "{failed:?}");
        let keys: Vec<String> = db
            .records(None)
            .unwrap()
            .into_iter()
            .map(|r| r.idempotency_key)
            .collect();
        assert_eq!(keys, ["k1", "k2", "k3"]);
        assert!(db.record_flags("k4").unwrap().is_empty());

        let f = Fx::new();
        let draft = f.draft();
        let submitted = f.step(&draft, "submit", DAY + 7 * H);
        let (k0, b0) = payload("s0", "draft", &draft);
        let (k1, b1) = payload("s1", "submit", &submitted);
        let mut kinds = Vec::new();
        let mut note = |_: &mut dyn PushTx, r: &AppliedRecord<'_>| {
            kinds.push((r.key.to_owned(), r.kind.to_owned()));
            Ok(())
        };
        assert_eq!(
            db.push_permit_step("w", &k0, &b0, &SuccessorOnly, &mut note)
                .unwrap(),
            Insert::Applied
        );
        assert_eq!(
            db.push_permit_step("w", &k0, &b0, &SuccessorOnly, &mut note)
                .unwrap(),
            Insert::Duplicate
        );
        assert_eq!(kinds, vec![("s0".to_owned(), PERMIT_STEP_KIND.to_owned())]);
        let refused = db.push_permit_step("w", &k1, &b1, &SuccessorOnly, &mut |_, _| {
            Err(DbError::Invalid("refused by the hook".into()))
        });
        assert!(matches!(refused, Err(DbError::Invalid(_))), "{refused:?}");
        assert_eq!(
            db.permit_heads(None, 10, None).unwrap().heads[0].step_id,
            "s0"
        );
        assert_eq!(
            db.push_permit_step("w", &k1, &b1, &SuccessorOnly, &mut |_, _| Ok(()))
                .unwrap(),
            Insert::Applied
        );
        assert_eq!(
            db.permit_heads(None, 10, None).unwrap().heads[0].step_id,
            "s1"
        );
    }

    fn a_disabled_device_loses_its_token_and_its_refresh(backend: Backend) {
        use weldguard_model::codes::{DeviceSigner, SoftwareSigner, to_hex};
        use weldguard_model::protocol::token_refresh_message;
        let Some((db, _fixture)) = open(backend, "disable") else {
            return;
        };
        let key = SoftwareSigner::generate().unwrap();
        let t0 = now_ms();
        let code = db
            .create_enrolment(&Grant::plain("李四", Role::Inspector))
            .unwrap();
        let (token, caller) = db
            .enrol_expiring(
                &code,
                &to_hex(&key.public_key()),
                "phone",
                Some(t0 + 60_000),
            )
            .unwrap();
        let id = caller.device_id.clone();
        let code2 = db
            .create_enrolment(&Grant::plain("王五", Role::Welder))
            .unwrap();
        let (other_token, other) = db.enrol(&code2, "04cd", "phone 2").unwrap();
        let (nonce, _) = db.create_auth_nonce(&id, t0, 300_000).unwrap();

        assert!(!db.disable_device("no-such-device").unwrap());
        assert!(db.disable_device(&id).unwrap());
        assert_eq!(db.check_token(&token, t0).unwrap(), TokenCheck::Unknown);
        // Refresh is refused: the nonce handed out before was dropped with the device (SQLite
        // looks the nonce up first, PostgreSQL the device), and no new nonce is given.
        let signature = to_hex(&key.sign(&token_refresh_message(&id, &nonce)).unwrap());
        assert!(matches!(
            db.refresh_token(&id, &nonce, &signature, t0, None),
            Err(DbError::Refresh(
                RefreshRefusal::DeviceDisabled | RefreshRefusal::BadNonce
            ))
        ));
        assert!(db.create_auth_nonce(&id, t0, 300_000).is_err());
        // Other devices are untouched; disabling twice is still "found".
        assert_eq!(
            db.check_token(&other_token, t0).unwrap(),
            TokenCheck::Valid(other)
        );
        assert!(db.disable_device(&id).unwrap());
    }

    /// A work session as a phone pushes it.
    fn session(
        id: &str,
        machine: &str,
        at_ms: i64,
        allowed: bool,
        reasons: &[&str],
        position: Option<(i32, i32, u32)>,
    ) -> String {
        serde_json::to_string(&weldguard_model::records::WorkSession {
            id: id.into(),
            machine_id: machine.into(),
            certificate_no: "T370983199001011234".into(),
            started_at_ms: at_ms,
            allowed,
            reason_codes: reasons.iter().map(|r| r.to_string()).collect(),
            permit_id: None,
            created_at_ms: at_ms,
            position: position.map(|(latitude_e7, longitude_e7, accuracy_m)| {
                weldguard_model::records::ScanPosition {
                    latitude_e7,
                    longitude_e7,
                    accuracy_m,
                }
            }),
        })
        .unwrap()
    }

    /// 肥城市 and 泰安市泰山区, 32 km apart.
    const FEICHENG: (i32, i32) = (361_826_000, 1_167_685_000);
    const TAISHAN: (i32, i32) = (361_941_000, 1_171_290_000);

    /// Sites and machines in two districts: M1 (suspect) at site S1 in 370983 (town 370983001),
    /// M2 with its own location in 370982; M3 unplaced.
    fn place_city(db: &Db) {
        use weldguard_model::warnings::*;
        let place = |d: &str, t: Option<&str>| Place {
            district: d.into(),
            town: t.map(str::to_owned),
            grid: Some("G-1".into()),
        };
        db.write_places(&[
            PlaceChange::UpsertSite(Site {
                site_id: "S1".into(),
                name: "肥城工地".into(),
                place: place("370983", Some("370983001")),
                location: GeoPoint {
                    latitude_e7: FEICHENG.0,
                    longitude_e7: FEICHENG.1,
                },
            }),
            PlaceChange::PlaceMachine(MachinePlace {
                machine_id: "M1".into(),
                place: place("370983", Some("370983001")),
                site_id: Some("S1".into()),
                location: None,
                watch: MachineWatch::Suspect,
            }),
            PlaceChange::PlaceMachine(MachinePlace {
                machine_id: "M2".into(),
                place: place("370982", None),
                site_id: None,
                location: Some(GeoPoint {
                    latitude_e7: TAISHAN.0,
                    longitude_e7: TAISHAN.1,
                }),
                watch: MachineWatch::Normal,
            }),
        ])
        .unwrap();
    }

    fn all_warnings(db: &Db, scope: &str) -> Vec<crate::warnings::WarningRow> {
        db.warnings_page(&crate::warnings::WarningQuery {
            scope: weldguard_model::warnings::Scope::parse(scope).unwrap(),
            kind: None,
            state: None,
            from_ms: i64::MIN,
            until_ms: i64::MAX,
            before_id: i64::MAX,
            limit: 1000,
        })
        .unwrap()
    }

    fn kinds(rows: &[crate::warnings::WarningRow]) -> Vec<String> {
        let mut k: Vec<String> = rows.iter().map(|r| r.kind.clone()).collect();
        k.sort();
        k
    }

    /// The dashboard's queries filter by scope in the store itself (the handlers check again):
    /// sites, machines, starts and warnings of another district or town are not read at all.
    fn the_dashboards_queries_filter_by_scope_in_the_store(backend: Backend) {
        use crate::platform_views::Subject;
        use weldguard_model::warnings::Scope;
        let Some((db, _fixture)) = open(backend, "views") else {
            return;
        };
        place_city(&db);
        let (_, welder) = db
            .enrol(
                &db.create_enrolment(&Grant::plain("李四", Role::Welder))
                    .unwrap(),
                "04ab",
                "p",
            )
            .unwrap();
        let t0 = 1_796_000_000_000;
        let h = 3_600_000;
        let expired = ["licence.expired"];
        let payloads = [
            (
                "s1",
                session(
                    "s1",
                    "M1",
                    t0,
                    true,
                    &[],
                    Some((FEICHENG.0, FEICHENG.1, 10)),
                ),
            ),
            (
                "s2",
                session(
                    "s2",
                    "M1",
                    t0 + h,
                    true,
                    &[],
                    Some((TAISHAN.0, TAISHAN.1, 10)),
                ),
            ),
            ("s3", session("s3", "M2", t0, false, &expired, None)),
            ("s4", session("s4", "M3", t0, false, &expired, None)),
        ];
        let items: Vec<(&str, &str, &str)> = payloads
            .iter()
            .map(|(k, p)| (*k, "work_session", p.as_str()))
            .collect();
        db.insert_records(&welder.device_id, &items, &SuccessorOnly)
            .unwrap();
        let city = Scope::City;
        let d83 = Scope::District("370983".into());
        let d82 = Scope::District("370982".into());
        let t1 = Scope::Town("370983001".into());
        let t2 = Scope::Town("370983002".into());

        let sites = db.view_sites(&city, None).unwrap();
        assert_eq!(sites.len(), 1);
        let s1 = &sites[0];
        assert_eq!((s1.id.as_str(), s1.machines), ("S1", 1));
        assert_eq!(s1.town.as_deref(), Some("370983001"));
        assert_eq!(
            s1.open_by_kind.get("start_far_from_machine"),
            Some(&1),
            "{:?}",
            s1.open_by_kind
        );
        assert_eq!(db.view_sites(&t1, Some("S1")).unwrap(), sites);
        assert!(db.view_sites(&d82, None).unwrap().is_empty());
        assert!(db.view_sites(&t2, Some("S1")).unwrap().is_empty());
        assert!(db.view_sites(&city, Some("S9")).unwrap().is_empty());

        let m2 = db.view_machines(&city, None, Some("M2"), 1).unwrap();
        assert_eq!(m2.len(), 1);
        assert_eq!(
            (m2[0].district.as_str(), m2[0].lat_e7),
            ("370982", Some(TAISHAN.0))
        );
        assert_eq!(m2[0].open_warnings, 1);
        assert!(
            db.view_machines(&d83, None, Some("M2"), 1)
                .unwrap()
                .is_empty()
        );
        let at_s1 = db.view_machines(&t1, Some("S1"), None, 50).unwrap();
        assert_eq!(at_s1.len(), 1);
        assert_eq!(
            (
                at_s1[0].id.as_str(),
                at_s1[0].site_name.as_deref(),
                at_s1[0].lat_e7
            ),
            ("M1", Some("肥城工地"), Some(FEICHENG.0)),
            "a machine without its own location is where its site is"
        );
        assert!(
            db.view_machines(&t2, Some("S1"), None, 50)
                .unwrap()
                .is_empty()
        );

        let keys = |rows: Vec<crate::platform_views::StartRecord>| -> Vec<String> {
            rows.into_iter().map(|r| r.ledger.key).collect()
        };
        let cert = "T370983199001011234";
        assert_eq!(
            keys(db.view_starts(&city, &Subject::Welder(cert), 50).unwrap()),
            ["s2", "s4", "s3", "s1"].map(String::from),
            "newest first; at one time, the later arrival first"
        );
        assert_eq!(
            keys(db.view_starts(&d83, &Subject::Welder(cert), 50).unwrap()),
            ["s2", "s1"].map(String::from)
        );
        assert_eq!(
            keys(db.view_starts(&city, &Subject::Welder(cert), 1).unwrap()),
            ["s2"].map(String::from)
        );
        assert_eq!(
            keys(db.view_starts(&d82, &Subject::Machine("M2"), 50).unwrap()),
            ["s3"].map(String::from)
        );
        assert!(
            db.view_starts(&d83, &Subject::Machine("M2"), 50)
                .unwrap()
                .is_empty()
        );
        let at_site = db.view_starts(&t1, &Subject::Site("S1"), 50).unwrap();
        assert_eq!(at_site.len(), 2);
        assert_eq!(at_site[0].payload.as_deref(), Some(payloads[1].1.as_str()));

        let w =
            |scope: &Scope, subject: Subject<'_>| db.view_warnings(scope, &subject, 50).unwrap();
        assert_eq!(w(&d82, Subject::Machine("M2")).len(), 1);
        assert!(w(&d83, Subject::Machine("M2")).is_empty());
        assert!(w(&t2, Subject::Site("S1")).is_empty());
        assert_eq!(w(&t1, Subject::Site("S1")), w(&city, Subject::Site("S1")));
        assert_eq!(
            w(&city, Subject::Welder(cert)).len(),
            1 + w(&d83, Subject::Welder(cert)).len() + 1
        );
        assert!(
            w(&d82, Subject::Welder(cert))
                .iter()
                .all(|r| r.machine_id == "M2")
        );

        assert_eq!(db.view_licence_place(&city, cert).unwrap(), None);
        assert_eq!(db.registry_entity("machine\u{1f}M1").unwrap(), None);
        assert!(db.view_site_permits("S1", 50).unwrap().is_empty());
        assert_eq!(db.view_permit("P-none").unwrap(), None);
    }

    /// Warnings are computed inside the push from the places and earlier starts, once each (a
    /// repeated push raises nothing), land in the place of the machine, and move open →
    /// acknowledged → closed only in that order.
    fn warnings_are_raised_once_at_push_time_in_their_place(backend: Backend) {
        use weldguard_model::warnings::WarningState as S;
        let Some((db, _fixture)) = open(backend, "warnings") else {
            return;
        };
        place_city(&db);
        let (_, welder) = db
            .enrol(
                &db.create_enrolment(&Grant::plain("李四", Role::Welder))
                    .unwrap(),
                "04ab",
                "p",
            )
            .unwrap();
        let t0 = 1_796_000_000_000; // 2026-12
        let h = 3_600_000;
        let near = Some((FEICHENG.0 + 1000, FEICHENG.1, 10));
        let far = Some((TAISHAN.0, TAISHAN.1, 10));
        let expired = ["licence.expired"];
        let payloads = [
            ("s1", session("s1", "M1", t0, true, &[], near)),
            ("s2", session("s2", "M1", t0 + h / 6, true, &[], far)),
            ("s3", session("s3", "M2", t0, false, &expired, None)),
            ("s4", session("s4", "M2", t0 + h, false, &expired, None)),
            ("s5", session("s5", "M2", t0 + 2 * h, false, &expired, None)),
            ("s6", session("s6", "M3", t0, false, &expired, None)),
        ];
        let items: Vec<(&str, &str, &str)> = payloads
            .iter()
            .map(|(k, p)| (*k, "work_session", p.as_str()))
            .collect();
        let admit = SuccessorOnly;
        let answers = db
            .insert_records(&welder.device_id, &items, &admit)
            .unwrap();
        assert!(answers.iter().all(|a| *a == Insert::Applied));
        let city = all_warnings(&db, "city");
        assert_eq!(
            kinds(&city),
            [
                "machine_two_places",
                "repeated_refusals",
                "start_far_from_machine",
                "start_refused_expired_licence",
                "start_refused_expired_licence",
                "start_refused_expired_licence",
                "start_refused_expired_licence",
                "suspect_machine_started",
                "suspect_machine_started",
            ]
        );
        // The same push again: duplicates, nothing raised twice.
        let again = db
            .insert_records(&welder.device_id, &items, &admit)
            .unwrap();
        assert!(again.iter().all(|a| *a == Insert::Duplicate));
        assert_eq!(all_warnings(&db, "city").len(), city.len());
        // By place: M1's in 370983 and its town, M2's in 370982, M3's only city-wide.
        let a = all_warnings(&db, "district:370983");
        assert_eq!(
            kinds(&a),
            [
                "machine_two_places",
                "start_far_from_machine",
                "suspect_machine_started",
                "suspect_machine_started"
            ]
        );
        assert_eq!(all_warnings(&db, "town:370983001").len(), 4);
        assert_eq!(all_warnings(&db, "town:370983002").len(), 0);
        let b = all_warnings(&db, "district:370982");
        assert_eq!(b.len(), 4, "three expired and one burst");
        let burst = b.iter().find(|w| w.kind == "repeated_refusals").unwrap();
        assert_eq!(burst.records_json, r#"["s3","s4","s5"]"#);
        assert_eq!(burst.at_ms, t0 + 2 * h);
        let two = a.iter().find(|w| w.kind == "machine_two_places").unwrap();
        assert_eq!(two.records_json, r#"["s1","s2"]"#);
        assert_eq!(two.site_id.as_deref(), Some("S1"));
        let unplaced = city.iter().find(|w| w.machine_id == "M3").unwrap();
        assert_eq!(
            (unplaced.district.as_deref(), unplaced.town.as_deref()),
            (None, None)
        );
        // A fourth refusal inside the window: no second burst.
        let s7 = session("s7", "M2", t0 + 3 * h, false, &["licence.revoked"], None);
        db.insert_records(&welder.device_id, &[("s7", "work_session", &s7)], &admit)
            .unwrap();
        let b = all_warnings(&db, "district:370982");
        assert_eq!(
            b.iter().filter(|w| w.kind == "repeated_refusals").count(),
            1
        );
        assert_eq!(
            b.len(),
            4,
            "a revoked licence is no expired-licence warning"
        );
        // Life cycle: open → acknowledged → closed, each once, nothing else.
        let id = burst.id;
        assert!(
            !db.move_warning(id, S::Acknowledged, S::Closed, "m", 1, Some("n"))
                .unwrap()
        );
        assert!(
            db.move_warning(id, S::Open, S::Acknowledged, "m", 1, None)
                .unwrap()
        );
        assert!(
            !db.move_warning(id, S::Open, S::Acknowledged, "x", 2, None)
                .unwrap()
        );
        assert!(
            db.move_warning(id, S::Acknowledged, S::Closed, "m2", 3, Some("查实"))
                .unwrap()
        );
        assert!(
            !db.move_warning(id, S::Acknowledged, S::Closed, "x", 4, Some("n"))
                .unwrap()
        );
        let row = db.warning(id).unwrap().unwrap();
        assert_eq!(
            (
                row.state.as_str(),
                row.acknowledged_by.as_deref(),
                row.acknowledged_at_ms,
                row.closed_by.as_deref(),
                row.closed_at_ms,
                row.close_note.as_deref()
            ),
            (
                "closed",
                Some("m"),
                Some(1),
                Some("m2"),
                Some(3),
                Some("查实")
            )
        );
        assert_eq!(db.warning(i64::MAX).unwrap(), None);
        // Warnings off: records are stored, nothing is raised.
        let db = db.with_warnings(crate::warnings::WarningConfig {
            enabled: false,
            ..Default::default()
        });
        let s8 = session("s8", "M1", t0 + 5 * h, true, &[], far);
        db.insert_records(&welder.device_id, &[("s8", "work_session", &s8)], &admit)
            .unwrap();
        assert_eq!(all_warnings(&db, "city").len(), city.len());
    }

    /// Refusals at one machine pushed in parallel by several phones raise exactly one
    /// `repeated_refusals` (the machine's lock serialises the rule across connections).
    fn parallel_refusals_raise_one_burst(backend: Backend) {
        let Some((db, _fixture)) = open(backend, "warn-race") else {
            return;
        };
        place_city(&db);
        let t0 = 1_796_000_000_000;
        let payloads: Vec<(String, String)> = (0..6)
            .map(|i| {
                let key = format!("r{i}");
                let p = session(
                    &key,
                    "M2",
                    t0 + i * 60_000,
                    false,
                    &["licence.revoked"],
                    None,
                );
                (key, p)
            })
            .collect();
        std::thread::scope(|scope| {
            for (key, payload) in &payloads {
                let db = &db;
                scope.spawn(move || {
                    db.insert_records("d", &[(key, "work_session", payload)], &SuccessorOnly)
                        .unwrap()
                });
            }
        });
        let rows = all_warnings(&db, "city");
        assert_eq!(kinds(&rows), ["repeated_refusals"]);
    }

    fn count_of(db: &Db, scope: &str, day: &str, metric: &str) -> i64 {
        db.counts(
            &weldguard_model::warnings::Scope::parse(scope).unwrap(),
            day,
            day,
        )
        .unwrap()
        .iter()
        .filter(|r| r.metric == metric)
        .map(|r| r.n)
        .sum()
    }

    /// The push keeps the per-day per-place counters and the ledger in its transaction, once per
    /// record (a repeated push changes nothing); a warning leaving `open` leaves the counter; a
    /// permit is counted once, in its latest state; the stream's id cursor reads a scope's new
    /// warnings oldest first.
    fn figures_ledger_and_stream_cursor_are_kept_in_the_push(backend: Backend) {
        use crate::platform::{STARTS_ALLOWED, STARTS_REFUSED, WARNINGS_OPEN};
        use weldguard_model::warnings::{Scope, WarningState as S};
        let Some((db, _fixture)) = open(backend, "figures") else {
            return;
        };
        place_city(&db);
        let (_, welder) = db
            .enrol(
                &db.create_enrolment(&Grant::plain("李四", Role::Welder))
                    .unwrap(),
                "04ab",
                "p",
            )
            .unwrap();
        // 2026-11-30 08:53:20 in Beijing; 16 h later is the next China day (Dec 1st, 00:53).
        let t0 = 1_796_000_000_000;
        let h = 3_600_000;
        let expired = ["licence.expired"];
        let near = Some((FEICHENG.0 + 1000, FEICHENG.1, 10));
        let payloads = [
            ("f1", session("f1", "M1", t0, true, &[], near)),
            (
                "f2",
                session("f2", "M1", t0 + h, false, &["machine.retired"], None),
            ),
            ("f3", session("f3", "M2", t0, false, &expired, None)),
            ("f4", session("f4", "M3", t0, true, &[], None)),
            ("f5", session("f5", "M1", t0 + 16 * h, true, &[], None)),
        ];
        let items: Vec<(&str, &str, &str)> = payloads
            .iter()
            .map(|(k, p)| (*k, "work_session", p.as_str()))
            .collect();
        let admit = SuccessorOnly;
        for _ in 0..2 {
            db.insert_records(&welder.device_id, &items, &admit)
                .unwrap();
        }
        let (d1, d2) = ("2026-11-30", "2026-12-01");
        assert_eq!(count_of(&db, "city", d1, STARTS_ALLOWED), 2);
        assert_eq!(count_of(&db, "city", d1, STARTS_REFUSED), 2);
        assert_eq!(count_of(&db, "city", d2, STARTS_ALLOWED), 1);
        assert_eq!(count_of(&db, "district:370983", d1, STARTS_ALLOWED), 1);
        assert_eq!(count_of(&db, "district:370983", d1, STARTS_REFUSED), 1);
        assert_eq!(count_of(&db, "town:370983001", d1, STARTS_REFUSED), 1);
        assert_eq!(count_of(&db, "district:370982", d1, STARTS_ALLOWED), 0);
        assert_eq!(count_of(&db, "district:370982", d1, STARTS_REFUSED), 1);
        assert_eq!(count_of(&db, "district:370981", d1, STARTS_REFUSED), 0);
        // Open warnings: M1's suspect start on each day, M2's expired licence.
        let open_370983 = count_of(&db, "district:370983", d1, WARNINGS_OPEN);
        assert_eq!(open_370983, 1, "the suspect machine started");
        assert_eq!(count_of(&db, "district:370983", d2, WARNINGS_OPEN), 1);
        assert_eq!(count_of(&db, "district:370982", d1, WARNINGS_OPEN), 1);
        let m2 = all_warnings(&db, "district:370982");
        assert!(
            db.move_warning(m2[0].id, S::Open, S::Acknowledged, "王五", t0, None)
                .unwrap()
        );
        assert!(
            !db.move_warning(m2[0].id, S::Open, S::Acknowledged, "王五", t0, None)
                .unwrap()
        );
        assert_eq!(count_of(&db, "district:370982", d1, WARNINGS_OPEN), 0);
        assert!(
            db.move_warning(m2[0].id, S::Acknowledged, S::Closed, "王五", t0, Some("ok"))
                .unwrap()
        );
        assert_eq!(count_of(&db, "district:370982", d1, WARNINGS_OPEN), 0);

        // The ledger: the day's records in arrival order, by place.
        let city = Scope::City;
        let day1 = db.ledger_page(d1, &city, 0, 100).unwrap();
        let keys: Vec<&str> = day1.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(keys, ["f1", "f2", "f3", "f4"]);
        assert_eq!(day1[0].decision, "allowed");
        assert_eq!(day1[1].detail, "machine.retired");
        assert_eq!(day1[0].site_id.as_deref(), Some("S1"));
        assert_eq!(day1[0].position, Some((FEICHENG.0 + 1000, FEICHENG.1, 10)));
        assert_eq!(day1[2].person.as_deref(), Some("T370983199001011234"));
        assert_eq!(day1[3].district, "", "M3 is unplaced");
        let page = db.ledger_page(d1, &city, day1[1].id, 1).unwrap();
        assert_eq!(page.len(), 1);
        assert_eq!(page[0].key, "f3");
        let scoped = db
            .ledger_page(d1, &Scope::District("370983".into()), 0, 100)
            .unwrap();
        assert_eq!(
            scoped.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(),
            ["f1", "f2"]
        );
        assert!(
            db.ledger_page(d1, &Scope::Town("370983002".into()), 0, 100)
                .unwrap()
                .is_empty()
        );
        assert_eq!(db.ledger_page(d2, &city, 0, 100).unwrap().len(), 1);

        // The stream's cursor: a scope's warnings above an id, oldest first.
        let last = db.last_warning_id().unwrap();
        let all = all_warnings(&db, "city");
        assert_eq!(last, all.iter().map(|w| w.id).max().unwrap());
        let d370983 = Scope::District("370983".into());
        let mine = db.warnings_after(&d370983, 0, 100).unwrap();
        assert!(mine.windows(2).all(|w| w[0].id < w[1].id));
        assert!(mine.iter().all(|w| w.district.as_deref() == Some("370983")));
        assert_eq!(mine.len(), all_warnings(&db, "district:370983").len());
        let rest = db.warnings_after(&d370983, mine[0].id, 100).unwrap();
        assert_eq!(rest.len(), mine.len() - 1);
        assert!(db.warnings_after(&city, last, 100).unwrap().is_empty());
        assert!(
            db.warnings_after(&Scope::Town("370983002".into()), 0, 100)
                .unwrap()
                .is_empty()
        );

        // Permits: counted once per permit, in their latest state, on the day their validity
        // starts (2026-11-30, China time).
        use crate::permits::fixture::{DAY, Fx, H as PH, payload};
        let f = Fx::new();
        let draft = f.draft();
        let submitted = f.step(&draft, "submit", DAY + 7 * PH);
        let (k0, b0) = payload("p0", "draft", &draft);
        let (k1, b1) = payload("p1", "submit", &submitted);
        for items in [
            vec![(k0.as_str(), PERMIT_STEP_KIND, b0.as_str())],
            vec![(k0.as_str(), PERMIT_STEP_KIND, b0.as_str())],
            vec![(k1.as_str(), PERMIT_STEP_KIND, b1.as_str())],
        ] {
            db.insert_records(&welder.device_id, &items, &SuccessorOnly)
                .unwrap();
        }
        let permits: Vec<(String, i64)> = db
            .counts(&city, d1, d1)
            .unwrap()
            .into_iter()
            .filter(|r| r.metric.starts_with("permits.") && r.n != 0)
            .map(|r| (r.metric, r.n))
            .collect();
        assert_eq!(permits, [("permits.submitted".to_owned(), 1)]);
        let steps: Vec<String> = db
            .ledger_page(&crate::platform::china_day(db_now()), &city, 0, 100)
            .unwrap()
            .into_iter()
            .filter(|r| r.kind == "permit_step")
            .map(|r| r.decision)
            .collect();
        assert_eq!(steps, ["draft→draft", "submit→submitted"]);
    }

    fn db_now() -> i64 {
        now_ms()
    }

    /// `licence_expiring` is raised when a start arrives with a licence the registry says expires
    /// within the threshold: once per licence and expiry date (not again at the next start, again
    /// after a renewal), never for a refused start or a licence far from expiry.
    fn a_start_with_a_licence_about_to_expire_raises_it_once_per_expiry(backend: Backend) {
        use weldguard_model::domain::{Licence, LicenceStatus, OperationCategory};
        let Some((db, _fixture)) = open(backend, "licence-expiring") else {
            return;
        };
        place_city(&db);
        let (_, welder) = db
            .enrol(
                &db.create_enrolment(&Grant::plain("李四", Role::Welder))
                    .unwrap(),
                "04ab",
                "p",
            )
            .unwrap();
        let licence = |expires: (i32, u32, u32)| {
            RegistryChange::UpsertLicence(Licence {
                certificate_no: "T370983199001011234".into(),
                id_number: "370983199001011234".into(),
                name: "李四".into(),
                categories: vec![OperationCategory::FusionWeldingAndCutting],
                issued_on: chrono::NaiveDate::from_ymd_opt(2020, 12, 20).unwrap(),
                expires_on: chrono::NaiveDate::from_ymd_opt(expires.0, expires.1, expires.2)
                    .unwrap(),
                next_review_on: chrono::NaiveDate::from_ymd_opt(2026, 12, 20).unwrap(),
                review_extended: false,
                status: LicenceStatus::Valid,
                employer_org: None,
            })
        };
        let t0 = 1_796_000_000_000; // 2026-11-30 in China
        let day = 86_400_000;
        let push = |db: &Db, key: &str, at: i64, allowed: bool| {
            let p = session(key, "M2", at, allowed, &[], None);
            db.insert_records(
                &welder.device_id,
                &[(key, "work_session", &p)],
                &SuccessorOnly,
            )
            .unwrap();
        };
        let expiring = |db: &Db| -> Vec<crate::warnings::WarningRow> {
            all_warnings(db, "city")
                .into_iter()
                .filter(|w| w.kind == "licence_expiring")
                .collect()
        };
        // Far from expiry: nothing.
        db.write_changes(&[licence((2027, 6, 1))]).unwrap();
        push(&db, "e1", t0, true);
        assert!(expiring(&db).is_empty());
        // Twenty days left: raised once, in the machine's district, not again the next day,
        // nor for a refused start.
        db.write_changes(&[licence((2026, 12, 20))]).unwrap();
        push(&db, "e2", t0 + day, false);
        assert!(expiring(&db).is_empty(), "a refused start raises nothing");
        push(&db, "e3", t0 + day, true);
        push(&db, "e4", t0 + 2 * day, true);
        let raised = expiring(&db);
        assert_eq!(raised.len(), 1);
        assert_eq!(raised[0].records_json, r#"["e3"]"#);
        assert_eq!(raised[0].district.as_deref(), Some("370982"));
        let detail: serde_json::Value = serde_json::from_str(&raised[0].detail_json).unwrap();
        assert_eq!(detail["days_left"], 19);
        assert_eq!(detail["expires_on"], "2026-12-20");
        // Renewed to a date still within 30 days: a new expiry date, raised again once.
        db.write_changes(&[licence((2026, 12, 25))]).unwrap();
        push(&db, "e5", t0 + 3 * day, true);
        push(&db, "e6", t0 + 4 * day, true);
        assert_eq!(expiring(&db).len(), 2);
        // Warnings off: nothing.
        let db = db.with_warnings(crate::warnings::WarningConfig {
            enabled: false,
            ..Default::default()
        });
        db.write_changes(&[licence((2026, 12, 28))]).unwrap();
        push(&db, "e7", t0 + 5 * day, true);
        assert_eq!(expiring(&db).len(), 2);
    }

    macro_rules! both_backends {
        ($($name:ident),* $(,)?) => {
            mod sqlite_backend {
                $(#[test] fn $name() { super::$name(super::Backend::Sqlite) })*
            }
            mod postgres_backend {
                $(#[test] fn $name() { super::$name(super::Backend::Postgres) })*
            }
        };
    }

    both_backends!(
        pages_follow_the_feed_and_compaction_forces_old_cursors_to_refetch,
        a_key_is_applied_once_and_a_changed_payload_under_it_is_a_conflict,
        records_come_a_page_at_a_time_each_once_in_arrival_order,
        enrolment_codes_work_once_and_tokens_identify_the_device,
        concurrent_writers_never_make_a_reader_skip,
        migrations_are_idempotent_and_keep_the_epoch,
        snapshots_are_kept_by_id_and_the_oldest_dropped,
        tokens_expire_and_a_signed_nonce_refreshes_them_once,
        a_nonce_is_spent_exactly_once_under_a_race,
        permit_forks_end_on_the_same_head_in_either_order,
        concurrent_forks_leave_one_head,
        a_disabled_device_loses_its_token_and_its_refresh,
        compaction_drops_the_snapshots_it_outdates,
        signers_come_from_enrolments_and_other_welders_certificates_are_flagged,
        the_push_hook_runs_once_per_applied_record_inside_the_push,
        warnings_are_raised_once_at_push_time_in_their_place,
        the_dashboards_queries_filter_by_scope_in_the_store,
        parallel_refusals_raise_one_burst,
        figures_ledger_and_stream_cursor_are_kept_in_the_push,
        a_start_with_a_licence_about_to_expire_raises_it_once_per_expiry,
    );
}
