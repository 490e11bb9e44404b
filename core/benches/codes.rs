//! Verification speed of `WG1:` codes: µs per verify (text in, typed answer out) for each kind and
//! issuer algorithm, median and p99. Run: `cargo xtask bench codes [--iters N]`.
//!
//! With `--fuzz N [--seed S]` it is instead the stable-Rust stand-in for the cargo-fuzz target: the
//! decoder fuzz body (`codes::fuzzing::exercise_decoder`) on N inputs, random or mutated from valid
//! codes of every kind, reporting how long it ran and that nothing panicked or was accepted.
//! `--write-corpus DIR` writes those valid codes as a seed corpus for `cargo fuzz run decode DIR`.

use std::time::{Duration, Instant};

use chrono::NaiveDate;
use weldguard_core::codes::fuzzing::{
    FUZZ_NOW, exercise_decoder, fuzz_trust, is_seed_form, seed_corpus,
};
use weldguard_core::codes::{
    DeviceSigner, IssuerAlg, IssuerKey, ReplayCache, RevocationSet, SoftwareSigner, TrustStore,
    TrustedKey, Verifier, issue_credential, issue_machine_label, present_with_nonce, to_text,
};
use weldguard_core::domain::{
    MachineClass, MachineKind, MachineLabel, OperationCategory, WelderCredential,
};

const NOW: i64 = 1_767_225_600;

fn arg(args: &[String], name: &str) -> Option<u64> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == "--write-corpus") {
        let dir =
            std::path::PathBuf::from(args.get(i + 1).map_or("fuzz/corpus/decode", String::as_str));
        std::fs::create_dir_all(&dir).unwrap();
        for (n, seed) in seed_corpus().iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{n}.cose")), seed).unwrap();
            std::fs::write(dir.join(format!("seed-{n}.txt")), to_text(seed)).unwrap();
        }
        println!("seed corpus written to {}", dir.display());
        return;
    }
    if let Some(n) = arg(&args, "--fuzz") {
        fuzz(n, arg(&args, "--seed").unwrap_or(1));
        return;
    }
    let iters = arg(&args, "--iters").unwrap_or(3000) as usize;
    bench_verify(iters);
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1e6
}

fn bench_verify(iters: usize) {
    let ed = IssuerKey::from_secret(IssuerAlg::EdDSA, &[1; 32]).unwrap();
    let es = IssuerKey::from_secret(IssuerAlg::ES256, &[2; 32]).unwrap();
    let device = SoftwareSigner::from_secret(&[3; 32]).unwrap();
    let mut trust = TrustStore::new();
    trust.add(TrustedKey::for_key(&ed, 0, None)).unwrap();
    trust.add(TrustedKey::for_key(&es, 0, None)).unwrap();
    let revocations = RevocationSet::new();
    let verifier = Verifier::new(&trust, &revocations);

    let label = MachineLabel {
        machine_id: "370983-DH-2024-000123".into(),
        kind: MachineKind::Arc,
        class: MachineClass::Mobile,
        owner_org: "91370983MA3C4X1Y2K".into(),
        region: 370983,
        issued_at: NOW,
    };
    let credential = WelderCredential {
        certificate_no: "T370983199001011233".into(),
        id_number: "370983199001011233".into(),
        name: "欧阳建国".into(),
        categories: OperationCategory::ALL.to_vec(),
        issued_on: NaiveDate::from_ymd_opt(2023, 5, 10).unwrap(),
        expires_on: NaiveDate::from_ymd_opt(2029, 5, 9).unwrap(),
        next_review_on: NaiveDate::from_ymd_opt(2026, 5, 9).unwrap(),
        photo_digest: vec![0xa5; 32],
        device_key: device.public_key(),
    };

    println!("codes: µs per verify (text → typed answer), {iters} iterations each, release build");
    println!(
        "{:<34} {:>6} {:>10} {:>10}",
        "kind / algorithm", "chars", "median", "p99"
    );
    for key in [&ed, &es] {
        let alg = key.alg().name();
        let machine = issue_machine_label(key, &label).unwrap();
        let cred = issue_credential(key, &credential, NOW, NOW).unwrap();
        // Pre-made presentations, one per iteration, so the replay cache sees fresh nonces.
        let presentations: Vec<String> = (0..iters)
            .map(|i| {
                present_with_nonce(&cred, &device, NOW, &(i as u128).to_le_bytes()[..12]).unwrap()
            })
            .collect();
        let cases: [(String, Vec<&str>); 3] = [
            (
                format!("machine label / {alg}"),
                vec![machine.as_str(); iters],
            ),
            (
                format!("welder credential / {alg}"),
                vec![cred.as_str(); iters],
            ),
            (
                format!("presentation / {alg} + ES256 device"),
                presentations.iter().map(String::as_str).collect(),
            ),
        ];
        for (name, code) in cases {
            let mut cache = ReplayCache::default();
            let mut times = Vec::with_capacity(iters);
            for text in &code {
                let start = Instant::now();
                let answer = verifier.verify(text, NOW, &mut cache);
                times.push(start.elapsed());
                assert!(answer.is_ok(), "{name}: {answer:?}");
            }
            times.sort();
            println!(
                "{:<34} {:>6} {:>8.1}µs {:>8.1}µs",
                name,
                code[0].len(),
                percentile(&times, 0.5),
                percentile(&times, 0.99)
            );
        }
    }
}

/// xorshift64*: a small deterministic generator for mutations (not for keys).
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

fn mutate(rng: &mut Rng, input: &mut Vec<u8>) {
    for _ in 0..=rng.below(4) {
        let len = input.len();
        match rng.below(6) {
            0 if len > 0 => {
                let i = rng.below(len);
                input[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                input[i] = rng.next() as u8;
            }
            2 => {
                let i = rng.below(len + 1);
                input.insert(i, rng.next() as u8);
            }
            3 if len > 0 => {
                input.remove(rng.below(len));
            }
            4 => input.truncate(rng.below(len + 1)),
            _ if len > 1 => {
                let (a, b) = (rng.below(len), rng.below(len));
                input.swap(a, b);
            }
            _ => {}
        }
    }
}

fn fuzz(n: u64, seed: u64) {
    let trust = fuzz_trust();
    let seeds = seed_corpus();
    let seed_texts: Vec<Vec<u8>> = seeds.iter().map(|c| to_text(c).into_bytes()).collect();
    // Every seed must verify, or the mutations would not reach the deep paths.
    for s in seeds.iter().chain(&seed_texts) {
        assert!(
            exercise_decoder(s, &trust, FUZZ_NOW) > 0,
            "seed does not verify"
        );
    }
    let originals: Vec<&Vec<u8>> = seeds.iter().chain(&seed_texts).collect();
    let mut rng = Rng(seed.max(1));
    let start = Instant::now();
    let mut accepted = 0u64;
    let mut random = 0u64;
    for i in 0..n {
        let input = if i % 10 == 0 {
            random += 1;
            let len = rng.below(700);
            (0..len).map(|_| rng.next() as u8).collect()
        } else {
            let original = originals[rng.below(originals.len())];
            let mut input = original.clone();
            mutate(&mut rng, &mut input);
            if is_seed_form(&input, &seeds) {
                continue;
            }
            input
        };
        if exercise_decoder(&input, &trust, FUZZ_NOW) > 0 && !is_seed_form(&input, &seeds) {
            accepted += 1;
            eprintln!("ACCEPTED a mutated input: {input:?}");
        }
    }
    let elapsed = start.elapsed();
    println!(
        "fuzz (stable fallback): {n} inputs ({random} random, rest mutated from {} valid codes), seed {seed}: \
         {:.1} s, {:.1} µs/input, {accepted} accepted, no panic",
        originals.len(),
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e6 / n.max(1) as f64
    );
    if accepted > 0 {
        std::process::exit(1);
    }
}
