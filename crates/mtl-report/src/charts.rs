//! Draws the report's charts with plotters: the strategy comparison, a
//! metric against λ, learning curves, training diagnostics over steps, the
//! Pareto front of task against task, and the Δm% heatmap.
//! Each chart is one drawing function generic over the backend, run once for
//! PNG and once for SVG.
//! Text uses DejaVu Sans embedded in the binary: nothing is read from the system.
//!
//! ```text
//! register_embedded_font()?;
//! let chart = MetricByLambdaChart { title: "shapes: test accuracy vs λ".into(), y_description: "test accuracy", data: &by_lambda };
//! let [png, svg] = write_png_and_svg(&chart, out_dir, "quickstart-shapes-accuracy-vs-lambda")?;
//! ```

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::backend::{BitMapBackend, SVGBackend};
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::aggregate::{
    is_baseline, DiagnosticSeries, MeanCurves, MeanDiagnostics, MetricByLambda, RunGroup, StrategyComparison,
    SINGLE_TASK_STRATEGY,
};
use crate::tradeoff::{DeltaMGrid, ParetoData, PointKind};
use crate::ReportError;

/// The family every text style uses; registered from the embedded font.
/// `sans-serif` keeps the SVGs' text readable in browsers that lack DejaVu.
const FONT_FAMILY: &str = "sans-serif";

/// Tableau 10: distinct for the usual handful of groups, colour-blind tolerable.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
    RGBColor(127, 127, 127),
];
const BASELINE_COLOUR: RGBColor = RGBColor(40, 40, 40);
const LEGEND_WIDTH: u32 = 290;

type PlotResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;
type Chart2d<'a, DB> = ChartContext<'a, DB, Cartesian2d<TickedAxis, RangedCoordf64>>;

/// A linear axis whose ticks sit exactly at given values (the λs swept, the
/// epochs), so every λ is labelled; plotters' `WithKeyPoints` cannot be used
/// with a mesh over `f64` (it lacks a value formatter).
struct TickedAxis {
    linear: RangedCoordf64,
    ticks: Vec<f64>,
}

impl Ranged for TickedAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.linear.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.linear.range()
    }
}

/// Registers the embedded DejaVu Sans under [`FONT_FAMILY`], once per process.
pub(crate) fn register_embedded_font() -> Result<(), ReportError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let registered = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FONT_FAMILY, FontStyle::Normal, dejavu::sans::regular()).is_ok()
    });
    if registered {
        Ok(())
    } else {
        Err(ReportError::Font)
    }
}

/// A chart that can be drawn on any plotters backend.
pub(crate) trait Chart {
    /// Pixel size of the PNG (and of the SVG's view box).
    fn size(&self) -> (u32, u32);
    /// Draws the whole chart on `root`.
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> PlotResult<DB>;
}

/// Writes `out_dir/stem.png` and `out_dir/stem.svg`.
pub(crate) fn write_png_and_svg(chart: &impl Chart, out_dir: &Path, stem: &str) -> Result<[PathBuf; 2], ReportError> {
    let png_path = out_dir.join(format!("{stem}.png"));
    let svg_path = out_dir.join(format!("{stem}.svg"));
    let plot_error = |path: &Path, error: &dyn std::fmt::Display| ReportError::Plot {
        path: path.to_owned(),
        message: error.to_string(),
    };
    // Drawn under a temporary name and renamed: an interrupted report leaves no half a chart.
    let partial_png = crate::partial_path(&png_path);
    {
        let root = BitMapBackend::new(&partial_png, chart.size()).into_drawing_area();
        let drawn = chart.draw(&root).and_then(|()| root.present());
        drawn.map_err(|error| {
            let _ = std::fs::remove_file(&partial_png);
            plot_error(&png_path, &error)
        })?;
    }
    std::fs::rename(&partial_png, &png_path).map_err(|source| ReportError::Io { path: png_path.clone(), source })?;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, chart.size()).into_drawing_area();
        chart.draw(&root).and_then(|()| root.present()).map_err(|error| plot_error(&svg_path, &error))?;
    }
    crate::write_whole(&svg_path, xml_safe(&svg).as_bytes())?;
    Ok([png_path, svg_path])
}

/// `text` without the characters XML 1.0 forbids (control characters other than tab,
/// newline and carriage return), each replaced by U+FFFD: names from older databases
/// may hold them, and one NUL makes the whole SVG unreadable.
pub(crate) fn xml_safe(text: &str) -> std::borrow::Cow<'_, str> {
    let forbidden = |c: char| (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r');
    if text.contains(forbidden) {
        text.replace(forbidden, "\u{fffd}").into()
    } else {
        text.into()
    }
}

/// A final metric against λ: mean line, ±1 std band and points per method,
/// methods without λ (single-task baselines) as dashed horizontal lines.
pub(crate) struct MetricByLambdaChart<'a> {
    /// Title above the chart.
    pub title: String,
    /// The y axis's description, e.g. `test accuracy`.
    pub y_description: &'a str,
    /// The numbers.
    pub data: &'a MetricByLambda,
}

impl Chart for MetricByLambdaChart<'_> {
    fn size(&self) -> (u32, u32) {
        (1000, 560)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> PlotResult<DB> {
        root.fill(&WHITE)?;
        let root = root.margin(10, 0, 0, 0).titled(&self.title, text_style(24.0))?;
        let (plot_area, legend_area) = root.split_horizontally(root.dim_in_pixel().0 - LEGEND_WIDTH);

        let lambdas: Vec<f64> = self.data.lines.iter().flat_map(|line| line.points.iter().map(|p| p.0)).collect();
        let use_log_x = lambdas_need_log_axis(&lambdas);
        let to_x = |lambda: f64| if use_log_x { lambda.ln() } else { lambda };
        let mut x_key_points: Vec<f64> = lambdas.iter().map(|&lambda| to_x(lambda)).collect();
        x_key_points.sort_by(f64::total_cmp);
        x_key_points.dedup();
        let (x_min, x_max) = padded_range(x_key_points.iter().copied(), 0.06);

        let line_extremes = self.data.lines.iter().flat_map(|line| {
            line.points.iter().flat_map(|(_, stats)| [stats.mean - stats.std, stats.mean + stats.std])
        });
        let reference_means = self.data.references.iter().map(|(_, stats)| stats.mean);
        let (y_min, y_max) = padded_range(line_extremes.chain(reference_means), 0.08);

        let x_description = if use_log_x { "λ (log scale)" } else { "λ" };
        let format_x = |x: &f64| short_number(if use_log_x { x.exp() } else { *x });
        let mut chart = build_chart(&plot_area, None, (x_min, x_max), thin(x_key_points, 12), (y_min, y_max))?;
        configure_mesh(&mut chart, x_description, self.y_description, &format_x)?;

        let mut legend_entries = Vec::new();
        for (line_index, line) in self.data.lines.iter().enumerate() {
            let colour = PALETTE[line_index % PALETTE.len()];
            let band = line.band();
            let upper = band.iter().map(|&(lambda, _, high)| (to_x(lambda), high));
            let lower = band.iter().rev().map(|&(lambda, low, _)| (to_x(lambda), low));
            chart
                .draw_series(std::iter::once(Polygon::new(upper.chain(lower).collect::<Vec<_>>(), colour.mix(0.15))))?;
            // Whiskers keep the spread visible where the band is one point wide.
            chart.draw_series(band.iter().map(|&(lambda, low, high)| {
                let x = to_x(lambda);
                PathElement::new(vec![(x, low), (x, high)], colour.mix(0.6))
            }))?;
            let means: Vec<(f64, f64)> =
                line.points.iter().map(|(lambda, stats)| (to_x(*lambda), stats.mean)).collect();
            chart.draw_series(LineSeries::new(means.clone(), colour.stroke_width(2)))?;
            chart.draw_series(means.into_iter().map(|point| Circle::new(point, 4, colour.filled())))?;
            legend_entries.push(LegendEntry { label: line.method.clone(), colour, symbol: LegendSymbol::LineWithDot });
        }
        for (reference_index, (method, stats)) in self.data.references.iter().enumerate() {
            let colour = reference_colour(method, reference_index + self.data.lines.len());
            let ends = [(x_min, stats.mean), (x_max, stats.mean)];
            chart.draw_series(DashedLineSeries::new(ends, 10, 6, colour.stroke_width(2)))?;
            let label = format!("{method} (n={})", stats.n);
            legend_entries.push(LegendEntry { label, colour, symbol: LegendSymbol::Dashed });
        }
        draw_legend(&legend_area, &legend_entries, &["mean over seeds;", "band: ±1 sample std"])
    }
}

/// Final test accuracy of each method at its chosen λ: per method one bar
/// per task (mean over seeds, ±1 std whisker), in a colour per task; the
/// references (single-task baselines) as dashed lines in the task's colour.
pub(crate) struct StrategyComparisonChart<'a> {
    /// Title above the chart.
    pub title: String,
    /// The numbers.
    pub data: &'a StrategyComparison,
}

impl Chart for StrategyComparisonChart<'_> {
    fn size(&self) -> (u32, u32) {
        // Room for labels like `cross-stitch λ=0.25` (or longer) under each method.
        let longest = self.data.multi_task.iter().map(|m| m.label().chars().count()).max().unwrap_or(0) as u32;
        let width = LEGEND_WIDTH + 120 + (8 * longest + 16).max(160) * self.data.multi_task.len() as u32;
        (width.max(1000), 560)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> PlotResult<DB> {
        root.fill(&WHITE)?;
        let root = root.margin(10, 0, 0, 0).titled(&self.title, text_style(24.0))?;
        let (plot_area, legend_area) = root.split_horizontally(root.dim_in_pixel().0 - LEGEND_WIDTH);

        let methods = &self.data.multi_task;
        let bar_extremes = methods
            .iter()
            .flat_map(|method| method.test_accuracy_by_task.iter().flatten())
            .flat_map(|stats| [stats.mean - stats.std, stats.mean + stats.std]);
        let reference_means = self
            .data
            .references
            .iter()
            .flat_map(|reference| reference.test_accuracy_by_task.iter().flatten())
            .map(|stats| stats.mean);
        // Not from 0: the differences between strategies are a few points.
        let (y_min, y_max) = padded_range(bar_extremes.chain(reference_means), 0.08);
        let (y_min, y_max) = (y_min.max(0.0), y_max.min(1.0));

        let (x_min, x_max) = (-0.5, methods.len().max(1) as f64 - 0.5);
        let labels: Vec<String> = methods.iter().map(|method| method.label()).collect();
        let format_x = |x: &f64| labels.get(x.round() as usize).cloned().unwrap_or_default();
        let method_positions = (0..methods.len()).map(|index| index as f64).collect();
        let mut chart = build_chart(&plot_area, None, (x_min, x_max), method_positions, (y_min, y_max))?;
        configure_mesh(&mut chart, "strategy", "test accuracy", &format_x)?;

        let task_colour = |task_index: usize| PALETTE[task_index % PALETTE.len()];
        let bar_width = 0.8 / self.data.tasks.len().max(1) as f64;
        for (method_index, method) in methods.iter().enumerate() {
            for (task_index, stats) in method.test_accuracy_by_task.iter().enumerate() {
                let Some(stats) = stats else { continue };
                let left = method_index as f64 - 0.4 + bar_width * task_index as f64;
                let (right, centre) = (left + 0.9 * bar_width, left + 0.45 * bar_width);
                let colour = task_colour(task_index);
                chart.draw_series([Rectangle::new([(left, y_min), (right, stats.mean)], colour.mix(0.8).filled())])?;
                let low = (stats.mean - stats.std).max(y_min);
                let high = (stats.mean + stats.std).min(y_max);
                let cap = 0.15 * bar_width;
                let whisker_style = BASELINE_COLOUR.stroke_width(2);
                chart.draw_series([
                    PathElement::new(vec![(centre, low), (centre, high)], whisker_style),
                    PathElement::new(vec![(centre - cap, low), (centre + cap, low)], whisker_style),
                    PathElement::new(vec![(centre - cap, high), (centre + cap, high)], whisker_style),
                ])?;
            }
        }

        let mut legend_entries: Vec<LegendEntry> = (self.data.tasks.iter().enumerate())
            .map(|(task_index, task)| LegendEntry {
                label: task.clone(),
                colour: task_colour(task_index),
                symbol: LegendSymbol::Swatch,
            })
            .collect();
        for reference in &self.data.references {
            for (task_index, stats) in reference.test_accuracy_by_task.iter().enumerate() {
                let Some(stats) = stats else { continue };
                let colour = task_colour(task_index);
                let ends = [(x_min, stats.mean), (x_max, stats.mean)];
                chart.draw_series(DashedLineSeries::new(ends, 10, 6, colour.stroke_width(2)))?;
                let label = format!("{}: {}", reference.method, self.data.tasks[task_index]);
                legend_entries.push(LegendEntry { label, colour, symbol: LegendSymbol::Dashed });
            }
        }
        let notes = ["bars: mean over seeds,", "whiskers: ±1 sample std;", "λ: best mean val accuracy"];
        draw_legend(&legend_area, &legend_entries, &notes)
    }
}

/// Learning curves of one task, averaged over seeds per group: loss
/// (train solid, val dashed) and val accuracy side by side.
pub(crate) struct LearningCurvesChart<'a> {
    /// Title above both panels.
    pub title: String,
    /// The groups, in the order of `curves`.
    pub groups: &'a [RunGroup],
    /// Per-group curves from [`crate::aggregate::mean_curves`].
    pub curves: &'a [MeanCurves],
}

impl Chart for LearningCurvesChart<'_> {
    fn size(&self) -> (u32, u32) {
        (1400, 560)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> PlotResult<DB> {
        root.fill(&WHITE)?;
        let root = root.margin(10, 0, 0, 0).titled(&self.title, text_style(24.0))?;
        let (panels_area, legend_area) = root.split_horizontally(root.dim_in_pixel().0 - LEGEND_WIDTH);
        let (loss_area, accuracy_area) = panels_area.split_horizontally(panels_area.dim_in_pixel().0 / 2);
        let colours = group_colours(self.groups);

        // Experiments without a validation split show the test curves instead, and say so.
        let has_val = self.curves.iter().any(|c| c.keys().any(|(split, _)| split == "val"));
        let split = if has_val { "val" } else { "test" };
        let loss_panel = [("train", "loss", false), (split, "loss", true)];
        let loss_caption = format!("loss (train solid, {split} dashed)");
        self.draw_panel(&loss_area, &loss_caption, "loss", &loss_panel, &colours)?;
        let accuracy_panel = [(split, "accuracy", false)];
        let accuracy_caption = if has_val { "val accuracy" } else { "test accuracy (no val split)" };
        self.draw_panel(&accuracy_area, accuracy_caption, "accuracy", &accuracy_panel, &colours)?;

        let legend_entries: Vec<LegendEntry> = self
            .groups
            .iter()
            .zip(self.curves)
            .zip(&colours)
            .filter(|((_, curves), _)| !curves.is_empty())
            .map(|((group, _), &colour)| LegendEntry { label: group.label(), colour, symbol: LegendSymbol::Line })
            .collect();
        draw_legend(&legend_area, &legend_entries, &["mean over seeds"])
    }
}

/// Palette colours in group order; baselines in dark grey as in the λ chart.
/// Charts of one experiment get the same groups, so a method keeps its colour.
fn group_colours(groups: &[RunGroup]) -> Vec<RGBColor> {
    let mut next_palette_index = 0;
    groups
        .iter()
        .map(|group| {
            if is_baseline(group) {
                return BASELINE_COLOUR;
            }
            next_palette_index += 1;
            PALETTE[(next_palette_index - 1) % PALETTE.len()]
        })
        .collect()
}

impl LearningCurvesChart<'_> {
    /// One panel: for each group, the `(split, metric, dashed)` series asked for.
    fn draw_panel<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        caption: &str,
        y_description: &str,
        series: &[(&str, &str, bool)],
        colours: &[RGBColor],
    ) -> PlotResult<DB> {
        let selected = |curves: &'_ MeanCurves| -> Vec<PanelLine> {
            series
                .iter()
                .filter_map(|(split, metric, dashed)| {
                    let points = curves.get(&(split.to_string(), metric.to_string()))?;
                    let points = points.iter().map(|&(epoch, value)| (f64::from(epoch), value)).collect();
                    Some(PanelLine { points, dashed: *dashed })
                })
                .collect()
        };
        let lines_by_group: Vec<Vec<PanelLine>> = self.curves.iter().map(selected).collect();
        let all_points = || lines_by_group.iter().flatten().flat_map(|line| line.points.iter());
        let max_epoch = all_points().map(|&(epoch, _)| epoch).fold(1.0, f64::max);
        let epochs: Vec<f64> = (1..=max_epoch as u32).map(f64::from).collect();
        let (y_min, y_max) = padded_range(all_points().map(|&(_, value)| value), 0.06);

        let mut chart = build_chart(area, Some(caption), (0.7, max_epoch + 0.3), thin(epochs, 10), (y_min, y_max))?;
        configure_mesh(&mut chart, "epoch", y_description, &|epoch: &f64| format!("{epoch:.0}"))?;
        for (lines, &colour) in lines_by_group.into_iter().zip(colours) {
            for line in lines {
                if line.dashed {
                    chart.draw_series(DashedLineSeries::new(line.points, 8, 5, colour.stroke_width(2)))?;
                } else {
                    chart.draw_series(LineSeries::new(line.points, colour.stroke_width(2)))?;
                }
            }
        }
        Ok(())
    }
}

/// A training diagnostic against the optimiser step, averaged over seeds: one
/// line per (group, series), the colour naming the group (as in the learning
/// curves) and the dash pattern and marker naming the task or task pair.
pub(crate) struct DiagnosticChart<'a> {
    /// Title above the chart.
    pub title: String,
    /// The y axis's description, e.g. `task weight`.
    pub y_description: &'a str,
    /// A fixed y range (cosines live in [−1, 1]); `None` fits the data.
    pub y_range: Option<(f64, f64)>,
    /// Draws a horizontal line at 0 (for cosines: below it the tasks conflict).
    pub zero_line: bool,
    /// The groups, in the order of `curves`.
    pub groups: &'a [RunGroup],
    /// Per-group curves from [`crate::aggregate::mean_diagnostics`].
    pub curves: &'a [MeanDiagnostics],
}

/// Dash and gap lengths of the n-th series' line; `None` is solid.
const SERIES_DASHES: [Option<(u32, u32)>; 4] = [None, Some((10, 6)), Some((3, 4)), Some((16, 4))];

impl Chart for DiagnosticChart<'_> {
    fn size(&self) -> (u32, u32) {
        (1100, 560)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> PlotResult<DB> {
        root.fill(&WHITE)?;
        let root = root.margin(10, 0, 0, 0).titled(&self.title, text_style(24.0))?;
        let (plot_area, legend_area) = root.split_horizontally(root.dim_in_pixel().0 - LEGEND_WIDTH);

        let all_series: BTreeSet<&DiagnosticSeries> = self.curves.iter().flat_map(|curves| curves.keys()).collect();
        let series_index = |series: &DiagnosticSeries| all_series.iter().position(|known| *known == series);
        let all_points = || self.curves.iter().flat_map(|curves| curves.values().flatten());
        let mut steps: Vec<f64> = all_points().map(|&(step, _)| step as f64).collect();
        steps.sort_by(f64::total_cmp);
        steps.dedup();
        let (x_min, x_max) = padded_range(steps.iter().copied(), 0.03);
        let y_range = self.y_range.unwrap_or_else(|| padded_range(all_points().map(|&(_, value)| value), 0.06));

        let mut chart = build_chart(&plot_area, None, (x_min, x_max), thin(steps, 10), y_range)?;
        configure_mesh(&mut chart, "optimiser step", self.y_description, &|step: &f64| format!("{step:.0}"))?;
        if self.zero_line {
            chart.draw_series([PathElement::new(vec![(x_min, 0.0), (x_max, 0.0)], BASELINE_COLOUR.stroke_width(1))])?;
        }

        let mut legend_entries = Vec::new();
        for ((group, curves), colour) in self.groups.iter().zip(self.curves).zip(group_colours(self.groups)) {
            if curves.values().all(Vec::is_empty) {
                continue;
            }
            for (series, points) in curves {
                let index = series_index(series).unwrap_or_default();
                let points: Vec<(f64, f64)> = points.iter().map(|&(step, value)| (step as f64, value)).collect();
                let style = colour.stroke_width(2);
                match SERIES_DASHES[index % SERIES_DASHES.len()] {
                    None => chart.draw_series(LineSeries::new(points.clone(), style))?,
                    Some((dash, gap)) => chart.draw_series(DashedLineSeries::new(points.clone(), dash, gap, style))?,
                };
                // At most a dozen markers per line, so long runs stay readable.
                let marker_every = points.len().div_ceil(12).max(1);
                let marked: Vec<(f64, f64)> = points.into_iter().step_by(marker_every).collect();
                draw_markers(chart.plotting_area(), &marked, index, style)?;
            }
            legend_entries.push(LegendEntry { label: group.label(), colour, symbol: LegendSymbol::Line });
        }
        for (index, (task, other)) in all_series.iter().enumerate() {
            let label = if other.is_empty() { task.clone() } else { format!("{task} · {other}") };
            legend_entries.push(LegendEntry { label, colour: BASELINE_COLOUR, symbol: LegendSymbol::Series(index) });
        }
        let pairwise = all_series.iter().any(|(_, other)| !other.is_empty());
        let style_note = if pairwise { "line style: task pair" } else { "line style: task" };
        draw_legend(&legend_area, &legend_entries, &["mean over seeds;", "colour: method,", style_note])
    }
}

/// Task against task, one panel per pair of tasks: every finished run as a
/// point (test accuracy at its best validation epoch), the non-dominated front as
/// a step line, equal-weight runs and single-task runs marked, and the
/// single-task baselines as a star with dashed guides.
pub(crate) struct ParetoChart<'a> {
    /// Title above the panels.
    pub title: String,
    /// One panel per pair, in a grid of up to 3 columns.
    pub panels: &'a [ParetoData],
}

const PARETO_COLUMNS: usize = 3;

impl Chart for ParetoChart<'_> {
    fn size(&self) -> (u32, u32) {
        let columns = self.panels.len().clamp(1, PARETO_COLUMNS) as u32;
        let rows = self.panels.len().div_ceil(PARETO_COLUMNS).max(1) as u32;
        (LEGEND_WIDTH + 560 * columns, 60 + 520 * rows)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> PlotResult<DB> {
        root.fill(&WHITE)?;
        let root = root.margin(10, 0, 0, 0).titled(&self.title, text_style(24.0))?;
        let (grid_area, legend_area) = root.split_horizontally(root.dim_in_pixel().0 - LEGEND_WIDTH);
        let columns = self.panels.len().clamp(1, PARETO_COLUMNS);
        let rows = self.panels.len().div_ceil(PARETO_COLUMNS).max(1);
        let cells = grid_area.split_evenly((rows, columns));
        // Many runs: smaller, fainter points, so that density shows.
        let n_points = self.panels.iter().map(|p| p.points.len()).max().unwrap_or(0);
        let (radius, alpha) = if n_points > 500 { (2, 0.25) } else { (4, 0.7) };
        for (panel, area) in self.panels.iter().zip(&cells) {
            let xs = panel.points.iter().map(|p| p.0).chain(panel.single_task.map(|s| s.0));
            let ys = panel.points.iter().map(|p| p.1).chain(panel.single_task.map(|s| s.1));
            let (x_min, x_max) = padded_range(xs, 0.06);
            let (y_min, y_max) = padded_range(ys, 0.06);
            let mut chart = ChartBuilder::on(area)
                .margin(16)
                .x_label_area_size(48)
                .y_label_area_size(64)
                .build_cartesian_2d(x_min..x_max, y_min..y_max)?;
            chart
                .configure_mesh()
                .x_desc(format!("{} test accuracy", panel.x_task))
                .y_desc(format!("{} test accuracy", panel.y_task))
                .x_label_formatter(&|x| short_number(*x))
                .y_label_formatter(&|y| short_number(*y))
                .label_style(text_style(14.0))
                .axis_desc_style(text_style(16.0))
                .bold_line_style(RGBColor(220, 220, 220))
                .light_line_style(RGBColor(245, 245, 245))
                .max_light_lines(1)
                .draw()?;
            if let Some((x, y)) = panel.single_task {
                let guide = BASELINE_COLOUR.stroke_width(1);
                chart.draw_series(DashedLineSeries::new([(x, y_min), (x, y_max)], 6, 4, guide))?;
                chart.draw_series(DashedLineSeries::new([(x_min, y), (x_max, y)], 6, 4, guide))?;
            }
            for (kind, colour) in [
                // Single-task runs first, so that they never hide a multi-task run.
                (PointKind::SingleTask, BASELINE_COLOUR),
                (PointKind::Run, PALETTE[0]),
                (PointKind::EqualWeights, PALETTE[1]),
            ] {
                let style = colour.mix(alpha).filled();
                let points = panel.points.iter().filter(|p| p.2 == kind);
                match kind {
                    PointKind::Run => chart.draw_series(points.map(|p| Circle::new((p.0, p.1), radius, style)))?,
                    _ => chart.draw_series(points.map(|p| TriangleMarker::new((p.0, p.1), radius + 3, style)))?,
                };
            }
            // The front as a staircase: from each point right, then down to the next.
            let mut steps = Vec::new();
            for (i, &(x, y)) in panel.front.iter().enumerate() {
                steps.push((x, y));
                if let Some(&(_, next_y)) = panel.front.get(i + 1) {
                    steps.push((x, next_y));
                }
            }
            chart.draw_series(LineSeries::new(steps.into_iter().rev(), PALETTE[3].stroke_width(2)))?;
            chart.draw_series(panel.front.iter().map(|&p| Circle::new(p, radius + 1, PALETTE[3].stroke_width(2))))?;
            if let Some(star) = panel.single_task {
                chart.draw_series([Cross::new(star, 9, BASELINE_COLOUR.stroke_width(3))])?;
            }
        }
        let legend_entries = [
            ("run", PALETTE[0], LegendSymbol::LineWithDot),
            ("equal weights (λ = 1)", PALETTE[1], LegendSymbol::LineWithDot),
            ("single-task run", BASELINE_COLOUR, LegendSymbol::LineWithDot),
            ("Pareto front", PALETTE[3], LegendSymbol::Line),
            ("single-task baseline (×)", BASELINE_COLOUR, LegendSymbol::Dashed),
        ]
        .map(|(label, colour, symbol)| LegendEntry { label: label.into(), colour, symbol });
        let notes = ["each point: one run,", "test accuracy at its", "best validation epoch"];
        draw_legend(&legend_area, &legend_entries, &notes)
    }
}

/// Δm% as a heatmap: rows strategies, columns weighting methods or λ; blue
/// better than single-task, red worse, the value written in each cell.
pub(crate) struct DeltaMHeatmapChart<'a> {
    /// Title above the chart.
    pub title: String,
    /// The numbers.
    pub grid: &'a DeltaMGrid,
}

impl Chart for DeltaMHeatmapChart<'_> {
    fn size(&self) -> (u32, u32) {
        let width = 180 + 110 * self.grid.columns.len() as u32;
        let height = 150 + 56 * self.grid.rows.len() as u32;
        (width.max(640), height.max(220))
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> PlotResult<DB> {
        root.fill(&WHITE)?;
        let root = root.margin(10, 10, 10, 10).titled(&self.title, text_style(22.0))?;
        let (width, height) = root.dim_in_pixel();
        let (left, top) = (170_i32, 40_i32);
        let cell_width = (width as i32 - left - 10) / self.grid.columns.len().max(1) as i32;
        let cell_height = ((height as i32 - top - 50) / self.grid.rows.len().max(1) as i32).min(56);
        let largest = self.grid.cells.iter().flatten().flatten().map(|(d, _)| d.abs()).fold(1e-9, f64::max);
        let centred = |text: &str, size: f64, (x, y): (i32, i32)| {
            root.draw_text(text, &text_style(size).pos(Pos::new(HPos::Center, VPos::Center)), (x, y))
        };
        centred(&self.grid.column_title, 15.0, (left + cell_width * self.grid.columns.len() as i32 / 2, 10))?;
        for (c, column) in self.grid.columns.iter().enumerate() {
            centred(column, 14.0, (left + cell_width * c as i32 + cell_width / 2, top - 12))?;
        }
        for (r, row) in self.grid.rows.iter().enumerate() {
            let y = top + cell_height * r as i32;
            let label_style = text_style(14.0).pos(Pos::new(HPos::Right, VPos::Center));
            root.draw_text(row, &label_style, (left - 8, y + cell_height / 2))?;
            for (c, cell) in self.grid.cells[r].iter().enumerate() {
                let x = left + cell_width * c as i32;
                let corners = [(x + 1, y + 1), (x + cell_width - 1, y + cell_height - 1)];
                let Some((delta, lambda)) = cell else {
                    root.draw(&Rectangle::new(corners, RGBColor(245, 245, 245).filled()))?;
                    continue;
                };
                root.draw(&Rectangle::new(corners, diverging_colour(delta / largest).filled()))?;
                let shown = match lambda {
                    Some(lambda) => format!("{delta:+.2} (λ={})", short_number(*lambda)),
                    None => format!("{delta:+.2}"),
                };
                centred(&shown, 13.0, (x + cell_width / 2, y + cell_height / 2))?;
            }
        }
        let note = "Δm% against single-task, test accuracy at each run's best validation epoch; \
                    + = better (Maninis et al. 2019); grey: no runs";
        let note_style = text_style(12.0).color(&RGBColor(90, 90, 90));
        root.draw_text(note, &note_style, (4, top + cell_height * self.grid.rows.len() as i32 + 14))?;
        Ok(())
    }
}

/// White at 0, blue towards +1, red towards −1 (`t` clamped to [−1, 1]).
fn diverging_colour(t: f64) -> RGBColor {
    let t = t.clamp(-1.0, 1.0);
    let (target, amount) = if t >= 0.0 { ((33.0, 102.0, 172.0), t) } else { ((178.0, 24.0, 43.0), -t) };
    let mix = |channel: f64| (255.0 + (channel - 255.0) * 0.85 * amount) as u8;
    RGBColor(mix(target.0), mix(target.1), mix(target.2))
}

/// Draws the n-th series' marker (circle, triangle, square, cross) at each
/// point; in data coordinates on a chart, in pixels in the legend.
fn draw_markers<DB: DrawingBackend, CT: CoordTranslate>(
    area: &DrawingArea<DB, CT>,
    points: &[CT::From],
    series_index: usize,
    style: ShapeStyle,
) -> PlotResult<DB>
where
    CT::From: Clone,
{
    for point in points.iter().cloned() {
        match series_index % 4 {
            0 => area.draw(&Circle::new(point, 4, style.filled()))?,
            1 => area.draw(&TriangleMarker::new(point, 5, style.filled()))?,
            2 => area.draw(&(EmptyElement::at(point) + Rectangle::new([(-4, -4), (4, 4)], style.filled())))?,
            _ => area.draw(&Cross::new(point, 4, style))?,
        }
    }
    Ok(())
}

/// One curve of a panel in chart coordinates.
struct PanelLine {
    points: Vec<(f64, f64)>,
    dashed: bool,
}

fn text_style(size: f64) -> TextStyle<'static> {
    TextStyle::from((FONT_FAMILY, size).into_font()).color(&BLACK)
}

fn build_chart<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    caption: Option<&str>,
    (x_min, x_max): (f64, f64),
    x_key_points: Vec<f64>,
    (y_min, y_max): (f64, f64),
) -> Result<Chart2d<'a, DB>, DrawingAreaErrorKind<DB::ErrorType>> {
    let mut builder = ChartBuilder::on(area);
    builder.margin(16).x_label_area_size(52).y_label_area_size(72);
    if let Some(caption) = caption {
        builder.caption(caption, text_style(18.0));
    }
    builder.build_cartesian_2d(TickedAxis { linear: (x_min..x_max).into(), ticks: x_key_points }, y_min..y_max)
}

fn configure_mesh<DB: DrawingBackend>(
    chart: &mut Chart2d<'_, DB>,
    x_description: &str,
    y_description: &str,
    format_x: &dyn Fn(&f64) -> String,
) -> PlotResult<DB> {
    // Ticks are computed by steps from the axis start: 0 comes out as 2e-16.
    let y_span = {
        let range = chart.y_range();
        range.end - range.start
    };
    let format_y = |y: &f64| short_number(if y.abs() < 1e-9 * y_span { 0.0 } else { *y });
    chart
        .configure_mesh()
        .x_desc(x_description)
        .y_desc(y_description)
        .x_label_formatter(format_x)
        .y_label_formatter(&format_y)
        .label_style(text_style(14.0))
        .axis_desc_style(text_style(16.0))
        .bold_line_style(RGBColor(220, 220, 220))
        .light_line_style(RGBColor(245, 245, 245))
        .max_light_lines(1)
        .draw()
}

struct LegendEntry {
    label: String,
    colour: RGBColor,
    symbol: LegendSymbol,
}

enum LegendSymbol {
    Line,
    LineWithDot,
    Dashed,
    /// A filled square, for bars.
    Swatch,
    /// The dash pattern and marker of the n-th series of a [`DiagnosticChart`].
    Series(usize),
}

/// Draws the legend in its own column, so it never covers data.
fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[LegendEntry],
    notes: &[&str],
) -> PlotResult<DB> {
    let available_height = area.dim_in_pixel().1 as i32 - 60 - 20 * notes.len() as i32;
    let row_height = (available_height / entries.len().max(1) as i32).clamp(12, 26);
    let top = 40;
    for (entry_index, entry) in entries.iter().enumerate() {
        let y = top + row_height * entry_index as i32;
        let style = entry.colour.stroke_width(3);
        match entry.symbol {
            LegendSymbol::Line | LegendSymbol::LineWithDot => {
                area.draw(&PathElement::new(vec![(4, y), (41, y)], style))?;
            }
            LegendSymbol::Dashed => {
                for dash_start in [4, 18, 32] {
                    area.draw(&PathElement::new(vec![(dash_start, y), (dash_start + 9, y)], style))?;
                }
            }
            LegendSymbol::Swatch => area.draw(&Rectangle::new([(14, y - 7), (30, y + 7)], entry.colour.filled()))?,
            LegendSymbol::Series(index) => {
                let (dash, gap) = SERIES_DASHES[index % SERIES_DASHES.len()].unwrap_or((37, 0));
                for dash_start in (4..41).step_by((dash + gap) as usize) {
                    let dash_end = (dash_start + dash as i32).min(41);
                    area.draw(&PathElement::new(vec![(dash_start, y), (dash_end, y)], style))?;
                }
                draw_markers(area, &[(22, y)], index, entry.colour.stroke_width(2))?;
            }
        }
        if matches!(entry.symbol, LegendSymbol::LineWithDot) {
            area.draw(&Circle::new((22, y), 4, entry.colour.filled()))?;
        }
        // Long labels get a smaller font (down to 10 px) before they lose their middle.
        let longest = entries.iter().map(|e| e.label.chars().count()).max().unwrap_or(1) as f64;
        let fitting = (f64::from(area.dim_in_pixel().0) - 54.0) / (0.6 * longest);
        let size = (f64::from(row_height.min(22)) * 0.68).min(fitting.max(10.0));
        let label_style = text_style(size).pos(Pos::new(HPos::Left, VPos::Center));
        // A label longer than the column loses its middle (about 0.6 em per character):
        // the strategy at the start and the distinguishing setting at the end stay.
        let fits = ((f64::from(area.dim_in_pixel().0) - 54.0) / (0.6 * size)).max(5.0) as usize;
        let chars: Vec<char> = entry.label.chars().collect();
        let label = if chars.len() > fits {
            let head = (fits - 1) / 2;
            let tail = fits - 1 - head;
            chars[..head].iter().chain(['…'].iter()).chain(&chars[chars.len() - tail..]).collect()
        } else {
            entry.label.clone()
        };
        area.draw_text(&label, &label_style, (50, y))?;
    }
    let notes_top = top + row_height * entries.len() as i32 + 12;
    for (note_index, note) in notes.iter().enumerate() {
        let note_style = text_style(13.0).color(&RGBColor(90, 90, 90));
        area.draw_text(note, &note_style, (4, notes_top + 18 * note_index as i32))?;
    }
    Ok(())
}

fn reference_colour(method: &str, index: usize) -> RGBColor {
    if method.starts_with(SINGLE_TASK_STRATEGY) {
        BASELINE_COLOUR
    } else {
        PALETTE[index % PALETTE.len()]
    }
}

/// λ values spanning more than a factor of 4 crowd together at the left of a
/// linear axis (0.25 … 4), so they get a log axis; zero or negative λ cannot.
pub(crate) fn lambdas_need_log_axis(lambdas: &[f64]) -> bool {
    let min = lambdas.iter().copied().fold(f64::INFINITY, f64::min);
    let max = lambdas.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    min > 0.0 && max / min > 4.0
}

/// The smallest and largest value, widened by `fraction` of the span
/// (or by a small fixed amount when all values are equal or there are none).
fn padded_range(values: impl Iterator<Item = f64>, fraction: f64) -> (f64, f64) {
    let (min, max) = values
        .filter(|value| value.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(min, max), value| (min.min(value), max.max(value)));
    if !min.is_finite() {
        return (0.0, 1.0);
    }
    let pad = if max > min { (max - min) * fraction } else { 0.05 * min.abs().max(1.0) };
    (min - pad, max + pad)
}

/// At most `max_points` key points, evenly picked, so axis labels do not overlap.
fn thin(points: Vec<f64>, max_points: usize) -> Vec<f64> {
    let step = points.len().div_ceil(max_points).max(1);
    points.into_iter().step_by(step).collect()
}

/// A number with at most 4 significant digits and no float noise (`exp(ln 0.25)`).
pub(crate) fn short_number(value: f64) -> String {
    if value == 0.0 || !value.is_finite() {
        return format!("{value}");
    }
    let rounded: f64 = format!("{value:.3e}").parse().unwrap_or(value);
    format!("{rounded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_axis_only_when_lambdas_span_more_than_four_times() {
        let cases: [(&[f64], bool); 5] = [
            (&[0.25, 0.5, 1.0, 2.0, 4.0], true),
            (&[0.5, 1.0, 2.0], false),
            (&[0.0, 1.0, 10.0], false),
            (&[1.0], false),
            (&[], false),
        ];
        for (lambdas, expected) in cases {
            assert_eq!(lambdas_need_log_axis(lambdas), expected, "λ = {lambdas:?}");
        }
    }

    #[test]
    fn short_numbers_drop_float_noise() {
        let cases = [(0.25_f64.ln().exp(), "0.25"), (0.001, "0.001"), (4.0, "4"), (0.123456, "0.1235"), (0.0, "0")];
        for (value, expected) in cases {
            assert_eq!(short_number(value), expected, "{value}");
        }
    }
}
