//! Signed QR payloads: the `WG1:` envelope (Base45 of a COSE_Sign1 over compact CBOR claims) for
//! machine labels, welder credentials and device-signed presentations, and their offline verification.
//!
//! Issuing (the `issuer` feature: the platform and the admin CLI, never a phone): `issue_machine_label`,
//! `issue_credential` with an `IssuerKey`; the welder's phone
//! makes a [`present`]ation through its [`DeviceSigner`]. Verifying: a [`Verifier`] over a
//! [`TrustStore`] and a [`RevocationSet`], time passed in, a [`ReplayCache`] kept by the caller; the
//! answer is a [`VerifiedCode`] or a [`CodeError`] with a stable code. Texts that are not `WG1:` codes
//! are [`classify`]ed: they prove nothing by themselves.

mod claims;
pub(crate) mod document;
mod envelope;
mod error;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
mod issue;
mod keys;
pub mod rotation;
pub mod signer;
mod trust;
mod unsigned;
mod verify;

#[cfg(test)]
mod tests;

pub use claims::{CodeKind, CredentialClaims, PresentationClaims};
pub use document::{
    DocumentType, MAX_DOCUMENT_BYTES, SnapshotChunk, SnapshotManifest, StatusList,
    verify_snapshot_manifest, verify_status_list,
};
#[cfg(any(test, feature = "issuer"))]
pub use document::{sign_snapshot_manifest, sign_status_list};
pub use envelope::{MAX_TEXT_LEN, PREFIX, from_text, to_text};
pub use error::{CodeError, IssueError, KeyError, SignatureRole};
pub use issue::{
    NONCE_BYTES, check_issuable, credential_digest, credential_id, present, present_with_nonce,
};
#[cfg(any(test, feature = "issuer"))]
pub use issue::{issue_credential, issue_machine_label};
pub use keys::{
    IssuerAlg, KID_LEN, check_public_key, from_hex, kid_of, to_hex, verify_issuer_signature,
};
#[cfg(any(test, feature = "issuer"))]
pub use keys::{IssuerKey, IssuerKeyFile};
pub use signer::{
    DeviceSigner, PresenceConfirmed, SignerError, SoftwareSigner, es256_is_low_s, es256_twin,
    sign_normalised, verify_es256,
};
pub use trust::{RevocationSet, TrustFile, TrustFileKey, TrustStore, TrustedKey};
pub use unsigned::{
    Lookup, LookupTarget, RegistryAnswer, ScannedText, UnsignedCode, UnsignedForm, classify,
    look_up,
};
pub use verify::{ReplayCache, VerifiedClaims, VerifiedCode, Verifier, VerifyPolicy};
