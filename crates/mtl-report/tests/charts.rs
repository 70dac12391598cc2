//! The charts of a realistic report, read back from their SVG files: every
//! character of every text is in the embedded font and no text is cut at the
//! canvas's edge; the Pareto chart has one tooltip per seed group at its marker;
//! charts with nothing to show are not drawn and the page says why. Set
//! `MTL_REPORT_CHARTS_DIR` to keep the report there for a look.

use std::collections::BTreeMap;
use std::path::Path;

use ab_glyph::{Font, FontRef, ScaleFont};
use mtl_report::{write_report, ReportOptions, ReportSummary};
use mtl_store::{DiagnosticPoint, MetricPoint, NewRun, ParamValue, RunId, RunStatus, Store};

const EPOCHS: u32 = 5;
const STEPS_PER_EPOCH: u64 = 40;
const SWEEP: &str = "weighting × strategy sweep";
const STATIC_ONLY: &str = "static strategies";
const LONG: &str =
    "an experiment whose name is long enough to test that titles shrink and lose their middle, not their ends";
const LAMBDAS: [f64; 5] = [0.01, 0.1, 1.0, 10.0, 100.0];

/// A run's settings: strategy, weighting, λ (static only) and seed.
struct Trial<'a> {
    experiment: &'a str,
    strategy: &'a str,
    weighting: &'a str,
    lambda: Option<f64>,
    seed: u32,
    tasks: [&'a str; 2],
}

/// Test accuracy of `task_index` at the last epoch (the best epoch: accuracy rises).
fn final_accuracy(trial: &Trial, task_index: usize) -> f64 {
    let strategy_gain = match trial.strategy {
        "single-task" => 0.0,
        "hard" => 0.03,
        "soft" => 0.01,
        _ => 0.02,
    };
    // λ favours the second task and costs the first; seeds spread ±0.01.
    let lambda_shift = trial.lambda.map_or(0.0, |lambda: f64| 0.02 * lambda.log10());
    let tilt = if task_index == 0 { -lambda_shift } else { lambda_shift };
    let seed_noise = 0.01 * (f64::from(trial.seed) - 1.0) * if task_index == 0 { 1.0 } else { -0.5 };
    0.8 + strategy_gain + tilt + seed_noise - 0.05 * task_index as f64
}

fn log_trial(store: &mut Store, trial: &Trial) -> RunId {
    let experiment = store.experiment(trial.experiment).expect("experiment");
    let mut params = vec![
        ("strategy".to_string(), ParamValue::Text(trial.strategy.into())),
        ("weighting".to_string(), ParamValue::Text(trial.weighting.into())),
        ("seed".to_string(), ParamValue::Num(f64::from(trial.seed))),
        ("epochs".to_string(), ParamValue::Num(f64::from(EPOCHS))),
    ];
    params.extend(trial.lambda.map(|lambda| ("lambda".to_string(), ParamValue::Num(lambda))));
    let key = format!("{}-{}-{:?}-{}", trial.strategy, trial.weighting, trial.lambda, trial.seed);
    let new_run =
        NewRun { experiment, trial_key: &key, settings_json: "{}", params: &params, provenance: &Default::default() };
    let run = store.begin_run(&new_run).expect("begin run");
    let steps = STEPS_PER_EPOCH * u64::from(EPOCHS);
    store.set_param(run, "steps", &ParamValue::Num(steps as f64)).expect("steps");
    for epoch in 1..=EPOCHS {
        let progress = f64::from(epoch) / f64::from(EPOCHS);
        let mut points = Vec::new();
        for (task_index, task) in trial.tasks.iter().enumerate() {
            let accuracy = final_accuracy(trial, task_index) - 0.2 * (1.0 - progress);
            for split in ["train", "val", "test"] {
                points.push(MetricPoint::new(task, split, "loss", 2.0 - 1.5 * accuracy));
                points.push(MetricPoint::new(task, split, "accuracy", accuracy));
            }
        }
        store.log_epoch(run, epoch, &points).expect("log epoch");
        if trial.strategy == "single-task" {
            continue;
        }
        // Four logging windows per epoch: steps 10, 20, 30, 40 of each epoch.
        for window in 1..=4_u64 {
            let step = STEPS_PER_EPOCH * u64::from(epoch - 1) + 10 * window;
            let t = step as f64 / steps as f64;
            let (first, second) = match (trial.weighting, trial.lambda) {
                ("static", Some(lambda)) => (1.0, lambda),
                _ => (1.0 + 0.3 * t, 1.0 - 0.3 * t),
            };
            let point = |name: &str, task: &str, other: &str, value: f64| DiagnosticPoint {
                name: name.into(),
                task: task.into(),
                other: other.into(),
                value,
            };
            let mut diagnostics =
                vec![point("weight", trial.tasks[0], "", first), point("weight", trial.tasks[1], "", second)];
            // soft has no shared parameters: the runner logs no cosine for it.
            if trial.strategy != "soft" {
                diagnostics.push(point("grad_cosine", trial.tasks[0], trial.tasks[1], 0.4 - 0.6 * t));
            }
            store.log_diagnostics(run, epoch, step, &diagnostics).expect("log diagnostics");
        }
    }
    store.finish_run(run, RunStatus::Done, None).expect("finish run");
    run
}

/// Three experiments: a sweep of strategies × weighting (static over five decades of
/// λ, pcgrad, uncertainty) × 3 seeds with single-task runs that log both tasks; static
/// strategies at λ = 1 only; a long-named experiment with long task names.
fn fixture(path: &Path) -> Store {
    let mut store = Store::open(path).expect("open store");
    let tasks = ["shapes", "reviews"];
    for seed in 0..3 {
        let single =
            Trial { experiment: SWEEP, strategy: "single-task", weighting: "static", lambda: None, seed, tasks };
        log_trial(&mut store, &single);
        for strategy in ["hard", "soft", "mmoe"] {
            for lambda in LAMBDAS {
                let trial =
                    Trial { experiment: SWEEP, strategy, weighting: "static", lambda: Some(lambda), seed, tasks };
                log_trial(&mut store, &trial);
            }
            for weighting in ["pcgrad", "uncertainty"] {
                log_trial(&mut store, &Trial { experiment: SWEEP, strategy, weighting, lambda: None, seed, tasks });
            }
        }
        for strategy in ["single-task", "hard", "soft", "cross-stitch"] {
            let lambda = (strategy != "single-task").then_some(1.0);
            let trial = Trial { experiment: STATIC_ONLY, strategy, weighting: "static", lambda, seed, tasks };
            log_trial(&mut store, &trial);
        }
    }
    let long_tasks = ["sentiment of very long product reviews", "handwritten digit on the left"];
    for seed in 0..2 {
        for (strategy, lambda) in [("single-task", None), ("cross-stitch", Some(0.25)), ("cross-stitch", Some(4.0))] {
            let trial = Trial { experiment: LONG, strategy, weighting: "static", lambda, seed, tasks: long_tasks };
            log_trial(&mut store, &trial);
        }
    }
    store
}

fn report(dir: &Path) -> (ReportSummary, std::path::PathBuf) {
    let store = fixture(&dir.join("mtl.db"));
    let out_dir = match std::env::var_os("MTL_REPORT_CHARTS_DIR") {
        Some(kept) => kept.into(),
        None => dir.join("report"),
    };
    let summary = write_report(&store, &ReportOptions { experiment: None, out_dir: out_dir.clone() }).expect("report");
    (summary, out_dir)
}

fn svgs(summary: &ReportSummary) -> Vec<(String, String)> {
    let svg_paths = summary.charts.iter().filter(|path| path.extension().is_some_and(|e| e == "svg"));
    svg_paths
        .map(|path| {
            let name = path.file_name().expect("name").to_string_lossy().into_owned();
            (name, std::fs::read_to_string(path).expect("svg readable"))
        })
        .collect()
}

/// The value of attribute `name` in the tag text `tag`.
fn attribute<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    Some(&tag[start..start + tag[start..].find('"')?])
}

fn number(tag: &str, name: &str) -> f64 {
    attribute(tag, name).and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("no number {name} in {tag}"))
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// Every `<text>` of an SVG: its opening tag and its content.
fn texts(svg: &str) -> Vec<(&str, String)> {
    let mut found = Vec::new();
    let mut rest = svg;
    while let Some(start) = rest.find("<text") {
        let tag_end = start + rest[start..].find('>').expect("tag end");
        let close = tag_end + rest[tag_end..].find("</text>").expect("closing tag");
        found.push((&rest[start..=tag_end], unescape(rest[tag_end + 1..close].trim())));
        rest = &rest[close..];
    }
    found
}

fn font() -> FontRef<'static> {
    FontRef::try_from_slice(dejavu::sans::regular()).expect("DejaVu Sans parses")
}

/// The box `text` covers, `(left, top, right, bottom)` in pixels, in the PNG and in
/// the SVG together: plotters writes `font-size` = its size / 1.24 into the SVG, draws
/// the PNG at its size (wider), puts the PNG's baseline half its size below the top of
/// a box `size / 1.24` high that the anchor places; browsers place the SVG's baseline by `dy`.
fn extent(font: &FontRef, tag: &str, text: &str) -> (f64, f64, f64, f64) {
    let (x, y, em) = (number(tag, "x"), number(tag, "y"), number(tag, "font-size"));
    let size = em * 1.24;
    let scaled = font.as_scaled(size as f32);
    let width: f64 = text.chars().map(|c| f64::from(scaled.h_advance(scaled.glyph_id(c)))).sum();
    let (left, right) = match attribute(tag, "text-anchor") {
        Some("middle") => (-width / 2.0, width / 2.0),
        Some("end") => (-width, 0.0),
        _ => (0.0, width),
    };
    let (png_box_top, svg_baseline) = match attribute(tag, "dy") {
        Some("0.76em") => (0.0, 0.76 * em),
        Some("0.5ex") => (-em / 2.0, 0.27 * em),
        _ => (-em, -0.27 * em),
    };
    let png_baseline = png_box_top + size / 2.0;
    let (ascent, descent) = (0.93, 0.24); // DejaVu Sans, per em
    let top = (png_baseline - 0.8 * size).min(svg_baseline - ascent * em);
    let bottom = (png_baseline + 0.21 * size).max(svg_baseline + descent * em);
    // rotate(270, x, y) turns (dx, dy) into (dy, −dx).
    let (left, top, right, bottom) = match attribute(tag, "transform") {
        Some(transform) if transform.starts_with("rotate(270") => (top, -right, bottom, -left),
        Some(transform) if transform.starts_with("rotate(90") => (-bottom, left, -top, right),
        _ => (left, top, right, bottom),
    };
    (x + left, y + top, x + right, y + bottom)
}

#[test]
fn every_chart_text_is_in_the_font_and_inside_the_canvas() {
    let temp = tempfile::tempdir().expect("temp dir");
    let (summary, _) = report(temp.path());
    let font = font();
    let all = svgs(&summary);
    assert!(all.len() >= 12, "{} charts", all.len());
    let mut problems = Vec::new();
    for (name, svg) in &all {
        let root = &svg[svg.find("<svg").expect("svg tag")..];
        let root = &root[..root.find('>').expect("tag end")];
        let (width, height) = (number(root, "width"), number(root, "height"));
        let texts = texts(svg);
        assert!(texts.len() > 5, "{name} has {} texts", texts.len());
        for (tag, text) in texts {
            for character in text.chars().filter(|c| !c.is_whitespace()) {
                if font.glyph_id(character).0 == 0 {
                    problems.push(format!("{name}: {character:?} of {text:?} is not in DejaVu Sans"));
                }
            }
            let (left, top, right, bottom) = extent(&font, tag, &text);
            // One pixel of slack for rounding.
            if left < -1.0 || top < -1.0 || right > width + 1.0 || bottom > height + 1.0 {
                problems.push(format!(
                    "{name}: {text:?} spans x {left:.0}..{right:.0}, y {top:.0}..{bottom:.0} of {width}×{height}"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_glyph_check_sees_a_missing_glyph_and_a_cut_text() {
    // The checks above must be able to fail: a character DejaVu lacks, and text past the edge.
    let font = font();
    assert_eq!(font.glyph_id('中').0, 0, "DejaVu Sans has no CJK");
    assert_ne!(font.glyph_id('λ').0, 0);
    let tag = r#"<text x="990" y="20" dy="0.5ex" text-anchor="start" font-family="sans-serif" font-size="16">"#;
    let (_, _, right, _) = extent(&font, tag, "hard λ=0.5");
    assert!(right > 1000.0, "{right}");
    let rotated =
        r#"<text x="20" y="30" dy="0.76em" text-anchor="middle" font-size="16" transform="rotate(270, 20, 30)">"#;
    let (left, top, right, bottom) = extent(&font, rotated, "test accuracy");
    assert!(top < 0.0 && bottom > 60.0 && right - left < 30.0, "{left} {top} {right} {bottom}");
}

#[test]
fn the_pareto_chart_shows_seed_group_means_each_with_a_tooltip_at_its_marker() {
    let temp = tempfile::tempdir().expect("temp dir");
    let (_, out_dir) = report(temp.path());
    let svg = std::fs::read_to_string(out_dir.join("weighting-strategy-sweep-pareto.svg")).expect("pareto svg");
    let tooltips = &svg[svg.find("<g class=\"tooltips\"").expect("a tooltip group")..];
    let titles: Vec<(f64, f64, String)> = tooltips
        .split("<circle")
        .skip(1)
        .map(|circle| {
            let title = &circle[circle.find("<title>").expect("title") + 7..circle.find("</title>").expect("end")];
            (number(circle, "cx"), number(circle, "cy"), unescape(title))
        })
        .collect();
    // 3 strategies × (5 λ + pcgrad + uncertainty) + single-task: one point per seed group, not per run.
    assert_eq!(titles.len(), 3 * 7 + 1, "{titles:#?}");
    // Tasks in name order: x reviews, y shapes. hard, static, λ = 100: reviews 0.75 + 0.03 + 0.04
    // + {0.005, 0, −0.005}, shapes 0.8 + 0.03 − 0.04 + {−0.01, 0, 0.01}; the best reviews accuracy, so on the front.
    let expected = "hard, static λ=100: reviews 0.8200 ± 0.0050, shapes 0.7900 ± 0.0100 (3 seeds); on the Pareto front";
    assert!(titles.iter().any(|(_, _, title)| title.starts_with(expected)), "no {expected:?} in {titles:#?}");
    assert!(titles
        .iter()
        .any(|(_, _, title)| title.starts_with("single-task: reviews 0.7500 ± 0.0050, shapes 0.8000 ± 0.0100")));
    // Colour by weighting (it varies), shape by strategy: hard's markers are circles at the tooltips' centres.
    let body = &svg[..svg.find("<g class=\"tooltips\"").expect("tooltips")];
    let hard: Vec<&(f64, f64, String)> = titles.iter().filter(|(_, _, t)| t.starts_with("hard,")).collect();
    assert_eq!(hard.len(), 7);
    for (x, y, title) in hard {
        let marker = format!("<circle cx=\"{x}\" cy=\"{y}\"");
        assert!(body.contains(&marker), "no marker under the tooltip {title:?}");
    }
    for legend in
        ["colour: weighting method", "shape: strategy", "size: λ", "λ = 0.01", "λ = 100", "Pareto front of the means"]
    {
        assert!(texts(&svg).iter().any(|(_, text)| text == legend), "legend lacks {legend:?}");
    }
}

#[test]
fn charts_with_nothing_to_show_are_not_drawn_and_the_page_says_why() {
    let temp = tempfile::tempdir().expect("temp dir");
    let (summary, out_dir) = report(temp.path());
    let files: Vec<String> =
        summary.charts.iter().map(|p| p.file_name().expect("name").to_string_lossy().into_owned()).collect();
    let has = |stem: &str| files.contains(&format!("{stem}.png")) && files.contains(&format!("{stem}.svg"));
    // Static strategies at one λ: weights constant by construction, nothing against λ.
    assert!(!has("static-strategies-task-weights") && !has("static-strategies-shapes-test-accuracy-vs-lambda"));
    assert!(has("static-strategies-gradient-cosine") && has("weighting-strategy-sweep-task-weights"));
    let index = std::fs::read_to_string(&summary.index).expect("index");
    for expected in [
        "<li>static strategies: task weights over training (mean over seeds): every run weights its task losses \
         with fixed weights (static weighting",
        "<li>shapes: test accuracy vs λ: every multi-task run has λ = 1: a chart against λ needs two values of λ or more</li>",
        // soft logged weights but cannot have a gradient cosine: said under the chart.
        "<br>not drawn: soft λ=1: soft sharing has no shared parameters",
    ] {
        assert!(index.contains(expected), "index.html lacks {expected:?}");
    }
    // Diagnostics against epochs (step / 40), not steps; cosines on [−1, 1] around 0.
    let cosine = std::fs::read_to_string(out_dir.join("static-strategies-gradient-cosine.svg")).expect("svg");
    let labels: Vec<String> = texts(&cosine).into_iter().map(|(_, text)| text).collect();
    assert!(labels.contains(&"epoch".to_string()) && labels.contains(&"5".to_string()), "{labels:?}");
    assert!(!labels.iter().any(|label| label == "200" || label == "optimiser step"), "{labels:?}");
}

#[test]
fn the_heatmap_has_a_symmetric_colour_bar_and_bars_start_at_zero() {
    let temp = tempfile::tempdir().expect("temp dir");
    let (_, out_dir) = report(temp.path());
    let heatmap = std::fs::read_to_string(out_dir.join("weighting-strategy-sweep-delta-m.svg")).expect("svg");
    let labels: Vec<String> = texts(&heatmap).into_iter().map(|(_, text)| text).collect();
    let ticks: Vec<&String> = labels.iter().filter(|l| l.starts_with('+') || l.starts_with('−') || *l == "0").collect();
    // Cells hold signed values too; the colour bar's five ticks are ±s, ±s/2 and 0.
    let positive: BTreeMap<&str, bool> = ticks.iter().filter_map(|t| t.strip_prefix('+')).map(|t| (t, true)).collect();
    let mirrored = ticks.iter().filter_map(|t| t.strip_prefix('−')).filter(|t| positive.contains_key(t)).count();
    assert!(mirrored >= 2 && labels.contains(&"0".to_string()) && labels.contains(&"Δm%".to_string()), "{labels:?}");
    let strategies = std::fs::read_to_string(out_dir.join("weighting-strategy-sweep-strategies.svg")).expect("svg");
    let labels: Vec<String> = texts(&strategies).into_iter().map(|(_, text)| text).collect();
    assert!(labels.contains(&"0".to_string()), "the accuracy axis starts at 0: {labels:?}");
    // λ over five decades: a log axis; groups in small multiples (more than 3 groups).
    let lambda = std::fs::read_to_string(out_dir.join("weighting-strategy-sweep-shapes-test-accuracy-vs-lambda.svg"));
    assert!(texts(&lambda.expect("svg")).iter().any(|(_, text)| text == "λ (log scale)"));
    let curves = std::fs::read_to_string(out_dir.join("weighting-strategy-sweep-shapes-learning-curves.svg"));
    let panels = texts(&curves.expect("svg")).into_iter().filter(|(_, text)| text == "loss").count();
    assert!(panels >= 4, "{panels} loss panels");
}
