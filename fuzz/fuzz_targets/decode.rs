//! Fuzz target: arbitrary bytes through every public decoding path of `core::codes` (COSE bytes,
//! text, text behind a `WG1:` prefix, Base45 of the bytes, and the unsigned-text classifier). The body
//! is `codes::fuzzing::exercise_decoder`, shared with the stable-Rust fallback
//! (`cargo xtask bench codes --fuzz N`).

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use weldguard_core::codes::TrustStore;
use weldguard_core::codes::fuzzing::{FUZZ_NOW, exercise_decoder, fuzz_trust};

static TRUST: OnceLock<TrustStore> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let trust = TRUST.get_or_init(fuzz_trust);
    let _ = exercise_decoder(data, trust, FUZZ_NOW);
});
