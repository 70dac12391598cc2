//! `[search]`: an adaptive search in place of the grid, validated into
//! [`crate::search::SearchSpec`]; and a proposed point made into its trials
//! ([`materialize`]): the file with the point's values written in, validated like any file.
//!
//! The dimensions are the `[sweep]` lists of more than one value (`strategy` without
//! `single-task`, `weighting`, `lambda`, `lr`, and swept settings), as choices, and the
//! entries of `[search.space]`, which add dimensions or replace those: a list is a choice,
//! `{ low, high }` a range (`log = true` on a log scale, `int = true` whole numbers).
//! The plan's own trials are the single-task baselines of `[sweep]`, trained first.

use serde::Deserialize;
use toml::{Table, Value};

use super::{parse_str_with, Checker, ConfigError, Key, Seg, MAX_PLAN_TRIALS, SWEEPABLE};
use crate::plan::{Plan, Trial};
use crate::prune::PruneMetric;
use crate::search::{Dimension, Domain, Point, Sampler, SearchSpec};

/// `[search]`.
#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct SearchEntry {
    sampler: String,
    budget: u64,
    objective: Option<Value>,
    seed: Option<u64>,
    startup: Option<usize>,
    population: Option<usize>,
    #[serde(default)]
    space: Table,
}

/// The `[sweep]` keys with a syntax of their own.
const AXES: [&str; 4] = ["strategy", "weighting", "lambda", "lr"];

impl Checker<'_> {
    /// The plan of a file with `[search]`: its single-task trials, with the validated search.
    pub(super) fn search(&self, entry: &SearchEntry) -> Result<Plan, ConfigError> {
        let at = |key: &'static str| [Key("search"), Key(key)];
        let Some(sampler) = Sampler::parse(&entry.sampler) else {
            let names = Sampler::NAMES.map(|n| format!("\"{n}\"")).join(", ");
            return self
                .fail(&at("sampler"), format!("unknown sampler \"{}\"; expected one of {names}", entry.sampler));
        };
        // --max-trials bounds a search's budget as it bounds a grid.
        if !(1..=self.max_trials).contains(&entry.budget) {
            let message = format!("{} is out of range; expected 1 to {}", entry.budget, self.max_trials);
            return self.fail(&at("budget"), message);
        }
        let mut base: Table = toml::from_str(self.source).unwrap_or_default();
        base.remove("search");
        let sweep = base.get("sweep").and_then(Value::as_table).cloned().unwrap_or_default();
        let strategies: Vec<Value> = sweep.get("strategy").and_then(Value::as_array).cloned().unwrap_or_default();
        let single_task = strategies.iter().any(|s| s.as_str() == Some("single-task"));
        let dimensions = self.dimensions(&sweep, &entry.space)?;
        if dimensions.is_empty() {
            return self.fail(
                &[Key("search"), Key("space")],
                "nothing to search: give [search.space] entries, or [sweep] lists of more than one value",
            );
        }
        if sampler == Sampler::Grid {
            if let Some(d) = dimensions.iter().find(|d| !matches!(d.domain, Domain::Choice(_))) {
                let keys: Vec<Seg> = ["search", "space"].into_iter().chain(d.path.split('.')).map(Key).collect();
                return self.fail(
                    &keys,
                    "sampler = \"grid\" takes lists of choices; ranges and simplices are for random, tpe and nsga2",
                );
            }
        }
        let mut spec = SearchSpec {
            sampler,
            budget: entry.budget,
            objectives: vec![PruneMetric::Score],
            seed: entry.seed.unwrap_or(0),
            startup: entry.startup.unwrap_or(10),
            population: entry.population.unwrap_or(10),
            dimensions,
            file: self.file.to_owned(),
            source: self.source.to_owned(),
            example: None,
        };
        // Every value of every dimension is tried once (the others at their first), so that
        // a point the search may propose fails here, not after hours of searching.
        let first: Point = spec.dimensions.iter().map(|d| corners(&d.domain)[0].clone()).collect();
        let mut probe = None;
        for (i, dimension) in spec.dimensions.iter().enumerate() {
            for value in corners(&dimension.domain) {
                let mut point = first.clone();
                point[i] = value;
                let plan = materialize_plan(&spec, &point).map_err(|e| {
                    // The dimension the file's own error names, else the one being tried.
                    let named = e.key.as_deref().map(|k| k.trim_start_matches("sweep.").split('[').next().unwrap_or(k));
                    let path = spec
                        .dimensions
                        .iter()
                        .map(|d| d.path.as_str())
                        .find(|p| named.is_some_and(|n| n == *p))
                        .unwrap_or(&dimension.path);
                    ConfigError {
                        file: self.file.to_owned(),
                        line: locate_line(self, path),
                        key: Some(format!("search.space.{path}")),
                        message: e.message,
                    }
                })?;
                probe.get_or_insert(plan);
            }
        }
        let mut plan = probe.expect("at least one dimension");
        spec.objectives = self.objectives(entry, &plan)?;
        if spec.objectives.contains(&PruneMetric::DeltaM) && !single_task {
            return self.fail(
                &at("objective"),
                "objective = \"delta_m\" needs the single-task baselines: add \"single-task\" to [sweep] strategy, \
                 or search another objective",
            );
        }
        if spec.objectives.len() > 1 && sampler == Sampler::Tpe {
            return self.fail(
                &at("objective"),
                "tpe searches one objective; for several, use sampler = \"nsga2\" (or \"random\")",
            );
        }
        match (entry.population, sampler) {
            (Some(_), Sampler::Random | Sampler::Tpe | Sampler::Grid) => {
                return self.fail(&at("population"), "population is a setting of sampler = \"nsga2\"")
            }
            (Some(n), Sampler::Nsga2) if n < 2 => {
                return self.fail(&at("population"), format!("{n} is too small; expected at least 2"))
            }
            _ => {}
        }
        spec.example = plan.trials.first().cloned().map(Box::new);
        plan.trials.clear();
        if single_task {
            let mut baselines = base;
            if let Some(Value::Table(sweep)) = baselines.get_mut("sweep") {
                sweep.insert("strategy".into(), Value::Array(vec![Value::from("single-task")]));
            }
            plan.trials =
                parse_str_with(&toml::to_string(&baselines).unwrap_or_default(), self.file, self.max_trials)?.trials;
        }
        plan.source = self.source.to_owned();
        plan.search = Some(spec);
        Ok(plan)
    }

    /// `objective`: one name (`"delta_m"`, the default; `"score"`; `TASK.METRIC`), a list of
    /// names, or `"tasks"`: each task's selecting metric.
    fn objectives(&self, entry: &SearchEntry, plan: &Plan) -> Result<Vec<PruneMetric>, ConfigError> {
        let at = [Key("search"), Key("objective")];
        let trainer = plan.trials.first().and_then(|t| t.settings.trainer.as_ref());
        let selecting: Vec<(String, String)> = match trainer {
            Some(trainer) => {
                let selection = mtl_store::Selection::new(trainer.select.clone().into_iter().collect());
                trainer.metrics.keys().map(|t| (t.clone(), selection.metric_for(t).to_owned())).collect()
            }
            None => plan
                .tasks
                .iter()
                .map(|t| {
                    let kind = crate::objective::default_selection(t.data.kind());
                    (t.name.clone(), t.objective.select.clone().unwrap_or_else(|| kind.to_owned()))
                })
                .collect(),
        };
        let task_names: Vec<String> = selecting.iter().map(|(t, _)| t.clone()).collect();
        let names: Vec<String> = match &entry.objective {
            None => vec!["delta_m".into()],
            Some(Value::String(name)) if name == "tasks" => {
                selecting.iter().map(|(task, metric)| format!("{task}.{metric}")).collect()
            }
            Some(Value::String(name)) => vec![name.clone()],
            Some(Value::Array(names)) if !names.is_empty() && names.iter().all(Value::is_str) => {
                names.iter().filter_map(Value::as_str).map(str::to_owned).collect()
            }
            Some(_) => {
                return self
                    .fail(&at, "expected a metric name, a list of them, or \"tasks\" (each task's selecting metric)")
            }
        };
        let mut objectives = Vec::new();
        for name in &names {
            let metric = self.compared_metric(&at, name, &task_names)?;
            if objectives.contains(&metric) {
                return self.fail(&at, format!("\"{name}\" is listed twice"));
            }
            objectives.push(metric);
        }
        Ok(objectives)
    }

    /// The `[sweep]` lists of several values, then `[search.space]`'s entries over them.
    fn dimensions(&self, sweep: &Table, space: &Table) -> Result<Vec<Dimension>, ConfigError> {
        let mut dimensions: Vec<Dimension> = Vec::new();
        let mut set = |path: String, domain: Domain| match dimensions.iter_mut().find(|d| d.path == path) {
            Some(d) => d.domain = domain,
            None => dimensions.push(Dimension { path, domain }),
        };
        for (path, value) in flatten(sweep) {
            let Value::Array(values) = value else { continue };
            let values: Vec<Value> =
                values.into_iter().filter(|v| path != "strategy" || v.as_str() != Some("single-task")).collect();
            if values.len() > 1 {
                set(path, Domain::Choice(values));
            }
        }
        for (path, value) in flatten(space) {
            let keys: Vec<Seg> = ["search", "space"].into_iter().chain(path.split('.')).map(Key).collect();
            if !AXES.contains(&path.as_str()) && !SWEEPABLE.contains(&path.as_str()) {
                let message = format!(
                    "{path} cannot be searched; [search.space] takes {} and: {}",
                    AXES.join(", "),
                    SWEEPABLE.join(", ")
                );
                return self.fail(&keys, message);
            }
            let domain = match value {
                Value::Array(values) if !values.is_empty() => {
                    if path == "strategy" && values.iter().any(|v| v.as_str() == Some("single-task")) {
                        return self
                            .fail(&keys, "single-task trials are the baselines ([sweep] strategy), not searched");
                    }
                    Domain::Choice(values)
                }
                Value::Table(simplex) if simplex.contains_key("simplex") => self.simplex(&keys, &path, &simplex)?,
                Value::Table(range) => self.range(&keys, &path, &range)?,
                _ => {
                    let expected =
                        "expected a list of choices, a range { low = …, high = … } or, for lambda, { simplex = true }";
                    return self.fail(&keys, expected);
                }
            };
            set(path, domain);
        }
        Ok(dimensions)
    }

    /// `lambda = { simplex = true, total = 1.0 }`: one weight per task, summing to `total`.
    fn simplex(&self, keys: &[Seg], path: &str, table: &Table) -> Result<Domain, ConfigError> {
        if path != "lambda" {
            return self.fail(keys, format!("{path}: only lambda takes {{ simplex = true }}"));
        }
        if let Some(key) = table.keys().find(|k| !["simplex", "total"].contains(&k.as_str())) {
            return self.fail(keys, format!("unknown key `{key}` in a simplex; expected simplex, total"));
        }
        if table.get("simplex") != Some(&Value::Boolean(true)) {
            return self.fail(keys, "simplex = true: weights drawn on the simplex (a grid of it is [sweep] lambda)");
        }
        let total = match table.get("total") {
            None => 1.0,
            Some(v) => v.as_float().or_else(|| v.as_integer().map(|i| i as f64)).unwrap_or(f64::NAN),
        };
        if !(total.is_finite() && total > 0.0) {
            return self.fail(keys, "total must be a number > 0");
        }
        let source: Table = toml::from_str(self.source).unwrap_or_default();
        let tasks: Vec<String> = source
            .get("tasks")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|t| t.get("name").and_then(Value::as_str).map(str::to_owned))
            .collect();
        if tasks.len() < 2 {
            return self.fail(keys, "a simplex of weights needs at least two [[tasks]]");
        }
        Ok(Domain::Simplex { tasks, total })
    }

    fn range(&self, keys: &[Seg], path: &str, range: &Table) -> Result<Domain, ConfigError> {
        for key in range.keys() {
            if !["low", "high", "log", "int"].contains(&key.as_str()) {
                return self.fail(keys, format!("unknown key `{key}` in a range; expected low, high, log, int"));
            }
        }
        let number = |key: &str| range.get(key).and_then(|v| v.as_float().or_else(|| v.as_integer().map(|i| i as f64)));
        let (Some(low), Some(high)) = (number("low"), number("high")) else {
            return self.fail(keys, "a range needs low and high numbers");
        };
        let log = range.get("log").and_then(Value::as_bool).unwrap_or(false);
        let int = range.get("int").and_then(Value::as_bool).unwrap_or(false);
        if !(low.is_finite() && high.is_finite() && low < high) || (log && low <= 0.0) {
            let why = if log { "0 < low < high on a log scale" } else { "low < high" };
            return self.fail(keys, format!("{path}: low = {low}, high = {high}; expected {why}"));
        }
        if int && (low.fract() != 0.0 || high.fract() != 0.0) {
            return self.fail(keys, format!("{path}: an integer range needs whole low and high"));
        }
        Ok(match int {
            true => Domain::Int { low: low as i64, high: high as i64, log },
            false => Domain::Float { low, high, log },
        })
    }
}

fn locate_line(checker: &Checker, path: &str) -> Option<usize> {
    let keys: Vec<Seg> = ["search", "space"].into_iter().chain(path.split('.')).map(Key).collect();
    checker.fail::<()>(&keys, "").err().and_then(|e| e.line)
}

/// The values checked ahead of a search: every choice, or a range's two ends.
fn corners(domain: &Domain) -> Vec<Value> {
    match *domain {
        Domain::Choice(ref values) => values.clone(),
        Domain::Float { low, high, .. } => vec![Value::Float(low), Value::Float(high)],
        Domain::Int { low, high, .. } => vec![Value::Integer(low), Value::Integer(high)],
        // Equal weights, and all of the total on each task (one weight zero is allowed).
        Domain::Simplex { ref tasks, total } => std::iter::once(vec![1.0; tasks.len()])
            .chain((0..tasks.len()).map(|i| (0..tasks.len()).map(|j| if i == j { 1.0 } else { 0.0 }).collect()))
            .map(|parts: Vec<f64>| {
                Value::Table(
                    tasks
                        .iter()
                        .zip(&parts)
                        .map(|(t, p)| (t.clone(), Value::Float(total * p / parts.iter().sum::<f64>())))
                        .collect(),
                )
            })
            .collect(),
    }
}

/// Nested tables as dotted paths (a table with `low` is a range, not nested).
fn flatten(table: &Table) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for (key, value) in table {
        match value {
            Value::Table(inner) if !["low", "high", "simplex"].iter().any(|k| inner.contains_key(*k)) => {
                for (path, value) in flatten(inner) {
                    out.push((format!("{key}.{path}"), value));
                }
            }
            _ => out.push((key.clone(), value.clone())),
        }
    }
    out
}

/// The trials of `point` (one per seed of the file), as if the file had been written with
/// its values: `[sweep]` lists of one value for the axes, the settings set in place.
pub fn materialize(spec: &SearchSpec, point: &Point) -> Result<Vec<Trial>, ConfigError> {
    Ok(materialize_plan(spec, point)?.trials)
}

fn materialize_plan(spec: &SearchSpec, point: &Point) -> Result<Plan, ConfigError> {
    let mut table: Table = toml::from_str(&spec.source).unwrap_or_default();
    table.remove("search");
    let mut sweep = table.remove("sweep").and_then(|v| v.as_table().cloned()).unwrap_or_default();
    let mut strategies: Vec<Value> = sweep.get("strategy").and_then(Value::as_array).cloned().unwrap_or_default();
    strategies.retain(|s| s.as_str() != Some("single-task"));
    sweep.insert("strategy".into(), Value::Array(strategies));
    let mut swept = Vec::new();
    for (dimension, value) in spec.dimensions.iter().zip(point) {
        if let (Domain::Simplex { .. }, Value::Table(weights)) = (&dimension.domain, value) {
            // A simplex point: sweep.lambda's per-task lists of one weight each.
            let lists = weights.iter().map(|(task, w)| (task.clone(), Value::Array(vec![w.clone()]))).collect();
            sweep.insert(dimension.path.clone(), Value::Table(lists));
        } else if AXES.contains(&dimension.path.as_str()) {
            sweep.insert(dimension.path.clone(), Value::Array(vec![value.clone()]));
        } else {
            remove_path(&mut sweep, &dimension.path);
            set_path(&mut table, &dimension.path, value.clone());
            swept.push((dimension.path.clone(), shown(value)));
        }
    }
    table.insert("sweep".into(), Value::Table(sweep));
    let described: Vec<String> =
        spec.dimensions.iter().zip(point).map(|(d, v)| format!("{} = {}", d.path, shown(v))).collect();
    let text = toml::to_string(&table).unwrap_or_default();
    let mut plan = parse_str_with(&text, &spec.file, MAX_PLAN_TRIALS).map_err(|e| ConfigError {
        file: spec.file.clone(),
        line: None,
        key: e.key.clone(),
        message: format!("with the search point {}: {}", described.join(", "), e.message),
    })?;
    for trial in &mut plan.trials {
        trial.swept.extend(swept.iter().cloned());
    }
    Ok(plan)
}

fn shown(value: &Value) -> String {
    match value {
        Value::Table(weights) => {
            let parts: Vec<String> = weights.iter().map(|(task, w)| format!("{task} {}", shown(w))).collect();
            format!("({})", parts.join(", "))
        }
        Value::String(s) => s.clone(),
        Value::Float(x) => format!("{}", (x * 1e6).round() / 1e6),
        other => other.to_string(),
    }
}

fn set_path(table: &mut Table, path: &str, value: Value) {
    let mut keys: Vec<&str> = path.split('.').collect();
    let last = keys.pop().expect("a path");
    let mut current = table;
    for key in keys {
        let entry = current.entry(key).or_insert_with(|| Value::Table(Table::new()));
        if !entry.is_table() {
            *entry = Value::Table(Table::new());
        }
        current = entry.as_table_mut().expect("a table");
    }
    current.insert(last.to_string(), value);
}

fn remove_path(table: &mut Table, path: &str) {
    let mut keys: Vec<&str> = path.split('.').collect();
    let last = keys.pop().expect("a path");
    let mut current = table;
    for key in keys {
        match current.get_mut(key).and_then(Value::as_table_mut) {
            Some(inner) => current = inner,
            None => return,
        }
    }
    current.remove(last);
}
