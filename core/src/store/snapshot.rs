//! Loading the platform's registry snapshot on a first sync (or a refetch), chunk by chunk and
//! resumable: which snapshot is being loaded and which chunk comes next live in the database, and each
//! chunk lands together with that progress in one transaction. The last chunk stores the feed cursor
//! the snapshot was cut at and removes the progress row, after which the device pulls changes as usual.

use rusqlite::{OptionalExtension, params};

use super::registry::store_cursor;
use super::{ChangeCounts, RegistryChange, Store, StoreError, SyncCursor};

/// A snapshot download under way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotProgress {
    pub snapshot_id: String,
    /// The signed manifest as received (re-verified before resuming).
    pub manifest: Vec<u8>,
    /// The next chunk to fetch and apply.
    pub next_chunk: u32,
}

impl Store {
    /// Start loading a snapshot: empty the registry cache, forget `feed`'s cursor and record the
    /// manifest, in one transaction. Records and the outbox are not touched.
    pub fn begin_snapshot(
        &self,
        feed: &str,
        snapshot_id: &str,
        manifest: &[u8],
        at_ms: i64,
    ) -> Result<(), StoreError> {
        let mut conn = self.writer();
        let tx = conn.transaction()?;
        tx.execute_batch(super::registry::CLEAR_REGISTRY_SQL)?;
        tx.execute("DELETE FROM sync_cursors WHERE feed = ?1", [feed])?;
        tx.execute(
            "INSERT OR REPLACE INTO snapshot_progress \
             (singleton, snapshot_id, manifest, next_chunk, started_at_ms) VALUES (1, ?1, ?2, 0, ?3)",
            params![snapshot_id, manifest, at_ms],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The snapshot download under way, if any.
    pub fn snapshot_progress(&self) -> Result<Option<SnapshotProgress>, StoreError> {
        let conn = self.reader();
        let row = conn
            .query_row(
                "SELECT snapshot_id, manifest, next_chunk FROM snapshot_progress",
                [],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, Vec<u8>>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                },
            )
            .optional()?;
        row.map(|(snapshot_id, manifest, next)| {
            Ok(SnapshotProgress {
                snapshot_id,
                manifest,
                next_chunk: u32::try_from(next)
                    .map_err(|_| StoreError::InvalidData(format!("snapshot chunk {next}")))?,
            })
        })
        .transpose()
    }

    /// Apply chunk `index` of snapshot `snapshot_id`, and move the progress on, in one transaction.
    /// With `final_cursor` (the last chunk) the feed cursor is stored and the progress row removed.
    /// A chunk that is not the one expected next is refused and changes nothing.
    pub fn apply_snapshot_chunk(
        &self,
        snapshot_id: &str,
        index: u32,
        changes: Vec<RegistryChange>,
        final_cursor: Option<&SyncCursor>,
        at_ms: i64,
    ) -> Result<ChangeCounts, StoreError> {
        self.apply_registry_batch(changes, |tx| {
            let expected: Option<(String, i64)> = tx
                .query_row(
                    "SELECT snapshot_id, next_chunk FROM snapshot_progress",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            if expected != Some((snapshot_id.to_owned(), i64::from(index))) {
                return Err(StoreError::NotFound(format!(
                    "snapshot {snapshot_id} chunk {index} is not the one expected next"
                )));
            }
            match final_cursor {
                Some(cursor) => {
                    store_cursor(tx, cursor, at_ms)?;
                    tx.execute("DELETE FROM snapshot_progress", [])?;
                }
                None => {
                    tx.execute(
                        "UPDATE snapshot_progress SET next_chunk = ?1",
                        [i64::from(index) + 1],
                    )?;
                }
            }
            Ok(())
        })
    }

    /// Give up a snapshot download (the platform no longer has it): the progress row goes; the
    /// partly loaded cache stays empty of a cursor, so the next sync starts over.
    pub fn abandon_snapshot(&self) -> Result<(), StoreError> {
        self.writer().execute("DELETE FROM snapshot_progress", [])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Binding;
    use crate::store::test_support::TempDir;

    fn bind(m: &str) -> RegistryChange {
        RegistryChange::Bind(Binding {
            machine_id: m.into(),
            certificate_no: "T1".into(),
        })
    }

    #[test]
    fn chunks_land_in_order_with_their_progress_and_the_last_stores_the_cursor() {
        let dir = TempDir::new();
        let store = Store::open(dir.path().join("s.sqlite")).unwrap();
        store
            .apply_registry_changes([bind("OLD")], None, 0)
            .unwrap();
        store
            .begin_snapshot("registry", "s1", b"manifest", 1)
            .unwrap();
        assert_eq!(store.registry_stats().unwrap().bindings, 0, "cache emptied");
        assert_eq!(store.snapshot_progress().unwrap().unwrap().next_chunk, 0);

        store
            .apply_snapshot_chunk("s1", 0, vec![bind("A")], None, 2)
            .unwrap();
        // A repeated chunk (a retry after a crash that did commit) or a skipped one is refused.
        for (id, index) in [("s1", 0), ("s1", 2), ("s2", 1)] {
            let err = store
                .apply_snapshot_chunk(id, index, vec![bind("X")], None, 3)
                .unwrap_err();
            assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
        }
        assert_eq!(store.registry_stats().unwrap().bindings, 1);
        let progress = store.snapshot_progress().unwrap().unwrap();
        assert_eq!(
            (progress.snapshot_id.as_str(), progress.next_chunk),
            ("s1", 1)
        );
        assert_eq!(progress.manifest, b"manifest");

        let cursor = SyncCursor {
            feed: "registry".into(),
            cursor: "e.100".into(),
        };
        store
            .apply_snapshot_chunk("s1", 1, vec![bind("B")], Some(&cursor), 4)
            .unwrap();
        assert_eq!(store.snapshot_progress().unwrap(), None);
        assert_eq!(store.sync_cursor("registry").unwrap().unwrap(), "e.100");
        assert_eq!(store.registry_stats().unwrap().bindings, 2);
    }

    #[test]
    fn abandoning_leaves_no_cursor_and_no_progress() {
        let dir = TempDir::new();
        let store = Store::open(dir.path().join("s.sqlite")).unwrap();
        store.begin_snapshot("registry", "s1", b"m", 1).unwrap();
        store
            .apply_snapshot_chunk("s1", 0, vec![bind("A")], None, 2)
            .unwrap();
        store.abandon_snapshot().unwrap();
        assert_eq!(store.snapshot_progress().unwrap(), None);
        assert_eq!(store.sync_cursor("registry").unwrap(), None);
    }
}
