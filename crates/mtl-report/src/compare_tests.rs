use super::*;

fn key(task: &str, metric: &str) -> MetricKey {
    MetricKey { task: task.into(), split: "test".into(), metric: metric.into() }
}

/// A done run with settings and test metrics at its best epoch (val accuracy logged).
fn run(id: i64, strategy: &str, lambda: Option<f64>, seed: f64, metrics: &[(&str, &str, f64)]) -> RunRecord {
    let mut params = BTreeMap::from([
        ("strategy".to_string(), ParamValue::Text(strategy.into())),
        ("seed".to_string(), ParamValue::Num(seed)),
    ]);
    if let Some(lambda) = lambda {
        params.insert("lambda".into(), ParamValue::Num(lambda));
    }
    let best: BTreeMap<MetricKey, f64> = metrics.iter().map(|&(t, m, v)| (key(t, m), v)).collect();
    // The last epoch is worse everywhere: the comparison must read the best one.
    let last = best.iter().map(|(k, v)| (k.clone(), v - 0.5)).collect();
    RunRecord {
        id: RunId(id),
        experiment: "e".into(),
        status: RunStatus::Done,
        params,
        best_epoch: Some(3),
        best_metrics: best,
        final_epoch: Some(5),
        final_metrics: last,
        ..RunRecord::default()
    }
}

#[test]
fn groups_aggregate_over_seeds_at_the_best_epoch_with_delta_m_and_the_front() {
    let runs = vec![
        // Baselines: a accuracy (0.8 + 0.9)/2 = 0.85; b rmse 2.0 (one seed, the other run is b's).
        run(1, "single-task", None, 0.0, &[("a", "accuracy", 0.8)]),
        run(2, "single-task", None, 1.0, &[("a", "accuracy", 0.9)]),
        run(3, "single-task", None, 0.0, &[("b", "rmse", 2.0)]),
        // hard λ=1, three seeds: a 0.80, 0.85, 0.93 → mean 0.86, sample std
        //   √(((−0.06)² + (−0.01)² + 0.07²)/2) = √(0.0086/2) = 0.0655744;
        //   b 1.0, 2.0, 3.0 → mean 2, std 1.
        run(4, "hard", Some(1.0), 0.0, &[("a", "accuracy", 0.80), ("b", "rmse", 1.0)]),
        run(5, "hard", Some(1.0), 1.0, &[("a", "accuracy", 0.85), ("b", "rmse", 2.0)]),
        run(6, "hard", Some(1.0), 2.0, &[("a", "accuracy", 0.93), ("b", "rmse", 3.0)]),
        // hard λ=2: a 0.70, b 1.6: better on b, worse on a than λ=1 — also on the front.
        run(7, "hard", Some(2.0), 0.0, &[("a", "accuracy", 0.70), ("b", "rmse", 1.6)]),
        // hard λ=3: a 0.70, b 1.8: dominated by λ=2.
        run(8, "hard", Some(3.0), 0.0, &[("a", "accuracy", 0.70), ("b", "rmse", 1.8)]),
    ];
    let mut failed = run(9, "hard", Some(1.0), 3.0, &[("a", "accuracy", 0.0), ("b", "rmse", 9.0)]);
    failed.status = RunStatus::Failed;
    let runs: Vec<RunRecord> = runs.into_iter().chain([failed]).collect();
    let comparison = compare(&runs, &CompareSpec::by(&["strategy", "lambda"]));
    assert_eq!(comparison.columns, vec![key("a", "accuracy"), key("b", "rmse")]);
    assert_eq!(comparison.delta_metrics, vec!["accuracy", "rmse"]);
    let labels: Vec<String> = comparison
        .rows
        .iter()
        .map(|row| {
            row.values.iter().map(|v| v.as_ref().map_or("-".into(), |v| v.to_string())).collect::<Vec<_>>().join(" ")
        })
        .collect();
    assert_eq!(labels, ["hard 1", "hard 2", "hard 3", "single-task -"]);

    let hard1 = &comparison.rows[0];
    assert_eq!(hard1.runs, vec![RunId(4), RunId(5), RunId(6)], "the failed run is left out");
    let a = hard1.stats[0].expect("a");
    assert!((a.mean - 0.86).abs() < 1e-12 && (a.std - 0.0655744).abs() < 1e-6 && a.n == 3, "{a:?}");
    let b = hard1.stats[1].expect("b");
    assert!((b.mean - 2.0).abs() < 1e-12 && (b.std - 1.0).abs() < 1e-12 && b.n == 3, "{b:?}");
    // Δm: a (0.86 − 0.85)/0.85 = 0.0117647; b −(2 − 2)/2 = 0 → 100 · 0.0117647/2 = 0.588235.
    assert!((hard1.delta_m_value().expect("Δm") - 0.588235).abs() < 1e-6);
    // λ=2: a (0.7 − 0.85)/0.85 = −0.176471; b −(1.6 − 2)/2 = 0.2 → 100 · 0.023529/2 = 1.17647.
    assert!((comparison.rows[1].delta_m_value().expect("Δm") - 1.176471).abs() < 1e-6);
    let front: Vec<bool> = comparison.rows.iter().map(|r| r.pareto).collect();
    // single-task: a 0.85 < 0.86 and b 2.0 = 2.0 → dominated by λ=1.
    assert_eq!(front, [true, true, false, false]);
    assert!((comparison.rows[3].delta_m_value().expect("Δm")).abs() < 1e-12, "the baselines against themselves");
}

#[test]
fn a_group_missing_a_task_has_no_delta_m_and_no_baseline_means_none() {
    let runs = vec![
        run(1, "single-task", None, 0.0, &[("a", "accuracy", 0.8)]),
        run(2, "single-task", None, 0.0, &[("b", "accuracy", 0.5)]),
        run(3, "hard", Some(1.0), 0.0, &[("a", "accuracy", 0.9)]),
    ];
    let comparison = compare(&runs, &CompareSpec::by(&["strategy"]));
    assert_eq!(comparison.rows[0].delta_m_value(), None, "hard lacks task b");
    let without_baselines = compare(&runs[2..], &CompareSpec::by(&["strategy"]));
    assert_eq!(without_baselines.rows[0].delta_m_value(), None);
    // A task without a baseline: no Δm, rather than one over fewer tasks.
    let both = run(4, "hard", Some(1.0), 0.0, &[("a", "accuracy", 0.9), ("b", "accuracy", 0.6)]);
    let comparison = compare(&[runs[0].clone(), both.clone()], &CompareSpec::by(&["strategy"]));
    assert_eq!(comparison.rows[0].delta_m_value(), None, "b has no single-task run");
    // Baselines may come from runs a filter left out of the groups.
    let filtered = compare_against(&[both], &runs[..2], &CompareSpec::by(&["strategy"]));
    assert!(filtered.rows[0].delta_m_value().is_some_and(|d| d.is_finite()), "{filtered:?}");
}

#[test]
fn runs_without_a_best_epoch_are_compared_at_their_last() {
    let mut last_only = run(1, "hard", Some(1.0), 0.0, &[("a", "accuracy", 0.9)]);
    last_only.best_epoch = None;
    let comparison = compare(&[last_only], &CompareSpec::by(&["strategy"]));
    assert!((comparison.rows[0].stats[0].expect("a").mean - 0.4).abs() < 1e-12);
}

/// `run` with one more setting and a validation accuracy per task.
fn with(mut run: RunRecord, setting: &str, value: f64, val: &[(&str, f64)]) -> RunRecord {
    run.params.insert(setting.into(), ParamValue::Num(value));
    for &(task, v) in val {
        run.best_metrics.insert(MetricKey { task: task.into(), split: "val".into(), metric: "accuracy".into() }, v);
    }
    run
}

#[test]
fn means_carry_a_t_interval() {
    let runs = vec![
        run(4, "hard", Some(1.0), 0.0, &[("a", "accuracy", 0.80)]),
        run(5, "hard", Some(1.0), 1.0, &[("a", "accuracy", 0.85)]),
        run(6, "hard", Some(1.0), 2.0, &[("a", "accuracy", 0.93)]),
    ];
    let stats = compare(&runs, &CompareSpec::by(&["strategy"])).rows[0].stats[0].expect("a");
    // scipy: 0.86 ∓ t.ppf(0.975, 2) · 0.0655744/√3.
    let (low, high) = stats.ci95.expect("three seeds");
    assert!((low - 0.6971041966929696).abs() < 1e-9 && (high - 1.0228958033070303).abs() < 1e-9, "{stats:?}");
}

#[test]
fn runs_that_differ_in_another_setting_are_split_or_pooled_on_request() {
    // One experiment name run with epochs = 2, then epochs = 3: two seeds each.
    let runs = vec![
        with(run(1, "hard", Some(1.0), 0.0, &[("a", "accuracy", 0.80)]), "epochs", 2.0, &[]),
        with(run(2, "hard", Some(1.0), 1.0, &[("a", "accuracy", 0.82)]), "epochs", 2.0, &[]),
        with(run(3, "hard", Some(1.0), 0.0, &[("a", "accuracy", 0.90)]), "epochs", 3.0, &[]),
        with(run(4, "hard", Some(1.0), 1.0, &[("a", "accuracy", 0.92)]), "epochs", 3.0, &[]),
    ];
    let split = compare(&runs, &CompareSpec::by(&["strategy"]));
    assert_eq!(split.split_by, vec!["epochs"]);
    assert_eq!(split.keys(), vec!["strategy", "epochs"]);
    let n: Vec<usize> = split.rows.iter().map(|r| r.runs.len()).collect();
    assert_eq!(n, [2, 2], "never n = 4");
    assert!((split.rows[0].stats[0].expect("a").mean - 0.81).abs() < 1e-12);
    assert_eq!(split.rows[1].describe(&split.keys()), "strategy=hard, epochs=3");
    let pooled = compare(&runs, &CompareSpec { pool: true, ..CompareSpec::by(&["strategy"]) });
    assert_eq!((pooled.split_by.len(), pooled.pooled.clone()), (0, vec!["epochs".to_string()]));
    assert_eq!(pooled.rows.len(), 1);
    assert_eq!(pooled.rows[0].runs.len(), 4);
    // Seeds alone never split; a setting a run lacks does.
    let seeds_only = compare(&runs[..2], &CompareSpec::by(&["strategy"]));
    assert!(seeds_only.split_by.is_empty());
}

#[test]
fn a_picked_setting_is_chosen_on_validation_and_named() {
    // λ=1: val 0.7, test 0.95; λ=2: val 0.8, test 0.85 → λ=2, though its test is lower.
    let runs = vec![
        with(run(1, "hard", Some(1.0), 0.0, &[("a", "accuracy", 0.95)]), "x", 0.0, &[("a", 0.7)]),
        with(run(2, "hard", Some(2.0), 0.0, &[("a", "accuracy", 0.85)]), "x", 0.0, &[("a", 0.8)]),
        with(run(3, "hard", Some(2.0), 1.0, &[("a", "accuracy", 0.87)]), "x", 0.0, &[("a", 0.8)]),
    ];
    let spec = CompareSpec { pick: Some("lambda".into()), ..CompareSpec::by(&["strategy"]) };
    let comparison = compare(&runs, &spec);
    assert!(comparison.split_by.is_empty(), "λ is picked, not split");
    let row = &comparison.rows[0];
    assert_eq!((row.picked.clone(), row.candidates), (Some(ParamValue::Num(2.0)), 2));
    assert_eq!(row.runs, vec![RunId(2), RunId(3)]);
    assert!((row.stats[0].expect("a").mean - 0.86).abs() < 1e-12);
}

#[test]
fn groups_are_tested_against_single_task_and_the_best() {
    let base = |id, seed, v| run(id, "single-task", None, seed, &[("a", "accuracy", v)]);
    let runs = vec![
        base(1, 0.0, 0.80),
        base(2, 1.0, 0.81),
        base(3, 2.0, 0.79),
        // Far above the baseline: better; the best Δm%.
        run(4, "hard", Some(1.0), 0.0, &[("a", "accuracy", 0.90)]),
        run(5, "hard", Some(1.0), 1.0, &[("a", "accuracy", 0.91)]),
        run(6, "hard", Some(1.0), 2.0, &[("a", "accuracy", 0.92)]),
        // Noisy around the baseline: within noise of single-task, and of the best? No: paired
        // by seed, its differences to λ=1 are −0.1, −0.31, +0.05 (mean −0.12, spread 0.18).
        run(7, "hard", Some(2.0), 0.0, &[("a", "accuracy", 0.80)]),
        run(8, "hard", Some(2.0), 1.0, &[("a", "accuracy", 0.60)]),
        run(9, "hard", Some(2.0), 2.0, &[("a", "accuracy", 0.97)]),
    ];
    let comparison = compare(&runs, &CompareSpec::by(&["strategy", "lambda"]));
    let [hard1, hard2, single] = &comparison.rows[..] else { panic!("{comparison:?}") };
    assert_eq!(hard1.versus_single_task, vec![Some(Verdict::Better)]);
    assert_eq!(hard1.delta_m.as_ref().and_then(|d| d.verdict), Some(Verdict::Better));
    assert_eq!(hard1.standing, Some(Standing::Best));
    assert_eq!(hard2.versus_single_task, vec![Some(Verdict::WithinNoise)]);
    assert_eq!(hard2.delta_m.as_ref().and_then(|d| d.verdict), Some(Verdict::WithinNoise));
    assert_eq!(hard2.standing, Some(Standing::WithinNoiseOfBest));
    assert_eq!(single.versus_single_task, vec![None], "the baseline is not tested against itself");
}

#[test]
fn the_baseline_shares_the_groups_settings_however_they_are_grouped_or_filtered() {
    // An lr sweep: single-task and hard at lr 0.01 and 0.1, two seeds each.
    let lr = |run: RunRecord, lr: f64| with(run, "lr", lr, &[("a", 0.5)]);
    let runs = vec![
        lr(run(1, "single-task", None, 0.0, &[("a", "accuracy", 0.80)]), 0.01),
        lr(run(2, "single-task", None, 1.0, &[("a", "accuracy", 0.82)]), 0.01),
        lr(run(3, "single-task", None, 0.0, &[("a", "accuracy", 0.60)]), 0.1),
        lr(run(4, "single-task", None, 1.0, &[("a", "accuracy", 0.62)]), 0.1),
        lr(run(5, "hard", Some(1.0), 0.0, &[("a", "accuracy", 0.90)]), 0.01),
        lr(run(6, "hard", Some(1.0), 1.0, &[("a", "accuracy", 0.92)]), 0.01),
        lr(run(7, "hard", Some(1.0), 0.0, &[("a", "accuracy", 0.70)]), 0.1),
        lr(run(8, "hard", Some(1.0), 1.0, &[("a", "accuracy", 0.72)]), 0.1),
    ];
    let delta_of = |comparison: &Comparison, strategy: &str, lr: f64| {
        let row = comparison.rows.iter().find(|r| {
            r.values[0] == Some(ParamValue::Text(strategy.into()))
                && r.runs.iter().all(|id| runs[id.0 as usize - 1].params["lr"] == ParamValue::Num(lr))
        });
        row.and_then(|r| r.delta_m_value()).expect("Δm")
    };
    // lr = 0.01: (0.91 − 0.81)/0.81 = +12.3457%, against the lr = 0.01 baseline, in every view.
    let expected = 100.0 * (0.91 - 0.81) / 0.81;
    let split = compare(&runs, &CompareSpec::by(&["strategy"]));
    let grouped = compare(&runs, &CompareSpec::by(&["strategy", "lr"]));
    let filtered: Vec<RunRecord> = runs.iter().filter(|r| r.params["lr"] == ParamValue::Num(0.01)).cloned().collect();
    let filtered = compare_against(&filtered, &runs, &CompareSpec::by(&["strategy"]));
    for comparison in [&split, &grouped, &filtered] {
        assert!((delta_of(comparison, "hard", 0.01) - expected).abs() < 1e-9, "{comparison:?}");
    }
    assert!((delta_of(&grouped, "hard", 0.1) - 100.0 * (0.71 - 0.61) / 0.61).abs() < 1e-9);
    // A setting no single-task run shares: no Δm%, rather than one against other settings.
    let other = lr(run(9, "hard", Some(1.0), 0.0, &[("a", "accuracy", 0.9)]), 0.5);
    let alone = compare_against(&[other], &runs, &CompareSpec::by(&["strategy"]));
    assert_eq!(alone.rows[0].delta_m_value(), None);
}

#[test]
fn several_experiments_each_get_their_own_delta_m_and_front() {
    let mut runs = vec![
        run(1, "single-task", None, 0.0, &[("a", "accuracy", 0.8)]),
        run(2, "hard", Some(1.0), 0.0, &[("a", "accuracy", 0.9)]),
        run(3, "single-task", None, 0.0, &[("c", "accuracy", 0.5)]),
        run(4, "hard", Some(1.0), 0.0, &[("c", "accuracy", 0.4)]),
    ];
    for run in &mut runs[2..] {
        run.experiment = "other".into();
    }
    let comparison = compare(&runs, &CompareSpec::by(&["strategy"]));
    let deltas: Vec<(String, Option<f64>, bool)> =
        comparison.rows.iter().map(|r| (r.experiment.clone(), r.delta_m_value(), r.pareto)).collect();
    assert!((deltas[0].1.expect("e hard") - 12.5).abs() < 1e-9, "{deltas:?}");
    assert!((deltas[2].1.expect("other hard") - -20.0).abs() < 1e-9, "{deltas:?}");
    assert!(deltas[0].2 && deltas[3].2, "each experiment has its own front: {deltas:?}");
}

#[test]
fn a_pick_without_validation_says_it_chose_nothing() {
    let runs = vec![
        run(1, "hard", Some(1.0), 0.0, &[("a", "accuracy", 0.9)]),
        run(2, "hard", Some(2.0), 0.0, &[("a", "accuracy", 0.8)]),
    ];
    let comparison = compare(&runs, &CompareSpec { pick: Some("lambda".into()), ..CompareSpec::by(&["strategy"]) });
    let row = &comparison.rows[0];
    assert_eq!((row.picked.clone(), row.picked_without_validation), (Some(ParamValue::Num(1.0)), true));
}

#[test]
fn delta_m_over_classification_regression_and_depth_matches_a_hand_computation() {
    // Task digit (classification): accuracy, macro_f1. Task sum (regression): mae, rmse
    // (lower), r2. Task depth: abs_err, rel_err (lower), delta1 (higher). One seed each.
    let single = [
        run(1, "single-task", None, 0.0, &[("digit", "accuracy", 0.80), ("digit", "macro_f1", 0.75)]),
        run(2, "single-task", None, 0.0, &[("sum", "mae", 2.0), ("sum", "rmse", 2.5), ("sum", "r2", 0.50)]),
        run(
            3,
            "single-task",
            None,
            0.0,
            &[("depth", "abs_err", 0.40), ("depth", "rel_err", 0.20), ("depth", "delta1", 0.60)],
        ),
    ];
    let metrics = [
        ("digit", "accuracy", 0.88),
        ("digit", "macro_f1", 0.75),
        ("sum", "mae", 1.5),
        ("sum", "rmse", 3.0),
        ("sum", "r2", 0.60),
        ("depth", "abs_err", 0.50),
        ("depth", "rel_err", 0.10),
        ("depth", "delta1", 0.66),
    ];
    let runs: Vec<RunRecord> = single.into_iter().chain([run(4, "hard", Some(1.0), 0.0, &metrics)]).collect();
    // Per metric, (m − b)/b, sign flipped where lower is better (R² and depth's δ thresholds
    // are left out by default, as LibMTL's NYUv2 Δm%):
    //   digit: accuracy +0.10, macro_f1 0 → task mean +0.05;
    //   sum: mae −(1.5 − 2)/2 = +0.25, rmse −(3 − 2.5)/2.5 = −0.20 → +0.025;
    //   depth: abs_err −(0.5 − 0.4)/0.4 = −0.25, rel_err −(0.1 − 0.2)/0.2 = +0.5 → +0.125.
    // Δm% = 100 · (0.05 + 0.025 + 0.125) / 3 = 20/3 = 6.6667…
    let comparison = compare(&runs, &CompareSpec::by(&["strategy"]));
    let hard = comparison.rows.iter().find(|r| !r.baseline).expect("the hard group");
    let delta = hard.delta_m.as_ref().expect("Δm%").value;
    assert!((delta - 20.0 / 3.0).abs() < 1e-9, "{delta}");
    assert_eq!(comparison.delta_metrics, ["abs_err", "accuracy", "macro_f1", "mae", "rel_err", "rmse"]);
    // Asked for, R² (+0.20) joins sum's terms, (0.25 − 0.20 + 0.20)/3, and δ₁ (+0.10) depth's,
    // (−0.25 + 0.5 + 0.10)/3: Δm% = 100 · (0.05 + 0.25/3 + 0.35/3) / 3 = 25/3.
    let mut metrics = comparison.delta_metrics.clone();
    metrics.extend(["r2".to_string(), "delta1".to_string()]);
    let asked = compare(&runs, &CompareSpec { delta_metrics: Some(metrics), ..CompareSpec::by(&["strategy"]) });
    let hard = asked.rows.iter().find(|r| !r.baseline).expect("the hard group");
    assert!((hard.delta_m.as_ref().expect("Δm%").value - 25.0 / 3.0).abs() < 1e-9);
}
