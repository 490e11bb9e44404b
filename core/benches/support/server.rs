//! What the server benchmarks share (`sync.rs`, `platform.rs`): the real server binary started on
//! loopback, the PostgreSQL cluster and databases made for a run, and generated licences.
// Each benchmark uses a part of this module.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use chrono::{Datelike, NaiveDate};
use weldguard_core::domain::{Licence, LicenceStatus, OperationCategory};
use weldguard_core::rules::id_number::check_character;

pub const ADMIN: &str = "bench-admin-token";

/// A generated, valid licence: a 370983 ID number (birth date and sequence from `serial`).
pub fn licence(serial: u64) -> Licence {
    // 370983 + birth date 1960-01-01 + serial spread over days and the 3-digit sequence.
    let birth = NaiveDate::from_ymd_opt(1960, 1, 1).unwrap() + chrono::Days::new(serial / 1000);
    let first17 = format!(
        "370983{:04}{:02}{:02}{:03}",
        birth.year(),
        birth.month(),
        birth.day(),
        serial % 1000
    );
    let bytes: [u8; 17] = first17.as_bytes().try_into().unwrap();
    let id = format!("{first17}{}", check_character(&bytes).unwrap());
    Licence {
        certificate_no: format!("T{id}"),
        id_number: id,
        name: format!("焊工{serial}"),
        categories: vec![OperationCategory::FusionWeldingAndCutting],
        issued_on: NaiveDate::from_ymd_opt(2022, 3, 1).unwrap(),
        expires_on: NaiveDate::from_ymd_opt(2028, 3, 1).unwrap(),
        next_review_on: NaiveDate::from_ymd_opt(2025, 3, 1).unwrap(),
        review_extended: serial.is_multiple_of(7),
        status: LicenceStatus::Valid,
        employer_org: (!serial.is_multiple_of(3)).then(|| "91370983MA3C000000".to_owned()),
    }
}

/// The server binary beside this benchmark's (target/release/deps/NAME-HASH →
/// target/release/weldguard-server), unless one is given.
pub fn server_binary(given: Option<PathBuf>) -> PathBuf {
    given.unwrap_or_else(|| {
        let exe = std::env::current_exe().unwrap();
        exe.parent()
            .and_then(Path::parent)
            .map(|d| d.join(format!("weldguard-server{}", std::env::consts::EXE_SUFFIX)))
            .unwrap()
    })
}

/// A server child process (killed on drop) and its base URL.
pub struct Server(pub Child, pub String);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn start_server(bin: &Path, data: &Path) -> Server {
    start_server_with(bin, &["--data-dir".as_ref(), data.as_os_str()])
}

pub fn start_server_with(bin: &Path, storage: &[&std::ffi::OsStr]) -> Server {
    let mut child = Command::new(bin)
        .args(storage)
        .args(["--listen", "127.0.0.1:0", "--admin-token", ADMIN])
        // Request logs at info level would flood the figures; warnings and errors still show.
        .env(
            "WELDGUARD_LOG",
            std::env::var("WELDGUARD_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = loop {
        let line = lines.next().expect("server exited").unwrap();
        if let Some(rest) = line.strip_prefix("listening on ") {
            break rest.trim().to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Server(child, url)
}

/// The PostgreSQL cluster to use: `--postgres URL`, else the one `scripts/postgres.sh` starts.
pub fn postgres_cluster(given: Option<String>) -> Result<String, String> {
    if let Some(url) = given {
        return Ok(url);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("scripts")
        .join("postgres.sh");
    let output = Command::new("bash")
        .arg(&script)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    let url = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if output.status.success() && url.starts_with("postgres://") {
        Ok(url)
    } else {
        Err(format!("{} failed ({})", script.display(), output.status))
    }
}

/// Run one SQL statement with the `psql` client (no PostgreSQL crate in the core's benches).
pub fn psql(url: &str, sql: &str) -> Result<(), String> {
    let output = Command::new("psql")
        .args([url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run psql: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "psql {sql:?}: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// `url` with its database name replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
    let scheme_end = url.find("://").map_or(0, |i| i + 3);
    let (head, rest) = url.split_at(scheme_end);
    let (authority, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let query = tail.find('?').map_or("", |i| &tail[i..]);
    format!("{head}{authority}/{name}{query}")
}
