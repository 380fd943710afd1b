//! Images given to `predict`: transparency is paper, an image without a
//! digit is an error, an MNIST digit saved as a 28×28 picture is taken pixel
//! for pixel, the format is told by the content, and decoding is bounded.

mod common;

use image::{DynamicImage, GrayImage, ImageBuffer, LumaA, RgbaImage};
use octconv::data::{digit_from_image, load_digit};

/// A bar-shaped "digit": dark ink at rows 8..20, columns 12..16 of a `side` × `side` image.
fn ink(side: u32, x: u32, y: u32) -> bool {
    let s = side as f32 / 28.0;
    (8.0 * s..20.0 * s).contains(&(y as f32)) && (12.0 * s..16.0 * s).contains(&(x as f32))
}

#[test]
fn black_ink_on_transparency_reads_as_ink_on_paper() {
    let transparent =
        RgbaImage::from_fn(56, 56, |x, y| image::Rgba(if ink(56, x, y) { [0, 0, 0, 255] } else { [0, 0, 0, 0] }));
    let on_white =
        RgbaImage::from_fn(56, 56, |x, y| image::Rgba(if ink(56, x, y) { [0, 0, 0, 255] } else { [255; 4] }));
    let a = digit_from_image(&DynamicImage::ImageRgba8(transparent)).unwrap();
    let b = digit_from_image(&DynamicImage::ImageRgba8(on_white)).unwrap();
    assert_eq!(a, b);
    assert!(a.iter().filter(|&&v| v > 0.5).count() > 20, "the bar is white ink on black");
}

#[test]
fn an_image_without_a_digit_is_an_error() {
    let blank = DynamicImage::ImageLuma8(GrayImage::from_pixel(40, 40, image::Luma([255])));
    let black = DynamicImage::ImageLuma8(GrayImage::from_pixel(40, 40, image::Luma([0])));
    let dot = DynamicImage::ImageLuma8(GrayImage::from_pixel(1, 1, image::Luma([0])));
    let clear: ImageBuffer<LumaA<u8>, Vec<u8>> = ImageBuffer::from_pixel(30, 30, LumaA([0, 0]));
    for image in [blank, black, dot, DynamicImage::ImageLumaA8(clear)] {
        let err = digit_from_image(&image).unwrap_err();
        assert!(err.contains("holds no digit"), "{err}");
    }
}

#[test]
fn a_28_by_28_digit_is_taken_pixel_for_pixel() {
    let pixels: Vec<u8> = (0..784).map(|i| if ink(28, i % 28, i / 28) { (i % 200 + 55) as u8 } else { 0 }).collect();
    let image = GrayImage::from_raw(28, 28, pixels.clone()).unwrap();
    let input = digit_from_image(&DynamicImage::ImageLuma8(image)).unwrap();
    let expected: Vec<f32> = pixels.iter().map(|&p| p as f32 / 255.0).collect();
    assert_eq!(input, expected, "exactly as eval reads the IDX bytes");
}

#[test]
fn files_are_told_by_content_and_bounded() {
    let dir = common::temp_dir("predict-images");
    // A PNG named .jpg.
    let misnamed = dir.join("digit.jpg");
    GrayImage::from_fn(28, 28, |x, y| image::Luma([if ink(28, x, y) { 255 } else { 0 }]))
        .save_with_format(&misnamed, image::ImageFormat::Png)
        .unwrap();
    assert_eq!(load_digit(&misnamed).unwrap().len(), 784);
    // A small file declaring a huge image is refused before decoding it.
    let wide = dir.join("wide.png");
    GrayImage::from_pixel(20_000, 1, image::Luma([0])).save(&wide).unwrap();
    let err = load_digit(&wide).unwrap_err().to_string();
    assert!(err.contains("wide.png") && err.contains("8192"), "{err}");
    // And from the command line, one sentence naming the file.
    let (code, _, stderr) = common::octconv(&[
        "predict",
        "--model",
        "web/weights/seed.safetensors",
        "--device",
        "cpu",
        dir.join("wide.png").to_str().unwrap(),
    ]);
    assert_ne!(code, 0);
    assert!(stderr.contains("wide.png") && stderr.contains("8192"), "{stderr}");
}
