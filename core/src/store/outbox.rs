//! The outbox: one entry per record made on the device, pushed to the platform with its idempotency
//! key until the platform answers. Entries are listed in the order they were made; a pushed entry
//! without an answer stays unresolved and is pushed again under the same key.

use rusqlite::{OptionalExtension, Row, Transaction, params};
use serde::{Deserialize, Serialize};

use super::{Store, StoreError};

/// Where an outbox entry stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxState {
    /// Not pushed yet, or the last push failed.
    Pending,
    /// Pushed; no answer yet (it will be pushed again under the same key).
    Sent,
    /// The platform applied it (or already had it).
    Applied,
    /// The platform refused it; `last_error` says why. Not pushed again.
    Rejected,
}

impl OutboxState {
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxState::Pending => "pending",
            OutboxState::Sent => "sent",
            OutboxState::Applied => "applied",
            OutboxState::Rejected => "rejected",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "pending" => OutboxState::Pending,
            "sent" => OutboxState::Sent,
            "applied" => OutboxState::Applied,
            "rejected" => OutboxState::Rejected,
            _ => return None,
        })
    }
}

/// The platform's answer for one pushed entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboxResult {
    Applied,
    /// The platform had already applied this key: as good as applied.
    Duplicate,
    Rejected {
        reason: String,
    },
}

/// One outbox entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEntry {
    /// Position in the outbox (creation order).
    pub seq: i64,
    /// UUIDv7 made on the device; also the record's id.
    pub idempotency_key: String,
    /// The record kind, e.g. `work_session`.
    pub kind: String,
    /// The record as JSON.
    pub payload: String,
    pub created_at_ms: i64,
    pub state: OutboxState,
    /// Pushes that failed without an answer.
    pub attempts: u32,
    pub last_error: Option<String>,
    pub last_attempt_at_ms: Option<i64>,
    pub resolved_at_ms: Option<i64>,
}

/// How many entries are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxCounts {
    pub pending: u64,
    pub sent: u64,
    pub applied: u64,
    pub rejected: u64,
}

const COLUMNS: &str = "seq, idempotency_key, kind, payload, created_at_ms, state, attempts, \
                       last_error, last_attempt_at_ms, resolved_at_ms";

fn entry_from_row(row: &Row<'_>) -> rusqlite::Result<OutboxEntry> {
    let state: String = row.get(5)?;
    let state = OutboxState::parse(&state).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            5,
            rusqlite::types::Type::Text,
            format!("unknown outbox state {state:?}").into(),
        )
    })?;
    Ok(OutboxEntry {
        seq: row.get(0)?,
        idempotency_key: row.get(1)?,
        kind: row.get(2)?,
        payload: row.get(3)?,
        created_at_ms: row.get(4)?,
        state,
        attempts: row.get(6)?,
        last_error: row.get(7)?,
        last_attempt_at_ms: row.get(8)?,
        resolved_at_ms: row.get(9)?,
    })
}

/// Insert an outbox entry inside the caller's transaction (the record goes in the same one).
pub(crate) fn insert_entry(
    tx: &Transaction<'_>,
    key: &str,
    kind: &str,
    payload: &str,
    created_at_ms: i64,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO outbox (idempotency_key, kind, payload, created_at_ms) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![key, kind, payload, created_at_ms])?;
    Ok(())
}

fn limit_param(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

impl Store {
    /// Unresolved entries (pending, or sent without an answer), oldest first: what to push next.
    pub fn outbox_pending(&self, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM outbox WHERE state IN ('pending', 'sent') ORDER BY seq LIMIT ?1"
        ))?;
        let rows = stmt
            .query_map([limit_param(limit)], entry_from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Entries in one state (or all), oldest first.
    pub fn outbox_entries(
        &self,
        state: Option<OutboxState>,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM outbox WHERE ?1 IS NULL OR state = ?1 ORDER BY seq LIMIT ?2"
        ))?;
        let rows = stmt
            .query_map(
                params![state.map(OutboxState::as_str), limit_param(limit)],
                entry_from_row,
            )?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// The entry with this idempotency key.
    pub fn outbox_entry(&self, key: &str) -> Result<Option<OutboxEntry>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM outbox WHERE idempotency_key = ?1"
        ))?;
        Ok(stmt.query_row([key], entry_from_row).optional()?)
    }

    /// How many entries are in each state.
    pub fn outbox_counts(&self) -> Result<OutboxCounts, StoreError> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached("SELECT state, count(*) FROM outbox GROUP BY state")?;
        let mut counts = OutboxCounts::default();
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        for row in rows {
            let (state, n) = row?;
            let n = u64::try_from(n).unwrap_or(0);
            match OutboxState::parse(&state) {
                Some(OutboxState::Pending) => counts.pending = n,
                Some(OutboxState::Sent) => counts.sent = n,
                Some(OutboxState::Applied) => counts.applied = n,
                Some(OutboxState::Rejected) => counts.rejected = n,
                None => {
                    return Err(StoreError::InvalidData(format!(
                        "unknown outbox state {state:?}"
                    )));
                }
            }
        }
        Ok(counts)
    }

    /// These unresolved entries are being pushed now. Resolved entries are left as they are.
    pub fn outbox_mark_sent(&self, keys: &[&str], at_ms: i64) -> Result<(), StoreError> {
        self.outbox_update(keys, |tx, key| {
            tx.prepare_cached(
                "UPDATE outbox SET state = 'sent', last_attempt_at_ms = ?2 \
                 WHERE idempotency_key = ?1 AND state IN ('pending', 'sent')",
            )?
            .execute(params![key, at_ms])?;
            Ok(())
        })
    }

    /// A push of these entries failed without an answer (network, server error): count the attempt,
    /// keep the error, and leave them unresolved so they are pushed again.
    pub fn outbox_record_failure(
        &self,
        keys: &[&str],
        error: &str,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        self.outbox_update(keys, |tx, key| {
            tx.prepare_cached(
                "UPDATE outbox SET state = 'pending', attempts = attempts + 1, last_error = ?2, \
                 last_attempt_at_ms = ?3 \
                 WHERE idempotency_key = ?1 AND state IN ('pending', 'sent')",
            )?
            .execute(params![key, error, at_ms])?;
            Ok(())
        })
    }

    /// Store the platform's answers, all in one transaction. The first answer for an entry wins: an
    /// entry already resolved is left as it is.
    pub fn outbox_mark_results(
        &self,
        results: &[(&str, OutboxResult)],
        at_ms: i64,
    ) -> Result<(), StoreError> {
        let mut conn = self.writer();
        let tx = conn.transaction()?;
        for (key, result) in results {
            ensure_exists(&tx, key)?;
            let (state, error) = match result {
                OutboxResult::Applied | OutboxResult::Duplicate => ("applied", None),
                OutboxResult::Rejected { reason } => ("rejected", Some(reason.as_str())),
            };
            tx.prepare_cached(
                "UPDATE outbox SET state = ?2, last_error = coalesce(?3, last_error), \
                 resolved_at_ms = ?4 \
                 WHERE idempotency_key = ?1 AND state IN ('pending', 'sent')",
            )?
            .execute(params![key, state, error, at_ms])?;
        }
        tx.commit()?;
        Ok(())
    }

    fn outbox_update(
        &self,
        keys: &[&str],
        update: impl Fn(&Transaction<'_>, &str) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut conn = self.writer();
        let tx = conn.transaction()?;
        for key in keys {
            ensure_exists(&tx, key)?;
            update(&tx, key)?;
        }
        tx.commit()?;
        Ok(())
    }
}

fn ensure_exists(tx: &Transaction<'_>, key: &str) -> Result<(), StoreError> {
    let found = tx
        .prepare_cached("SELECT 1 FROM outbox WHERE idempotency_key = ?1")?
        .exists([key])?;
    if found {
        Ok(())
    } else {
        Err(StoreError::NotFound(format!("outbox entry {key}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::records::tests::session;
    use crate::store::test_support::TempDir;

    const T0: i64 = 1_764_374_400_000; // 2025-11-29T00:00:00Z

    fn store_with(n: usize) -> (TempDir, Store, Vec<String>) {
        let dir = TempDir::new();
        let store = Store::open(dir.path().join("db.sqlite")).unwrap();
        let ids = (0..n)
            .map(|i| {
                store
                    .record_work_session(session(&format!("M-{i}"), "T1"), T0 + i as i64)
                    .unwrap()
                    .id
            })
            .collect();
        (dir, store, ids)
    }

    #[test]
    fn pending_entries_come_in_creation_order() {
        let (_dir, store, ids) = store_with(5);
        let pending = store.outbox_pending(10).unwrap();
        let keys: Vec<_> = pending.iter().map(|e| e.idempotency_key.clone()).collect();
        assert_eq!(keys, ids);
        assert!(pending.iter().all(|e| e.kind == "work_session"));
        assert_eq!(store.outbox_pending(2).unwrap().len(), 2);
    }

    #[test]
    fn a_sent_entry_without_an_answer_stays_unresolved() {
        let (_dir, store, ids) = store_with(2);
        store.outbox_mark_sent(&[ids[0].as_str()], T0 + 10).unwrap();
        let pending = store.outbox_pending(10).unwrap();
        assert_eq!(pending.len(), 2);
        assert_eq!(pending[0].state, OutboxState::Sent);
        assert_eq!(pending[0].last_attempt_at_ms, Some(T0 + 10));
    }

    #[test]
    fn failures_count_attempts_and_keep_the_last_error() {
        let (_dir, store, ids) = store_with(1);
        let key = ids[0].as_str();
        store.outbox_mark_sent(&[key], T0 + 1).unwrap();
        store
            .outbox_record_failure(&[key], "timeout", T0 + 2)
            .unwrap();
        store
            .outbox_record_failure(&[key], "HTTP 503", T0 + 3)
            .unwrap();
        let entry = store.outbox_entry(key).unwrap().unwrap();
        assert_eq!(entry.state, OutboxState::Pending);
        assert_eq!(entry.attempts, 2);
        assert_eq!(entry.last_error.as_deref(), Some("HTTP 503"));
    }

    #[test]
    fn answers_resolve_entries_and_the_first_answer_wins() {
        let (_dir, store, ids) = store_with(3);
        store
            .outbox_mark_results(
                &[
                    (ids[0].as_str(), OutboxResult::Applied),
                    (ids[1].as_str(), OutboxResult::Duplicate),
                    (
                        ids[2].as_str(),
                        OutboxResult::Rejected {
                            reason: "machine unknown".into(),
                        },
                    ),
                ],
                T0 + 5,
            )
            .unwrap();
        assert!(store.outbox_pending(10).unwrap().is_empty());
        let rejected = store.outbox_entry(&ids[2]).unwrap().unwrap();
        assert_eq!(rejected.state, OutboxState::Rejected);
        assert_eq!(rejected.last_error.as_deref(), Some("machine unknown"));
        assert_eq!(rejected.resolved_at_ms, Some(T0 + 5));
        // A late contrary answer or failure changes nothing.
        store
            .outbox_mark_results(
                &[(
                    ids[0].as_str(),
                    OutboxResult::Rejected { reason: "x".into() },
                )],
                T0 + 6,
            )
            .unwrap();
        store
            .outbox_record_failure(&[ids[1].as_str()], "late", T0 + 7)
            .unwrap();
        assert_eq!(
            store.outbox_entry(&ids[0]).unwrap().unwrap().state,
            OutboxState::Applied
        );
        assert_eq!(store.outbox_entry(&ids[1]).unwrap().unwrap().attempts, 0);
        let counts = store.outbox_counts().unwrap();
        assert_eq!((counts.applied, counts.rejected, counts.pending), (2, 1, 0));
        assert_eq!(
            store
                .outbox_entries(Some(OutboxState::Applied), 10)
                .unwrap()
                .len(),
            2
        );
        assert_eq!(store.outbox_entries(None, 10).unwrap().len(), 3);
    }

    #[test]
    fn an_unknown_key_is_not_found_and_nothing_changes() {
        let (_dir, store, ids) = store_with(1);
        let err = store
            .outbox_mark_results(
                &[
                    (ids[0].as_str(), OutboxResult::Applied),
                    ("nope", OutboxResult::Applied),
                ],
                T0,
            )
            .unwrap_err();
        assert!(matches!(err, StoreError::NotFound(_)));
        assert_eq!(store.outbox_pending(10).unwrap().len(), 1, "rolled back");
    }
}
