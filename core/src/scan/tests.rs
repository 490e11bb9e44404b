//! Scanner tests on images the tests generate with the `qrcode` crate: rotation, perspective, blur,
//! noise, low contrast, inversion, JPEG, two codes in one frame, and garbage input.

use super::*;

const PAYLOAD: &str = "WG1:machine:SH-2026-000123;welder:310101199001011234";

/// A white canvas.
struct Canvas {
    w: usize,
    h: usize,
    px: Vec<u8>,
}

impl Canvas {
    fn new(w: usize, h: usize, value: u8) -> Self {
        Self {
            w,
            h,
            px: vec![value; w * h],
        }
    }

    fn frame(&self) -> LumaFrame<'_> {
        LumaFrame::new(&self.px, self.w as u32, self.h as u32, self.w as u32)
    }

    fn get(&self, x: f32, y: f32) -> f32 {
        let xi = x.floor();
        let yi = y.floor();
        let fx = x - xi;
        let fy = y - yi;
        let p = |x: f32, y: f32| -> f32 {
            if x < 0.0 || y < 0.0 || x >= self.w as f32 || y >= self.h as f32 {
                255.0
            } else {
                f32::from(self.px[y as usize * self.w + x as usize])
            }
        };
        let top = p(xi, yi) * (1.0 - fx) + p(xi + 1.0, yi) * fx;
        let bottom = p(xi, yi + 1.0) * (1.0 - fx) + p(xi + 1.0, yi + 1.0) * fx;
        top * (1.0 - fy) + bottom * fy
    }
}

/// Draw `text` as a QR code with `module` px per module at (ox, oy), dark = `dark`, light = `light`.
fn draw_code(
    canvas: &mut Canvas,
    text: &str,
    module: usize,
    ox: usize,
    oy: usize,
    dark: u8,
    light: u8,
) {
    let code = qrcode::QrCode::new(text.as_bytes()).unwrap();
    let n = code.width();
    let colors = code.to_colors();
    let quiet = 4;
    for my in 0..n + 2 * quiet {
        for mx in 0..n + 2 * quiet {
            let is_dark = mx >= quiet
                && my >= quiet
                && mx - quiet < n
                && my - quiet < n
                && colors[(my - quiet) * n + (mx - quiet)] == qrcode::Color::Dark;
            for dy in 0..module {
                for dx in 0..module {
                    let x = ox + mx * module + dx;
                    let y = oy + my * module + dy;
                    if x < canvas.w && y < canvas.h {
                        canvas.px[y * canvas.w + x] = if is_dark { dark } else { light };
                    }
                }
            }
        }
    }
}

fn code_canvas(text: &str, module: usize) -> Canvas {
    let n = qrcode::QrCode::new(text.as_bytes()).unwrap().width();
    let side = (n + 8) * module + 40;
    let mut canvas = Canvas::new(side, side, 255);
    draw_code(&mut canvas, text, module, 20, 20, 0, 255);
    canvas
}

/// Map every output pixel through `inverse` (output → source coordinates).
fn warp(src: &Canvas, w: usize, h: usize, inverse: impl Fn(f32, f32) -> (f32, f32)) -> Canvas {
    let mut out = Canvas::new(w, h, 255);
    for y in 0..h {
        for x in 0..w {
            let (sx, sy) = inverse(x as f32, y as f32);
            out.px[y * w + x] = src.get(sx, sy).round().clamp(0.0, 255.0) as u8;
        }
    }
    out
}

fn rotate(src: &Canvas, degrees: f32) -> Canvas {
    let side = ((src.w.max(src.h) as f32) * 1.5) as usize;
    let (s, c) = degrees.to_radians().sin_cos();
    let (cx, cy) = (side as f32 / 2.0, side as f32 / 2.0);
    let (scx, scy) = (src.w as f32 / 2.0, src.h as f32 / 2.0);
    warp(src, side, side, |x, y| {
        let (dx, dy) = (x - cx, y - cy);
        (c * dx + s * dy + scx, -s * dx + c * dy + scy)
    })
}

/// A true perspective view: the label's square outline seen as a keystone quadrilateral
/// (camera looking up and from the side).
fn perspective(src: &Canvas) -> Canvas {
    let (w, h) = (src.w as f64, src.h as f64);
    let out = [
        (0.22 * w, 0.08 * h),
        (0.82 * w, 0.0),
        (w, h),
        (0.0, 0.9 * h),
    ];
    let square = [(0.0, 0.0), (w, 0.0), (w, h), (0.0, h)];
    let inverse = super::finder::Homography::quad_to_quad(out, square).unwrap();
    warp(src, src.w, src.h, |x, y| {
        let (sx, sy) = inverse.apply(f64::from(x), f64::from(y));
        (sx as f32, sy as f32)
    })
}

/// A milder perspective than [`perspective`]: a label held at a tilt (far side about 20 %
/// shorter than the near one).
fn tilt(src: &Canvas) -> Canvas {
    let (w, h) = (src.w as f64, src.h as f64);
    let out = [
        (0.12 * w, 0.06 * h),
        (0.88 * w, 0.0),
        (w, h),
        (0.0, 0.94 * h),
    ];
    let square = [(0.0, 0.0), (w, 0.0), (w, h), (0.0, h)];
    let inverse = super::finder::Homography::quad_to_quad(out, square).unwrap();
    warp(src, src.w, src.h, |x, y| {
        let (sx, sy) = inverse.apply(f64::from(x), f64::from(y));
        (sx as f32, sy as f32)
    })
}

fn box_blur(src: &Canvas, radius: usize) -> Canvas {
    let mut out = Canvas::new(src.w, src.h, 255);
    for y in 0..src.h {
        for x in 0..src.w {
            let mut sum = 0u32;
            let mut count = 0u32;
            for yy in y.saturating_sub(radius)..(y + radius + 1).min(src.h) {
                for xx in x.saturating_sub(radius)..(x + radius + 1).min(src.w) {
                    sum += u32::from(src.px[yy * src.w + xx]);
                    count += 1;
                }
            }
            out.px[y * src.w + x] = (sum / count) as u8;
        }
    }
    out
}

fn add_noise(src: &mut Canvas, amplitude: i32, seed: u64) {
    let mut state = seed;
    for p in &mut src.px {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let r = ((state >> 33) % (2 * amplitude as u64 + 1)) as i32 - amplitude;
        *p = (i32::from(*p) + r).clamp(0, 255) as u8;
    }
}

fn texts(codes: &[ScannedCode]) -> Vec<String> {
    codes.iter().filter_map(|c| c.text.clone()).collect()
}

/// Options with a budget large enough for unoptimised test builds (the budget is a safety net;
/// these tests check what the passes can read, not how fast).
fn opts() -> ScanOptions {
    ScanOptions {
        time_budget_ms: 60_000,
        ..ScanOptions::default()
    }
}

fn scan(canvas: &Canvas) -> Vec<ScannedCode> {
    scan_luma(&canvas.frame(), &opts()).unwrap()
}

#[test]
fn reads_a_clean_code_with_corners() {
    let canvas = code_canvas(PAYLOAD, 6);
    let codes = scan(&canvas);
    assert_eq!(texts(&codes), vec![PAYLOAD.to_owned()]);
    let code = &codes[0];
    assert_eq!(code.bytes, PAYLOAD.as_bytes());
    assert!(code.version.is_some());
    // The code starts at 20 + 4 quiet modules of 6 px.
    let (x0, y0) = code.corners[0];
    assert!(
        (x0 - 44.0).abs() < 8.0 && (y0 - 44.0).abs() < 8.0,
        "{:?}",
        code.corners
    );
}

#[test]
fn reads_rotated_codes() {
    let canvas = code_canvas(PAYLOAD, 6);
    for degrees in [30.0, 90.0, 135.0, 200.0] {
        let rotated = rotate(&canvas, degrees);
        assert_eq!(
            texts(&scan(&rotated)),
            vec![PAYLOAD.to_owned()],
            "{degrees}°"
        );
    }
}

#[test]
fn reads_a_code_in_perspective() {
    let canvas = code_canvas(PAYLOAD, 7);
    let skewed = perspective(&canvas);
    assert_eq!(texts(&scan(&skewed)), vec![PAYLOAD.to_owned()]);
}

#[test]
fn reads_a_blurred_noisy_low_contrast_code() {
    let canvas = code_canvas(PAYLOAD, 6);
    let mut blurred = box_blur(&canvas, 1);
    // Squeeze into 90..160 (contrast 70 of 255) and add noise.
    for p in &mut blurred.px {
        *p = 90 + (u32::from(*p) * 70 / 255) as u8;
    }
    add_noise(&mut blurred, 12, 42);
    assert_eq!(texts(&scan(&blurred)), vec![PAYLOAD.to_owned()]);
}

#[test]
fn reads_an_inverted_code() {
    let mut canvas = code_canvas(PAYLOAD, 6);
    for p in &mut canvas.px {
        *p = 255 - *p;
    }
    assert_eq!(texts(&scan(&canvas)), vec![PAYLOAD.to_owned()]);
}

#[test]
fn reads_a_code_under_a_light_gradient() {
    // One side of the label in shade, the other in glare.
    let canvas = code_canvas(PAYLOAD, 6);
    let mut lit = Canvas::new(canvas.w, canvas.h, 255);
    for y in 0..canvas.h {
        for x in 0..canvas.w {
            let light = 0.25 + 0.75 * x as f32 / canvas.w as f32;
            let v = f32::from(canvas.px[y * canvas.w + x]) * light + 30.0 * light;
            lit.px[y * canvas.w + x] = v.clamp(0.0, 255.0) as u8;
        }
    }
    assert_eq!(texts(&scan(&lit)), vec![PAYLOAD.to_owned()]);
}

#[test]
fn reads_two_codes_in_one_frame() {
    let a = "WG1:machine:A";
    let b = "WG1:welder:B";
    let mut canvas = Canvas::new(640, 320, 255);
    draw_code(&mut canvas, a, 6, 10, 40, 0, 255);
    draw_code(&mut canvas, b, 6, 340, 40, 0, 255);
    let options = ScanOptions {
        find_all: true,
        ..opts()
    };
    let mut found = texts(&scan_luma(&canvas.frame(), &options).unwrap());
    found.sort();
    assert_eq!(found, vec![a.to_owned(), b.to_owned()]);
}

#[test]
fn reads_a_frame_with_padding_in_its_stride() {
    let canvas = code_canvas(PAYLOAD, 5);
    let stride = canvas.w + 13;
    let mut data = vec![0u8; stride * canvas.h];
    for y in 0..canvas.h {
        data[y * stride..y * stride + canvas.w]
            .copy_from_slice(&canvas.px[y * canvas.w..(y + 1) * canvas.w]);
    }
    let frame = LumaFrame::new(&data, canvas.w as u32, canvas.h as u32, stride as u32);
    assert_eq!(
        texts(&scan_luma(&frame, &opts()).unwrap()),
        vec![PAYLOAD.to_owned()]
    );
}

#[test]
fn reads_a_jpeg_and_a_png_file() {
    let canvas = code_canvas(PAYLOAD, 5);
    let blurred = box_blur(&canvas, 1);
    let img =
        image::GrayImage::from_raw(blurred.w as u32, blurred.h as u32, blurred.px.clone()).unwrap();
    for format in [image::ImageFormat::Jpeg, image::ImageFormat::Png] {
        let mut bytes = std::io::Cursor::new(Vec::new());
        img.write_to(&mut bytes, format).unwrap();
        let codes = scan_image_bytes(bytes.get_ref(), &opts()).unwrap();
        assert_eq!(texts(&codes), vec![PAYLOAD.to_owned()], "{format:?}");
    }
}

#[test]
fn an_empty_scene_gives_no_code() {
    let mut canvas = Canvas::new(320, 240, 128);
    add_noise(&mut canvas, 40, 3);
    assert!(scan(&canvas).is_empty());
}

/// The timed scan reads the same codes, its decoding share lies within its total, and the
/// share is counted per scan (a frame without a code decodes nothing, right after one with a
/// code).
#[test]
fn a_timed_scan_tells_its_decoding_time() {
    let canvas = code_canvas(PAYLOAD, 6);
    let (codes, timing) = scan_luma_timed(&canvas.frame(), &opts()).unwrap();
    assert_eq!(texts(&codes), vec![PAYLOAD.to_owned()]);
    assert!(timing.decoding > Duration::ZERO, "{timing:?}");
    assert!(timing.decoding <= timing.total, "{timing:?}");

    let mut empty = Canvas::new(320, 240, 128);
    add_noise(&mut empty, 40, 3);
    let (codes, timing) = scan_luma_timed(&empty.frame(), &opts()).unwrap();
    assert!(codes.is_empty());
    assert_eq!(timing.decoding, Duration::ZERO);

    let bad = LumaFrame::new(&[], 0, 0, 0);
    assert!(scan_luma_timed(&bad, &opts()).is_err());
}

#[test]
fn garbage_frames_are_errors() {
    let data = vec![0u8; 100];
    let zero = LumaFrame::new(&data, 0, 10, 10);
    assert_eq!(
        scan_luma(&zero, &ScanOptions::default())
            .unwrap_err()
            .code(),
        "scan.empty_frame"
    );
    let narrow = LumaFrame::new(&data, 10, 10, 5);
    assert_eq!(
        scan_luma(&narrow, &ScanOptions::default())
            .unwrap_err()
            .code(),
        "scan.stride_too_small"
    );
    let short = LumaFrame::new(&data, 10, 11, 10);
    assert_eq!(
        scan_luma(&short, &ScanOptions::default())
            .unwrap_err()
            .code(),
        "scan.buffer_too_short"
    );
    let huge = LumaFrame::new(&data, 20_000, 20_000, 20_000);
    assert_eq!(
        scan_luma(&huge, &ScanOptions::default())
            .unwrap_err()
            .code(),
        "scan.too_large"
    );
}

#[test]
fn garbage_files_are_errors() {
    let canvas = code_canvas(PAYLOAD, 4);
    let img =
        image::GrayImage::from_raw(canvas.w as u32, canvas.h as u32, canvas.px.clone()).unwrap();
    let mut png = std::io::Cursor::new(Vec::new());
    img.write_to(&mut png, image::ImageFormat::Png).unwrap();
    let png = png.into_inner();

    let truncated = &png[..png.len() / 2];
    assert_eq!(
        scan_image_bytes(truncated, &ScanOptions::default())
            .unwrap_err()
            .code(),
        "scan.image_decode"
    );
    assert_eq!(
        scan_image_bytes(b"not an image", &ScanOptions::default())
            .unwrap_err()
            .code(),
        "scan.unsupported_format"
    );
    assert_eq!(
        scan_image_bytes(&[], &ScanOptions::default())
            .unwrap_err()
            .code(),
        "scan.unsupported_format"
    );

    // A PNG header claiming 20000×20000: refused from the header, before any pixel buffer.
    let mut claim = png[..33].to_vec();
    claim[16..20].copy_from_slice(&20_000u32.to_be_bytes());
    claim[20..24].copy_from_slice(&20_000u32.to_be_bytes());
    let err = scan_image_bytes(&claim, &ScanOptions::default()).unwrap_err();
    assert!(
        matches!(err.code(), "scan.too_large" | "scan.image_decode"),
        "{err:?}"
    );
}

#[test]
fn every_error_explains_itself_in_both_languages() {
    let errors = [
        ScanError::EmptyFrame {
            width: 0,
            height: 1,
        },
        ScanError::StrideTooSmall {
            stride: 1,
            width: 2,
        },
        ScanError::BufferTooShort { needed: 2, got: 1 },
        ScanError::TooLarge {
            width: 20_000,
            height: 20_000,
            max_dimension: MAX_DIMENSION,
            max_pixels: MAX_PIXELS,
        },
        ScanError::UnsupportedFormat,
        ScanError::ImageDecode("x".to_owned()),
        ScanError::EmptyRegion {
            width: 0,
            height: 5,
        },
        ScanError::RegionOutside {
            x: 1,
            y: 2,
            width: 3,
            height: 4,
            frame_width: 2,
            frame_height: 2,
        },
    ];
    for e in errors {
        assert!(e.code().starts_with("scan."));
        assert!(!e.message_zh().is_empty() && !e.message_en().is_empty());
    }
}

#[test]
fn baseline_effort_is_plain_rqrr() {
    let canvas = code_canvas(PAYLOAD, 6);
    let options = ScanOptions {
        effort: Effort::Baseline,
        ..ScanOptions::default()
    };
    assert_eq!(
        texts(&scan_luma(&canvas.frame(), &options).unwrap()),
        vec![PAYLOAD.to_owned()]
    );
}

#[test]
fn own_finder_reads_a_clean_code_alone() {
    // Our localisation and sampling alone (no rqrr detection) on our own threshold.
    let canvas = code_canvas(PAYLOAD, 6);
    let seen = own_finder_scan(&canvas);
    assert!(seen.plausible);
    assert_eq!(texts(&seen.codes), vec![PAYLOAD.to_owned()]);
}

/// What our finder and sampler alone (no rqrr detection) see on our own threshold of `canvas`.
fn own_finder_scan(canvas: &Canvas) -> super::finder::FinderScan {
    let plane = super::frame::Plane {
        width: canvas.w,
        height: canvas.h,
        pixels: canvas.px.clone(),
    };
    let bitmap = super::binarize::local_mean_threshold(&plane, plane.width / 10, 3);
    super::finder::scan_bitmap(
        &bitmap,
        1.0,
        &super::deadline::Deadline::at(
            std::time::Instant::now() + std::time::Duration::from_secs(60),
        ),
        false,
        &[],
    )
}

/// The codes [`own_finder_scan`] reads.
fn own_finder_codes(canvas: &Canvas) -> Vec<ScannedCode> {
    own_finder_scan(canvas).codes
}

/// A code of a given version with `module` px per module and a 4-module quiet zone.
fn versioned_canvas(text: &str, version: i16, module: usize) -> Canvas {
    let code = qrcode::QrCode::with_version(
        text.as_bytes(),
        qrcode::Version::Normal(version),
        qrcode::EcLevel::M,
    )
    .unwrap();
    let n = code.width();
    let colors = code.to_colors();
    let side = (n + 8) * module + 40;
    let mut canvas = Canvas::new(side, side, 255);
    for y in 0..side {
        for x in 0..side {
            let (mx, my) = ((x / module) as i64 - 4, (y / module) as i64 - 4);
            let (mx, my) = (mx - 20 / module as i64, my - 20 / module as i64);
            if mx >= 0
                && my >= 0
                && (mx as usize) < n
                && (my as usize) < n
                && colors[my as usize * n + mx as usize] == qrcode::Color::Dark
            {
                canvas.px[y * side + x] = 0;
            }
        }
    }
    canvas
}

#[test]
fn own_finder_reads_codes_turned_by_45_degrees() {
    // Runs through a finder turned by 45° cross its squares diagonally: the module size they
    // give is √2 too large unless corrected by the code's own axes, and the estimated size is
    // then short by several versions (version 5 would be taken for version 2 or 3).
    for version in [5i16, 9] {
        let canvas = versioned_canvas(PAYLOAD, version, 5);
        let turned = rotate(&canvas, 45.0);
        let codes = own_finder_codes(&turned);
        assert_eq!(texts(&codes), vec![PAYLOAD.to_owned()], "version {version}");
        assert_eq!(codes[0].version, Some(version as u8));
    }
}

#[test]
fn own_finder_reads_a_turned_version_20_code() {
    // Turned by 30°, its finders' runs a sixth too long: the size estimate and the version
    // blocks' sampling step both depend on the axis correction. (The same code under `tilt`
    // is not read yet: its alignment patterns drift further from the global estimate than
    // the piecewise search reaches.)
    let canvas = versioned_canvas(PAYLOAD, 20, 4);
    let turned = rotate(&canvas, 30.0);
    let codes = own_finder_codes(&turned);
    assert_eq!(texts(&codes), vec![PAYLOAD.to_owned()]);
    assert_eq!(codes[0].version, Some(20));
}

#[test]
fn own_finder_reads_a_turned_code_in_perspective() {
    // Perspective and a turn together: the bottom-right alignment pattern is off its affine
    // estimate, and the sampling depends on locating its centre to a fraction of a module.
    let canvas = versioned_canvas(PAYLOAD, 4, 6);
    for degrees in [20.0, 45.0, 160.0] {
        let view = rotate(&tilt(&canvas), degrees);
        assert_eq!(
            texts(&own_finder_codes(&view)),
            vec![PAYLOAD.to_owned()],
            "{degrees}°"
        );
    }
}

#[test]
fn half_width_katakana_in_shift_jis_becomes_text() {
    // "ﾃﾞｻﾞｲﾝQR" in Shift_JIS: ﾃ 0xC3, ﾞ 0xDE, ｻ 0xBB, ﾞ 0xDE, ｲ 0xB2, ﾝ 0xDD.
    let sjis = [0xC3, 0xDE, 0xBB, 0xDE, 0xB2, 0xDD, b'Q', b'R'];
    assert_eq!(super::pipeline::text_of(&sjis).as_deref(), Some("ﾃﾞｻﾞｲﾝQR"));
    assert_eq!(
        super::pipeline::text_of(b"WG1:ok").as_deref(),
        Some("WG1:ok")
    );
    // Kanji (double-byte Shift_JIS: 入 0x93FC, 力 0x97CD) becomes text; bytes that are neither
    // UTF-8 nor Shift_JIS stay bytes only.
    assert_eq!(
        super::pipeline::text_of(&[0x93, 0xFC, 0x97, 0xCD, b'Q', b'R']).as_deref(),
        Some("入力QR")
    );
    assert_eq!(super::pipeline::text_of(&[0xFF, 0x00, 0xC3]), None);
}

/// A steep view of a label lying on a table: the far edge a little over half as long as the
/// near one and the whole code foreshortened to about 60 % of its height.
fn steep(src: &Canvas) -> Canvas {
    let (w, h) = (src.w as f64, src.h as f64);
    let out = [
        (0.25 * w, 0.38 * h),
        (0.78 * w, 0.34 * h),
        (w, 0.98 * h),
        (0.02 * w, h),
    ];
    let square = [(0.0, 0.0), (w, 0.0), (w, h), (0.0, h)];
    let inverse = super::finder::Homography::quad_to_quad(out, square).unwrap();
    warp(src, src.w, src.h, |x, y| {
        let (sx, sy) = inverse.apply(f64::from(x), f64::from(y));
        (sx as f32, sy as f32)
    })
}

#[test]
fn own_finder_reads_a_version_1_code_seen_steeply() {
    // Version 1 has no alignment pattern: under strong perspective the parallelogram's fourth
    // corner is modules away from the real one. The format information still reads (it lies
    // beside the three finders), and the fourth-corner search finds where the data decodes.
    for degrees in [0.0, 30.0, 200.0] {
        let canvas = versioned_canvas("WG1:v1", 1, 12);
        let view = rotate(&steep(&canvas), degrees);
        let codes = own_finder_codes(&view);
        assert_eq!(texts(&codes), vec!["WG1:v1".to_owned()], "{degrees}°");
        assert_eq!(codes[0].version, Some(1));
    }
}

#[test]
fn a_large_photo_is_read_by_the_coarse_pass_and_small_codes_beside_it_too() {
    // A 2000×1500 photo: a large code (14 px modules, read at a quarter of the pixels by the
    // coarse pass) and a small one (5 px modules, 2 px at the coarse scale: left to the pass
    // at the working size, which runs because the small code's finders stay unexplained).
    let (w, h) = (2000usize, 1500usize);
    let mut canvas = Canvas::new(w, h, 200);
    draw_code(&mut canvas, "WG1:large", 14, 100, 100, 20, 230);
    draw_code(&mut canvas, "WG1:small-code-beside", 5, 1400, 900, 20, 230);
    let mut found = texts(&scan(&canvas));
    found.sort();
    assert_eq!(
        found,
        vec!["WG1:large".to_owned(), "WG1:small-code-beside".to_owned()]
    );
}

/// A label seen from the side and below (as in the BoofCV perspective photos): squeezed to
/// `squeeze` of its width and sheared so its top edge falls by `shear` px per px across.
fn sheared(src: &Canvas, squeeze: f32, rise: f32) -> Canvas {
    let w = (src.w as f32 * squeeze).ceil() as usize;
    let offset = rise * w as f32;
    let h = src.h + offset.ceil() as usize;
    warp(src, w, h, |x, y| (x / squeeze, y - offset + rise * x))
}

#[test]
fn own_finder_reads_a_code_squeezed_and_sheared_by_a_side_view() {
    // Seen from the side, a finder's vertical run through its centre is nearly twice its
    // horizontal one (the old check refused runs more than 60 % apart), and the code's axes meet
    // at about 54° (cos 0.59; the old triple check refused cos > 0.55).
    let canvas = versioned_canvas("WG1:side-view", 2, 8);
    for degrees in [0.0, 90.0] {
        let view = rotate(&sheared(&canvas, 0.51, 0.71), degrees);
        assert_eq!(
            texts(&own_finder_codes(&view)),
            vec!["WG1:side-view".to_owned()],
            "{degrees}°"
        );
    }
}

#[test]
fn reads_a_small_code_on_a_dark_card() {
    // A small printed code with a narrow white margin on a black card, slightly blurred: in a
    // window a tenth of the frame wide the card's black pulls the mean below the code's grey
    // dark modules, so only the small-window pass sees its finders.
    let mut canvas = Canvas::new(900, 560, 25);
    draw_code(&mut canvas, "WG1:dark-card", 3, 300, 200, 40, 235);
    draw_code(&mut canvas, "WG1:dark-card-2", 3, 500, 200, 40, 235);
    let blurred = box_blur(&canvas, 1);
    let mut found = texts(&scan(&blurred));
    found.sort();
    assert_eq!(
        found,
        vec!["WG1:dark-card".to_owned(), "WG1:dark-card-2".to_owned()]
    );
}

/// A lone finder pattern (7×7 modules) with its top-left corner at (x, y).
fn draw_finder(canvas: &mut Canvas, module: usize, x: usize, y: usize) {
    for my in 0..7 {
        for mx in 0..7 {
            let ring = mx.min(my).min(6 - mx).min(6 - my);
            let value = if ring == 1 { 255 } else { 0 };
            for py in 0..module {
                for px in 0..module {
                    canvas.px[(y + my * module + py) * canvas.w + x + mx * module + px] = value;
                }
            }
        }
    }
}

#[test]
fn two_finders_of_an_unread_code_keep_the_frame_unexplained() {
    // A read code and, beside it, two finders of another code whose third finder was not seen
    // (the coarse pass on boofcv-nominal image045): two lone finders alone are not enough to go
    // on looking (three are), so the pair stands for its code by the point between them.
    let mut canvas = Canvas::new(700, 400, 255);
    draw_code(&mut canvas, "WG1:read", 5, 20, 20, 0, 255);
    draw_finder(&mut canvas, 5, 420, 60);
    draw_finder(&mut canvas, 5, 420 + 18 * 5, 60);
    let seen = own_finder_scan(&canvas);
    assert_eq!(texts(&seen.codes), vec!["WG1:read".to_owned()]);
    let outside: Vec<_> = seen.unexplained.iter().filter(|p| p.0 > 400.0).collect();
    assert_eq!(outside.len(), 3, "{:?}", seen.unexplained);
    // The point between the two finders (centres at 437.5 and 527.5, row 77.5).
    assert!(
        outside
            .iter()
            .any(|p| (p.0 - 482.5).abs() < 2.0 && (p.1 - 77.5).abs() < 2.0)
    );
}

#[test]
fn a_big_frame_with_row_padding_is_read_in_place_with_frame_coordinates() {
    // Larger than the working size, so the frame is shrunk straight from its strided rows; the
    // padding bytes are black, so reading them as pixels would show.
    let mut canvas = Canvas::new(2400, 1800, 255);
    draw_code(&mut canvas, PAYLOAD, 8, 1500, 1100, 0, 255);
    let stride = canvas.w + 64;
    let mut data = vec![0u8; stride * canvas.h];
    for (row, src) in data.chunks_mut(stride).zip(canvas.px.chunks(canvas.w)) {
        row[..canvas.w].copy_from_slice(src);
    }
    let frame = LumaFrame::new(&data, canvas.w as u32, canvas.h as u32, stride as u32);
    let codes = scan_luma(&frame, &opts()).unwrap();
    assert_eq!(texts(&codes), vec![PAYLOAD.to_owned()]);
    let n = qrcode::QrCode::new(PAYLOAD.as_bytes()).unwrap().width() as f32;
    // The code's modules start 4 quiet modules of 8 px in; its corners, in frame pixels.
    let (x0, y0) = (1500.0 + 32.0, 1100.0 + 32.0);
    let side = n * 8.0;
    let expected = [
        (x0, y0),
        (x0 + side, y0),
        (x0 + side, y0 + side),
        (x0, y0 + side),
    ];
    for corner in expected {
        assert!(
            codes[0]
                .corners
                .iter()
                .any(|c| (c.0 - corner.0).abs() < 12.0 && (c.1 - corner.1).abs() < 12.0),
            "{corner:?} not among {:?}",
            codes[0].corners
        );
    }
}

#[test]
fn frames_of_extreme_shapes_and_strides_scan_without_panicking() {
    // Thin, tall, one-pixel and odd-strided frames, each above and below the working size, with
    // noise, flat grey and stripes: the resampling, threshold and finder must stay in bounds.
    let shapes = [
        (8192usize, 1usize, 8192usize),
        (1, 8192, 1),
        (8192, 2, 8200),
        (2, 8192, 3),
        (1281, 1, 1281),
        (1, 1, 1),
        (3000, 7, 3001),
        (7, 3000, 64),
        (1283, 1279, 1290),
        (2561, 3, 2561),
    ];
    for (w, h, stride) in shapes {
        for fill in 0..3u64 {
            let mut state = fill * 7919 + (w * h) as u64;
            let data: Vec<u8> = (0..stride * (h - 1) + w)
                .map(|i| match fill {
                    0 => {
                        state = state
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        (state >> 56) as u8
                    }
                    1 => 128,
                    _ => {
                        if (i % stride) / 3 % 2 == 0 {
                            0
                        } else {
                            255
                        }
                    }
                })
                .collect();
            let frame = LumaFrame::new(&data, w as u32, h as u32, stride as u32);
            let codes = scan_luma(&frame, &ScanOptions::default());
            assert!(
                codes.is_ok(),
                "{w}×{h} stride {stride} fill {fill}: {codes:?}"
            );
        }
    }
}

/// Three codes side by side on one 1280×720 frame, with their texts.
fn three_codes() -> (Canvas, [&'static str; 3]) {
    let texts = [
        "WG1:machine:A",
        "SH-2026-000123",
        "https://registry.example.cn/q?id=7",
    ];
    let mut canvas = Canvas::new(1280, 720, 200);
    draw_code(&mut canvas, texts[0], 6, 40, 200, 20, 240);
    draw_code(&mut canvas, texts[1], 6, 460, 200, 20, 240);
    draw_code(&mut canvas, texts[2], 6, 880, 200, 20, 240);
    (canvas, texts)
}

#[test]
fn the_live_mode_asking_for_one_code_returns_the_code_of_a_frame() {
    let canvas = code_canvas(PAYLOAD, 5);
    let options = ScanOptions {
        expected: ExpectedCodes::One,
        ..opts()
    };
    assert_eq!(
        texts(&scan_luma(&canvas.frame(), &options).unwrap()),
        vec![PAYLOAD.to_owned()]
    );
    // Asked for one code among three, it stops at the first that decodes.
    let (canvas, all) = three_codes();
    let found = texts(&scan_luma(&canvas.frame(), &options).unwrap());
    assert!(!found.is_empty() && found.len() < 3, "{found:?}");
    assert!(found.iter().all(|t| all.contains(&t.as_str())));
}

#[test]
fn the_photo_mode_returns_every_code_of_a_frame() {
    let (canvas, all) = three_codes();
    let options = ScanOptions {
        expected: ExpectedCodes::All,
        ..opts()
    };
    let mut found = texts(&scan_luma(&canvas.frame(), &options).unwrap());
    found.sort();
    let mut want: Vec<String> = all.iter().map(|t| (*t).to_owned()).collect();
    want.sort();
    assert_eq!(found, want);
}

#[test]
fn a_region_scans_only_its_part_and_keeps_frame_coordinates() {
    let (canvas, all) = three_codes();
    // The middle code only: it is drawn from x = 460 with 6 px modules.
    let region = Region {
        x: 420,
        y: 150,
        width: 400,
        height: 420,
    };
    let options = ScanOptions {
        region: Some(region),
        ..opts()
    };
    let codes = scan_luma(&canvas.frame(), &options).unwrap();
    assert_eq!(texts(&codes), vec![all[1].to_owned()]);
    // Its corners are where it is in the whole frame (the quiet zone is 4 modules).
    let (x, y) = codes[0].corners[0];
    assert!((x - (460.0 + 24.0)).abs() < 4.0, "{x}");
    assert!((y - (200.0 + 24.0)).abs() < 4.0, "{y}");
    // The timed scan reads the same region.
    let (timed, _) = scan_luma_timed(&canvas.frame(), &options).unwrap();
    assert_eq!(timed, codes);
    // A region holding no code finds nothing, though the frame has three.
    let empty = ScanOptions {
        region: Some(Region {
            x: 0,
            y: 0,
            width: 1280,
            height: 150,
        }),
        ..opts()
    };
    assert!(scan_luma(&canvas.frame(), &empty).unwrap().is_empty());
}

#[test]
fn a_region_in_a_padded_frame_reads_in_place() {
    let (canvas, all) = three_codes();
    let stride = canvas.w + 31;
    let mut data = vec![0u8; stride * (canvas.h - 1) + canvas.w];
    for y in 0..canvas.h {
        data[y * stride..y * stride + canvas.w]
            .copy_from_slice(&canvas.px[y * canvas.w..(y + 1) * canvas.w]);
    }
    let frame = LumaFrame::new(&data, canvas.w as u32, canvas.h as u32, stride as u32);
    // The last code, up to the frame's bottom-right corner (the last row stops at the width).
    let options = ScanOptions {
        region: Some(Region {
            x: 840,
            y: 100,
            width: 440,
            height: 620,
        }),
        ..opts()
    };
    assert_eq!(
        texts(&scan_luma(&frame, &options).unwrap()),
        vec![all[2].to_owned()]
    );
}

#[test]
fn bad_regions_are_refused() {
    let (canvas, _) = three_codes();
    let region = |x, y, width, height| ScanOptions {
        region: Some(Region {
            x,
            y,
            width,
            height,
        }),
        ..opts()
    };
    for (x, y, w, h) in [(0, 0, 0, 10), (5, 5, 10, 0), (0, 0, 0, 0)] {
        let e = scan_luma(&canvas.frame(), &region(x, y, w, h)).unwrap_err();
        assert_eq!(e.code(), "scan.empty_region");
    }
    let file = {
        let mut png = std::io::Cursor::new(Vec::new());
        image::GrayImage::from_raw(1280, 720, canvas.px.clone())
            .unwrap()
            .write_to(&mut png, image::ImageFormat::Png)
            .unwrap();
        png.into_inner()
    };
    for (x, y, w, h) in [
        (0, 0, 1281, 720),
        (0, 0, 1280, 721),
        (1280, 0, 1, 1),
        (0, 720, 1, 1),
        (u32::MAX, 0, 1, 1),
        (1, 1, u32::MAX, u32::MAX),
        (u32::MAX, u32::MAX, u32::MAX, u32::MAX),
    ] {
        let e = scan_luma(&canvas.frame(), &region(x, y, w, h)).unwrap_err();
        assert_eq!(e.code(), "scan.region_outside", "{x} {y} {w} {h}");
        assert!(scan_luma_timed(&canvas.frame(), &region(x, y, w, h)).is_err());
        assert_eq!(
            scan_image_bytes(&file, &region(x, y, w, h))
                .unwrap_err()
                .code(),
            "scan.region_outside"
        );
    }
    // The whole frame as a region is the frame.
    assert_eq!(
        scan_luma(&canvas.frame(), &region(0, 0, 1280, 720))
            .unwrap()
            .len(),
        3
    );
}

/// A sheet of 24 labels in one frame: 72 finders, more than an ordinary frame keeps, and every
/// code read in the photo mode (the finders of neighbouring labels line up as well as a code's
/// own, so only triples whose timing patterns show are tried, and each gets its attempt).
#[test]
fn every_code_on_a_sheet_of_labels_is_read() {
    let mut canvas = Canvas::new(1280, 960, 225);
    let mut want = Vec::new();
    for row in 0..4 {
        for col in 0..6 {
            let text = format!("SH-2026-{:06}", 100 * row + col);
            draw_code(
                &mut canvas,
                &text,
                5,
                20 + col * 210,
                30 + row * 235,
                25,
                235,
            );
            want.push(text);
        }
    }
    let options = ScanOptions {
        expected: ExpectedCodes::All,
        ..opts()
    };
    let mut found = texts(&scan_luma(&canvas.frame(), &options).unwrap());
    found.sort();
    want.sort();
    assert_eq!(found, want);
}

/// A 640×480 scene of `background` with a code (modules of 5 px) drawn `dark` on `light` near its
/// middle, blurred by one pixel and given sensor noise of ±`noise`.
fn exposed_scene(background: u8, dark: u8, light: u8, noise: i32) -> Canvas {
    let mut canvas = Canvas::new(640, 480, background);
    draw_code(&mut canvas, PAYLOAD, 5, 150, 60, dark, light);
    let mut blurred = box_blur(&canvas, 1);
    add_noise(&mut blurred, noise, 18);
    blurred
}

/// An under-exposed frame: the label's white is level 17 and its ink level 4 (a contrast of 13,
/// under the local-mean threshold's fixed offset of 8 on each side of the mean).
#[test]
fn reads_a_code_dark_on_dark() {
    let canvas = exposed_scene(9, 4, 17, 2);
    assert_eq!(texts(&scan(&canvas)), vec![PAYLOAD.to_owned()]);
}

/// An over-exposed frame: the label's white clipped at 255 and its ink at level 242.
#[test]
fn reads_a_washed_out_code() {
    let canvas = exposed_scene(250, 242, 255, 2);
    assert_eq!(texts(&scan(&canvas)), vec![PAYLOAD.to_owned()]);
}

/// A strong gradient across the frame: the light falls from full to a fiftieth (with the cube of
/// the distance), so the whole code lies in shade, its left edge in deep shade (a contrast of a
/// few levels) and its right edge in a contrast of about 45.
#[test]
fn reads_a_code_under_a_strong_gradient() {
    let lit_scene = exposed_scene(200, 0, 255, 0);
    let mut canvas = Canvas::new(lit_scene.w, lit_scene.h, 0);
    for y in 0..canvas.h {
        for x in 0..canvas.w {
            let t = x as f32 / canvas.w as f32;
            let light = 0.02 + 0.98 * t * t * t;
            let v = (f32::from(lit_scene.px[y * canvas.w + x]) + 10.0) * light;
            canvas.px[y * canvas.w + x] = v.round().clamp(0.0, 255.0) as u8;
        }
    }
    add_noise(&mut canvas, 1, 7);
    assert_eq!(texts(&scan(&canvas)), vec![PAYLOAD.to_owned()]);
}

/// A dense code (version 10) with modules of 4 px, blurred, in a 3200×1200 photo: the detail
/// plane (half the frame) sees its finders with modules of about 2 px, too soft to sample; a look
/// at the frame's own pixels around those finders reads it.
#[test]
fn a_dense_code_in_a_big_photo_is_read_at_the_frames_own_scale() {
    let text = "WG1:".to_owned() + &"SH-2026-000123;310101199001011234;".repeat(6);
    let mut canvas = Canvas::new(3200, 1200, 200);
    draw_code(&mut canvas, &text, 4, 1700, 500, 30, 230);
    let mut blurred = box_blur(&canvas, 1);
    add_noise(&mut blurred, 6, 11);
    assert_eq!(texts(&scan(&blurred)), vec![text]);
}

/// [`three_codes`] scanned in the photo mode against a deadline of `limit` units of work (pixels
/// thresholded, scanned or handed to rqrr; grid modules sampled or decoded) instead of time: the
/// codes' texts (sorted), whether the scan says it stopped at its budget, the work done and the
/// largest single step.
fn scan_with_work_limit(canvas: &Canvas, limit: u64) -> (Vec<String>, bool, u64, u64) {
    let deadline = super::deadline::Deadline::after_work(limit);
    let options = ScanOptions {
        expected: ExpectedCodes::All,
        ..opts()
    };
    let outcome = super::pipeline::run_until(&canvas.frame(), &options, &deadline);
    let mut found = texts(&outcome.codes);
    found.sort();
    let work = deadline.work().expect("a work deadline");
    (
        found,
        outcome.stopped_at_budget,
        work.used.get(),
        work.largest_step.get(),
    )
}

/// The budget is an upper bound: a scan stops within one short step of its deadline, whatever
/// step the deadline falls in. The deadline here counts work, so every cut point is tried without
/// timing: from "already passed" (no work at all) to past what the whole scan needs. The longest
/// step the scan may finish after its deadline is a band of threshold or finder-scan rows (a
/// decode attempt or a triple search row is shorter on this frame); rqrr, which cannot be
/// interrupted, starts only when its whole cost fits. A threshold or rqrr pass run to its end
/// (the old behaviour) overruns by a whole plane (921,600 units here).
#[test]
fn a_scan_stops_within_one_short_step_of_its_deadline() {
    let (canvas, all) = three_codes();
    let mut want: Vec<String> = all.iter().map(|t| (*t).to_owned()).collect();
    want.sort();
    let (found, stopped, needed, _) = scan_with_work_limit(&canvas, u64::MAX);
    assert_eq!(found, want);
    assert!(!stopped);
    let band = (super::binarize::ROWS_PER_CHECK * canvas.w) as u64;
    // An already passed deadline: nothing is done.
    let (found, stopped, used, _) = scan_with_work_limit(&canvas, 0);
    assert!(found.is_empty() && stopped && used == 0, "{found:?} {used}");
    let steps = 40;
    for i in 1..=steps {
        let limit = needed * i / steps;
        let (found, stopped, used, largest) = scan_with_work_limit(&canvas, limit);
        assert!(
            used <= limit + band,
            "limit {limit}: {used} units of work (largest step {largest})"
        );
        // Cut short, it says so; given all it needs, it reads every code.
        if limit < needed {
            assert!(stopped, "limit {limit} of {needed}: not marked as stopped");
        } else {
            assert_eq!(found, want);
        }
    }
}

/// The same codes at any budget that lets every candidate be tried: a scan that did not stop at
/// its budget has tried everything, so ten times the budget, or no limit at all, reads the same
/// codes and reports the same. (A deterministic deadline of work stands for the budget.)
#[test]
fn a_scan_that_tried_every_candidate_reads_the_same_codes_at_ten_times_the_budget() {
    // Three codes, and a sheet of labels (many finders: the crowded path).
    let (three, _) = three_codes();
    let mut sheet = Canvas::new(900, 500, 225);
    for row in 0..2 {
        for col in 0..4 {
            let text = format!("WG1:label:{row}-{col}");
            draw_code(
                &mut sheet,
                &text,
                4,
                10 + col * 220,
                20 + row * 240,
                25,
                235,
            );
        }
    }
    for canvas in [&three, &sheet] {
        let (all, stopped, needed, _) = scan_with_work_limit(canvas, u64::MAX);
        assert!(!stopped && !all.is_empty());
        for limit in [needed, needed * 10] {
            let (found, stopped, _, _) = scan_with_work_limit(canvas, limit);
            assert!(!stopped, "limit {limit}: stopped");
            assert_eq!(found, all, "limit {limit}");
        }
        // Short of what it needs, it says it stopped at the budget.
        let (_, stopped, _, _) = scan_with_work_limit(canvas, needed - 1);
        assert!(stopped);
    }
    // The wall-clock entry point reports it too: the photo mode on a small frame with a budget
    // that never binds ends because nothing is left to try.
    let outcome = scan_luma_report(
        &three.frame(),
        &ScanOptions {
            expected: ExpectedCodes::All,
            ..opts()
        },
    )
    .unwrap();
    assert_eq!(outcome.codes.len(), 3);
    assert!(!outcome.stopped_at_budget);
}
