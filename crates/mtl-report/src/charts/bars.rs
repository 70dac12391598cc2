//! The strategy comparison as grouped bars: per method one bar per task (mean over
//! seeds, ±1 std whisker) in a colour per task, from 0 (a bar's length is its value),
//! the single-task baselines as dashed lines in the task's colour.
//!
//! ```text
//! let chart = StrategyComparisonChart { title, data: &aggregate::compare_strategies(&runs) };
//! ```

use plotters::coord::Shift;
use plotters::prelude::*;

use super::common::{
    build_chart, configure_mesh, draw_legend, padded_range, text_width, titled, LegendEntry, PlotResult,
    BASELINE_COLOUR, CATEGORICAL, LEGEND_WIDTH,
};
use super::{Chart, Tooltip};
use crate::aggregate::StrategyComparison;

/// Final test accuracy of each method at its chosen λ.
pub(crate) struct StrategyComparisonChart<'a> {
    /// Title above the chart.
    pub title: String,
    /// The numbers.
    pub data: &'a StrategyComparison,
    /// The metrics the bars show, e.g. `accuracy` or `accuracy, map, r2` (each task's headline).
    pub metrics: &'a str,
}

impl StrategyComparisonChart<'_> {
    /// Pixels per method: room for its label (tick labels are 14 px) under its bars.
    fn method_width(&self) -> u32 {
        let widest = self.data.multi_task.iter().map(|m| text_width(&m.label(), 14.0)).fold(0.0, f64::max);
        (widest.ceil() as u32 + 24).max(160)
    }
}

impl Chart for StrategyComparisonChart<'_> {
    fn size(&self) -> (u32, u32) {
        let width = LEGEND_WIDTH + 120 + self.method_width() * self.data.multi_task.len() as u32;
        (width.max(1000), 560)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>, _: &mut Vec<Tooltip>) -> PlotResult<DB> {
        root.fill(&WHITE)?;
        let root = titled(&root.margin(10, 0, 0, 0), &self.title, 24.0)?;
        let (plot_area, legend_area) = root.split_horizontally(root.dim_in_pixel().0 - LEGEND_WIDTH);

        let methods = &self.data.multi_task;
        let bar_tops = methods
            .iter()
            .flat_map(|method| method.test_accuracy_by_task.iter().flatten())
            .flat_map(|stats| [stats.mean + stats.std, stats.mean - stats.std]);
        let reference_means = self
            .data
            .references
            .iter()
            .flat_map(|reference| reference.test_accuracy_by_task.iter().flatten())
            .map(|stats| stats.mean);
        // From 0: a bar's length is its value, so the axis is never cut (the table
        // below the chart has the numbers to four digits); below 0 only for a negative R².
        let values: Vec<f64> = bar_tops.chain(reference_means).chain([0.0]).collect();
        let (low, high) = padded_range(values.iter().copied(), 0.06);
        let below_zero = values.iter().any(|&v| v < 0.0);
        let (y_min, y_max) = (if below_zero { low.max(-1.0) } else { 0.0 }, high.min(1.0));

        let (x_min, x_max) = (-0.5, methods.len().max(1) as f64 - 0.5);
        let labels: Vec<String> = methods.iter().map(|method| method.label()).collect();
        let format_x = |x: &f64| labels.get(x.round() as usize).cloned().unwrap_or_default();
        let method_positions = (0..methods.len()).map(|index| index as f64).collect();
        let mut chart = build_chart(&plot_area, None, (x_min, x_max), method_positions, (y_min, y_max))?;
        configure_mesh(&mut chart, "strategy", &format!("test {}", self.metrics), &format_x)?;

        let task_colour = |task_index: usize| CATEGORICAL[task_index % CATEGORICAL.len()];
        let bar_width = 0.8 / self.data.tasks.len().max(1) as f64;
        for (method_index, method) in methods.iter().enumerate() {
            for (task_index, stats) in method.test_accuracy_by_task.iter().enumerate() {
                let Some(stats) = stats else { continue };
                let left = method_index as f64 - 0.4 + bar_width * task_index as f64;
                let (right, centre) = (left + 0.9 * bar_width, left + 0.45 * bar_width);
                let colour = task_colour(task_index);
                chart.draw_series([Rectangle::new([(left, 0.0), (right, stats.mean)], colour.mix(0.8).filled())])?;
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
            .map(|(task_index, task)| LegendEntry::swatch(task.clone(), task_colour(task_index)))
            .collect();
        for reference in &self.data.references {
            for (task_index, stats) in reference.test_accuracy_by_task.iter().enumerate() {
                let Some(stats) = stats else { continue };
                let colour = task_colour(task_index);
                let ends = [(x_min, stats.mean), (x_max, stats.mean)];
                chart.draw_series(DashedLineSeries::new(ends, 10, 6, colour.stroke_width(2)))?;
                let label = format!("{}: {}", reference.method, self.data.tasks[task_index]);
                legend_entries.push(LegendEntry::line(label, colour, Some((10, 6))));
            }
        }
        let selection = if self.metrics == "accuracy" { "mean val accuracy" } else { "validation score" };
        let note = format!("bars: mean over seeds; whiskers: ±1 sample std; λ: best {selection}; y axis from 0");
        draw_legend(&legend_area, &legend_entries, &[note.as_str()])
    }
}
