//! Scanning for the shells: a camera frame's luma plane, or the bytes of a PNG or JPEG file, to
//! every QR code in it.
//!
//! The frame is the Y plane as the camera hands it over, with its row stride:
//! - on Android, CameraX `ImageProxy.planes[0]` (YUV_420_888) and its `rowStride`;
//! - on iOS, plane 0 of a `kCVPixelFormatType_420YpCbCr8BiPlanar…` buffer and its
//!   `bytesPerRow`.
//!
//! The shell passes the plane as it is, row padding included (the last row may stop at the width),
//! without repacking rows; the FFI copies the bytes into the core once. Corners are in the frame's
//! own pixels, before any display rotation, so the shell maps them to its preview as it maps the
//! frame. A scanned text is then verified with [`super::Device::verify_code`] or
//! [`super::functions::verify_code`].

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use super::background::run;
use super::error::WeldGuardError;
use weldguard_core::scan::{self, EccLevel, LumaFrame, Region, ScanOptions, ScannedCode};

/// How long a scan may look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum ScanMode {
    /// A live preview frame: at most about 40 ms, so the preview stays fluid (the next frame
    /// is another chance).
    Live,
    /// A still photo or a picked image: at most about 120 ms, every pass that may still find a
    /// code.
    Photo,
}

impl ScanMode {
    fn options(self) -> ScanOptions {
        match self {
            ScanMode::Live => ScanOptions::live(),
            ScanMode::Photo => ScanOptions::default(),
        }
    }
}

/// How many codes the shell wants from one scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum ExpectedCodes {
    /// The first code that decodes ends the scan (scan-to-start: one code at a time).
    One,
    /// Every code in the frame or photo (a sheet or a rack of labels, a depot survey).
    All,
}

/// A rectangle of the frame in frame pixels, before any display rotation: the viewfinder's
/// rectangle, so a live preview scans only what the user aims at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct ScanRegion {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

/// What a scan looks for and where: the mode's time budget, one code or all, and optionally the
/// region of the frame to scan (the codes' corners stay in the whole frame's pixels; a region
/// that is empty or reaches outside the frame is `InvalidInput` with `scan.empty_region` or
/// `scan.region_outside`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct ScanSettings {
    pub mode: ScanMode,
    pub expected: ExpectedCodes,
    pub region: Option<ScanRegion>,
}

impl ScanSettings {
    fn options(self) -> ScanOptions {
        ScanOptions {
            expected: match self.expected {
                ExpectedCodes::One => scan::ExpectedCodes::One,
                ExpectedCodes::All => scan::ExpectedCodes::All,
            },
            region: self.region.map(|r| Region {
                x: r.x,
                y: r.y,
                width: r.width,
                height: r.height,
            }),
            ..self.mode.options()
        }
    }
}

/// A point in frame (or image) pixels.
#[derive(Debug, Clone, Copy, PartialEq, uniffi::Record)]
pub struct FramePoint {
    pub x: f32,
    pub y: f32,
}

/// A QR code's error-correction level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum QrEccLevel {
    L,
    M,
    Q,
    H,
}

/// One QR code found.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct ScannedQr {
    /// The payload as text, when it is UTF-8 (WeldGuard codes always are) or Shift_JIS.
    pub text: Option<String>,
    /// The payload bytes.
    pub bytes: Vec<u8>,
    /// Top-left, top-right, bottom-right, bottom-left corner of the code.
    pub corners: Vec<FramePoint>,
    /// QR version 1–40.
    pub version: Option<u8>,
    pub ecc_level: Option<QrEccLevel>,
}

impl From<ScannedCode> for ScannedQr {
    fn from(code: ScannedCode) -> Self {
        Self {
            text: code.text,
            bytes: code.bytes,
            corners: code
                .corners
                .iter()
                .map(|&(x, y)| FramePoint { x, y })
                .collect(),
            version: code.version,
            ecc_level: code.ecc_level.map(|level| match level {
                EccLevel::L => QrEccLevel::L,
                EccLevel::M => QrEccLevel::M,
                EccLevel::Q => QrEccLevel::Q,
                EccLevel::H => QrEccLevel::H,
            }),
        }
    }
}

/// Find every QR code in a camera frame's luma plane: `width` × `height` pixels, one byte each,
/// `row_stride` bytes from one row to the next. A frame without a code is an empty list; a frame
/// whose shape does not fit its bytes (or is empty, or over 8192 px a side or 40 MP) is
/// `InvalidInput` with a `scan.*` code.
#[uniffi::export]
pub fn scan_frame(
    luma: Vec<u8>,
    width: u32,
    height: u32,
    row_stride: u32,
    mode: ScanMode,
) -> Result<Vec<ScannedQr>, WeldGuardError> {
    scan_plane(&luma, width, height, row_stride, mode.options())
}

/// Find every QR code in a PNG or JPEG file's bytes (a photo taken or picked by the user). The
/// header's size is checked before any pixel is decoded; a file that is not a PNG or JPEG, is
/// truncated, or is too large is `InvalidInput` with a `scan.*` code. `async`: decoding a photo
/// takes longer than a frame, so it runs on a thread of its own (a live frame goes through
/// [`scan_frame`], synchronous).
#[uniffi::export]
pub async fn scan_image(
    file_bytes: Vec<u8>,
    mode: ScanMode,
) -> Result<Vec<ScannedQr>, WeldGuardError> {
    run("scan", Arc::new(AtomicBool::new(false)), move || {
        guarded(|| scan::scan_image_bytes(&file_bytes, &mode.options()))
    })
    .await
}

/// [`scan_frame`] with settings: one code or all, and the region of the frame to scan (the
/// viewfinder's rectangle). A region that is empty or reaches outside the frame is
/// `InvalidInput` (`scan.empty_region`, `scan.region_outside`), as is a frame that does not fit
/// its bytes.
#[uniffi::export]
pub fn scan_frame_with(
    luma: Vec<u8>,
    width: u32,
    height: u32,
    row_stride: u32,
    settings: ScanSettings,
) -> Result<Vec<ScannedQr>, WeldGuardError> {
    scan_plane(&luma, width, height, row_stride, settings.options())
}

/// [`scan_frame_with`] on the camera's luma plane where the camera keeps it: no copy crosses the
/// FFI. Kotlin passes a direct `java.nio.ByteBuffer` (CameraX's `ImageProxy.planes[0].buffer` as it
/// is; its bytes from the start, `remaining()` of them), Swift a `Data` (e.g. `bytesNoCopy` over
/// the locked pixel buffer's luma plane). The bytes are borrowed for the call only. The same
/// checks and errors as [`scan_frame_with`].
#[uniffi::export]
pub fn scan_frame_buffer(
    luma: &[u8],
    width: u32,
    height: u32,
    row_stride: u32,
    settings: ScanSettings,
) -> Result<Vec<ScannedQr>, WeldGuardError> {
    scan_plane(luma, width, height, row_stride, settings.options())
}

/// [`scan_image`] with settings: one code or all, and the region of the image to scan (checked
/// against the decoded image's size).
#[uniffi::export]
pub async fn scan_image_with(
    file_bytes: Vec<u8>,
    settings: ScanSettings,
) -> Result<Vec<ScannedQr>, WeldGuardError> {
    run("scan", Arc::new(AtomicBool::new(false)), move || {
        guarded(|| scan::scan_image_bytes(&file_bytes, &settings.options()))
    })
    .await
}

/// One frame's luma plane, scanned with `options` (the three frame exports differ only in how the
/// plane and the options arrive).
fn scan_plane(
    luma: &[u8],
    width: u32,
    height: u32,
    row_stride: u32,
    options: ScanOptions,
) -> Result<Vec<ScannedQr>, WeldGuardError> {
    guarded(|| scan::scan_luma(&LumaFrame::new(luma, width, height, row_stride), &options))
}

/// Run a scan so that nothing unwinds into the shell: a panic, which would be a bug (calls into
/// rqrr are already isolated inside the scanner), becomes a typed error.
fn guarded(
    run: impl FnOnce() -> Result<Vec<ScannedCode>, scan::ScanError>,
) -> Result<Vec<ScannedQr>, WeldGuardError> {
    match catch_unwind(AssertUnwindSafe(run)) {
        Ok(Ok(codes)) => Ok(codes.into_iter().map(ScannedQr::from).collect()),
        Ok(Err(e)) => Err(e.into()),
        Err(_) => Err(WeldGuardError::invalid_text(
            "scan.internal",
            "扫描时出现内部错误，此帧已跳过",
            "The scanner failed internally; this frame was skipped",
        )),
    }
}
