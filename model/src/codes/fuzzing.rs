//! The body of the decoder fuzz target, shared by `fuzz/fuzz_targets/decode.rs` (cargo-fuzz) and the
//! stable-Rust fallback (`cargo xtask bench codes --fuzz N`): arbitrary bytes go through every public
//! decoding path; the only acceptable outcomes are a clean answer or a typed error, never a panic.

use crate::domain::Explain;

use super::{
    IssuerAlg, IssuerKey, ReplayCache, RevocationSet, TrustStore, TrustedKey, Verifier, classify,
    from_text,
};

/// A fixed trust store for fuzzing (one key of each algorithm, from fixed secrets).
pub fn fuzz_trust() -> TrustStore {
    let mut trust = TrustStore::new();
    for (alg, seed) in [(IssuerAlg::EdDSA, 7u8), (IssuerAlg::ES256, 9u8)] {
        if let Ok(key) = IssuerKey::from_secret(alg, &[seed; 32]) {
            let _ = trust.add(TrustedKey::for_key(&key, 0, None));
        }
    }
    trust
}

/// Feed `data` to the decoders: as COSE bytes, and (when UTF-8) as text, as-is and with the `WG1:`
/// prefix. Returns how many inputs verified (almost always 0) so the optimiser keeps the work.
pub fn exercise_decoder(data: &[u8], trust: &TrustStore, now: i64) -> usize {
    let revocations = RevocationSet::new();
    let verifier = Verifier::new(trust, &revocations);
    let mut replay = ReplayCache::new(16);
    let mut accepted = 0;
    let mut answer = |r: Result<super::VerifiedCode, super::CodeError>| match r {
        Ok(_) => accepted += 1,
        Err(e) => {
            // Explaining must not panic either.
            let _ = (e.code(), e.message_en().len(), e.message_zh().len());
        }
    };
    answer(verifier.verify_cose(data, None, now, &mut replay));
    if let Ok(text) = std::str::from_utf8(data) {
        answer(verifier.verify(text, now, &mut replay));
        let _ = classify(text);
        answer(verifier.verify(&format!("WG1:{text}"), now, &mut replay));
        let _ = from_text(text);
    }
    let b45 = super::to_text(data);
    answer(verifier.verify(&b45, now, &mut replay));
    accepted
}

/// Whether `data` is one of the valid `seeds` (COSE bytes) in one of the forms the decoder accepts:
/// the COSE bytes, the `WG1:` text, or the text without its prefix (which [`exercise_decoder`]
/// prefixes), give or take surrounding ASCII whitespace. Any other accepted input is a forgery.
pub fn is_seed_form(data: &[u8], seeds: &[Vec<u8>]) -> bool {
    let trimmed = data.trim_ascii();
    seeds.iter().any(|seed| {
        let text = super::to_text(seed);
        data == seed.as_slice()
            || trimmed == text.as_bytes()
            || text
                .as_bytes()
                .get(super::PREFIX.len()..)
                .is_some_and(|body| trimmed == body)
    })
}

/// The time the fuzz corpus is made and checked at (2026-01-01T00:00:00Z).
pub const FUZZ_NOW: i64 = 1_767_225_600;

/// Valid codes of every kind and algorithm, signed by [`fuzz_trust`]'s keys at [`FUZZ_NOW`]: the
/// seeds that mutation starts from (COSE bytes; [`super::to_text`] gives their text).
pub fn seed_corpus() -> Vec<Vec<u8>> {
    use crate::domain::{
        MachineClass, MachineKind, MachineLabel, OperationCategory, WelderCredential,
    };
    let mut out = Vec::new();
    let Ok(device) = super::SoftwareSigner::from_secret(&[5; 32]) else {
        return out;
    };
    let label = MachineLabel {
        machine_id: "370983-DH-2024-000123".into(),
        kind: MachineKind::GasCutting,
        class: MachineClass::Mobile,
        owner_org: "91370983MA3C4X1Y2K".into(),
        region: 370983,
        issued_at: FUZZ_NOW,
    };
    let (Some(issued_on), Some(expires_on), Some(next_review_on)) = (
        chrono::NaiveDate::from_ymd_opt(2023, 5, 10),
        chrono::NaiveDate::from_ymd_opt(2029, 5, 9),
        chrono::NaiveDate::from_ymd_opt(2026, 5, 9),
    ) else {
        return out;
    };
    let credential = WelderCredential {
        certificate_no: "T370983199001011233".into(),
        id_number: "370983199001011233".into(),
        name: "李红梅".into(),
        categories: vec![OperationCategory::FusionWeldingAndCutting],
        issued_on,
        expires_on,
        next_review_on,
        photo_digest: vec![0x3c; 32],
        device_key: super::DeviceSigner::public_key(&device),
    };
    for (alg, seed) in [(IssuerAlg::EdDSA, 7u8), (IssuerAlg::ES256, 9u8)] {
        let Ok(key) = IssuerKey::from_secret(alg, &[seed; 32]) else {
            continue;
        };
        let texts = [
            super::issue_machine_label(&key, &label),
            super::issue_credential(&key, &credential, FUZZ_NOW, FUZZ_NOW),
        ];
        for text in texts.into_iter().flatten() {
            if let Ok(p) = super::present_with_nonce(&text, &device, FUZZ_NOW, &[seed; 12]) {
                out.extend(from_text(&p));
            }
            out.extend(from_text(&text));
        }
    }
    out
}
