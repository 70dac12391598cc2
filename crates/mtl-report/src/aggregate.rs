//! Turns runs into the numbers the charts show: groups of runs that differ
//! only in their seed, mean ± std over seeds, single-task baselines,
//! per-epoch averaged learning curves and the comparison of strategies at
//! each one's best λ. Pure: no IO, no plotting.
//!
//! ```
//! use mtl_report::aggregate::seed_stats;
//! // Two seeds: mean 0.85, sample std 0.05·√2.
//! let stats = seed_stats(&[0.8, 0.9]).expect("finite values");
//! assert!((stats.mean - 0.85).abs() < 1e-12 && (stats.std - 0.0707107).abs() < 1e-6);
//! ```

use std::collections::{BTreeMap, BTreeSet};

use mtl_store::{MetricKey, MetricRow, ParamValue, RunId, RunRecord, RunStatus};

/// The strategy whose runs train one task alone: the baseline of that task.
pub const SINGLE_TASK_STRATEGY: &str = "single-task";

/// Multi-task strategies in the order `mtl_model::Strategy` documents them
/// (mtl-report reads names from the store and does not depend on mtl-model).
pub const MULTI_TASK_STRATEGY_ORDER: [&str; 7] = ["hard", "soft", "cross-stitch", "mmoe", "cgc", "ple", "mtan"];

/// Mean and spread of one value over seeds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SeedStats {
    /// Arithmetic mean.
    pub mean: f64,
    /// Sample standard deviation (divisor n − 1); 0 when n = 1.
    pub std: f64,
    /// Number of seeds that contributed.
    pub n: usize,
}

/// Mean and sample standard deviation (n − 1 divisor, so the spread of a few
/// seeds is not understated; one seed gives 0). Non-finite values (a diverged
/// run) are left out; `None` when no finite value remains.
pub fn seed_stats(values: &[f64]) -> Option<SeedStats> {
    let finite: Vec<f64> = values.iter().copied().filter(|value| value.is_finite()).collect();
    let n = finite.len();
    if n == 0 {
        return None;
    }
    let mean = finite.iter().sum::<f64>() / n as f64;
    let std = if n > 1 {
        (finite.iter().map(|value| (value - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
    } else {
        0.0
    };
    Some(SeedStats { mean, std, n })
}

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

    let mut groups: Vec<RunGroup> = Vec::new();
    for run in &done_runs {
        let strategy = strategy_of(run);
        let mut method = strategy.clone();
        for ((param_strategy, name), values) in &values_by_strategy_and_param {
            // The parameter count follows from the strategy (and the task of a
            // single-task run): it describes a method, it does not name one.
            let is_identity = matches!(name.as_str(), "seed" | "lambda" | "strategy" | "n_parameters");
            if *param_strategy == strategy && values.len() > 1 && !is_identity {
                let shown = run.params.get(name).map(ParamValue::to_string).unwrap_or_else(|| "—".to_string());
                method.push_str(&format!(", {name}={shown}"));
            }
        }
        let lambda = num_param(run, "lambda");
        let same_group = |group: &&mut RunGroup| {
            group.method == method && group.lambda.map(f64::to_bits) == lambda.map(f64::to_bits)
        };
        match groups.iter_mut().find(same_group) {
            Some(group) => group.runs.push(run.id),
            None => groups.push(RunGroup { method, lambda, runs: vec![run.id] }),
        }
    }
    groups.sort_by(|a, b| {
        let lambda_order = a.lambda.unwrap_or(f64::NEG_INFINITY).total_cmp(&b.lambda.unwrap_or(f64::NEG_INFINITY));
        a.method.cmp(&b.method).then(lambda_order)
    });
    groups
}

/// One method's final metric at each of its λ values.
#[derive(Clone, Debug, PartialEq)]
pub struct LambdaLine {
    /// The method (see [`RunGroup::method`]).
    pub method: String,
    /// `(λ, stats over seeds)`, λ ascending.
    pub points: Vec<(f64, SeedStats)>,
}

/// A final metric against λ: the λ-swept lines, and the methods without λ
/// (single-task baselines first) as horizontal references.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct MetricByLambda {
    /// Methods that have λ.
    pub lines: Vec<LambdaLine>,
    /// `(method, stats)` of methods without λ.
    pub references: Vec<(String, SeedStats)>,
}

/// The final value of `key` per group, as lines over λ and references.
/// Groups whose runs never logged `key` are left out.
pub fn final_metric_by_lambda(runs: &[RunRecord], groups: &[RunGroup], key: &MetricKey) -> MetricByLambda {
    let run_by_id: BTreeMap<RunId, &RunRecord> = runs.iter().map(|run| (run.id, run)).collect();
    let mut result = MetricByLambda::default();
    for group in groups {
        let values: Vec<f64> =
            group.runs.iter().filter_map(|id| run_by_id.get(id)?.final_metrics.get(key).copied()).collect();
        let Some(stats) = seed_stats(&values) else { continue };
        match group.lambda {
            Some(lambda) => match result.lines.iter_mut().find(|line| line.method == group.method) {
                Some(line) => line.points.push((lambda, stats)),
                None => result.lines.push(LambdaLine { method: group.method.clone(), points: vec![(lambda, stats)] }),
            },
            None => result.references.push((group.method.clone(), stats)),
        }
    }
    // Baselines lead the references; group order already sorts λ.
    result.references.sort_by_key(|(method, _)| !method.starts_with(SINGLE_TASK_STRATEGY));
    result
}

/// One method at one λ: final test accuracy per task over seeds.
#[derive(Clone, Debug, PartialEq)]
pub struct MethodResult {
    /// The method (see [`RunGroup::method`]).
    pub method: String,
    /// The λ chosen for it; `None` for methods without λ.
    pub lambda: Option<f64>,
    /// Final test accuracy over seeds, aligned with
    /// [`StrategyComparison::tasks`]; `None` where no run logged it.
    pub test_accuracy_by_task: Vec<Option<SeedStats>>,
    /// The `n_parameters` setting of the group's first run, if recorded.
    pub n_parameters: Option<f64>,
}

impl MethodResult {
    /// Axis and table label, e.g. `soft λ=1` or `single-task`.
    pub fn label(&self) -> String {
        match self.lambda {
            Some(lambda) => format!("{} λ={lambda}", self.method),
            None => self.method.clone(),
        }
    }
}

/// Every method of an experiment side by side, each at its best λ.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct StrategyComparison {
    /// Task names, sorted.
    pub tasks: Vec<String>,
    /// Methods with λ, in [`MULTI_TASK_STRATEGY_ORDER`] (others after it,
    /// alphabetically), each at the λ chosen by [`compare_strategies`].
    pub multi_task: Vec<MethodResult>,
    /// Methods without λ (the single-task baselines first).
    pub references: Vec<MethodResult>,
}

impl StrategyComparison {
    /// Every method, references first.
    pub fn methods(&self) -> impl Iterator<Item = &MethodResult> {
        self.references.iter().chain(&self.multi_task)
    }
}

/// Compares the methods of `groups`, each at one λ: the λ whose mean over
/// seeds of the run's mean-over-tasks final val accuracy is highest (test
/// accuracy for a method that logged no val accuracy; ties go to the smaller
/// λ). A λ whose runs logged neither is never chosen, and a method with no
/// such λ is left out. Methods without λ are the references.
pub fn compare_strategies(runs: &[RunRecord], groups: &[RunGroup]) -> StrategyComparison {
    let run_by_id: BTreeMap<RunId, &RunRecord> = runs.iter().map(|run| (run.id, run)).collect();
    let runs_of = |group: &RunGroup| -> Vec<&RunRecord> {
        group.runs.iter().filter_map(|id| run_by_id.get(id).copied()).collect()
    };
    let tasks = task_names(runs);
    let result_of = |group: &RunGroup| {
        let group_runs = runs_of(group);
        let test_accuracy_by_task = tasks
            .iter()
            .map(|task| {
                let key = MetricKey { task: task.clone(), split: "test".into(), metric: "accuracy".into() };
                let values: Vec<f64> =
                    group_runs.iter().filter_map(|run| run.final_metrics.get(&key).copied()).collect();
                seed_stats(&values)
            })
            .collect();
        let n_parameters = group_runs.first().and_then(|run| num_param(run, "n_parameters"));
        MethodResult { method: group.method.clone(), lambda: group.lambda, test_accuracy_by_task, n_parameters }
    };

    let mut references = Vec::new();
    let mut lambda_groups_by_method: BTreeMap<&str, Vec<&RunGroup>> = BTreeMap::new();
    for group in groups {
        match group.lambda {
            Some(_) => lambda_groups_by_method.entry(&group.method).or_default().push(group),
            None => references.push(result_of(group)),
        }
    }
    references.sort_by_key(|result| !result.method.starts_with(SINGLE_TASK_STRATEGY));

    let mut multi_task = Vec::new();
    for method_groups in lambda_groups_by_method.into_values() {
        let logged_val = method_groups
            .iter()
            .flat_map(|group| runs_of(group))
            .any(|run| run.final_metrics.keys().any(|key| key.split == "val" && key.metric == "accuracy"));
        let selection_split = if logged_val { "val" } else { "test" };
        let scored = method_groups.iter().filter_map(|group| {
            let per_run: Vec<f64> =
                runs_of(group).into_iter().filter_map(|run| mean_accuracy_over_tasks(run, selection_split)).collect();
            Some((*group, group.lambda?, seed_stats(&per_run)?.mean))
        });
        let best = scored.max_by(|(_, a_lambda, a_score), (_, b_lambda, b_score)| {
            a_score.total_cmp(b_score).then(b_lambda.total_cmp(a_lambda))
        });
        if let Some((group, _, _)) = best {
            multi_task.push(result_of(group));
        }
    }
    // Already alphabetical by method; a stable sort puts known strategies first.
    multi_task.sort_by_key(|result| {
        let strategy = result.method.split(',').next().unwrap_or_default();
        MULTI_TASK_STRATEGY_ORDER.iter().position(|known| *known == strategy).unwrap_or(MULTI_TASK_STRATEGY_ORDER.len())
    });
    StrategyComparison { tasks, multi_task, references }
}

/// The mean over tasks of a run's final `split` accuracy; `None` when it logged none.
fn mean_accuracy_over_tasks(run: &RunRecord, split: &str) -> Option<f64> {
    let values: Vec<f64> = run
        .final_metrics
        .iter()
        .filter(|(key, _)| key.split == split && key.metric == "accuracy")
        .map(|(_, value)| *value)
        .collect();
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// Which curve of a task: `(split, metric)`, e.g. `("val", "loss")`.
pub type SeriesKey = (String, String);

/// Per-epoch means over a group's seeds, `(epoch, mean)` by series of one task.
pub type MeanCurves = BTreeMap<SeriesKey, Vec<(u32, f64)>>;

/// Learning curves of `task` for each group, aligned with `groups` (a group
/// without rows for the task gets empty curves, so colours can follow the
/// group's index). An epoch's mean is over the seeds that logged it.
pub fn mean_curves(groups: &[RunGroup], rows: &[MetricRow], task: &str) -> Vec<MeanCurves> {
    let group_index_by_run: BTreeMap<RunId, usize> = groups
        .iter()
        .enumerate()
        .flat_map(|(group_index, group)| group.runs.iter().map(move |run| (*run, group_index)))
        .collect();
    let mut values: Vec<BTreeMap<SeriesKey, BTreeMap<u32, Vec<f64>>>> = vec![BTreeMap::new(); groups.len()];
    for row in rows.iter().filter(|row| row.key.task == task) {
        let Some(&group_index) = group_index_by_run.get(&row.run) else { continue };
        let series = (row.key.split.clone(), row.key.metric.clone());
        values[group_index].entry(series).or_default().entry(row.epoch).or_default().push(row.value);
    }
    values
        .into_iter()
        .map(|by_series| {
            by_series
                .into_iter()
                .map(|(series, by_epoch)| {
                    let points = by_epoch
                        .into_iter()
                        .filter_map(|(epoch, epoch_values)| Some((epoch, seed_stats(&epoch_values)?.mean)))
                        .collect();
                    (series, points)
                })
                .collect()
        })
        .collect()
}

/// Task names that appear in any run's final metrics, sorted.
pub fn task_names(runs: &[RunRecord]) -> Vec<String> {
    let names: BTreeSet<&String> = runs.iter().flat_map(|run| run.final_metrics.keys().map(|key| &key.task)).collect();
    names.into_iter().cloned().collect()
}

fn text_param(run: &RunRecord, name: &str) -> Option<String> {
    run.params.get(name).map(ParamValue::to_string)
}

fn num_param(run: &RunRecord, name: &str) -> Option<f64> {
    match run.params.get(name) {
        Some(ParamValue::Num(value)) => Some(*value),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A done run with `strategy`, optional λ, a seed and one final test accuracy for `shapes`.
    fn run(id: i64, strategy: &str, lambda: Option<f64>, seed: f64, accuracy: f64) -> RunRecord {
        let mut params = BTreeMap::from([
            ("strategy".to_string(), ParamValue::Text(strategy.into())),
            ("seed".to_string(), ParamValue::Num(seed)),
            ("lr".to_string(), ParamValue::Num(0.001)),
        ]);
        if let Some(lambda) = lambda {
            params.insert("lambda".into(), ParamValue::Num(lambda));
        }
        RunRecord {
            id: RunId(id),
            experiment: "e".into(),
            trial_key: format!("k{id}"),
            status: RunStatus::Done,
            started_at: None,
            ended_at: None,
            error: None,
            params,
            final_epoch: Some(2),
            final_metrics: BTreeMap::from([(test_accuracy(), accuracy)]),
        }
    }

    fn test_accuracy() -> MetricKey {
        MetricKey { task: "shapes".into(), split: "test".into(), metric: "accuracy".into() }
    }

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
    fn mean_curves_average_each_epoch_over_seeds() {
        let groups = vec![
            RunGroup { method: "hard".into(), lambda: Some(1.0), runs: vec![RunId(1), RunId(2)] },
            RunGroup { method: "single-task".into(), lambda: None, runs: vec![RunId(3)] },
        ];
        let row = |run: i64, epoch: u32, task: &str, split: &str, value: f64| MetricRow {
            run: RunId(run),
            epoch,
            key: MetricKey { task: task.into(), split: split.into(), metric: "loss".into() },
            value,
        };
        let rows = vec![
            row(1, 1, "shapes", "train", 2.0),
            row(1, 2, "shapes", "train", 1.0),
            row(2, 1, "shapes", "train", 3.0),
            row(2, 2, "shapes", "train", 2.0),
            row(1, 1, "shapes", "val", 2.5),
            row(2, 1, "reviews", "train", 9.0),
            row(99, 1, "shapes", "train", 9.0),
        ];
        let curves = mean_curves(&groups, &rows, "shapes");
        assert_eq!(curves.len(), 2);
        let train_loss = &curves[0][&("train".to_string(), "loss".to_string())];
        // epoch 1: (2 + 3) / 2; epoch 2: (1 + 2) / 2
        assert_eq!(train_loss, &vec![(1, 2.5), (2, 1.5)]);
        assert_eq!(curves[0][&("val".to_string(), "loss".to_string())], vec![(1, 2.5)]);
        assert!(curves[1].is_empty());
    }

    /// `run` with these final `(task, split, accuracy)` metrics and, if given, `n_parameters`.
    fn run_with(
        id: i64,
        strategy: &str,
        lambda: Option<f64>,
        seed: f64,
        n_parameters: Option<f64>,
        accuracies: &[(&str, &str, f64)],
    ) -> RunRecord {
        let mut record = run(id, strategy, lambda, seed, 0.0);
        record.final_metrics = accuracies
            .iter()
            .map(|&(task, split, value)| {
                (MetricKey { task: task.into(), split: split.into(), metric: "accuracy".into() }, value)
            })
            .collect();
        if let Some(n_parameters) = n_parameters {
            record.params.insert("n_parameters".into(), ParamValue::Num(n_parameters));
        }
        record
    }

    /// One line per method, references first: `label | task stats… | n_parameters`.
    fn comparison_table(comparison: &StrategyComparison) -> Vec<String> {
        comparison
            .methods()
            .map(|result| {
                let cells =
                    comparison.tasks.iter().zip(&result.test_accuracy_by_task).map(|(task, stats)| match stats {
                        Some(stats) => format!("{task} {:.6} ± {:.6} ({})", stats.mean, stats.std, stats.n),
                        None => format!("{task} –"),
                    });
                let n_parameters = result.n_parameters.map_or("–".to_string(), |n| n.to_string());
                std::iter::once(result.label()).chain(cells).chain([n_parameters]).collect::<Vec<_>>().join(" | ")
            })
            .collect()
    }

    #[test]
    fn strategies_are_compared_at_their_best_lambda() {
        let runs = vec![
            // single-task: one run per task and seed; n_parameters differs by task.
            run_with(1, "single-task", None, 0.0, Some(100.0), &[("shapes", "test", 0.5), ("shapes", "val", 0.9)]),
            run_with(2, "single-task", None, 1.0, Some(100.0), &[("shapes", "test", 0.75)]),
            run_with(3, "single-task", None, 0.0, Some(200.0), &[("reviews", "test", 0.25)]),
            run_with(4, "single-task", None, 0.0, Some(300.0), &[("digits", "test", 0.5)]),
            // hard: val run means (over shapes and reviews) per λ:
            //   λ=0.5: (0.75+0.25)/2 = 0.5 and (0.5+0.5)/2 = 0.5 → 0.5
            //   λ=2:   (0.75+0.75)/2 = 0.75 and (0.5+0.5)/2 = 0.5 → 0.625, chosen
            //   although λ=0.5 has the better test accuracy.
            run_with(
                10,
                "hard",
                Some(0.5),
                0.0,
                Some(1500.0),
                &[("shapes", "val", 0.75), ("reviews", "val", 0.25), ("shapes", "test", 1.0), ("reviews", "test", 1.0)],
            ),
            run_with(11, "hard", Some(0.5), 1.0, Some(1500.0), &[("shapes", "val", 0.5), ("reviews", "val", 0.5)]),
            run_with(
                12,
                "hard",
                Some(2.0),
                0.0,
                Some(1500.0),
                &[("shapes", "val", 0.75), ("reviews", "val", 0.75), ("shapes", "test", 0.8), ("reviews", "test", 0.7)],
            ),
            run_with(
                13,
                "hard",
                Some(2.0),
                1.0,
                Some(1500.0),
                &[("shapes", "val", 0.5), ("reviews", "val", 0.5), ("shapes", "test", 0.9)],
            ),
            // soft: λ=0.25 and λ=1 tie on val (0.5 each) → the smaller λ.
            run_with(20, "soft", Some(0.25), 0.0, None, &[("shapes", "val", 0.5), ("shapes", "test", 0.6)]),
            run_with(21, "soft", Some(1.0), 0.0, None, &[("shapes", "val", 0.5), ("shapes", "test", 0.7)]),
            // ple logged no val accuracy: chosen by test, 0.7 (λ=1) over 0.6 (λ=0.5).
            run_with(30, "ple", Some(0.5), 0.0, None, &[("shapes", "test", 0.6)]),
            run_with(31, "ple", Some(1.0), 0.0, None, &[("shapes", "test", 0.7)]),
            // A strategy mtl-report does not know goes last, though first alphabetically.
            run_with(40, "aaa-custom", Some(1.0), 0.0, None, &[("shapes", "test", 0.4)]),
            // A λ without any accuracy is never chosen; a method with only such λ is left out.
            run_with(50, "cgc", Some(1.0), 0.0, None, &[]),
        ];
        let comparison = compare_strategies(&runs, &group_runs(&runs));
        assert_eq!(comparison.tasks, vec!["digits", "reviews", "shapes"]);
        let expected = vec![
            // n_parameters does not split single-task; the first run's count is shown.
            // shapes: mean(0.5, 0.75) = 0.625, std = 0.125·√2 = 0.176777
            "single-task | digits 0.500000 ± 0.000000 (1) | reviews 0.250000 ± 0.000000 (1) \
             | shapes 0.625000 ± 0.176777 (2) | 100",
            // shapes: mean(0.8, 0.9) = 0.85, std = 0.05·√2 = 0.070711; reviews only from run 12
            "hard λ=2 | digits – | reviews 0.700000 ± 0.000000 (1) | shapes 0.850000 ± 0.070711 (2) | 1500",
            "soft λ=0.25 | digits – | reviews – | shapes 0.600000 ± 0.000000 (1) | –",
            "ple λ=1 | digits – | reviews – | shapes 0.700000 ± 0.000000 (1) | –",
            "aaa-custom λ=1 | digits – | reviews – | shapes 0.400000 ± 0.000000 (1) | –",
        ];
        assert_eq!(comparison_table(&comparison), expected);
    }

    #[test]
    fn methods_without_lambda_are_references_single_task_first() {
        let runs = vec![
            run_with(1, "baseline-x", None, 0.0, None, &[("shapes", "test", 0.5)]),
            run_with(2, "single-task", None, 0.0, None, &[("shapes", "test", 0.25)]),
        ];
        let comparison = compare_strategies(&runs, &group_runs(&runs));
        assert!(comparison.multi_task.is_empty());
        let expected =
            vec!["single-task | shapes 0.250000 ± 0.000000 (1) | –", "baseline-x | shapes 0.500000 ± 0.000000 (1) | –"];
        assert_eq!(comparison_table(&comparison), expected);
    }

    #[test]
    fn task_names_are_collected_from_final_metrics() {
        let mut other = run(2, "single-task", None, 0.0, 0.5);
        other.final_metrics = BTreeMap::from([(MetricKey { task: "reviews".into(), ..test_accuracy() }, 0.5)]);
        assert_eq!(task_names(&[run(1, "hard", Some(1.0), 0.0, 0.9), other]), vec!["reviews", "shapes"]);
    }
}
