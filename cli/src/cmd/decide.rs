//! `weldguard decide`: the start-work decision (扫码开机) from the scanned texts of a machine label and
//! a welder's code, against the device database's registry, offline. With `--record` the answer is
//! kept as a work session with its outbox entry, as the phone does.

use std::path::{Path, PathBuf};

use clap::Args;
use serde::Serialize;
use weldguard_core::app::Device;
use weldguard_core::app::start_work::{
    PositionInput, Reason, StartWorkInput, StartWorkView, decide, start_work,
};
use weldguard_core::codes::{RevocationSet, TrustStore};
use weldguard_core::domain::Explain;
use weldguard_core::rules::{RuleSetId, Severity};

use crate::cmd::code::{parse_time, read_text};
use crate::data_dir::{StateArgs, app_failure, app_lang};
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
    /// Where the device is (degrees), recorded with the work session.
    #[arg(long, requires_all = ["lon", "accuracy"], allow_hyphen_values = true)]
    lat: Option<f64>,
    #[arg(long, requires_all = ["lat", "accuracy"], allow_hyphen_values = true)]
    lon: Option<f64>,
    /// The position's accuracy radius in metres.
    #[arg(long, requires_all = ["lat", "lon"])]
    accuracy: Option<f64>,
    #[command(flatten)]
    state: StateArgs,
}

/// The decision part of `decide`'s JSON (its shape since the first version).
#[derive(Serialize)]
pub struct DecisionJson {
    pub allowed: bool,
    pub scan_exempt: bool,
    pub rule_set: RuleSetId,
    /// Every reason (code, severity, zh, en, and the text in the CLI's language).
    pub findings: Vec<Reason>,
}

/// The `--json` shape of `decide`: the service's view, and the decision as before.
#[derive(Serialize)]
pub struct DecideAnswer {
    pub decision: DecisionJson,
    #[serde(flatten)]
    pub view: StartWorkView,
}

impl DecideAnswer {
    pub fn of(view: StartWorkView) -> Self {
        Self {
            decision: DecisionJson {
                allowed: view.allowed,
                scan_exempt: view.scan_exempt,
                rule_set: view.rule_set,
                findings: view.reasons.clone(),
            },
            view,
        }
    }
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
    let trust = TrustStore::from_json(&read_text(&args.trust, "trust file")?)
        .map_err(|e| Failure::input(e.code(), format!("{}: {e}", args.trust.display())))?;
    let extra = match &args.revocations {
        Some(path) => Some(
            RevocationSet::from_json(&read_text(path, "revocation file")?)
                .map_err(|e| Failure::input(e.code(), format!("{}: {e}", path.display())))?,
        ),
        None => None,
    };
    let store = args.state.open_store(out)?;
    let device = Device::with_store(store).map_err(|e| app_failure(&e, out))?;
    device.set_trust(trust);
    if let Some(extra) = extra {
        device.add_revocations(extra);
    }
    let input = StartWorkInput {
        machine_text,
        welder_text,
        site_id: args.site,
        now,
        position: match (args.lat, args.lon, args.accuracy) {
            (Some(latitude), Some(longitude), Some(accuracy_m)) => Some(PositionInput::Degrees {
                latitude,
                longitude,
                accuracy_m,
            }),
            _ => None,
        },
        lang: app_lang(out),
    };
    let view = if args.record {
        start_work(&device, input)
    } else {
        decide(&device, input)
    }
    .map_err(|e| app_failure(&e, out))?;
    let answer = DecideAnswer::of(view);
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

/// One reason as a line in the given language.
pub fn finding_line(f: &Reason, lang: Lang) -> String {
    format!(
        "  [{}] {} ({})",
        severity_tag(f.severity, lang),
        lang.pick(&f.zh, &f.en),
        f.code
    )
}

/// The answer as people read it.
pub fn human(answer: &DecideAnswer, lang: Lang) -> String {
    let v = &answer.view;
    let mut text = String::new();
    text.push_str(if v.allowed {
        lang.pick("允许开机\n", "Work may start\n")
    } else {
        lang.pick("不允许开机\n", "Work may NOT start\n")
    });
    for f in &v.reasons {
        text.push_str(&finding_line(f, lang));
        text.push('\n');
    }
    if let Some(id) = &v.session_id {
        text.push_str(&format!(
            "{} {id}\n",
            lang.pick("已记录作业：", "recorded work session")
        ));
    }
    text
}
