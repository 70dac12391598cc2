//! Task against task, one panel per pair of tasks: each seed group as its mean
//! with ±1 std error bars on both axes, coloured by strategy (by weighting method
//! when that varies, the strategy then as the marker's shape), sized by λ; the
//! front of the group means as a step line with rings; the single-task baseline as
//! an × with dashed guides. The legend draws exactly what the panels draw, and in
//! the SVG every point has a tooltip naming its settings and numbers.
//!
//! ```text
//! let panels: Vec<ParetoData> = task_pairs(&tasks).iter().map(|(x, y)| pareto(&runs, x, y)).collect();
//! let chart = ParetoChart { title, panels: &panels };
//! ```

use plotters::coord::Shift;
use plotters::prelude::*;

use super::common::{
    draw_legend, draw_marker, padded_range, short_number, text_style, titled, LegendEntry, LegendSymbol, PlotResult,
    Shape, BASELINE_COLOUR, CATEGORICAL, LEGEND_WIDTH, SERIES_SHAPES,
};
use super::{Chart, Tooltip};
use crate::aggregate::{MULTI_TASK_STRATEGY_ORDER, SINGLE_TASK_STRATEGY, WEIGHTING_ORDER};
use crate::tradeoff::{ParetoData, ParetoPoint};

/// One panel per pair, in a grid of up to 3 columns.
pub(crate) struct ParetoChart<'a> {
    /// Title above the panels.
    pub title: String,
    /// The panels' numbers.
    pub panels: &'a [ParetoData],
}

const PARETO_COLUMNS: usize = 3;
const FRONT_COLOUR: RGBColor = RGBColor(0, 0, 0);
/// Legend markers that stand for a size or a shape, not a colour.
const NEUTRAL_COLOUR: RGBColor = RGBColor(110, 110, 110);
/// Single-task groups (and the baselines of the two tasks): an ×, never filled.
const SINGLE_TASK_MARKER: (Shape, i32) = (Shape::Cross, 7);
/// Marker radius without λ to size it (one λ swept, or none for the method).
const PLAIN_RADIUS: i32 = 6;
/// Marker radii of the smallest and the largest λ.
const LAMBDA_RADII: (i32, i32) = (3, 10);
/// λ values the legend shows at most (the smallest, the largest, evenly between).
const MAX_LAMBDA_ENTRIES: usize = 6;

/// How points are encoded, the same in every panel.
struct Encoding {
    /// `strategy`, or `weighting method` when multi-task runs differ in it.
    colour_by: &'static str,
    /// The coloured values, in their usual order.
    colour_keys: Vec<String>,
    /// The strategies, when they are the shape (colour by weighting, several strategies).
    shape_keys: Vec<String>,
    /// Every λ of multi-task points, ascending, when there is more than one.
    lambdas: Vec<f64>,
    /// Whether some multi-task point has no λ while others have several.
    some_without_lambda: bool,
}

fn ordered(values: Vec<String>, order: &[&str]) -> Vec<String> {
    let mut values = values;
    values.sort();
    values.dedup();
    values.sort_by_key(|value| order.iter().position(|known| known == value).unwrap_or(order.len()));
    values
}

impl Encoding {
    fn of(panels: &[ParetoData]) -> Encoding {
        let multi_task: Vec<&ParetoPoint> =
            panels.iter().flat_map(|p| &p.points).filter(|p| p.strategy != SINGLE_TASK_STRATEGY).collect();
        let weighting = |p: &ParetoPoint| p.weighting.clone().unwrap_or_else(|| "-".into());
        let strategies = ordered(multi_task.iter().map(|p| p.strategy.clone()).collect(), &MULTI_TASK_STRATEGY_ORDER);
        let weightings = ordered(multi_task.iter().map(|p| weighting(p)).collect(), &WEIGHTING_ORDER);
        let mut lambdas: Vec<f64> = multi_task.iter().filter_map(|p| p.lambda).collect();
        lambdas.sort_by(f64::total_cmp);
        lambdas.dedup();
        if lambdas.len() < 2 {
            lambdas.clear();
        }
        let some_without_lambda = !lambdas.is_empty() && multi_task.iter().any(|p| p.lambda.is_none());
        if weightings.len() > 1 {
            let shape_keys = if strategies.len() > 1 { strategies } else { Vec::new() };
            Encoding {
                colour_by: "weighting method",
                colour_keys: weightings,
                shape_keys,
                lambdas,
                some_without_lambda,
            }
        } else {
            let colour_keys = strategies;
            Encoding { colour_by: "strategy", colour_keys, shape_keys: Vec::new(), lambdas, some_without_lambda }
        }
    }

    /// The colour and shape of the n-th colour key: past the palette, colours repeat
    /// with the next shape (unless shapes name strategies).
    fn key_style(&self, index: usize) -> (RGBColor, Shape) {
        let colour = CATEGORICAL[index % CATEGORICAL.len()];
        (colour, SERIES_SHAPES[(index / CATEGORICAL.len()) % SERIES_SHAPES.len()])
    }

    fn radius(&self, lambda: Option<f64>) -> i32 {
        let (Some(lambda), false) = (lambda, self.lambdas.is_empty()) else { return PLAIN_RADIUS };
        let rank = self.lambdas.iter().position(|l| *l == lambda).unwrap_or_default();
        let t = rank as f64 / (self.lambdas.len() - 1) as f64;
        LAMBDA_RADII.0 + (t * f64::from(LAMBDA_RADII.1 - LAMBDA_RADII.0)).round() as i32
    }

    /// Colour, shape and radius of a point.
    fn style(&self, point: &ParetoPoint) -> (RGBColor, Shape, i32) {
        if point.strategy == SINGLE_TASK_STRATEGY {
            return (BASELINE_COLOUR, SINGLE_TASK_MARKER.0, SINGLE_TASK_MARKER.1);
        }
        let key = if self.colour_by == "strategy" {
            point.strategy.clone()
        } else {
            point.weighting.clone().unwrap_or_else(|| "-".into())
        };
        let key_index = self.colour_keys.iter().position(|k| *k == key).unwrap_or_default();
        let (colour, mut shape) = self.key_style(key_index);
        if let Some(shape_index) = self.shape_keys.iter().position(|s| *s == point.strategy) {
            shape = SERIES_SHAPES[shape_index % SERIES_SHAPES.len()];
        }
        (colour, shape, self.radius(point.lambda))
    }

    fn legend(&self, has_front: bool, has_baseline: bool) -> Vec<LegendEntry> {
        let mut entries = vec![LegendEntry::heading(format!("colour: {}", self.colour_by))];
        for (index, key) in self.colour_keys.iter().enumerate() {
            let (colour, shape) = self.key_style(index);
            entries.push(if self.shape_keys.is_empty() {
                LegendEntry::marker(key.clone(), colour, shape, PLAIN_RADIUS)
            } else {
                // Its shape depends on the strategy: the colour alone.
                LegendEntry::swatch(key.clone(), colour)
            });
        }
        if !self.shape_keys.is_empty() {
            entries.push(LegendEntry::heading("shape: strategy"));
            for (index, strategy) in self.shape_keys.iter().enumerate() {
                let shape = SERIES_SHAPES[index % SERIES_SHAPES.len()];
                entries.push(LegendEntry::marker(strategy.clone(), NEUTRAL_COLOUR, shape, PLAIN_RADIUS));
            }
        }
        if !self.lambdas.is_empty() {
            entries.push(LegendEntry::heading("size: λ"));
            let n = self.lambdas.len();
            let shown: Vec<f64> = if n <= MAX_LAMBDA_ENTRIES {
                self.lambdas.clone()
            } else {
                let last = MAX_LAMBDA_ENTRIES - 1;
                (0..MAX_LAMBDA_ENTRIES).map(|i| self.lambdas[(i * (n - 1) + last / 2) / last]).collect()
            };
            for lambda in shown {
                let label = format!("λ = {}", short_number(lambda));
                entries.push(LegendEntry::marker(label, NEUTRAL_COLOUR, Shape::Circle, self.radius(Some(lambda))));
            }
            if self.some_without_lambda {
                entries.push(LegendEntry::marker("no λ (not static)", NEUTRAL_COLOUR, Shape::Circle, PLAIN_RADIUS));
            }
        }
        if has_front {
            let symbol =
                LegendSymbol::Line { dash: None, width: 2, marker: Some((Shape::Circle, PLAIN_RADIUS + 4, false)) };
            entries.push(LegendEntry { label: "Pareto front of the means".into(), colour: FRONT_COLOUR, symbol });
        }
        if has_baseline {
            let marker = Some((SINGLE_TASK_MARKER.0, SINGLE_TASK_MARKER.1, false));
            let symbol = LegendSymbol::Line { dash: Some((6, 4)), width: 1, marker };
            let label = "single-task baselines (× mean)";
            entries.push(LegendEntry { label: label.into(), colour: BASELINE_COLOUR, symbol });
        }
        entries
    }
}

impl Chart for ParetoChart<'_> {
    fn size(&self) -> (u32, u32) {
        let columns = self.panels.len().clamp(1, PARETO_COLUMNS) as u32;
        let rows = self.panels.len().div_ceil(PARETO_COLUMNS).max(1) as u32;
        (LEGEND_WIDTH + 560 * columns, (60 + 520 * rows).max(640))
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>, tooltips: &mut Vec<Tooltip>) -> PlotResult<DB> {
        root.fill(&WHITE)?;
        let root = titled(&root.margin(10, 0, 0, 0), &self.title, 24.0)?;
        let (grid_area, legend_area) = root.split_horizontally(root.dim_in_pixel().0 - LEGEND_WIDTH);
        let columns = self.panels.len().clamp(1, PARETO_COLUMNS);
        let rows = self.panels.len().div_ceil(PARETO_COLUMNS).max(1);
        let cells = grid_area.split_evenly((rows, columns));
        let encoding = Encoding::of(self.panels);
        // Many groups: fainter points, so that density shows.
        let n_points = self.panels.iter().map(|p| p.points.len()).max().unwrap_or(0);
        let alpha = if n_points > 100 { 0.55 } else { 0.85 };
        for (panel, area) in self.panels.iter().zip(&cells) {
            draw_panel(panel, area, &encoding, alpha, tooltips)?;
        }
        let has_front = self.panels.iter().any(|p| !p.front.is_empty());
        let has_baseline = self.panels.iter().any(|p| p.single_task.is_some());
        let entries = encoding.legend(has_front, has_baseline);
        let notes = ["each point: the mean over seeds of one setting, each task's headline test metric at each run's \
             selected epoch; bars: ±1 sample std over seeds; hover a point in the SVG for its settings"];
        draw_legend(&legend_area, &entries, &notes)
    }
}

fn draw_panel<DB: DrawingBackend>(
    panel: &ParetoData,
    area: &DrawingArea<DB, Shift>,
    encoding: &Encoding,
    alpha: f64,
    tooltips: &mut Vec<Tooltip>,
) -> PlotResult<DB> {
    let xs = panel.points.iter().flat_map(|p| [p.x.mean - p.x.std, p.x.mean + p.x.std]);
    let ys = panel.points.iter().flat_map(|p| [p.y.mean - p.y.std, p.y.mean + p.y.std]);
    let (x_min, x_max) = padded_range(xs.chain(panel.single_task.map(|s| s.0)), 0.06);
    let (y_min, y_max) = padded_range(ys.chain(panel.single_task.map(|s| s.1)), 0.06);
    let mut chart = ChartBuilder::on(area)
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(x_min..x_max, y_min..y_max)?;
    chart
        .configure_mesh()
        .x_desc(format!("{} test {}", panel.x_task, panel.metrics.0))
        .y_desc(format!("{} test {}", panel.y_task, panel.metrics.1))
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
    // Error bars first, then the front's line, then the points (largest first, so
    // that small ones stay visible), then the front's rings.
    for point in &panel.points {
        let (colour, _, _) = encoding.style(point);
        let style = colour.mix(0.5).stroke_width(1);
        let (x, y) = (point.x.mean, point.y.mean);
        if point.x.std > 0.0 {
            chart.draw_series([PathElement::new(vec![(x - point.x.std, y), (x + point.x.std, y)], style)])?;
        }
        if point.y.std > 0.0 {
            chart.draw_series([PathElement::new(vec![(x, y - point.y.std), (x, y + point.y.std)], style)])?;
        }
    }
    // The front as a staircase: from each point right, then down to the next.
    let mut steps = Vec::new();
    for (i, &(x, y)) in panel.front.iter().enumerate() {
        steps.push((x, y));
        if let Some(&(_, next_y)) = panel.front.get(i + 1) {
            steps.push((x, next_y));
        }
    }
    chart.draw_series(LineSeries::new(steps, FRONT_COLOUR.stroke_width(2)))?;
    let mut order: Vec<&ParetoPoint> = panel.points.iter().collect();
    order.sort_by_key(|point| std::cmp::Reverse(encoding.style(point).2));
    for point in &order {
        let (colour, shape, radius) = encoding.style(point);
        let at = (point.x.mean, point.y.mean);
        let style = if shape == SINGLE_TASK_MARKER.0 { colour.stroke_width(2) } else { colour.mix(alpha).filled() };
        draw_marker(chart.plotting_area(), at, shape, radius, style)?;
        let settle = if point.on_front { "; on the Pareto front" } else { "" };
        let text = format!(
            "{}: {} {:.4} ± {:.4}, {} {:.4} ± {:.4} ({} seeds){settle}",
            point.label, panel.x_task, point.x.mean, point.x.std, panel.y_task, point.y.mean, point.y.std, point.x.n
        );
        tooltips.push(Tooltip { centre: chart.backend_coord(&at), radius: radius + 2, text });
    }
    for point in order.iter().filter(|point| point.on_front) {
        let radius = encoding.style(point).2 + 4;
        chart.draw_series([Circle::new((point.x.mean, point.y.mean), radius, FRONT_COLOUR.stroke_width(2))])?;
    }
    // The baselines' ×, unless a single-task group's mean is already drawn there.
    let drawn_at = |(x, y): (f64, f64)| {
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * a.abs().max(1.0);
        panel.points.iter().any(|p| p.strategy == SINGLE_TASK_STRATEGY && close(p.x.mean, x) && close(p.y.mean, y))
    };
    if let Some(baseline) = panel.single_task.filter(|&baseline| !drawn_at(baseline)) {
        let (shape, radius) = SINGLE_TASK_MARKER;
        draw_marker(chart.plotting_area(), baseline, shape, radius, BASELINE_COLOUR.stroke_width(2))?;
        let text =
            format!("single-task baselines: {} {:.4}, {} {:.4}", panel.x_task, baseline.0, panel.y_task, baseline.1);
        tooltips.push(Tooltip { centre: chart.backend_coord(&baseline), radius: 9, text });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::seed_stats;

    fn point(strategy: &str, weighting: &str, lambda: Option<f64>) -> ParetoPoint {
        let stats = seed_stats(&[0.8, 0.82]).expect("stats");
        ParetoPoint {
            label: format!("{strategy}, {weighting}"),
            strategy: strategy.into(),
            weighting: Some(weighting.into()),
            lambda,
            equal_weights: false,
            x: stats,
            y: stats,
            on_front: false,
        }
    }

    fn panel(points: Vec<ParetoPoint>) -> ParetoData {
        let metrics = ("accuracy".into(), "accuracy".into());
        ParetoData { x_task: "a".into(), y_task: "b".into(), metrics, points, front: vec![], single_task: None }
    }

    /// A legend marker: `(label, colour, shape, radius)`.
    type Mark = (String, RGBColor, Shape, i32);

    /// The legend's markers and its swatches' colours.
    fn legend_marks(entries: &[LegendEntry]) -> (Vec<Mark>, Vec<RGBColor>) {
        let mut markers = Vec::new();
        let mut swatches = Vec::new();
        for entry in entries {
            match entry.symbol {
                LegendSymbol::Marker { shape, radius, .. } => {
                    markers.push((entry.label.clone(), entry.colour, shape, radius))
                }
                LegendSymbol::Swatch => swatches.push(entry.colour),
                _ => {}
            }
        }
        (markers, swatches)
    }

    #[test]
    fn the_legend_shows_each_point_as_the_panel_draws_it() {
        // One weighting: colour (and marker) by strategy, size by λ.
        let points = vec![
            point("hard", "static", Some(0.1)),
            point("hard", "static", Some(10.0)),
            point("soft", "static", Some(1.0)),
            point("single-task", "static", None),
        ];
        let encoding = Encoding::of(&[panel(points.clone())]);
        assert_eq!((encoding.colour_by, encoding.lambdas.clone()), ("strategy", vec![0.1, 1.0, 10.0]));
        let (markers, swatches) = legend_marks(&encoding.legend(false, false));
        assert!(swatches.is_empty());
        for p in points.iter().filter(|p| p.strategy != SINGLE_TASK_STRATEGY) {
            let (colour, shape, radius) = encoding.style(p);
            assert!(markers.iter().any(|m| m.0 == p.strategy && m.1 == colour && m.2 == shape), "{markers:?}");
            let lambda = format!("λ = {}", short_number(p.lambda.expect("λ")));
            assert!(markers.iter().any(|m| m.0 == lambda && m.3 == radius), "{lambda} {radius} in {markers:?}");
        }
        assert_eq!(encoding.radius(Some(0.1)), LAMBDA_RADII.0);
        assert_eq!(encoding.radius(Some(10.0)), LAMBDA_RADII.1);
        assert_ne!(encoding.style(&points[0]).0, encoding.style(&points[2]).0, "strategies differ in colour");
        assert_eq!(encoding.style(&points[3]).1, Shape::Cross, "single-task: the baselines' ×");

        // Weightings vary: colour by weighting (swatches), shape by strategy (neutral markers).
        let points =
            vec![point("hard", "static", Some(1.0)), point("hard", "pcgrad", None), point("mmoe", "pcgrad", None)];
        let encoding = Encoding::of(&[panel(points.clone())]);
        assert_eq!(encoding.colour_by, "weighting method");
        let (markers, swatches) = legend_marks(&encoding.legend(false, false));
        for p in &points {
            let (colour, shape, _) = encoding.style(p);
            assert!(swatches.contains(&colour), "{colour:?} not in {swatches:?}");
            assert!(markers.iter().any(|m| m.0 == p.strategy && m.2 == shape), "{shape:?} not in {markers:?}");
        }
        assert_ne!(encoding.style(&points[1]).1, encoding.style(&points[2]).1, "strategies differ in shape");
        assert_eq!(encoding.style(&points[1]).0, encoding.style(&points[2]).0, "pcgrad keeps its colour");
    }
}
