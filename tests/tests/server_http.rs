//! The server's HTTP qualities over real HTTP on loopback, against the server binary: gzip answers
//! (and the device client decoding them), the served OpenAPI document (equal to the checked-in
//! one, and its roles true to the running server), `/metrics` in Prometheus text format, and
//! structured JSON logs with request ids and no secrets.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::NaiveDate;
use serde_json::Value;
use weldguard_core::domain::{Licence, LicenceStatus, OperationCategory};
use weldguard_core::rules::id_number::check_character;
use weldguard_core::rules::registry::RegistryView;
use weldguard_core::store::{NewWorkSession, RegistryChange, Store};
use weldguard_core::sync::protocol::Role;
use weldguard_core::sync::{RetryPolicy, SyncClient};
use weldguard_tests::{ServerProcess, TempDir};

const SERVER: &str = env!("CARGO_BIN_EXE_wg-server-e2e");
const ADMIN: &str = "http-admin-token-0123456789";
const CHECKED_IN_OPENAPI: &str = include_str!("../../server/openapi.json");

fn policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(100),
        request_timeout: Duration::from_secs(30),
        connect_timeout: Duration::from_secs(2),
    }
}

fn licence(serial: u32) -> Licence {
    let first17 = format!("370983{:04}0101{:03}", 1960 + serial / 1000, serial % 1000);
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

/// An answer read off the wire: status, headers (names lower-cased), body as sent (chunked
/// transfer coding removed, content coding kept).
struct Answer {
    status: u16,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n").unwrap();
        let size_text = std::str::from_utf8(&data[..line_end]).unwrap();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
        data = &data[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    extra_headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(t) = token {
        head.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    for (k, v) in extra_headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: BTreeMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers.get("transfer-encoding").map(String::as_str) == Some("chunked") {
        body = dechunk(&body);
    }
    Answer {
        status,
        headers,
        body,
    }
}

fn admin(server: &ServerProcess) -> SyncClient {
    SyncClient::new(&server.url(), Some(ADMIN.into()), policy()).unwrap()
}

fn token_for(server: &ServerProcess, role: Role) -> String {
    let code = match role {
        Role::Monitor => weldguard_tests::monitor_code(server, "monitor", "city"),
        _ => {
            admin(server)
                .create_enrolment(role.as_str(), role)
                .unwrap()
                .code
        }
    };
    SyncClient::new(&server.url(), None, policy())
        .unwrap()
        .enrol(&code, "04aabb", "phone")
        .unwrap()
        .token
}

/// A TCP relay that keeps a copy of everything the server sent.
fn recording_relay(upstream: SocketAddr) -> (SocketAddr, Arc<Mutex<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(mut client) = client else { continue };
            let Ok(mut server) = TcpStream::connect(upstream) else {
                continue;
            };
            let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut c2, &mut s2);
                let _ = s2.shutdown(std::net::Shutdown::Write);
            });
            let record = record.clone();
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = match server.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    record.lock().unwrap().extend_from_slice(&buf[..n]);
                    if client.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = client.shutdown(std::net::Shutdown::Both);
            });
        }
    });
    (addr, seen)
}

#[test]
fn pull_pages_travel_gzip_compressed_and_the_device_still_syncs() {
    let data = TempDir::new("server-gzip");
    let server = ServerProcess::start(SERVER, data.path(), ADMIN);
    let changes: Vec<RegistryChange> = (0..5000)
        .map(|i| RegistryChange::UpsertLicence(licence(i)))
        .collect();
    admin(&server).write_registry(&changes).unwrap();

    let path = "/v1/pull?limit=5000";
    let plain = request(server.addr, "GET", path, Some(ADMIN), &[], "");
    let gzip = request(
        server.addr,
        "GET",
        path,
        Some(ADMIN),
        &[("Accept-Encoding", "gzip")],
        "",
    );
    assert_eq!((plain.status, gzip.status), (200, 200));
    assert_eq!(plain.headers.get("content-encoding"), None);
    assert_eq!(
        gzip.headers.get("content-encoding").map(String::as_str),
        Some("gzip")
    );
    assert_eq!(gzip.body.get(..2), Some(&[0x1f, 0x8b][..]), "gzip magic");
    let page: Value = serde_json::from_slice(&plain.body).unwrap();
    assert_eq!(page["changes"].as_array().unwrap().len(), 5000);
    eprintln!(
        "pull page of 5000 licence changes: {} bytes plain, {} bytes gzip ({:.1}x smaller)",
        plain.body.len(),
        gzip.body.len(),
        plain.body.len() as f64 / gzip.body.len() as f64
    );
    assert!(
        gzip.body.len() * 4 < plain.body.len(),
        "registry pages compress well"
    );

    // The real device client, through a relay that sees what the server sent.
    let (relay, seen) = recording_relay(server.addr);
    let token = token_for(&server, Role::Welder);
    let client = SyncClient::new(&format!("http://{relay}"), Some(token), policy()).unwrap();
    let dir = TempDir::new("device-gzip");
    let store = Store::open(dir.path().join("device.sqlite")).unwrap();
    store
        .record_work_session(
            NewWorkSession {
                machine_id: "FC-M-00001".into(),
                certificate_no: licence(1).certificate_no,
                started_at_ms: 1_764_374_400_000,
                allowed: true,
                reason_codes: vec![],
                permit_id: None,
                position: None,
            },
            1_764_374_400_000,
        )
        .unwrap();
    let report = client
        .sync(&store, &mut |_| {}, &AtomicBool::new(false))
        .unwrap();
    assert_eq!(report.pulled_changes, 5000, "{report:?}");
    assert_eq!(report.applied, 1, "{report:?}");
    assert!(
        store
            .licence(&licence(4999).certificate_no)
            .unwrap()
            .is_some()
    );
    let wire = String::from_utf8_lossy(&seen.lock().unwrap()).to_ascii_lowercase();
    assert!(
        wire.contains("content-encoding: gzip"),
        "the client asked for gzip and got it"
    );
}

#[test]
fn the_served_openapi_is_the_checked_in_one_and_its_roles_hold_on_the_running_server() {
    let data = TempDir::new("server-openapi");
    let server = ServerProcess::start(SERVER, data.path(), ADMIN);
    let served = request(server.addr, "GET", "/openapi.json", None, &[], "");
    assert_eq!(served.status, 200);
    assert_eq!(String::from_utf8(served.body).unwrap(), CHECKED_IN_OPENAPI);

    let doc: Value = serde_json::from_str(CHECKED_IN_OPENAPI).unwrap();
    let tokens: Vec<(Role, String)> = Role::ALL
        .into_iter()
        .map(|r| (r, token_for(&server, r)))
        .collect();
    let mut failures = Vec::new();
    let mut checked = 0;
    for (template, item) in doc["paths"].as_object().unwrap() {
        // Path parameters filled with a placeholder: handlers check the caller before the input.
        let path: String = template
            .split('/')
            .map(|s| if s.starts_with('{') { "x" } else { s })
            .collect::<Vec<_>>()
            .join("/");
        for (method, op) in item.as_object().unwrap() {
            let method = method.to_uppercase();
            let protected = !op["security"].as_array().unwrap().is_empty();
            // A stream's answer never ends: only its status line is read.
            let streams = op["responses"]["200"]["content"]["text/event-stream"].is_object();
            let status_of = |token: Option<&str>| -> u16 {
                if streams {
                    weldguard_tests::status_line(server.addr, &path, token)
                } else {
                    request(server.addr, &method, &path, token, &[], "").status
                }
            };
            let anonymous = status_of(None);
            if protected != (anonymous == 401) {
                failures.push(format!("{method} {path} without a token: {anonymous}"));
            }
            if !protected {
                continue;
            }
            let roles: Vec<&str> = op["x-roles"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap())
                .collect();
            for (role, token) in &tokens {
                let status = status_of(Some(token));
                let documented = roles.contains(&role.as_str());
                if documented == (status == 403) || status == 401 {
                    failures.push(format!(
                        "{method} {path} as {}: {status}, documented roles {roles:?}",
                        role.as_str()
                    ));
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 60, "{checked}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A parsed sample: name, labels, value.
type Sample = (String, BTreeMap<String, String>, f64);

/// Samples of the exposition; panics on a line the text format does not allow or a sample of a
/// family without HELP and TYPE.
fn parse_metrics(text: &str) -> Vec<Sample> {
    let mut help = Vec::new();
    let mut types = Vec::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            help.push(rest.split(' ').next().unwrap().to_owned());
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            types.push(name.to_owned());
            continue;
        }
        assert!(!line.starts_with('#') && !line.is_empty(), "{line:?}");
        let (head, value) = line.rsplit_once(' ').unwrap();
        let value: f64 = if value == "+Inf" {
            f64::INFINITY
        } else {
            value
                .parse()
                .unwrap_or_else(|_| panic!("bad value: {line}"))
        };
        let (name, labels) = match head.split_once('{') {
            None => (head, BTreeMap::new()),
            Some((name, rest)) => {
                let inner = rest
                    .strip_suffix('}')
                    .unwrap_or_else(|| panic!("labels: {line}"));
                let labels = inner
                    .split("\",")
                    .map(|pair| {
                        let (k, v) = pair
                            .split_once("=\"")
                            .unwrap_or_else(|| panic!("label: {line}"));
                        (k.to_owned(), v.trim_end_matches('"').to_owned())
                    })
                    .collect();
                (name, labels)
            }
        };
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "{line}"
        );
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|f| types.iter().any(|t| t == f))
            })
            .unwrap_or(name);
        assert!(
            types.iter().any(|t| t == family) && help.iter().any(|h| h == family),
            "no HELP/TYPE for {family}"
        );
        samples.push((name.to_owned(), labels, value));
    }
    samples
}

fn sample(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, _, v)| v)
        .sum()
}

#[test]
fn metrics_are_prometheus_text_for_admins_and_count_what_happens() {
    let data = TempDir::new("server-metrics");
    let server = ServerProcess::start(SERVER, data.path(), ADMIN);
    let welder = token_for(&server, Role::Welder);
    assert_eq!(
        request(server.addr, "GET", "/metrics", Some(&welder), &[], "").status,
        403
    );
    assert_eq!(
        request(server.addr, "GET", "/metrics", None, &[], "").status,
        401
    );
    let read = || {
        let answer = request(server.addr, "GET", "/metrics", Some(ADMIN), &[], "");
        assert_eq!(answer.status, 200);
        assert!(
            answer.headers["content-type"].starts_with("text/plain; version=0.0.4"),
            "{:?}",
            answer.headers
        );
        parse_metrics(&String::from_utf8(answer.body).unwrap())
    };
    let before = read();
    let start = sample(&before, "process_start_time_seconds", &[]);
    assert!(start > 1.7e9, "{start}");
    let me_ok = [("route", "/v1/me"), ("method", "GET"), ("status", "200")];

    for _ in 0..3 {
        assert_eq!(
            request(server.addr, "GET", "/v1/me", Some(&welder), &[], "").status,
            200
        );
    }
    let key = "0192d0a0-0000-7000-8000-000000000001";
    let payload = serde_json::json!({"id": key, "machine_id": "FC-M-1"}).to_string();
    let push = serde_json::json!({"entries": [
        {"idempotency_key": key, "kind": "work_session", "payload": payload},
        {"idempotency_key": "k2", "kind": "inspection", "payload": "{}"}
    ]})
    .to_string();
    let pushed = request(server.addr, "POST", "/v1/push", Some(&welder), &[], &push);
    assert_eq!(pushed.status, 200);
    request(server.addr, "POST", "/v1/push", Some(&welder), &[], &push);
    request(server.addr, "GET", "/v1/pull", Some(&welder), &[], "");
    request(server.addr, "GET", "/no/such/route", None, &[], "");

    let after = read();
    let rise = |name: &str, labels: &[(&str, &str)]| {
        sample(&after, name, labels) - sample(&before, name, labels)
    };
    assert_eq!(rise("weldguard_http_requests_total", &me_ok), 3.0);
    assert_eq!(
        rise(
            "weldguard_http_request_duration_seconds_count",
            &[("route", "/v1/me")]
        ),
        3.0
    );
    assert_eq!(
        rise(
            "weldguard_http_request_duration_seconds_bucket",
            &[("route", "/v1/me"), ("le", "+Inf")]
        ),
        3.0
    );
    assert_eq!(
        rise(
            "weldguard_http_requests_total",
            &[("route", "/metrics"), ("status", "403")]
        ),
        0.0,
        "the 403 came before the first read"
    );
    assert_eq!(
        sample(
            &after,
            "weldguard_http_requests_total",
            &[("route", "unmatched"), ("status", "404")]
        ),
        1.0,
        "unknown paths share one label value"
    );
    let outcome = |o| rise("weldguard_push_entries_total", &[("outcome", o)]);
    let (applied, duplicate, rejected) = (
        outcome("applied"),
        outcome("duplicate"),
        outcome("rejected"),
    );
    assert_eq!(
        applied + duplicate + rejected,
        4.0,
        "two pushes of two entries"
    );
    assert!(rejected >= 2.0, "a welder may not push inspections");
    assert_eq!(rise("weldguard_pull_pages_total", &[]), 1.0);
    assert_eq!(rise("weldguard_database_errors_total", &[]), 0.0);
}

#[test]
fn each_request_is_one_json_log_line_with_its_id_and_no_secrets() {
    let data = TempDir::new("server-logs");
    let mut child = Command::new(SERVER)
        .arg("--data-dir")
        .arg(data.path())
        .args(["--listen", "127.0.0.1:0", "--admin-token", ADMIN])
        .args(["--log-format", "json"])
        .env("WELDGUARD_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr: SocketAddr = loop {
        let line = stdout.next().unwrap().unwrap();
        if let Some(rest) = line.strip_prefix("listening on http://") {
            break rest.trim().parse().unwrap();
        }
    };
    std::thread::spawn(move || for _ in stdout {});
    let stderr = child.stderr.take().unwrap();
    let log = std::thread::spawn(move || {
        let mut text = String::new();
        BufReader::new(stderr).read_to_string(&mut text).unwrap();
        text
    });

    let created = request(
        addr,
        "POST",
        "/v1/admin/enrolments",
        Some(ADMIN),
        &[],
        r#"{"person":"李四","role":"inspector"}"#,
    );
    let code: Value = serde_json::from_slice(&created.body).unwrap();
    let code = code["code"].as_str().unwrap().to_owned();
    let enrolled = request(
        addr,
        "POST",
        "/v1/enrol",
        None,
        &[],
        &format!(r#"{{"code":"{code}","public_key":"04aa","device_name":"phone"}}"#),
    );
    let enrolled: Value = serde_json::from_slice(&enrolled.body).unwrap();
    let token = enrolled["token"].as_str().unwrap().to_owned();
    let device_id = enrolled["device_id"].as_str().unwrap().to_owned();
    let me = request(
        addr,
        "GET",
        "/v1/me",
        Some(&token),
        &[("X-Request-Id", "trace-me-42")],
        "",
    );
    assert_eq!(me.status, 200);
    assert_eq!(me.headers["x-request-id"], "trace-me-42");
    let fresh = request(addr, "GET", "/health", None, &[], "");
    let fresh_id = fresh.headers["x-request-id"].clone();
    assert!(fresh_id.len() >= 16, "a fresh id when none was sent");
    let bad = request(
        addr,
        "GET",
        "/v1/admin/licences/T370983199001010012",
        Some(&token),
        &[],
        "",
    );
    assert_eq!(bad.status, 405);

    // SIGTERM: the server finishes and logs its shutdown.
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    child.wait().unwrap();
    let text = log.join().unwrap();

    let events: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let messages: Vec<&str> = events
        .iter()
        .filter_map(|e| e["message"].as_str())
        .collect();
    assert!(messages.contains(&"server started"), "{messages:?}");
    assert!(messages.contains(&"server stopped"), "{messages:?}");
    let me_event = events
        .iter()
        .find(|e| e["request_id"] == "trace-me-42")
        .unwrap_or_else(|| panic!("no log line for the request id:\n{text}"));
    assert_eq!(me_event["message"], "request");
    assert_eq!(me_event["method"], "GET");
    assert_eq!(me_event["route"], "/v1/me");
    assert_eq!(me_event["status"], 200);
    assert_eq!(me_event["device_id"], device_id.as_str());
    assert_eq!(me_event["role"], "inspector");
    assert!(me_event["latency_ms"].as_f64().unwrap() >= 0.0);
    assert!(me_event["timestamp"].is_string() && me_event["level"] == "INFO");
    assert!(
        events.iter().any(|e| e["request_id"] == fresh_id.as_str()),
        "the fresh id is logged too"
    );
    let requests = events.iter().filter(|e| e["message"] == "request").count();
    assert_eq!(requests, 5, "one line per request");
    for secret in [
        ADMIN,
        token.as_str(),
        code.as_str(),
        "T370983199001010012",
        "李四",
    ] {
        assert!(!text.contains(secret), "the log holds {secret:?}:\n{text}");
    }
}

#[test]
fn an_admin_disables_a_lost_phone_and_its_token_stops_working_at_once() {
    let data = TempDir::new("server-disable");
    let server = ServerProcess::start(SERVER, data.path(), ADMIN);
    let welder = token_for(&server, Role::Welder);
    let inspector = token_for(&server, Role::Inspector);
    let json = |a: &Answer| -> Value { serde_json::from_slice(&a.body).unwrap() };
    let me = request(server.addr, "GET", "/v1/me", Some(&welder), &[], "");
    assert_eq!(me.status, 200);
    let id = json(&me)["device_id"].as_str().unwrap().to_owned();
    let disable = |token: &str, device: &str| {
        let path = format!("/v1/admin/devices/{device}/disable");
        request(server.addr, "POST", &path, Some(token), &[], "")
    };

    // Only admins; an unknown device and the admin's own device are refused, changing nothing.
    let refused = disable(&inspector, &id);
    assert_eq!(
        (refused.status, json(&refused)["code"].clone()),
        (403, "auth.forbidden".into())
    );
    let unknown = disable(ADMIN, "no-such-device");
    assert_eq!(
        (unknown.status, json(&unknown)["code"].clone()),
        (404, "device.unknown".into())
    );
    let admin_id = json(&request(server.addr, "GET", "/v1/me", Some(ADMIN), &[], ""))["device_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let own = disable(ADMIN, &admin_id);
    assert_eq!(
        (own.status, json(&own)["code"].clone()),
        (409, "device.self".into())
    );
    assert_eq!(
        request(server.addr, "GET", "/v1/me", Some(&welder), &[], "").status,
        200
    );
    assert_eq!(
        request(server.addr, "GET", "/v1/me", Some(ADMIN), &[], "").status,
        200
    );

    let done = disable(ADMIN, &id);
    assert_eq!(done.status, 200);
    assert_eq!(
        json(&done),
        serde_json::json!({"device_id": id, "disabled": true})
    );
    let after = request(server.addr, "GET", "/v1/me", Some(&welder), &[], "");
    assert_eq!(
        (after.status, json(&after)["code"].clone()),
        (401, "auth.bad_token".into())
    );
    // The phone cannot get a new token either.
    let challenge = request(
        server.addr,
        "POST",
        "/v1/auth/challenge",
        None,
        &[],
        &serde_json::json!({"device_id": id}).to_string(),
    );
    assert_eq!(
        challenge.status,
        401,
        "{}",
        String::from_utf8_lossy(&challenge.body)
    );
    assert_eq!(json(&challenge)["code"], "auth.device_disabled");
    // Other devices go on.
    assert_eq!(
        request(server.addr, "GET", "/v1/me", Some(&inspector), &[], "").status,
        200
    );
}
