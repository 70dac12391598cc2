//! Which way each stored metric improves: the one list that Δm%, `compare`'s verdicts,
//! `best` and the best-epoch rule read, and Δm%, the relative change it orients.

/// Metrics where lower is better (Δm%'s `d_m = 1`); every other metric is higher-is-better.
/// Besides losses and error rates, the regression errors (`mae`, `rmse`), depth's absolute
/// and relative errors (`abs_err`, `rel_err`) and the normals' angle errors (`mean_angle`,
/// `median_angle`, in degrees).
pub fn lower_is_better(metric: &str) -> bool {
    matches!(
        metric,
        "loss"
            | "error"
            | "error_rate"
            | "mae"
            | "mse"
            | "rmse"
            | "nll"
            | "perplexity"
            | "abs_err"
            | "rel_err"
            | "mean_angle"
            | "median_angle"
    )
}

/// Δm% of `(task, metric, group mean, baseline mean)` terms; `None` without terms, with
/// a non-finite value, or with a baseline ≤ 0 (a relative change from a zero or negative
/// R² means nothing: R² is not among the default Δm% metrics).
pub fn delta_m(terms: &[(&str, &str, f64, f64)]) -> Option<f64> {
    let mut by_task: std::collections::BTreeMap<&str, Vec<f64>> = std::collections::BTreeMap::new();
    for &(task, metric, value, baseline) in terms {
        if baseline <= 0.0 || !value.is_finite() || !baseline.is_finite() {
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
