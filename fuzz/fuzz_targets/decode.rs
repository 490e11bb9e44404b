//! Fuzz target: arbitrary bytes through every public decoding path of `core::codes` (COSE bytes,
//! text, text behind a `WG1:` prefix, Base45 of the bytes, and the unsigned-text classifier). The body
//! is `codes::fuzzing::exercise_decoder`, shared with the stable-Rust fallback
//! (`cargo xtask bench codes --fuzz N`).

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use weldguard_core::codes::TrustStore;
use weldguard_core::codes::fuzzing::{
    FUZZ_NOW, exercise_decoder, fuzz_trust, is_seed_form, seed_corpus,
};

static TRUST: OnceLock<TrustStore> = OnceLock::new();
static SEEDS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let trust = TRUST.get_or_init(fuzz_trust);
    let accepted = exercise_decoder(data, trust, FUZZ_NOW);
    // Only the valid seed codes themselves may verify; anything else accepted is a forgery.
    if accepted > 0 {
        let seeds = SEEDS.get_or_init(seed_corpus);
        assert!(is_seed_form(data, seeds), "forged input accepted");
    }
});
