//! The end-to-end flows of `sync_e2e.rs` (sync, rejects, faults, resumption, the authorization
//! table, hostile requests) against the real server binary on PostgreSQL (`--database`), one
//! fresh database per test. Skipped with a printed reason when no test cluster is configured,
//! a failure under `cargo xtask test` (see `weldguard_server::db::test_support`).

use weldguard_tests::ServerBackend;

const BACKEND: ServerBackend = ServerBackend::Postgres;

#[path = "sync_e2e.rs"]
mod flows;
