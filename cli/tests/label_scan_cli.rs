//! Labels written by `weldguard code issue machine --png` scan back through `weldguard scan` after
//! what printing and photographing do to them: blur, a perspective view, sensor noise, low contrast,
//! JPEG compression, uneven light, and all of these at once. Every copy must read as the issued text
//! and verify against the trust file; a label signed by a key outside the trust file is read but
//! refused, so the verdicts are not a constant.

mod common;
use common::{Tmp, json_of};

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use image::{GrayImage, ImageBuffer, Luma, imageops};
use serde_json::Value;

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_weldguard"))
        .args(args)
        .arg("--json")
        .current_dir(dir)
        .env("LANG", "en_US.UTF-8")
        .env_remove("LC_ALL")
        .env_remove("LC_MESSAGES")
        .output()
        .unwrap()
}

fn ok(dir: &Path, args: &[&str]) -> Value {
    let out = run(dir, args);
    json_of(&out, args)
}

/// An ES256 issuer key written to `key`, its public key added to `trust` when given.
fn generate_key(dir: &Path, key: &Path, trust: Option<&Path>) {
    let mut args = vec![
        "keys",
        "generate",
        "--alg",
        "es256",
        "--out",
        key.to_str().unwrap(),
    ];
    if let Some(trust) = trust {
        args.extend(["--trust-out", trust.to_str().unwrap()]);
    }
    ok(dir, &args);
}

/// Issue a machine label signed by `key` and write it as a PNG; returns its text.
fn issue_label(dir: &Path, key: &Path, id: &str, png: &Path) -> String {
    let issued = ok(
        dir,
        &[
            "code",
            "issue",
            "machine",
            "--key",
            key.to_str().unwrap(),
            "--id",
            id,
            "--kind",
            "arc",
            "--class",
            "mobile",
            "--owner",
            "91370983MA3C5LXY2K",
            "--region",
            "370983",
            "--png",
            png.to_str().unwrap(),
        ],
    );
    assert!(png.is_file());
    issued["text"].as_str().unwrap().to_owned()
}

/// A deterministic pseudo-random sequence (the tests must not depend on a seed from outside).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

/// The label as it comes off a printer and into a phone photo: about 3.5 camera pixels per
/// module (the rendered PNG has 8 or more).
fn shrink(label: &GrayImage) -> GrayImage {
    let side = label.width() * 7 / 16;
    imageops::resize(label, side, side, imageops::FilterType::Triangle)
}

/// Put the label on a grey desk of `w`×`h` at (x, y).
fn on_desk(label: &GrayImage, w: u32, h: u32, x: u32, y: u32) -> GrayImage {
    let mut desk = GrayImage::from_pixel(w, h, Luma([120]));
    imageops::replace(&mut desk, label, i64::from(x), i64::from(y));
    desk
}

/// Solve the 8 unknowns of the homography taking `from[i]` to `to[i]` (Gaussian elimination).
fn homography(from: [(f64, f64); 4], to: [(f64, f64); 4]) -> [f64; 9] {
    let mut m = [[0.0f64; 9]; 8];
    for i in 0..4 {
        let ((x, y), (u, v)) = (from[i], to[i]);
        m[2 * i] = [x, y, 1.0, 0.0, 0.0, 0.0, -u * x, -u * y, u];
        m[2 * i + 1] = [0.0, 0.0, 0.0, x, y, 1.0, -v * x, -v * y, v];
    }
    for col in 0..8 {
        let pivot = (col..8)
            .max_by(|&a, &b| m[a][col].abs().total_cmp(&m[b][col].abs()))
            .unwrap();
        m.swap(col, pivot);
        let pivot_row = m[col];
        for (r, row) in m.iter_mut().enumerate() {
            if r != col {
                let f = row[col] / pivot_row[col];
                for (value, p) in row.iter_mut().zip(pivot_row).skip(col) {
                    *value -= f * p;
                }
            }
        }
    }
    let h: Vec<f64> = (0..8).map(|i| m[i][8] / m[i][i]).collect();
    [h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], 1.0]
}

/// The label seen from below and to the side: its square outline becomes the quadrilateral
/// `quad` on a `w`×`h` grey desk (bilinear sampling).
fn perspective(label: &GrayImage, w: u32, h: u32, quad: [(f64, f64); 4]) -> GrayImage {
    let s = f64::from(label.width());
    let square = [(0.0, 0.0), (s, 0.0), (s, s), (0.0, s)];
    let inv = homography(quad, square);
    ImageBuffer::from_fn(w, h, |x, y| {
        let (x, y) = (f64::from(x), f64::from(y));
        let d = inv[6] * x + inv[7] * y + inv[8];
        let sx = (inv[0] * x + inv[1] * y + inv[2]) / d;
        let sy = (inv[3] * x + inv[4] * y + inv[5]) / d;
        if sx < 0.0 || sy < 0.0 || sx >= s - 1.0 || sy >= s - 1.0 {
            return Luma([120]);
        }
        let (x0, y0) = (sx.floor(), sy.floor());
        let (fx, fy) = (sx - x0, sy - y0);
        let p = |dx: u32, dy: u32| f64::from(label.get_pixel(x0 as u32 + dx, y0 as u32 + dy)[0]);
        let top = p(0, 0) * (1.0 - fx) + p(1, 0) * fx;
        let bottom = p(0, 1) * (1.0 - fx) + p(1, 1) * fx;
        Luma([(top * (1.0 - fy) + bottom * fy).round() as u8])
    })
}

fn noise(image: &mut GrayImage, amplitude: i32, seed: u64) {
    let mut rng = Lcg(seed);
    for p in image.pixels_mut() {
        let r = (rng.next() % (2 * amplitude as u64 + 1)) as i32 - amplitude;
        p[0] = (i32::from(p[0]) + r).clamp(0, 255) as u8;
    }
}

/// Map black to `dark` and white to `light` (faded toner, grey paper, dim light).
fn contrast(image: &mut GrayImage, dark: u8, light: u8) {
    for p in image.pixels_mut() {
        let v = f32::from(p[0]) / 255.0;
        p[0] = (f32::from(dark) + v * f32::from(light - dark)).round() as u8;
    }
}

/// Light falling off from one corner to the other (a lamp beside the machine).
fn uneven_light(image: &mut GrayImage) {
    let (w, h) = (image.width() as f32, image.height() as f32);
    for (x, y, p) in image.enumerate_pixels_mut() {
        let gain = 1.0 - 0.55 * (x as f32 / w + y as f32 / h) / 2.0;
        p[0] = (f32::from(p[0]) * gain).round() as u8;
    }
}

fn save_jpeg(image: &GrayImage, path: &Path, quality: u8) {
    let file = std::fs::File::create(path).unwrap();
    let mut encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(file, quality);
    encoder.encode_image(image).unwrap();
}

/// The degraded copies of one label, each written to `dir`; returns their paths.
fn degraded_copies(label: &Path, dir: &Path, seed: u64) -> Vec<PathBuf> {
    let label = image::open(label).unwrap().to_luma8();
    let small = shrink(&label);
    let side = small.width();
    let (w, h) = (side * 2, side * 3 / 2);
    let desk = on_desk(&small, w, h, side / 2, side / 4);
    let quad = [
        (0.30 * f64::from(w), 0.12 * f64::from(h)),
        (0.78 * f64::from(w), 0.05 * f64::from(h)),
        (0.86 * f64::from(w), 0.92 * f64::from(h)),
        (0.18 * f64::from(w), 0.80 * f64::from(h)),
    ];
    let mut out = Vec::new();
    let mut save = |name: &str, image: &GrayImage| {
        let path = dir.join(name);
        if name.ends_with(".jpg") {
            save_jpeg(image, &path, 30);
        } else {
            image.save(&path).unwrap();
        }
        out.push(path);
    };

    save("blur.png", &imageops::blur(&desk, 1.4));
    save("perspective.png", &perspective(&small, w, h, quad));
    let mut noisy = desk.clone();
    noise(&mut noisy, 40, seed);
    save("noise.png", &noisy);
    let mut faint = desk.clone();
    contrast(&mut faint, 95, 165);
    save("low-contrast.png", &faint);
    save("compressed.jpg", &desk);
    let mut lamp = desk.clone();
    uneven_light(&mut lamp);
    save("uneven-light.png", &lamp);

    // All at once, in the order they happen: print (blur, faint toner), view (perspective),
    // light, sensor noise, the phone's JPEG.
    let mut all = imageops::blur(&small, 1.0);
    contrast(&mut all, 60, 200);
    let mut all = perspective(&all, w, h, quad);
    uneven_light(&mut all);
    noise(&mut all, 16, seed + 1);
    save("everything.jpg", &all);
    out
}

fn scan(dir: &Path, trust: &Path, files: &[PathBuf]) -> Vec<Value> {
    let mut args = vec![
        "scan".to_owned(),
        "--trust".to_owned(),
        trust.display().to_string(),
        // Unoptimised test builds are slow: the budget is a safety net here, not what is tested.
        "--budget-ms".to_owned(),
        "60000".to_owned(),
    ];
    args.extend(files.iter().map(|f| f.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let report = ok(dir, &args);
    report["files"].as_array().unwrap().clone()
}

#[test]
fn a_printed_and_photographed_machine_label_scans_back_and_verifies() {
    let tmp = Tmp::new("label-scan");
    let dir = tmp.dir();
    let (key, trust) = (tmp.path("issuer.json"), tmp.path("trust.json"));
    generate_key(dir, &key, Some(&trust));
    let png = tmp.path("label.png");
    let text = issue_label(dir, &key, "370983-DH-2026-000123", &png);
    assert!(text.starts_with("WG1"), "{text}");

    let copies_dir = tmp.path("copies");
    std::fs::create_dir_all(&copies_dir).unwrap();
    let mut files = vec![png.clone()];
    files.extend(degraded_copies(&png, &copies_dir, 7));
    assert_eq!(files.len(), 8);

    let report = scan(dir, &trust, &files);
    assert_eq!(report.len(), files.len());
    for file in &report {
        let path = file["path"].as_str().unwrap();
        let codes = file["codes"].as_array().unwrap();
        assert_eq!(codes.len(), 1, "{path}: {file}");
        assert_eq!(codes[0]["text"], text.as_str(), "{path}");
        let verdict = &codes[0]["verification"];
        assert_eq!(verdict["valid"], true, "{path}: {verdict}");
        assert_eq!(verdict["kind"], "machine_label", "{path}: {verdict}");
    }
}

#[test]
fn a_label_signed_outside_the_trust_file_is_read_but_refused() {
    let tmp = Tmp::new("label-forged");
    let dir = tmp.dir();
    let trusted = tmp.path("trusted.json");
    let trust = tmp.path("trust.json");
    generate_key(dir, &trusted, Some(&trust));
    // A forger's key: never added to the trust file.
    let forger = tmp.path("forger.json");
    generate_key(dir, &forger, None);
    let png = tmp.path("forged.png");
    let text = issue_label(dir, &forger, "370983-DH-2026-000999", &png);
    let copies_dir = tmp.path("copies");
    std::fs::create_dir_all(&copies_dir).unwrap();
    let everything = degraded_copies(&png, &copies_dir, 11)
        .into_iter()
        .find(|p| p.ends_with("everything.jpg"))
        .unwrap();

    for file in scan(dir, &trust, &[png.clone(), everything]) {
        let codes = file["codes"].as_array().unwrap();
        assert_eq!(codes.len(), 1, "{file}");
        assert_eq!(codes[0]["text"], text.as_str());
        let verdict = &codes[0]["verification"];
        assert_eq!(verdict["valid"], false, "{verdict}");
        assert_eq!(verdict["reason_code"], "code.unknown_issuer", "{verdict}");
        assert!(!verdict["reason"].as_str().unwrap().is_empty());
    }
}

/// A code issued elsewhere (here by `code issue` without a label) is rendered by `code render` and
/// scans back as the same text that still verifies; without an output or with an empty text the
/// command refuses and writes nothing.
#[test]
fn a_code_issued_elsewhere_renders_as_a_label_that_scans_back() {
    let tmp = Tmp::new("label-render");
    let dir = tmp.dir();
    let (key, trust) = (tmp.path("issuer.json"), tmp.path("trust.json"));
    generate_key(dir, &key, Some(&trust));
    let text = issue_label(dir, &key, "370983-DH-2026-000321", &tmp.path("issued.png"));

    let png = tmp.path("rendered.png");
    let rendered = ok(
        dir,
        &[
            "code",
            "render",
            &text,
            "--ec",
            "q",
            "--png",
            png.to_str().unwrap(),
        ],
    );
    assert_eq!(rendered["ec_level"], "Q", "{rendered}");
    assert_eq!(rendered["chars"], text.len());
    let report = scan(dir, &trust, std::slice::from_ref(&png));
    let codes = report[0]["codes"].as_array().unwrap();
    assert_eq!(codes.len(), 1, "{report:?}");
    assert_eq!(codes[0]["text"], text.as_str());
    assert_eq!(codes[0]["verification"]["valid"], true);

    let nowhere = run(dir, &["code", "render", &text]);
    assert!(!nowhere.status.success());
    assert!(
        String::from_utf8_lossy(&nowhere.stdout).contains("input.output")
            || String::from_utf8_lossy(&nowhere.stderr).contains("input.output"),
        "{nowhere:?}"
    );
    let empty_png = tmp.path("empty.png");
    let empty = run(
        dir,
        &["code", "render", "  ", "--png", empty_png.to_str().unwrap()],
    );
    assert!(!empty.status.success());
    assert!(!empty_png.exists(), "nothing is written for an empty text");
}
