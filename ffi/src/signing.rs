//! Signing through the person's own key: [`PersonSigner`], the foreign trait a shell implements
//! over Android Keystore or the iOS Secure Enclave for every step a person signs (a permit's
//! submit, site check, approval, closing and site code…). The core builds the exact bytes, says
//! why it asks ([`SignPurpose`]) and whether the person must be present; the shell answers with the
//! signature and whether the key store verified the person's presence. A step that must ask (a
//! permit's approval) is refused when the answer says it did not.
//!
//! The older [`crate::functions::DeviceKey`] stays for the device's own signatures (credential
//! presentations, token refresh).

use std::sync::Arc;

use weldguard_core::app::signing as app_signing;
use weldguard_core::codes::SignerError;

use crate::error::WeldGuardError;

/// What is being signed, so the shell can word its prompt and pick its key policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum SignPurpose {
    PermitSubmit,
    PermitSiteCheck,
    /// Always with the person's presence (biometric or PIN).
    PermitApprove,
    /// Always with the person's presence (biometric or PIN).
    PermitReject,
    PermitClose,
    /// The permit's site code, signed with the approver's key after the approval.
    PermitCode,
    InspectionSeal,
    CredentialPresentation,
}

impl From<app_signing::SignPurpose> for SignPurpose {
    fn from(p: app_signing::SignPurpose) -> Self {
        use app_signing::SignPurpose as P;
        match p {
            P::PermitSubmit => SignPurpose::PermitSubmit,
            P::PermitSiteCheck => SignPurpose::PermitSiteCheck,
            P::PermitApprove => SignPurpose::PermitApprove,
            P::PermitReject => SignPurpose::PermitReject,
            P::PermitClose => SignPurpose::PermitClose,
            P::PermitCode => SignPurpose::PermitCode,
            P::InspectionSeal => SignPurpose::InspectionSeal,
            P::CredentialPresentation => SignPurpose::CredentialPresentation,
        }
    }
}

impl From<SignPurpose> for app_signing::SignPurpose {
    fn from(p: SignPurpose) -> Self {
        use app_signing::SignPurpose as P;
        match p {
            SignPurpose::PermitSubmit => P::PermitSubmit,
            SignPurpose::PermitSiteCheck => P::PermitSiteCheck,
            SignPurpose::PermitApprove => P::PermitApprove,
            SignPurpose::PermitReject => P::PermitReject,
            SignPurpose::PermitClose => P::PermitClose,
            SignPurpose::PermitCode => P::PermitCode,
            SignPurpose::InspectionSeal => P::InspectionSeal,
            SignPurpose::CredentialPresentation => P::CredentialPresentation,
        }
    }
}

/// Whether `purpose` always asks for the person's presence (the shell may ask for more).
#[uniffi::export]
pub fn sign_purpose_requires_presence(purpose: SignPurpose) -> bool {
    app_signing::SignPurpose::from(purpose).requires_presence()
}

/// One request to sign.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SignRequest {
    pub purpose: SignPurpose,
    /// The exact bytes to sign (ECDSA P-256 / SHA-256: the signer hashes them).
    pub message: Vec<u8>,
    /// Ask for the person's presence (biometric or PIN) before signing.
    pub require_presence: bool,
}

/// A signature and whether the key store verified the person's presence for it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SignedBytes {
    /// 64 bytes `r || s` (not DER; either form of `s`, the core normalises to low-S).
    pub signature: Vec<u8>,
    /// The key store verified the person's presence (biometric / PIN) for this signature.
    pub user_present: bool,
}

/// A person's signing key, held by the shell (Android Keystore, iOS Secure Enclave): ES256
/// (P-256). The core never sees the private key.
#[uniffi::export(with_foreign)]
pub trait PersonSigner: Send + Sync {
    /// The public key, SEC1-encoded and compressed (33 bytes).
    fn public_key(&self) -> Vec<u8>;
    /// Sign `request.message`; ask for presence when `request.require_presence`.
    fn sign(&self, request: SignRequest) -> Result<SignedBytes, WeldGuardError>;
}

/// A shell's [`PersonSigner`] as the core's signer.
pub(crate) struct ForeignPersonSigner(pub Arc<dyn PersonSigner>);

impl app_signing::PersonSigner for ForeignPersonSigner {
    fn public_key(&self) -> Vec<u8> {
        self.0.public_key()
    }

    fn sign(&self, request: &app_signing::SignRequest) -> Result<app_signing::Signed, SignerError> {
        let signed = self
            .0
            .sign(SignRequest {
                purpose: request.purpose.into(),
                message: request.message.clone(),
                require_presence: request.require_presence,
            })
            .map_err(|e| SignerError(e.to_string()))?;
        Ok(app_signing::Signed {
            signature: signed.signature,
            user_present: signed.user_present,
        })
    }
}
