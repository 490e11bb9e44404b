//! The device's SQLite database: registry cache, records made on the device and their outbox.
//!
//! One file per user profile ([`profile_db_path`]). A [`Store`] owns one writer connection and one
//! read-only connection (WAL lets them run side by side), each behind a mutex so the store can be
//! shared between threads. Opening a file applies the numbered migrations in [`schema`] in one
//! transaction; a file from a newer schema, another application's database or a non-SQLite file is
//! refused with a clear [`StoreError`] and left as it was.
//!
//! Durability: records the user has seen saved commit with `synchronous=FULL` (a power cut cannot lose
//! them); registry bulk loads use `NORMAL`, since they can be fetched again.

mod error;
pub mod import;
pub mod outbox;
pub mod permits;
pub mod records;
pub mod registry;
pub mod schema;
pub mod signer_directory;
pub mod snapshot;
pub mod status_list;
pub mod trust;

#[cfg(test)]
mod crash_tests;
#[cfg(any(test, feature = "test-support"))]
pub mod test_support;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

pub use error::StoreError;
pub use outbox::{OutboxEntry, OutboxResult, OutboxState};
pub use permits::{PermitStoreError, StepStanding, StoredInspection, StoredPermitStep};
pub use registry::{ChangeCounts, RegistryStats, SyncCursor};
// The shapes the platform stores too live in the shared model crate.
pub use snapshot::SnapshotProgress;
pub use status_list::{StatusListInfo, StatusListSaved};
pub use trust::SavedTrust;
pub use weldguard_model::records::{
    AnnouncedPeriod, CalendarDay, CalendarDayKind, NewWorkSession, PermitStepRecord, RecordKind,
    RegistryChange, ScanPosition, TrustedIssuerKey, WorkSession, work_calendar_of,
};

/// How long a connection waits for another process's lock before reporting `Busy`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Page cache of the writer (KiB, SQLite's negative form): enough for bulk loads, small for a phone.
const WRITER_CACHE_KIB: i64 = 16 * 1024;

/// The database file of one user profile under a data folder: `DIR/profiles/PROFILE/weldguard.sqlite`.
/// Profile names are 1–64 characters of ASCII letters, digits, `-`, `_` and `.` (not starting with `.`).
pub fn profile_db_path(data_dir: &Path, profile: &str) -> Result<PathBuf, StoreError> {
    let valid = !profile.is_empty()
        && profile.len() <= 64
        && !profile.starts_with('.')
        && profile
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !valid {
        return Err(StoreError::CannotOpen(format!(
            "invalid profile name {profile:?} (use letters, digits, '-', '_' or '.')"
        )));
    }
    Ok(data_dir
        .join("profiles")
        .join(profile)
        .join("weldguard.sqlite"))
}

/// The device database: one writer, one reader.
pub struct Store {
    path: PathBuf,
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Open (creating if missing) the database at `path` and bring its schema up to date.
    /// The folder must exist.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        if path.is_dir() {
            return Err(StoreError::CannotOpen(format!(
                "{} is a folder, not a database file",
                path.display()
            )));
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut writer =
            Connection::open_with_flags(&path, flags).map_err(|e| open_error(&path, e))?;
        writer.busy_timeout(BUSY_TIMEOUT)?;
        // Look before touching anything: switching to WAL or migrating writes to the file.
        let header = schema::read_header(&writer)?;
        schema::check_openable(header, schema::CURRENT_VERSION)?;

        let mode: String = writer.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::CannotOpen(format!(
                "the file system does not support write-ahead logging (journal mode {mode})"
            )));
        }
        writer.pragma_update(None, "foreign_keys", true)?;
        one_plan_per_statement(&writer)?;
        writer.pragma_update(None, "synchronous", "FULL")?;
        writer.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)?;
        schema::migrate(&mut writer, schema::MIGRATIONS)?;

        let reader = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| open_error(&path, e))?;
        reader.busy_timeout(BUSY_TIMEOUT)?;
        reader.pragma_update(None, "foreign_keys", true)?;
        one_plan_per_statement(&reader)?;
        Ok(Store {
            path,
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version of the open file.
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        Ok(schema::read_header(&self.reader())?.version)
    }

    /// `PRAGMA integrity_check`: `Ok(())` when SQLite answers "ok", else the problems it lists.
    pub fn integrity_check(&self) -> Result<(), StoreError> {
        let conn = self.writer();
        let mut stmt = conn.prepare("PRAGMA integrity_check")?;
        let lines = stmt
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        if lines.len() == 1 && lines.first().is_some_and(|l| l == "ok") {
            Ok(())
        } else {
            Err(StoreError::Corrupt(lines.join("; ")))
        }
    }

    /// Bytes on disk: the database file plus its write-ahead log.
    pub fn size_on_disk(&self) -> u64 {
        let mut wal = self.path.clone().into_os_string();
        wal.push("-wal");
        [self.path.as_os_str(), wal.as_os_str()]
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum()
    }

    /// Copy the write-ahead log into the database file (e.g. after a bulk load, before measuring size).
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        self.writer()
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }

    /// The writer connection. A poisoned lock is recovered: an unfinished transaction rolled back
    /// when its guard dropped, so the connection is in a clean state.
    fn writer(&self) -> MutexGuard<'_, Connection> {
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn reader(&self) -> MutexGuard<'_, Connection> {
        self.reader.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn open_error(path: &Path, error: rusqlite::Error) -> StoreError {
    match StoreError::from(error) {
        StoreError::CannotOpen(reason) => {
            StoreError::CannotOpen(format!("{}: {reason}", path.display()))
        }
        other => other,
    }
}

/// Keep one plan per statement, whatever values are bound (SQLite's query planner stability
/// guarantee). Without it SQLite marks a statement to be compiled again when a value its planner
/// looked at is bound, and rusqlite's cache clears the bindings of every statement it takes back:
/// each cached lookup was parsed and planned again on every call.
fn one_plan_per_statement(conn: &Connection) -> Result<(), StoreError> {
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::test_support::TempDir;
    use super::*;
    use crate::domain::Explain;

    #[test]
    fn the_store_can_be_shared_between_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<Store>();
        let dir = TempDir::new();
        let store = std::sync::Arc::new(Store::open(dir.path().join("db.sqlite")).unwrap());
        let writers: Vec<_> = (0..4)
            .map(|t| {
                let store = store.clone();
                std::thread::spawn(move || {
                    for i in 0..25 {
                        store
                            .record_work_session(
                                records::tests::session(&format!("M-{t}-{i}"), "T1"),
                                1_764_374_400_000 + i,
                            )
                            .unwrap();
                        store.outbox_pending(5).unwrap();
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        assert_eq!(store.outbox_counts().unwrap().pending, 100);
    }

    /// The start decision looks up the registry with new values each time. SQLite may mark a
    /// statement to be compiled again whenever a value is bound, and rusqlite clears the
    /// bindings of each statement it takes back into its cache: without the query planner
    /// stability guarantee every lookup was parsed and planned again.
    #[test]
    fn cached_lookups_are_not_compiled_again_for_new_values() {
        let dir = TempDir::new();
        let store = Store::open(dir.path().join("db.sqlite")).unwrap();
        for i in 0..5 {
            store.bound_machines(&format!("T{i}")).unwrap();
        }
        let conn = store.reader();
        let statement = conn
            .prepare_cached(
                "SELECT machine_id FROM bindings WHERE certificate_no = ?1 ORDER BY machine_id",
            )
            .unwrap();
        assert_eq!(
            statement.get_status(rusqlite::StatementStatus::RePrepare),
            0
        );
    }

    #[test]
    fn a_newer_schema_is_refused_and_the_file_left_untouched() {
        let dir = TempDir::new();
        let path = dir.path().join("newer.sqlite");
        drop(Store::open(&path).unwrap());
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch("CREATE TABLE from_the_future (x); PRAGMA user_version = 7;")
                .unwrap();
        }
        let before = std::fs::read(&path).unwrap();
        let err = Store::open(&path).unwrap_err();
        assert_eq!(
            err,
            StoreError::NewerSchema {
                found: 7,
                supported: schema::CURRENT_VERSION
            }
        );
        assert_eq!(err.code(), "store.newer_schema");
        assert!(err.message_zh().contains("升级应用"));
        assert_eq!(
            std::fs::read(&path).unwrap(),
            before,
            "file must be untouched"
        );
    }

    #[test]
    fn a_non_sqlite_file_gets_a_clear_error() {
        let dir = TempDir::new();
        let path = dir.path().join("garbage.sqlite");
        let garbage: Vec<u8> = (0..8192u32).map(|i| (i * 7919 % 251) as u8).collect();
        std::fs::write(&path, &garbage).unwrap();
        let err = Store::open(&path).unwrap_err();
        assert!(matches!(err, StoreError::NotADatabase(_)), "{err:?}");
        assert_eq!(err.code(), "store.not_a_database");
        assert_eq!(std::fs::read(&path).unwrap(), garbage);

        let text = dir.path().join("notes.txt");
        std::fs::write(&text, "licences\n张三,T370983199001011234\n").unwrap();
        assert!(matches!(
            Store::open(&text).unwrap_err(),
            StoreError::NotADatabase(_)
        ));
    }

    #[test]
    fn a_damaged_database_gets_a_clear_error_not_a_panic() {
        let dir = TempDir::new();
        let path = dir.path().join("damaged.sqlite");
        {
            let store = Store::open(&path).unwrap();
            for i in 0..300 {
                store
                    .record_work_session(
                        records::tests::session(&format!("M-{i}"), "T1"),
                        1_764_374_400_000 + i,
                    )
                    .unwrap();
            }
            store.checkpoint().unwrap();
        }
        // Keep the header (page 1 holds it and the schema), scribble over every later page.
        let mut bytes = std::fs::read(&path).unwrap();
        let page = 4096;
        assert!(bytes.len() > 3 * page, "need several pages");
        for (i, b) in bytes.iter_mut().enumerate().skip(page) {
            *b = (i * 31 % 256) as u8;
        }
        std::fs::write(&path, &bytes).unwrap();
        let outcome = Store::open(&path).and_then(|s| {
            s.integrity_check()?;
            s.outbox_pending(1000).map(|_| ())
        });
        let err = outcome.unwrap_err();
        assert!(
            matches!(err, StoreError::Corrupt(_) | StoreError::NotADatabase(_)),
            "{err:?}"
        );
    }

    #[test]
    fn another_applications_database_is_refused() {
        let dir = TempDir::new();
        let path = dir.path().join("other.sqlite");
        Connection::open(&path)
            .unwrap()
            .execute_batch("CREATE TABLE contacts (name TEXT);")
            .unwrap();
        let err = Store::open(&path).unwrap_err();
        assert!(matches!(err, StoreError::NotADatabase(_)), "{err:?}");
    }

    #[test]
    fn a_folder_or_missing_parent_cannot_be_opened() {
        let dir = TempDir::new();
        assert!(matches!(
            Store::open(dir.path()).unwrap_err(),
            StoreError::CannotOpen(_)
        ));
        assert!(matches!(
            Store::open(dir.path().join("no/such/dir/db.sqlite")).unwrap_err(),
            StoreError::CannotOpen(_)
        ));
    }

    #[test]
    fn profile_paths_are_one_file_per_profile_and_names_are_checked() {
        let base = Path::new("/data");
        assert_eq!(
            profile_db_path(base, "inspector-2").unwrap(),
            Path::new("/data/profiles/inspector-2/weldguard.sqlite")
        );
        for bad in ["", "..", "../x", "a/b", ".hidden", "名字"] {
            assert!(profile_db_path(base, bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_store_runs_in_wal_mode_with_foreign_keys() {
        let dir = TempDir::new();
        let store = Store::open(dir.path().join("db.sqlite")).unwrap();
        let conn = store.writer();
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let fk: i64 = conn
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .unwrap();
        assert_eq!(fk, 1);
        let sync: i64 = conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(sync, 2, "FULL");
    }
}
