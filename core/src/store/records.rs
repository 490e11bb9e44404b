//! Records made on the device. Each write puts the record and its outbox entry in one transaction
//! (committed with `synchronous=FULL`), so a record never exists without its entry or the other way
//! round; the record's id is the entry's idempotency key, a UUIDv7 made on the device from the
//! creation time passed in. Work sessions now; permits and inspections add a [`RecordKind`] and a
//! table, and write through the same [`Store::write_record`].

use rusqlite::{OptionalExtension, Row, Transaction, params};

pub use weldguard_model::records::{NewWorkSession, RecordKind, ScanPosition, WorkSession};

use super::outbox::insert_entry;
use super::{Store, StoreError};

/// A new UUIDv7 for the given creation time (its random part from the OS).
pub fn new_record_id(created_at_ms: i64) -> Result<String, StoreError> {
    let millis = u64::try_from(created_at_ms).map_err(|_| {
        StoreError::InvalidData(format!("creation time {created_at_ms} is before 1970"))
    })?;
    let mut random = [0u8; 10];
    getrandom::fill(&mut random).map_err(|e| StoreError::Random(e.to_string()))?;
    Ok(uuid::Builder::from_unix_timestamp_millis(millis, &random)
        .into_uuid()
        .to_string())
}

fn session_from_row(row: &Row<'_>) -> rusqlite::Result<WorkSession> {
    let reasons: String = row.get(5)?;
    let reason_codes = serde_json::from_str(&reasons).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(5, rusqlite::types::Type::Text, Box::new(e))
    })?;
    let position = match (
        row.get::<_, Option<i32>>(8)?,
        row.get::<_, Option<i32>>(9)?,
        row.get::<_, Option<u32>>(10)?,
    ) {
        (Some(latitude_e7), Some(longitude_e7), Some(accuracy_m)) => Some(ScanPosition {
            latitude_e7,
            longitude_e7,
            accuracy_m,
        }),
        _ => None,
    };
    Ok(WorkSession {
        id: row.get(0)?,
        machine_id: row.get(1)?,
        certificate_no: row.get(2)?,
        started_at_ms: row.get(3)?,
        allowed: row.get(4)?,
        reason_codes,
        permit_id: row.get(6)?,
        created_at_ms: row.get(7)?,
        position,
    })
}

const SESSION_COLUMNS: &str = "id, machine_id, certificate_no, started_at_ms, allowed, reason_codes, permit_id, created_at_ms, latitude_e7, longitude_e7, accuracy_m";

impl Store {
    /// Write one record and its outbox entry in one durable transaction. `insert` writes the
    /// record's own rows (the outbox row, its foreign-key parent, is already in place).
    pub fn write_record(
        &self,
        kind: RecordKind,
        id: &str,
        payload: &str,
        created_at_ms: i64,
        insert: impl FnOnce(&Transaction<'_>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut conn = self.writer();
        // The writer's standing setting is FULL; bulk loads lower it only for their own transaction.
        let tx = conn.transaction()?;
        insert_entry(&tx, id, kind.as_str(), payload, created_at_ms)?;
        insert(&tx)?;
        tx.commit()?;
        Ok(())
    }

    /// Record a work session; returns it with its new id.
    pub fn record_work_session(
        &self,
        new: NewWorkSession,
        created_at_ms: i64,
    ) -> Result<WorkSession, StoreError> {
        let session = WorkSession {
            id: new_record_id(created_at_ms)?,
            machine_id: new.machine_id,
            certificate_no: new.certificate_no,
            started_at_ms: new.started_at_ms,
            allowed: new.allowed,
            reason_codes: new.reason_codes,
            permit_id: new.permit_id,
            created_at_ms,
            position: new.position,
        };
        if session.position.is_some_and(|p| !p.in_range()) {
            return Err(StoreError::InvalidData(format!(
                "scan position out of range: {:?}",
                session.position
            )));
        }
        let payload =
            serde_json::to_string(&session).map_err(|e| StoreError::InvalidData(e.to_string()))?;
        let reasons = serde_json::to_string(&session.reason_codes)
            .map_err(|e| StoreError::InvalidData(e.to_string()))?;
        self.write_record(
            RecordKind::WorkSession,
            &session.id,
            &payload,
            created_at_ms,
            |tx| {
                tx.prepare_cached(&format!(
                    "INSERT INTO work_sessions ({SESSION_COLUMNS}) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
                ))?
                .execute(params![
                    session.id,
                    session.machine_id,
                    session.certificate_no,
                    session.started_at_ms,
                    session.allowed,
                    reasons,
                    session.permit_id,
                    session.created_at_ms,
                    session.position.map(|p| p.latitude_e7),
                    session.position.map(|p| p.longitude_e7),
                    session.position.map(|p| p.accuracy_m)
                ])?;
                Ok(())
            },
        )?;
        Ok(session)
    }

    /// The work session with this id.
    pub fn work_session(&self, id: &str) -> Result<Option<WorkSession>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {SESSION_COLUMNS} FROM work_sessions WHERE id = ?1"
        ))?;
        Ok(stmt.query_row([id], session_from_row).optional()?)
    }

    /// The most recent work sessions, newest first.
    pub fn recent_work_sessions(&self, limit: usize) -> Result<Vec<WorkSession>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {SESSION_COLUMNS} FROM work_sessions ORDER BY created_at_ms DESC, id DESC LIMIT ?1"
        ))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt
            .query_map([limit], session_from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Work sessions newest first (in the order they were recorded), each with its outbox position
    /// (`seq`) and outbox state, starting after the one at `before_seq` (a page's cursor).
    pub fn work_sessions_page(
        &self,
        before_seq: Option<i64>,
        limit: usize,
    ) -> Result<Vec<(i64, WorkSession, super::OutboxState)>, StoreError> {
        let conn = self.reader();
        let columns = SESSION_COLUMNS
            .split(", ")
            .map(|c| format!("w.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {columns}, o.seq, o.state FROM work_sessions w \
             JOIN outbox o ON o.idempotency_key = w.id \
             WHERE ?1 IS NULL OR o.seq < ?1 ORDER BY o.seq DESC LIMIT ?2"
        ))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt
            .query_map(rusqlite::params![before_seq, limit], |row| {
                let state: String = row.get(12)?;
                let state = super::OutboxState::parse(&state).ok_or_else(|| {
                    rusqlite::Error::FromSqlConversionFailure(
                        12,
                        rusqlite::types::Type::Text,
                        format!("unknown outbox state {state:?}").into(),
                    )
                })?;
                Ok((row.get(11)?, session_from_row(row)?, state))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::store::test_support::TempDir;

    const T0: i64 = 1_764_374_400_000;

    pub(crate) fn session(machine_id: &str, certificate_no: &str) -> NewWorkSession {
        NewWorkSession {
            machine_id: machine_id.to_owned(),
            certificate_no: certificate_no.to_owned(),
            started_at_ms: T0,
            allowed: false,
            reason_codes: vec!["licence.expired".to_owned(), "machine.not_bound".to_owned()],
            permit_id: Some("P-2025-0001".to_owned()),
            position: None,
        }
    }

    #[test]
    fn a_work_session_is_written_with_exactly_one_outbox_entry() {
        let dir = TempDir::new();
        let store = Store::open(dir.path().join("db.sqlite")).unwrap();
        let saved = store
            .record_work_session(session("M-370983-0001", "T370983199001011237"), T0 + 5)
            .unwrap();
        assert_eq!(
            store.work_session(&saved.id).unwrap().as_ref(),
            Some(&saved)
        );
        let entry = store.outbox_entry(&saved.id).unwrap().unwrap();
        assert_eq!(entry.kind, "work_session");
        assert_eq!(entry.created_at_ms, T0 + 5);
        let payload: WorkSession = serde_json::from_str(&entry.payload).unwrap();
        assert_eq!(payload, saved);
        assert_eq!(store.recent_work_sessions(10).unwrap(), vec![saved]);
    }

    #[test]
    fn a_position_is_kept_and_absent_from_the_payload_when_none() {
        let dir = TempDir::new();
        let store = Store::open(dir.path().join("db.sqlite")).unwrap();
        let plain = store
            .record_work_session(session("M-1", "T1"), T0 + 1)
            .unwrap();
        let payload = store.outbox_entry(&plain.id).unwrap().unwrap().payload;
        assert!(!payload.contains("position"), "{payload}");
        let mut new = session("M-1", "T1");
        new.position = Some(ScanPosition {
            latitude_e7: 361_820_000,
            longitude_e7: 1_167_720_000,
            accuracy_m: 12,
        });
        let placed = store.record_work_session(new.clone(), T0 + 2).unwrap();
        assert_eq!(placed.position, new.position);
        assert_eq!(
            store.work_session(&placed.id).unwrap(),
            Some(placed.clone())
        );
        let payload = store.outbox_entry(&placed.id).unwrap().unwrap().payload;
        let read: WorkSession = serde_json::from_str(&payload).unwrap();
        assert_eq!(read, placed);
        // Out of range: refused, nothing written.
        new.position = Some(ScanPosition {
            latitude_e7: 900_000_001,
            longitude_e7: 0,
            accuracy_m: 1,
        });
        assert!(store.record_work_session(new, T0 + 3).is_err());
        assert_eq!(store.outbox_counts().unwrap().pending, 2);
        let page = store.work_sessions_page(None, 10).unwrap();
        let ids: Vec<_> = page.iter().map(|(_, s, _)| s.id.clone()).collect();
        assert_eq!(ids, vec![placed.id, plain.id.clone()]);
        let next = store.work_sessions_page(Some(page[0].0), 10).unwrap();
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].1.id, plain.id);
    }

    #[test]
    fn ids_are_uuid_v7_carrying_the_creation_time() {
        let id = new_record_id(T0).unwrap();
        let uuid = uuid::Uuid::parse_str(&id).unwrap();
        assert_eq!(uuid.get_version_num(), 7);
        let (secs, _) = uuid.get_timestamp().unwrap().to_unix();
        assert_eq!(secs as i64 * 1000, T0);
        assert_ne!(new_record_id(T0).unwrap(), id);
        assert!(new_record_id(-1).is_err());
    }

    #[test]
    fn a_failing_record_insert_leaves_no_outbox_entry() {
        let dir = TempDir::new();
        let store = Store::open(dir.path().join("db.sqlite")).unwrap();
        let err = store
            .write_record(RecordKind::WorkSession, "k-1", "{}", T0, |_| {
                Err(StoreError::InvalidData("refused".into()))
            })
            .unwrap_err();
        assert_eq!(err, StoreError::InvalidData("refused".into()));
        assert!(store.outbox_entry("k-1").unwrap().is_none());
    }

    #[test]
    fn a_record_without_an_outbox_entry_is_refused_by_the_schema() {
        let dir = TempDir::new();
        let store = Store::open(dir.path().join("db.sqlite")).unwrap();
        let conn = store.writer();
        let result = conn.execute(
            "INSERT INTO work_sessions VALUES ('orphan', 'M', 'T', 0, 1, '[]', NULL, 0)",
            [],
        );
        assert!(result.is_err(), "foreign key must refuse an orphan record");
    }
}
