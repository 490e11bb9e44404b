//! Camera-like test images made from a fixed seed, for the scan bench: single-code preview
//! frames (1280×720 and 1920×1080) and a 12-megapixel photo of a sheet of labels.
//!
//! The payloads are of the project's own kinds (`WG1:` texts of Base45, registry numbers:
//! machine ids and certificate numbers, lookup URLs). A scene is drawn through a homography
//! (rotation and perspective), lit by an exposure gain and a gradient, blurred, given sensor noise
//! and stored as a JPEG, which is what both readers then decode.

use std::io::Cursor;

use image::ExtendedColorType;
use image::codecs::jpeg::JpegEncoder;

/// A small deterministic generator (SplitMix64), so every run makes the same images.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [lo, hi).
    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * ((self.next() >> 11) as f64 / (1u64 << 53) as f64)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// About normal, mean 0, deviation 1 (a sum of four uniforms).
    fn normalish(&mut self) -> f64 {
        let s: f64 = (0..4).map(|_| self.range(0.0, 1.0)).sum();
        (s - 2.0) * 3f64.sqrt()
    }
}

/// One generated image: its JPEG bytes and the texts of the codes in it.
pub struct Generated {
    pub name: String,
    pub width: usize,
    pub height: usize,
    pub jpeg: Vec<u8>,
    pub texts: Vec<String>,
}

const BASE45: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";

/// A payload of one of the project's kinds, chosen by `kind % 4`.
pub fn payload(rng: &mut Rng, kind: usize) -> String {
    let digits = |rng: &mut Rng, n: usize| -> String {
        (0..n)
            .map(|_| char::from(b'0' + rng.below(10) as u8))
            .collect()
    };
    match kind % 4 {
        // A signed code: "WG1:" and Base45 of a COSE_Sign1 (130–190 characters).
        0 => {
            let n = 130 + rng.below(60);
            let body: String = (0..n)
                .map(|_| char::from(BASE45[rng.below(BASE45.len())]))
                .collect();
            format!("WG1:{body}")
        }
        // A machine id from the registry.
        1 => {
            let region = ["SH", "BJ", "GD", "JS", "ZJ"][rng.below(5)];
            format!("{region}-20{}-{}", 20 + rng.below(7), digits(rng, 6))
        }
        // A certificate number: "T" and an 18-character ID number.
        2 => format!("T{}{}", digits(rng, 17), digits(rng, 1)),
        // A lookup URL for a certificate.
        _ => format!(
            "https://registry.example.cn/cert/query?no=T{}&type=weld",
            digits(rng, 18)
        ),
    }
}

/// A code's modules, quiet zone included (`true` = dark).
struct Modules {
    side: usize,
    dark: Vec<bool>,
}

const QUIET: usize = 4;

fn modules(text: &str) -> Option<Modules> {
    let code = qrcode::QrCode::new(text.as_bytes()).ok()?;
    let n = code.width();
    let colors = code.to_colors();
    let side = n + 2 * QUIET;
    let mut dark = vec![false; side * side];
    for y in 0..n {
        for x in 0..n {
            dark[(y + QUIET) * side + x + QUIET] = colors[y * n + x] == qrcode::Color::Dark;
        }
    }
    Some(Modules { side, dark })
}

impl Modules {
    /// Whether the point (in modules, quiet zone included) is dark; outside the code it is not.
    fn at(&self, u: f64, v: f64) -> bool {
        if u < 0.0 || v < 0.0 {
            return false;
        }
        let (x, y) = (u as usize, v as usize);
        x < self.side && y < self.side && self.dark[y * self.side + x]
    }
}

/// A plane homography (row-major 3×3).
#[derive(Clone, Copy)]
struct Hom([f64; 9]);

impl Hom {
    /// The map of the unit square's corners (0,0), (1,0), (1,1), (0,1) to `q`.
    fn square_to(q: [(f64, f64); 4]) -> Self {
        let [(x0, y0), (x1, y1), (x2, y2), (x3, y3)] = q;
        let (dx1, dy1) = (x1 - x2, y1 - y2);
        let (dx2, dy2) = (x3 - x2, y3 - y2);
        let (sx, sy) = (x0 - x1 + x2 - x3, y0 - y1 + y2 - y3);
        let den = dx1 * dy2 - dx2 * dy1;
        let g = (sx * dy2 - dx2 * sy) / den;
        let h = (dx1 * sy - sx * dy1) / den;
        Self([
            x1 - x0 + g * x1,
            x3 - x0 + h * x3,
            x0,
            y1 - y0 + g * y1,
            y3 - y0 + h * y3,
            y0,
            g,
            h,
            1.0,
        ])
    }

    fn inverse(&self) -> Self {
        let m = self.0;
        Self([
            m[4] * m[8] - m[5] * m[7],
            m[2] * m[7] - m[1] * m[8],
            m[1] * m[5] - m[2] * m[4],
            m[5] * m[6] - m[3] * m[8],
            m[0] * m[8] - m[2] * m[6],
            m[2] * m[3] - m[0] * m[5],
            m[3] * m[7] - m[4] * m[6],
            m[1] * m[6] - m[0] * m[7],
            m[0] * m[4] - m[1] * m[3],
        ])
    }

    fn apply(&self, x: f64, y: f64) -> (f64, f64) {
        let m = self.0;
        let w = m[6] * x + m[7] * y + m[8];
        (
            (m[0] * x + m[1] * y + m[2]) / w,
            (m[3] * x + m[4] * y + m[5]) / w,
        )
    }
}

/// How a scene is photographed.
struct Look {
    /// Exposure: scene values are multiplied by this (over 1 clips the light parts).
    gain: f64,
    /// Light falling off across the frame: gain at the far side relative to the near one.
    gradient: f64,
    /// Direction of the gradient (radians).
    angle: f64,
    blur: usize,
    noise: f64,
    quality: u8,
}

impl Look {
    fn random(rng: &mut Rng) -> Self {
        Self {
            gain: match rng.below(5) {
                0 => rng.range(0.35, 0.6),
                1 => rng.range(1.3, 1.7),
                _ => rng.range(0.8, 1.15),
            },
            gradient: rng.range(0.45, 1.0),
            angle: rng.range(0.0, std::f64::consts::TAU),
            blur: rng.below(3),
            noise: rng.range(2.0, 9.0),
            quality: 55 + rng.below(31) as u8,
        }
    }
}

/// Light a scene (values 0–255 as f32), blur it, add noise and store it as a JPEG.
fn photograph(
    scene: Vec<f32>,
    w: usize,
    h: usize,
    look: &Look,
    rng: &mut Rng,
) -> Result<Vec<u8>, String> {
    let mut px = scene;
    for _ in 0..2 {
        if look.blur > 0 {
            box_blur(&mut px, w, h, look.blur);
        }
    }
    let (ca, sa) = (look.angle.cos(), look.angle.sin());
    let span = (w as f64 * ca.abs() + h as f64 * sa.abs()).max(1.0);
    let mut out = vec![0u8; w * h];
    for y in 0..h {
        for x in 0..w {
            let t =
                ((x as f64 - w as f64 / 2.0) * ca + (y as f64 - h as f64 / 2.0) * sa) / span + 0.5;
            let light = look.gain * (1.0 - (1.0 - look.gradient) * t);
            let v = f64::from(px[y * w + x]) * light + look.noise * rng.normalish();
            out[y * w + x] = v.round().clamp(0.0, 255.0) as u8;
        }
    }
    let mut jpeg = Cursor::new(Vec::new());
    JpegEncoder::new_with_quality(&mut jpeg, look.quality)
        .encode(&out, w as u32, h as u32, ExtendedColorType::L8)
        .map_err(|e| e.to_string())?;
    Ok(jpeg.into_inner())
}

/// A box blur of radius `r`, rows then columns.
fn box_blur(px: &mut [f32], w: usize, h: usize, r: usize) {
    let mut line = Vec::new();
    for y in 0..h {
        line.clear();
        line.extend_from_slice(&px[y * w..(y + 1) * w]);
        blur_line(&line, &mut px[y * w..(y + 1) * w], r);
    }
    let mut col = vec![0f32; h];
    let mut blurred = vec![0f32; h];
    for x in 0..w {
        for y in 0..h {
            col[y] = px[y * w + x];
        }
        blur_line(&col, &mut blurred, r);
        for y in 0..h {
            px[y * w + x] = blurred[y];
        }
    }
}

fn blur_line(src: &[f32], dst: &mut [f32], r: usize) {
    let n = src.len();
    for (i, d) in dst.iter_mut().enumerate() {
        let lo = i.saturating_sub(r);
        let hi = (i + r + 1).min(n);
        *d = src[lo..hi].iter().sum::<f32>() / (hi - lo) as f32;
    }
}

/// A busy background: a slow wave of shade and a few flat rectangles (machine parts, cables).
fn background(rng: &mut Rng, w: usize, h: usize) -> impl Fn(f64, f64) -> f32 + use<> {
    let base = rng.range(70.0, 170.0);
    let amp = rng.range(10.0, 50.0);
    let (fx, fy) = (
        rng.range(2.0, 8.0) / w as f64,
        rng.range(2.0, 8.0) / h as f64,
    );
    let rects: Vec<(f64, f64, f64, f64, f32)> = (0..6 + rng.below(8))
        .map(|_| {
            let x = rng.range(0.0, w as f64);
            let y = rng.range(0.0, h as f64);
            (
                x,
                y,
                x + rng.range(20.0, w as f64 / 3.0),
                y + rng.range(10.0, h as f64 / 3.0),
                rng.range(15.0, 235.0) as f32,
            )
        })
        .collect();
    move |x, y| {
        for &(x0, y0, x1, y1, v) in rects.iter().rev() {
            if x >= x0 && x < x1 && y >= y0 && y < y1 {
                return v;
            }
        }
        (base + amp * (x * fx * 6.3).sin() * (y * fy * 6.3).cos()) as f32
    }
}

/// Camera preview frames with one code each: `per_size` at 1280×720 and at 1920×1080.
pub fn camera_frames(seed: u64, per_size: usize) -> Result<Vec<Generated>, String> {
    let mut rng = Rng::new(seed);
    let mut frames = Vec::new();
    for (w, h) in [(1280usize, 720usize), (1920, 1080)] {
        for i in 0..per_size {
            let text = payload(&mut rng, i);
            let code = modules(&text).ok_or("the qrcode crate refused a payload")?;
            let side = code.side as f64;
            // The label (code and its quiet zone) fills 20–65 % of the frame's height (a label
            // held close or seen from a step away), with modules of at least 2.2 px.
            let min = 2.2 * side / h as f64;
            let s = rng.range(0.2f64.max(min), 0.65f64.max(min + 0.05)) * h as f64;
            let (cx, cy) = (
                rng.range(s * 0.7, w as f64 - s * 0.7),
                rng.range(s * 0.7, (h as f64 - s * 0.7).max(s * 0.7 + 1.0)),
            );
            let turn = rng.range(-0.6, 0.6);
            let (c, sn) = (turn.cos(), turn.sin());
            let quad: Vec<(f64, f64)> = [(-0.5, -0.5), (0.5, -0.5), (0.5, 0.5), (-0.5, 0.5)]
                .iter()
                .map(|&(u, v): &(f64, f64)| {
                    let (ju, jv) = (rng.range(-0.12, 0.12), rng.range(-0.12, 0.12));
                    let (u, v) = (u + ju, v + jv);
                    (cx + s * (u * c - v * sn), cy + s * (u * sn + v * c))
                })
                .collect();
            let to_frame = Hom::square_to([quad[0], quad[1], quad[2], quad[3]]);
            let to_code = to_frame.inverse();
            let back = background(&mut rng, w, h);
            let ink = rng.range(15.0, 70.0) as f32;
            let paper = rng.range(185.0, 245.0) as f32;
            // A white label a little wider than the quiet zone.
            let margin = 1.5 / side;
            let mut scene = vec![0f32; w * h];
            for y in 0..h {
                for x in 0..w {
                    let mut sum = 0.0;
                    for (ox, oy) in [(0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)] {
                        let (fx, fy) = (x as f64 + ox, y as f64 + oy);
                        let (u, v) = to_code.apply(fx, fy);
                        sum +=
                            if u >= -margin && v >= -margin && u < 1.0 + margin && v < 1.0 + margin
                            {
                                if code.at(u * side, v * side) {
                                    ink
                                } else {
                                    paper
                                }
                            } else {
                                back(fx, fy)
                            };
                    }
                    scene[y * w + x] = sum / 4.0;
                }
            }
            let look = Look::random(&mut rng);
            let jpeg = photograph(scene, w, h, &look, &mut rng)?;
            frames.push(Generated {
                name: format!("frame-{w}x{h}-{i:02}"),
                width: w,
                height: h,
                jpeg,
                texts: vec![text],
            });
        }
    }
    Ok(frames)
}

/// A 4000×3000 photo of a sheet of `cols` × `rows` labels, each a code and lines of print,
/// seen slightly from the side under uneven light.
pub fn label_sheet(seed: u64, cols: usize, rows: usize) -> Result<Generated, String> {
    let mut rng = Rng::new(seed);
    let (w, h) = (4000usize, 3000usize);
    // Sheet units: each label is 100 × 100, its code 62 units wide (quiet zone included).
    let mut texts = Vec::new();
    let mut codes = Vec::new();
    for i in 0..cols * rows {
        let text = payload(&mut rng, i);
        codes.push(modules(&text).ok_or("the qrcode crate refused a payload")?);
        texts.push(text);
    }
    let (sw, sh) = (cols as f64 * 100.0, rows as f64 * 100.0);
    let margin = 0.04;
    let quad: Vec<(f64, f64)> = [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)]
        .iter()
        .map(|&(u, v): &(f64, f64)| {
            let x = margin + u * (1.0 - 2.0 * margin) + rng.range(-0.02, 0.02);
            let y = margin + v * (1.0 - 2.0 * margin) + rng.range(-0.02, 0.02);
            (x * w as f64, y * h as f64)
        })
        .collect();
    let to_sheet = Hom::square_to([quad[0], quad[1], quad[2], quad[3]]).inverse();
    let paper = 225.0f32;
    let ink = 35.0f32;
    let back = background(&mut rng, w, h);
    let mut scene = vec![0f32; w * h];
    for y in 0..h {
        for x in 0..w {
            let (fx, fy) = (x as f64 + 0.5, y as f64 + 0.5);
            let (u, v) = to_sheet.apply(fx, fy);
            let (u, v) = (u * sw, v * sh);
            scene[y * w + x] = if u < 0.0 || v < 0.0 || u >= sw || v >= sh {
                back(fx, fy)
            } else {
                let (col, row) = ((u / 100.0) as usize, (v / 100.0) as usize);
                let (lu, lv) = (u - col as f64 * 100.0, v - row as f64 * 100.0);
                let code = &codes[(row * cols + col).min(codes.len() - 1)];
                if lu < 1.0 || lv < 1.0 {
                    // The cut lines between labels.
                    120.0
                } else if (4.0..66.0).contains(&lu) && (4.0..66.0).contains(&lv) {
                    let k = code.side as f64 / 62.0;
                    if code.at((lu - 4.0) * k, (lv - 4.0) * k) {
                        ink
                    } else {
                        paper
                    }
                } else if (70.0..96.0).contains(&lu)
                    && lv > 10.0
                    && lv < 90.0
                    && (lv as usize) % 12 < 4
                    && !((lu * 1.7) as usize + row + col).is_multiple_of(5)
                {
                    // Lines of print beside the code.
                    ink + 30.0
                } else {
                    paper
                }
            };
        }
    }
    let look = Look {
        gain: 1.0,
        gradient: 0.6,
        angle: rng.range(0.0, std::f64::consts::TAU),
        blur: 1,
        noise: 4.0,
        quality: 85,
    };
    let jpeg = photograph(scene, w, h, &look, &mut rng)?;
    Ok(Generated {
        name: format!("sheet-{cols}x{rows}"),
        width: w,
        height: h,
        jpeg,
        texts,
    })
}
