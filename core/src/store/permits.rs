//! Hot-work permits and inspection records in the device database.
//!
//! A permit is stored whole (content, answers, log and signature chain) in one row keyed by its
//! stable permit id. Every life-cycle step that changes it writes the new state, a `permit_steps`
//! row and an outbox entry (kind `permit_step`, the whole new permit as payload) in ONE transaction;
//! the step's UUIDv7 is the entry's idempotency key. A step is saved only over the exact state it
//! started from (the stored digest must match), so two devices' or two processes' steps cannot
//! silently overwrite each other.
//!
//! Loading re-verifies the signature chain ([`crate::permit::verify`]) and checks the row against
//! its digest and indexed columns; a changed row is refused with [`PermitStoreError::Tampered`].
//!
//! The platform's version wins: [`Store::apply_permit_heads`] replaces a permit's row with the
//! version the platform holds (a page of `GET /v1/permits` and its cursor in one transaction). The
//! device's own steps stay (rows in `permit_steps`, entries in the outbox); a step whose version is
//! not an ancestor of the permit held now shows as [`StepStanding::Superseded`]
//! ([`Store::permit_step_standings`]). A version learned from the platform gets its step row and an
//! outbox entry already `applied` under the platform's step id, so the row keeps its foreign keys
//! and nothing is pushed back.
//!
//! Inspections: the sealed record and its outbox entry (kind `inspection`) in one transaction, keyed
//! by the inspection id (a UUIDv7 made on the device, see [`super::records::new_record_id`]).

use rusqlite::{OptionalExtension, Transaction, params};
use serde::{Deserialize, Serialize};

use super::records::new_record_id;
use super::{Store, StoreError};
use crate::domain::Explain;
use crate::inspect::Inspection;
use crate::permit::sign::digest;
use crate::permit::{Action, ActionKind, Permit, PermitError, PermitState, RuleContext, verify};
pub use weldguard_model::records::{PermitStepRecord, RecordKind, action_name, state_name};

/// Why a permit or inspection could not be saved or loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PermitStoreError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stored row does not verify: changed outside WeldGuard.
    #[error("the stored permit {permit_id} was altered and is refused: {reason}")]
    Tampered { permit_id: String, reason: String },
    /// The permit to save does not verify, or the action was refused by the rules.
    #[error("{0}")]
    Permit(#[from] PermitError),
    #[error("permit {0} not found")]
    NotFound(String),
    #[error("permit {0} already exists")]
    AlreadyExists(String),
    /// The stored permit changed since it was loaded.
    #[error("permit {0} was changed meanwhile; load it again")]
    Conflict(String),
    /// The inspection is not sealed or its seal does not verify.
    #[error("the inspection is not sealed or its seal is broken: {0}")]
    InspectionUnsealed(String),
}

impl Explain for PermitStoreError {
    fn code(&self) -> &'static str {
        match self {
            PermitStoreError::Store(e) => e.code(),
            PermitStoreError::Tampered { .. } => "permit_store.tampered",
            PermitStoreError::Permit(e) => e.code(),
            PermitStoreError::NotFound(_) => "permit_store.not_found",
            PermitStoreError::AlreadyExists(_) => "permit_store.already_exists",
            PermitStoreError::Conflict(_) => "permit_store.conflict",
            PermitStoreError::InspectionUnsealed(_) => "permit_store.inspection_unsealed",
        }
    }

    fn message_zh(&self) -> String {
        match self {
            PermitStoreError::Store(e) => e.message_zh(),
            PermitStoreError::Tampered { permit_id, reason } => {
                format!("存储的动火作业证 {permit_id} 已被改动，拒绝使用：{reason}")
            }
            PermitStoreError::Permit(e) => e.message_zh(),
            PermitStoreError::NotFound(id) => format!("未找到动火作业证 {id}"),
            PermitStoreError::AlreadyExists(id) => format!("动火作业证 {id} 已存在"),
            PermitStoreError::Conflict(id) => {
                format!("动火作业证 {id} 在此期间已被修改，请重新读取")
            }
            PermitStoreError::InspectionUnsealed(e) => {
                format!("检查记录未签名或签名无效：{e}")
            }
        }
    }

    fn message_en(&self) -> String {
        match self {
            PermitStoreError::Store(e) => e.message_en(),
            PermitStoreError::Permit(e) => e.message_en(),
            _ => self.to_string(),
        }
    }
}

/// One saved life-cycle step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredPermitStep {
    /// UUIDv7; also the outbox idempotency key.
    pub id: String,
    pub permit_id: String,
    /// `draft` or the action's snake_case name.
    pub action: String,
    pub state: PermitState,
    /// SHA-256 of the permit after the step, hex.
    pub digest: String,
    pub created_at_ms: i64,
}

/// A stored inspection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredInspection {
    pub id: String,
    pub inspection: Inspection,
    pub created_at_ms: i64,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn invalid(e: impl std::fmt::Display) -> PermitStoreError {
    PermitStoreError::Store(StoreError::InvalidData(e.to_string()))
}

/// A stored permit row.
struct Row {
    permit_id: String,
    site_id: String,
    state: String,
    valid_from: i64,
    valid_until: i64,
    body: String,
    digest: Vec<u8>,
}

const PERMIT_COLUMNS: &str = "permit_id, site_id, state, valid_from, valid_until, body, digest";

fn row_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok(Row {
        permit_id: r.get(0)?,
        site_id: r.get(1)?,
        state: r.get(2)?,
        valid_from: r.get(3)?,
        valid_until: r.get(4)?,
        body: r.get(5)?,
        digest: r.get(6)?,
    })
}

/// Decode and check a stored row: the body parses, its digest and indexed columns agree, and the
/// signature chain verifies.
fn load_row(row: Row) -> Result<Permit, PermitStoreError> {
    let tampered = |reason: String| PermitStoreError::Tampered {
        permit_id: row.permit_id.clone(),
        reason,
    };
    let permit: Permit = serde_json::from_str(&row.body)
        .map_err(|e| tampered(format!("the stored body does not parse: {e}")))?;
    verify(&permit).map_err(|e| tampered(e.message_en()))?;
    if digest(&permit)?.as_slice() != row.digest.as_slice() {
        return Err(tampered(
            "the stored digest does not match the permit".into(),
        ));
    }
    let c = &permit.content;
    if c.permit_id != row.permit_id
        || c.site.site_id != row.site_id
        || state_name(permit.state) != row.state
        || c.valid_from != row.valid_from
        || c.valid_until != row.valid_until
    {
        return Err(tampered(
            "the indexed columns do not match the permit".into(),
        ));
    }
    Ok(permit)
}

/// Write the permit row, its welders and the step row inside `tx` (the outbox entry is in place).
fn write_permit_rows(
    tx: &Transaction<'_>,
    permit: &Permit,
    step: &StoredPermitStep,
    body: &str,
    digest_bytes: &[u8],
    created_at_ms: i64,
) -> Result<(), StoreError> {
    let c = &permit.content;
    tx.prepare_cached(
        "INSERT INTO permits (permit_id, site_id, state, valid_from, valid_until, body, digest, \
         last_step, updated_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
         ON CONFLICT (permit_id) DO UPDATE SET site_id = excluded.site_id, state = excluded.state, \
         valid_from = excluded.valid_from, valid_until = excluded.valid_until, body = excluded.body, \
         digest = excluded.digest, last_step = excluded.last_step, \
         updated_at_ms = excluded.updated_at_ms",
    )?
    .execute(params![
        c.permit_id,
        c.site.site_id,
        state_name(permit.state),
        c.valid_from,
        c.valid_until,
        body,
        digest_bytes,
        step.id,
        created_at_ms
    ])?;
    tx.prepare_cached("DELETE FROM permit_welders WHERE permit_id = ?1")?
        .execute(params![c.permit_id])?;
    for w in &c.welders {
        tx.prepare_cached(
            "INSERT OR IGNORE INTO permit_welders (certificate_no, permit_id) VALUES (?1, ?2)",
        )?
        .execute(params![w.id, c.permit_id])?;
    }
    tx.prepare_cached(
        "INSERT INTO permit_steps (id, permit_id, action, state, digest, created_at_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        step.id,
        c.permit_id,
        step.action,
        state_name(permit.state),
        digest_bytes,
        created_at_ms
    ])?;
    Ok(())
}

impl Store {
    /// Save a permit after a step. `previous` is the permit as loaded before the step (`None` for a
    /// new draft): the stored row must still be exactly that permit. The new permit must verify.
    /// `action` is `None` for the draft, else the step's kind. Returns the step saved.
    pub fn save_permit(
        &self,
        previous: Option<&Permit>,
        permit: &Permit,
        action: Option<ActionKind>,
        created_at_ms: i64,
    ) -> Result<StoredPermitStep, PermitStoreError> {
        verify(permit)?;
        let permit_id = permit.content.permit_id.clone();
        if let Some(prev) = previous
            && prev.content.permit_id != permit_id
        {
            return Err(invalid("the step changed the permit id"));
        }
        let expected = previous.map(digest).transpose()?;
        let digest_bytes = digest(permit)?;
        let body = serde_json::to_string(permit).map_err(invalid)?;
        let step = StoredPermitStep {
            id: new_record_id(created_at_ms)?,
            permit_id: permit_id.clone(),
            action: action.map_or("draft", action_name).to_owned(),
            state: permit.state,
            digest: hex(&digest_bytes),
            created_at_ms,
        };
        let payload = serde_json::to_string(&PermitStepRecord {
            step_id: step.id.clone(),
            permit_id: permit_id.clone(),
            action: step.action.clone(),
            state: permit.state,
            digest: step.digest.clone(),
            permit: permit.clone(),
        })
        .map_err(invalid)?;
        let mut refused: Option<PermitStoreError> = None;
        let result = self.write_record(
            RecordKind::PermitStep,
            &step.id,
            &payload,
            created_at_ms,
            |tx| {
                let stored: Option<Vec<u8>> = tx
                    .prepare_cached("SELECT digest FROM permits WHERE permit_id = ?1")?
                    .query_row(params![permit_id], |r| r.get(0))
                    .optional()?;
                match (&expected, stored) {
                    (None, None) => {}
                    (None, Some(_)) => {
                        refused = Some(PermitStoreError::AlreadyExists(permit_id.clone()));
                    }
                    (Some(_), None) => {
                        refused = Some(PermitStoreError::NotFound(permit_id.clone()));
                    }
                    (Some(want), Some(have)) if want.as_slice() != have.as_slice() => {
                        refused = Some(PermitStoreError::Conflict(permit_id.clone()));
                    }
                    (Some(_), Some(_)) => {}
                }
                if refused.is_some() {
                    // Abort the transaction; nothing is written.
                    return Err(StoreError::InvalidData("refused".into()));
                }
                write_permit_rows(tx, permit, &step, &body, &digest_bytes, created_at_ms)
            },
        );
        match (result, refused) {
            (_, Some(e)) => Err(e),
            (Err(e), None) => Err(e.into()),
            (Ok(()), None) => Ok(step),
        }
    }

    /// Load a permit, apply one action under the rules, and save the result with its step and
    /// outbox entry. Nothing changes when the action is refused.
    pub fn apply_permit_action(
        &self,
        permit_id: &str,
        ctx: &RuleContext<'_>,
        action: Action<'_>,
        created_at_ms: i64,
    ) -> Result<(Permit, StoredPermitStep), PermitStoreError> {
        let before = self
            .permit(permit_id)?
            .ok_or_else(|| PermitStoreError::NotFound(permit_id.to_owned()))?;
        let kind = action.kind();
        let mut after = before.clone();
        after.apply(ctx, action)?;
        let step = self.save_permit(Some(&before), &after, Some(kind), created_at_ms)?;
        Ok((after, step))
    }

    /// A permit by id, verified; `Tampered` when the stored row was altered.
    pub fn permit(&self, permit_id: &str) -> Result<Option<Permit>, PermitStoreError> {
        let row = {
            let conn = self.reader();
            conn.prepare_cached(&format!(
                "SELECT {PERMIT_COLUMNS} FROM permits WHERE permit_id = ?1"
            ))
            .map_err(StoreError::from)?
            .query_row(params![permit_id], row_of)
            .optional()
            .map_err(StoreError::from)?
        };
        row.map(load_row).transpose()
    }

    /// Every stored permit (in one state, or all), by permit id, each verified. A tampered row fails
    /// the whole listing with `Tampered`, naming it.
    pub fn permits(&self, state: Option<PermitState>) -> Result<Vec<Permit>, PermitStoreError> {
        let rows = {
            let conn = self.reader();
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {PERMIT_COLUMNS} FROM permits \
                     WHERE ?1 IS NULL OR state = ?1 ORDER BY permit_id"
                ))
                .map_err(StoreError::from)?;
            stmt.query_map(params![state.map(state_name)], row_of)
                .map_err(StoreError::from)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(StoreError::from)?
        };
        rows.into_iter().map(load_row).collect()
    }

    /// Every stored permit's id, state name and version digest, by permit id, unverified (cheap:
    /// what a sync compares before and after to name the permits the platform changed).
    pub fn permit_versions(&self) -> Result<Vec<(String, String, Vec<u8>)>, StoreError> {
        let conn = self.reader();
        let mut stmt =
            conn.prepare_cached("SELECT permit_id, state, digest FROM permits ORDER BY permit_id")?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// The saved steps of a permit, oldest first.
    pub fn permit_steps(&self, permit_id: &str) -> Result<Vec<StoredPermitStep>, PermitStoreError> {
        let conn = self.reader();
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, permit_id, action, state, digest, created_at_ms FROM permit_steps \
                 WHERE permit_id = ?1 ORDER BY created_at_ms, id",
            )
            .map_err(StoreError::from)?;
        let rows = stmt
            .query_map(params![permit_id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Vec<u8>>(4)?,
                    r.get::<_, i64>(5)?,
                ))
            })
            .map_err(StoreError::from)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(StoreError::from)?;
        rows.into_iter()
            .map(|(id, permit_id, action, state, d, created_at_ms)| {
                let state = PermitState::ALL
                    .into_iter()
                    .find(|s| state_name(*s) == state)
                    .ok_or_else(|| invalid(format!("unknown permit state {state:?}")))?;
                Ok(StoredPermitStep {
                    id,
                    permit_id,
                    action,
                    state,
                    digest: hex(&d),
                    created_at_ms,
                })
            })
            .collect()
    }

    /// The permit the start-work decision (扫码开机) should check for this welder at this site at
    /// time `at` (Unix seconds), or `None` when no live permit names them.
    ///
    /// Candidates are the stored permits for `site_id` that name `certificate_no` among their
    /// welders and are approved, active or suspended. Preferred, in order: one whose validity
    /// covers `at` and that is active, then approved, then any other candidate (latest validity
    /// first), so that the decision can say *why* it refuses (suspended, expired, not yet valid)
    /// rather than only "no permit". The permit returned is verified; a tampered row is an error
    /// (`Tampered`), which the caller must treat as a refusal. Pass the result to
    /// [`crate::permit::permit_findings`].
    pub fn permit_to_check(
        &self,
        site_id: &str,
        certificate_no: &str,
        at: i64,
    ) -> Result<Option<Permit>, PermitStoreError> {
        let row = {
            let conn = self.reader();
            conn.prepare_cached(
                "SELECT p.permit_id, p.site_id, p.state, p.valid_from, p.valid_until, p.body, \
                 p.digest FROM permit_welders w JOIN permits p ON p.permit_id = w.permit_id \
                 WHERE w.certificate_no = ?1 AND p.site_id = ?2 \
                 AND p.state IN ('approved', 'active', 'suspended') \
                 ORDER BY (p.valid_from <= ?3 AND ?3 < p.valid_until) DESC, \
                 (p.state = 'active') DESC, (p.state = 'approved') DESC, \
                 p.valid_until DESC, p.permit_id LIMIT 1",
            )
            .map_err(StoreError::from)?
            .query_row(params![certificate_no, site_id, at], row_of)
            .optional()
            .map_err(StoreError::from)?
        };
        row.map(load_row).transpose()
    }

    /// Save a sealed inspection and its outbox entry in one transaction, keyed by its id.
    pub fn record_inspection(
        &self,
        inspection: &Inspection,
        created_at_ms: i64,
    ) -> Result<StoredInspection, PermitStoreError> {
        if inspection.signature.is_none() {
            return Err(PermitStoreError::InspectionUnsealed("no seal".into()));
        }
        inspection
            .verify()
            .map_err(|e| PermitStoreError::InspectionUnsealed(e.message_en()))?;
        let b = &inspection.body;
        let body = serde_json::to_string(inspection).map_err(invalid)?;
        let violations = i64::try_from(b.violations.len()).map_err(invalid)?;
        self.write_record(
            RecordKind::Inspection,
            &b.inspection_id,
            &body,
            created_at_ms,
            |tx| {
                tx.prepare_cached(
                    "INSERT INTO inspections (id, site_id, permit_id, at, report_required, \
                     violations, body, created_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )?
                .execute(params![
                    b.inspection_id,
                    b.site_id,
                    b.permit.as_ref().map(|p| p.permit_id.as_str()),
                    b.at,
                    b.report_required,
                    violations,
                    body,
                    created_at_ms
                ])?;
                Ok(())
            },
        )?;
        Ok(StoredInspection {
            id: b.inspection_id.clone(),
            inspection: inspection.clone(),
            created_at_ms,
        })
    }

    /// Stored inspections, newest first, each seal verified (`InspectionUnsealed` when altered).
    pub fn inspections(&self, limit: usize) -> Result<Vec<StoredInspection>, PermitStoreError> {
        let rows = {
            let conn = self.reader();
            let mut stmt = conn
                .prepare_cached(
                    "SELECT id, body, created_at_ms FROM inspections \
                     ORDER BY at DESC, id DESC LIMIT ?1",
                )
                .map_err(StoreError::from)?;
            stmt.query_map(params![i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .map_err(StoreError::from)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(StoreError::from)?
        };
        rows.into_iter()
            .map(|(id, body, created_at_ms)| {
                let inspection: Inspection = serde_json::from_str(&body).map_err(invalid)?;
                inspection.verify().map_err(|e| {
                    PermitStoreError::InspectionUnsealed(format!("{id}: {}", e.message_en()))
                })?;
                if inspection.body.inspection_id != id {
                    return Err(PermitStoreError::InspectionUnsealed(format!(
                        "{id}: stored under another id"
                    )));
                }
                Ok(StoredInspection {
                    id,
                    inspection,
                    created_at_ms,
                })
            })
            .collect()
    }
}

/// Where one of the device's permit steps stands against the permit version held now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStanding {
    /// Its version is the permit held now or an earlier version of it.
    OnRecord,
    /// Its version is on a branch that lost (another device's step won on the platform).
    Superseded,
}

/// Whether `earlier` is `later` or a version `later` grew from (logs and signatures are prefixes).
fn is_ancestor(earlier: &Permit, later: &Permit) -> bool {
    later.events.starts_with(&earlier.events)
        && later.signatures.starts_with(&earlier.signatures)
        && later.gas_readings.starts_with(&earlier.gas_readings)
}

/// A platform head checked before it replaces a local row: it verifies and its record agrees.
fn check_head(head: &PermitStepRecord) -> Result<Vec<u8>, PermitStoreError> {
    verify(&head.permit)?;
    let d = digest(&head.permit)?;
    if head.permit_id != head.permit.content.permit_id
        || head.state != head.permit.state
        || hex(&d) != head.digest
    {
        return Err(invalid(format!(
            "the platform's version of permit {} does not match its id, state or digest",
            head.permit_id
        )));
    }
    Ok(d.to_vec())
}

impl Store {
    /// Apply one page of permit heads from the platform and store the feed's next cursor, in one
    /// transaction. Each head replaces the device's row for its permit, unless the device's latest
    /// step of that permit is still unanswered by the platform (pending or sent): then the row
    /// stays, and the platform hands the head out again once it answered that step. Returns how
    /// many rows changed.
    pub fn apply_permit_heads(
        &self,
        heads: &[PermitStepRecord],
        next: &super::SyncCursor,
        at_ms: i64,
    ) -> Result<u64, PermitStoreError> {
        let checked: Vec<(&PermitStepRecord, Vec<u8>)> = heads
            .iter()
            .map(|h| check_head(h).map(|d| (h, d)))
            .collect::<Result<_, _>>()?;
        let mut conn = self.writer();
        let tx = conn.transaction().map_err(StoreError::from)?;
        let mut changed = 0u64;
        for (head, digest_bytes) in checked {
            let c = &head.permit.content;
            let local: Option<(Vec<u8>, Option<String>)> = tx
                .prepare_cached(
                    "SELECT p.digest, o.state FROM permits p \
                     LEFT JOIN outbox o ON o.idempotency_key = p.last_step WHERE p.permit_id = ?1",
                )
                .map_err(StoreError::from)?
                .query_row(params![c.permit_id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
                .map_err(StoreError::from)?;
            match &local {
                Some((d, _)) if *d == digest_bytes => continue,
                Some((_, Some(state))) if state == "pending" || state == "sent" => continue,
                _ => {}
            }
            let body = serde_json::to_string(&head.permit).map_err(invalid)?;
            let payload = serde_json::to_string(head).map_err(invalid)?;
            tx.prepare_cached(
                "INSERT OR IGNORE INTO outbox (idempotency_key, kind, payload, created_at_ms, \
                 state, resolved_at_ms) VALUES (?1, ?2, ?3, ?4, 'applied', ?4)",
            )
            .map_err(StoreError::from)?
            .execute(params![
                head.step_id,
                RecordKind::PermitStep.as_str(),
                payload,
                at_ms
            ])
            .map_err(StoreError::from)?;
            tx.prepare_cached(
                "INSERT INTO permits (permit_id, site_id, state, valid_from, valid_until, body, \
                 digest, last_step, updated_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
                 ON CONFLICT (permit_id) DO UPDATE SET site_id = excluded.site_id, \
                 state = excluded.state, valid_from = excluded.valid_from, \
                 valid_until = excluded.valid_until, body = excluded.body, \
                 digest = excluded.digest, last_step = excluded.last_step, \
                 updated_at_ms = excluded.updated_at_ms",
            )
            .map_err(StoreError::from)?
            .execute(params![
                c.permit_id,
                c.site.site_id,
                state_name(head.permit.state),
                c.valid_from,
                c.valid_until,
                body,
                digest_bytes,
                head.step_id,
                at_ms
            ])
            .map_err(StoreError::from)?;
            tx.prepare_cached("DELETE FROM permit_welders WHERE permit_id = ?1")
                .map_err(StoreError::from)?
                .execute(params![c.permit_id])
                .map_err(StoreError::from)?;
            for w in &c.welders {
                tx.prepare_cached(
                    "INSERT OR IGNORE INTO permit_welders (certificate_no, permit_id) \
                     VALUES (?1, ?2)",
                )
                .map_err(StoreError::from)?
                .execute(params![w.id, c.permit_id])
                .map_err(StoreError::from)?;
            }
            tx.prepare_cached(
                "INSERT OR IGNORE INTO permit_steps (id, permit_id, action, state, digest, \
                 created_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .map_err(StoreError::from)?
            .execute(params![
                head.step_id,
                c.permit_id,
                head.action,
                state_name(head.permit.state),
                digest_bytes,
                at_ms
            ])
            .map_err(StoreError::from)?;
            changed += 1;
        }
        super::registry::store_cursor(&tx, next, at_ms).map_err(StoreError::from)?;
        tx.commit().map_err(StoreError::from)?;
        Ok(changed)
    }

    /// The permit's saved steps (oldest first) with their standing against the version held now:
    /// a step of the device's own that lost on the platform stays listed, as superseded.
    pub fn permit_step_standings(
        &self,
        permit_id: &str,
    ) -> Result<Vec<(StoredPermitStep, StepStanding)>, PermitStoreError> {
        let current = self
            .permit(permit_id)?
            .ok_or_else(|| PermitStoreError::NotFound(permit_id.to_owned()))?;
        let steps = self.permit_steps(permit_id)?;
        steps
            .into_iter()
            .map(|step| {
                let payload = self
                    .outbox_entry(&step.id)?
                    .map(|e| e.payload)
                    .ok_or_else(|| invalid(format!("step {} has no outbox entry", step.id)))?;
                let record: PermitStepRecord = serde_json::from_str(&payload).map_err(invalid)?;
                let standing = if is_ancestor(&record.permit, &current) {
                    StepStanding::OnRecord
                } else {
                    StepStanding::Superseded
                };
                Ok((step, standing))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
