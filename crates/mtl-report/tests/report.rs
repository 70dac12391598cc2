//! Builds a real results database through mtl-store, renders the report and
//! checks the files. Set `MTL_REPORT_SAMPLE_DIR` to keep the full report of
//! the sweep fixture there for a look.

use std::path::Path;

use mtl_report::compare::compare;
use mtl_report::importance::{importance, importance_spec, objectives};
use mtl_report::{write_report, ReportError, ReportOptions, ReportSummary};
use mtl_store::{DiagnosticPoint, MetricPoint, NewRun, ParamValue, RunId, RunStatus, Store};

const SWEEP: &str = "shapes+reviews λ sweep";
const SMOKE: &str = "smoke";
const STRATEGIES: &str = "strategy comparison";
const EPOCHS: u32 = 5;

/// One run of `experiment` with static weighting (see [`log_weighted_run`]).
fn log_run(store: &mut Store, experiment: &str, strategy: &str, lambda: Option<f64>, seed: u32, tasks: &[&str]) {
    log_weighted_run(store, experiment, strategy, "static", lambda, seed, tasks);
}

/// One run of `experiment` with the runner's param conventions; logs `EPOCHS`
/// epochs of made-up but plausible metrics for `tasks`.
fn log_weighted_run(
    store: &mut Store,
    experiment: &str,
    strategy: &str,
    weighting: &str,
    lambda: Option<f64>,
    seed: u32,
    tasks: &[&str],
) -> RunId {
    let experiment_id = store.experiment(experiment).expect("experiment");
    let mut params = vec![
        ("strategy".to_string(), ParamValue::Text(strategy.into())),
        ("weighting".to_string(), ParamValue::Text(weighting.into())),
        ("seed".to_string(), ParamValue::Num(f64::from(seed))),
        ("lr".to_string(), ParamValue::Num(0.001)),
        ("epochs".to_string(), ParamValue::Num(f64::from(EPOCHS))),
        ("batch_size".to_string(), ParamValue::Num(64.0)),
    ];
    if let Some(lambda) = lambda {
        params.push(("lambda".to_string(), ParamValue::Num(lambda)));
    }
    let trial_key = format!("{strategy}-{weighting}-{lambda:?}-{seed}-{}", tasks.join("+"));
    let new_run = NewRun {
        experiment: experiment_id,
        trial_key: &trial_key,
        settings_json: "{}",
        params: &params,
        provenance: &Default::default(),
    };
    let run = store.begin_run(&new_run).expect("begin run");
    // Set once the network is built, as the runner does; single-task differs by task.
    let n_parameters = match (strategy, tasks[0]) {
        ("single-task", "shapes") => 12_000.0,
        ("single-task", _) => 9_000.0,
        ("hard", _) => 15_000.0,
        _ => 24_000.0,
    };
    store.set_param(run, "n_parameters", &ParamValue::Num(n_parameters)).expect("set n_parameters");
    for epoch in 1..=EPOCHS {
        let progress = f64::from(epoch) / f64::from(EPOCHS);
        let mut points = Vec::new();
        for (task_index, task) in tasks.iter().enumerate() {
            // Sharing helps most near λ = 1.5 in this fixture; seeds add a little spread.
            let sharing_gain =
                lambda.map_or(0.0, |lambda: f64| 0.06 * (-(lambda.ln() - 0.4).powi(2) / 2.0).exp() - 0.02);
            let seed_noise = 0.012 * (f64::from(seed) - 1.0) * if task_index == 0 { 1.0 } else { -0.7 };
            let accuracy = 0.62 + 0.2 * progress + sharing_gain + seed_noise - 0.05 * task_index as f64;
            let loss = 1.6 * (1.0 - 0.7 * progress) - sharing_gain;
            points.push(MetricPoint::new(task, "train", "loss", loss * 0.9));
            points.push(MetricPoint::new(task, "train", "accuracy", accuracy + 0.03));
            for split in ["val", "test"] {
                points.push(MetricPoint::new(task, split, "loss", loss));
                points.push(MetricPoint::new(task, split, "accuracy", accuracy));
                points.push(MetricPoint::new(task, split, "macro_f1", accuracy - 0.02));
            }
        }
        store.log_epoch(run, epoch, &points).expect("log epoch");
    }
    store.finish_run(run, RunStatus::Done, None).expect("finish run");
    run
}

/// The sweep (single-task baselines, hard sharing over 5 λ, 3 seeds, one
/// failed run) and a small second experiment.
fn fixture_store(path: &Path) -> Store {
    let mut store = Store::open(path).expect("open store");
    for seed in 0..3 {
        for task in ["shapes", "reviews"] {
            log_run(&mut store, SWEEP, "single-task", None, seed, &[task]);
        }
        for lambda in [0.25, 0.5, 1.0, 2.0, 4.0] {
            log_run(&mut store, SWEEP, "hard", Some(lambda), seed, &["shapes", "reviews"]);
        }
    }
    let experiment_id = store.experiment(SWEEP).expect("experiment");
    let params = [("strategy".to_string(), ParamValue::Text("hard".into())), ("lambda".into(), ParamValue::Num(8.0))];
    let new_run = NewRun {
        experiment: experiment_id,
        trial_key: "failed",
        settings_json: "{}",
        params: &params,
        provenance: &Default::default(),
    };
    let failed = store.begin_run(&new_run).expect("begin run");
    store.finish_run(failed, RunStatus::Failed, Some("loss became NaN at epoch 2")).expect("finish run");
    for seed in 0..2 {
        log_run(&mut store, SMOKE, "hard", Some(1.0), seed, &["digits", "sentiment"]);
    }
    store
}

fn check_files(summary: &ReportSummary, expected_chart_stems: &[&str]) {
    let index = std::fs::read_to_string(&summary.index).expect("index.html readable");
    let mut expected_files: Vec<String> =
        expected_chart_stems.iter().flat_map(|stem| [format!("{stem}.png"), format!("{stem}.svg")]).collect();
    expected_files.sort();
    let mut got_files: Vec<String> =
        summary.charts.iter().map(|path| path.file_name().expect("file name").to_string_lossy().into_owned()).collect();
    got_files.sort();
    assert_eq!(got_files, expected_files, "chart files");
    for chart in &summary.charts {
        let bytes = std::fs::read(chart).unwrap_or_else(|error| panic!("reading {}: {error}", chart.display()));
        let name = chart.file_name().expect("file name").to_string_lossy();
        if name.ends_with(".png") {
            assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "{name} is not a PNG");
            assert!(bytes.len() > 20_000, "{name} is only {} bytes", bytes.len());
            assert!(index.contains(&format!("<img src=\"{name}\"")), "index.html lacks {name}");
        } else {
            assert!(String::from_utf8_lossy(&bytes).contains("<svg"), "{name} is not an SVG");
            assert!(bytes.len() > 2_000, "{name} is only {} bytes", bytes.len());
            assert!(index.contains(&format!("<a href=\"{name}\">")), "index.html lacks a link to {name}");
        }
    }
}

#[test]
fn report_of_every_experiment_writes_index_and_charts() {
    let temp = tempfile::tempdir().expect("temp dir");
    let store = fixture_store(&temp.path().join("mtl.db"));
    let out_dir = match std::env::var_os("MTL_REPORT_SAMPLE_DIR") {
        Some(dir) => dir.into(),
        None => temp.path().join("nested/report"),
    };
    let summary = write_report(&store, &ReportOptions { experiment: None, out_dir: out_dir.clone() }).expect("report");

    assert_eq!(summary.index, out_dir.join("index.html"));
    assert_eq!(summary.n_runs, 6 + 15 + 1 + 2);
    check_files(
        &summary,
        &[
            "shapes-reviews-sweep-strategies",
            "shapes-reviews-sweep-delta-m",
            "shapes-reviews-sweep-importance",
            "shapes-reviews-sweep-pareto",
            "shapes-reviews-sweep-reviews-test-accuracy-vs-lambda",
            "shapes-reviews-sweep-reviews-learning-curves",
            "shapes-reviews-sweep-shapes-test-accuracy-vs-lambda",
            "shapes-reviews-sweep-shapes-learning-curves",
            // smoke has one λ: no chart against λ (the page says why).
            "smoke-pareto",
            "smoke-digits-learning-curves",
            "smoke-sentiment-learning-curves",
        ],
    );
    let index = std::fs::read_to_string(&summary.index).expect("index.html readable");
    for expected in
        ["<h2>shapes+reviews λ sweep</h2>", "<h2>smoke</h2>", "loss became NaN at epoch 2", "shapes test macro-F1"]
    {
        assert!(index.contains(expected), "index.html lacks {expected:?}");
    }
    assert!(!index.contains("http://") && !index.contains("https://"), "index.html must not need the network");
}

#[test]
fn report_of_one_experiment_has_only_its_charts() {
    let temp = tempfile::tempdir().expect("temp dir");
    let store = fixture_store(&temp.path().join("mtl.db"));
    let options = ReportOptions { experiment: Some(SMOKE.into()), out_dir: temp.path().join("report") };
    let summary = write_report(&store, &options).expect("report");
    assert_eq!(summary.n_runs, 2);
    check_files(&summary, &["smoke-pareto", "smoke-digits-learning-curves", "smoke-sentiment-learning-curves"]);
    let index = std::fs::read_to_string(&summary.index).expect("index.html readable");
    for task in ["digits", "sentiment"] {
        let why = format!("<li>{task}: test accuracy vs λ: every multi-task run has λ = 1: a chart against λ needs");
        assert!(index.contains(&why), "index.html lacks {why:?}");
    }
}

#[test]
fn strategy_comparison_chart_and_table_come_first() {
    let temp = tempfile::tempdir().expect("temp dir");
    let mut store = Store::open(&temp.path().join("mtl.db")).expect("open store");
    for seed in 0..2 {
        for task in ["shapes", "reviews"] {
            log_run(&mut store, STRATEGIES, "single-task", None, seed, &[task]);
        }
        for lambda in [0.5, 2.0] {
            log_run(&mut store, STRATEGIES, "hard", Some(lambda), seed, &["shapes", "reviews"]);
        }
        log_run(&mut store, STRATEGIES, "soft", Some(1.0), seed, &["shapes", "reviews"]);
    }
    let out_dir = temp.path().join("report");
    let summary = write_report(&store, &ReportOptions { experiment: None, out_dir: out_dir.clone() }).expect("report");
    let stem = "strategy-comparison-strategies";
    let mut expected_stems: Vec<String> = vec![stem.to_string()];
    expected_stems.extend(["delta-m", "importance", "pareto"].map(|chart| format!("strategy-comparison-{chart}")));
    for task in ["reviews", "shapes"] {
        for chart in ["test-accuracy-vs-lambda", "learning-curves"] {
            expected_stems.push(format!("strategy-comparison-{task}-{chart}"));
        }
    }
    check_files(&summary, &expected_stems.iter().map(String::as_str).collect::<Vec<_>>());

    // Validation equals test in the fixture; its sharing gain
    // 0.06·exp(−(ln λ − 0.4)²/2) − 0.02 is 0.0130 at λ=0.5 and 0.0375 at λ=2, so hard gets λ=2.
    let svg = std::fs::read_to_string(out_dir.join(format!("{stem}.svg"))).expect("svg readable");
    for label in ["hard λ=2", "soft λ=1", "single-task: shapes", "single-task: reviews"] {
        assert!(svg.contains(label), "{stem}.svg lacks {label:?}");
    }
    assert!(!svg.contains("hard λ=0.5"), "{stem}.svg shows the λ that was not chosen");

    let index = std::fs::read_to_string(&summary.index).expect("index.html readable");
    let first_figure = index.find("<figure>").expect("a figure");
    assert!(index[first_figure..].starts_with(&format!("<figure><img src=\"{stem}.png\"")), "strategies chart first");
    // Accuracy rises every epoch, so each run's result (its best validation epoch) is its last:
    // accuracy = 0.82 + gain(λ) + 0.012·(seed − 1)·(1 for the first task, −0.7 for the second)
    // − 0.05·task_index. single-task trains one task per run (index 0, no gain): 0.808, 0.820 →
    // mean 0.8140, 95% interval ± t(0.975, 1)·0.012/2 = ±0.0762 (scipy: [0.7378, 0.8902]); the
    // first run (shapes, seed 0) has 12000 parameters.
    // soft λ=1, gain 0.0353870: shapes 0.843387, 0.855387 → 0.8494 [0.7731, 0.9256], Welch p = 0.053
    // against single-task: ≈; reviews 0.813787, 0.805387 → 0.8096 [0.7562, 0.8630], p = 0.61: ≈.
    // Δm% over accuracy and macro-F1 (accuracy − 0.02): shapes (0.043473 + 0.044568)/2, reviews
    // (−0.005421 − 0.005558)/2 → 100·(0.044020 − 0.005490)/2 = +1.93, within noise. hard λ=2 has
    // the higher gain (0.0375) with the same seed noise, so soft is below it by the same amount
    // on every seed: an exact difference (paired t-test, p = 0).
    for expected in [
        "<thead><tr><th>method</th><th>λ</th><th>n</th><th>reviews test accuracy</th><th>shapes test accuracy</th>\
         <th>Δm%</th><th>vs best</th><th>parameters</th></tr></thead>",
        "<tr><td class=\"text\">single-task</td><td class=\"text\">–</td><td>4</td><td>0.8140 [0.7378, 0.8902]</td>\
         <td>0.8140 [0.7378, 0.8902]</td>",
        "<tr><td class=\"text\">soft</td><td class=\"text\">1</td><td>2</td><td>0.8096 [0.7562, 0.8630] ≈</td>\
         <td>0.8494 [0.7731, 0.9256] ≈</td><td>+1.93 [",
        "≈</td><td class=\"text\">below best</td><td>24000</td></tr>",
    ] {
        assert!(index.contains(expected), "index.html lacks {expected:?}");
    }
    assert!(!index.contains("Weighting methods"), "one weighting method needs no comparison of methods");
    let rows: Vec<&str> =
        index.lines().filter(|line| line.starts_with("<tr><td class=\"text\">") && !line.contains("<a href")).collect();
    let methods: Vec<&str> = rows.iter().filter_map(|row| row.split(['>', '<']).nth(4)).collect();
    assert_eq!(methods, ["single-task", "hard", "soft"], "strategy table rows");
}

#[test]
fn weighting_methods_get_diagnostic_charts_and_a_comparison_table() {
    const WEIGHTING: &str = "weighting comparison";
    const STEPS_PER_EPOCH: u64 = 100;
    let temp = tempfile::tempdir().expect("temp dir");
    let mut store = Store::open(&temp.path().join("mtl.db")).expect("open store");
    for seed in 0..2 {
        for (weighting, lambda) in [("static", Some(0.5)), ("pcgrad", None)] {
            let run = log_weighted_run(&mut store, WEIGHTING, "hard", weighting, lambda, seed, &["shapes", "reviews"]);
            // static: 10 and 12 ms per step; pcgrad: 20 and 23 ms.
            let train_seconds = match weighting {
                "static" => 5.0 + f64::from(seed),
                _ => 10.0 + 1.5 * f64::from(seed),
            };
            let steps = STEPS_PER_EPOCH * u64::from(EPOCHS);
            store.set_param(run, "train_seconds", &ParamValue::Num(train_seconds)).expect("set train_seconds");
            store.set_param(run, "steps", &ParamValue::Num(steps as f64)).expect("set steps");
            for epoch in 1..=EPOCHS {
                let progress = f64::from(epoch) / f64::from(EPOCHS);
                // static keeps [1, λ]; pcgrad's weights drift apart, faster for seed 1.
                let shapes_weight = lambda.map_or(1.0 + 0.2 * progress * f64::from(seed + 1), |_| 1.0);
                let reviews_weight = lambda.unwrap_or(2.0 - shapes_weight);
                let cosine = 0.3 - 0.5 * progress - 0.1 * f64::from(seed) + lambda.map_or(0.0, |_| 0.4);
                let point = |name: &str, task: &str, other: &str, value: f64| DiagnosticPoint {
                    name: name.into(),
                    task: task.into(),
                    other: other.into(),
                    value,
                };
                let points = [
                    point("weight", "shapes", "", shapes_weight),
                    point("weight", "reviews", "", reviews_weight),
                    point("grad_norm", "shapes", "", 2.0),
                    point("grad_cosine", "shapes", "reviews", cosine),
                ];
                let step = STEPS_PER_EPOCH * u64::from(epoch);
                store.log_diagnostics(run, epoch, step, &points).expect("log diagnostics");
            }
        }
    }
    let out_dir = temp.path().join("report");
    let summary = write_report(&store, &ReportOptions { experiment: None, out_dir: out_dir.clone() }).expect("report");
    let mut expected_stems: Vec<String> = ["strategies", "importance", "pareto", "task-weights", "gradient-cosine"]
        .iter()
        .map(|chart| format!("weighting-comparison-{chart}"))
        .collect();
    // static has one λ and pcgrad none: no chart against λ.
    for task in ["reviews", "shapes"] {
        expected_stems.push(format!("weighting-comparison-{task}-learning-curves"));
    }
    check_files(&summary, &expected_stems.iter().map(String::as_str).collect::<Vec<_>>());
    for stem in ["weighting-comparison-task-weights", "weighting-comparison-gradient-cosine"] {
        let svg = std::fs::read_to_string(out_dir.join(format!("{stem}.svg"))).expect("svg readable");
        for label in ["hard, static λ=0.5", "hard, pcgrad"] {
            assert!(svg.contains(label), "{stem}.svg lacks {label:?}");
        }
    }

    let index = std::fs::read_to_string(&summary.index).expect("index.html readable");
    // The diagnostic charts follow the strategy chart and its tables, before the per-task charts.
    let position = |text: &str| index.find(text).unwrap_or_else(|| panic!("index.html lacks {text:?}"));
    assert!(position("weighting-comparison-strategies.png") < position("<h3>Weighting methods</h3>"));
    assert!(position("<h3>Weighting methods</h3>") < position("weighting-comparison-task-weights.png"));
    assert!(position("weighting-comparison-task-weights.png") < position("weighting-comparison-gradient-cosine.png"));
    assert!(position("weighting-comparison-gradient-cosine.png") < position("weighting-comparison-reviews-learning"));
    assert!(position("<li>reviews: test accuracy vs λ: every multi-task run has λ = 0.5") < position("<h3>Runs</h3>"));
    // Final accuracy as in `strategy_comparison_chart_and_table_come_first`, gain 0.0130 for
    // static λ=0.5 and none for pcgrad (no λ): static shapes 0.821, 0.833 → 0.8270 ± 0.0085;
    // reviews 0.7914, 0.7830 → 0.7872 ± 0.0059; pcgrad shapes 0.808, 0.820 → 0.8140 ± 0.0085;
    // reviews 0.7784, 0.7700 → 0.7742 ± 0.0059; shown as mean [95% interval] (scipy: static
    // [0.7338, 0.8406] and [0.7508, 0.9032], pcgrad [0.7208, 0.8276] and [0.7378, 0.8902]). Time per step: static (5/500 + 6/500) / 2 = 11 ms, pcgrad (10/500 + 11.5/500) / 2
    // = 21.5 ms → 21.5 / 11 = 1.95×. Final weights (epoch 5): static [1, 0.5]; pcgrad shapes
    // mean(1.2, 1.4) = 1.3, reviews mean(0.8, 0.6) = 0.7. Final cosine 0.3 − 0.5 − 0.1·seed (+ 0.4 for
    // static): pcgrad mean(−0.2, −0.3) = −0.25, static 0.15.
    for expected in [
        "<thead><tr><th>method</th><th>λ</th><th>reviews test accuracy</th><th>shapes test accuracy</th>\
         <th>time per step (ms)</th><th>relative to static</th><th>reviews final weight</th>\
         <th>shapes final weight</th><th>shapes · reviews final cosine</th></tr></thead>",
        "<tr><td class=\"text\">hard, static</td><td>0.5</td><td>0.7872 [0.7338, 0.8406]</td>\
         <td>0.8270 [0.7508, 0.9032]</td><td>11.00</td><td>1.00×</td><td>0.500</td><td>1.000</td><td>0.150</td></tr>",
        "<tr><td class=\"text\">hard, pcgrad</td><td>–</td><td>0.7742 [0.7208, 0.8276]</td>\
         <td>0.8140 [0.7378, 0.8902]</td><td>21.50</td><td>1.95×</td><td>0.700</td><td>1.300</td><td>-0.250</td></tr>",
    ] {
        assert!(index.contains(expected), "index.html lacks {expected:?}");
    }
}

#[test]
fn importance_chart_ranks_the_settings_as_mtl_importance_does() {
    const SETTINGS: &str = "settings sweep";
    let temp = tempfile::tempdir().expect("temp dir");
    let mut store = Store::open(&temp.path().join("mtl.db")).expect("open store");
    for seed in 0..2 {
        for task in ["shapes", "reviews"] {
            log_run(&mut store, SETTINGS, "single-task", None, seed, &[task]);
        }
        for strategy in ["hard", "soft"] {
            for lambda in [0.5, 2.0] {
                log_run(&mut store, SETTINGS, strategy, Some(lambda), seed, &["shapes", "reviews"]);
            }
        }
        // One multi-task seed group: nothing to rank, no chart.
        log_run(&mut store, SMOKE, "hard", Some(1.0), seed, &["digits", "sentiment"]);
    }
    let out_dir = temp.path().join("report");
    let summary = write_report(&store, &ReportOptions { experiment: None, out_dir: out_dir.clone() }).expect("report");
    let mut expected_stems: Vec<String> = ["strategies", "delta-m", "importance", "pareto"]
        .iter()
        .map(|chart| format!("settings-sweep-{chart}"))
        .collect();
    for task in ["reviews", "shapes"] {
        for chart in ["test-accuracy-vs-lambda", "learning-curves"] {
            expected_stems.push(format!("settings-sweep-{task}-{chart}"));
        }
    }
    expected_stems
        .extend(["smoke-pareto", "smoke-digits-learning-curves", "smoke-sentiment-learning-curves"].map(String::from));
    check_files(&summary, &expected_stems.iter().map(String::as_str).collect::<Vec<_>>());

    // `mtl importance --experiment "settings sweep"`: the same function of the same comparison.
    let runs = store.runs(Some(SETTINGS)).expect("runs");
    let known = runs.iter().flat_map(|run| run.params.keys().cloned()).collect();
    let comparison = compare(&runs, &importance_spec(&known));
    let (ranked, objectives) = (importance(&comparison), objectives(&comparison));
    // Accuracy and macro-F1 move with λ (the fixture's sharing gain) and the seed, which every
    // group averages alike: λ explains all of the variance across the 4 groups, strategy none.
    let settings: Vec<&str> = ranked.iter().map(|s| s.setting.as_str()).collect();
    assert_eq!(settings, ["lambda", "strategy"]);
    assert_eq!(objectives.len(), 5, "Δm% and accuracy and macro-F1 of two tasks: {objectives:?}");
    for (setting, expected) in ranked.iter().zip([1.0, 0.0]) {
        assert!(setting.shares.iter().all(|s| s.is_some_and(|s| (s - expected).abs() < 1e-9)), "{setting:?}");
    }
    let svg = std::fs::read_to_string(out_dir.join("settings-sweep-importance.svg")).expect("svg readable");
    let texts: Vec<&str> =
        svg.split("</text>").filter_map(|part| Some(part[part.rfind("<text")?..].split_once('>')?.1.trim())).collect();
    for text in ["lambda", "strategy", "2 values", "Δm%", "shapes test accuracy", "share of variance explained (η²)"]
    {
        assert!(texts.contains(&text), "the importance chart lacks {text:?}: {texts:?}");
    }
    // Each bar's tooltip holds the number it draws.
    for setting in &ranked {
        for (objective, share) in objectives.iter().zip(&setting.shares) {
            let label = if objective == "delta_m" { "Δm%".to_string() } else { objective.replace('.', " ") };
            let share = share.expect("a share");
            let tooltip = format!("{} ({} values): {label} η² = {share:.4}", setting.setting, setting.levels);
            assert!(svg.contains(&tooltip), "the importance chart lacks {tooltip:?}");
        }
    }
    let index = std::fs::read_to_string(&summary.index).expect("index.html readable");
    let caption =
        "which settings matter, across 4 seed groups — <a href=\"settings-sweep-importance.svg\">SVG</a><br>η²: ";
    assert!(index.contains(caption), "index.html lacks {caption:?}");
}

#[test]
fn unknown_experiment_lists_the_known_ones_and_writes_nothing() {
    let temp = tempfile::tempdir().expect("temp dir");
    let store = fixture_store(&temp.path().join("mtl.db"));
    let out_dir = temp.path().join("report");
    let error = write_report(&store, &ReportOptions { experiment: Some("nope".into()), out_dir: out_dir.clone() })
        .expect_err("unknown experiment");
    assert!(matches!(error, ReportError::UnknownExperiment { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("\"nope\"") && message.contains("shapes+reviews λ sweep, smoke"), "{message}");
    assert!(!out_dir.exists());
}

#[test]
fn empty_database_is_an_error() {
    let temp = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&temp.path().join("mtl.db")).expect("open store");
    let error = write_report(&store, &ReportOptions { experiment: None, out_dir: temp.path().join("report") })
        .expect_err("no runs");
    assert!(matches!(error, ReportError::NoRuns { experiment: None, .. }), "{error:?}");
    assert!(error.to_string().starts_with("no runs of any experiment in "), "{error}");
}
