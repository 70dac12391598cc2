//! Hand cases of the pruning rules.

use std::collections::BTreeMap;

use mtl_store::{MetricKey, Selection};

use super::*;

fn spec(rule: PruneRule, metric: PruneMetric) -> PruneSpec {
    let min_trials = rule.default_min_trials(3);
    PruneSpec { rule, metric, grace: 1, reduction: 3, min_trials }
}

fn val(task: &str, metric: &str, value: f64) -> (MetricKey, f64) {
    (MetricKey { task: task.into(), split: "val".into(), metric: metric.into() }, value)
}

#[test]
fn median_prunes_below_the_median_of_the_others_at_that_epoch() {
    let median = spec(PruneRule::Median, PruneMetric::Score);
    let others = [0.5, 0.8, 0.6, 0.7];
    assert_eq!(
        decide(&median, 3, 0.6, &others).as_deref(),
        Some("val score 0.6000 below the median 0.6500 of 4 trials at epoch 3")
    );
    assert_eq!(decide(&median, 3, 0.65, &others), None, "at the median is kept");
    assert_eq!(decide(&median, 3, 0.9, &others), None);
    assert_eq!(decide(&median, 3, 0.1, &others[..3]), None, "fewer than min_trials = 4 others: no decision");
    // Odd count: the middle value.
    assert!(decide(&median, 3, 0.69, &[0.5, 0.7, 0.9, 0.8, 0.1]).is_some());
    assert!(decide(&median, 3, 0.7, &[0.5, 0.7, 0.9, 0.8, 0.1]).is_none());
}

#[test]
fn a_lower_is_better_metric_prunes_above_the_median() {
    let loss = PruneMetric::Task { task: "digits".into(), metric: "loss".into() };
    let median = spec(PruneRule::Median, loss);
    let others = [0.2, 0.3, 0.4, 0.5];
    assert_eq!(
        decide(&median, 2, 0.36, &others).as_deref(),
        Some("val digits loss 0.3600 above the median 0.3500 of 4 trials at epoch 2")
    );
    assert_eq!(decide(&median, 2, 0.34, &others), None);
}

#[test]
fn delta_m_reasons_carry_the_sign() {
    let median = spec(PruneRule::Median, PruneMetric::DeltaM);
    let reason = decide(&median, 3, -4.1, &[-0.8, -0.5, -2.0, 1.0]).expect("pruned");
    assert_eq!(reason, "val Δm% −4.10 below the median −0.65 of 4 trials at epoch 3");
}

#[test]
fn asha_keeps_the_top_third_of_those_at_the_rung() {
    let asha = spec(PruneRule::Asha, PruneMetric::Score);
    let others = [0.9, 0.8, 0.7, 0.4, 0.3];
    // n = 6, keep ⌊6/3⌋ = 2: pruned when two others are strictly better.
    assert_eq!(
        decide(&asha, 3, 0.75, &others).as_deref(),
        Some("val score 0.7500 not in the top 2 of 6 trials at epoch 3 (reduction 3)")
    );
    assert_eq!(decide(&asha, 3, 0.85, &others), None);
    assert_eq!(decide(&asha, 3, 0.8, &others), None, "a tie is not ahead");
    // n = 3 (min_trials = 2 others): keep 1.
    assert!(decide(&asha, 1, 0.5, &[0.6, 0.1]).is_some());
    assert!(decide(&asha, 1, 0.7, &[0.6, 0.1]).is_none());
    assert!(decide(&asha, 1, 0.0, &[0.6]).is_none(), "one other is below min_trials");
}

#[test]
fn decisions_do_not_depend_on_the_order_of_the_others() {
    let values = [0.31, 0.77, 0.52, 0.12, 0.95, 0.64, 0.48];
    for rule in [PruneRule::Median, PruneRule::Asha] {
        let s = spec(rule, PruneMetric::Score);
        for own in [0.1, 0.5, 0.6, 0.9] {
            let mut reversed = values;
            reversed.reverse();
            let mut rotated = values;
            rotated.rotate_left(3);
            let first = decide(&s, 2, own, &values);
            assert_eq!(first, decide(&s, 2, own, &reversed));
            assert_eq!(first, decide(&s, 2, own, &rotated));
        }
    }
}

#[test]
fn non_finite_values_decide_nothing_and_count_for_nothing() {
    let median = spec(PruneRule::Median, PruneMetric::Score);
    assert_eq!(decide(&median, 2, f64::NAN, &[0.5, 0.6, 0.7, 0.8]), None);
    assert_eq!(decide(&median, 2, 0.1, &[0.5, 0.6, 0.7, f64::NAN]), None, "3 finite others < 4");
}

#[test]
fn epochs_judged_by_each_rule() {
    let key = "0000000400000000";
    let mut median = spec(PruneRule::Median, PruneMetric::Score);
    median.grace = 2;
    let judged_key = |s: &PruneSpec, key: &str, epochs: u32| {
        (1..=epochs).filter(|&e| decides_at(s, key, epochs, e)).collect::<Vec<_>>()
    };
    let judged = |s: &PruneSpec, epochs: u32| judged_key(s, key, epochs);
    assert_eq!(judged(&median, 5), [2, 3, 4], "from grace on, never at the last epoch");
    let asha = spec(PruneRule::Asha, PruneMetric::Score);
    assert_eq!(judged(&asha, 10), [1, 3, 9]);
    assert_eq!(judged(&asha, 9), [1, 3], "rung 9 is the last epoch");
    let mut asha2 = asha.clone();
    asha2.grace = 2;
    asha2.reduction = 2;
    assert_eq!(judged(&asha2, 20), [2, 4, 8, 16]);
    // Hyperband, grace 1, η 3, 10 epochs: s_max = 2, so 3 brackets; 0x00000004 % 3 = 1,
    // whose rungs start at 3.
    let hyperband = spec(PruneRule::Hyperband, PruneMetric::Score);
    assert_eq!(bracket(&hyperband, key, 10), 1);
    assert_eq!(judged(&hyperband, 10), [3, 9]);
    assert_eq!(bracket(&hyperband, "0000000300000000", 10), 0);
    assert_eq!(judged_key(&hyperband, "0000000300000000", 10), [1, 3, 9], "bracket 0 is ASHA");
    assert_eq!(bracket(&hyperband, "0000000500000000", 10), 2);
    assert_eq!(judged_key(&hyperband, "0000000500000000", 10), [9]);
}

#[test]
fn objectives_from_an_epochs_points() {
    let selection = Selection::new(vec![("a".into(), "accuracy".into()), ("b".into(), "mae".into())]);
    let tasks = ["a".to_string(), "b".to_string()];
    let points = [val("a", "accuracy", 0.9), val("a", "loss", 0.3), val("b", "mae", 0.5), val("b", "loss", 0.2)];
    let none = BTreeMap::new();
    // Score: mean of accuracy and −mae.
    let score = objective(&PruneMetric::Score, &selection, &tasks, &none, &points).expect("score");
    assert!((score - (0.9 - 0.5) / 2.0).abs() < 1e-12);
    let task = PruneMetric::Task { task: "b".into(), metric: "loss".into() };
    assert_eq!(objective(&task, &selection, &tasks, &none, &points), Some(0.2));
    // Δm%: a +12.5% (0.9 against 0.8), b −25% (mae 0.5 against 0.4): mean −6.25.
    let baselines: BTreeMap<MetricKey, f64> = [val("a", "accuracy", 0.8), val("b", "mae", 0.4)].into_iter().collect();
    let delta = objective(&PruneMetric::DeltaM, &selection, &tasks, &baselines, &points).expect("Δm%");
    assert!((delta - -6.25).abs() < 1e-12, "{delta}");
    let partial: BTreeMap<MetricKey, f64> = [val("a", "accuracy", 0.8)].into_iter().collect();
    assert_eq!(objective(&PruneMetric::DeltaM, &selection, &tasks, &partial, &points), None, "a baseline missing");
}
