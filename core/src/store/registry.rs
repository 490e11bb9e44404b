//! The registry cache: licences, machines, person–machine bindings, revocations, trusted issuer keys
//! and the work calendar (holidays, adjusted days, sensitive periods) as the platform hands them out, with the sync cursor each feed came with. Changes arrive in
//! batches (a sync page or an import file) applied in one transaction, together with the feed's next
//! cursor; bulk loads commit with `synchronous=NORMAL`, since a lost batch can be fetched again.
//!
//! The store answers the decision's questions through [`RegistryView`], so the rules stay pure.

use chrono::NaiveDate;
use rusqlite::{Connection, OptionalExtension, Row, Statement, Transaction, params};
use serde::{Deserialize, Serialize};

use super::{Store, StoreError};
use crate::domain::{
    Binding, Licence, LicenceStatus, Machine, MachineClass, MachineKind, MachineStatus,
    OperationCategory, Revocation, RevocationTarget,
};
use crate::rules::registry::{RegistryError, RegistryView};
use weldguard_model::checksum::Collection;
pub use weldguard_model::records::{
    AnnouncedPeriod, CalendarDay, CalendarDayKind, RegistryChange, TrustedIssuerKey,
    work_calendar_of,
};

/// The position in one registry feed up to which the cache is current.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncCursor {
    /// The feed's name, e.g. `licences` (the sync protocol names them).
    pub feed: String,
    /// The platform's opaque cursor.
    pub cursor: String,
}

/// What one batch changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeCounts {
    /// Rows inserted or replaced.
    pub upserted: u64,
    /// Rows deleted (a delete of an absent row counts nothing).
    pub deleted: u64,
}

/// What the registry cache holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryStats {
    pub licences: u64,
    pub machines: u64,
    pub bindings: u64,
    pub revocations: u64,
    pub issuer_keys: u64,
    pub calendar_days: u64,
    pub sensitive_periods: u64,
    /// (feed, cursor, stored at ms) for every feed synced so far.
    pub cursors: Vec<(String, String, i64)>,
}

// ---- How domain values are written in the database (stable: part of the schema). ----

/// 1970-01-01 counted from 0001-01-01 (chrono's `num_days_from_ce`).
const UNIX_EPOCH_FROM_CE: i32 = 719_163;

pub(crate) fn date_to_db(date: NaiveDate) -> i64 {
    use chrono::Datelike;
    i64::from(date.num_days_from_ce() - UNIX_EPOCH_FROM_CE)
}

fn date_from_db(days: i64) -> Option<NaiveDate> {
    let days = i32::try_from(days).ok()?.checked_add(UNIX_EPOCH_FROM_CE)?;
    NaiveDate::from_num_days_from_ce_opt(days)
}

fn category_bit(category: OperationCategory) -> i64 {
    match category {
        OperationCategory::FusionWeldingAndCutting => 1,
        OperationCategory::PressureWelding => 2,
        OperationCategory::Brazing => 4,
    }
}

pub(crate) fn categories_to_db(categories: &[OperationCategory]) -> i64 {
    categories.iter().fold(0, |bits, c| bits | category_bit(*c))
}

fn categories_from_db(bits: i64) -> Option<Vec<OperationCategory>> {
    if bits & !7 != 0 {
        return None;
    }
    Some(
        OperationCategory::ALL
            .into_iter()
            .filter(|c| bits & category_bit(*c) != 0)
            .collect(),
    )
}

pub(crate) fn licence_status_to_db(status: LicenceStatus) -> &'static str {
    match status {
        LicenceStatus::Valid => "valid",
        LicenceStatus::Revoked => "revoked",
    }
}

fn licence_status_from_db(text: &str) -> Option<LicenceStatus> {
    Some(match text {
        "valid" => LicenceStatus::Valid,
        "revoked" => LicenceStatus::Revoked,
        _ => return None,
    })
}

pub(crate) fn machine_kind_to_db(kind: MachineKind) -> &'static str {
    match kind {
        MachineKind::Arc => "arc",
        MachineKind::Plasma => "plasma",
        MachineKind::GasCutting => "gas_cutting",
        MachineKind::GasWelding => "gas_welding",
        MachineKind::Resistance => "resistance",
        MachineKind::Spot => "spot",
        MachineKind::Friction => "friction",
        MachineKind::Brazing => "brazing",
        MachineKind::Soldering => "soldering",
    }
}

fn machine_kind_from_db(text: &str) -> Option<MachineKind> {
    MachineKind::ALL
        .into_iter()
        .find(|k| machine_kind_to_db(*k) == text)
}

pub(crate) fn machine_class_to_db(class: MachineClass) -> &'static str {
    match class {
        MachineClass::Mobile => "mobile",
        MachineClass::FixedStation => "fixed_station",
        MachineClass::LegacyRegistered => "legacy_registered",
    }
}

fn machine_class_from_db(text: &str) -> Option<MachineClass> {
    [
        MachineClass::Mobile,
        MachineClass::FixedStation,
        MachineClass::LegacyRegistered,
    ]
    .into_iter()
    .find(|c| machine_class_to_db(*c) == text)
}

pub(crate) fn machine_status_to_db(status: MachineStatus) -> &'static str {
    match status {
        MachineStatus::Active => "active",
        MachineStatus::Retired => "retired",
    }
}

fn machine_status_from_db(text: &str) -> Option<MachineStatus> {
    [MachineStatus::Active, MachineStatus::Retired]
        .into_iter()
        .find(|s| machine_status_to_db(*s) == text)
}

fn calendar_kind_to_db(kind: CalendarDayKind) -> &'static str {
    match kind {
        CalendarDayKind::Holiday => "holiday",
        CalendarDayKind::RestDay => "rest_day",
        CalendarDayKind::Workday => "workday",
    }
}

fn calendar_kind_from_db(text: &str) -> Option<CalendarDayKind> {
    match text {
        "holiday" => Some(CalendarDayKind::Holiday),
        "rest_day" => Some(CalendarDayKind::RestDay),
        "workday" => Some(CalendarDayKind::Workday),
        _ => None,
    }
}

pub(crate) fn revocation_target_to_db(target: RevocationTarget) -> &'static str {
    match target {
        RevocationTarget::Licence => "licence",
        RevocationTarget::Credential => "credential",
        RevocationTarget::IssuerKey => "issuer_key",
        RevocationTarget::Machine => "machine",
    }
}

fn invalid(column: usize, what: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(column, rusqlite::types::Type::Text, what.into())
}

fn licence_from_row(row: &Row<'_>) -> rusqlite::Result<Licence> {
    let date = |i: usize| -> rusqlite::Result<NaiveDate> {
        let days: i64 = row.get(i)?;
        date_from_db(days).ok_or_else(|| invalid(i, format!("day number {days} out of range")))
    };
    let bits: i64 = row.get(3)?;
    let status: String = row.get(8)?;
    Ok(Licence {
        certificate_no: row.get(0)?,
        id_number: row.get(1)?,
        name: row.get(2)?,
        categories: categories_from_db(bits)
            .ok_or_else(|| invalid(3, format!("category bits {bits}")))?,
        issued_on: date(4)?,
        expires_on: date(5)?,
        next_review_on: date(6)?,
        review_extended: row.get(7)?,
        status: licence_status_from_db(&status)
            .ok_or_else(|| invalid(8, format!("licence status {status:?}")))?,
        employer_org: row.get(9)?,
    })
}

fn machine_from_row(row: &Row<'_>) -> rusqlite::Result<Machine> {
    let kind: String = row.get(1)?;
    let class: String = row.get(2)?;
    let status: String = row.get(5)?;
    Ok(Machine {
        machine_id: row.get(0)?,
        kind: machine_kind_from_db(&kind)
            .ok_or_else(|| invalid(1, format!("machine kind {kind:?}")))?,
        class: machine_class_from_db(&class)
            .ok_or_else(|| invalid(2, format!("machine class {class:?}")))?,
        owner_org: row.get(3)?,
        region: row.get(4)?,
        status: machine_status_from_db(&status)
            .ok_or_else(|| invalid(5, format!("machine status {status:?}")))?,
    })
}

// ---- SQL, shared with the benchmark's comparison so both load the same table. ----

/// Empties every registry table (a refetch, a snapshot load).
/// Collection refetches under way are forgotten too: the whole registry comes again.
pub(crate) const CLEAR_REGISTRY_SQL: &str = "DELETE FROM licences; DELETE FROM machines; \
     DELETE FROM bindings; DELETE FROM revocations; DELETE FROM issuer_keys; \
     DELETE FROM calendar_days; DELETE FROM sensitive_periods; \
     DELETE FROM sync_cursors WHERE feed LIKE 'refetch:%';";

/// The `sync_cursors` row of a collection refetch under way: its cursor is where the next page
/// starts (empty before the first page).
const REFETCH_PREFIX: &str = "refetch:";

/// The table holding a collection's rows: it is named as the collection is on the wire.
fn collection_table(collection: Collection) -> &'static str {
    collection.name()
}

/// The bulk path's licence upsert.
pub const UPSERT_LICENCE_SQL: &str = "INSERT INTO licences (certificate_no, id_number, name, \
     categories, issued_on, expires_on, next_review_on, review_extended, status, employer_org) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
     ON CONFLICT (certificate_no) DO UPDATE SET id_number = excluded.id_number, \
     name = excluded.name, categories = excluded.categories, issued_on = excluded.issued_on, \
     expires_on = excluded.expires_on, next_review_on = excluded.next_review_on, \
     review_extended = excluded.review_extended, status = excluded.status, \
     employer_org = excluded.employer_org";

const LICENCE_COLUMNS: &str = "certificate_no, id_number, name, categories, issued_on, \
     expires_on, next_review_on, review_extended, status, employer_org";

/// Statements of one batch, prepared on first use.
#[derive(Default)]
struct BatchStatements<'tx> {
    upsert_licence: Option<Statement<'tx>>,
    delete_licence: Option<Statement<'tx>>,
    upsert_machine: Option<Statement<'tx>>,
    delete_machine: Option<Statement<'tx>>,
    bind: Option<Statement<'tx>>,
    unbind: Option<Statement<'tx>>,
    revoke: Option<Statement<'tx>>,
    unrevoke: Option<Statement<'tx>>,
    upsert_key: Option<Statement<'tx>>,
    delete_key: Option<Statement<'tx>>,
}

fn prepared<'a, 'tx>(
    slot: &'a mut Option<Statement<'tx>>,
    tx: &'tx Connection,
    sql: &str,
) -> rusqlite::Result<&'a mut Statement<'tx>> {
    match slot {
        Some(stmt) => Ok(stmt),
        None => Ok(slot.insert(tx.prepare(sql)?)),
    }
}

fn apply_change<'tx>(
    tx: &'tx Connection,
    stmts: &mut BatchStatements<'tx>,
    change: &RegistryChange,
    counts: &mut ChangeCounts,
) -> rusqlite::Result<()> {
    match change {
        RegistryChange::UpsertLicence(l) => {
            prepared(&mut stmts.upsert_licence, tx, UPSERT_LICENCE_SQL)?.execute(params![
                l.certificate_no,
                l.id_number,
                l.name,
                categories_to_db(&l.categories),
                date_to_db(l.issued_on),
                date_to_db(l.expires_on),
                date_to_db(l.next_review_on),
                l.review_extended,
                licence_status_to_db(l.status),
                l.employer_org,
            ])?;
            counts.upserted += 1;
        }
        RegistryChange::DeleteLicence { certificate_no } => {
            let sql = "DELETE FROM licences WHERE certificate_no = ?1";
            counts.deleted +=
                prepared(&mut stmts.delete_licence, tx, sql)?.execute([certificate_no])? as u64;
        }
        RegistryChange::UpsertMachine(m) => {
            let sql = "INSERT OR REPLACE INTO machines \
                       (machine_id, kind, class, owner_org, region, status) \
                       VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
            prepared(&mut stmts.upsert_machine, tx, sql)?.execute(params![
                m.machine_id,
                machine_kind_to_db(m.kind),
                machine_class_to_db(m.class),
                m.owner_org,
                m.region,
                machine_status_to_db(m.status),
            ])?;
            counts.upserted += 1;
        }
        RegistryChange::DeleteMachine { machine_id } => {
            let sql = "DELETE FROM machines WHERE machine_id = ?1";
            counts.deleted +=
                prepared(&mut stmts.delete_machine, tx, sql)?.execute([machine_id])? as u64;
        }
        RegistryChange::Bind(b) => {
            let sql = "INSERT OR IGNORE INTO bindings (machine_id, certificate_no) VALUES (?1, ?2)";
            prepared(&mut stmts.bind, tx, sql)?.execute([&b.machine_id, &b.certificate_no])?;
            counts.upserted += 1;
        }
        RegistryChange::Unbind(b) => {
            let sql = "DELETE FROM bindings WHERE machine_id = ?1 AND certificate_no = ?2";
            counts.deleted += prepared(&mut stmts.unbind, tx, sql)?
                .execute([&b.machine_id, &b.certificate_no])? as u64;
        }
        RegistryChange::Revoke(r) => {
            let sql = "INSERT OR IGNORE INTO revocations (target, id) VALUES (?1, ?2)";
            prepared(&mut stmts.revoke, tx, sql)?
                .execute(params![revocation_target_to_db(r.target), r.id])?;
            counts.upserted += 1;
        }
        RegistryChange::Unrevoke(r) => {
            let sql = "DELETE FROM revocations WHERE target = ?1 AND id = ?2";
            counts.deleted += prepared(&mut stmts.unrevoke, tx, sql)?
                .execute(params![revocation_target_to_db(r.target), r.id])?
                as u64;
        }
        RegistryChange::UpsertIssuerKey(k) => {
            let sql = "INSERT OR REPLACE INTO issuer_keys (kid, algorithm, public_key, issuer) \
                       VALUES (?1, ?2, ?3, ?4)";
            prepared(&mut stmts.upsert_key, tx, sql)?.execute(params![
                k.kid,
                k.algorithm,
                k.public_key,
                k.issuer
            ])?;
            counts.upserted += 1;
        }
        RegistryChange::DeleteIssuerKey { kid } => {
            let sql = "DELETE FROM issuer_keys WHERE kid = ?1";
            counts.deleted += prepared(&mut stmts.delete_key, tx, sql)?.execute([kid])? as u64;
        }
        RegistryChange::SetCalendarDay(day) => {
            tx.prepare_cached("INSERT OR REPLACE INTO calendar_days (date, kind) VALUES (?1, ?2)")?
                .execute(params![date_to_db(day.date), calendar_kind_to_db(day.kind)])?;
            counts.upserted += 1;
        }
        RegistryChange::ClearCalendarDay { date } => {
            counts.deleted += tx
                .prepare_cached("DELETE FROM calendar_days WHERE date = ?1")?
                .execute([date_to_db(*date)])? as u64;
        }
        RegistryChange::AnnouncePeriod(p) => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO sensitive_periods (period_id, name, from_s, until_s) \
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![p.period_id, p.name, p.from, p.until])?;
            counts.upserted += 1;
        }
        RegistryChange::WithdrawPeriod { period_id } => {
            counts.deleted += tx
                .prepare_cached("DELETE FROM sensitive_periods WHERE period_id = ?1")?
                .execute([period_id])? as u64;
        }
    }
    Ok(())
}

/// The row a change touches: (table, primary key) in the database's own (byte-wise) order.
fn sort_key(change: &RegistryChange) -> (u8, &str, &str) {
    match change {
        RegistryChange::UpsertLicence(l) => (0, &l.certificate_no, ""),
        RegistryChange::DeleteLicence { certificate_no } => (0, certificate_no, ""),
        RegistryChange::UpsertMachine(m) => (1, &m.machine_id, ""),
        RegistryChange::DeleteMachine { machine_id } => (1, machine_id, ""),
        RegistryChange::Bind(b) | RegistryChange::Unbind(b) => {
            (2, &b.machine_id, &b.certificate_no)
        }
        RegistryChange::Revoke(r) | RegistryChange::Unrevoke(r) => {
            (3, revocation_target_to_db(r.target), &r.id)
        }
        RegistryChange::UpsertIssuerKey(k) => (4, &k.kid, ""),
        RegistryChange::DeleteIssuerKey { kid } => (4, kid, ""),
        // A handful of rows a year: kept in the order given.
        RegistryChange::SetCalendarDay(_) | RegistryChange::ClearCalendarDay { .. } => (5, "", ""),
        RegistryChange::AnnouncePeriod(p) => (6, &p.period_id, ""),
        RegistryChange::WithdrawPeriod { period_id } => (6, period_id, ""),
    }
}

/// A change with its sort key's first 16 bytes inline, so most comparisons touch no other memory;
/// ties fall back to the full key, then to the position in the batch (keeping the given order of
/// changes to the same row).
struct SortEntry<'a> {
    table: u8,
    prefix: u128,
    change: &'a RegistryChange,
    position: usize,
}

impl<'a> SortEntry<'a> {
    fn new(change: &'a RegistryChange, position: usize) -> Self {
        let (table, key, _) = sort_key(change);
        let mut bytes = [0u8; 16];
        for (slot, byte) in bytes.iter_mut().zip(key.bytes()) {
            *slot = byte;
        }
        SortEntry {
            table,
            prefix: u128::from_be_bytes(bytes),
            change,
            position,
        }
    }

    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.table, self.prefix)
            .cmp(&(other.table, other.prefix))
            .then_with(|| sort_key(self.change).cmp(&sort_key(other.change)))
            .then_with(|| self.position.cmp(&other.position))
    }
}

pub(crate) fn store_cursor(
    tx: &Transaction<'_>,
    cursor: &SyncCursor,
    at_ms: i64,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT OR REPLACE INTO sync_cursors (feed, cursor, updated_at_ms) VALUES (?1, ?2, ?3)",
        params![cursor.feed, cursor.cursor, at_ms],
    )?;
    Ok(())
}

impl Store {
    /// Apply a batch of registry changes, in order, in one transaction, and store the feed's next
    /// cursor in the same transaction (a sync page and its cursor land together or not at all).
    pub fn apply_registry_changes<I>(
        &self,
        changes: I,
        next_cursor: Option<&SyncCursor>,
        at_ms: i64,
    ) -> Result<ChangeCounts, StoreError>
    where
        I: IntoIterator<Item = RegistryChange>,
    {
        self.apply_registry_batch(changes, |tx| {
            if let Some(cursor) = next_cursor {
                store_cursor(tx, cursor, at_ms)?;
            }
            Ok(())
        })
    }

    /// Apply a batch of changes, then run `finish` in the same transaction before it commits (a
    /// cursor, snapshot progress): both land or neither.
    pub(crate) fn apply_registry_batch<I, F>(
        &self,
        changes: I,
        finish: F,
    ) -> Result<ChangeCounts, StoreError>
    where
        I: IntoIterator<Item = RegistryChange>,
        F: FnOnce(&Transaction<'_>) -> Result<(), StoreError>,
    {
        let mut conn = self.writer();
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let result = (|| {
            let tx = conn.transaction()?;
            let mut counts = ChangeCounts::default();
            // Key order turns random B-tree inserts into appends. The sort is stable and only
            // reorders changes to different rows (registry tables have no triggers or foreign
            // keys between them), so the outcome is the same as applying them as given.
            let changes: Vec<RegistryChange> = changes.into_iter().collect();
            let mut ordered: Vec<SortEntry<'_>> = changes
                .iter()
                .enumerate()
                .map(|(position, change)| SortEntry::new(change, position))
                .collect();
            if !ordered.is_sorted_by(|a, b| a.cmp(b).is_le()) {
                ordered.sort_unstable_by(SortEntry::cmp);
            }
            {
                let mut stmts = BatchStatements::default();
                for entry in ordered {
                    apply_change(&tx, &mut stmts, entry.change, &mut counts)?;
                }
            }
            finish(&tx)?;
            tx.commit()?;
            Ok::<_, StoreError>(counts)
        })();
        // Back to the standing setting for records, whatever happened.
        let restored = conn.pragma_update(None, "synchronous", "FULL");
        let counts = result?;
        restored?;
        Ok(counts)
    }

    /// Empty the registry cache (licences, machines, bindings, revocations, issuer keys) and forget
    /// the feed's cursor, in one transaction: the device must refetch the feed from the start
    /// (the platform answered `must refetch`). Records and the outbox are not touched.
    pub fn clear_registry(&self, feed: &str) -> Result<(), StoreError> {
        let mut conn = self.writer();
        let tx = conn.transaction()?;
        tx.execute_batch(CLEAR_REGISTRY_SQL)?;
        tx.execute("DELETE FROM sync_cursors WHERE feed = ?1", [feed])?;
        tx.commit()?;
        Ok(())
    }

    /// Start refetching `collection` (its rows drifted from the platform's): empty its table and
    /// note the refetch, in one transaction. The feed cursor stays: once the collection's pages are
    /// in, the usual pull replays every change after the cursor, which brings rows read at a later
    /// feed position and rows read before it to the same state. Records and the outbox are not
    /// touched.
    pub fn begin_collection_refetch(
        &self,
        collection: Collection,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        let mut conn = self.writer();
        let tx = conn.transaction()?;
        tx.execute(&format!("DELETE FROM {}", collection_table(collection)), [])?;
        store_cursor(
            &tx,
            &SyncCursor {
                feed: format!("{REFETCH_PREFIX}{}", collection.name()),
                cursor: String::new(),
            },
            at_ms,
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Apply one page of a collection refetch and note where the next starts (`None`: the refetch
    /// is complete), in one transaction: an interrupted refetch resumes at the next page.
    pub fn apply_collection_page(
        &self,
        collection: Collection,
        changes: Vec<RegistryChange>,
        next_after: Option<&str>,
        at_ms: i64,
    ) -> Result<ChangeCounts, StoreError> {
        if let Some(wrong) = changes
            .iter()
            .find(|c| weldguard_model::checksum::collection_of(c) != Some(collection))
        {
            return Err(StoreError::InvalidData(format!(
                "a {} refetch page holds another kind of change: {wrong:?}",
                collection.name()
            )));
        }
        let feed = format!("{REFETCH_PREFIX}{}", collection.name());
        self.apply_registry_batch(changes, |tx| {
            match next_after {
                Some(after) => store_cursor(
                    tx,
                    &SyncCursor {
                        feed,
                        cursor: after.to_owned(),
                    },
                    at_ms,
                )?,
                None => {
                    tx.execute("DELETE FROM sync_cursors WHERE feed = ?1", [&feed])?;
                }
            }
            Ok(())
        })
    }

    /// Collection refetches under way, with where each resumes (empty: from the start).
    pub fn collection_refetches(&self) -> Result<Vec<(Collection, String)>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(
            "SELECT feed, cursor FROM sync_cursors WHERE feed LIKE 'refetch:%' ORDER BY feed",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut pending = Vec::new();
        for row in rows {
            let (feed, after) = row?;
            let collection = feed
                .strip_prefix(REFETCH_PREFIX)
                .and_then(Collection::from_name)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown refetch {feed:?}")))?;
            pending.push((collection, after));
        }
        Ok(pending)
    }

    /// The platform's work calendar as the device holds it: what permit escalation reads.
    pub fn work_calendar(&self) -> Result<crate::permit::WorkCalendar, StoreError> {
        let mut calendar = crate::permit::WorkCalendar::default();
        let conn = self.reader();
        let mut stmt = conn.prepare_cached("SELECT date, kind FROM calendar_days ORDER BY date")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
        for row in rows {
            let (days, kind) = row?;
            let date = date_from_db(days)
                .ok_or_else(|| StoreError::InvalidData(format!("calendar day {days}")))?;
            match calendar_kind_from_db(&kind) {
                Some(CalendarDayKind::Holiday) => calendar.holidays.push(date),
                Some(CalendarDayKind::RestDay) => calendar.extra_rest_days.push(date),
                Some(CalendarDayKind::Workday) => calendar.adjusted_workdays.push(date),
                None => return Err(StoreError::InvalidData(format!("calendar kind {kind:?}"))),
            }
        }
        let mut stmt = conn.prepare_cached(
            "SELECT name, from_s, until_s FROM sensitive_periods ORDER BY from_s, period_id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(crate::permit::SensitivePeriod {
                name: r.get(0)?,
                from: r.get(1)?,
                until: r.get(2)?,
            })
        })?;
        for row in rows {
            calendar.sensitive_periods.push(row?);
        }
        Ok(calendar)
    }

    /// The cursor stored for a feed, if it was ever synced.
    pub fn sync_cursor(&self, feed: &str) -> Result<Option<String>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached("SELECT cursor FROM sync_cursors WHERE feed = ?1")?;
        Ok(stmt.query_row([feed], |r| r.get(0)).optional()?)
    }

    /// Counts of everything the registry cache holds, and the feeds' cursors.
    pub fn registry_stats(&self) -> Result<RegistryStats, StoreError> {
        let conn = self.reader();
        let count = |table: &str| -> Result<u64, StoreError> {
            let n: i64 =
                conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?;
            Ok(u64::try_from(n).unwrap_or(0))
        };
        let mut stmt =
            conn.prepare("SELECT feed, cursor, updated_at_ms FROM sync_cursors ORDER BY feed")?;
        let cursors = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RegistryStats {
            licences: count("licences")?,
            machines: count("machines")?,
            bindings: count("bindings")?,
            revocations: count("revocations")?,
            issuer_keys: count("issuer_keys")?,
            calendar_days: count("calendar_days")?,
            sensitive_periods: count("sensitive_periods")?,
            cursors,
        })
    }

    /// The trusted issuer key with this id, if any.
    pub fn issuer_key(&self, kid: &str) -> Result<Option<TrustedIssuerKey>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(
            "SELECT kid, algorithm, public_key, issuer FROM issuer_keys WHERE kid = ?1",
        )?;
        Ok(stmt
            .query_row([kid], |r| {
                Ok(TrustedIssuerKey {
                    kid: r.get(0)?,
                    algorithm: r.get(1)?,
                    public_key: r.get(2)?,
                    issuer: r.get(3)?,
                })
            })
            .optional()?)
    }

    /// Every revocation the device knows, from the registry feed and from the signed status list
    /// (the list is small: the device keeps it in memory for offline code verification).
    pub fn revocations(&self) -> Result<Vec<Revocation>, StoreError> {
        self.revocations_from(
            "SELECT target, id FROM revocations UNION \
             SELECT target, id FROM status_revocations ORDER BY 1, 2",
        )
    }

    /// The revocations the registry feed brought (not the status list's).
    pub fn feed_revocations(&self) -> Result<Vec<Revocation>, StoreError> {
        self.revocations_from("SELECT target, id FROM revocations ORDER BY target, id")
    }

    fn revocations_from(&self, sql: &str) -> Result<Vec<Revocation>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(sql)?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut list = Vec::new();
        for row in rows {
            let (target, id) = row?;
            let target = [
                RevocationTarget::Licence,
                RevocationTarget::Credential,
                RevocationTarget::IssuerKey,
                RevocationTarget::Machine,
            ]
            .into_iter()
            .find(|t| revocation_target_to_db(*t) == target)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown revocation target {target:?}")))?;
            list.push(Revocation { target, id });
        }
        Ok(list)
    }

    /// The per-collection checksums of the registry cache ([`weldguard_model::checksum`]): what the device
    /// compares with the platform's to detect drift. Reads every row (about a second for 10^6
    /// licences on a phone), so the shells run it now and then, not at every sync.
    pub fn registry_checksums(
        &self,
    ) -> Result<weldguard_model::checksum::RegistryChecksums, StoreError> {
        let mut sums = weldguard_model::checksum::RegistryChecksums::new();
        for revocation in self.feed_revocations()? {
            sums.add_row(&RegistryChange::Revoke(revocation));
        }
        let conn = self.reader();
        let mut stmt = conn.prepare(&format!("SELECT {LICENCE_COLUMNS} FROM licences"))?;
        for licence in stmt.query_map([], licence_from_row)? {
            sums.add_row(&RegistryChange::UpsertLicence(licence?));
        }
        let mut stmt = conn
            .prepare("SELECT machine_id, kind, class, owner_org, region, status FROM machines")?;
        for machine in stmt.query_map([], machine_from_row)? {
            sums.add_row(&RegistryChange::UpsertMachine(machine?));
        }
        let mut stmt = conn.prepare("SELECT machine_id, certificate_no FROM bindings")?;
        for binding in stmt.query_map([], |r| {
            Ok(Binding {
                machine_id: r.get(0)?,
                certificate_no: r.get(1)?,
            })
        })? {
            sums.add_row(&RegistryChange::Bind(binding?));
        }
        let mut stmt =
            conn.prepare("SELECT kid, algorithm, public_key, issuer FROM issuer_keys")?;
        for key in stmt.query_map([], |r| {
            Ok(TrustedIssuerKey {
                kid: r.get(0)?,
                algorithm: r.get(1)?,
                public_key: r.get(2)?,
                issuer: r.get(3)?,
            })
        })? {
            sums.add_row(&RegistryChange::UpsertIssuerKey(key?));
        }
        let mut stmt = conn.prepare("SELECT date, kind FROM calendar_days")?;
        for day in stmt.query_map([], |r| {
            let days: i64 = r.get(0)?;
            let kind: String = r.get(1)?;
            Ok(CalendarDay {
                date: date_from_db(days)
                    .ok_or_else(|| invalid(0, format!("day number {days} out of range")))?,
                kind: calendar_kind_from_db(&kind)
                    .ok_or_else(|| invalid(1, format!("calendar kind {kind:?}")))?,
            })
        })? {
            sums.add_row(&RegistryChange::SetCalendarDay(day?));
        }
        let mut stmt =
            conn.prepare("SELECT period_id, name, from_s, until_s FROM sensitive_periods")?;
        for period in stmt.query_map([], |r| {
            Ok(AnnouncedPeriod {
                period_id: r.get(0)?,
                name: r.get(1)?,
                from: r.get(2)?,
                until: r.get(3)?,
            })
        })? {
            sums.add_row(&RegistryChange::AnnouncePeriod(period?));
        }
        Ok(sums)
    }

    /// The licence the registry cache holds under this certificate number.
    pub fn registry_licence(&self, certificate_no: &str) -> Result<Option<Licence>, StoreError> {
        self.lookup_licence(certificate_no)
    }

    /// The machines bound to this certificate (人机绑定), by machine id, each with the registry's
    /// machine when the cache holds it.
    pub fn bound_machines(
        &self,
        certificate_no: &str,
    ) -> Result<Vec<(String, Option<Machine>)>, StoreError> {
        let ids = {
            let conn = self.reader();
            let mut stmt = conn.prepare_cached(
                "SELECT machine_id FROM bindings WHERE certificate_no = ?1 ORDER BY machine_id",
            )?;
            stmt.query_map([certificate_no], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?
        };
        ids.into_iter()
            .map(|id| {
                let machine = self.lookup_machine(&id)?;
                Ok((id, machine))
            })
            .collect()
    }

    /// Whether the registry cache holds a revocation of this target.
    pub fn registry_revoked(&self, target: RevocationTarget, id: &str) -> Result<bool, StoreError> {
        self.lookup_exists(
            "SELECT 1 FROM revocations WHERE target = ?1 AND id = ?2",
            revocation_target_to_db(target),
            id,
        )
    }

    fn lookup_licence(&self, certificate_no: &str) -> Result<Option<Licence>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {LICENCE_COLUMNS} FROM licences WHERE certificate_no = ?1"
        ))?;
        Ok(stmt
            .query_row([certificate_no], licence_from_row)
            .optional()?)
    }

    fn lookup_machine(&self, machine_id: &str) -> Result<Option<Machine>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(
            "SELECT machine_id, kind, class, owner_org, region, status \
             FROM machines WHERE machine_id = ?1",
        )?;
        Ok(stmt.query_row([machine_id], machine_from_row).optional()?)
    }

    fn lookup_exists(&self, sql: &str, a: &str, b: &str) -> Result<bool, StoreError> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(sql)?;
        Ok(stmt.exists([a, b])?)
    }
}

fn unavailable(error: StoreError) -> RegistryError {
    RegistryError(error.to_string())
}

impl RegistryView for Store {
    fn licence(&self, certificate_no: &str) -> Result<Option<Licence>, RegistryError> {
        self.lookup_licence(certificate_no).map_err(unavailable)
    }

    fn machine(&self, machine_id: &str) -> Result<Option<Machine>, RegistryError> {
        self.lookup_machine(machine_id).map_err(unavailable)
    }

    fn is_bound(&self, machine_id: &str, certificate_no: &str) -> Result<bool, RegistryError> {
        self.lookup_exists(
            "SELECT 1 FROM bindings WHERE machine_id = ?1 AND certificate_no = ?2",
            machine_id,
            certificate_no,
        )
        .map_err(unavailable)
    }

    fn is_revoked(&self, target: RevocationTarget, id: &str) -> Result<bool, RegistryError> {
        self.lookup_exists(
            "SELECT 1 FROM revocations WHERE target = ?1 AND id = ?2",
            revocation_target_to_db(target),
            id,
        )
        .map_err(unavailable)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::rules::registry::MemoryRegistry;
    use crate::store::test_support::TempDir;

    const T0: i64 = 1_764_374_400_000;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    pub(crate) fn licence(certificate_no: &str) -> Licence {
        Licence {
            certificate_no: certificate_no.to_owned(),
            id_number: "370983199003077714".to_owned(),
            name: "王建国".to_owned(),
            categories: vec![
                OperationCategory::FusionWeldingAndCutting,
                OperationCategory::Brazing,
            ],
            issued_on: date(2021, 3, 15),
            expires_on: date(2027, 3, 15),
            next_review_on: date(2024, 3, 15),
            review_extended: false,
            status: LicenceStatus::Valid,
            employer_org: Some("91370983MA3C0XXXXX".to_owned()),
        }
    }

    pub(crate) fn machine(machine_id: &str) -> Machine {
        Machine {
            machine_id: machine_id.to_owned(),
            kind: MachineKind::GasCutting,
            class: MachineClass::Mobile,
            owner_org: "91370983MA3C0XXXXX".to_owned(),
            region: 370983,
            status: MachineStatus::Active,
        }
    }

    fn open(dir: &TempDir) -> Store {
        Store::open(dir.path().join("db.sqlite")).unwrap()
    }

    #[test]
    fn a_collection_refetch_replaces_one_table_resumes_and_refuses_foreign_rows() {
        let dir = TempDir::new();
        let store = open(&dir);
        let cursor = SyncCursor {
            feed: "registry".into(),
            cursor: "e.2".into(),
        };
        store
            .apply_registry_changes(
                [
                    RegistryChange::UpsertLicence(licence("T1")),
                    RegistryChange::UpsertMachine(machine("M-1")),
                ],
                Some(&cursor),
                T0,
            )
            .unwrap();
        store
            .begin_collection_refetch(Collection::Machines, T0)
            .unwrap();
        let stats = store.registry_stats().unwrap();
        assert_eq!((stats.licences, stats.machines), (1, 0));
        assert_eq!(
            store.collection_refetches().unwrap(),
            vec![(Collection::Machines, String::new())]
        );

        // A page holding a licence is not a machines page: refused, nothing changes.
        let err = store
            .apply_collection_page(
                Collection::Machines,
                vec![RegistryChange::UpsertLicence(licence("T2"))],
                None,
                T0,
            )
            .unwrap_err();
        assert!(matches!(err, StoreError::InvalidData(_)), "{err:?}");
        assert_eq!(store.registry_stats().unwrap().licences, 1);

        store
            .apply_collection_page(
                Collection::Machines,
                vec![RegistryChange::UpsertMachine(machine("M-1"))],
                Some("next"),
                T0,
            )
            .unwrap();
        assert_eq!(
            store.collection_refetches().unwrap(),
            vec![(Collection::Machines, "next".into())]
        );
        store
            .apply_collection_page(
                Collection::Machines,
                vec![RegistryChange::UpsertMachine(machine("M-2"))],
                None,
                T0,
            )
            .unwrap();
        assert!(store.collection_refetches().unwrap().is_empty());
        assert_eq!(store.registry_stats().unwrap().machines, 2);
        assert_eq!(
            store.sync_cursor("registry").unwrap().as_deref(),
            Some("e.2"),
            "the feed cursor never moved"
        );
    }

    #[test]
    fn the_day_numbering_starts_at_the_unix_epoch() {
        assert_eq!(date_to_db(date(1970, 1, 1)), 0);
        assert_eq!(date_to_db(date(2024, 3, 15)), 19_797);
        assert_eq!(date_from_db(19_797), Some(date(2024, 3, 15)));
        assert_eq!(date_from_db(i64::MAX), None);
        assert_eq!(categories_from_db(8), None);
    }

    #[test]
    fn every_enum_value_round_trips_through_the_database() {
        let dir = TempDir::new();
        let store = open(&dir);
        let mut changes = Vec::new();
        for (i, kind) in MachineKind::ALL.into_iter().enumerate() {
            for (j, class) in [
                MachineClass::Mobile,
                MachineClass::FixedStation,
                MachineClass::LegacyRegistered,
            ]
            .into_iter()
            .enumerate()
            {
                let mut m = machine(&format!("M-{i}-{j}"));
                m.kind = kind;
                m.class = class;
                m.status = if j == 1 {
                    MachineStatus::Retired
                } else {
                    MachineStatus::Active
                };
                changes.push(RegistryChange::UpsertMachine(m));
            }
        }
        for bits in 0..8i64 {
            let mut l = licence(&format!("T{bits}"));
            l.categories = categories_from_db(bits).unwrap();
            l.status = if bits % 2 == 0 {
                LicenceStatus::Valid
            } else {
                LicenceStatus::Revoked
            };
            l.employer_org = (bits % 3 != 0).then(|| "ORG".to_owned());
            l.review_extended = bits % 2 == 1;
            changes.push(RegistryChange::UpsertLicence(l));
        }
        let expected = changes.clone();
        store.apply_registry_changes(changes, None, T0).unwrap();
        for change in expected {
            match change {
                RegistryChange::UpsertMachine(m) => {
                    assert_eq!(store.machine(&m.machine_id).unwrap(), Some(m))
                }
                RegistryChange::UpsertLicence(l) => {
                    assert_eq!(store.licence(&l.certificate_no).unwrap(), Some(l))
                }
                _ => unreachable!(),
            }
        }
    }

    #[test]
    fn the_store_answers_like_the_in_memory_registry() {
        let dir = TempDir::new();
        let store = open(&dir);
        let mut memory = MemoryRegistry::default();
        memory.add_licence(licence("T370983199003077714"));
        memory.add_machine(machine("M-0001"));
        memory.bind("M-0001", "T370983199003077714");
        memory.revoke(RevocationTarget::Credential, "cred-9");
        memory.revoke(RevocationTarget::IssuerKey, "a1b2");
        store
            .apply_registry_changes(
                [
                    RegistryChange::UpsertLicence(licence("T370983199003077714")),
                    RegistryChange::UpsertMachine(machine("M-0001")),
                    RegistryChange::Bind(Binding {
                        machine_id: "M-0001".into(),
                        certificate_no: "T370983199003077714".into(),
                    }),
                    RegistryChange::Revoke(Revocation {
                        target: RevocationTarget::Credential,
                        id: "cred-9".into(),
                    }),
                    RegistryChange::Revoke(Revocation {
                        target: RevocationTarget::IssuerKey,
                        id: "a1b2".into(),
                    }),
                ],
                None,
                T0,
            )
            .unwrap();
        let views: [&dyn RegistryView; 2] = [&memory, &store];
        let answers: Vec<_> = views
            .iter()
            .map(|v| {
                (
                    v.licence("T370983199003077714").unwrap(),
                    v.licence("T000").unwrap(),
                    v.machine("M-0001").unwrap(),
                    v.machine("M-9").unwrap(),
                    v.is_bound("M-0001", "T370983199003077714").unwrap(),
                    v.is_bound("M-0001", "T000").unwrap(),
                    v.is_revoked(RevocationTarget::Credential, "cred-9")
                        .unwrap(),
                    v.is_revoked(RevocationTarget::Licence, "cred-9").unwrap(),
                    v.is_revoked(RevocationTarget::IssuerKey, "a1b2").unwrap(),
                )
            })
            .collect();
        assert_eq!(answers[0], answers[1]);
        assert!(answers[1].4 && answers[1].6 && answers[1].8);
    }

    #[test]
    fn changes_apply_in_order_and_deletes_remove() {
        let dir = TempDir::new();
        let store = open(&dir);
        let mut renewed = licence("T1");
        renewed.expires_on = date(2031, 1, 1);
        let bind = Binding {
            machine_id: "M-1".into(),
            certificate_no: "T1".into(),
        };
        let counts = store
            .apply_registry_changes(
                [
                    RegistryChange::UpsertLicence(licence("T1")),
                    RegistryChange::UpsertLicence(renewed.clone()),
                    RegistryChange::UpsertLicence(licence("T2")),
                    RegistryChange::DeleteLicence {
                        certificate_no: "T2".into(),
                    },
                    RegistryChange::UpsertMachine(machine("M-1")),
                    RegistryChange::Bind(bind.clone()),
                    RegistryChange::UpsertMachine(machine("M-2")),
                    RegistryChange::DeleteMachine {
                        machine_id: "M-2".into(),
                    },
                    RegistryChange::UpsertIssuerKey(TrustedIssuerKey {
                        kid: "k1".into(),
                        algorithm: "ES256".into(),
                        public_key: vec![2; 33],
                        issuer: "肥城市应急管理局".into(),
                    }),
                ],
                Some(&SyncCursor {
                    feed: "licences".into(),
                    cursor: "c-1".into(),
                }),
                T0,
            )
            .unwrap();
        assert_eq!(
            counts,
            ChangeCounts {
                upserted: 7,
                deleted: 2
            }
        );
        assert_eq!(store.licence("T1").unwrap(), Some(renewed));
        assert_eq!(store.licence("T2").unwrap(), None);
        assert_eq!(store.machine("M-2").unwrap(), None);
        assert!(store.is_bound("M-1", "T1").unwrap());
        assert_eq!(
            store.issuer_key("k1").unwrap().unwrap().public_key,
            vec![2; 33]
        );
        assert_eq!(
            store.sync_cursor("licences").unwrap().as_deref(),
            Some("c-1")
        );
        store
            .apply_registry_changes(
                [
                    RegistryChange::Unbind(bind),
                    RegistryChange::DeleteIssuerKey { kid: "k1".into() },
                ],
                Some(&SyncCursor {
                    feed: "licences".into(),
                    cursor: "c-2".into(),
                }),
                T0 + 1,
            )
            .unwrap();
        assert!(!store.is_bound("M-1", "T1").unwrap());
        let stats = store.registry_stats().unwrap();
        assert_eq!(
            (
                stats.licences,
                stats.machines,
                stats.bindings,
                stats.issuer_keys
            ),
            (1, 1, 0, 0)
        );
        assert_eq!(
            stats.cursors,
            vec![("licences".into(), "c-2".into(), T0 + 1)]
        );
    }

    #[test]
    fn changes_to_the_same_row_keep_their_order_within_a_sorted_batch() {
        let dir = TempDir::new();
        let store = open(&dir);
        let mut second = licence("T5");
        second.name = "第二次".to_owned();
        store
            .apply_registry_changes(
                [
                    RegistryChange::UpsertLicence(licence("T9")),
                    RegistryChange::UpsertLicence(licence("T5")),
                    RegistryChange::UpsertMachine(machine("M-0")),
                    RegistryChange::DeleteLicence {
                        certificate_no: "T5".into(),
                    },
                    RegistryChange::UpsertLicence(licence("T1")),
                    RegistryChange::UpsertLicence(second.clone()),
                    RegistryChange::DeleteLicence {
                        certificate_no: "T9".into(),
                    },
                ],
                None,
                T0,
            )
            .unwrap();
        assert_eq!(store.licence("T5").unwrap(), Some(second));
        assert_eq!(store.licence("T9").unwrap(), None);
        assert!(store.licence("T1").unwrap().is_some());
    }

    #[test]
    fn a_failed_batch_changes_nothing_not_even_the_cursor() {
        let dir = TempDir::new();
        let store = open(&dir);
        // Sabotage: a trigger makes the third change fail inside the batch.
        store
            .writer()
            .execute_batch(
                "CREATE TRIGGER no_m3 BEFORE INSERT ON machines WHEN NEW.machine_id = 'M-3' \
                 BEGIN SELECT RAISE(ABORT, 'refused'); END;",
            )
            .unwrap();
        let err = store
            .apply_registry_changes(
                [
                    RegistryChange::UpsertLicence(licence("T1")),
                    RegistryChange::UpsertMachine(machine("M-1")),
                    RegistryChange::UpsertMachine(machine("M-3")),
                ],
                Some(&SyncCursor {
                    feed: "machines".into(),
                    cursor: "c-9".into(),
                }),
                T0,
            )
            .unwrap_err();
        assert!(matches!(err, StoreError::Sqlite(_)), "{err:?}");
        assert_eq!(store.licence("T1").unwrap(), None);
        assert_eq!(store.sync_cursor("machines").unwrap(), None);
        let sync: i64 = store
            .writer()
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(
            sync, 2,
            "records must be back to FULL after a failed bulk load"
        );
    }

    #[test]
    fn a_corrupted_stored_value_is_an_error_not_a_panic() {
        let dir = TempDir::new();
        let store = open(&dir);
        store
            .writer()
            .execute_batch(
                "INSERT INTO machines VALUES ('M-X', 'steam_hammer', 'mobile', 'O', 1, 'active');",
            )
            .unwrap();
        let err = store.machine("M-X").unwrap_err();
        assert!(err.0.contains("steam_hammer"), "{err}");
    }
}
