//! Offline verification of `WG1:` codes against a trust store and a revocation set, at a time the
//! caller passes in; presentations also against a short window and a replay cache the caller keeps.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::{MachineLabel, RevocationTarget};

use super::claims::{CodeKind, CredentialClaims, Payload, PresentationClaims};
use super::envelope::{self, Envelope, SignedBy};
use super::issue::{credential_digest, credential_id};
use super::keys::{IssuerAlg, to_hex, verify_issuer_signature};
use super::signer::verify_es256;
use super::trust::{RevocationSet, TrustStore};
use super::{CodeError, SignatureRole};

/// Time limits of verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyPolicy {
    /// How long a presentation stays valid after the device signed it (seconds).
    pub presentation_window_secs: i64,
    /// How far in the future a signing time may lie (clock differences between devices, seconds).
    pub clock_skew_secs: i64,
}

impl Default for VerifyPolicy {
    fn default() -> Self {
        Self {
            presentation_window_secs: 60,
            clock_skew_secs: 120,
        }
    }
}

/// Licence dates are calendar days in China Standard Time (UTC+8).
const CHINA_OFFSET_SECS: i64 = 8 * 3600;

fn china_date(now: i64) -> Option<NaiveDate> {
    DateTime::from_timestamp(now.checked_add(CHINA_OFFSET_SECS)?, 0).map(|t| t.date_naive())
}

/// The claims of a verified code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum VerifiedClaims {
    MachineLabel(MachineLabel),
    WelderCredential(CredentialClaims),
    Presentation {
        credential: CredentialClaims,
        presentation: PresentationClaims,
    },
}

/// A code that verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedCode {
    pub kind: CodeKind,
    /// Hex key id of the issuer key that signed the code (the credential's, for a presentation).
    pub kid: String,
    pub alg: IssuerAlg,
    /// The credential id (hex) revocations name, for credentials and presentations.
    pub credential_id: Option<String>,
    pub claims: VerifiedClaims,
}

/// Nonces of recently accepted presentations. Keep one per verifying device and pass it to every
/// verification; entries older than the window are dropped, and the oldest goes first when full.
#[derive(Debug, Clone)]
pub struct ReplayCache {
    seen: HashMap<[u8; 32], i64>,
    capacity: usize,
}

impl Default for ReplayCache {
    fn default() -> Self {
        Self::new(4096)
    }
}

impl ReplayCache {
    /// A cache remembering at most `capacity` presentations (at least 1).
    pub fn new(capacity: usize) -> Self {
        Self {
            seen: HashMap::new(),
            capacity: capacity.max(1),
        }
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    fn key(presentation: &PresentationClaims) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(&presentation.credential_digest);
        h.update(&presentation.nonce);
        h.finalize().into()
    }

    /// Record a presentation; false when it was seen before.
    fn record(&mut self, presentation: &PresentationClaims, oldest_useful: i64) -> bool {
        let key = Self::key(presentation);
        if self.seen.contains_key(&key) {
            return false;
        }
        if self.seen.len() >= self.capacity {
            self.seen.retain(|_, at| *at >= oldest_useful);
        }
        while self.seen.len() >= self.capacity {
            let Some(oldest) = self.seen.iter().min_by_key(|(_, at)| **at).map(|(k, _)| *k) else {
                break;
            };
            self.seen.remove(&oldest);
        }
        self.seen.insert(key, presentation.presented_at);
        true
    }
}

/// Verifies codes against what the device trusts.
#[derive(Debug, Clone, Copy)]
pub struct Verifier<'a> {
    pub trust: &'a TrustStore,
    pub revocations: &'a RevocationSet,
    pub policy: VerifyPolicy,
}

impl<'a> Verifier<'a> {
    pub fn new(trust: &'a TrustStore, revocations: &'a RevocationSet) -> Self {
        Self {
            trust,
            revocations,
            policy: VerifyPolicy::default(),
        }
    }

    /// Verify a code's text at `now` (Unix seconds).
    pub fn verify(
        &self,
        text: &str,
        now: i64,
        replay: &mut ReplayCache,
    ) -> Result<VerifiedCode, CodeError> {
        self.verify_cose(&envelope::from_text(text)?, None, now, replay)
    }

    /// Verify a code's text, refusing codes of another kind than `expected`.
    pub fn verify_expecting(
        &self,
        text: &str,
        expected: CodeKind,
        now: i64,
        replay: &mut ReplayCache,
    ) -> Result<VerifiedCode, CodeError> {
        self.verify_cose(&envelope::from_text(text)?, Some(expected), now, replay)
    }

    /// Verify a code's COSE bytes (the envelope without its text form).
    pub fn verify_cose(
        &self,
        cose: &[u8],
        expected: Option<CodeKind>,
        now: i64,
        replay: &mut ReplayCache,
    ) -> Result<VerifiedCode, CodeError> {
        let envelope = envelope::parse(cose)?;
        let found = envelope.payload.kind();
        if let Some(expected) = expected.filter(|e| *e != found) {
            return Err(CodeError::WrongKind { expected, found });
        }
        match envelope.payload.clone() {
            Payload::Presentation(presentation) => {
                self.verify_presentation(&envelope, presentation, now, replay)
            }
            _ => self.verify_issued(&envelope, cose, now),
        }
    }

    /// Verify an issuer-signed code (machine label or welder credential).
    fn verify_issued(
        &self,
        envelope: &Envelope,
        cose: &[u8],
        now: i64,
    ) -> Result<VerifiedCode, CodeError> {
        let SignedBy::Issuer { alg, kid } = &envelope.signed_by else {
            return Err(CodeError::malformed("not an issuer-signed code"));
        };
        let kid_hex = to_hex(kid);
        let key = self
            .trust
            .get(kid)
            .ok_or_else(|| CodeError::UnknownIssuer {
                kid: kid_hex.clone(),
            })?;
        if key.alg != *alg
            || !verify_issuer_signature(
                key.alg,
                &key.public_key,
                &envelope.to_be_signed(),
                &envelope.sign1.signature,
            )
        {
            return Err(CodeError::BadSignature {
                role: SignatureRole::Issuer,
            });
        }
        if self
            .revocations
            .is_revoked(RevocationTarget::IssuerKey, &kid_hex)
        {
            return Err(CodeError::Revoked {
                target: RevocationTarget::IssuerKey,
                id: kid_hex,
            });
        }
        let signed_at = match &envelope.payload {
            Payload::Machine(label) => label.issued_at,
            Payload::Welder(claims) => claims.signed_at,
            Payload::Presentation(_) => {
                return Err(CodeError::malformed("unexpected presentation"));
            }
        };
        if !key.valid_at(signed_at) {
            return Err(CodeError::IssuerKeyNotValid { kid: kid_hex });
        }
        if signed_at > now.saturating_add(self.policy.clock_skew_secs) {
            return Err(CodeError::NotYetValid);
        }
        match &envelope.payload {
            Payload::Machine(label) => {
                if self
                    .revocations
                    .is_revoked(RevocationTarget::Machine, &label.machine_id)
                {
                    return Err(CodeError::Revoked {
                        target: RevocationTarget::Machine,
                        id: label.machine_id.clone(),
                    });
                }
                Ok(VerifiedCode {
                    kind: CodeKind::MachineLabel,
                    kid: kid_hex,
                    alg: *alg,
                    credential_id: None,
                    claims: VerifiedClaims::MachineLabel(label.clone()),
                })
            }
            Payload::Welder(claims) => {
                let id = credential_id(cose);
                if self
                    .revocations
                    .is_revoked(RevocationTarget::Credential, &id)
                {
                    return Err(CodeError::Revoked {
                        target: RevocationTarget::Credential,
                        id,
                    });
                }
                let certificate_no = &claims.credential.certificate_no;
                if self
                    .revocations
                    .is_revoked(RevocationTarget::Licence, certificate_no)
                {
                    return Err(CodeError::Revoked {
                        target: RevocationTarget::Licence,
                        id: certificate_no.clone(),
                    });
                }
                let today = china_date(now)
                    .ok_or_else(|| CodeError::malformed("verification time out of range"))?;
                if today < claims.credential.issued_on {
                    return Err(CodeError::NotYetValid);
                }
                if today > claims.credential.expires_on {
                    return Err(CodeError::Expired);
                }
                Ok(VerifiedCode {
                    kind: CodeKind::WelderCredential,
                    kid: kid_hex,
                    alg: *alg,
                    credential_id: Some(id),
                    claims: VerifiedClaims::WelderCredential(claims.clone()),
                })
            }
            Payload::Presentation(_) => Err(CodeError::malformed("unexpected presentation")),
        }
    }

    fn verify_presentation(
        &self,
        envelope: &Envelope,
        presentation: PresentationClaims,
        now: i64,
        replay: &mut ReplayCache,
    ) -> Result<VerifiedCode, CodeError> {
        let credential_cose = envelope
            .credential
            .as_deref()
            .ok_or_else(|| CodeError::malformed("presentation carries no credential"))?;
        if credential_digest(credential_cose) != presentation.credential_digest {
            return Err(CodeError::BadSignature {
                role: SignatureRole::Device,
            });
        }
        let inner = envelope::parse(credential_cose)?;
        if inner.payload.kind() != CodeKind::WelderCredential {
            return Err(CodeError::malformed(
                "a presentation must carry a credential",
            ));
        }
        let verified = self.verify_issued(&inner, credential_cose, now)?;
        let VerifiedClaims::WelderCredential(credential) = verified.claims else {
            return Err(CodeError::malformed(
                "a presentation must carry a credential",
            ));
        };
        if !verify_es256(
            &credential.credential.device_key,
            &envelope.to_be_signed(),
            &envelope.sign1.signature,
        ) {
            return Err(CodeError::BadSignature {
                role: SignatureRole::Device,
            });
        }
        let window = self.policy.presentation_window_secs;
        if presentation.presented_at > now.saturating_add(self.policy.clock_skew_secs) {
            return Err(CodeError::NotYetValid);
        }
        let age = now.saturating_sub(presentation.presented_at);
        if age > window {
            return Err(CodeError::StalePresentation {
                age_secs: age,
                window_secs: window,
            });
        }
        let oldest_useful = now.saturating_sub(window);
        if !replay.record(&presentation, oldest_useful) {
            return Err(CodeError::Replayed);
        }
        Ok(VerifiedCode {
            kind: CodeKind::Presentation,
            kid: verified.kid,
            alg: verified.alg,
            credential_id: verified.credential_id,
            claims: VerifiedClaims::Presentation {
                credential,
                presentation,
            },
        })
    }
}
