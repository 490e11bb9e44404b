//! The key rotation flows and trust attacks of `trust_rotation.rs` against the real server binary
//! on PostgreSQL (`--database`), one fresh database per test. Skipped with a printed reason when
//! no test cluster is configured, a failure under `cargo xtask test`.

use weldguard_tests::ServerBackend;

const BACKEND: ServerBackend = ServerBackend::Postgres;

#[path = "trust_rotation.rs"]
mod flows;
