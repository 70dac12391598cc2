//! Turns runs into the numbers the charts show: groups of runs that differ
//! only in their seed, mean ± std over seeds, single-task baselines,
//! per-epoch averaged learning curves, the comparison of strategies at
//! each one's best λ, training diagnostics (task weights, gradient cosines)
//! averaged per step, and the comparison of weighting methods (accuracy, time
//! per step against static weighting, final weights and cosines). Pure: no
//! IO, no plotting.
//!
//! ```
//! use mtl_report::aggregate::seed_stats;
//! // Two seeds: mean 0.85, sample std 0.05·√2.
//! let stats = seed_stats(&[0.8, 0.9]).expect("finite values");
//! assert!((stats.mean - 0.85).abs() < 1e-12 && (stats.std - 0.0707107).abs() < 1e-6);
//! ```

use std::collections::{BTreeMap, BTreeSet};

use mtl_store::{DiagnosticRow, MetricKey, MetricRow, ParamValue, RunId, RunRecord, RunStatus};

use crate::compare::{compare, CompareSpec, GroupRow};
use crate::groups::mean_accuracy_over_tasks;
use crate::stats::Verdict;

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
    /// 95% interval of the mean, `mean ± t_{0.975, n−1} · std/√n`; `None` for one seed.
    pub ci95: Option<(f64, f64)>,
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
    let ci95 = crate::stats::interval(mean, std / (n as f64).sqrt(), (n - 1) as f64);
    Some(SeedStats { mean, std, n, ci95 })
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

    // The parameter count follows from the strategy (and the task of a
    // single-task run), and the training time and step count vary between
    // seeds: they describe a method, they do not name one.
    let names_a_method = |name: &str| crate::groups::is_setting(name) && !matches!(name, "lambda" | "strategy");
    let mut groups: Vec<RunGroup> = Vec::new();
    for run in &done_runs {
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

impl LambdaLine {
    /// The band the chart shades: `(λ, mean − std, mean + std)` per point.
    pub fn band(&self) -> Vec<(f64, f64, f64)> {
        self.points.iter().map(|(lambda, s)| (*lambda, s.mean - s.std, s.mean + s.std)).collect()
    }
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
        let values: Vec<f64> = group.runs.iter().filter_map(|id| run_by_id.get(id)?.result(key)).collect();
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

/// One method at its chosen λ: test accuracy per task over seeds, and Δm%.
#[derive(Clone, Debug, PartialEq)]
pub struct MethodResult {
    /// The strategy and the settings that tell it apart (e.g. `hard, weighting=pcgrad`).
    pub method: String,
    /// The λ chosen for it on validation; `None` for methods without λ.
    pub lambda: Option<f64>,
    /// Test accuracy over seeds (each run's result), aligned with
    /// [`StrategyComparison::tasks`]; `None` where no run logged it.
    pub test_accuracy_by_task: Vec<Option<SeedStats>>,
    /// The `n_parameters` setting of the group's first run, if recorded.
    pub n_parameters: Option<f64>,
    /// Per task of [`StrategyComparison::tasks`], test accuracy against single-task.
    pub verdicts: Vec<Option<Verdict>>,
    /// Which epoch is each run's result, in words.
    pub rule: &'static str,
    /// The comparison's row for it: Δm% with its interval, tests, runs.
    pub row: GroupRow,
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
    /// Methods with λ or multi-task, in [`MULTI_TASK_STRATEGY_ORDER`] (others after it,
    /// alphabetically), each at the λ [`compare`] picked on validation.
    pub multi_task: Vec<MethodResult>,
    /// The single-task baselines.
    pub references: Vec<MethodResult>,
}

impl StrategyComparison {
    /// Every method, references first.
    pub fn methods(&self) -> impl Iterator<Item = &MethodResult> {
        self.references.iter().chain(&self.multi_task)
    }
}

/// The question "which strategy, at its best λ?": [`compare`] grouped by strategy
/// (split by any other setting that differs), λ picked per group on validation. So
/// `mtl compare --group-by strategy --pick lambda` prints the same numbers.
pub fn strategy_spec() -> CompareSpec {
    CompareSpec { pick: Some("lambda".into()), ..CompareSpec::by(&["strategy"]) }
}

/// Compares the methods of `runs`, each at its best λ on validation ([`strategy_spec`]).
pub fn compare_strategies(runs: &[RunRecord]) -> StrategyComparison {
    let comparison = compare(runs, &strategy_spec());
    let tasks = task_names(runs);
    let run_by_id: BTreeMap<RunId, &RunRecord> = runs.iter().map(|run| (run.id, run)).collect();
    let mut result = StrategyComparison { tasks: tasks.clone(), ..StrategyComparison::default() };
    for row in &comparison.rows {
        let index = |task: &String| {
            let key = MetricKey { task: task.clone(), split: "test".into(), metric: "accuracy".into() };
            comparison.columns.iter().position(|c| *c == key)
        };
        let strategy = row.values[0].as_ref().map_or("unknown".to_string(), ParamValue::to_string);
        let split = comparison.split_by.iter().zip(&row.values[1..]);
        let method = crate::groups::method_label(
            &strategy,
            split.filter_map(|(name, value)| Some((name.as_str(), value.as_ref()?))),
        );
        let lambda = match row.picked {
            Some(ParamValue::Num(lambda)) => Some(lambda),
            _ => None,
        };
        let n_parameters = row.runs.first().and_then(|id| num_param(run_by_id.get(id)?, "n_parameters"));
        let method_result = MethodResult {
            method,
            lambda,
            test_accuracy_by_task: tasks.iter().map(|t| index(t).and_then(|i| row.stats[i])).collect(),
            verdicts: tasks.iter().map(|t| index(t).and_then(|i| row.versus_single_task[i])).collect(),
            rule: row.runs.first().and_then(|id| run_by_id.get(id)).map_or("", |r| r.result_rule.describe()),
            n_parameters,
            row: row.clone(),
        };
        if strategy == SINGLE_TASK_STRATEGY {
            result.references.push(method_result);
        } else {
            result.multi_task.push(method_result);
        }
    }
    // Already alphabetical by strategy; a stable sort puts known strategies first.
    result.multi_task.sort_by_key(|result| {
        let strategy = result.method.split(',').next().unwrap_or_default();
        MULTI_TASK_STRATEGY_ORDER.iter().position(|known| *known == strategy).unwrap_or(MULTI_TASK_STRATEGY_ORDER.len())
    });
    result
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
            .filter_map(|run| mean_accuracy_over_tasks(run, "val").or_else(|| mean_accuracy_over_tasks(run, "test")))
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

/// Test accuracy of `runs` over seeds (each run's result), per task of `tasks`.
fn test_accuracy_by_task(runs: &[&RunRecord], tasks: &[String]) -> Vec<Option<SeedStats>> {
    let stats_of = |task: &String| {
        let key = MetricKey { task: task.clone(), split: "test".into(), metric: "accuracy".into() };
        seed_stats(&runs.iter().filter_map(|run| run.result(&key)).collect::<Vec<_>>())
    };
    tasks.iter().map(stats_of).collect()
}

/// Which curve of a task: `(split, metric)`, e.g. `("val", "loss")`.
pub type SeriesKey = (String, String);

/// Per-epoch means over a group's seeds, `(epoch, mean)` by series of one task.
pub type MeanCurves = BTreeMap<SeriesKey, Vec<(u32, f64)>>;

/// Learning curves of `task` for each group, aligned with `groups` (a group
/// without rows for the task gets empty curves, so colours can follow the
/// group's index). An epoch's mean is over the seeds that logged it.
pub fn mean_curves(groups: &[RunGroup], rows: &[MetricRow], task: &str) -> Vec<MeanCurves> {
    let group_index_by_run = group_index_by_run(groups);
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

/// Which series of a diagnostic: `(task, other task)`, the other task empty
/// unless the diagnostic is pairwise (`grad_cosine`).
pub type DiagnosticSeries = (String, String);

/// Per-step means over a group's seeds, `(step, mean)` by series of one diagnostic.
pub type MeanDiagnostics = BTreeMap<DiagnosticSeries, Vec<(u64, f64)>>;

/// The diagnostic `name` (e.g. `weight`) of each group, aligned with
/// `groups` (a group without rows gets no series). A series' mean at a step
/// is over the group's runs that logged the series, and only steps that every
/// one of those runs logged are kept: a mean over a changing set of seeds
/// would jump where a seed stops. Non-finite values are left out of a mean as
/// in [`seed_stats`].
pub fn mean_diagnostics(groups: &[RunGroup], rows: &[DiagnosticRow], name: &str) -> Vec<MeanDiagnostics> {
    let group_index_by_run = group_index_by_run(groups);
    type ValueByStep = BTreeMap<u64, f64>;
    let mut values: Vec<BTreeMap<DiagnosticSeries, BTreeMap<RunId, ValueByStep>>> = vec![BTreeMap::new(); groups.len()];
    for row in rows.iter().filter(|row| row.point.name == name) {
        let Some(&group_index) = group_index_by_run.get(&row.run) else { continue };
        let series = (row.point.task.clone(), row.point.other.clone());
        values[group_index].entry(series).or_default().entry(row.run).or_default().insert(row.step, row.point.value);
    }
    let mean_curve = |by_run: BTreeMap<RunId, ValueByStep>| -> Vec<(u64, f64)> {
        let steps_of_first_run = by_run.values().next().into_iter().flat_map(BTreeMap::keys);
        steps_of_first_run
            .filter_map(|step| {
                let step_values: Option<Vec<f64>> = by_run.values().map(|by_step| by_step.get(step).copied()).collect();
                Some((*step, seed_stats(&step_values?)?.mean))
            })
            .collect()
    };
    values
        .into_iter()
        .map(|by_series| by_series.into_iter().map(|(series, by_run)| (series, mean_curve(by_run))).collect())
        .collect()
}

/// The usual order of weighting methods, `static` (the reference) first: that of
/// `mtl_runner::weighting::Method::NAMES` (mtl-report does not depend on the runner; an
/// end-to-end test checks that the two agree).
pub const WEIGHTING_ORDER: [&str; 17] = [
    "static",
    "equal",
    "uncertainty",
    "dwa",
    "rlw",
    "gls",
    "famo",
    "db-mtl",
    "gradnorm",
    "pcgrad",
    "mgda",
    "cagrad",
    "imtl",
    "gradvac",
    "aligned-mtl",
    "nash-mtl",
    "mgda-ub",
];

/// One group (method and λ) in a comparison of weighting methods.
#[derive(Clone, Debug, PartialEq)]
pub struct MethodSummary {
    /// The method (see [`RunGroup::method`]).
    pub method: String,
    /// λ, for static weighting by λ.
    pub lambda: Option<f64>,
    /// Test accuracy over seeds (each run's result), aligned with [`MethodComparison::tasks`].
    pub test_accuracy_by_task: Vec<Option<SeedStats>>,
    /// `train_seconds / steps` over the runs that recorded both.
    pub seconds_per_step: Option<SeedStats>,
    /// The mean seconds per step over that of the `static` weighting groups
    /// of the same strategy (the mean of their means when there are several
    /// λ); `None` when there is no such group or either side has no timing.
    pub relative_to_static: Option<f64>,
    /// Each task's `weight` in the last logging window of each run, over
    /// seeds, aligned with [`MethodComparison::tasks`].
    pub final_weight_by_task: Vec<Option<SeedStats>>,
    /// Each pair's `grad_cosine` in the last logging window of each run, over
    /// seeds, aligned with [`MethodComparison::task_pairs`].
    pub final_cosine_by_pair: Vec<Option<SeedStats>>,
}

/// Every group of an experiment with its accuracy, cost and final diagnostics.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct MethodComparison {
    /// Task names, sorted.
    pub tasks: Vec<String>,
    /// The `(task, other)` pairs that have a `grad_cosine`, sorted.
    pub task_pairs: Vec<(String, String)>,
    /// Ordered by strategy (single-task, then [`MULTI_TASK_STRATEGY_ORDER`]),
    /// then weighting ([`WEIGHTING_ORDER`]), then method and λ; unknown names
    /// after known ones.
    pub methods: Vec<MethodSummary>,
}

/// Compares every group of `groups` (not only the best λ): accuracy, time
/// per step, and final weights and gradient cosines from `diagnostics`.
pub fn compare_methods(runs: &[RunRecord], groups: &[RunGroup], diagnostics: &[DiagnosticRow]) -> MethodComparison {
    let run_by_id: BTreeMap<RunId, &RunRecord> = runs.iter().map(|run| (run.id, run)).collect();
    let runs_of = |group: &RunGroup| -> Vec<&RunRecord> {
        group.runs.iter().filter_map(|id| run_by_id.get(id).copied()).collect()
    };
    let tasks = task_names(runs);
    // The last logging window of each run: (run, name, task, other) → (step, value).
    let mut final_diagnostics: BTreeMap<(RunId, &str, &str, &str), (u64, f64)> = BTreeMap::new();
    for row in diagnostics {
        let point = &row.point;
        let key = (row.run, point.name.as_str(), point.task.as_str(), point.other.as_str());
        let last = final_diagnostics.entry(key).or_insert((row.step, point.value));
        if row.step >= last.0 {
            *last = (row.step, point.value);
        }
    }
    let task_pairs: Vec<(String, String)> = final_diagnostics
        .keys()
        .filter(|(_, name, _, _)| *name == "grad_cosine")
        .map(|(_, _, task, other)| (task.to_string(), other.to_string()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let final_stats = |group_runs: &[&RunRecord], name: &str, task: &str, other: &str| {
        let values: Vec<f64> = group_runs
            .iter()
            .filter_map(|run| final_diagnostics.get(&(run.id, name, task, other)).map(|(_, value)| *value))
            .collect();
        seed_stats(&values)
    };

    // (strategy, weighting, summary) per group.
    let mut described: Vec<(String, String, MethodSummary)> = groups
        .iter()
        .map(|group| {
            let group_runs = runs_of(group);
            let first_run = group_runs.first();
            let strategy = first_run.and_then(|run| text_param(run, "strategy")).unwrap_or_default();
            let weighting = first_run.and_then(|run| text_param(run, "weighting")).unwrap_or_default();
            let per_run_seconds_per_step: Vec<f64> = group_runs
                .iter()
                .filter_map(|run| Some(num_param(run, "train_seconds")? / num_param(run, "steps")?))
                .collect();
            let summary = MethodSummary {
                method: group.method.clone(),
                lambda: group.lambda,
                test_accuracy_by_task: test_accuracy_by_task(&group_runs, &tasks),
                seconds_per_step: seed_stats(&per_run_seconds_per_step),
                relative_to_static: None,
                final_weight_by_task: tasks.iter().map(|task| final_stats(&group_runs, "weight", task, "")).collect(),
                final_cosine_by_pair: (task_pairs.iter())
                    .map(|(task, other)| final_stats(&group_runs, "grad_cosine", task, other))
                    .collect(),
            };
            (strategy, weighting, summary)
        })
        .collect();

    let static_seconds_per_step = |strategy: &str| {
        let means: Vec<f64> = (described.iter())
            .filter(|(group_strategy, weighting, _)| group_strategy == strategy && weighting == "static")
            .filter_map(|(_, _, summary)| Some(summary.seconds_per_step?.mean))
            .collect();
        seed_stats(&means).map(|stats| stats.mean).filter(|mean| *mean > 0.0)
    };
    let references: Vec<Option<f64>> =
        described.iter().map(|(strategy, _, _)| static_seconds_per_step(strategy)).collect();
    for ((_, _, summary), reference) in described.iter_mut().zip(references) {
        summary.relative_to_static =
            summary.seconds_per_step.zip(reference).map(|(own, reference)| own.mean / reference);
    }

    let position = |known: &[&str], name: &str| known.iter().position(|k| *k == name).unwrap_or(known.len());
    // Groups come sorted by method and λ; a stable sort keeps that within a weighting.
    described.sort_by_key(|(strategy, weighting, _)| {
        let strategy_position =
            if strategy == SINGLE_TASK_STRATEGY { 0 } else { 1 + position(&MULTI_TASK_STRATEGY_ORDER, strategy) };
        (strategy_position, position(&WEIGHTING_ORDER, weighting))
    });
    let methods = described.into_iter().map(|(_, _, summary)| summary).collect();
    MethodComparison { tasks, task_pairs, methods }
}

fn group_index_by_run(groups: &[RunGroup]) -> BTreeMap<RunId, usize> {
    groups
        .iter()
        .enumerate()
        .flat_map(|(group_index, group)| group.runs.iter().map(move |run| (*run, group_index)))
        .collect()
}

/// Task names that appear in any run's final metrics, sorted.
pub fn task_names(runs: &[RunRecord]) -> Vec<String> {
    let names: BTreeSet<&String> =
        runs.iter().flat_map(|run| run.result_metrics().keys().map(|key| &key.task)).collect();
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
            ..RunRecord::default()
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
            // ple logged no val accuracy: nothing to pick by, so the smaller λ (never by test).
            run_with(30, "ple", Some(0.5), 0.0, None, &[("shapes", "test", 0.6)]),
            run_with(31, "ple", Some(1.0), 0.0, None, &[("shapes", "test", 0.7)]),
            // A strategy mtl-report does not know goes last, though first alphabetically.
            run_with(40, "aaa-custom", Some(1.0), 0.0, None, &[("shapes", "test", 0.4)]),
            // A method without any accuracy still has its row, with nothing in it.
            run_with(50, "cgc", Some(1.0), 0.0, None, &[]),
        ];
        let comparison = compare_strategies(&runs);
        assert_eq!(comparison.tasks, vec!["digits", "reviews", "shapes"]);
        let expected = vec![
            // n_parameters does not split single-task; the first run's count is shown.
            // shapes: mean(0.5, 0.75) = 0.625, std = 0.125·√2 = 0.176777
            "single-task | digits 0.500000 ± 0.000000 (1) | reviews 0.250000 ± 0.000000 (1) \
             | shapes 0.625000 ± 0.176777 (2) | 100",
            // shapes: mean(0.8, 0.9) = 0.85, std = 0.05·√2 = 0.070711; reviews only from run 12
            "hard λ=2 | digits – | reviews 0.700000 ± 0.000000 (1) | shapes 0.850000 ± 0.070711 (2) | 1500",
            "soft λ=0.25 | digits – | reviews – | shapes 0.600000 ± 0.000000 (1) | –",
            "cgc λ=1 | digits – | reviews – | shapes – | –",
            "ple λ=0.5 | digits – | reviews – | shapes 0.600000 ± 0.000000 (1) | –",
            "aaa-custom λ=1 | digits – | reviews – | shapes 0.400000 ± 0.000000 (1) | –",
        ];
        assert_eq!(comparison_table(&comparison), expected);
    }

    #[test]
    fn a_method_without_lambda_is_compared_as_it_is_and_only_single_task_is_a_reference() {
        // E.g. a gradient-level weighting, which has no λ: a bar of its own, not a reference line.
        let runs = vec![
            run_with(1, "hard, weighting=pcgrad", None, 0.0, None, &[("shapes", "test", 0.5)]),
            run_with(2, "single-task", None, 0.0, None, &[("shapes", "test", 0.25)]),
        ];
        let comparison = compare_strategies(&runs);
        assert_eq!(comparison.references.len(), 1);
        let expected = vec![
            "single-task | shapes 0.250000 ± 0.000000 (1) | –",
            "hard, weighting=pcgrad | shapes 0.500000 ± 0.000000 (1) | –",
        ];
        assert_eq!(comparison_table(&comparison), expected);
    }

    #[test]
    fn the_lambda_band_is_mean_plus_minus_sample_std_by_hand() {
        // hard λ=1 over three seeds: 0.70, 0.80, 0.90 → mean 0.80, std √((0.01 + 0 + 0.01)/2) = 0.1;
        // λ=2 over two seeds: 0.60, 0.64 → mean 0.62, std 0.02·√2 = 0.0282843.
        let runs = vec![
            run(1, "hard", Some(1.0), 0.0, 0.70),
            run(2, "hard", Some(1.0), 1.0, 0.80),
            run(3, "hard", Some(1.0), 2.0, 0.90),
            run(4, "hard", Some(2.0), 0.0, 0.60),
            run(5, "hard", Some(2.0), 1.0, 0.64),
        ];
        let by_lambda = final_metric_by_lambda(&runs, &group_runs(&runs), &test_accuracy());
        let band = by_lambda.lines[0].band();
        let expected = [(1.0, 0.70, 0.90), (2.0, 0.62 - 0.0282843, 0.62 + 0.0282843)];
        assert_eq!(band.len(), 2);
        for ((lambda, low, high), (e_lambda, e_low, e_high)) in band.into_iter().zip(expected) {
            assert_eq!(lambda, e_lambda);
            assert!((low - e_low).abs() < 1e-6 && (high - e_high).abs() < 1e-6, "{lambda}: {low} {high}");
        }
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

    /// A done `strategy` run with `weighting`, optional λ and timing, and a final `shapes` test accuracy.
    fn weighted_run(
        id: i64,
        strategy: &str,
        weighting: &str,
        lambda: Option<f64>,
        seed: f64,
        timing: Option<(f64, f64)>,
        accuracy: f64,
    ) -> RunRecord {
        let mut record = run(id, strategy, lambda, seed, accuracy);
        record.params.insert("weighting".into(), ParamValue::Text(weighting.into()));
        if let Some((train_seconds, steps)) = timing {
            record.params.insert("train_seconds".into(), ParamValue::Num(train_seconds));
            record.params.insert("steps".into(), ParamValue::Num(steps));
        }
        record
    }

    fn diagnostic(run: i64, step: u64, name: &str, task: &str, other: &str, value: f64) -> DiagnosticRow {
        let point = mtl_store::DiagnosticPoint { name: name.into(), task: task.into(), other: other.into(), value };
        DiagnosticRow { run: RunId(run), step, epoch: 1, point }
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

    #[test]
    fn mean_diagnostics_average_steps_every_run_of_the_series_logged() {
        let groups = vec![
            RunGroup { method: "hard, weighting=pcgrad".into(), lambda: None, runs: vec![RunId(1), RunId(2)] },
            RunGroup { method: "hard, weighting=static".into(), lambda: Some(1.0), runs: vec![RunId(3)] },
        ];
        let rows = vec![
            diagnostic(1, 10, "weight", "shapes", "", 1.5),
            diagnostic(1, 20, "weight", "shapes", "", 1.0),
            diagnostic(2, 10, "weight", "shapes", "", 0.5),
            diagnostic(2, 20, "weight", "shapes", "", 2.0),
            // Only run 1 reached step 30: dropped rather than shown as run 1 alone.
            diagnostic(1, 30, "weight", "shapes", "", 9.0),
            // Only run 1 logged `reviews`: its mean is run 1's value.
            diagnostic(1, 10, "weight", "reviews", "", 0.25),
            diagnostic(1, 10, "grad_cosine", "shapes", "reviews", -0.5),
            diagnostic(2, 10, "grad_norm", "shapes", "", 7.0),
            diagnostic(99, 10, "weight", "shapes", "", 9.0),
        ];
        let weights = mean_diagnostics(&groups, &rows, "weight");
        let series = |task: &str| (task.to_string(), String::new());
        // step 10: (1.5 + 0.5) / 2 = 1; step 20: (1 + 2) / 2 = 1.5
        let expected_pcgrad =
            BTreeMap::from([(series("reviews"), vec![(10, 0.25)]), (series("shapes"), vec![(10, 1.0), (20, 1.5)])]);
        assert_eq!(weights, vec![expected_pcgrad, BTreeMap::new()]);
        let cosines = mean_diagnostics(&groups, &rows, "grad_cosine");
        let pair = ("shapes".to_string(), "reviews".to_string());
        assert_eq!(cosines, vec![BTreeMap::from([(pair, vec![(10, -0.5)])]), BTreeMap::new()]);
    }

    /// One line per method: `label | shapes accuracy | ms per step | relative | weights | cosines`.
    fn method_table(comparison: &MethodComparison) -> Vec<String> {
        let shown = |stats: &Option<SeedStats>| match stats {
            Some(stats) => format!("{:.6} ± {:.6} ({})", stats.mean, stats.std, stats.n),
            None => "–".to_string(),
        };
        comparison
            .methods
            .iter()
            .map(|summary| {
                let label = RunGroup { method: summary.method.clone(), lambda: summary.lambda, runs: vec![] }.label();
                let accuracies: Vec<String> = summary.test_accuracy_by_task.iter().map(shown).collect();
                let weights: Vec<String> = summary.final_weight_by_task.iter().map(shown).collect();
                let cosines: Vec<String> = summary.final_cosine_by_pair.iter().map(shown).collect();
                let milliseconds =
                    summary.seconds_per_step.map_or("–".to_string(), |stats| format!("{:.3} ms", 1e3 * stats.mean));
                let relative =
                    summary.relative_to_static.map_or("–".to_string(), |relative| format!("{relative:.4}×"));
                [label, accuracies.join(", "), milliseconds, relative, weights.join(", "), cosines.join(", ")]
                    .join(" | ")
            })
            .collect()
    }

    #[test]
    fn methods_are_compared_by_accuracy_cost_and_final_diagnostics() {
        let runs = vec![
            // hard static: λ=0.5 at (10/1000 + 12/1000) / 2 = 11 ms per step, λ=2 at 13 ms;
            // the reference of hard is their mean, 12 ms.
            weighted_run(1, "hard", "static", Some(0.5), 0.0, Some((10.0, 1000.0)), 0.5),
            weighted_run(2, "hard", "static", Some(0.5), 1.0, Some((12.0, 1000.0)), 0.75),
            weighted_run(3, "hard", "static", Some(2.0), 0.0, Some((13.0, 1000.0)), 0.5),
            // pcgrad: 30/1000 and 33/1100 s are both 30 ms (run 6 has no timing) → 30 / 12 = 2.5×.
            weighted_run(4, "hard", "pcgrad", None, 0.0, Some((30.0, 1000.0)), 0.8),
            weighted_run(5, "hard", "pcgrad", None, 1.0, Some((33.0, 1100.0)), 0.9),
            weighted_run(6, "hard", "pcgrad", None, 2.0, None, 0.7),
            // single-task is its own static reference; mmoe has none.
            weighted_run(7, "single-task", "static", None, 0.0, Some((5.0, 1000.0)), 0.25),
            weighted_run(8, "mmoe", "cagrad", None, 0.0, Some((40.0, 1000.0)), 0.5),
        ];
        let diagnostics = vec![
            diagnostic(4, 10, "weight", "shapes", "", 1.5),
            diagnostic(4, 20, "weight", "shapes", "", 1.25),
            diagnostic(4, 10, "grad_cosine", "reviews", "shapes", 0.5),
            diagnostic(4, 20, "grad_cosine", "reviews", "shapes", -0.25),
            // The last window is the largest step, whatever the row order.
            diagnostic(5, 20, "weight", "shapes", "", 0.75),
            diagnostic(5, 10, "weight", "shapes", "", 2.0),
            diagnostic(5, 20, "grad_cosine", "reviews", "shapes", -0.75),
            diagnostic(5, 20, "grad_norm", "shapes", "", 3.0),
            diagnostic(1, 20, "weight", "shapes", "", 1.0),
        ];
        let comparison = compare_methods(&runs, &group_runs(&runs), &diagnostics);
        assert_eq!(comparison.tasks, vec!["shapes"]);
        assert_eq!(comparison.task_pairs, vec![("reviews".to_string(), "shapes".to_string())]);
        let expected = vec![
            "single-task | 0.250000 ± 0.000000 (1) | 5.000 ms | 1.0000× | – | –",
            // λ=0.5: 11 / 12 = 0.9167×; accuracy mean(0.5, 0.75) = 0.625, std = 0.125·√2 = 0.176777.
            "hard, static λ=0.5 | 0.625000 ± 0.176777 (2) | 11.000 ms | 0.9167× \
             | 1.000000 ± 0.000000 (1) | –",
            // λ=2: 13 / 12 = 1.0833×.
            "hard, static λ=2 | 0.500000 ± 0.000000 (1) | 13.000 ms | 1.0833× | – | –",
            // accuracy mean(0.8, 0.9, 0.7) = 0.8, std 0.1; final weights 1.25 and 0.75 → 1 ± 0.25·√2
            // = 0.353553; final cosines −0.25 and −0.75 → −0.5 ± 0.353553.
            "hard, pcgrad | 0.800000 ± 0.100000 (3) | 30.000 ms | 2.5000× \
             | 1.000000 ± 0.353553 (2) | -0.500000 ± 0.353553 (2)",
            "mmoe | 0.500000 ± 0.000000 (1) | 40.000 ms | – | – | –",
        ];
        assert_eq!(method_table(&comparison), expected);
    }
}
