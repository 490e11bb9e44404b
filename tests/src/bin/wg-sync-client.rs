//! A device that syncs once and exits: `wg-sync-client SERVER_URL TOKEN DB_PATH`. The crash test
//! kills it with SIGKILL at random moments of its sync.

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use weldguard_core::store::Store;
use weldguard_core::sync::{RetryPolicy, SyncClient};

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
                .sync(&store, &mut |_| {}, &AtomicBool::new(false))
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
