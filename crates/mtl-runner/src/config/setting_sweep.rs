//! Sweeping any setting of the file: beside `strategy`, `weighting`, `lambda` and `lr`,
//! `[sweep]` may list values for each setting in [`SWEEPABLE`] — `batch_size = [32, 64]`,
//! `[sweep.optimizer] momentum = [0.9, 0.99]` or `"optimizer.momentum" = [0.9, 0.99]`.
//! Every combination of those values is the file with them written in (a variant),
//! validated like any file; the plan is the variants' trials, in combination order.

use std::collections::BTreeMap;

use toml::{Table, Value};

use super::entries::ExperimentFile;
use super::{Checker, ConfigError, Key, Seg};
use crate::plan::Plan;

/// The settings `[sweep]` can list values for, as dotted paths of the file.
pub const SWEEPABLE: [&str; 47] = [
    "epochs",
    "batch_size",
    "sampling",
    "temperature",
    "weight_decay",
    "model.trunk",
    "model.image_stem",
    "model.width",
    "model.hidden",
    "model.filters",
    "model.stem",
    "model.d_model",
    "model.heads",
    "model.layers",
    "model.ff",
    "model.positions",
    "model.pooling",
    "model.max_len",
    "model.bidirectional",
    "model.depth",
    "model.dropout",
    "optimizer.name",
    "optimizer.weight_decay",
    "optimizer.momentum",
    "optimizer.dampening",
    "optimizer.nesterov",
    "optimizer.beta1",
    "optimizer.beta2",
    "optimizer.eps",
    "optimizer.clip_norm",
    "schedule.name",
    "schedule.step_size",
    "schedule.gamma",
    "schedule.t_max",
    "schedule.eta_min",
    "schedule.warmup_epochs",
    "schedule.factor",
    "schedule.patience",
    "schedule.threshold",
    "schedule.cooldown",
    "schedule.min_lr",
    "weighting.rep_grad",
    "early_stopping.patience",
    "early_stopping.min_delta",
    "augment.crop_padding",
    "augment.flip",
    "augment.normalize",
];

/// The `[sweep]` keys with a syntax of their own (the plan's axes).
const AXES: [&str; 4] = ["strategy", "weighting", "lambda", "lr"];

/// One swept setting: its dotted path and its values, as written.
pub(super) type SettingAxis = (String, Vec<Value>);

/// `[sweep]`'s other entries as (dotted path, values), nested tables flattened, in key
/// order; a value that is not a list becomes `None` for the checker to refuse.
fn entries(settings: &BTreeMap<String, Value>) -> Vec<(String, Option<Vec<Value>>)> {
    fn walk(prefix: &str, value: &Value, out: &mut Vec<(String, Option<Vec<Value>>)>) {
        match value {
            Value::Table(table) => {
                for (key, value) in table {
                    walk(&format!("{prefix}.{key}"), value, out);
                }
            }
            Value::Array(values) => out.push((prefix.to_string(), Some(values.clone()))),
            _ => out.push((prefix.to_string(), None)),
        }
    }
    let mut out = Vec::new();
    for (key, value) in settings {
        walk(key, value, &mut out);
    }
    out
}

/// The swept settings as (dotted path, values); a value that is not a list counts as one.
pub(super) fn flatten(settings: &BTreeMap<String, Value>) -> Vec<SettingAxis> {
    entries(settings).into_iter().map(|(path, values)| (path, values.unwrap_or_else(|| vec![Value::from(0)]))).collect()
}

/// How many variants the swept settings make (saturating).
pub(super) fn variant_count(axes: &[SettingAxis]) -> u64 {
    axes.iter().fold(1u64, |n, (_, values)| n.saturating_mul(values.len() as u64))
}

impl Checker<'_> {
    /// The swept settings of `file`, each sweepable and a non-empty list of distinct values.
    pub(super) fn setting_axes(&self, file: &ExperimentFile) -> Result<Vec<SettingAxis>, ConfigError> {
        let mut axes = Vec::new();
        for (path, values) in entries(&file.sweep.settings) {
            let keys: Vec<Seg> = std::iter::once("sweep").chain(path.split('.')).map(Key).collect();
            if !SWEEPABLE.contains(&path.as_str()) {
                let message = format!(
                    "{path} cannot be swept; [sweep] takes {} and these settings: {}",
                    AXES.join(", "),
                    SWEEPABLE.join(", ")
                );
                self.fail(&keys, message)?;
            }
            let Some(values) = values else {
                let message = format!("sweep.{path} must be a list of values to try, e.g. [1, 2]; to fix one value, set {path} outside [sweep]");
                return self.fail(&keys, message);
            };
            self.non_empty(&values, &keys)?;
            for (i, value) in values.iter().enumerate() {
                if values[..i].contains(value) {
                    self.fail(&keys, format!("{path} = {value} is listed twice"))?;
                }
            }
            if let Some(fixed) = lookup(&file_table(self.source), &path) {
                let message = format!("{path} is set to {fixed} and swept; keep one of the two");
                self.fail(&keys, message)?;
            }
            axes.push((path, values));
        }
        Ok(axes)
    }

    /// The plan of every variant: `validate` of the file with each combination of the
    /// swept values written in. A variant's error says which values it had.
    pub(super) fn variants(
        &self,
        axes: &[SettingAxis],
        validate: impl Fn(ExperimentFile) -> Result<Plan, ConfigError>,
    ) -> Result<Plan, ConfigError> {
        let base = file_table(self.source);
        let mut merged: Option<Plan> = None;
        for combination in combinations(axes) {
            let described: Vec<String> = combination.iter().map(|(path, value)| format!("{path} = {value}")).collect();
            let described = described.join(", ");
            let keys: Vec<Seg> = std::iter::once("sweep").chain(combination[0].0.split('.')).map(Key).collect();
            let variant: ExperimentFile = Value::Table(variant(&base, &combination))
                .try_into()
                .or_else(|e: toml::de::Error| self.fail(&keys, format!("with {described}: {}", e.message())))?;
            let mut plan = validate(variant).map_err(|mut e| {
                e.message = format!("with {described}: {}", e.message);
                e
            })?;
            for trial in &mut plan.trials {
                trial.swept = combination.iter().map(|(path, value)| (path.clone(), shown(value))).collect();
            }
            match &mut merged {
                None => merged = Some(plan),
                Some(all) => all.trials.extend(plan.trials),
            }
        }
        let plan = merged.expect("at least one combination");
        let mut seen = std::collections::HashSet::new();
        if let Some(twice) = plan.trials.iter().find(|t| !seen.insert(t.key.as_str())) {
            let message =
                format!("two swept values give the same trial ({}): a swept setting does nothing here", twice.label());
            let first = &axes[0].0;
            let keys: Vec<Seg> = std::iter::once("sweep").chain(first.split('.')).map(Key).collect();
            self.fail(&keys, message)?;
        }
        Ok(plan)
    }
}

/// The file's top-level table, without `[sweep]`'s swept settings (the axes stay).
fn file_table(source: &str) -> Table {
    let mut table: Table = toml::from_str(source).unwrap_or_default();
    if let Some(Value::Table(sweep)) = table.get_mut("sweep") {
        sweep.retain(|key, _| AXES.contains(&key));
    }
    table
}

/// The value at dotted `path` of `table`, if set.
fn lookup<'a>(table: &'a Table, path: &str) -> Option<&'a Value> {
    let mut keys = path.split('.');
    let mut value = table.get(keys.next()?)?;
    for key in keys {
        value = value.as_table()?.get(key)?;
    }
    Some(value)
}

/// Every combination of one value per axis, the first axis slowest.
fn combinations(axes: &[SettingAxis]) -> Vec<Vec<(String, Value)>> {
    let mut out: Vec<Vec<(String, Value)>> = vec![Vec::new()];
    for (path, values) in axes {
        out = out
            .into_iter()
            .flat_map(|prefix| {
                values.iter().map(move |value| {
                    let mut combination = prefix.clone();
                    combination.push((path.clone(), value.clone()));
                    combination
                })
            })
            .collect();
    }
    out
}

/// `base` with each (path, value) of `combination` written in.
fn variant(base: &Table, combination: &[(String, Value)]) -> Table {
    fn set(table: &mut Table, keys: &[&str], value: Value) {
        match keys {
            [last] => {
                table.insert(last.to_string(), value);
            }
            [first, rest @ ..] => {
                let entry = table.entry(first.to_string()).or_insert_with(|| Value::Table(Table::new()));
                // A non-table here is an error the variant's own check reports.
                if let Value::Table(inner) = entry {
                    set(inner, rest, value);
                }
            }
            [] => {}
        }
    }
    let mut table = base.clone();
    for (path, value) in combination {
        set(&mut table, &path.split('.').collect::<Vec<_>>(), value.clone());
    }
    table
}

/// A value as a label shows it: strings without quotes.
fn shown(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::parse_str;

    const TASKS: &str = "[[tasks]]\nname = \"a\"\ndata = { format = \"synthetic-shapes\" }\n";

    fn parse(text: &str) -> Result<crate::plan::Plan, String> {
        parse_str(&format!("name = \"x\"\n{text}{TASKS}"), Path::new("x.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn every_combination_is_a_trial_with_its_values() {
        let plan = parse("[sweep]\nbatch_size = [16, 32]\n[sweep.optimizer]\nname = [\"sgd\", \"adam\"]\n").unwrap();
        let got: Vec<(usize, &str)> =
            plan.trials.iter().map(|t| (t.settings.batch_size, t.settings.optimizer.name())).collect();
        assert_eq!(got, [(16, "sgd"), (16, "adam"), (32, "sgd"), (32, "adam")]);
        assert!(plan.trials[1].label().contains("batch_size=16 optimizer.name=adam"), "{}", plan.trials[1].label());
        let keys: std::collections::BTreeSet<&str> = plan.trials.iter().map(|t| t.key.as_str()).collect();
        assert_eq!(keys.len(), 4);
    }

    #[test]
    fn a_quoted_dotted_key_sweeps_like_a_nested_table() {
        let plan = parse("[sweep]\n\"optimizer.name\" = [\"sgd\", \"adam\"]\n").unwrap();
        let names: Vec<&str> = plan.trials.iter().map(|t| t.settings.optimizer.name()).collect();
        assert_eq!(names, ["sgd", "adam"]);
    }

    #[test]
    fn an_unsweepable_key_is_named_with_those_that_can_be() {
        let error = parse("[sweep]\nname = [\"a\", \"b\"]\n").unwrap_err();
        assert!(error.contains("name cannot be swept"), "{error}");
        assert!(error.contains("batch_size") && error.contains("optimizer.momentum"), "{error}");
    }

    #[test]
    fn a_bad_value_names_the_variant() {
        let error = parse("[sweep]\nbatch_size = [16, 0]\n").unwrap_err();
        assert!(error.contains("with batch_size = 0") && error.contains("out of range"), "{error}");
    }

    #[test]
    fn fixed_and_swept_at_once_is_refused() {
        let error = parse("batch_size = 8\n[sweep]\nbatch_size = [16, 32]\n").unwrap_err();
        assert!(error.contains("set to 8 and swept"), "{error}");
        let error = parse("[sweep]\nbatch_size = 16\n").unwrap_err();
        assert!(error.contains("must be a list"), "{error}");
    }

    #[test]
    fn an_invalid_combination_is_refused_with_its_values() {
        let error = parse("[sweep.optimizer]\nbeta1 = [0.9, 0.8]\nname = [\"adam\", \"sgd\"]\n").unwrap_err();
        assert!(error.contains("with optimizer.beta1 = 0.9, optimizer.name = \"sgd\""), "{error}");
        assert!(error.contains("beta1 is a setting of adam and adamw, not of sgd"), "{error}");
    }
}
