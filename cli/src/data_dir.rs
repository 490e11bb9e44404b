//! Where the CLI keeps state: `--data-dir DIR` (default: the platform's usual data folder) and
//! `--profile NAME`, one database file per profile, for every command that keeps state.

use std::path::PathBuf;

use clap::Args;
use weldguard_core::domain::Explain;
use weldguard_core::store::{Store, StoreError, profile_db_path};

use crate::output::{Failure, Output};

/// Options of every command that reads or writes the device database.
#[derive(Debug, Clone, Args)]
pub struct StateArgs {
    /// Folder for WeldGuard's data [default: the platform's data folder, e.g. ~/.local/share/weldguard]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// User profile; each profile has its own database.
    #[arg(long, value_name = "NAME", default_value = "default")]
    pub profile: String,
}

impl StateArgs {
    /// The data folder in use.
    pub fn data_dir(&self) -> Result<PathBuf, Failure> {
        match &self.data_dir {
            Some(dir) => Ok(dir.clone()),
            None => default_data_dir().ok_or_else(|| {
                Failure::input(
                    "data_dir.unknown",
                    "cannot tell the platform's data folder (no HOME); pass --data-dir DIR",
                )
            }),
        }
    }

    /// Open (creating if needed) the profile's database.
    pub fn open_store(&self, out: &Output) -> Result<Store, Failure> {
        let path = profile_db_path(&self.data_dir()?, &self.profile)
            .map_err(|e| store_failure(&e, out))?;
        // The profile folder holds the device key and token files: owner-only when made here.
        if let Some(folder) = path.parent() {
            crate::private::create_dir_all(folder).map_err(|e| {
                Failure::runtime(
                    "data_dir.create",
                    format!("cannot create {}: {e}", folder.display()),
                )
            })?;
        }
        Store::open(&path).map_err(|e| store_failure(&e, out))
    }
}

/// The platform's usual per-user data folder, with a `weldguard` folder inside.
pub fn default_data_dir() -> Option<PathBuf> {
    let env = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if cfg!(target_os = "windows") {
        env("APPDATA").map(|d| d.join("WeldGuard"))
    } else if cfg!(target_os = "macos") {
        env("HOME").map(|h| h.join("Library/Application Support/WeldGuard"))
    } else {
        env("XDG_DATA_HOME")
            .filter(|d| d.is_absolute())
            .or_else(|| env("HOME").map(|h| h.join(".local/share")))
            .map(|d| d.join("weldguard"))
    }
}

/// A store error as a CLI failure, in the user's language.
pub fn store_failure(error: &StoreError, out: &Output) -> Failure {
    let message = out
        .lang
        .pick(&error.message_zh(), &error.message_en())
        .to_owned();
    match error {
        StoreError::NewerSchema { .. }
        | StoreError::NotADatabase(_)
        | StoreError::Corrupt(_)
        | StoreError::CannotOpen(_) => Failure::input(error.code(), message),
        _ => Failure::runtime(error.code(), message),
    }
}

/// A service's error as a CLI failure in the user's language: the one mapping every command uses.
/// Bad input and refused steps exit 2, the rest 1; store, permit-store and sync errors keep their
/// own rules ([`store_failure`], `permit_store_failure`, `sync_failure`).
pub fn app_failure(error: &weldguard_core::app::AppError, out: &Output) -> Failure {
    use weldguard_core::app::AppError;
    use weldguard_core::app::error::ErrorKind;
    match error {
        AppError::Store(e) => store_failure(e, out),
        AppError::PermitStore(e) => crate::cmd::permit::permit_store_failure(e, out),
        AppError::Sync(e) => crate::cmd::sync::sync_failure(e, out),
        _ => {
            let message = out
                .lang
                .pick(&error.message_zh(), &error.message_en())
                .to_owned();
            match error.kind() {
                ErrorKind::Input => Failure::input(error.code(), message),
                _ => Failure::runtime(error.code(), message),
            }
        }
    }
}

/// The CLI's language for a service.
pub fn app_lang(out: &Output) -> weldguard_core::app::Lang {
    match out.lang {
        crate::output::Lang::Zh => weldguard_core::app::Lang::Zh,
        crate::output::Lang::En => weldguard_core::app::Lang::En,
    }
}
