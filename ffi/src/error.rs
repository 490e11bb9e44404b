//! The one error type the shells see. Internal errors (store, codes, keys, signing) are mapped here,
//! in one place, to a small set of variants, each with a stable code and Chinese and English text.

use weldguard_core::codes::{CodeError, IssueError, KeyError, SignerError};
use weldguard_core::domain::Explain;
use weldguard_core::scan::ScanError;
use weldguard_core::store::StoreError;

/// What went wrong, for a person and for code that matches on `code`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum WeldGuardError {
    /// The input cannot be used (malformed text, bad key, unknown permit…); nothing was changed.
    #[error("{code}: {message_en}")]
    InvalidInput {
        code: String,
        message_zh: String,
        message_en: String,
    },
    /// The device database failed (full, damaged, newer schema…); nothing was half-written.
    #[error("{code}: {message_en}")]
    Storage {
        code: String,
        message_zh: String,
        message_en: String,
    },
    /// A sync with the platform failed. `retryable`: the network or the server failed and a later
    /// sync will go on where this one stopped; otherwise the platform refused (re-enrol, update the
    /// app) or the sync was cancelled.
    #[error("{code}: {message_en}")]
    Sync {
        code: String,
        message_zh: String,
        message_en: String,
        retryable: bool,
    },
    /// The phone's key store could not sign (key missing, user cancelled, hardware error).
    #[error("{code}: {message_en}")]
    Signing {
        code: String,
        message_zh: String,
        message_en: String,
    },
}

impl WeldGuardError {
    fn parts(e: &dyn Explain) -> (String, String, String) {
        (e.code().to_owned(), e.message_zh(), e.message_en())
    }

    pub(crate) fn invalid(e: &dyn Explain) -> Self {
        let (code, message_zh, message_en) = Self::parts(e);
        WeldGuardError::InvalidInput {
            code,
            message_zh,
            message_en,
        }
    }

    pub(crate) fn invalid_text(code: &str, zh: impl Into<String>, en: impl Into<String>) -> Self {
        WeldGuardError::InvalidInput {
            code: code.to_owned(),
            message_zh: zh.into(),
            message_en: en.into(),
        }
    }

    /// The stable code.
    pub fn code(&self) -> &str {
        match self {
            WeldGuardError::InvalidInput { code, .. }
            | WeldGuardError::Storage { code, .. }
            | WeldGuardError::Sync { code, .. }
            | WeldGuardError::Signing { code, .. } => code,
        }
    }
}

impl From<StoreError> for WeldGuardError {
    fn from(e: StoreError) -> Self {
        let (code, message_zh, message_en) = Self::parts(&e);
        WeldGuardError::Storage {
            code,
            message_zh,
            message_en,
        }
    }
}

impl From<weldguard_core::sync::SyncError> for WeldGuardError {
    fn from(e: weldguard_core::sync::SyncError) -> Self {
        use weldguard_core::sync::SyncError;
        match e {
            SyncError::Store(store) => store.into(),
            other => {
                let (code, message_zh, message_en) = Self::parts(&other);
                WeldGuardError::Sync {
                    code,
                    message_zh,
                    message_en,
                    retryable: matches!(other, SyncError::Network(_) | SyncError::Server { .. }),
                }
            }
        }
    }
}

impl From<CodeError> for WeldGuardError {
    fn from(e: CodeError) -> Self {
        Self::invalid(&e)
    }
}

impl From<KeyError> for WeldGuardError {
    fn from(e: KeyError) -> Self {
        Self::invalid(&e)
    }
}

impl From<IssueError> for WeldGuardError {
    fn from(e: IssueError) -> Self {
        match e {
            IssueError::Signing(reason) => WeldGuardError::Signing {
                code: "signer.failed".into(),
                message_zh: format!("设备签名失败：{reason}"),
                message_en: format!("The device could not sign: {reason}"),
            },
            other => Self::invalid(&other),
        }
    }
}

/// A service's error, sorted by its kind (one mapping for every adapter over `weldguard_core::app`).
impl From<weldguard_core::app::AppError> for WeldGuardError {
    fn from(e: weldguard_core::app::AppError) -> Self {
        use weldguard_core::app::error::ErrorKind;
        match e {
            weldguard_core::app::AppError::Sync(sync) => sync.into(),
            weldguard_core::app::AppError::Store(store) => store.into(),
            weldguard_core::app::AppError::Signing(signer) => signer.into(),
            weldguard_core::app::AppError::Issue(issue) => issue.into(),
            other => {
                let (code, message_zh, message_en) = Self::parts(&other);
                // A permit step whose signature the key store refused, or made without the
                // presence the step needs, is the key store's answer, not bad input.
                if matches!(
                    code.as_str(),
                    "permit.presence_required" | "permit.signing_failed"
                ) {
                    return WeldGuardError::Signing {
                        code,
                        message_zh,
                        message_en,
                    };
                }
                match other.kind() {
                    ErrorKind::Storage => WeldGuardError::Storage {
                        code,
                        message_zh,
                        message_en,
                    },
                    ErrorKind::Sync { retryable } => WeldGuardError::Sync {
                        code,
                        message_zh,
                        message_en,
                        retryable,
                    },
                    ErrorKind::Signing => WeldGuardError::Signing {
                        code,
                        message_zh,
                        message_en,
                    },
                    ErrorKind::Input => WeldGuardError::InvalidInput {
                        code,
                        message_zh,
                        message_en,
                    },
                }
            }
        }
    }
}

/// A frame or image file that cannot be scanned (empty, a stride narrower than the width, fewer
/// bytes than the shape needs, over the size caps, not a PNG or JPEG, truncated).
impl From<ScanError> for WeldGuardError {
    fn from(e: ScanError) -> Self {
        Self::invalid(&e)
    }
}

impl From<SignerError> for WeldGuardError {
    fn from(e: SignerError) -> Self {
        WeldGuardError::Signing {
            code: "signer.failed".into(),
            message_zh: format!("设备签名失败：{}", e.0),
            message_en: format!("The device could not sign: {}", e.0),
        }
    }
}

/// A callback into Kotlin or Swift threw something the interface does not declare: a typed error,
/// never a panic.
impl From<uniffi::UnexpectedUniFFICallbackError> for WeldGuardError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        WeldGuardError::Signing {
            code: "signer.unexpected".into(),
            message_zh: format!("设备密钥回调出现意外错误：{}", e.reason),
            message_en: format!("The device key callback failed unexpectedly: {}", e.reason),
        }
    }
}

impl WeldGuardError {
    /// A call that ended without an answer (its worker thread failed): never a panic across the
    /// FFI.
    pub(crate) fn interrupted(what: &str) -> Self {
        WeldGuardError::Storage {
            code: "call.interrupted".into(),
            message_zh: format!("操作意外中断：{what}"),
            message_en: format!("The call ended unexpectedly: {what}"),
        }
    }
}
