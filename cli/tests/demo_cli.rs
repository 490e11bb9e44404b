//! Runs the built `weldguard demo` in a temporary folder and checks the whole story it tells: denied
//! without a permit, the permit walked from draft to closed, allowed with it, an inspection that finds
//! violations, every record waiting in the outbox, then synced to a local platform server and all
//! applied there; once as JSON and once as bilingual text.

mod common;
use common::Tmp;

use std::process::Command;

use serde_json::Value;

fn demo(dir: &std::path::Path, json: bool) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_weldguard"));
    cmd.arg("demo").arg("--dir").arg(dir);
    if json {
        cmd.arg("--json");
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "demo failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn denial_codes(decision: &Value) -> Vec<String> {
    decision["decision"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == "deny")
        .map(|f| f["code"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn the_demo_walks_a_permit_to_closed_and_an_inspection_finds_violations() {
    let tmp = Tmp::new("json");
    let report: Value = serde_json::from_str(&demo(tmp.dir(), true)).unwrap();

    let first = &report["decision"];
    assert_eq!(first["decision"]["allowed"], false, "{first}");
    assert!(
        denial_codes(first).contains(&"permit.missing".to_owned()),
        "{first}"
    );

    let second = &report["second_decision"];
    assert_eq!(second["decision"]["allowed"], true, "{second}");
    assert!(denial_codes(second).is_empty(), "{second}");
    let permit_id = report["permit"]["permit_id"].as_str().unwrap();
    assert_eq!(second["permit_id"], permit_id);

    assert_eq!(report["permit"]["state"], "closed");
    let steps = report["permit"]["steps"].as_u64().unwrap();
    assert_eq!(
        steps, 7,
        "draft, submit, check, approve, start, complete, close"
    );

    let violations = report["inspection"]["violations"].as_array().unwrap();
    assert!(!violations.is_empty());
    let kinds: Vec<&str> = violations
        .iter()
        .map(|v| v["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"credential_invalid"), "{kinds:?}");
    assert!(kinds.contains(&"permit_not_approved"), "{kinds:?}");
    assert!(kinds.contains(&"prohibition_violated"), "{kinds:?}");
    assert_eq!(report["inspection"]["report_required"], true);

    // Every record written waits for upload: two work sessions, the permit's steps, the inspection.
    let written = 2 + steps + 1;
    assert_eq!(report["outbox"]["pending"].as_u64().unwrap(), written);
    assert_eq!(report["outbox_pending"].as_u64().unwrap(), written);
    assert_eq!(report["outbox_by_kind"]["work_session"], 2);
    assert_eq!(report["outbox_by_kind"]["permit_step"], steps);
    assert_eq!(report["outbox_by_kind"]["inspection"], 1);

    // The local platform took every record (permit steps verified server-side), and the device
    // loaded its registry from the signed snapshot after a verified status list.
    let sync = &report["sync"];
    assert_eq!(sync["pushed"].as_u64().unwrap(), written, "{sync}");
    assert_eq!(sync["applied"].as_u64().unwrap(), written, "{sync}");
    assert_eq!(sync["rejected"], 0, "{sync}");
    assert_eq!(sync["snapshot_chunks"], 1, "{sync}");
    assert!(sync["revocation_data_age_secs"].as_i64().unwrap() >= 0);

    for name in [
        "machine_label",
        "welder_credential",
        "presentation",
        "permit",
    ] {
        let png = tmp.dir().join(format!("{name}.png"));
        assert!(png.is_file(), "{} missing", png.display());
    }
    assert_eq!(report["images"].as_array().unwrap().len(), 3);
    assert!(
        report["images"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["verified"] == true)
    );
}

#[test]
fn the_demo_speaks_chinese_and_english() {
    let tmp = Tmp::new("text");
    let text = demo(tmp.dir(), false);
    // "不允许开机" contains "允许开机": the allowed verdict must be a line of its own.
    assert!(
        text.lines().any(|l| l.trim() == "允许开机"),
        "no 允许开机 line in:\n{text}"
    );
    for needle in [
        "不允许开机",
        "Work may NOT start",
        "Work may start",
        "已关闭",
        "须及时上报",
        "must be reported upward",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }
}
