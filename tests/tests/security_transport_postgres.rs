//! The transport defences of `security_transport.rs` (slow heads beyond the connection cap, slow
//! bodies, idle connections, rate limits, JSON errors, records paging) against the real server
//! binary on PostgreSQL (`--database`), one fresh database per test. Skipped with a printed reason
//! when no test cluster is configured, a failure under `cargo xtask test`.

use weldguard_tests::ServerBackend;

const BACKEND: ServerBackend = ServerBackend::Postgres;

#[path = "security_transport.rs"]
mod flows;
