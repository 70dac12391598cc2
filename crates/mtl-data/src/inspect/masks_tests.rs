//! The image/mask layout's inspection on small folders written by the tests.

use super::*;
use crate::formats::images::nyuv2::tests::{write_npy, Values};

/// Writes an 8-bit mask of `values` (`w` wide), as a palette PNG or grayscale.
fn write_mask(path: &Path, w: u32, values: &[u8], palette: bool) {
    let file = std::fs::File::create(path).expect("mask");
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), w, values.len() as u32 / w);
    encoder.set_depth(png::BitDepth::Eight);
    if palette {
        encoder.set_color(png::ColorType::Indexed);
        encoder.set_palette((0..=255u8).flat_map(|v| [v, v, v]).collect::<Vec<u8>>());
    } else {
        encoder.set_color(png::ColorType::Grayscale);
    }
    encoder.write_header().expect("header").write_image_data(values).expect("mask data");
}

/// Writes a 16-bit grayscale PNG of `values`.
fn write_depth(path: &Path, w: u32, values: &[u16]) {
    let image = image::ImageBuffer::<image::Luma<u16>, Vec<u16>>::from_raw(w, values.len() as u32 / w, values.to_vec());
    image.expect("buffer").save(path).expect("depth png");
}

/// `n` examples `p<i>.png` of 4×6 under `dir`: images, palette masks (per row: 6 pixels
/// of class 0, 1, 2, then 255) and depth PNGs (1000 × (row + 1), 0 in the last row).
fn write_split(dir: &Path, n: usize) {
    for folder in ["images", "masks", "depth"] {
        std::fs::create_dir_all(dir.join(folder)).expect("mkdir");
    }
    for i in 0..n {
        let name = format!("p{i}.png");
        image::RgbImage::from_pixel(6, 4, image::Rgb([9, 99, 199])).save(dir.join("images").join(&name)).unwrap();
        let mask: Vec<u8> = (0..24).map(|p| [0, 1, 2, 255][p / 6]).collect();
        write_mask(&dir.join("masks").join(&name), 6, &mask, true);
        let depth: Vec<u16> = (0..24).map(|p| if p >= 18 { 0 } else { 1000 * (p as u16 / 6 + 1) }).collect();
        write_depth(&dir.join("depth").join(&name), 6, &depth);
    }
}

/// `train/` of 4 examples and `test/` of 2, spoiled: train's p1 mask 5×6 and grayscale,
/// p2's mask 16-bit, p3's mask missing, p0's depth 8-bit, a `notes.txt` in images/;
/// test's p1 depth an unreadable PNG.
fn spoiled_layout(root: &Path) {
    write_split(&root.join("train"), 4);
    write_split(&root.join("test"), 2);
    let train = root.join("train");
    write_mask(&train.join("masks/p1.png"), 6, &[1; 30], false);
    write_depth(&train.join("masks/p2.png"), 6, &[1; 24]);
    std::fs::remove_file(train.join("masks/p3.png")).expect("rm");
    image::GrayImage::from_pixel(6, 4, image::Luma([7])).save(train.join("depth/p0.png")).expect("png");
    std::fs::write(train.join("images/notes.txt"), "x").expect("write");
    std::fs::write(root.join("test/depth/p1.png"), "not a png").expect("write");
}

/// An RGB normals PNG of `h` × 6 at `path`, 8-bit or 16-bit: facing the camera
/// ((128, 128, 255), or 16-bit's (32768, 32768, 65535)) but for the last row, unknown (0, 0, 0).
fn write_normals(path: &Path, h: u32, sixteen: bool) {
    let last = |y: u32| y + 1 == h;
    if sixteen {
        let pixel = |y| image::Rgb(if last(y) { [0; 3] } else { [32768, 32768, 65535] });
        let image = image::ImageBuffer::<image::Rgb<u16>, Vec<u16>>::from_fn(6, h, |_, y| pixel(y));
        image.save(path).expect("16-bit png");
    } else {
        let image = image::RgbImage::from_fn(6, h, |_, y| image::Rgb(if last(y) { [0; 3] } else { [128, 128, 255] }));
        image.save(path).expect("8-bit png");
    }
}

#[test]
fn normals_are_counted_by_kind_with_their_unknown_share_and_refused_as_a_run_would() {
    let dir = tempfile::tempdir().expect("dir");
    let (train, test) = (dir.path().join("train"), dir.path().join("test"));
    write_split(&train, 7);
    write_split(&test, 1);
    for split in [&train, &test] {
        std::fs::remove_dir_all(split.join("masks")).expect("rm");
        std::fs::remove_dir_all(split.join("depth")).expect("rm");
    }
    // p0 an 8-bit PNG, p1 a 16-bit one, p2 a .npy (beside a grayscale PNG it overrides)
    // with 2 unknown pixels, p3 grayscale, p4 of another size, p5 a .npy with a NaN, p6
    // none; test/ has no normals/.
    let normals = train.join("normals");
    std::fs::create_dir_all(&normals).expect("mkdir");
    write_normals(&normals.join("p0.png"), 4, false);
    write_normals(&normals.join("p1.png"), 4, true);
    image::GrayImage::new(6, 4).save(normals.join("p2.png")).expect("png");
    let p2: Vec<f32> = (0..24).flat_map(|p| if p < 2 { [0.0; 3] } else { [0.0, 0.6, 0.8] }).collect();
    write_npy(&normals.join("p2.npy"), &[4, 6, 3], Values::F4(&p2));
    image::GrayImage::new(6, 4).save(normals.join("p3.png")).expect("png");
    write_normals(&normals.join("p4.png"), 5, false);
    let mut p5 = vec![0.0; 72];
    p5[4] = f32::NAN;
    write_npy(&normals.join("p5.npy"), &[4, 6, 3], Values::F4(&p5));
    assert!(is_layout(dir.path()), "images/ beside normals/ alone is the layout");
    let MaskSummary { splits, .. } = summary(dir.path()).expect("summary");
    let read = &splits[0];
    assert_eq!((read.masks.as_ref(), read.depth.as_ref()), (None, None));
    let missing = Named { shown: vec!["p6.png".into()], count: 1 };
    assert_eq!(read.normals, Some(TargetFolder { files: 6, missing }));
    let kinds = [(".npy", 1), ("16-bit RGB PNG", 1), ("8-bit RGB PNG", 2), ("8-bit grayscale PNG", 1)];
    assert_eq!(read.normals_kinds, kinds.map(|(k, n)| (k.to_string(), n)).into_iter().collect());
    // Unknown: the last row of p0, p1 and p4 (6 pixels each), and p2's 2, of 3·24 + 30 pixels.
    assert_eq!(read.normals_unknown, (6 + 6 + 2 + 6, 3 * 24 + 30));
    assert_eq!(read.files_read, 7 + 5);
    let inspection = super::super::inspect(dir.path(), None).expect("inspects");
    assert_eq!(inspection.format, Format::ImageMasks);
    let expected = [
        "train/normals: 1 of the 7 images have no file (missing for: p6.png): a normals task fails at p6.png",
        "train/normals/p3.png: the PNG is 8-bit grayscale; write an 8-bit or 16-bit RGB PNG",
        "train/normals/p4.png: 5×6, but its image p4.png is 4×6",
        "train/normals/p5.npy: NaN at row 0, column 1: give finite normals ((0, 0, 0) unknown)",
        "test/normals: missing, though ",
    ];
    assert_eq!(inspection.problems.len(), expected.len(), "{:?}", inspection.problems);
    for (problem, expected) in inspection.problems.iter().zip(expected) {
        assert!(problem.contains(expected), "{problem:?} lacks {expected:?}");
    }
    assert!(inspection.problems[4].ends_with("train/normals/ is there: a normals task fails on test/"));
    let notes = inspection.notes.join("\n");
    for expected in [
        "train/: 7 images; masks/ absent, depth/ absent, normals/ 6 files",
        "train/: normals: .npy (1), 16-bit RGB PNG (1), 8-bit RGB PNG (2), 8-bit grayscale PNG (1); 19.6% unknown \
         (all 0: a (0, 0, 0) PNG pixel)",
        "test/: 1 images; masks/ absent, depth/ absent, normals/ absent",
    ] {
        assert!(notes.contains(expected), "{notes}\nlacks {expected:?}");
    }
}

#[test]
fn the_summary_counts_files_values_and_problems_by_file() {
    let dir = tempfile::tempdir().expect("dir");
    spoiled_layout(dir.path());
    let MaskSummary { split_folders, splits } = summary(dir.path()).expect("summary");
    assert!(split_folders);
    let [train, test] = &splits[..] else { panic!("{splits:?}") };
    assert_eq!((train.name, train.images, train.examined), ("train", 4, 4));
    assert_eq!(train.not_images, Named { shown: vec!["notes.txt".into()], count: 1 });
    assert_eq!(train.sizes, BTreeMap::from([((4, 6), 4)]));
    let missing = Named { shown: vec!["p3.png".into()], count: 1 };
    assert_eq!(train.masks, Some(TargetFolder { files: 3, missing }));
    assert_eq!(train.depth, Some(TargetFolder { files: 4, missing: Named::default() }));
    // p0's palette mask and p1's grayscale one are read; p2's 16-bit one is refused.
    let kinds = |k: &[(&str, usize)]| k.iter().map(|&(k, n)| (k.to_string(), n)).collect::<BTreeMap<_, _>>();
    assert_eq!(train.mask_kinds, kinds(&[("16-bit grayscale", 1), ("8-bit grayscale", 1), ("8-bit palette", 1)]));
    assert_eq!((train.mask_pixels[0], train.mask_pixels[1], train.mask_pixels[2]), (6, 6 + 30, 6));
    assert_eq!((train.mask_pixels[255], train.mask_pixels.iter().sum::<u64>()), (6, 54));
    assert_eq!(train.mask_size_differs, Named { shown: vec!["p1.png".into()], count: 1 });
    assert_eq!(train.depth_kinds, kinds(&[("16-bit grayscale PNG", 3), ("8-bit grayscale PNG", 1)]));
    assert_eq!((train.depth_png_range, train.depth_zero), (Some((1000, 3000)), (18, 72)));
    assert_eq!(train.files_read, 4 + 3 + 4);
    let expected = [
        "train/masks: 1 of the 4 images have no file (missing for: p3.png): a segmentation task fails at p3.png",
        "train/depth/p0.png: the PNG is 8-bit grayscale; write a 16-bit grayscale PNG",
        "train/masks/p1.png: 5×6, but its image p1.png is 4×6",
        "train/masks/p2.png: the PNG is 16-bit grayscale; write an 8-bit grayscale or 8-bit palette PNG",
    ];
    assert_eq!(train.problems.len(), expected.len(), "{:?}", train.problems);
    for (problem, expected) in train.problems.iter().zip(expected) {
        assert!(problem.contains(expected), "{problem:?} lacks {expected:?}");
    }
    assert_eq!((test.name, test.images, test.files_read), ("test", 2, 2 + 2 + 1));
    assert_eq!(test.problems.len(), 1, "{:?}", test.problems);
    assert!(test.problems[0].contains("test/depth/p1.png: not a readable PNG"), "{:?}", test.problems);
}

#[test]
fn inspect_recognises_the_layout_and_shows_pixels_per_value_and_notes() {
    let dir = tempfile::tempdir().expect("dir");
    spoiled_layout(dir.path());
    let inspection = super::super::inspect(dir.path(), None).expect("inspects");
    assert_eq!(inspection.format, Format::ImageMasks);
    assert_eq!(inspection.class_names, ["0", "1", "2", "unlabelled"]);
    let rows: Vec<_> = inspection.splits.iter().map(|s| (s.name.as_str(), s.count, s.per_class.clone())).collect();
    assert_eq!(rows, [("train", 4, vec![6, 36, 6, 6]), ("test", 2, vec![12, 12, 12, 12])]);
    assert_eq!(inspection.splits[1].image_shape, Some((3, 4, 6)));
    assert_eq!((inspection.files_read, inspection.problems.len()), (11 + 5, 5));
    let notes = inspection.notes.join("\n");
    for expected in [
        "train/: 4 images; masks/ 3 files, depth/ 4 files",
        "train/: 1 file(s) in images/ are not .png, .jpg, .jpeg or .bmp and are not read (notes.txt)",
        "train/: masks: 16-bit grayscale (1), 8-bit grayscale (1), 8-bit palette (1)",
        "train/: 1 mask(s) of another size than their image (p1.png)",
        "train/: depth: 16-bit grayscale PNG (3), 8-bit grayscale PNG (1); PNG values 1000 to 3000 (raw: a run \
         divides them by depth_scale) over the measured pixels; 25.0% unmeasured (0)",
        "test/: depth: 16-bit grayscale PNG (1); PNG values 1000 to 3000",
        "mask values 0 … 2 and 255 (unlabelled): a segmentation task needs classes = 3 or more",
        "no val/ folder: a run carves its val split from train/",
    ] {
        assert!(notes.contains(expected), "{notes}\nlacks {expected:?}");
    }
    assert!(!notes.contains("were read"), "{notes}");
    // At most `max_examined` images of a split are read, and the notes say so.
    let capped = inspection_of(dir.path(), 1).expect("inspects");
    assert!(
        capped.notes.iter().any(|n| n == "train/: the first 1 of 4 images (by name) were read"),
        "{:?}",
        capped.notes
    );
    assert_eq!(capped.files_read, 3 + 3);
}

#[test]
fn a_root_without_split_folders_is_the_training_split_and_problems_are_capped() {
    let dir = tempfile::tempdir().expect("dir");
    write_split(dir.path(), 3);
    std::fs::remove_dir_all(dir.path().join("masks")).expect("rm");
    // Depth as .npy for p1 (beside its PNG, which the .npy overrides), of another size.
    let depth = [0.5, 1.5, 0.0, 2.0, 3.0, -1.0];
    write_npy(&dir.path().join("depth/p1.npy"), &[2, 3], Values::F4(&depth));
    image::RgbImage::new(3, 5).save(dir.path().join("images/p2.png")).expect("png");
    let inspection = super::super::inspect(dir.path(), None).expect("inspects");
    assert_eq!(inspection.format, Format::ImageMasks);
    assert!(inspection.class_names.is_empty());
    assert_eq!((inspection.splits.len(), inspection.splits[0].name.as_str()), (1, "train"));
    assert_eq!(inspection.splits[0].image_shape, None);
    let notes = inspection.notes.join("\n");
    for expected in [
        "3 images; masks/ absent, depth/ 3 files",
        "images of 2 sizes: 4×6 (2), 5×3 (1)",
        "depth: .npy (1), 16-bit grayscale PNG (2); PNG values 1000 to 3000 (raw: a run divides them by \
         depth_scale), .npy depths 0.500 to 3.000 over the measured pixels",
        "no train/ folder: these images are the training examples",
    ] {
        assert!(notes.contains(expected), "{notes}\nlacks {expected:?}");
    }
    let problems = inspection.problems.join("\n");
    for expected in [
        "depth/p1.npy: 2×3, but its image p1.png is 4×6",
        "depth/p1.npy: 1 depth(s) are negative or not finite (first: -1)",
        "depth/p2.png: 4×6, but its image p2.png is 5×3",
    ] {
        assert!(problems.contains(expected), "{problems}\nlacks {expected:?}");
    }
    // Past 20 problems in a split, the rest are counted.
    for i in 3..30 {
        std::fs::write(dir.path().join(format!("images/q{i}.png")), "not a png").expect("write");
    }
    let inspection = super::super::inspect(dir.path(), Some(Format::ImageMasks)).expect("inspects");
    assert_eq!(inspection.problems.len(), 21, "{:?}", inspection.problems);
    let last = inspection.problems.last().expect("last");
    assert!(last.starts_with("… and 11 more problem(s) in "), "{last}");
}

#[test]
fn class_folders_named_images_are_an_image_folder_and_a_missing_split_target_is_a_problem() {
    let dir = tempfile::tempdir().expect("dir");
    for class in ["images/cat", "images/dog", "masks"] {
        std::fs::create_dir_all(dir.path().join(class)).expect("mkdir");
        image::RgbImage::new(2, 2).save(dir.path().join(class).join("a.png")).expect("png");
    }
    assert!(!is_layout(dir.path()));
    assert_eq!(super::super::detect(dir.path()).expect("detects"), Format::ImageFolder);
    let dir = tempfile::tempdir().expect("dir");
    write_split(&dir.path().join("train"), 2);
    write_split(&dir.path().join("val"), 1);
    std::fs::remove_dir_all(dir.path().join("val/depth")).expect("rm");
    assert!(is_layout(dir.path()));
    let inspection = super::super::inspect(dir.path(), None).expect("inspects");
    assert_eq!(inspection.problems.len(), 1, "{:?}", inspection.problems);
    assert!(
        inspection.problems[0].contains("val/depth: missing, though ")
            && inspection.problems[0].ends_with("train/depth/ is there: a depth task fails on val/"),
        "{:?}",
        inspection.problems
    );
}

#[test]
fn a_fifo_among_the_files_is_a_problem_and_the_reader_refuses_it_unopened() {
    let dir = tempfile::tempdir().expect("dir");
    write_split(dir.path(), 3);
    let mkfifo = |path: &str| {
        let path = dir.path().join(path);
        std::fs::remove_file(&path).expect("rm");
        let status = std::process::Command::new("mkfifo").arg(&path).status().expect("run mkfifo");
        assert!(status.success());
    };
    // Opening a FIFO blocks: a run refuses the image from its metadata.
    mkfifo("images/p1.png");
    let options = crate::formats::images::masks::MaskOptions {
        parts: crate::formats::images::nyuv2::DenseParts { label: true, depth: true, normal: false },
        classes: 3,
        ignore: 255,
        depth_scale: 1000.0,
        size: None,
    };
    let policy = crate::prepare::SplitPolicy {
        val: crate::prepare::Amount::Count(1),
        test: crate::prepare::Amount::Count(1),
        carve: crate::prepare::Carve::Random,
        seed: 0,
        keep: crate::prepare::Keep::ALL,
    };
    let message = crate::formats::images::masks::image_masks(dir.path(), &options, &policy).unwrap_err().to_string();
    assert!(message.contains("images/p1.png: a FIFO, not a regular file"), "{message}");
    // Inspect lists it, and a FIFO mask, as problems.
    mkfifo("masks/p2.png");
    let inspection = super::super::inspect(dir.path(), None).expect("inspects");
    let problems = inspection.problems.join("\n");
    for expected in ["unreadable image ", "images/p1.png: a FIFO, not a regular file", "masks/p2.png: a FIFO"] {
        assert!(problems.contains(expected), "{problems}\nlacks {expected:?}");
    }
}
