//! Whether a trial's tasks fit the stems its strategy shares, checked on the loaded data
//! before any trial trains or the database is opened. Every strategy but `single-task`
//! feeds all image tasks through one image stem and all text tasks through one text stem
//! and all table tasks through one feature stem (mtl-model's `MultiTaskNet`), so the image
//! tasks need one size and channel count, the text tasks one vocabulary, the table
//! tasks one feature width and the graph tasks one atom layout.
//!
//! ```
//! use mtl_runner::{config, data, stems};
//! let file = "name = \"x\"\n[[tasks]]\nname = \"a\"\ndata = { format = \"synthetic-shapes\", n_train = 4, n_val = 2, n_test = 2 }\n";
//! let plan = config::parse_str(file, "x.toml".as_ref()).unwrap();
//! let tasks = data::load_tasks(&plan.tasks).unwrap();
//! assert_eq!(stems::shared_stem_problem(&plan.trials[0], &plan.tasks, &tasks), None);
//! ```

use mtl_data::{Inputs, TaskData};
use mtl_model::Strategy;

use crate::data::{DataSource, ImageFormat};
use crate::plan::{TaskSource, Trial};

/// Why `trial`'s tasks cannot go through the stems its strategy shares, naming the tasks and
/// what to set; `sources` and `tasks` are the plan's tasks and their data, in plan order.
pub fn shared_stem_problem(trial: &Trial, sources: &[TaskSource], tasks: &[TaskData]) -> Option<String> {
    let strategy = trial.sharing.strategy();
    if strategy == Strategy::SingleTask {
        return None;
    }
    let strategy = strategy.name();
    // The first task of each modality decides its stem's input, as the network does.
    let mut first_of = [None::<usize>; 4];
    for (idx, task) in tasks.iter().enumerate() {
        let slot = &mut first_of[task.modality() as usize];
        let Some(first) = *slot else {
            *slot = Some(idx);
            continue;
        };
        let (ours, theirs) = (&tasks[first].train.inputs, &task.train.inputs);
        let problem = match (ours, theirs) {
            (
                Inputs::Images { channels, height, width, .. },
                Inputs::Images { channels: c2, height: h2, width: w2, .. },
            ) if (channels, height, width) != (c2, h2, w2) => {
                let size = |c, h, w| format!("{c}×{h}×{w}");
                let what = format!(
                    "tasks {} ({} images) and {} ({}) cannot share one image stem under strategy {strategy}",
                    tasks[first].name,
                    size(channels, height, width),
                    task.name,
                    size(c2, h2, w2)
                );
                // image-folder converts and resizes what it reads: the one task whose size can be set.
                let fix = match (is_image_folder(&sources[idx]), is_image_folder(&sources[first])) {
                    (true, _) => Some((idx, [*channels, *height, *width], [*c2, *h2, *w2])),
                    (false, true) => Some((first, [*c2, *h2, *w2], [*channels, *height, *width])),
                    (false, false) => None,
                };
                match fix {
                    Some((at, wanted, has)) => {
                        let keys: Vec<String> = ["channels", "height", "width"]
                            .iter()
                            .zip(wanted.into_iter().zip(has))
                            .filter(|(_, (want, have))| want != have)
                            .map(|(key, (want, _))| format!("tasks[{at}].data.{key} = {want}"))
                            .collect();
                        format!(
                            "{what}: set {} (image-folder converts and resizes its images), or leave sharing out: \
                             sweep.strategy = [\"single-task\"]",
                            keys.join(", ")
                        )
                    }
                    None => format!(
                        "{what}: their formats fix their sizes, so leave sharing out: sweep.strategy = \
                         [\"single-task\"] (or read one of them as image-folder at the other's size)"
                    ),
                }
            }
            (Inputs::Tokens { vocab_size, .. }, Inputs::Tokens { vocab_size: other, .. }) if vocab_size != other => {
                format!(
                    "tasks {} and {} cannot share one text stem under strategy {strategy}: their token ids come \
                     from different vocabularies ({vocab_size} and {other} ids); leave sharing out: \
                     sweep.strategy = [\"single-task\"]",
                    tasks[first].name, task.name
                )
            }
            (
                Inputs::Features { width, embedded, .. },
                Inputs::Features { width: other, embedded: other_embedded, .. },
            ) if width != other || embedded != other_embedded => {
                format!(
                    "tasks {} ({width} features) and {} ({other}) cannot share one feature stem under strategy \
                     {strategy}: give them the same feature columns (one-hot categories count, and embedded \
                     columns with their embedding_dim), or leave sharing out: sweep.strategy = [\"single-task\"]",
                    tasks[first].name, task.name
                )
            }
            (Inputs::Graphs(ours), Inputs::Graphs(theirs))
                if (ours.node_features, ours.max_nodes) != (theirs.node_features, theirs.max_nodes) =>
            {
                format!(
                    "tasks {} ({} features per atom, up to {} atoms) and {} ({}, {}) cannot share one graph                      trunk input under strategy {strategy}: read them from the same molecules, or leave sharing                      out: sweep.strategy = [\"single-task\"]",
                    tasks[first].name,
                    ours.node_features,
                    ours.max_nodes,
                    task.name,
                    theirs.node_features,
                    theirs.max_nodes
                )
            }
            _ => continue,
        };
        return Some(problem);
    }
    None
}

fn is_image_folder(source: &TaskSource) -> bool {
    matches!(source.data, DataSource::Images { format: ImageFormat::Folder(_), .. })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_str;

    /// Shapes (1×28×28) and a second task of `data` under `strategy`: the problem found, if any.
    fn problem(data: &str, strategy: &str, inputs: Inputs) -> Option<String> {
        let file = format!(
            "name = \"x\"\n[[tasks]]\nname = \"shapes\"\ndata = {{ format = \"synthetic-shapes\", n_train = 4, \
             n_val = 2, n_test = 2 }}\n[[tasks]]\nname = \"other\"\ndata = {data}\n[sweep]\nstrategy = [\"{strategy}\"]\n"
        );
        let plan = parse_str(&file, "x.toml".as_ref()).expect("plan");
        let task = |name: &str, inputs: Inputs| {
            let split = mtl_data::Split::classified(inputs, vec![]);
            let (train, val, test) = (split.clone(), split.clone(), split);
            TaskData { name: name.into(), class_names: vec![], train, val, test, vocabulary: None }
        };
        let tasks = [task("shapes", images(1, 28, 28)), task("other", inputs)];
        shared_stem_problem(&plan.trials[0], &plan.tasks, &tasks)
    }

    fn images(channels: usize, height: usize, width: usize) -> Inputs {
        Inputs::Images { pixels: Vec::new().into(), channels, height, width }
    }

    #[test]
    fn image_tasks_of_other_sizes_are_refused_naming_the_keys_to_set() {
        let folder = "{ format = \"image-folder\", path = \"pics\", channels = 3, height = 28, width = 14 }";
        assert_eq!(problem(folder, "single-task", images(3, 28, 14)), None);
        assert_eq!(problem(folder, "hard", images(1, 28, 28)), None);
        assert_eq!(
            problem(folder, "cross-stitch", images(3, 28, 14)).as_deref(),
            Some(
                "tasks shapes (1×28×28 images) and other (3×28×14) cannot share one image stem under strategy \
                 cross-stitch: set tasks[1].data.channels = 1, tasks[1].data.width = 28 (image-folder converts \
                 and resizes its images), or leave sharing out: sweep.strategy = [\"single-task\"]"
            )
        );
        let idx = "{ format = \"mnist-idx\", path = \"digits\" }";
        assert_eq!(
            problem(idx, "hard", images(1, 14, 14)).as_deref(),
            Some(
                "tasks shapes (1×28×28 images) and other (1×14×14) cannot share one image stem under strategy \
                 hard: their formats fix their sizes, so leave sharing out: sweep.strategy = [\"single-task\"] \
                 (or read one of them as image-folder at the other's size)"
            )
        );
    }
}
