//! Tests of the image/mask reader's surface normals (`normals/`); the rest of the layout is
//! tested through `inspect::masks` and the end-to-end tests.

use std::path::Path;

use super::*;
use crate::formats::images::nyuv2::tests::{write_npy, Values};
use crate::formats::images::test_support::assert_error;
use crate::prepare::{Amount, Carve, Keep};

const NORMALS: DenseParts = DenseParts { label: false, depth: false, normal: true };

/// What an 8-bit PNG's quantisation (steps of 2/255 per channel) leaves of a unit normal.
const TOLERANCE: f32 = 0.005;

/// Every example a training one, in name order.
fn all_train() -> SplitPolicy {
    SplitPolicy { val: Amount::Count(0), test: Amount::Count(0), carve: Carve::Tail, seed: 0, keep: Keep::ALL }
}

fn options(parts: DenseParts, size: Option<(usize, usize)>) -> MaskOptions {
    MaskOptions { parts, classes: 3, ignore: 255, depth_scale: 1.0, size }
}

/// An 8-bit RGB PNG of `pixels`, `w` wide.
fn write_rgb8(path: &Path, w: u32, pixels: &[[u8; 3]]) {
    let flat = pixels.iter().flatten().copied().collect();
    let image = image::RgbImage::from_raw(w, pixels.len() as u32 / w, flat).expect("buffer");
    image.save(path).expect("8-bit RGB png");
}

/// A 16-bit RGB PNG of `pixels`, `w` wide.
fn write_rgb16(path: &Path, w: u32, pixels: &[[u16; 3]]) {
    let flat = pixels.iter().flatten().copied().collect();
    let image = image::ImageBuffer::<image::Rgb<u16>, Vec<u16>>::from_raw(w, pixels.len() as u32 / w, flat);
    image.expect("buffer").save(path).expect("16-bit RGB png");
}

/// `n` examples `p<i>.png` of 2×2 under `root`: a gray image, a grayscale mask of classes
/// 0, 1, 2, 255, and normals: an 8-bit RGB PNG of `normals` (the same for each).
fn write_layout(root: &Path, n: usize, normals: &[[u8; 3]; 4]) {
    for folder in ["images", "masks", "normals"] {
        std::fs::create_dir_all(root.join(folder)).expect("mkdir");
    }
    for i in 0..n {
        let name = format!("p{i}.png");
        image::RgbImage::from_pixel(2, 2, image::Rgb([90, 90, 90])).save(root.join("images").join(&name)).unwrap();
        let mask = image::GrayImage::from_raw(2, 2, vec![0, 1, 2, 255]).expect("mask");
        mask.save(root.join("masks").join(&name)).expect("mask png");
        write_rgb8(&root.join("normals").join(&name), 2, normals);
    }
}

/// Reads the layout under `root` with `parts` and `size`: every training example's normals
/// as (x, y, z) per pixel, row by row.
fn read_normals(root: &Path, parts: DenseParts, size: Option<(usize, usize)>) -> Result<Vec<Vec<[f32; 3]>>, DataError> {
    let read = image_masks(root, &options(parts, size), &all_train())?.train;
    let positions = read.height * read.width;
    assert_eq!(read.normals.len(), read.n * 3 * positions, "channels first, 3 per pixel");
    let example = |i: usize| {
        let planes = &read.normals[i * 3 * positions..(i + 1) * 3 * positions];
        (0..positions).map(|p| [planes[p], planes[positions + p], planes[2 * positions + p]]).collect()
    };
    Ok((0..read.n).map(example).collect())
}

/// Asserts that each of `got` is within [`TOLERANCE`] of `expected` and of unit length,
/// or exactly (0, 0, 0) where `expected` is.
#[track_caller]
fn assert_normals(got: &[[f32; 3]], expected: &[[f32; 3]]) {
    assert_eq!(got.len(), expected.len(), "{got:?}");
    for (g, e) in got.iter().zip(expected) {
        if *e == [0.0; 3] {
            assert_eq!(g, e, "unknown stays all 0: {got:?}");
            continue;
        }
        let length = g.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((length - 1.0).abs() < 1e-6, "{g:?} has length {length}");
        assert!(g.iter().zip(e).all(|(g, e)| (g - e).abs() < TOLERANCE), "{g:?} is not close to {e:?}");
    }
}

#[test]
fn rgb_pngs_decode_as_two_v_over_max_minus_one_made_unit_and_black_is_unknown() {
    // (128, 128, 255) is the normal map's "facing the camera"; (0, 0, 0) no ground truth.
    let pixels = [[128, 128, 255], [0, 0, 0], [255, 128, 128], [128, 0, 128]];
    let expected = [[0.0, 0.0, 1.0], [0.0; 3], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]];
    let dir = tempfile::tempdir().expect("dir");
    write_layout(dir.path(), 2, &pixels);
    let read = read_normals(dir.path(), NORMALS, None).expect("reads");
    assert_eq!(read.len(), 2);
    read.iter().for_each(|example| assert_normals(example, &expected));
    // (128, 128, 255) is 2·128/255 − 1 = 1/255 off in x and y before it is made unit.
    let z = (1.0f64 / (1.0 + 2.0 / 255f64.powi(2)).sqrt()) as f32;
    assert!((read[0][0][2] - z).abs() < 1e-6 && (read[0][0][0] - z / 255.0).abs() < 1e-6, "{:?}", read[0][0]);
    // A 16-bit PNG is decoded over 65535; with segmentation, both targets are read.
    write_rgb16(&dir.path().join("normals/p1.png"), 2, &[[32768, 32768, 65535], [0; 3], [0, 32768, 32768], [1; 3]]);
    let both = DenseParts { label: true, depth: false, normal: true };
    let read = image_masks(dir.path(), &options(both, None), &all_train()).expect("reads").train;
    assert_eq!(read.labels, [0, 1, 2, 255, 0, 1, 2, 255]);
    let read = read_normals(dir.path(), both, None).expect("reads");
    let k = -(1.0f32 / 3.0).sqrt();
    assert_normals(&read[1], &[[0.0, 0.0, 1.0], [0.0; 3], [-1.0, 0.0, 0.0], [k, k, k]]);
}

#[test]
fn normals_are_resized_by_nearest_neighbour() {
    let pixels = [[128, 128, 255], [0, 0, 0], [255, 128, 128], [128, 0, 128]];
    let (z, x, minus_y) = ([0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]);
    let dir = tempfile::tempdir().expect("dir");
    write_layout(dir.path(), 1, &pixels);
    // 2×2 to 4×4: each pixel becomes a 2×2 block, never a blend of its neighbours.
    let read = read_normals(dir.path(), NORMALS, Some((4, 4))).expect("reads");
    let unknown = [0.0; 3];
    #[rustfmt::skip]
    let expected = [
        z, z, unknown, unknown,
        z, z, unknown, unknown,
        x, x, minus_y, minus_y,
        x, x, minus_y, minus_y,
    ];
    assert_normals(&read[0], &expected);
    // 2×2 to 1×3: the pixel under each output pixel's centre (row 1; columns at 1/3, 1, 5/3).
    let read = read_normals(dir.path(), NORMALS, Some((1, 3))).expect("reads");
    assert_normals(&read[0], &[x, minus_y, minus_y]);
}

#[test]
fn npy_normals_are_read_as_stored_and_made_unit_beside_or_instead_of_a_png() {
    let dir = tempfile::tempdir().expect("dir");
    write_layout(dir.path(), 2, &[[0, 0, 0]; 4]);
    // p0: an f64 .npy beside its PNG, which it overrides; p1: an f32 .npy alone.
    let p0 = [0.0, 0.0, 2.0, 0.0, 0.0, 0.0, 3.0, 4.0, 0.0, 0.0, -0.5, 0.0];
    write_npy(&dir.path().join("normals/p0.npy"), &[2, 2, 3], Values::F8(&p0));
    std::fs::remove_file(dir.path().join("normals/p1.png")).expect("rm");
    let p1 = [0.6, 0.0, 0.8, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -1.0];
    write_npy(&dir.path().join("normals/p1.npy"), &[2, 2, 3], Values::F4(&p1));
    let read = read_normals(dir.path(), NORMALS, None).expect("reads");
    assert_normals(&read[0], &[[0.0, 0.0, 1.0], [0.0; 3], [0.6, 0.8, 0.0], [0.0, -1.0, 0.0]]);
    assert_normals(&read[1], &[[0.6, 0.0, 0.8], [1.0, 0.0, 0.0], [0.0; 3], [0.0, 0.0, -1.0]]);
}

/// Writes a 2×2 layout of two examples, spoils it with `spoil`, and checks that reading
/// its normals fails with every one of `needles` in the message.
#[track_caller]
fn check_refused(spoil: impl FnOnce(&Path), needles: &[&str]) {
    let dir = tempfile::tempdir().expect("dir");
    write_layout(dir.path(), 2, &[[128, 128, 255]; 4]);
    spoil(&dir.path().join("normals"));
    assert_error(read_normals(dir.path(), NORMALS, None), needles);
}

#[test]
fn normals_that_do_not_fit_are_refused_naming_the_file() {
    let not_rgb = "; write an 8-bit or 16-bit RGB PNG (per channel 2·value/max − 1, (0, 0, 0) unknown)";
    check_refused(
        |n| image::GrayImage::new(2, 2).save(n.join("p1.png")).expect("png"),
        &["normals/p1.png: the PNG is 8-bit grayscale", not_rgb],
    );
    check_refused(
        |n| {
            let file = std::fs::File::create(n.join("p0.png")).expect("png");
            let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), 2, 2);
            encoder.set_color(png::ColorType::Indexed);
            encoder.set_depth(png::BitDepth::Eight);
            encoder.set_palette(vec![128, 128, 255]);
            encoder.write_header().expect("header").write_image_data(&[0; 4]).expect("data");
        },
        &["normals/p0.png: the PNG is 8-bit palette", not_rgb],
    );
    check_refused(
        |n| image::RgbaImage::new(2, 2).save(n.join("p0.png")).expect("png"),
        &["normals/p0.png: the PNG is 8-bit RGBA", not_rgb],
    );
    check_refused(
        |n| std::fs::write(n.join("p1.png"), "not a png").expect("write"),
        &["normals/p1.png: not a readable PNG"],
    );
    check_refused(
        |n| write_rgb8(&n.join("p1.png"), 3, &[[128, 128, 255]; 6]),
        &["normals/p1.png: 2×3, but its image p1.png is 2×2"],
    );
    check_refused(
        |n| std::fs::remove_file(n.join("p1.png")).expect("rm"),
        &["normals/p1.png: missing (and no p1.npy beside it): the image p1.png needs its normals"],
    );
    check_refused(
        |n| write_npy(&n.join("p0.npy"), &[2, 2], Values::F4(&[0.0; 4])),
        &["normals/p0.npy: shape [2, 2], expected [H, W, 3]"],
    );
    check_refused(
        |n| write_npy(&n.join("p0.npy"), &[2, 1, 3], Values::F4(&[0.0, 0.0, 1.0, 1.0, 0.0, 0.0])),
        &["normals/p0.npy: 2×1, but its image p0.png is 2×2"],
    );
    check_refused(
        |n| {
            let mut values = [0.0; 12];
            values[7] = f64::NAN;
            write_npy(&n.join("p1.npy"), &[2, 2, 3], Values::F8(&values));
        },
        &["normals/p1.npy: NaN at row 1, column 0: give finite normals"],
    );
}
