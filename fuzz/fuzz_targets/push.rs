//! Fuzz target: arbitrary bytes as one pushed record (kind, key, role, a payload that is arbitrary
//! or a valid permit step, inspection or work session mutated) through the server's push
//! validation and the pure permit placement against a small fixed history. The body is
//! `weldguard_server::fuzzing::PushFuzz::run`, shared with the stable-Rust runner
//! (`cargo run --release -p weldguard-server --example fuzz_push -- N`).

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use weldguard_server::fuzzing::PushFuzz;

static FUZZ: OnceLock<PushFuzz> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    FUZZ.get_or_init(PushFuzz::new).run(data);
});
