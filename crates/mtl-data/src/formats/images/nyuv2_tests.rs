//! Tests of the NYUv2 reader, and the `.npy` fixtures `inspect`'s tests share.

use std::path::Path;

use super::*;
use crate::formats::images::test_support::assert_error;
use crate::prepare::{Amount, Carve, Keep};

/// The values of one `.npy` file, in a dtype LibMTL's files or hand-made ones use.
pub(crate) enum Values<'a> {
    /// `<f4`.
    F4(&'a [f32]),
    /// `<f8`.
    F8(&'a [f64]),
    /// `|u1`.
    U1(&'a [u8]),
    /// `<i8`.
    I8(&'a [i64]),
}

/// A version 1.0 `.npy` file as `numpy.save` writes it: the preamble and the header dict
/// padded with spaces to a multiple of 64 bytes, ending in a newline, then the values in
/// C order (the layout `npy.rs`'s tests check byte for byte against NumPy).
pub(crate) fn npy_bytes(descr: &str, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    let shape = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend(u16::try_from(header.len()).expect("short header").to_le_bytes());
    bytes.extend(header.as_bytes());
    bytes.extend(data);
    bytes
}

/// Writes `values` of `shape` to the `.npy` file `path`, making its folder.
pub(crate) fn write_npy(path: &Path, shape: &[usize], values: Values) {
    fn le<T: Copy, const N: usize>(values: &[T], to: fn(T) -> [u8; N]) -> (Vec<u8>, usize) {
        (values.iter().flat_map(|&v| to(v)).collect(), values.len())
    }
    let (descr, (data, n)) = match values {
        Values::F4(v) => ("<f4", le(v, f32::to_le_bytes)),
        Values::F8(v) => ("<f8", le(v, f64::to_le_bytes)),
        Values::U1(v) => ("|u1", (v.to_vec(), v.len())),
        Values::I8(v) => ("<i8", le(v, i64::to_le_bytes)),
    };
    assert_eq!(n, shape.iter().product::<usize>(), "{}: values for shape {shape:?}", path.display());
    std::fs::create_dir_all(path.parent().expect("a folder")).expect("mkdir");
    std::fs::write(path, npy_bytes(descr, shape, &data)).expect("write .npy");
}

/// One example as stored: image `[h, w, 3]`, labels `[h, w]` (−1, 0, 1, 2 in turn, shifted
/// by `seed`), depth 1 + label/2 (0 where unlabelled), normals +z, or (0.6, 0, 0.8) for
/// class 1, (0, 0, 0) where unlabelled.
pub(crate) struct Example {
    pub h: usize,
    pub w: usize,
    pub image: Vec<f32>,
    pub label: Vec<f32>,
    pub depth: Vec<f32>,
    pub normal: Vec<f32>,
}

pub(crate) fn example(h: usize, w: usize, seed: usize) -> Example {
    let label: Vec<f32> = (0..h * w).map(|p| ((p + seed) % 4) as f32 - 1.0).collect();
    let image = (0..h * w * 3).map(|k| ((k * 7 + seed * 13) % 64) as f32 / 64.0).collect();
    let depth = label.iter().map(|&l| if l < 0.0 { 0.0 } else { 1.0 + 0.5 * l }).collect();
    let normal = label
        .iter()
        .flat_map(|&l| {
            if l < 0.0 {
                [0.0, 0.0, 0.0]
            } else if l == 1.0 {
                [0.6, 0.0, 0.8]
            } else {
                [0.0, 0.0, 1.0]
            }
        })
        .collect();
    Example { h, w, image, label, depth, normal }
}

/// Writes `e` as `<root>/<split>/{image,label,depth,normal}/<index>.npy`, in the dtypes and
/// shapes LibMTL's files come in: even indices `<f4` throughout and depth `[h, w, 1]`; odd
/// ones an `<f8` image, `<i8` labels and an `<f8` depth `[h, w]`.
pub(crate) fn write_example(root: &Path, split: &str, index: usize, e: &Example) {
    let path = |part: &str| root.join(split).join(part).join(format!("{index}.npy"));
    let (h, w) = (e.h, e.w);
    if index % 2 == 0 {
        write_npy(&path("image"), &[h, w, 3], Values::F4(&e.image));
        write_npy(&path("label"), &[h, w], Values::F4(&e.label));
        write_npy(&path("depth"), &[h, w, 1], Values::F4(&e.depth));
    } else {
        let image: Vec<f64> = e.image.iter().map(|&v| f64::from(v)).collect();
        write_npy(&path("image"), &[h, w, 3], Values::F8(&image));
        let label: Vec<i64> = e.label.iter().map(|&v| v as i64).collect();
        write_npy(&path("label"), &[h, w], Values::I8(&label));
        let depth: Vec<f64> = e.depth.iter().map(|&v| f64::from(v)).collect();
        write_npy(&path("depth"), &[h, w], Values::F8(&depth));
    }
    write_npy(&path("normal"), &[h, w, 3], Values::F4(&e.normal));
}

/// A layout of `n_train` and `n_val` examples of `h × w`: train example `i` has seed `i`, val's `100 + i`.
pub(crate) fn layout(root: &Path, n_train: usize, n_val: usize, (h, w): (usize, usize)) {
    for i in 0..n_train {
        write_example(root, "train", i, &example(h, w, i));
    }
    for i in 0..n_val {
        write_example(root, "val", i, &example(h, w, 100 + i));
    }
}

const ALL: DenseParts = DenseParts { label: true, depth: true, normal: true };

fn options(parts: DenseParts) -> DenseOptions {
    DenseOptions { parts, classes: 3, size: None }
}

/// The last `val` training examples are the validation split.
fn policy(val: usize) -> SplitPolicy {
    SplitPolicy { val: Amount::Count(val), test: Amount::Count(0), carve: Carve::Tail, seed: 0, keep: Keep::ALL }
}

/// What the reader should give for `examples`: channels first, −1 as [`IGNORED_PIXEL`].
fn expected(examples: &[&Example]) -> DenseExamples {
    let (height, width) = (examples[0].h, examples[0].w);
    let mut out = DenseExamples { height, width, n: examples.len(), ..DenseExamples::default() };
    let positions = height * width;
    for e in examples {
        for c in 0..3 {
            out.pixels.extend((0..positions).map(|p| e.image[p * 3 + c]));
            out.normals.extend((0..positions).map(|p| e.normal[p * 3 + c]));
        }
        out.labels.extend(e.label.iter().map(|&l| if l < 0.0 { IGNORED_PIXEL } else { l as u8 }));
        out.depth.extend(&e.depth);
    }
    out
}

#[test]
fn a_layout_reads_back_exactly_channels_first_with_unlabelled_pixels_ignored() {
    let dir = tempfile::tempdir().expect("dir");
    layout(dir.path(), 2, 1, (4, 6));
    let read = nyuv2(dir.path(), &options(ALL), &policy(1)).expect("reads");
    // train/0 (all <f4, depth [4, 6, 1]) trains, train/1 (<f8, <i8, depth [4, 6]) validates, val/0 tests.
    assert_eq!(read.train, expected(&[&example(4, 6, 0)]));
    assert_eq!(read.val.expect("val"), expected(&[&example(4, 6, 1)]));
    assert_eq!(read.test.expect("test"), expected(&[&example(4, 6, 100)]));
    assert_eq!(read.report.files_read, 3 * 4);
    assert!(read.class_names.is_empty());
    // Nothing carved: both train files train, and the empty validation split has their size.
    let read = nyuv2(dir.path(), &options(ALL), &policy(0)).expect("reads");
    assert_eq!(read.train, expected(&[&example(4, 6, 0), &example(4, 6, 1)]));
    let val = read.val.expect("val");
    assert_eq!((val.n, val.height, val.width, val.pixels.len()), (0, 4, 6, 0));
}

#[test]
fn only_the_folders_asked_for_and_the_examples_kept_are_read() {
    let dir = tempfile::tempdir().expect("dir");
    layout(dir.path(), 2, 1, (4, 6));
    for split in SPLITS {
        std::fs::remove_dir_all(dir.path().join(split).join("normal")).expect("rm normal");
    }
    let parts = DenseParts { normal: false, ..ALL };
    let read = nyuv2(dir.path(), &options(parts), &policy(1)).expect("no normal/ needed");
    let want = expected(&[&example(4, 6, 0)]);
    assert_eq!(read.train, DenseExamples { normals: Vec::new(), ..want });
    assert_eq!(read.report.files_read, 3 * 3);
    // Images alone: label/ and depth/ may go too.
    for split in SPLITS {
        std::fs::remove_dir_all(dir.path().join(split).join("label")).expect("rm label");
        std::fs::remove_dir_all(dir.path().join(split).join("depth")).expect("rm depth");
    }
    let read = nyuv2(dir.path(), &options(DenseParts::default()), &policy(1)).expect("images only");
    let train = read.train;
    assert_eq!((train.n, train.pixels.len(), train.labels.len(), train.depth.len()), (1, 3 * 24, 0, 0));
    assert_error(nyuv2(dir.path(), &options(ALL), &policy(1)), &["train/label/0.npy"]);
    // An example a split does not keep is never opened: val/0's labels are gone and n_test = 0.
    let dir = tempfile::tempdir().expect("dir");
    layout(dir.path(), 2, 1, (4, 6));
    std::fs::remove_file(dir.path().join("val/label/0.npy")).expect("rm");
    let keep = Keep { test: Some(0), ..Keep::ALL };
    let read = nyuv2(dir.path(), &options(ALL), &SplitPolicy { keep, ..policy(1) }).expect("reads");
    let test = read.test.expect("test");
    assert_eq!((test.n, test.height, test.width), (0, 4, 6));
}

#[test]
fn size_resizes_images_bilinearly_and_targets_by_nearest_neighbour() {
    let dir = tempfile::tempdir().expect("dir");
    // train/0: 4×4, labels in quadrants [0 1; 2 −1], image channel c = (c + 1)/4 everywhere.
    let quadrant = |p: usize| match (p / 4 < 2, p % 4 < 2) {
        (true, true) => 0,
        (true, false) => 1,
        (false, true) => 2,
        (false, false) => -1,
    };
    let labels: Vec<i64> = (0..16).map(quadrant).collect();
    let image: Vec<f32> = (0..16 * 3).map(|k| ((k % 3) + 1) as f32 / 4.0).collect();
    let depth: Vec<f32> = labels.iter().map(|&l| if l < 0 { 0.0 } else { 1.0 + l as f32 }).collect();
    let file = |split: &str, part: &str, i: usize| dir.path().join(split).join(part).join(format!("{i}.npy"));
    write_npy(&file("train", "image", 0), &[4, 4, 3], Values::F4(&image));
    write_npy(&file("train", "label", 0), &[4, 4], Values::I8(&labels));
    write_npy(&file("train", "depth", 0), &[4, 4, 1], Values::F4(&depth));
    // train/1: 6×2, every pixel class 1 as |u1; val/0: the usual 3×5 example.
    write_npy(&file("train", "image", 1), &[6, 2, 3], Values::F4(&[0.5; 36]));
    write_npy(&file("train", "label", 1), &[6, 2], Values::U1(&[1; 12]));
    write_npy(&file("train", "depth", 1), &[6, 2], Values::F4(&[2.0; 12]));
    write_example(dir.path(), "val", 0, &example(3, 5, 7));
    let parts = DenseParts { normal: false, ..ALL };
    let at = |size| DenseOptions { size: Some(size), ..options(parts) };
    let read = nyuv2(dir.path(), &at((2, 2)), &policy(0)).expect("reads");
    let train = read.train;
    assert_eq!((train.n, train.height, train.width), (2, 2, 2));
    // Nearest-exact from 4 to 2 picks rows and columns 1 and 3: one pixel per quadrant.
    assert_eq!(train.labels, [0, 1, 2, IGNORED_PIXEL, 1, 1, 1, 1]);
    assert_eq!(train.depth, [1.0, 2.0, 3.0, 0.0, 2.0, 2.0, 2.0, 2.0]);
    let constant: Vec<f32> = [0.25, 0.5, 0.75].iter().flat_map(|&v| [v; 4]).chain([0.5; 12]).collect();
    assert_eq!(train.pixels, constant);
    let test = read.test.expect("test");
    assert_eq!((test.n, test.height, test.width, test.pixels.len(), test.labels.len()), (1, 2, 2, 12, 4));
    // Up-sampled, labels stay in the label set: each quadrant becomes 4×4 of its class.
    let read = nyuv2(dir.path(), &at((8, 8)), &policy(0)).expect("reads");
    let first = &read.train.labels[..64];
    for class in [0, 1, 2, IGNORED_PIXEL] {
        assert_eq!(first.iter().filter(|&&l| l == class).count(), 16, "class {class}");
    }
    assert!(read.train.labels[64..].iter().all(|&l| l == 1));
}

/// Reads a layout of 2 train and 1 val examples of 4×6 after `spoil` has changed it; the
/// error must contain every one of `needles`.
#[track_caller]
fn check_refused(spoil: impl FnOnce(&Path), needles: &[&str]) {
    let dir = tempfile::tempdir().expect("dir");
    layout(dir.path(), 2, 1, (4, 6));
    spoil(dir.path());
    assert_error(nyuv2(dir.path(), &options(ALL), &policy(1)), needles);
}

/// Example 0's `part` (4×6) with `value` at flat index `at`, written over `split/part/index.npy`.
fn spoiled(root: &Path, split: &str, part: &str, index: usize, at: usize, value: f32) {
    let mut e = example(4, 6, 0);
    let path = root.join(split).join(part).join(format!("{index}.npy"));
    match part {
        "label" => {
            e.label[at] = value;
            write_npy(&path, &[4, 6], Values::F4(&e.label));
        }
        "depth" => {
            e.depth[at] = value;
            write_npy(&path, &[4, 6, 1], Values::F4(&e.depth));
        }
        _ => unreachable!("{part}"),
    }
}

#[test]
fn bad_values_are_refused_naming_the_file_and_the_pixel() {
    check_refused(
        |root| spoiled(root, "train", "label", 1, 2 * 6 + 5, 3.0),
        &["train/label/1.npy", "label 3 at row 2, column 5 is neither a class 0 … 2 nor −1"],
    );
    check_refused(|root| spoiled(root, "train", "label", 0, 1, -2.0), &["train/label/0.npy", "label -2 at row 0"]);
    check_refused(
        |root| spoiled(root, "val", "label", 0, 0, 1.5),
        &["val/label/0.npy", "label 1.5 at row 0, column 0"],
    );
    check_refused(
        |root| spoiled(root, "train", "depth", 0, 7, f32::NAN),
        &["train/depth/0.npy", "value NaN at flat index 7 is not finite"],
    );
    check_refused(
        |root| spoiled(root, "train", "depth", 1, 8, -0.5),
        &["train/depth/1.npy", "negative depth -0.5 at row 1, column 2"],
    );
    check_refused(
        |root| write_npy(&root.join("val/image/0.npy"), &[4, 6, 3], Values::F4(&[f32::INFINITY; 72])),
        &["val/image/0.npy", "value inf at flat index 0 is not finite"],
    );
}

#[test]
fn bad_shapes_and_missing_files_are_refused_naming_the_file() {
    check_refused(
        |root| write_npy(&root.join("train/label/0.npy"), &[4, 5], Values::F4(&[0.0; 20])),
        &["train/label/0.npy", "shape [4, 5], expected [H, W] or [H, W, 1] with the image's H × W = 4 × 6"],
    );
    check_refused(
        |root| write_npy(&root.join("train/normal/1.npy"), &[4, 6], Values::F4(&[0.0; 24])),
        &["train/normal/1.npy", "shape [4, 6], expected [H, W, 3]"],
    );
    check_refused(
        |root| write_npy(&root.join("train/image/0.npy"), &[3, 4, 6], Values::F4(&[0.0; 72])),
        &["train/image/0.npy", "shape [3, 4, 6], expected [H, W, 3] (RGB, channels last)"],
    );
    check_refused(|root| std::fs::remove_file(root.join("val/label/0.npy")).expect("rm"), &["val/label/0.npy"]);
    check_refused(
        |root| write_example(root, "train", 1, &example(6, 4, 1)),
        &["train/image/1.npy: 6×4, but", "train/image/0.npy is 4×6: give size = [h, w]"],
    );
    // The test split is held to the training images' size too.
    check_refused(
        |root| write_example(root, "val", 0, &example(5, 5, 1)),
        &["val/image/0.npy: 5×5, but", "train/image/0.npy is 4×6"],
    );
}

#[test]
fn bad_folders_are_refused_naming_the_file_or_folder() {
    let stray = |name: &'static str| {
        move |root: &Path| write_npy(&root.join("train/image").join(name), &[4, 6, 3], Values::F4(&[0.0; 72]))
    };
    check_refused(stray("a.npy"), &["train/image/a.npy", "not <number>.npy"]);
    // `01.npy` is not `1.npy`: read as 1, it would open a file that is not there.
    check_refused(stray("01.npy"), &["train/image/01.npy", "not <number>.npy"]);
    let empty = |root: &Path| {
        std::fs::remove_dir_all(root.join("train/image")).expect("rm");
        std::fs::create_dir(root.join("train/image")).expect("mkdir");
        // Other files are not examples.
        std::fs::write(root.join("train/image/README.txt"), "").expect("write");
    };
    check_refused(empty, &["train/image: no <i>.npy files"]);
    check_refused(|root| std::fs::remove_dir_all(root.join("val")).expect("rm"), &["val/image"]);
    // A FIFO where a file should be is refused before it is opened (opening it would block).
    let fifo = |root: &Path| {
        let path = root.join("train/depth/1.npy");
        std::fs::remove_file(&path).expect("rm");
        let status = std::process::Command::new("mkfifo").arg(&path).status().expect("run mkfifo");
        assert!(status.success());
    };
    check_refused(fifo, &["train/depth/1.npy", "a FIFO, not a regular file"]);
    let dir = tempfile::tempdir().expect("dir");
    layout(dir.path(), 2, 1, (4, 6));
    let none = DenseOptions { classes: 0, ..options(ALL) };
    assert_error(nyuv2(dir.path(), &none, &policy(1)), &["classes = 0: give 1 to 255"]);
}

#[test]
fn example_files_are_named_by_their_index_alone() {
    let cases = [("0.npy", Some(0)), ("795.npy", Some(795)), ("01.npy", None), ("+1.npy", None)];
    let more = [("a.npy", None), ("1.npy.bak", None), ("1.NPY", None), (".npy", None)];
    for (name, index) in cases.into_iter().chain(more) {
        assert_eq!(npy_index(name), index, "{name}");
    }
}

#[test]
fn the_npy_fixture_pads_its_header_as_numpy_does() {
    let bytes = npy_bytes("<f4", &[4, 6, 3], &[]);
    assert_eq!((bytes.len(), bytes[bytes.len() - 1]), (128, b'\n'));
    assert!(String::from_utf8_lossy(&bytes).contains("'shape': (4, 6, 3), }"));
    assert!(String::from_utf8_lossy(&npy_bytes("|u1", &[5], &[])).contains("'shape': (5,), }"));
}

#[test]
fn nearest_resize_keeps_labels_and_bilinear_matches_a_hand_case() {
    // 2×4 → 1×2 nearest: centres 0.5·(4/2) = 1 → column 1, 3 → column 3; row 1.
    let labels = [0u8, 1, 2, 3, 4, 5, 6, 7];
    assert_eq!(resize_nearest(&labels, 1, (2, 4), (1, 2)), vec![5, 7]);
    // 1×2 → 1×4 bilinear: x = (o + 0.5)/2 − 0.5 = −0.25 (clamped 0), 0.25, 0.75, 1.25 (→ 1).
    let got = resize_bilinear(&[0.0, 4.0], 1, (1, 2), (1, 4));
    assert_eq!(got, vec![0.0, 1.0, 3.0, 4.0]);
}

#[test]
fn channels_first_transposes() {
    assert_eq!(channels_first(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 2, 3), vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
}
