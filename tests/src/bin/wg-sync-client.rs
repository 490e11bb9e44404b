//! A device that syncs once and exits: `wg-sync-client SERVER_URL TOKEN DB_PATH`. Every progress
//! event is printed on its own line (`push 0`, `push 25`, `pull 0`, …) and flushed, so the crash test
//! can kill it with SIGKILL at a chosen point of its sync rather than at a guessed time.

use std::io::Write;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use weldguard_core::store::Store;
use weldguard_core::sync::{Progress, RetryPolicy, SyncClient, SyncPhase};

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, token, db] = args.as_slice() else {
        eprintln!("usage: wg-sync-client SERVER_URL TOKEN DB_PATH");
        return std::process::ExitCode::from(2);
    };
    let policy = RetryPolicy {
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(100),
        ..RetryPolicy::default()
    };
    let outcome = Store::open(db)
        .map_err(|e| e.to_string())
        .and_then(|store| {
            let client =
                SyncClient::new(url, Some(token.clone()), policy).map_err(|e| e.to_string())?;
            client
                .sync(&store, &mut print_event, &AtomicBool::new(false))
                .map_err(|e| e.to_string())
        });
    match outcome {
        Ok(report) => {
            println!("pushed {} pulled {}", report.pushed, report.pulled_changes);
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("wg-sync-client: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// One line per progress event, flushed at once: the crash test reads these to time its kill.
fn print_event(event: Progress) {
    let phase = match event.phase {
        SyncPhase::Push => "push",
        SyncPhase::Pull => "pull",
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{phase} {}", event.done);
    let _ = out.flush();
}
