//! `cargo xtask bench sync [--licences N] [--server-bin PATH] [--dir DIR] [--postgres URL |
//! --no-postgres]`: sync over loopback against the real server binary (xtask builds it in release
//! first).
//!
//! Prints:
//! - the admin load of N licences into the server (batches of 10 000 through the admin API),
//! - the initial registry sync of a fresh device (pages pulled and applied with their cursor), next
//!   to a bare rusqlite prepared-insert load of the same rows in one transaction (the store's table
//!   definition, WAL, synchronous=NORMAL), and their ratio (target ≤ 3×),
//! - an incremental sync of 100 changes,
//! - push throughput: 10 000 work sessions recorded offline, then pushed; to the SQLite server, then
//!   to a second server on PostgreSQL (`--postgres URL` of a cluster, where a database is created
//!   for the run and dropped after; without it the cluster of `scripts/postgres.sh` is started).
//!   When PostgreSQL is unavailable the run says so and keeps the SQLite figures.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use chrono::{Datelike, NaiveDate};
use rusqlite::{Connection, params};
use weldguard_core::domain::Licence;
use weldguard_core::store::schema::MIGRATIONS;
use weldguard_core::store::{NewWorkSession, RegistryChange, Store};
use weldguard_core::sync::protocol::Role;
use weldguard_core::sync::{RetryPolicy, SyncClient};

#[path = "support/server.rs"]
mod support;
use support::{
    ADMIN, Server, licence, postgres_cluster, psql, server_binary, start_server, start_server_with,
    with_database,
};

fn day_number(date: NaiveDate) -> i64 {
    i64::from(date.num_days_from_ce() - 719_163)
}

fn bare_load(path: &Path, rows: &[Licence]) -> Duration {
    let mut conn = Connection::open(path).unwrap();
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
        .unwrap();
    conn.execute_batch(MIGRATIONS[0].sql).unwrap();
    let started = Instant::now();
    let tx = conn.transaction().unwrap();
    {
        let mut stmt = tx
            .prepare("INSERT INTO licences VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)")
            .unwrap();
        for l in rows {
            stmt.execute(params![
                l.certificate_no,
                l.id_number,
                l.name,
                1,
                day_number(l.issued_on),
                day_number(l.expires_on),
                day_number(l.next_review_on),
                l.review_extended,
                "valid",
                l.employer_org,
            ])
            .unwrap();
        }
    }
    tx.commit().unwrap();
    started.elapsed()
}

/// Record `sessions` work sessions in a fresh device store enrolled with `server`, push them and
/// return the time the push took.
fn push_run(server: &Server, policy: RetryPolicy, store_path: &Path, sessions: i64) -> Duration {
    let admin = SyncClient::new(&server.1, Some(ADMIN.into()), policy).unwrap();
    let code = admin.create_enrolment("bench", Role::Welder).unwrap();
    let token = SyncClient::new(&server.1, None, policy)
        .unwrap()
        .enrol(&code.code, "04", "bench")
        .unwrap()
        .token;
    let device = SyncClient::new(&server.1, Some(token), policy).unwrap();
    let store = Store::open(store_path).unwrap();
    record_sessions(&store, sessions, &licence(0).certificate_no);
    let started = Instant::now();
    let report = device
        .push(&store, &mut |_| {}, &AtomicBool::new(false))
        .unwrap();
    let took = started.elapsed();
    assert_eq!(report.applied, sessions as u64);
    took
}

fn record_sessions(store: &Store, sessions: i64, certificate_no: &str) {
    for i in 0..sessions {
        store
            .record_work_session(
                NewWorkSession {
                    machine_id: "M-370983-000001".into(),
                    certificate_no: certificate_no.to_owned(),
                    started_at_ms: 1_764_374_400_000 + i,
                    allowed: true,
                    reason_codes: vec![],
                    permit_id: None,
                    position: None,
                },
                1_764_374_400_000 + i,
            )
            .unwrap();
    }
}

/// Push throughput against a server on PostgreSQL, in a database made for this run.
fn postgres_push(
    bin: &Path,
    cluster: &str,
    policy: RetryPolicy,
    store_path: &Path,
    sessions: i64,
) -> Result<Duration, String> {
    let name = format!("wg_bench_{}", std::process::id());
    psql(cluster, &format!("DROP DATABASE IF EXISTS {name}"))?;
    psql(cluster, &format!("CREATE DATABASE {name}"))?;
    let url = with_database(cluster, &name);
    let took = {
        let server = start_server_with(bin, &["--database".as_ref(), url.as_ref()]);
        push_run(&server, policy, store_path, sessions)
    };
    psql(
        cluster,
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    )?;
    Ok(took)
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn main() {
    let mut n: u64 = 1_000_000;
    let mut server_bin: Option<PathBuf> = None;
    let mut dir: Option<PathBuf> = None;
    let mut postgres: Option<String> = None;
    let mut use_postgres = true;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--licences" => {
                n = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--licences N")
            }
            "--server-bin" => server_bin = args.next().map(PathBuf::from),
            "--dir" => dir = args.next().map(PathBuf::from),
            "--postgres" => postgres = Some(args.next().expect("--postgres URL")),
            "--no-postgres" => use_postgres = false,
            "--bench" => {}
            other => panic!("unknown argument {other:?}"),
        }
    }
    let server_bin = server_binary(server_bin);
    let base = dir.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("wg-sync-bench-{}", std::process::id()))
    });
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).unwrap();

    let server = start_server(&server_bin, &base.join("server"));
    let policy = RetryPolicy {
        request_timeout: Duration::from_secs(300),
        ..RetryPolicy::default()
    };
    let admin = SyncClient::new(&server.1, Some(ADMIN.into()), policy).unwrap();
    println!("sync bench: {n} licences, server {}", server.1);

    let rows: Vec<Licence> = (0..n).map(licence).collect();
    let started = Instant::now();
    for chunk in rows.chunks(10_000) {
        let changes: Vec<RegistryChange> = chunk
            .iter()
            .cloned()
            .map(RegistryChange::UpsertLicence)
            .collect();
        admin.write_registry(&changes).unwrap();
    }
    let admin_load = started.elapsed();
    println!("admin load into the server: {:.2} s", secs(admin_load));

    let code = admin.create_enrolment("bench", Role::Welder).unwrap();
    let token = SyncClient::new(&server.1, None, policy)
        .unwrap()
        .enrol(&code.code, "04", "bench")
        .unwrap()
        .token;
    let device = SyncClient::new(&server.1, Some(token), policy).unwrap();
    let store = Store::open(base.join("device.sqlite")).unwrap();
    let cancel = AtomicBool::new(false);
    let started = Instant::now();
    let report = device.pull(&store, &mut |_| {}, &cancel).unwrap();
    let initial = started.elapsed();
    assert_eq!(report.pulled_changes, n);
    assert_eq!(store.registry_stats().unwrap().licences, n);

    let bare = bare_load(&base.join("bare.sqlite"), &rows);
    println!(
        "initial sync: {:.2} s ({} pages, {:.0} licences/s); bare SQLite load: {:.2} s; ratio {:.2}× (target ≤ 3×)",
        secs(initial),
        report.pages,
        n as f64 / secs(initial),
        secs(bare),
        secs(initial) / secs(bare)
    );

    let changes: Vec<RegistryChange> = (0..100)
        .map(|i| {
            let mut l = licence(i * (n / 100).max(1) % n.max(1));
            l.review_extended = !l.review_extended;
            RegistryChange::UpsertLicence(l)
        })
        .collect();
    admin.write_registry(&changes).unwrap();
    let started = Instant::now();
    let report = device.pull(&store, &mut |_| {}, &cancel).unwrap();
    let incremental = started.elapsed();
    assert_eq!(report.pulled_changes, 100);
    println!(
        "incremental sync of 100 changes: {:.1} ms",
        incremental.as_secs_f64() * 1e3
    );

    let sessions: i64 = 10_000;
    let push = push_run(&server, policy, &base.join("push-sqlite.sqlite"), sessions);
    println!(
        "push (SQLite server): {sessions} records in {:.2} s ({:.0} records/s)",
        secs(push),
        sessions as f64 / secs(push)
    );
    if use_postgres {
        let result = postgres_cluster(postgres).and_then(|cluster| {
            postgres_push(
                &server_bin,
                &cluster,
                policy,
                &base.join("push-postgres.sqlite"),
                sessions,
            )
        });
        match result {
            Ok(push) => println!(
                "push (PostgreSQL server): {sessions} records in {:.2} s ({:.0} records/s)",
                secs(push),
                sessions as f64 / secs(push)
            ),
            Err(why) => println!("push (PostgreSQL server): unavailable: {why}"),
        }
    } else {
        println!("push (PostgreSQL server): skipped (--no-postgres)");
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&base);
}
