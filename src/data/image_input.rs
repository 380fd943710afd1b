//! An image file as the net's input: decoded within bounds, transparency
//! composited as ink on white paper, then MNIST's preparation — except for
//! an image that is already 28×28 (an MNIST digit saved as a picture), which
//! is taken pixel for pixel.

use std::path::Path;

use image::{DynamicImage, ImageReader, Limits};

use super::{to_mnist_input, DataError, PIXELS};

/// The largest width and height accepted, and the most memory decoding may take.
pub const MAX_SIDE: u32 = 8192;
pub const MAX_DECODE_BYTES: u64 = 256 << 20;

/// Reads `path` (PNG or JPEG, told by its content, not its name) as a 784-value input.
pub fn load_digit(path: &Path) -> Result<Vec<f32>, DataError> {
    let name = path.display().to_string();
    let reader = ImageReader::open(path)
        .and_then(|r| r.with_guessed_format())
        .map_err(|source| DataError::Io { path: name.clone(), source })?;
    decode_digit(reader, &name)
}

/// An image file's bytes as a 784-value input (`name` for messages).
pub fn digit_from_bytes(bytes: &[u8], name: &str) -> Result<Vec<f32>, DataError> {
    let reader = ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|source| DataError::Io { path: name.to_string(), source })?;
    decode_digit(reader, name)
}

fn decode_digit<R: std::io::BufRead + std::io::Seek>(
    mut reader: ImageReader<R>,
    name: &str,
) -> Result<Vec<f32>, DataError> {
    let invalid = |problem: String| DataError::Invalid { path: name.to_string(), problem };
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let image = reader.decode().map_err(|e| {
        invalid(format!(
            "cannot be read as a PNG or JPEG image ({e}); give a PNG or JPEG of one digit, at most {MAX_SIDE}×{MAX_SIDE} pixels"
        ))
    })?;
    digit_from_image(&image).map_err(invalid)
}

/// The image as the net's input, or why it holds no digit.
pub fn digit_from_image(image: &DynamicImage) -> Result<Vec<f32>, String> {
    let (width, height) = (image.width() as usize, image.height() as usize);
    // Transparent pixels are the paper: black ink on a transparent background
    // (what drawing programs save) is dark ink on white.
    let gray: Vec<f32> = image.to_luma_alpha32f().pixels().map(|p| p[0] * p[1] + (1.0 - p[1])).collect();
    let (low, high) = gray.iter().fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    if high - low < 0.1 {
        return Err("holds no digit: every pixel is the same shade (within 10%); draw the digit in a colour that stands out from the background".into());
    }
    if (width, height) == (28, 28) {
        // Already the net's size: only make the ink white on black, as MNIST is.
        let mean = gray.iter().sum::<f32>() / PIXELS as f32;
        return Ok(if mean > 0.5 { gray.iter().map(|v| 1.0 - v).collect() } else { gray });
    }
    to_mnist_input(&gray, width, height).ok_or_else(|| "holds no digit: no ink stands out from the paper; give an image of one dark digit on light paper (or light on dark)".to_string())
}
