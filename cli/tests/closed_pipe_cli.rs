//! The CLI never panics when its output cannot be written: with standard output a pipe whose reader
//! is already gone (`weldguard … | head -c 0`), a command still does its work, then ends quietly
//! with status 141 (what a shell shows for a filter ended by SIGPIPE) and nothing on stderr; with
//! standard error gone, a refused command still exits with its own status.

#![cfg(unix)]

mod common;
use common::{Tmp, json_of};

use std::path::Path;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_weldguard");
const ID: &str = "0193a1b2-0000-7000-8000-0000000000c1";

/// A pipe whose reading end is closed before the child starts: its first write fails with EPIPE.
fn closed_pipe() -> Stdio {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    Stdio::from(writer)
}

fn command(args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env("LANG", "en_US.UTF-8")
        .env_remove("LC_ALL")
        .env_remove("LC_MESSAGES")
        .env("RUST_BACKTRACE", "0");
    command
}

/// Run with standard output closed under it.
fn run_into_closed_stdout(args: &[&str]) -> Output {
    command(args)
        .stdout(closed_pipe())
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

fn assert_quiet_pipe_end(out: &Output, args: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    assert_eq!(out.status.code(), Some(141), "{args:?}: {stderr}");
    assert!(stderr.is_empty(), "{args:?}: {stderr}");
}

fn json(args: &[&str]) -> serde_json::Value {
    let out = command(args).arg("--json").output().unwrap();
    json_of(&out, args)
}

fn draft_args(data: &Path) -> Vec<String> {
    [
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
        "2026-11-30T08:00:00+08:00",
        "--until",
        "2026-11-30T17:00:00+08:00",
        "--applicant",
        "张三:S-001",
        "--welder",
        "李四:T370983199001011234",
        "--machine",
        "M-370983-0001",
        "--fire-watch",
        "王五:S-002",
        "--at",
        "2026-11-30T06:45:00+08:00",
        "--lat",
        "36.182",
        "--lon",
        "116.772",
        "--data-dir",
        data.to_str().unwrap(),
    ]
    .map(str::to_owned)
    .to_vec()
}

#[test]
fn a_closed_stdout_ends_each_command_quietly_after_its_work() {
    let tmp = Tmp::new("closed-pipe");
    let data = tmp.dir().join("data");
    let data_arg = data.to_str().unwrap();

    for args in [
        vec!["id", "check", "11010519491231002X"],
        vec!["id", "check", "11010519491231002X", "--json"],
        vec!["permit", "list", "--data-dir", data_arg],
    ] {
        assert_quiet_pipe_end(&run_into_closed_stdout(&args), &args);
    }

    // clap's help ignores a failed write (exit 0); no panic either.
    let help = run_into_closed_stdout(&["--help"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(help.stderr.is_empty());

    // A key is written before the line that announces it fails.
    let key = tmp.path("applicant.key");
    let args = ["permit", "key", "--out", key.to_str().unwrap()];
    assert_quiet_pipe_end(&run_into_closed_stdout(&args), &args);
    assert!(key.exists());

    // A permit drafted and submitted into a closed pipe (`weldguard permit submit … | head -c 10`):
    // the steps are stored, the output is dropped, no panic.
    let draft = draft_args(&data);
    let draft: Vec<&str> = draft.iter().map(String::as_str).collect();
    assert_quiet_pipe_end(&run_into_closed_stdout(&draft), &draft);
    let submit = [
        "permit",
        "submit",
        ID,
        "--key",
        key.to_str().unwrap(),
        "--by",
        "张三:S-001",
        "--at",
        "2026-11-30T07:00:00+08:00",
        "--data-dir",
        data_arg,
    ];
    assert_quiet_pipe_end(&run_into_closed_stdout(&submit), &submit);
    // Submitted already: the refusal, an error document on stdout with --json, meets the closed
    // pipe too.
    let again = [&submit[..], &["--json"]].concat();
    assert_quiet_pipe_end(&run_into_closed_stdout(&again), &again);
    let shown = json(&["permit", "show", ID, "--data-dir", data_arg]);
    assert_eq!(shown["permit"]["state"], "submitted", "{shown}");
}

#[test]
fn a_closed_stderr_leaves_a_refusal_its_own_exit_status() {
    let tmp = Tmp::new("closed-stderr");
    let data = tmp.dir().join("data");
    let key = tmp.path("k.key");
    json(&["permit", "key", "--out", key.to_str().unwrap()]);
    // Approving a permit that does not exist: refused (exit 2) with one line on stderr, which is
    // closed.
    let out = command(&[
        "permit",
        "approve",
        ID,
        "--key",
        key.to_str().unwrap(),
        "--by",
        "周八:S-004",
        "--data-dir",
        data.to_str().unwrap(),
    ])
    .stdout(Stdio::piped())
    .stderr(closed_pipe())
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(out.stdout.is_empty());
}
