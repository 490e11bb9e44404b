//! Why a sync stopped, with a stable code and a reason in Chinese and English.

use crate::domain::Explain;
use crate::store::StoreError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncError {
    /// The server address is not an `http://` or `https://` URL.
    #[error("invalid server address: {0}")]
    InvalidAddress(String),
    /// The HTTP client could not be set up on this system, e.g. no root certificates to check a
    /// server's TLS certificate with (needed even before an `http://` call).
    #[error(
        "this device's HTTPS set-up failed (are the system's root certificates installed?): {0}"
    )]
    ClientSetup(String),
    /// The network failed (after every retry).
    #[error("network error: {0}")]
    Network(String),
    /// The server failed (5xx, after every retry).
    #[error("server error {status}: {message}")]
    Server { status: u16, message: String },
    /// The device is not enrolled, or its token is no longer valid.
    #[error("not authorised: {0}")]
    Unauthorized(String),
    /// The device token expired and the client has no device key to refresh it with (or the
    /// refreshed token was called expired too).
    #[error("the device token has expired: {0}")]
    TokenExpired(String),
    /// Refreshing the expired token was refused (the device was disabled, its key does not match
    /// the enrolled one, …) or the device key could not sign; not retried.
    #[error("the device token could not be refreshed ({code}): {message}")]
    RefreshFailed { code: String, message: String },
    /// The server refused the request (4xx); retrying would not help.
    #[error("refused by the server ({status} {code}): {message}")]
    Refused {
        status: u16,
        code: String,
        message: String,
    },
    /// The server's answer could not be understood.
    #[error("malformed server answer: {0}")]
    BadResponse(String),
    /// The server asked for a refetch twice in a row.
    #[error("the server keeps asking for a full refetch")]
    RefetchLoop,
    /// The caller cancelled.
    #[error("sync cancelled")]
    Cancelled,
    /// The revocation status list the server sent does not verify (unknown or expired issuer key,
    /// bad signature, malformed): nothing was stored and the sync stopped.
    #[error("the revocation status list does not verify: {0}")]
    StatusList(crate::codes::CodeError),
    /// The signer directory the server sent does not verify: nothing was stored, the sync stopped.
    #[error("the signer directory does not verify: {0}")]
    SignerDirectory(crate::codes::CodeError),
    /// The registry snapshot manifest the server sent does not verify: nothing was loaded.
    #[error("the registry snapshot does not verify: {0}")]
    Snapshot(crate::codes::CodeError),
    #[error("{0}")]
    Store(#[from] StoreError),
}

impl Explain for SyncError {
    fn code(&self) -> &'static str {
        match self {
            SyncError::InvalidAddress(_) => "sync.invalid_address",
            SyncError::ClientSetup(_) => "sync.client_setup",
            SyncError::Network(_) => "sync.network",
            SyncError::Server { .. } => "sync.server_error",
            SyncError::Unauthorized(_) => "sync.unauthorized",
            SyncError::TokenExpired(_) => "sync.token_expired",
            SyncError::RefreshFailed { .. } => "sync.refresh_failed",
            SyncError::Refused { .. } => "sync.refused",
            SyncError::BadResponse(_) => "sync.bad_response",
            SyncError::RefetchLoop => "sync.refetch_loop",
            SyncError::Cancelled => "sync.cancelled",
            SyncError::StatusList(_) => "sync.status_list_invalid",
            SyncError::Snapshot(_) => "sync.snapshot_invalid",
            SyncError::SignerDirectory(_) => "sync.signer_directory_invalid",
            SyncError::Store(e) => e.code(),
        }
    }

    fn message_zh(&self) -> String {
        match self {
            SyncError::InvalidAddress(d) => format!("服务器地址无效：{d}"),
            SyncError::ClientSetup(d) => {
                format!("本设备的 HTTPS 组件无法初始化（系统根证书是否已安装？）：{d}")
            }
            SyncError::Network(d) => format!("网络错误，稍后会自动重试：{d}"),
            SyncError::Server { status, message } => {
                format!("平台服务器出错（{status}），稍后会自动重试：{message}")
            }
            SyncError::Unauthorized(d) => format!("本设备未注册或授权已失效，请重新注册：{d}"),
            SyncError::TokenExpired(d) => {
                format!("本设备的登录凭证已过期，且无法用设备密钥自动续期：{d}")
            }
            SyncError::RefreshFailed { code, message } => {
                format!("登录凭证续期被拒绝（{code}），请联系管理员或重新注册：{message}")
            }
            SyncError::Refused { code, message, .. } => {
                format!("平台拒绝了请求（{code}）：{message}")
            }
            SyncError::BadResponse(d) => format!("平台的应答无法识别：{d}"),
            SyncError::RefetchLoop => "平台反复要求重新下载全部数据，请联系管理员".to_owned(),
            SyncError::Cancelled => "同步已取消，下次会从中断处继续".to_owned(),
            SyncError::StatusList(e) => {
                format!("平台下发的吊销名单验签失败，未予采用：{}", e.message_zh())
            }
            SyncError::Snapshot(e) => {
                format!(
                    "平台下发的登记数据快照验签失败，未予采用：{}",
                    e.message_zh()
                )
            }
            SyncError::SignerDirectory(e) => {
                format!("平台下发的签字人名录验签失败，未予采用：{}", e.message_zh())
            }
            SyncError::Store(e) => e.message_zh(),
        }
    }

    fn message_en(&self) -> String {
        match self {
            SyncError::Network(_) | SyncError::Server { .. } => {
                format!("{self}; it will be retried later")
            }
            SyncError::Cancelled => "sync cancelled; the next sync resumes where it stopped".into(),
            SyncError::StatusList(e) => format!(
                "the revocation status list from the platform does not verify and was not used: {}",
                e.message_en()
            ),
            SyncError::Snapshot(e) => format!(
                "the registry snapshot from the platform does not verify and was not used: {}",
                e.message_en()
            ),
            SyncError::SignerDirectory(e) => format!(
                "the signer directory from the platform does not verify and was not used: {}",
                e.message_en()
            ),
            SyncError::Store(e) => e.message_en(),
            _ => self.to_string(),
        }
    }
}
