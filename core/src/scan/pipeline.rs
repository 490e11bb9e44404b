//! The passes over one frame, from cheap to expensive, under a time budget; rqrr calls isolated so
//! that a panic inside the library becomes "nothing found".

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rqrr::{BitGrid, PreparedImage};

use super::binarize::{self, Bitmap};
use super::blur;
use super::deadline::Deadline;
use super::finder;
use super::frame::{LumaFrame, Plane};
use super::screen;
use super::{EccLevel, Effort, ExpectedCodes, ScanOptions, ScanReport, ScannedCode};

/// The longest side rqrr works on in the first passes: its flood fill and capstone grouping grow
/// faster than linearly with the pixel count, so a 12 MP photo is never handed to it whole.
const WORK_SIDE: usize = 1280;
/// The longest side of the optional full-resolution pass (tiny codes in big photos).
const DETAIL_SIDE: usize = 2600;

/// Detect grids in a prepared rqrr image and decode each while the deadline allows (the buffer
/// type is private to rqrr, so this is a macro rather than a function).
macro_rules! decode_all {
    ($prepared:expr, $scale:expr, $one:expr, $deadline:expr) => {{
        let mut codes = Vec::new();
        for grid in $prepared.detect_grids() {
            if $deadline.passed() {
                break;
            }
            let corners = grid
                .bounds
                .map(|p| (p.x as f32 * $scale, p.y as f32 * $scale));
            if let Some(code) = decode_grid(grid.grid, corners, $deadline) {
                codes.push(code);
                if $one {
                    break;
                }
            }
        }
        codes
    }};
}

/// The margin kept before the end of the budget: the scan stops starting work a tenth of the
/// budget before its end, and the one step under way then (a threshold band, a decode, a resample
/// or an rqrr call estimated to fit) ends within that margin.
pub(crate) fn deadline_for(options: &ScanOptions, start: Instant) -> Deadline {
    let budget = Duration::from_millis(u64::from(options.time_budget_ms));
    Deadline::at(start + budget - budget / 10)
}

pub(crate) fn run(frame: &LumaFrame<'_>, options: &ScanOptions) -> ScanReport {
    let deadline = deadline_for(options, Instant::now());
    run_until(frame, options, &deadline)
}

/// [`run`] with the deadline given (tests give one that counts work instead of time).
pub(crate) fn run_until(
    frame: &LumaFrame<'_>,
    options: &ScanOptions,
    deadline: &Deadline,
) -> ScanReport {
    // The early exit before any copy: a frame no larger than the working size where the screen
    // sees nothing finder-like has no readable code (bigger frames are screened after the
    // downscale, where the detail pass is still considered).
    let (w, h) = (frame.width as usize, frame.height as usize);
    if options.effort == Effort::Full
        && w.max(h) <= WORK_SIDE
        && !screen::any_finder_in(frame.data, w, h, frame.stride as usize)
        && binarize::Exposure::of(frame.data, w, h, frame.stride as usize)
            .and_then(binarize::Exposure::stretch)
            .is_none()
    {
        return ScanReport::default();
    }
    let codes = match options.effort {
        Effort::Baseline => {
            let mut found = Vec::new();
            // Plain rqrr has no budget.
            let unbounded = Deadline::at(Instant::now() + Duration::from_secs(3600));
            rqrr_grey(&frame.to_tight(), 1.0, &mut found, false, &unbounded);
            found
        }
        Effort::Full | Effort::Preprocessed => {
            full(frame, options, w.max(h) <= WORK_SIDE, deadline)
        }
    };
    ScanReport {
        codes,
        stopped_at_budget: deadline.stopped(),
    }
}

/// `frame` shrunk so its longest side is at most `side`, read in place (no tight copy of a big
/// frame), with its factor; a frame that already fits is copied tight.
fn fit_frame(frame: &LumaFrame<'_>, side: usize) -> (Plane, f32) {
    let (w, h) = (frame.width as usize, frame.height as usize);
    binarize::fit_rows(frame.data, w, h, frame.stride as usize, side)
        .unwrap_or_else(|| (frame.to_tight(), 1.0))
}

/// A pass: what it works on, and how it turns that into codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pass {
    /// Our finder and sampler on half the capped plane: most photographed codes have modules of
    /// 3 px or more at the working size, and this reads them at a quarter of the cost; when every
    /// finder-like pattern it saw is explained by a code, the frame is done.
    Coarse,
    /// Our finder and sampler on our local-mean bitmap of the capped plane.
    Finder,
    /// The same with a window about one finder wide ([`blur`]): blurred codes, and small codes
    /// on a dark surround (a label on a black card), whose light rings a wide window turns dark.
    Fine,
    /// rqrr's own threshold on the capped plane.
    Grey,
    /// rqrr on our local-mean bitmap of the capped plane.
    LocalMean,
    /// The capped plane of an under- or over-exposed frame with its grey levels stretched over
    /// the whole range ([`binarize::Exposure::stretch`]): the fixed offset of the threshold and the
    /// screen are then a small part of the code's contrast again. When no code was read, a frame
    /// with clipped highlights spread out ([`binarize::highlight_table`]), and one with deep
    /// shade where finder-like patterns were seen lifted ([`binarize::shade_table`]: a strong
    /// gradient of light). Nothing for other frames.
    Stretched,
    /// The part of [`Pass::Stretched`] that a frame's levels alone call for, before our finder
    /// pass when one code is wanted: a narrow frame stretched, a clipped one's highlights spread
    /// ([`exposure_tables`]). The rest waits for [`Pass::Stretched`], after the finder
    /// pass has said whether finder-like patterns are there.
    Exposed,
    /// Half the capped plane (very large modules, screens, close-ups).
    Half,
    /// The negative of the capped plane (light-on-dark codes).
    Inverted,
    /// A quarter of the capped plane.
    Quarter,
    /// The plane at up to DETAIL_SIDE (tiny codes in big photos); when that is smaller than the
    /// frame, the frame's own pixels around each pair of fine finders it left unread
    /// ([`finder::FinderScan::fine_windows`]: dense codes on a sheet of labels).
    Detail,
    /// Twice the capped plane, for small frames (modules of 2–4 px).
    Double,
}

/// The grey-level tables of the exposure passes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Table {
    Stretch,
    Highlights,
    Shade,
}

/// The tables an exposure pass tries on a frame of `exposure`: a narrow frame stretched; when no
/// code was read, a clipped frame's highlights spread and, once the finder pass has looked
/// (`early` is the one-code mode's pass before it) and seen finder-like candidates, deep shade
/// lifted. The shade waits for the finder pass because a busy scene's darkest levels are deep
/// shade in most frames: placed first, the lifted plane cost a frame that the finder pass reads
/// in 4 ms another 10 ms (the bench's generated frame 1280×720-04).
fn exposure_tables(
    exposure: Option<binarize::Exposure>,
    early: bool,
    nothing_found: bool,
    candidates_seen: bool,
) -> Vec<Table> {
    let mut tables = Vec::new();
    if let Some(exposure) = exposure {
        if exposure.stretch().is_some() {
            tables.push(Table::Stretch);
        } else if nothing_found {
            if exposure.clipped() {
                tables.push(Table::Highlights);
            }
            if exposure.deep_shade() && candidates_seen && !early {
                tables.push(Table::Shade);
            }
        }
    }
    tables
}

/// How much darker than its neighbourhood's mean a pixel must be to count as dark: above sensor
/// noise, so flat areas do not turn into speckle (which also costs the finder scan time).
pub(crate) const OFFSET: i32 = 8;

/// The working size from which the coarse pass runs first (its half is still 400 px).
const COARSE_MIN_SIDE: usize = 800;

fn radius_for(plane: &Plane) -> usize {
    (plane.width.max(plane.height) / 10).clamp(12, 200)
}

/// `screened`: the frame already passed the early-exit screen at this size (in [`run`]), so it is
/// not screened again.
fn full(
    frame: &LumaFrame<'_>,
    options: &ScanOptions,
    screened: bool,
    deadline: &Deadline,
) -> Vec<ScannedCode> {
    let own = options.effort == Effort::Full;
    // One code wanted: every pass stops at the first code that decodes, and the scan with it.
    let one = options.expected == ExpectedCodes::One;
    let (frame_w, frame_h) = (frame.width as usize, frame.height as usize);
    let long_side = frame_w.max(frame_h);
    // A frame that already fits is the working plane itself (one tight copy); a bigger one is
    // shrunk to it straight from the frame's rows (no tight copy of the whole frame), and only
    // when a pass after the coarse one runs.
    let (work_w, work_h, scale) =
        binarize::fit_size(frame_w, frame_h, WORK_SIDE).unwrap_or((frame_w, frame_h, 1.0));
    let mut work: Option<Plane> = (scale <= 1.0).then(|| frame.to_tight());

    let mut passes = vec![
        Pass::Coarse,
        Pass::Finder,
        Pass::Stretched,
        Pass::Fine,
        Pass::Grey,
        Pass::LocalMean,
        Pass::Half,
        Pass::Inverted,
        Pass::Quarter,
    ];
    if !own || work_w.max(work_h) < COARSE_MIN_SIDE {
        passes.retain(|&p| p != Pass::Coarse);
    }
    // One code wanted (the live preview, whose budget is short): the exposure pass goes before
    // our full finder pass, which on an over-exposed code spends the budget on attempts that do
    // not decode. Finding all codes, it follows that pass (a photo whose code the finder pass
    // reads pays nothing for it).
    if one {
        let at = passes
            .iter()
            .position(|&p| p == Pass::Finder)
            .unwrap_or(passes.len());
        passes.insert(at, Pass::Exposed);
    }
    if scale > 1.0 {
        passes.push(Pass::Detail);
    } else if long_side <= blur::TINY_SIDE {
        // Modules of about one pixel: runs at this size are too short to confirm a finder, and
        // the finder pass there spends the budget on triples of data modules; twice the size
        // goes first (cheap at this size, and it reads larger modules as well).
        passes.insert(0, Pass::Double);
    } else if long_side <= WORK_SIDE / 2 + 100 {
        passes.push(Pass::Double);
    }
    // The early exit: nothing finder-like at the working scale means no pass there can read a
    // code; only tiny codes in big photos remain possible (the detail pass). The screen runs
    // after the coarse pass, whose own finder scan answers for the frames it reads.
    let mut screen_passed: Option<bool> = (screened && own).then_some(true);

    let mut found: Vec<ScannedCode> = Vec::new();
    let mut local_mean: Option<Bitmap> = None;
    // Half the working plane (for a big frame, the frame shrunk straight to that size), made by
    // the coarse pass and reused by the half pass.
    let mut half: Option<Plane> = None;
    // Whether our finder saw finder-like patterns at the working scale that no decoded code
    // explains (then a later pass may still find another code), and whether it saw any at all
    // (rqrr needs three capstones too: without any, its passes at that scale are skipped).
    let mut unexplained: Vec<(f32, f32)> = Vec::new();
    let mut any_finder_at_work = true;
    let mut any_candidate_at_work = true;
    let mut clock = RqrrClock {
        deadline,
        per_px: None,
        crowded: false,
    };
    let mut last: Option<Pass> = None;
    // The exposure tables already tried on this frame.
    let mut tried: Vec<Table> = Vec::new();
    let mut next = 0;
    while let Some(&pass) = passes.get(next) {
        next += 1;
        // Our own passes look at the deadline inside (thresholds every few rows, the finder scan
        // between rows and attempts) and give up cleanly; rqrr cannot be interrupted and starts
        // only when its estimated cost ends before the deadline ([`RqrrClock`]); resampling a
        // plane is the one other step that runs to its end once started (milliseconds at most).
        // No estimate guards our own passes: a wall-clock estimate grows with the machine's load
        // and skipped whole passes that would have read most codes in the time left.
        if one && !found.is_empty() {
            break;
        }
        // After the coarse pass two unexplained finders are enough to go on: at half size a
        // code's third finder is sometimes not confirmed (too few rows), and the full-size pass
        // reads it.
        let enough = if last == Some(Pass::Coarse) { 2 } else { 3 };
        if !found.is_empty()
            && !options.find_all
            && !still_unexplained(&unexplained, &found, enough)
        {
            break;
        }
        if deadline.passed() {
            break;
        }
        last = Some(pass);
        if pass == Pass::Detail {
            let f = long_side.div_ceil(DETAIL_SIDE).max(1);
            if (f as f32) < scale {
                let detail = if f == 1 {
                    frame.to_tight()
                } else {
                    binarize::downscale_rows(frame.data, frame_w, frame_h, frame.stride as usize, f)
                };
                if own {
                    let Some(bitmap) = binarize::local_mean_threshold_until(
                        &detail,
                        radius_for(&detail),
                        OFFSET,
                        deadline,
                    ) else {
                        continue;
                    };
                    let seen = finder::scan_bitmap(&bitmap, f as f32, deadline, one, &found);
                    clock.crowded |= seen.crowded;
                    merge(&mut found, seen.codes);
                    // Codes still too fine for the detail plane: a look at the frame's own
                    // pixels around each, limited to where their finders were seen.
                    if f > 1 {
                        for window in seen.fine_windows {
                            if (one && !found.is_empty()) || deadline.passed() {
                                break;
                            }
                            let centre =
                                ((window[0] + window[2]) / 2.0, (window[1] + window[3]) / 2.0);
                            if found.iter().any(|code| inside(&code.corners, centre)) {
                                continue;
                            }
                            let Some((plane, x0, y0)) = crop(frame, window) else {
                                continue;
                            };
                            let Some(bitmap) = binarize::local_mean_threshold_until(
                                &plane,
                                radius_for(&plane),
                                OFFSET,
                                deadline,
                            ) else {
                                continue;
                            };
                            let seen = finder::scan_bitmap(&bitmap, 1.0, deadline, one, &[]);
                            merge(&mut found, shifted(seen.codes, x0, y0));
                        }
                    }
                } else {
                    clock.run(detail.width * detail.height, || {
                        rqrr_grey(&detail, f as f32, &mut found, one, deadline)
                    });
                }
            }
            continue;
        }
        if pass == Pass::Coarse {
            // A big frame goes straight to half the working size (each pixel the mean of its
            // footprint in the frame): when this pass reads every code, the working plane is
            // never made. A frame that fits is the working plane, halved.
            let (small, s) = match &work {
                None => fit_frame(frame, WORK_SIDE / 2),
                Some(work) => (binarize::downscale(work, 2), scale * 2.0),
            };
            let Some(bitmap) =
                binarize::local_mean_threshold_until(&small, radius_for(&small), OFFSET, deadline)
            else {
                continue;
            };
            let seen = finder::scan_bitmap_coarse(&bitmap, s, deadline, one);
            clock.crowded |= seen.crowded;
            // Finder-like patterns at half the working size answer the screen's question for
            // the working size (a second look at every fourth row of the bigger plane).
            if seen.plausible {
                screen_passed = Some(true);
            }
            unexplained = seen.unexplained;
            merge(&mut found, seen.codes);
            half = Some(small);
            continue;
        }
        // The working plane when a pass first needs it; the screen guards every pass after the
        // coarse one.
        let work = work.get_or_insert_with(|| fit_frame(frame, WORK_SIDE).0);
        if pass == Pass::Stretched || pass == Pass::Exposed {
            // A frame that spans enough levels but where no code was read may be over-exposed
            // with its background not (the highlights are spread out), or lie under a strong
            // gradient of light where finder-like patterns were seen (the shade is lifted).
            let exposure =
                binarize::Exposure::of(&work.pixels, work.width, work.height, work.width);
            let mut kinds = exposure_tables(
                exposure,
                pass == Pass::Exposed,
                found.is_empty(),
                any_candidate_at_work,
            );
            // Each table once per frame (the early pass may have tried it).
            kinds.retain(|kind| !tried.contains(kind));
            tried.extend(kinds.iter().copied());
            for kind in kinds {
                let table = match kind {
                    Table::Stretch => match exposure.and_then(binarize::Exposure::stretch) {
                        Some(table) => table,
                        None => continue,
                    },
                    Table::Highlights => binarize::highlight_table(),
                    Table::Shade => binarize::shade_table(),
                };
                if (one && !found.is_empty()) || deadline.passed() {
                    break;
                }
                let stretched = binarize::apply_table(work, &table);
                // Screened on its own plane: the screen on the frame as it is misses a code
                // whose contrast is under its offset.
                if !screen::any_finder(&stretched) {
                    continue;
                }
                let mut any = true;
                if own {
                    let Some(bitmap) = binarize::local_mean_threshold_until(
                        &stretched,
                        radius_for(&stretched),
                        OFFSET,
                        deadline,
                    ) else {
                        continue;
                    };
                    let seen = finder::scan_bitmap(&bitmap, scale, deadline, one, &found);
                    clock.crowded |= seen.crowded;
                    // rqrr on the same plane only when our finder left something unread.
                    any = seen.plausible
                        && (seen.codes.is_empty()
                            || still_unexplained(&seen.unexplained, &seen.codes, 3));
                    merge(&mut found, seen.codes);
                }
                if any {
                    clock.run(stretched.width * stretched.height, || {
                        rqrr_grey(&stretched, scale, &mut found, one, deadline)
                    });
                }
            }
            continue;
        }
        if !*screen_passed.get_or_insert_with(|| screen::any_finder(work)) {
            continue;
        }
        let work = &*work;
        match pass {
            Pass::Finder => {
                if own {
                    let Some(bitmap) = binarize::local_mean_threshold_until(
                        work,
                        radius_for(work),
                        OFFSET,
                        deadline,
                    ) else {
                        continue;
                    };
                    let seen = if passes.contains(&Pass::Detail) {
                        finder::scan_bitmap_deferring(&bitmap, scale, deadline, one, &found)
                    } else {
                        finder::scan_bitmap(&bitmap, scale, deadline, one, &found)
                    };
                    clock.crowded |= seen.crowded;
                    // Finders too fine for the working plane left unread (a sheet of labels in
                    // a big photo): the detail plane goes next, before the passes at this size.
                    if seen.small >= 3
                        && let Some(at) = passes.iter().position(|&p| p == Pass::Detail)
                        && at > next
                    {
                        passes.remove(at);
                        passes.insert(next, Pass::Detail);
                    }
                    unexplained = seen.unexplained;
                    any_finder_at_work = seen.plausible;
                    any_candidate_at_work = seen.candidates > 0;
                    merge(&mut found, seen.codes);
                    local_mean = Some(bitmap);
                }
            }
            Pass::Fine => {
                if own {
                    let Some(seen) = blur::scan_fine(work, scale, deadline, one, &found) else {
                        continue;
                    };
                    unexplained = seen.unexplained;
                    merge(&mut found, seen.codes);
                }
            }
            // rqrr's own detection at the working scale runs unless our scan saw nothing
            // finder-like at all: it reads codes whose finders ours cannot confirm (blur, odd
            // shapes), but a frame without a single 1:1:3:1:1 run has no capstone for it either.
            Pass::Grey => {
                if any_candidate_at_work {
                    clock.run(work.width * work.height, || {
                        rqrr_grey(work, scale, &mut found, one, deadline)
                    });
                }
            }
            Pass::LocalMean => {
                if any_finder_at_work {
                    let bitmap = match local_mean.take() {
                        Some(b) => b,
                        None => match binarize::local_mean_threshold_until(
                            work,
                            radius_for(work),
                            OFFSET,
                            deadline,
                        ) {
                            Some(b) => b,
                            None => continue,
                        },
                    };
                    clock.run(bitmap.width * bitmap.height, || {
                        rqrr_bitmap(&bitmap, scale, &mut found, one, deadline)
                    });
                }
            }
            Pass::Inverted => {
                let inverted = binarize::invert(work);
                let mut any = true;
                if own {
                    let Some(bitmap) = binarize::local_mean_threshold_until(
                        &inverted,
                        radius_for(work),
                        OFFSET,
                        deadline,
                    ) else {
                        continue;
                    };
                    let seen = finder::scan_bitmap(&bitmap, scale, deadline, one, &found);
                    any = seen.plausible;
                    merge(&mut found, seen.codes);
                }
                if any {
                    clock.run(inverted.width * inverted.height, || {
                        rqrr_grey(&inverted, scale, &mut found, one, deadline)
                    });
                }
            }
            Pass::Half | Pass::Quarter => {
                let f = if pass == Pass::Half { 2 } else { 4 };
                if work.width >= 100 * f && work.height >= 100 * f {
                    // The coarse pass already ran our finder on the half plane.
                    let coarse = if f == 2 { half.take() } else { None };
                    let scanned = coarse.is_some();
                    let small = coarse.unwrap_or_else(|| binarize::downscale(work, f));
                    let s = scale * f as f32;
                    let mut any = true;
                    if own && !scanned {
                        let Some(bitmap) = binarize::local_mean_threshold_until(
                            &small,
                            radius_for(&small),
                            OFFSET,
                            deadline,
                        ) else {
                            continue;
                        };
                        let seen = finder::scan_bitmap(&bitmap, s, deadline, one, &found);
                        any = seen.plausible;
                        merge(&mut found, seen.codes);
                    }
                    if any {
                        clock.run(small.width * small.height, || {
                            rqrr_grey(&small, s, &mut found, one, deadline)
                        });
                    }
                }
            }
            // Handled above (they start from the frame, not from the working plane, or are
            // screened on their own plane).
            Pass::Coarse | Pass::Detail | Pass::Stretched | Pass::Exposed => {}
            Pass::Double => {
                let double = binarize::upscale2(work);
                let mut any = true;
                if own {
                    let Some(bitmap) = binarize::local_mean_threshold_until(
                        &double,
                        radius_for(&double),
                        OFFSET,
                        deadline,
                    ) else {
                        continue;
                    };
                    let seen = finder::scan_bitmap(&bitmap, 0.5, deadline, one, &found);
                    // rqrr on the same plane only when our finder left something unread (a
                    // large code it read costs rqrr tens of milliseconds to read again).
                    any = seen.plausible
                        && (seen.codes.is_empty()
                            || still_unexplained(&seen.unexplained, &seen.codes, 3));
                    merge(&mut found, seen.codes);
                }
                if any {
                    clock.run(double.width * double.height, || {
                        rqrr_grey(&double, 0.5, &mut found, one, deadline)
                    });
                }
            }
        }
    }
    found
}

/// The frame's pixels inside `window` (frame pixels: left, top, right, bottom; clipped to the
/// frame), copied tight, with the offset of its top-left pixel; `None` when under 32 px a side.
fn crop(frame: &LumaFrame<'_>, window: [f32; 4]) -> Option<(Plane, usize, usize)> {
    let (w, h) = (frame.width as usize, frame.height as usize);
    let clip = |v: f32, max: usize| (v.max(0.0) as usize).min(max);
    let (x0, y0) = (clip(window[0], w), clip(window[1], h));
    let (x1, y1) = (clip(window[2].ceil(), w), clip(window[3].ceil(), h));
    if x1 < x0 + 32 || y1 < y0 + 32 {
        return None;
    }
    let stride = frame.stride as usize;
    let mut pixels = Vec::with_capacity((x1 - x0) * (y1 - y0));
    for y in y0..y1 {
        pixels.extend_from_slice(frame.data.get(y * stride + x0..y * stride + x1)?);
    }
    Some((
        Plane {
            width: x1 - x0,
            height: y1 - y0,
            pixels,
        },
        x0,
        y0,
    ))
}

/// Codes found in a crop moved to the frame's pixels.
fn shifted(mut codes: Vec<ScannedCode>, x0: usize, y0: usize) -> Vec<ScannedCode> {
    for code in &mut codes {
        for corner in &mut code.corners {
            corner.0 += x0 as f32;
            corner.1 += y0 as f32;
        }
    }
    codes
}

/// When a call into rqrr may start (rqrr cannot be interrupted, and on a noisy frame one call
/// costs tens of milliseconds): before the deadline, and when its estimated cost ends before it.
/// The estimate is the pixels times the slowest per-pixel time of an rqrr call on this frame
/// (its content: noise and finder-like clutter make rqrr slow), or before the first call on this
/// frame [`FIRST_RQRR_FACTOR`] times the fastest per-pixel time of any rqrr call in this process
/// (the machine's speed, calibrated by use; load cannot raise it).
/// On a crowded frame (our finder saw more finders than it keeps for an ordinary one: a sheet of
/// labels) no call starts: rqrr groups capstones in time that grows far faster than their number
/// (830 ms on the generated sheet's working plane).
struct RqrrClock<'a> {
    deadline: &'a Deadline,
    /// Nanoseconds per pixel.
    per_px: Option<f64>,
    crowded: bool,
}

/// The first rqrr call on a frame is estimated at this many times the fastest per-pixel rate:
/// rqrr's cost per pixel varies with the content (a high_version photo's first call took 26 ms on
/// the working plane, about four times the fastest rate).
const FIRST_RQRR_FACTOR: f64 = 4.0;

/// The fastest per-pixel time of an rqrr call in this process, in picoseconds (`u64::MAX` before
/// the first).
static FASTEST_RQRR_PS: AtomicU64 = AtomicU64::new(u64::MAX);

impl RqrrClock<'_> {
    fn run(&mut self, pixels: usize, call: impl FnOnce()) {
        if self.crowded || self.deadline.passed() {
            return;
        }
        let per_px = self.per_px.or_else(|| {
            let ps = FASTEST_RQRR_PS.load(Ordering::Relaxed);
            (ps != u64::MAX).then_some(ps as f64 / 1000.0 * FIRST_RQRR_FACTOR)
        });
        let estimate = Duration::from_secs_f64(per_px.unwrap_or(0.0) * pixels as f64 * 1e-9);
        if !self.deadline.fits(estimate, pixels as u64) {
            return;
        }
        self.deadline.spend(pixels as u64);
        let start = Instant::now();
        call();
        let this = start.elapsed().as_secs_f64() * 1e9 / pixels.max(1) as f64;
        FASTEST_RQRR_PS.fetch_min(((this * 1000.0) as u64).max(1), Ordering::Relaxed);
        self.per_px = Some(self.per_px.map_or(this, |p| p.max(this)));
    }
}

/// Whether `enough` or more finder candidates lie outside every code found so far.
fn still_unexplained(finders: &[(f32, f32)], found: &[ScannedCode], enough: usize) -> bool {
    finders
        .iter()
        .filter(|&&p| !found.iter().any(|code| inside(&code.corners, p)))
        .count()
        >= enough
}

/// Whether `p` lies inside the quadrilateral (either winding).
pub(crate) fn inside(quad: &[(f32, f32); 4], p: (f32, f32)) -> bool {
    let mut sign = 0.0f32;
    for i in 0..4 {
        let a = quad[i];
        let b = quad[(i + 1) % 4];
        let cross = (b.0 - a.0) * (p.1 - a.1) - (b.1 - a.1) * (p.0 - a.0);
        if cross != 0.0 {
            if sign != 0.0 && cross.signum() != sign {
                return false;
            }
            sign = cross.signum();
        }
    }
    true
}

fn rqrr_grey(
    plane: &Plane,
    scale: f32,
    found: &mut Vec<ScannedCode>,
    one: bool,
    deadline: &Deadline,
) {
    let result = catch_unwind(AssertUnwindSafe(|| {
        let mut prepared =
            PreparedImage::prepare_from_greyscale(plane.width, plane.height, |x, y| plane.at(x, y));
        decode_all!(prepared, scale, one, deadline)
    }));
    if let Ok(codes) = result {
        merge(found, codes);
    }
}

fn rqrr_bitmap(
    bitmap: &Bitmap,
    scale: f32,
    found: &mut Vec<ScannedCode>,
    one: bool,
    deadline: &Deadline,
) {
    let result = catch_unwind(AssertUnwindSafe(|| {
        let mut prepared =
            PreparedImage::prepare_from_bitmap(bitmap.width, bitmap.height, |x, y| {
                bitmap.dark(x, y)
            });
        decode_all!(prepared, scale, one, deadline)
    }));
    if let Ok(codes) = result {
        merge(found, codes);
    }
}

thread_local! {
    /// Time spent in rqrr's decoding and error correction on this thread since the last
    /// [`take_decode_time`] (what [`super::scan_luma_timed`] reports).
    static DECODE_TIME: Cell<Duration> = const { Cell::new(Duration::ZERO) };
}

/// The decoding time accumulated on this thread, reset to zero.
pub(crate) fn take_decode_time() -> Duration {
    DECODE_TIME.with(|t| t.replace(Duration::ZERO))
}

/// Decode a sampled bit grid with rqrr (error correction included).
pub(crate) fn decode_grid<G: BitGrid>(
    grid: G,
    corners: [(f32, f32); 4],
    deadline: &Deadline,
) -> Option<ScannedCode> {
    decode_grid_or_format(grid, corners, deadline).ok()
}

/// The fastest time per grid module of an rqrr decode that succeeded, in
/// picoseconds (`u64::MAX` before the first), for grids under [`LARGE_GRID`] modules a side and
/// for larger ones: rqrr's syndromes cost more per module in the longer blocks with more parity
/// of large versions (a version 40 grid, 31,329 modules, took 20–29 ms here, about twice what the
/// small grids' rate gives), so a large grid is timed at twice the small grids' rate until a large
/// one has been timed. The fastest, not the latest: load cannot raise it.
static FASTEST_DECODE_PS: [AtomicU64; 2] = [AtomicU64::new(u64::MAX), AtomicU64::new(u64::MAX)];

/// Grids from this many modules a side (version 10) count as large for [`FASTEST_DECODE_PS`].
const LARGE_GRID: usize = 57;

/// The estimated time of rqrr's decode of a grid `size` modules a side: the process's fastest
/// rate for its size class, or the slowest this scan has seen when higher (a loaded machine, where
/// one version 40 decode took 40 ms of wall time); zero before any decode.
fn decode_estimate(size: usize, deadline: &Deadline) -> Duration {
    let modules = (size * size) as u64;
    let large_grid = size >= LARGE_GRID;
    let [small, large] = &FASTEST_DECODE_PS;
    let small = small.load(Ordering::Relaxed);
    let large = large.load(Ordering::Relaxed);
    let fastest = if !large_grid {
        small
    } else if large != u64::MAX {
        large
    } else {
        small.saturating_mul(2)
    };
    let fastest = if fastest >= u64::MAX / 2 { 0 } else { fastest };
    let ps = fastest.max(deadline.decode_ps(large_grid));
    Duration::from_nanos(ps.saturating_mul(modules) / 1000)
}

/// [`decode_grid`], telling on failure whether the format information was read (the grid is then
/// close to right and only some data modules are off: a slightly shifted resample may decode).
/// rqrr's decode cannot be interrupted: it starts only when its estimated cost (the grid's
/// modules times [`FASTEST_DECODE_PS`]) ends before the deadline.
pub(crate) fn decode_grid_or_format<G: BitGrid>(
    grid: G,
    corners: [(f32, f32); 4],
    deadline: &Deadline,
) -> Result<ScannedCode, bool> {
    let size = grid.size();
    let modules = (size * size) as u64;
    if !deadline.fits(decode_estimate(size, deadline), modules) {
        return Err(false);
    }
    deadline.spend(modules);
    let grid = rqrr::Grid::new(grid);
    let mut bytes = Vec::new();
    let start = Instant::now();
    let decoded = catch_unwind(AssertUnwindSafe(|| grid.decode_to(&mut bytes)));
    let spent = start.elapsed();
    DECODE_TIME.with(|t| t.set(t.get() + spent));
    let per_module =
        u64::try_from(spent.as_nanos().saturating_mul(1000) / u128::from(modules.max(1)))
            .unwrap_or(u64::MAX);
    let large_grid = size >= LARGE_GRID;
    deadline.note_decode_ps(large_grid, per_module);
    // Only a decode that succeeded corrected every block: a failing one stops at its first
    // uncorrectable block, and its rate says little about a whole grid's.
    if matches!(decoded, Ok(Ok(_)))
        && let Some(fastest) = FASTEST_DECODE_PS.get(usize::from(large_grid))
    {
        fastest.fetch_min(per_module.max(1), Ordering::Relaxed);
    }
    let meta = match decoded {
        Ok(Ok(meta)) => meta,
        Ok(Err(rqrr::DeQRError::DataEcc)) => return Err(true),
        _ => return Err(false),
    };
    let ecc_level = match meta.ecc_level {
        0 => Some(EccLevel::M),
        1 => Some(EccLevel::L),
        2 => Some(EccLevel::H),
        3 => Some(EccLevel::Q),
        _ => None,
    };
    Ok(ScannedCode {
        text: text_of(&bytes),
        bytes,
        corners,
        version: u8::try_from(meta.version.0).ok(),
        ecc_level,
    })
}

/// The payload as text: UTF-8 when it is valid UTF-8; otherwise Shift_JIS when the bytes are
/// valid Shift_JIS (Japanese codes: kanji mode and byte-mode Shift_JIS, half-width katakana
/// included); otherwise none.
pub(crate) fn text_of(bytes: &[u8]) -> Option<String> {
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Some(text.to_owned());
    }
    encoding_rs::SHIFT_JIS
        .decode_without_bom_handling_and_without_replacement(bytes)
        .map(std::borrow::Cow::into_owned)
}

/// Add codes not already found (same payload with its centre inside an earlier one's box).
pub(crate) fn merge(found: &mut Vec<ScannedCode>, codes: Vec<ScannedCode>) {
    for code in codes {
        let (cx, cy) = code.centre();
        let duplicate = found.iter().any(|f| {
            if f.bytes != code.bytes {
                return false;
            }
            let (fx, fy) = f.centre();
            let size = side(f).max(side(&code)).max(4.0);
            (fx - cx).hypot(fy - cy) < size * 0.5
        });
        if !duplicate {
            found.push(code);
        }
    }
}

fn side(code: &ScannedCode) -> f32 {
    let [a, b, _, d] = code.corners;
    ((b.0 - a.0).hypot(b.1 - a.1)).max((d.0 - a.0).hypot(d.1 - a.1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code_at(x: f32, y: f32, side: f32) -> ScannedCode {
        ScannedCode {
            text: Some("WG".to_owned()),
            bytes: b"WG".to_vec(),
            corners: [(x, y), (x + side, y), (x + side, y + side), (x, y + side)],
            version: Some(1),
            ecc_level: Some(EccLevel::M),
        }
    }

    /// The one-code mode's exposure pass before the finder pass stretches a narrow frame and
    /// spreads a clipped one's highlights, but leaves lifting deep shade to the pass after the
    /// finder pass, and that one only when the finder pass saw candidates and nothing was read.
    #[test]
    fn deep_shade_waits_for_the_finder_pass() {
        // A busy, well-exposed scene: levels from 0 to 255, so deep shade and clipped highlights.
        let busy: Vec<u8> = (0..64 * 64)
            .map(|i| match i % 64 {
                0..20 => 0,
                44.. => 255,
                x => (x * 10) as u8,
            })
            .collect();
        let busy = binarize::Exposure::of(&busy, 64, 64, 64);
        assert_eq!(
            exposure_tables(busy, true, true, true),
            vec![Table::Highlights]
        );
        assert_eq!(
            exposure_tables(busy, false, true, true),
            vec![Table::Highlights, Table::Shade]
        );
        assert_eq!(
            exposure_tables(busy, false, true, false),
            vec![Table::Highlights]
        );
        assert!(exposure_tables(busy, false, false, true).is_empty());
        // An under-exposed frame (levels 4 to 17) is stretched in either place.
        let dark: Vec<u8> = (0..64 * 64).map(|i| 4 + (i % 14) as u8).collect();
        let dark = binarize::Exposure::of(&dark, 64, 64, 64);
        assert_eq!(
            exposure_tables(dark, true, true, true),
            vec![Table::Stretch]
        );
        assert_eq!(
            exposure_tables(dark, false, false, true),
            vec![Table::Stretch]
        );
    }

    /// After the coarse pass read one code, a second code whose third finder the coarse pass did
    /// not confirm leaves two finders unexplained: that is enough to go on to the full-size
    /// pass, while after any other pass three are needed (noise pairs are common at full size).
    #[test]
    fn two_unexplained_finders_are_enough_only_after_the_coarse_pass() {
        let found = vec![code_at(100.0, 100.0, 200.0)];
        // Three finders inside the code read, two of the second code outside it.
        let finders = [
            (130.0, 130.0),
            (270.0, 130.0),
            (130.0, 270.0),
            (600.0, 600.0),
            (700.0, 600.0),
        ];
        assert!(still_unexplained(&finders, &found, 2));
        assert!(!still_unexplained(&finders, &found, 3));
        assert!(!still_unexplained(&finders[..4], &found, 2));
    }
}
