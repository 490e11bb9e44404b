//! The permit's own code to post at the site (动火作业证现场公示码): a `WG1:` envelope (Base45 of an
//! untagged COSE_Sign1, ES256, no key id) signed by the approver's device key over a summary of the
//! approved permit: id, site, level, validity, hot-work point, welders, who approved and when, and
//! two digests (SHA-256 of the approval signature, which never changes afterwards, and of the
//! whole permit when the code was made).
//!
//! Offline, [`read_permit_code`] checks the code against the key it carries and shows the summary:
//! that proves the text was not altered, not who made it. [`check_against_permit`] then ties it to a
//! stored permit: the permit's chain verifies, its approval was signed by the code's key, and the
//! approval signature, site, level and validity are the ones in the code. Whether the approver's
//! device is enrolled is the caller's question (as for [`super::verify`]).
//!
//! The claims are CBOR (format `weldguard/permit-code/1`, see [`super::sign`] for the canonical
//! rules). The codes module's verifier does not know this payload and reports such a text as
//! malformed; scanners try [`read_permit_code`] for it.

use coset::{
    CborSerializable, CoseSign1, CoseSign1Builder, HeaderBuilder, RegisteredLabelWithPrivate, iana,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::model::{Permit, PermitError, PermitState, SignedStep};
use super::profile::PermitLevel;
use super::sign::{digest, verify};
use crate::codes::signer::{DeviceSigner, sign_normalised, verify_es256};
use crate::codes::{CodeError, from_text, to_text};
use crate::domain::Explain;

/// The claims format.
pub const FORMAT: &str = "weldguard/permit-code/1";

/// What a permit code says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermitCodeClaims {
    pub format: String,
    pub permit_id: String,
    pub site_id: String,
    pub site_name: String,
    pub level: PermitLevel,
    pub valid_from: i64,
    pub valid_until: i64,
    pub hot_work_point: String,
    /// Certificate numbers of the welders named.
    pub welders: Vec<String>,
    pub approved_by: String,
    pub approved_at: i64,
    /// SHA-256 of the approval signature's bytes.
    #[serde(with = "bytes")]
    pub approval_digest: Vec<u8>,
    /// SHA-256 of the whole permit when the code was made ([`super::sign::digest`]).
    #[serde(with = "bytes")]
    pub permit_digest: Vec<u8>,
    pub issued_at: i64,
    /// The approver's device public key (SEC1, compressed P-256) that signed the code.
    #[serde(with = "bytes")]
    pub public_key: Vec<u8>,
}

/// CBOR byte strings for `Vec<u8>` (serde writes arrays of integers otherwise).
mod bytes {
    use serde::Serializer;
    use serde::de::{Deserializer, Error, SeqAccess, Visitor};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    struct V;

    impl<'de> Visitor<'de> for V {
        type Value = Vec<u8>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a byte string")
        }
        fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
            Ok(v.to_vec())
        }
        fn visit_byte_buf<E: Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(v)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
            let mut out = Vec::new();
            while let Some(b) = seq.next_element::<u8>()? {
                out.push(b);
            }
            Ok(out)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        d.deserialize_bytes(V)
    }
}

/// Why a permit code could not be made, read or matched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PermitCodeError {
    #[error("not a permit code: {0}")]
    Malformed(String),
    #[error("the permit code's signature does not verify: the code was altered")]
    BadSignature,
    #[error("a permit that is {} has no site code (approve it first)", .0.name_en())]
    NotApproved(PermitState),
    #[error("only the approver's device key can sign the permit's site code")]
    NotApprover,
    #[error("the code does not match the stored permit: {0}")]
    Mismatch(&'static str),
    #[error(transparent)]
    Permit(#[from] PermitError),
}

impl Explain for PermitCodeError {
    fn code(&self) -> &'static str {
        match self {
            PermitCodeError::Malformed(_) => "permit_code.malformed",
            PermitCodeError::BadSignature => "permit_code.bad_signature",
            PermitCodeError::NotApproved(_) => "permit_code.not_approved",
            PermitCodeError::NotApprover => "permit_code.not_approver",
            PermitCodeError::Mismatch(_) => "permit_code.mismatch",
            PermitCodeError::Permit(e) => e.code(),
        }
    }

    fn message_zh(&self) -> String {
        match self {
            PermitCodeError::Malformed(d) => format!("不是动火作业证码：{d}"),
            PermitCodeError::BadSignature => "动火作业证码签名无效：码已被改动".into(),
            PermitCodeError::NotApproved(s) => {
                format!(
                    "动火作业证处于“{}”状态，尚无现场公示码（须先审批）",
                    s.name_zh()
                )
            }
            PermitCodeError::NotApprover => "只有审批人的设备密钥才能签发现场公示码".into(),
            PermitCodeError::Mismatch(what) => format!("码与存储的动火作业证不符：{what}"),
            PermitCodeError::Permit(e) => e.message_zh(),
        }
    }

    fn message_en(&self) -> String {
        match self {
            PermitCodeError::Permit(e) => e.message_en(),
            _ => self.to_string(),
        }
    }
}

impl From<CodeError> for PermitCodeError {
    fn from(e: CodeError) -> Self {
        PermitCodeError::Malformed(e.message_en())
    }
}

fn sha256(bytes: &[u8]) -> Vec<u8> {
    Sha256::digest(bytes).to_vec()
}

/// The approval signature of a permit that has one, with the states that carry a site code.
fn approval(permit: &Permit) -> Result<&super::model::StepSignature, PermitCodeError> {
    if !matches!(
        permit.state,
        PermitState::Approved | PermitState::Active | PermitState::Suspended
    ) {
        return Err(PermitCodeError::NotApproved(permit.state));
    }
    permit
        .signatures
        .iter()
        .find(|s| s.step == SignedStep::Approve)
        .ok_or(PermitCodeError::NotApproved(permit.state))
}

/// Make the site code of an approved (or active, suspended) permit, signed by the approver's device
/// key `signer` (it must be the key that signed the approval). Returns the `WG1:` text.
pub fn issue_permit_code(
    permit: &Permit,
    signer: &dyn DeviceSigner,
    issued_at: i64,
) -> Result<String, PermitCodeError> {
    verify(permit)?;
    let approval = approval(permit)?;
    let public_key = signer.public_key();
    if public_key != approval.public_key {
        return Err(PermitCodeError::NotApprover);
    }
    let c = &permit.content;
    let claims = PermitCodeClaims {
        format: FORMAT.into(),
        permit_id: c.permit_id.clone(),
        site_id: c.site.site_id.clone(),
        site_name: c.site.name.clone(),
        level: permit.level(),
        valid_from: c.valid_from,
        valid_until: c.valid_until,
        hot_work_point: c.hot_work_point.clone(),
        welders: c.welders.iter().map(|w| w.id.clone()).collect(),
        approved_by: approval.signer.name.clone(),
        approved_at: approval.at,
        approval_digest: sha256(&approval.signature),
        permit_digest: digest(permit)?.to_vec(),
        issued_at,
        public_key,
    };
    let mut payload = Vec::new();
    ciborium::into_writer(&claims, &mut payload)
        .map_err(|e| PermitError::Encoding(e.to_string()))?;
    let sign1 = CoseSign1Builder::new()
        .protected(
            HeaderBuilder::new()
                .algorithm(iana::Algorithm::ES256)
                .build(),
        )
        .payload(payload)
        .try_create_signature(b"", |m| sign_normalised(signer, m))
        .map_err(|e| PermitError::SigningFailed(e.0))?
        .build();
    let bytes = sign1
        .to_vec()
        .map_err(|e| PermitError::Encoding(e.to_string()))?;
    Ok(to_text(&bytes))
}

/// Read a scanned permit code offline: strict parse, then the signature by the key it carries.
/// Proves the text is unaltered; use [`check_against_permit`] to tie it to the stored permit.
pub fn read_permit_code(text: &str) -> Result<PermitCodeClaims, PermitCodeError> {
    let bytes = from_text(text)?;
    let sign1 = CoseSign1::from_slice(&bytes)
        .map_err(|e| PermitCodeError::Malformed(format!("not a COSE_Sign1: {e}")))?;
    let p = &sign1.protected.header;
    if p.alg != Some(RegisteredLabelWithPrivate::Assigned(iana::Algorithm::ES256))
        || !p.key_id.is_empty()
        || !p.rest.is_empty()
        || !p.crit.is_empty()
        || p.content_type.is_some()
        || !sign1.unprotected.is_empty()
    {
        return Err(PermitCodeError::Malformed("unexpected header".into()));
    }
    let payload = sign1
        .payload
        .as_deref()
        .ok_or_else(|| PermitCodeError::Malformed("no payload".into()))?;
    let claims: PermitCodeClaims = ciborium::from_reader(payload)
        .map_err(|e| PermitCodeError::Malformed(format!("claims: {e}")))?;
    if claims.format != FORMAT {
        return Err(PermitCodeError::Malformed(format!(
            "format {:?}",
            claims.format
        )));
    }
    if !verify_es256(&claims.public_key, &sign1.tbs_data(b""), &sign1.signature) {
        return Err(PermitCodeError::BadSignature);
    }
    Ok(claims)
}

/// Tie a read code to the stored permit: the permit's chain verifies, its approval was signed by
/// the code's key and is the approval the code names, and site, level, validity and welders agree.
/// The permit may have moved on since (started, suspended); its current state is the caller's to
/// judge with [`super::permit_findings`].
pub fn check_against_permit(
    claims: &PermitCodeClaims,
    permit: &Permit,
) -> Result<(), PermitCodeError> {
    verify(permit)?;
    let c = &permit.content;
    if claims.permit_id != c.permit_id {
        return Err(PermitCodeError::Mismatch("permit id"));
    }
    let approval = permit
        .signatures
        .iter()
        .find(|s| s.step == SignedStep::Approve)
        .ok_or(PermitCodeError::Mismatch(
            "the stored permit is not approved",
        ))?;
    if approval.public_key != claims.public_key {
        return Err(PermitCodeError::Mismatch("signed by another key"));
    }
    if sha256(&approval.signature) != claims.approval_digest {
        return Err(PermitCodeError::Mismatch("approval"));
    }
    let welders: Vec<&str> = c.welders.iter().map(|w| w.id.as_str()).collect();
    if claims.site_id != c.site.site_id
        || claims.level != permit.level()
        || claims.valid_from != c.valid_from
        || claims.valid_until != c.valid_until
        || claims.welders.iter().map(String::as_str).ne(welders)
    {
        return Err(PermitCodeError::Mismatch(
            "site, level, validity or welders",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes::SoftwareSigner;
    use crate::permit::fixtures::Fx;

    #[test]
    fn round_trip_and_match_against_the_stored_permit() {
        let fx = Fx::new("gb30871");
        let permit = fx.in_state(PermitState::Approved);
        let text = issue_permit_code(&permit, fx.approver(), 1_800_000_000).unwrap();
        assert!(text.starts_with("WG1:"));
        let claims = read_permit_code(&text).unwrap();
        assert_eq!(claims.permit_id, permit.content.permit_id);
        assert_eq!(claims.level, permit.level());
        assert_eq!(claims.welders, ["T370983199001011234"]);
        assert_eq!(claims.permit_digest, digest(&permit).unwrap().to_vec());
        check_against_permit(&claims, &permit).unwrap();
        // Still matches once work started (the approval does not change).
        let active = fx.in_state(PermitState::Active);
        let code = issue_permit_code(&active, fx.approver(), 1).unwrap();
        check_against_permit(&read_permit_code(&code).unwrap(), &active).unwrap();
    }

    #[test]
    fn the_high_s_twin_of_a_permit_code_is_refused() {
        let fx = Fx::new("gb30871");
        let permit = fx.in_state(PermitState::Approved);
        let text = issue_permit_code(&permit, fx.approver(), 1_800_000_000).unwrap();
        read_permit_code(&text).unwrap();
        let mut sign1 = CoseSign1::from_slice(&from_text(&text).unwrap()).unwrap();
        sign1.signature = crate::codes::es256_twin(&sign1.signature).unwrap();
        let twin = to_text(&sign1.to_vec().unwrap());
        assert!(matches!(
            read_permit_code(&twin),
            Err(PermitCodeError::BadSignature)
        ));
        // A phone that answers high-S still makes a code that reads.
        let phone = crate::codes::signer::HighSSigner(
            SoftwareSigner::from_secret(&fx.approver().secret()).unwrap(),
        );
        read_permit_code(&issue_permit_code(&permit, &phone, 1_800_000_000).unwrap()).unwrap();
    }

    #[test]
    fn a_tampered_code_is_refused() {
        let fx = Fx::new("gb30871");
        let permit = fx.in_state(PermitState::Approved);
        let text = issue_permit_code(&permit, fx.approver(), 1_800_000_000).unwrap();
        let mut bytes = from_text(&text).unwrap();
        let mut sign1 = CoseSign1::from_slice(&bytes).unwrap();
        let mut claims: PermitCodeClaims =
            ciborium::from_reader(sign1.payload.as_deref().unwrap()).unwrap();
        claims.valid_until += 86_400;
        let mut payload = Vec::new();
        ciborium::into_writer(&claims, &mut payload).unwrap();
        sign1.payload = Some(payload);
        let forged = to_text(&sign1.to_vec().unwrap());
        assert_eq!(
            read_permit_code(&forged).unwrap_err(),
            PermitCodeError::BadSignature
        );
        // Any flipped byte is refused (malformed or bad signature), never accepted.
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert!(read_permit_code(&to_text(&bytes)).is_err());
        assert!(matches!(
            read_permit_code("WG1:BB8"),
            Err(PermitCodeError::Malformed(_))
        ));
    }

    #[test]
    fn a_self_signed_code_for_the_permit_does_not_match_it() {
        let fx = Fx::new("gb30871");
        let permit = fx.in_state(PermitState::Approved);
        let other = SoftwareSigner::generate().unwrap();
        assert_eq!(
            issue_permit_code(&permit, &other, 1).unwrap_err(),
            PermitCodeError::NotApprover
        );
        // A forger builds a valid-looking code with their own key: it reads, but does not match.
        let text = issue_permit_code(&permit, fx.approver(), 1).unwrap();
        let mut claims = read_permit_code(&text).unwrap();
        claims.public_key = other.public_key();
        assert_eq!(
            check_against_permit(&claims, &permit).unwrap_err(),
            PermitCodeError::Mismatch("signed by another key")
        );
        let draft = fx.in_state(PermitState::Checked);
        assert_eq!(
            issue_permit_code(&draft, fx.approver(), 1).unwrap_err(),
            PermitCodeError::NotApproved(PermitState::Checked)
        );
    }
}
