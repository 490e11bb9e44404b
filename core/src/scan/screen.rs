//! The cheap early exit: a run-length screen for finder-like 1:1:3:1:1 patterns on every third or fourth row
//! of a plane (each row thresholded against its own moving average, as rqrr does), confirmed by a
//! vertical run check. A frame where it sees nothing, in either polarity, cannot hold a readable
//! code, so the expensive passes are skipped; live camera frames without a code return in a few
//! milliseconds.

use super::binarize::run_end;
use super::frame::Plane;

/// How much darker (or lighter) than the row's moving average a pixel must be to count.
const OFFSET: u32 = 8;

/// Whether any sampled row holds a finder-like pattern (dark-on-light or light-on-dark) that a
/// vertical check through its centre confirms.
pub(crate) fn any_finder(plane: &Plane) -> bool {
    any_finder_in(&plane.pixels, plane.width, plane.height, plane.width)
}

/// [`any_finder`] on a strided luma buffer read in place (a camera frame before any copy).
pub(crate) fn any_finder_in(data: &[u8], w: usize, h: usize, stride: usize) -> bool {
    if w < 7 || h < 7 || stride < w {
        return false;
    }
    let plane = Strided { data, w, h, stride };
    // Window half-width: an eighth of the width, as rqrr's own threshold.
    let r = (w / 16).max(8);
    let mut prefix = vec![0u32; w + 1];
    // Per pixel of the row: 1 where it is clearly darker than its window (`dark`), or clearly
    // lighter (`light`), else 0; rows of 0/1 bytes, so runs are found eight pixels at a time.
    let mut dark = vec![0u8; w];
    let mut light = vec![0u8; w];
    // A finder's centre run is at least 4 px tall in any readable code at the working size; small
    // frames (upscaled later, modules down to 1 px) are screened more densely.
    let step = if w.max(h) > 800 { 4 } else { 3 };
    for (y, row) in data.chunks(stride).take(h).enumerate().step_by(step) {
        let mut s = 0u32;
        for (p, &v) in prefix.iter_mut().skip(1).zip(row) {
            s += u32::from(v);
            *p = s;
        }
        // The interior, where the window is whole (a straight loop the compiler vectorises),
        // then the borders with clipped windows.
        let n = (2 * r + 1) as u32;
        let interior = w.checked_sub(r).filter(|&end| end > r).map(|end| r..end);
        if let Some(range) = interior.clone()
            && let (Some(d), Some(l), Some(vals)) = (
                dark.get_mut(range.clone()),
                light.get_mut(range.clone()),
                row.get(range),
            )
        {
            let hi = prefix.iter().skip(2 * r + 1);
            for (((d, l), &v), (&a, &b)) in d.iter_mut().zip(l).zip(vals).zip(hi.zip(prefix.iter()))
            {
                (*d, *l) = classify(u32::from(v), a - b, n);
            }
        }
        let (start, end) = interior.map_or((w, w), |i| (i.start, i.end));
        for x in (0..start).chain(end..w) {
            let x0 = x.saturating_sub(r);
            let x1 = (x + r + 1).min(w);
            let sum = prefix.get(x1).copied().unwrap_or(0) - prefix.get(x0).copied().unwrap_or(0);
            let v = row.get(x).copied().unwrap_or(0);
            if let (Some(d), Some(l)) = (dark.get_mut(x), light.get_mut(x)) {
                (*d, *l) = classify(u32::from(v), sum, (x1 - x0) as u32);
            }
        }
        if row_has_finder(&plane, &dark, y, 1) || row_has_finder(&plane, &light, y, -1) {
            return true;
        }
    }
    false
}

/// (dark, light) as 0/1: `v` ± OFFSET against the mean `sum / n` (no division, no branch).
#[inline]
fn classify(v: u32, sum: u32, n: u32) -> (u8, u8) {
    (
        u8::from((v + OFFSET) * n < sum),
        u8::from(v.saturating_sub(OFFSET) * n > sum),
    )
}

/// A luma buffer with a row stride.
struct Strided<'a> {
    data: &'a [u8],
    w: usize,
    h: usize,
    stride: usize,
}

/// Scan one row for five alternating runs, the middle one `on` (1 in the row's 0/1 bytes, dark
/// or light as `polarity` says), in 1:1:3:1:1, then check the column through the centre.
fn row_has_finder(plane: &Strided<'_>, on: &[u8], y: usize, polarity: i8) -> bool {
    let w = on.len();
    // From the first `on` pixel: runs of on / not on.
    let mut start = run_end(on, 0, false);
    let mut runs = [0u32; 5];
    let mut filled = 0usize;
    let mut current_on = true;
    while start < w {
        let end = run_end(on, start, current_on);
        let length = (end - start) as u32;
        if filled < 5 {
            if let Some(slot) = runs.get_mut(filled) {
                *slot = length;
            }
            filled += 1;
        } else {
            runs = [runs[1], runs[2], runs[3], runs[4], length];
        }
        if filled == 5 && current_on && ratio_ok(&runs) {
            let total: u32 = runs.iter().sum();
            let centre = end as i64 - i64::from(runs[4] + runs[3]) - i64::from(runs[2]) / 2 - 1;
            if column_ok(plane, centre, y, total, polarity) {
                return true;
            }
        }
        current_on = !current_on;
        start = end;
    }
    false
}

/// Loose 1:1:3:1:1 (modules down to 1 px, for the upscaled pass of small frames).
fn ratio_ok(c: &[u32; 5]) -> bool {
    let total: u32 = c.iter().sum();
    if total < 7 {
        return false;
    }
    let m = total as f32 / 7.0;
    let v = m * 0.75;
    (m - c[0] as f32).abs() < v.max(1.0)
        && (m - c[1] as f32).abs() < v.max(1.0)
        && (3.0 * m - c[2] as f32).abs() < 3.0 * v
        && (m - c[3] as f32).abs() < v.max(1.0)
        && (m - c[4] as f32).abs() < v.max(1.0)
}

/// The column through (x, y): pixels classed against the row's local level at (x, y) (the
/// midpoint of the centre pixel and its light neighbour run), five runs in about 1:1:3:1:1 with
/// a total within a factor of two of the row's.
fn column_ok(plane: &Strided<'_>, x: i64, y: usize, total: u32, polarity: i8) -> bool {
    if x < 0 || x as usize >= plane.w {
        return false;
    }
    let x = x as usize;
    let stride = plane.stride;
    let px =
        |yy: usize| -> i32 { i32::from(plane.data.get(yy * stride + x).copied().unwrap_or(255)) };
    let centre = px(y);
    // The light level: the brightest (darkest for inverted) pixel within the pattern's reach.
    let reach = (total as usize).min(plane.h);
    let lo = y.saturating_sub(reach);
    let hi = (y + reach).min(plane.h - 1);
    let other = (lo..=hi).map(px).fold(
        centre,
        |a, b| if polarity > 0 { a.max(b) } else { a.min(b) },
    );
    if (other - centre).abs() < 3 * OFFSET as i32 {
        return false;
    }
    let level = (other + centre) / 2;
    let on = |yy: usize| -> bool {
        let v = px(yy);
        if polarity > 0 { v < level } else { v > level }
    };
    let max_run = total * 2;
    let mut c = [0u32; 5];
    // Up: centre run, then light, then dark.
    let mut yy = y as i64;
    for (slot, want) in [(2usize, true), (1, false), (0, true)] {
        while yy >= 0 && on(yy as usize) == want {
            if let Some(s) = c.get_mut(slot) {
                *s += 1;
                if *s > max_run {
                    return false;
                }
            }
            yy -= 1;
        }
    }
    let mut yy = y as i64 + 1;
    for (slot, want) in [(2usize, true), (3, false), (4, true)] {
        while (yy as usize) < plane.h && on(yy as usize) == want {
            if let Some(s) = c.get_mut(slot) {
                *s += 1;
                if *s > max_run {
                    return false;
                }
            }
            yy += 1;
        }
    }
    let vtotal: u32 = c.iter().sum();
    if vtotal * 2 < total || vtotal > total * 2 {
        return false;
    }
    ratio_ok(&c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plane(w: usize, h: usize, mut f: impl FnMut(usize, usize) -> u8) -> Plane {
        let mut pixels = Vec::with_capacity(w * h);
        for y in 0..h {
            for x in 0..w {
                pixels.push(f(x, y));
            }
        }
        Plane {
            width: w,
            height: h,
            pixels,
        }
    }

    /// A finder pattern with 4 px modules centred at (cx, cy).
    fn finder(x: usize, y: usize, cx: usize, cy: usize, dark: u8, light: u8) -> Option<u8> {
        let dx = (x as i64 - cx as i64).abs() / 4;
        let dy = (y as i64 - cy as i64).abs() / 4;
        let ring = dx.max(dy);
        match ring {
            0 | 1 | 3 => Some(dark),
            2 | 4 => Some(light),
            _ => None,
        }
    }

    #[test]
    fn sees_a_finder_in_either_polarity_and_nothing_in_flat_noise() {
        let normal = plane(320, 240, |x, y| {
            finder(x, y, 100, 100, 30, 220).unwrap_or(220)
        });
        assert!(any_finder(&normal));
        let inverted = plane(320, 240, |x, y| {
            finder(x, y, 100, 100, 220, 30).unwrap_or(30)
        });
        assert!(any_finder(&inverted));
        let mut seed = 1u64;
        let noise = plane(320, 240, |x, _| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
            (80 + x / 4 + (seed >> 60) as usize) as u8
        });
        assert!(!any_finder(&noise));
        // Stripes have the runs on a row but not down the column.
        let stripes = plane(320, 240, |x, _| if (x / 4) % 2 == 0 { 30 } else { 220 });
        assert!(!any_finder(&stripes));
    }
}
