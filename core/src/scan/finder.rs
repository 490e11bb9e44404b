//! Our own localisation and sampling: finder patterns found by 1:1:3:1:1 run scans with cross
//! checks, grouped in size-consistent triples, the bottom-right alignment pattern searched by
//! template, a perspective transform from module to pixel coordinates, and the sampled bit grid
//! handed to rqrr for decoding and error correction.

use std::time::Instant;

use super::deadline::Deadline;

use rqrr::SimpleGrid;

use super::ScannedCode;
use super::binarize::{Bitmap, run_end};
use super::pipeline::decode_grid_or_format;
use super::precheck::precheck;

/// At most this many finder candidates are kept per bitmap (bounds the triple search), unless more
/// are confirmed: a sheet of labels holds three finders per code, and every one is kept (up to
/// [`MAX_CONFIRMED`]), triples then formed only from finders within one code's reach.
const MAX_CANDIDATES: usize = 48;
/// The most confirmed finders kept on one bitmap (a photo of 100 codes and its noise).
const MAX_CONFIRMED: usize = 400;
/// The farthest two finders of one code can be apart, in modules (version 40 across its
/// diagonal, with a margin for perspective).
const MAX_SPAN_MODULES: f32 = 260.0;
/// At most this many triples are sampled and decoded per bitmap.
const MAX_ATTEMPTS: usize = 24;
/// Rows a finder must be met on to count as confirmed (noise rarely repeats on three rows).
const CONFIRMED: u32 = 3;

#[derive(Clone, Copy, Debug)]
struct Finder {
    x: f32,
    y: f32,
    module: f32,
    count: u32,
}

#[inline]
fn dark(bm: &Bitmap, x: i64, y: i64) -> bool {
    if x < 0 || y < 0 || x as usize >= bm.width || y as usize >= bm.height {
        return false;
    }
    bm.dark(x as usize, y as usize)
}

/// 1:1:3:1:1 within tolerance (`slack` is the allowed deviation per module, in modules).
fn ratio_ok(c: &[u32; 5], slack: f32) -> bool {
    let total: u32 = c.iter().sum();
    // Modules under ~1.4 px cannot be sampled; skipping them keeps speckle out of the search.
    if total < 10 || c.contains(&0) {
        return false;
    }
    let m = total as f32 / 7.0;
    let v = m * slack;
    (m - c[0] as f32).abs() < v
        && (m - c[1] as f32).abs() < v
        && (3.0 * m - c[2] as f32).abs() < 3.0 * v
        && (m - c[3] as f32).abs() < v
        && (m - c[4] as f32).abs() < v
}

/// Runs along a line through (x, y) in direction (dx, dy): returns the centre offset along the
/// line and the total length of the pattern, when it looks like a finder.
fn cross_check(bm: &Bitmap, x: i64, y: i64, dx: i64, dy: i64, max_run: u32) -> Option<(f32, u32)> {
    if !dark(bm, x, y) {
        return None;
    }
    let mut c = [0u32; 5];
    // Backwards from the centre: c[2] (dark), c[1] (light), c[0] (dark).
    let mut i = 0i64;
    while dark(bm, x - i * dx, y - i * dy) {
        c[2] += 1;
        i += 1;
        if c[2] > max_run * 3 {
            return None;
        }
    }
    while in_bounds(bm, x - i * dx, y - i * dy) && !dark(bm, x - i * dx, y - i * dy) {
        c[1] += 1;
        i += 1;
        if c[1] > max_run {
            return None;
        }
    }
    while dark(bm, x - i * dx, y - i * dy) {
        c[0] += 1;
        i += 1;
        if c[0] > max_run {
            return None;
        }
    }
    let back = c[2];
    // Forwards: rest of c[2], then c[3] (light), c[4] (dark).
    let mut i = 1i64;
    while dark(bm, x + i * dx, y + i * dy) {
        c[2] += 1;
        i += 1;
        if c[2] > max_run * 3 {
            return None;
        }
    }
    while in_bounds(bm, x + i * dx, y + i * dy) && !dark(bm, x + i * dx, y + i * dy) {
        c[3] += 1;
        i += 1;
        if c[3] > max_run {
            return None;
        }
    }
    while dark(bm, x + i * dx, y + i * dy) {
        c[4] += 1;
        i += 1;
        if c[4] > max_run {
            return None;
        }
    }
    if !ratio_ok(&c, 0.7) {
        return None;
    }
    let total: u32 = c.iter().sum();
    // Centre of the middle run in continuous coordinates, relative to the pixel's left/top edge.
    let centre = 1.0 - back as f32 + c[2] as f32 / 2.0;
    Some((centre, total))
}

#[inline]
fn in_bounds(bm: &Bitmap, x: i64, y: i64) -> bool {
    x >= 0 && y >= 0 && (x as usize) < bm.width && (y as usize) < bm.height
}

/// Rows of a bitmap scanned between two looks at the deadline.
const ROWS_PER_CHECK: usize = 32;

fn find_candidates(bm: &Bitmap, deadline: &Deadline) -> Vec<Finder> {
    let mut found: Vec<Finder> = Vec::new();
    let w = bm.width;
    // Every other row on big planes: a finder's centre is at least 6 rows tall there.
    let step = if bm.width * bm.height > 1_500_000 {
        2
    } else {
        1
    };
    for y in (0..bm.height).step_by(step) {
        // A big plane's scan takes milliseconds: it ends at the deadline with what it found.
        if y.is_multiple_of(ROWS_PER_CHECK) {
            if deadline.passed() {
                break;
            }
            deadline.spend((ROWS_PER_CHECK * w) as u64);
        }
        let Some(row) = bm.bits.get(y * w..(y + 1) * w) else {
            break;
        };
        // The last five finished runs (newest last), dark and light alternating; a dark run
        // ending with dark, light, dark, light, dark before it in 1:1:3:1:1 is a candidate. The
        // row ends in light (a dark run at the right edge ends there).
        let mut c = [0u32; 5];
        let mut dark = false;
        let mut start = 0usize;
        loop {
            let end = run_end(row, start, dark);
            c = [c[1], c[2], c[3], c[4], (end - start) as u32];
            if dark && ratio_ok(&c, 0.5) {
                consider(bm, &c, end, y, &mut found);
            }
            if end >= w {
                break;
            }
            dark = !dark;
            start = end;
        }
    }
    found.sort_by_key(|f| std::cmp::Reverse(f.count));
    let confirmed = found.iter().filter(|f| f.count >= CONFIRMED).count();
    if confirmed >= 3 {
        found.retain(|f| f.count >= CONFIRMED);
    }
    found.truncate(MAX_CANDIDATES.max(confirmed.min(MAX_CONFIRMED)));
    found
}

fn consider(bm: &Bitmap, c: &[u32; 5], end: usize, y: usize, found: &mut Vec<Finder>) {
    let total: u32 = c.iter().sum();
    let cx = end as f32 - c[4] as f32 - c[3] as f32 - c[2] as f32 / 2.0;
    let max_run = (total / 7 + 1) * 2 + 2;
    let Some((dy, vtotal)) = cross_check(bm, cx as i64, y as i64, 0, 1, max_run) else {
        return;
    };
    // Up to 2.5× apart: a label seen from the side is squeezed across and sheared, and a vertical
    // run through its finders comes out 1.7–2.1× the horizontal one (boofcv-perspective).
    if 2 * vtotal > 5 * total || 2 * total > 5 * vtotal {
        return;
    }
    let cy = y as f32 + dy;
    let Some((dx, htotal)) = cross_check(bm, cx as i64, cy.floor() as i64, 1, 0, max_run) else {
        return;
    };
    let cx = cx.floor() + dx;
    let module = (htotal + vtotal) as f32 / 14.0;
    // Newest first: a finder is met again on the next rows, so its entry is near the end.
    for f in found.iter_mut().rev() {
        if (f.x - cx).abs() <= module.max(f.module)
            && (f.y - cy).abs() <= module.max(f.module)
            && (f.module - module).abs() <= 0.5 * f.module.max(module).max(1.0)
        {
            let n = f.count as f32;
            f.x = (f.x * n + cx) / (n + 1.0);
            f.y = (f.y * n + cy) / (n + 1.0);
            f.module = (f.module * n + module) / (n + 1.0);
            f.count += 1;
            return;
        }
    }
    if found.len() < 400 {
        found.push(Finder {
            x: cx,
            y: cy,
            module,
            count: 1,
        });
    }
}

/// The largest ratio of module sizes among one code's three finders (perspective and blur).
const MODULE_SPREAD: f32 = 1.6;

/// A triple of finders in code order with the estimated size.
struct Triple {
    tl: Finder,
    tr: Finder,
    bl: Finder,
    ids: [usize; 3],
    dim: usize,
    score: f32,
}

fn dist(a: &Finder, b: &Finder) -> f32 {
    let (dx, dy) = (a.x - b.x, a.y - b.y);
    (dx * dx + dy * dy).sqrt()
}

fn make_triple(f: &[Finder], ids: [usize; 3]) -> Option<Triple> {
    let [i, j, k] = ids;
    let (a, b, c) = (*f.get(i)?, *f.get(j)?, *f.get(k)?);
    let sizes = [a.module, b.module, c.module];
    let max_m = sizes.iter().copied().fold(0.0f32, f32::max);
    let min_m = sizes.iter().copied().fold(f32::MAX, f32::min);
    if min_m <= 0.0 || max_m / min_m > MODULE_SPREAD {
        return None;
    }
    // The corner finder is opposite the longest side.
    let (dab, dbc, dac) = (dist(&a, &b), dist(&b, &c), dist(&a, &c));
    let (corner, p, q, cid, pid, qid) = if dbc >= dab && dbc >= dac {
        (a, b, c, i, j, k)
    } else if dac >= dab && dac >= dbc {
        (b, a, c, j, i, k)
    } else {
        (c, a, b, k, i, j)
    };
    let (ux, uy) = (p.x - corner.x, p.y - corner.y);
    let (vx, vy) = (q.x - corner.x, q.y - corner.y);
    let cross = ux * vy - uy * vx;
    let (tr, bl, trid, blid) = if cross > 0.0 {
        (p, q, pid, qid)
    } else {
        (q, p, qid, pid)
    };
    let top = dist(&corner, &tr);
    let left = dist(&corner, &bl);
    let (long, short) = (top.max(left), top.min(left));
    if short <= 0.0 || long / short > 1.8 {
        return None;
    }
    let cos = (ux * vx + uy * vy) / (top * left);
    // Axes up to ~49° off square: seen from the side the corner finder's angle opens to 120° and
    // more (boofcv-perspective: |cos| 0.54–0.59).
    if cos.abs() > 0.65 {
        return None;
    }
    // The module sizes come from horizontal and vertical runs through the finder centres; on a
    // code turned by θ those cross each finder's squares at a slant and come out longer by
    // 1 / max(|cos θ|, |sin θ|) (√2 at 45°). The code's own axes give θ: scale them back, or the
    // size estimate is short by up to 40 % and every rotated code is sampled with the wrong
    // dimension (and its version blocks with the wrong step).
    let axis = |x: f32, y: f32, len: f32| x.abs().max(y.abs()) / len;
    let f = (axis(ux, uy, top) + axis(vx, vy, left)) / 2.0;
    let (mut corner, mut tr, mut bl) = (corner, tr, bl);
    for finder in [&mut corner, &mut tr, &mut bl] {
        finder.module *= f;
    }
    let m_top = (corner.module + tr.module) / 2.0;
    let m_left = (corner.module + bl.module) / 2.0;
    let est = (top / m_top + left / m_left) / 2.0 + 7.0;
    if !(17.0..=185.0).contains(&est) {
        return None;
    }
    let version = ((est - 17.0) / 4.0).round().clamp(1.0, 40.0) as usize;
    let dim = 17 + 4 * version;
    let size_mismatch = max_m / min_m - 1.0;
    let leg_mismatch = long / short - 1.0;
    let score = size_mismatch * 2.0 + leg_mismatch + cos.abs()
        - 0.02 * (corner.count + tr.count + bl.count).min(60) as f32;
    Some(Triple {
        tl: corner,
        tr,
        bl,
        ids: [cid, trid, blid],
        dim,
        score,
    })
}

/// The 18-bit version information word of a version 7–40 (6 data bits, BCH(18,6) remainder of
/// x^12 + x^11 + x^10 + x^9 + x^8 + x^5 + x^2 + 1).
fn version_word(version: u32) -> u32 {
    let mut rem = version << 12;
    for bit in (12..18).rev() {
        if rem & (1 << bit) != 0 {
            rem ^= 0x1F25 << (bit - 12);
        }
    }
    (version << 12) | rem
}

/// The version whose word is nearest to `bits` (at most 2 bits apart: random bits come that
/// close to one of the 34 words about 2 % of the time), if any.
fn nearest_version(bits: u32) -> Option<usize> {
    (7..=40u32)
        .map(|v| (v, (version_word(v) ^ bits).count_ones()))
        .filter(|&(_, d)| d <= 2)
        .min_by_key(|&(_, d)| d)
        .map(|(v, _)| v as usize)
}

/// Read the version from the version information blocks beside the top-right and bottom-left
/// finders (sampled in each finder's own module size, so the code's size is not needed).
fn read_version(bm: &Bitmap, t: &Triple) -> Option<usize> {
    let unit = |a: &Finder, b: &Finder| {
        let d = dist(a, b).max(1e-3);
        (f64::from((b.x - a.x) / d), f64::from((b.y - a.y) / d))
    };
    let u = unit(&t.tl, &t.tr);
    let v = unit(&t.tl, &t.bl);
    let read = |f: &Finder, transposed: bool| {
        let m = f64::from(f.module);
        let mut bits = 0u32;
        for i in 0..18i32 {
            // Offsets from the finder centre in modules: the block is 3 wide and 6 tall beside the
            // top-right finder, and its transpose above the bottom-left one.
            let (a, b) = (f64::from(i % 3 - 7), f64::from(i / 3 - 3));
            let (ou, ov) = if transposed { (b, a) } else { (a, b) };
            let x = f64::from(f.x) + m * (ou * u.0 + ov * v.0);
            let y = f64::from(f.y) + m * (ou * u.1 + ov * v.1);
            if dark_at(bm, x, y) {
                bits |= 1 << i;
            }
        }
        nearest_version(bits)
    };
    read(&t.tr, false).or_else(|| read(&t.bl, true))
}

/// A projective transform (row-vector convention: [u v 1] · M).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Homography([[f64; 3]; 3]);

impl Homography {
    fn square_to_quad(p: [(f64, f64); 4]) -> Option<Self> {
        let [(x0, y0), (x1, y1), (x2, y2), (x3, y3)] = p;
        let dx3 = x0 - x1 + x2 - x3;
        let dy3 = y0 - y1 + y2 - y3;
        if dx3.abs() < 1e-9 && dy3.abs() < 1e-9 {
            return Some(Self([
                [x1 - x0, y1 - y0, 0.0],
                [x2 - x1, y2 - y1, 0.0],
                [x0, y0, 1.0],
            ]));
        }
        let (dx1, dx2, dy1, dy2) = (x1 - x2, x3 - x2, y1 - y2, y3 - y2);
        let den = dx1 * dy2 - dx2 * dy1;
        if den.abs() < 1e-12 {
            return None;
        }
        let a13 = (dx3 * dy2 - dx2 * dy3) / den;
        let a23 = (dx1 * dy3 - dx3 * dy1) / den;
        Some(Self([
            [x1 - x0 + a13 * x1, y1 - y0 + a13 * y1, a13],
            [x3 - x0 + a23 * x3, y3 - y0 + a23 * y3, a23],
            [x0, y0, 1.0],
        ]))
    }

    fn adjoint(&self) -> Self {
        let m = &self.0;
        let c = |r0: usize, c0: usize, r1: usize, c1: usize| {
            m[r0][c0] * m[r1][c1] - m[r0][c1] * m[r1][c0]
        };
        Self([
            [c(1, 1, 2, 2), -c(0, 1, 2, 2), c(0, 1, 1, 2)],
            [-c(1, 0, 2, 2), c(0, 0, 2, 2), -c(0, 0, 1, 2)],
            [c(1, 0, 2, 1), -c(0, 0, 2, 1), c(0, 0, 1, 1)],
        ])
    }

    fn then(&self, other: &Self) -> Self {
        let (a, b) = (&self.0, &other.0);
        let mut out = [[0.0; 3]; 3];
        for (r, row) in out.iter_mut().enumerate() {
            for (c, cell) in row.iter_mut().enumerate() {
                *cell = (0..3).map(|k| a[r][k] * b[k][c]).sum();
            }
        }
        Self(out)
    }

    pub(crate) fn quad_to_quad(src: [(f64, f64); 4], dst: [(f64, f64); 4]) -> Option<Self> {
        let to_square = Self::square_to_quad(src)?.adjoint();
        Some(to_square.then(&Self::square_to_quad(dst)?))
    }

    pub(crate) fn apply(&self, u: f64, v: f64) -> (f64, f64) {
        let m = &self.0;
        let w = u * m[0][2] + v * m[1][2] + m[2][2];
        if w.abs() < 1e-12 {
            return (f64::NAN, f64::NAN);
        }
        (
            (u * m[0][0] + v * m[1][0] + m[2][0]) / w,
            (u * m[0][1] + v * m[1][1] + m[2][1]) / w,
        )
    }
}

fn dark_at(bm: &Bitmap, x: f64, y: f64) -> bool {
    if !x.is_finite() || !y.is_finite() {
        return false;
    }
    dark(bm, floor(x), floor(y))
}

/// Whether a triple's two timing patterns (row and column 6 between the finders, alternating
/// dark and light) show at its estimated size or one version either side, sampled through the
/// affine map of its three finder centres: at least 70 % of the cells right on each line. Three
/// finders of different codes (the corners of neighbouring labels on a sheet line up as well as
/// a code's own) have paper or print between them, not a timing pattern.
fn timing_shows(bm: &Bitmap, t: &Triple) -> bool {
    let (tl, tr, bl) = (&t.tl, &t.tr, &t.bl);
    let fits = |dim: usize| -> bool {
        let span = (dim - 7) as f64;
        let at = |u: f64, v: f64| -> (f64, f64) {
            let (a, b) = ((u - 3.5) / span, (v - 3.5) / span);
            (
                f64::from(tl.x) + a * f64::from(tr.x - tl.x) + b * f64::from(bl.x - tl.x),
                f64::from(tl.y) + a * f64::from(tr.y - tl.y) + b * f64::from(bl.y - tl.y),
            )
        };
        let right = |i: usize| -> (bool, bool) {
            let want = i.is_multiple_of(2);
            let (x, y) = at(i as f64 + 0.5, 6.5);
            let row = dark_at(bm, x, y) == want;
            let (x, y) = at(6.5, i as f64 + 0.5);
            (row, dark_at(bm, x, y) == want)
        };
        // Six cells in the middle first (between two labels' finders that is paper or print),
        // then every cell.
        let mid = dim / 2;
        let (mut row, mut col) = (0usize, 0usize);
        for i in mid - 3..mid + 3 {
            let (r, c) = right(i);
            row += usize::from(r);
            col += usize::from(c);
        }
        if row < 5 || col < 5 {
            return false;
        }
        let cells = dim - 16;
        let (mut row, mut col) = (0usize, 0usize);
        for i in 8..dim - 8 {
            let (r, c) = right(i);
            row += usize::from(r);
            col += usize::from(c);
        }
        10 * row >= 7 * cells && 10 * col >= 7 * cells
    };
    [t.dim, t.dim + 4, t.dim.saturating_sub(4)]
        .into_iter()
        .filter(|&d| (21..=177).contains(&d))
        .any(fits)
}

/// `v.floor() as i64` without calling libm (`f64::floor` is a library call on targets without
/// SSE4.1, and the sampler and the alignment search floor tens of thousands of points per code).
#[inline]
fn floor(v: f64) -> i64 {
    let t = v as i64;
    if (t as f64) > v {
        t.saturating_sub(1)
    } else {
        t
    }
}

/// Search the bottom-right alignment pattern near its affine estimate.
fn find_alignment(bm: &Bitmap, t: &Triple, dim: usize) -> Option<(f64, f64)> {
    let d = dim as f64 - 7.0;
    let ex = ((t.tr.x - t.tl.x) as f64 / d, (t.tr.y - t.tl.y) as f64 / d);
    let ey = ((t.bl.x - t.tl.x) as f64 / d, (t.bl.y - t.tl.y) as f64 / d);
    let u = dim as f64 - 10.0; // module offset of the alignment centre from the TL finder centre
    let est = (
        t.tl.x as f64 + u * (ex.0 + ey.0),
        t.tl.y as f64 + u * (ex.1 + ey.1),
    );
    // Near the affine estimate first; then near a perspective estimate from the finders' sizes;
    // then widely (under strong perspective the pattern lies far off the affine estimate).
    template_search(bm, est, ex, ey, 5.0, 21)
        .or_else(|| {
            let (p, pex, pey) = perspective_estimate(t, dim)?;
            let apart = (p.0 - est.0).hypot(p.1 - est.1);
            let module = ex.0.hypot(ex.1).max(1e-3);
            if apart < module {
                return None;
            }
            template_search(bm, p, pex, pey, 5.0, 21)
        })
        .or_else(|| template_search(bm, est, ex, ey, 10.0, 22))
}

/// A point or a vector in pixels.
type Point = (f64, f64);

/// Where the bottom-right alignment centre lies under the perspective the finders' module sizes
/// suggest, with the module axes there. On a plane seen in perspective, x = (TL + A·p) / w with
/// w = 1 + g·p, and the local scale goes as w^(−3/2) (the Jacobian's determinant is
/// det H / w³), so each finder's module size relative to the top-left one gives w at its centre,
/// and w at the top-right and bottom-left finders fixes g.
fn perspective_estimate(t: &Triple, dim: usize) -> Option<(Point, Point, Point)> {
    let at = perspective_map(t, dim)?;
    let u = dim as f64 - 10.0;
    let p = at(u, u);
    let px = at(u + 1.0, u);
    let py = at(u, u + 1.0);
    let ok = [p, px, py]
        .iter()
        .all(|q| q.0.is_finite() && q.1.is_finite());
    ok.then_some((p, (px.0 - p.0, px.1 - p.1), (py.0 - p.0, py.1 - p.1)))
}

/// The perspective map [`perspective_estimate`] describes: module offsets (u, v) from the top-left
/// finder's centre to pixels.
fn perspective_map(t: &Triple, dim: usize) -> Option<impl Fn(f64, f64) -> Point> {
    let d = dim as f64 - 7.0;
    let (m0, m1, m2) = (
        f64::from(t.tl.module),
        f64::from(t.tr.module),
        f64::from(t.bl.module),
    );
    if m0 <= 0.0 || m1 <= 0.0 || m2 <= 0.0 || d <= 0.0 {
        return None;
    }
    let w_tr = (m0 / m1).powf(2.0 / 3.0).clamp(0.5, 2.0);
    let w_bl = (m0 / m2).powf(2.0 / 3.0).clamp(0.5, 2.0);
    let (tl, tr, bl) = (
        (f64::from(t.tl.x), f64::from(t.tl.y)),
        (f64::from(t.tr.x), f64::from(t.tr.y)),
        (f64::from(t.bl.x), f64::from(t.bl.y)),
    );
    Some(move |u: f64, v: f64| {
        let w = 1.0 + (w_tr - 1.0) * u / d + (w_bl - 1.0) * v / d;
        let x = tl.0 + (tr.0 * w_tr - tl.0) * u / d + (bl.0 * w_bl - tl.0) * v / d;
        let y = tl.1 + (tr.1 * w_tr - tl.1) * u / d + (bl.1 * w_bl - tl.1) * v / d;
        (x / w, y / w)
    })
}

/// Matches of the 5×5-module alignment template (dark ring, light ring, dark centre) sampled at
/// one point per module, module axes `ex`, `ey`, centred at `(cx, cy)`. A position that cannot
/// reach `need` matches stops at its first mismatch too many and returns a count below `need`
/// (the searches only care about positions at least as good as their best so far).
fn template_score(
    bm: &Bitmap,
    (cx, cy): (f64, f64),
    ex: (f64, f64),
    ey: (f64, f64),
    need: i32,
) -> i32 {
    let allowed = 25 - need;
    let (mut score, mut misses) = (0, 0);
    for j in -2i32..=2 {
        for i in -2i32..=2 {
            let want_dark = i.abs().max(j.abs()) != 1;
            let x = cx + f64::from(i) * ex.0 + f64::from(j) * ey.0;
            let y = cy + f64::from(i) * ex.1 + f64::from(j) * ey.1;
            if dark_at(bm, x, y) == want_dark {
                score += 1;
            } else {
                misses += 1;
                if misses > allowed {
                    return score;
                }
            }
        }
    }
    score
}

/// Best match of the alignment template within `radius` modules of `est` (module axes `ex`,
/// `ey`); `None` when the best scores under `min`. A coarse search in half-module steps, then a
/// fine one in sixth-module steps around its best, whose answer is the centroid of the positions
/// sharing the best fine score: the template matches on a plateau about a module wide, and its
/// middle is the pattern's centre to a fraction of a module (the coarse best alone can be half a
/// module off, which on a perspective-distorted code costs the far corner's modules).
fn template_search(
    bm: &Bitmap,
    est: (f64, f64),
    ex: (f64, f64),
    ey: (f64, f64),
    radius: f64,
    min: i32,
) -> Option<(f64, f64)> {
    let module = ((ex.0.hypot(ex.1) + ey.0.hypot(ey.1)) / 2.0).max(1.0);
    if !module.is_finite() || !est.0.is_finite() || !est.1.is_finite() {
        return None;
    }
    let radius = (module * radius).min(bm.width.max(bm.height) as f64);
    // Half-module steps near the estimate; whole-module steps for the wide search (a quarter of
    // the positions: the fine search below recovers the precision).
    let step = if radius > 5.0 * module {
        module
    } else {
        module / 2.0
    }
    .max(1.0);
    let n = (radius / step).ceil() as i64;
    // The best position on the grid est + (ix, iy)·step: the highest score, then the nearest
    // (then the first in row order). The square within two modules goes first: a perfect match
    // there that is nearer than any point outside the square is the answer of the whole search
    // (the usual case: the pattern lies close to its estimate).
    let near = ((2.0 * module / step).ceil() as i64).min(n);
    let mut best: Option<(i32, i64, (i64, i64))> = None;
    let visit = |best: &mut Option<(i32, i64, (i64, i64))>, ix: i64, iy: i64| {
        let cx = est.0 + ix as f64 * step;
        let cy = est.1 + iy as f64 * step;
        let need = best.map_or(0, |b| b.0);
        let score = template_score(bm, (cx, cy), ex, ey, need);
        let d2 = ix * ix + iy * iy;
        let better = match *best {
            None => true,
            Some((s, bd, (bx, by))) => {
                score > s || (score == s && (d2 < bd || (d2 == bd && (iy, ix) < (by, bx))))
            }
        };
        if better {
            *best = Some((score, d2, (ix, iy)));
        }
    };
    // The estimate itself first: a good score there early lets most other positions stop at
    // their first mismatches (the answer does not depend on the order).
    visit(&mut best, 0, 0);
    for iy in -near..=near {
        for ix in -near..=near {
            if (ix, iy) != (0, 0) {
                visit(&mut best, ix, iy);
            }
        }
    }
    let settled = matches!(best, Some((25, d2, _)) if d2 < (near + 1) * (near + 1));
    if !settled {
        for iy in -n..=n {
            for ix in -n..=n {
                if ix.abs() > near || iy.abs() > near {
                    visit(&mut best, ix, iy);
                }
            }
        }
    }
    let (score, _, (ix, iy)) = best?;
    let coarse = (est.0 + ix as f64 * step, est.1 + iy as f64 * step);
    if score < min {
        return None;
    }
    let fine = (module / 6.0).max(0.5);
    let m = (module / fine).ceil() as i64;
    let (mut top, mut sx, mut sy, mut count) = (score, 0.0, 0.0, 0.0f64);
    for iy in -m..=m {
        for ix in -m..=m {
            let cx = coarse.0 + ix as f64 * fine;
            let cy = coarse.1 + iy as f64 * fine;
            let s = template_score(bm, (cx, cy), ex, ey, top);
            if s > top {
                (top, sx, sy, count) = (s, 0.0, 0.0, 0.0);
            }
            if s == top {
                sx += cx;
                sy += cy;
                count += 1.0;
            }
        }
    }
    if count > 0.0 {
        Some((sx / count, sy / count))
    } else {
        Some(coarse)
    }
}

/// Module indices of the alignment pattern centres of a version (ISO/IEC 18004 table E.1, from
/// its construction rule: first at 6, last at size − 7, the rest evenly spaced by an even step).
fn alignment_positions(version: usize) -> Vec<usize> {
    if !(2..=40).contains(&version) {
        return Vec::new();
    }
    let size = 17 + 4 * version;
    let count = version / 7 + 2;
    let step = if version == 32 {
        26
    } else {
        (version * 4 + count * 2 + 1) / (count * 2 - 2) * 2
    };
    let mut positions = vec![6];
    let mut rest: Vec<usize> = (0..count - 1)
        .filter_map(|i| (size - 7).checked_sub(i * step))
        .collect();
    rest.reverse();
    positions.extend(rest);
    positions
}

/// A piecewise perspective map for large codes: every alignment pattern located near where the
/// global transform puts it, and each cell between four of them mapped on its own (follows
/// curvature and lens distortion that one transform cannot).
struct Piecewise {
    positions: Vec<f64>,
    cells: Vec<Homography>,
}

impl Piecewise {
    /// `None` also once the deadline passes (a version 40 grid searches 43 alignment patterns, a
    /// few milliseconds) or once too few patterns are left to reach the half that must be found
    /// (three finders of noise rarely show one: most such triples end after a few searches).
    fn build(bm: &Bitmap, h: &Homography, dim: usize, deadline: &Deadline) -> Option<Self> {
        let version = (dim - 17) / 4;
        let pos = alignment_positions(version);
        let n = pos.len();
        if n < 3 {
            return None;
        }
        let last = n - 1;
        let mut anchors = vec![(0.0f64, 0.0f64); n * n];
        let mut located = 0;
        // Located patterns needed (of the n² − 3 searched), and searches still to come.
        let need = (n * n - 3).div_ceil(2);
        let mut to_search = n * n - 3;
        for j in 0..n {
            if deadline.passed() {
                return None;
            }
            for i in 0..n {
                let (u, v) = (pos[i] as f64 + 0.5, pos[j] as f64 + 0.5);
                let predicted = h.apply(u, v);
                let corner = [(0, 0), (last, 0), (0, last)].contains(&(i, j));
                let point = if corner {
                    predicted
                } else {
                    if located + to_search < need {
                        return None;
                    }
                    to_search -= 1;
                    let a = h.apply(u + 1.0, v);
                    let b = h.apply(u, v + 1.0);
                    let ex = (a.0 - predicted.0, a.1 - predicted.1);
                    let ey = (b.0 - predicted.0, b.1 - predicted.1);
                    match template_search(bm, predicted, ex, ey, 2.0, 21) {
                        Some(p) => {
                            located += 1;
                            p
                        }
                        None => predicted,
                    }
                };
                if let Some(slot) = anchors.get_mut(j * n + i) {
                    *slot = point;
                }
            }
        }
        if located * 2 < n * n - 3 {
            return None;
        }
        let mut cells = Vec::with_capacity((n - 1) * (n - 1));
        for j in 0..n - 1 {
            for i in 0..n - 1 {
                let m = |i: usize, j: usize| (pos[i] as f64 + 0.5, pos[j] as f64 + 0.5);
                let a = |i: usize, j: usize| anchors.get(j * n + i).copied().unwrap_or((0.0, 0.0));
                cells.push(Homography::quad_to_quad(
                    [m(i, j), m(i + 1, j), m(i + 1, j + 1), m(i, j + 1)],
                    [a(i, j), a(i + 1, j), a(i + 1, j + 1), a(i, j + 1)],
                )?);
            }
        }
        Some(Self {
            positions: pos.iter().map(|&p| p as f64 + 0.5).collect(),
            cells,
        })
    }

    fn apply(&self, u: f64, v: f64) -> (f64, f64) {
        let cells_per_row = self.positions.len() - 1;
        let index = |x: f64| {
            let mut k = 0;
            while k + 1 < cells_per_row
                && x >= self.positions.get(k + 1).copied().unwrap_or(f64::MAX)
            {
                k += 1;
            }
            k
        };
        let (i, j) = (index(u), index(v));
        match self.cells.get(j * cells_per_row + i) {
            Some(h) => h.apply(u, v),
            None => (f64::NAN, f64::NAN),
        }
    }
}

fn sample(bm: &Bitmap, map: impl Fn(f64, f64) -> (f64, f64), dim: usize) -> Option<SimpleGrid> {
    let mut outside = 0usize;
    let mut bits = vec![false; dim * dim];
    for my in 0..dim {
        for mx in 0..dim {
            let (x, y) = map(mx as f64 + 0.5, my as f64 + 0.5);
            if !in_bounds(bm, floor(x), floor(y)) || !x.is_finite() || !y.is_finite() {
                outside += 1;
            }
            if let Some(b) = bits.get_mut(my * dim + mx) {
                *b = dark_at(bm, x, y);
            }
        }
    }
    if outside * 10 > dim * dim {
        return None;
    }
    Some(SimpleGrid::from_func(dim, |x, y| {
        bits.get(y * dim + x).copied().unwrap_or(false)
    }))
}

/// The transform from module coordinates (finder centres at 3.5, the bottom-right alignment
/// centre at dim − 6.5) to pixels.
fn alignment_homography(t: &Triple, dim: usize, ap: (f64, f64)) -> Option<Homography> {
    let d = dim as f64;
    Homography::quad_to_quad(
        [
            (3.5, 3.5),
            (d - 3.5, 3.5),
            (d - 6.5, d - 6.5),
            (3.5, d - 3.5),
        ],
        [
            (f64::from(t.tl.x), f64::from(t.tl.y)),
            (f64::from(t.tr.x), f64::from(t.tr.y)),
            ap,
            (f64::from(t.bl.x), f64::from(t.bl.y)),
        ],
    )
}

/// Sample through `h` (and, for large codes, through every alignment pattern located near where
/// `h` puts it) and decode; `Err(true)` when the format was read but the data did not correct.
fn decode_through(
    bm: &Bitmap,
    h: &Homography,
    dim: usize,
    scale: f32,
    deadline: &Deadline,
) -> Result<ScannedCode, bool> {
    let d = dim as f64;
    let corner = |u: f64, v: f64| {
        let (x, y) = h.apply(u, v);
        (x as f32 * scale, y as f32 * scale)
    };
    let corners = [
        corner(0.0, 0.0),
        corner(d, 0.0),
        corner(d, d),
        corner(0.0, d),
    ];
    // rqrr's error correction of a large grid that fails takes up to a few milliseconds (version
    // 40) and cannot be interrupted: none starts after the deadline, so a frame's finder pass
    // overruns it by one sampling and decode at most.
    let modules = (dim * dim) as u64;
    if deadline.passed() {
        return Err(false);
    }
    let mut format_read = false;
    if dim >= 45
        && let Some(pw) = Piecewise::build(bm, h, dim, deadline)
        && let Some(grid) = sample(bm, |u, v| pw.apply(u, v), dim)
    {
        deadline.spend(modules);
        match checked_decode(grid, corners, deadline) {
            Ok(code) => return Ok(code),
            Err(read) => format_read |= read,
        }
    }
    if deadline.passed() {
        return Err(format_read);
    }
    let Some(grid) = sample(bm, |u, v| h.apply(u, v), dim) else {
        return Err(format_read);
    };
    deadline.spend(modules);
    checked_decode(grid, corners, deadline).map_err(|read| read || format_read)
}

/// [`decode_grid_or_format`] for grids that pass the [`precheck`]; the others are refused without
/// rqrr's error correction (`Err(true)` still when their format information is correctable).
fn checked_decode(
    grid: SimpleGrid,
    corners: [(f32, f32); 4],
    deadline: &Deadline,
) -> Result<ScannedCode, bool> {
    let check = precheck(&grid);
    if !check.worth_decoding {
        return Err(check.format);
    }
    decode_grid_or_format(grid, corners, deadline)
}

fn try_decode(
    bm: &Bitmap,
    t: &Triple,
    dim: usize,
    scale: f32,
    deadline: &Deadline,
    searches: &mut u32,
) -> Option<ScannedCode> {
    let tl = (f64::from(t.tl.x), f64::from(t.tl.y));
    let tr = (f64::from(t.tr.x), f64::from(t.tr.y));
    let bl = (f64::from(t.bl.x), f64::from(t.bl.y));
    if dim > 21
        && let Some(ap) = find_alignment(bm, t, dim)
        && let Some(h) = alignment_homography(t, dim, ap)
    {
        match decode_through(bm, &h, dim, scale, deadline) {
            Ok(code) => return Some(code),
            // The format was read, so the grid is nearly right: the far corner (where the
            // alignment pattern's position matters most) may be a fraction of a module off.
            // Resample with the alignment point nudged by a third of a module each way.
            Err(true) => {
                let m = f64::from(t.tl.module + t.tr.module + t.bl.module) / 9.0;
                for (dx, dy) in [
                    (1.0, 0.0),
                    (-1.0, 0.0),
                    (0.0, 1.0),
                    (0.0, -1.0),
                    (1.0, 1.0),
                    (-1.0, -1.0),
                    (1.0, -1.0),
                    (-1.0, 1.0),
                ] {
                    if deadline.passed() {
                        return None;
                    }
                    let nudged = (ap.0 + dx * m, ap.1 + dy * m);
                    if let Some(h) = alignment_homography(t, dim, nudged)
                        && let Ok(code) = decode_through(bm, &h, dim, scale, deadline)
                    {
                        return Some(code);
                    }
                }
            }
            Err(false) => {}
        }
    }
    // No alignment pattern (version 1) or none found: the bottom-right finder-equivalent point
    // at the parallelogram's fourth corner, then where the finders' sizes put it under
    // perspective.
    let d = dim as f64;
    let quad = |br: Point| {
        Homography::quad_to_quad(
            [
                (3.5, 3.5),
                (d - 3.5, 3.5),
                (d - 3.5, d - 3.5),
                (3.5, d - 3.5),
            ],
            [tl, tr, br, bl],
        )
    };
    let parallelogram = (tr.0 + bl.0 - tl.0, tr.1 + bl.1 - tl.1);
    let perspective = perspective_map(t, dim)
        .map(|at| at(d - 7.0, d - 7.0))
        .filter(|p| p.0.is_finite() && p.1.is_finite());
    let mut format_read = false;
    for br in [Some(parallelogram), perspective].into_iter().flatten() {
        if let Some(h) = quad(br) {
            match decode_through(bm, &h, dim, scale, deadline) {
                Ok(code) => return Some(code),
                Err(read) => format_read |= read,
            }
        }
    }
    // The format information was read, so the three finders belong to a code and only the
    // fourth corner is off (strong perspective on a small code): search it in half-module steps
    // around the perspective estimate, nearest first. Version 1 only: it has no alignment
    // pattern to locate the corner by. Each try is a full rqrr decode whose syndrome computation
    // is slow (it grows with block length × parity count × exponent), so a search is also
    // bounded in time.
    if !format_read || dim > 21 || *searches == 0 {
        return None;
    }
    *searches -= 1;
    let search_end = Instant::now() + BR_SEARCH_TIME;
    let centre = perspective.unwrap_or(parallelogram);
    let m = f64::from(t.tl.module + t.tr.module + t.bl.module) / 6.0;
    let reach = BR_SEARCH_REACH;
    let mut offsets: Vec<(i32, i32)> = (-reach..=reach)
        .flat_map(|j| (-reach..=reach).map(move |i| (i, j)))
        .filter(|&o| o != (0, 0))
        .collect();
    offsets.sort_by_key(|&(i, j)| i * i + j * j);
    for (i, j) in offsets {
        if deadline.passed() || Instant::now() >= search_end {
            return None;
        }
        let br = (centre.0 + f64::from(i) * m, centre.1 + f64::from(j) * m);
        if let Some(h) = quad(br)
            && let Ok(code) = decode_through(bm, &h, dim, scale, deadline)
        {
            return Some(code);
        }
    }
    None
}

/// Half-module steps each way in the search for a small code's fourth corner.
const BR_SEARCH_REACH: i32 = 5;
/// Time for one fourth-corner search.
#[cfg(not(test))]
const BR_SEARCH_TIME: std::time::Duration = std::time::Duration::from_millis(8);
/// Unit tests check that the search finds the corner, not how fast: an unoptimised test build on
/// a busy machine can spend 8 ms before the right offset (what it costs is the bench's question).
#[cfg(test)]
const BR_SEARCH_TIME: std::time::Duration = std::time::Duration::from_secs(2);
/// Fourth-corner searches per bitmap (a code that reads its format but not its data for another
/// reason, such as a non-compliant design, would otherwise spend the frame's budget here).
const BR_SEARCHES: u32 = 2;

/// The version read from the triple's version blocks, when the code is large enough to have
/// them and the finder spacing agrees with it.
fn agreeing_version(bm: &Bitmap, t: &Triple) -> Option<usize> {
    let estimate = (t.dim - 17) / 4;
    if t.dim < 41 {
        return None;
    }
    read_version(bm, t).filter(|v| v.abs_diff(estimate) <= estimate / 3 + 2)
}

fn version_agrees(bm: &Bitmap, t: &Triple) -> bool {
    agreeing_version(bm, t).is_some()
}

/// Whether two finders could be two of one code's three: sizes within 30 % and between 14 and
/// 170 modules apart (side or diagonal of versions 1–40).
fn implies_a_code(a: &Finder, b: &Finder) -> bool {
    let (small, large) = (a.module.min(b.module), a.module.max(b.module));
    if small <= 0.0 || large > 1.3 * small {
        return false;
    }
    let modules = dist(a, b) / ((a.module + b.module) / 2.0);
    (14.0..=170.0).contains(&modules)
}

/// What one finder pass saw.
pub(crate) struct FinderScan {
    pub codes: Vec<ScannedCode>,
    /// Whether anything could be a code: a plausible triple, or three confirmed candidates
    /// (rqrr passes at this scale are skipped when not).
    pub plausible: bool,
    /// Finder-like candidates seen at all (confirmed or not).
    pub candidates: usize,
    /// Centres (frame pixels) of confirmed candidates not part of a decoded code: while three or
    /// more are not inside any code found so far, the frame may hold more codes.
    pub unexplained: Vec<(f32, f32)>,
    /// Of the confirmed finders no code explains, those with modules under [`SMALL_MODULE`] px:
    /// codes too fine for this plane, which a larger plane of the same frame may read.
    pub small: usize,
    /// Where codes too fine for this plane may lie, in frame pixels (left, top, right, bottom):
    /// around each two unexplained finders with modules under [`FINE_LOOK_MODULE`] px that could
    /// be two of one code's three (a box that holds the code whichever two they are), nearest
    /// pairs first, a pair whose midpoint an earlier window holds left out. A look at each at a
    /// finer scale may read them.
    pub fine_windows: Vec<[f32; 4]>,
    /// More finders than [`MAX_CANDIDATES`] (a sheet of labels): rqrr's capstone grouping, which
    /// grows much faster than the number of capstones, is not run on such a frame.
    pub crowded: bool,
}

/// Finders with modules under this many pixels may belong to a code that a look at twice the
/// scale reads when this one did not (see [`FinderScan::fine_windows`]): dense codes whose
/// modules a photo's blur and compression leave too soft at 2–4 px.
const FINE_LOOK_MODULE: f32 = 4.0;

/// Modules under this many pixels are sampled unreliably (see [`FinderScan::small`]).
pub(crate) const SMALL_MODULE: f32 = 2.5;

/// Find, sample and decode codes in a bitmap; corners are multiplied by `scale`. With `one`, the
/// first code that decodes ends the scan.
///
/// Finders inside a code in `known` (read by an earlier pass, corners in frame pixels) are that
/// code's and are not tried again.
pub(crate) fn scan_bitmap(
    bm: &Bitmap,
    scale: f32,
    deadline: &Deadline,
    one: bool,
    known: &[ScannedCode],
) -> FinderScan {
    scan_with(bm, scale, deadline, 0.0, MAX_ATTEMPTS, one, false, known)
}

/// [`scan_bitmap`] on a plane that a larger plane of the same frame may follow: when it holds
/// many finders (a sheet of labels), triples with modules under [`SMALL_MODULE`] px are left to
/// that plane (they stay unexplained and are counted in [`FinderScan::small`]) instead of spending
/// the budget on attempts that rarely decode.
pub(crate) fn scan_bitmap_deferring(
    bm: &Bitmap,
    scale: f32,
    deadline: &Deadline,
    one: bool,
    known: &[ScannedCode],
) -> FinderScan {
    scan_with(bm, scale, deadline, 0.0, MAX_ATTEMPTS, one, true, known)
}

/// The smallest module (pixels) the coarse pass samples: smaller ones are left to the pass at
/// twice the size, where they are sampled more reliably.
const COARSE_MIN_MODULE: f32 = 2.0;
/// Decode attempts of the coarse pass (its failures are retried at twice the size).
const COARSE_ATTEMPTS: usize = 8;

/// [`scan_bitmap`] for the coarse first pass on a downscaled plane: only triples whose modules are
/// at least [`COARSE_MIN_MODULE`] px are decoded, and at most [`COARSE_ATTEMPTS`] of them; finders
/// it leaves undecoded stay unexplained, so the full-size pass still runs for them.
pub(crate) fn scan_bitmap_coarse(
    bm: &Bitmap,
    scale: f32,
    deadline: &Deadline,
    one: bool,
) -> FinderScan {
    scan_with(
        bm,
        scale,
        deadline,
        COARSE_MIN_MODULE,
        COARSE_ATTEMPTS,
        one,
        false,
        &[],
    )
}

#[allow(clippy::too_many_arguments)] // the four public wrappers name the cases
fn scan_with(
    bm: &Bitmap,
    scale: f32,
    deadline: &Deadline,
    min_module: f32,
    max_attempts: usize,
    one: bool,
    defer_small: bool,
    known: &[ScannedCode],
) -> FinderScan {
    let finders = find_candidates(bm, deadline);
    let n = finders.len();
    // Many finders (a sheet of labels): pairs too far apart for one code are not grouped, which
    // keeps the triple search near linear in the number of codes.
    let many = n > MAX_CANDIDATES;
    // Small modules on a crowded plane are left to a larger plane (see [`scan_bitmap_deferring`]).
    let min_module = if defer_small && many {
        min_module.max(SMALL_MODULE)
    } else {
        min_module
    };
    let mut triples = Vec::new();
    // Pairs whose module sizes are too far apart for one code ([`make_triple`] refuses a triple
    // with such a pair), marked once instead of being met again for every third finder.
    let alike: Vec<bool> = (0..n * n)
        .map(|ij| match (finders.get(ij / n), finders.get(ij % n)) {
            (Some(a), Some(b)) => {
                let (small, large) = (a.module.min(b.module), a.module.max(b.module));
                small > 0.0
                    && large / small <= MODULE_SPREAD
                    && (!many || dist(a, b) <= MAX_SPAN_MODULES * large)
            }
            _ => false,
        })
        .collect();
    let alike = |i: usize, j: usize| alike.get(i * n + j).copied().unwrap_or(false);
    // Finders inside codes read by an earlier pass are those codes' own (or their data).
    let mut used: Vec<bool> = finders
        .iter()
        .map(|f| {
            known
                .iter()
                .any(|code| super::pipeline::inside(&code.corners, (f.x * scale, f.y * scale)))
        })
        .collect();
    let free = |i: usize| !used.get(i).copied().unwrap_or(true);
    for i in 0..n {
        if !free(i) {
            continue;
        }
        // Hundreds of finders on a sheet make this loop long: it ends at the deadline.
        if deadline.passed() {
            break;
        }
        deadline.spend(n as u64);
        for j in i + 1..n {
            if !alike(i, j) || !free(j) {
                continue;
            }
            for k in j + 1..n {
                if alike(i, k)
                    && alike(j, k)
                    && free(k)
                    && let Some(t) = make_triple(&finders, [i, j, k])
                {
                    triples.push(t);
                }
            }
        }
    }
    triples.sort_by(|a, b| a.score.total_cmp(&b.score));
    // A large code's version blocks, read beside its top-right or bottom-left finder, agreeing
    // with its finder spacing is strong evidence the triple is a real code: such triples go
    // first among the leading ones (a dense code's data modules hold many finder-like runs that
    // form better-shaped triples than its own perspective-skewed finders).
    let lead = triples.len().min(4 * MAX_ATTEMPTS);
    if let Some(head) = triples.get_mut(..lead) {
        head.sort_by_key(|t| !version_agrees(bm, t));
    }
    let mut codes = Vec::new();
    let mut attempts = 0;
    // Every code on a sheet gets its attempt: one per three finders beyond the usual cap.
    let max_attempts = if many {
        max_attempts.max(n)
    } else {
        max_attempts
    };
    let mut searches = BR_SEARCHES;
    for t in &triples {
        if attempts >= max_attempts || deadline.passed() || (one && !codes.is_empty()) {
            break;
        }
        if t.ids.iter().any(|&i| used.get(i).copied().unwrap_or(true)) {
            continue;
        }
        if t.tl.module.min(t.tr.module).min(t.bl.module) < min_module {
            continue;
        }
        // Many finders: only triples whose timing patterns show (see [`timing_shows`]), checked
        // here rather than for every triple first: on a sheet most triples join finders of
        // neighbouring labels, and once a label is read the triples of its finders are passed
        // over without a look (checking them all first cost 45 ms on the generated sheet's
        // detail plane).
        if many && !timing_shows(bm, t) {
            continue;
        }
        attempts += 1;
        let mut dims = vec![t.dim];
        if t.dim > 21 {
            dims.push(t.dim - 4);
        }
        if t.dim < 177 {
            dims.push(t.dim + 4);
        }
        // Small, turned codes with modules of 2–4 px: their finders' runs come out long (the
        // blurred edges of a turned square), so the size is underestimated by up to two versions.
        if t.dim <= 29 {
            dims.push(t.dim + 8);
        }
        // From version 7 on the code states its version beside two finders: try that first
        // (finder spacing alone is often a version or two off on large codes).
        if let Some(version) = agreeing_version(bm, t) {
            let dim = 17 + 4 * version;
            dims.retain(|&d| d != dim);
            dims.insert(0, dim);
        }
        for dim in dims {
            if deadline.passed() {
                break;
            }
            if let Some(code) = try_decode(bm, t, dim, scale, deadline, &mut searches) {
                for &i in &t.ids {
                    if let Some(u) = used.get_mut(i) {
                        *u = true;
                    }
                }
                // Finder-like runs inside a read code are its data, not another code: excluded.
                let quad = code.corners.map(|(x, y)| (x / scale, y / scale));
                for (f, u) in finders.iter().zip(used.iter_mut()) {
                    if !*u && super::pipeline::inside(&quad, (f.x, f.y)) {
                        *u = true;
                    }
                }
                codes.push(code);
                break;
            }
        }
    }
    let left: Vec<&Finder> = finders
        .iter()
        .zip(&used)
        .filter(|(f, u)| f.count >= CONFIRMED && !**u)
        .map(|(f, _)| f)
        .collect();
    let mut unexplained: Vec<(f32, f32)> =
        left.iter().map(|f| (f.x * scale, f.y * scale)).collect();
    // Two like-sized finders at a code's spacing are two corners of a code whose third finder was
    // not confirmed at this scale (a second code beside a read one often loses one to blur): the
    // point between them stands for that code, so the passes after this one still look for it.
    for (i, a) in left.iter().enumerate() {
        for b in left.iter().skip(i + 1) {
            if implies_a_code(a, b) {
                unexplained.push(((a.x + b.x) / 2.0 * scale, (a.y + b.y) / 2.0 * scale));
            }
        }
    }
    let small = left.iter().filter(|f| f.module < SMALL_MODULE).count();
    let fine_windows = fine_windows(&left, scale);
    FinderScan {
        codes,
        small,
        fine_windows,
        crowded: many,
        candidates: n,
        plausible: !triples.is_empty()
            || finders.iter().filter(|f| f.count >= CONFIRMED).count() >= 3,
        unexplained,
    }
}

/// The boxes of [`FinderScan::fine_windows`] around unexplained small finders, in frame pixels.
/// Two finders of one code are a side (the code reaches about one side past their midpoint) or
/// the diagonal (half of it): a box reaching 1.3 times their distance from the midpoint holds the
/// code with its quiet zone either way.
fn fine_windows(left: &[&Finder], scale: f32) -> Vec<[f32; 4]> {
    // Every pair that could be two finders of one code, nearest first: on a sheet of labels a
    // finder also pairs with its neighbours' finders, and the nearest pair is its own code's.
    let mut pairs: Vec<(f32, (f32, f32))> = Vec::new();
    for (i, a) in left.iter().enumerate() {
        for b in left.iter().skip(i + 1) {
            if a.module.max(b.module) < FINE_LOOK_MODULE && implies_a_code(a, b) {
                pairs.push((dist(a, b), ((a.x + b.x) / 2.0, (a.y + b.y) / 2.0)));
            }
        }
    }
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut windows: Vec<[f32; 4]> = Vec::new();
    for (d, (mx, my)) in pairs {
        // A pair whose midpoint lies in a window already kept is the same code (or one that
        // window shows).
        let covered = windows.iter().any(|w| {
            mx * scale >= w[0] && mx * scale <= w[2] && my * scale >= w[1] && my * scale <= w[3]
        });
        if !covered {
            let reach = 1.3 * d;
            windows.push([mx - reach, my - reach, mx + reach, my + reach].map(|v| v * scale));
        }
    }
    windows
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two unread codes with fine modules give one window each, holding its three finders and
    /// not the other code's; finders with coarse modules, and a lone finder, give none.
    #[test]
    fn fine_windows_hold_each_unread_fine_code_once() {
        let f = |x: f32, y: f32, module: f32| Finder {
            x,
            y,
            module,
            count: CONFIRMED,
        };
        let finders = [
            // A code of 25 modules between finders (2 px modules).
            f(100.0, 100.0, 2.0),
            f(150.0, 100.0, 2.0),
            f(100.0, 150.0, 2.1),
            // Another one 400 px away.
            f(500.0, 100.0, 2.0),
            f(550.0, 100.0, 2.0),
            f(500.0, 150.0, 2.0),
            // Coarse modules: this plane samples them well enough.
            f(100.0, 600.0, 6.0),
            f(250.0, 600.0, 6.0),
            // A lone fine finder.
            f(900.0, 900.0, 2.0),
        ];
        let left: Vec<&Finder> = finders.iter().collect();
        // Frame pixels are twice the plane's.
        let windows = fine_windows(&left, 2.0);
        let holds = |w: &[f32; 4], f: &Finder| {
            (w[0]..=w[2]).contains(&(f.x * 2.0)) && (w[1]..=w[3]).contains(&(f.y * 2.0))
        };
        assert_eq!(windows.len(), 2, "{windows:?}");
        for (w, code) in windows.iter().zip([&finders[..3], &finders[3..6]]) {
            assert!(code.iter().all(|f| holds(w, f)), "{w:?}");
        }
        assert!(!finders[3..6].iter().any(|f| holds(&windows[0], f)));
        assert!(!finders[..3].iter().any(|f| holds(&windows[1], f)));
    }

    #[test]
    fn floor_matches_the_standard_floor() {
        for v in [
            0.0,
            -0.0,
            0.5,
            -0.5,
            1.0,
            -1.0,
            2.999,
            -2.001,
            1e15 + 0.5,
            -1e15 - 0.5,
            1e30,
            -1e30,
        ] {
            let v: f64 = v;
            let want = v.floor() as i64;
            assert_eq!(floor(v), want, "{v}");
        }
        assert_eq!(floor(f64::NAN), 0);
    }

    #[test]
    fn version_words_match_the_standard() {
        // ISO/IEC 18004 table D.1: version 7 is 0x07C94, version 40 is 0x28C69.
        assert_eq!(version_word(7), 0x07C94);
        assert_eq!(version_word(40), 0x28C69);
        assert_eq!(nearest_version(0x07C94 ^ 0b1_0001), Some(7));
        assert_eq!(nearest_version(0), None);
    }

    /// A generated code of `version` drawn with 4 px modules and a 4-module quiet zone, and its
    /// size in modules.
    fn code_bitmap(payload: &[u8], version: i16) -> (Bitmap, usize) {
        let code = qrcode::QrCode::with_version(
            payload,
            qrcode::Version::Normal(version),
            qrcode::EcLevel::M,
        )
        .unwrap();
        let n = code.width();
        let colors = code.to_colors();
        let (module, quiet) = (4usize, 4usize);
        let side = (n + 2 * quiet) * module;
        let mut bits = vec![0u8; side * side];
        for y in 0..side {
            for x in 0..side {
                let (mx, my) = ((x / module) as i64 - 4, (y / module) as i64 - 4);
                bits[y * side + x] = u8::from(
                    mx >= 0
                        && my >= 0
                        && (mx as usize) < n
                        && (my as usize) < n
                        && colors[my as usize * n + mx as usize] == qrcode::Color::Dark,
                );
            }
        }
        let bm = Bitmap {
            width: side,
            height: side,
            bits,
        };
        (bm, n)
    }

    /// The alignment search lands on the pattern's centre from estimates near it (settled in the
    /// square within two modules) and far from it (the wide search), in any direction.
    #[test]
    fn alignment_search_finds_the_centre_from_near_and_far_estimates() {
        let (bm, n) = code_bitmap(b"WG1:alignment", 5);
        let module = 4.0;
        // The bottom-right alignment centre: module (n − 7, n − 7) from the top left, plus the
        // quiet zone, at the middle of its module.
        let centre = (
            (n as f64 - 7.0 + 4.0 + 0.5) * module,
            (n as f64 - 7.0 + 4.0 + 0.5) * module,
        );
        for (dx, dy) in [
            (0.0, 0.0),
            (1.3, -0.6),
            (-1.9, 1.9),
            (3.2, 0.4),
            (-0.7, -4.4),
        ] {
            let est = (centre.0 + dx * module, centre.1 + dy * module);
            let found = template_search(&bm, est, (module, 0.0), (0.0, module), 5.0, 21)
                .unwrap_or_else(|| panic!("no pattern from {dx},{dy}"));
            let off = (found.0 - centre.0).hypot(found.1 - centre.1);
            assert!(
                off < module / 2.0,
                "{dx},{dy}: {found:?} is {off} px off {centre:?}"
            );
        }
    }

    #[test]
    fn reads_the_version_block_of_a_generated_code() {
        let (bm, n) = code_bitmap(b"WG1:version-block", 12);
        let module = 4usize;
        let centre = |mx: f32, my: f32| Finder {
            x: (mx + 4.0) * module as f32,
            y: (my + 4.0) * module as f32,
            module: module as f32,
            count: 3,
        };
        let d = n as f32;
        let t = Triple {
            tl: centre(3.5, 3.5),
            tr: centre(d - 3.5, 3.5),
            bl: centre(3.5, d - 3.5),
            ids: [0, 1, 2],
            dim: n,
            score: 0.0,
        };
        assert_eq!(read_version(&bm, &t), Some(12));
        let mut scan = Vec::new();
        for code in scan_bitmap(
            &bm,
            1.0,
            &Deadline::at(Instant::now() + std::time::Duration::from_secs(5)),
            false,
            &[],
        )
        .codes
        {
            scan.push(code.version);
        }
        assert_eq!(scan, vec![Some(12)]);
    }

    #[test]
    fn alignment_positions_match_the_standard_table() {
        assert!(alignment_positions(1).is_empty());
        assert_eq!(alignment_positions(2), vec![6, 18]);
        assert_eq!(alignment_positions(7), vec![6, 22, 38]);
        assert_eq!(alignment_positions(15), vec![6, 26, 48, 70]);
        assert_eq!(alignment_positions(32), vec![6, 34, 60, 86, 112, 138]);
        assert_eq!(alignment_positions(36), vec![6, 24, 50, 76, 102, 128, 154]);
        assert_eq!(alignment_positions(40), vec![6, 30, 58, 86, 114, 142, 170]);
    }
}
