//! What every chart shares: the embedded font and its metrics (so text is fitted,
//! never cut), palettes (categorical for methods, sequential shades for λ, neutrals
//! for the single-task baselines), markers, axes and the legend column.
//!
//! ```text
//! let label = fit_text("hard, weighting=cagrad, cagrad_c=0.4 λ=0.5", 14.0, 220.0); // middle elided if too wide
//! draw_marker(&area, (x, y), Shape::Diamond, 6, colour.filled())?;
//! ```

use std::sync::OnceLock;

use ab_glyph::{Font, FontRef, ScaleFont};
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::aggregate::{is_baseline, RunGroup};

/// The family every text style uses; registered from the embedded font.
/// `sans-serif` keeps the SVGs' text readable in browsers that lack DejaVu.
pub(crate) const FONT_FAMILY: &str = "sans-serif";

/// Tableau 10 without its grey, which belongs to the single-task baselines:
/// distinct for the usual handful of groups, colour-blind tolerable.
pub(super) const CATEGORICAL: [RGBColor; 9] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];
/// The single-task baseline (and every reference line).
pub(super) const BASELINE_COLOUR: RGBColor = RGBColor(40, 40, 40);
/// Further single-task baselines in one chart (e.g. MultiMNIST's, which log both
/// tasks): neutrals far apart in lightness, none of them a palette colour.
const BASELINE_COLOURS: [RGBColor; 4] =
    [BASELINE_COLOUR, RGBColor(140, 140, 140), RGBColor(115, 80, 45), RGBColor(85, 85, 125)];
/// Notes and headings.
pub(super) const NOTE_COLOUR: RGBColor = RGBColor(90, 90, 90);
/// The legend column at the right of most charts.
pub(super) const LEGEND_WIDTH: u32 = 290;

pub(super) type PlotResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;
pub(super) type AreaResult<T, DB> = Result<T, DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;
pub(super) type Chart2d<'a, DB> = ChartContext<'a, DB, Cartesian2d<TickedAxis, RangedCoordf64>>;

/// A line's dash and gap lengths in pixels; `None` is solid.
pub(super) type Dash = Option<(u32, u32)>;

/// A linear axis whose ticks sit exactly at given values (the λs swept, the
/// epochs), so every λ is labelled; plotters' `WithKeyPoints` cannot be used
/// with a mesh over `f64` (it lacks a value formatter).
pub(super) struct TickedAxis {
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

/// The embedded DejaVu Sans, parsed once.
pub(super) fn font() -> Option<&'static FontRef<'static>> {
    static FONT: OnceLock<Option<FontRef<'static>>> = OnceLock::new();
    FONT.get_or_init(|| FontRef::try_from_slice(dejavu::sans::regular()).ok()).as_ref()
}

/// The width in pixels of `text` at plotters' font `size` as the PNG draws it (plotters
/// scales the font to `size` for PNGs and writes `size / 1.24` into SVGs, so the PNG's
/// text is the wider: fitting it fits both).
pub(crate) fn text_width(text: &str, size: f64) -> f64 {
    let Some(font) = font() else { return 0.62 * size * text.chars().count() as f64 };
    let scaled = font.as_scaled(size as f32);
    let mut width = 0.0_f32;
    let mut previous = None;
    for character in text.chars() {
        let glyph = scaled.glyph_id(character);
        if let Some(previous) = previous {
            width += scaled.kern(previous, glyph);
        }
        width += scaled.h_advance(glyph);
        previous = Some(glyph);
    }
    f64::from(width)
}

/// `text` if it fits in `max_width` pixels at `size`, else its start and end around
/// an ellipsis (the strategy at the start and the distinguishing setting at the end stay).
pub(crate) fn fit_text(text: &str, size: f64, max_width: f64) -> String {
    if text_width(text, size) <= max_width {
        return text.to_string();
    }
    let chars: Vec<char> = text.chars().collect();
    let elided = |kept: usize| -> String {
        let head = kept.div_ceil(2);
        let tail = kept - head;
        chars[..head].iter().chain(['…'].iter()).chain(&chars[chars.len() - tail..]).collect()
    };
    // The longest elision that fits; widths grow with `kept`, so a binary search.
    let (mut low, mut high) = (0, chars.len().saturating_sub(1));
    while low < high {
        let middle = (low + high).div_ceil(2);
        if text_width(&elided(middle), size) <= max_width {
            low = middle;
        } else {
            high = middle - 1;
        }
    }
    elided(low)
}

/// `text` broken at spaces into lines of at most `max_width` pixels at `size`; a
/// word wider than a line is elided rather than cut.
pub(crate) fn wrap_text(text: &str, size: f64, max_width: f64) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let candidate = if line.is_empty() { word.to_string() } else { format!("{line} {word}") };
        if text_width(&candidate, size) <= max_width || line.is_empty() {
            line = candidate;
        } else {
            lines.push(std::mem::replace(&mut line, word.to_string()));
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines.into_iter().map(|line| fit_text(&line, size, max_width)).collect()
}

pub(super) fn text_style(size: f64) -> TextStyle<'static> {
    TextStyle::from((FONT_FAMILY, size).into_font()).color(&BLACK)
}

/// `root` below its title: the title shrinks (down to 15 px), then loses its middle,
/// until it fits the width.
pub(super) fn titled<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    size: f64,
) -> AreaResult<DrawingArea<DB, Shift>, DB> {
    let available = f64::from(root.dim_in_pixel().0) - 24.0;
    let mut size = size;
    while size > 15.0 && text_width(title, size) > available {
        size -= 1.0;
    }
    root.titled(&fit_text(title, size, available), text_style(size))
}

/// Text at `at` with its left edge and vertical centre there.
pub(super) fn draw_left<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    text: &str,
    size: f64,
    colour: &RGBColor,
    at: (i32, i32),
) -> PlotResult<DB> {
    let style = text_style(size).color(colour).pos(Pos::new(HPos::Left, VPos::Center));
    area.draw_text(text, &style, at)
}

/// The shapes of markers, in the order series take them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Shape {
    Circle,
    TriangleUp,
    Diamond,
    TriangleDown,
    Square,
    /// An ×: the single-task baseline of the Pareto chart.
    Cross,
}

/// Shapes that tell series apart, filled.
pub(super) const SERIES_SHAPES: [Shape; 5] =
    [Shape::Circle, Shape::TriangleUp, Shape::Diamond, Shape::TriangleDown, Shape::Square];

/// Draws one marker centred on `at` (data coordinates on a chart, pixels in the
/// legend), about `radius` pixels from centre to edge; filled when `style` is.
pub(super) fn draw_marker<DB: DrawingBackend, CT: CoordTranslate>(
    area: &DrawingArea<DB, CT>,
    at: CT::From,
    shape: Shape,
    radius: i32,
    style: ShapeStyle,
) -> PlotResult<DB>
where
    CT::From: Clone,
{
    let r = radius;
    let polygon = |points: Vec<(i32, i32)>| -> PlotResult<DB> {
        if style.filled {
            area.draw(&(EmptyElement::at(at.clone()) + Polygon::new(points, style)))
        } else {
            let closed: Vec<(i32, i32)> = points.iter().chain(points.first()).copied().collect();
            area.draw(&(EmptyElement::at(at.clone()) + PathElement::new(closed, style)))
        }
    };
    // Sizes chosen so that each shape covers about the area of the circle.
    let (h, w) = ((1.25 * f64::from(r)).round() as i32, (1.1 * f64::from(r)).round() as i32);
    let s = (0.88 * f64::from(r)).round() as i32;
    match shape {
        Shape::Circle => area.draw(&Circle::new(at.clone(), r, style)),
        Shape::Square => polygon(vec![(-s, -s), (s, -s), (s, s), (-s, s)]),
        Shape::TriangleUp => polygon(vec![(0, -h), (w, h * 3 / 5), (-w, h * 3 / 5)]),
        Shape::TriangleDown => polygon(vec![(0, h), (w, -h * 3 / 5), (-w, -h * 3 / 5)]),
        Shape::Diamond => polygon(vec![(0, -h), (w, 0), (0, h), (-w, 0)]),
        Shape::Cross => area.draw(&Cross::new(at.clone(), r, style)),
    }
}

/// A chart with a [`TickedAxis`] on x, in the chart style (margins, label areas).
pub(super) fn build_chart<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    caption: Option<(&str, &RGBColor)>,
    (x_min, x_max): (f64, f64),
    x_key_points: Vec<f64>,
    (y_min, y_max): (f64, f64),
) -> AreaResult<Chart2d<'a, DB>, DB> {
    let mut builder = ChartBuilder::on(area);
    builder.margin(16).x_label_area_size(52).y_label_area_size(72);
    if let Some((caption, colour)) = caption {
        let available = f64::from(area.dim_in_pixel().0) - 36.0;
        builder.caption(fit_text(caption, 17.0, available), text_style(17.0).color(colour));
    }
    builder.build_cartesian_2d(TickedAxis { linear: (x_min..x_max).into(), ticks: x_key_points }, y_min..y_max)
}

/// Grid, tick labels and axis descriptions in the chart style.
pub(super) fn configure_mesh<DB: DrawingBackend>(
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

/// One row of a legend: what is drawn in the chart, drawn again, and its label.
pub(super) struct LegendEntry {
    pub label: String,
    pub colour: RGBColor,
    pub symbol: LegendSymbol,
}

/// The symbol of a legend row, drawn as the chart draws it.
pub(super) enum LegendSymbol {
    /// No symbol: a heading (in grey) for the rows below it.
    Heading,
    /// A line with its dash, width and, in its middle, a marker `(shape, radius, filled)`.
    Line { dash: Dash, width: u32, marker: Option<(Shape, i32, bool)> },
    /// A marker alone.
    Marker { shape: Shape, radius: i32, filled: bool },
    /// A filled square: a bar's colour, or a colour that several marker shapes share.
    Swatch,
}

impl LegendEntry {
    pub(super) fn heading(label: impl Into<String>) -> LegendEntry {
        LegendEntry { label: label.into(), colour: NOTE_COLOUR, symbol: LegendSymbol::Heading }
    }

    pub(super) fn line(label: impl Into<String>, colour: RGBColor, dash: Dash) -> LegendEntry {
        LegendEntry { label: label.into(), colour, symbol: LegendSymbol::Line { dash, width: 2, marker: None } }
    }

    pub(super) fn marker(label: impl Into<String>, colour: RGBColor, shape: Shape, radius: i32) -> LegendEntry {
        LegendEntry { label: label.into(), colour, symbol: LegendSymbol::Marker { shape, radius, filled: true } }
    }

    pub(super) fn swatch(label: impl Into<String>, colour: RGBColor) -> LegendEntry {
        LegendEntry { label: label.into(), colour, symbol: LegendSymbol::Swatch }
    }

    fn row_height(&self, base: i32) -> i32 {
        match self.symbol {
            LegendSymbol::Marker { radius, .. } | LegendSymbol::Line { marker: Some((_, radius, _)), .. } => {
                base.max(2 * radius + 6)
            }
            _ => base,
        }
    }
}

/// Draws a line from `from` to `to` (pixels) with `dash`.
pub(super) fn draw_dashed<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    (from, to): ((i32, i32), (i32, i32)),
    dash: Dash,
    style: ShapeStyle,
) -> PlotResult<DB> {
    let Some((dash, gap)) = dash else { return area.draw(&PathElement::new(vec![from, to], style)) };
    let length = f64::from(to.0 - from.0).hypot(f64::from(to.1 - from.1));
    let mut start = 0.0;
    while start < length {
        let end = (start + f64::from(dash)).min(length);
        let at = |d: f64| {
            let t = d / length;
            (
                from.0 + (f64::from(to.0 - from.0) * t).round() as i32,
                from.1 + (f64::from(to.1 - from.1) * t).round() as i32,
            )
        };
        area.draw(&PathElement::new(vec![at(start), at(end)], style))?;
        start += f64::from(dash + gap);
    }
    Ok(())
}

/// Draws the legend in its own column, so it never covers data, and the notes
/// below it, wrapped to the column.
pub(super) fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[LegendEntry],
    notes: &[&str],
) -> PlotResult<DB> {
    let (width, height) = area.dim_in_pixel();
    let note_size = 13.0;
    let note_lines: Vec<String> =
        notes.iter().flat_map(|note| wrap_text(note, note_size, f64::from(width) - 12.0)).collect();
    let top = 40;
    let available = height as i32 - top - 24 - 17 * note_lines.len() as i32;
    let natural: i32 = entries.iter().map(|entry| entry.row_height(26)).sum();
    let base = if natural <= available { 26 } else { (26 * available / natural.max(1)).clamp(14, 26) };
    let label_size = (f64::from(base.min(22)) * 0.68).max(10.0);
    let mut y = top;
    for entry in entries {
        let row = entry.row_height(base);
        let middle = y + row / 2;
        let style = entry.colour.stroke_width(2);
        let label_left = match entry.symbol {
            LegendSymbol::Heading => 4,
            LegendSymbol::Line { dash, width, marker } => {
                draw_dashed(area, ((4, middle), (44, middle)), dash, entry.colour.stroke_width(width))?;
                if let Some((shape, radius, filled)) = marker {
                    let marker_style = if filled { entry.colour.filled() } else { style };
                    draw_marker(area, (24, middle), shape, radius, marker_style)?;
                }
                52
            }
            LegendSymbol::Marker { shape, radius, filled } => {
                let marker_style = if filled { entry.colour.filled() } else { style };
                draw_marker(area, (24, middle), shape, radius, marker_style)?;
                52
            }
            LegendSymbol::Swatch => {
                area.draw(&Rectangle::new([(16, middle - 7), (32, middle + 7)], entry.colour.filled()))?;
                52
            }
        };
        let (size, colour) = match entry.symbol {
            LegendSymbol::Heading => (label_size.min(13.0), NOTE_COLOUR),
            _ => (label_size, BLACK),
        };
        let label = fit_text(&entry.label, size, f64::from(width) - f64::from(label_left) - 8.0);
        draw_left(area, &label, size, &colour, (label_left, middle))?;
        y += row;
    }
    let notes_top = y + 14;
    for (line_index, line) in note_lines.iter().enumerate() {
        draw_left(area, line, note_size, &NOTE_COLOUR, (4, notes_top + 17 * line_index as i32))?;
    }
    Ok(())
}

/// One colour per group, aligned with `groups`, so that no two groups share one:
/// single-task baselines in neutrals; the other groups by method (the group's line),
/// a palette hue per method; a method swept over λ in shades of its hue, light for
/// the smallest λ to dark for the largest (λ is ordered, so its colours are too).
/// Charts of one experiment get the same groups, so a group keeps its colour.
pub(super) fn group_colours(groups: &[RunGroup]) -> Vec<RGBColor> {
    let mut methods: Vec<&str> = Vec::new();
    for group in groups.iter().filter(|group| !is_baseline(group)) {
        if !methods.contains(&group.method.as_str()) {
            methods.push(&group.method);
        }
    }
    // Strategies in their usual order (as the Pareto chart colours them), so that a
    // strategy keeps its hue from chart to chart; the sort is stable within one.
    let order = crate::aggregate::MULTI_TASK_STRATEGY_ORDER;
    methods.sort_by_key(|method| {
        let strategy = method.split(',').next().unwrap_or_default();
        order.iter().position(|known| *known == strategy).unwrap_or(order.len())
    });
    let mut n_baselines = 0;
    groups
        .iter()
        .map(|group| {
            if is_baseline(group) {
                n_baselines += 1;
                return baseline_colour(n_baselines - 1);
            }
            let method_index = methods.iter().position(|method| *method == group.method).unwrap_or_default();
            let hue = CATEGORICAL[method_index % CATEGORICAL.len()];
            let mut lambdas: Vec<f64> =
                groups.iter().filter(|other| other.method == group.method).filter_map(|other| other.lambda).collect();
            lambdas.sort_by(f64::total_cmp);
            lambdas.dedup();
            match group.lambda {
                Some(lambda) if lambdas.len() > 1 => {
                    let rank = lambdas.iter().position(|other| *other == lambda).unwrap_or_default();
                    sequential_shade(hue, rank as f64 / (lambdas.len() - 1) as f64)
                }
                _ => hue,
            }
        })
        .collect()
}

/// The n-th single-task baseline's colour.
pub(super) fn baseline_colour(index: usize) -> RGBColor {
    match BASELINE_COLOURS.get(index) {
        Some(colour) => *colour,
        // More baselines than neutrals: greys of other lightness.
        None => {
            let level = 20 + (37 * index % 180) as u8;
            RGBColor(level, level, level)
        }
    }
}

/// `hue` from light (`t` = 0: mixed with white) to dark (`t` = 1: mixed with black).
pub(super) fn sequential_shade(hue: RGBColor, t: f64) -> RGBColor {
    let t = t.clamp(0.0, 1.0);
    let light = |c: u8| f64::from(c) + (255.0 - f64::from(c)) * 0.45;
    let dark = |c: u8| f64::from(c) * 0.62;
    let channel = |c: u8| (light(c) + (dark(c) - light(c)) * t).round() as u8;
    RGBColor(channel(hue.0), channel(hue.1), channel(hue.2))
}

/// λ values spanning more than a factor of 4 crowd together at the left of a
/// linear axis (0.25 … 4; the quickstart's 0.001 … 100, two decades and more, would
/// sit at 0), so they get a log axis; zero or negative λ cannot.
pub(crate) fn lambdas_need_log_axis(lambdas: &[f64]) -> bool {
    let min = lambdas.iter().copied().fold(f64::INFINITY, f64::min);
    let max = lambdas.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    min > 0.0 && max / min > 4.0
}

/// The smallest and largest value, widened by `fraction` of the span
/// (or by a small fixed amount when all values are equal or there are none).
pub(super) fn padded_range(values: impl Iterator<Item = f64>, fraction: f64) -> (f64, f64) {
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
pub(super) fn thin(points: Vec<f64>, max_points: usize) -> Vec<f64> {
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
    use mtl_store::RunId;

    use super::*;

    #[test]
    fn log_axis_only_when_lambdas_span_more_than_four_times() {
        let cases: [(&[f64], bool); 6] = [
            (&[0.25, 0.5, 1.0, 2.0, 4.0], true),
            (&[0.001, 0.01, 0.1, 1.0, 10.0, 100.0], true),
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

    #[test]
    fn text_is_measured_with_the_font_and_fitted() {
        // DejaVu Sans: 'i' is far narrower than 'W'; widths scale with the size.
        assert!(text_width("iiii", 20.0) < 0.5 * text_width("WWWW", 20.0));
        let width = text_width("hard λ=0.5", 14.0);
        assert!((text_width("hard λ=0.5", 28.0) - 2.0 * width).abs() < 1.0, "{width}");
        let long = "hard, weighting=cagrad, cagrad_c=0.4 λ=0.5";
        let fitted = fit_text(long, 14.0, 150.0);
        assert!(text_width(&fitted, 14.0) <= 150.0, "{fitted}");
        assert!(fitted.starts_with("hard") && fitted.ends_with("0.5") && fitted.contains('…'), "{fitted}");
        assert_eq!(fit_text("short", 14.0, 150.0), "short");
        let lines = wrap_text("Δm% against single-task at each run's selected epoch; grey: no runs", 12.0, 200.0);
        assert!(lines.len() > 1 && lines.iter().all(|line| text_width(line, 12.0) <= 200.0), "{lines:?}");
        assert_eq!(lines.join(" "), "Δm% against single-task at each run's selected epoch; grey: no runs");
    }

    #[test]
    fn groups_get_distinct_colours_and_lambda_gets_ordered_shades() {
        let group =
            |method: &str, lambda: Option<f64>| RunGroup { method: method.into(), lambda, runs: vec![RunId(1)] };
        let groups = [
            group("hard", Some(0.01)),
            group("hard", Some(1.0)),
            group("hard", Some(100.0)),
            group("single-task", None),
            group("single-task, task=left", None),
            group("soft", Some(1.0)),
            group("hard, weighting=pcgrad", None),
        ];
        let colours = group_colours(&groups);
        for (i, a) in colours.iter().enumerate() {
            for b in &colours[i + 1..] {
                assert_ne!(a, b, "{colours:?}");
            }
        }
        // hard's λ: one hue, darker as λ grows (sum of channels falls).
        let lightness = |c: &RGBColor| u32::from(c.0) + u32::from(c.1) + u32::from(c.2);
        assert!(lightness(&colours[0]) > lightness(&colours[1]) && lightness(&colours[1]) > lightness(&colours[2]));
        // Baselines are neutrals, never a palette colour.
        assert!(!CATEGORICAL.contains(&colours[3]) && !CATEGORICAL.contains(&colours[4]));
        // One λ: the method's hue, methods in strategy order (hard, hard with pcgrad, soft), as
        // the Pareto chart orders strategies.
        assert_eq!((colours[5], colours[6]), (CATEGORICAL[2], CATEGORICAL[1]), "one λ: the method's hue");
    }
}
