//! Runs the built `weldguard` binary through a whole hot-work permit (draft → closed) in a temporary
//! data folder, checks that a refused step changes nothing, makes and scans the permit's site code,
//! and records an inspection that finds violations.

mod common;
use common::{Tmp, json_of};

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use weldguard_core::permit::{
    Catalog, ChecklistAnswer, Evidence, EvidenceRequirement, GasReading, MACHINE_DISTANCE_KEY,
    PersonRole, Section,
};

const WELDER: &str = "T370983199001011234";
const ID: &str = "0193a1b2-0000-7000-8000-0000000000c1";

fn run(dir: &Path, args: &[&str]) -> Output {
    let data = dir.join("data");
    Command::new(env!("CARGO_BIN_EXE_weldguard"))
        .args(args)
        .args(["--json", "--data-dir", data.to_str().unwrap()])
        .env("LANG", "en_US.UTF-8")
        .env_remove("LC_ALL")
        .env_remove("LC_MESSAGES")
        .output()
        .unwrap()
}

fn ok(dir: &Path, args: &[&str]) -> Value {
    let out = run(dir, args);
    json_of(&out, args)
}

fn at(h: u32, m: u32) -> String {
    format!("2026-11-30T{h:02}:{m:02}:00+08:00")
}

fn key(dir: &Path, name: &str) -> String {
    let path = dir.join(format!("{name}.key"));
    let out = Command::new(env!("CARGO_BIN_EXE_weldguard"))
        .args(["permit", "key", "--json", "--out", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    path.to_str().unwrap().to_owned()
}

/// Answers to every pre-work item, as an on-site checker gives them.
/// The platform's part, offline: an issuer key and its trust file, a signer directory enrolling
/// `people` (key file, person id, name, permit role) signed with it, imported into this device.
fn enrol_signers(dir: &Path, people: &[(&str, &str, &str, &str)]) {
    let issuer = dir.join("issuer.key");
    let trust = dir.join("trust.json");
    let made = Command::new(env!("CARGO_BIN_EXE_weldguard"))
        .args(["keys", "generate", "--alg", "ed25519", "--out"])
        .arg(&issuer)
        .arg("--trust-out")
        .arg(&trust)
        .args(["--valid-from", "2026-01-01"])
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let entries: Vec<Value> = people
        .iter()
        .map(|(key, id, name, role)| {
            let file: Value = serde_json::from_str(&std::fs::read_to_string(key).unwrap()).unwrap();
            serde_json::json!({
                "public_key": file["public_key"], "person_id": id, "name": name, "roles": [role],
            })
        })
        .collect();
    let entries_file = dir.join("signers.json");
    std::fs::write(&entries_file, serde_json::to_string(&entries).unwrap()).unwrap();
    let signed = dir.join("signers.cose");
    let issued = Command::new(env!("CARGO_BIN_EXE_weldguard"))
        .args(["signers", "issue", "--key"])
        .arg(&issuer)
        .arg("--entries")
        .arg(&entries_file)
        .arg("--out")
        .arg(&signed)
        .output()
        .unwrap();
    assert!(issued.status.success(), "{issued:?}");
    let imported = ok(
        dir,
        &[
            "signers",
            "import",
            signed.to_str().unwrap(),
            "--trust",
            trust.to_str().unwrap(),
        ],
    );
    assert_eq!(imported["entries"], people.len());
}

fn site_answers() -> Vec<ChecklistAnswer> {
    let catalog = Catalog::builtin().unwrap();
    catalog
        .items
        .iter()
        .filter(|i| i.section != Section::PostWork)
        .map(|item| {
            let mut evidence: Vec<Evidence> = item
                .evidence
                .iter()
                .map(|req| match req {
                    EvidenceRequirement::Photo => Evidence::Photo {
                        sha256: vec![7; 32],
                    },
                    EvidenceRequirement::Number { key, min, .. } => Evidence::Number {
                        key: key.clone(),
                        value: min.unwrap_or(1) + 1,
                    },
                    EvidenceRequirement::Person { role } => Evidence::Person {
                        role: *role,
                        name: "王五".into(),
                        id: match role {
                            PersonRole::Welder => WELDER.into(),
                            _ => "S-002".into(),
                        },
                    },
                    EvidenceRequirement::GasAnalysis => Evidence::GasAnalysis {
                        reading: GasReading {
                            taken_at: 1_795_994_100, // 2026-11-30 07:15 China time
                            lel_centi_pct: 500,
                            concentration_centi_pct: 10,
                            point: "储罐内".into(),
                            analyst: "赵六".into(),
                        },
                    },
                })
                .collect();
            if item.id == "must.01" {
                evidence.push(Evidence::Number {
                    key: MACHINE_DISTANCE_KEY.into(),
                    value: 8,
                });
            }
            ChecklistAnswer::confirmed(&item.id, evidence)
        })
        .collect()
}

fn post_work_answers() -> Vec<ChecklistAnswer> {
    vec![
        ChecklistAnswer::confirmed(
            "close.01",
            vec![Evidence::Photo {
                sha256: vec![3; 32],
            }],
        ),
        ChecklistAnswer::confirmed("close.02", vec![]),
        ChecklistAnswer::confirmed(
            "close.03",
            vec![
                Evidence::Person {
                    role: PersonRole::FireWatch,
                    name: "王五".into(),
                    id: "S-002".into(),
                },
                Evidence::Number {
                    key: "watch_minutes".into(),
                    value: 30,
                },
            ],
        ),
    ]
}

fn pending(dir: &Path) -> usize {
    ok(dir, &["outbox", "list"])["entries"]
        .as_array()
        .unwrap()
        .len()
}

const SITE: [&str; 4] = ["--lat", "36.182", "--lon", "116.772"];

#[test]
fn a_permit_runs_from_draft_to_closed_and_an_inspection_finds_violations() {
    let tmp = Tmp::new("permit");
    let dir = tmp.dir();
    let applicant = key(dir, "applicant");
    let checker = key(dir, "checker");
    let approver = key(dir, "approver");
    let closer = key(dir, "closer");
    let inspector = key(dir, "inspector");
    let answers = tmp.path("answers.json");
    std::fs::write(&answers, serde_json::to_string(&site_answers()).unwrap()).unwrap();
    let post = tmp.path("post.json");
    std::fs::write(&post, serde_json::to_string(&post_work_answers()).unwrap()).unwrap();

    let (from, until, draft_at) = (at(8, 0), at(17, 0), at(6, 45));
    let mut args = vec![
        "permit",
        "draft",
        "--permit-id",
        ID,
        "--site-id",
        "site-370983-001",
        "--site-name",
        "肥城某化工厂三车间",
        "--rules",
        "gb30871",
        "--work",
        "更换3号储罐出口管线法兰",
        "--point",
        "3号储罐东侧管廊",
        "--level",
        "level2",
        "--from",
        &from,
        "--until",
        &until,
        "--applicant",
        "张三:S-001",
        "--welder",
        "李四:T370983199001011234",
        "--machine",
        "M-370983-0001",
        "--fire-watch",
        "王五:S-002",
        "--at",
        &draft_at,
    ];
    args.extend(SITE);
    let drafted = ok(dir, &args);
    assert_eq!(drafted["state"], "draft");
    assert_eq!(pending(dir), 1);

    // A step out of order is refused with one line, a non-zero exit, and nothing written.
    let t = at(7, 40);
    let refused = run(
        dir,
        &[
            "permit",
            "approve",
            ID,
            "--key",
            &approver,
            "--by",
            "周八:S-004",
            "--at",
            &t,
        ],
    );
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("draft"), "{stderr}");
    assert_eq!(pending(dir), 1);

    let t = at(7, 0);
    let s = ok(
        dir,
        &[
            "permit",
            "submit",
            ID,
            "--key",
            &applicant,
            "--by",
            "张三:S-001",
            "--at",
            &t,
        ],
    );
    assert_eq!(s["state"], "submitted");
    let t = at(7, 20);
    let mut check = vec![
        "permit",
        "check",
        ID,
        "--key",
        &checker,
        "--by",
        "孙七:S-003",
        "--answers",
        answers.to_str().unwrap(),
        "--at",
        &t,
    ];
    check.extend(SITE);
    assert_eq!(ok(dir, &check)["state"], "checked");
    let t = at(7, 40);
    let mut approve = vec![
        "permit",
        "approve",
        ID,
        "--key",
        &approver,
        "--by",
        "周八:S-004",
        "--at",
        &t,
    ];
    approve.extend(SITE);
    // A software key cannot verify the approver's presence: without the operator's --present
    // the approval is refused with one line, and nothing is written.
    let absent = run(dir, &approve);
    assert_eq!(absent.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&absent.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("presence"), "{stderr}");
    let doc: Value = serde_json::from_slice(&absent.stdout).unwrap();
    assert_eq!(doc["error"]["code"], "permit.presence_required");
    assert_eq!(pending(dir), 3);
    approve.push("--present");
    let approved = ok(dir, &approve);
    assert_eq!(approved["state"], "approved");
    assert_eq!(approved["signatures"][2]["user_present"], true);

    // The site code: only the approver's key makes it; it reads back and matches the stored permit.
    let not_approver = run(dir, &["permit", "code", ID, "--key", &checker]);
    assert_eq!(not_approver.status.code(), Some(2));
    let png = tmp.path("permit.png");
    let code = ok(
        dir,
        &[
            "permit",
            "code",
            ID,
            "--key",
            &approver,
            "--png",
            png.to_str().unwrap(),
        ],
    );
    let text = code["text"].as_str().unwrap().to_owned();
    assert!(text.starts_with("WG1:"));
    assert!(png.exists());
    let scanned = ok(dir, &["permit", "scan", &text]);
    assert_eq!(scanned["valid"], true);
    assert_eq!(scanned["matches_stored"], true);
    assert_eq!(scanned["claims"]["permit_id"], ID);

    let t = at(8, 55);
    ok(
        dir,
        &[
            "permit",
            "gas",
            ID,
            "--lel",
            "500",
            "--concentration",
            "10",
            "--point",
            "动火点",
            "--analyst",
            "赵六",
            "--at",
            &t,
        ],
    );
    let t = at(9, 0);
    assert_eq!(
        ok(dir, &["permit", "start", ID, "--by", WELDER, "--at", &t])["state"],
        "active"
    );
    let t = at(12, 0);
    assert_eq!(
        ok(dir, &["permit", "complete", ID, "--at", &t])["state"],
        "completed"
    );
    let t = at(12, 30);
    let mut close = vec![
        "permit",
        "close",
        ID,
        "--key",
        &closer,
        "--by",
        "王五:S-002",
        "--answers",
        post.to_str().unwrap(),
        "--at",
        &t,
    ];
    close.extend(SITE);
    assert_eq!(ok(dir, &close)["state"], "closed");
    assert_eq!(pending(dir), 8, "draft + 7 steps, one outbox entry each");

    let shown = ok(dir, &["permit", "show", ID]);
    assert_eq!(shown["permit"]["state"], "closed");
    assert_eq!(shown["steps"].as_array().unwrap().len(), 8);
    assert_eq!(shown["permit"]["signatures"].as_array().unwrap().len(), 4);
    let listed = ok(dir, &["permit", "list", "--state", "closed"]);
    assert_eq!(listed["permits"].as_array().unwrap().len(), 1);
    assert!(
        ok(dir, &["permit", "list", "--state", "active"])["permits"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    // Without the platform's signer directory nobody is vouched for: the permit does not count.
    let unvouched = ok(dir, &["permit", "verify", ID]);
    assert_eq!(unvouched["valid"], false, "{unvouched}");
    assert_eq!(unvouched["reason"]["code"], "permit.directory_missing");
    enrol_signers(
        dir,
        &[
            (&applicant, "S-001", "张三", "applicant"),
            (&checker, "S-003", "孙七", "supervisor"),
            (&approver, "S-004", "周八", "unit_head"),
            (&closer, "S-002", "王五", "supervisor"),
        ],
    );
    let verified = ok(dir, &["permit", "verify", ID]);
    assert_eq!(verified["valid"], true, "{verified}");
    assert_eq!(verified["signatures"].as_array().unwrap().len(), 4);

    // Inspection at 14:00: the welder shows no credential, the permit shown is closed, and
    // combustibles lie around the hot-work point.
    let obs = tmp.path("obs.json");
    std::fs::write(
        &obs,
        r#"[{"item_id":"ban.05","outcome":"not_compliant","note":"动火点周围有可燃物","photos":[]}]"#,
    )
    .unwrap();
    let t = at(14, 0);
    let inspected = ok(
        dir,
        &[
            "inspect",
            "record",
            "--site-id",
            "site-370983-001",
            "--inspector",
            "网格员刘:G-0042",
            "--key",
            &inspector,
            "--permit",
            ID,
            "--observations",
            obs.to_str().unwrap(),
            "--photo",
            &"ab".repeat(32),
            "--lat",
            "36.182",
            "--lon",
            "116.772",
            "--at",
            &t,
        ],
    );
    let kinds: Vec<&str> = inspected["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"no_licence"), "{kinds:?}");
    assert!(kinds.contains(&"permit_not_approved"), "{kinds:?}");
    assert!(kinds.contains(&"prohibition_violated"), "{kinds:?}");
    assert_eq!(inspected["report_required"], true);
    assert_eq!(pending(dir), 9);
    let list = ok(dir, &["inspect", "list"]);
    let rows = list["inspections"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["permit_id"], ID);

    // Bad input: an unknown checklist item is refused and nothing is recorded.
    std::fs::write(
        &obs,
        r#"[{"item_id":"ban.99","outcome":"not_compliant","note":"","photos":[]}]"#,
    )
    .unwrap();
    let bad = run(
        dir,
        &[
            "inspect",
            "record",
            "--site-id",
            "site-370983-001",
            "--inspector",
            "网格员刘:G-0042",
            "--key",
            &inspector,
            "--observations",
            obs.to_str().unwrap(),
            "--at",
            &t,
        ],
    );
    assert_eq!(bad.status.code(), Some(2));
    assert_eq!(pending(dir), 9);
}
