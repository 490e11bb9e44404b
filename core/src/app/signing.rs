//! Signing through the person's own key: every step a person signs (a permit's submit, site check,
//! approval, rejection and closing; an inspection's seal; a credential's live presentation) is
//! signed by the shell's [`PersonSigner`] (Android Keystore, the iOS Secure Enclave, or a software
//! key on the desktop). The core builds the exact bytes, says why it asks and whether the person
//! must be present (a biometric or PIN prompt), and checks the answer: a step that must ask for
//! presence is refused when the signer says it did not.
//!
//! The bytes each kind of signature covers are fixed by the test vectors under
//! `core/tests/vectors/` (see `docs/adr/0015-application-layer.md`).

use crate::codes::signer::{DeviceSigner, SignerError};

/// What is being signed, so the shell can word its prompt and pick its key policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignPurpose {
    PermitSubmit,
    PermitSiteCheck,
    PermitApprove,
    PermitReject,
    PermitClose,
    /// The permit's site code (the approver's key signs it after the approval).
    PermitCode,
    InspectionSeal,
    CredentialPresentation,
}

impl SignPurpose {
    /// Whether the person must prove presence (biometric or device PIN) for this signature: a
    /// permit's approval and rejection always (docs/adr/0015); the others are the phone's choice.
    pub fn requires_presence(self) -> bool {
        matches!(self, SignPurpose::PermitApprove | SignPurpose::PermitReject)
    }
}

/// One request to sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignRequest {
    pub purpose: SignPurpose,
    /// The exact bytes to sign (ES256: the signer hashes them with SHA-256).
    pub message: Vec<u8>,
    /// Ask for the person's presence (biometric / PIN) before signing.
    pub require_presence: bool,
}

/// A signature and whether the person's presence was verified for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// 64 bytes `r || s` (either form of `s`; the core normalises to low-S).
    pub signature: Vec<u8>,
    /// The key store verified the person's presence (biometric / PIN) for this signature.
    pub user_present: bool,
}

/// A person's signing key, held by the shell. The core never sees the private key.
pub trait PersonSigner: Send + Sync {
    /// The public key, SEC1-encoded and compressed (33 bytes).
    fn public_key(&self) -> Vec<u8>;
    /// Sign `request.message` with ECDSA P-256 / SHA-256.
    fn sign(&self, request: &SignRequest) -> Result<Signed, SignerError>;
}

/// A [`PersonSigner`] used for one purpose, as the domain's [`DeviceSigner`]. It refuses when the
/// purpose requires presence and the signer says it was not verified; [`Self::user_present`]
/// tells afterwards whether every signature it made had presence verified.
pub struct PurposeSigner<'a> {
    signer: &'a dyn PersonSigner,
    purpose: SignPurpose,
    user_present: std::sync::atomic::AtomicBool,
    presence_refused: std::sync::atomic::AtomicBool,
}

impl<'a> PurposeSigner<'a> {
    pub fn new(signer: &'a dyn PersonSigner, purpose: SignPurpose) -> Self {
        Self {
            signer,
            purpose,
            user_present: std::sync::atomic::AtomicBool::new(true),
            presence_refused: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Whether every signature made through this adapter had the person's presence verified.
    pub fn user_present(&self) -> bool {
        self.user_present.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether a signature was refused because the purpose requires presence and the key store
    /// did not verify it.
    pub fn presence_refused(&self) -> bool {
        self.presence_refused
            .load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl DeviceSigner for PurposeSigner<'_> {
    fn public_key(&self) -> Vec<u8> {
        self.signer.public_key()
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        let require_presence = self.purpose.requires_presence();
        let signed = self.signer.sign(&SignRequest {
            purpose: self.purpose,
            message: message.to_vec(),
            require_presence,
        })?;
        if require_presence && !signed.user_present {
            self.presence_refused
                .store(true, std::sync::atomic::Ordering::Relaxed);
            return Err(SignerError(
                "this signature needs the person's presence (biometric or PIN) and the key store \
                 did not verify it / 此签名需要本人验证（指纹或密码），密钥库未验证"
                    .to_owned(),
            ));
        }
        if !signed.user_present {
            self.user_present
                .store(false, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(signed.signature)
    }

    /// A permit step signed for a purpose that requires presence records it (format /2); the
    /// signature is refused above when the key store did not verify it.
    fn presence_claim(&self) -> Option<bool> {
        Some(self.purpose.requires_presence())
    }
}

/// A software key as a [`PersonSigner`] (the desktop CLI, tests). It cannot verify presence: it
/// answers `user_present` as configured, which the CLI sets from an explicit flag.
pub struct SoftwarePersonSigner {
    key: crate::codes::SoftwareSigner,
    user_present: bool,
}

impl SoftwarePersonSigner {
    pub fn new(key: crate::codes::SoftwareSigner, user_present: bool) -> Self {
        Self { key, user_present }
    }
}

impl PersonSigner for SoftwarePersonSigner {
    fn public_key(&self) -> Vec<u8> {
        self.key.public_key()
    }

    fn sign(&self, request: &SignRequest) -> Result<Signed, SignerError> {
        Ok(Signed {
            signature: self.key.sign(&request.message)?,
            user_present: self.user_present,
        })
    }
}
