//! The comparison of weighting methods: every group (each method and λ, not only
//! the best λ) with its test accuracy, time per step against static weighting,
//! and final task weights and gradient cosines.

use std::collections::{BTreeMap, BTreeSet};

use mtl_store::{DiagnosticRow, RunId, RunRecord};

use super::{
    num_param, seed_stats, task_names, text_param, RunGroup, SeedStats, MULTI_TASK_STRATEGY_ORDER, SINGLE_TASK_STRATEGY,
};

/// The usual order of weighting methods, `static` (the reference) first: that of
/// `mtl_runner::weighting::Method::NAMES` (mtl-report does not depend on the runner; an
/// end-to-end test checks that the two agree).
pub const WEIGHTING_ORDER: [&str; 28] = [
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
    "imtl-g",
    "gradvac",
    "aligned-mtl",
    "nash-mtl",
    "mgda-ub",
    "upgrad",
    "dualproj",
    "config",
    "stch",
    "fairgrad",
    "graddrop",
    "moco",
    "excess-mtl",
    "sdmgrad",
    "modo",
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
    /// Each task's headline metric ([`super::headline_key`]), in task order.
    pub headline_metrics: Vec<String>,
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
                test_accuracy_by_task: test_accuracy_by_task(runs, &group_runs, &tasks),
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
    let headline_metrics = tasks.iter().map(|task| super::headline_key(runs, task, "test").metric).collect();
    MethodComparison { tasks, headline_metrics, task_pairs, methods }
}

/// The headline test metric of `runs` over seeds (each run's result), per task of `tasks`
/// (`all`: every run, whose selection names each task's headline metric).
fn test_accuracy_by_task(all: &[RunRecord], runs: &[&RunRecord], tasks: &[String]) -> Vec<Option<SeedStats>> {
    let stats_of = |task: &String| {
        let key = super::headline_key(all, task, "test");
        seed_stats(&runs.iter().filter_map(|run| run.result(&key)).collect::<Vec<_>>())
    };
    tasks.iter().map(stats_of).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::group_runs;
    use crate::aggregate::test_support::{diagnostic, weighted_run};

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
