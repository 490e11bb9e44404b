//! `weldguard decide`: the start-work decision (扫码开机) from the scanned texts of a machine label and
//! a welder's code, against the device database's registry, offline. With `--record` the answer is
//! kept as a work session with its outbox entry, as the phone does.

use std::path::{Path, PathBuf};

use clap::Args;
use serde::Serialize;
use weldguard_core::codes::{ReplayCache, RevocationSet, TrustStore, Verifier};
use weldguard_core::domain::Explain;
use weldguard_core::rules::{Finding, Severity};
use weldguard_core::startwork::{PermitContext, ScanToStart, StartWorkOutcome, scan_to_start};
use weldguard_core::store::NewWorkSession;

use crate::cmd::code::{parse_time, read_text};
use crate::data_dir::{StateArgs, store_failure};
use crate::output::{Failure, Lang, Output};

#[derive(Debug, Args)]
pub struct DecideArgs {
    /// The machine label's scanned text, or @FILE to read it from a text file.
    #[arg(long, value_name = "TEXT|@FILE")]
    machine: String,
    /// The welder's scanned code (a live presentation, a credential, or a certificate number), or @FILE.
    #[arg(long, value_name = "TEXT|@FILE")]
    welder: String,
    /// Trust file with the issuer keys (as `weldguard keys generate --trust-out` writes it).
    #[arg(long, value_name = "FILE")]
    trust: PathBuf,
    /// Extra revocation list (JSON); the database's revocations always apply.
    #[arg(long, value_name = "FILE")]
    revocations: Option<PathBuf>,
    /// The site where the work happens (checked against the hot-work permit).
    #[arg(long, default_value = "")]
    site: String,
    /// The time of the work: RFC 3339, YYYY-MM-DD or Unix seconds [default: now].
    #[arg(long)]
    at: Option<String>,
    /// Record the answer as a work session with its outbox entry.
    #[arg(long)]
    record: bool,
    #[command(flatten)]
    state: StateArgs,
}

/// The `--json` shape of `decide`.
#[derive(Serialize)]
pub struct DecideAnswer {
    #[serde(flatten)]
    pub outcome: StartWorkOutcome,
    /// The recorded work session id (also its outbox idempotency key), with `--record`.
    pub session_id: Option<String>,
}

/// A scanned text given on the command line: the text itself, or @FILE.
pub fn scanned_text(arg: &str) -> Result<String, Failure> {
    match arg.strip_prefix('@') {
        Some(path) => Ok(read_text(Path::new(path), "scanned text")?
            .trim()
            .to_owned()),
        None => Ok(arg.trim().to_owned()),
    }
}

pub fn run(args: DecideArgs, out: &Output) -> Result<(), Failure> {
    let machine_text = scanned_text(&args.machine)?;
    let welder_text = scanned_text(&args.welder)?;
    let now = match &args.at {
        Some(t) => parse_time(t)?,
        None => chrono::Utc::now().timestamp(),
    };
    let at = chrono::DateTime::from_timestamp(now, 0)
        .ok_or_else(|| Failure::input("input.time", format!("time out of range: {now}")))?;
    let trust = TrustStore::from_json(&read_text(&args.trust, "trust file")?)
        .map_err(|e| Failure::input(e.code(), format!("{}: {e}", args.trust.display())))?;
    let store = args.state.open_store(out)?;
    let mut revocations = match &args.revocations {
        Some(path) => RevocationSet::from_json(&read_text(path, "revocation file")?)
            .map_err(|e| Failure::input(e.code(), format!("{}: {e}", path.display())))?,
        None => RevocationSet::new(),
    };
    for r in store.revocations().map_err(|e| store_failure(&e, out))? {
        revocations.revoke(r.target, r.id);
    }
    let verifier = Verifier::new(&trust, &revocations);
    let question = ScanToStart {
        machine_text: &machine_text,
        welder_text: &welder_text,
        permit: PermitContext {
            source: &store,
            site_id: &args.site,
        },
        at,
    };
    let outcome = scan_to_start(&question, &verifier, &mut ReplayCache::default(), &store);
    let session_id = match (&outcome.machine_id, &outcome.certificate_no, args.record) {
        (Some(machine_id), Some(certificate_no), true) => {
            let session = store
                .record_work_session(
                    NewWorkSession {
                        machine_id: machine_id.clone(),
                        certificate_no: certificate_no.clone(),
                        started_at_ms: now.saturating_mul(1000),
                        allowed: outcome.decision.allowed,
                        reason_codes: outcome
                            .decision
                            .denials()
                            .map(|f| f.code.to_owned())
                            .collect(),
                        permit_id: outcome.permit_id.clone(),
                    },
                    chrono::Utc::now().timestamp_millis(),
                )
                .map_err(|e| store_failure(&e, out))?;
            Some(session.id)
        }
        _ => None,
    };
    let answer = DecideAnswer {
        outcome,
        session_id,
    };
    if out.json {
        return out.json(&answer);
    }
    stdout!("{}", human(&answer, out.lang));
    Ok(())
}

fn severity_tag(s: Severity, lang: Lang) -> &'static str {
    match s {
        Severity::Deny => lang.pick("不允许", "DENY"),
        Severity::Warn => lang.pick("提醒", "WARN"),
        Severity::Info => lang.pick("说明", "INFO"),
    }
}

/// One finding as a line in the given language.
pub fn finding_line(f: &Finding, lang: Lang) -> String {
    format!(
        "  [{}] {} ({})",
        severity_tag(f.severity, lang),
        lang.pick(&f.zh, &f.en),
        f.code
    )
}

/// The answer as people read it.
pub fn human(answer: &DecideAnswer, lang: Lang) -> String {
    let d = &answer.outcome.decision;
    let mut text = String::new();
    text.push_str(if d.allowed {
        lang.pick("允许开机\n", "Work may start\n")
    } else {
        lang.pick("不允许开机\n", "Work may NOT start\n")
    });
    for f in &d.findings {
        text.push_str(&finding_line(f, lang));
        text.push('\n');
    }
    if let Some(id) = &answer.session_id {
        text.push_str(&format!(
            "{} {id}\n",
            lang.pick("已记录作业：", "recorded work session")
        ));
    }
    text
}
