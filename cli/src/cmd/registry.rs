//! `weldguard registry import FILE` and `weldguard registry stats`: the device's registry cache.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde::Serialize;
use weldguard_core::domain::Explain;
use weldguard_core::store::import::{ImportFormat, parse_import};

use crate::data_dir::{StateArgs, store_failure};
use crate::output::{Failure, Output};

#[derive(Debug, Args)]
pub struct RegistryArgs {
    #[command(subcommand)]
    command: RegistryCommand,
}

#[derive(Debug, Subcommand)]
enum RegistryCommand {
    /// Import licences, machines or bindings from a JSON-lines or CSV file, in one transaction;
    /// rows that fail their checks are reported by line number and the rest imported.
    Import {
        /// The file (.jsonl/.json or .csv; otherwise told apart by its first character).
        file: PathBuf,
        #[command(flatten)]
        state: StateArgs,
    },
    /// What the registry cache holds, the sync cursors, and the outbox in brief.
    Stats {
        #[command(flatten)]
        state: StateArgs,
    },
}

pub fn run(args: RegistryArgs, out: &Output) -> Result<(), Failure> {
    match args.command {
        RegistryCommand::Import { file, state } => import(&file, &state, out),
        RegistryCommand::Stats { state } => stats(&state, out),
    }
}

#[derive(Serialize)]
struct Rejected {
    line: usize,
    code: &'static str,
    message: String,
}

#[derive(Serialize)]
struct ImportReport {
    file: String,
    format: ImportFormat,
    licences: usize,
    machines: usize,
    bindings: usize,
    rejected: Vec<Rejected>,
}

fn import(file: &PathBuf, state: &StateArgs, out: &Output) -> Result<(), Failure> {
    let bytes = std::fs::read(file).map_err(|e| {
        Failure::input(
            "import.unreadable",
            format!("cannot read {}: {e}", file.display()),
        )
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        Failure::input(
            "import.not_utf8",
            format!(
                "{} is not UTF-8 text (byte {}); save it as UTF-8",
                file.display(),
                e.utf8_error().valid_up_to()
            ),
        )
    })?;
    let format = ImportFormat::detect(&file.to_string_lossy(), &text);
    let parsed = parse_import(&text, format)
        .map_err(|e| Failure::input(e.code(), out.lang.pick(&e.message_zh(), &e.message_en())))?;
    let store = state.open_store(out)?;
    let now_ms = chrono::Utc::now().timestamp_millis();
    store
        .apply_registry_changes(parsed.changes, None, now_ms)
        .map_err(|e| store_failure(&e, out))?;
    let report = ImportReport {
        file: file.display().to_string(),
        format,
        licences: parsed.licences,
        machines: parsed.machines,
        bindings: parsed.bindings,
        rejected: parsed
            .rejected
            .iter()
            .map(|r| Rejected {
                line: r.line,
                code: r.problem.code(),
                message: out
                    .lang
                    .pick(&r.problem.message_zh(), &r.problem.message_en())
                    .to_owned(),
            })
            .collect(),
    };
    if out.json {
        return out.json(&report);
    }
    let lang = out.lang;
    stdoutln!(
        "{} {}: {} {}, {} {}, {} {}; {} {}",
        lang.pick("已导入", "imported"),
        report.file,
        report.licences,
        lang.pick("本证书", "licences"),
        report.machines,
        lang.pick("台设备", "machines"),
        report.bindings,
        lang.pick("条人机绑定", "bindings"),
        report.rejected.len(),
        lang.pick("行被拒绝", "rows rejected"),
    );
    for r in &report.rejected {
        match lang {
            crate::output::Lang::Zh => stdoutln!("  第 {} 行：{}", r.line, r.message),
            crate::output::Lang::En => stdoutln!("  line {}: {}", r.line, r.message),
        }
    }
    Ok(())
}

#[derive(Serialize)]
struct StatsReport {
    database: String,
    schema_version: u32,
    size_bytes: u64,
    registry: weldguard_core::store::RegistryStats,
    outbox: weldguard_core::store::outbox::OutboxCounts,
}

fn stats(state: &StateArgs, out: &Output) -> Result<(), Failure> {
    let store = state.open_store(out)?;
    let fail = |e| store_failure(&e, out);
    let report = StatsReport {
        database: store.path().display().to_string(),
        schema_version: store.schema_version().map_err(fail)?,
        size_bytes: store.size_on_disk(),
        registry: store.registry_stats().map_err(fail)?,
        outbox: store.outbox_counts().map_err(fail)?,
    };
    if out.json {
        return out.json(&report);
    }
    let lang = out.lang;
    let r = &report.registry;
    stdoutln!("{}: {}", lang.pick("数据库", "database"), report.database);
    stdoutln!(
        "{}: {}, {}: {} bytes",
        lang.pick("结构版本", "schema version"),
        report.schema_version,
        lang.pick("大小", "size"),
        report.size_bytes
    );
    stdoutln!("{}: {}", lang.pick("证书", "licences"), r.licences);
    stdoutln!("{}: {}", lang.pick("设备", "machines"), r.machines);
    stdoutln!("{}: {}", lang.pick("人机绑定", "bindings"), r.bindings);
    stdoutln!(
        "{}: {}",
        lang.pick("吊销记录", "revocations"),
        r.revocations
    );
    stdoutln!(
        "{}: {}",
        lang.pick("可信签发密钥", "issuer keys"),
        r.issuer_keys
    );
    for (feed, cursor, at_ms) in &r.cursors {
        let at = chrono::DateTime::from_timestamp_millis(*at_ms)
            .map(|t| t.to_rfc3339())
            .unwrap_or_default();
        stdoutln!(
            "{} {feed}: {cursor} ({at})",
            lang.pick("同步游标", "sync cursor")
        );
    }
    let o = &report.outbox;
    stdoutln!(
        "{}: {} {}, {} {}, {} {}, {} {}",
        lang.pick("待上报队列", "outbox"),
        o.pending,
        lang.pick("待发送", "pending"),
        o.sent,
        lang.pick("已发送未确认", "sent"),
        o.applied,
        lang.pick("已受理", "applied"),
        o.rejected,
        lang.pick("被拒绝", "rejected"),
    );
    Ok(())
}
