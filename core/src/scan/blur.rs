//! Blurred codes and small codes on a dark surround: a second finder pass at the working size
//! whose local-mean threshold uses a window about one finder wide instead of a tenth of the frame.
//!
//! Under blur a finder's one-module light ring turns mid-grey. Against the mean of a large window
//! (mostly paper around a small code) that grey counts as dark, the ring merges with the dark
//! ring and the centre, and the 1:1:3:1:1 runs are gone; against the mean of a window about as
//! wide as the finder itself (the mid-point of the finder's own dark and light levels) it stays
//! light. A small window cannot replace the large one: inside modules wider than the window the
//! plane is flat, and flat areas count as light, so large modules are lost. Hence a pass of its
//! own, run only when the regular passes have not explained every finder seen. The same holds for
//! a small code with a narrow white margin on a black card or a dark label box: the wide window's
//! mean falls below the code's grey modules.

use super::ScannedCode;
use super::binarize;
use super::deadline::Deadline;
use super::finder::{self, FinderScan};
use super::frame::Plane;
use super::pipeline::OFFSET;

/// The window radius of the fine threshold: a sixtieth of the plane's longer side, 8–40 px (21 px
/// on the 1280 px working plane: a finder of 3–5 px modules with a little of its surroundings).
pub(crate) fn fine_radius(plane: &Plane) -> usize {
    (plane.width.max(plane.height) / 60).clamp(8, 40)
}

/// Frames no longer than this (pixels) run the pass at twice the size right after the finder
/// pass instead of last: a whole code in so few pixels may have one-pixel modules (ZXing's
/// version 40 code in 177 × 177 px), which only the doubled plane can sample.
pub(crate) const TINY_SIDE: usize = 200;

/// Our finder and sampler on the fine-threshold bitmap of the working plane; corners are
/// multiplied by `scale`.
pub(crate) fn scan_fine(
    work: &Plane,
    scale: f32,
    deadline: &Deadline,
    one: bool,
    known: &[ScannedCode],
) -> Option<FinderScan> {
    let bitmap = binarize::local_mean_threshold_until(work, fine_radius(work), OFFSET, deadline)?;
    Some(finder::scan_bitmap(&bitmap, scale, deadline, one, known))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    const TEXT: &str = "WG1:machine:SH-2026-000777;welder:310101199001011234";

    /// A white frame with one code of `module` px at (ox, oy), box-blurred with `blur` px radius.
    fn blurred_frame(w: usize, h: usize, module: usize, blur: usize) -> Plane {
        let code = qrcode::QrCode::new(TEXT.as_bytes()).unwrap();
        let n = code.width();
        let colors = code.to_colors();
        let (ox, oy) = (w / 3, h / 3);
        let mut sharp = vec![255u8; w * h];
        for my in 0..n {
            for mx in 0..n {
                if colors[my * n + mx] != qrcode::Color::Dark {
                    continue;
                }
                for dy in 0..module {
                    for dx in 0..module {
                        sharp[(oy + my * module + dy) * w + ox + mx * module + dx] = 30;
                    }
                }
            }
        }
        let mut pixels = vec![255u8; w * h];
        for y in 0..h {
            for x in 0..w {
                let (mut sum, mut count) = (0u32, 0u32);
                for yy in y.saturating_sub(blur)..(y + blur + 1).min(h) {
                    for xx in x.saturating_sub(blur)..(x + blur + 1).min(w) {
                        sum += u32::from(sharp[yy * w + xx]);
                        count += 1;
                    }
                }
                pixels[y * w + x] = (sum / count) as u8;
            }
        }
        Plane {
            width: w,
            height: h,
            pixels,
        }
    }

    fn far() -> Deadline {
        Deadline::at(Instant::now() + Duration::from_secs(60))
    }

    #[test]
    fn reads_a_blurred_code_that_the_frame_wide_window_loses() {
        let plane = blurred_frame(1000, 700, 4, 2);
        let regular = (1000 / 10).clamp(12, 200);
        assert!(fine_radius(&plane) < regular / 4);
        // The regular window (a tenth of the frame) turns the finders' light rings dark.
        let bitmap = binarize::local_mean_threshold(&plane, regular, OFFSET);
        assert!(
            finder::scan_bitmap(&bitmap, 1.0, &far(), false, &[])
                .codes
                .is_empty()
        );
        let fine = scan_fine(&plane, 1.0, &far(), false, &[]).unwrap();
        let texts: Vec<_> = fine.codes.iter().filter_map(|c| c.text.clone()).collect();
        assert_eq!(texts, vec![TEXT.to_owned()]);
    }

    #[test]
    fn the_whole_scanner_reads_it() {
        let plane = blurred_frame(1000, 700, 4, 2);
        let frame = crate::scan::LumaFrame::new(&plane.pixels, 1000, 700, 1000);
        let options = crate::scan::ScanOptions {
            time_budget_ms: 60_000,
            ..crate::scan::ScanOptions::default()
        };
        let codes = crate::scan::scan_luma(&frame, &options).unwrap();
        let texts: Vec<_> = codes.iter().filter_map(|c| c.text.clone()).collect();
        assert_eq!(texts, vec![TEXT.to_owned()]);
    }
}
