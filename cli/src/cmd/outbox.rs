//! `weldguard outbox list`: the records made on this device waiting for (or done with) upload, and
//! for a record the platform refused, why: a thin adapter over `app::history`.

use clap::{Args, Subcommand, ValueEnum};
use weldguard_core::app::Device;
use weldguard_core::app::history::{OutboxFilter, outbox};

use crate::data_dir::{StateArgs, app_failure};
use crate::output::{Failure, Output};

#[derive(Debug, Args)]
pub struct OutboxArgs {
    #[command(subcommand)]
    command: OutboxCommand,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum StateFilter {
    /// Pending or sent without an answer: what the next sync pushes.
    Unresolved,
    Pending,
    Sent,
    Applied,
    Rejected,
    All,
}

#[derive(Debug, Subcommand)]
enum OutboxCommand {
    /// List outbox entries, oldest first.
    List {
        /// Which entries.
        #[arg(long, value_enum, default_value = "unresolved")]
        state: StateFilter,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Print each entry's payload too.
        #[arg(long)]
        payload: bool,
        #[command(flatten)]
        data: StateArgs,
    },
}

pub fn run(args: OutboxArgs, out: &Output) -> Result<(), Failure> {
    match args.command {
        OutboxCommand::List {
            state,
            limit,
            payload,
            data,
        } => {
            let device =
                Device::with_store(data.open_store(out)?).map_err(|e| app_failure(&e, out))?;
            let filter = match state {
                StateFilter::Unresolved => OutboxFilter::Unresolved,
                StateFilter::Pending => OutboxFilter::Pending,
                StateFilter::Sent => OutboxFilter::Sent,
                StateFilter::Applied => OutboxFilter::Applied,
                StateFilter::Rejected => OutboxFilter::Rejected,
                StateFilter::All => OutboxFilter::All,
            };
            let view = outbox(&device, filter, limit).map_err(|e| app_failure(&e, out))?;
            if out.json {
                return out.json(&view);
            }
            let entries = &view.entries;
            if entries.is_empty() {
                stdoutln!("{}", out.lang.pick("（没有条目）", "(no entries)"));
            }
            for v in entries {
                let e = &v.entry;
                let created = chrono::DateTime::from_timestamp_millis(e.created_at_ms)
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_default();
                let mut line = format!(
                    "{:>6}  {}  {:<13} {:<8} {}  {}={}",
                    e.seq,
                    e.idempotency_key,
                    e.kind,
                    e.state.as_str(),
                    created,
                    out.lang.pick("尝试", "attempts"),
                    e.attempts
                );
                if let Some(refusal) = &v.refusal {
                    line.push_str(&format!(
                        "  {}: {} {}",
                        out.lang.pick("平台拒收", "refused"),
                        refusal.code,
                        refusal.message
                    ));
                } else if let Some(error) = &e.last_error {
                    line.push_str(&format!("  {}: {error}", out.lang.pick("错误", "error")));
                }
                stdoutln!("{line}");
                if payload {
                    stdoutln!("        {}", e.payload);
                }
            }
            Ok(())
        }
    }
}
