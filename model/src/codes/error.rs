//! Why a code was refused, why a code could not be issued, and why a key could not be used: typed
//! reasons with stable codes and Chinese/English messages (see [`crate::domain::Explain`]).

use crate::domain::{Explain, RevocationTarget};

use super::CodeKind;

/// Whose signature failed to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignatureRole {
    /// The issuer's signature over a machine label or welder credential.
    Issuer,
    /// The welder's device signature over a presentation.
    Device,
}

/// Why a scanned code was not accepted. Every variant is a well-formed negative answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    /// Not a decodable `WG1:` code (bad Base45, bad COSE, bad claims). `detail` is for logs.
    #[error("malformed code: {detail}")]
    Malformed { detail: String },
    /// A `WG…:` code of another version, or a signature algorithm this version does not know.
    #[error("unsupported code version or algorithm: {detail}")]
    UnsupportedVersion { detail: String },
    /// Signed by a key that is not in the trust store.
    #[error("unknown issuer key {kid}")]
    UnknownIssuer { kid: String },
    /// The signature does not check.
    #[error("bad {role:?} signature")]
    BadSignature { role: SignatureRole },
    /// Signed at a time outside the issuer key's validity period.
    #[error("issuer key {kid} was not valid when the code was signed")]
    IssuerKeyNotValid { kid: String },
    /// A valid code of another kind than the caller asked for.
    #[error("expected a {expected:?} code, found a {found:?} code")]
    WrongKind { expected: CodeKind, found: CodeKind },
    /// The credential's licence has expired.
    #[error("expired")]
    Expired,
    /// Issued or presented in the future (beyond the allowed clock skew), or the licence starts later.
    #[error("not yet valid")]
    NotYetValid,
    /// Revoked by the platform: the issuer key, the credential, the licence or the machine label.
    #[error("revoked ({target:?} {id})")]
    Revoked {
        target: RevocationTarget,
        id: String,
    },
    /// A presentation whose nonce was seen before.
    #[error("replayed presentation")]
    Replayed,
    /// A presentation older than its window: a screenshot or a photo of someone's screen.
    #[error("stale presentation: {age_secs} s old, window {window_secs} s")]
    StalePresentation { age_secs: i64, window_secs: i64 },
}

impl CodeError {
    pub(crate) fn malformed(detail: impl Into<String>) -> Self {
        CodeError::Malformed {
            detail: detail.into(),
        }
    }
}

fn target_zh(target: RevocationTarget) -> &'static str {
    match target {
        RevocationTarget::Licence => "操作证",
        RevocationTarget::Credential => "人员码",
        RevocationTarget::IssuerKey => "签发密钥",
        RevocationTarget::Machine => "设备码",
    }
}

fn target_en(target: RevocationTarget) -> &'static str {
    match target {
        RevocationTarget::Licence => "licence",
        RevocationTarget::Credential => "welder credential",
        RevocationTarget::IssuerKey => "issuer key",
        RevocationTarget::Machine => "machine label",
    }
}

fn kind_zh(kind: CodeKind) -> &'static str {
    match kind {
        CodeKind::MachineLabel => "设备码",
        CodeKind::WelderCredential => "人员码",
        CodeKind::Presentation => "人员码出示码",
    }
}

fn kind_en(kind: CodeKind) -> &'static str {
    match kind {
        CodeKind::MachineLabel => "machine label",
        CodeKind::WelderCredential => "welder credential",
        CodeKind::Presentation => "welder presentation",
    }
}

impl Explain for CodeError {
    fn code(&self) -> &'static str {
        match self {
            CodeError::Malformed { .. } => "code.malformed",
            CodeError::UnsupportedVersion { .. } => "code.unsupported_version",
            CodeError::UnknownIssuer { .. } => "code.unknown_issuer",
            CodeError::BadSignature { .. } => "code.bad_signature",
            CodeError::IssuerKeyNotValid { .. } => "code.issuer_key_not_valid",
            CodeError::WrongKind { .. } => "code.wrong_kind",
            CodeError::Expired => "code.expired",
            CodeError::NotYetValid => "code.not_yet_valid",
            CodeError::Revoked { .. } => "code.revoked",
            CodeError::Replayed => "code.replayed",
            CodeError::StalePresentation { .. } => "code.stale_presentation",
        }
    }

    fn message_zh(&self) -> String {
        match self {
            CodeError::Malformed { .. } => "无法识别的码：内容损坏或不是 WeldGuard 码".into(),
            CodeError::UnsupportedVersion { .. } => "码的版本或签名算法不受支持，请升级应用".into(),
            CodeError::UnknownIssuer { kid } => {
                format!("签发机构未知（密钥 {kid} 不在信任列表中），可能是伪造的码")
            }
            CodeError::BadSignature {
                role: SignatureRole::Issuer,
            } => "签名无效：码被篡改或伪造".into(),
            CodeError::BadSignature {
                role: SignatureRole::Device,
            } => "出示签名无效：不是持证人本人手机出示的码".into(),
            CodeError::IssuerKeyNotValid { kid } => {
                format!("签发时密钥 {kid} 不在有效期内，码无效")
            }
            CodeError::WrongKind { expected, found } => {
                format!(
                    "码的类型不对：需要{}，扫到的是{}",
                    kind_zh(*expected),
                    kind_zh(*found)
                )
            }
            CodeError::Expired => "证件已过期".into(),
            CodeError::NotYetValid => "码尚未生效（时间在未来），请检查手机时间".into(),
            CodeError::Revoked { target, id } => format!("{}已被注销：{id}", target_zh(*target)),
            CodeError::Replayed => "该出示码已被使用过（重放），请持证人重新出示".into(),
            CodeError::StalePresentation { age_secs, .. } => {
                format!(
                    "出示码已过时（{age_secs} 秒前生成），可能是截图或翻拍，请持证人现场重新出示"
                )
            }
        }
    }

    fn message_en(&self) -> String {
        match self {
            CodeError::Malformed { .. } => {
                "Unreadable code: damaged or not a WeldGuard code".into()
            }
            CodeError::UnsupportedVersion { .. } => {
                "Code version or signature algorithm not supported; update the app".into()
            }
            CodeError::UnknownIssuer { kid } => {
                format!("Unknown issuer (key {kid} is not trusted); the code may be forged")
            }
            CodeError::BadSignature {
                role: SignatureRole::Issuer,
            } => "Invalid signature: the code was altered or forged".into(),
            CodeError::BadSignature {
                role: SignatureRole::Device,
            } => "Invalid presentation signature: not shown from the holder's own phone".into(),
            CodeError::IssuerKeyNotValid { kid } => {
                format!("Issuer key {kid} was not valid when the code was signed")
            }
            CodeError::WrongKind { expected, found } => format!(
                "Wrong kind of code: expected a {}, scanned a {}",
                kind_en(*expected),
                kind_en(*found)
            ),
            CodeError::Expired => "The licence has expired".into(),
            CodeError::NotYetValid => {
                "The code is not valid yet (dated in the future); check the phone's clock".into()
            }
            CodeError::Revoked { target, id } => {
                format!("The {} was revoked: {id}", target_en(*target))
            }
            CodeError::Replayed => {
                "This presentation was already used (replay); ask the holder to show it again"
                    .into()
            }
            CodeError::StalePresentation { age_secs, .. } => format!(
                "Presentation is stale ({age_secs} s old): possibly a screenshot or photo; ask the holder to show it live"
            ),
        }
    }
}

/// Why a code could not be issued or presented.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IssueError {
    /// A claim is out of range or inconsistent (duplicate category, empty id, bad key length…).
    #[error("invalid claims: {0}")]
    InvalidClaims(String),
    /// The presentation would be signed by another key than the credential's device key.
    #[error("the device key does not match the credential")]
    DeviceKeyMismatch,
    /// The credential to present does not decode.
    #[error("credential does not decode: {0}")]
    BadCredential(CodeError),
    /// Signing failed (device key unavailable, random generator failure…).
    #[error("signing failed: {0}")]
    Signing(String),
    /// The credential's resident ID number fails GB 11643-1999 (check character, region, date…).
    #[error("the ID number {id_number:?} is not a valid resident ID number")]
    BadIdNumber {
        id_number: String,
        problems: Vec<crate::rules::IdProblem>,
    },
    /// The credential's expiry date is already past on the day of issuing.
    #[error("the credential expired on {expires_on}, before the day of issuing {today}")]
    CredentialExpired {
        expires_on: chrono::NaiveDate,
        today: chrono::NaiveDate,
    },
}

impl Explain for IssueError {
    fn code(&self) -> &'static str {
        match self {
            IssueError::InvalidClaims(_) => "issue.invalid_claims",
            IssueError::DeviceKeyMismatch => "issue.device_key_mismatch",
            IssueError::BadCredential(_) => "issue.bad_credential",
            IssueError::Signing(_) => "issue.signing_failed",
            IssueError::BadIdNumber { .. } => "issue.bad_id_number",
            IssueError::CredentialExpired { .. } => "issue.credential_expired",
        }
    }

    fn message_zh(&self) -> String {
        match self {
            IssueError::InvalidClaims(detail) => format!("码的内容不合规：{detail}"),
            IssueError::DeviceKeyMismatch => "本机密钥与人员码登记的设备不一致".into(),
            IssueError::BadCredential(e) => format!("人员码无法解析：{}", e.message_zh()),
            IssueError::Signing(detail) => format!("签名失败：{detail}"),
            IssueError::BadIdNumber {
                id_number,
                problems,
            } => format!(
                "身份号码 {id_number} 不是有效的公民身份号码（GB 11643-1999）：{}",
                problems
                    .iter()
                    .map(Explain::message_zh)
                    .collect::<Vec<_>>()
                    .join("；")
            ),
            IssueError::CredentialExpired { expires_on, today } => {
                format!("人员码有效期至{expires_on}，签发日{today}已过期，不予签发")
            }
        }
    }

    fn message_en(&self) -> String {
        match self {
            IssueError::InvalidClaims(detail) => format!("Invalid code content: {detail}"),
            IssueError::DeviceKeyMismatch => {
                "This device's key does not match the credential's device key".into()
            }
            IssueError::BadCredential(e) => {
                format!("Credential does not decode: {}", e.message_en())
            }
            IssueError::Signing(detail) => format!("Signing failed: {detail}"),
            IssueError::BadIdNumber {
                id_number,
                problems,
            } => format!(
                "The ID number {id_number} is not a valid resident ID number (GB 11643-1999): {}",
                problems
                    .iter()
                    .map(Explain::message_en)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            IssueError::CredentialExpired { expires_on, today } => format!(
                "The credential expired on {expires_on}, before the day of issuing {today}; not issued"
            ),
        }
    }
}

/// Why an issuer key, a trust file or a revocation file could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not the expected JSON or PEM shape.
    #[error("unreadable key or trust file: {0}")]
    Format(String),
    /// Bytes that are not a key of the stated algorithm.
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// The same key id appears twice, or a validity period ends before it starts.
    #[error("inconsistent trust file: {0}")]
    Inconsistent(String),
    /// The random generator failed.
    #[error("random generator failed: {0}")]
    Random(String),
}

impl Explain for KeyError {
    fn code(&self) -> &'static str {
        match self {
            KeyError::Format(_) => "key.format",
            KeyError::InvalidKey(_) => "key.invalid",
            KeyError::Inconsistent(_) => "key.inconsistent",
            KeyError::Random(_) => "key.random",
        }
    }

    fn message_zh(&self) -> String {
        match self {
            KeyError::Format(d) => format!("密钥或信任文件格式错误：{d}"),
            KeyError::InvalidKey(d) => format!("密钥无效：{d}"),
            KeyError::Inconsistent(d) => format!("信任文件内容矛盾：{d}"),
            KeyError::Random(d) => format!("随机数生成失败：{d}"),
        }
    }

    fn message_en(&self) -> String {
        self.to_string()
    }
}
