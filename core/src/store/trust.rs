//! The profile's trust: the issuer keys (with their validity periods) the device verifies codes
//! and signed documents with, kept as one trust file (schema v5, table `trust_file`). What goes in
//! was decided by the application layer (the enrolment anchor, then keys a trusted key endorsed:
//! [`crate::codes::rotation`]); the store only keeps it, so trust is loaded when a profile opens.

use rusqlite::OptionalExtension;

use crate::codes::TrustStore;

use super::{Store, StoreError};

/// The trust file the profile holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedTrust {
    pub trust: TrustStore,
    /// When it was last saved (Unix milliseconds): enrolment, a shell's `set_trust`, or a sync
    /// that changed it.
    pub saved_at_ms: i64,
}

impl Store {
    /// Replace the profile's trust file with `trust`.
    pub fn save_trust(&self, trust: &TrustStore, saved_at_ms: i64) -> Result<(), StoreError> {
        let conn = self.writer();
        conn.execute(
            "INSERT OR REPLACE INTO trust_file (singleton, trust_json, fetched_at_ms) \
             VALUES (1, ?1, ?2)",
            rusqlite::params![trust.to_json(), saved_at_ms],
        )?;
        Ok(())
    }

    /// The profile's trust file; `None` before enrolment (or for a profile enrolled before schema
    /// v5 whose shell has not handed its trust in yet). A row that no longer parses is
    /// [`StoreError::InvalidData`].
    pub fn saved_trust(&self) -> Result<Option<SavedTrust>, StoreError> {
        let conn = self.reader();
        let row: Option<(String, i64)> = conn
            .query_row(
                "SELECT trust_json, fetched_at_ms FROM trust_file WHERE singleton = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        row.map(|(json, saved_at_ms)| {
            let trust = TrustStore::from_json(&json)
                .map_err(|e| StoreError::InvalidData(format!("saved trust file: {e}")))?;
            Ok(SavedTrust { trust, saved_at_ms })
        })
        .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes::{IssuerAlg, IssuerKey, TrustedKey};
    use crate::store::test_support::TempDir;

    fn store() -> (TempDir, Store) {
        let dir = TempDir::new();
        let store = Store::open(dir.path().join("p.sqlite")).unwrap();
        (dir, store)
    }

    #[test]
    fn trust_round_trips_and_survives_reopening() {
        let (dir, store) = store();
        assert_eq!(store.saved_trust().unwrap(), None);
        let mut trust = TrustStore::new();
        let key = IssuerKey::generate(IssuerAlg::EdDSA).unwrap();
        trust
            .add(TrustedKey::for_key(
                &key,
                1_700_000_000,
                Some(1_800_000_000),
            ))
            .unwrap();
        store.save_trust(&trust, 42).unwrap();
        let saved = store.saved_trust().unwrap().unwrap();
        assert_eq!(saved.trust, trust);
        assert_eq!(saved.saved_at_ms, 42);
        drop(store);
        let reopened = Store::open(dir.path().join("p.sqlite")).unwrap();
        assert_eq!(reopened.saved_trust().unwrap().unwrap().trust, trust);
        // Replaced, not added to.
        reopened.save_trust(&TrustStore::new(), 43).unwrap();
        assert!(
            reopened
                .saved_trust()
                .unwrap()
                .unwrap()
                .trust
                .keys()
                .is_empty()
        );
    }

    #[test]
    fn a_damaged_row_is_invalid_data() {
        let (_dir, store) = store();
        store
            .writer()
            .execute(
                "INSERT INTO trust_file (singleton, trust_json, fetched_at_ms) VALUES (1, '{', 1)",
                [],
            )
            .unwrap();
        assert!(matches!(
            store.saved_trust(),
            Err(StoreError::InvalidData(_))
        ));
    }
}
