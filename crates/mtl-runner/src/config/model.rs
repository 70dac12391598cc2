//! The model and the methods a sweep compares: `[model]` (the trunk), the strategies of
//! `sweep.strategy` with their `[strategy.<name>]` hyperparameters, and the weighting
//! methods of `sweep.weighting` with their `[weighting.<name>]` hyperparameters.

use mtl_model::{ImageStem, Sharing, Strategy, TrunkSpec};

use super::entries::{ModelEntry, OneOrMany, StrategyEntries};
use super::{Checker, ConfigError, Index, Key};
use crate::plan::{ModelConfig, DEFAULT_MODEL};
use crate::weighting::Method;

impl Checker<'_> {
    pub(super) fn model(&self, entry: &ModelEntry) -> Result<ModelConfig, ConfigError> {
        let TrunkSpec::Sequence { width: default_width, hidden: default_hidden, .. } = DEFAULT_MODEL else {
            unreachable!("the default trunk is the sequence CNN")
        };
        match entry.trunk.as_deref().unwrap_or("sequence") {
            "sequence" if entry.filters.is_some() => {
                self.fail(&[Key("model"), Key("filters")], "filters belongs to the textcnn trunk")
            }
            "sequence" => Ok(TrunkSpec::Sequence {
                width: self.count(entry.width, default_width, &[Key("model"), Key("width")], 1..4097)?,
                hidden: self.count(entry.hidden, default_hidden, &[Key("model"), Key("hidden")], 1..4097)?,
                image_stem: match entry.image_stem.as_deref().unwrap_or("conv") {
                    "conv" => ImageStem::Conv,
                    "rows" => ImageStem::Rows,
                    other => {
                        return self.fail(
                            &[Key("model"), Key("image_stem")],
                            format!("unknown image stem \"{other}\"; expected \"conv\" or \"rows\""),
                        )
                    }
                },
            }),
            "textcnn" => {
                for (key, is_given) in [("hidden", entry.hidden.is_some()), ("image_stem", entry.image_stem.is_some())]
                {
                    if is_given {
                        self.fail(
                            &[Key("model"), Key(key)],
                            "the textcnn trunk has no such setting; it takes width and filters",
                        )?;
                    }
                }
                Ok(TrunkSpec::TextCnn {
                    width: self.count(entry.width, 128, &[Key("model"), Key("width")], 1..4097)?,
                    filters: self.count(entry.filters, 100, &[Key("model"), Key("filters")], 1..4097)?,
                })
            }
            "lenet" => {
                let given = [
                    ("width", entry.width.is_some()),
                    ("hidden", entry.hidden.is_some()),
                    ("image_stem", entry.image_stem.is_some()),
                    ("filters", entry.filters.is_some()),
                ];
                for (key, is_given) in given {
                    if is_given {
                        self.fail(&[Key("model"), Key(key)], "the lenet trunk has fixed sizes; remove this key")?;
                    }
                }
                Ok(TrunkSpec::LeNet)
            }
            other => self.fail(
                &[Key("model"), Key("trunk")],
                format!("unknown trunk \"{other}\"; expected \"sequence\", \"lenet\" or \"textcnn\""),
            ),
        }
    }

    /// Every combination of `strategy`'s hyperparameters given under `[strategy.<name>]`
    /// (a value or a list to sweep; defaults for those not given), each validated.
    pub(super) fn sharings(&self, strategy: Strategy, entries: &StrategyEntries) -> Result<Vec<Sharing>, ConfigError> {
        let floats = |given: &Option<OneOrMany<f64>>| given.clone();
        let counts = |given: &Option<OneOrMany<usize>>| {
            given.as_ref().map(|g| match g {
                OneOrMany::One(v) => OneOrMany::One(*v as f64),
                OneOrMany::Many(vs) => OneOrMany::Many(vs.iter().map(|&v| v as f64).collect()),
            })
        };
        // The file's keys, in the order of `Sharing::hyperparameters`, and what the file gives for each.
        let (keys, given): (&[&str], Vec<Option<OneOrMany<f64>>>) = match strategy {
            Strategy::Soft => (&["weight"], vec![entries.soft.as_ref().and_then(|e| floats(&e.weight))]),
            Strategy::CrossStitch => (&["init"], vec![entries.cross_stitch.as_ref().and_then(|e| floats(&e.init))]),
            Strategy::Mmoe => (&["experts"], vec![entries.mmoe.as_ref().and_then(|e| counts(&e.experts))]),
            Strategy::Cgc => {
                let entry = entries.cgc.as_ref();
                (
                    &["experts", "task_experts"],
                    vec![entry.and_then(|e| counts(&e.experts)), entry.and_then(|e| counts(&e.task_experts))],
                )
            }
            Strategy::Ple => {
                let entry = entries.ple.as_ref();
                (
                    &["experts", "task_experts", "levels"],
                    vec![
                        entry.and_then(|e| counts(&e.experts)),
                        entry.and_then(|e| counts(&e.task_experts)),
                        entry.and_then(|e| counts(&e.levels)),
                    ],
                )
            }
            Strategy::SingleTask | Strategy::Hard | Strategy::Mtan => return Ok(vec![Sharing::default_for(strategy)]),
        };
        let build = |values: &[f64]| match strategy {
            Strategy::Soft => Sharing::Soft { weight: values[0] },
            Strategy::CrossStitch => Sharing::CrossStitch { init: values[0] },
            Strategy::Mmoe => Sharing::Mmoe { experts: values[0] as usize },
            Strategy::Cgc => Sharing::Cgc { experts: values[0] as usize, task_experts: values[1] as usize },
            _ => Sharing::Ple {
                experts: values[0] as usize,
                task_experts: values[1] as usize,
                levels: values[2] as usize,
            },
        };
        let name = strategy.name();
        let defaults: Vec<f64> = Sharing::default_for(strategy).hyperparameters().iter().map(|(_, v)| *v).collect();
        let mut axes: Vec<Vec<f64>> = Vec::new();
        for (k, key) in keys.iter().enumerate() {
            let Some(given) = &given[k] else {
                axes.push(vec![defaults[k]]);
                continue;
            };
            let values = given.values();
            let at = |i: usize| match given {
                OneOrMany::One(_) => vec![Key("strategy"), Key(name), Key(key)],
                OneOrMany::Many(_) => vec![Key("strategy"), Key(name), Key(key), Index(i)],
            };
            self.non_empty(&values, &at(0)[..3])?;
            for (i, &value) in values.iter().enumerate() {
                if values[..i].contains(&value) {
                    self.fail(&at(i), format!("{value} is listed twice"))?;
                }
                // Each value on its own, with the defaults for the rest.
                let mut probe = defaults.clone();
                probe[k] = value;
                if let Err(message) = build(&probe).validate() {
                    self.fail(&at(i), message)?;
                }
            }
            axes.push(values);
        }
        let mut combinations: Vec<Vec<f64>> = vec![Vec::new()];
        for axis in axes {
            combinations = combinations
                .into_iter()
                .flat_map(|prefix| {
                    axis.iter().map(move |&value| prefix.iter().copied().chain([value]).collect::<Vec<f64>>())
                })
                .collect();
        }
        let mut sharings = Vec::new();
        for values in combinations {
            let sharing = build(&values);
            if let Err(message) = sharing.validate() {
                self.fail(&[Key("strategy"), Key(name)], message)?;
            }
            sharings.push(sharing);
        }
        Ok(sharings)
    }

    /// Every combination of `method`'s hyperparameters given under `[weighting.<name>]`
    /// (defaults for those not given). A file key is the store name without the method's prefix
    /// (`[weighting.cagrad] c` is `cagrad_c`).
    pub(super) fn methods(
        &self,
        method: Method,
        entries: &std::collections::BTreeMap<String, std::collections::BTreeMap<String, OneOrMany<f64>>>,
    ) -> Result<Vec<Method>, ConfigError> {
        let name = method.name();
        let defaults = method.hyperparameters();
        let prefix = format!("{}_", name.replace('-', "_"));
        let file_key = |store_name: &str| store_name.strip_prefix(&prefix).unwrap_or(store_name).to_string();
        let given = entries.get(name);
        if let Some(given) = given {
            for key in given.keys() {
                if !defaults.iter().any(|(store_name, _)| file_key(store_name) == *key) {
                    let known: Vec<String> = defaults.iter().map(|(n, _)| file_key(n)).collect();
                    let expected = if known.is_empty() { "none".to_string() } else { known.join(", ") };
                    self.fail(
                        &[Key("weighting"), Key(name), Key(key)],
                        format!("{name} has no hyperparameter \"{key}\"; it has: {expected}"),
                    )?;
                }
            }
        }
        let mut combinations: Vec<Vec<(&'static str, f64)>> = vec![Vec::new()];
        for &(store_name, default) in &defaults {
            let key = file_key(store_name);
            let values = match given.and_then(|g| g.get(&key)) {
                None => vec![default],
                Some(one_or_many) => {
                    let values = one_or_many.values();
                    let at = |i: usize| match one_or_many {
                        OneOrMany::One(_) => vec![Key("weighting"), Key(name), Key(&key)],
                        OneOrMany::Many(_) => vec![Key("weighting"), Key(name), Key(&key), Index(i)],
                    };
                    self.non_empty(&values, &at(0)[..3])?;
                    for (i, &value) in values.iter().enumerate() {
                        if values[..i].contains(&value) {
                            self.fail(&at(i), format!("{value} is listed twice"))?;
                        }
                        if let Err(message) = method.with(&[(store_name, value)]) {
                            self.fail(&at(i), message)?;
                        }
                    }
                    values
                }
            };
            combinations = combinations
                .into_iter()
                .flat_map(|prefix| {
                    values.iter().map(move |&v| prefix.iter().copied().chain([(store_name, v)]).collect())
                })
                .collect();
        }
        combinations
            .iter()
            .map(|values| method.with(values).or_else(|message| self.fail(&[Key("weighting"), Key(name)], message)))
            .collect()
    }

    /// A sweep list of names (`sweep.<key>`): not empty, each known, none twice.
    pub(super) fn names<T: Copy + PartialEq>(
        &self,
        names: &[String],
        key: &str,
        all: &[T],
        name_of: fn(T) -> &'static str,
    ) -> Result<Vec<T>, ConfigError> {
        self.non_empty(names, &[Key("sweep"), Key(key)])?;
        let mut values = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let path = [Key("sweep"), Key(key), Index(i)];
            let Some(value) = all.iter().copied().find(|v| name_of(*v) == name) else {
                let known: Vec<&str> = all.iter().map(|v| name_of(*v)).collect();
                return self.fail(&path, format!("unknown {key} \"{name}\"; expected one of {}", known.join(", ")));
            };
            if values.contains(&value) {
                self.fail(&path, format!("{key} \"{name}\" is listed twice"))?;
            }
            values.push(value);
        }
        Ok(values)
    }
}

#[cfg(test)]
mod strategy_tests {
    use std::path::Path;

    use super::*;
    use crate::config::parse_str;

    fn sharings(sweep: &str, sections: &str) -> Vec<Sharing> {
        let source = format!(
            "name = \"x\"\n[[tasks]]\nname = \"a\"\ndata = {{ format = \"synthetic-shapes\" }}\n[sweep]\nstrategy = {sweep}\n{sections}"
        );
        let plan = parse_str(&source, Path::new("x.toml")).expect("valid");
        plan.trials.iter().map(|trial| trial.sharing).collect()
    }

    #[test]
    fn hyperparameter_lists_expand_into_their_product_in_sweep_order() {
        let ple = |experts, levels| Sharing::Ple { experts, task_experts: 1, levels };
        assert_eq!(
            sharings("[\"ple\", \"hard\"]", "[strategy.ple]\nexperts = [1, 2]\nlevels = [1, 3]\n"),
            [ple(1, 1), ple(1, 3), ple(2, 1), ple(2, 3), Sharing::Hard]
        );
        // A single value is one trial; defaults fill what the file leaves out.
        assert_eq!(
            sharings("[\"mmoe\", \"soft\"]", "[strategy.mmoe]\nexperts = 4\n"),
            [Sharing::Mmoe { experts: 4 }, Sharing::default_for(Strategy::Soft)]
        );
    }

    #[test]
    fn only_strategies_with_hyperparameters_change_their_trial_keys() {
        // Keys of hard and single-task trials must not change with the new sections (resume).
        let source = |sections: &str| {
            format!("name = \"x\"\n[[tasks]]\nname = \"a\"\ndata = {{ format = \"synthetic-shapes\" }}\n[sweep]\nstrategy = [\"hard\", \"soft\"]\n{sections}")
        };
        let keys = |sections: &str| -> Vec<String> {
            parse_str(&source(sections), Path::new("x.toml"))
                .expect("valid")
                .trials
                .into_iter()
                .map(|t| t.key)
                .collect()
        };
        let plain = keys("");
        let weighted = keys("[strategy.soft]\nweight = 0.5\n");
        assert_eq!(plain[0], weighted[0], "hard");
        assert_ne!(plain[1], weighted[1], "soft");
    }
}
