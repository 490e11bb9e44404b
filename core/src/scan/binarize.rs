//! Image preparation for the passes: resampling for the scale pyramid and a local-mean threshold
//! that copes with uneven light and glare.

use super::frame::Plane;

/// Shrink by an integer factor, averaging each `factor`×`factor` block (a partial block at the
/// right or bottom edge is dropped).
pub(crate) fn downscale(src: &Plane, factor: usize) -> Plane {
    let factor = factor.max(1);
    if factor == 1 {
        return src.clone();
    }
    let width = (src.width / factor).max(1);
    let height = (src.height / factor).max(1);
    let area = (factor * factor) as u32;
    // Each output row sums its band of source rows into per-column totals (straight loops over
    // whole rows), then each output pixel adds `factor` of those totals.
    let mut totals = vec![0u32; src.width];
    let mut pixels = vec![0u8; width * height];
    for (oy, out_row) in pixels.chunks_mut(width).enumerate() {
        totals.fill(0);
        for row in src
            .pixels
            .chunks_exact(src.width.max(1))
            .skip(oy * factor)
            .take(factor)
        {
            for (t, &p) in totals.iter_mut().zip(row) {
                *t += u32::from(p);
            }
        }
        for (out, block) in out_row.iter_mut().zip(totals.chunks(factor)) {
            let sum: u32 = block.iter().sum();
            *out = (sum / area) as u8;
        }
    }
    Plane {
        width,
        height,
        pixels,
    }
}

/// Shrink so the longest side is at most `max_side` (fractional factor, each output pixel the mean
/// of its source footprint); returns the plane and the factor (source pixels per output pixel).
pub(crate) fn fit(src: &Plane, max_side: usize) -> (Plane, f32) {
    let long = src.width.max(src.height);
    if long <= max_side || max_side == 0 {
        return (src.clone(), 1.0);
    }
    let f = long as f32 / max_side as f32;
    let width = ((src.width as f32 / f).round() as usize).max(1);
    let height = ((src.height as f32 / f).round() as usize).max(1);
    let span = |o: usize, limit: usize| {
        let a = ((o as f32 * f) as usize).min(limit - 1);
        let b = (((o + 1) as f32 * f) as usize).clamp(a + 1, limit);
        (a, b)
    };
    // Column spans once; each output row sums its band of source rows into per-column totals
    // (straight loops over whole rows), then each output pixel adds its span of those totals.
    let columns: Vec<(usize, usize)> = (0..width).map(|o| span(o, src.width)).collect();
    let mut totals = vec![0u32; src.width];
    let mut pixels = vec![0u8; width * height];
    for (oy, out_row) in pixels.chunks_mut(width).enumerate() {
        let (y0, y1) = span(oy, src.height);
        totals.fill(0);
        for row in src
            .pixels
            .chunks_exact(src.width.max(1))
            .skip(y0)
            .take(y1 - y0)
        {
            for (t, &p) in totals.iter_mut().zip(row) {
                *t += u32::from(p);
            }
        }
        let rows = (y1 - y0) as u32;
        for (out, &(x0, x1)) in out_row.iter_mut().zip(&columns) {
            let sum: u32 = totals.get(x0..x1).map_or(0, |s| s.iter().sum());
            let count = (rows * (x1 - x0) as u32).max(1);
            *out = (sum / count) as u8;
        }
    }
    (
        Plane {
            width,
            height,
            pixels,
        },
        f,
    )
}

/// Grow by 2 with bilinear interpolation (helps modules of 2–4 px).
pub(crate) fn upscale2(src: &Plane) -> Plane {
    let width = src.width * 2;
    let height = src.height * 2;
    let mut pixels = vec![0u8; width * height];
    for (oy, out_row) in pixels.chunks_mut(width).enumerate() {
        let fy = ((oy as f32 + 0.5) / 2.0 - 0.5).max(0.0);
        let y0 = (fy as usize).min(src.height - 1);
        let y1 = (y0 + 1).min(src.height - 1);
        let wy = fy - y0 as f32;
        for (ox, out) in out_row.iter_mut().enumerate() {
            let fx = ((ox as f32 + 0.5) / 2.0 - 0.5).max(0.0);
            let x0 = (fx as usize).min(src.width - 1);
            let x1 = (x0 + 1).min(src.width - 1);
            let wx = fx - x0 as f32;
            let top = f32::from(src.at(x0, y0)) * (1.0 - wx) + f32::from(src.at(x1, y0)) * wx;
            let bottom = f32::from(src.at(x0, y1)) * (1.0 - wx) + f32::from(src.at(x1, y1)) * wx;
            *out = (top * (1.0 - wy) + bottom * wy).round().clamp(0.0, 255.0) as u8;
        }
    }
    Plane {
        width,
        height,
        pixels,
    }
}

/// The negative image (for light-on-dark codes).
pub(crate) fn invert(src: &Plane) -> Plane {
    Plane {
        width: src.width,
        height: src.height,
        pixels: src.pixels.iter().map(|p| 255 - p).collect(),
    }
}

/// A binary image: `true` is dark.
pub(crate) struct Bitmap {
    pub width: usize,
    pub height: usize,
    pub bits: Vec<bool>,
}

impl Bitmap {
    #[inline]
    pub fn dark(&self, x: usize, y: usize) -> bool {
        self.bits.get(y * self.width + x).copied().unwrap_or(false)
    }
}

/// Threshold each pixel against the mean of a square window around it (an integral image makes
/// that O(1) per pixel). Flat areas (little local contrast) count as light, so glare and blank
/// paper do not turn into noise.
pub(crate) fn local_mean_threshold(src: &Plane, radius: usize, offset: i32) -> Bitmap {
    let w = src.width;
    let h = src.height;
    let iw = w + 1;
    // u32 with wrapping arithmetic: a window's true sum stays far below 2^32 (the plane is capped
    // to a few megapixels), so differences of wrapped prefix sums are exact.
    let mut integral = vec![0u32; iw * (h + 1)];
    {
        let mut rows = integral.chunks_exact_mut(iw);
        if let Some(mut prev) = rows.next() {
            for (cur, src_row) in rows.zip(src.pixels.chunks_exact(w.max(1))) {
                let mut row_sum = 0u32;
                for ((c, &p), &v) in cur.iter_mut().skip(1).zip(prev.iter().skip(1)).zip(src_row) {
                    row_sum = row_sum.wrapping_add(u32::from(v));
                    *c = p.wrapping_add(row_sum);
                }
                prev = cur;
            }
        }
    }
    let row = |y: usize| integral.get(y * iw..(y + 1) * iw).unwrap_or(&[]);
    let radius = radius.max(1);
    let offset = u64::try_from(offset.max(0)).unwrap_or(0);
    // Dark when p < floor(sum / count) − offset, i.e. (p + offset + 1) · count ≤ sum.
    let is_dark =
        |p: u8, sum: u32, count: u64| (u64::from(p) + offset + 1) * count <= u64::from(sum);
    let mut bits = vec![false; w * h];
    for (y, (out, src_row)) in bits
        .chunks_exact_mut(w.max(1))
        .zip(src.pixels.chunks_exact(w.max(1)))
        .enumerate()
    {
        let y0 = y.saturating_sub(radius);
        let y1 = (y + radius + 1).min(h);
        let (top, bot) = (row(y0), row(y1));
        let rows = (y1 - y0) as u64;
        // The interior, where the window is whole horizontally: one straight loop.
        let span = 2 * radius + 1;
        let interior = if w > span {
            radius..w - radius - 1
        } else {
            0..0
        };
        let count = rows * span as u64;
        if let (Some(o), Some(s)) = (out.get_mut(interior.clone()), src_row.get(interior.clone())) {
            let right = bot.iter().skip(span).zip(top.iter().skip(span));
            let left = bot.iter().zip(top.iter());
            for ((bit, &p), ((&br, &tr), (&bl, &tl))) in o.iter_mut().zip(s).zip(right.zip(left)) {
                let sum = br.wrapping_add(tl).wrapping_sub(tr).wrapping_sub(bl);
                *bit = is_dark(p, sum, count);
            }
        }
        for (x, (bit, &p)) in out.iter_mut().zip(src_row).enumerate() {
            if interior.contains(&x) {
                continue;
            }
            let x0 = x.saturating_sub(radius);
            let x1 = (x + radius + 1).min(w);
            let at = |r: &[u32], i: usize| r.get(i).copied().unwrap_or(0);
            let sum = at(bot, x1)
                .wrapping_add(at(top, x0))
                .wrapping_sub(at(top, x1))
                .wrapping_sub(at(bot, x0));
            *bit = is_dark(p, sum, rows * (x1 - x0) as u64);
        }
    }
    Bitmap {
        width: w,
        height: h,
        bits,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The direct definition: the mean of the clipped window, compared pixel by pixel.
    fn naive(src: &Plane, radius: usize, offset: i32) -> Vec<bool> {
        let mut out = Vec::new();
        for y in 0..src.height {
            for x in 0..src.width {
                let (y0, y1) = (y.saturating_sub(radius), (y + radius + 1).min(src.height));
                let (x0, x1) = (x.saturating_sub(radius), (x + radius + 1).min(src.width));
                let mut sum = 0u32;
                for yy in y0..y1 {
                    for xx in x0..x1 {
                        sum += u32::from(src.at(xx, yy));
                    }
                }
                let mean = (sum / ((y1 - y0) * (x1 - x0)) as u32) as i32;
                out.push(i32::from(src.at(x, y)) < mean - offset);
            }
        }
        out
    }

    fn noise_plane(w: usize, h: usize, seed: u64) -> Plane {
        let mut seed = seed;
        let pixels = (0..w * h)
            .map(|_| {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (seed >> 56) as u8
            })
            .collect();
        Plane {
            width: w,
            height: h,
            pixels,
        }
    }

    #[test]
    fn fit_averages_each_output_pixels_source_footprint() {
        for (w, h, side) in [(301, 157, 100), (64, 700, 333), (5, 9, 4), (1000, 1, 999)] {
            let src = noise_plane(w, h, (w * h) as u64);
            let (out, f) = fit(&src, side);
            assert_eq!(out.width.max(out.height), side, "{w}×{h} → {side}");
            let span = |o: usize, limit: usize| {
                let a = ((o as f32 * f) as usize).min(limit - 1);
                let b = (((o + 1) as f32 * f) as usize).clamp(a + 1, limit);
                (a, b)
            };
            for oy in 0..out.height {
                let (y0, y1) = span(oy, h);
                for ox in 0..out.width {
                    let (x0, x1) = span(ox, w);
                    let mut sum = 0u32;
                    for y in y0..y1 {
                        for x in x0..x1 {
                            sum += u32::from(src.at(x, y));
                        }
                    }
                    let mean = sum / ((y1 - y0) * (x1 - x0)) as u32;
                    assert_eq!(u32::from(out.at(ox, oy)), mean, "{w}×{h} at {ox},{oy}");
                }
            }
        }
    }

    #[test]
    fn downscale_averages_whole_blocks() {
        let src = noise_plane(103, 58, 9);
        for factor in [2usize, 3, 4] {
            let out = downscale(&src, factor);
            assert_eq!((out.width, out.height), (103 / factor, 58 / factor));
            for oy in 0..out.height {
                for ox in 0..out.width {
                    let mut sum = 0u32;
                    for y in oy * factor..(oy + 1) * factor {
                        for x in ox * factor..(ox + 1) * factor {
                            sum += u32::from(src.at(x, y));
                        }
                    }
                    let mean = sum / (factor * factor) as u32;
                    assert_eq!(u32::from(out.at(ox, oy)), mean, "×{factor} at {ox},{oy}");
                }
            }
        }
    }

    #[test]
    fn local_mean_threshold_matches_its_definition() {
        let mut seed = 3u64;
        for (w, h, radius) in [(61, 37, 5), (9, 40, 12), (100, 3, 2), (1, 1, 1)] {
            let pixels = (0..w * h)
                .map(|i| {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((i % w) * 2 + (seed >> 58) as usize * 3) as u8
                })
                .collect();
            let plane = Plane {
                width: w,
                height: h,
                pixels,
            };
            let fast = local_mean_threshold(&plane, radius, 8);
            assert_eq!(fast.bits, naive(&plane, radius, 8), "{w}×{h} r{radius}");
            assert!(fast.bits.iter().any(|&b| b) || w * h < 10);
        }
    }
}
