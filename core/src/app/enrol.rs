//! Enrolment with a platform server (设备注册): a one-time code an administrator made, the public
//! part of the device's key, and the platform's answer: who this device acts for, its id and its
//! token. The platform's trust file is fetched over the channel the code just opened and saved as
//! the profile's trust anchor ([`crate::codes::rotation`]); later rotations reach the profile only
//! as keys an already trusted key endorsed ([`crate::app::sync`]).
//!
//! The signed signer directory is fetched too (best effort), so the view names the permit roles the
//! platform vouches for this device's key.
//!
//! The token is returned, never saved here: a phone's shell keeps it in the Keystore/Keychain, the
//! CLI in its `sync.json`.

use std::sync::atomic::AtomicBool;

use serde::Serialize;

use super::device::Device;
use super::error::AppError;
use crate::codes::{TrustStore, from_hex, to_hex};
use crate::sync::protocol::Role;
use crate::sync::{RetryPolicy, SyncClient};

/// What to enrol with.
#[derive(Debug, Clone)]
pub struct EnrolRequest {
    /// The platform, `http://HOST:PORT` or `https://…`.
    pub server_url: String,
    /// The one-time enrolment code.
    pub code: String,
    /// The device key's public part (SEC1; the key that signs the person's steps and refreshes the
    /// token). Empty for a device that signs nothing.
    pub public_key: Vec<u8>,
    /// A label for the device, shown to administrators.
    pub device_name: String,
}

/// Who the device is enrolled as: the view an enrolment screen shows, and what the shell keeps.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct Enrolled {
    /// The platform's address as used (no trailing slash).
    pub server: String,
    pub device_id: String,
    /// The person's name as enrolled.
    pub person: String,
    /// The id permits name the person by.
    pub person_id: String,
    pub role: Role,
    /// The permit roles the platform's signed signer directory gives this device's key (empty: it
    /// signs no permit step); `None` when the directory could not be fetched at enrolment (the next
    /// sync fetches it).
    pub permit_roles: Option<Vec<String>>,
    /// The device token: store it in secure storage. Never serialised into a view.
    #[serde(skip)]
    pub token: String,
    /// When the token expires (Unix ms); `None`: it does not.
    pub token_expires_at_ms: Option<i64>,
    /// The issuer keys now trusted (hex kids).
    pub issuer_keys: Vec<String>,
}

impl std::fmt::Debug for Enrolled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enrolled")
            .field("server", &self.server)
            .field("device_id", &self.device_id)
            .field("person", &self.person)
            .field("role", &self.role)
            .field("token", &"…")
            .finish_non_exhaustive()
    }
}

/// Enrol the profile at `now` (Unix seconds): trade the code for an identity and a token, then
/// fetch the platform's trust file with that token and save it as the profile's trust. A platform
/// that publishes no usable trust file fails the enrolment after the code was used (the profile's
/// trust is unchanged); enrol again with a new code.
pub fn enrol(device: &Device, request: &EnrolRequest, now: i64) -> Result<Enrolled, AppError> {
    if request.code.trim().is_empty() {
        return Err(AppError::input(
            "enrol.no_code",
            "请输入注册码",
            "Enter the enrolment code",
        ));
    }
    let client = SyncClient::new(&request.server_url, None, RetryPolicy::default())?;
    let answer = client.enrol(
        request.code.trim(),
        &to_hex(&request.public_key),
        &request.device_name,
    )?;
    let enrolled = SyncClient::new(
        client.base_url(),
        Some(answer.token.clone()),
        RetryPolicy::default(),
    )?;
    let file = enrolled.trust_file()?;
    let trust = TrustStore::from_file(file)?;
    if trust.keys().is_empty() {
        return Err(AppError::input(
            "enrol.no_trust",
            "平台未提供签发密钥（信任文件为空）",
            "The platform published no issuer keys (its trust file is empty)",
        ));
    }
    let issuer_keys = trust.keys().iter().map(|k| to_hex(&k.kid)).collect();
    device.save_trust(trust.clone(), now.saturating_mul(1000))?;
    // The signed signer directory: the permit roles the platform vouches for this device's key.
    // Best effort: the code is used already, and the next sync fetches the directory again.
    let fetched = enrolled
        .fetch_signer_directory(device.store(), &trust, &AtomicBool::new(false))
        .is_ok();
    let permit_roles = if fetched {
        device
            .store()
            .signer_directory()?
            .and_then(|d| {
                d.entries
                    .into_iter()
                    .find(|e| e.device_id == answer.device_id)
            })
            .map(|e| e.roles)
            .or(Some(Vec::new()))
    } else {
        None
    };
    Ok(Enrolled {
        server: client.base_url().to_owned(),
        device_id: answer.device_id,
        person: answer.person,
        person_id: answer.person_id,
        role: answer.role,
        permit_roles,
        token: answer.token,
        token_expires_at_ms: answer.token_expires_at_ms,
        issuer_keys,
    })
}

/// A public key given as hex (the CLI's `--public-key`); bad hex is an input error.
pub fn public_key_from_hex(text: &str) -> Result<Vec<u8>, AppError> {
    from_hex(text).ok_or_else(|| {
        AppError::input(
            "enrol.bad_public_key",
            format!("公钥不是十六进制：{text}"),
            format!("The public key is not hex: {text}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Explain;
    use crate::store::test_support::TempDir;

    fn request(server_url: &str, code: &str) -> EnrolRequest {
        EnrolRequest {
            server_url: server_url.into(),
            code: code.into(),
            public_key: vec![4, 1, 2],
            device_name: "phone".into(),
        }
    }

    #[test]
    fn bad_input_is_refused_and_changes_nothing() {
        let dir = TempDir::new();
        let device = Device::open(dir.path().join("p.sqlite")).unwrap();
        let err = enrol(&device, &request("http://127.0.0.1:9", "  "), 1).unwrap_err();
        assert_eq!(err.code(), "enrol.no_code");
        let err = enrol(&device, &request("not a url", "ABC"), 1).unwrap_err();
        assert_eq!(err.code(), "sync.invalid_address");
        assert!(device.store().saved_trust().unwrap().is_none());
        assert!(device.trust().keys().is_empty());
        assert_eq!(public_key_from_hex("04ab").unwrap(), vec![4, 0xab]);
        assert_eq!(
            public_key_from_hex("xyz").unwrap_err().code(),
            "enrol.bad_public_key"
        );
    }
}
