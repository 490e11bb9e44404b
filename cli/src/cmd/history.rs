//! `weldguard history sessions`: the work sessions this device recorded, newest first, a page at a
//! time, each with its upload state: a thin adapter over `app::history`.

use clap::{Args, Subcommand};
use weldguard_core::app::Device;
use weldguard_core::app::history::work_sessions;

use crate::data_dir::{StateArgs, app_failure};
use crate::output::{Failure, Output};

#[derive(Debug, Args)]
pub struct HistoryArgs {
    #[command(subcommand)]
    command: HistoryCommand,
}

#[derive(Debug, Subcommand)]
enum HistoryCommand {
    /// Work sessions (扫码开机 records), newest first.
    Sessions {
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Start after this cursor (the `next_cursor` of the previous page).
        #[arg(long)]
        before: Option<i64>,
        #[command(flatten)]
        data: StateArgs,
    },
}

pub fn run(args: HistoryArgs, out: &Output) -> Result<(), Failure> {
    match args.command {
        HistoryCommand::Sessions {
            limit,
            before,
            data,
        } => {
            let device =
                Device::with_store(data.open_store(out)?).map_err(|e| app_failure(&e, out))?;
            let page = work_sessions(&device, before, limit).map_err(|e| app_failure(&e, out))?;
            if out.json {
                return out.json(&page);
            }
            if page.sessions.is_empty() {
                stdoutln!(
                    "{}",
                    out.lang.pick("（没有作业记录）", "(no work sessions)")
                );
            }
            for s in &page.sessions {
                let started = chrono::DateTime::from_timestamp(s.started_at, 0)
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_default();
                let mut line = format!(
                    "{}  {}  {}  {}  {}  {}",
                    s.id,
                    started,
                    s.machine_id,
                    s.certificate_no,
                    if s.allowed {
                        out.lang.pick("允许", "allowed")
                    } else {
                        out.lang.pick("不允许", "refused")
                    },
                    s.outbox_state.as_str()
                );
                if !s.reason_codes.is_empty() {
                    line.push_str(&format!("  {}", s.reason_codes.join(",")));
                }
                if let Some(p) = &s.position {
                    line.push_str(&format!(
                        "  @{:.7},{:.7} ±{}m",
                        f64::from(p.latitude_e7) / 1e7,
                        f64::from(p.longitude_e7) / 1e7,
                        p.accuracy_m
                    ));
                }
                stdoutln!("{line}");
            }
            if let Some(cursor) = page.next_cursor {
                stdoutln!(
                    "{} --before {cursor}",
                    out.lang.pick("更早的记录：", "older:")
                );
            }
            Ok(())
        }
    }
}
