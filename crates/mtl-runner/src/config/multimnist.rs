//! The keys of `format = "multimnist"` that decide how its images are composed:
//! `compose_seed` (a number, or "trial"; default: the data `seed`) and `resize`
//! ("bilinear", the default, or "nearest").

use mtl_data::formats::images::Resize;
use serde::Deserialize;

use super::{Checker, ConfigError, Index, Key};
use crate::data::{ComposeSeed, Composition};

/// `compose_seed = 7` or `compose_seed = "trial"`.
#[derive(Deserialize, Clone)]
#[serde(untagged)]
pub(super) enum ComposeSeedEntry {
    Fixed(u64),
    Named(String),
}

impl Checker<'_> {
    /// Task `i`'s composition; `data_seed` is the task's `seed`.
    pub(super) fn composition(
        &self,
        i: usize,
        compose_seed: Option<ComposeSeedEntry>,
        resize: Option<String>,
        data_seed: u64,
    ) -> Result<Composition, ConfigError> {
        let at = |key| [Key("tasks"), Index(i), Key("data"), Key(key)];
        let seed = match compose_seed {
            None => ComposeSeed::Fixed(data_seed),
            Some(ComposeSeedEntry::Fixed(seed)) => ComposeSeed::Fixed(seed),
            Some(ComposeSeedEntry::Named(name)) if name == "trial" => ComposeSeed::Trial,
            Some(ComposeSeedEntry::Named(name)) => {
                let message = format!("compose_seed \"{name}\" must be a whole number ≥ 0 or \"trial\"");
                return self.fail(&at("compose_seed"), message);
            }
        };
        let resize = match resize.as_deref() {
            None => Resize::default(),
            Some(name) => match Resize::from_name(name) {
                Some(resize) => resize,
                None => {
                    let known: Vec<String> = Resize::ALL.iter().map(|r| format!("\"{}\"", r.name())).collect();
                    return self.fail(&at("resize"), format!("resize \"{name}\" must be {}", known.join(" or ")));
                }
            },
        };
        Ok(Composition { seed, resize })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::parse_str;
    use crate::data::{DataSource, ImageFormat};

    /// The composition of a MultiMNIST task with `keys` added to its data table.
    fn composition(keys: &str) -> Result<Composition, String> {
        let source = format!(
            "name = \"x\"\n[[tasks]]\nname = \"left\"\n\
             data = {{ format = \"multimnist\", path = \"m\", digit = \"left\", seed = 5{keys} }}\n\
             [model]\ntrunk = \"lenet\"\n"
        );
        let plan = parse_str(&source, Path::new("x.toml")).map_err(|e| e.to_string())?;
        match &plan.tasks[0].data {
            DataSource::Images { format: ImageFormat::MultiMnist { composition, .. }, .. } => Ok(*composition),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_pairs_follow_the_data_seed_a_number_or_the_trial_and_resize_is_bilinear_or_nearest() {
        let fixed = |seed| Composition { seed: ComposeSeed::Fixed(seed), resize: Resize::Bilinear };
        assert_eq!(composition(""), Ok(fixed(5)), "default: the data seed");
        assert_eq!(composition(", compose_seed = 9"), Ok(fixed(9)));
        assert_eq!(
            composition(", compose_seed = \"trial\", resize = \"nearest\""),
            Ok(Composition { seed: ComposeSeed::Trial, resize: Resize::Nearest })
        );
        let bad_seed = composition(", compose_seed = \"data\"").unwrap_err();
        assert!(bad_seed.contains("x.toml:4: tasks[0].data.compose_seed: compose_seed \"data\" must be"), "{bad_seed}");
        let bad_resize = composition(", resize = \"bicubic\"").unwrap_err();
        assert!(bad_resize.contains("tasks[0].data.resize: resize \"bicubic\" must be \"bilinear\" or \"nearest\""));
    }

    #[test]
    fn the_multimnist_recipes_build_the_images_their_comments_claim() {
        // experiments/*.toml that cite Sener & Koltun 2018: their construction resizes by
        // nearest neighbour and pairs within each split; their LeNet starts from PyTorch's
        // defaults.
        let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments");
        for name in ["multimnist.toml", "strategies-multimnist.toml", "weighting.toml"] {
            let path = folder.join(name);
            let text = std::fs::read_to_string(&path).expect("the recipe");
            assert!(text.contains("Sener & Koltun 2018"), "{name}");
            let plan = parse_str(&text, &path).unwrap_or_else(|e| panic!("{e}"));
            for task in &plan.tasks {
                let DataSource::Images { format: ImageFormat::MultiMnist { composition, .. }, .. } = &task.data else {
                    panic!("{name}: {} is not MultiMNIST", task.name)
                };
                assert_eq!(composition.resize, Resize::Nearest, "{name}");
            }
            assert!(plan.trials.iter().all(|t| t.init == mtl_model::InitScheme::Framework), "{name}");
        }
    }
}
