//! Camera frames and image files to QR codes: localisation, sampling and decoding with a per-frame
//! work budget.
//!
//! Entry points: [`scan_luma`] for a camera frame (a luma plane with a row stride, as CameraX and
//! AVFoundation hand it over, read in place) and [`scan_image_bytes`] for a PNG or JPEG file. Both
//! return every QR code found with its bytes, its text when the bytes are UTF-8, and its corners.
//! [`scan_luma_timed`] also tells how much of a scan was rqrr's decoding (for benchmarks).
//!
//! The pipeline runs passes from cheap to expensive until every finder pattern seen is explained
//! by a decoded code or the time budget is spent: our finder on a half-size plane made straight
//! from the frame (most photographed codes read there at a quarter of the cost), then at the
//! working size with a wide and with a finder-sized threshold window (blur, dark surrounds), rqrr
//! on a size-capped copy and on our locally thresholded bitmap, the inverted bitmap, and other
//! scales of a pyramid. rqrr decodes and corrects the sampled grid; every call into it is isolated
//! so a panic inside it becomes "no code" instead of crashing the app.

mod binarize;
mod blur;
mod finder;
mod frame;
mod pipeline;
mod precheck;
mod screen;

pub use frame::{LumaFrame, MAX_DIMENSION, MAX_PIXELS};

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::domain::Explain;

/// How hard to try on one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effort {
    /// Plain rqrr on the frame as given, one pass, no budget: the reference the benchmark measures
    /// our additions against. Not for production use.
    Baseline,
    /// rqrr with our preprocessing passes (thresholds, pyramid, inversion) but without our own
    /// finder and sampler: the benchmark measures what each layer adds.
    Preprocessed,
    /// Every pass, until a code is found or the time budget is spent.
    Full,
}

/// Settings for one scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanOptions {
    /// Wall-clock budget for one frame in milliseconds; passes after it is spent are skipped (a pass
    /// that has started runs to its end, and every pass works on a size-capped image).
    pub time_budget_ms: u32,
    /// Keep running passes after a code was found even when every finder pattern seen is explained
    /// by a decoded code (by default passes go on only while unexplained finder patterns remain).
    pub find_all: bool,
    pub effort: Effort,
}

impl Default for ScanOptions {
    fn default() -> Self {
        Self {
            time_budget_ms: 120,
            find_all: false,
            effort: Effort::Full,
        }
    }
}

impl ScanOptions {
    /// Settings for a live camera: a short budget so the preview stays fluid.
    pub fn live() -> Self {
        Self {
            time_budget_ms: 40,
            ..Self::default()
        }
    }
}

/// The error-correction level of a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum EccLevel {
    L,
    M,
    Q,
    H,
}

/// One decoded QR code.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScannedCode {
    /// The payload as text, when it is valid UTF-8 or else valid Shift_JIS (older Japanese
    /// codes: kanji and half-width katakana).
    pub text: Option<String>,
    /// The payload bytes as decoded (byte, alphanumeric, numeric and kanji segments concatenated).
    pub bytes: Vec<u8>,
    /// Corners in frame pixels: top-left, top-right, bottom-right, bottom-left of the code.
    pub corners: [(f32, f32); 4],
    /// QR version 1–40.
    pub version: Option<u8>,
    pub ecc_level: Option<EccLevel>,
}

impl ScannedCode {
    /// The mean of the four corners.
    pub fn centre(&self) -> (f32, f32) {
        let (mut x, mut y) = (0.0, 0.0);
        for (cx, cy) in self.corners {
            x += cx;
            y += cy;
        }
        (x / 4.0, y / 4.0)
    }
}

/// Why a frame or image could not be scanned at all (finding no code is not an error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScanError {
    #[error("the frame has no pixels ({width}×{height})")]
    EmptyFrame { width: u32, height: u32 },
    #[error("the row stride {stride} is smaller than the width {width}")]
    StrideTooSmall { stride: u32, width: u32 },
    #[error("the buffer holds {got} bytes, the frame needs {needed}")]
    BufferTooShort { needed: u64, got: u64 },
    #[error(
        "the image is {width}×{height}, larger than the {max_dimension} px / {max_pixels} pixel limit"
    )]
    TooLarge {
        width: u64,
        height: u64,
        max_dimension: u32,
        max_pixels: u64,
    },
    #[error("the file is not a PNG or JPEG image")]
    UnsupportedFormat,
    #[error("the image cannot be decoded: {0}")]
    ImageDecode(String),
}

impl Explain for ScanError {
    fn code(&self) -> &'static str {
        match self {
            ScanError::EmptyFrame { .. } => "scan.empty_frame",
            ScanError::StrideTooSmall { .. } => "scan.stride_too_small",
            ScanError::BufferTooShort { .. } => "scan.buffer_too_short",
            ScanError::TooLarge { .. } => "scan.too_large",
            ScanError::UnsupportedFormat => "scan.unsupported_format",
            ScanError::ImageDecode(_) => "scan.image_decode",
        }
    }

    fn message_zh(&self) -> String {
        match self {
            ScanError::EmptyFrame { width, height } => {
                format!("图像没有像素（{width}×{height}）")
            }
            ScanError::StrideTooSmall { stride, width } => {
                format!("行跨度 {stride} 小于图像宽度 {width}")
            }
            ScanError::BufferTooShort { needed, got } => {
                format!("图像数据只有 {got} 字节，需要 {needed} 字节")
            }
            ScanError::TooLarge {
                width,
                height,
                max_dimension,
                max_pixels,
            } => format!(
                "图像为 {width}×{height}，超过 {max_dimension} 像素边长或 {max_pixels} 像素总数的上限"
            ),
            ScanError::UnsupportedFormat => "文件不是 PNG 或 JPEG 图像".to_owned(),
            ScanError::ImageDecode(e) => format!("图像无法解码：{e}"),
        }
    }

    fn message_en(&self) -> String {
        self.to_string()
    }
}

/// Find and decode every QR code in a luma frame.
pub fn scan_luma(
    frame: &LumaFrame<'_>,
    options: &ScanOptions,
) -> Result<Vec<ScannedCode>, ScanError> {
    frame.validate()?;
    Ok(pipeline::run(frame, options))
}

/// Where one scan's time went, for benchmarks and tuning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScanTiming {
    /// The whole scan.
    pub total: Duration,
    /// Inside rqrr's decoding of sampled grids: reading the format and data bits, Reed–Solomon
    /// error correction and the data segments (the part rqrr keeps; localisation and sampling
    /// are the rest).
    pub decoding: Duration,
}

/// [`scan_luma`], also telling where its time went.
pub fn scan_luma_timed(
    frame: &LumaFrame<'_>,
    options: &ScanOptions,
) -> Result<(Vec<ScannedCode>, ScanTiming), ScanError> {
    frame.validate()?;
    pipeline::take_decode_time();
    let start = Instant::now();
    let codes = pipeline::run(frame, options);
    let timing = ScanTiming {
        total: start.elapsed(),
        decoding: pipeline::take_decode_time(),
    };
    Ok((codes, timing))
}

/// Decode a PNG or JPEG file (header checked against the size caps before any pixel is decoded)
/// and scan it.
pub fn scan_image_bytes(
    bytes: &[u8],
    options: &ScanOptions,
) -> Result<Vec<ScannedCode>, ScanError> {
    let image = frame::decode_image(bytes)?;
    scan_luma(&image.frame(), options)
}

/// A decoded image file as an owned luma plane.
pub use frame::LumaImage;

/// Decode a PNG or JPEG into an owned luma plane, with the same header checks as
/// [`scan_image_bytes`].
pub fn decode_image(bytes: &[u8]) -> Result<LumaImage, ScanError> {
    frame::decode_image(bytes)
}

#[cfg(test)]
mod tests;
