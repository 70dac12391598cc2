//! Learning curves of one task, averaged over seeds per group: loss (train solid,
//! val dashed) and the task's headline metric on val (accuracy, r2, map). Up to
//! [`MAX_LINES_PER_PANEL`] lines share a panel; more groups get small multiples, a loss
//! panel and a metric panel per group,
//! every panel on the same axes, with the single-task baseline drawn thin and light
//! behind each for reference.
//!
//! ```text
//! let curves = aggregate::mean_curves(&groups, &rows, "shapes");
//! let chart = LearningCurvesChart { title, groups: &groups, curves: &curves, metric: "accuracy" };
//! ```

use plotters::coord::Shift;
use plotters::prelude::*;

use super::common::{
    build_chart, configure_mesh, draw_left, draw_legend, fit_text, group_colours, padded_range, short_number, thin,
    titled, AreaResult, Dash, LegendEntry, PlotResult, BASELINE_COLOUR, LEGEND_WIDTH,
};
use super::{Chart, Tooltip};
use crate::aggregate::{is_baseline, MeanCurves, RunGroup};

/// Lines in one panel at most; the loss panel has two per group.
const MAX_LINES_PER_PANEL: usize = 6;
/// Groups per row of small multiples (each a loss and an accuracy panel).
const GROUPS_PER_ROW: usize = 2;
const PANEL_WIDTH: u32 = 330;
const PANEL_HEIGHT: u32 = 300;
const VAL_DASH: Dash = Some((8, 5));
const CONTEXT_COLOUR: RGBColor = RGBColor(190, 190, 190);

/// Learning curves of one task.
pub(crate) struct LearningCurvesChart<'a> {
    /// Title above the panels.
    pub title: String,
    /// The groups, in the order of `curves`.
    pub groups: &'a [RunGroup],
    /// Per-group curves from [`crate::aggregate::mean_curves`].
    pub curves: &'a [MeanCurves],
    /// The metric of the second panel: the task's headline one (accuracy, r2, map).
    pub metric: &'a str,
}

/// One curve of a panel in chart coordinates, and how it is drawn.
struct PanelLine {
    points: Vec<(f64, f64)>,
    colour: RGBColor,
    dash: Dash,
    width: u32,
}

impl LearningCurvesChart<'_> {
    /// The groups with curves, by index.
    fn drawn(&self) -> Vec<usize> {
        (0..self.groups.len()).filter(|&i| self.curves.get(i).is_some_and(|c| !c.is_empty())).collect()
    }

    fn small_multiples(&self) -> bool {
        2 * self.drawn().len() > MAX_LINES_PER_PANEL
    }

    /// Experiments without a validation split show the test curves instead, and say so.
    fn split(&self) -> &'static str {
        if self.curves.iter().any(|c| c.keys().any(|(split, _)| split == "val")) {
            "val"
        } else {
            "test"
        }
    }

    fn points(&self, group_index: usize, split: &str, metric: &str) -> Option<Vec<(f64, f64)>> {
        let points = self.curves.get(group_index)?.get(&(split.to_string(), metric.to_string()))?;
        Some(points.iter().map(|&(epoch, value)| (f64::from(epoch), value)).collect())
    }

    /// A group's loss lines (train solid, val dashed) and accuracy line.
    fn group_lines(&self, group_index: usize, colour: RGBColor, width: u32) -> (Vec<PanelLine>, Vec<PanelLine>) {
        let split = self.split();
        let line = |points, dash| PanelLine { points, colour, dash, width };
        let loss = [("train", None), (split, VAL_DASH)]
            .into_iter()
            .filter_map(|(s, dash)| Some(line(self.points(group_index, s, "loss")?, dash)))
            .collect();
        let accuracy = self.points(group_index, split, self.metric).map(|p| line(p, None)).into_iter().collect();
        (loss, accuracy)
    }

    fn ranges(&self) -> (f64, (f64, f64), (f64, f64)) {
        let drawn = self.drawn();
        let lines: Vec<(Vec<PanelLine>, Vec<PanelLine>)> =
            drawn.iter().map(|&i| self.group_lines(i, BASELINE_COLOUR, 1)).collect();
        let loss = lines.iter().flat_map(|(l, _)| l).flat_map(|l| l.points.iter());
        let accuracy = lines.iter().flat_map(|(_, a)| a).flat_map(|l| l.points.iter());
        let max_epoch = loss.clone().chain(accuracy.clone()).map(|p| p.0).fold(1.0, f64::max);
        (max_epoch, padded_range(loss.map(|p| p.1), 0.06), padded_range(accuracy.map(|p| p.1), 0.06))
    }
}

impl Chart for LearningCurvesChart<'_> {
    fn size(&self) -> (u32, u32) {
        if !self.small_multiples() {
            return (1400, 560);
        }
        let rows = self.drawn().len().div_ceil(GROUPS_PER_ROW) as u32;
        (LEGEND_WIDTH + 2 * GROUPS_PER_ROW as u32 * PANEL_WIDTH, 60 + rows * PANEL_HEIGHT)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>, _: &mut Vec<Tooltip>) -> PlotResult<DB> {
        root.fill(&WHITE)?;
        let root = titled(&root.margin(10, 0, 0, 0), &self.title, 24.0)?;
        let (panels_area, legend_area) = root.split_horizontally(root.dim_in_pixel().0 - LEGEND_WIDTH);
        let colours = group_colours(self.groups);
        let (max_epoch, loss_range, accuracy_range) = self.ranges();
        let split = self.split();
        let accuracy_name = if split == "val" {
            format!("val {}", self.metric)
        } else {
            format!("test {} (no val split)", self.metric)
        };
        let drawn = self.drawn();

        let mut legend_entries = vec![LegendEntry::heading("colour: group")];
        legend_entries.extend(drawn.iter().map(|&i| LegendEntry::line(self.groups[i].label(), colours[i], None)));
        legend_entries.push(LegendEntry::heading("line"));
        legend_entries.push(LegendEntry::line("train loss", BASELINE_COLOUR, None));
        legend_entries.push(LegendEntry::line(format!("{split} loss"), BASELINE_COLOUR, VAL_DASH));
        legend_entries.push(LegendEntry::line(accuracy_name.clone(), BASELINE_COLOUR, None));

        if !self.small_multiples() {
            let (loss_area, accuracy_area) = panels_area.split_horizontally(panels_area.dim_in_pixel().0 / 2);
            let mut loss_lines = Vec::new();
            let mut accuracy_lines = Vec::new();
            for &i in &drawn {
                let (loss, accuracy) = self.group_lines(i, colours[i], 2);
                loss_lines.extend(loss);
                accuracy_lines.extend(accuracy);
            }
            let loss_caption = format!("loss (train solid, {split} dashed)");
            draw_panel(&loss_area, Some(&loss_caption), "loss", loss_range, max_epoch, &loss_lines)?;
            let name = Some(accuracy_name.as_str());
            draw_panel(&accuracy_area, name, self.metric, accuracy_range, max_epoch, &accuracy_lines)?;
            return draw_legend(&legend_area, &legend_entries, &["mean over seeds"]);
        }

        // The baselines, thin and light behind every other group's panels.
        let context: Vec<(Vec<PanelLine>, Vec<PanelLine>)> = drawn
            .iter()
            .filter(|&&i| is_baseline(&self.groups[i]))
            .map(|&i| self.group_lines(i, CONTEXT_COLOUR, 1))
            .collect();
        let rows = drawn.len().div_ceil(GROUPS_PER_ROW);
        let cells = panels_area.split_evenly((rows, GROUPS_PER_ROW));
        for (cell, &group_index) in cells.iter().zip(&drawn) {
            let group = &self.groups[group_index];
            let colour = colours[group_index];
            let (mut loss, mut accuracy) = (Vec::new(), Vec::new());
            if !is_baseline(group) {
                for (context_loss, context_accuracy) in &context {
                    loss.extend(context_loss.iter().map(|l| PanelLine { points: l.points.clone(), ..*l }));
                    accuracy.extend(context_accuracy.iter().map(|l| PanelLine { points: l.points.clone(), ..*l }));
                }
            }
            let (own_loss, own_accuracy) = self.group_lines(group_index, colour, 2);
            loss.extend(own_loss);
            accuracy.extend(own_accuracy);
            // The group's name over its two panels, after a sample of its colour.
            let (title_strip, panels) = cell.split_vertically(34);
            title_strip.draw(&PathElement::new(vec![(16, 20), (44, 20)], colour.stroke_width(4)))?;
            let available = f64::from(title_strip.dim_in_pixel().0) - 64.0;
            draw_left(&title_strip, &fit_text(&group.label(), 16.0, available), 16.0, &BLACK, (52, 20))?;
            let (loss_panel, accuracy_panel) = panels.split_horizontally(panels.dim_in_pixel().0 / 2);
            draw_panel(&loss_panel, None, "loss", loss_range, max_epoch, &loss)?;
            draw_panel(&accuracy_panel, None, self.metric, accuracy_range, max_epoch, &accuracy)?;
        }
        let notes =
            ["mean over seeds; one group per pair of panels, all on the same axes; thin grey: single-task baseline"];
        draw_legend(&legend_area, &legend_entries, &notes)
    }
}

/// One panel with its caption, if any, and lines.
fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    caption: Option<&str>,
    y_description: &str,
    y_range: (f64, f64),
    max_epoch: f64,
    lines: &[PanelLine],
) -> AreaResult<(), DB> {
    let epochs: Vec<f64> = (1..=max_epoch as u32).map(f64::from).collect();
    let max_ticks = if area.dim_in_pixel().0 < 400 { 6 } else { 10 };
    let x_range = (0.7, max_epoch + 0.3);
    let mut chart = build_chart(area, caption.map(|c| (c, &BLACK)), x_range, thin(epochs, max_ticks), y_range)?;
    configure_mesh(&mut chart, "epoch", y_description, &|epoch: &f64| short_number(*epoch))?;
    for line in lines {
        let style = line.colour.stroke_width(line.width);
        match line.dash {
            None => chart.draw_series(LineSeries::new(line.points.clone(), style))?,
            Some((dash, gap)) => chart.draw_series(DashedLineSeries::new(line.points.clone(), dash, gap, style))?,
        };
    }
    Ok(())
}
