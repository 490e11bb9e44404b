//! The `WG1:` envelope: `WG1:` + Base45 of an untagged COSE_Sign1. The protected header holds only
//! the algorithm and, for issuer-signed codes, the key id; the unprotected header is empty except in
//! a presentation, where it carries the presented credential's COSE bytes (bound by its digest, which
//! the device signs). Parsing is strict and never trusts anything before the signature checks.

use ciborium::value::Value;
use coset::{
    CborSerializable, CoseSign1, CoseSign1Builder, Header, HeaderBuilder, Label,
    RegisteredLabelWithPrivate, iana,
};

use super::CodeError;
use super::claims::{self, Payload};
use super::keys::{IssuerAlg, KID_LEN};

/// The text prefix of version 1 codes.
pub const PREFIX: &str = "WG1:";

/// Private-use COSE header label carrying the presented credential in a presentation.
pub(crate) const CREDENTIAL_LABEL: i64 = -65537;

/// Longest envelope text accepted (characters); a QR code holds far less.
pub const MAX_TEXT_LEN: usize = 4096;

/// The text of a code from its COSE bytes.
pub fn to_text(cose: &[u8]) -> String {
    format!("{PREFIX}{}", base45::encode(cose))
}

/// The COSE bytes of a code from its text. Surrounding ASCII whitespace (a scanner's line end) is
/// ignored; that never cuts a code short, since Base45 of whole bytes never ends in its space
/// character (value 36 exceeds any final digit of a 1- or 2-byte group).
pub fn from_text(text: &str) -> Result<Vec<u8>, CodeError> {
    let text = text.trim_ascii();
    if text.len() > MAX_TEXT_LEN {
        return Err(CodeError::malformed("code text too long"));
    }
    let Some(body) = text.strip_prefix(PREFIX) else {
        return Err(match other_version(text) {
            Some(version) => CodeError::UnsupportedVersion {
                detail: format!("version {version}"),
            },
            None => CodeError::malformed("not a WG1 code"),
        });
    };
    base45::decode(body).map_err(|_| CodeError::malformed("bad Base45"))
}

/// `Some(version)` when the text starts like a WeldGuard code of another version (`WG2:`, …).
pub(crate) fn other_version(text: &str) -> Option<&str> {
    let rest = text.strip_prefix("WG")?;
    let end = rest.find(':')?;
    let version = rest.get(..end)?;
    (!version.is_empty() && version.len() <= 4 && version.bytes().all(|b| b.is_ascii_digit()))
        .then_some(version)
}

/// Who signed the envelope, as its protected header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SignedBy {
    Issuer { alg: IssuerAlg, kid: Vec<u8> },
    Device,
}

/// A parsed, not yet verified envelope.
#[derive(Debug, Clone)]
pub(crate) struct Envelope {
    pub sign1: CoseSign1,
    pub signed_by: SignedBy,
    pub payload: Payload,
    /// The presented credential's COSE bytes (presentations only).
    pub credential: Option<Vec<u8>>,
}

impl Envelope {
    /// The bytes the signature covers.
    pub fn to_be_signed(&self) -> Vec<u8> {
        self.sign1.tbs_data(b"")
    }
}

fn header_has_extras(h: &Header) -> bool {
    !h.crit.is_empty()
        || h.content_type.is_some()
        || !h.iv.is_empty()
        || !h.partial_iv.is_empty()
        || !h.counter_signatures.is_empty()
}

/// The signature algorithm a protected header names (EdDSA or ES256; others are a later version).
pub(crate) fn algorithm_of(protected: &Header) -> Result<IssuerAlg, CodeError> {
    match &protected.alg {
        Some(RegisteredLabelWithPrivate::Assigned(iana::Algorithm::EdDSA)) => Ok(IssuerAlg::EdDSA),
        Some(RegisteredLabelWithPrivate::Assigned(iana::Algorithm::ES256)) => Ok(IssuerAlg::ES256),
        Some(other) => Err(CodeError::UnsupportedVersion {
            detail: format!("algorithm {other:?}"),
        }),
        None => Err(CodeError::malformed("no algorithm")),
    }
}

/// Parse COSE bytes strictly.
pub(crate) fn parse(bytes: &[u8]) -> Result<Envelope, CodeError> {
    let sign1 = CoseSign1::from_slice(bytes)
        .map_err(|e| CodeError::malformed(format!("not a COSE_Sign1: {e}")))?;
    let protected = &sign1.protected.header;
    if header_has_extras(protected) || !protected.rest.is_empty() {
        return Err(CodeError::malformed("unexpected protected header"));
    }
    let alg = algorithm_of(protected)?;
    if sign1.signature.len() != 64 {
        return Err(CodeError::malformed("signature is not 64 bytes"));
    }
    let payload_bytes = sign1
        .payload
        .as_deref()
        .ok_or_else(|| CodeError::malformed("no payload"))?;
    let payload = claims::decode(payload_bytes)?;
    let unprotected = &sign1.unprotected;
    let (signed_by, credential) = match payload {
        Payload::Presentation(_) => {
            if alg != IssuerAlg::ES256 || !protected.key_id.is_empty() {
                return Err(CodeError::malformed("a presentation is ES256 without kid"));
            }
            if header_has_extras(unprotected)
                || unprotected.alg.is_some()
                || !unprotected.key_id.is_empty()
            {
                return Err(CodeError::malformed("unexpected unprotected header"));
            }
            let credential = match unprotected.rest.as_slice() {
                [(Label::Int(CREDENTIAL_LABEL), Value::Bytes(b))] => b.clone(),
                _ => return Err(CodeError::malformed("presentation carries no credential")),
            };
            (SignedBy::Device, Some(credential))
        }
        Payload::Machine(_) | Payload::Welder(_) => {
            if protected.key_id.len() != KID_LEN {
                return Err(CodeError::malformed(
                    "key id missing or of the wrong length",
                ));
            }
            if !unprotected.is_empty() {
                return Err(CodeError::malformed("unexpected unprotected header"));
            }
            (
                SignedBy::Issuer {
                    alg,
                    kid: protected.key_id.clone(),
                },
                None,
            )
        }
    };
    Ok(Envelope {
        sign1,
        signed_by,
        payload,
        credential,
    })
}

/// Build and sign an envelope. `kid` is empty for presentations.
pub(crate) fn build<E>(
    alg: IssuerAlg,
    kid: &[u8],
    payload: &Payload,
    credential: Option<&[u8]>,
    sign: impl FnOnce(&[u8]) -> Result<Vec<u8>, E>,
) -> Result<Vec<u8>, BuildError<E>> {
    let claims = claims::encode(payload).map_err(BuildError::Encode)?;
    let mut protected = HeaderBuilder::new().algorithm(alg.cose());
    if !kid.is_empty() {
        protected = protected.key_id(kid.to_vec());
    }
    let mut unprotected = HeaderBuilder::new();
    if let Some(credential) = credential {
        unprotected = unprotected.value(CREDENTIAL_LABEL, Value::Bytes(credential.to_vec()));
    }
    let sign1 = CoseSign1Builder::new()
        .protected(protected.build())
        .unprotected(unprotected.build())
        .payload(claims)
        .try_create_signature(b"", sign)
        .map_err(BuildError::Sign)?
        .build();
    sign1
        .to_vec()
        .map_err(|e| BuildError::Encode(e.to_string()))
}

pub(crate) enum BuildError<E> {
    Encode(String),
    Sign(E),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_prefix_and_versions() {
        assert_eq!(to_text(b"AB"), "WG1:BB8");
        assert_eq!(from_text(" WG1:BB8\n").unwrap(), b"AB");
        assert!(matches!(
            from_text("WG2:BB8"),
            Err(CodeError::UnsupportedVersion { .. })
        ));
        assert!(matches!(
            from_text("WG1:bb8"),
            Err(CodeError::Malformed { .. })
        ));
        assert!(matches!(
            from_text("HC1:BB8"),
            Err(CodeError::Malformed { .. })
        ));
        assert!(matches!(
            from_text("WG:BB8"),
            Err(CodeError::Malformed { .. })
        ));
        assert!(matches!(from_text(""), Err(CodeError::Malformed { .. })));
    }
}
