//! Line charts: a final metric against λ (a line per method), and a training
//! diagnostic (task weights, gradient cosines) against the epoch, a line per group
//! and task (pair), mean over seeds.
//!
//! ```text
//! let spe = steps_per_epoch(&runs, &groups, &diagnostic_rows);
//! let chart = DiagnosticChart { title, y_description: "task weight", y_range: None, zero_line: false,
//!                               groups: &groups, curves: &curves, steps_per_epoch: &spe, notes: vec![], left_out: &[] };
//! ```

use std::collections::{BTreeMap, BTreeSet};

use mtl_store::{DiagnosticRow, ParamValue, RunId, RunRecord};
use plotters::coord::Shift;
use plotters::prelude::*;

use super::common::{
    baseline_colour, build_chart, configure_mesh, draw_legend, draw_marker, group_colours, lambdas_need_log_axis,
    padded_range, short_number, thin, titled, Dash, LegendEntry, LegendSymbol, PlotResult, BASELINE_COLOUR,
    CATEGORICAL, LEGEND_WIDTH, SERIES_SHAPES,
};
use super::{Chart, Tooltip};
use crate::aggregate::{DiagnosticSeries, MeanDiagnostics, MetricByLambda, RunGroup, SINGLE_TASK_STRATEGY};

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

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>, tooltips: &mut Vec<Tooltip>) -> PlotResult<DB> {
        root.fill(&WHITE)?;
        let root = titled(&root.margin(10, 0, 0, 0), &self.title, 24.0)?;
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
            let colour = CATEGORICAL[line_index % CATEGORICAL.len()];
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
            chart.draw_series(means.iter().map(|&point| Circle::new(point, 4, colour.filled())))?;
            for ((lambda, stats), point) in line.points.iter().zip(&means) {
                let text = format!(
                    "{} λ={}: {} {:.4} ± {:.4} ({} seeds)",
                    line.method,
                    short_number(*lambda),
                    self.y_description,
                    stats.mean,
                    stats.std,
                    stats.n
                );
                tooltips.push(Tooltip { centre: chart.backend_coord(point), radius: 7, text });
            }
            let symbol = LegendSymbol::Line { dash: None, width: 2, marker: Some((SERIES_SHAPES[0], 4, true)) };
            legend_entries.push(LegendEntry { label: line.method.clone(), colour, symbol });
        }
        let mut n_baselines = 0;
        for (method, stats) in &self.data.references {
            let colour = if method.starts_with(SINGLE_TASK_STRATEGY) {
                n_baselines += 1;
                baseline_colour(n_baselines - 1)
            } else {
                CATEGORICAL[(legend_entries.len()) % CATEGORICAL.len()]
            };
            let ends = [(x_min, stats.mean), (x_max, stats.mean)];
            chart.draw_series(DashedLineSeries::new(ends, 10, 6, colour.stroke_width(2)))?;
            legend_entries.push(LegendEntry::line(format!("{method} (n={})", stats.n), colour, Some((10, 6))));
        }
        draw_legend(&legend_area, &legend_entries, &["mean over seeds; band: ±1 sample std"])
    }
}

/// A training diagnostic against the epoch, averaged over seeds: one line per
/// (group, series), the colour naming the group (as in the learning curves) and
/// the dash pattern and marker naming the task or task pair.
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
    /// Per group, optimiser steps per epoch ([`steps_per_epoch`]); a group without is left out.
    pub steps_per_epoch: &'a [Option<f64>],
    /// Notes under the legend, e.g. which groups are left out and why.
    pub notes: Vec<String>,
    /// Indices of groups not drawn (see [`super::omitted::Verdict::Draw`]).
    pub left_out: &'a [usize],
}

/// Dash and gap lengths of the n-th series' line; `None` is solid.
const SERIES_DASHES: [Dash; 4] = [None, Some((10, 6)), Some((3, 4)), Some((16, 4))];

/// A group's index and its series, each as `(epoch, mean)` points.
type GroupLines<'a> = (usize, Vec<(&'a DiagnosticSeries, Vec<(f64, f64)>)>);

impl DiagnosticChart<'_> {
    /// Each drawn group's index and curves with x in epochs.
    fn lines(&self) -> Vec<GroupLines<'_>> {
        let mut lines = Vec::new();
        for (group_index, curves) in self.curves.iter().enumerate() {
            let Some(Some(per_epoch)) = self.steps_per_epoch.get(group_index) else { continue };
            if self.left_out.contains(&group_index) {
                continue;
            }
            let series: Vec<(&DiagnosticSeries, Vec<(f64, f64)>)> = curves
                .iter()
                .filter(|(_, points)| !points.is_empty())
                .map(|(series, points)| {
                    (series, points.iter().map(|&(step, v)| (step as f64 / per_epoch, v)).collect())
                })
                .collect();
            if !series.is_empty() {
                lines.push((group_index, series));
            }
        }
        lines
    }
}

impl Chart for DiagnosticChart<'_> {
    fn size(&self) -> (u32, u32) {
        (1100, 560)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>, _: &mut Vec<Tooltip>) -> PlotResult<DB> {
        root.fill(&WHITE)?;
        let root = titled(&root.margin(10, 0, 0, 0), &self.title, 24.0)?;
        let (plot_area, legend_area) = root.split_horizontally(root.dim_in_pixel().0 - LEGEND_WIDTH);

        let lines = self.lines();
        let all_series: BTreeSet<&DiagnosticSeries> =
            lines.iter().flat_map(|(_, series)| series.iter().map(|(key, _)| *key)).collect();
        let series_index = |series: &DiagnosticSeries| all_series.iter().position(|known| *known == series);
        let all_points = || lines.iter().flat_map(|(_, series)| series.iter().flat_map(|(_, points)| points));
        let last_epoch = all_points().map(|&(epoch, _)| epoch).fold(0.0, f64::max);
        let y_range = self.y_range.unwrap_or_else(|| padded_range(all_points().map(|&(_, value)| value), 0.06));
        let x_max = last_epoch.max(1.0) * 1.03;
        let mut ticks: Vec<f64> = (0..=last_epoch.ceil() as u32).map(f64::from).collect();
        if ticks.len() <= 2 {
            ticks = (0..=2 * last_epoch.ceil() as u32).map(|half| f64::from(half) / 2.0).collect();
        }

        let mut chart = build_chart(&plot_area, None, (0.0, x_max), thin(ticks, 10), y_range)?;
        configure_mesh(&mut chart, "epoch", self.y_description, &|epoch: &f64| short_number(*epoch))?;
        if self.zero_line {
            chart.draw_series([PathElement::new(vec![(0.0, 0.0), (x_max, 0.0)], BASELINE_COLOUR.stroke_width(1))])?;
        }

        let colours = group_colours(self.groups);
        let mut legend_entries = vec![LegendEntry::heading("colour: method")];
        for (group_index, series) in &lines {
            let colour = colours[*group_index];
            for (key, points) in series {
                let index = series_index(key).unwrap_or_default();
                let style = colour.stroke_width(2);
                match SERIES_DASHES[index % SERIES_DASHES.len()] {
                    None => chart.draw_series(LineSeries::new(points.clone(), style))?,
                    Some((dash, gap)) => chart.draw_series(DashedLineSeries::new(points.clone(), dash, gap, style))?,
                };
                // At most a dozen markers per line, so long runs stay readable.
                let marker_every = points.len().div_ceil(12).max(1);
                let shape = SERIES_SHAPES[index % SERIES_SHAPES.len()];
                for &point in points.iter().step_by(marker_every) {
                    draw_marker(chart.plotting_area(), point, shape, 4, colour.filled())?;
                }
            }
            legend_entries.push(LegendEntry::line(self.groups[*group_index].label(), colour, None));
        }
        let pairwise = all_series.iter().any(|(_, other)| !other.is_empty());
        legend_entries.push(LegendEntry::heading(if pairwise { "line: task pair" } else { "line: task" }));
        for (index, (task, other)) in all_series.iter().enumerate() {
            let label = if other.is_empty() { task.clone() } else { format!("{task} · {other}") };
            let marker = Some((SERIES_SHAPES[index % SERIES_SHAPES.len()], 4, true));
            let symbol = LegendSymbol::Line { dash: SERIES_DASHES[index % SERIES_DASHES.len()], width: 2, marker };
            legend_entries.push(LegendEntry { label, colour: BASELINE_COLOUR, symbol });
        }
        let mut notes = vec!["mean over seeds; x: optimiser step / steps per epoch"];
        notes.extend(self.notes.iter().map(String::as_str));
        draw_legend(&legend_area, &legend_entries, &notes)
    }
}

/// Optimiser steps per epoch of each group, aligned with `groups`: from a run's
/// stored `steps` (the whole run's) over its epochs (`epochs`, else the last logged),
/// or else from its diagnostics (the last window ends at the last step of the last
/// epoch). `None` for a group none of whose runs tells.
pub(crate) fn steps_per_epoch(runs: &[RunRecord], groups: &[RunGroup], rows: &[DiagnosticRow]) -> Vec<Option<f64>> {
    let run_by_id: BTreeMap<RunId, &RunRecord> = runs.iter().map(|run| (run.id, run)).collect();
    let mut last_row_by_run: BTreeMap<RunId, (u64, u32)> = BTreeMap::new();
    for row in rows {
        let last = last_row_by_run.entry(row.run).or_insert((row.step, row.epoch));
        *last = (last.0.max(row.step), last.1.max(row.epoch));
    }
    let from_params = |run: &RunRecord| {
        let number = |key: &str| match run.params.get(key) {
            Some(ParamValue::Num(value)) if value.is_finite() && *value > 0.0 => Some(*value),
            _ => None,
        };
        let epochs = number("epochs").or(run.final_epoch.map(f64::from).filter(|epochs| *epochs > 0.0))?;
        Some(number("steps")? / epochs)
    };
    let from_rows = |id: &RunId| {
        let &(step, epoch) = last_row_by_run.get(id)?;
        (epoch > 0).then(|| step as f64 / f64::from(epoch))
    };
    groups
        .iter()
        .map(|group| {
            group
                .runs
                .iter()
                .find_map(|id| run_by_id.get(id).and_then(|run| from_params(run)).or_else(|| from_rows(id)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use mtl_store::DiagnosticPoint;

    use super::*;

    #[test]
    fn steps_per_epoch_come_from_params_else_from_the_diagnostics() {
        let run = |id: i64, params: &[(&str, f64)]| RunRecord {
            id: RunId(id),
            params: params.iter().map(|(k, v)| (k.to_string(), ParamValue::Num(*v))).collect(),
            ..RunRecord::default()
        };
        let runs = [run(1, &[("steps", 600.0), ("epochs", 6.0)]), run(2, &[("epochs", 3.0)]), run(3, &[])];
        let row = |run: i64, step: u64, epoch: u32| DiagnosticRow {
            run: RunId(run),
            step,
            epoch,
            point: DiagnosticPoint { name: "weight".into(), task: "a".into(), other: String::new(), value: 1.0 },
        };
        // Run 2 logged every 10 steps of 40-step epochs; its last window ends at step 120.
        let rows = [row(2, 10, 1), row(2, 50, 2), row(2, 120, 3), row(1, 100, 1)];
        let group = |ids: &[i64]| RunGroup {
            method: "hard".into(),
            lambda: None,
            runs: ids.iter().map(|&i| RunId(i)).collect(),
        };
        let got = steps_per_epoch(&runs, &[group(&[1]), group(&[2]), group(&[3]), group(&[3, 2])], &rows);
        assert_eq!(got, [Some(100.0), Some(40.0), None, Some(40.0)]);
    }
}
