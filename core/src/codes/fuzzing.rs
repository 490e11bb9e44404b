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
