//! Draws the report's charts with plotters: the strategy comparison (`bars`), a
//! metric against λ and training diagnostics against epochs (`lines`), learning
//! curves (`curves`, small multiples when there are many), the Pareto chart of
//! task against task (`pareto`), the Δm% heatmap (`heatmap`) and which settings
//! matter (`importance`); `omitted` says which charts would show nothing and why,
//! so the page can say it instead.
//! Each chart is one drawing function generic over the backend, run once for
//! PNG and once for SVG; the SVG then gets the chart's tooltips (`<title>`).
//! Text uses DejaVu Sans embedded in the binary: nothing is read from the system,
//! and text is measured with the same font, so it is fitted rather than cut.
//!
//! ```text
//! register_embedded_font()?;
//! let chart = MetricByLambdaChart { title: "shapes: test accuracy vs λ".into(), y_description: "test accuracy", data: &by_lambda };
//! let [png, svg] = write_png_and_svg(&chart, out_dir, "quickstart-shapes-accuracy-vs-lambda")?;
//! ```

mod bars;
mod common;
mod curves;
mod heatmap;
mod importance;
mod lines;
pub(crate) mod omitted;
mod pareto;
mod png;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::backend::{BitMapBackend, SVGBackend};
use plotters::coord::Shift;
use plotters::prelude::*;

pub(crate) use bars::StrategyComparisonChart;
pub(crate) use common::{short_number, FONT_FAMILY};
pub(crate) use curves::LearningCurvesChart;
pub(crate) use heatmap::DeltaMHeatmapChart;
pub(crate) use importance::{eta_squared_note, ImportanceChart};
pub(crate) use lines::{steps_per_epoch, DiagnosticChart, MetricByLambdaChart};
pub(crate) use pareto::ParetoChart;

use crate::ReportError;
use common::PlotResult;

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

/// A hover text of the SVG: a disc of `radius` pixels around `centre` whose
/// `<title>` is `text`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Tooltip {
    pub centre: (i32, i32),
    pub radius: i32,
    pub text: String,
}

/// A chart that can be drawn on any plotters backend.
pub(crate) trait Chart {
    /// Pixel size of the PNG (and of the SVG's view box).
    fn size(&self) -> (u32, u32);
    /// Draws the whole chart on `root`, adding the hover texts of what it drew to
    /// `tooltips` (in pixels of `root`).
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>, tooltips: &mut Vec<Tooltip>) -> PlotResult<DB>;
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
        let root = png::PngBackend::new(BitMapBackend::new(&partial_png, chart.size())).into_drawing_area();
        let drawn = chart.draw(&root, &mut Vec::new()).and_then(|()| root.present());
        drawn.map_err(|error| {
            let _ = std::fs::remove_file(&partial_png);
            plot_error(&png_path, &error)
        })?;
    }
    std::fs::rename(&partial_png, &png_path).map_err(|source| ReportError::Io { path: png_path.clone(), source })?;
    let svg = render_svg(chart).map_err(|message| plot_error(&svg_path, &message))?;
    crate::write_whole(&svg_path, svg.as_bytes())?;
    Ok([png_path, svg_path])
}

/// The chart as SVG text, with its tooltips, safe for XML.
pub(crate) fn render_svg(chart: &impl Chart) -> Result<String, String> {
    let mut svg = String::new();
    let mut tooltips = Vec::new();
    {
        let root = SVGBackend::with_string(&mut svg, chart.size()).into_drawing_area();
        chart.draw(&root, &mut tooltips).and_then(|()| root.present()).map_err(|error| error.to_string())?;
    }
    Ok(with_tooltips(&xml_safe(&svg), &tooltips))
}

/// `svg` with a transparent disc per tooltip, each holding its `<title>`, drawn last
/// (on top of everything, so the pointer finds them) in one group. plotters' SVG
/// backend writes no `<title>`, so they are added to its text: after the last element,
/// before the closing `</svg>`.
pub(crate) fn with_tooltips(svg: &str, tooltips: &[Tooltip]) -> String {
    let Some(end) = svg.rfind("</svg>") else { return svg.to_string() };
    if tooltips.is_empty() {
        return svg.to_string();
    }
    let mut group = String::from("<g class=\"tooltips\" fill=\"#000\" fill-opacity=\"0\" pointer-events=\"all\">\n");
    for tooltip in tooltips {
        let (x, y) = tooltip.centre;
        // The page's escaping (numeric references are XML too) of the XML-safe text.
        let text = crate::html::escape(&xml_safe(&tooltip.text));
        group.push_str(&format!(
            "<circle cx=\"{x}\" cy=\"{y}\" r=\"{}\"><title>{text}</title></circle>\n",
            tooltip.radius
        ));
    }
    group.push_str("</g>\n");
    format!("{}{group}{}", &svg[..end], &svg[end..])
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tooltips_go_before_the_end_of_the_svg_escaped() {
        let svg = "<svg width=\"10\" height=\"10\">\n<circle cx=\"3\" cy=\"4\" r=\"2\"/>\n</svg>\n";
        let tooltip = Tooltip { centre: (3, 4), radius: 5, text: "hard <λ=1> & \"x\"\u{1}".into() };
        let with = with_tooltips(svg, &[tooltip]);
        assert!(with.starts_with(
            "<svg width=\"10\" height=\"10\">\n<circle cx=\"3\" cy=\"4\" r=\"2\"/>\n<g class=\"tooltips\""
        ));
        assert!(with.ends_with("</g>\n</svg>\n"), "{with}");
        assert!(
            with.contains("<circle cx=\"3\" cy=\"4\" r=\"5\"><title>hard &lt;λ=1&gt; &amp; &quot;x&quot;\u{fffd}</title></circle>"),
            "{with}"
        );
        assert_eq!(with_tooltips(svg, &[]), svg);
    }
}
