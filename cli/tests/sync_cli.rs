//! `weldguard server`, `weldguard enroll` and `weldguard sync` as a user runs them: the platform from
//! the CLI binary on loopback, a device profile enrolled with a one-time code (saving the platform's
//! trust file), a first sync that loads the signed snapshot and the signed status list, its age in
//! the answer, and a drift check.

mod common;
use common::Tmp;

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
    let mut child = Command::new(BIN)
        .args(["server", "--listen", "127.0.0.1:0", "--admin-token", ADMIN])
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
    assert!(
        out.status.success(),
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
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
