//! Image preparation for the passes: resampling for the scale pyramid and a local-mean threshold
//! that copes with uneven light and glare.

use super::frame::Plane;

/// Shrink by an integer factor, averaging each `factor`×`factor` block.
pub(crate) fn downscale(src: &Plane, factor: usize) -> Plane {
    let factor = factor.max(1);
    if factor == 1 {
        return src.clone();
    }
    let width = (src.width / factor).max(1);
    let height = (src.height / factor).max(1);
    let mut pixels = vec![0u8; width * height];
    let area = (factor * factor) as u32;
    for (oy, out_row) in pixels.chunks_mut(width).enumerate() {
        for (ox, out) in out_row.iter_mut().enumerate() {
            let mut sum = 0u32;
            for dy in 0..factor {
                let y = (oy * factor + dy).min(src.height - 1);
                let row = y * src.width;
                for dx in 0..factor {
                    let x = (ox * factor + dx).min(src.width - 1);
                    sum += u32::from(src.pixels.get(row + x).copied().unwrap_or(255));
                }
            }
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
    let mut pixels = vec![0u8; width * height];
    for (oy, out_row) in pixels.chunks_mut(width).enumerate() {
        let (y0, y1) = span(oy, src.height);
        for (ox, out) in out_row.iter_mut().enumerate() {
            let (x0, x1) = span(ox, src.width);
            let mut sum = 0u32;
            for y in y0..y1 {
                for x in x0..x1 {
                    sum += u32::from(src.at(x, y));
                }
            }
            let count = ((y1 - y0) * (x1 - x0)).max(1) as u32;
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
    for y in 0..h {
        let mut row_sum = 0u32;
        for x in 0..w {
            row_sum = row_sum.wrapping_add(u32::from(src.at(x, y)));
            let above = integral.get(y * iw + x + 1).copied().unwrap_or(0);
            if let Some(cell) = integral.get_mut((y + 1) * iw + x + 1) {
                *cell = above.wrapping_add(row_sum);
            }
        }
    }
    let at = |x: usize, y: usize| integral.get(y * iw + x).copied().unwrap_or(0);
    let radius = radius.max(1);
    let mut bits = vec![false; w * h];
    for y in 0..h {
        let y0 = y.saturating_sub(radius);
        let y1 = (y + radius + 1).min(h);
        for x in 0..w {
            let x0 = x.saturating_sub(radius);
            let x1 = (x + radius + 1).min(w);
            let count = ((y1 - y0) * (x1 - x0)) as u32;
            let sum = at(x1, y1)
                .wrapping_add(at(x0, y0))
                .wrapping_sub(at(x1, y0))
                .wrapping_sub(at(x0, y1));
            let mean = (sum / count.max(1)) as i32;
            let p = i32::from(src.at(x, y));
            if let Some(bit) = bits.get_mut(y * w + x) {
                *bit = p < mean - offset;
            }
        }
    }
    Bitmap {
        width: w,
        height: h,
        bits,
    }
}
