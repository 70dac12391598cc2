//! Which settings matter: the share of the variance of an objective across seed groups
//! that each setting explains on its own (its main effect, η² of a one-way analysis of
//! variance): `Σ_l n_l (ȳ_l − ȳ)² / Σ_g (y_g − ȳ)²`, over the groups `g` of a comparison
//! (each the mean over its seeds, so seed noise is not counted), with `l` the setting's
//! values (a missing value, as λ for a method that sets its own weights, is a value of its
//! own; a number with more than 8 values is cut into 4 bins of equal counts).
//!
//! On a full grid with every combination once this is the main-effect share of the
//! functional ANOVA decomposition under the uniform distribution over the grid (Hooker
//! 2007; what fANOVA estimates from a random forest, Hutter et al. 2014), computed exactly,
//! without a model; the shares then sum to 1 minus the interactions' share. When settings
//! vary together (a searched sample, nested settings) a setting's share also holds what it
//! shares with those it varies with, and the shares may sum to more than 1.
//!
//! `mtl importance` prints a [`Ranking`] and the report draws it, both of the comparison
//! [`importance_spec`] asks for.
//!
//! ```no_run
//! use mtl_report::compare::compare;
//! use mtl_report::importance::{importance_spec, Ranking};
//! # let runs: Vec<mtl_store::RunRecord> = Vec::new();
//! let known = runs.iter().flat_map(|run| run.params.keys().cloned()).collect();
//! let ranking = Ranking::of(&compare(&runs, &importance_spec(&known)));
//! for setting in ranking.settings.iter().filter(|_| ranking.has_something()) {
//!     println!("{}: {:?}", setting.setting, setting.shares);
//! }
//! ```

use std::collections::{BTreeMap, BTreeSet};

use mtl_store::ParamValue;

use crate::compare::{default_group_by, CompareSpec, Comparison};

/// The comparison whose groups are ranked: every seed group of [`default_group_by`] (the
/// groups of `mtl compare`), nothing picked, so that λ is a setting like any other.
pub fn importance_spec(known: &BTreeSet<String>) -> CompareSpec {
    CompareSpec { group_by: default_group_by(known), ..CompareSpec::default() }
}

/// [`importance`] of a comparison with what it is over: `mtl importance`'s table and the
/// report's chart.
#[derive(Clone, Debug, PartialEq)]
pub struct Ranking {
    /// [`objectives`], the order of every [`SettingImportance::shares`].
    pub objectives: Vec<String>,
    /// [`importance`]: the settings with the largest Δm% share first.
    pub settings: Vec<SettingImportance>,
    /// The multi-task seed groups the shares are over.
    pub n_groups: usize,
}

impl Ranking {
    /// The ranking of `comparison`'s groups.
    pub fn of(comparison: &Comparison) -> Ranking {
        Ranking {
            objectives: objectives(comparison),
            settings: importance(comparison),
            n_groups: comparison.rows.iter().filter(|r| !r.baseline).count(),
        }
    }

    /// Two multi-task groups or more and a setting that differs between them with a share
    /// of some objective: otherwise there is nothing to rank.
    pub fn has_something(&self) -> bool {
        self.n_groups >= 2 && self.settings.iter().any(|s| s.shares.iter().any(Option::is_some))
    }
}

/// One setting's shares.
#[derive(Clone, Debug, PartialEq)]
pub struct SettingImportance {
    /// The setting.
    pub setting: String,
    /// How many values (or bins) it takes among the groups.
    pub levels: usize,
    /// Per objective of [`importance`], the share in [0, 1]; `None` when the objective
    /// has no variance or fewer than two groups have it.
    pub shares: Vec<Option<f64>>,
}

/// The objectives [`importance`] reads: Δm%, then each column of `comparison` whose metric
/// enters Δm% (e.g. `left.test.accuracy`).
pub fn objectives(comparison: &Comparison) -> Vec<String> {
    std::iter::once("delta_m".to_string())
        .chain(
            comparison
                .columns
                .iter()
                .filter(|k| comparison.delta_metrics.contains(&k.metric))
                .map(|k| format!("{}.{}.{}", k.task, k.split, k.metric)),
        )
        .collect()
}

/// Each setting that differs between `comparison`'s groups (baselines left out) with its
/// share of each of [`objectives`], the settings with the largest Δm% share first.
pub fn importance(comparison: &Comparison) -> Vec<SettingImportance> {
    let rows: Vec<_> = comparison.rows.iter().filter(|r| !r.baseline).collect();
    let columns: Vec<usize> = comparison
        .columns
        .iter()
        .enumerate()
        .filter(|(_, k)| comparison.delta_metrics.contains(&k.metric))
        .map(|(i, _)| i)
        .collect();
    let values: Vec<Vec<Option<f64>>> = rows
        .iter()
        .map(|row| {
            std::iter::once(row.delta_m_value())
                .chain(columns.iter().map(|&c| row.stats[c].as_ref().map(|s| s.mean)))
                .collect()
        })
        .collect();
    let mut out: Vec<SettingImportance> = comparison
        .keys()
        .iter()
        .enumerate()
        .filter(|(k, _)| rows.iter().any(|row| row.values[*k] != rows[0].values[*k]))
        .map(|(k, setting)| {
            let levels = levels(&rows.iter().map(|row| row.values[k].clone()).collect::<Vec<_>>());
            let n_levels = levels.iter().collect::<std::collections::BTreeSet<_>>().len();
            let shares = (0..1 + columns.len())
                .map(|j| {
                    let pairs: Vec<(&str, f64)> = levels
                        .iter()
                        .zip(&values)
                        .filter_map(|(level, v)| Some((level.as_str(), v[j]?)))
                        .filter(|(_, v)| v.is_finite())
                        .collect();
                    eta_squared(&pairs)
                })
                .collect();
            SettingImportance { setting: setting.clone(), levels: n_levels, shares }
        })
        .collect();
    out.sort_by(|a, b| b.shares[0].unwrap_or(-1.0).total_cmp(&a.shares[0].unwrap_or(-1.0)));
    out
}

/// η² of values grouped by level: between-level sum of squares over the total.
pub fn eta_squared(pairs: &[(&str, f64)]) -> Option<f64> {
    if pairs.len() < 2 {
        return None;
    }
    let n = pairs.len() as f64;
    let mean = pairs.iter().map(|(_, v)| v).sum::<f64>() / n;
    let total: f64 = pairs.iter().map(|(_, v)| (v - mean).powi(2)).sum();
    if total <= 1e-12 * mean.abs().max(1.0).powi(2) {
        return None;
    }
    let mut by_level: BTreeMap<&str, (f64, usize)> = BTreeMap::new();
    for (level, v) in pairs {
        let entry = by_level.entry(level).or_insert((0.0, 0));
        *entry = (entry.0 + v, entry.1 + 1);
    }
    let between: f64 = by_level.values().map(|(sum, count)| *count as f64 * (sum / *count as f64 - mean).powi(2)).sum();
    Some((between / total).clamp(0.0, 1.0))
}

/// Each group's level of a setting, as text: its value, `-` when missing, or for a number
/// with more than 8 values the quartile bin it falls in (`q1` … `q4`).
fn levels(values: &[Option<ParamValue>]) -> Vec<String> {
    let numbers: Vec<f64> = values
        .iter()
        .filter_map(|v| match v {
            Some(ParamValue::Num(x)) => Some(*x),
            _ => None,
        })
        .collect();
    let mut distinct = numbers.clone();
    distinct.sort_by(f64::total_cmp);
    distinct.dedup();
    let binned = distinct.len() > 8;
    values
        .iter()
        .map(|v| match v {
            None => "-".to_string(),
            Some(ParamValue::Num(x)) if binned => {
                let rank = numbers.iter().filter(|y| *y < x).count();
                format!("q{}", 1 + 4 * rank / numbers.len())
            }
            Some(value) => value.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_two_by_two_grid_splits_its_variance_by_hand() {
        // y = 2a + [b = y]: the a levels' means are 1.5 ± 1, b's are 1 + 0.5 ± 0.5; total
        // variance (per group) 1 + 0.25, so a explains 0.8 and b 0.2.
        let cells = [("0", "x", 0.0), ("0", "y", 1.0), ("1", "x", 2.0), ("1", "y", 3.0)];
        let a: Vec<(&str, f64)> = cells.iter().map(|(a, _, y)| (*a, *y)).collect();
        let b: Vec<(&str, f64)> = cells.iter().map(|(_, b, y)| (*b, *y)).collect();
        assert!((eta_squared(&a).expect("a") - 0.8).abs() < 1e-12);
        assert!((eta_squared(&b).expect("b") - 0.2).abs() < 1e-12);
        // A pure interaction (y = a xor b) is in neither main effect.
        let xor = [("0", 0.0), ("0", 1.0), ("1", 1.0), ("1", 0.0)];
        assert_eq!(eta_squared(&xor), Some(0.0));
        assert_eq!(eta_squared(&[("0", 1.0), ("1", 1.0)]), None, "no variance");
        assert_eq!(eta_squared(&[("0", 1.0)]), None);
    }

    #[test]
    fn many_numbers_are_cut_into_quartiles_and_missing_is_a_level() {
        let values: Vec<Option<ParamValue>> = (0..12).map(|i| Some(ParamValue::Num(i as f64))).collect();
        let levels = levels(&values);
        assert_eq!(levels.iter().filter(|l| *l == "q1").count(), 3);
        assert_eq!(levels[11], "q4");
        let few = [Some(ParamValue::Num(0.5)), None, Some(ParamValue::Text("famo".into()))];
        assert_eq!(super::levels(&few), ["0.5", "-", "famo"]);
    }
}
