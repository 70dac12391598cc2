//! Which charts would show nothing, and why: a chart against λ with one λ, task
//! weights that are constant by construction, a diagnostic a strategy cannot have.
//! The report then draws no chart and the page says why instead; a chart that
//! leaves some groups out says which and why. Pure: no IO, no plotting.
//!
//! ```text
//! match omitted::diagnostic_chart("grad_cosine", &runs, &groups, &rows, &curves) {
//!     Verdict::Draw { notes, left_out } => { /* draw all groups but left_out, with the notes */ }
//!     Verdict::Omit(reason) => skipped.push((title, reason)),
//!     Verdict::Nothing => {}
//! }
//! ```

use std::collections::{BTreeMap, BTreeSet};

use mtl_store::{DiagnosticRow, ParamValue, RunId, RunRecord};

use super::short_number;
use crate::aggregate::{MeanDiagnostics, MetricByLambda, RunGroup, SINGLE_TASK_STRATEGY};

/// Whether to draw a chart.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Verdict {
    /// Draw it, without the groups `left_out` (indices), with these notes (the
    /// groups it leaves out, and why).
    Draw { notes: Vec<String>, left_out: Vec<usize> },
    /// It would show nothing: say this instead.
    Omit(String),
    /// Nothing was logged for it: no chart and nothing to say.
    Nothing,
}

/// Why a chart of a metric against λ would show nothing: fewer than two λ.
pub(crate) fn lambda_chart(data: &MetricByLambda) -> Option<String> {
    let mut lambdas: Vec<f64> = data.lines.iter().flat_map(|line| line.points.iter().map(|p| p.0)).collect();
    lambdas.sort_by(f64::total_cmp);
    lambdas.dedup();
    match lambdas.as_slice() {
        [] => Some("no multi-task run has a λ (its weighting method sets the task weights)".into()),
        [lambda] => Some(format!(
            "every multi-task run has λ = {}: a chart against λ needs two values of λ or more",
            short_number(*lambda)
        )),
        _ => None,
    }
}

/// Why the Pareto chart would show nothing, when the experiment has several tasks.
pub(crate) fn pareto_chart(n_tasks: usize, n_panels: usize) -> Option<String> {
    (n_tasks >= 2 && n_panels == 0)
        .then(|| "no finished run has the test accuracy of two tasks (single-task runs log one task)".into())
}

/// Whether to draw the diagnostic `name` (`weight` or `grad_cosine`) of `groups`,
/// given the diagnostics their runs logged and the mean `curves` (aligned with `groups`).
pub(crate) fn diagnostic_chart(
    name: &str,
    runs: &[RunRecord],
    groups: &[RunGroup],
    rows: &[DiagnosticRow],
    curves: &[MeanDiagnostics],
) -> Verdict {
    let runs_with_rows: BTreeSet<RunId> = rows.iter().map(|row| row.run).collect();
    let has_curve = |index: usize| curves.get(index).is_some_and(|c| c.values().any(|points| !points.is_empty()));
    let logged_something = |group: &RunGroup| group.runs.iter().any(|id| runs_with_rows.contains(id));
    let run_by_id: BTreeMap<RunId, &RunRecord> = runs.iter().map(|run| (run.id, run)).collect();
    let strategy_of = |group: &RunGroup| {
        group.runs.iter().find_map(|id| match run_by_id.get(id)?.params.get("strategy") {
            Some(ParamValue::Text(strategy)) => Some(strategy.clone()),
            _ => None,
        })
    };
    // Groups that logged diagnostics but not this one, by the reason they cannot have it.
    let mut missing: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (index, group) in groups.iter().enumerate() {
        if !has_curve(index) && logged_something(group) {
            let reason = why_missing(name, strategy_of(group).as_deref());
            missing.entry(reason).or_default().push(group.label());
        }
    }
    let notes: Vec<String> =
        missing.iter().map(|(reason, labels)| format!("not drawn: {}: {reason}", list_labels(labels))).collect();
    if !(0..groups.len()).any(has_curve) {
        return match notes.is_empty() {
            true => Verdict::Nothing,
            false => Verdict::Omit(
                missing
                    .iter()
                    .map(|(reason, labels)| format!("{}: {reason}", list_labels(labels)))
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
        };
    }
    if name == "weight" && curves.iter().flat_map(|c| c.values()).all(|points| is_constant(points)) {
        let weightings: BTreeSet<String> = groups
            .iter()
            .enumerate()
            .filter(|(index, _)| has_curve(*index))
            .flat_map(|(_, group)| &group.runs)
            .filter_map(|id| run_by_id.get(id))
            .map(|run| run.params.get("weighting").map_or("static".to_string(), ParamValue::to_string))
            .collect();
        let reason = if weightings.iter().all(|w| w == "static" || w == "equal") {
            let names = weightings.into_iter().collect::<Vec<_>>().join(" and ");
            format!(
                "every run weights its task losses with fixed weights ({names} weighting: 1 for the first task, \
                 λ or 1 for the others), so the task weights are constant by construction"
            )
        } else {
            "no task weight changed during training".to_string()
        };
        return Verdict::Omit(reason);
    }
    // Fixed weights (static, equal) beside weights that move: the fixed ones are lines
    // at 1 and λ that say nothing and, with λ over decades, flatten the others.
    let mut notes = notes;
    let mut left_out = Vec::new();
    if name == "weight" {
        let fixed = |index: usize| {
            let group = &groups[index];
            let weighting = |id: &RunId| run_by_id.get(id).and_then(|run| run.params.get("weighting"));
            has_curve(index)
                && curves[index].values().all(|points| is_constant(points))
                && group
                    .runs
                    .iter()
                    .all(|id| matches!(weighting(id), Some(ParamValue::Text(w)) if w == "static" || w == "equal"))
        };
        left_out = (0..groups.len()).filter(|&index| fixed(index)).collect();
        if !left_out.is_empty() {
            let labels: Vec<String> = left_out.iter().map(|&index| groups[index].label()).collect();
            notes.push(format!(
                "not drawn: {}: static or equal weighting fixes the task weights (1, and λ or 1) by construction",
                list_labels(&labels)
            ));
        }
    }
    Verdict::Draw { notes, left_out }
}

/// Why a group that logged diagnostics has no `name`, from its strategy.
fn why_missing(name: &str, strategy: Option<&str>) -> String {
    match (name, strategy) {
        ("grad_cosine", Some("soft")) => "soft sharing has no shared parameters (each task trains its own trunk, \
                                          tied only by an L2 penalty), so there is no shared gradient to compare"
            .into(),
        ("grad_cosine", Some(SINGLE_TASK_STRATEGY)) => "a single-task run has one task gradient, not a pair".into(),
        ("grad_cosine", _) => "its runs logged no gradient cosine".into(),
        (_, Some(SINGLE_TASK_STRATEGY)) => "a single-task run has one task and no task weights".into(),
        _ => format!("its runs logged no {}", name.replace('_', " ")),
    }
}

/// Up to four labels, then how many more; `; ` between them, as labels hold commas.
fn list_labels(labels: &[String]) -> String {
    let shown = labels.iter().take(4).cloned().collect::<Vec<_>>().join("; ");
    match labels.len() {
        0..=4 => shown,
        n => format!("{shown} and {} more", n - 4),
    }
}

/// Whether every value of a curve equals its first (to 1e-9, relative).
fn is_constant(points: &[(u64, f64)]) -> bool {
    let Some(&(_, first)) = points.first() else { return true };
    points.iter().all(|&(_, value)| (value - first).abs() <= 1e-9 * first.abs().max(1.0))
}

#[cfg(test)]
mod tests {
    use mtl_store::DiagnosticPoint;

    use super::*;
    use crate::aggregate::{seed_stats, LambdaLine};

    fn run(id: i64, strategy: &str, weighting: &str) -> RunRecord {
        RunRecord {
            id: RunId(id),
            params: [("strategy", strategy), ("weighting", weighting)]
                .iter()
                .map(|(k, v)| (k.to_string(), ParamValue::Text(v.to_string())))
                .collect(),
            ..RunRecord::default()
        }
    }

    fn group(method: &str, id: i64) -> RunGroup {
        RunGroup { method: method.into(), lambda: Some(1.0), runs: vec![RunId(id)] }
    }

    fn row(run: i64, name: &str, value: f64) -> DiagnosticRow {
        let other = if name == "grad_cosine" { "b" } else { "" };
        DiagnosticRow {
            run: RunId(run),
            step: 10,
            epoch: 1,
            point: DiagnosticPoint { name: name.into(), task: "a".into(), other: other.into(), value },
        }
    }

    fn curves(values: &[Option<&[f64]>]) -> Vec<MeanDiagnostics> {
        values
            .iter()
            .map(|points| match points {
                Some(points) => {
                    let points = points.iter().enumerate().map(|(i, v)| (10 * i as u64 + 10, *v)).collect();
                    BTreeMap::from([(("a".to_string(), String::new()), points)])
                }
                None => BTreeMap::new(),
            })
            .collect()
    }

    #[test]
    fn one_lambda_or_none_is_no_chart_against_lambda() {
        let line = |lambdas: &[f64]| LambdaLine {
            method: "hard".into(),
            points: lambdas.iter().map(|&l| (l, seed_stats(&[0.5]).expect("a value"))).collect(),
        };
        let data = |lines: Vec<LambdaLine>| MetricByLambda { lines, references: vec![] };
        let one = lambda_chart(&data(vec![line(&[1.0]), line(&[1.0])])).expect("one λ");
        assert!(one.contains("λ = 1"), "{one}");
        assert!(lambda_chart(&data(vec![])).expect("no λ").contains("no multi-task run has a λ"));
        assert_eq!(lambda_chart(&data(vec![line(&[0.5]), line(&[2.0])])), None);
    }

    #[test]
    fn static_weights_are_constant_by_construction() {
        let runs = [run(1, "hard", "static"), run(2, "soft", "static")];
        let groups = [group("hard", 1), group("soft", 2)];
        let rows = [row(1, "weight", 1.0), row(2, "weight", 1.0), row(1, "grad_cosine", 0.3)];
        let weights = curves(&[Some(&[1.0, 1.0, 1.0]), Some(&[1.0, 1.0])]);
        let Verdict::Omit(reason) = diagnostic_chart("weight", &runs, &groups, &rows, &weights) else { panic!() };
        assert!(reason.contains("constant by construction") && reason.contains("static weighting"), "{reason}");
        // One group's weights move: drawn.
        let moving = curves(&[Some(&[1.0, 1.2]), Some(&[1.0, 1.0])]);
        let moving_runs = [run(1, "hard", "uncertainty"), run(2, "soft", "static")];
        let verdict = diagnostic_chart("weight", &moving_runs, &groups, &rows, &moving);
        let Verdict::Draw { notes, left_out } = verdict else { panic!("{verdict:?}") };
        assert_eq!(left_out, [1], "soft's static weights are fixed beside hard's that move");
        assert!(notes[0].starts_with("not drawn: soft λ=1: static or equal weighting fixes"), "{notes:?}");
        let uncertainty = [run(1, "hard", "uncertainty"), run(2, "soft", "static")];
        let Verdict::Omit(reason) = diagnostic_chart("weight", &uncertainty, &groups, &rows, &weights) else {
            panic!()
        };
        assert_eq!(reason, "no task weight changed during training");
    }

    #[test]
    fn soft_has_no_gradient_cosine_and_the_chart_says_so() {
        let runs = [run(1, "hard", "static"), run(2, "soft", "static"), run(3, "single-task", "static")];
        let groups = [group("hard", 1), group("soft", 2), group("single-task", 3)];
        let rows = [row(1, "weight", 1.0), row(2, "weight", 1.0), row(1, "grad_cosine", 0.3)];
        let cosines = curves(&[Some(&[0.3]), None, None]);
        let Verdict::Draw { notes, .. } = diagnostic_chart("grad_cosine", &runs, &groups, &rows, &cosines) else {
            panic!()
        };
        // single-task logged nothing at all: not mentioned; soft logged weights but no cosine.
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].starts_with("not drawn: soft λ=1: soft sharing has no shared parameters"), "{notes:?}");
        // Only soft: no chart, and the reason.
        let only_soft = curves(&[None, None, None]);
        let Verdict::Omit(reason) = diagnostic_chart("grad_cosine", &runs, &groups[1..2], &rows, &only_soft[..1])
        else {
            panic!()
        };
        assert!(reason.starts_with("soft λ=1: soft sharing has no shared parameters"), "{reason}");
        assert_eq!(diagnostic_chart("grad_cosine", &runs, &groups[2..], &rows, &only_soft[..1]), Verdict::Nothing);
    }
}
