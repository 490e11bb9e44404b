//! The three users' flows of `phone_flows.rs` through the phone library against the real server
//! binary on PostgreSQL (`--database`). Skipped with a printed reason when no test cluster is
//! configured, a failure under `cargo xtask test`.

use weldguard_tests::ServerBackend;

const BACKEND: ServerBackend = ServerBackend::Postgres;

#[path = "phone_flows.rs"]
mod flows;
