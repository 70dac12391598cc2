//! Turns a results database into a report folder: `index.html` plus every
//! chart as PNG and SVG beside it. Reads results only through mtl-store.
//!
//! Per experiment with at least two methods it first compares the strategies:
//! final test accuracy per task as grouped bars (one group per multi-task
//! method at its best-val λ, mean ± sample std over seeds, single-task
//! baselines as dashed lines), with the same numbers and each method's
//! parameter count in a table below. A Δm% heatmap (strategy × weighting or
//! strategy × λ), which settings matter (each setting's η² share of the variance of Δm%
//! and of each task metric across the seed groups, as `mtl importance` ranks them) and
//! the Pareto front of each pair of tasks follow. Where runs differ in their weighting
//! method, a table compares every method and λ: test accuracy, time per step
//! (also relative to static weighting), final task weights and gradient
//! cosines. Where runs logged training diagnostics, the task weights and the
//! gradient cosines over training follow, one line per method and task (or
//! task pair). Per task it then draws the final test accuracy against λ (one
//! line per strategy, single-task baseline as a dashed line) and the learning
//! curves averaged over seeds; the page ends each experiment with a table of
//! its runs (every run in a CSV file beside the page). Charts with a line per
//! group draw at most [`MAX_LINES`] groups besides the baselines.
//!
//! ```no_run
//! use mtl_report::{write_report, ReportOptions};
//! let store = mtl_store::Store::open_existing("mtl.db".as_ref())?;
//! let options = ReportOptions { experiment: None, out_dir: "report".into() };
//! let summary = write_report(&store, &options)?;
//! println!("wrote {} ({} runs)", summary.index.display(), summary.n_runs);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]

pub mod aggregate;
mod charts;
pub mod compare;
pub mod delta;
pub mod groups;
mod html;
pub mod importance;
pub mod stats;
pub mod tradeoff;

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use mtl_store::{ParamValue, RunId, Store};

use crate::charts::{
    DeltaMHeatmapChart, DiagnosticChart, ImportanceChart, LearningCurvesChart, MetricByLambdaChart, ParetoChart,
    StrategyComparisonChart,
};
use crate::html::{ChartLink, ExperimentSection};

/// What to report and where.
#[derive(Clone, Debug)]
pub struct ReportOptions {
    /// Only this experiment; `None` reports every experiment, one section each.
    pub experiment: Option<String>,
    /// The folder that receives `index.html` and the charts; created if needed.
    pub out_dir: PathBuf,
}

/// What [`write_report`] wrote.
#[derive(Clone, Debug)]
pub struct ReportSummary {
    /// The page, `out_dir/index.html`.
    pub index: PathBuf,
    /// Every chart file, PNG and SVG.
    pub charts: Vec<PathBuf>,
    /// Runs listed in the report, whatever their status.
    pub n_runs: usize,
}

/// Errors of report generation; each names the experiment or file involved.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Reading the results database failed.
    #[error(transparent)]
    Store(#[from] mtl_store::StoreError),
    /// `--experiment` names no experiment of the database.
    #[error("no experiment named {name:?} in {database}; known experiments: {}", list_or_none(known))]
    UnknownExperiment {
        /// The name asked for.
        name: String,
        /// The database file.
        database: PathBuf,
        /// The experiments it has.
        known: Vec<String>,
    },
    /// Nothing to report.
    #[error("no runs {} in {database} (run `mtl run` first)", match experiment {
        Some(name) => format!("of experiment {name:?}"),
        None => "of any experiment".to_string(),
    })]
    NoRuns {
        /// The experiment asked for, if one was.
        experiment: Option<String>,
        /// The database file.
        database: PathBuf,
    },
    /// Creating the report folder or writing a file failed.
    #[error("writing {path}")]
    Io {
        /// The folder or file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Drawing or encoding a chart failed.
    #[error("drawing chart {path}: {message}")]
    Plot {
        /// The chart file.
        path: PathBuf,
        /// What plotters said.
        message: String,
    },
    /// The embedded DejaVu Sans font could not be loaded (a build defect).
    #[error("the embedded DejaVu Sans font could not be loaded")]
    Font,
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "(none)".to_string()
    } else {
        names.join(", ")
    }
}

/// Writes `options.out_dir/index.html` and its charts from `store`.
pub fn write_report(store: &Store, options: &ReportOptions) -> Result<ReportSummary, ReportError> {
    let known = store.experiments()?;
    let experiment_names = match &options.experiment {
        Some(name) if known.contains(name) => vec![name.clone()],
        Some(name) => {
            let database = store.path().to_owned();
            return Err(ReportError::UnknownExperiment { name: name.clone(), database, known });
        }
        None => known,
    };
    let mut runs_by_experiment = Vec::new();
    for name in experiment_names {
        let runs = store.runs(Some(&name))?;
        if !runs.is_empty() {
            runs_by_experiment.push((name, runs));
        }
    }
    // Fail before touching the folder: a bad request leaves nothing behind.
    if runs_by_experiment.is_empty() {
        let database = store.path().to_owned();
        return Err(ReportError::NoRuns { experiment: options.experiment.clone(), database });
    }
    charts::register_embedded_font()?;
    let out_dir = &options.out_dir;
    std::fs::create_dir_all(out_dir).map_err(|source| ReportError::Io { path: out_dir.clone(), source })?;

    let mut chart_writer = ChartWriter { out_dir, file_stems: UniqueFileStems::default(), files: Vec::new() };
    let mut sections = Vec::new();
    for (name, runs) in runs_by_experiment {
        let all_groups = aggregate::group_runs(&runs);
        // Charts with a line per group show the baselines and the best others; with many
        // runs only their points are read (the tables and the trade-off charts use all).
        let groups = aggregate::displayed_groups(&runs, &all_groups, MAX_LINES);
        let done_run_ids: Vec<RunId> = groups.iter().flat_map(|group| group.runs.iter().copied()).collect();
        let metric_rows = store.metric_rows(&done_run_ids)?;
        let mut charts = Vec::new();
        // Charts that would show nothing: the page says why instead.
        let mut skipped: Vec<(String, String)> = Vec::new();
        let comparison = aggregate::compare_strategies(&runs);
        // Each task's headline metric (accuracy, R², mAP) names the charts' metric.
        let headlines = aggregate::headline_names(&runs);
        let verdict = verdict_line(&comparison);
        if comparison.methods().count() >= 2 {
            let title = format!("{name}: test {headlines} by strategy (mean ± std over seeds)");
            let chart = StrategyComparisonChart { title: title.clone(), data: &comparison, metrics: &headlines };
            let link = chart_writer.write(&chart, title, &[&name, "strategies"])?;
            charts.push(ChartLink { strategy_table: Some(comparison), ..link });
        }
        if let Some(grid) = tradeoff::delta_m_grid(&runs) {
            let title = format!("{name}: Δm% against single-task, strategy × {}", grid.column_title);
            let chart = DeltaMHeatmapChart { title: title.clone(), grid: &grid };
            charts.push(chart_writer.write(&chart, title, &[&name, "delta-m"])?);
        }
        // The groups `mtl importance` ranks (every seed group, λ not picked: it is ranked too).
        let known: BTreeSet<String> = runs.iter().flat_map(|run| run.params.keys().cloned()).collect();
        let ranking = importance::Ranking::of(&compare::compare(&runs, &importance::importance_spec(&known)));
        if ranking.has_something() {
            let title = format!("{name}: which settings matter, across {} seed groups", ranking.n_groups);
            let chart = ImportanceChart { title: title.clone(), ranking: &ranking };
            let link = chart_writer.write(&chart, title, &[&name, "importance"])?;
            charts.push(ChartLink { notes: vec![charts::eta_squared_note(&ranking)], ..link });
        }
        let tasks = aggregate::task_names(&runs);
        let panels: Vec<tradeoff::ParetoData> = tradeoff::task_pairs(&tasks)
            .iter()
            .map(|(x, y)| tradeoff::pareto(&runs, x, y))
            .filter(|panel| !panel.points.is_empty())
            .collect();
        if !panels.is_empty() {
            let title = format!("{name}: Pareto front of test {headlines}, task against task");
            let chart = ParetoChart { title: title.clone(), panels: &panels };
            charts.push(chart_writer.write(&chart, title, &[&name, "pareto"])?);
        }
        if let Some(reason) = charts::omitted::pareto_chart(tasks.len(), panels.len()) {
            skipped.push((format!("{name}: Pareto front of test {headlines}, task against task"), reason));
        }
        // Every group's diagnostics: the weighting table lists every method.
        let all_done: Vec<RunId> = all_groups.iter().flat_map(|group| group.runs.iter().copied()).collect();
        let diagnostic_rows = store.diagnostic_rows(&all_done)?;
        // (diagnostic, file stem suffix, title, y description, cosine: fixed [−1, 1] axis with a line at 0)
        let diagnostic_charts = [
            ("weight", "task-weights", "task weights over training", "task weight", false),
            ("grad_cosine", "gradient-cosine", "gradient cosine over training", "cosine of task gradients", true),
        ];
        for (diagnostic, stem_suffix, caption, y_description, is_cosine) in diagnostic_charts {
            let curves = aggregate::mean_diagnostics(&groups, &diagnostic_rows, diagnostic);
            let title = format!("{name}: {caption} (mean over seeds)");
            let (notes, left_out) =
                match charts::omitted::diagnostic_chart(diagnostic, &runs, &groups, &diagnostic_rows, &curves) {
                    charts::omitted::Verdict::Draw { notes, left_out } => (notes, left_out),
                    charts::omitted::Verdict::Omit(reason) => {
                        skipped.push((title, reason));
                        continue;
                    }
                    charts::omitted::Verdict::Nothing => continue,
                };
            let chart = DiagnosticChart {
                title: title.clone(),
                y_description,
                y_range: is_cosine.then_some((-1.05, 1.05)),
                zero_line: is_cosine,
                groups: &groups,
                curves: &curves,
                steps_per_epoch: &charts::steps_per_epoch(&runs, &groups, &diagnostic_rows),
                notes: notes.clone(),
                left_out: &left_out,
            };
            let link = chart_writer.write(&chart, title, &[&name, stem_suffix])?;
            charts.push(ChartLink { notes, ..link });
        }
        for task in aggregate::task_names(&runs) {
            // The task's headline metric (accuracy for classification, R², mAP): its name in the
            // title, the axis and the file name.
            let headline = aggregate::headline_key(&runs, &task, "test");
            let by_lambda = aggregate::final_metric_by_lambda(&runs, &groups, &headline);
            let lambda_omitted = charts::omitted::lambda_chart(&by_lambda);
            let described = format!("test {}", headline.metric);
            if let (Some(reason), false) = (&lambda_omitted, by_lambda.lines.is_empty()) {
                skipped.push((format!("{task}: {described} vs λ"), reason.clone()));
            }
            if lambda_omitted.is_none() {
                let title = format!("{task}: {described} vs λ");
                let chart = MetricByLambdaChart { title: title.clone(), y_description: &described, data: &by_lambda };
                let stem = format!("test-{}-vs-lambda", headline.metric.replace('_', "-"));
                charts.push(chart_writer.write(&chart, title, &[&name, &task, &stem])?);
            }
            let curves = aggregate::mean_curves(&groups, &metric_rows, &task);
            if curves.iter().any(|group_curves| !group_curves.is_empty()) {
                let title = format!("{task}: learning curves (mean over seeds)");
                let metric = &headline.metric;
                let chart = LearningCurvesChart { title: title.clone(), groups: &groups, curves: &curves, metric };
                charts.push(chart_writer.write(&chart, title, &[&name, &task, "learning-curves"])?);
            }
        }
        let weightings: BTreeSet<String> =
            runs.iter().filter_map(|run| run.params.get("weighting")).map(ParamValue::to_string).collect();
        let method_table =
            (weightings.len() > 1).then(|| aggregate::compare_methods(&runs, &all_groups, &diagnostic_rows));
        let hidden_groups = all_groups.len() - groups.len();
        let source = experiment_source(store, &runs)?;
        let runs_csv = chart_writer.file_stems.claim(&[&name, "runs"]) + ".csv";
        let path = out_dir.join(&runs_csv);
        write_whole(&path, html::runs_csv(&runs).as_bytes())?;
        sections.push(ExperimentSection {
            name,
            runs,
            charts,
            method_table,
            hidden_groups,
            source,
            runs_csv,
            verdict,
            skipped,
        });
    }

    let index = out_dir.join("index.html");
    let page = html::render_index(store.path(), &sections);
    write_whole(&index, page.as_bytes())?;
    let n_runs = sections.iter().map(|section| section.runs.len()).sum();
    Ok(ReportSummary { index, charts: chart_writer.files, n_runs })
}

/// The table of contents' line for an experiment: its best multi-task method by Δm%,
/// with the interval and what it amounts to.
fn verdict_line(comparison: &aggregate::StrategyComparison) -> Option<String> {
    // The best multi-task group: the one `mtl compare` marks best among them (ties: the first).
    let best = comparison
        .multi_task
        .iter()
        .filter_map(|m| Some((m, m.row.delta_m.as_ref()?)))
        .reduce(|best, next| if next.1.value > best.1.value { next } else { best })?;
    let (method, delta) = best;
    let (interval, meaning) = match (delta.ci95, delta.verdict) {
        (Some((low, high)), Some(verdict)) => (format!(" [{low:+.2}, {high:+.2}]"), verdict.against_single_task()),
        _ => (String::new(), "no interval (one seed)"),
    };
    Some(format!("best: {} — Δm% {:+.2}{interval}, {meaning}", method.label(), delta.value))
}

/// Lines per chart at most (besides the single-task baselines), so that ten
/// thousand runs still give a readable picture.
pub const MAX_LINES: usize = 8;

/// The experiment file and the versions behind an experiment's runs.
fn experiment_source(store: &Store, runs: &[mtl_store::RunRecord]) -> Result<html::Source, ReportError> {
    let distinct = |field: &dyn Fn(&mtl_store::RunRecord) -> Option<String>| -> Vec<String> {
        runs.iter().filter_map(field).collect::<BTreeSet<_>>().into_iter().collect()
    };
    // The most recent run's file: what a re-run would read.
    let latest = runs.iter().filter(|r| r.experiment_sha256.is_some()).max_by_key(|r| r.started_at.clone());
    let text = match latest.and_then(|r| r.experiment_sha256.as_deref()) {
        Some(sha256) => store.blob_by_hash(sha256)?.map(|bytes| String::from_utf8_lossy(&bytes).into_owned()),
        None => None,
    };
    Ok(html::Source {
        file: latest.and_then(|r| r.provenance.experiment_file.clone()),
        text,
        file_versions: distinct(&|r| r.experiment_sha256.clone()).len(),
        mtl_versions: distinct(&|r| r.provenance.mtl_version.clone()),
        git_commits: distinct(&|r| r.provenance.git_commit.clone()),
        hosts: distinct(&|r| r.provenance.host.clone()),
    })
}

/// Writes a report's charts into its folder, each under a file stem unique among the
/// report's files (the runs CSV files claim theirs from the same `file_stems`).
struct ChartWriter<'a> {
    out_dir: &'a Path,
    file_stems: UniqueFileStems,
    /// Every chart file written, PNG and SVG.
    files: Vec<PathBuf>,
}

impl ChartWriter<'_> {
    /// Draws `chart` as `STEM.png` and `STEM.svg`, the stem claimed from `stem_parts`,
    /// and returns its link captioned `title`.
    fn write(
        &mut self,
        chart: &impl charts::Chart,
        title: String,
        stem_parts: &[&str],
    ) -> Result<ChartLink, ReportError> {
        let stem = self.file_stems.claim(stem_parts);
        self.files.extend(charts::write_png_and_svg(chart, self.out_dir, &stem)?);
        Ok(chart_link(title, &stem))
    }
}

fn chart_link(title: String, stem: &str) -> ChartLink {
    ChartLink {
        title,
        png_file_name: format!("{stem}.png"),
        svg_file_name: format!("{stem}.svg"),
        strategy_table: None,
        notes: Vec::new(),
    }
}

/// File names from user-chosen experiment and task names: sanitised, and
/// made unique because different names can sanitise alike (`a b`, `a-b`).
#[derive(Default)]
struct UniqueFileStems {
    claimed: HashSet<String>,
}

impl UniqueFileStems {
    fn claim(&mut self, parts: &[&str]) -> String {
        let mut base = parts.iter().map(|part| sanitise_file_stem(part)).collect::<Vec<_>>().join("-");
        if base.len() > MAX_STEM_BYTES {
            // A long name is cut, and its hash keeps cut names apart.
            let hash = fnv1a(parts.join("\0").as_bytes());
            base = format!("{}-{hash:016x}", base[..MAX_STEM_BYTES - 17].trim_end_matches('-'));
        }
        let mut stem = base.clone();
        let mut suffix = 2;
        while !self.claimed.insert(stem.clone()) {
            stem = format!("{base}-{suffix}");
            suffix += 1;
        }
        stem
    }
}

/// Whether the report may write a file of this name into its folder (`index.html`,
/// charts, runs CSV files, and their temporary names), so that callers can refuse a
/// folder where that would overwrite an input.
pub fn writes_file_named(name: &str) -> bool {
    name == "index.html" || name.starts_with(".partial-") || [".png", ".svg", ".csv"].iter().any(|e| name.ends_with(e))
}

/// The longest file stem: with a `-N` suffix and `.html`, `.png` or `.svg` the name
/// stays far under the 255 bytes file systems allow, whatever the experiment's name.
const MAX_STEM_BYTES: usize = 120;

/// 64-bit FNV-1a: a stable hash for file names, the same on every machine and build.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| (hash ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

/// Writes `path` whole or not at all: into a temporary name in the same folder, then
/// renamed into place (an interrupted report leaves no half-written file).
pub(crate) fn write_whole(path: &Path, contents: &[u8]) -> Result<(), ReportError> {
    let temporary = partial_path(path);
    std::fs::write(&temporary, contents).and_then(|()| std::fs::rename(&temporary, path)).map_err(|source| {
        let _ = std::fs::remove_file(&temporary);
        ReportError::Io { path: path.to_owned(), source }
    })
}

/// `DIR/.partial-NAME`, where a file is written before it is renamed to `DIR/NAME`;
/// the extension is kept (plotters picks the image format by it).
pub(crate) fn partial_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".partial-{}-{name}", std::process::id()))
}

/// Lower-case ASCII letters, digits and single dashes only: safe on every file
/// system and in a URL without escaping.
fn sanitise_file_stem(name: &str) -> String {
    let mut stem = String::new();
    for character in name.chars().flat_map(char::to_lowercase) {
        if character.is_ascii_alphanumeric() {
            stem.push(character);
        } else if !stem.is_empty() && !stem.ends_with('-') {
            stem.push('-');
        }
    }
    let trimmed = stem.trim_end_matches('-');
    if trimmed.is_empty() {
        "unnamed".to_string()
    } else {
        trimmed.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_make_short_distinct_stems() {
        let mut stems = UniqueFileStems::default();
        let long = "x".repeat(300);
        let a = stems.claim(&[&format!("{long}a"), "strategies"]);
        let b = stems.claim(&[&format!("{long}b"), "strategies"]);
        assert!(a.len() <= MAX_STEM_BYTES && b.len() <= MAX_STEM_BYTES, "{a} {b}");
        assert_ne!(a, b);
        assert!(a.starts_with("xxxx"), "{a}");
        assert_eq!(stems.claim(&["short", "t"]), "short-t", "short names are kept whole");
    }

    #[test]
    fn svg_text_loses_the_characters_xml_forbids() {
        assert_eq!(charts::xml_safe("a\u{0}b\u{1b}c\td\n"), "a\u{fffd}b\u{fffd}c\td\n");
        assert_eq!(charts::xml_safe("λ <ok>"), "λ <ok>");
    }

    #[test]
    fn file_stems_are_sanitised_and_unique() {
        let mut stems = UniqueFileStems::default();
        let cases = [
            (vec!["image+text λ sweep", "Shapes"], "image-text-sweep-shapes"),
            (vec!["a b", "t"], "a-b-t"),
            (vec!["a-b", "t"], "a-b-t-2"),
            (vec!["../..", "t"], "unnamed-t"),
        ];
        for (parts, expected) in cases {
            assert_eq!(stems.claim(&parts), expected, "{parts:?}");
        }
    }
}
