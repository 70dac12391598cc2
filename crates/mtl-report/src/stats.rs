//! Statistics over seeds: Student's t distribution, 95% confidence intervals of a
//! mean, and Welch's and the paired t-test. Pure; checked against scipy's numbers
//! (`benches/reference/stats_reference.py`).
//!
//! ```
//! use mtl_report::stats::{t_quantile, welch_test};
//! // t_{0.975} with 4 degrees of freedom (scipy.stats.t.ppf(0.975, 4)).
//! assert!((t_quantile(0.975, 4.0) - 2.7764451051977934).abs() < 1e-9);
//! let test = welch_test(&[0.90, 0.92, 0.91], &[0.80, 0.82, 0.81]).expect("two seeds each");
//! assert!(test.p < 0.001);
//! ```

/// The two-sided level of every interval and test: 95%, α = 0.05.
pub const ALPHA: f64 = 0.05;

/// ln Γ(x) for x > 0 (Lanczos approximation, g = 7, 9 terms; relative error below 1e-15).
fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x)Γ(1 − x) = π / sin(πx).
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut sum = C[0];
    for (i, c) in C.iter().enumerate().skip(1) {
        sum += c / (x + i as f64);
    }
    let t = x + G + 0.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

/// The regularised incomplete beta function I_x(a, b), by its continued fraction
/// (modified Lentz), using the symmetry I_x(a, b) = 1 − I_{1−x}(b, a) where it converges faster.
fn incomplete_beta(x: f64, a: f64, b: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    if x > (a + 1.0) / (a + b + 2.0) {
        return 1.0 - incomplete_beta(1.0 - x, b, a);
    }
    let front = (ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln()).exp() / a;
    const TINY: f64 = 1e-300;
    let (mut c, mut d) = (1.0, 1.0 - (a + b) * x / (a + 1.0));
    d = 1.0 / if d.abs() < TINY { TINY } else { d };
    let mut f = d;
    for m in 1..=300 {
        let m = m as f64;
        // The even step, then the odd step, of the fraction's coefficients.
        for numerator in [
            m * (b - m) * x / ((a + 2.0 * m - 1.0) * (a + 2.0 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2.0 * m) * (a + 2.0 * m + 1.0)),
        ] {
            d = 1.0 + numerator * d;
            d = 1.0 / if d.abs() < TINY { TINY } else { d };
            c = 1.0 + numerator / c;
            c = if c.abs() < TINY { TINY } else { c };
            f *= c * d;
        }
        if (c * d - 1.0).abs() < 1e-16 {
            break;
        }
    }
    front * f
}

/// P(T ≤ t) for Student's t with `df` (> 0, possibly fractional) degrees of freedom.
pub fn t_cdf(t: f64, df: f64) -> f64 {
    let tail = 0.5 * incomplete_beta(df / (df + t * t), df / 2.0, 0.5);
    if t >= 0.0 {
        1.0 - tail
    } else {
        tail
    }
}

/// The `p` quantile of Student's t with `df` degrees of freedom (bisection on [`t_cdf`]).
pub fn t_quantile(p: f64, df: f64) -> f64 {
    if p == 0.5 {
        return 0.0;
    }
    let (mut low, mut high) = (-1e6, 1e6);
    for _ in 0..200 {
        let mid = 0.5 * (low + high);
        if t_cdf(mid, df) < p {
            low = mid;
        } else {
            high = mid;
        }
    }
    0.5 * (low + high)
}

/// The 95% interval of a mean with standard error `se` and `df` degrees of freedom:
/// mean ± t_{0.975, df} · se. `None` without degrees of freedom (one seed).
pub fn interval(mean: f64, se: f64, df: f64) -> Option<(f64, f64)> {
    if df.is_nan() || df <= 0.0 || !se.is_finite() {
        return None;
    }
    let half = t_quantile(1.0 - ALPHA / 2.0, df) * se;
    Some((mean - half, mean + half))
}

/// A two-sided t-test's outcome.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TTest {
    /// The statistic (positive when the first sample's mean is larger).
    pub t: f64,
    /// Degrees of freedom (Welch–Satterthwaite for Welch's test).
    pub df: f64,
    /// Two-sided p-value.
    pub p: f64,
}

impl TTest {
    fn from_t(t: f64, df: f64) -> Option<TTest> {
        if t.is_nan() || df.is_nan() || df <= 0.0 {
            return None;
        }
        if t.is_infinite() {
            // No spread but a difference: exact, so as significant as it gets.
            return Some(TTest { t, df, p: 0.0 });
        }
        Some(TTest { t, df, p: 2.0 * (1.0 - t_cdf(t.abs(), df)) })
    }
}

fn mean_and_variance(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    (mean, values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0))
}

/// Welch's t-test of `a` against `b` (unequal variances). `None` with fewer than two
/// values on a side, or when neither side has spread and the means are equal; with no
/// spread and different means the difference is exact: p = 0.
pub fn welch_test(a: &[f64], b: &[f64]) -> Option<TTest> {
    if a.len() < 2 || b.len() < 2 {
        return None;
    }
    let ((mean_a, var_a), (mean_b, var_b)) = (mean_and_variance(a), mean_and_variance(b));
    let (se_a, se_b) = (var_a / a.len() as f64, var_b / b.len() as f64);
    let se = se_a + se_b;
    if se == 0.0 {
        let t = if mean_a == mean_b { f64::NAN } else { (mean_a - mean_b) * f64::INFINITY };
        return TTest::from_t(t, (a.len() + b.len() - 2) as f64);
    }
    let df = se * se / (se_a * se_a / (a.len() - 1) as f64 + se_b * se_b / (b.len() - 1) as f64);
    TTest::from_t((mean_a - mean_b) / se.sqrt(), df)
}

/// The paired t-test of `a` against `b` (pairs in the same order, e.g. by seed).
/// `None` with fewer than two pairs or when every difference is 0; when every difference
/// is the same other value, p = 0.
pub fn paired_test(a: &[f64], b: &[f64]) -> Option<TTest> {
    if a.len() != b.len() || a.len() < 2 {
        return None;
    }
    let differences: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    let (mean, variance) = mean_and_variance(&differences);
    if variance == 0.0 {
        let t = if mean == 0.0 { f64::NAN } else { mean * f64::INFINITY };
        return TTest::from_t(t, (differences.len() - 1) as f64);
    }
    TTest::from_t(mean / (variance / differences.len() as f64).sqrt(), (differences.len() - 1) as f64)
}

/// What a difference amounts to at the 5% level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Significantly better.
    Better,
    /// Significantly worse.
    Worse,
    /// Not distinguishable from seed noise.
    WithinNoise,
}

impl Verdict {
    /// From a test of "ours minus theirs" where `higher_is_better`.
    pub fn of(test: &TTest, higher_is_better: bool) -> Verdict {
        if test.p >= ALPHA {
            Verdict::WithinNoise
        } else if (test.t > 0.0) == higher_is_better {
            Verdict::Better
        } else {
            Verdict::Worse
        }
    }

    /// From a 95% interval of a difference (better when above 0 and higher is better).
    pub fn of_interval((low, high): (f64, f64), higher_is_better: bool) -> Verdict {
        if low > 0.0 {
            if higher_is_better {
                Verdict::Better
            } else {
                Verdict::Worse
            }
        } else if high < 0.0 {
            if higher_is_better {
                Verdict::Worse
            } else {
                Verdict::Better
            }
        } else {
            Verdict::WithinNoise
        }
    }

    /// Its name in tables, CSV and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Better => "better",
            Verdict::Worse => "worse",
            Verdict::WithinNoise => "within noise",
        }
    }
}

impl Verdict {
    /// In a sentence about single-task: "better than single-task", "within noise of single-task".
    pub fn against_single_task(self) -> &'static str {
        match self {
            Verdict::Better => "better than single-task",
            Verdict::Worse => "worse than single-task",
            Verdict::WithinNoise => "within noise of single-task",
        }
    }
}

/// ` +`, ` −` or ` ≈` after a value in a table or chart: better, worse or within noise
/// against single-task; nothing without a verdict.
pub fn marker(verdict: Option<Verdict>) -> &'static str {
    match verdict {
        Some(Verdict::Better) => " +",
        Some(Verdict::Worse) => " −",
        Some(Verdict::WithinNoise) => " ≈",
        None => "",
    }
}

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
    let ci95 = interval(mean, std / (n as f64).sqrt(), (n - 1) as f64);
    Some(SeedStats { mean, std, n, ci95 })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Printed by by benches/reference/stats_reference.py.
    #[test]
    fn t_distribution_matches_scipy() {
        // (p, df, scipy.stats.t.ppf(p, df))
        for (p, df, expected) in [
            (0.975, 1.0, 12.706204736174694),
            (0.975, 2.0, 4.302652729749462),
            (0.975, 4.0, 2.7764451051977934),
            (0.975, 9.0, 2.262157162798205),
            (0.975, 2.5, 3.5746548420036817),
            (0.95, 30.0, 1.697260886593957),
        ] {
            assert!((t_quantile(p, df) - expected).abs() < 1e-8, "t.ppf({p}, {df})");
        }
        // scipy.stats.t.cdf(t, df)
        for (t, df, expected) in [(1.5, 3.0, 0.8847080673775886), (-0.7, 7.5, 0.2525278109369252)] {
            assert!((t_cdf(t, df) - expected).abs() < 1e-10, "t.cdf({t}, {df})");
        }
    }

    #[test]
    fn welch_and_paired_tests_match_scipy() {
        let a = [0.91, 0.93, 0.90, 0.94];
        let b = [0.89, 0.90, 0.91];
        // scipy.stats.ttest_ind(a, b, equal_var=False)
        let welch = welch_test(&a, &b).expect("a test");
        assert!((welch.t - 1.851640199545106).abs() < 1e-9);
        assert!((welch.df - 4.7419354838709715).abs() < 1e-9);
        assert!((welch.p - 0.12645305940499482).abs() < 1e-8);
        // scipy.stats.ttest_rel(a[:3], b)
        let paired = paired_test(&a[..3], &b).expect("a test");
        assert!((paired.t - 1.1094003924504583).abs() < 1e-9);
        assert!((paired.p - 0.38278660015163235).abs() < 1e-8);
    }

    #[test]
    fn intervals_need_degrees_of_freedom() {
        assert_eq!(interval(1.0, 0.1, 0.0), None);
        let (low, high) = interval(1.0, 0.1, 4.0).expect("an interval");
        assert!((high - 1.0 - 0.27764451051977934).abs() < 1e-9 && (1.0 - low - 0.27764451051977934).abs() < 1e-9);
        assert_eq!(welch_test(&[1.0], &[2.0, 3.0]), None);
        assert_eq!(welch_test(&[2.0, 2.0], &[2.0, 2.0]), None, "no spread, no difference");
        let exact = welch_test(&[1.0, 1.0], &[2.0, 2.0]).expect("an exact difference");
        assert_eq!((exact.p, exact.t < 0.0), (0.0, true));
        assert_eq!(paired_test(&[1.0, 2.0], &[1.5, 2.5]).map(|t| t.p), Some(0.0), "the same difference each time");
    }

    #[test]
    fn verdicts_follow_the_direction_of_better() {
        let up = TTest { t: 3.0, df: 4.0, p: 0.01 };
        assert_eq!(Verdict::of(&up, true), Verdict::Better);
        assert_eq!(Verdict::of(&up, false), Verdict::Worse);
        assert_eq!(Verdict::of(&TTest { p: 0.2, ..up }, true), Verdict::WithinNoise);
        assert_eq!(Verdict::of_interval((-0.1, 0.3), true), Verdict::WithinNoise);
        assert_eq!(Verdict::of_interval((0.1, 0.3), true), Verdict::Better);
    }
}
