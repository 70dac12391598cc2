//! Groups of runs for the charts: the `Done` runs of one method and λ, which differ
//! only in their seed ([`RunGroup`]), their mean ± sample std ([`SeedStats`]), the
//! single-task baselines, and which groups a chart with a line per group draws.
//! The partition is [`crate::groups::seed_groups`], the one `compare` uses; a run
//! group adds a legend name: the strategy plus the settings that vary within it.

use std::collections::{BTreeMap, BTreeSet};

use mtl_store::{MetricKey, ParamValue, RunId, RunRecord, RunStatus};

use super::{num_param, text_param, SINGLE_TASK_STRATEGY};
use crate::groups::selection_score;
pub use crate::stats::{seed_stats, SeedStats};

/// Finished runs that differ only in their seed.
#[derive(Clone, Debug, PartialEq)]
pub struct RunGroup {
    /// The line this group belongs to: the strategy, plus every other
    /// setting (but seed and λ) that varies among runs of that strategy,
    /// e.g. `hard` or `hard, lr=0.01`.
    pub method: String,
    /// λ, absent for strategies that have none (single-task).
    pub lambda: Option<f64>,
    /// Its runs, in id order.
    pub runs: Vec<RunId>,
}

impl RunGroup {
    /// Legend label, e.g. `hard λ=0.5` or `single-task`.
    pub fn label(&self) -> String {
        match self.lambda {
            Some(lambda) => format!("{} λ={lambda}", self.method),
            None => self.method.clone(),
        }
    }
}

/// Groups the `Done` runs by method and λ, ordered by method, then λ.
pub fn group_runs(runs: &[RunRecord]) -> Vec<RunGroup> {
    let done_runs: Vec<&RunRecord> = runs.iter().filter(|run| run.status == RunStatus::Done).collect();
    let strategy_of = |run: &RunRecord| text_param(run, "strategy").unwrap_or_else(|| "unknown".to_string());

    // Only settings that vary within a strategy name the line, so the usual
    // sweep (strategy × λ × seed) gives plain labels like `hard`.
    let mut values_by_strategy_and_param: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    let all_param_names: BTreeSet<&String> = done_runs.iter().flat_map(|run| run.params.keys()).collect();
    for run in &done_runs {
        for &name in &all_param_names {
            let shown = run.params.get(name).map(ParamValue::to_string).unwrap_or_else(|| "—".to_string());
            values_by_strategy_and_param.entry((strategy_of(run), name.clone())).or_default().insert(shown);
        }
    }

    // The parameter count follows from the strategy (and the task of a
    // single-task run), and the training time and step count vary between
    // seeds: they describe a method, they do not name one.
    let names_a_method = |name: &str| crate::groups::is_setting(name) && !matches!(name, "lambda" | "strategy");
    // The partition is compare's seed groups; this only names each group for a legend.
    let mut groups: Vec<RunGroup> = crate::groups::seed_groups(&done_runs)
        .into_iter()
        .map(|members| {
            let run = members[0];
            let strategy = strategy_of(run);
            let mut varying_names: Vec<&str> = values_by_strategy_and_param
                .iter()
                .filter(|((param_strategy, name), values)| {
                    *param_strategy == strategy && values.len() > 1 && names_a_method(name)
                })
                .map(|((_, name), _)| name.as_str())
                .collect();
            // The weighting method leads: `hard, weighting=cagrad, cagrad_c=0.4`.
            varying_names.sort_by_key(|name| (*name != "weighting", *name));
            // A setting the run lacks (another method's hyperparameter) is left out of its label.
            let method = crate::groups::method_label(
                &strategy,
                varying_names.iter().filter_map(|name| Some((*name, run.params.get(*name)?))),
            );
            let lambda = num_param(run, "lambda");
            let mut ids: Vec<RunId> = members.iter().map(|run| run.id).collect();
            ids.sort();
            RunGroup { method, lambda, runs: ids }
        })
        .collect();
    groups.sort_by(|a, b| {
        let lambda_order = a.lambda.unwrap_or(f64::NEG_INFINITY).total_cmp(&b.lambda.unwrap_or(f64::NEG_INFINITY));
        a.method.cmp(&b.method).then(lambda_order)
    });
    groups
}

/// Whether a group is a single-task baseline.
pub fn is_baseline(group: &RunGroup) -> bool {
    group.lambda.is_none() && group.method.starts_with(SINGLE_TASK_STRATEGY)
}

/// The groups a chart with one line per group draws when there are many: every
/// single-task baseline, and the `max` other groups with the highest mean over
/// seeds of the runs' mean-over-tasks final val accuracy (test where no val was
/// logged), in their original order. All of them when there are at most `max`.
pub fn displayed_groups(runs: &[RunRecord], groups: &[RunGroup], max: usize) -> Vec<RunGroup> {
    let others = groups.iter().filter(|g| !is_baseline(g)).count();
    if others <= max {
        return groups.to_vec();
    }
    let run_by_id: BTreeMap<RunId, &RunRecord> = runs.iter().map(|run| (run.id, run)).collect();
    let score = |group: &RunGroup| {
        let per_run: Vec<f64> = group
            .runs
            .iter()
            .filter_map(|id| run_by_id.get(id))
            .filter_map(|run| selection_score(run, "val").or_else(|| selection_score(run, "test")))
            .collect();
        seed_stats(&per_run).map_or(f64::NEG_INFINITY, |s| s.mean)
    };
    let mut ranked: Vec<(usize, f64)> =
        groups.iter().enumerate().filter(|(_, g)| !is_baseline(g)).map(|(i, g)| (i, score(g))).collect();
    // Best first; ties keep the original order.
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let kept: BTreeSet<usize> = ranked.iter().take(max).map(|(i, _)| *i).collect();
    groups.iter().enumerate().filter(|(i, g)| is_baseline(g) || kept.contains(i)).map(|(_, g)| g.clone()).collect()
}

pub(super) fn group_index_by_run(groups: &[RunGroup]) -> BTreeMap<RunId, usize> {
    groups
        .iter()
        .enumerate()
        .flat_map(|(group_index, group)| group.runs.iter().map(move |run| (*run, group_index)))
        .collect()
}

/// The metric that stands for `task` on `split` in the report's headline tables and
/// charts: the task's selecting metric ([`RunRecord::selection`]: accuracy for
/// classification, R² for regression, mAP for multi-label, mIoU for segmentation, δ₁ for depth, within 11.25° for normals, unless the file names another).
pub fn headline_key<'a>(runs: impl IntoIterator<Item = &'a RunRecord>, task: &str, split: &str) -> MetricKey {
    let with_task = runs.into_iter().find(|run| run.result_metrics().keys().any(|key| key.task == task));
    let metric = with_task.map_or_else(|| "accuracy".to_owned(), |run| run.selection().metric_for(task).to_owned());
    MetricKey { task: task.into(), split: split.into(), metric }
}

/// The headline metrics of `runs`' tasks as a title names them: `accuracy` when every
/// task's is, else the distinct names, sorted and joined (`accuracy, map, r2`).
pub fn headline_names(runs: &[RunRecord]) -> String {
    let names: BTreeSet<String> = task_names(runs).iter().map(|task| headline_key(runs, task, "test").metric).collect();
    if names.is_empty() {
        return "accuracy".into();
    }
    names.into_iter().collect::<Vec<_>>().join(", ")
}

/// Task names that appear in any run's final metrics, sorted.
pub fn task_names(runs: &[RunRecord]) -> Vec<String> {
    let names: BTreeSet<&String> =
        runs.iter().flat_map(|run| run.result_metrics().keys().map(|key| &key.task)).collect();
    names.into_iter().cloned().collect()
}

#[cfg(test)]
mod tests {
    use mtl_store::MetricKey;

    use super::*;
    use crate::aggregate::final_metric_by_lambda;
    use crate::aggregate::test_support::{run, test_accuracy, weighted_run};

    fn check_stats(values: &[f64], expected: Option<(f64, f64, usize)>) {
        let got = seed_stats(values).map(|stats| (stats.mean, stats.std, stats.n));
        match (got, expected) {
            (Some((mean, std, n)), Some((want_mean, want_std, want_n))) => {
                assert!((mean - want_mean).abs() < 1e-6, "mean of {values:?}: expected {want_mean}, got {mean}");
                assert!((std - want_std).abs() < 1e-6, "std of {values:?}: expected {want_std}, got {std}");
                assert_eq!(n, want_n, "n of {values:?}");
            }
            _ => assert_eq!(got, expected, "stats of {values:?}"),
        }
    }

    #[test]
    fn seed_stats_uses_sample_std_and_skips_non_finite_values() {
        // std = sqrt(((0.8-0.85)² + (0.9-0.85)²) / 1) = 0.05·√2 = 0.0707107
        check_stats(&[0.8, 0.9], Some((0.85, 0.0707107, 2)));
        // std = sqrt((1 + 0 + 1) / 2) = 1
        check_stats(&[1.0, 2.0, 3.0], Some((2.0, 1.0, 3)));
        check_stats(&[0.7], Some((0.7, 0.0, 1)));
        check_stats(&[0.6, f64::NAN, 0.8, f64::INFINITY], Some((0.7, 0.1414214, 2)));
        check_stats(&[], None);
        check_stats(&[f64::NAN], None);
    }

    #[test]
    fn groups_by_strategy_and_lambda_over_seeds() {
        let mut failed = run(7, "hard", Some(0.5), 2.0, 0.1);
        failed.status = RunStatus::Failed;
        let runs = vec![
            run(1, "hard", Some(2.0), 0.0, 0.80),
            run(2, "hard", Some(0.5), 0.0, 0.70),
            run(3, "hard", Some(0.5), 1.0, 0.90),
            run(4, "single-task", None, 0.0, 0.60),
            run(5, "single-task", None, 1.0, 0.64),
            run(6, "hard", Some(2.0), 1.0, 0.90),
            failed,
        ];
        let groups = group_runs(&runs);
        let summary: Vec<(String, Vec<i64>)> =
            groups.iter().map(|group| (group.label(), group.runs.iter().map(|id| id.0).collect())).collect();
        let expected = vec![
            ("hard λ=0.5".to_string(), vec![2, 3]),
            ("hard λ=2".to_string(), vec![1, 6]),
            ("single-task".to_string(), vec![4, 5]),
        ];
        assert_eq!(summary, expected);

        let by_lambda = final_metric_by_lambda(&runs, &groups, &test_accuracy());
        assert_eq!(by_lambda.lines.len(), 1);
        let line = &by_lambda.lines[0];
        assert_eq!(line.method, "hard");
        let lambdas: Vec<f64> = line.points.iter().map(|(lambda, _)| *lambda).collect();
        assert_eq!(lambdas, vec![0.5, 2.0]);
        // λ=0.5: mean(0.7, 0.9) = 0.8, std = 0.1·√2 = 0.1414214; λ=2: 0.85 ± 0.0707107
        assert!((line.points[0].1.mean - 0.8).abs() < 1e-9);
        assert!((line.points[0].1.std - 0.1414214).abs() < 1e-6);
        assert!((line.points[1].1.mean - 0.85).abs() < 1e-9);
        assert!((line.points[1].1.std - 0.0707107).abs() < 1e-6);
        // Baseline: mean(0.60, 0.64) = 0.62, std = 0.02·√2 = 0.0282843
        let (baseline_method, baseline) = &by_lambda.references[0];
        assert_eq!(baseline_method, "single-task");
        assert!((baseline.mean - 0.62).abs() < 1e-9 && (baseline.std - 0.0282843).abs() < 1e-6);
    }

    #[test]
    fn a_setting_that_varies_within_a_strategy_names_the_line() {
        let mut high_lr = run(3, "hard", Some(1.0), 0.0, 0.5);
        high_lr.params.insert("lr".into(), ParamValue::Num(0.01));
        let runs = vec![run(1, "hard", Some(1.0), 0.0, 0.9), run(2, "single-task", None, 0.0, 0.8), high_lr];
        let labels: Vec<String> = group_runs(&runs).iter().map(RunGroup::label).collect();
        assert_eq!(labels, vec!["hard, lr=0.001 λ=1", "hard, lr=0.01 λ=1", "single-task"]);
    }

    #[test]
    fn only_the_best_groups_are_drawn_when_there_are_many() {
        // Five λ groups of hard (val accuracy rises with λ) and the baseline: at most 2 others drawn.
        let mut runs: Vec<RunRecord> = (1..=5)
            .map(|i| {
                let mut r = run(i, "hard", Some(i as f64), 0.0, 0.5);
                let val = MetricKey { split: "val".into(), ..test_accuracy() };
                r.final_metrics.insert(val, 0.1 * i as f64);
                r
            })
            .collect();
        runs.push(run(9, "single-task", None, 0.0, 0.6));
        let groups = group_runs(&runs);
        let shown: Vec<String> = displayed_groups(&runs, &groups, 2).iter().map(RunGroup::label).collect();
        assert_eq!(shown, ["hard λ=4", "hard λ=5", "single-task"]);
        assert_eq!(displayed_groups(&runs, &groups, 5), groups, "few enough: all");
    }

    #[test]
    fn task_names_are_collected_from_final_metrics() {
        let mut other = run(2, "single-task", None, 0.0, 0.5);
        other.final_metrics = BTreeMap::from([(MetricKey { task: "reviews".into(), ..test_accuracy() }, 0.5)]);
        assert_eq!(task_names(&[run(1, "hard", Some(1.0), 0.0, 0.9), other]), vec!["reviews", "shapes"]);
    }

    #[test]
    fn weighting_leads_the_label_and_timing_and_missing_settings_do_not_name_a_method() {
        let mut cagrad = weighted_run(5, "hard", "cagrad", None, 0.0, Some((9.0, 100.0)), 0.5);
        cagrad.params.insert("cagrad_c".into(), ParamValue::Num(0.4));
        let runs = vec![
            weighted_run(1, "hard", "static", Some(1.0), 0.0, Some((10.0, 100.0)), 0.5),
            weighted_run(2, "hard", "static", Some(1.0), 1.0, Some((11.0, 120.0)), 0.5),
            weighted_run(3, "hard", "pcgrad", None, 0.0, Some((20.0, 100.0)), 0.5),
            weighted_run(4, "hard", "pcgrad", None, 1.0, Some((21.0, 120.0)), 0.5),
            cagrad,
        ];
        let summary: Vec<(String, Vec<i64>)> =
            group_runs(&runs).iter().map(|group| (group.label(), group.runs.iter().map(|id| id.0).collect())).collect();
        let expected = vec![
            ("hard, cagrad (c=0.4)".to_string(), vec![5]),
            ("hard, pcgrad".to_string(), vec![3, 4]),
            ("hard, static λ=1".to_string(), vec![1, 2]),
        ];
        assert_eq!(summary, expected);
    }
}
