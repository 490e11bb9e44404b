//! Luma frames borrowed from a camera, owned luma images decoded from files, and the size checks
//! that keep garbage input from allocating or panicking.

use std::io::Cursor;

use image::{DynamicImage, ImageFormat, ImageReader, Limits};

use super::ScanError;

/// The longest side accepted, in pixels.
pub const MAX_DIMENSION: u32 = 8192;
/// The most pixels accepted in one frame (40 MP: a phone's full-resolution photo).
pub const MAX_PIXELS: u64 = 40_000_000;

/// A luma (Y) plane as a camera hands it over: one byte per pixel, `stride` bytes per row.
#[derive(Debug, Clone, Copy)]
pub struct LumaFrame<'a> {
    pub data: &'a [u8],
    pub width: u32,
    pub height: u32,
    /// Bytes from the start of one row to the start of the next (≥ width).
    pub stride: u32,
}

impl<'a> LumaFrame<'a> {
    pub fn new(data: &'a [u8], width: u32, height: u32, stride: u32) -> Self {
        Self {
            data,
            width,
            height,
            stride,
        }
    }

    /// Check the frame's shape against its buffer and the size caps.
    pub fn validate(&self) -> Result<(), ScanError> {
        check_dimensions(u64::from(self.width), u64::from(self.height))?;
        if self.stride < self.width {
            return Err(ScanError::StrideTooSmall {
                stride: self.stride,
                width: self.width,
            });
        }
        let needed = u64::from(self.stride) * u64::from(self.height - 1) + u64::from(self.width);
        let got = self.data.len() as u64;
        if got < needed {
            return Err(ScanError::BufferTooShort { needed, got });
        }
        Ok(())
    }

    /// Copy the frame into a tight, owned plane (stride = width). Call after [`Self::validate`].
    pub(crate) fn to_tight(self) -> Plane {
        let w = self.width as usize;
        let h = self.height as usize;
        let stride = self.stride as usize;
        let mut pixels = Vec::with_capacity(w * h);
        for row in self.data.chunks(stride).take(h) {
            pixels.extend(row.iter().take(w));
        }
        // A validated frame always fills the plane; pad defensively instead of trusting that.
        pixels.resize(w * h, 255);
        Plane {
            width: w,
            height: h,
            pixels,
        }
    }
}

/// An owned, tightly packed luma plane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LumaImage {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
}

impl LumaImage {
    /// Borrow as a frame.
    pub fn frame(&self) -> LumaFrame<'_> {
        LumaFrame::new(&self.pixels, self.width, self.height, self.width)
    }
}

/// The working plane of the pipeline (usize sizes, stride = width).
#[derive(Debug, Clone)]
pub(crate) struct Plane {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<u8>,
}

impl Plane {
    #[inline]
    pub fn at(&self, x: usize, y: usize) -> u8 {
        self.pixels.get(y * self.width + x).copied().unwrap_or(255)
    }
}

pub(crate) fn check_dimensions(width: u64, height: u64) -> Result<(), ScanError> {
    if width == 0 || height == 0 {
        return Err(ScanError::EmptyFrame {
            width: width.min(u64::from(u32::MAX)) as u32,
            height: height.min(u64::from(u32::MAX)) as u32,
        });
    }
    if width > u64::from(MAX_DIMENSION)
        || height > u64::from(MAX_DIMENSION)
        || width * height > MAX_PIXELS
    {
        return Err(ScanError::TooLarge {
            width,
            height,
            max_dimension: MAX_DIMENSION,
            max_pixels: MAX_PIXELS,
        });
    }
    Ok(())
}

/// Decode a PNG or JPEG to luma, reading the header first and refusing oversized claims before
/// any pixel buffer is allocated. EXIF orientation is not applied (pixels stay in stored order).
pub(crate) fn decode_image(bytes: &[u8]) -> Result<LumaImage, ScanError> {
    let format = image::guess_format(bytes).map_err(|_| ScanError::UnsupportedFormat)?;
    if !matches!(format, ImageFormat::Png | ImageFormat::Jpeg) {
        return Err(ScanError::UnsupportedFormat);
    }
    let reader = || {
        let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
        let mut limits = Limits::default();
        limits.max_image_width = Some(MAX_DIMENSION);
        limits.max_image_height = Some(MAX_DIMENSION);
        // RGBA at the pixel cap plus the decoder's working memory.
        limits.max_alloc = Some(MAX_PIXELS * 4 + (64 << 20));
        reader.limits(limits);
        reader
    };
    // The header alone: no pixel buffer is allocated before the size check.
    let (width, height) = ImageReader::with_format(Cursor::new(bytes), format)
        .into_dimensions()
        .map_err(|e| ScanError::ImageDecode(e.to_string()))?;
    check_dimensions(u64::from(width), u64::from(height))?;
    let image = reader()
        .decode()
        .map_err(|e| ScanError::ImageDecode(e.to_string()))?;
    let (width, height) = (image.width(), image.height());
    check_dimensions(u64::from(width), u64::from(height))?;
    let pixels = match image {
        DynamicImage::ImageLuma8(luma) => luma.into_raw(),
        // Colour JPEGs and PNGs, the common case: the `image` crate's own conversion goes through
        // its colour-space fallback in floating point, as slow as decoding the JPEG itself.
        DynamicImage::ImageRgb8(rgb) => luma_of_rgb(rgb.as_raw()),
        other => other.into_luma8().into_raw(),
    };
    Ok(LumaImage {
        width,
        height,
        pixels,
    })
}

/// sRGB to luma with the Rec. 709 weights the `image` crate uses (0.2126, 0.7152, 0.0722), in
/// integers, rounded.
fn luma_of_rgb(rgb: &[u8]) -> Vec<u8> {
    rgb.chunks_exact(3)
        .map(|p| {
            let y = 2126 * u32::from(p[0]) + 7152 * u32::from(p[1]) + 722 * u32::from(p[2]);
            ((y + 5000) / 10_000) as u8
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rgb_becomes_the_same_luma_as_the_image_crates_within_one_level() {
        // Every red, green and blue level alone, and a spread of mixtures.
        let rgb = image::RgbImage::from_fn(256, 4, |x, y| {
            let v = x as u8;
            match y {
                0 => image::Rgb([v, 0, 0]),
                1 => image::Rgb([0, v, 0]),
                2 => image::Rgb([0, 0, v]),
                _ => image::Rgb([v, v.wrapping_mul(7), 255 - v]),
            }
        });
        let theirs = DynamicImage::ImageRgb8(rgb.clone()).into_luma8();
        let ours = luma_of_rgb(rgb.as_raw());
        assert_eq!(ours.len(), theirs.as_raw().len());
        for (i, (a, b)) in ours.iter().zip(theirs.as_raw()).enumerate() {
            assert!(a.abs_diff(*b) <= 1, "pixel {i}: ours {a}, image {b}");
        }
        assert_eq!(luma_of_rgb(&[255, 255, 255, 0, 0, 0]), vec![255, 0]);
    }

    #[test]
    fn a_colour_jpeg_decodes_to_luma_of_its_size() {
        let rgb =
            image::RgbImage::from_fn(40, 30, |x, y| image::Rgb([x as u8 * 6, y as u8 * 8, 90]));
        let mut bytes = Vec::new();
        image::DynamicImage::ImageRgb8(rgb)
            .write_to(&mut Cursor::new(&mut bytes), ImageFormat::Jpeg)
            .unwrap();
        let luma = decode_image(&bytes).unwrap();
        assert_eq!((luma.width, luma.height), (40, 30));
        assert_eq!(luma.pixels.len(), 40 * 30);
    }
}
