//! The device's copy of the platform's signed revocation status list: the newest verified list (never
//! an older one: a replayed old list would un-revoke), its entries for lookups, and how old it is, which
//! the shells show ("revocation data from 3 h ago").

use rusqlite::{OptionalExtension, params};

use crate::codes::StatusList;

use super::registry::revocation_target_to_db;
use super::{Store, StoreError};

/// What the device holds of the status list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusListInfo {
    pub sequence: u64,
    /// When the platform issued it (Unix seconds).
    pub issued_at: i64,
    /// When this device last fetched and verified a list (milliseconds).
    pub fetched_at_ms: i64,
    pub signer_kid: String,
    pub entries: u64,
}

impl StatusListInfo {
    /// How old the revocation data is at `now` (Unix seconds): the time since the platform issued
    /// the list, never negative.
    pub fn age_secs(&self, now: i64) -> i64 {
        now.saturating_sub(self.issued_at).max(0)
    }
}

/// What saving a verified list did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusListSaved {
    /// A newer list replaced the old one (or the first one arrived).
    Replaced,
    /// The same sequence as held: only the fetch time moved.
    Unchanged,
    /// An older sequence than held: refused, nothing changed (a rollback attempt or a lagging replica).
    Older { held: u64 },
}

impl Store {
    /// Keep a list that [`crate::codes::verify_status_list`] accepted, with its signed bytes; the
    /// caller verified it. One transaction: the entries and the header change together.
    pub fn save_status_list(
        &self,
        list: &StatusList,
        signer_kid: &str,
        document: &[u8],
        fetched_at_ms: i64,
    ) -> Result<StatusListSaved, StoreError> {
        let sequence = i64::try_from(list.sequence)
            .map_err(|_| StoreError::InvalidData("status list sequence out of range".into()))?;
        let mut conn = self.writer();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let held: Option<i64> = tx
            .query_row("SELECT sequence FROM status_list", [], |r| r.get(0))
            .optional()?;
        let outcome = match held {
            Some(held) if held > sequence => StatusListSaved::Older {
                held: u64::try_from(held).unwrap_or(0),
            },
            Some(held) if held == sequence => {
                tx.execute("UPDATE status_list SET fetched_at_ms = ?1", [fetched_at_ms])?;
                StatusListSaved::Unchanged
            }
            _ => {
                tx.execute("DELETE FROM status_revocations", [])?;
                {
                    let mut insert = tx.prepare_cached(
                        "INSERT OR IGNORE INTO status_revocations (target, id) VALUES (?1, ?2)",
                    )?;
                    for entry in &list.entries {
                        insert.execute(params![revocation_target_to_db(entry.target), entry.id])?;
                    }
                }
                tx.execute(
                    "INSERT OR REPLACE INTO status_list \
                     (singleton, sequence, issued_at, signer_kid, fetched_at_ms, document) \
                     VALUES (1, ?1, ?2, ?3, ?4, ?5)",
                    params![
                        sequence,
                        list.issued_at,
                        signer_kid,
                        fetched_at_ms,
                        document
                    ],
                )?;
                StatusListSaved::Replaced
            }
        };
        tx.commit()?;
        Ok(outcome)
    }

    /// The status list held, if any was ever fetched.
    pub fn status_list_info(&self) -> Result<Option<StatusListInfo>, StoreError> {
        let conn = self.reader();
        let row = conn
            .query_row(
                "SELECT sequence, issued_at, fetched_at_ms, signer_kid, \
                 (SELECT count(*) FROM status_revocations) FROM status_list",
                [],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, i64>(4)?,
                    ))
                },
            )
            .optional()?;
        Ok(row.map(
            |(sequence, issued_at, fetched_at_ms, signer_kid, entries)| StatusListInfo {
                sequence: u64::try_from(sequence).unwrap_or(0),
                issued_at,
                fetched_at_ms,
                signer_kid,
                entries: u64::try_from(entries).unwrap_or(0),
            },
        ))
    }

    /// The signed bytes of the list held (for re-verification, e.g. after the trust store changed).
    pub fn status_list_document(&self) -> Result<Option<Vec<u8>>, StoreError> {
        let conn = self.reader();
        Ok(conn
            .query_row("SELECT document FROM status_list", [], |r| r.get(0))
            .optional()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Revocation, RevocationTarget};
    use crate::store::test_support::TempDir;

    fn list(sequence: u64, ids: &[&str]) -> StatusList {
        StatusList {
            sequence,
            issued_at: 1_764_374_400 + sequence as i64,
            entries: ids
                .iter()
                .map(|id| Revocation {
                    target: RevocationTarget::Licence,
                    id: (*id).to_owned(),
                })
                .collect(),
        }
    }

    #[test]
    fn newer_lists_replace_older_ones_are_refused_and_revocations_union_the_feed() {
        let dir = TempDir::new();
        let store = Store::open(dir.path().join("s.sqlite")).unwrap();
        assert_eq!(store.status_list_info().unwrap(), None);
        store
            .apply_registry_changes(
                [crate::store::RegistryChange::Revoke(Revocation {
                    target: RevocationTarget::Machine,
                    id: "M-1".into(),
                })],
                None,
                0,
            )
            .unwrap();
        let saved = store
            .save_status_list(&list(5, &["T1", "T2"]), "aa", b"doc5", 1_000)
            .unwrap();
        assert_eq!(saved, StatusListSaved::Replaced);
        assert_eq!(store.revocations().unwrap().len(), 3);

        let older = store
            .save_status_list(&list(4, &[]), "aa", b"doc4", 2_000)
            .unwrap();
        assert_eq!(older, StatusListSaved::Older { held: 5 });
        let info = store.status_list_info().unwrap().unwrap();
        assert_eq!(
            (info.sequence, info.entries, info.fetched_at_ms),
            (5, 2, 1_000)
        );
        assert_eq!(store.status_list_document().unwrap().unwrap(), b"doc5");

        let same = store
            .save_status_list(&list(5, &["T1", "T2"]), "aa", b"doc5", 3_000)
            .unwrap();
        assert_eq!(same, StatusListSaved::Unchanged);
        assert_eq!(
            store.status_list_info().unwrap().unwrap().fetched_at_ms,
            3_000
        );

        // A newer list that lifts T2 un-revokes it; the feed's machine revocation stays.
        store
            .save_status_list(&list(6, &["T1"]), "aa", b"doc6", 4_000)
            .unwrap();
        let ids: Vec<String> = store
            .revocations()
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        // Ordered by target name: licence before machine.
        assert_eq!(ids, vec!["T1".to_owned(), "M-1".to_owned()]);
        let info = store.status_list_info().unwrap().unwrap();
        assert_eq!(info.age_secs(info.issued_at + 7_200), 7_200);
        assert_eq!(info.age_secs(info.issued_at - 5), 0);
    }
}
