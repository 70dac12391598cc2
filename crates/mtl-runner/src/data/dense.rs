//! Dense tasks on LibMTL's NYUv2 and Cityscapes layout (`mtl_data::formats::images::nyuv2`)
//! or the image/mask layout (`masks`): each task predicts one of segmentation, depth or
//! surface normals of the same images. Every task of one input (the same folder, size,
//! classes and splits) reads the images once, and they share batches.

use std::path::Path;
use std::sync::Arc;

use mtl_data::formats::images::masks::{self, MaskOptions};
use mtl_data::formats::images::nyuv2::{self, DenseExamples, DenseOptions, DenseParts};
use mtl_data::prepare::SplitPolicy;
use mtl_data::{DataError, Inputs, Split, Targets, TaskData};

/// What a dense task predicts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DenseTarget {
    /// `label/` (NYUv2), `masks/` (the image/mask layout): one class per pixel.
    Segmentation,
    /// `depth/`.
    Depth,
    /// `normal/` (NYUv2), `normals/` (the image/mask layout).
    Normals,
}

impl DenseTarget {
    /// Every target, by the name experiment files use (`task = "…"`).
    pub const NAMES: [&'static str; 3] = ["segmentation", "depth", "normals"];

    /// The name experiment files use.
    pub fn name(self) -> &'static str {
        match self {
            DenseTarget::Segmentation => "segmentation",
            DenseTarget::Depth => "depth",
            DenseTarget::Normals => "normals",
        }
    }

    /// Parses [`DenseTarget::name`].
    pub fn from_name(name: &str) -> Option<DenseTarget> {
        [DenseTarget::Segmentation, DenseTarget::Depth, DenseTarget::Normals].into_iter().find(|t| t.name() == name)
    }

    /// The folder it needs read.
    pub(super) fn parts(self) -> DenseParts {
        DenseParts {
            label: self == DenseTarget::Segmentation,
            depth: self == DenseTarget::Depth,
            normal: self == DenseTarget::Normals,
        }
    }
}

/// One NYUv2 input: its images (shared by its tasks) and the targets read, per split.
pub(super) struct Input {
    splits: [(Inputs, DenseExamples); 3],
}

/// A dense layout and how to read it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Layout {
    /// LibMTL's `.npy` folders.
    Npy { classes: usize, size: Option<(usize, usize)> },
    /// `images/`, `masks/`, `depth/`, `normals/` (its `parts` set by [`load`]).
    Masks(MaskOptions),
}

impl Layout {
    /// Segmentation classes.
    pub(super) fn classes(self) -> usize {
        match self {
            Layout::Npy { classes, .. } => classes,
            Layout::Masks(options) => options.classes,
        }
    }
}

/// How the tasks of one input (`layouts`, each with its target) read it together: the
/// folders they need, the most classes a segmentation task asks for, and the mask's
/// `ignore` and depth's `depth_scale` they must agree on (an error naming `path` if not).
pub(super) fn merged(layouts: &[(DenseTarget, Layout)], path: &Path) -> Result<(Layout, DenseParts), DataError> {
    let mut parts = DenseParts::default();
    for (target, _) in layouts {
        let more = target.parts();
        parts.label |= more.label;
        parts.depth |= more.depth;
        parts.normal |= more.normal;
    }
    let of = |target: DenseTarget| layouts.iter().filter(move |(t, _)| *t == target).map(|(_, l)| *l);
    let classes = of(DenseTarget::Segmentation).map(Layout::classes).max();
    let disagree = |what: &str| {
        let message = format!("the tasks of this folder give different values of {what}: give them one");
        Err(DataError::invalid(path, message))
    };
    let merged = match layouts[0].1 {
        Layout::Npy { size, .. } => Layout::Npy { classes: classes.unwrap_or(layouts[0].1.classes()), size },
        Layout::Masks(first) => {
            let masks = |target: DenseTarget| {
                of(target).filter_map(|l| match l {
                    Layout::Masks(options) => Some(options),
                    Layout::Npy { .. } => None,
                })
            };
            let mut options = first;
            options.classes = classes.unwrap_or(first.classes);
            let ignores: Vec<u8> = masks(DenseTarget::Segmentation).map(|o| o.ignore).collect();
            if let Some(&ignore) = ignores.first() {
                if ignores.iter().any(|&i| i != ignore) {
                    return disagree("ignore");
                }
                options.ignore = ignore;
            }
            let scales: Vec<f64> = masks(DenseTarget::Depth).map(|o| o.depth_scale).collect();
            if let Some(&scale) = scales.first() {
                if scales.iter().any(|&s| s != scale) {
                    return disagree("depth_scale");
                }
                options.depth_scale = scale;
            }
            Layout::Masks(options)
        }
    };
    Ok((merged, parts))
}

/// Reads the layout at `path`: the folders `parts` names, split by `split`.
pub(super) fn load(path: &Path, layout: Layout, parts: DenseParts, split: &SplitPolicy) -> Result<Input, DataError> {
    let sourced = match layout {
        Layout::Npy { classes, size } => nyuv2::nyuv2(path, &DenseOptions { parts, classes, size }, split)?,
        Layout::Masks(options) => masks::image_masks(path, &MaskOptions { parts, ..options }, split)?,
    };
    let (val, test) = (sourced.val.expect("nyuv2 has val"), sourced.test.expect("nyuv2 has test"));
    let inputs = |mut examples: DenseExamples| {
        let pixels = std::mem::take(&mut examples.pixels);
        let (height, width) = (examples.height, examples.width);
        (Inputs::Images { pixels: Arc::from(pixels), channels: 3, height, width }, examples)
    };
    Ok(Input { splits: [inputs(sourced.train), inputs(val), inputs(test)] })
}

/// The task `name` predicting `target` of `input`'s images (read from `path`), with
/// `classes` segmentation classes: a label at or above them (read for a task of the same
/// folder that has more) is an error.
pub(super) fn task(
    name: &str,
    path: &Path,
    target: DenseTarget,
    classes: usize,
    input: &Input,
) -> Result<TaskData, DataError> {
    if target == DenseTarget::Segmentation {
        let labels = input.splits.iter().flat_map(|(_, examples)| &examples.labels);
        if let Some(label) = labels.copied().find(|&l| l != mtl_data::IGNORED_PIXEL && usize::from(l) >= classes) {
            let message = format!("task {name}: label {label} is not one of its classes 0 … {}", classes - 1);
            return Err(DataError::invalid(path, message));
        }
    }
    let class_names = match target {
        DenseTarget::Segmentation => (0..classes).map(|c| c.to_string()).collect(),
        DenseTarget::Depth => vec!["depth".to_string()],
        DenseTarget::Normals => ["x", "y", "z"].map(String::from).to_vec(),
    };
    let split = |(inputs, examples): &(Inputs, DenseExamples)| {
        let (height, width) = (examples.height, examples.width);
        let targets = match target {
            DenseTarget::Segmentation => Targets::Segments { labels: examples.labels.clone(), height, width },
            DenseTarget::Depth => Targets::Maps { values: examples.depth.clone(), channels: 1, height, width },
            DenseTarget::Normals => Targets::Maps { values: examples.normals.clone(), channels: 3, height, width },
        };
        Split { inputs: inputs.clone(), targets }
    };
    let [train, val, test] = &input.splits;
    Ok(TaskData {
        name: name.into(),
        class_names,
        train: split(train),
        val: split(val),
        test: split(test),
        vocabulary: None,
    })
}

#[cfg(test)]
mod tests {
    use mtl_data::{Inputs, Targets};

    use crate::data::load_task_set;

    /// CRC-32 (PNG's, ISO-HDLC) of `bytes`.
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &byte in bytes {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }

    /// An 8-bit PNG of `samples`, `width` pixels a row, grayscale (`color` 0) or RGB (2),
    /// in one stored (uncompressed) deflate block: this crate has no PNG encoder.
    fn png(width: usize, color: u8, samples: &[u8]) -> Vec<u8> {
        let row = width * if color == 2 { 3 } else { 1 };
        let height = samples.len() / row;
        let raw: Vec<u8> = samples.chunks(row).flat_map(|r| [0].into_iter().chain(r.iter().copied())).collect();
        let length = u16::try_from(raw.len()).expect("one stored block");
        let mut zlib = vec![0x78, 0x01, 1];
        zlib.extend(length.to_le_bytes().into_iter().chain((!length).to_le_bytes()));
        zlib.extend(&raw);
        // Adler-32 of the uncompressed bytes.
        let (mut a, mut b) = (1u32, 0u32);
        for &byte in &raw {
            a = (a + u32::from(byte)) % 65521;
            b = (b + a) % 65521;
        }
        zlib.extend(((b << 16) | a).to_be_bytes());
        let mut header = (width as u32).to_be_bytes().to_vec();
        header.extend((height as u32).to_be_bytes().into_iter().chain([8, color, 0, 0, 0]));
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        for (tag, data) in [(&b"IHDR"[..], header), (b"IDAT", zlib), (b"IEND", Vec::new())] {
            let tagged: Vec<u8> = tag.iter().chain(&data).copied().collect();
            png.extend((data.len() as u32).to_be_bytes());
            png.extend(&tagged);
            png.extend(crc32(&tagged).to_be_bytes());
        }
        png
    }

    /// `n` examples of 2×2 under `root`: a gray image, a mask of classes 0, 1, 2 and 255,
    /// and normals facing the camera (128, 128, 255) but for an unknown (0, 0, 0) last pixel.
    fn write_layout(root: &std::path::Path, n: usize) {
        for folder in ["images", "masks", "normals"] {
            std::fs::create_dir_all(root.join(folder)).expect("mkdir");
        }
        let normals = [128, 128, 255, 128, 128, 255, 128, 128, 255, 0, 0, 0];
        for i in 0..n {
            let file = |folder: &str| root.join(folder).join(format!("p{i}.png"));
            std::fs::write(file("images"), png(2, 2, &[90; 12])).expect("image");
            std::fs::write(file("masks"), png(2, 0, &[0, 1, 2, 255])).expect("mask");
            std::fs::write(file("normals"), png(2, 2, &normals)).expect("normals");
        }
    }

    #[test]
    fn segmentation_and_normals_of_one_folder_read_its_images_once() {
        let dir = tempfile::tempdir().expect("dir");
        write_layout(dir.path(), 6);
        let data = |settings: &str| {
            let path = dir.path().display();
            format!("{{ format = \"image-masks\", path = {path:?}, {settings}, val_size = 1, test_size = 1 }}")
        };
        let source = format!(
            "name = \"rooms\"\n[[tasks]]\nname = \"seg\"\ndata = {}\n[[tasks]]\nname = \"normals\"\ndata = {}\n\
             [model]\ntrunk = \"encoder-decoder\"\n",
            data("task = \"segmentation\", classes = 3"),
            data("task = \"normals\"")
        );
        let plan = crate::config::parse_str(&source, std::path::Path::new("rooms.toml")).expect("valid");
        assert_eq!(plan.tasks.iter().map(|t| t.data.kind()).collect::<Vec<_>>(), ["segmentation", "normals"]);
        let set = load_task_set(&plan.tasks).expect("loads");
        assert_eq!(set.input_groups, [vec![0, 1]], "one input, shared batches");
        let [seg, normals] = &set.tasks[..] else { panic!("two tasks") };
        assert_eq!((seg.train.len(), seg.val.len(), seg.test.len()), (4, 1, 1));
        assert_eq!(normals.class_names, ["x", "y", "z"]);
        let Targets::Maps { values, channels: 3, height: 2, width: 2 } = &normals.train.targets else {
            panic!("{:?}", normals.train.targets)
        };
        // Channels first: x, y, z of the 4 pixels; the last pixel unknown, all 0.
        let first: Vec<f32> = values[..12].iter().map(|v| (v * 100.0).round() / 100.0).collect();
        assert_eq!(first, [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0]);
        for split in [&seg.train, &seg.val, &seg.test].into_iter().zip([&normals.train, &normals.val, &normals.test]) {
            let (Inputs::Images { pixels: a, .. }, Inputs::Images { pixels: b, .. }) =
                (&split.0.inputs, &split.1.inputs)
            else {
                panic!("images")
            };
            assert!(std::sync::Arc::ptr_eq(a, b), "the images are read once and held once");
        }
    }
}
