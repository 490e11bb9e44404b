//! Stateless calls for the shells: ID number checks, code verification against a trust file, and
//! presenting a credential with the phone's hardware key (through the [`DeviceKey`] callback).

use std::sync::Arc;

use chrono::DateTime;

use super::error::WeldGuardError;
use super::types::{CodeCheck, IdCheck};
use weldguard_core::codes::{self, ReplayCache, RevocationSet, SignerError, TrustStore, Verifier};
use weldguard_core::rules::{self, WorkTime};

/// The phone's device key, held by Android Keystore or the iOS Secure Enclave: ES256 (P-256).
/// The core never sees the private key.
#[uniffi::export(with_foreign)]
pub trait DeviceKey: Send + Sync {
    /// The public key, SEC1-encoded and compressed (33 bytes).
    fn public_key(&self) -> Vec<u8>;
    /// Sign `message` with ECDSA P-256 / SHA-256; the 64-byte `r || s` signature (not DER).
    /// Either form of `s` is fine: the core turns it into the low-S form it verifies.
    fn sign(&self, message: Vec<u8>) -> Result<Vec<u8>, WeldGuardError>;
}

/// Adapts a shell's [`DeviceKey`] to the core's signer trait.
pub(crate) struct ForeignSigner(pub Arc<dyn DeviceKey>);

impl codes::DeviceSigner for ForeignSigner {
    fn public_key(&self) -> Vec<u8> {
        self.0.public_key()
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        self.0
            .sign(message.to_vec())
            .map_err(|e| SignerError(e.to_string()))
    }
}

/// Check a resident ID number on the date (China time) of `now_unix`.
#[uniffi::export]
pub fn check_id_number(id: String, now_unix: i64) -> IdCheck {
    let today = DateTime::from_timestamp(now_unix, 0)
        .map(|t| WorkTime::china(t).local_date)
        .unwrap_or_default();
    rules::check_id_number(&id, today).into()
}

/// Verify a scanned code against a trust file (JSON, as `weldguard keys generate` writes it) at
/// `now_unix`. A code that fails verification is an answer with `valid` false; only an unusable trust
/// file is an error.
#[uniffi::export]
pub fn verify_code(
    text: String,
    trust_json: String,
    now_unix: i64,
) -> Result<CodeCheck, WeldGuardError> {
    let trust = TrustStore::from_json(&trust_json)?;
    let revocations = RevocationSet::new();
    let verifier = Verifier::new(&trust, &revocations);
    Ok(
        match verifier.verify(&text, now_unix, &mut ReplayCache::default()) {
            Ok(code) => CodeCheck::verified(&code),
            Err(e) => CodeCheck::refused(&e),
        },
    )
}

/// Make a live presentation of the welder's credential, signed by the phone's device key now.
#[uniffi::export]
pub fn present_credential(
    credential_text: String,
    key: Arc<dyn DeviceKey>,
    now_unix: i64,
) -> Result<String, WeldGuardError> {
    Ok(codes::present(
        &credential_text,
        &ForeignSigner(key),
        now_unix,
    )?)
}
