//! `weldguard demo --dashboard` as a person runs it: the built binary in a child process; the
//! dashboard's address it prints is read, the one-time code in it enrolled as a monitoring account
//! (with a P-256 key made here), and the platform's pages answer that account: the demo's sites on
//! the map and the warnings its starts raised. Ctrl-C (SIGINT) then stops it cleanly (exit 0).
#![cfg(unix)]

mod common;
use common::Tmp;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

use serde_json::Value;
use weldguard_core::codes::{DeviceSigner, SoftwareSigner, to_hex};
use weldguard_core::sync::protocol::Role;
use weldguard_core::sync::{RetryPolicy, SyncClient};

/// `GET path` on `http://addr` with a bearer token (HTTP/1.0: the answer ends with the
/// connection); (status, body as JSON).
fn get(addr: &str, path: &str, token: &str) -> (u16, Value) {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[test]
fn the_demo_keeps_its_platform_for_the_dashboard_until_ctrl_c() {
    let tmp = Tmp::new("demo-dashboard");
    let mut child = Command::new(env!("CARGO_BIN_EXE_weldguard"))
        .args(["demo", "--dashboard", "--dir"])
        .arg(tmp.dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut url = None;
    let mut told = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if url.is_none()
            && let Some(at) = line.find("http://")
        {
            url = Some(line[at..].trim().to_owned());
        }
        let stop = line.contains("press Ctrl-C to stop");
        told.push(line);
        if stop {
            break;
        }
    }
    let told = told.join("\n");
    assert!(told.contains("按 Ctrl-C 停止"), "{told}");
    let url = url.unwrap_or_else(|| panic!("no dashboard address in:\n{told}"));
    let (server, code) = url
        .split_once("/dashboard/#code=")
        .unwrap_or_else(|| panic!("not a dashboard address: {url}"));
    assert!(server.starts_with("http://127.0.0.1:"), "{url}");
    assert!(!code.is_empty());

    // The code enrols a city-wide monitoring account, with a key made here.
    let key = SoftwareSigner::generate().unwrap();
    let policy = RetryPolicy {
        max_attempts: 2,
        ..RetryPolicy::default()
    };
    let enrolled = SyncClient::new(server, None, policy)
        .unwrap()
        .enrol(code, &to_hex(&key.public_key()), "看板")
        .unwrap();
    assert_eq!(enrolled.role, Role::Monitor);
    let addr = server.trim_start_matches("http://");
    let (status, me) = get(addr, "/v1/me", &enrolled.token);
    assert_eq!(status, 200, "{me}");

    let (status, sites) = get(addr, "/v1/platform/sites", &enrolled.token);
    assert_eq!(status, 200, "{sites}");
    let ids: Vec<&str> = sites["sites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "site-370983-001",
            "site-370983-002",
            "site-370983-003",
            "site-370983-004"
        ]
    );
    for site in sites["sites"].as_array().unwrap() {
        assert_eq!(site["district"], "370983");
        assert_eq!(site["machines"], 1, "{site}");
        let lat = site["lat_e7"].as_i64().unwrap();
        let lon = site["lon_e7"].as_i64().unwrap();
        assert!((361_000_000..363_000_000).contains(&lat), "肥城市: {site}");
        assert!(
            (1_166_000_000..1_170_000_000).contains(&lon),
            "肥城市: {site}"
        );
    }
    let open: i64 = sites["sites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["open_warnings"].as_i64().unwrap())
        .sum();
    assert!(open >= 3, "{sites}");

    let (status, list) = get(addr, "/v1/warnings", &enrolled.token);
    assert_eq!(status, 200, "{list}");
    let mut kinds: Vec<&str> = list["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["kind"].as_str().unwrap())
        .collect();
    kinds.sort();
    kinds.dedup();
    assert_eq!(
        kinds,
        [
            "repeated_refusals",
            "start_far_from_machine",
            "start_refused_expired_licence"
        ],
        "{list}"
    );
    let (status, page) = get(addr, "/v1/platform/sites/site-370983-002", &enrolled.token);
    assert_eq!(status, 200, "{page}");
    assert_eq!(
        page["site"]["open_by_kind"]["repeated_refusals"], 1,
        "{page}"
    );

    // Ctrl-C: the server stops and the demo ends with success.
    let pid = child.id().to_string();
    let killed = Command::new("kill").args(["-INT", &pid]).status().unwrap();
    assert!(killed.success());
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        rest.iter().any(|l| l.contains("The platform has stopped")),
        "{rest:?}"
    );
    assert!(
        TcpStream::connect(addr).is_err(),
        "the server no longer listens"
    );
}
