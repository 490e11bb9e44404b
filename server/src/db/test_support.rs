//! Throwaway PostgreSQL databases for tests: each test creates its own database (a unique name
//! under the cluster named by `WG_TEST_POSTGRES_URL`) and drops it afterwards, so tests run in
//! parallel. Without that variable the PostgreSQL tests are skipped with a printed reason, unless
//! `WG_REQUIRE_POSTGRES=1` (set by `cargo xtask test`), which makes a missing database a failure.

use std::sync::atomic::{AtomicU64, Ordering};

use postgres::{Config, NoTls};

/// The variable holding the test cluster's URL (a database to connect to for `CREATE DATABASE`).
pub const URL_VAR: &str = "WG_TEST_POSTGRES_URL";
/// The variable that turns a missing test cluster into a failure.
pub const REQUIRE_VAR: &str = "WG_REQUIRE_POSTGRES";

/// A database created for one test, dropped on drop.
pub struct TestDatabase {
    admin: Config,
    name: String,
    url: String,
}

/// Why no test database is available.
#[derive(Debug, thiserror::Error)]
pub enum TestDbError {
    #[error("{URL_VAR} is not set")]
    NotConfigured,
    #[error("cannot create a test database: {0}")]
    Postgres(#[from] postgres::Error),
    #[error("cannot parse {URL_VAR}: {0}")]
    BadUrl(String),
}

impl TestDatabase {
    /// Create a fresh database named after `tag`.
    pub fn create(tag: &str) -> Result<Self, TestDbError> {
        let base = std::env::var(URL_VAR).map_err(|_| TestDbError::NotConfigured)?;
        let admin: Config = base.parse()?;
        static N: AtomicU64 = AtomicU64::new(0);
        let clean: String = tag
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(20)
            .collect::<String>()
            .to_ascii_lowercase();
        let name = format!(
            "wgt_{clean}_{}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed),
            super::random_hex(3).map_err(|e| TestDbError::BadUrl(e.to_string()))?
        );
        let mut client = admin.connect(NoTls)?;
        client.batch_execute(&format!("CREATE DATABASE {name}"))?;
        let url = with_database(&base, &name).ok_or_else(|| TestDbError::BadUrl(base.clone()))?;
        Ok(TestDatabase { admin, name, url })
    }

    /// Like [`TestDatabase::create`], but `None` (after printing why) when no cluster is
    /// configured and none is required; panics when one is required or creation fails.
    pub fn for_test(tag: &str) -> Option<Self> {
        match Self::create(tag) {
            Ok(db) => Some(db),
            Err(TestDbError::NotConfigured) if std::env::var_os(REQUIRE_VAR).is_none() => {
                eprintln!(
                    "skipped: PostgreSQL test {tag:?}: {URL_VAR} is not set (run scripts/postgres.sh \
                     and export the URL it prints, or use `cargo xtask test`)"
                );
                None
            }
            Err(e) => panic!("PostgreSQL test {tag:?} needs a database: {e}"),
        }
    }

    /// The URL of this test's database.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let name = self.name.clone();
        // A plain thread: the blocking client must not run inside an async context.
        let _ = std::thread::spawn(move || {
            if let Ok(mut client) = admin.connect(NoTls) {
                let _ =
                    client.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            }
        })
        .join();
    }
}

/// `url` with its database name replaced by `name` (`postgres://user@host:port/NAME?query`).
pub fn with_database(url: &str, name: &str) -> Option<String> {
    let scheme_end = url.find("://")? + 3;
    let rest = url.get(scheme_end..)?;
    let (authority, tail) = match rest.find('/') {
        Some(i) => (rest.get(..i)?, rest.get(i..)?),
        None => (rest, ""),
    };
    let query = tail.find('?').and_then(|i| tail.get(i..)).unwrap_or("");
    Some(format!(
        "{}{authority}/{name}{query}",
        url.get(..scheme_end)?
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_name_is_replaced_and_the_query_kept() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5433/postgres", "x").as_deref(),
            Some("postgres://postgres@127.0.0.1:5433/x")
        );
        assert_eq!(
            with_database("postgresql://u@h/db?host=/tmp", "y").as_deref(),
            Some("postgresql://u@h/y?host=/tmp")
        );
        assert_eq!(
            with_database("postgres://h:1", "z").as_deref(),
            Some("postgres://h:1/z")
        );
        assert_eq!(with_database("nonsense", "z"), None);
    }
}
