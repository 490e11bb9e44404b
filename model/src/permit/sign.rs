//! Signatures over a permit: each step a person vouches for (submit, site check, approve, close) is
//! signed ES256 through [`DeviceSigner`] over a canonical encoding of what that step covers, chained
//! to every earlier signature; verification recomputes every message and names the signature that
//! broke.
//!
//! Canonical encoding (formats `weldguard/permit-sig/1` and `/2`): the CBOR (RFC 8949) that `ciborium` writes
//! for [`SigMessage`]: a map whose text keys come in the struct's declaration order, integers in their
//! shortest form, definite lengths, no floating-point values anywhere (coordinates are integer
//! 1e-7 degrees, concentrations integer hundredths of %vol, times integer Unix seconds). Any change
//! of this layout is a new format string.
//!
//! What each step covers: the content and the level decision always; the checklist answers from the
//! site check on; the post-work answers at closing; the prefix of the event log and of the gas
//! readings that existed when signing; the signer, time and place; and the bytes of all earlier
//! signatures. Format `/2` (every new signature) adds, last, whether the key store verified the
//! signer's presence (`user_present`), so a relaying device cannot flip it; format `/1` (signatures
//! stored before) has no such key and its bytes are unchanged. The bytes of both are fixed by the
//! test vectors in `core/tests/vectors/`.

use serde::Serialize;

use super::catalog::{ChecklistAnswer, GasReading};
use super::model::{
    Actor, Permit, PermitContent, PermitError, PermitEvent, PermitState, SignedStep,
};
use super::profile::{GeoPoint, LevelDecision};
use crate::codes::signer::{DeviceSigner, sign_normalised, verify_es256};

/// The format of every new signature: presence recorded.
pub const FORMAT: &str = "weldguard/permit-sig/2";
/// The format of signatures made before presence was recorded (still verified).
pub const FORMAT_V1: &str = "weldguard/permit-sig/1";

/// The signed message of one step.
#[derive(Serialize)]
pub struct SigMessage<'a> {
    pub format: &'static str,
    pub step: SignedStep,
    pub content: &'a PermitContent,
    pub level: Option<&'a LevelDecision>,
    pub answers: Option<&'a [ChecklistAnswer]>,
    pub post_work: Option<&'a [ChecklistAnswer]>,
    pub events: &'a [PermitEvent],
    pub gas_readings: &'a [GasReading],
    pub signer: &'a Actor,
    pub public_key: &'a [u8],
    pub at: i64,
    pub location: Option<&'a GeoPoint>,
    pub previous: Vec<&'a [u8]>,
    /// Format `/2` only: the key store verified the signer's presence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_present: Option<bool>,
}

/// The parts of a step's message that are not in the permit yet while signing.
pub(crate) struct StepInfo<'a> {
    pub step: SignedStep,
    pub signer: &'a Actor,
    pub public_key: &'a [u8],
    pub at: i64,
    pub location: Option<&'a GeoPoint>,
    pub covers_events: usize,
    pub covers_gas_readings: usize,
    /// How many earlier signatures to chain.
    pub index: usize,
    /// `None`: format `/1`; `Some(_)`: format `/2` with this presence.
    pub user_present: Option<bool>,
}

/// The canonical bytes a step signs.
pub(crate) fn message_bytes(permit: &Permit, info: &StepInfo<'_>) -> Result<Vec<u8>, PermitError> {
    let with_answers = info.step != SignedStep::Submit;
    let message = SigMessage {
        format: if info.user_present.is_some() {
            FORMAT
        } else {
            FORMAT_V1
        },
        step: info.step,
        content: &permit.content,
        level: permit.level.as_ref(),
        answers: with_answers.then_some(permit.answers.as_slice()),
        post_work: (info.step == SignedStep::Close).then_some(permit.post_work.as_slice()),
        events: permit
            .events
            .get(..info.covers_events)
            .ok_or(PermitError::Encoding(
                "signature covers more events than the permit holds".into(),
            ))?,
        gas_readings: permit.gas_readings.get(..info.covers_gas_readings).ok_or(
            PermitError::Encoding(
                "signature covers more gas readings than the permit holds".into(),
            ),
        )?,
        signer: info.signer,
        public_key: info.public_key,
        at: info.at,
        location: info.location,
        previous: permit
            .signatures
            .iter()
            .take(info.index)
            .map(|s| s.signature.as_slice())
            .collect(),
        user_present: info.user_present,
    };
    let mut out = Vec::new();
    ciborium::into_writer(&message, &mut out).map_err(|e| PermitError::Encoding(e.to_string()))?;
    Ok(out)
}

/// The exact bytes signature `index` of `permit` covers, rebuilt from what the permit stores (test
/// vectors, auditors; [`verify`] checks each signature over these bytes).
pub fn step_message(permit: &Permit, index: usize) -> Result<Vec<u8>, PermitError> {
    let sig = permit
        .signatures
        .get(index)
        .ok_or_else(|| PermitError::Encoding(format!("no signature {index}")))?;
    message_bytes(permit, &stored_info(sig, index))
}

/// The message parts of a stored signature.
fn stored_info(sig: &super::model::StepSignature, index: usize) -> StepInfo<'_> {
    StepInfo {
        step: sig.step,
        signer: &sig.signer,
        public_key: &sig.public_key,
        at: sig.at,
        location: sig.location.as_ref(),
        covers_events: sig.covers_events as usize,
        covers_gas_readings: sig.covers_gas_readings as usize,
        index,
        user_present: sig.user_present,
    }
}

/// Sign a step of `permit` as it stands now (everything the step covers must already be in place).
pub(crate) fn sign_step(
    permit: &mut Permit,
    step: SignedStep,
    signer_actor: &Actor,
    signer: &dyn DeviceSigner,
    at: i64,
    location: Option<GeoPoint>,
) -> Result<(), PermitError> {
    let public_key = signer.public_key();
    let info = StepInfo {
        step,
        signer: signer_actor,
        public_key: &public_key,
        at,
        location: location.as_ref(),
        covers_events: permit.events.len(),
        covers_gas_readings: permit.gas_readings.len(),
        index: permit.signatures.len(),
        user_present: signer.presence_claim(),
    };
    let bytes = message_bytes(permit, &info)?;
    let user_present = info.user_present;
    let signature = sign_normalised(signer, &bytes).map_err(|e| PermitError::SigningFailed(e.0))?;
    let covers_events =
        u32::try_from(info.covers_events).map_err(|e| PermitError::Encoding(e.to_string()))?;
    let covers_gas_readings = u32::try_from(info.covers_gas_readings)
        .map_err(|e| PermitError::Encoding(e.to_string()))?;
    permit.signatures.push(super::model::StepSignature {
        step,
        signer: signer_actor.clone(),
        public_key,
        at,
        location,
        covers_events,
        covers_gas_readings,
        signature,
        user_present,
    });
    Ok(())
}

/// SHA-256 of the whole permit's CBOR encoding (same rules as the signed messages): names exactly
/// this permit, signatures and log included, e.g. from an inspection record or a site code.
pub fn digest(permit: &Permit) -> Result<[u8; 32], PermitError> {
    use sha2::{Digest, Sha256};
    let mut bytes = Vec::new();
    ciborium::into_writer(permit, &mut bytes).map_err(|e| PermitError::Encoding(e.to_string()))?;
    Ok(Sha256::digest(&bytes).into())
}

/// How many signatures a permit in `state` may carry (always a prefix of [`SignedStep::ORDER`]).
fn allowed_signature_counts(state: PermitState) -> &'static [usize] {
    match state {
        PermitState::Draft => &[0],
        PermitState::Submitted => &[1],
        PermitState::Checked => &[2],
        PermitState::Approved
        | PermitState::Active
        | PermitState::Suspended
        | PermitState::Completed
        | PermitState::Expired => &[3],
        PermitState::Closed => &[4],
        PermitState::Rejected => &[1, 2],
        PermitState::Cancelled => &[0, 1, 2, 3],
    }
}

/// Check every signature of the permit and that the signatures fit its state. The first broken
/// signature is named. This proves that nothing covered changed since it was signed; whether the
/// signers' keys are trusted (enrolled devices, roles) is the caller's question.
pub fn verify(permit: &Permit) -> Result<(), PermitError> {
    let found: Vec<SignedStep> = permit.signatures.iter().map(|s| s.step).collect();
    let order_ok = found
        .iter()
        .zip(SignedStep::ORDER.iter())
        .all(|(a, b)| a == b)
        && found.len() <= SignedStep::ORDER.len();
    if !order_ok || !allowed_signature_counts(permit.state).contains(&found.len()) {
        return Err(PermitError::SignaturesInconsistent {
            state: permit.state,
            found,
        });
    }
    if found.is_empty() && permit.level.is_some() {
        return Err(PermitError::UnsignedData {
            what: "level decision",
        });
    }
    if found.len() < 2 && !permit.answers.is_empty() {
        return Err(PermitError::UnsignedData {
            what: "checklist answers",
        });
    }
    if found.len() < 4 && !permit.post_work.is_empty() {
        return Err(PermitError::UnsignedData {
            what: "post-work answers",
        });
    }
    if let (PermitState::Closed, Some(close)) = (permit.state, permit.signatures.last())
        && (close.covers_events as usize != permit.events.len()
            || close.covers_gas_readings as usize != permit.gas_readings.len())
    {
        return Err(PermitError::UnsignedData {
            what: "entries added after closing",
        });
    }
    for (index, sig) in permit.signatures.iter().enumerate() {
        let broken = || PermitError::SignatureBroken {
            index,
            step: sig.step,
            signer: sig.signer.name.clone(),
        };
        let bytes = message_bytes(permit, &stored_info(sig, index)).map_err(|_| broken())?;
        if !verify_es256(&sig.public_key, &bytes, &sig.signature) {
            return Err(broken());
        }
    }
    Ok(())
}
