//! `decide --record` with the device's position, `history sessions`, `outbox list` and
//! `inspect check`, run as the built binary over a real profile database: the thin adapters over
//! the application layer print the services' views.

mod common;
use common::{Tmp, json_of};

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

const CERT: &str = "T11010519491231002X";
const EXPIRED: &str = "T370983198001011239";
const FIXED: &str = "M-370983-0001";

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_weldguard"))
        .args(args)
        .args(["--json", "--data-dir"])
        .arg(dir.join("data"))
        .env("LANG", "en_US.UTF-8")
        .env_remove("LC_ALL")
        .env_remove("LC_MESSAGES")
        .output()
        .unwrap()
}

fn ok(dir: &Path, args: &[&str]) -> Value {
    json_of(&run(dir, args), args)
}

/// A trust file and a registry with a valid and an expired licence, a fixed station bound to the
/// valid licence's holder.
fn setup(tmp: &Tmp) -> String {
    let dir = tmp.dir();
    let trust = tmp.path("trust.json");
    let made = Command::new(env!("CARGO_BIN_EXE_weldguard"))
        .args(["keys", "generate", "--alg", "ed25519", "--out"])
        .arg(tmp.path("issuer.key"))
        .arg("--trust-out")
        .arg(&trust)
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let registry = tmp.path("registry.jsonl");
    std::fs::write(
        &registry,
        [
            r#"{"type":"licence","certificate_no":"T11010519491231002X","id_number":"11010519491231002X","name":"张三","categories":["fusion_welding_and_cutting"],"issued_on":"2024-03-15","expires_on":"2030-03-15","next_review_on":"2027-03-15","employer_org":"91370983MA3C0XXXXX"}"#,
            r#"{"type":"licence","certificate_no":"T370983198001011239","id_number":"370983198001011239","name":"钱七","categories":["fusion_welding_and_cutting"],"issued_on":"2019-01-01","expires_on":"2025-01-01","next_review_on":"2028-01-01","review_extended":true}"#,
            r#"{"type":"machine","machine_id":"M-370983-0001","kind":"arc","class":"fixed_station","owner_org":"91370983MA3C0XXXXX","region":370983}"#,
            r#"{"type":"binding","machine_id":"M-370983-0001","certificate_no":"T11010519491231002X"}"#,
        ]
        .join("\n"),
    )
    .unwrap();
    let imported = ok(dir, &["registry", "import", registry.to_str().unwrap()]);
    assert_eq!(
        imported["rejected"].as_array().map(Vec::len),
        Some(0),
        "{imported}"
    );
    trust.to_str().unwrap().to_owned()
}

fn decide(dir: &Path, trust: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "decide",
        "--machine",
        FIXED,
        "--welder",
        CERT,
        "--trust",
        trust,
        "--at",
        "2026-11-30T09:00:00+08:00",
    ];
    args.extend_from_slice(extra);
    run(dir, &args)
}

#[test]
fn a_recorded_decision_keeps_the_position_and_history_lists_it_newest_first() {
    let tmp = Tmp::new("history");
    let dir = tmp.dir();
    let trust = setup(&tmp);

    // Without --record: the answer, nothing saved.
    let args = ["decide"];
    let asked = json_of(&decide(dir, &trust, &[]), &args);
    assert_eq!(asked["decision"]["allowed"], true, "{asked}");
    assert_eq!(asked["session_id"], Value::Null);
    assert_eq!(asked["machine_id"], FIXED);
    assert!(
        asked["decision"]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["code"] == "welder.unsigned_source")
    );

    let first = json_of(
        &decide(
            dir,
            &trust,
            &[
                "--record",
                "--lat",
                "36.182",
                "--lon",
                "116.772",
                "--accuracy",
                "12.5",
            ],
        ),
        &args,
    );
    assert_eq!(first["decision"]["allowed"], true, "{first}");
    assert_eq!(first["position"]["latitude_e7"], 361_820_000);
    assert_eq!(first["position"]["accuracy_m"], 13);
    let second = json_of(&decide(dir, &trust, &["--record"]), &args);
    let first_id = first["session_id"].as_str().unwrap();
    let second_id = second["session_id"].as_str().unwrap();

    // A position out of range: input error (exit 2), nothing saved.
    let bad = decide(
        dir,
        &trust,
        &[
            "--record",
            "--lat",
            "91",
            "--lon",
            "116.772",
            "--accuracy",
            "5",
        ],
    );
    assert_eq!(bad.status.code(), Some(2), "{bad:?}");
    let said: Value = serde_json::from_slice(&bad.stdout).unwrap();
    assert_eq!(said["error"]["code"], "input.position", "{said}");

    let page = ok(dir, &["history", "sessions", "--limit", "1"]);
    let sessions = page["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0]["id"], second_id);
    assert_eq!(sessions[0]["outbox_state"], "pending");
    let cursor = page["next_cursor"].as_i64().unwrap().to_string();
    let older = ok(dir, &["history", "sessions", "--before", &cursor]);
    let sessions = older["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0]["id"], first_id);
    assert_eq!(sessions[0]["position"]["longitude_e7"], 1_167_720_000);
    assert_eq!(older["next_cursor"], Value::Null);

    let outbox = ok(dir, &["outbox", "list"]);
    assert_eq!(outbox["entries"].as_array().unwrap().len(), 2);
    assert_eq!(outbox["counts"]["pending"], 2);
    assert_eq!(outbox["entries"][0]["idempotency_key"], first_id);
    assert_eq!(outbox["entries"][0]["refusal"], Value::Null);
    let payload: Value =
        serde_json::from_str(outbox["entries"][0]["payload"].as_str().unwrap()).unwrap();
    assert_eq!(payload["position"]["latitude_e7"], 361_820_000);
}

#[test]
fn inspect_check_shows_the_licence_as_the_registry_keeps_it() {
    let tmp = Tmp::new("check");
    let dir = tmp.dir();
    let trust = setup(&tmp);
    let at = ["--at", "2026-11-30T09:00:00+08:00"];
    let mut args = vec!["inspect", "check", CERT, "--trust", trust.as_str()];
    args.extend(at);
    let valid = ok(dir, &args);
    assert_eq!(valid["state"], "valid", "{valid}");
    assert_eq!(valid["code_verified"], false);
    assert_eq!(valid["scanned"], "unsigned_certificate_no");
    assert_eq!(valid["licence"]["id_number_masked"], "1101**********002X");
    assert_eq!(valid["licence"]["name"], "张三");
    assert_eq!(valid["bound_machines"][0]["machine_id"], FIXED);
    assert_eq!(valid["bound_machines"][0]["class"], "fixed_station");

    let mut args = vec!["inspect", "check", EXPIRED];
    args.extend(at);
    let expired = ok(dir, &args);
    assert_eq!(expired["state"], "expired", "{expired}");
    assert!(
        expired["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["code"] == "licence.expired" && r["zh"] != r["en"])
    );

    let junk = run(dir, &["inspect", "check", "hello"]);
    assert_eq!(junk.status.code(), Some(2), "{junk:?}");
}
