//! `weldguard keys generate`: make an issuer key (Ed25519 or P-256) and its public trust file entry.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;
use weldguard_core::codes::{IssuerAlg, IssuerKey, TrustStore, TrustedKey, to_hex};
use weldguard_core::domain::Explain;

use crate::cmd::code::parse_time;
use crate::output::{Failure, Output};

#[derive(Debug, Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    command: KeysCommand,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AlgArg {
    /// Ed25519 (COSE EdDSA).
    Ed25519,
    /// ECDSA P-256 with SHA-256.
    Es256,
}

impl From<AlgArg> for IssuerAlg {
    fn from(a: AlgArg) -> Self {
        match a {
            AlgArg::Ed25519 => IssuerAlg::EdDSA,
            AlgArg::Es256 => IssuerAlg::ES256,
        }
    }
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Generate an issuer key file (keep it private) and optionally add its public key to a trust file
    /// (created, or extended when it exists).
    Generate {
        #[arg(long, value_enum)]
        alg: AlgArg,
        /// Where to write the private key file (JSON). Refuses to overwrite unless --force.
        #[arg(long)]
        out: PathBuf,
        /// Trust file to create or extend with this key's public key.
        #[arg(long)]
        trust_out: Option<PathBuf>,
        /// Start of the key's validity (RFC 3339, YYYY-MM-DD in China time, or Unix seconds); default now.
        #[arg(long)]
        valid_from: Option<String>,
        /// End of the key's validity; default open-ended.
        #[arg(long)]
        valid_until: Option<String>,
        /// Overwrite an existing key file.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Serialize)]
struct Generated {
    kid: String,
    alg: &'static str,
    public_key: String,
    key_file: String,
    trust_file: Option<String>,
    valid_from: i64,
    valid_until: Option<i64>,
}

/// Write the key file owner-only (0600 from its first byte); with `force`, a new file replaces the
/// old one, so an old file readable by others does not keep its mode.
fn write_private(path: &Path, text: &str, force: bool) -> Result<(), Failure> {
    let written = if force {
        crate::private::replace(path, text)
    } else {
        crate::private::create_new(path, text)
    };
    written.map_err(|e| {
        Failure::input(
            "keys.write",
            format!("cannot write key file {}: {e}", path.display()),
        )
    })
}

pub fn run(args: KeysArgs, out: &Output) -> Result<(), Failure> {
    let KeysCommand::Generate {
        alg,
        out: key_path,
        trust_out,
        valid_from,
        valid_until,
        force,
    } = args.command;
    let valid_from = match valid_from {
        Some(t) => parse_time(&t)?,
        None => chrono::Utc::now().timestamp(),
    };
    let valid_until = valid_until.as_deref().map(parse_time).transpose()?;
    if valid_until.is_some_and(|u| u < valid_from) {
        return Err(Failure::input(
            "keys.validity",
            "--valid-until is before --valid-from",
        ));
    }
    // Read the trust file first, so a bad one fails before anything is written.
    let mut trust = match &trust_out {
        Some(path) if path.exists() => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                Failure::input("keys.trust", format!("cannot read {}: {e}", path.display()))
            })?;
            TrustStore::from_json(&text)
                .map_err(|e| Failure::input(e.code(), format!("{}: {e}", path.display())))?
        }
        _ => TrustStore::new(),
    };
    let key =
        IssuerKey::generate(alg.into()).map_err(|e| Failure::runtime(e.code(), e.to_string()))?;
    trust
        .add(TrustedKey::for_key(&key, valid_from, valid_until))
        .map_err(|e| Failure::input(e.code(), e.to_string()))?;
    write_private(&key_path, &key.to_json(), force)?;
    if let Some(path) = &trust_out {
        std::fs::write(path, trust.to_json()).map_err(|e| {
            Failure::input(
                "keys.trust",
                format!("cannot write {}: {e}", path.display()),
            )
        })?;
    }
    let generated = Generated {
        kid: to_hex(&key.kid()),
        alg: key.alg().name(),
        public_key: to_hex(&key.public_key()),
        key_file: key_path.display().to_string(),
        trust_file: trust_out.as_ref().map(|p| p.display().to_string()),
        valid_from,
        valid_until,
    };
    if out.json {
        return out.json(&generated);
    }
    stdoutln!(
        "{} {} ({}, kid {})",
        out.lang.pick("签发密钥已写入", "Issuer key written to"),
        generated.key_file,
        generated.alg,
        generated.kid
    );
    if let Some(path) = &generated.trust_file {
        stdoutln!(
            "{} {path}",
            out.lang
                .pick("公钥已加入信任文件", "Public key added to trust file")
        );
    }
    Ok(())
}
