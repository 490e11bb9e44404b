//! `weldguard scan IMAGE…`: decode the QR codes in image files; `weldguard scan --camera [INDEX]`:
//! live results from a desktop camera (builds with the `camera` feature only). With `--trust FILE`
//! every WG1 code found is verified against that trust list and shown as valid or invalid.

use std::path::PathBuf;

use clap::Args;
use serde::Serialize;
use weldguard_core::codes::{PREFIX, ReplayCache, RevocationSet, TrustStore, Verifier};
use weldguard_core::domain::Explain;
use weldguard_core::scan::{ExpectedCodes, ScanOptions, ScannedCode, scan_image_bytes};

use crate::output::{Failure, Lang, Output};

/// Files larger than this are refused before reading (no phone photo comes near it).
const MAX_FILE_BYTES: u64 = 64 << 20;

/// Files are not a live preview: the default time per image is longer than a camera frame's.
const FILE_BUDGET_MS: u32 = 400;

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// PNG or JPEG files to scan.
    #[arg(required_unless_present = "camera")]
    images: Vec<PathBuf>,
    /// Scan live from a camera (default index 0); needs a build with `--features camera`.
    #[arg(long, num_args = 0..=1, default_missing_value = "0", conflicts_with = "images")]
    camera: Option<u32>,
    /// Verify the WG1 codes found against this trust list (JSON, as `weldguard code verify` takes).
    #[arg(long, value_name = "FILE", conflicts_with = "camera")]
    trust: Option<PathBuf>,
    /// Time allowed per image in milliseconds (passes after it are skipped).
    #[arg(long, value_name = "MS", default_value_t = FILE_BUDGET_MS,
          value_parser = clap::value_parser!(u32).range(1..=600_000))]
    budget_ms: u32,
}

/// The verdict on one WG1 code (present only with `--trust`).
#[derive(Debug, Serialize)]
struct VerificationOut {
    valid: bool,
    /// The code kind (`machine_label`, …) when valid.
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<String>,
    /// Hex key id of the issuer key, when valid.
    #[serde(skip_serializing_if = "Option::is_none")]
    kid: Option<String>,
    /// The stable reason code, when invalid.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason_code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

#[derive(Debug, Serialize)]
struct CodeOut {
    text: Option<String>,
    /// The payload bytes in hex (always present; `text` is absent when they are not UTF-8).
    bytes_hex: String,
    corners: [(f32, f32); 4],
    version: Option<u8>,
    ecc_level: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    verification: Option<VerificationOut>,
}

#[derive(Debug, Serialize)]
struct ErrorOut {
    code: &'static str,
    message: String,
}

#[derive(Debug, Serialize)]
struct FileOut {
    path: String,
    texts: Vec<String>,
    codes: Vec<CodeOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorOut>,
}

#[derive(Debug, Serialize)]
struct RunOut {
    files: Vec<FileOut>,
}

fn code_out(code: &ScannedCode) -> CodeOut {
    CodeOut {
        text: code.text.clone(),
        bytes_hex: code.bytes.iter().map(|b| format!("{b:02x}")).collect(),
        corners: code.corners,
        version: code.version,
        ecc_level: code.ecc_level.map(|e| format!("{e:?}")),
        verification: None,
    }
}

/// Verify a scanned code when it is a WG1 code (others get no verdict).
fn verify_code(
    code: &ScannedCode,
    verifier: &Verifier<'_>,
    now: i64,
    lang: Lang,
) -> Option<VerificationOut> {
    let text = code.text.as_deref()?.trim();
    if !text.starts_with(PREFIX) {
        return None;
    }
    // A fresh replay cache per code: the same presentation photographed twice is not a replay.
    Some(
        match verifier.verify(text, now, &mut ReplayCache::default()) {
            Ok(verified) => VerificationOut {
                valid: true,
                kind: serde_json::to_value(verified.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .or_else(|| Some(format!("{:?}", verified.kind))),
                kid: Some(verified.kid),
                reason_code: None,
                reason: None,
            },
            Err(e) => VerificationOut {
                valid: false,
                kind: None,
                kid: None,
                reason_code: Some(e.code()),
                reason: Some(pick(lang, &e.message_zh(), &e.message_en())),
            },
        },
    )
}

pub fn run(args: ScanArgs, out: &Output) -> Result<(), Failure> {
    if let Some(index) = args.camera {
        return camera::run(index, out);
    }
    // Every code in a file is reported, not only the first: the scan goes on while a candidate
    // that no code explains remains, and stops there (not at the budget).
    let options = ScanOptions {
        time_budget_ms: args.budget_ms,
        expected: ExpectedCodes::All,
        ..ScanOptions::default()
    };
    let trust = match &args.trust {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                Failure::input("scan.trust_unreadable", format!("{}: {e}", path.display()))
            })?;
            Some(
                TrustStore::from_json(&text)
                    .map_err(|e| Failure::input(e.code(), format!("{}: {e}", path.display())))?,
            )
        }
        None => None,
    };
    let revocations = RevocationSet::new();
    let verifier = trust.as_ref().map(|t| Verifier::new(t, &revocations));
    let now = chrono::Utc::now().timestamp();
    let mut files = Vec::new();
    let mut failed = 0usize;
    for path in &args.images {
        let result = read_file(path, out.lang).and_then(|bytes| {
            scan_image_bytes(&bytes, &options).map_err(|e| ErrorOut {
                code: e.code(),
                message: pick(out.lang, &e.message_zh(), &e.message_en()),
            })
        });
        let file = match result {
            Ok(codes) => FileOut {
                path: path.display().to_string(),
                texts: codes.iter().filter_map(|c| c.text.clone()).collect(),
                codes: codes
                    .iter()
                    .map(|c| CodeOut {
                        verification: verifier
                            .as_ref()
                            .and_then(|v| verify_code(c, v, now, out.lang)),
                        ..code_out(c)
                    })
                    .collect(),
                error: None,
            },
            Err(error) => {
                failed += 1;
                FileOut {
                    path: path.display().to_string(),
                    texts: Vec::new(),
                    codes: Vec::new(),
                    error: Some(error),
                }
            }
        };
        if !out.json {
            print_human(&file, out.lang);
        }
        files.push(file);
    }
    if out.json {
        out.json(&RunOut { files })?;
    }
    if failed > 0 {
        let message = match out.lang {
            Lang::Zh => format!("{failed} 个文件无法扫描"),
            Lang::En => format!("{failed} file(s) could not be scanned"),
        };
        return Err(Failure::input("scan.file_failed", message));
    }
    Ok(())
}

fn pick(lang: Lang, zh: &str, en: &str) -> String {
    lang.pick(zh, en).to_owned()
}

fn read_file(path: &PathBuf, lang: Lang) -> Result<Vec<u8>, ErrorOut> {
    let unreadable = |e: std::io::Error| ErrorOut {
        code: "scan.file_unreadable",
        message: match lang {
            Lang::Zh => format!("无法读取文件：{e}"),
            Lang::En => format!("cannot read the file: {e}"),
        },
    };
    let size = std::fs::metadata(path).map_err(unreadable)?.len();
    if size > MAX_FILE_BYTES {
        return Err(ErrorOut {
            code: "scan.file_too_large",
            message: match lang {
                Lang::Zh => format!("文件有 {size} 字节，超过 {MAX_FILE_BYTES} 字节的上限"),
                Lang::En => {
                    format!("the file has {size} bytes, over the {MAX_FILE_BYTES} byte limit")
                }
            },
        });
    }
    std::fs::read(path).map_err(unreadable)
}

fn print_human(file: &FileOut, lang: Lang) {
    if let Some(error) = &file.error {
        stdoutln!("{}: {}", file.path, error.message);
        return;
    }
    match (lang, file.codes.len()) {
        (Lang::Zh, 0) => stdoutln!("{}: 未找到二维码", file.path),
        (Lang::En, 0) => stdoutln!("{}: no QR code found", file.path),
        (Lang::Zh, n) => stdoutln!("{}: {n} 个二维码", file.path),
        (Lang::En, n) => stdoutln!("{}: {n} QR code(s)", file.path),
    }
    for code in &file.codes {
        let payload = match &code.text {
            Some(text) => text.clone(),
            None => format!("(bytes) {}", code.bytes_hex),
        };
        let version = code.version.map(|v| format!("V{v}")).unwrap_or_default();
        let ecc = code.ecc_level.clone().unwrap_or_default();
        let (x, y) = code.corners[0];
        stdoutln!("  {payload}    [{version}-{ecc} at {x:.0},{y:.0}]");
        if let Some(v) = &code.verification {
            if v.valid {
                let kind = v.kind.clone().unwrap_or_default();
                let kid = v.kid.clone().unwrap_or_default();
                stdoutln!("    {} {kind} (kid {kid})", lang.pick("有效：", "VALID:"));
            } else {
                stdoutln!(
                    "    {} {} [{}]",
                    lang.pick("无效：", "INVALID:"),
                    v.reason.clone().unwrap_or_default(),
                    v.reason_code.unwrap_or_default()
                );
            }
        }
    }
}

#[cfg(not(feature = "camera"))]
mod camera {
    use crate::output::{Failure, Lang, Output};

    pub fn run(_index: u32, out: &Output) -> Result<(), Failure> {
        let message = match out.lang {
            Lang::Zh => {
                "此版本不含摄像头支持；请用 `cargo build -p weldguard-cli --features camera` 重新构建"
            }
            Lang::En => {
                "this build has no camera support; rebuild with `cargo build -p weldguard-cli --features camera`"
            }
        };
        Err(Failure::runtime("scan.camera_unavailable", message))
    }
}

#[cfg(feature = "camera")]
mod camera {
    //! Live scanning from a desktop camera through nokhwa.

    use std::io::Write;

    use nokhwa::Camera;
    use nokhwa::pixel_format::LumaFormat;
    use nokhwa::utils::{ApiBackend, CameraIndex, RequestedFormat, RequestedFormatType};
    use weldguard_core::scan::{LumaFrame, ScanOptions, scan_luma};

    use crate::output::{Failure, Lang, Output};

    pub fn run(index: u32, out: &Output) -> Result<(), Failure> {
        let lang = out.lang;
        let cameras = nokhwa::query(ApiBackend::Auto).unwrap_or_default();
        if cameras.is_empty() {
            return Err(Failure::runtime(
                "scan.no_camera",
                lang.pick("未找到摄像头", "no camera found on this computer"),
            ));
        }
        let format =
            RequestedFormat::new::<LumaFormat>(RequestedFormatType::AbsoluteHighestFrameRate);
        let mut camera = Camera::new(CameraIndex::Index(index), format).map_err(|e| {
            Failure::runtime(
                "scan.camera_open",
                match lang {
                    Lang::Zh => format!("无法打开摄像头 {index}：{e}"),
                    Lang::En => format!("cannot open camera {index}: {e}"),
                },
            )
        })?;
        camera
            .open_stream()
            .map_err(|e| Failure::runtime("scan.camera_open", format!("camera {index}: {e}")))?;
        stderrln!(
            "{}",
            lang.pick("正在扫描，按 Ctrl+C 退出", "scanning, press Ctrl+C to stop")
        );
        let options = ScanOptions::live();
        let mut last = String::new();
        loop {
            let frame = camera
                .frame()
                .map_err(|e| Failure::runtime("scan.camera_frame", e.to_string()))?;
            let luma = frame
                .decode_image::<LumaFormat>()
                .map_err(|e| Failure::runtime("scan.camera_frame", e.to_string()))?;
            let (w, h) = luma.dimensions();
            let view = LumaFrame::new(luma.as_raw(), w, h, w);
            let started = std::time::Instant::now();
            let codes = scan_luma(&view, &options).unwrap_or_default();
            let ms = started.elapsed().as_millis();
            let texts: Vec<String> = codes
                .iter()
                .map(|c| {
                    c.text
                        .clone()
                        .unwrap_or_else(|| format!("({} bytes)", c.bytes.len()))
                })
                .collect();
            let line = if texts.is_empty() {
                format!("{w}×{h} {ms:>3} ms  -")
            } else {
                format!("{w}×{h} {ms:>3} ms  {}", texts.join("  |  "))
            };
            if !texts.is_empty() && texts.join("|") != last {
                stdoutln!("\r{line}\x1b[K");
                last = texts.join("|");
            } else {
                stdout!("\r{line}\x1b[K");
            }
            let _ = std::io::stdout().flush();
        }
    }
}
