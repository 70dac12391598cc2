//! Which way each stored metric improves: the one list that Δm%, `compare`'s verdicts,
//! `best` and the best-epoch rule read.

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
