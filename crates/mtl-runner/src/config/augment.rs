//! `[augment]`: random crop, horizontal flip and normalisation of image tasks' batches,
//! validated into `mtl_data::augment::Augmentation`. Whether given normalisation values
//! match the images' channels is known once the data is: `train::check_plan` checks it.

use mtl_data::augment::{Augmentation, Normalization};

use super::entries::{AugmentEntry, NormalizeEntry};
use super::{Checker, ConfigError, Key};
use crate::plan::TaskSource;

/// The most zeros `crop_padding` may add on each side.
const MAX_CROP_PADDING: usize = 1024;

impl Checker<'_> {
    /// The augmentation `[augment]` asks for (none without the table); refused when no
    /// task of `tasks` has images.
    pub(super) fn augmentation(
        &self,
        entry: Option<&AugmentEntry>,
        tasks: &[TaskSource],
    ) -> Result<Augmentation, ConfigError> {
        let Some(entry) = entry else { return Ok(Augmentation::default()) };
        let at = |key: &'static str| [Key("augment"), Key(key)];
        let given = [
            ("crop_padding", entry.crop_padding.is_some()),
            ("flip", entry.flip.is_some()),
            ("normalize", entry.normalize.is_some()),
        ];
        let images = tasks.iter().any(|t| t.data.reads_images());
        if let Some((key, _)) = given.iter().find(|(_, given)| *given).filter(|_| !images) {
            self.fail(&at(key), format!("augment.{key} applies to image tasks, and no task of this file has images"))?;
        }
        let crop_padding = self.count(entry.crop_padding, 0, &at("crop_padding"), 0..MAX_CROP_PADDING + 1)?;
        let normalize = match &entry.normalize {
            None => Normalization::None,
            Some(NormalizeEntry::Name(name)) => match name.as_str() {
                "none" => Normalization::None,
                "train" => Normalization::TrainStatistics,
                other => {
                    let message = format!(
                        "unknown normalize \"{other}\"; expected \"train\" (the training split's statistics), \
                         \"none\" or {{ mean = [...], std = [...] }}"
                    );
                    return self.fail(&at("normalize"), message);
                }
            },
            Some(NormalizeEntry::Given(given)) => Normalization::Given {
                mean: given.mean.iter().map(|&m| m as f32).collect(),
                std: given.std.iter().map(|&s| s as f32).collect(),
            },
        };
        let augmentation = Augmentation { crop_padding, flip: entry.flip.unwrap_or(false), normalize };
        if let Err(message) = augmentation.validate() {
            let key = if message.starts_with("std") { "std" } else { "mean" };
            self.fail(&[Key("augment"), Key("normalize"), Key(key)], message)?;
        }
        Ok(augmentation)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use mtl_data::augment::{Augmentation, Normalization};

    use crate::config::parse_str;

    const SHAPES: &str = "[[tasks]]\nname = \"a\"\ndata = { format = \"synthetic-shapes\" }\n";
    const REVIEWS: &str = "[[tasks]]\nname = \"r\"\ndata = { format = \"synthetic-reviews\" }\n";

    /// The augmentation of the file's first trial, or the error as shown.
    fn check(tasks: &str, augment: &str) -> Result<Augmentation, String> {
        let source = format!("name = \"x\"\n{tasks}[augment]\n{augment}\n");
        let plan = parse_str(&source, Path::new("x.toml")).map_err(|e| e.to_string())?;
        Ok(plan.trials[0].settings.augment.clone())
    }

    #[test]
    fn each_form_of_the_table_is_read() {
        let cases = [
            ("crop_padding = 4\nflip = true", Augmentation { crop_padding: 4, flip: true, ..Default::default() }),
            ("normalize = \"train\"", Augmentation { normalize: Normalization::TrainStatistics, ..Default::default() }),
            ("normalize = \"none\"", Augmentation::default()),
            (
                "normalize = { mean = [0.5], std = [0.25] }",
                Augmentation {
                    normalize: Normalization::Given { mean: vec![0.5], std: vec![0.25] },
                    ..Default::default()
                },
            ),
            ("", Augmentation::default()),
        ];
        for (augment, expected) in cases {
            assert_eq!(check(SHAPES, augment), Ok(expected), "{augment}");
        }
    }

    #[test]
    fn bad_values_are_refused_naming_the_key() {
        let cases = [
            ("crop_padding = 2000", "x.toml:6: augment.crop_padding: 2000 is out of range; expected 0 to 1024"),
            ("normalize = \"imagenet\"", "augment.normalize: unknown normalize \"imagenet\""),
            ("normalize = { mean = [0.5], std = [0.0] }", "augment.normalize.std: std 0 must be a finite number > 0"),
            ("normalize = { mean = [0.5, 0.5], std = [1.0] }", "augment.normalize.mean: mean has 2 values and std 1"),
            ("normalize = { mean = [0.5] }", "expected \"train\", \"none\" or { mean = [...], std = [...] }"),
            ("blur = true", "unknown field `blur`"),
        ];
        for (augment, expected) in cases {
            let error = check(SHAPES, augment).unwrap_err();
            assert!(error.contains(expected), "{augment}: {error}");
        }
    }

    #[test]
    fn a_file_without_images_cannot_augment() {
        let error = check(REVIEWS, "flip = true").unwrap_err();
        assert!(error.contains("augment.flip applies to image tasks, and no task of this file has images"), "{error}");
        assert!(check(&format!("{SHAPES}{REVIEWS}"), "flip = true").is_ok());
    }

    #[test]
    fn augmentation_is_in_the_trial_key_and_params_only_when_on() {
        let trial = |augment: &str| {
            let source = format!("name = \"x\"\n{SHAPES}{augment}");
            parse_str(&source, Path::new("x.toml")).expect("valid").trials.remove(0)
        };
        let base = trial("");
        for off in ["[augment]\n", "[augment]\ncrop_padding = 0\nflip = false\nnormalize = \"none\"\n"] {
            let same = trial(off);
            assert_eq!(
                (&same.key, &same.settings_json, same.params()),
                (&base.key, &base.settings_json, base.params())
            );
        }
        let on = trial("[augment]\ncrop_padding = 4\nflip = true\nnormalize = { mean = [0.1], std = [0.3] }\n");
        assert_ne!(on.key, base.key);
        let expected = r#""augment":{"crop_padding":4,"flip":true,"normalize":{"mean":[0.1],"std":[0.3]}}"#;
        assert!(on.settings_json.contains(expected), "{}", on.settings_json);
        let params: Vec<(String, String)> = on.params().into_iter().map(|(k, v)| (k, v.to_string())).collect();
        let augment: Vec<(&str, &str)> =
            params.iter().filter(|(k, _)| k.starts_with("augment")).map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let expected =
            [("augment_crop_padding", "4"), ("augment_flip", "1"), ("augment_normalize", "mean=[0.1] std=[0.3]")];
        assert_eq!(augment, expected);
        let train = trial("[augment]\nnormalize = \"train\"\n");
        assert!(train.settings_json.contains(r#""augment":{"crop_padding":0,"flip":false,"normalize":"train"}"#));
        assert_eq!(
            train.params().last().map(|(k, v)| (k.as_str(), v.to_string())),
            Some(("augment_normalize", "train".into()))
        );
    }

    #[test]
    fn augmentation_is_swept_like_any_setting() {
        let source =
            format!("name = \"x\"\n{SHAPES}[sweep.augment]\nflip = [false, true]\nnormalize = [\"none\", \"train\"]\n");
        let plan = parse_str(&source, Path::new("x.toml")).expect("valid");
        let got: Vec<(bool, bool)> = plan
            .trials
            .iter()
            .map(|t| (t.settings.augment.flip, t.settings.augment.normalize == Normalization::TrainStatistics))
            .collect();
        assert_eq!(got, [(false, false), (false, true), (true, false), (true, true)]);
    }
}
