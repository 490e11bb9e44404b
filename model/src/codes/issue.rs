//! Making codes: an issuer signs machine labels and welder credentials; the welder's device presents
//! its credential by signing (credential digest, time, nonce) with its device key.
//!
//! A credential is signed only for a resident ID number that passes GB 11643-1999 (check
//! character, region, birth date) and an expiry date not already past on the day of issuing (China
//! time); the CLI and the platform's admin route both come through [`issue_credential`].

use chrono::{DateTime, NaiveDate};
use sha2::{Digest, Sha256};

#[cfg(any(test, feature = "issuer"))]
use crate::domain::MachineLabel;
use crate::domain::WelderCredential;
use crate::rules::{WorkTime, check_id_number};

#[cfg(any(test, feature = "issuer"))]
use super::claims::CredentialClaims;
use super::claims::{Payload, PresentationClaims, validate};
use super::envelope::{self, BuildError};
use super::keys::IssuerAlg;
#[cfg(any(test, feature = "issuer"))]
use super::keys::IssuerKey;
use super::signer::{DeviceSigner, sign_normalised};
use super::{CodeError, IssueError};

/// Length of the random nonce in a presentation (bytes).
pub const NONCE_BYTES: usize = 12;

#[cfg(any(test, feature = "issuer"))]
fn issue(key: &IssuerKey, payload: &Payload) -> Result<String, IssueError> {
    validate(payload).map_err(IssueError::InvalidClaims)?;
    envelope::build(key.alg(), &key.kid(), payload, None, |tbs| key.sign(tbs))
        .map(|cose| envelope::to_text(&cose))
        .map_err(|e| match e {
            BuildError::Encode(d) => IssueError::InvalidClaims(d),
            BuildError::Sign(d) => IssueError::Signing(d),
        })
}

#[cfg(any(test, feature = "issuer"))]
/// Sign a machine label (设备码); its `issued_at` is the signing time checked against the key's validity.
pub fn issue_machine_label(key: &IssuerKey, label: &MachineLabel) -> Result<String, IssueError> {
    issue(key, &Payload::Machine(label.clone()))
}

/// The China-time date of a Unix time (`None` out of chrono's range).
fn china_date(unix_secs: i64) -> Option<NaiveDate> {
    DateTime::from_timestamp(unix_secs, 0).map(|t| WorkTime::china(t).local_date)
}

/// Whether `credential` may be issued on the China-time date of `now` (Unix seconds): its ID number
/// passes GB 11643-1999 as of that day (an 18-character number; a legacy 15-digit one is refused)
/// and it has not expired by then. A credential that may not is never signed.
pub fn check_issuable(credential: &WelderCredential, now: i64) -> Result<(), IssueError> {
    let today = china_date(now).ok_or_else(|| {
        IssueError::InvalidClaims(format!("the time of issuing {now} is out of range"))
    })?;
    let report = check_id_number(&credential.id_number, today);
    if !report.valid || report.legacy {
        return Err(IssueError::BadIdNumber {
            id_number: credential.id_number.clone(),
            problems: report.problems,
        });
    }
    if credential.expires_on < today {
        return Err(IssueError::CredentialExpired {
            expires_on: credential.expires_on,
            today,
        });
    }
    Ok(())
}

#[cfg(any(test, feature = "issuer"))]
/// Sign a welder credential (人员码) at `signed_at` (Unix seconds, the time the credential
/// states), issued at `now` (Unix seconds, the issuer's clock, read by the caller). Refused
/// ([`check_issuable`]) when the ID number fails GB 11643-1999 or the credential has expired by
/// the day of `now` or of `signed_at`.
pub fn issue_credential(
    key: &IssuerKey,
    credential: &WelderCredential,
    signed_at: i64,
    now: i64,
) -> Result<String, IssueError> {
    check_issuable(credential, now)?;
    check_issuable(credential, signed_at)?;
    issue(
        key,
        &Payload::Welder(CredentialClaims {
            credential: credential.clone(),
            signed_at,
        }),
    )
}

/// SHA-256 of a credential's COSE bytes: what a presentation signs, and (in hex, first 16 bytes) the
/// credential id revocations name.
pub fn credential_digest(credential_cose: &[u8]) -> Vec<u8> {
    Sha256::digest(credential_cose).to_vec()
}

/// The credential id of a credential's COSE bytes: hex of the first 16 bytes of its digest.
pub fn credential_id(credential_cose: &[u8]) -> String {
    super::keys::to_hex(
        credential_digest(credential_cose)
            .get(..16)
            .unwrap_or_default(),
    )
}

/// Present a credential code from this device, now (Unix seconds), with a fresh random nonce.
/// Refused when the device's key is not the one the credential names.
pub fn present(
    credential_code: &str,
    signer: &dyn DeviceSigner,
    now: i64,
) -> Result<String, IssueError> {
    let mut nonce = [0u8; NONCE_BYTES];
    getrandom::fill(&mut nonce).map_err(|e| IssueError::Signing(e.to_string()))?;
    present_with_nonce(credential_code, signer, now, &nonce)
}

/// [`present`] with a caller-chosen nonce (tests, or a shell with its own generator).
pub fn present_with_nonce(
    credential_code: &str,
    signer: &dyn DeviceSigner,
    now: i64,
    nonce: &[u8],
) -> Result<String, IssueError> {
    let cose = envelope::from_text(credential_code).map_err(IssueError::BadCredential)?;
    let parsed = envelope::parse(&cose).map_err(IssueError::BadCredential)?;
    let Payload::Welder(claims) = &parsed.payload else {
        return Err(IssueError::BadCredential(CodeError::WrongKind {
            expected: super::CodeKind::WelderCredential,
            found: parsed.payload.kind(),
        }));
    };
    if claims.credential.device_key != signer.public_key() {
        return Err(IssueError::DeviceKeyMismatch);
    }
    sign_presentation(&cose, signer, now, nonce)
}

/// Sign a presentation of `credential_cose` without checking that the signer is the credential's
/// device (the verifier will check; tests use this to forge one).
pub(crate) fn sign_presentation(
    credential_cose: &[u8],
    signer: &dyn DeviceSigner,
    now: i64,
    nonce: &[u8],
) -> Result<String, IssueError> {
    let payload = Payload::Presentation(PresentationClaims {
        credential_digest: credential_digest(credential_cose),
        presented_at: now,
        nonce: nonce.to_vec(),
    });
    validate(&payload).map_err(IssueError::InvalidClaims)?;
    envelope::build(
        IssuerAlg::ES256,
        &[],
        &payload,
        Some(credential_cose),
        |tbs| sign_normalised(signer, tbs),
    )
    .map(|cose| envelope::to_text(&cose))
    .map_err(|e| match e {
        BuildError::Encode(d) => IssueError::InvalidClaims(d),
        BuildError::Sign(d) => IssueError::Signing(d.0),
    })
}
