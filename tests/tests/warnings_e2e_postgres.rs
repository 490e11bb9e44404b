//! The warning flows of `warnings_e2e.rs` against the real server binary on PostgreSQL
//! (`--database`), one fresh database per test. Skipped with a printed reason when no test
//! cluster is configured, a failure under `cargo xtask test` (see
//! `weldguard_server::db::test_support`).

use weldguard_tests::ServerBackend;

const BACKEND: ServerBackend = ServerBackend::Postgres;

#[path = "warnings_e2e.rs"]
mod flows;

/// Two server processes share one database; phones push refusals at one machine to both at
/// once: each refusal raises its own warning and the burst is raised exactly once.
#[test]
fn two_servers_raise_one_burst_from_parallel_pushes() {
    use flows::*;
    use weldguard_tests::{ServerData, ServerProcess};
    let Some(data) = ServerData::new(BACKEND, "warn-two") else {
        return;
    };
    let b = ServerProcess::start_sharing(SERVER, &data, ADMIN);
    let a = ServerProcess::start_on(SERVER, data, ADMIN);
    // `b` goes first: `a` owns the database, dropped after both servers stopped.
    let (a, b) = (a, b);
    call(&a, "POST", "/v1/admin/places", ADMIN, Some(places()));
    let servers = [&a, &b, &a, &b];
    let phones: Vec<Phone> = servers.iter().map(|s| phone(&a, &s.url())).collect();
    let keys: Vec<String> = phones
        .iter()
        .enumerate()
        .map(|(i, p)| {
            scan(
                p,
                "TS-M-1",
                T0 + i as i64 * HOUR,
                false,
                &["licence.revoked"],
                None,
            )
        })
        .collect();
    std::thread::scope(|scope| {
        for p in &phones {
            scope.spawn(move || sync(p));
        }
    });
    let all = warnings(&b, ADMIN, "");
    assert_eq!(all.len(), 1, "{:?}", summary(&all));
    assert_eq!(all[0].kind.as_str(), "repeated_refusals");
    assert!(all[0].records.len() >= 3);
    assert!(all[0].records.iter().all(|k| keys.contains(k)));
}
