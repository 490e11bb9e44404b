//! Numbered schema migrations, applied in one transaction when a database is opened.
//!
//! The version lives in `PRAGMA user_version`; `PRAGMA application_id` marks the file as WeldGuard's.
//! Each migration is a numbered SQL step (`schema/vN.sql`) that is never edited once shipped: a
//! frozen copy of each shipped version sits in `schema/frozen/`, and the tests build old files from
//! those copies and check that opening them upgrades to exactly the schema a fresh file gets.

use rusqlite::{Connection, TransactionBehavior};

use super::error::StoreError;

/// "WGD1": marks a SQLite file as a WeldGuard device database.
pub(crate) const APPLICATION_ID: i32 = 0x5747_4431;

/// One numbered schema step.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// The schema version this step produces (1, 2, …, without gaps).
    pub version: u32,
    pub description: &'static str,
    pub sql: &'static str,
}

/// Every migration, in order. Append only.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "registry cache, sync cursors, outbox, work sessions",
        sql: include_str!("schema/v1.sql"),
    },
    Migration {
        version: 2,
        description: "hot-work permits, their life-cycle steps, inspections",
        sql: include_str!("schema/v2.sql"),
    },
    Migration {
        version: 3,
        description: "signed revocation status list, snapshot download progress, work calendar",
        sql: include_str!("schema/v3.sql"),
    },
    Migration {
        version: 4,
        description: "signed signer directory (who may sign permits)",
        sql: include_str!("schema/v4.sql"),
    },
    Migration {
        version: 5,
        description: "the platform's trust file; the device's position at a scan-to-start",
        sql: include_str!("schema/v5.sql"),
    },
];

/// The schema version this build writes.
pub const CURRENT_VERSION: u32 = MIGRATIONS.len() as u32;

/// What the file header says, read without writing anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub version: u32,
    pub application_id: i32,
    pub object_count: i64,
}

/// Read the schema version and marks. Fails with `NotADatabase` for a file that is not SQLite.
pub(crate) fn read_header(conn: &Connection) -> Result<Header, StoreError> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let application_id: i32 = conn.query_row("PRAGMA application_id", [], |r| r.get(0))?;
    let object_count: i64 =
        conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))?;
    let version = u32::try_from(version)
        .map_err(|_| StoreError::NotADatabase(format!("schema version {version} is invalid")))?;
    Ok(Header {
        version,
        application_id,
        object_count,
    })
}

/// Refuse files this build must not touch: newer schemas and other applications' databases.
pub(crate) fn check_openable(header: Header, supported: u32) -> Result<(), StoreError> {
    if header.version > supported {
        return Err(StoreError::NewerSchema {
            found: header.version,
            supported,
        });
    }
    let empty = header.version == 0 && header.object_count == 0;
    if !empty && header.application_id != APPLICATION_ID {
        return Err(StoreError::NotADatabase(format!(
            "a SQLite database of another application (application_id {:#x})",
            header.application_id
        )));
    }
    Ok(())
}

/// Apply every migration newer than the file's version, all in one IMMEDIATE transaction, and return
/// the resulting version. On any failure the transaction rolls back and the file keeps its version.
pub(crate) fn migrate(conn: &mut Connection, migrations: &[Migration]) -> Result<u32, StoreError> {
    let target = migrations.last().map_or(0, |m| m.version);
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Read again under the write lock: another process may have migrated meanwhile.
    let header = read_header(&tx)?;
    check_openable(header, target)?;
    let mut version = header.version;
    for migration in migrations.iter().filter(|m| m.version > header.version) {
        if migration.version != version + 1 {
            return Err(StoreError::Migration {
                version: migration.version,
                reason: format!("migrations must be numbered without gaps (after {version})"),
            });
        }
        let fail = |e: rusqlite::Error| StoreError::Migration {
            version: migration.version,
            reason: e.to_string(),
        };
        tx.execute_batch(migration.sql).map_err(fail)?;
        tx.pragma_update(None, "user_version", migration.version)
            .map_err(fail)?;
        version = migration.version;
    }
    if header.application_id != APPLICATION_ID {
        tx.pragma_update(None, "application_id", APPLICATION_ID)?;
    }
    tx.commit()?;
    Ok(version)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::store::test_support::TempDir;

    /// Frozen snapshots of every shipped schema version, oldest first.
    const FROZEN: &[(u32, &str)] = &[
        (1, include_str!("schema/frozen/v1.sql")),
        (2, include_str!("schema/frozen/v2.sql")),
        (3, include_str!("schema/frozen/v3.sql")),
        (4, include_str!("schema/frozen/v4.sql")),
        (5, include_str!("schema/frozen/v5.sql")),
    ];

    /// The schema as SQLite stores it, normalised: (type, name, table, sql) sorted by name.
    fn schema_of(conn: &Connection) -> Vec<(String, String, String, String)> {
        let mut stmt = conn
            .prepare(
                "SELECT type, name, tbl_name, coalesce(sql, '') FROM sqlite_schema \
                 WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name",
            )
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .map(Result::unwrap)
            .map(|(t, n, tb, s): (String, String, String, String)| {
                (t, n, tb, s.split_whitespace().collect::<Vec<_>>().join(" "))
            })
            .collect()
    }

    fn fresh_schema(dir: &TempDir) -> Vec<(String, String, String, String)> {
        let path = dir.path().join("fresh.sqlite");
        drop(Store::open(&path).unwrap());
        schema_of(&Connection::open(&path).unwrap())
    }

    /// Build a file exactly as version `version` shipped it, from the frozen snapshot.
    fn frozen_file(dir: &TempDir, version: u32, sql: &str) -> std::path::PathBuf {
        let path = dir.path().join(format!("frozen-v{version}.sqlite"));
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(sql).unwrap();
        conn.pragma_update(None, "user_version", version).unwrap();
        conn.pragma_update(None, "application_id", APPLICATION_ID)
            .unwrap();
        path
    }

    #[test]
    fn migrations_are_numbered_without_gaps_and_every_shipped_version_is_frozen() {
        for (index, migration) in MIGRATIONS.iter().enumerate() {
            assert_eq!(migration.version as usize, index + 1);
        }
        assert_eq!(
            FROZEN.len(),
            MIGRATIONS.len(),
            "freeze every shipped version"
        );
        assert_eq!(CURRENT_VERSION, MIGRATIONS.len() as u32);
    }

    #[test]
    fn an_empty_file_migrates_to_the_current_version() {
        let dir = TempDir::new();
        let path = dir.path().join("empty.sqlite");
        std::fs::write(&path, b"").unwrap();
        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), CURRENT_VERSION);
        drop(store);
        let header = read_header(&Connection::open(&path).unwrap()).unwrap();
        assert_eq!(header.version, CURRENT_VERSION);
        assert_eq!(header.application_id, APPLICATION_ID);
    }

    #[test]
    fn the_last_frozen_snapshot_matches_what_the_migrations_build() {
        let dir = TempDir::new();
        let (version, sql) = FROZEN[FROZEN.len() - 1];
        let frozen = frozen_file(&dir, version, sql);
        assert_eq!(
            schema_of(&Connection::open(frozen).unwrap()),
            fresh_schema(&dir),
            "a shipped migration was edited; add a new numbered step instead"
        );
    }

    #[test]
    fn every_earlier_version_upgrades_to_the_fresh_schema_and_keeps_its_data() {
        let dir = TempDir::new();
        let fresh = fresh_schema(&dir);
        for &(version, sql) in FROZEN {
            let path = frozen_file(&dir, version, sql);
            {
                // Data every version has had since v1.
                let conn = Connection::open(&path).unwrap();
                conn.execute(
                    "INSERT INTO machines VALUES ('M-1', 'arc', 'mobile', 'ORG', 370983, 'active')",
                    [],
                )
                .unwrap();
            }
            let store = Store::open(&path).unwrap();
            assert_eq!(store.schema_version().unwrap(), CURRENT_VERSION);
            use crate::rules::registry::RegistryView;
            assert!(
                store.machine("M-1").unwrap().is_some(),
                "v{version} data lost"
            );
            drop(store);
            assert_eq!(schema_of(&Connection::open(&path).unwrap()), fresh);
        }
    }

    /// The framework itself, with a genuine second step that exists only in this test.
    const TEST_V2: Migration = Migration {
        version: 3,
        description: "test-only: machine notes",
        sql: "ALTER TABLE machines ADD COLUMN note TEXT; \
              UPDATE machines SET note = 'migrated';",
    };

    #[test]
    fn a_v1_file_upgrades_through_a_later_step() {
        let dir = TempDir::new();
        let path = frozen_file(&dir, 1, FROZEN[0].1);
        let mut conn = Connection::open(&path).unwrap();
        conn.execute(
            "INSERT INTO machines VALUES ('M-1', 'arc', 'mobile', 'ORG', 370983, 'active')",
            [],
        )
        .unwrap();
        let migrations = [MIGRATIONS[0], MIGRATIONS[1], TEST_V2];
        assert_eq!(migrate(&mut conn, &migrations).unwrap(), 3);
        let note: String = conn
            .query_row("SELECT note FROM machines", [], |r| r.get(0))
            .unwrap();
        assert_eq!(note, "migrated");
        assert_eq!(read_header(&conn).unwrap().version, 3);
        // Running again is a no-op.
        assert_eq!(migrate(&mut conn, &migrations).unwrap(), 3);
    }

    #[test]
    fn a_failing_step_rolls_back_every_step_of_the_run() {
        let dir = TempDir::new();
        let path = dir.path().join("fail.sqlite");
        let mut conn = Connection::open(&path).unwrap();
        let broken = Migration {
            version: 2,
            description: "test-only: broken",
            sql: "CREATE TABLE extra (x); INSERT INTO no_such_table VALUES (1);",
        };
        let err = migrate(&mut conn, &[MIGRATIONS[0], broken]).unwrap_err();
        assert!(
            matches!(err, StoreError::Migration { version: 2, .. }),
            "{err:?}"
        );
        let header = read_header(&conn).unwrap();
        assert_eq!(header.version, 0, "v1 must roll back with the failed v2");
        assert_eq!(header.object_count, 0);
    }

    #[test]
    fn a_gap_in_the_numbering_is_refused() {
        let dir = TempDir::new();
        let mut conn = Connection::open(dir.path().join("gap.sqlite")).unwrap();
        let v3 = Migration {
            version: 3,
            ..TEST_V2
        };
        let err = migrate(&mut conn, &[MIGRATIONS[0], v3]).unwrap_err();
        assert!(matches!(err, StoreError::Migration { version: 3, .. }));
        assert_eq!(read_header(&conn).unwrap().version, 0);
    }
}
