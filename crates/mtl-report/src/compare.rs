//! Groups of runs compared on their test metrics: statistics over seeds, Δm%
//! against the single-task baselines of the same experiment, and the Pareto front.
//!
//! - **Which epoch.** Each run contributes its test metrics at its best epoch on
//!   validation ([`RunRecord::best_epoch`]), or at its last epoch when it logged no
//!   validation accuracy.
//! - **Δm%** (Maninis et al. 2019; Vandenhende et al. 2021):
//!   `Δm = 100 · (1/T) · Σ_t (1/M_t) · Σ_m (−1)^{d_m} · (M_{t,m} − B_{t,m}) / B_{t,m}`,
//!   with `d_m = 1` when lower is better ([`lower_is_better`]) and 0 otherwise, `M` the
//!   group's mean over seeds and `B` the mean of the experiment's single-task runs.
//!   **Positive means better than single-task.**
//! - **Pareto.** A group is Pareto-optimal when no other group of its experiment is at
//!   least as good on every task's first Δm metric and better on one.
//!
//! ```
//! use mtl_report::compare::delta_m;
//! // One task, accuracy 0.9 against a baseline of 0.8: +12.5%.
//! let delta = delta_m(&[("digits", "accuracy", 0.9, 0.8)]).expect("a baseline");
//! assert!((delta - 12.5).abs() < 1e-12);
//! ```

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use mtl_store::filter::lookup;
use mtl_store::{MetricKey, ParamValue, RunId, RunRecord, RunStatus};

use crate::aggregate::{seed_stats, SeedStats, SINGLE_TASK_STRATEGY};

/// Metrics where lower is better (`d_m = 1`); every other metric is higher-is-better.
pub fn lower_is_better(metric: &str) -> bool {
    matches!(metric, "loss" | "error" | "error_rate" | "mae" | "mse" | "rmse" | "nll" | "perplexity")
}

/// Δm% of `(task, metric, group mean, baseline mean)` terms (see the module
/// documentation); `None` without terms or with a zero baseline.
pub fn delta_m(terms: &[(&str, &str, f64, f64)]) -> Option<f64> {
    let mut by_task: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for &(task, metric, value, baseline) in terms {
        if baseline == 0.0 || !value.is_finite() || !baseline.is_finite() {
            return None;
        }
        let sign = if lower_is_better(metric) { -1.0 } else { 1.0 };
        by_task.entry(task).or_default().push(sign * (value - baseline) / baseline);
    }
    if by_task.is_empty() {
        return None;
    }
    let per_task = by_task.values().map(|terms| terms.iter().sum::<f64>() / terms.len() as f64);
    Some(100.0 * per_task.sum::<f64>() / by_task.len() as f64)
}

/// Runs that share the values of the grouping keys (and the experiment).
#[derive(Clone, Debug, PartialEq)]
pub struct GroupRow {
    /// The experiment.
    pub experiment: String,
    /// One value per grouping key; `None` where the runs lack the setting.
    pub values: Vec<Option<ParamValue>>,
    /// Its runs, in id order.
    pub runs: Vec<RunId>,
    /// One entry per [`Comparison::columns`].
    pub stats: Vec<Option<SeedStats>>,
    /// Δm% against the experiment's single-task baselines.
    pub delta_m: Option<f64>,
    /// On the experiment's Pareto front.
    pub pareto: bool,
}

/// The result of [`compare`].
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    /// The grouping keys.
    pub group_by: Vec<String>,
    /// The metrics shown, `task.test.metric` (or the split asked of [`compare_on`]), by task then metric.
    pub columns: Vec<MetricKey>,
    /// The metrics Δm% and the Pareto front use.
    pub delta_metrics: Vec<String>,
    /// Groups by experiment, then by their values (numbers before text, missing last).
    pub rows: Vec<GroupRow>,
    /// Per experiment, the single-task baseline of each column that has one.
    pub baselines: BTreeMap<String, BTreeMap<MetricKey, SeedStats>>,
}

/// A run's value of a test metric at the epoch it is compared at.
pub fn selected_metric(run: &RunRecord, key: &MetricKey) -> Option<f64> {
    match run.best_epoch {
        Some(_) => run.best_metrics.get(key).copied(),
        None => run.final_metrics.get(key).copied(),
    }
}

/// Groups the finished runs by `group_by` (settings or built-in keys) within each
/// experiment. `delta_metrics` (default: every test metric but `loss`) are the
/// metrics Δm% averages and whose first, per task, spans the Pareto front.
pub fn compare(runs: &[RunRecord], group_by: &[String], delta_metrics: Option<&[String]>) -> Comparison {
    compare_on(runs, group_by, delta_metrics, "test")
}

/// [`compare`] on the metrics of another split (e.g. `val`, to choose among groups
/// without looking at test).
pub fn compare_on(
    runs: &[RunRecord],
    group_by: &[String],
    delta_metrics: Option<&[String]>,
    split: &str,
) -> Comparison {
    compare_against(runs, runs, group_by, delta_metrics, split)
}

/// [`compare_on`] with the single-task baselines taken from `baseline_runs` (e.g. every
/// run of the experiment, when `runs` are the ones a filter kept).
pub fn compare_against(
    runs: &[RunRecord],
    baseline_runs: &[RunRecord],
    group_by: &[String],
    delta_metrics: Option<&[String]>,
    split: &str,
) -> Comparison {
    let done: Vec<&RunRecord> = runs.iter().filter(|r| r.status == RunStatus::Done).collect();
    let tested = |run: &RunRecord| -> Vec<MetricKey> {
        let metrics = if run.best_epoch.is_some() { &run.best_metrics } else { &run.final_metrics };
        metrics.keys().filter(|k| k.split == split).cloned().collect()
    };
    let columns: Vec<MetricKey> = done.iter().flat_map(|r| tested(r)).collect::<BTreeSet<_>>().into_iter().collect();
    let delta_metrics: Vec<String> = match delta_metrics {
        Some(names) => names.to_vec(),
        None => columns
            .iter()
            .map(|k| k.metric.clone())
            .filter(|m| m != "loss")
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect(),
    };

    let mut groups: BTreeMap<(String, Vec<SortKey>), Vec<&RunRecord>> = BTreeMap::new();
    for run in &done {
        let values = group_by.iter().map(|key| SortKey(lookup(run, key))).collect();
        groups.entry((run.experiment.clone(), values)).or_default().push(run);
    }

    let stats_of = |members: &[&RunRecord], key: &MetricKey| {
        seed_stats(&members.iter().filter_map(|r| selected_metric(r, key)).collect::<Vec<_>>())
    };
    let mut baselines: BTreeMap<String, BTreeMap<MetricKey, SeedStats>> = BTreeMap::new();
    for experiment in done.iter().map(|r| r.experiment.clone()).collect::<BTreeSet<_>>() {
        let single: Vec<&RunRecord> = baseline_runs
            .iter()
            .filter(|r| r.status == RunStatus::Done && r.experiment == experiment)
            .filter(|r| matches!(r.params.get("strategy"), Some(ParamValue::Text(s)) if s == SINGLE_TASK_STRATEGY))
            .collect();
        let experiment_baselines =
            columns.iter().filter_map(|key| Some((key.clone(), stats_of(&single, key)?))).collect();
        baselines.insert(experiment, experiment_baselines);
    }

    let mut rows: Vec<GroupRow> = groups
        .into_iter()
        .map(|((experiment, values), members)| {
            let stats: Vec<Option<SeedStats>> = columns.iter().map(|key| stats_of(&members, key)).collect();
            let baseline = &baselines[&experiment];
            // Every metric must have both sides: a group missing a task, or a task without a
            // baseline, would silently change what Δm averages over.
            let mut terms = Vec::new();
            let mut complete = true;
            for (key, stats) in columns.iter().zip(&stats) {
                if !delta_metrics.contains(&key.metric) {
                    continue;
                }
                match (stats, baseline.get(key)) {
                    (Some(stats), Some(base)) => {
                        terms.push((key.task.as_str(), key.metric.as_str(), stats.mean, base.mean))
                    }
                    (None, Some(_)) | (Some(_), None) => complete = false,
                    (None, None) => {}
                }
            }
            let delta_m = if complete { delta_m(&terms) } else { None };
            GroupRow {
                experiment,
                values: values.into_iter().map(|v| v.0).collect(),
                runs: members.iter().map(|r| r.id).collect(),
                stats,
                delta_m,
                pareto: false,
            }
        })
        .collect();
    mark_pareto(&mut rows, &columns, &delta_metrics);
    Comparison { group_by: group_by.to_vec(), columns, delta_metrics, rows, baselines }
}

/// The objectives of the front: per task, its first metric among `delta_metrics`.
fn objectives(columns: &[MetricKey], delta_metrics: &[String]) -> Vec<usize> {
    let mut chosen: BTreeMap<&str, usize> = BTreeMap::new();
    for metric in delta_metrics {
        for (i, key) in columns.iter().enumerate() {
            if &key.metric == metric {
                chosen.entry(key.task.as_str()).or_insert(i);
            }
        }
    }
    chosen.into_values().collect()
}

fn mark_pareto(rows: &mut [GroupRow], columns: &[MetricKey], delta_metrics: &[String]) {
    let objectives = objectives(columns, delta_metrics);
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
        if objectives.is_empty() {
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
struct SortKey(Option<ParamValue>);

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
mod tests {
    use super::*;

    fn key(task: &str, metric: &str) -> MetricKey {
        MetricKey { task: task.into(), split: "test".into(), metric: metric.into() }
    }

    /// A done run with settings and test metrics at its best epoch (val accuracy logged).
    fn run(id: i64, strategy: &str, lambda: Option<f64>, seed: f64, metrics: &[(&str, &str, f64)]) -> RunRecord {
        let mut params = BTreeMap::from([
            ("strategy".to_string(), ParamValue::Text(strategy.into())),
            ("seed".to_string(), ParamValue::Num(seed)),
        ]);
        if let Some(lambda) = lambda {
            params.insert("lambda".into(), ParamValue::Num(lambda));
        }
        let best: BTreeMap<MetricKey, f64> = metrics.iter().map(|&(t, m, v)| (key(t, m), v)).collect();
        // The last epoch is worse everywhere: the comparison must read the best one.
        let last = best.iter().map(|(k, v)| (k.clone(), v - 0.5)).collect();
        RunRecord {
            id: RunId(id),
            experiment: "e".into(),
            status: RunStatus::Done,
            params,
            best_epoch: Some(3),
            best_metrics: best,
            final_epoch: Some(5),
            final_metrics: last,
            ..RunRecord::default()
        }
    }

    #[test]
    fn delta_m_matches_a_hand_computation_with_mixed_directions() {
        // Task a: accuracy 0.9 against 0.8 → +0.125; rmse 1.5 against 2.0 (lower is better)
        //   → −(1.5 − 2)/2 = +0.25; mean over a's two metrics: 0.1875.
        // Task b: accuracy 0.6 against 0.75 → −0.2.
        // Δm = 100 · (0.1875 − 0.2) / 2 = −0.625.
        let terms = [("a", "accuracy", 0.9, 0.8), ("a", "rmse", 1.5, 2.0), ("b", "accuracy", 0.6, 0.75)];
        assert!((delta_m(&terms).expect("terms") - -0.625).abs() < 1e-12);
        assert_eq!(delta_m(&[("a", "accuracy", 0.9, 0.0)]), None, "a zero baseline");
        assert_eq!(delta_m(&[]), None);
    }

    #[test]
    fn groups_aggregate_over_seeds_at_the_best_epoch_with_delta_m_and_the_front() {
        let runs = vec![
            // Baselines: a accuracy (0.8 + 0.9)/2 = 0.85; b rmse 2.0 (one seed, the other run is b's).
            run(1, "single-task", None, 0.0, &[("a", "accuracy", 0.8)]),
            run(2, "single-task", None, 1.0, &[("a", "accuracy", 0.9)]),
            run(3, "single-task", None, 0.0, &[("b", "rmse", 2.0)]),
            // hard λ=1, three seeds: a 0.80, 0.85, 0.93 → mean 0.86, sample std
            //   √(((−0.06)² + (−0.01)² + 0.07²)/2) = √(0.0086/2) = 0.0655744;
            //   b 1.0, 2.0, 3.0 → mean 2, std 1.
            run(4, "hard", Some(1.0), 0.0, &[("a", "accuracy", 0.80), ("b", "rmse", 1.0)]),
            run(5, "hard", Some(1.0), 1.0, &[("a", "accuracy", 0.85), ("b", "rmse", 2.0)]),
            run(6, "hard", Some(1.0), 2.0, &[("a", "accuracy", 0.93), ("b", "rmse", 3.0)]),
            // hard λ=2: a 0.70, b 1.6: better on b, worse on a than λ=1 — also on the front.
            run(7, "hard", Some(2.0), 0.0, &[("a", "accuracy", 0.70), ("b", "rmse", 1.6)]),
            // hard λ=3: a 0.70, b 1.8: dominated by λ=2.
            run(8, "hard", Some(3.0), 0.0, &[("a", "accuracy", 0.70), ("b", "rmse", 1.8)]),
        ];
        let mut failed = run(9, "hard", Some(1.0), 3.0, &[("a", "accuracy", 0.0), ("b", "rmse", 9.0)]);
        failed.status = RunStatus::Failed;
        let runs: Vec<RunRecord> = runs.into_iter().chain([failed]).collect();
        let comparison = compare(&runs, &["strategy".into(), "lambda".into()], None);
        assert_eq!(comparison.columns, vec![key("a", "accuracy"), key("b", "rmse")]);
        assert_eq!(comparison.delta_metrics, vec!["accuracy", "rmse"]);
        let labels: Vec<String> = comparison
            .rows
            .iter()
            .map(|row| {
                row.values
                    .iter()
                    .map(|v| v.as_ref().map_or("-".into(), |v| v.to_string()))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        assert_eq!(labels, ["hard 1", "hard 2", "hard 3", "single-task -"]);

        let hard1 = &comparison.rows[0];
        assert_eq!(hard1.runs, vec![RunId(4), RunId(5), RunId(6)], "the failed run is left out");
        let a = hard1.stats[0].expect("a");
        assert!((a.mean - 0.86).abs() < 1e-12 && (a.std - 0.0655744).abs() < 1e-6 && a.n == 3, "{a:?}");
        let b = hard1.stats[1].expect("b");
        assert!((b.mean - 2.0).abs() < 1e-12 && (b.std - 1.0).abs() < 1e-12 && b.n == 3, "{b:?}");
        // Δm: a (0.86 − 0.85)/0.85 = 0.0117647; b −(2 − 2)/2 = 0 → 100 · 0.0117647/2 = 0.588235.
        assert!((hard1.delta_m.expect("Δm") - 0.588235).abs() < 1e-6);
        // λ=2: a (0.7 − 0.85)/0.85 = −0.176471; b −(1.6 − 2)/2 = 0.2 → 100 · 0.023529/2 = 1.17647.
        assert!((comparison.rows[1].delta_m.expect("Δm") - 1.176471).abs() < 1e-6);
        let front: Vec<bool> = comparison.rows.iter().map(|r| r.pareto).collect();
        // single-task: a 0.85 < 0.86 and b 2.0 = 2.0 → dominated by λ=1.
        assert_eq!(front, [true, true, false, false]);
        assert!((comparison.rows[3].delta_m.expect("Δm")).abs() < 1e-12, "the baselines against themselves");
    }

    #[test]
    fn a_group_missing_a_task_has_no_delta_m_and_no_baseline_means_none() {
        let runs = vec![
            run(1, "single-task", None, 0.0, &[("a", "accuracy", 0.8)]),
            run(2, "single-task", None, 0.0, &[("b", "accuracy", 0.5)]),
            run(3, "hard", Some(1.0), 0.0, &[("a", "accuracy", 0.9)]),
        ];
        let comparison = compare(&runs, &["strategy".into()], None);
        assert_eq!(comparison.rows[0].delta_m, None, "hard lacks task b");
        let without_baselines = compare(&runs[2..], &["strategy".into()], None);
        assert_eq!(without_baselines.rows[0].delta_m, None);
        // A task without a baseline: no Δm, rather than one over fewer tasks.
        let both = run(4, "hard", Some(1.0), 0.0, &[("a", "accuracy", 0.9), ("b", "accuracy", 0.6)]);
        let comparison = compare(&[runs[0].clone(), both.clone()], &["strategy".into()], None);
        assert_eq!(comparison.rows[0].delta_m, None, "b has no single-task run");
        // Baselines may come from runs a filter left out of the groups.
        let filtered = compare_against(&[both], &runs[..2], &["strategy".into()], None, "test");
        assert!(filtered.rows[0].delta_m.is_some_and(|d| d.is_finite()), "{filtered:?}");
    }

    #[test]
    fn runs_without_a_best_epoch_are_compared_at_their_last() {
        let mut last_only = run(1, "hard", Some(1.0), 0.0, &[("a", "accuracy", 0.9)]);
        last_only.best_epoch = None;
        let comparison = compare(&[last_only], &["strategy".into()], None);
        assert!((comparison.rows[0].stats[0].expect("a").mean - 0.4).abs() < 1e-12);
    }
}
