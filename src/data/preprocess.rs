//! Turning any grayscale image into an MNIST-style input, as the MNIST
//! authors prepared their digits: crop to the ink, scale the longer side to
//! 20 pixels keeping the aspect ratio, and place it in a 28×28 frame so that
//! its centre of mass is the frame's centre.

use super::PIXELS;

/// `pixels` (row-major, `width` × `height`, 0 = black … 1 = white) as 784 values
/// in [0, 1], white ink on black, or None when no pixel stands out as ink. A
/// light background is inverted first.
pub fn to_mnist_input(pixels: &[f32], width: usize, height: usize) -> Option<Vec<f32>> {
    assert_eq!(pixels.len(), width * height, "pixel count must be width × height");
    let mean = pixels.iter().sum::<f32>() / pixels.len().max(1) as f32;
    let ink: Vec<f32> = if mean > 0.5 { pixels.iter().map(|p| 1.0 - p).collect() } else { pixels.to_vec() };

    // Bounding box of the ink.
    let threshold = 0.1;
    let (mut top, mut bottom, mut left, mut right) = (height, 0, width, 0);
    for y in 0..height {
        for x in 0..width {
            if ink[y * width + x] > threshold {
                top = top.min(y);
                bottom = bottom.max(y);
                left = left.min(x);
                right = right.max(x);
            }
        }
    }
    if top > bottom {
        return None;
    }
    let (box_w, box_h) = (right - left + 1, bottom - top + 1);
    let scale = 20.0 / box_w.max(box_h) as f32;
    let (out_w, out_h) =
        (((box_w as f32 * scale).round() as usize).max(1), ((box_h as f32 * scale).round() as usize).max(1));
    let scaled = resample(&ink, width, [left, top, box_w, box_h], out_w, out_h);

    // Centre of mass of the scaled digit.
    let total: f32 = scaled.iter().sum();
    let (mut cx, mut cy) = (0.0, 0.0);
    for y in 0..out_h {
        for x in 0..out_w {
            cx += x as f32 * scaled[y * out_w + x];
            cy += y as f32 * scaled[y * out_w + x];
        }
    }
    let (cx, cy) = (cx / total, cy / total);
    let offset_x = (13.5 - cx).round() as isize;
    let offset_y = (13.5 - cy).round() as isize;
    let mut frame = vec![0.0; PIXELS];
    for y in 0..out_h {
        for x in 0..out_w {
            let (fx, fy) = (x as isize + offset_x, y as isize + offset_y);
            if (0..28).contains(&fx) && (0..28).contains(&fy) {
                frame[fy as usize * 28 + fx as usize] = scaled[y * out_w + x].clamp(0.0, 1.0);
            }
        }
    }
    Some(frame)
}

/// Area-averaging resample of the box [left, top, w, h] of `src` to out_w × out_h.
fn resample(src: &[f32], src_width: usize, [left, top, w, h]: [usize; 4], out_w: usize, out_h: usize) -> Vec<f32> {
    let mut out = vec![0.0; out_w * out_h];
    let (sx, sy) = (w as f32 / out_w as f32, h as f32 / out_h as f32);
    for oy in 0..out_h {
        for ox in 0..out_w {
            // The source rectangle this output pixel covers, in source pixels.
            let (x0, x1) = (ox as f32 * sx, (ox + 1) as f32 * sx);
            let (y0, y1) = (oy as f32 * sy, (oy + 1) as f32 * sy);
            let (mut sum, mut area) = (0.0, 0.0);
            for y in y0.floor() as usize..(y1.ceil() as usize).min(h) {
                let cover_y = (y1.min(y as f32 + 1.0) - y0.max(y as f32)).max(0.0);
                for x in x0.floor() as usize..(x1.ceil() as usize).min(w) {
                    let cover = cover_y * (x1.min(x as f32 + 1.0) - x0.max(x as f32)).max(0.0);
                    sum += cover * src[(top + y) * src_width + left + x];
                    area += cover;
                }
            }
            out[oy * out_w + ox] = if area > 0.0 { sum / area } else { 0.0 };
        }
    }
    out
}
