//! The position and history flow of `history_e2e.rs` against the real server binary on
//! PostgreSQL (`--database`). Skipped with a printed reason when no test cluster is configured, a
//! failure under `cargo xtask test`.

use weldguard_tests::ServerBackend;

const BACKEND: ServerBackend = ServerBackend::Postgres;

#[path = "history_e2e.rs"]
mod flows;
