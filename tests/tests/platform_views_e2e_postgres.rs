//! The dashboard's pages of `platform_views_e2e.rs` against the real server binary on PostgreSQL
//! (`--database`), one fresh database per test. Skipped with a printed reason when no test
//! cluster is configured, a failure under `cargo xtask test` (see
//! `weldguard_server::db::test_support`).

use weldguard_tests::ServerBackend;

const BACKEND: ServerBackend = ServerBackend::Postgres;

#[path = "platform_views_e2e.rs"]
mod flows;
