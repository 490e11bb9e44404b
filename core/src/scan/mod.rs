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
mod deadline;
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

/// How many codes the caller wants from one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExpectedCodes {
    /// The first code that decodes ends the scan (scan-to-start reads one code at a time; a live
    /// preview shows the next frame anyway).
    One,
    /// Every code in the frame: the scan goes on while a candidate no decoded code explains could
    /// still be a code (a sheet or a rack of labels, a depot survey).
    #[default]
    All,
}

/// A rectangle of the frame, in frame pixels (the viewfinder's rectangle of a live preview).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

/// Settings for one scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanOptions {
    /// Wall-clock budget for one frame in milliseconds, an upper bound: work stops being started
    /// a tenth of it before its end, and the long steps (thresholds, the finder scan, decode
    /// attempts) look at it inside and give up; rqrr's passes, which cannot be interrupted,
    /// start only when their estimated cost fits.
    pub time_budget_ms: u32,
    /// Exhaustive: run every pass until the budget, even when every finder pattern seen is
    /// explained by a decoded code (for tests and tuning; [`ExpectedCodes::All`] already goes on
    /// while unexplained finder patterns remain, and stops when none does).
    pub find_all: bool,
    pub effort: Effort,
    /// One code (the scan ends at the first that decodes) or every code.
    pub expected: ExpectedCodes,
    /// Only this part of the frame is scanned; the codes' corners stay in the whole frame's
    /// pixels. A region that is empty or reaches outside the frame is an error.
    pub region: Option<Region>,
}

impl Default for ScanOptions {
    fn default() -> Self {
        Self {
            time_budget_ms: 120,
            find_all: false,
            effort: Effort::Full,
            expected: ExpectedCodes::All,
            region: None,
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
    #[error("the region to scan is empty ({width}×{height})")]
    EmptyRegion { width: u32, height: u32 },
    #[error(
        "the region to scan ({x}, {y}, {width}×{height}) reaches outside the {frame_width}×{frame_height} frame"
    )]
    RegionOutside {
        x: u32,
        y: u32,
        width: u32,
        height: u32,
        frame_width: u32,
        frame_height: u32,
    },
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
            ScanError::EmptyRegion { .. } => "scan.empty_region",
            ScanError::RegionOutside { .. } => "scan.region_outside",
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
            ScanError::EmptyRegion { width, height } => {
                format!("扫描区域为空（{width}×{height}）")
            }
            ScanError::RegionOutside {
                x,
                y,
                width,
                height,
                frame_width,
                frame_height,
            } => format!(
                "扫描区域（{x}, {y}, {width}×{height}）超出了 {frame_width}×{frame_height} 的图像"
            ),
        }
    }

    fn message_en(&self) -> String {
        self.to_string()
    }
}

/// What one scan found, and whether it tried every candidate.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ScanReport {
    pub codes: Vec<ScannedCode>,
    /// The budget ran out with work left undone (a pass, a decode attempt or a window not tried):
    /// a larger budget might read more. `false` when the scan ended because no candidate was
    /// left (or, with [`ExpectedCodes::One`], at the first code).
    pub stopped_at_budget: bool,
}

/// Find and decode every QR code in a luma frame.
pub fn scan_luma(
    frame: &LumaFrame<'_>,
    options: &ScanOptions,
) -> Result<Vec<ScannedCode>, ScanError> {
    scan_luma_report(frame, options).map(|outcome| outcome.codes)
}

/// [`scan_luma`], also telling whether the scan stopped at its budget.
pub fn scan_luma_report(
    frame: &LumaFrame<'_>,
    options: &ScanOptions,
) -> Result<ScanReport, ScanError> {
    frame.validate()?;
    let (sub, dx, dy) = region_of(frame, options.region)?;
    let outcome = pipeline::run(&sub, options);
    Ok(ScanReport {
        codes: shift(outcome.codes, dx, dy),
        stopped_at_budget: outcome.stopped_at_budget,
    })
}

/// The part of a validated frame that `region` names (the whole frame without one), read in place
/// with the frame's stride, and the offset of its top-left pixel.
fn region_of<'a>(
    frame: &LumaFrame<'a>,
    region: Option<Region>,
) -> Result<(LumaFrame<'a>, u32, u32), ScanError> {
    let Some(r) = region else {
        return Ok((*frame, 0, 0));
    };
    if r.width == 0 || r.height == 0 {
        return Err(ScanError::EmptyRegion {
            width: r.width,
            height: r.height,
        });
    }
    let right = u64::from(r.x) + u64::from(r.width);
    let bottom = u64::from(r.y) + u64::from(r.height);
    let outside = ScanError::RegionOutside {
        x: r.x,
        y: r.y,
        width: r.width,
        height: r.height,
        frame_width: frame.width,
        frame_height: frame.height,
    };
    if right > u64::from(frame.width) || bottom > u64::from(frame.height) {
        return Err(outside);
    }
    let start = usize::try_from(u64::from(r.y) * u64::from(frame.stride) + u64::from(r.x))
        .map_err(|_| outside.clone())?;
    let data = frame.data.get(start..).ok_or(outside)?;
    let sub = LumaFrame::new(data, r.width, r.height, frame.stride);
    sub.validate()?;
    Ok((sub, r.x, r.y))
}

/// Corners found in a region moved back to the whole frame's pixels.
fn shift(mut codes: Vec<ScannedCode>, dx: u32, dy: u32) -> Vec<ScannedCode> {
    if dx != 0 || dy != 0 {
        let (dx, dy) = (dx as f32, dy as f32);
        for code in &mut codes {
            for corner in &mut code.corners {
                corner.0 += dx;
                corner.1 += dy;
            }
        }
    }
    codes
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
    let (sub, dx, dy) = region_of(frame, options.region)?;
    pipeline::take_decode_time();
    let start = Instant::now();
    let codes = shift(pipeline::run(&sub, options).codes, dx, dy);
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
