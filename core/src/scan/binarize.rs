//! Image preparation for the passes: resampling for the scale pyramid and a local-mean threshold
//! that copes with uneven light and glare.

use super::deadline::Deadline;
use super::frame::Plane;

/// `sum / count` for the means of the resampling: a multiply and a shift instead of a division
/// per pixel. With `m = ⌊2³²/count⌋ + 1`, `sum · m / 2³²` exceeds `sum / count` by less than
/// `sum / 2³²`, which stays below `1 / count` while `sum · count < 2³²`; sums of bytes have
/// `sum ≤ 255 · count`, so the floor is exact for every count up to 4096 (larger counts divide).
#[derive(Clone, Copy)]
struct Mean {
    count: u32,
    factor: u64,
}

impl Mean {
    fn of(count: u32) -> Self {
        let count = count.max(1);
        Self {
            count,
            factor: (1u64 << 32) / u64::from(count) + 1,
        }
    }

    #[inline]
    fn apply(self, sum: u32) -> u8 {
        let mean = if self.count <= 4096 {
            (u64::from(sum) * self.factor) >> 32
        } else {
            u64::from(sum / self.count)
        };
        mean.min(255) as u8
    }
}

/// Shrink by an integer factor, averaging each `factor`×`factor` block (a partial block at the
/// right or bottom edge is dropped).
pub(crate) fn downscale(src: &Plane, factor: usize) -> Plane {
    if factor <= 1 {
        return src.clone();
    }
    downscale_rows(&src.pixels, src.width, src.height, src.width, factor)
}

/// [`downscale`] reading a strided luma buffer in place (a camera frame, no tight copy first);
/// rows the buffer lacks count as zeros (a validated frame has them all).
pub(crate) fn downscale_rows(
    data: &[u8],
    src_width: usize,
    src_height: usize,
    stride: usize,
    factor: usize,
) -> Plane {
    let factor = factor.max(1);
    let width = (src_width / factor).max(1);
    let height = (src_height / factor).max(1);
    if factor == 2 && src_width >= 2 && src_height >= 2 {
        return halve_rows(data, stride, width, height);
    }
    let mean = Mean::of((factor * factor) as u32);
    // Each output row sums its band of source rows into per-column totals (straight loops over
    // whole rows), then each output pixel adds `factor` of those totals.
    let mut totals = vec![0u32; src_width];
    let mut pixels = vec![0u8; width * height];
    for (oy, out_row) in pixels.chunks_mut(width).enumerate() {
        add_rows(&mut totals, data, stride, oy * factor..(oy + 1) * factor);
        for (out, block) in out_row.iter_mut().zip(totals.chunks_exact(factor)) {
            let sum: u32 = block.iter().sum();
            *out = mean.apply(sum);
        }
    }
    Plane {
        width,
        height,
        pixels,
    }
}

/// [`downscale_rows`] by 2, the common case (the coarse and half passes): each output pixel the
/// floor of the mean of its 2×2 block, from 16-bit sums of two rows (loops the compiler
/// vectorises).
fn halve_rows(data: &[u8], stride: usize, width: usize, height: usize) -> Plane {
    let mut pixels = Vec::with_capacity(width * height);
    let mut pairs = vec![0u16; 2 * width];
    let mut rows = data.chunks(stride.max(1));
    for _ in 0..height {
        let (top, bottom) = (
            first_pixels(rows.next(), 2 * width),
            first_pixels(rows.next(), 2 * width),
        );
        if top.len() == pairs.len() && bottom.len() == pairs.len() {
            for ((p, &a), &b) in pairs.iter_mut().zip(top).zip(bottom) {
                *p = u16::from(a) + u16::from(b);
            }
        } else {
            // Rows the buffer lacks count as zeros.
            pairs.fill(0);
            for row in [top, bottom] {
                for (p, &a) in pairs.iter_mut().zip(row) {
                    *p += u16::from(a);
                }
            }
        }
        pixels.extend(pairs.chunks_exact(2).map(|c| match c {
            [a, b] => ((a + b) >> 2) as u8,
            _ => 0,
        }));
    }
    Plane {
        width,
        height,
        pixels,
    }
}

/// The first `n` pixels of a row (all of a shorter one; none of a missing one).
fn first_pixels(row: Option<&[u8]>, n: usize) -> &[u8] {
    row.map_or(&[], |r| r.get(..n).unwrap_or(r))
}

/// Running totals of `values` into `totals[1..]`: `totals[i + 1]` is the sum of `values[..=i]`
/// (`totals[0]` stays 0). Wrapping: the difference of two totals is exact while the true sum of
/// its range fits in 32 bits.
#[inline]
fn running_totals<T: Copy + Into<u32>>(totals: &mut [u32], values: &[T]) {
    let mut running = 0u32;
    for (t, &v) in totals.iter_mut().skip(1).zip(values) {
        running = running.wrapping_add(v.into());
        *t = running;
    }
}

/// Column sums over the rows `rows` of a strided buffer: the first row is written (no clearing
/// pass), the others added; columns or rows the buffer lacks count as zeros.
fn add_rows<T: Copy + From<u8> + std::ops::AddAssign>(
    sums: &mut [T],
    data: &[u8],
    stride: usize,
    rows: std::ops::Range<usize>,
) {
    let mut source = data.chunks(stride.max(1)).skip(rows.start).take(rows.len());
    match source.next() {
        Some(first) => {
            let width = first.len().min(sums.len());
            let (head, tail) = sums.split_at_mut(width);
            for (t, &p) in head.iter_mut().zip(first) {
                *t = T::from(p);
            }
            tail.fill(T::from(0));
        }
        None => sums.fill(T::from(0)),
    }
    for row in source {
        for (t, &p) in sums.iter_mut().zip(row) {
            *t += T::from(p);
        }
    }
}

/// The size [`fit`] shrinks a `width`×`height` plane to, and its factor (source pixels per output
/// pixel); `None` when the plane already fits.
pub(crate) fn fit_size(
    width: usize,
    height: usize,
    max_side: usize,
) -> Option<(usize, usize, f32)> {
    let long = width.max(height);
    if long <= max_side || max_side == 0 {
        return None;
    }
    let f = long as f32 / max_side as f32;
    let w = ((width as f32 / f).round() as usize).max(1);
    let h = ((height as f32 / f).round() as usize).max(1);
    Some((w, h, f))
}

/// Shrink so the longest side is at most `max_side` (fractional factor, each output pixel the mean
/// of its source footprint); returns the plane and the factor (source pixels per output pixel).
#[cfg(test)]
pub(crate) fn fit(src: &Plane, max_side: usize) -> (Plane, f32) {
    fit_rows(&src.pixels, src.width, src.height, src.width, max_side)
        .unwrap_or_else(|| (src.clone(), 1.0))
}

/// [`fit`] reading a strided luma buffer in place (a camera frame, no tight copy first); `None`
/// when it already fits (or would shrink by more than 63, which no frame within MAX_DIMENSION
/// does). Rows the buffer lacks count as zeros (a validated frame has them all).
pub(crate) fn fit_rows(
    data: &[u8],
    src_width: usize,
    src_height: usize,
    stride: usize,
    max_side: usize,
) -> Option<(Plane, f32)> {
    let (width, height, f) = fit_size(src_width, src_height, max_side)?;
    // Footprints of at most 64×64 pixels: a band of source rows sums to 16 bits per column, and
    // every footprint's mean is one exact multiplication (Mean). Frames within MAX_DIMENSION
    // shrink by at most 8192 / 640.
    if f > 63.0 {
        return None;
    }
    let span = |o: usize, limit: usize| {
        let a = ((o as f32 * f) as usize).min(limit - 1);
        let b = (((o + 1) as f32 * f) as usize).clamp(a + 1, limit);
        (a, b)
    };
    // Column spans once; each output row sums its band of source rows (16-bit column sums, a
    // straight loop over whole rows), then running per-column totals (`totals[x + 1]` is the
    // band's sum over columns 0..=x), so each output pixel's sum is one difference of two totals,
    // and its mean one multiply by the reciprocal of its footprint, per column for the band's
    // row count (which takes two values).
    let columns: Vec<(usize, usize)> = (0..width).map(|o| span(o, src_width)).collect();
    let widths: Vec<u32> = columns.iter().map(|&(a, b)| (b - a) as u32).collect();
    let mut factors = vec![0u64; width];
    let mut factors_for = 0u32;
    let mut band = vec![0u16; src_width];
    let mut totals = vec![0u32; src_width + 1];
    // Filled by `extend` (each byte written once, no zeroing first).
    let mut pixels = Vec::with_capacity(width * height);
    for oy in 0..height {
        let (y0, y1) = span(oy, src_height);
        add_rows(&mut band, data, stride, y0..y1);
        // Wrapping: a difference of two wrapped totals is exact while the footprint's own sum
        // fits (255 × 64², far below 2^32).
        running_totals(&mut totals, &band);
        let rows = (y1 - y0) as u32;
        if rows != factors_for {
            for (factor, &w) in factors.iter_mut().zip(&widths) {
                *factor = Mean::of(rows * w).factor;
            }
            factors_for = rows;
        }
        let total = |x: usize| totals.get(x).copied().unwrap_or(0);
        pixels.extend(columns.iter().zip(&factors).map(|(&(x0, x1), &factor)| {
            let sum = total(x1).wrapping_sub(total(x0));
            ((u64::from(sum) * factor) >> 32).min(255) as u8
        }));
    }
    pixels.resize(width * height, 0);
    Some((
        Plane {
            width,
            height,
            pixels,
        },
        f,
    ))
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

/// The narrowest span of grey levels (between the darkest and the lightest two hundredths of a
/// frame's pixels) a frame may have and be read without a stretch: at or above it, the local-mean
/// threshold's fixed offset is a small fraction of the contrast.
const NARROW_SPAN: usize = 96;
/// A frame whose lightest two hundredths reach this level has clipped highlights (over-exposed,
/// or a label in glare).
const CLIPPED: usize = 250;
/// A frame whose darkest two hundredths stay at or below this level has deep shade.
const DEEP_SHADE: usize = 24;

/// How a frame is exposed: the grey levels of its darkest and of its lightest two hundredths,
/// from every second pixel of every fourth row.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Exposure {
    lo: usize,
    hi: usize,
}

impl Exposure {
    pub(crate) fn of(data: &[u8], w: usize, h: usize, stride: usize) -> Option<Self> {
        let mut histogram = [0u32; 256];
        let mut n = 0u32;
        for row in data.chunks(stride.max(1)).take(h).step_by(4) {
            for &p in row.iter().take(w).step_by(2) {
                if let Some(c) = histogram.get_mut(usize::from(p)) {
                    *c += 1;
                    n += 1;
                }
            }
        }
        let cut = n / 50;
        // The first level, counting from the dark end or from the light end, past `cut` pixels.
        let past_cut = |levels: &mut dyn Iterator<Item = usize>| {
            let mut seen = 0u32;
            for v in levels {
                seen += histogram.get(v).copied().unwrap_or(0);
                if seen > cut {
                    return Some(v);
                }
            }
            None
        };
        Some(Self {
            lo: past_cut(&mut (0..256))?,
            hi: past_cut(&mut (0..256).rev())?,
        })
    }

    /// A lookup table that stretches the grey levels of an under- or over-exposed frame (a span
    /// under [`NARROW_SPAN`] levels) over the whole range; `None` for a frame already spanning
    /// enough levels (the table would change little) or one almost flat (nothing to read).
    pub(crate) fn stretch(self) -> Option<[u8; 256]> {
        let span = self.hi.checked_sub(self.lo)?;
        if !(4..NARROW_SPAN).contains(&span) {
            return None;
        }
        // The extremes widened by a quarter of the span on each side, so that a code's ink or
        // paper a little beyond the frame's bulk is not clipped.
        let lo = self.lo.saturating_sub(span / 4);
        let hi = (self.hi + span / 4).min(255);
        let span = (hi - lo).max(1);
        let mut table = [0u8; 256];
        for (v, t) in table.iter_mut().enumerate() {
            *t = (v.saturating_sub(lo) * 255 / span).min(255) as u8;
        }
        Some(table)
    }

    /// Whether the lightest pixels are clipped (see [`highlight_table`]).
    pub(crate) fn clipped(self) -> bool {
        self.hi >= CLIPPED
    }

    /// Whether part of the frame lies in deep shade (see [`shade_table`]).
    pub(crate) fn deep_shade(self) -> bool {
        self.lo <= DEEP_SHADE
    }
}

/// A lookup table for a frame under a strong gradient of light: the logarithm of the grey level
/// (spread over 0–255), so that the same ink on the same paper differs by about the same number
/// of levels in the shade as in the light, and the threshold's fixed offset fits both.
pub(crate) fn shade_table() -> [u8; 256] {
    let top = 256f32.ln();
    let mut table = [0u8; 256];
    for (v, t) in table.iter_mut().enumerate() {
        *t = (255.0 * (1.0 + v as f32).ln() / top)
            .round()
            .clamp(0.0, 255.0) as u8;
    }
    table
}

/// The mirror of [`shade_table`] for highlights: the light levels spread out and the dark ones
/// pressed together (a label in glare, an over-exposed frame whose background is not).
pub(crate) fn highlight_table() -> [u8; 256] {
    let shade = shade_table();
    let mut table = [0u8; 256];
    for (v, t) in table.iter_mut().enumerate() {
        *t = 255 - shade.get(255 - v).copied().unwrap_or(0);
    }
    table
}

/// `src` with each grey level replaced through `table`.
pub(crate) fn apply_table(src: &Plane, table: &[u8; 256]) -> Plane {
    Plane {
        width: src.width,
        height: src.height,
        pixels: src
            .pixels
            .iter()
            .map(|&p| table.get(usize::from(p)).copied().unwrap_or(p))
            .collect(),
    }
}

/// A binary image, one byte a pixel: 1 is dark, 0 light (bytes, so a row can be read eight
/// pixels at a time).
pub(crate) struct Bitmap {
    pub width: usize,
    pub height: usize,
    pub bits: Vec<u8>,
}

impl Bitmap {
    #[inline]
    pub fn dark(&self, x: usize, y: usize) -> bool {
        self.bits.get(y * self.width + x).is_some_and(|&b| b != 0)
    }
}

/// The end of the run of dark (1) or light (0) pixels that starts at `from` in a row of 0/1
/// bytes: eight pixels at a time while they all match, then the first that does not.
#[inline]
pub(crate) fn run_end(row: &[u8], from: usize, dark: bool) -> usize {
    let same = if dark { 0x0101_0101_0101_0101u64 } else { 0 };
    let mut x = from;
    while let Some(chunk) = row.get(x..x + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let differ = u64::from_le_bytes(word) ^ same;
        if differ != 0 {
            return x + (differ.trailing_zeros() / 8) as usize;
        }
        x += 8;
    }
    while let Some(&b) = row.get(x) {
        if (b != 0) != dark {
            return x;
        }
        x += 1;
    }
    row.len()
}

/// Threshold each pixel against the mean of a square window of `radius` around it, less `offset`.
/// Flat areas (little local contrast) count as light, so glare and blank paper do not turn into
/// noise. From a radius of 32 (windows of 65 px) the windows are shared by square blocks of pixels
/// (a sixteenth of the radius, at most 4 px a side): each block's threshold is the mean of the
/// window around its centre (rounded down), which moves a pixel's window by at most 1.5 px, and
/// leaves one window sum per block and one byte comparison per pixel.
#[cfg(test)]
pub(crate) fn local_mean_threshold(src: &Plane, radius: usize, offset: i32) -> Bitmap {
    let block = (radius / 16).clamp(1, 4);
    let bitmap = if block >= 2 {
        block_mean_threshold(src, radius, offset, block, None)
    } else {
        exact_mean_threshold(src, radius, offset, None)
    };
    bitmap.unwrap_or(Bitmap {
        width: src.width,
        height: src.height,
        bits: vec![0; src.width * src.height],
    })
}

/// [`local_mean_threshold`] that looks at the deadline every [`ROWS_PER_CHECK`] rows and gives up
/// (`None`) once it has passed: a big plane's threshold takes milliseconds.
pub(crate) fn local_mean_threshold_until(
    src: &Plane,
    radius: usize,
    offset: i32,
    deadline: &Deadline,
) -> Option<Bitmap> {
    let block = (radius / 16).clamp(1, 4);
    if block >= 2 {
        block_mean_threshold(src, radius, offset, block, Some(deadline))
    } else {
        exact_mean_threshold(src, radius, offset, Some(deadline))
    }
}

/// Rows thresholded between two looks at the deadline.
pub(crate) const ROWS_PER_CHECK: usize = 32;

/// Whether a threshold stops before row `y` (at every [`ROWS_PER_CHECK`]-th row, the deadline
/// passed; the rows up to the next check are counted as work).
fn stop_at(deadline: Option<&Deadline>, y: usize, width: usize) -> bool {
    match deadline {
        Some(d) if y.is_multiple_of(ROWS_PER_CHECK) => {
            if d.passed() {
                return true;
            }
            d.spend((ROWS_PER_CHECK * width) as u64);
            false
        }
        _ => false,
    }
}

/// Move the running column sums of `src` from the rows `rows_in` to `want` (both move down only):
/// each row is added once when it enters and taken off once when it leaves, a row entering and a
/// row leaving together in one pass over the columns. Wrapping: only differences of the sums are
/// used, and those stay exact while a window's true sum fits in 32 bits.
fn slide_columns(
    columns: &mut [u32],
    src: &Plane,
    rows_in: &mut std::ops::Range<usize>,
    want: std::ops::Range<usize>,
) {
    let w = src.width;
    let row = |y: usize| src.pixels.get(y * w..(y + 1) * w).unwrap_or(&[]);
    let (mut low, mut high) = (rows_in.start, rows_in.end);
    while high < want.end && low < want.start {
        for ((c, &add), &sub) in columns.iter_mut().zip(row(high)).zip(row(low)) {
            *c = c.wrapping_add(u32::from(add)).wrapping_sub(u32::from(sub));
        }
        high += 1;
        low += 1;
    }
    while high < want.end {
        for (c, &p) in columns.iter_mut().zip(row(high)) {
            *c = c.wrapping_add(u32::from(p));
        }
        high += 1;
    }
    while low < want.start {
        for (c, &p) in columns.iter_mut().zip(row(low)) {
            *c = c.wrapping_sub(u32::from(p));
        }
        low += 1;
    }
    *rows_in = low..high;
}

/// [`local_mean_threshold`] with one window per `block`×`block` pixels. The same running column
/// sums as [`exact_mean_threshold`], but the prefix sum and the divisions run once per block row
/// and column; each pixel then costs one byte comparison against its block's threshold.
fn block_mean_threshold(
    src: &Plane,
    radius: usize,
    offset: i32,
    block: usize,
    deadline: Option<&Deadline>,
) -> Option<Bitmap> {
    let (w, h) = (src.width, src.height);
    if w == 0 || h == 0 || src.pixels.len() < w * h {
        return Some(Bitmap {
            width: w,
            height: h,
            bits: vec![0; w * h],
        });
    }
    // Window sums stay below 2^32 (255 × 4001²), so differences of wrapped sums are exact.
    let radius = radius.clamp(1, 2000);
    let block = block.max(1);
    let offset = u32::try_from(offset.clamp(0, 256)).unwrap_or(0);
    let source_row = |y: usize| src.pixels.get(y * w..(y + 1) * w).unwrap_or(&[]);
    // Each block column's window, around its centre column.
    let windows: Vec<(usize, usize)> = (0..w.div_ceil(block))
        .map(|bx| {
            let cx = (bx * block + (block - 1) / 2).min(w - 1);
            (cx.saturating_sub(radius), (cx + radius + 1).min(w))
        })
        .collect();
    // The block column of each pixel column.
    let owner: Vec<usize> = (0..w).map(|x| x / block).collect();
    let mut columns = vec![0u32; w];
    let mut prefix = vec![0u32; w + 1];
    // Dark when p < floor(mean) − offset: per block column, then per pixel column, the block's
    // floor(mean) − offset (0 when negative, so nothing is dark).
    let mut block_threshold = vec![0u8; windows.len()];
    let mut threshold = vec![0u8; w];
    // The rows in the column sums.
    let mut rows_in = 0..0;
    // Filled by `extend` (each byte written once, no zeroing first).
    let mut bits = Vec::with_capacity(w * h);
    for first in (0..h).step_by(block) {
        // (`block` divides ROWS_PER_CHECK: 1, 2 or 4.)
        if stop_at(deadline, first, w) {
            return None;
        }
        let cy = (first + (block - 1) / 2).min(h - 1);
        let y0 = cy.saturating_sub(radius);
        let y1 = (cy + radius + 1).min(h);
        slide_columns(&mut columns, src, &mut rows_in, y0..y1);
        running_totals(&mut prefix, &columns);
        let rows = (y1 - y0) as u32;
        let at = |i: usize| prefix.get(i).copied().unwrap_or(0);
        for (t, &(x0, x1)) in block_threshold.iter_mut().zip(&windows) {
            let sum = at(x1).wrapping_sub(at(x0));
            let mean = sum / (rows * (x1 - x0) as u32).max(1);
            *t = mean.saturating_sub(offset).min(255) as u8;
        }
        for (t, &b) in threshold.iter_mut().zip(&owner) {
            *t = block_threshold.get(b).copied().unwrap_or(0);
        }
        for y in first..(first + block).min(h) {
            bits.extend(
                source_row(y)
                    .iter()
                    .zip(&threshold)
                    .map(|(&p, &t)| u8::from(p < t)),
            );
        }
    }
    bits.resize(w * h, 0);
    Some(Bitmap {
        width: w,
        height: h,
        bits,
    })
}

/// [`local_mean_threshold`] with a window per pixel. The window sums come from running column
/// sums (each source row added once when the window reaches it and taken off once when it leaves)
/// and one prefix sum per row over them: O(1) per pixel like an integral image, but with two rows
/// of working memory instead of a table the size of the plane.
fn exact_mean_threshold(
    src: &Plane,
    radius: usize,
    offset: i32,
    deadline: Option<&Deadline>,
) -> Option<Bitmap> {
    let w = src.width;
    let h = src.height;
    let radius = radius.max(1);
    // An offset above 255 leaves nothing dark; clamping it keeps the products below small.
    let offset = u32::try_from(offset.clamp(0, 256)).unwrap_or(0);
    // Dark when p < floor(sum / count) − offset, i.e. (p + offset + 1) · count ≤ sum.
    let is_dark = |p: u8, sum: u32, count: u64| {
        u64::from(u32::from(p) + offset + 1) * count <= u64::from(sum)
    };
    // u32 with wrapping arithmetic: a window's true sum stays far below 2^32 (255 × 401²), so
    // differences of wrapped sums are exact.
    let mut columns = vec![0u32; w];
    let mut prefix = vec![0u32; w + 1];
    // The rows in the column sums.
    let mut rows_in = 0..0;
    let mut bits = Vec::with_capacity(w * h);
    let span = 2 * radius + 1;
    // The interior, where the window is whole horizontally.
    let interior = if w > span {
        radius..w - radius - 1
    } else {
        0..0
    };
    for (y, src_row) in src.pixels.chunks_exact(w.max(1)).take(h).enumerate() {
        if stop_at(deadline, y, w) {
            return None;
        }
        let y0 = y.saturating_sub(radius);
        let y1 = (y + radius + 1).min(h);
        slide_columns(&mut columns, src, &mut rows_in, y0..y1);
        running_totals(&mut prefix, &columns);
        let rows = (y1 - y0) as u64;
        let row_start = bits.len();
        bits.resize(row_start + w, 0);
        let Some(out) = bits.get_mut(row_start..) else {
            break;
        };
        // The interior in one straight loop: the window's pixel count is the same for the whole
        // run, and while (256 + offset) times it fits in 32 bits (windows up to 2896² pixels)
        // the comparison stays in 32 bits, which the compiler vectorises.
        let count = rows * span as u64;
        let narrow = u32::try_from(count)
            .ok()
            .filter(|&c| c.checked_mul(256 + offset + 1).is_some());
        if let (Some(o), Some(s)) = (out.get_mut(interior.clone()), src_row.get(interior.clone())) {
            let sums = prefix.iter().skip(span).zip(prefix.iter());
            if let Some(count) = narrow {
                for ((bit, &p), (&right, &left)) in o.iter_mut().zip(s).zip(sums) {
                    *bit =
                        u8::from((u32::from(p) + offset + 1) * count <= right.wrapping_sub(left));
                }
            } else {
                for ((bit, &p), (&right, &left)) in o.iter_mut().zip(s).zip(sums) {
                    *bit = u8::from(is_dark(p, right.wrapping_sub(left), count));
                }
            }
        }
        // The borders, with clipped windows.
        let interior_end = if interior.is_empty() { 0 } else { interior.end };
        for x in (0..interior.start).chain(interior_end..w) {
            let x0 = x.saturating_sub(radius);
            let x1 = (x + radius + 1).min(w);
            let at = |i: usize| prefix.get(i).copied().unwrap_or(0);
            let sum = at(x1).wrapping_sub(at(x0));
            if let (Some(bit), Some(&p)) = (out.get_mut(x), src_row.get(x)) {
                *bit = u8::from(is_dark(p, sum, rows * (x1 - x0) as u64));
            }
        }
    }
    bits.resize(w * h, 0);
    Some(Bitmap {
        width: w,
        height: h,
        bits,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The direct definition: the mean of the clipped window, compared pixel by pixel (a block
    /// of one pixel is the pixel itself).
    fn naive(src: &Plane, radius: usize, offset: i32) -> Vec<bool> {
        naive_blocks(src, radius, offset, 1)
    }

    /// The block threshold's definition: every pixel against the window around the centre of
    /// its block (rounded down), less the offset.
    fn naive_blocks(src: &Plane, radius: usize, offset: i32, block: usize) -> Vec<bool> {
        let centre =
            |v: usize, limit: usize| ((v / block) * block + (block - 1) / 2).min(limit - 1);
        let mut out = Vec::new();
        for y in 0..src.height {
            for x in 0..src.width {
                let (cx, cy) = (centre(x, src.width), centre(y, src.height));
                let (y0, y1) = (cy.saturating_sub(radius), (cy + radius + 1).min(src.height));
                let (x0, x1) = (cx.saturating_sub(radius), (cx + radius + 1).min(src.width));
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

    #[test]
    fn block_mean_threshold_matches_its_definition() {
        // Sizes that are and are not multiples of the block, windows wider than the plane,
        // offsets below 0 and above 255.
        for (w, h, radius, offset, block) in [
            (61, 37, 16, 8, 4),
            (64, 48, 33, 8, 2),
            (9, 40, 40, 8, 4),
            (100, 3, 20, 8, 3),
            (1, 1, 32, 8, 2),
            (90, 70, 35, 0, 4),
            (40, 30, 17, -5, 4),
            (40, 30, 17, 300, 4),
        ] {
            let plane = noise_plane(w, h, (w * h + radius) as u64);
            let fast =
                block_mean_threshold(&plane, radius, offset, block, None).expect("no deadline");
            let want = naive_blocks(&plane, radius, offset.max(0), block);
            let bits: Vec<bool> = fast.bits.iter().map(|&b| b == 1).collect();
            assert!(fast.bits.iter().all(|&b| b <= 1));
            assert_eq!(
                bits, want,
                "{w}×{h} r{radius} offset {offset} block {block}"
            );
            assert!(bits.iter().any(|&b| b) || w * h < 10 || offset > 255);
        }
    }

    /// Radii up to 31 have one window per pixel; larger ones share windows in blocks of up to 4 px.
    #[test]
    fn wide_windows_are_shared_by_blocks() {
        let plane = noise_plane(70, 40, 5);
        for (radius, block) in [(12, 1), (31, 1), (32, 2), (63, 3), (64, 4), (200, 4)] {
            let want = if block == 1 {
                naive(&plane, radius, 8)
            } else {
                naive_blocks(&plane, radius, 8, block)
            };
            let got: Vec<bool> = local_mean_threshold(&plane, radius, 8)
                .bits
                .iter()
                .map(|&b| b == 1)
                .collect();
            assert_eq!(got, want, "radius {radius}");
        }
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
        for (w, h, side) in [
            (301, 157, 100),
            (64, 700, 333),
            (5, 9, 4),
            (1000, 1, 999),
            // Footprints of up to 10×10 and 63×1 source pixels (the coarse size of a big photo).
            (1300, 700, 130),
            (630, 2, 10),
        ] {
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
    fn fit_reads_a_strided_buffer_like_its_tight_copy() {
        let src = noise_plane(333, 201, 5);
        let stride = 333 + 17;
        let mut data = vec![0u8; stride * 201];
        for (row, tight) in data.chunks_mut(stride).zip(src.pixels.chunks(333)) {
            row[..333].copy_from_slice(tight);
            // Padding that must not leak into the means.
            row[333..].fill(255);
        }
        let (tight, f) = fit(&src, 120);
        let (strided, g) = fit_rows(&data, 333, 201, stride, 120).unwrap();
        assert_eq!(f, g);
        assert_eq!((strided.width, strided.height), (tight.width, tight.height));
        assert_eq!(strided.pixels, tight.pixels);
        assert!(fit_rows(&data, 333, 201, stride, 333).is_none());
        for factor in [2, 3] {
            let shrunk = downscale_rows(&data, 333, 201, stride, factor);
            assert_eq!(shrunk.pixels, downscale(&src, factor).pixels, "×{factor}");
        }
    }

    #[test]
    fn means_by_multiplication_are_exact() {
        for count in (1u32..=4200).chain([9000, 65_000]) {
            let mean = Mean::of(count);
            for sum in [
                0,
                1,
                count - 1,
                count,
                count + 1,
                128 * count - 1,
                255 * count,
            ] {
                assert_eq!(u32::from(mean.apply(sum)), sum / count, "{sum} / {count}");
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
    fn run_end_finds_the_first_pixel_of_the_other_colour() {
        let mut seed = 11u64;
        for len in [0usize, 1, 7, 8, 9, 15, 16, 17, 63, 200] {
            // Runs of every length from 1 to 20, so changes fall at every offset in a word.
            let mut row = Vec::with_capacity(len);
            let mut colour = 0u8;
            while row.len() < len {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let run = 1 + (seed >> 59) as usize % 20;
                row.extend(std::iter::repeat_n(colour, run.min(len - row.len())));
                colour ^= 1;
            }
            for from in 0..len {
                for dark in [false, true] {
                    let want = (from..len).find(|&x| (row[x] == 1) != dark).unwrap_or(len);
                    assert_eq!(run_end(&row, from, dark), want, "len {len} from {from}");
                }
            }
        }
    }

    #[test]
    fn local_mean_threshold_matches_its_definition() {
        let mut seed = 3u64;
        for (w, h, radius, offset) in [
            (61, 37, 5, 8),
            (9, 40, 12, 8),
            (100, 3, 2, 8),
            (1, 1, 1, 8),
            (90, 70, 20, 0),
            (40, 30, 3, -5),
            (40, 30, 3, 300),
        ] {
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
            let fast = exact_mean_threshold(&plane, radius, offset, None).expect("no deadline");
            let want = naive(&plane, radius, offset.max(0));
            let bits: Vec<bool> = fast.bits.iter().map(|&b| b == 1).collect();
            assert!(fast.bits.iter().all(|&b| b <= 1));
            assert_eq!(bits, want, "{w}×{h} r{radius} offset {offset}");
            assert!(bits.iter().any(|&b| b) || w * h < 10 || offset > 255);
        }
    }

    /// A frame spanning few grey levels is stretched over the whole range (its dark bulk to black,
    /// its light bulk to white); one spanning many, or a flat one, is left as it is; clipped
    /// highlights and deep shade are told.
    #[test]
    fn exposure_tells_narrow_clipped_and_shaded_frames() {
        // The left half at 4, the right half at 17 (an under-exposed frame).
        let dark: Vec<u8> = (0..64 * 64)
            .map(|i| if i % 64 < 32 { 4 } else { 17 })
            .collect();
        let exposure = Exposure::of(&dark, 64, 64, 64).unwrap();
        let table = exposure.stretch().unwrap();
        assert!(table[4] < 60 && table[17] > 195, "{table:?}");
        assert!(exposure.deep_shade() && !exposure.clipped());
        let wide: Vec<u8> = (0..64 * 64)
            .map(|i| if i % 64 < 32 { 20 } else { 255 })
            .collect();
        let exposure = Exposure::of(&wide, 64, 64, 64).unwrap();
        assert!(exposure.stretch().is_none());
        assert!(exposure.clipped() && exposure.deep_shade());
        let flat = vec![128u8; 64 * 64];
        let exposure = Exposure::of(&flat, 64, 64, 64).unwrap();
        assert!(exposure.stretch().is_none() && !exposure.clipped() && !exposure.deep_shade());
        // The shade table lifts dark levels apart, the highlight table light ones.
        let (shade, light) = (shade_table(), highlight_table());
        assert!(shade[17] - shade[4] > 50 && light[255] - light[242] > 60);
        assert_eq!(
            (shade[0], shade[255], light[0], light[255]),
            (0, 255, 0, 255)
        );
    }
}
