//! `weldguard enroll` and `weldguard sync`: enrol this profile's device with a platform server, then
//! push its outbox and pull registry changes. The server address and device token are kept beside
//! the profile's database in `sync.json` (readable by the owner only).

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use clap::Args;
use serde::{Deserialize, Serialize};
use weldguard_core::domain::Explain;
use weldguard_core::sync::protocol::Role;
use weldguard_core::sync::{Progress, RetryPolicy, SyncClient, SyncError, SyncPhase};

use crate::data_dir::{StateArgs, store_failure};
use crate::output::{Failure, Output};

#[derive(Debug, Args)]
pub struct EnrollArgs {
    /// The platform server, e.g. http://127.0.0.1:8787
    #[arg(long, value_name = "URL")]
    server: String,
    /// The enrolment code an administrator made for you.
    #[arg(long)]
    code: String,
    /// A label for this device, shown to administrators.
    #[arg(long, default_value = "weldguard-cli")]
    device_name: String,
    /// The device key's public part (hex), when the device has one.
    #[arg(long, default_value = "")]
    public_key: String,
    #[command(flatten)]
    data: StateArgs,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Use this server instead of the one given at enrolment.
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// Hide progress lines.
    #[arg(long)]
    quiet: bool,
    #[command(flatten)]
    data: StateArgs,
}

/// What `enroll` keeps for `sync`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Enrolment {
    server: String,
    token: String,
    device_id: String,
    person: String,
    role: Role,
}

fn enrolment_path(data: &StateArgs, out: &Output) -> Result<PathBuf, Failure> {
    let db = weldguard_core::store::profile_db_path(&data.data_dir()?, &data.profile)
        .map_err(|e| store_failure(&e, out))?;
    Ok(db.with_file_name("sync.json"))
}

fn sync_failure(error: &SyncError, out: &Output) -> Failure {
    let message = out
        .lang
        .pick(&error.message_zh(), &error.message_en())
        .to_owned();
    match error {
        SyncError::InvalidAddress(_) | SyncError::Refused { .. } | SyncError::Unauthorized(_) => {
            Failure::input(error.code(), message)
        }
        _ => Failure::runtime(error.code(), message),
    }
}

pub fn enroll(args: EnrollArgs, out: &Output) -> Result<(), Failure> {
    // Opening the store creates the profile folder and checks the database is usable.
    args.data.open_store(out)?;
    let client = SyncClient::new(&args.server, None, RetryPolicy::default())
        .map_err(|e| sync_failure(&e, out))?;
    let answer = client
        .enrol(&args.code, &args.public_key, &args.device_name)
        .map_err(|e| sync_failure(&e, out))?;
    let saved = Enrolment {
        server: client.base_url().to_owned(),
        token: answer.token,
        device_id: answer.device_id,
        person: answer.person,
        role: answer.role,
    };
    let path = enrolment_path(&args.data, out)?;
    write_private(&path, &saved).map_err(|e| {
        Failure::runtime(
            "sync.save_enrolment",
            format!("cannot write {}: {e}", path.display()),
        )
    })?;
    if out.json {
        return out.json(&serde_json::json!({
            "device_id": saved.device_id,
            "person": saved.person,
            "role": saved.role,
            "server": saved.server,
        }));
    }
    println!(
        "{} {} ({}, {})",
        out.lang.pick("已注册设备", "enrolled device"),
        saved.device_id,
        saved.person,
        saved.role.as_str()
    );
    Ok(())
}

fn write_private(path: &std::path::Path, value: &Enrolment) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(std::io::Error::other)?;
    let tmp = path.with_extension("json.tmp");
    {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

pub fn sync(args: SyncArgs, out: &Output) -> Result<(), Failure> {
    let path = enrolment_path(&args.data, out)?;
    let text = std::fs::read_to_string(&path).map_err(|_| {
        Failure::input(
            "sync.not_enrolled",
            out.lang.pick(
                "本设备尚未注册，请先运行 weldguard enroll",
                "this device is not enrolled yet; run weldguard enroll first",
            ),
        )
    })?;
    let saved: Enrolment = serde_json::from_str(&text).map_err(|e| {
        Failure::input(
            "sync.bad_enrolment_file",
            format!("{}: {e}", path.display()),
        )
    })?;
    let store = args.data.open_store(out)?;
    let server = args.server.unwrap_or(saved.server);
    let client = SyncClient::new(&server, Some(saved.token), RetryPolicy::default())
        .map_err(|e| sync_failure(&e, out))?;
    let quiet = args.quiet || out.json;
    let lang = out.lang;
    let mut progress = |p: Progress| {
        if quiet {
            return;
        }
        let phase = match p.phase {
            SyncPhase::Push => lang.pick("上传记录", "push"),
            SyncPhase::Pull => lang.pick("下载名录", "pull"),
        };
        match p.total {
            Some(total) => eprintln!("{phase}: {}/{total}", p.done),
            None => eprintln!("{phase}: {}", p.done),
        }
    };
    let report = client
        .sync(&store, &mut progress, &AtomicBool::new(false))
        .map_err(|e| sync_failure(&e, out))?;
    if out.json {
        return out.json(&serde_json::json!({
            "pushed": report.pushed,
            "applied": report.applied,
            "duplicate": report.duplicate,
            "rejected": report.rejected,
            "pulled_changes": report.pulled_changes,
            "pages": report.pages,
            "refetches": report.refetches,
            "retries": report.retries,
        }));
    }
    println!(
        "{}: {} ({} {}, {} {}, {} {}); {}: {}",
        lang.pick("上传", "pushed"),
        report.pushed,
        report.applied,
        lang.pick("已接收", "applied"),
        report.duplicate,
        lang.pick("重复", "duplicate"),
        report.rejected,
        lang.pick("被拒", "rejected"),
        lang.pick("名录变更", "registry changes"),
        report.pulled_changes
    );
    Ok(())
}
