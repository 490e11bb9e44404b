//! The stable-Rust runner of the push-validation fuzz target (`fuzz/fuzz_targets/push.rs` runs the
//! same body, `weldguard_server::fuzzing::PushFuzz::run`, under libFuzzer on nightly): N inputs,
//! one in ten plain random bytes, the rest random bytes after a first byte pair that picks a seed
//! mutation, reporting how long they ran and that nothing panicked.
//!
//! `cargo run --release -p weldguard-server --example fuzz_push -- [N] [SEED]` (default 10^6, 1).

use std::time::Instant;

use weldguard_server::fuzzing::{Outcome, PushFuzz};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: u64 = args
        .first()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let seed: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1);
    let fuzz = PushFuzz::new();
    let mut rng = Rng(seed.max(1));
    let mut accepted = 0u64;
    let start = Instant::now();
    let mut input = Vec::with_capacity(512);
    for i in 0..n {
        input.clear();
        let len = 2 + rng.below(if i % 10 == 0 { 4096 } else { 96 });
        input.extend((0..len).map(|_| rng.next() as u8));
        if i % 10 != 0 {
            // Mostly seed mutations (modes 1-7 of the body), few arbitrary payloads.
            input[1] = 1 + (input[1] % 7);
        }
        if fuzz.run(&input) == Outcome::Accepted {
            accepted += 1;
        }
        if (i + 1) % 100_000 == 0 {
            eprintln!(
                "{} inputs, {:.0} s, {accepted} passed validation",
                i + 1,
                start.elapsed().as_secs_f64()
            );
        }
    }
    let elapsed = start.elapsed();
    println!(
        "push fuzz (stable runner): {n} inputs, seed {seed}: {:.1} s, {:.1} µs/input, \
         {accepted} passed validation, no panic",
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e6 / n.max(1) as f64
    );
}
