//! `weldguard server`, `weldguard enroll` and `weldguard sync` as a user runs them: the platform from
//! the CLI binary on loopback, a device profile enrolled with a one-time code (saving the platform's
//! trust file), a first sync that loads the signed snapshot and the signed status list, its age in
//! the answer, and a drift check.

mod common;
use common::{Tmp, json_of};

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use weldguard_core::domain::{Binding, Revocation, RevocationTarget};
use weldguard_core::store::RegistryChange;
use weldguard_core::sync::protocol::Role;
use weldguard_core::sync::{RetryPolicy, SyncClient};

const BIN: &str = env!("CARGO_BIN_EXE_weldguard");
const ADMIN: &str = "cli-admin-token-0123456789";

/// `weldguard server` on a free loopback port; killed on drop.
struct Server(Child, String);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_server(data: &Path) -> Server {
    start_server_with(data, &[])
}

fn start_server_with(data: &Path, extra: &[&str]) -> Server {
    let mut child = Command::new(BIN)
        .args(["server", "--listen", "127.0.0.1:0", "--admin-token", ADMIN])
        .args(extra)
        .arg("--data-dir")
        .arg(data)
        .env("WELDGUARD_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = loop {
        let line = lines.next().expect("server exited").unwrap();
        if let Some(addr) = line.strip_prefix("listening on ") {
            break addr.trim().to_owned();
        }
    };
    Server(child, url)
}

fn cli(data: &Path, args: &[&str]) -> Value {
    let out = Command::new(BIN)
        .args(args)
        .args(["--json", "--data-dir", data.to_str().unwrap()])
        .env("LANG", "en_US.UTF-8")
        .output()
        .unwrap();
    json_of(&out, args)
}

#[test]
fn enroll_then_sync_loads_the_signed_registry_and_shows_revocation_age() {
    let tmp = Tmp::new("sync");
    let server = start_server(&tmp.dir().join("server"));
    let policy = RetryPolicy {
        request_timeout: Duration::from_secs(20),
        ..RetryPolicy::default()
    };
    let admin = SyncClient::new(&server.1, Some(ADMIN.into()), policy).unwrap();
    let mut changes: Vec<RegistryChange> = (0..300)
        .map(|i| {
            RegistryChange::Bind(Binding {
                machine_id: format!("FC-M-{i:05}"),
                certificate_no: "T370983199001011234".into(),
            })
        })
        .collect();
    changes.push(RegistryChange::Revoke(Revocation {
        target: RevocationTarget::Licence,
        id: "T370983199001019999".into(),
    }));
    changes.push(RegistryChange::AnnouncePeriod(
        weldguard_core::store::AnnouncedPeriod {
            period_id: "test-period".into(),
            name: "重大活动保障期".into(),
            from: 0,
            until: 4_102_444_800,
        },
    ));
    admin.write_registry(&changes).unwrap();
    let code = admin.create_enrolment("李四", Role::Supervisor).unwrap();

    let data = tmp.dir().join("device");
    let enrolled = cli(
        &data,
        &["enroll", "--server", &server.1, "--code", &code.code],
    );
    assert_eq!(enrolled["role"], "supervisor");
    assert_eq!(enrolled["issuer_keys"], 1);
    assert!(
        find(&data, "trust.json"),
        "the platform's trust file is kept"
    );

    let synced = cli(&data, &["sync", "--check-drift"]);
    assert_eq!(synced["status_list"]["outcome"], "updated", "{synced}");
    assert_eq!(synced["snapshot_chunks"], 1, "{synced}");
    assert_eq!(synced["pulled_changes"], 302, "{synced}");
    assert!(synced["revocation_data_age_secs"].as_i64().unwrap() < 60);
    assert_eq!(synced["drift"]["outcome"], "in_sync", "{synced}");

    let again = cli(&data, &["sync"]);
    assert_eq!(again["snapshot_chunks"], 0, "later syncs use the feed");
    assert_eq!(again["drift"], Value::Null);
}

/// Whether a file of this name exists somewhere under `dir`.
fn find(dir: &Path, name: &str) -> bool {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| {
            let p = e.path();
            p.file_name().is_some_and(|n| n == name) || (p.is_dir() && find(&p, name))
        })
}

/// The path of the first file of this name under `dir`.
fn find_path(dir: &Path, name: &str) -> Option<std::path::PathBuf> {
    std::fs::read_dir(dir).ok()?.flatten().find_map(|e| {
        let p = e.path();
        if p.file_name().is_some_and(|n| n == name) {
            Some(p)
        } else if p.is_dir() {
            find_path(&p, name)
        } else {
            None
        }
    })
}

#[test]
fn sync_refreshes_an_expired_token_with_the_enrolled_key_and_saves_it() {
    let tmp = Tmp::new("sync-refresh");
    let server = start_server_with(&tmp.dir().join("server"), &["--token-ttl", "3"]);
    let admin = SyncClient::new(&server.1, Some(ADMIN.into()), RetryPolicy::default()).unwrap();
    let code = admin.create_enrolment("王五", Role::Welder).unwrap();
    let data = tmp.dir().join("device");
    let enrolled = cli(
        &data,
        &["enroll", "--server", &server.1, "--code", &code.code],
    );
    assert_eq!(enrolled["can_refresh"], true, "{enrolled}");
    assert!(enrolled["token_expires_at_ms"].as_i64().is_some());
    assert!(find(&data, "device-key.json"), "a device key was made");
    let sync_json = find_path(&data, "sync.json").unwrap();
    let read =
        || serde_json::from_str::<Value>(&std::fs::read_to_string(&sync_json).unwrap()).unwrap();
    let before = read();

    let first = cli(&data, &["sync"]);
    assert_eq!(first["token_refreshes"], 0, "{first}");
    std::thread::sleep(Duration::from_millis(3600));
    let second = cli(&data, &["sync"]);
    assert_eq!(second["token_refreshes"], 1, "{second}");
    let after = read();
    assert_ne!(after["token"], before["token"], "the new token was saved");
    assert!(after["token_expires_at_ms"].as_i64() > before["token_expires_at_ms"].as_i64());
    assert_eq!(after["device_id"], before["device_id"]);
    assert!(
        !find(&data, "sync.json.tmp"),
        "written through a renamed temporary file"
    );
    // The saved token is the live one: the next sync needs no refresh.
    let third = cli(&data, &["sync"]);
    assert_eq!(third["token_refreshes"], 0, "{third}");
}

#[test]
fn sync_brings_a_rotated_issuer_key_and_keeps_trust_json_current() {
    let tmp = Tmp::new("sync-rotation");
    let server = start_server(&tmp.dir().join("server"));
    let admin = SyncClient::new(&server.1, Some(ADMIN.into()), RetryPolicy::default()).unwrap();
    let code = admin.create_enrolment("周九", Role::Inspector).unwrap();
    let data = tmp.dir().join("device");
    let enrolled = cli(
        &data,
        &["enroll", "--server", &server.1, "--code", &code.code],
    );
    assert_eq!(enrolled["issuer_keys"], 1, "{enrolled}");
    let first = cli(&data, &["sync"]);
    assert_eq!(first["trust"]["added"], serde_json::json!([]), "{first}");

    let rotated = admin.rotate_issuer_key(None).unwrap();
    let synced = cli(&data, &["sync"]);
    assert_eq!(
        synced["trust"]["added"],
        serde_json::json!([rotated.kid]),
        "{synced}"
    );
    let trust_json = std::fs::read_to_string(find_path(&data, "trust.json").unwrap()).unwrap();
    let trust = weldguard_core::codes::TrustStore::from_json(&trust_json).unwrap();
    assert_eq!(
        trust.keys().len(),
        2,
        "trust.json follows the profile's trust"
    );
    // A profile's trust lives in its database: with trust.json gone, the next sync still
    // verifies the status list the new key signed.
    std::fs::remove_file(find_path(&data, "trust.json").unwrap()).unwrap();
    let again = cli(&data, &["sync"]);
    assert_eq!(again["status_list"]["outcome"], "unchanged", "{again}");
    assert_eq!(again["trust"]["added"], serde_json::json!([]), "{again}");
}
