//! Renders `index.html`: one self-contained page (inline CSS, one inline
//! script that sorts tables, no network) with each experiment's charts (the
//! strategy comparison with its table of numbers), the comparison of its
//! weighting methods, and a table of its runs. Pure: it builds a string; the
//! caller writes it.
//!
//! ```text
//! let section = ExperimentSection { name, runs, charts, method_table: None, hidden_groups: 0, source, runs_csv, verdict: None, skipped: vec![] };
//! let page = render_index(Path::new("mtl.db"), &[section]);
//! ```

use std::collections::BTreeSet;
use std::fmt::Write;
use std::path::Path;

use mtl_store::{MetricKey, RunRecord};

use crate::aggregate::{task_names, MethodComparison, SeedStats, StrategyComparison};

/// One experiment's part of the page.
pub(crate) struct ExperimentSection {
    /// Experiment name.
    pub name: String,
    /// All its runs, whatever their status.
    pub runs: Vec<mtl_store::RunRecord>,
    /// Its charts, in display order.
    pub charts: Vec<ChartLink>,
    /// The comparison of weighting methods, shown after the strategy
    /// comparison (or first, when there is none).
    pub method_table: Option<MethodComparison>,
    /// Groups of runs left out of the charts with a line per group.
    pub hidden_groups: usize,
    /// The experiment file and versions.
    pub source: Source,
    /// The file, beside the page, that lists every run as CSV.
    pub runs_csv: String,
    /// One line for the table of contents: the best method's Δm% with its interval.
    pub verdict: Option<String>,
    /// Charts not drawn because they would show nothing: `(title, why)`.
    pub skipped: Vec<(String, String)>,
}

/// Where an experiment's runs came from.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Source {
    /// The experiment file of the latest run, as given to `mtl run`.
    pub file: Option<String>,
    /// Its text.
    pub text: Option<String>,
    /// How many different texts of the file the runs were made from.
    pub file_versions: usize,
    /// Every mtl-lab version, git commit and host of the runs.
    pub mtl_versions: Vec<String>,
    pub git_commits: Vec<String>,
    pub hosts: Vec<String>,
}

/// Rows of the runs table at most; every run is in the CSV file beside the page.
const MAX_TABLE_ROWS: usize = 1000;

/// A chart as the page refers to it: file names relative to the page.
pub(crate) struct ChartLink {
    /// Caption and alt text.
    pub title: String,
    /// The PNG shown inline.
    pub png_file_name: String,
    /// The SVG linked below it.
    pub svg_file_name: String,
    /// The numbers of a strategy comparison chart, shown as a table below it.
    pub strategy_table: Option<StrategyComparison>,
    /// Said under the chart, e.g. which groups it leaves out and why.
    pub notes: Vec<String>,
}

/// Settings people read first; the rest follow alphabetically.
const LEADING_PARAMS: [&str; 4] = ["strategy", "weighting", "lambda", "seed"];

const STYLE: &str = "
pre { background: #f6f6f6; padding: .6rem; overflow-x: auto; font-size: .8rem; }
details summary { cursor: pointer; }
@media (max-width: 640px) { body { padding: .5rem; } h1 { font-size: 1.3rem; } th, td { padding: .2rem .35rem; } }
body { font-family: system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; color: #222; margin: 0 auto;
       max-width: 1200px; padding: 1rem; line-height: 1.4; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.3rem; border-bottom: 2px solid #ddd; margin-top: 2.5rem; }
figure { margin: 1.5rem 0; } figcaption { font-size: .9rem; color: #555; }
img { max-width: 100%; height: auto; border: 1px solid #eee; }
.table-scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: .85rem; }
th, td { padding: .3rem .6rem; border-bottom: 1px solid #e4e4e4; text-align: right; white-space: nowrap; }
th { background: #f6f6f6; }
td.text { text-align: left; }
.status-done { color: #1a7f37; } .status-failed { color: #cf222e; } .status-running, .status-interrupted, .status-pruned { color: #9a6700; }
.meta { color: #666; font-size: .9rem; }
caption { caption-side: top; text-align: left; font-size: .85rem; color: #555; padding: .3rem 0; }
table.sortable th { cursor: pointer; user-select: none; }
table.sortable th:hover { background: #ececec; }
table.sortable th::after { content: \" ↕\"; color: #aaa; }
table.sortable th[aria-sort=ascending]::after { content: \" ▲\"; color: inherit; }
table.sortable th[aria-sort=descending]::after { content: \" ▼\"; color: inherit; }
";

/// Sorts a `table.sortable` by the column whose header is clicked (or given
/// Enter/Space), ascending first, then toggling. A cell that starts with a
/// number sorts by it (`0.8323 ± 0.0381 (2)`, `1.00×`); other cells as text
/// (numbers before text); empty cells and dashes last in both directions.
const SORT_SCRIPT: &str = r#"
(() => {
  function sortKey(cell) {
    const text = cell ? cell.textContent.trim() : '';
    if (text === '' || text === '-' || text === '\u2013') return null;
    const number = /^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?(?=$|[\s\u00d7%])/i.exec(text);
    return number ? parseFloat(number[0]) : text;
  }
  function compareKeys(a, b, sign) {
    if (a === null || b === null) return (a === null) - (b === null);
    if (typeof a !== typeof b) return typeof a === 'number' ? -1 : 1;
    return sign * (typeof a === 'number' ? a - b : a.localeCompare(b, undefined, { numeric: true }));
  }
  document.querySelectorAll('table.sortable').forEach((table) => {
    const headers = [...table.tHead.rows[0].cells];
    headers.forEach((header, column) => {
      header.tabIndex = 0;
      const sort = () => {
        const descending = header.getAttribute('aria-sort') === 'ascending';
        const body = table.tBodies[0];
        const keyed = [...body.rows].map((row) => [sortKey(row.cells[column]), row]);
        keyed.sort((a, b) => compareKeys(a[0], b[0], descending ? -1 : 1));
        body.append(...keyed.map((pair) => pair[1]));
        headers.forEach((other) => other.removeAttribute('aria-sort'));
        header.setAttribute('aria-sort', descending ? 'descending' : 'ascending');
      };
      header.addEventListener('click', sort);
      header.addEventListener('keydown', (event) => {
        if (event.key === 'Enter' || event.key === ' ') {
          event.preventDefault();
          sort();
        }
      });
    });
  });
})();
"#;

/// The whole page for `sections`, read from `database`.
pub(crate) fn render_index(database: &Path, sections: &[ExperimentSection]) -> String {
    let mut page = String::new();
    let n_runs: usize = sections.iter().map(|section| section.runs.len()).sum();
    // Writing to a String cannot fail, so the fmt results are ignored.
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>mtl-lab report</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <h1>mtl-lab report</h1>\n<p class=\"meta\">{} experiment(s), {n_runs} run(s), from <code>{}</code>. \
         Charts show finished runs only, as mean over seeds (band: ±1 sample standard deviation).</p>\n",
        sections.len(),
        escape(&database.display().to_string()),
    );
    render_contents(&mut page, sections);
    for (index, section) in sections.iter().enumerate() {
        render_section(&mut page, index, section);
    }
    let _ = write!(page, "<script>{SORT_SCRIPT}</script>\n</body>\n</html>\n");
    page
}

/// The trials the sweep's `[prune]` rule stopped, each with its reason.
fn render_pruned(page: &mut String, runs: &[RunRecord]) {
    let pruned: Vec<&RunRecord> = runs.iter().filter(|r| r.status == mtl_store::RunStatus::Pruned).collect();
    if pruned.is_empty() {
        return;
    }
    let _ = writeln!(
        page,
        "<h3>Pruned trials</h3>\n<p class=\"meta\">{} trials stopped early by the experiment's <code>[prune]</code> \
         rule; they are left out of the groups and charts.</p>\n<ul class=\"meta\">",
        pruned.len()
    );
    const SHOWN: usize = 100;
    for run in pruned.iter().take(SHOWN) {
        let _ = writeln!(page, "<li>run {}: {}</li>", run.id.0, escape(run.error.as_deref().unwrap_or("pruned")));
    }
    if pruned.len() > SHOWN {
        let _ = writeln!(
            page,
            "<li>and {} more: <code>mtl ls --where \"status = 'pruned'\"</code></li>",
            pruned.len() - SHOWN
        );
    }
    page.push_str("</ul>\n");
}

/// The table of contents: each experiment with its revisions, run counts and verdict.
fn render_contents(page: &mut String, sections: &[ExperimentSection]) {
    page.push_str(
        "<nav><h2>Contents</h2>\n<div class=\"table-scroll\"><table>\n<thead><tr><th>experiment</th>\
         <th>revisions</th><th>runs done / all</th><th>verdict</th></tr></thead>\n<tbody>\n",
    );
    for (index, section) in sections.iter().enumerate() {
        let done = section.runs.iter().filter(|r| r.status == mtl_store::RunStatus::Done).count();
        let revisions = section.runs.iter().map(|r| r.revision).filter(|r| *r > 0).collect::<BTreeSet<_>>().len();
        let _ = writeln!(
            page,
            "<tr><td class=\"text\"><a href=\"#experiment-{index}\">{}</a></td><td>{}</td><td>{done} / {}</td>\
             <td class=\"text\">{}</td></tr>",
            escape(&section.name),
            revisions.max(1),
            section.runs.len(),
            escape(
                section
                    .verdict
                    .as_deref()
                    .unwrap_or("no multi-task Δm% yet (needs finished single-task and multi-task runs)")
            )
        );
    }
    page.push_str("</tbody></table></div></nav>\n");
}

fn render_section(page: &mut String, index: usize, section: &ExperimentSection) {
    let _ = writeln!(page, "<section id=\"experiment-{index}\">\n<h2>{}</h2>", escape(&section.name));
    if section.charts.is_empty() {
        page.push_str("<p class=\"meta\">No finished runs to chart yet.</p>\n");
    }
    render_source(page, &section.source);
    if section.hidden_groups > 0 {
        let _ = writeln!(
            page,
            "<p class=\"meta\">The strategy chart, the λ charts, the learning curves and the diagnostics show the \
             single-task baselines and the {} other groups with the best validation score (mean validation accuracy over tasks, or each task's selecting metric); {} more groups \
             are left out of them. The Δm% heatmap and the Pareto chart use every run; <code>mtl compare</code> \
             lists every group, and the runs table every run.</p>",
            crate::MAX_LINES,
            section.hidden_groups
        );
    }
    let mut method_table = section.method_table.as_ref();
    if !section.charts.iter().any(|chart| chart.strategy_table.is_some()) {
        method_table.take().into_iter().for_each(|comparison| render_method_table(page, comparison));
    }
    for chart in &section.charts {
        let _ = writeln!(
            page,
            "<figure><img src=\"{png}\" alt=\"{title}\" loading=\"lazy\">\
             <figcaption>{title} — <a href=\"{svg}\">SVG</a>{notes}</figcaption></figure>",
            png = escape(&chart.png_file_name),
            svg = escape(&chart.svg_file_name),
            title = escape(&chart.title),
            notes = chart.notes.iter().map(|note| format!("<br>{}", escape(note))).collect::<String>(),
        );
        if let Some(comparison) = &chart.strategy_table {
            render_strategy_table(page, comparison);
            method_table.take().into_iter().for_each(|comparison| render_method_table(page, comparison));
        }
    }
    if !section.skipped.is_empty() {
        page.push_str("<h3>Charts not drawn</h3>\n<ul class=\"meta\">\n");
        for (title, why) in &section.skipped {
            let _ = writeln!(page, "<li>{}: {}</li>", escape(title), escape(why));
        }
        page.push_str("</ul>\n");
    }
    render_pruned(page, &section.runs);
    render_runs_table(page, &section.runs, &section.runs_csv);
    page.push_str("</section>\n");
}

fn render_source(page: &mut String, source: &Source) {
    let list = |values: &[String]| if values.is_empty() { "–".to_string() } else { escape(&values.join(", ")) };
    let _ = writeln!(
        page,
        "<p class=\"meta\">mtl-lab {} · git {} · host {}</p>",
        list(&source.mtl_versions),
        list(&source.git_commits),
        list(&source.hosts)
    );
    if let (Some(file), Some(text)) = (&source.file, &source.text) {
        let versions = match source.file_versions {
            0 | 1 => String::new(),
            n => format!(
                " (the runs were made from {n} revisions of it; this is the latest; runs whose settings differ are \
                 never pooled)"
            ),
        };
        let _ = writeln!(
            page,
            "<details><summary>Experiment file <code>{}</code>{versions}</summary><pre>{}</pre></details>",
            escape(file),
            escape(text)
        );
    }
}

/// Every run of a section as CSV: id, status, error, settings, final test metrics.
pub(crate) fn runs_csv(runs: &[RunRecord]) -> String {
    let params: BTreeSet<&str> = runs.iter().flat_map(|run| run.params.keys().map(String::as_str)).collect();
    let metrics: BTreeSet<&MetricKey> = runs.iter().flat_map(|run| run.result_metrics().keys()).collect();
    let mut out = csv::Writer::from_writer(Vec::new());
    let header = ["run", "revision", "status", "error", "result_epoch"].iter().map(|h| h.to_string());
    let header = header.chain(params.iter().map(|p| p.to_string())).chain(metrics.iter().map(|k| k.to_string()));
    // Writing to a Vec cannot fail.
    let _ = out.write_record(header.collect::<Vec<_>>());
    for run in runs {
        let cells = [
            run.id.0.to_string(),
            run.revision.to_string(),
            run.status.as_str().to_string(),
            run.error.clone().unwrap_or_default(),
            run.result_epoch().map_or(String::new(), |e| e.to_string()),
        ];
        let cells = cells
            .into_iter()
            .chain(params.iter().map(|p| run.params.get(*p).map_or(String::new(), |v| v.to_string())))
            .chain(metrics.iter().map(|k| run.result(k).map_or(String::new(), |v| v.to_string())));
        let _ = out.write_record(cells.collect::<Vec<_>>());
    }
    String::from_utf8(out.into_inner().unwrap_or_default()).unwrap_or_default()
}

fn render_runs_table(page: &mut String, all_runs: &[RunRecord], csv_file: &str) {
    let runs = &all_runs[..all_runs.len().min(MAX_TABLE_ROWS)];
    let all_params: BTreeSet<&str> = runs.iter().flat_map(|run| run.params.keys().map(String::as_str)).collect();
    let leading = LEADING_PARAMS.iter().copied().filter(|name| all_params.contains(name));
    let param_names: Vec<&str> =
        leading.chain(all_params.iter().copied().filter(|name| !LEADING_PARAMS.contains(name))).collect();
    // Each task's headline metric, and macro-F1 where the task is classification or has it.
    let metric_columns: Vec<(MetricKey, String)> = task_names(runs)
        .into_iter()
        .flat_map(|task| {
            let headline = crate::aggregate::headline_key(runs, &task, "test");
            let macro_f1 = MetricKey { metric: "macro_f1".into(), ..headline.clone() };
            let has_macro_f1 = headline.metric == "accuracy"
                || (headline.metric != "macro_f1" && runs.iter().any(|r| r.result(&macro_f1).is_some()));
            let heading = |key: &MetricKey| match key.metric.as_str() {
                "macro_f1" => format!("{task} test macro-F1"),
                metric => format!("{task} test {metric}"),
            };
            let mut columns = vec![(headline.clone(), heading(&headline))];
            if has_macro_f1 {
                columns.push((macro_f1.clone(), heading(&macro_f1)));
            }
            columns
        })
        .collect();

    let shown = if runs.len() < all_runs.len() {
        format!("the first {} of {} runs; ", runs.len(), all_runs.len())
    } else {
        String::new()
    };
    let _ = write!(
        page,
        "<h3>Runs</h3>\n<p class=\"meta\">{shown}each run's result (see the strategy table); every run with every \
         metric of its result: <a href=\"{csv}\">{csv}</a>; click a header to sort</p>\n<div class=\"table-scroll\"><table class=\"sortable\">\n\
         <thead><tr><th>run</th><th>status</th>",
        csv = escape(csv_file)
    );
    for heading in param_names.iter().map(|name| name.to_string()).chain(metric_columns.iter().map(|c| c.1.clone())) {
        let _ = write!(page, "<th>{}</th>", escape(&heading));
    }
    page.push_str("</tr></thead>\n<tbody>\n");
    for run in runs {
        let status = run.status.as_str();
        let error_title = run.error.as_deref().map(|error| format!(" title=\"{}\"", escape(error))).unwrap_or_default();
        let _ = write!(page, "<tr><td>{}</td><td class=\"text status-{status}\"{error_title}>{status}</td>", run.id.0);
        for name in &param_names {
            let (class, shown) = match run.params.get(*name) {
                Some(mtl_store::ParamValue::Text(text)) => (" class=\"text\"", text.clone()),
                Some(value) => ("", value.to_string()),
                None => ("", "–".to_string()),
            };
            let _ = write!(page, "<td{class}>{}</td>", escape(&shown));
        }
        for (key, _) in &metric_columns {
            let shown = run.result(key).map_or_else(|| "–".to_string(), |value| format!("{value:.4}"));
            let _ = write!(page, "<td>{shown}</td>");
        }
        page.push_str("</tr>\n");
    }
    page.push_str("</tbody></table></div>\n");
}

fn render_strategy_table(page: &mut String, comparison: &StrategyComparison) {
    let rule = comparison.methods().next().map_or("", |m| m.rule);
    let _ = write!(
        page,
        "<div class=\"table-scroll\"><table class=\"sortable\">\n<caption>Each task's headline test metric (accuracy, R², mAP): mean [95% interval] over \
         the n seeds, {rule}; each method at the λ with the best validation score (as for the best epoch) (\"λ 1 of 4\": \
         chosen among 4). + better, − worse, ≈ within noise than single-task (Welch's t-test, 5%); Δm% with its \
         interval; vs best: t-test on the runs' own Δm%, paired by seed. The same numbers as \
         <code>mtl compare --group-by strategy --pick lambda</code>.</caption>\n\
         <thead><tr><th>method</th><th>λ</th><th>n</th>"
    );
    for (task, metric) in comparison.tasks.iter().zip(&comparison.headline_metrics) {
        let _ = write!(page, "<th>{} test {}</th>", escape(task), escape(metric));
    }
    page.push_str("<th>Δm%</th><th>vs best</th><th>parameters</th></tr></thead>\n<tbody>\n");
    for method in comparison.methods() {
        let row = &method.row;
        let lambda = match (&row.picked, row.candidates) {
            (Some(value), n) if n > 1 => format!("{value} of {n}"),
            (Some(value), _) => value.to_string(),
            (None, _) => "–".to_string(),
        };
        let _ = write!(
            page,
            "<tr><td class=\"text\">{}</td><td class=\"text\">{}</td><td>{}</td>",
            escape(&method.method),
            escape(&lambda),
            row.runs.len()
        );
        for (i, stats) in method.test_accuracy_by_task.iter().enumerate() {
            let _ = write!(page, "<td>{}{}</td>", interval_cell(stats), crate::stats::marker(method.verdicts[i]));
        }
        let delta = row.delta_m.as_ref().map_or("–".to_string(), |d| match d.ci95 {
            _ if row.baseline => format!("{:+.2} (baseline)", d.value),
            Some((low, high)) => format!("{:+.2} [{low:+.2}, {high:+.2}]{}", d.value, crate::stats::marker(d.verdict)),
            None => format!("{:+.2} [n/a]", d.value),
        });
        let standing = row.standing.map_or("–", |s| s.name());
        let n_parameters = method.n_parameters.map_or_else(|| "–".to_string(), |n| n.to_string());
        let _ = writeln!(page, "<td>{delta}</td><td class=\"text\">{standing}</td><td>{n_parameters}</td></tr>");
    }
    page.push_str("</tbody></table></div>\n");
}

/// `mean [low, high]` of a value over seeds, or a dash.
fn interval_cell(stats: &Option<SeedStats>) -> String {
    stats.map_or_else(
        || "–".to_string(),
        |s| match s.ci95 {
            Some((low, high)) => format!("{:.4} [{low:.4}, {high:.4}]", s.mean),
            None => format!("{:.4} (n = 1)", s.mean),
        },
    )
}

fn render_method_table(page: &mut String, comparison: &MethodComparison) {
    page.push_str(
        "<h3>Weighting methods</h3>\n<div class=\"table-scroll\"><table class=\"sortable\">\n<caption>Every method and λ: \
         each task's headline test metric (each run's result), mean [95% interval] over seeds; training time per optimiser step, mean over runs, \
         and relative to static weighting of the same strategy (the mean over its λ); task weights and \
         gradient cosines of each run's last logging window, mean over seeds</caption>\n\
         <thead><tr><th>method</th><th>λ</th>",
    );
    let weighted_task_indices: Vec<usize> = (0..comparison.tasks.len())
        .filter(|&task_index| comparison.methods.iter().any(|method| method.final_weight_by_task[task_index].is_some()))
        .collect();
    for (task, metric) in comparison.tasks.iter().zip(&comparison.headline_metrics) {
        let _ = write!(page, "<th>{} test {}</th>", escape(task), escape(metric));
    }
    page.push_str("<th>time per step (ms)</th><th>relative to static</th>");
    for &task_index in &weighted_task_indices {
        let _ = write!(page, "<th>{} final weight</th>", escape(&comparison.tasks[task_index]));
    }
    for (task, other) in &comparison.task_pairs {
        let _ = write!(page, "<th>{} · {} final cosine</th>", escape(task), escape(other));
    }
    page.push_str("</tr></thead>\n<tbody>\n");
    let dash = || "–".to_string();
    let mean_cell = |stats: &Option<SeedStats>| stats.map_or_else(dash, |stats| format!("{:.3}", stats.mean));
    for method in &comparison.methods {
        let lambda = method.lambda.map_or_else(dash, |lambda| lambda.to_string());
        let _ = write!(page, "<tr><td class=\"text\">{}</td><td>{lambda}</td>", escape(&method.method));
        for stats in &method.test_accuracy_by_task {
            let _ = write!(page, "<td>{}</td>", interval_cell(stats));
        }
        let milliseconds = method.seconds_per_step.map_or_else(dash, |stats| format!("{:.2}", 1e3 * stats.mean));
        let relative = method.relative_to_static.map_or_else(dash, |relative| format!("{relative:.2}×"));
        let _ = write!(page, "<td>{milliseconds}</td><td>{relative}</td>");
        for &task_index in &weighted_task_indices {
            let _ = write!(page, "<td>{}</td>", mean_cell(&method.final_weight_by_task[task_index]));
        }
        for stats in &method.final_cosine_by_pair {
            let _ = write!(page, "<td>{}</td>", mean_cell(stats));
        }
        page.push_str("</tr>\n");
    }
    page.push_str("</tbody></table></div>\n");
}

/// Escapes text for HTML content and double- or single-quoted attributes.
pub(crate) fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            // Control characters are not allowed in HTML text: shown as escapes instead.
            c if c.is_control() && !matches!(c, '\t' | '\n') => escaped.extend(c.escape_default()),
            other => escaped.push(other),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use mtl_store::{ParamValue, RunId, RunStatus};

    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(escape(r#"<b>"a" & 'b'</b>"#), "&lt;b&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/b&gt;");
    }

    #[test]
    fn table_lists_every_param_and_escapes_text() {
        let run = RunRecord {
            id: RunId(3),
            experiment: "<x>".into(),
            trial_key: "k".into(),
            status: RunStatus::Failed,
            started_at: None,
            ended_at: None,
            error: Some("loss was \"NaN\"".into()),
            params: BTreeMap::from([
                ("strategy".into(), ParamValue::Text("<hard>".into())),
                ("zeta".into(), ParamValue::Num(0.5)),
                ("lambda".into(), ParamValue::Num(2.0)),
            ]),
            final_epoch: Some(1),
            final_metrics: BTreeMap::from([(
                MetricKey { task: "shapes".into(), split: "test".into(), metric: "accuracy".into() },
                0.91234,
            )]),
            ..RunRecord::default()
        };
        let source = Source {
            file: Some("e<1>.toml".into()),
            text: Some("name = \"<x>\"\n".into()),
            file_versions: 2,
            mtl_versions: vec!["0.1.0".into()],
            git_commits: vec![],
            hosts: vec!["h1".into(), "h2".into()],
        };
        let section = ExperimentSection {
            name: "<x>".into(),
            runs: vec![run.clone()],
            charts: vec![],
            method_table: None,
            hidden_groups: 3,
            source,
            runs_csv: "x-runs.csv".into(),
            verdict: None,
            skipped: vec![("<x>: test accuracy vs λ".into(), "one λ".into())],
        };
        let page = render_index(Path::new("a&b.db"), &[section]);
        // The experiment file (escaped), the versions, the hidden groups and the CSV link.
        for expected in [
            "<summary>Experiment file <code>e&lt;1&gt;.toml</code> (the runs were made from 2 revisions of it",
            "<pre>name = &quot;&lt;x&gt;&quot;\n</pre>",
            "mtl-lab 0.1.0 · git – · host h1, h2",
            "3 more groups are left out of them",
            "<h3>Charts not drawn</h3>\n<ul class=\"meta\">\n<li>&lt;x&gt;: test accuracy vs λ: one λ</li>\n</ul>",
            "<a href=\"x-runs.csv\">x-runs.csv</a>",
        ] {
            assert!(page.contains(expected), "expected {expected:?} in:\n{page}");
        }
        assert_eq!(
            runs_csv(&[run]),
            "run,revision,status,error,result_epoch,lambda,strategy,zeta,shapes.test.accuracy\n3,0,failed,\"loss was \"\"NaN\"\"\",1,2,<hard>,0.5,0.91234\n"
        );
        for expected in [
            "<h2>&lt;x&gt;</h2>",
            "<code>a&amp;b.db</code>",
            "<th>strategy</th><th>lambda</th><th>zeta</th><th>shapes test accuracy</th><th>shapes test macro-F1</th>",
            "title=\"loss was &quot;NaN&quot;\">failed</td>",
            "<td class=\"text\">&lt;hard&gt;</td><td>2</td><td>0.5</td><td>0.9123</td><td>–</td>",
        ] {
            assert!(page.contains(expected), "expected {expected:?} in:\n{page}");
        }
        assert!(!page.contains("<hard>"));
        // The runs table sorts in the page, with the one inline script.
        assert!(page.contains("<table class=\"sortable\">\n<thead><tr><th>run</th>"), "{page}");
        assert_eq!(page.matches("<script>").count(), 1);
        assert!(!page.contains("<script src"), "no external script");
    }
}
