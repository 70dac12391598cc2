//! `[model] init`: how the network's layers draw their initial values, one scheme or a
//! list to sweep (each scheme is a trial per strategy, weighting, λ, lr and seed).

use mtl_model::{InitScheme, WeightNames};

use crate::plan::PretrainedWeights;
use serde::Deserialize;

use super::{Checker, ConfigError, Index, Key};

/// The default: PyTorch's defaults, what users compare against.
pub(crate) const DEFAULT_INIT: InitScheme = InitScheme::Framework;

/// `init = "framework"`, `init = ["framework", "xavier-uniform"]`, or pretrained weights
/// `init = { weights = "resnet18.safetensors", map = "torchvision" }`.
#[derive(Deserialize, Clone)]
#[serde(untagged)]
pub(super) enum InitEntry {
    One(String),
    Many(Vec<String>),
    Pretrained(PretrainedEntry),
}

/// `init = { weights = …, map = … }`.
#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct PretrainedEntry {
    weights: std::path::PathBuf,
    map: Option<String>,
}

impl InitEntry {
    /// How many schemes the entry lists, for sizing the sweep.
    pub(super) fn len(&self) -> usize {
        match self {
            InitEntry::One(_) | InitEntry::Pretrained(_) => 1,
            InitEntry::Many(names) => names.len(),
        }
    }
}

impl Checker<'_> {
    /// The schemes `[model] init` asks for: each known, none twice, at least one.
    pub(super) fn inits(&self, entry: Option<&InitEntry>) -> Result<Vec<InitScheme>, ConfigError> {
        let names: Vec<(&str, Option<usize>)> = match entry {
            // The layers the weights do not cover draw as the default says.
            None | Some(InitEntry::Pretrained(_)) => return Ok(vec![DEFAULT_INIT]),
            Some(InitEntry::One(name)) => vec![(name, None)],
            Some(InitEntry::Many(names)) => {
                names.iter().enumerate().map(|(i, name)| (name.as_str(), Some(i))).collect()
            }
        };
        if names.is_empty() {
            return self.fail(&[Key("model"), Key("init")], "the list is empty; give at least one scheme");
        }
        let mut schemes = Vec::new();
        for (name, index) in names {
            let path = match index {
                None => vec![Key("model"), Key("init")],
                Some(i) => vec![Key("model"), Key("init"), Index(i)],
            };
            let Some(scheme) = InitScheme::from_name(name) else {
                let known: Vec<String> = InitScheme::ALL.iter().map(|s| format!("\"{}\"", s.name())).collect();
                return self.fail(&path, format!("unknown init \"{name}\"; expected one of {}", known.join(", ")));
            };
            if schemes.contains(&scheme) {
                return self.fail(&path, format!("init \"{name}\" is listed twice"));
            }
            schemes.push(scheme);
        }
        Ok(schemes)
    }
}

/// The largest weights file read: 4 GiB (a ResNet-34 is about 90 MB).
const MAX_WEIGHTS_BYTES: u64 = 4 << 30;

impl Checker<'_> {
    /// The pretrained weights `[model] init` names, if any: the file (relative to the
    /// experiment file) must be a regular file; its sha256 goes into the trial keys.
    pub(super) fn pretrained(&self, entry: Option<&InitEntry>) -> Result<Option<PretrainedWeights>, ConfigError> {
        let Some(InitEntry::Pretrained(entry)) = entry else { return Ok(None) };
        let at = |key: &'static str| [Key("model"), Key("init"), Key(key)];
        let map = entry.map.as_deref().unwrap_or("torchvision");
        let Some(names) = WeightNames::from_name(map) else {
            let known = WeightNames::NAMES.join(", ");
            return self.fail(&at("map"), format!("unknown weight naming \"{map}\"; expected one of {known}"));
        };
        let path = self.file.parent().unwrap_or(std::path::Path::new(".")).join(&entry.weights);
        let metadata = match std::fs::metadata(&path) {
            Ok(metadata) => metadata,
            Err(e) => return self.fail(&at("weights"), format!("cannot read {}: {e}", path.display())),
        };
        if !metadata.is_file() || metadata.len() > MAX_WEIGHTS_BYTES {
            let message = format!("{} is not a regular file of at most 4 GiB (a safetensors file)", path.display());
            return self.fail(&at("weights"), message);
        }
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) => return self.fail(&at("weights"), format!("cannot read {}: {e}", path.display())),
        };
        Ok(Some(PretrainedWeights { sha256: mtl_store::sha256_hex(&bytes), path, names }))
    }

    /// `[model] freeze`: parts (segments of parameter names) the optimiser leaves alone;
    /// whether each names a part of this network is checked once it is built.
    pub(super) fn freeze(&self, parts: Option<&[String]>) -> Result<Vec<String>, ConfigError> {
        let parts = parts.unwrap_or_default();
        for (i, part) in parts.iter().enumerate() {
            let path = [Key("model"), Key("freeze"), Index(i)];
            if part.is_empty() || part.contains('.') {
                self.fail(
                    &path,
                    format!("\"{part}\" is not a part name; parts are segments such as stem, stage1 … stage4"),
                )?;
            }
            if parts[..i].contains(part) {
                self.fail(&path, format!("\"{part}\" is listed twice"))?;
            }
        }
        Ok(parts.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::parse_str;

    const TASK: &str =
        "name = \"x\"\nseeds = [0, 1]\n[[tasks]]\nname = \"a\"\ndata = { format = \"synthetic-shapes\" }\n";

    /// The plan of TASK with `model` as its `[model]` section: each trial's init and key.
    fn trials(model: &str) -> Result<Vec<(InitScheme, u64, String)>, String> {
        let plan = parse_str(&format!("{TASK}[model]\n{model}\n"), Path::new("x.toml")).map_err(|e| e.to_string())?;
        Ok(plan.trials.iter().map(|t| (t.init, t.seed, t.key.clone())).collect())
    }

    #[test]
    fn one_scheme_or_a_list_to_sweep_defaulting_to_framework() {
        let inits =
            |model: &str| trials(model).unwrap().into_iter().map(|(init, seed, _)| (init, seed)).collect::<Vec<_>>();
        use InitScheme::*;
        assert_eq!(inits(""), [(Framework, 0), (Framework, 1)]);
        assert_eq!(inits("init = \"xavier-uniform\""), [(XavierUniform, 0), (XavierUniform, 1)]);
        assert_eq!(
            inits("init = [\"kaiming-normal\", \"framework\"]"),
            [(KaimingNormal, 0), (KaimingNormal, 1), (Framework, 0), (Framework, 1)]
        );
        let size = crate::config::sweep_size(
            &format!("{TASK}[model]\ninit = [\"candle\", \"framework\"]\n"),
            Path::new("x.toml"),
        );
        assert_eq!(size.unwrap().trials, 4);
    }

    #[test]
    fn each_scheme_has_its_own_keys_and_candle_keeps_the_keys_of_earlier_versions() {
        let key = |model: &str| trials(model).unwrap()[0].2.clone();
        let keys: Vec<String> = InitScheme::ALL.iter().map(|s| key(&format!("init = \"{}\"", s.name()))).collect();
        for (i, k) in keys.iter().enumerate() {
            assert!(!keys[..i].contains(k), "{:?}: a key of its own", InitScheme::ALL[i]);
        }
        assert_eq!(key(""), keys[0], "the default is framework");
        // The settings of a trial before `init` existed have no "init": `candle` adds none.
        let plan = parse_str(&format!("{TASK}[model]\ninit = \"candle\"\n"), Path::new("x.toml")).unwrap();
        assert!(!plan.trials[0].settings_json.contains("\"init\""), "{}", plan.trials[0].settings_json);
        let plan = parse_str(TASK, Path::new("x.toml")).unwrap();
        assert!(plan.trials[0].settings_json.contains("\"init\":\"framework\""));
        let params = plan.trials[0].params();
        assert!(params.contains(&("init".to_string(), mtl_store::ParamValue::Text("framework".into()))));
    }

    #[test]
    fn mistakes_name_the_key_and_the_line() {
        let error = |model: &str| trials(model).unwrap_err();
        let unknown = error("init = \"kaiming\"");
        assert!(
            unknown.contains("x.toml:7: model.init: unknown init \"kaiming\"; expected one of \"framework\""),
            "{unknown}"
        );
        let twice = error("init = [\"framework\", \"framework\"]");
        assert!(twice.contains("model.init[1]: init \"framework\" is listed twice"), "{twice}");
        assert!(error("init = []").contains("model.init: the list is empty"));
        let number = error("init = 3");
        assert!(number.contains("model.init") && number.contains("expected an init scheme name"), "{number}");
    }
}
