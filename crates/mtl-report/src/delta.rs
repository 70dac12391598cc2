//! Δm% against single-task baselines, with its 95% interval.
//!
//! - **Δm%** (Maninis et al. 2019; Vandenhende et al. 2021):
//!   `Δm = 100 · (1/T) · Σ_t (1/M_t) · Σ_m (−1)^{d_m} · (M_{t,m} − B_{t,m}) / B_{t,m}`,
//!   with `d_m = 1` when lower is better ([`lower_is_better`]) and 0 otherwise, `M` the
//!   group's mean over seeds and `B` the mean of the baseline runs. **Positive means
//!   better than single-task.**
//! - **Interval** (first-order propagation). Δm is linear in the group's values for fixed
//!   baselines, so it is the mean over the group's runs of each run's own Δm, `D_r`; their
//!   spread gives `s²(D)/n` (this keeps the correlation between a run's tasks). The
//!   baselines add `Σ (∂Δm/∂B)² · Var(B̄)`, with `∂Δm/∂B_{t,m} = −(100/T)(1/M_t)(−1)^{d_m}
//!   M_{t,m}/B_{t,m}²`, estimated per set of baseline runs that logged the same metrics
//!   (so a single-task run's tasks keep their correlation too). The interval is
//!   `Δm ± t_{0.975, ν} · se` with ν from Welch–Satterthwaite; it needs two runs in the
//!   group and in each set of baseline runs. Δm is "better" or "worse" than single-task
//!   when the interval excludes 0, else "within noise" (the matching approximate t-test
//!   at the 5% level). `benches/reference/stats_reference.py` computes a case with scipy.

use std::collections::BTreeMap;

pub use mtl_store::{delta_m, lower_is_better};
use mtl_store::{MetricKey, RunRecord};

use crate::stats::{interval, Verdict};

/// Δm% of a group, its interval and verdict, and each run's own Δm.
#[derive(Clone, Debug, PartialEq)]
pub struct DeltaM {
    /// Δm% of the group's means.
    pub value: f64,
    /// Its 95% interval; `None` with fewer than two runs on a side.
    pub ci95: Option<(f64, f64)>,
    /// Against single-task at the 5% level; `None` without an interval.
    pub verdict: Option<Verdict>,
    /// `(seed, Δm% of that run alone)` for the runs that logged every term.
    pub per_run: Vec<(Option<f64>, f64)>,
}

/// Δm% of `group` over `keys` against the means of `baseline` (see the module
/// documentation); `None` unless every key has values on both sides.
pub fn delta_m_of(group: &[&RunRecord], baseline: &[&RunRecord], keys: &[MetricKey]) -> Option<DeltaM> {
    let mean = |runs: &[&RunRecord], key: &MetricKey| {
        let values: Vec<f64> = runs.iter().filter_map(|r| r.result(key)).filter(|v| v.is_finite()).collect();
        (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
    };
    let mut terms = Vec::new();
    for key in keys {
        terms.push((key.task.as_str(), key.metric.as_str(), mean(group, key)?, mean(baseline, key)?));
    }
    let value = delta_m(&terms)?;
    let per_run: Vec<(Option<f64>, f64)> = group
        .iter()
        .filter_map(|run| {
            let run_terms: Option<Vec<_>> =
                terms.iter().zip(keys).map(|(&(t, m, _, b), key)| Some((t, m, run.result(key)?, b))).collect();
            let seed = match run.params.get("seed") {
                Some(mtl_store::ParamValue::Num(seed)) => Some(*seed),
                _ => None,
            };
            Some((seed, delta_m(&run_terms?)?))
        })
        .collect();
    let ci95 = delta_m_interval(value, &per_run, &terms, keys, baseline);
    let verdict = ci95.map(|ci| Verdict::of_interval(ci, true));
    Some(DeltaM { value, ci95, verdict, per_run })
}

/// The 95% interval of Δm%: the group's spread and the baselines', combined.
fn delta_m_interval(
    value: f64,
    per_run: &[(Option<f64>, f64)],
    terms: &[(&str, &str, f64, f64)],
    keys: &[MetricKey],
    baseline: &[&RunRecord],
) -> Option<(f64, f64)> {
    let sample_variance = |values: &[f64]| {
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)
    };
    if per_run.len() < 2 {
        return None;
    }
    let runs: Vec<f64> = per_run.iter().map(|(_, d)| *d).collect();
    // (variance of a mean, its degrees of freedom)
    let mut parts = vec![(sample_variance(&runs) / runs.len() as f64, (runs.len() - 1) as f64)];

    // ∂Δm/∂B per key.
    let metrics_per_task = |task: &str| terms.iter().filter(|(t, ..)| *t == task).count() as f64;
    let n_tasks = terms.iter().map(|(t, ..)| *t).collect::<std::collections::BTreeSet<_>>().len() as f64;
    let slope: Vec<f64> = terms
        .iter()
        .map(|&(task, metric, mean, base)| {
            let sign = if lower_is_better(metric) { -1.0 } else { 1.0 };
            -100.0 / n_tasks / metrics_per_task(task) * sign * mean / (base * base)
        })
        .collect();
    // Baseline runs by the set of keys they logged; each key must belong to one set.
    let mut sets: BTreeMap<Vec<usize>, Vec<&RunRecord>> = BTreeMap::new();
    for &run in baseline {
        let covered: Vec<usize> = (0..keys.len()).filter(|&i| run.result(&keys[i]).is_some()).collect();
        if !covered.is_empty() {
            sets.entry(covered).or_default().push(run);
        }
    }
    let disjoint = (0..keys.len()).all(|i| sets.keys().filter(|covered| covered.contains(&i)).count() == 1);
    let mut add = |runs: &[&RunRecord], covered: &[usize]| -> Option<()> {
        if runs.len() < 2 {
            return None;
        }
        let combined: Vec<f64> = runs
            .iter()
            .map(|run| covered.iter().map(|&i| slope[i] * run.result(&keys[i]).unwrap_or(f64::NAN)).sum())
            .collect();
        parts.push((sample_variance(&combined) / runs.len() as f64, (runs.len() - 1) as f64));
        Some(())
    };
    if disjoint {
        for (covered, runs) in &sets {
            add(runs, covered)?;
        }
    } else {
        // Overlapping sets: each key's baseline on its own, as if independent.
        for (i, key) in keys.iter().enumerate() {
            let runs: Vec<&RunRecord> = baseline.iter().copied().filter(|r| r.result(key).is_some()).collect();
            add(&runs, &[i])?;
        }
    }
    let variance: f64 = parts.iter().map(|(v, _)| v).sum();
    if !variance.is_finite() {
        return None;
    }
    if variance == 0.0 {
        return Some((value, value));
    }
    let df = variance * variance / parts.iter().map(|(v, df)| v * v / df).sum::<f64>();
    interval(value, variance.sqrt(), df)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mtl_store::{ParamValue, RunId, RunStatus};

    fn run(id: i64, seed: f64, accuracy: &[(&str, f64)]) -> RunRecord {
        let final_metrics = accuracy
            .iter()
            .map(|&(task, v)| (MetricKey { task: task.into(), split: "test".into(), metric: "accuracy".into() }, v))
            .collect();
        RunRecord {
            id: RunId(id),
            status: RunStatus::Done,
            params: [("seed".to_string(), ParamValue::Num(seed))].into(),
            final_epoch: Some(1),
            final_metrics,
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
        assert_eq!(delta_m(&[("a", "r2", 0.3, -0.2)]), None, "a negative baseline");
        assert_eq!(delta_m(&[]), None);
    }

    #[test]
    fn the_interval_matches_the_reference_script() {
        // benches/reference/stats_reference.py: group runs × tasks, per-task baseline runs.
        let group = [
            run(1, 0.0, &[("a", 0.92), ("b", 0.81)]),
            run(2, 1.0, &[("a", 0.94), ("b", 0.80)]),
            run(3, 2.0, &[("a", 0.93), ("b", 0.83)]),
        ];
        let base = [
            run(4, 0.0, &[("a", 0.90)]),
            run(5, 1.0, &[("a", 0.91)]),
            run(6, 2.0, &[("a", 0.89)]),
            run(7, 0.0, &[("b", 0.82)]),
            run(8, 1.0, &[("b", 0.80)]),
        ];
        let keys: Vec<MetricKey> =
            ["a", "b"].map(|t| MetricKey { task: t.into(), split: "test".into(), metric: "accuracy".into() }).to_vec();
        let d = delta_m_of(&group.iter().collect::<Vec<_>>(), &base.iter().collect::<Vec<_>>(), &keys).expect("Δm");
        assert!((d.value - 1.872427983539092).abs() < 1e-9, "{d:?}");
        let (low, high) = d.ci95.expect("an interval");
        assert!((low - -0.8742484385797944).abs() < 1e-7 && (high - 4.619104405657978).abs() < 1e-7, "{d:?}");
        assert_eq!(d.verdict, Some(Verdict::WithinNoise));
        assert_eq!(d.per_run.len(), 3);
        // One baseline run of b: no interval, but still Δm.
        let d =
            delta_m_of(&group.iter().collect::<Vec<_>>(), &base[..4].iter().collect::<Vec<_>>(), &keys).expect("Δm");
        assert_eq!((d.ci95, d.verdict), (None, None));
    }
}
