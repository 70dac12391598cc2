//! The λ and strategy comparisons: a final metric against λ per method (with the
//! methods without λ as references), and every method side by side at the λ it
//! is best at on validation, as `mtl compare` would pick it.

use std::collections::BTreeMap;

use mtl_store::{MetricKey, ParamValue, RunId, RunRecord};

use super::{num_param, seed_stats, task_names, RunGroup, SeedStats, MULTI_TASK_STRATEGY_ORDER, SINGLE_TASK_STRATEGY};
use crate::compare::{compare, CompareSpec, GroupRow};
use crate::stats::Verdict;

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
    /// Each task's headline metric ([`super::headline_key`]), in task order.
    pub headline_metrics: Vec<String>,
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
    let headline_metrics = tasks.iter().map(|task| super::headline_key(runs, task, "test").metric).collect();
    let mut result = StrategyComparison { tasks: tasks.clone(), headline_metrics, ..StrategyComparison::default() };
    for row in &comparison.rows {
        let index = |task: &String| {
            let key = super::headline_key(runs, task, "test");
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::group_runs;
    use crate::aggregate::test_support::{run, test_accuracy};

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
}
