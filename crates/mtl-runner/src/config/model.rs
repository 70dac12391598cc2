//! The model and the methods a sweep compares: `[model]` (the trunk), the strategies of
//! `sweep.strategy` with their `[strategy.<name>]` hyperparameters, and the weighting
//! methods of `sweep.weighting` with their `[weighting.<name>]` hyperparameters.

use mtl_model::sequence::{CellKind, Pooling, Positions, RecurrentPooling};
use mtl_model::{ImageStem, ResNetDepth, ResNetStem, Sharing, Strategy, TrunkSpec};

use super::entries::{ModelEntry, OneOrMany, StrategyEntries};
use super::{Checker, ConfigError, Index, Key, Seg};
use crate::plan::{ModelConfig, DEFAULT_MODEL};
use crate::weighting::Method;

/// The `[model]` keys that shape a trunk, with whether `entry` gives each.
fn given_keys(entry: &ModelEntry) -> [(&'static str, bool); 16] {
    [
        ("width", entry.width.is_some()),
        ("hidden", entry.hidden.is_some()),
        ("image_stem", entry.image_stem.is_some()),
        ("filters", entry.filters.is_some()),
        ("stem", entry.stem.is_some()),
        ("d_model", entry.d_model.is_some()),
        ("heads", entry.heads.is_some()),
        ("layers", entry.layers.is_some()),
        ("ff", entry.ff.is_some()),
        ("positions", entry.positions.is_some()),
        ("pooling", entry.pooling.is_some()),
        ("max_len", entry.max_len.is_some()),
        ("bidirectional", entry.bidirectional.is_some()),
        ("depth", entry.depth.is_some()),
        ("steps", entry.steps.is_some()),
        ("readout_steps", entry.readout_steps.is_some()),
    ]
}

/// The trunks `[model] trunk` names.
const TRUNKS: &str = "\"sequence\", \"lenet\", \"textcnn\", \"resnet18\", \"resnet34\", \"transformer\", \"lstm\", \"gru\", \"mlp\", \"encoder-decoder\" or \"mpnn\"";

impl Checker<'_> {
    /// `[model]`: the trunk and its sizes. Defaults: `sequence` (width 32, hidden 64, image
    /// stem `conv`); `textcnn` width 128, filters 100; `resnet18`/`resnet34` width 1 (a
    /// channel multiplier: 64·width … 512·width channels), stem `imagenet` for images of at
    /// least 64 px on each side, `cifar` below; `transformer` d_model 64, heads 4, layers 2,
    /// ff 4·d_model, positions `sinusoidal` (or `learned`), pooling `mean` (or `cls`),
    /// max_len 512; `lstm`/`gru` width (embedding) 64, hidden 64, bidirectional true,
    /// pooling `final` (or `mean`); `mlp` width 64, depth 2; `encoder-decoder` (dense tasks)
    /// depth 18 (or 34: the encoder's ResNet), width 1, stem `imagenet`; `mpnn` (molecular
    /// graphs) width 64, steps 3, readout_steps 3 (LibMTL's QM9 encoder). A key the trunk
    /// does not take is an error.
    pub(super) fn model(&self, entry: &ModelEntry) -> Result<ModelConfig, ConfigError> {
        let TrunkSpec::Sequence { width: default_width, hidden: default_hidden, .. } = DEFAULT_MODEL else {
            unreachable!("the default trunk is the sequence CNN")
        };
        let trunk = entry.trunk.as_deref().unwrap_or("sequence");
        let width = |default: usize| -> Result<usize, ConfigError> {
            let width = self.whole(entry.width, &[Key("model"), Key("width")])?;
            self.count(width, default, &[Key("model"), Key("width")], 1..4097)
        };
        match trunk {
            "sequence" if entry.filters.is_some() => {
                self.fail(&[Key("model"), Key("filters")], "filters belongs to the textcnn trunk")
            }
            "sequence" => {
                self.only(entry, trunk, &["width", "hidden", "image_stem"])?;
                Ok(TrunkSpec::Sequence {
                    width: width(default_width)?,
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
                })
            }
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
                self.only(entry, trunk, &["width", "filters"])?;
                Ok(TrunkSpec::TextCnn {
                    width: width(128)?,
                    filters: self.count(entry.filters, 100, &[Key("model"), Key("filters")], 1..4097)?,
                })
            }
            "lenet" => {
                for (key, is_given) in given_keys(entry) {
                    if is_given {
                        self.fail(&[Key("model"), Key(key)], "the lenet trunk has fixed sizes; remove this key")?;
                    }
                }
                Ok(TrunkSpec::LeNet)
            }
            "encoder-decoder" => {
                self.only(entry, trunk, &["depth", "width", "stem"])?;
                let depth = match entry.depth.unwrap_or(18) {
                    18 => ResNetDepth::R18,
                    34 => ResNetDepth::R34,
                    other => {
                        let message = format!("{other}: the encoder is a ResNet-18 or -34; write 18 or 34");
                        return self.fail(&[Key("model"), Key("depth")], message);
                    }
                };
                let TrunkSpec::ResNet { width, stem, .. } = self.resnet(entry, "encoder-decoder")? else {
                    unreachable!("resnet settings")
                };
                Ok(TrunkSpec::EncoderDecoder { depth, width, stem: stem.unwrap_or(ResNetStem::ImageNet) })
            }
            "resnet18" | "resnet34" => {
                self.only(entry, trunk, &["width", "stem"])?;
                let TrunkSpec::ResNet { width, stem, .. } = self.resnet(entry, trunk)? else {
                    unreachable!("resnet settings")
                };
                let depth = if trunk == "resnet18" { ResNetDepth::R18 } else { ResNetDepth::R34 };
                Ok(TrunkSpec::ResNet { depth, width, stem })
            }
            "transformer" => {
                self.only(entry, trunk, &["d_model", "heads", "layers", "ff", "positions", "pooling", "max_len"])?;
                let at = |key| [Key("model"), Key(key)];
                let d_model = self.count(entry.d_model, 64, &at("d_model"), 1..4097)?;
                let heads = self.count(entry.heads, 4, &at("heads"), 1..257)?;
                if d_model % heads != 0 {
                    self.fail(&at("heads"), format!("{heads} heads do not divide d_model {d_model}"))?;
                }
                Ok(TrunkSpec::Transformer {
                    d_model,
                    heads,
                    layers: self.count(entry.layers, 2, &at("layers"), 1..65)?,
                    ff: self.count(entry.ff, 4 * d_model, &at("ff"), 1..16385)?,
                    positions: match entry.positions.as_deref().unwrap_or("sinusoidal") {
                        "sinusoidal" => Positions::Sinusoidal,
                        "learned" => Positions::Learned,
                        other => {
                            let message =
                                format!("unknown positions \"{other}\"; expected \"sinusoidal\" or \"learned\"");
                            return self.fail(&at("positions"), message);
                        }
                    },
                    pooling: match entry.pooling.as_deref().unwrap_or("mean") {
                        "mean" => Pooling::MaskedMean,
                        "cls" => Pooling::Cls,
                        other => {
                            let message = format!("unknown pooling \"{other}\"; expected \"mean\" or \"cls\"");
                            return self.fail(&at("pooling"), message);
                        }
                    },
                    max_len: self.count(entry.max_len, 512, &at("max_len"), 1..100_001)?,
                })
            }
            "lstm" | "gru" => {
                self.only(entry, trunk, &["width", "hidden", "bidirectional", "pooling"])?;
                Ok(TrunkSpec::Recurrent {
                    cell: if trunk == "lstm" { CellKind::Lstm } else { CellKind::Gru },
                    width: width(64)?,
                    hidden: self.count(entry.hidden, 64, &[Key("model"), Key("hidden")], 1..4097)?,
                    bidirectional: entry.bidirectional.unwrap_or(true),
                    pooling: match entry.pooling.as_deref().unwrap_or("final") {
                        "final" => RecurrentPooling::FinalStates,
                        "mean" => RecurrentPooling::MaskedMean,
                        other => {
                            return self.fail(
                                &[Key("model"), Key("pooling")],
                                format!("unknown pooling \"{other}\"; expected \"final\" or \"mean\""),
                            )
                        }
                    },
                })
            }
            "mlp" => {
                self.only(entry, trunk, &["width", "depth"])?;
                Ok(TrunkSpec::Mlp {
                    width: width(64)?,
                    depth: self.count(entry.depth, 2, &[Key("model"), Key("depth")], 1..65)?,
                })
            }
            "mpnn" => {
                self.only(entry, trunk, &["width", "steps", "readout_steps"])?;
                let at = |key| [Key("model"), Key(key)];
                Ok(TrunkSpec::Mpnn {
                    width: self.count(self.whole(entry.width, &at("width"))?, 64, &at("width"), 1..257)?,
                    steps: self.count(entry.steps, 3, &at("steps"), 1..17)?,
                    readout_steps: self.count(entry.readout_steps, 3, &at("readout_steps"), 1..17)?,
                })
            }
            other => self.fail(&[Key("model"), Key("trunk")], format!("unknown trunk \"{other}\"; expected {TRUNKS}")),
        }
    }

    /// A ResNet's `width` and `stem` for `trunk` (its depth is the caller's: R18 here).
    fn resnet(&self, entry: &ModelEntry, trunk: &str) -> Result<TrunkSpec, ConfigError> {
        let multiplier = entry.width.unwrap_or(1.0);
        if !(multiplier > 0.0 && multiplier <= 16.0) {
            self.fail(
                &[Key("model"), Key("width")],
                format!("{multiplier} is out of range; {trunk}'s width is a channel multiplier above 0, at most 16"),
            )?;
        }
        let stem = match entry.stem.as_deref() {
            None => None,
            Some("cifar") => Some(ResNetStem::Cifar),
            Some("imagenet") => Some(ResNetStem::ImageNet),
            Some(other) => {
                return self.fail(
                    &[Key("model"), Key("stem")],
                    format!("unknown stem \"{other}\"; expected \"cifar\" or \"imagenet\""),
                )
            }
        };
        Ok(TrunkSpec::ResNet { depth: ResNetDepth::R18, width: multiplier, stem })
    }

    /// Refuses the keys `entry` gives that `trunk` does not take (`takes`), naming those it does.
    fn only(&self, entry: &ModelEntry, trunk: &str, takes: &[&str]) -> Result<(), ConfigError> {
        for (key, is_given) in given_keys(entry) {
            if is_given && !takes.contains(&key) {
                self.fail(
                    &[Key("model"), Key(key)],
                    format!("the {trunk} trunk has no such setting; it takes {}", takes.join(", ")),
                )?;
            }
        }
        Ok(())
    }

    /// A count given as a number (`width`, which ResNet reads as a multiplier): whole and ≥ 0.
    fn whole(&self, value: Option<f64>, path: &[Seg]) -> Result<Option<usize>, ConfigError> {
        match value {
            Some(v) if v.fract() != 0.0 || !v.is_finite() => self.fail(path, format!("{v} is not a whole number")),
            Some(v) if v < 0.0 => self.fail(path, format!("{v} is out of range; expected 1 to 4096")),
            Some(v) => Ok(Some(v as usize)),
            None => Ok(None),
        }
    }

    /// Every combination of `strategy`'s hyperparameters given under `[strategy.<name>]`
    /// (a value or a list to sweep; defaults for those not given), each validated.
    /// Each is validated for `trunk` (PLE has at most one level per trunk block).
    pub(super) fn sharings(
        &self,
        strategy: Strategy,
        entries: &StrategyEntries,
        trunk: &TrunkSpec,
    ) -> Result<Vec<Sharing>, ConfigError> {
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
            Strategy::DSelectK => {
                let entry = entries.dselect_k.as_ref();
                (
                    &["experts", "k", "gamma"],
                    vec![
                        entry.and_then(|e| counts(&e.experts)),
                        entry.and_then(|e| counts(&e.k)),
                        entry.and_then(|e| floats(&e.gamma)),
                    ],
                )
            }
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
            Strategy::Ltb => (&["temperature"], vec![entries.ltb.as_ref().and_then(|e| floats(&e.temperature))]),
            Strategy::SingleTask | Strategy::Hard | Strategy::Mtan => return Ok(vec![Sharing::default_for(strategy)]),
        };
        let build = |values: &[f64]| match strategy {
            Strategy::Soft => Sharing::Soft { weight: values[0] },
            Strategy::CrossStitch => Sharing::CrossStitch { init: values[0] },
            Strategy::Mmoe => Sharing::Mmoe { experts: values[0] as usize },
            Strategy::DSelectK => {
                Sharing::DSelectK { experts: values[0] as usize, selectors: values[1] as usize, gamma: values[2] }
            }
            Strategy::Ltb => Sharing::Ltb { temperature: values[0] },
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
                if let Err(message) = build(&probe).validate_for(trunk) {
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
            if let Err(message) = sharing.validate_for(trunk) {
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
    fn dselect_k_and_ltb_take_their_sections_and_defaults() {
        let dselect = |experts, selectors| Sharing::DSelectK { experts, selectors, gamma: 1.0 };
        let sections = "[strategy.dselect-k]\nexperts = [2, 5]\nk = 1\n[strategy.ltb]\ntemperature = [0.5, 2]\n";
        assert_eq!(
            sharings("[\"dselect-k\", \"ltb\"]", sections),
            [dselect(2, 1), dselect(5, 1), Sharing::Ltb { temperature: 0.5 }, Sharing::Ltb { temperature: 2.0 }]
        );
        assert_eq!(
            sharings("[\"dselect-k\", \"ltb\"]", ""),
            [Sharing::DSelectK { experts: 4, selectors: 2, gamma: 1.0 }, Sharing::Ltb { temperature: 1.0 }]
        );
        // Bad values are refused naming the key.
        let source = |sections: &str| {
            format!("name = \"x\"\n[[tasks]]\nname = \"a\"\ndata = {{ format = \"synthetic-shapes\" }}\n[sweep]\nstrategy = [\"dselect-k\", \"ltb\"]\n{sections}")
        };
        for (sections, key, message) in [
            (
                "[strategy.dselect-k]\ngamma = [1, 0]\n",
                "strategy.dselect-k.gamma[1]",
                "gamma must be a finite number > 0",
            ),
            ("[strategy.dselect-k]\nexperts = 1\n", "strategy.dselect-k.experts", "at least 2 experts"),
            (
                "[strategy.ltb]\ntemperature = -1\n",
                "strategy.ltb.temperature",
                "temperature must be a finite number > 0",
            ),
        ] {
            let error = parse_str(&source(sections), Path::new("x.toml")).expect_err(sections);
            assert_eq!(error.key.as_deref(), Some(key), "{sections}");
            assert!(error.message.contains(message), "{sections}: {}", error.message);
        }
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

#[cfg(test)]
mod trunk_tests {
    use std::path::Path;

    use super::*;
    use crate::config::parse_str;
    use mtl_store::ParamValue;

    /// A one-task file on `format` with `[model]` = `model` and a hard and a PLE trial.
    fn parse(format: &str, model: &str) -> Result<crate::plan::Plan, crate::config::ConfigError> {
        let source = format!(
            "name = \"x\"\n[[tasks]]\nname = \"a\"\ndata = {{ format = \"{format}\" }}\n[model]\n{model}\n[sweep]\nstrategy = [\"hard\", \"ple\"]\n"
        );
        parse_str(&source, Path::new("x.toml"))
    }

    #[track_caller]
    fn check(model: &str, expected: TrunkSpec) {
        let plan = parse("synthetic-reviews", model).unwrap_or_else(|e| panic!("{model}: {e}"));
        assert_eq!(plan.trials[0].settings.model, expected, "{model}");
    }

    #[test]
    fn each_new_trunk_gets_its_keys_and_the_documented_defaults() {
        use mtl_model::sequence::{CellKind, Pooling, Positions, RecurrentPooling};
        let resnet = |depth, width, stem| TrunkSpec::ResNet { depth, width, stem };
        check("trunk = \"resnet18\"", resnet(ResNetDepth::R18, 1.0, None));
        check(
            "trunk = \"resnet34\"\nwidth = 0.125\nstem = \"cifar\"",
            resnet(ResNetDepth::R34, 0.125, Some(ResNetStem::Cifar)),
        );
        check(
            "trunk = \"resnet18\"\nwidth = 2\nstem = \"imagenet\"",
            resnet(ResNetDepth::R18, 2.0, Some(ResNetStem::ImageNet)),
        );
        let transformer = TrunkSpec::Transformer {
            d_model: 64,
            heads: 4,
            layers: 2,
            ff: 256,
            positions: Positions::Sinusoidal,
            pooling: Pooling::MaskedMean,
            max_len: 512,
        };
        check("trunk = \"transformer\"", transformer);
        check(
            "trunk = \"transformer\"\nd_model = 16\nheads = 2\nlayers = 3\npositions = \"learned\"\npooling = \"cls\"\nmax_len = 40",
            TrunkSpec::Transformer {
                d_model: 16,
                heads: 2,
                layers: 3,
                ff: 64,
                positions: Positions::Learned,
                pooling: Pooling::Cls,
                max_len: 40,
            },
        );
        let recurrent = |cell, width, hidden, bidirectional, pooling| TrunkSpec::Recurrent {
            cell,
            width,
            hidden,
            bidirectional,
            pooling,
        };
        check("trunk = \"lstm\"", recurrent(CellKind::Lstm, 64, 64, true, RecurrentPooling::FinalStates));
        check(
            "trunk = \"gru\"\nwidth = 8\nhidden = 12\nbidirectional = false\npooling = \"mean\"",
            recurrent(CellKind::Gru, 8, 12, false, RecurrentPooling::MaskedMean),
        );
        check("trunk = \"mlp\"\nwidth = 10", TrunkSpec::Mlp { width: 10, depth: 2 });
        // The encoder-decoder and the mpnn are one block each: PLE's default 2 levels do not
        // fit them, so no ple here.
        let one_block = |model: &str| {
            let source = format!(
                "name = \"x\"\n[[tasks]]\nname = \"a\"\ndata = {{ format = \"synthetic-shapes\" }}\n[model]\n{model}\n"
            );
            parse_str(&source, Path::new("x.toml")).unwrap_or_else(|e| panic!("{model}: {e}")).trials[0].settings.model
        };
        assert_eq!(
            one_block("trunk = \"encoder-decoder\""),
            TrunkSpec::EncoderDecoder { depth: ResNetDepth::R18, width: 1.0, stem: ResNetStem::ImageNet }
        );
        assert_eq!(
            one_block("trunk = \"encoder-decoder\"\ndepth = 34\nwidth = 0.25\nstem = \"cifar\""),
            TrunkSpec::EncoderDecoder { depth: ResNetDepth::R34, width: 0.25, stem: ResNetStem::Cifar }
        );
        assert_eq!(one_block("trunk = \"mpnn\""), TrunkSpec::Mpnn { width: 64, steps: 3, readout_steps: 3 });
        assert_eq!(
            one_block("trunk = \"mpnn\"\nwidth = 8\nsteps = 2\nreadout_steps = 1"),
            TrunkSpec::Mpnn { width: 8, steps: 2, readout_steps: 1 }
        );
    }

    #[test]
    fn bad_trunk_settings_are_refused_naming_the_key() {
        let cases = [
            (
                "trunk = \"resnet18\"\nhidden = 4",
                "model.hidden",
                "the resnet18 trunk has no such setting; it takes width, stem",
            ),
            ("trunk = \"resnet18\"\nwidth = 0", "model.width", "channel multiplier above 0"),
            ("trunk = \"resnet34\"\nstem = \"tiny\"", "model.stem", "unknown stem \"tiny\""),
            ("trunk = \"transformer\"\nd_model = 10\nheads = 4", "model.heads", "4 heads do not divide d_model 10"),
            ("trunk = \"transformer\"\nwidth = 4", "model.width", "it takes d_model, heads, layers, ff, positions"),
            ("trunk = \"transformer\"\npooling = \"max\"", "model.pooling", "expected \"mean\" or \"cls\""),
            ("trunk = \"transformer\"\nlayers = 0", "model.layers", "0 is out of range"),
            ("trunk = \"lstm\"\npooling = \"cls\"", "model.pooling", "expected \"final\" or \"mean\""),
            ("trunk = \"gru\"\nd_model = 4", "model.d_model", "the gru trunk has no such setting"),
            ("trunk = \"lstm\"\nwidth = 2.5", "model.width", "2.5 is not a whole number"),
            ("trunk = \"sequence\"\nwidth = 0.5", "model.width", "0.5 is not a whole number"),
            ("trunk = \"sequence\"\nlayers = 2", "model.layers", "the sequence trunk has no such setting"),
            ("trunk = \"lenet\"\nstem = \"cifar\"", "model.stem", "the lenet trunk has fixed sizes"),
            (
                "trunk = \"vgg\"",
                "model.trunk",
                "\"resnet18\", \"resnet34\", \"transformer\", \"lstm\", \"gru\", \"mlp\", \"encoder-decoder\" or \"mpnn\"",
            ),
            ("trunk = \"encoder-decoder\"\ndepth = 50", "model.depth", "a ResNet-18 or -34; write 18 or 34"),
            ("trunk = \"encoder-decoder\"\nhidden = 3", "model.hidden", "it takes depth, width, stem"),
        ];
        for (model, key, expected) in cases {
            let error = parse("synthetic-reviews", model).err().unwrap_or_else(|| panic!("{model}: accepted"));
            assert_eq!(error.key.as_deref(), Some(key), "{model}: {error}");
            assert!(error.message.contains(expected), "{model}: {}", error.message);
        }
    }

    #[test]
    fn ple_levels_are_checked_against_the_trunks_blocks() {
        let source = |model: &str, levels: usize| {
            format!(
                "name = \"x\"\n[[tasks]]\nname = \"a\"\ndata = {{ format = \"synthetic-reviews\" }}\n[model]\n{model}\n[sweep]\nstrategy = [\"ple\"]\n[strategy.ple]\nlevels = {levels}\n"
            )
        };
        let error = parse_str(&source("trunk = \"lstm\"", 3), Path::new("x.toml")).expect_err("refused");
        assert_eq!(error.key.as_deref(), Some("strategy.ple.levels"));
        assert!(error.message.contains("ple levels must be 1 or 2 (the trunk has 2 blocks), got 3"), "{error}");
        // A four-layer transformer has four blocks.
        let deep = "trunk = \"transformer\"\nd_model = 8\nheads = 2\nlayers = 4";
        assert!(parse_str(&source(deep, 4), Path::new("x.toml")).is_ok());
    }

    #[test]
    fn the_new_trunks_settings_are_trial_parameters_and_change_the_key() {
        let plan = parse("synthetic-shapes", "trunk = \"resnet18\"\nwidth = 0.25\nstem = \"cifar\"").expect("valid");
        let params = plan.trials[0].params();
        for (key, value) in [
            ("trunk", ParamValue::Text("resnet18".into())),
            ("width", ParamValue::Num(0.25)),
            ("stem", ParamValue::Text("cifar".into())),
        ] {
            assert!(params.contains(&(key.to_string(), value.clone())), "{key}: {params:?}");
        }
        let other = parse("synthetic-shapes", "trunk = \"resnet18\"\nwidth = 0.5\nstem = \"cifar\"").expect("valid");
        assert_ne!(plan.trials[0].key, other.trials[0].key);
        let lstm = parse("synthetic-reviews", "trunk = \"lstm\"\nbidirectional = false").expect("valid");
        let params = lstm.trials[0].params();
        assert!(params.contains(&("bidirectional".to_string(), ParamValue::Text("false".into()))), "{params:?}");
        assert!(params.contains(&("pooling".to_string(), ParamValue::Text("final".into()))), "{params:?}");
    }

    #[test]
    fn the_new_keys_can_be_swept() {
        let source = "name = \"x\"\n[[tasks]]\nname = \"a\"\ndata = { format = \"synthetic-shapes\" }\n[model]\ntrunk = \"resnet18\"\n[sweep]\nstrategy = [\"hard\"]\n[sweep.model]\nwidth = [0.125, 0.25]\nstem = [\"cifar\", \"imagenet\"]\n";
        let plan = parse_str(source, Path::new("x.toml")).expect("valid");
        // Swept keys combine in key order: `stem` before `width`.
        let models: Vec<TrunkSpec> = plan.trials.iter().map(|t| t.settings.model).collect();
        let resnet = |width, stem| TrunkSpec::ResNet { depth: ResNetDepth::R18, width, stem: Some(stem) };
        assert_eq!(
            models,
            [
                resnet(0.125, ResNetStem::Cifar),
                resnet(0.25, ResNetStem::Cifar),
                resnet(0.125, ResNetStem::ImageNet),
                resnet(0.25, ResNetStem::ImageNet)
            ]
        );
    }
}
