//! Δm% as a heatmap: rows strategies, columns weighting methods or λ; a diverging
//! scale symmetric around 0 (blue better than single-task, red worse) shown as a
//! colour bar with tick labels, the value written in each cell, and the caption
//! wrapped to the width so that none of it is cut.
//!
//! ```text
//! let chart = DeltaMHeatmapChart { title, grid: &tradeoff::delta_m_grid(&runs).unwrap() };
//! ```

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::common::{fit_text, short_number, text_style, text_width, titled, wrap_text, PlotResult, NOTE_COLOUR};
use super::{Chart, Tooltip};
use crate::tradeoff::DeltaMGrid;

const TITLE_SIZE: f64 = 22.0;
/// Height the title takes (plotters' `titled`: the text and a margin).
const TITLE_HEIGHT: i32 = 40;
const LABEL_SIZE: f64 = 14.0;
const CELL_TEXT_SIZE: f64 = 13.0;
const NOTE_SIZE: f64 = 12.0;
const NOTE_LINE_HEIGHT: i32 = 17;
/// Column title and column labels above the grid.
const GRID_TOP: i32 = 48;
const CELL_HEIGHT: i32 = 52;
/// The colour bar's column: a margin, the bar, its tick labels.
const BAR_COLUMN: i32 = 120;
const BAR_WIDTH: i32 = 18;
const MARGIN: i32 = 10;
const EMPTY_CELL: RGBColor = RGBColor(235, 235, 235);

/// The Δm% heatmap.
pub(crate) struct DeltaMHeatmapChart<'a> {
    /// Title above the chart.
    pub title: String,
    /// The numbers.
    pub grid: &'a DeltaMGrid,
}

/// Where everything goes, in pixels of the area below the title.
struct Layout {
    width: u32,
    height: u32,
    left: i32,
    cell_width: i32,
    bar_left: i32,
    bar_height: i32,
    notes: Vec<String>,
}

impl DeltaMHeatmapChart<'_> {
    /// The value of a cell, its chosen λ, and `≈` when it is within noise of single-task
    /// (`+`/`−` when its interval excludes 0).
    fn cell_text(&self, r: usize, c: usize) -> Option<String> {
        let cell = self.grid.cells[r][c]?;
        let marker = crate::stats::marker(self.grid.verdicts[r][c]);
        Some(match cell {
            (delta, Some(lambda)) => format!("{}{marker} (λ={})", signed(delta, 2), short_number(lambda)),
            (delta, None) => format!("{}{marker}", signed(delta, 2)),
        })
    }

    /// Every cell's text.
    fn cell_texts(&self) -> impl Iterator<Item = String> + '_ {
        let grid = self.grid;
        (0..grid.rows.len()).flat_map(move |r| (0..grid.columns.len()).filter_map(move |c| self.cell_text(r, c)))
    }

    fn layout(&self) -> Layout {
        let grid = self.grid;
        let widest = |texts: &mut dyn Iterator<Item = f64>| texts.fold(0.0, f64::max);
        let row_labels = widest(&mut grid.rows.iter().map(|row| text_width(row, LABEL_SIZE)));
        let left = (row_labels.ceil() as i32 + 16).clamp(90, 320);
        let cell_texts = widest(&mut self.cell_texts().map(|text| text_width(&text, CELL_TEXT_SIZE)));
        let column_labels = widest(&mut grid.columns.iter().map(|c| text_width(c, LABEL_SIZE)));
        let cell_width = (cell_texts.max(column_labels).ceil() as i32 + 16).clamp(96, 240);
        let grid_width = left + cell_width * grid.columns.len().max(1) as i32;
        let width = (grid_width + BAR_COLUMN + 2 * MARGIN).max(640);
        let bar_height = (CELL_HEIGHT * grid.rows.len().max(1) as i32).max(150);
        let mut note = format!(
            "Δm%: the mean over tasks and metrics ({}) of the relative change of the test value against \
             single-task, sign flipped where lower is better (Maninis et al. 2019), at each run's selected epoch; + is \
             better.",
            grid.metrics.join(", ")
        );
        if grid.cells.iter().flatten().any(|cell| cell.is_some_and(|(_, lambda)| lambda.is_some())) {
            note.push_str(" (λ=…): the λ chosen on validation among several.");
        }
        if grid.verdicts.iter().flatten().any(Option::is_some) {
            note.push_str(
                " ≈: within noise, its 95% interval (over seeds and the baselines' seeds) includes 0; \
                 + / −: better / worse than single-task.",
            );
        }
        if grid.cells.iter().flatten().any(Option::is_none) {
            note.push_str(" Grey with a dash: no runs.");
        }
        let notes = wrap_text(&note, NOTE_SIZE, f64::from(width - 2 * MARGIN - 8));
        let height = TITLE_HEIGHT + GRID_TOP + bar_height + 24 + NOTE_LINE_HEIGHT * notes.len() as i32 + 2 * MARGIN;
        Layout {
            width: width as u32,
            height: height as u32,
            left,
            cell_width,
            bar_left: grid_width + 24,
            bar_height,
            notes,
        }
    }
}

impl Chart for DeltaMHeatmapChart<'_> {
    fn size(&self) -> (u32, u32) {
        let layout = self.layout();
        (layout.width, layout.height)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>, tooltips: &mut Vec<Tooltip>) -> PlotResult<DB> {
        root.fill(&WHITE)?;
        let layout = self.layout();
        let root =
            titled(&root.margin(MARGIN as u32, MARGIN as u32, MARGIN as u32, MARGIN as u32), &self.title, TITLE_SIZE)?;
        let offset = root.get_base_pixel();
        let grid = self.grid;
        let (left, top, cell_width) = (layout.left, GRID_TOP, layout.cell_width);
        let cell_height = CELL_HEIGHT;
        let scale = nice_ceiling(grid.cells.iter().flatten().flatten().map(|(d, _)| d.abs()).fold(0.0, f64::max));
        let centred = |text: &str, size: f64, colour: &RGBColor, at: (i32, i32)| {
            root.draw_text(text, &text_style(size).color(colour).pos(Pos::new(HPos::Center, VPos::Center)), at)
        };
        let n_columns = grid.columns.len().max(1) as i32;
        centred(&grid.column_title, 15.0, &BLACK, (left + cell_width * n_columns / 2, 10))?;
        for (c, column) in grid.columns.iter().enumerate() {
            let label = fit_text(column, LABEL_SIZE, f64::from(cell_width - 6));
            centred(&label, LABEL_SIZE, &BLACK, (left + cell_width * c as i32 + cell_width / 2, top - 12))?;
        }
        for (r, row) in grid.rows.iter().enumerate() {
            let y = top + cell_height * r as i32;
            let label_style = text_style(LABEL_SIZE).pos(Pos::new(HPos::Right, VPos::Center));
            let label = fit_text(row, LABEL_SIZE, f64::from(left - 12));
            root.draw_text(&label, &label_style, (left - 8, y + cell_height / 2))?;
            for (c, cell) in grid.cells[r].iter().enumerate() {
                let x = left + cell_width * c as i32;
                let corners = [(x + 1, y + 1), (x + cell_width - 1, y + cell_height - 1)];
                let centre = (x + cell_width / 2, y + cell_height / 2);
                let Some(value) = cell else {
                    root.draw(&Rectangle::new(corners, EMPTY_CELL.filled()))?;
                    centred("–", CELL_TEXT_SIZE, &NOTE_COLOUR, centre)?;
                    continue;
                };
                let t = value.0 / scale;
                root.draw(&Rectangle::new(corners, diverging_colour(t).filled()))?;
                let text_colour = if t.abs() > 0.55 { WHITE } else { BLACK };
                let text = self.cell_text(r, c).unwrap_or_default();
                centred(
                    &fit_text(&text, CELL_TEXT_SIZE, f64::from(cell_width - 6)),
                    CELL_TEXT_SIZE,
                    &text_colour,
                    centre,
                )?;
                let column = grid.columns.get(c).map_or("", String::as_str);
                tooltips.push(Tooltip {
                    centre: (offset.0 + centre.0, offset.1 + centre.1),
                    radius: cell_height / 2 - 2,
                    text: match grid.intervals[r][c] {
                        Some((low, high)) => format!(
                            "{row} × {} {column}: Δm% {text}, 95% interval [{}, {}]",
                            grid.column_title,
                            signed(low, 2),
                            signed(high, 2)
                        ),
                        None => format!("{row} × {} {column}: Δm% {text} (one seed: no interval)", grid.column_title),
                    },
                });
            }
        }
        draw_colour_bar(&root, &layout, scale)?;
        let notes_top = top + layout.bar_height + 22;
        let note_style = text_style(NOTE_SIZE).color(&NOTE_COLOUR).pos(Pos::new(HPos::Left, VPos::Center));
        for (index, line) in layout.notes.iter().enumerate() {
            root.draw_text(line, &note_style, (4, notes_top + NOTE_LINE_HEIGHT * index as i32))?;
        }
        Ok(())
    }
}

/// The vertical colour bar from +`scale` (top) to −`scale`, with five tick labels.
fn draw_colour_bar<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, layout: &Layout, scale: f64) -> PlotResult<DB> {
    let (left, top, height) = (layout.bar_left, GRID_TOP, layout.bar_height);
    for dy in 0..height {
        let t = 1.0 - 2.0 * (f64::from(dy) + 0.5) / f64::from(height);
        root.draw(&Rectangle::new([(left, top + dy), (left + BAR_WIDTH, top + dy + 1)], diverging_colour(t).filled()))?;
    }
    root.draw(&Rectangle::new([(left, top), (left + BAR_WIDTH, top + height)], NOTE_COLOUR.stroke_width(1)))?;
    let title_style = text_style(LABEL_SIZE).pos(Pos::new(HPos::Left, VPos::Center));
    root.draw_text("Δm%", &title_style, (left, top - 12))?;
    let tick_style = text_style(12.0).pos(Pos::new(HPos::Left, VPos::Center));
    for step in 0..=4 {
        let y = top + (f64::from(height) * f64::from(step) / 4.0).round() as i32;
        let value = scale * (1.0 - f64::from(step) / 2.0);
        root.draw(&PathElement::new(vec![(left + BAR_WIDTH, y), (left + BAR_WIDTH + 5, y)], BLACK.stroke_width(1)))?;
        root.draw_text(&signed(value, 3), &tick_style, (left + BAR_WIDTH + 8, y))?;
    }
    Ok(())
}

/// `value` with its sign (a true minus sign), at most `decimals` decimals, no float noise.
fn signed(value: f64, decimals: usize) -> String {
    let magnitude = format!("{:.*}", decimals, value.abs());
    let magnitude = if magnitude.contains('.') && decimals > 2 {
        magnitude.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        magnitude
    };
    match value {
        v if v > 0.0 => format!("+{magnitude}"),
        v if v < 0.0 => format!("−{magnitude}"),
        _ => magnitude,
    }
}

/// The smallest of 1, 2, 2.5, 5 × 10ᵏ at or above `largest` (1 for nothing): the
/// colour scale's end, so that its ticks are round numbers.
fn nice_ceiling(largest: f64) -> f64 {
    if !(largest.is_finite() && largest > 0.0) {
        return 1.0;
    }
    let power = 10_f64.powf(largest.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * power).find(|&v| v >= largest * (1.0 - 1e-12)).unwrap_or(10.0 * power)
}

/// White at 0, blue towards +1, red towards −1 (`t` clamped to [−1, 1]), linear in
/// `t`, so equal steps of Δm% are equal steps of colour (the colour bar shows it).
fn diverging_colour(t: f64) -> RGBColor {
    let t = t.clamp(-1.0, 1.0);
    let (target, amount) = if t >= 0.0 { ((33.0, 102.0, 172.0), t) } else { ((178.0, 24.0, 43.0), -t) };
    let mix = |channel: f64| (255.0 + (channel - 255.0) * amount).round() as u8;
    RGBColor(mix(target.0), mix(target.1), mix(target.2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_colour_scale_is_symmetric_with_round_ends() {
        let cases = [(34.55, 50.0), (0.76, 1.0), (20.0, 20.0), (2.1, 2.5), (0.0, 1.0), (0.013, 0.02)];
        for (largest, expected) in cases {
            assert!((nice_ceiling(largest) - expected).abs() < 1e-12, "{largest} → {}", nice_ceiling(largest));
        }
        assert_eq!(diverging_colour(0.0), WHITE);
        assert_eq!(diverging_colour(1.0), RGBColor(33, 102, 172));
        assert_eq!(diverging_colour(-1.0), RGBColor(178, 24, 43));
        // +0.76 and −0.61 on a ±1 scale: clearly blue and clearly red.
        let (plus, minus) = (diverging_colour(0.76), diverging_colour(-0.61));
        assert!(plus.2 > plus.0 + 80 && minus.0 > minus.2 + 80, "{plus:?} {minus:?}");
        assert_eq!((signed(12.5, 3), signed(-0.61, 2), signed(0.0, 3)), ("+12.5".into(), "−0.61".into(), "0".into()));
    }
}
