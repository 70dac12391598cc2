//! Groups of runs compared on their results: statistics over seeds with 95%
//! intervals, Δm% against the single-task baselines of the same experiment (see
//! [`crate::delta`]), tests against single-task and against the best group, and the
//! Pareto front. `mtl compare` prints this, and the report's strategy table and Δm%
//! heatmap are made of it, so the same question gets the same numbers.
//!
//! - **Which epoch.** Each run contributes its result ([`RunRecord::result_metrics`]:
//!   its best validation epoch, or its last, by the experiment's rule or `--epoch`).
//! - **Groups.** Runs are grouped by the keys asked for within each experiment. Runs of
//!   a group that differ in another setting (anything but the seed and the picked key)
//!   are split by it, and [`Comparison::split_by`] names those settings, unless the
//!   caller pools them ([`CompareSpec::pool`]).
//! - **Picking.** With [`CompareSpec::pick`] (e.g. `lambda`), each group keeps only the
//!   runs of the value of that setting whose mean validation score is highest (the mean
//!   over tasks of validation accuracy, the score that also picks each run's best epoch;
//!   ties go to the smaller value), and says which it picked.
//! - **Baselines.** The experiment's single-task runs that share the group's value of
//!   every setting both have but the strategy and weighting method (e.g. the same
//!   `epochs` and `lr`, however the runs were grouped or filtered); of those, when they
//!   still differ in settings, the seed group best on validation. No match: no Δm%.
//! - **Tests.** Each mean has n, the sample std and a 95% t interval. Each metric is
//!   tested against the baseline with Welch's t-test; each group's Δm% against the best
//!   group's, paired by seed when both have the same seeds, else Welch's (5% level).
//!
//! ```
//! use mtl_report::delta::delta_m;
//! // One task, accuracy 0.9 against a baseline of 0.8: +12.5%.
//! let delta = delta_m(&[("digits", "accuracy", 0.9, 0.8)]).expect("a baseline");
//! assert!((delta - 12.5).abs() < 1e-12);
//! ```

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use mtl_store::filter::lookup;
use mtl_store::{MetricKey, ParamValue, RunId, RunRecord, RunStatus};

use crate::delta::delta_m_of;
pub use crate::delta::{delta_m, lower_is_better, DeltaM};
use crate::groups::{
    best_on_validation, differing_settings, is_setting, is_single_task, seed_groups, selection_score, values_of,
};
use crate::stats::{paired_test, welch_test, Verdict};
use crate::stats::{seed_stats, SeedStats};

/// Stored metrics that Δm% leaves out unless the user names them (see `compare`).
pub const EXCLUDED_FROM_DELTA: [&str; 6] = ["loss", "r2", "top5_accuracy", "delta1", "delta2", "delta3"];

/// What to compare.
#[derive(Clone, Debug, Default)]
pub struct CompareSpec {
    /// Settings (or built-in keys) to group by.
    pub group_by: Vec<String>,
    /// A setting to choose per group, best on validation (e.g. `lambda`).
    pub pick: Option<String>,
    /// Pool runs of a group that differ in other settings, instead of splitting them.
    pub pool: bool,
    /// Metrics Δm% averages (default: every metric of the split but `loss`).
    pub delta_metrics: Option<Vec<String>>,
    /// The split compared (default `test`).
    pub split: Option<String>,
}

impl CompareSpec {
    /// Grouping by `keys`, nothing picked, nothing pooled, on test.
    pub fn by(keys: &[&str]) -> CompareSpec {
        CompareSpec { group_by: keys.iter().map(|k| k.to_string()).collect(), ..CompareSpec::default() }
    }
}

/// How a group stands against the best group of its experiment (by Δm%).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    /// The highest Δm%.
    Best,
    /// Not distinguishable from the best at the 5% level.
    WithinNoiseOfBest,
    /// Significantly below the best.
    BelowBest,
}

impl Standing {
    /// Its name in tables, CSV and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Standing::Best => "best",
            Standing::WithinNoiseOfBest => "within noise of best",
            Standing::BelowBest => "below best",
        }
    }
}

/// Runs that share the values of the grouping keys (and the experiment).
#[derive(Clone, Debug, PartialEq)]
pub struct GroupRow {
    /// The experiment.
    pub experiment: String,
    /// One value per [`Comparison::keys`]; `None` where the runs lack the setting.
    pub values: Vec<Option<ParamValue>>,
    /// The value of the picked setting, when one was picked.
    pub picked: Option<ParamValue>,
    /// How many values of the picked setting the group had.
    pub candidates: usize,
    /// No run of the group logged validation accuracy: the smallest value was kept, not
    /// one chosen on validation.
    pub picked_without_validation: bool,
    /// The group is the experiment's single-task runs (its Δm% is 0 by construction).
    pub baseline: bool,
    /// Its runs, in id order.
    pub runs: Vec<RunId>,
    /// The revisions of the experiment file its runs come from.
    pub revisions: Vec<u32>,
    /// One entry per [`Comparison::columns`].
    pub stats: Vec<Option<SeedStats>>,
    /// Per column, against the baseline (Welch's t-test); `None` for the baselines
    /// themselves or with fewer than two values on a side.
    pub versus_single_task: Vec<Option<Verdict>>,
    /// Δm% against the experiment's single-task baselines.
    pub delta_m: Option<DeltaM>,
    /// Against the best Δm% of the experiment; `None` without Δm%.
    pub standing: Option<Standing>,
    /// On the experiment's Pareto front.
    pub pareto: bool,
}

impl GroupRow {
    /// `key=value, …` of the keys, e.g. `strategy=hard, epochs=3`.
    pub fn describe(&self, keys: &[String]) -> String {
        keys.iter()
            .zip(&self.values)
            .map(|(k, v)| format!("{k}={}", v.as_ref().map_or("-".into(), |v| v.to_string())))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Δm% only.
    pub fn delta_m_value(&self) -> Option<f64> {
        self.delta_m.as_ref().map(|d| d.value)
    }
}

/// The result of [`compare`].
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    /// The grouping keys asked for.
    pub group_by: Vec<String>,
    /// Settings that differed inside some group and so split it (empty when pooled).
    pub split_by: Vec<String>,
    /// Settings that differed inside some group and were pooled on request.
    pub pooled: Vec<String>,
    /// The setting picked per group, if any.
    pub pick: Option<String>,
    /// The metrics shown, `task.<split>.metric`, by task then metric.
    pub columns: Vec<MetricKey>,
    /// The metrics Δm% and the Pareto front use.
    pub delta_metrics: Vec<String>,
    /// Groups by experiment, then by their values (numbers before text, missing last).
    pub rows: Vec<GroupRow>,
    /// Per experiment, the single-task baseline of each column that has one.
    pub baselines: BTreeMap<String, BTreeMap<MetricKey, SeedStats>>,
}

impl Comparison {
    /// The keys of [`GroupRow::values`]: `group_by`, then `split_by`.
    pub fn keys(&self) -> Vec<String> {
        self.group_by.iter().chain(&self.split_by).cloned().collect()
    }
}

/// The grouping `mtl compare`, `mtl best` and `mtl importance` start from: `strategy`,
/// `weighting` and `lambda`, those of them `known` has (any other setting that differs
/// splits the groups, so each group is the runs that differ only in the seed).
pub fn default_group_by(known: &BTreeSet<String>) -> Vec<String> {
    ["strategy", "weighting", "lambda"].iter().filter(|k| known.contains(**k)).map(|k| k.to_string()).collect()
}

/// A run's value of a metric: its result (see [`RunRecord::result_metrics`]).
pub fn selected_metric(run: &RunRecord, key: &MetricKey) -> Option<f64> {
    run.result(key)
}

/// Compares the finished `runs` (see the module documentation).
pub fn compare(runs: &[RunRecord], spec: &CompareSpec) -> Comparison {
    compare_against(runs, runs, spec)
}

/// [`compare`] with the single-task baselines taken from `baseline_runs` (e.g. every
/// run of the experiment, when `runs` are the ones a filter kept).
pub fn compare_against(runs: &[RunRecord], baseline_runs: &[RunRecord], spec: &CompareSpec) -> Comparison {
    let split = spec.split.as_deref().unwrap_or("test");
    let done: Vec<&RunRecord> = runs.iter().filter(|r| r.status == RunStatus::Done).collect();
    let columns: Vec<MetricKey> = done
        .iter()
        .flat_map(|r| r.result_metrics().keys().filter(|k| k.split == split).cloned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let delta_metrics: Vec<String> = match &spec.delta_metrics {
        Some(names) => names.clone(),
        None => columns
            .iter()
            .map(|k| k.metric.clone())
            // R² can be 0 or negative, where a relative change means nothing; MAE and RMSE
            // stand for regression tasks. Top-5 accuracy restates accuracy (and came later:
            // Δm% of 10-class experiments stays what it was). Depth's δ thresholds are left
            // out as in LibMTL's and MTAN's NYUv2 Δm% (abs and rel error stand for depth).
            .filter(|m| !EXCLUDED_FROM_DELTA.contains(&m.as_str()))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect(),
    };
    // Per experiment, the Δm% metrics its runs logged (experiments may have other tasks).
    let mut delta_keys: BTreeMap<String, BTreeSet<MetricKey>> = BTreeMap::new();
    for run in &done {
        let keys = run.result_metrics().keys().filter(|k| k.split == split && delta_metrics.contains(&k.metric));
        delta_keys.entry(run.experiment.clone()).or_default().extend(keys.cloned());
    }

    // Buckets by experiment and the asked keys; then the settings that differ inside them.
    let bucket_of = |run: &RunRecord, keys: &[String]| -> (String, Vec<SortKey>) {
        (run.experiment.clone(), keys.iter().map(|key| SortKey(lookup(run, key))).collect())
    };
    let mut buckets: BTreeMap<(String, Vec<SortKey>), Vec<&RunRecord>> = BTreeMap::new();
    for &run in &done {
        buckets.entry(bucket_of(run, &spec.group_by)).or_default().push(run);
    }
    let mut except: Vec<&str> = spec.group_by.iter().map(String::as_str).collect();
    except.extend(spec.pick.as_deref());
    let differing: BTreeSet<String> =
        buckets.values().flat_map(|members| differing_settings(members.iter().copied(), &except)).collect();
    let mut differing: Vec<String> = differing.into_iter().collect();
    differing.sort_by_key(|name| (name != "weighting", name.clone()));
    let (split_by, pooled) = if spec.pool { (Vec::new(), differing) } else { (differing, Vec::new()) };
    let keys: Vec<String> = spec.group_by.iter().chain(&split_by).cloned().collect();
    let mut buckets: BTreeMap<(String, Vec<SortKey>), Vec<&RunRecord>> = BTreeMap::new();
    for &run in &done {
        buckets.entry(bucket_of(run, &keys)).or_default().push(run);
    }

    let single_task = single_task_runs(&done, baseline_runs);
    let baselines = experiment_baselines(&single_task, &columns);

    let mut rows: Vec<GroupRow> = buckets
        .into_iter()
        .map(|((experiment, values), members)| {
            let (members, picked, candidates) = pick(members, spec.pick.as_deref());
            let picked_without_validation = candidates > 1 && !members.iter().any(|r| has_validation(r));
            let single = &baseline_for(&single_task[&experiment], &members);
            let is_baseline = members.iter().all(|r| is_single_task(r));
            let stats: Vec<Option<SeedStats>> =
                columns.iter().map(|key| seed_stats(&values_of(&members, key))).collect();
            let versus_single_task = columns
                .iter()
                .map(|key| {
                    let test = welch_test(&values_of(&members, key), &values_of(single, key))?;
                    (!is_baseline).then(|| Verdict::of(&test, !lower_is_better(&key.metric)))
                })
                .collect();
            let keys: Vec<MetricKey> = delta_keys[&experiment].iter().cloned().collect();
            let mut delta_m = if keys.is_empty() { None } else { delta_m_of(&members, single, &keys) };
            if is_baseline {
                // The baselines against themselves: 0 by construction, not a finding.
                delta_m.iter_mut().for_each(|d| (d.ci95, d.verdict) = (None, None));
            }
            GroupRow {
                experiment,
                values: values.into_iter().map(|v| v.0).collect(),
                picked,
                candidates,
                picked_without_validation,
                baseline: is_baseline,
                runs: members.iter().map(|r| r.id).collect(),
                revisions: members.iter().map(|r| r.revision).collect::<BTreeSet<_>>().into_iter().collect(),
                stats,
                versus_single_task,
                delta_m,
                standing: None,
                pareto: false,
            }
        })
        .collect();
    mark_standing(&mut rows);
    // Each task's objective on the front: its headline metric (the report's Pareto axes).
    let headline = |experiment: &str, task: &str| {
        crate::aggregate::headline_key(runs.iter().filter(|r| r.experiment == experiment), task, "test").metric
    };
    mark_pareto(&mut rows, &columns, &delta_metrics, &headline);
    Comparison {
        group_by: spec.group_by.clone(),
        split_by,
        pooled,
        pick: spec.pick.clone(),
        columns,
        delta_metrics,
        rows,
        baselines,
    }
}

/// Per experiment, the single-task baseline of each of `columns` that has one: the
/// baselines [`compare`] uses for a group whose settings it does not know.
fn experiment_baselines(
    single_task: &BTreeMap<String, Vec<&RunRecord>>,
    columns: &[MetricKey],
) -> BTreeMap<String, BTreeMap<MetricKey, SeedStats>> {
    let mut baselines = BTreeMap::new();
    for (experiment, candidates) in single_task {
        let single = baseline_for(candidates, &[]);
        let stats =
            columns.iter().filter_map(|key| Some((key.clone(), seed_stats(&values_of(&single, key))?))).collect();
        baselines.insert(experiment.clone(), stats);
    }
    baselines
}

/// [`Comparison::baselines`] of `runs` for `columns`, without grouping every run.
pub fn baselines(runs: &[RunRecord], columns: &[MetricKey]) -> BTreeMap<String, BTreeMap<MetricKey, SeedStats>> {
    let done: Vec<&RunRecord> = runs.iter().filter(|r| r.status == RunStatus::Done).collect();
    experiment_baselines(&single_task_runs(&done, runs), columns)
}

/// Per experiment of `done`, the finished single-task runs of `baseline_runs`.
fn single_task_runs<'a>(done: &[&RunRecord], baseline_runs: &'a [RunRecord]) -> BTreeMap<String, Vec<&'a RunRecord>> {
    let experiments: BTreeSet<&String> = done.iter().map(|r| &r.experiment).collect();
    experiments
        .into_iter()
        .map(|experiment| {
            let single = baseline_runs
                .iter()
                .filter(|r| r.status == RunStatus::Done && &r.experiment == experiment && is_single_task(r))
                .collect();
            (experiment.clone(), single)
        })
        .collect()
}

/// The baseline of a group: of the single-task `candidates`, those that share the group's
/// value of every setting both have, but the strategy and the weighting method (e.g. the
/// same `epochs` and `lr`; a setting the group's runs differ in is not matched), then of
/// those, when they still differ in settings, the seed group best on validation. None
/// when no single-task run matches: no Δm% rather than one against other settings.
fn baseline_for<'a>(candidates: &[&'a RunRecord], members: &[&RunRecord]) -> Vec<&'a RunRecord> {
    let shared = |name: &str| name != "strategy" && name != "weighting" && is_setting(name);
    let constant: Vec<(&String, &ParamValue)> = match members.first() {
        Some(first) => first
            .params
            .iter()
            .filter(|(name, value)| shared(name) && members.iter().all(|m| m.params.get(*name) == Some(*value)))
            .collect(),
        None => Vec::new(),
    };
    let matching: Vec<&RunRecord> = candidates
        .iter()
        .copied()
        .filter(|c| constant.iter().all(|(name, value)| c.params.get(*name).is_none_or(|v| v == *value)))
        .collect();
    best_on_validation(&seed_groups(&matching)).cloned().unwrap_or_default()
}

/// Whether a run logged validation accuracy (what picking and the best epoch go by).
fn has_validation(run: &RunRecord) -> bool {
    selection_score(run, "val").is_some()
}

/// The runs of the value of `key` best on validation (ties: the smaller value), the
/// value, and how many values there were.
fn pick<'a>(members: Vec<&'a RunRecord>, key: Option<&str>) -> (Vec<&'a RunRecord>, Option<ParamValue>, usize) {
    let Some(key) = key else { return (members, None, 0) };
    let mut by_value: BTreeMap<SortKey, Vec<&RunRecord>> = BTreeMap::new();
    for run in members {
        by_value.entry(SortKey(lookup(run, key))).or_default().push(run);
    }
    let candidates = by_value.len();
    let mut best: Option<(SortKey, Vec<&RunRecord>, f64)> = None;
    for (value, runs) in by_value {
        let scores: Vec<f64> = runs.iter().filter_map(|r| selection_score(r, "val")).collect();
        let score =
            if scores.is_empty() { f64::NEG_INFINITY } else { scores.iter().sum::<f64>() / scores.len() as f64 };
        if best.as_ref().is_none_or(|(_, _, b)| score > *b) {
            best = Some((value, runs, score));
        }
    }
    let (value, runs, _) = best.expect("a group has runs");
    (runs, value.0, candidates)
}

/// Each group with Δm% against its experiment's best: paired by seed when both have
/// the same seeds (two at least), else Welch's t-test on the runs' own Δm%.
fn mark_standing(rows: &mut [GroupRow]) {
    let experiments: BTreeSet<String> = rows.iter().map(|r| r.experiment.clone()).collect();
    for experiment in experiments {
        let best = rows
            .iter()
            .enumerate()
            .filter(|(_, r)| r.experiment == experiment)
            .filter_map(|(i, r)| Some((i, r.delta_m_value()?)))
            .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)));
        let Some((best, _)) = best else { continue };
        let best_runs = rows[best].delta_m.as_ref().map(|d| d.per_run.clone()).unwrap_or_default();
        for (i, row) in rows.iter_mut().enumerate() {
            let Some(delta) = row.delta_m.as_ref().filter(|_| row.experiment == experiment) else { continue };
            if i == best {
                row.standing = Some(Standing::Best);
                continue;
            }
            let sorted = |runs: &[(Option<f64>, f64)]| {
                let mut runs = runs.to_vec();
                runs.sort_by(|a, b| a.0.unwrap_or(f64::NAN).total_cmp(&b.0.unwrap_or(f64::NAN)));
                runs
            };
            let (mine, theirs) = (sorted(&delta.per_run), sorted(&best_runs));
            let same_seeds = mine.len() == theirs.len()
                && mine.iter().zip(&theirs).all(|(a, b)| a.0.is_some() && a.0 == b.0)
                && mine.iter().map(|r| r.0.map(f64::to_bits)).collect::<BTreeSet<_>>().len() == mine.len();
            let values = |runs: &[(Option<f64>, f64)]| runs.iter().map(|r| r.1).collect::<Vec<f64>>();
            let test = if same_seeds {
                paired_test(&values(&mine), &values(&theirs))
            } else {
                welch_test(&values(&mine), &values(&theirs))
            };
            row.standing = test.map(|test| match Verdict::of(&test, true) {
                Verdict::Worse => Standing::BelowBest,
                _ => Standing::WithinNoiseOfBest,
            });
        }
    }
}

/// The objectives of the front: per task, its headline metric (accuracy, R², mAP: what
/// `headline` gives) where it is a column among `delta_metrics`, else its first metric
/// among `delta_metrics`.
fn objectives(columns: &[MetricKey], delta_metrics: &[String], headline: &dyn Fn(&str) -> String) -> Vec<usize> {
    let mut chosen: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, key) in columns.iter().enumerate() {
        let is_headline = key.metric == headline(&key.task) && delta_metrics.contains(&key.metric);
        if !chosen.contains_key(key.task.as_str()) && is_headline {
            chosen.insert(key.task.as_str(), i);
        }
    }
    for metric in delta_metrics {
        for (i, key) in columns.iter().enumerate() {
            if &key.metric == metric {
                chosen.entry(key.task.as_str()).or_insert(i);
            }
        }
    }
    chosen.into_values().collect()
}

fn mark_pareto(
    rows: &mut [GroupRow],
    columns: &[MetricKey],
    delta_metrics: &[String],
    headline: &dyn Fn(&str, &str) -> String,
) {
    let experiments: BTreeSet<String> = rows.iter().map(|r| r.experiment.clone()).collect();
    for experiment in experiments {
        // The objectives of an experiment are its own tasks' metrics.
        let logged: Vec<MetricKey> = columns
            .iter()
            .enumerate()
            .filter(|(i, _)| rows.iter().any(|r| r.experiment == experiment && r.stats[*i].is_some()))
            .map(|(_, k)| k.clone())
            .collect();
        let objectives: Vec<usize> = objectives(&logged, delta_metrics, &|task| headline(&experiment, task))
            .into_iter()
            .filter_map(|i| columns.iter().position(|c| *c == logged[i]))
            .collect();
        mark_pareto_of(rows, &experiment, columns, &objectives);
    }
}

fn mark_pareto_of(rows: &mut [GroupRow], experiment: &str, columns: &[MetricKey], objectives: &[usize]) {
    // Higher is better after the sign flip; a group missing an objective is not on the front.
    let scores: Vec<Option<Vec<f64>>> = rows
        .iter()
        .map(|row| {
            objectives
                .iter()
                .map(|&i| {
                    let sign = if lower_is_better(&columns[i].metric) { -1.0 } else { 1.0 };
                    row.stats[i].map(|s| sign * s.mean)
                })
                .collect()
        })
        .collect();
    let dominates = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| x >= y) && a.iter().zip(b).any(|(x, y)| x > y);
    for i in 0..rows.len() {
        let Some(mine) = &scores[i] else { continue };
        if objectives.is_empty() || rows[i].experiment != experiment {
            continue;
        }
        rows[i].pareto = !(0..rows.len()).any(|j| {
            j != i
                && rows[j].experiment == rows[i].experiment
                && scores[j].as_ref().is_some_and(|other| dominates(other, mine))
        });
    }
}

/// A grouping value ordered as `mtl ls --sort` orders: numbers, then text, then missing.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct SortKey(pub(crate) Option<ParamValue>);

impl Eq for SortKey {}

impl Ord for SortKey {
    fn cmp(&self, other: &Self) -> Ordering {
        match (&self.0, &other.0) {
            (Some(ParamValue::Num(a)), Some(ParamValue::Num(b))) => a.total_cmp(b),
            (Some(ParamValue::Text(a)), Some(ParamValue::Text(b))) => a.cmp(b),
            (Some(ParamValue::Num(_)), Some(ParamValue::Text(_))) => Ordering::Less,
            (Some(ParamValue::Text(_)), Some(ParamValue::Num(_))) => Ordering::Greater,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        }
    }
}

impl PartialOrd for SortKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
#[path = "compare_tests.rs"]
mod tests;
