//! The sweep's size and static weights: a sweep refused before it is expanded when its
//! lists ask for too many settings, and the checks of the weight vectors `sweep.lambda`
//! asks for (a λ list, per-task lists, a simplex grid or log-uniform random samples;
//! [`WeightSpace`], which `plan` expands).

use mtl_model::Strategy;

use super::entries::{ExperimentFile, LambdaEntry};
use super::{size, Checker, ConfigError, Index, Key, Seg, MAX_PLAN_TRIALS};
use crate::plan::WeightSpace;

/// The most static weight vectors `sweep.lambda` may ask for (`random = N`, or a simplex grid).
const MAX_WEIGHT_VECTORS: usize = 100_000;

impl Checker<'_> {
    /// The static weights `sweep.lambda` asks for.
    /// Refuses a sweep, or one section of it, that asks for too many settings, counted
    /// from its lists before anything is expanded.
    pub(super) fn bounded_sweep(&self, file: &ExperimentFile) -> Result<(), ConfigError> {
        let too_many = |n: u64| n > MAX_WEIGHT_VECTORS as u64;
        for strategy in Strategy::ALL {
            let n = size::strategy_combinations(&file.strategy, strategy.name());
            if too_many(n) {
                let message = format!("its lists make {n} combinations, more than {MAX_WEIGHT_VECTORS}");
                self.fail(&[Key("strategy"), Key(strategy.name())], message)?;
            }
        }
        for name in file.weighting.methods.keys() {
            let n = size::weighting_combinations(file, name);
            if too_many(n) {
                let message = format!("its lists make {n} combinations, more than {MAX_WEIGHT_VECTORS}");
                self.fail(&[Key("weighting"), Key(name)], message)?;
            }
        }
        let n_vectors = size::weight_vectors(&file.sweep.lambda, file.tasks.len());
        if let (LambdaEntry::Space(table), true) = (&file.sweep.lambda, too_many(n_vectors)) {
            let many = if n_vectors == u64::MAX { "too many".to_string() } else { n_vectors.to_string() };
            let n = file.tasks.len();
            match table.get("simplex") {
                Some(steps) => self.fail(
                    &[Key("sweep"), Key("lambda"), Key("simplex")],
                    format!("simplex = {steps} over {n} tasks gives {many} weight vectors, more than {MAX_WEIGHT_VECTORS}; use a smaller K"),
                )?,
                // `random = N` is checked with its other keys.
                None if table.contains_key("random") => {}
                None => self.fail(
                    &[Key("sweep"), Key("lambda")],
                    format!("the per-task lists make {many} weight vectors, more than {MAX_WEIGHT_VECTORS}"),
                )?,
            }
        }
        let size = size::sweep_size(file);
        if size.trials > self.max_trials {
            let limit = if self.max_trials >= MAX_PLAN_TRIALS {
                format!("more than one plan may have ({MAX_PLAN_TRIALS}); split the sweep into several experiments")
            } else {
                format!("more than the limit of {} (raise it with mtl run --max-trials)", self.max_trials)
            };
            self.fail(&[Key("sweep")], format!("the sweep has {} trials ({}), {limit}", size.trials, size.describe()))?;
        }
        Ok(())
    }

    pub(super) fn static_weights(
        &self,
        entry: &LambdaEntry,
        task_names: &[String],
    ) -> Result<WeightSpace, ConfigError> {
        fn at(key: &str) -> Vec<Seg<'_>> {
            vec![Key("sweep"), Key("lambda"), Key(key)]
        }
        let weight_ok = |w: f64| w.is_finite() && w >= 0.0;
        let table = match entry {
            LambdaEntry::List(lambdas) => {
                self.non_empty(lambdas, &[Key("sweep"), Key("lambda")])?;
                for (i, &lambda) in lambdas.iter().enumerate() {
                    let path = [Key("sweep"), Key("lambda"), Index(i)];
                    if !weight_ok(lambda) {
                        self.fail(&path, format!("λ must be a finite number ≥ 0, got {lambda}"))?;
                    }
                    if lambdas[..i].contains(&lambda) {
                        self.fail(&path, format!("λ = {lambda} is listed twice"))?;
                    }
                }
                return Ok(WeightSpace::Lambdas(lambdas.clone()));
            }
            LambdaEntry::Space(table) => table,
        };
        let number = |key: &str| -> Result<Option<f64>, ConfigError> {
            match table.get(key) {
                None => Ok(None),
                Some(toml::Value::Integer(i)) => Ok(Some(*i as f64)),
                Some(toml::Value::Float(f)) => Ok(Some(*f)),
                Some(other) => self.fail(&at(key), format!("expected a number, got {}", other.type_str())),
            }
        };
        let count = |key: &str, max: f64| -> Result<usize, ConfigError> {
            match number(key)? {
                Some(n) if n.fract() == 0.0 && (1.0..=max).contains(&n) => Ok(n as usize),
                Some(n) => self.fail(&at(key), format!("{n} must be a whole number from 1 to {max}")),
                None => unreachable!("asked only for keys present"),
            }
        };
        let only = |allowed: &[&str]| -> Result<(), ConfigError> {
            match table.keys().find(|k| !allowed.contains(&k.as_str())) {
                Some(key) => {
                    self.fail(&at(key), format!("unexpected key here; this form takes {}", allowed.join(", ")))
                }
                None => Ok(()),
            }
        };
        let n = task_names.len();
        if table.contains_key("simplex") {
            // Every weight vector whose entries are multiples of total/K and sum to total.
            only(&["simplex", "total"])?;
            let steps = count("simplex", 1000.0)?;
            // C(K + n − 1, n − 1) vectors: refused before they are built when there are too many.
            let n_vectors = (1..n).try_fold(1u128, |c, i| c.checked_mul((steps + i) as u128).map(|c| c / i as u128));
            if n_vectors.is_none_or(|v| v > MAX_WEIGHT_VECTORS as u128) {
                let many = n_vectors.map_or("too many".to_string(), |v| v.to_string());
                self.fail(
                    &at("simplex"),
                    format!(
                        "simplex = {steps} over {n} tasks gives {many} weight vectors, more than {MAX_WEIGHT_VECTORS}; use a smaller K"
                    ),
                )?;
            }
            let total = number("total")?.unwrap_or(1.0);
            if !(total.is_finite() && total > 0.0) {
                self.fail(&at("total"), format!("{total} must be a number > 0"))?;
            }
            return Ok(WeightSpace::Simplex { steps, total });
        }
        if table.contains_key("random") {
            // Task 1 keeps weight 1; tasks 2..n get λ drawn log-uniformly from [low, high].
            only(&["random", "low", "high", "seed"])?;
            let samples = count("random", MAX_WEIGHT_VECTORS as f64)?;
            let low = number("low")?.unwrap_or(0.01);
            let high = number("high")?.unwrap_or(100.0);
            if !(low.is_finite() && low > 0.0) {
                self.fail(&at("low"), format!("{low} must be a number > 0 (the range is log-uniform)"))?;
            }
            if !(high.is_finite() && high > low) {
                self.fail(&at("high"), format!("{high} must be a number > low = {low}"))?;
            }
            let seed = number("seed")?.unwrap_or(0.0);
            if !(seed.fract() == 0.0 && seed >= 0.0) {
                self.fail(&at("seed"), format!("{seed} must be a whole number ≥ 0"))?;
            }
            return Ok(WeightSpace::Random { samples, low, high, seed: seed as u64 });
        }
        // Per-task lists: their product; tasks not listed keep weight 1.
        if let Some(unknown) = table.keys().find(|k| !task_names.contains(k)) {
            self.fail(
                &at(unknown),
                format!(
                    "\"{unknown}\" is not a task; sweep.lambda takes a list, per-task lists (tasks: {}), simplex = K or random = N",
                    task_names.join(", ")
                ),
            )?;
        }
        let mut lists = Vec::new();
        for task in task_names {
            let values: Vec<f64> = match table.get(task) {
                None => vec![1.0],
                Some(toml::Value::Array(items)) => {
                    let mut values = Vec::new();
                    for (i, item) in items.iter().enumerate() {
                        let path = [Key("sweep"), Key("lambda"), Key(task), Index(i)];
                        let value = match item {
                            toml::Value::Integer(v) => *v as f64,
                            toml::Value::Float(v) => *v,
                            other => return self.fail(&path, format!("expected a number, got {}", other.type_str())),
                        };
                        if !weight_ok(value) {
                            self.fail(&path, format!("a weight must be a finite number ≥ 0, got {value}"))?;
                        }
                        if values.contains(&value) {
                            self.fail(&path, format!("{value} is listed twice"))?;
                        }
                        values.push(value);
                    }
                    self.non_empty(&values, &at(task))?;
                    values
                }
                Some(other) => {
                    return self.fail(&at(task), format!("expected a list of weights, got {}", other.type_str()))
                }
            };
            lists.push(values);
        }
        Ok(WeightSpace::PerTask(lists))
    }
}

#[cfg(test)]
mod lambda_space_tests {
    use std::path::Path;

    use crate::config::parse_str;

    /// The static loss weights of each trial for a `sweep.lambda` value over tasks a, b (and c).
    fn weights(lambda: &str, n_tasks: usize) -> Vec<Vec<f64>> {
        let tasks: String = ["a", "b", "c"][..n_tasks]
            .iter()
            .map(|name| format!("[[tasks]]\nname = \"{name}\"\ndata = {{ format = \"synthetic-shapes\" }}\n"))
            .collect();
        let source = format!("name = \"x\"\n{tasks}[sweep]\nlambda = {lambda}\n");
        let plan = parse_str(&source, Path::new("x.toml")).expect("valid");
        plan.trials.iter().map(|trial| trial.loss_weights(n_tasks)).collect()
    }

    #[test]
    fn per_task_lists_are_a_product_and_unlisted_tasks_keep_weight_1() {
        assert_eq!(weights("{ b = [0.5, 2] }", 2), [vec![1.0, 0.5], vec![1.0, 2.0]]);
        assert_eq!(weights("{ a = [1, 3], c = [0] }", 3), [vec![1.0, 1.0, 0.0], vec![3.0, 1.0, 0.0]]);
        // The plain list is the seed formula [1, λ, …, λ].
        assert_eq!(weights("[0.1, 10]", 3), [vec![1.0, 0.1, 0.1], vec![1.0, 10.0, 10.0]]);
    }

    #[test]
    fn a_simplex_grid_has_every_composition_of_the_total() {
        // 2 tasks, K = 4: (0, 4), (1, 3), …, (4, 0) quarters of 1.
        let two = weights("{ simplex = 4 }", 2);
        assert_eq!(two, [[0.0, 1.0], [0.25, 0.75], [0.5, 0.5], [0.75, 0.25], [1.0, 0.0]]);
        // 3 tasks, K = 2, total 3: C(2 + 2, 2) = 6 vectors, each summing to 3.
        let three = weights("{ simplex = 2, total = 3 }", 3);
        assert_eq!(three.len(), 6);
        assert!(three.iter().all(|w| (w.iter().sum::<f64>() - 3.0).abs() < 1e-12), "{three:?}");
        assert!(three.contains(&vec![1.5, 0.0, 1.5]));
    }

    #[test]
    fn random_search_draws_log_uniform_weights_from_its_seed() {
        let drawn = weights("{ random = 200, low = 0.1, high = 10, seed = 3 }", 3);
        assert_eq!(drawn.len(), 200);
        assert!(drawn.iter().all(|w| w[0] == 1.0), "task 1 keeps weight 1");
        let others: Vec<f64> = drawn.iter().flat_map(|w| w[1..].to_vec()).collect();
        assert!(others.iter().all(|w| (0.1..=10.0).contains(w)), "{others:?}");
        // Log-uniform on [0.1, 10]: about half below 1 (400 draws; 5 standard deviations is ±50).
        let below_one = others.iter().filter(|&&w| w < 1.0).count();
        assert!((150..=250).contains(&below_one), "{below_one} of 400 below 1");
        assert_eq!(drawn, weights("{ random = 200, low = 0.1, high = 10, seed = 3 }", 3));
        assert_ne!(drawn, weights("{ random = 200, low = 0.1, high = 10, seed = 4 }", 3));
    }
}
