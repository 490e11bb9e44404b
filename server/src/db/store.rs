//! The store's contract: [`Store`], one implementation per backend ([`super::sqlite::SqliteDb`],
//! [`super::postgres::PgDb`]), each query written once per backend; and the hook through which
//! backend-independent logic runs inside a push's transaction ([`PushTx`], [`OnApplied`]).
//! [`super::Db`] holds a `Box<dyn Store>` and adds what both backends do alike (see
//! docs/adr/0016-server-store-trait.md).
//!
//! Methods take `&self` and block: handlers call them on tokio's blocking pool. The SQLite
//! backend locks its one connection for the length of a call (SQLite has one writer anyway); the
//! PostgreSQL backend runs each call on a pooled connection, in parallel.

use weldguard_model::protocol::{Role, StoredRecord};
use weldguard_model::records::RegistryChange;

use super::{
    Caller, DbError, Grant, Insert, IssuedToken, Page, PermitPage, PermitStepStanding, RecordPage,
    SignerRow, SnapshotHead, StoredIssuerKey, StoredSnapshot, TokenCheck,
};
use crate::deadlines::{DueRow, NewDeadline};
use crate::permits::AdmitStep;
use crate::platform::{CountRow, LedgerRow, PermitCount};
use crate::platform_views::{
    MachineRow, PermitHeadRow, PermitStepRow, SiteRow, StartRecord, Subject,
};
use crate::warnings::{MachineFacts, NewWarning, StartRow, WarningQuery, WarningRow};
use weldguard_model::warnings::{Place, PlaceChange, Scope, WarningKind, WarningState};

/// A record a push has just applied, as the logic run inside the push's transaction sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppliedRecord<'a> {
    pub key: &'a str,
    pub kind: &'a str,
    pub payload: &'a str,
    /// The pushing device.
    pub device_id: &'a str,
    /// When the server received it (Unix ms), as stored.
    pub at_ms: i64,
}

/// What a push's open transaction offers the backend-independent logic run inside it (today the
/// record flags, [`super::Db::insert_records`]; later #19's warnings). Each backend implements it
/// over its own transaction; whatever is read or written through it commits or rolls back with
/// the records of the push.
pub trait PushTx {
    /// The role and person id (the id permits name the person by) of a device; `None` for an
    /// unknown device or a role this server does not know.
    fn pusher(&mut self, device_id: &str) -> Result<Option<(Role, String)>, DbError>;
    /// Whether the registry's newest change of a feed entity ([`super::entity_of`]) is not a
    /// delete.
    fn registry_holds(&mut self, entity: &str) -> Result<bool, DbError>;
    /// The registry's newest change of a feed entity ([`super::entity_of`]), as stored (JSON).
    fn newest_change(&mut self, entity: &str) -> Result<Option<String>, DbError>;
    /// Store `flag` with the record under `key` (once; storing it again changes nothing).
    fn add_record_flag(&mut self, key: &str, flag: &str) -> Result<(), DbError>;

    // The warnings' facts and writes (crate::warnings, docs/adr/0017-warnings-and-scope.md).

    /// Serialise this push with every other push touching these machines (sorted, so two
    /// pushes never wait on each other in a cycle) until the transaction ends. PostgreSQL takes
    /// advisory transaction locks; SQLite has one writer already.
    fn lock_machines(&mut self, machine_ids: &[String]) -> Result<(), DbError>;
    /// The platform's places about a machine, when it is placed.
    fn machine_facts(&mut self, machine_id: &str) -> Result<Option<MachineFacts>, DbError>;
    /// The place of a licence holder, when placed.
    fn licence_place(&mut self, certificate_no: &str) -> Result<Option<Place>, DbError>;
    /// Refused starts at a machine with `from_ms <= at <= to_ms`: (at, key), at most 1000.
    fn refusals_between(
        &mut self,
        machine_id: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<(i64, String)>, DbError>;
    /// The allowed starts with a position of a machine nearest before and after `at_ms` (at
    /// most one each; `key` itself excluded).
    fn neighbour_starts(
        &mut self,
        machine_id: &str,
        at_ms: i64,
        key: &str,
    ) -> Result<Vec<StartRow>, DbError>;
    /// Whether a warning of `kind` about the machine happened within [from_ms, to_ms].
    fn warning_between(
        &mut self,
        kind: WarningKind,
        machine_id: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<bool, DbError>;
    /// Write a warning unless one with its `dedup_key` exists; whether it was written. Warning
    /// ids become visible in the order they were assigned (PostgreSQL: the push's warnings are
    /// inserted just before commit under `WARNINGS_LOCK`, held to commit), so a stream reading by
    /// id cursor misses none.
    fn raise_warning(&mut self, warning: &NewWarning) -> Result<bool, DbError>;

    // The figures and the ledger (crate::platform).

    /// The place of a site, when the platform holds it.
    fn site_place(&mut self, site_id: &str) -> Result<Option<Place>, DbError>;
    /// Add `n` to the counter `metric` of a China day and place (`""` for unplaced). PostgreSQL
    /// gathers the additions and writes them, sorted, just before the push commits, so two pushes
    /// never lock two counter rows in opposite orders.
    fn count(
        &mut self,
        day: &str,
        district: &str,
        town: &str,
        metric: &str,
        n: i64,
    ) -> Result<(), DbError>;
    /// Append a ledger row (once per key).
    fn ledger(&mut self, row: &LedgerRow) -> Result<(), DbError>;
    /// How a permit is counted now, when it is.
    fn permit_count(&mut self, permit_id: &str) -> Result<Option<PermitCount>, DbError>;
    /// Keep how a permit is counted now.
    fn put_permit_count(&mut self, permit_id: &str, count: &PermitCount) -> Result<(), DbError>;

    // The deadline queue (crate::deadlines) and the facts its checks read.

    /// Queue a condition to check when it falls due (once per `dedup_key`; queuing it again
    /// changes nothing).
    fn schedule(&mut self, deadline: &NewDeadline) -> Result<(), DbError>;
    /// The time of the machine's first allowed start after `after_ms` (strictly), when there is
    /// one.
    fn next_allowed_start(
        &mut self,
        machine_id: &str,
        after_ms: i64,
    ) -> Result<Option<i64>, DbError>;
    /// The platform's current version of a permit (its head), as stored (JSON).
    fn permit_head(&mut self, permit_id: &str) -> Result<Option<String>, DbError>;
}

/// Called by [`Store::run_due`] with the deadline rows it took, inside the transaction that
/// deletes them; an error rolls the transaction back and leaves the rows queued.
pub type OnDue<'a> = dyn FnMut(&mut dyn PushTx, &[DueRow]) -> Result<(), DbError> + 'a;

/// Called by a backend once for every record a push applies (not for a duplicate, a conflict or
/// a refused permit step), in the order of the push, inside the push's transaction before it
/// commits. An error rolls that transaction back and is the push's answer.
pub type OnApplied<'a> = dyn FnMut(&mut dyn PushTx, &AppliedRecord<'_>) -> Result<(), DbError> + 'a;

/// One backend of the server's store. Each method is one query or one transaction of that
/// backend; logic both backends share lives in [`super::Db`] or in the functions of
/// [`super`], never in an implementation.
pub trait Store: Send + Sync {
    /// `"sqlite"` or `"postgres"`.
    fn backend(&self) -> &'static str;

    /// Make sure an admin can log in: with `token` when given (replacing the bootstrap admin's
    /// token), else with a new token when no admin exists yet. Returns the new token to print.
    fn bootstrap_admin(&self, token: Option<&str>) -> Result<Option<String>, DbError>;

    /// The issuer keys the server holds, oldest first.
    fn issuer_keys(&self) -> Result<Vec<StoredIssuerKey>, DbError>;

    /// Make `new` the signing key from `now_ms`: the signing key until now stops signing (its
    /// validity ends now, so codes it signed before stay valid until they expire), in one
    /// transaction, also across server processes. With `only_if_none`, nothing happens when a
    /// signing key exists (first start). Returns whether the key was installed.
    fn install_issuer_key(
        &self,
        new: &StoredIssuerKey,
        now_ms: i64,
        only_if_none: bool,
    ) -> Result<bool, DbError>;

    /// What `token` is at `now_ms`: live, expired (or replaced by a refresh), or unknown.
    fn check_token(&self, token: &str, now_ms: i64) -> Result<TokenCheck, DbError>;

    /// Use an enrolment code (once): register the device and return (token, caller), the token
    /// expiring at `expires_at_ms` (`None`: never).
    fn enrol_expiring(
        &self,
        code: &str,
        public_key: &str,
        device_name: &str,
        expires_at_ms: Option<i64>,
    ) -> Result<(String, Caller), DbError>;

    /// A random single-use nonce for `device_id` to sign, valid until `now_ms + ttl_ms` (returned
    /// with its expiry). Expired nonces are dropped, and a device holds at most
    /// [`super::MAX_NONCES_PER_DEVICE`]. Refused for an unknown or disabled device.
    fn create_auth_nonce(
        &self,
        device_id: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<(String, i64), DbError>;

    /// Trade a nonce signed by the device key for a new token expiring at `expires_at_ms`; the
    /// device's current token stops working (it then reads as expired). The nonce is consumed by
    /// exactly one successful refresh, also with servers racing (a conditional
    /// `DELETE … RETURNING`); every refusal leaves the database as it was (an expired nonce is
    /// dropped).
    fn refresh_token(
        &self,
        device_id: &str,
        nonce: &str,
        signature_hex: &str,
        now_ms: i64,
        expires_at_ms: Option<i64>,
    ) -> Result<IssuedToken, DbError>;

    /// Disable a device (a lost or stolen phone): its token stops working at once (401
    /// `auth.bad_token`), it cannot refresh (`auth.device_disabled`), and its pending refresh
    /// nonces are dropped. Enrolling again with a new code enables it. `false` when there is no
    /// such device.
    fn disable_device(&self, device_id: &str) -> Result<bool, DbError>;

    /// A new single-use enrolment code granting `grant`.
    fn create_enrolment(&self, grant: &Grant) -> Result<String, DbError>;

    /// Every device whose person may sign permits, disabled ones included (their validity ends):
    /// the stored rows behind the signer directory.
    fn signer_rows(&self) -> Result<Vec<SignerRow>, DbError>;

    /// Insert pushed records other than permit steps, all in one transaction. Each item is
    /// (key, kind, payload); items already rejected by validation are not passed here. A key is
    /// applied at most once, also across server processes; a known key with another payload is
    /// a conflict. `on_applied` runs for each applied record inside the transaction.
    fn insert_plain_records(
        &self,
        device_id: &str,
        items: &[(&str, &str, &str)],
        on_applied: &mut OnApplied<'_>,
    ) -> Result<Vec<Insert>, DbError>;

    /// Place one permit step ([`crate::permits::push_step`], asking `admit` which versions it may
    /// follow) in its own transaction; `on_applied` runs inside it when the step is applied.
    fn push_permit_step(
        &self,
        device_id: &str,
        key: &str,
        payload: &str,
        admit: &dyn AdmitStep,
        on_applied: &mut OnApplied<'_>,
    ) -> Result<Insert, DbError>;

    /// Between two permit steps of one push: give other callers their turn when the backend
    /// serialises calls (SQLite). Nothing by default.
    fn between_permit_steps(&self) {}

    /// Permit heads changed after `cursor` (`None`: all), oldest change first; only the permits
    /// naming `person` when given (a welder's pull).
    fn permit_heads(
        &self,
        cursor: Option<&str>,
        limit: u32,
        person: Option<&str>,
    ) -> Result<PermitPage, DbError>;

    /// The stored steps of a permit with their standing, in arrival order.
    fn permit_step_standings(&self, permit_id: &str) -> Result<Vec<PermitStepStanding>, DbError>;

    /// The flags stored with the record under `key` (stable codes such as
    /// `session.unknown_machine`, [`crate::validate`]), sorted.
    fn record_flags(&self, key: &str) -> Result<Vec<String>, DbError>;

    /// The stored records (of one kind), in arrival order.
    fn records(&self, kind: Option<&str>) -> Result<Vec<StoredRecord>, DbError>;

    /// At most `limit` stored records (of one kind) that arrived after position `after` (0: from
    /// the start), in arrival order.
    fn records_page(
        &self,
        kind: Option<&str>,
        after: i64,
        limit: u32,
    ) -> Result<RecordPage, DbError>;

    /// Append registry changes to the feed and queue `deadlines` (once per `dedup_key`) in one
    /// transaction; returns the last seq. Callers go through [`super::Db::write_changes`], which
    /// computes the deadlines the warnings need.
    fn write_changes_queueing(
        &self,
        changes: &[RegistryChange],
        deadlines: &[NewDeadline],
    ) -> Result<i64, DbError>;

    /// Forget history through `through` (default: everything): keep the newest change of each
    /// entity, drop tombstones, and drop the stored snapshots cut before the new floor (a device
    /// loading one would be sent to a cursor the feed no longer serves), all in one transaction.
    /// Returns the new floor.
    fn compact(&self, through: Option<i64>) -> Result<i64, DbError>;

    /// One page of changes after `cursor` (`None`: from the start).
    fn pull(&self, cursor: Option<&str>, limit: u32) -> Result<Page, DbError>;

    /// Store a published snapshot (once per id, also across processes) and drop all but the
    /// newest `keep`, so a device still downloading the previous one can finish. `false` (nothing
    /// stored) when a compaction committed past its cursor meanwhile.
    fn save_snapshot(&self, snapshot: &StoredSnapshot, keep: u32) -> Result<bool, DbError>;

    /// The newest stored snapshot, whichever process cut it.
    fn latest_snapshot(&self) -> Result<Option<SnapshotHead>, DbError>;

    /// One stored chunk's gzip bytes.
    fn snapshot_chunk(&self, snapshot_id: &str, idx: i64) -> Result<Option<Vec<u8>>, DbError>;

    /// Apply changes to the platform's places (sites, machines' and licences' places) in one
    /// transaction, in order.
    fn write_places(&self, changes: &[PlaceChange]) -> Result<(), DbError>;

    /// The scope stored with a device (a monitoring account's), as text.
    fn device_scope(&self, device_id: &str) -> Result<Option<String>, DbError>;

    /// Up to `query.limit` warnings matching `query`, newest (highest id) first.
    fn warnings_page(&self, query: &WarningQuery) -> Result<Vec<WarningRow>, DbError>;

    /// One warning by id.
    fn warning(&self, id: i64) -> Result<Option<WarningRow>, DbError>;

    /// Move a warning from `from` to `to`, recording who and when (and the note when closing),
    /// only when it is in `from` (a conditional update, safe under races); whether it moved. A
    /// warning leaving `open` leaves its day's `warnings_open` counter in the same transaction.
    fn move_warning(
        &self,
        id: i64,
        from: WarningState,
        to: WarningState,
        by: &str,
        at_ms: i64,
        note: Option<&str>,
    ) -> Result<bool, DbError>;

    /// Warnings with ids above `after_id` inside `scope`, oldest first, at most `limit`.
    fn warnings_after(
        &self,
        scope: &Scope,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<WarningRow>, DbError>;

    /// The highest warning id (0 when none).
    fn last_warning_id(&self) -> Result<i64, DbError>;

    /// The counters of the China days `from_day..=until_day` (`YYYY-MM-DD`) inside `scope`.
    fn counts(
        &self,
        scope: &Scope,
        from_day: &str,
        until_day: &str,
    ) -> Result<Vec<CountRow>, DbError>;

    /// Take up to `limit` deadline rows due at `now_ms` (earliest first) that no other
    /// transaction holds, hand them to `on_due` and delete them, in one transaction: PostgreSQL
    /// takes them `FOR UPDATE SKIP LOCKED` (two server processes never take the same row),
    /// SQLite under `BEGIN IMMEDIATE`. Returns how many rows were taken.
    fn run_due(&self, now_ms: i64, limit: u32, on_due: &mut OnDue<'_>) -> Result<usize, DbError>;

    /// How many deadline rows are queued (due or not).
    fn deadlines_queued(&self) -> Result<i64, DbError>;

    /// Ledger rows of a China day inside `scope` with ids above `after_id`, in id order, at most
    /// `limit`.
    fn ledger_page(
        &self,
        day: &str,
        scope: &Scope,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<LedgerRow>, DbError>;

    // The dashboard's pages (crate::platform_views). Each query filters by `scope` (a row's
    // district or town; an unplaced row only city-wide).

    /// Sites inside `scope` (one when `site_id` is given), by id, at most
    /// [`crate::platform_views::MAX_SITES`], each with its machines and open warnings inside it.
    fn view_sites(&self, scope: &Scope, site_id: Option<&str>) -> Result<Vec<SiteRow>, DbError>;

    /// Placed machines inside `scope` (at a site, or one by id), by id, at most `limit`, each with
    /// its open warnings inside the scope.
    fn view_machines(
        &self,
        scope: &Scope,
        site_id: Option<&str>,
        machine_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<MachineRow>, DbError>;

    /// The place of a licence holder when it lies inside `scope`.
    fn view_licence_place(
        &self,
        scope: &Scope,
        certificate_no: &str,
    ) -> Result<Option<Place>, DbError>;

    /// The registry's newest change of a feed entity ([`super::entity_of`]), as stored.
    fn registry_entity(&self, entity: &str) -> Result<Option<String>, DbError>;

    /// Applied scan-to-starts at a site, of a machine or with a licence, counted inside `scope`,
    /// newest start first, at most `limit`.
    fn view_starts(
        &self,
        scope: &Scope,
        subject: &Subject<'_>,
        limit: u32,
    ) -> Result<Vec<StartRecord>, DbError>;

    /// Warnings about a site, a machine or a licence inside `scope`, newest first, at most `limit`.
    fn view_warnings(
        &self,
        scope: &Scope,
        subject: &Subject<'_>,
        limit: u32,
    ) -> Result<Vec<WarningRow>, DbError>;

    /// Heads of the permits whose applied steps named `site_id`, last changed first, at most
    /// `limit`.
    fn view_site_permits(&self, site_id: &str, limit: u32) -> Result<Vec<PermitHeadRow>, DbError>;

    /// A permit's head and its applied steps in arrival order.
    fn view_permit(
        &self,
        permit_id: &str,
    ) -> Result<Option<(PermitHeadRow, Vec<PermitStepRow>)>, DbError>;
}
