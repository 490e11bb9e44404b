//! `weldguard outbox list`: the records made on this device waiting for (or done with) upload.

use clap::{Args, Subcommand, ValueEnum};
use weldguard_core::store::OutboxState;

use crate::data_dir::{StateArgs, store_failure};
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
        limit: usize,
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
            let store = data.open_store(out)?;
            let entries = match state {
                StateFilter::Unresolved => store.outbox_pending(limit),
                StateFilter::Pending => store.outbox_entries(Some(OutboxState::Pending), limit),
                StateFilter::Sent => store.outbox_entries(Some(OutboxState::Sent), limit),
                StateFilter::Applied => store.outbox_entries(Some(OutboxState::Applied), limit),
                StateFilter::Rejected => store.outbox_entries(Some(OutboxState::Rejected), limit),
                StateFilter::All => store.outbox_entries(None, limit),
            }
            .map_err(|e| store_failure(&e, out))?;
            if out.json {
                return out.json(&serde_json::json!({ "entries": entries }));
            }
            if entries.is_empty() {
                stdoutln!("{}", out.lang.pick("（没有条目）", "(no entries)"));
            }
            for e in &entries {
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
                if let Some(error) = &e.last_error {
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
