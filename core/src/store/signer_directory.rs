//! The device's copy of the platform's signed signer directory ([`crate::signers`]): the newest
//! verified one (never an older one: a replayed old directory would bring back a disabled key),
//! kept with its signed bytes; what the device checks permit signers against offline.

use rusqlite::{OptionalExtension, params};

use crate::signers::{SignerDirectory, SignerEntry};

use super::status_list::StatusListSaved;
use super::{Store, StoreError};

impl Store {
    /// Keep a directory that [`crate::signers::verify_directory`] accepted, with its signed bytes;
    /// an older sequence than the one held changes nothing.
    pub fn save_signer_directory(
        &self,
        directory: &SignerDirectory,
        document: &[u8],
        fetched_at_ms: i64,
    ) -> Result<StatusListSaved, StoreError> {
        let sequence = i64::try_from(directory.sequence)
            .map_err(|_| StoreError::InvalidData("directory sequence out of range".into()))?;
        let entries = serde_json::to_string(&directory.entries)
            .map_err(|e| StoreError::InvalidData(e.to_string()))?;
        let mut conn = self.writer();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let held: Option<i64> = tx
            .query_row("SELECT sequence FROM signer_directory", [], |r| r.get(0))
            .optional()?;
        let outcome = match held {
            Some(held) if held > sequence => StatusListSaved::Older {
                held: u64::try_from(held).unwrap_or(0),
            },
            Some(held) if held == sequence => {
                tx.execute(
                    "UPDATE signer_directory SET fetched_at_ms = ?1",
                    [fetched_at_ms],
                )?;
                StatusListSaved::Unchanged
            }
            _ => {
                tx.execute(
                    "INSERT OR REPLACE INTO signer_directory \
                     (singleton, sequence, issued_at, fetched_at_ms, entries_json, document) \
                     VALUES (1, ?1, ?2, ?3, ?4, ?5)",
                    params![
                        sequence,
                        directory.issued_at,
                        fetched_at_ms,
                        entries,
                        document
                    ],
                )?;
                StatusListSaved::Replaced
            }
        };
        tx.commit()?;
        Ok(outcome)
    }

    /// The directory held, if one was ever fetched.
    pub fn signer_directory(&self) -> Result<Option<SignerDirectory>, StoreError> {
        let conn = self.reader();
        let row = conn
            .query_row(
                "SELECT sequence, issued_at, entries_json FROM signer_directory",
                [],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                },
            )
            .optional()?;
        row.map(|(sequence, issued_at, json)| {
            let entries: Vec<SignerEntry> = serde_json::from_str(&json)
                .map_err(|e| StoreError::Corrupt(format!("signer directory: {e}")))?;
            Ok(SignerDirectory::new(
                u64::try_from(sequence).unwrap_or(0),
                issued_at,
                entries,
            ))
        })
        .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes::signer::{DeviceSigner, SoftwareSigner};
    use crate::store::test_support::TempDir;

    fn directory(sequence: u64, person: &str) -> SignerDirectory {
        let key = SoftwareSigner::generate().unwrap();
        SignerDirectory::new(
            sequence,
            1_000,
            vec![SignerEntry {
                public_key: key.public_key(),
                person_id: person.into(),
                name: "孙七".into(),
                roles: vec!["supervisor".into()],
                device_id: "dev-1".into(),
                valid_from: 0,
                valid_until: None,
            }],
        )
    }

    #[test]
    fn a_newer_directory_replaces_and_an_older_one_is_refused() {
        let dir = TempDir::new();
        let store = Store::open(dir.path().join("d.sqlite")).unwrap();
        assert_eq!(store.signer_directory().unwrap(), None);
        let second = directory(2, "S-002");
        assert_eq!(
            store.save_signer_directory(&second, b"doc2", 10).unwrap(),
            StatusListSaved::Replaced
        );
        assert_eq!(
            store
                .save_signer_directory(&directory(1, "S-001"), b"doc1", 11)
                .unwrap(),
            StatusListSaved::Older { held: 2 }
        );
        assert_eq!(store.signer_directory().unwrap(), Some(second.clone()));
        assert_eq!(
            store.save_signer_directory(&second, b"doc2", 12).unwrap(),
            StatusListSaved::Unchanged
        );
        let third = directory(3, "S-003");
        store.save_signer_directory(&third, b"doc3", 13).unwrap();
        assert_eq!(store.signer_directory().unwrap(), Some(third));
    }
}
