//! The flows of `warnings_kinds_e2e.rs` against the real server binary on PostgreSQL
//! (`--database`), one fresh database per test, and two server processes sharing one database:
//! both run the deadline worker, and each due warning is raised once. Skipped with a printed
//! reason when no test cluster is configured, a failure under `cargo xtask test` (see
//! `weldguard_server::db::test_support`).

use weldguard_tests::ServerBackend;

const BACKEND: ServerBackend = ServerBackend::Postgres;

#[path = "warnings_kinds_e2e.rs"]
mod flows;

/// Two server processes share one database, both polling the deadline queue every 50 ms;
/// phones push old sessions of twenty machines, under a permit whose work goes on, to both at
/// once: each session falls due and is raised exactly once, and counted once in the figures.
#[test]
fn two_servers_raise_each_due_warning_once() {
    use flows::*;
    use std::time::Duration;
    use weldguard_tests::{ServerData, ServerProcess};
    let Some(data) = ServerData::new(BACKEND, "kinds-two") else {
        return;
    };
    let options = ["--deadline-poll-ms", "50", "--warn-session-hours", "24"];
    let b = ServerProcess::start_sharing_with_options(SERVER, &data, ADMIN, &options);
    let a = ServerProcess::start_with_options(SERVER, data, ADMIN, &options, None);
    let (a, b) = (a, b);
    let rules = weldguard_tests::permits::Rules::new();
    let going = "0193a1b2-0000-7000-8000-0000000c0021";
    permit_flow(&crew(&a, &rules), &rules, going, Until::Started);
    let phones: Vec<Phone> = [&a, &b].iter().map(|s| phone(&a, &s.url())).collect();
    let keys: Vec<Vec<String>> = phones
        .iter()
        .enumerate()
        .map(|(p, phone)| {
            (0..10)
                .map(|i| {
                    scan(
                        phone,
                        &format!("M-{p}-{i}"),
                        T0 + i * HOUR,
                        true,
                        Some(going),
                    )
                })
                .collect()
        })
        .collect();
    std::thread::scope(|scope| {
        for p in &phones {
            scope.spawn(move || sync(p));
        }
    });
    let all = settled(&b, 20, Duration::from_millis(1500));
    assert_eq!(all.len(), 20, "{:?}", summary(&all));
    let mut raised: Vec<String> = all.iter().map(|w| w.records[0].clone()).collect();
    raised.sort();
    let mut pushed: Vec<String> = keys.into_iter().flatten().collect();
    pushed.sort();
    assert_eq!(raised, pushed);
    assert!(
        all.iter()
            .all(|w| w.kind.as_str() == "session_open_too_long")
    );
    let (status, stats) = call(
        &a,
        "GET",
        "/v1/stats?from=2026-12-01&until=2026-12-01",
        None,
    );
    assert_eq!(status, 200, "{stats}");
    assert_eq!(stats["totals"][0]["warnings_open"], 20, "{stats}");
}
