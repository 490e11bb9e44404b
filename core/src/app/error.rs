//! [`AppError`]: what a service can fail with. Each variant wraps the capability's own error (which
//! keeps its stable code and both languages) or says what input was unusable; [`AppError::kind`]
//! sorts them into the few kinds a shell acts on. The FFI maps this type to its public enum in one
//! place (`weldguard-ffi`), the CLI to its exit codes in one place.

use crate::codes::{CodeError, IssueError, KeyError, SignerError};
use crate::domain::Explain;
use crate::inspect::InspectError;
use crate::permit::{PermitCodeError, PermitError};
use crate::scan::ScanError;
use crate::store::{PermitStoreError, StoreError};
use crate::sync::SyncError;

/// What a service could not do. Nothing was changed unless the variant says otherwise.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Unusable input (malformed text, unknown permit, out-of-range time…).
    #[error("{code}: {en}")]
    Input {
        code: &'static str,
        zh: String,
        en: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    PermitStore(#[from] PermitStoreError),
    #[error(transparent)]
    Permit(#[from] PermitError),
    #[error(transparent)]
    PermitCode(#[from] PermitCodeError),
    #[error(transparent)]
    Inspect(#[from] InspectError),
    #[error(transparent)]
    Code(#[from] CodeError),
    #[error(transparent)]
    Issue(#[from] IssueError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Scan(#[from] ScanError),
    #[error(transparent)]
    Sync(#[from] SyncError),
    /// The person's key could not sign (missing, the user cancelled the prompt, hardware error).
    #[error("signer.failed: {0}")]
    Signing(#[from] SignerError),
}

/// The kinds of failure a screen tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The input or the asked step cannot be used; fix it and try again.
    Input,
    /// The device database failed.
    Storage,
    /// The platform could not be reached or refused; `retryable` when a later sync goes on.
    Sync { retryable: bool },
    /// The key store could not sign.
    Signing,
}

impl AppError {
    /// An input error with its stable code and both texts.
    pub fn input(code: &'static str, zh: impl Into<String>, en: impl Into<String>) -> Self {
        AppError::Input {
            code,
            zh: zh.into(),
            en: en.into(),
        }
    }

    /// Which kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            AppError::Store(_) => ErrorKind::Storage,
            AppError::PermitStore(PermitStoreError::Store(_)) => ErrorKind::Storage,
            AppError::Sync(SyncError::Store(_)) => ErrorKind::Storage,
            AppError::Sync(e) => ErrorKind::Sync {
                retryable: matches!(e, SyncError::Network(_) | SyncError::Server { .. }),
            },
            AppError::Signing(_) | AppError::Issue(IssueError::Signing(_)) => ErrorKind::Signing,
            _ => ErrorKind::Input,
        }
    }

    fn inner(&self) -> Option<&dyn Explain> {
        Some(match self {
            AppError::Input { .. } | AppError::Signing(_) => return None,
            AppError::Store(e) => e,
            AppError::PermitStore(e) => e,
            AppError::Permit(e) => e,
            AppError::PermitCode(e) => e,
            AppError::Inspect(e) => e,
            AppError::Code(e) => e,
            AppError::Issue(e) => e,
            AppError::Key(e) => e,
            AppError::Scan(e) => e,
            AppError::Sync(e) => e,
        })
    }
}

impl Explain for AppError {
    fn code(&self) -> &'static str {
        match self {
            AppError::Input { code, .. } => code,
            AppError::Signing(_) => "signer.failed",
            _ => self.inner().map_or("app.error", |e| e.code()),
        }
    }

    fn message_zh(&self) -> String {
        match self {
            AppError::Input { zh, .. } => zh.clone(),
            AppError::Signing(e) => format!("设备签名失败：{}", e.0),
            _ => self.inner().map(|e| e.message_zh()).unwrap_or_default(),
        }
    }

    fn message_en(&self) -> String {
        match self {
            AppError::Input { en, .. } => en.clone(),
            AppError::Signing(e) => format!("The device could not sign: {}", e.0),
            _ => self.inner().map(|e| e.message_en()).unwrap_or_default(),
        }
    }
}
