//! `weldguard signers …`: the signer directory (签字人名录) on this device: who may sign permits.
//! `import` verifies a signed directory with a trust file and keeps it (a device that syncs gets it
//! from the platform at every sync); `show` lists what the device holds; `issue` signs a directory
//! with an issuer key, for platforms run without the reference server and for offline tests
//! (docs/adr/0014-who-may-sign-what.md).

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use serde::Deserialize;
use weldguard_core::codes::{TrustStore, from_hex, to_hex};
use weldguard_core::domain::Explain;
use weldguard_core::signers::{SignerDirectory, SignerEntry, sign_directory, verify_directory};

use crate::cmd::code::read_text;
use crate::data_dir::{StateArgs, store_failure};
use crate::output::{Failure, Output};

#[derive(Debug, Args)]
pub struct SignersArgs {
    #[command(subcommand)]
    command: SignersCommand,
}

#[derive(Debug, Subcommand)]
enum SignersCommand {
    /// Verify a signed signer directory with a trust file and keep it on this device (an older one
    /// than the device holds is refused).
    Import {
        /// The signed directory (COSE_Sign1 bytes, as `signers issue` writes it).
        file: PathBuf,
        /// The trust file holding the issuer key that signed it.
        #[arg(long)]
        trust: PathBuf,
        #[command(flatten)]
        state: StateArgs,
    },
    /// The signer directory this device holds.
    Show {
        #[command(flatten)]
        state: StateArgs,
    },
    /// Sign a signer directory with an issuer key (admin tool).
    Issue {
        /// The issuer key file (`weldguard keys generate`).
        #[arg(long)]
        key: PathBuf,
        /// JSON array of entries: `public_key` (hex, compressed P-256), `person_id`, `name`,
        /// `roles`, and optionally `device_id`, `valid_until` (Unix seconds).
        #[arg(long)]
        entries: PathBuf,
        /// Sequence number (must grow with every directory published); default: now.
        #[arg(long)]
        sequence: Option<u64>,
        /// Where to write the signed directory.
        #[arg(long)]
        out: PathBuf,
    },
}

/// One entry as an admin writes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryInput {
    public_key: String,
    person_id: String,
    name: String,
    roles: Vec<String>,
    #[serde(default)]
    device_id: Option<String>,
    #[serde(default)]
    valid_until: Option<i64>,
}

pub fn run(args: SignersArgs, out: &Output) -> Result<(), Failure> {
    match args.command {
        SignersCommand::Import { file, trust, state } => import(&file, &trust, &state, out),
        SignersCommand::Show { state } => show(&state, out),
        SignersCommand::Issue {
            key,
            entries,
            sequence,
            out: path,
        } => issue(&key, &entries, sequence, &path, out),
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn import(file: &Path, trust: &Path, state: &StateArgs, out: &Output) -> Result<(), Failure> {
    let bytes = std::fs::read(file).map_err(|e| {
        Failure::input("input.file", format!("cannot read {}: {e}", file.display()))
    })?;
    let trust = TrustStore::from_json(&read_text(trust, "trust file")?)
        .map_err(|e| Failure::input(e.code(), format!("{}: {e}", trust.display())))?;
    let directory = verify_directory(&bytes, &trust, now(), 300).map_err(|e| {
        Failure::input(
            e.code(),
            out.lang.pick(&e.message_zh(), &e.message_en()).to_owned(),
        )
    })?;
    let store = state.open_store(out)?;
    let saved = store
        .save_signer_directory(&directory, &bytes, now().saturating_mul(1000))
        .map_err(|e| store_failure(&e, out))?;
    if let weldguard_core::store::StatusListSaved::Older { held } = saved {
        return Err(Failure::input(
            "signers.older",
            format!(
                "{} {} < {held}",
                out.lang.pick(
                    "该名录比本机已有的旧，未导入：序号",
                    "this directory is older than the one held; not imported: sequence"
                ),
                directory.sequence
            ),
        ));
    }
    if out.json {
        return out.json(&serde_json::json!({
            "sequence": directory.sequence,
            "issued_at": directory.issued_at,
            "entries": directory.entries.len(),
        }));
    }
    stdoutln!(
        "{} {} ({} {})",
        out.lang.pick(
            "已导入签字人名录，人数",
            "imported the signer directory, entries:"
        ),
        directory.entries.len(),
        out.lang.pick("序号", "sequence"),
        directory.sequence
    );
    Ok(())
}

fn show(state: &StateArgs, out: &Output) -> Result<(), Failure> {
    let store = state.open_store(out)?;
    let directory = store
        .signer_directory()
        .map_err(|e| store_failure(&e, out))?;
    if out.json {
        return out.json(&serde_json::json!({
            "directory": directory.as_ref().map(|d| serde_json::json!({
                "sequence": d.sequence,
                "issued_at": d.issued_at,
                "entries": d.entries.iter().map(|e| serde_json::json!({
                    "public_key": to_hex(&e.public_key),
                    "person_id": e.person_id,
                    "name": e.name,
                    "roles": e.roles,
                    "device_id": e.device_id,
                    "valid_until": e.valid_until,
                })).collect::<Vec<_>>(),
            })),
        }));
    }
    match directory {
        None => stdoutln!(
            "{}",
            out.lang.pick(
                "本机尚无签字人名录：同步（weldguard sync）或导入后才能核验作业证签字人",
                "no signer directory on this device: sync (weldguard sync) or import one before permit signers can be checked"
            )
        ),
        Some(d) => {
            for e in &d.entries {
                stdoutln!(
                    "{} ({}) {} [{}]{}",
                    e.name,
                    e.person_id,
                    to_hex(&e.public_key),
                    e.roles.join(", "),
                    e.valid_until
                        .map(|u| format!(" {} {u}", out.lang.pick("停用于", "disabled at")))
                        .unwrap_or_default()
                );
            }
        }
    }
    Ok(())
}

fn issue(
    key: &Path,
    entries: &Path,
    sequence: Option<u64>,
    path: &Path,
    out: &Output,
) -> Result<(), Failure> {
    let key = weldguard_core::codes::IssuerKey::from_json(&read_text(key, "key file")?)
        .map_err(|e| Failure::input(e.code(), format!("{}: {e}", key.display())))?;
    let inputs: Vec<EntryInput> = serde_json::from_str(&read_text(entries, "entries file")?)
        .map_err(|e| {
            Failure::input(
                "input.entries",
                format!("{}: not a list of signer entries: {e}", entries.display()),
            )
        })?;
    let mut list = Vec::with_capacity(inputs.len());
    for (i, e) in inputs.into_iter().enumerate() {
        let public_key = from_hex(&e.public_key).ok_or_else(|| {
            Failure::input(
                "input.entries",
                format!("entry {}: public_key is not hex", i + 1),
            )
        })?;
        list.push(SignerEntry {
            device_id: e.device_id.unwrap_or_else(|| format!("offline-{}", i + 1)),
            public_key,
            person_id: e.person_id,
            name: e.name,
            roles: e.roles,
            valid_from: 0,
            valid_until: e.valid_until,
        });
    }
    let t = now();
    let sequence = sequence.unwrap_or_else(|| u64::try_from(t).unwrap_or(0));
    let directory = SignerDirectory::new(sequence, t, list);
    let bytes = sign_directory(&key, &directory).map_err(|e| {
        Failure::input(
            e.code(),
            out.lang.pick(&e.message_zh(), &e.message_en()).to_owned(),
        )
    })?;
    std::fs::write(path, &bytes).map_err(|e| {
        Failure::input(
            "output.write",
            format!("cannot write {}: {e}", path.display()),
        )
    })?;
    if out.json {
        return out.json(&serde_json::json!({
            "out": path.display().to_string(),
            "sequence": sequence,
            "entries": directory.entries.len(),
        }));
    }
    stdoutln!(
        "{} {} ({} {})",
        out.lang
            .pick("已签发签字人名录：", "signed the signer directory:"),
        path.display(),
        directory.entries.len(),
        out.lang.pick("人", "entries")
    );
    Ok(())
}
