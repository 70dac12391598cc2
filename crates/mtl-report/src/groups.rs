//! Seed groups: the runs that share every resolved setting but the seed. Every
//! aggregate mtl-lab shows is over one seed group, or over groups the user asked to
//! pool (`mtl compare --pool`); nothing else is ever averaged together.
//!
//! A run's settings are its stored params except the seed and what the run measured
//! about itself ([`OUTCOME_PARAMS`]). A setting one run has and another lacks (a
//! method's hyperparameter) differs between them.

use std::collections::{BTreeMap, BTreeSet};

use mtl_store::{MetricKey, ParamValue, RunRecord};

/// The strategy whose runs train one task alone: the baseline of that task.
pub const SINGLE_TASK_STRATEGY: &str = "single-task";

/// Whether a run is a single-task baseline run.
pub fn is_single_task(run: &RunRecord) -> bool {
    matches!(run.params.get("strategy"), Some(ParamValue::Text(s)) if s == SINGLE_TASK_STRATEGY)
}

/// Params that record what a run measured or how a search found it, not how it was set
/// up (`split_sizes`: its examples per split, which its data settings decide; runs logged
/// before it lack it; `search_index` and `search_point`: its `[search]` proposal, whose
/// values are among its settings).
pub const OUTCOME_PARAMS: [&str; 6] =
    ["n_parameters", "steps", "train_seconds", "split_sizes", "search_index", "search_point"];

/// Whether the param `name` is a setting (not the seed nor an outcome).
pub fn is_setting(name: &str) -> bool {
    name != "seed" && !OUTCOME_PARAMS.contains(&name)
}

/// The value of `name` for `run`, `None` when the run lacks it.
pub fn value_of(run: &RunRecord, name: &str) -> Option<ParamValue> {
    run.params.get(name).cloned()
}

/// The settings among `runs` that take more than one value (missing counts as a
/// value), except those in `except`, with `weighting` first, then by name.
pub fn differing_settings<'a>(runs: impl IntoIterator<Item = &'a RunRecord> + Clone, except: &[&str]) -> Vec<String> {
    let names: BTreeSet<&String> = runs.clone().into_iter().flat_map(|run| run.params.keys()).collect();
    let mut differing: Vec<String> = names
        .into_iter()
        .filter(|name| is_setting(name) && !except.contains(&name.as_str()))
        .filter(|name| {
            let values: BTreeSet<String> = runs
                .clone()
                .into_iter()
                .map(|run| run.params.get(*name).map_or("\0".into(), |v| v.to_string()))
                .collect();
            values.len() > 1
        })
        .cloned()
        .collect();
    differing.sort_by_key(|name| (name != "weighting", name.clone()));
    differing
}

/// The label of a method: its strategy, then the settings that tell it apart, the
/// weighting method by its name and its hyperparameters in parentheses, e.g.
/// `hard, dwa (temperature=2)`, `hard, pcgrad, epochs=3`.
pub fn method_label<'a>(strategy: &str, settings: impl IntoIterator<Item = (&'a str, &'a ParamValue)>) -> String {
    let settings: Vec<(&str, &ParamValue)> = settings.into_iter().collect();
    // A single-task run weighs nothing against anything: its weighting is not news.
    let weighting = settings
        .iter()
        .find(|(name, _)| *name == "weighting" && strategy != SINGLE_TASK_STRATEGY)
        .map(|(_, v)| v.to_string());
    let prefix = weighting.as_ref().map(|w| format!("{}_", w.replace('-', "_")));
    let mut label = strategy.to_string();
    let mut own = Vec::new();
    let mut others = Vec::new();
    for (name, value) in &settings {
        match prefix.as_deref().and_then(|p| name.strip_prefix(p)) {
            Some(short) => own.push(format!("{short}={value}")),
            None if *name != "weighting" => others.push(format!("{name}={value}")),
            None => {}
        }
    }
    if let Some(weighting) = weighting {
        label.push_str(&format!(", {weighting}"));
        if !own.is_empty() {
            label.push_str(&format!(" ({})", own.join(", ")));
        }
    }
    for other in others {
        label.push_str(&format!(", {other}"));
    }
    label
}

/// `name=value` of `run` for each of `names` it has, joined by `, `.
pub fn describe(run: &RunRecord, names: &[String]) -> String {
    names.iter().filter_map(|name| Some(format!("{name}={}", run.params.get(name)?))).collect::<Vec<_>>().join(", ")
}

/// A run's result scored by its best-epoch rule ([`RunRecord::selection`]: the mean over
/// tasks of each task's selecting metric) on `split`; `None` when it logged none. On `val`
/// this is the score that chooses a run's best epoch, and so what [`crate::compare`] uses
/// to pick a setting "best on validation".
pub fn selection_score(run: &RunRecord, split: &str) -> Option<f64> {
    run.selection().score_on(split, run.result_metrics().iter().map(|(key, value)| (key, *value)))
}

/// The runs' values of `key` (their results), in the runs' order, skipping runs without it.
pub fn values_of(runs: &[&RunRecord], key: &MetricKey) -> Vec<f64> {
    runs.iter().filter_map(|run| run.result(key)).collect()
}

/// Splits `runs` into seed groups (every setting equal), in order of first run.
pub fn seed_groups<'a>(runs: &[&'a RunRecord]) -> Vec<Vec<&'a RunRecord>> {
    let mut groups: Vec<(BTreeMap<&String, String>, Vec<&RunRecord>)> = Vec::new();
    for &run in runs {
        let settings: BTreeMap<&String, String> =
            run.params.iter().filter(|(name, _)| is_setting(name)).map(|(name, v)| (name, v.to_string())).collect();
        match groups.iter_mut().find(|(s, _)| *s == settings) {
            Some((_, members)) => members.push(run),
            None => groups.push((settings, vec![run])),
        }
    }
    groups.into_iter().map(|(_, members)| members).collect()
}

/// Of several seed groups, the one whose mean validation score
/// ([`selection_score`] on `val`) is highest; ties and groups without
/// validation go to the earlier group.
pub fn best_on_validation<'a, 'b>(groups: &'b [Vec<&'a RunRecord>]) -> Option<&'b Vec<&'a RunRecord>> {
    let score = |group: &Vec<&RunRecord>| {
        let scores: Vec<f64> = group.iter().filter_map(|run| selection_score(run, "val")).collect();
        if scores.is_empty() {
            f64::NEG_INFINITY
        } else {
            scores.iter().sum::<f64>() / scores.len() as f64
        }
    };
    let mut best: Option<(&Vec<&RunRecord>, f64)> = None;
    for group in groups {
        let s = score(group);
        if best.is_none_or(|(_, b)| s > b) {
            best = Some((group, s));
        }
    }
    best.map(|(group, _)| group)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_name_the_weighting_and_its_own_hyperparameters_briefly() {
        let (dwa, two, three) = (ParamValue::Text("dwa".into()), ParamValue::Num(2.0), ParamValue::Num(3.0));
        let nash = ParamValue::Text("nash-mtl".into());
        assert_eq!(method_label("hard", [("weighting", &dwa), ("dwa_temperature", &two)]), "hard, dwa (temperature=2)");
        assert_eq!(
            method_label("hard", [("epochs", &three), ("nash_mtl_max_norm", &two), ("weighting", &nash)]),
            "hard, nash-mtl (max_norm=2), epochs=3"
        );
        assert_eq!(method_label("mmoe", [("experts", &three)]), "mmoe, experts=3");
        assert_eq!(method_label("hard", []), "hard");
        let static_ = ParamValue::Text("static".into());
        assert_eq!(method_label("single-task", [("weighting", &static_)]), "single-task");
    }
}
