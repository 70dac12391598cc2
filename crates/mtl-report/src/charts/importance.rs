//! Which settings matter: horizontal bars, one row per setting (the largest Δm% share
//! first), in each row one bar per objective (Δm% and each task metric) whose length is
//! the setting's η² on an axis from 0 to 1, the value written at its end; the legend and
//! what η² means in the column at the right.
//!
//! ```text
//! let chart = ImportanceChart { title, ranking: &Ranking::of(&compare(&runs, &importance_spec(&known))) };
//! ```

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::common::{
    draw_left, draw_legend, fit_text, sequential_shade, short_number, text_style, text_width, titled, wrap_text,
    LegendEntry, PlotResult, CATEGORICAL, LEGEND_WIDTH, NOTE_COLOUR,
};
use super::{Chart, Tooltip};
use crate::importance::Ranking;

const TITLE_SIZE: f64 = 22.0;
/// Height the title takes (plotters' `titled`: the text and a margin).
const TITLE_HEIGHT: i32 = 40;
const MARGIN: i32 = 10;
const LABEL_SIZE: f64 = 14.0;
const SMALL_SIZE: f64 = 12.0;
const BAR_HEIGHT: i32 = 16;
const BAR_GAP: i32 = 3;
/// Space between two settings' bars.
const ROW_PADDING: i32 = 20;
/// The axis from 0 to 1.
const AXIS_WIDTH: i32 = 560;
/// Room right of the axis for a value written after a bar of 1.
const VALUE_ROOM: i32 = 48;
/// Above the first row, and below the last for the tick labels and the axis description.
const PLOT_TOP: i32 = 14;
const AXIS_BELOW: i32 = 58;
const LEGEND_ROW: i32 = 26;
const NOTE_SIZE: f64 = 12.0;
const NOTE_LINE: i32 = 17;
const BAND: RGBColor = RGBColor(246, 246, 246);
const GRID: RGBColor = RGBColor(220, 220, 220);
/// Δm%, the objective over every task: dark, apart from the tasks' hues.
const DELTA_M_COLOUR: RGBColor = RGBColor(64, 64, 64);

/// The ranking of the settings of an experiment's seed groups.
pub(crate) struct ImportanceChart<'a> {
    /// Title above the chart.
    pub title: String,
    /// The numbers: [`Ranking::of`] the comparison `mtl importance` ranks.
    pub ranking: &'a Ranking,
}

/// What η² is, under the chart and in the page's caption.
pub(crate) fn eta_squared_note(ranking: &Ranking) -> String {
    let mut note = format!(
        "η²: the share of the variance of an objective across the {} seed groups (each the mean over its seeds) \
         that a setting explains on its own, its main effect; on a full grid, the exact main-effect share of a \
         functional ANOVA (fANOVA). Where settings vary together the shares can sum to more than 1.",
        ranking.n_groups
    );
    if ranking.settings.iter().any(|s| s.shares.iter().any(Option::is_none)) {
        note.push_str(" –: the objective does not vary.");
    }
    note.push_str(" The command mtl importance prints the numbers.");
    note
}

/// `delta_m` as `Δm%`, `left.test.accuracy` as `left test accuracy`.
fn objective_label(objective: &str) -> String {
    if objective == "delta_m" {
        "Δm%".to_string()
    } else {
        objective.replace('.', " ")
    }
}

/// Each objective's colour: Δm% dark; a task's metrics in its hue (as in the strategy
/// chart: tasks in name order), light to dark when it has several.
fn objective_colours(objectives: &[String]) -> Vec<RGBColor> {
    let task = |objective: &String| objective.rsplitn(3, '.').nth(2).map(str::to_string);
    let mut tasks: Vec<String> = objectives.iter().filter_map(task).collect();
    tasks.dedup();
    let mut seen = vec![0; tasks.len()];
    objectives
        .iter()
        .map(|objective| {
            let Some(index) = task(objective).and_then(|t| tasks.iter().position(|known| *known == t)) else {
                return DELTA_M_COLOUR;
            };
            let hue = CATEGORICAL[index % CATEGORICAL.len()];
            let n_metrics = objectives.iter().filter(|o| task(o).as_ref() == Some(&tasks[index])).count();
            seen[index] += 1;
            match n_metrics {
                1 => hue,
                n => sequential_shade(hue, 0.15 + 0.7 * (seen[index] - 1) as f64 / (n - 1) as f64),
            }
        })
        .collect()
}

/// Where everything goes, in pixels of the area below the title.
struct Layout {
    width: i32,
    height: i32,
    /// The axis's 0: right of the settings' labels.
    left: i32,
    row_height: i32,
    colours: Vec<RGBColor>,
    legend: Vec<LegendEntry>,
    /// The height of the bars and the legend beside them; the notes go below.
    body_height: i32,
    notes: Vec<String>,
}

impl ImportanceChart<'_> {
    fn levels_text(levels: usize) -> String {
        format!("{levels} values")
    }

    fn layout(&self) -> Layout {
        let ranking = self.ranking;
        let widest_label = ranking
            .settings
            .iter()
            .map(|s| text_width(&s.setting, LABEL_SIZE).max(text_width(&Self::levels_text(s.levels), SMALL_SIZE)))
            .fold(0.0, f64::max);
        let left = (widest_label.ceil() as i32 + 20).clamp(100, 320);
        let row_height = (BAR_HEIGHT + BAR_GAP) * ranking.objectives.len().max(1) as i32 - BAR_GAP + ROW_PADDING;
        let width = left + AXIS_WIDTH + VALUE_ROOM + LEGEND_WIDTH as i32;
        let colours = objective_colours(&ranking.objectives);
        let legend: Vec<LegendEntry> = (ranking.objectives.iter().zip(&colours))
            .map(|(objective, colour)| LegendEntry::swatch(objective_label(objective), *colour))
            .collect();
        let notes = wrap_text(&eta_squared_note(ranking), NOTE_SIZE, f64::from(width - 8));
        let plot_height = PLOT_TOP + row_height * ranking.settings.len().max(1) as i32 + AXIS_BELOW;
        let body_height = plot_height.max(40 + LEGEND_ROW * legend.len() as i32 + 10);
        let height = TITLE_HEIGHT + body_height + NOTE_LINE * notes.len() as i32 + 2 * MARGIN;
        Layout { width: width + 2 * MARGIN, height, left, row_height, colours, legend, body_height, notes }
    }
}

impl Chart for ImportanceChart<'_> {
    fn size(&self) -> (u32, u32) {
        let layout = self.layout();
        (layout.width as u32, layout.height as u32)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>, tooltips: &mut Vec<Tooltip>) -> PlotResult<DB> {
        root.fill(&WHITE)?;
        let layout = self.layout();
        let margin = MARGIN as u32;
        let root = titled(&root.margin(margin, margin, margin, margin), &self.title, TITLE_SIZE)?;
        let (body, notes_area) = root.split_vertically(layout.body_height);
        let (plot, legend_area) = body.split_horizontally(body.dim_in_pixel().0 - LEGEND_WIDTH);
        let offset = plot.get_base_pixel();
        let ranking = self.ranking;
        let (left, row_height) = (layout.left, layout.row_height);
        let bottom = PLOT_TOP + row_height * ranking.settings.len() as i32;
        let x_of = |share: f64| left + (share.clamp(0.0, 1.0) * f64::from(AXIS_WIDTH)).round() as i32;

        // Every other setting on a light band, so that each row's bars read as one.
        for row in (1..ranking.settings.len()).step_by(2) {
            let top = PLOT_TOP + row_height * row as i32;
            plot.draw(&Rectangle::new([(0, top), (left + AXIS_WIDTH + VALUE_ROOM, top + row_height)], BAND.filled()))?;
        }
        let centred = Pos::new(HPos::Center, VPos::Top);
        for tick in 0..=5 {
            let share = f64::from(tick) / 5.0;
            let x = x_of(share);
            plot.draw(&PathElement::new(vec![(x, PLOT_TOP), (x, bottom)], GRID.stroke_width(1)))?;
            plot.draw(&PathElement::new(vec![(x, bottom), (x, bottom + 5)], BLACK.stroke_width(1)))?;
            plot.draw_text(&short_number(share), &text_style(LABEL_SIZE).pos(centred), (x, bottom + 8))?;
        }
        plot.draw(&PathElement::new(vec![(left, PLOT_TOP), (left, bottom)], BLACK.stroke_width(1)))?;
        plot.draw(&PathElement::new(vec![(left, bottom), (x_of(1.0), bottom)], BLACK.stroke_width(1)))?;
        let description = "share of variance explained (η²)";
        plot.draw_text(description, &text_style(16.0).pos(centred), (x_of(0.5), bottom + 32))?;

        let right = Pos::new(HPos::Right, VPos::Center);
        for (row, setting) in ranking.settings.iter().enumerate() {
            let top = PLOT_TOP + row_height * row as i32 + ROW_PADDING / 2;
            let middle = PLOT_TOP + row_height * row as i32 + row_height / 2;
            let label = fit_text(&setting.setting, LABEL_SIZE, f64::from(left - 12));
            plot.draw_text(&label, &text_style(LABEL_SIZE).pos(right), (left - 8, middle - 8))?;
            let levels = Self::levels_text(setting.levels);
            plot.draw_text(&levels, &text_style(SMALL_SIZE).color(&NOTE_COLOUR).pos(right), (left - 8, middle + 9))?;
            for (index, (objective, share)) in ranking.objectives.iter().zip(&setting.shares).enumerate() {
                let y = top + (BAR_HEIGHT + BAR_GAP) * index as i32;
                let y_middle = y + BAR_HEIGHT / 2;
                let Some(share) = share else {
                    draw_left(&plot, "–", SMALL_SIZE, &NOTE_COLOUR, (left + 6, y_middle))?;
                    continue;
                };
                let end = x_of(*share);
                let bar =
                    Rectangle::new([(left, y), (end.max(left + 1), y + BAR_HEIGHT)], layout.colours[index].filled());
                plot.draw(&bar)?;
                draw_left(&plot, &format!("{share:.2}"), SMALL_SIZE, &BLACK, (end + 4, y_middle))?;
                tooltips.push(Tooltip {
                    centre: (offset.0 + end + 16, offset.1 + y_middle),
                    radius: BAR_HEIGHT / 2 + 4,
                    text: format!("{} ({levels}): {} η² = {share:.4}", setting.setting, objective_label(objective)),
                });
            }
        }
        for (index, line) in layout.notes.iter().enumerate() {
            draw_left(&notes_area, line, NOTE_SIZE, &NOTE_COLOUR, (4, NOTE_LINE / 2 + NOTE_LINE * index as i32))?;
        }
        draw_legend(&legend_area, &layout.legend, &[])
    }
}
