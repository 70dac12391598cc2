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

mod curves;
mod methods;
mod run_groups;
mod strategies;
#[cfg(test)]
mod test_support;

use mtl_store::{ParamValue, RunRecord};

pub use curves::{mean_curves, mean_diagnostics, DiagnosticSeries, MeanCurves, MeanDiagnostics, SeriesKey};
pub use methods::{compare_methods, MethodComparison, MethodSummary, WEIGHTING_ORDER};
pub use run_groups::{
    displayed_groups, group_runs, headline_key, headline_names, is_baseline, seed_stats, task_names, RunGroup,
    SeedStats,
};
pub use strategies::{
    compare_strategies, final_metric_by_lambda, strategy_spec, LambdaLine, MethodResult, MetricByLambda,
    StrategyComparison,
};

/// The strategy whose runs train one task alone: the baseline of that task.
pub use crate::groups::SINGLE_TASK_STRATEGY;

/// Multi-task strategies in the order `mtl_model::Strategy` documents them
/// (mtl-report reads names from the store and does not depend on mtl-model).
pub const MULTI_TASK_STRATEGY_ORDER: [&str; 9] =
    ["hard", "soft", "cross-stitch", "mmoe", "dselect-k", "cgc", "ple", "mtan", "ltb"];

fn text_param(run: &RunRecord, name: &str) -> Option<String> {
    run.params.get(name).map(ParamValue::to_string)
}

fn num_param(run: &RunRecord, name: &str) -> Option<f64> {
    match run.params.get(name) {
        Some(ParamValue::Num(value)) => Some(*value),
        _ => None,
    }
}
