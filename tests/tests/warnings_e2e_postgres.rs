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

/// A stream on one server process delivers the warnings a push to the other raises (the stream
/// reads the shared store by id cursor), and the other's figures count the push.
#[test]
fn a_stream_on_one_server_sees_warnings_raised_by_the_other() {
    use flows::*;
    use weldguard_tests::{ServerData, ServerProcess};
    let Some(data) = ServerData::new(BACKEND, "warn-stream-two") else {
        return;
    };
    let b = ServerProcess::start_sharing(SERVER, &data, ADMIN);
    let a = ServerProcess::start_on(SERVER, data, ADMIN);
    let (a, b) = (a, b);
    call(&a, "POST", "/v1/admin/places", ADMIN, Some(places()));
    let taishan = monitor(&a, "泰山区应急局", "district:370902");
    let mut stream = EventStream::open(&b, &taishan, None);
    assert_eq!(stream.status, 200);
    let welder = phone(&a, &a.url());
    let key = scan(&welder, "TS-M-1", T0, false, &["licence.expired"], None);
    sync(&welder);
    let (id, warning) = stream.next();
    assert_eq!(warning.records, [key]);
    assert_eq!(warning.id, id);
    let (status, stats) = call(
        &b,
        "GET",
        "/v1/stats?from=2026-12-01&until=2026-12-01",
        &taishan,
        None,
    );
    assert_eq!(status, 200, "{stats}");
    assert_eq!(stats["totals"][0]["starts_refused"], 1);
    assert_eq!(stats["totals"][0]["warnings_open"], 1);
}
