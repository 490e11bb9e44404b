//! Crash safety: a child process writes work sessions in a loop and prints each id after its commit;
//! the parent kills it with SIGKILL at a random moment, reopens the file and checks that every printed
//! record is there with exactly one outbox entry, that no record or entry is orphaned, and that
//! SQLite's integrity check passes. The child also applies registry pages with their sync cursor,
//! and the parent checks that pages and cursor always agree. Repeated 200 times on the same file.
//!
//! The child is this test binary run again with [`CHILD_ENV`] set, filtered to [`child_writer`].

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::Store;
use super::records::NewWorkSession;
use super::test_support::TempDir;

const CHILD_ENV: &str = "WELDGUARD_STORE_CRASH_CHILD_DB";
const ITERATIONS: usize = 200;
const PREFIX: &str = "COMMITTED ";
const FEED: &str = "crash_machines";

/// The child's loop. Does nothing in an ordinary test run.
#[test]
fn child_writer() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let store = Store::open(path).unwrap();
    let base = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    // Registry pages land with their cursor: page n adds machine B-n and moves the cursor to n.
    let mut page: u64 = store
        .sync_cursor(FEED)
        .unwrap()
        .map_or(0, |c| c.parse::<u64>().unwrap() + 1);
    // Bounded, in case the parent dies without killing us.
    for i in 0..100_000i64 {
        if i % 4 == 3 {
            let mut m = super::registry::tests::machine(&format!("B-{page}"));
            m.region = 370983;
            store
                .apply_registry_changes(
                    [super::RegistryChange::UpsertMachine(m)],
                    Some(&super::SyncCursor {
                        feed: FEED.to_owned(),
                        cursor: page.to_string(),
                    }),
                    base + i,
                )
                .unwrap();
            page += 1;
        }
        let session = store
            .record_work_session(
                NewWorkSession {
                    machine_id: format!("M-370983-{:05}", i % 500),
                    certificate_no: format!("T3709831990030{:05}", i % 997),
                    started_at_ms: base + i,
                    allowed: i % 3 != 0,
                    reason_codes: if i % 3 == 0 {
                        vec!["licence.review_overdue".to_owned()]
                    } else {
                        Vec::new()
                    },
                    permit_id: (i % 2 == 0).then(|| format!("P-{i}")),
                    position: None,
                },
                base + i,
            )
            .unwrap();
        println!("{PREFIX}{}", session.id);
    }
}

/// A small deterministic generator (xorshift64*), seeded from the clock and printed for replay.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn check(store: &Store, committed: &HashSet<String>) {
    store.integrity_check().unwrap();
    let conn = store.reader();
    let fk_problems: i64 = conn
        .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(fk_problems, 0);
    let orphan_entries: i64 = conn
        .query_row(
            "SELECT count(*) FROM outbox o LEFT JOIN work_sessions w ON w.id = o.idempotency_key \
             WHERE o.kind = 'work_session' AND w.id IS NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(orphan_entries, 0, "an outbox entry without its record");
    drop(conn);
    // A registry page and its cursor landed together or not at all.
    let pages: i64 = store
        .reader()
        .query_row(
            "SELECT count(*) FROM machines WHERE machine_id LIKE 'B-%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let cursor = store.sync_cursor(FEED).unwrap();
    assert_eq!(
        cursor.map_or(0, |c| c.parse::<i64>().unwrap() + 1),
        pages,
        "cursor and pages disagree"
    );
    let conn = store.reader();
    let mut stmt = conn
        .prepare(
            "SELECT (SELECT count(*) FROM work_sessions WHERE id = ?1), \
                    (SELECT count(*) FROM outbox WHERE idempotency_key = ?1)",
        )
        .unwrap();
    for id in committed {
        let (records, entries): (i64, i64) = stmt
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap();
        assert_eq!((records, entries), (1, 1), "committed record {id}");
    }
}

#[cfg(unix)]
#[test]
fn killed_writers_never_lose_or_split_a_committed_record() {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("crash test seed {seed:#x}");
    let mut rng = Rng(seed);
    let dir = TempDir::new();
    let path = dir.path().join("crash.sqlite");
    let exe = std::env::current_exe().unwrap();
    let started = Instant::now();
    let mut committed = HashSet::new();
    let mut kills_after_first_commit = 0;
    for iteration in 0..ITERATIONS {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "store::crash_tests::child_writer",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(CHILD_ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (first_tx, first_rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut ids = Vec::new();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(id) = line.strip_prefix(PREFIX) {
                    if ids.is_empty() {
                        let _ = first_tx.send(());
                    }
                    ids.push(id.to_owned());
                }
            }
            ids
        });
        // Even rounds kill at a random moment from the start, which covers opening and migrating;
        // odd rounds wait for the first commit, so at least half the kills land mid-writing
        // however slow the machine is.
        if iteration % 2 == 1 {
            let _ = first_rx.recv_timeout(Duration::from_secs(60));
            std::thread::sleep(Duration::from_micros(rng.next() % 20_000));
        } else {
            std::thread::sleep(Duration::from_micros(rng.next() % 60_000));
        }
        child.kill().unwrap(); // SIGKILL on Unix
        let status = child.wait().unwrap();
        assert!(
            !status.success(),
            "iteration {iteration}: the child must die by the signal"
        );
        let ids = reader.join().unwrap();
        if !ids.is_empty() {
            kills_after_first_commit += 1;
        }
        committed.extend(ids);
        let store = Store::open(&path).unwrap();
        check(&store, &committed);
    }
    eprintln!(
        "crash test: {ITERATIONS} kills, {kills_after_first_commit} mid-writing, {} records committed, {:?}",
        committed.len(),
        started.elapsed()
    );
    assert!(
        kills_after_first_commit >= ITERATIONS / 2,
        "too few kills landed while records were being written ({kills_after_first_commit})"
    );
}
