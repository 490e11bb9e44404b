//! `weldguard code issue welder` refuses to sign a credential for a resident ID number that fails
//! GB 11643-1999 (the check character) and for an expiry date already past today (China time, the
//! clock read when the command runs, whatever `--at` says): one line in the user's language on
//! stderr, the stable code in the `--json` error, exit 2, and no label file written.

mod common;
use common::{Tmp, json_of};

use std::path::Path;
use std::process::{Command, Output};

use chrono::{Days, FixedOffset, Utc};

const BIN: &str = env!("CARGO_BIN_EXE_weldguard");
/// Valid: its check character is 3.
const GOOD_ID: &str = "370983199001011233";
/// The same number with another check character.
const BAD_ID: &str = "370983199001011234";

fn run(dir: &Path, lang: &str, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .arg("--json")
        .current_dir(dir)
        .env("LANG", lang)
        .env_remove("LC_ALL")
        .env_remove("LC_MESSAGES")
        .output()
        .unwrap()
}

/// Today in China time, as the command sees it.
fn today() -> chrono::NaiveDate {
    Utc::now()
        .with_timezone(&FixedOffset::east_opt(8 * 3600).unwrap())
        .date_naive()
}

struct Setup {
    tmp: Tmp,
    key: String,
    device_key: String,
}

fn setup(name: &str) -> Setup {
    let tmp = Tmp::new(name);
    let key = tmp.path("issuer.key");
    let out = run(
        tmp.dir(),
        "en_US.UTF-8",
        &[
            "keys",
            "generate",
            "--alg",
            "es256",
            "--out",
            key.to_str().unwrap(),
        ],
    );
    json_of(&out, &["keys", "generate"]);
    let device = tmp.path("device.key");
    let out = run(
        tmp.dir(),
        "en_US.UTF-8",
        &["permit", "key", "--out", device.to_str().unwrap()],
    );
    let device_key = json_of(&out, &["permit", "key"])["public_key"]
        .as_str()
        .unwrap()
        .to_owned();
    Setup {
        key: key.to_str().unwrap().to_owned(),
        device_key,
        tmp,
    }
}

fn issue(s: &Setup, lang: &str, id: &str, expires: &str, extra: &[&str]) -> Output {
    let png = s.tmp.path("welder.png");
    let mut args = vec![
        "code",
        "issue",
        "welder",
        "--key",
        &s.key,
        "--cert-no",
        "T370983199001011233",
        "--id-number",
        id,
        "--name",
        "李红梅",
        "--categories",
        "fusion",
        "--issued",
        "2023-05-10",
        "--expires",
        expires,
        "--next-review",
        "2026-05-09",
        "--device-key",
        &s.device_key,
        "--png",
        png.to_str().unwrap(),
    ];
    args.extend(extra);
    run(s.tmp.dir(), lang, &args)
}

/// The run was refused with `code`, one line on stderr containing `says`, and wrote no label.
fn assert_refused(s: &Setup, out: &Output, code: &str, says: &str) {
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["error"]["code"], code, "{doc}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains(says), "{stderr}");
    assert!(!s.tmp.path("welder.png").exists(), "nothing written");
}

#[test]
fn a_bad_check_character_is_refused_in_both_languages_and_nothing_is_written() {
    let s = setup("issue-bad-id");
    let out = issue(&s, "en_US.UTF-8", BAD_ID, "2099-01-01", &[]);
    assert_refused(&s, &out, "issue.bad_id_number", "GB 11643-1999");
    assert!(String::from_utf8_lossy(&out.stderr).contains("check character"));
    let out = issue(&s, "zh_CN.UTF-8", BAD_ID, "2099-01-01", &[]);
    assert_refused(&s, &out, "issue.bad_id_number", "身份号码");
    // A number of the wrong length, a legacy 15-digit one: refused the same way.
    for id in ["3709831990010112", "370983900101123"] {
        let out = issue(&s, "en_US.UTF-8", id, "2099-01-01", &[]);
        assert_refused(&s, &out, "issue.bad_id_number", id);
    }
    // The valid number is issued, and its label written.
    let out = issue(&s, "en_US.UTF-8", GOOD_ID, "2099-01-01", &[]);
    let issued = json_of(&out, &["code", "issue", "welder"]);
    assert!(issued["text"].as_str().unwrap().starts_with("WG1:"));
    assert!(s.tmp.path("welder.png").exists());
}

#[test]
fn an_expiry_already_past_is_refused_even_when_signed_at_an_earlier_time() {
    let s = setup("issue-expired");
    let yesterday = (today() - Days::new(1)).to_string();
    let out = issue(&s, "en_US.UTF-8", GOOD_ID, &yesterday, &[]);
    assert_refused(&s, &out, "issue.credential_expired", &yesterday);
    let out = issue(&s, "zh_CN.UTF-8", GOOD_ID, &yesterday, &[]);
    assert_refused(&s, &out, "issue.credential_expired", "已过期");
    // Backdating the signature does not help: "past" is the clock when the command runs.
    let out = issue(
        &s,
        "en_US.UTF-8",
        GOOD_ID,
        &yesterday,
        &["--at", "2024-01-01T09:00:00+08:00"],
    );
    assert_refused(&s, &out, "issue.credential_expired", &yesterday);
    // Expiring a week from now is fine.
    let next_week = (today() + Days::new(7)).to_string();
    let out = issue(&s, "en_US.UTF-8", GOOD_ID, &next_week, &[]);
    json_of(&out, &["code", "issue", "welder"]);
}
