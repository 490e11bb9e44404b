//! Files holding a private key or a token are the owner's alone (unix): `permit key` and
//! `keys generate` write 0600 (also over an old world-readable file with `--force`), the profile
//! folder a command creates under the data folder is 0700, `enroll` writes its device key,
//! `sync.json` and trust file 0600, and `weldguard server` creates its data folder (the database
//! holding the issuer keys) 0700.

#![cfg(unix)]

mod common;
use common::{Tmp, json_of};

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use weldguard_core::sync::protocol::Role;
use weldguard_core::sync::{RetryPolicy, SyncClient};

const BIN: &str = env!("CARGO_BIN_EXE_weldguard");
const ADMIN: &str = "secret-files-admin-token-0123";

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .arg("--json")
        .env("LANG", "en_US.UTF-8")
        .env_remove("LC_ALL")
        .env_remove("LC_MESSAGES")
        .output()
        .unwrap()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn key_files_are_written_owner_only() {
    let tmp = Tmp::new("secret-keys");
    let device = tmp.path("device.key");
    json_of(
        &run(&["permit", "key", "--out", device.to_str().unwrap()]),
        &["permit", "key"],
    );
    assert_eq!(mode(&device), 0o600);
    // Never over an existing key.
    let again = run(&["permit", "key", "--out", device.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(2));

    for alg in ["ed25519", "es256"] {
        let issuer = tmp.path(&format!("issuer-{alg}.key"));
        let trust = tmp.path("trust.json");
        let args = [
            "keys",
            "generate",
            "--alg",
            alg,
            "--out",
            issuer.to_str().unwrap(),
            "--trust-out",
            trust.to_str().unwrap(),
        ];
        json_of(&run(&args), &args);
        assert_eq!(mode(&issuer), 0o600, "{alg}");
        // --force over a key file an older version left world-readable: replaced owner-only.
        std::fs::set_permissions(&issuer, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mut forced = args.to_vec();
        forced.push("--force");
        json_of(&run(&forced), &forced);
        assert_eq!(mode(&issuer), 0o600, "{alg} --force");
    }
}

#[test]
fn the_profile_folder_a_command_creates_is_owner_only() {
    let tmp = Tmp::new("secret-profile");
    let data = tmp.dir().join("data");
    let args = ["outbox", "list", "--data-dir", data.to_str().unwrap()];
    json_of(&run(&args), &args);
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("profiles")), 0o700);
    assert_eq!(mode(&data.join("profiles/default")), 0o700);
}

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
    std::thread::spawn(move || for _ in lines {});
    Server(child, url)
}

#[test]
fn enrolment_files_and_the_servers_data_folder_are_owner_only() {
    let tmp = Tmp::new("secret-enrol");
    let server_data = tmp.path("server/data");
    let server = start_server(&server_data);
    assert_eq!(mode(&server_data), 0o700, "the server's data folder");
    assert_eq!(mode(&tmp.path("server")), 0o700, "and the parent it made");

    let admin = SyncClient::new(&server.1, Some(ADMIN.into()), RetryPolicy::default()).unwrap();
    let code = admin.create_enrolment("张三", Role::Supervisor).unwrap();
    let data = tmp.path("device");
    let args = [
        "enroll",
        "--server",
        &server.1,
        "--code",
        &code.code,
        "--data-dir",
        data.to_str().unwrap(),
    ];
    let enrolled = json_of(&run(&args), &args);
    assert_eq!(enrolled["can_refresh"], true);
    let profile = data.join("profiles/default");
    assert_eq!(mode(&profile), 0o700);
    for file in ["device-key.json", "sync.json", "trust.json"] {
        assert_eq!(mode(&profile.join(file)), 0o600, "{file}");
    }
    // No temporary file left beside them.
    let names: Vec<String> = std::fs::read_dir(&profile)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
}
