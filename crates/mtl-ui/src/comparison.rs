//! `/api/compare`: one experiment's seed groups and the charts made of them — the
//! numbers of `mtl compare` (default grouping), the report's Δm% heatmap, Pareto
//! fronts and metric-against-λ lines, and the groups as parallel coordinates.

use std::collections::BTreeMap;

use mtl_report::aggregate::{final_metric_by_lambda, group_runs, headline_key, task_names, SeedStats};
use mtl_report::compare::{compare, default_group_by, CompareSpec, GroupRow};
use mtl_report::tradeoff::{delta_m_grid, pareto, task_pairs};
use mtl_store::listing::known_keys;
use mtl_store::{MetricKey, ParamValue, RunRecord};
use serde_json::{json, Map, Value};

use crate::api::{finite, param_json, runs_of, ApiError};

/// Everything the compare view draws for `experiment`.
pub fn compare_view(all: &[RunRecord], experiment: &str) -> Result<Value, ApiError> {
    let runs: Vec<RunRecord> = runs_of(all, experiment)?.into_iter().cloned().collect();
    let spec = CompareSpec { group_by: default_group_by(&known_keys(&runs)), ..Default::default() };
    let comparison = compare(&runs, &spec);
    let keys = comparison.keys();
    let columns: Vec<String> = comparison.columns.iter().map(|k| k.to_string()).collect();
    let groups: Vec<Value> = comparison.rows.iter().map(|row| group_json(row, &keys, &columns)).collect();

    let heatmap = delta_m_grid(&runs).map(|grid| {
        let cells: Vec<Vec<Value>> = grid
            .cells
            .iter()
            .map(|row| row.iter().map(|c| c.map_or(Value::Null, |(v, _)| finite(v))).collect())
            .collect();
        json!({
            "row_title": "strategy",
            "column_title": grid.column_title,
            "rows": grid.rows,
            "columns": grid.columns,
            "cells": cells,
            "intervals": grid.intervals,
            "metrics": grid.metrics,
        })
    });

    // The report's groups (method and λ): their labels name the Pareto points.
    let run_groups = group_runs(&runs);
    let runs_by_label: BTreeMap<String, Vec<i64>> =
        run_groups.iter().map(|g| (g.label(), g.runs.iter().map(|r| r.0).collect())).collect();
    let tasks = task_names(&runs);
    let fronts: Vec<Value> = task_pairs(&tasks)
        .iter()
        .map(|(x_task, y_task)| {
            let data = pareto(&runs, x_task, y_task);
            let points: Vec<Value> = data
                .points
                .iter()
                .map(|p| {
                    json!({
                        "label": p.label,
                        "x": stats_json(&p.x),
                        "y": stats_json(&p.y),
                        "on_front": p.on_front,
                        "runs": runs_by_label.get(&p.label),
                    })
                })
                .collect();
            json!({
                "x_task": data.x_task, "y_task": data.y_task,
                "x_metric": data.metrics.0, "y_metric": data.metrics.1,
                "points": points, "front": data.front, "single_task": data.single_task,
            })
        })
        .collect();

    // Every test metric against λ, each task's headline metric first.
    let headlines: Vec<MetricKey> = tasks.iter().map(|task| headline_key(&runs, task, "test")).collect();
    let others = comparison.columns.iter().filter(|k| !headlines.contains(k)).cloned();
    let by_lambda: Vec<Value> = headlines
        .iter()
        .cloned()
        .chain(others)
        .map(|key| {
            let lines = final_metric_by_lambda(&runs, &run_groups, &key);
            let lines_json: Vec<Value> = lines
                .lines
                .iter()
                .map(|line| {
                    let points: Vec<Value> = line
                        .points
                        .iter()
                        .map(|(lambda, s)| json!({ "lambda": lambda, "mean": s.mean, "std": s.std, "n": s.n }))
                        .collect();
                    json!({ "method": line.method, "points": points })
                })
                .collect();
            let references: Vec<Value> = lines
                .references
                .iter()
                .map(|(method, s)| json!({ "method": method, "mean": s.mean, "std": s.std }))
                .collect();
            json!({ "metric": key.to_string(), "lines": lines_json, "references": references })
        })
        // Only where some method was run at several λ: one λ is no curve.
        .filter(|v| {
            let lines = v["lines"].as_array().map(Vec::as_slice).unwrap_or_default();
            lines.iter().any(|l| l["points"].as_array().is_some_and(|p| p.len() > 1))
        })
        .collect();

    Ok(json!({
        "experiment": experiment,
        "keys": keys,
        "columns": columns,
        "delta_metrics": comparison.delta_metrics,
        "groups": groups,
        "heatmap": heatmap,
        "pareto": fronts,
        "by_lambda": by_lambda,
        "parallel": parallel(&comparison.rows, &keys),
    }))
}

fn group_json(row: &GroupRow, keys: &[String], columns: &[String]) -> Value {
    let values: Map<String, Value> =
        keys.iter().zip(&row.values).map(|(k, v)| (k.clone(), v.as_ref().map_or(Value::Null, param_json))).collect();
    let stats: Map<String, Value> =
        columns.iter().zip(&row.stats).map(|(k, s)| (k.clone(), s.as_ref().map_or(Value::Null, stats_json))).collect();
    let delta_m = row
        .delta_m
        .as_ref()
        .map(|d| json!({ "value": finite(d.value), "low": d.ci95.map(|c| c.0), "high": d.ci95.map(|c| c.1) }));
    json!({
        "label": row.describe(keys),
        "values": values,
        "picked": row.picked.as_ref().map(param_json),
        "runs": row.runs,
        "baseline": row.baseline,
        "stats": stats,
        "delta_m": delta_m,
        "standing": row.standing.map(|s| s.name()),
        "pareto": row.pareto,
    })
}

fn stats_json(s: &SeedStats) -> Value {
    json!({ "mean": finite(s.mean), "std": finite(s.std), "n": s.n, "low": s.ci95.map(|c| c.0), "high": s.ci95.map(|c| c.1) })
}

/// The multi-task groups with a Δm% as lines through their settings: a category axis
/// for a setting with any text value, a value axis otherwise, Δm% last.
fn parallel(rows: &[GroupRow], keys: &[String]) -> Value {
    let rows: Vec<&GroupRow> = rows.iter().filter(|r| !r.baseline && r.delta_m.is_some()).collect();
    let numeric: Vec<bool> =
        (0..keys.len()).map(|i| rows.iter().all(|r| !matches!(r.values[i], Some(ParamValue::Text(_))))).collect();
    let mut dimensions: Vec<Value> = keys
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let texts: Vec<String> = rows.iter().filter_map(|r| r.values[i].as_ref()).map(|v| v.to_string()).fold(
                Vec::new(),
                |mut seen, v| {
                    if !seen.contains(&v) {
                        seen.push(v);
                    }
                    seen
                },
            );
            if numeric[i] {
                json!({ "name": name, "type": "value" })
            } else {
                json!({ "name": name, "type": "category", "categories": texts })
            }
        })
        .collect();
    dimensions.push(json!({ "name": "Δm%", "type": "value" }));
    let lines: Vec<Value> = rows
        .iter()
        .map(|row| {
            let mut values: Vec<Value> = row
                .values
                .iter()
                .zip(&numeric)
                .map(|(v, numeric)| match (v, numeric) {
                    (Some(ParamValue::Num(x)), true) => finite(*x),
                    (Some(v), _) => json!(v.to_string()),
                    (None, _) => Value::Null,
                })
                .collect();
            values.push(row.delta_m_value().map_or(Value::Null, finite));
            json!({ "label": row.describe(keys), "runs": row.runs, "values": values })
        })
        .collect();
    json!({ "dimensions": dimensions, "rows": lines })
}
