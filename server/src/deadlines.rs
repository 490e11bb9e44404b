//! The deadline queue (#19, docs/adr/0017-warnings-and-scope.md): warnings that fall due when
//! time passes with no record arriving (a work session still open after H hours, a completed
//! permit whose post-work watch was never closed, a start naming a permit that never arrived, a
//! licence coming within its expiry window).
//!
//! A push that makes such a condition writes a row `(due_at_ms, kind, payload)` in its own
//! transaction ([`crate::db::PushTx::schedule`], once per `dedup_key`); so does a registry write
//! ([`crate::db::Db::write_changes`]). A worker task in each server process ([`spawn`]) wakes
//! every `--deadline-poll-ms`, takes the rows due
//! ([`crate::db::Store::run_due`]: `FOR UPDATE SKIP LOCKED` on PostgreSQL, `BEGIN IMMEDIATE` on
//! SQLite), checks whether each condition still holds ([`crate::work_rules::on_due`]), raises
//! the warning with the usual `dedup_key`, and deletes the rows, all in one transaction: a row is
//! handled once even with several server processes on one database. Only due rows are read;
//! history is never rescanned.

use std::sync::Arc;
use std::time::Duration;

use crate::db::{Db, DbError, now_ms};
use crate::publish::Publisher;

/// Most rows one transaction takes.
pub const BATCH: u32 = 200;

/// A condition to check when it falls due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDeadline {
    /// Unique: the kind of check and the record that made it.
    pub dedup_key: String,
    /// Which check ([`crate::work_rules::DUE_SESSION`], …).
    pub kind: String,
    pub due_at_ms: i64,
    /// JSON: what the check needs.
    pub payload: String,
}

/// A queued row taken by the worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueRow {
    pub id: i64,
    pub dedup_key: String,
    pub kind: String,
    pub due_at_ms: i64,
    pub payload: String,
}

/// Take and check every row due at `now_ms`, a batch per transaction, until none is left (or a
/// batch fails: its rows stay queued for the next round). Returns how many rows were handled.
pub fn drain(db: &Db, publisher: &Publisher, now_ms: i64) -> Result<usize, DbError> {
    let config = *db.warning_config();
    // The work calendar as the feed holds it now (the special-period rule of a start whose
    // permit arrived late is judged on it).
    let registry = publisher
        .registry_facts(db)
        .map_err(|e| DbError::Invalid(e.to_string()))?;
    let mut handled = 0;
    loop {
        let n = db.run_due(now_ms, BATCH, &mut |tx, rows| {
            crate::work_rules::on_due(tx, &config, &registry, rows, now_ms)
        })?;
        handled += n;
        if n < BATCH as usize {
            return Ok(handled);
        }
    }
}

/// Start the worker of this process on the current tokio runtime (nothing when warnings are
/// off). It first runs one poll interval after the start.
pub fn spawn(db: Arc<Db>, publisher: Arc<Publisher>) {
    let config = *db.warning_config();
    if !config.enabled {
        return;
    }
    let every = Duration::from_millis(config.deadline_poll_ms.max(1));
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let (db, publisher) = (db.clone(), publisher.clone());
            match tokio::task::spawn_blocking(move || drain(&db, &publisher, now_ms())).await {
                Ok(Ok(0)) => {}
                Ok(Ok(n)) => tracing::debug!(rows = n, "deadlines checked"),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "deadline check failed; retried next round")
                }
                Err(e) => tracing::warn!(error = %e, "deadline worker task failed"),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::test_support::TestDatabase;

    fn queue(db: &Db, key: &str, due: &[(&str, i64)]) {
        db.insert_plain_records("d1", &[(key, "inspection", "{}")], &mut |tx, _| {
            for (name, at) in due {
                tx.schedule(&NewDeadline {
                    dedup_key: (*name).to_owned(),
                    kind: "test".into(),
                    due_at_ms: *at,
                    payload: format!("{{\"name\":\"{name}\"}}"),
                })?;
            }
            Ok(())
        })
        .unwrap();
    }

    fn take(db: &Db, now_ms: i64, limit: u32) -> Vec<String> {
        let mut seen = Vec::new();
        db.run_due(now_ms, limit, &mut |_, rows| {
            seen.extend(rows.iter().map(|r| r.dedup_key.clone()));
            Ok(())
        })
        .unwrap();
        seen
    }

    /// Rows come due in order, each once; a row queued again under its key changes nothing; a
    /// failing check leaves its rows queued.
    fn rows_are_taken_once_when_due(db: &Db) {
        queue(db, "k1", &[("b", 2_000), ("a", 1_000), ("later", 9_000)]);
        queue(db, "k2", &[("a", 5_000), ("c", 3_000)]);
        assert_eq!(db.deadlines_queued().unwrap(), 4);
        assert!(take(db, 999, 10).is_empty());
        assert_eq!(
            take(db, 3_000, 2),
            ["a", "b"],
            "earliest first, at most the limit"
        );
        let failed = db.run_due(3_000, 10, &mut |_, rows| {
            assert_eq!(rows.len(), 1);
            Err(DbError::Invalid("check failed".into()))
        });
        assert!(failed.is_err());
        assert_eq!(db.deadlines_queued().unwrap(), 2, "the failed batch stays");
        assert_eq!(take(db, 3_000, 10), ["c"]);
        assert!(take(db, 3_000, 10).is_empty());
        assert_eq!(take(db, 10_000, 10), ["later"]);
        assert_eq!(db.deadlines_queued().unwrap(), 0);
    }

    #[test]
    fn rows_are_taken_once_when_due_on_sqlite() {
        let dir = std::env::temp_dir().join(format!("wg-deadlines-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        rows_are_taken_once_when_due(&Db::open(&dir).unwrap());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn rows_are_taken_once_when_due_on_postgres() {
        let Some(fixture) = TestDatabase::for_test("deadlines") else {
            return;
        };
        rows_are_taken_once_when_due(&Db::connect_postgres(fixture.url()).unwrap());
    }

    /// Two server processes on one PostgreSQL database: while one holds a batch (its check has
    /// not committed), the other takes the next rows at once instead of waiting for them or
    /// taking the same ones (`SKIP LOCKED`); every row is handled by exactly one of them.
    #[test]
    fn two_processes_never_take_the_same_row() {
        let Some(fixture) = TestDatabase::for_test("deadlines-two") else {
            return;
        };
        let one = Db::connect_postgres(fixture.url()).unwrap();
        let two = Db::connect_postgres(fixture.url()).unwrap();
        queue(
            &one,
            "k1",
            &[("r1", 1), ("r2", 2), ("r3", 3), ("r4", 4), ("r5", 5)],
        );
        let (taken_tx, taken_rx) = std::sync::mpsc::channel::<Vec<String>>();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        std::thread::scope(|scope| {
            let (one, taken_tx) = (&one, taken_tx);
            let holder = scope.spawn(move || {
                let mut mine = Vec::new();
                one.run_due(10, 2, &mut |_, rows| {
                    mine = rows.iter().map(|r| r.dedup_key.clone()).collect();
                    taken_tx.send(mine.clone()).unwrap();
                    go_rx
                        .recv_timeout(Duration::from_secs(30))
                        .map_err(|_| DbError::Invalid("never released".into()))
                })
                .unwrap();
                mine
            });
            let held = taken_rx.recv_timeout(Duration::from_secs(30)).unwrap();
            assert_eq!(held, ["r1", "r2"]);
            // The other process does not wait for the held rows: it takes the next ones.
            let (done_tx, done_rx) = std::sync::mpsc::channel();
            let two = &two;
            let other = scope.spawn(move || {
                let seen = take(two, 10, 10);
                done_tx.send(()).unwrap();
                seen
            });
            let waited = done_rx.recv_timeout(Duration::from_secs(20)).is_err();
            go_tx.send(()).unwrap();
            let theirs = other.join().unwrap();
            let mine = holder.join().unwrap();
            assert!(!waited, "the second process waited for rows the first held");
            assert_eq!(theirs, ["r3", "r4", "r5"]);
            assert_eq!(mine, ["r1", "r2"]);
        });
        assert_eq!(one.deadlines_queued().unwrap(), 0);
    }
}
