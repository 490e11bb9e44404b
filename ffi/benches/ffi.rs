//! The FFI's share of a scan and of a scan-to-start decision: the Rust half of `cargo xtask bench
//! ffi`.
//!
//! This half makes the inputs both halves use and times the work in Rust, without the FFI:
//! - a 1280×720 camera frame (the scan bench's generator, `core/benches/scan_frames/gen.rs`, its
//!   seed; of its frames with a `WG1:` code, the one of median scan time), decoded to a luma plane with 64 bytes of row padding as a camera
//!   hands it over, scanned by the core (`scan::scan_luma`, live budget, one code expected) on the
//!   borrowed plane: no copy at all;
//! - a scan-to-start decision (`app::start_work`, recorded as a work session) on a profile database
//!   holding a trust file and the registry, with a machine label and a welder credential signed by
//!   the trusted key.
//!
//! It writes the inputs into the fixtures folder (`frame.luma`, `inputs.properties`, a copy of the
//! profile for the Kotlin half), prints `ready`, and then times blocks of calls on request (`scan
//! N`, `decide N` on standard input; one line of nanoseconds per block on standard output). The
//! Kotlin half (`android/weldguard-kotlin/src/bench/kotlin/`, run by `scripts/kotlin-bench.sh`)
//! serves the same requests through the generated bindings; `xtask` alternates blocks between the
//! two so that both see the same machine load, and compares them (xtask/src/bench_ffi.rs).
//!
//! `cargo bench -p weldguard-ffi --bench ffi -- --fixtures DIR`

use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::NaiveDate;
use weldguard_core::app::start_work::StartWorkInput;
use weldguard_core::app::{self, Lang};
use weldguard_core::codes::{
    IssuerAlg, IssuerKey, TrustStore, TrustedKey, issue_credential, issue_machine_label,
};
use weldguard_core::domain::{
    Binding, Licence, LicenceStatus, Machine, MachineClass, MachineKind, MachineLabel,
    MachineStatus, OperationCategory, WelderCredential,
};
use weldguard_core::scan::{self, ExpectedCodes, LumaFrame, ScanOptions};
use weldguard_core::store::RegistryChange;

#[path = "../../core/benches/scan_frames/gen.rs"]
#[allow(dead_code)]
mod generate;

const ORG: &str = "91370983MA3C4X1Y2K";
const MACHINE: &str = "370983-DH-2024-000777";
const SITE: &str = "site-370983-001";
/// 2026-12-01 09:00 China time.
const NOW: i64 = 1_796_086_800;
/// Row padding of the camera frame, as CameraX and AVFoundation often add.
const PAD: usize = 64;
/// The scan bench's seed, so the frame is one the scan bench also times.
const SEED: u64 = 0x5EED_0018;

fn main() {
    if let Err(e) = run() {
        eprintln!("bench ffi: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut fixtures: Option<PathBuf> = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--fixtures" => fixtures = it.next().map(PathBuf::from),
            // `cargo bench` passes `--bench`.
            "--bench" => {}
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let dir = fixtures.ok_or("--fixtures DIR is required")?;
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;

    let frame = camera_frame()?;
    std::fs::write(dir.join("frame.luma"), &frame.luma).map_err(|e| format!("frame: {e}"))?;
    let inputs = profile(&dir)?;
    let properties = format!(
        "width={}\nheight={}\nrow_stride={}\ntext={}\nmachine={}\nwelder={}\nsite={SITE}\nnow={NOW}\n\
         kotlin_db={}\n",
        frame.width,
        frame.height,
        frame.stride,
        frame.text,
        inputs.machine,
        inputs.welder,
        inputs.kotlin_db.display(),
    );
    std::fs::write(dir.join("inputs.properties"), properties)
        .map_err(|e| format!("inputs: {e}"))?;
    let device = app::Device::open(&inputs.rust_db).map_err(|e| format!("profile: {e}"))?;

    // Serve timing requests (the protocol is in xtask/src/bench_ffi.rs): the inputs are ready.
    println!("ready");
    flush()?;
    for line in std::io::stdin().lines() {
        let line = line.map_err(|e| format!("stdin: {e}"))?;
        let Some((what, n)) = line.split_once(' ') else {
            continue;
        };
        let n: usize = n.parse().map_err(|_| format!("bad request {line}"))?;
        let mut times = Vec::with_capacity(n);
        let mut hits = 0;
        for _ in 0..n {
            let start = Instant::now();
            let hit = match what {
                // A scan that runs out of its live budget on a busy machine reads nothing:
                // counted, not fatal.
                "scan" => !scan::scan_luma(&frame.view(), &live_one())
                    .map_err(|e| format!("scan: {e}"))?
                    .is_empty(),
                // The same call for both of the Kotlin half's ways of handing the frame over.
                "scanbuf" => !scan::scan_luma(&frame.view(), &live_one())
                    .map_err(|e| format!("scan: {e}"))?
                    .is_empty(),
                "decide" => decide(&device, &inputs)?,
                other => return Err(format!("unknown request {other}")),
            };
            times.push(start.elapsed().as_nanos().to_string());
            hits += usize::from(hit);
        }
        println!("{what} {hits} {}", times.join(" "));
        flush()?;
    }
    Ok(())
}

fn flush() -> Result<(), String> {
    std::io::Write::flush(&mut std::io::stdout()).map_err(|e| format!("stdout: {e}"))
}

/// One recorded scan-to-start decision; it must allow.
fn decide(device: &app::Device, inputs: &Inputs) -> Result<bool, String> {
    let view = app::start_work::start_work(
        device,
        StartWorkInput {
            machine_text: inputs.machine.clone(),
            welder_text: inputs.welder.clone(),
            site_id: SITE.into(),
            now: NOW,
            position: None,
            lang: Lang::En,
        },
    )
    .map_err(|e| format!("start work: {e}"))?;
    if view.allowed {
        Ok(true)
    } else {
        Err(format!("refused: {:?}", view.reasons))
    }
}

/// The settings scan-to-start uses (and the Kotlin half passes): the live budget, one code.
fn live_one() -> ScanOptions {
    ScanOptions {
        expected: ExpectedCodes::One,
        ..ScanOptions::live()
    }
}

struct Frame {
    luma: Vec<u8>,
    width: usize,
    height: usize,
    stride: usize,
    text: String,
}

impl Frame {
    fn view(&self) -> LumaFrame<'_> {
        LumaFrame::new(
            &self.luma,
            self.width as u32,
            self.height as u32,
            self.stride as u32,
        )
    }
}

/// A typical 1280×720 frame of the scan bench's camera frames: of those holding a `WG1:` code that
/// the live one-code scan reads, the one whose scan time (the fastest of 5) is the median, as a
/// padded luma plane.
fn camera_frame() -> Result<Frame, String> {
    let mut candidates: Vec<(std::time::Duration, Frame)> = Vec::new();
    for generated in generate::camera_frames(SEED, 24)? {
        let Some(text) = generated.texts.first().filter(|t| t.starts_with("WG1")) else {
            continue;
        };
        if (generated.width, generated.height) != (1280, 720) {
            continue;
        }
        let image = image::load_from_memory(&generated.jpeg)
            .map_err(|e| format!("decode the frame: {e}"))?
            .to_luma8();
        let frame = padded(&image, text.clone());
        let mut fastest = std::time::Duration::MAX;
        let mut read = true;
        for _ in 0..5 {
            let start = Instant::now();
            let codes =
                scan::scan_luma(&frame.view(), &live_one()).map_err(|e| format!("scan: {e}"))?;
            fastest = fastest.min(start.elapsed());
            read &= codes.first().and_then(|c| c.text.as_deref()) == Some(text.as_str());
        }
        if read {
            candidates.push((fastest, frame));
        }
    }
    candidates.sort_by_key(|(t, _)| *t);
    let count = candidates.len();
    let (time, frame) = candidates
        .into_iter()
        .nth(count / 2)
        .ok_or("no generated 1280×720 frame with a WG1 code scans back")?;
    eprintln!(
        "bench ffi: the median of {count} camera frames with a WG1 code ({} µs in Rust alone)",
        time.as_micros()
    );
    Ok(frame)
}

/// `image` as a camera hands it over: rows `PAD` bytes longer than the width, the padding holding
/// whatever the camera left there (not zeros), the last row stopping at the width.
fn padded(image: &image::GrayImage, text: String) -> Frame {
    let (w, h) = (image.width() as usize, image.height() as usize);
    let stride = w + PAD;
    let mut luma = vec![0u8; stride * (h - 1) + w];
    for (y, row) in image.as_raw().chunks_exact(w).enumerate() {
        luma[y * stride..y * stride + w].copy_from_slice(row);
        if y + 1 < h {
            for (x, p) in luma[y * stride + w..(y + 1) * stride]
                .iter_mut()
                .enumerate()
            {
                *p = ((x * 31 + y * 17) & 0xff) as u8;
            }
        }
    }
    Frame {
        luma,
        width: w,
        height: h,
        stride,
        text,
    }
}

struct Inputs {
    machine: String,
    welder: String,
    rust_db: PathBuf,
    kotlin_db: PathBuf,
}

/// Two identical profiles (one per half): a trusted issuer key, the registry (licence, machine,
/// binding); and the label and credential that key signed.
fn profile(dir: &Path) -> Result<Inputs, String> {
    let issuer = IssuerKey::generate(IssuerAlg::EdDSA).map_err(|e| format!("key: {e}"))?;
    let mut trust = TrustStore::new();
    trust
        .add(TrustedKey::for_key(&issuer, 0, None))
        .map_err(|e| format!("trust: {e}"))?;
    let date = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).ok_or("bad date");
    let credential = WelderCredential {
        certificate_no: "T370983199001011233".into(),
        id_number: "370983199001011233".into(),
        name: "李四".into(),
        categories: vec![OperationCategory::FusionWeldingAndCutting],
        issued_on: date(2022, 3, 1)?,
        expires_on: date(2030, 3, 1)?,
        next_review_on: date(2028, 3, 1)?,
        photo_digest: vec![7; 32],
        device_key: vec![2; 33],
    };
    let label = MachineLabel {
        machine_id: MACHINE.into(),
        kind: MachineKind::Arc,
        class: MachineClass::FixedStation,
        owner_org: ORG.into(),
        region: 370983,
        issued_at: NOW - 86_400,
    };
    let welder = issue_credential(&issuer, &credential, NOW - 86_400, NOW)
        .map_err(|e| format!("issue: {e}"))?;
    let machine = issue_machine_label(&issuer, &label).map_err(|e| format!("issue: {e}"))?;
    let changes = [
        RegistryChange::UpsertLicence(Licence {
            certificate_no: credential.certificate_no.clone(),
            id_number: credential.id_number.clone(),
            name: credential.name.clone(),
            categories: credential.categories.clone(),
            issued_on: credential.issued_on,
            expires_on: credential.expires_on,
            next_review_on: credential.next_review_on,
            review_extended: false,
            status: LicenceStatus::Valid,
            employer_org: Some(ORG.into()),
        }),
        RegistryChange::UpsertMachine(Machine {
            machine_id: MACHINE.into(),
            kind: label.kind,
            class: label.class,
            owner_org: ORG.into(),
            region: 370983,
            status: MachineStatus::Active,
        }),
        RegistryChange::Bind(Binding {
            machine_id: MACHINE.into(),
            certificate_no: credential.certificate_no.clone(),
        }),
    ];
    let mut paths = Vec::new();
    for name in ["profile-rust.db", "profile-kotlin.db"] {
        let path = dir.join(name);
        for stale in [
            path.clone(),
            dir.join(format!("{name}-wal")),
            dir.join(format!("{name}-shm")),
        ] {
            let _ = std::fs::remove_file(stale);
        }
        let device = app::Device::open(&path).map_err(|e| format!("profile: {e}"))?;
        device
            .save_trust(trust.clone(), NOW * 1000)
            .map_err(|e| format!("trust: {e}"))?;
        device
            .store()
            .apply_registry_changes(changes.clone(), None, 0)
            .map_err(|e| format!("registry: {e}"))?;
        paths.push(path);
    }
    Ok(Inputs {
        machine,
        welder,
        rust_db: paths[0].clone(),
        kotlin_db: paths[1].clone(),
    })
}
