//! QM9 tasks: each task regresses one or several of the 19 targets of the same molecules
//! (`mtl_data::formats::molecules`). Every task of one QM9 folder (the same split
//! settings) reads the files once, and they share batches.

use std::path::Path;
use std::sync::Arc;

use mtl_data::formats::molecules::{self, QM9_TARGETS};
use mtl_data::prepare::{kept_indices, SplitPolicy};
use mtl_data::{DataError, Inputs, Split, Targets, TaskData};

/// One QM9 input: each split's molecules (shared by its tasks) and all 19 targets.
pub(super) struct Input {
    splits: [(Inputs, Vec<f32>); 3],
}

/// Reads the folder at `path` and carves it as `split` says (QM9 has no splits of its own).
pub(super) fn load(path: &Path, split: &SplitPolicy) -> Result<Input, DataError> {
    let all = molecules::qm9(path)?;
    let (train, val, test) = kept_indices([Some(all.graphs.len()), None, None], split)
        .map_err(|message| DataError::invalid(path, message))?;
    let width = QM9_TARGETS.len();
    let part = |indices: Vec<usize>| {
        let targets = indices.iter().flat_map(|&i| &all.targets[i * width..(i + 1) * width]).copied().collect();
        (Inputs::Graphs(Arc::new(all.graphs.select(&indices))), targets)
    };
    Ok(Input { splits: [part(train), part(val), part(test)] })
}

/// The task `name` regressing `targets` (names of [`QM9_TARGETS`]) of `input`'s molecules.
pub(super) fn task(name: &str, path: &Path, targets: &[String], input: &Input) -> Result<TaskData, DataError> {
    let columns: Vec<usize> = targets
        .iter()
        .map(|target| {
            QM9_TARGETS.iter().position(|t| t.name == target).ok_or_else(|| {
                let known: Vec<&str> = QM9_TARGETS.iter().map(|t| t.name).collect();
                DataError::invalid(path, format!("no QM9 target {target:?}; the targets are {}", known.join(", ")))
            })
        })
        .collect::<Result<_, _>>()?;
    let width = QM9_TARGETS.len();
    let split = |(inputs, values): &(Inputs, Vec<f32>)| Split {
        inputs: inputs.clone(),
        targets: Targets::Values {
            values: values.chunks_exact(width).flat_map(|row| columns.iter().map(|&c| row[c])).collect(),
            width: columns.len(),
        },
    };
    let [train, val, test] = &input.splits;
    Ok(TaskData {
        name: name.into(),
        class_names: targets.to_vec(),
        train: split(train),
        val: split(val),
        test: split(test),
        vocabulary: None,
    })
}
