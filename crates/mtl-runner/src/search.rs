//! Adaptive search (`[search]`): in place of the whole grid, a sampler proposes one
//! setting at a time (a *point*: one value per dimension), trained with every seed of the
//! file, until `budget` trials have run.
//!
//! - **grid**: the combinations of the dimensions' choices in order (the last dimension
//!   fastest), as many as the budget allows.
//! - **random**: each dimension drawn on its own: a choice uniformly, a range uniformly
//!   (or log-uniformly), an integer range the same then rounded.
//! - **tpe** (Bergstra et al. 2011, "Algorithms for Hyper-Parameter Optimization"; the
//!   univariate form and defaults of Optuna's `TPESampler`): after `startup` random
//!   points, the observed points are split into the best `γ(n) = min(⌈0.1·n⌉, 25)` and the
//!   rest; each dimension gets a Parzen estimator of each group, `l` and `g` (a choice:
//!   counts plus a uniform prior of weight 1; a range: a truncated Gaussian per point plus a
//!   prior one over the whole range, each point's width the larger gap to its neighbours,
//!   clipped to `[(high − low)/min(100, 1 + k), high − low]` for `k` components, in log
//!   space for a log range), and of 24 candidates drawn from `l` the one with the highest
//!   `l(x)/g(x)` is proposed.
//! - **nsga2**: a genetic algorithm towards the Pareto front of several objectives (each
//!   task's metric), see [`nsga2`].
//!
//! Ask/tell through the store: the sampler's state is rebuilt from the runs in the
//! database (each search trial carries its proposal's index and point), so resume, several
//! processes and their sweeps share one search. Proposal `k` is drawn from a generator
//! seeded by the search seed and `k` alone, and from the points observed when it is made:
//! the same seed and the same order of completions give the same proposals. Running
//! trials count as unobserved. A point's value is, per objective, the mean over its done
//! seeds of the objective at each run's result epoch, on validation; a point whose trials
//! were all pruned or failed counts as the worst observation.

use std::collections::BTreeMap;
use std::path::PathBuf;

use mtl_data::Rng;
use toml::Value;

use crate::prune::PruneMetric;

/// `[search]`, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchSpec {
    /// How points are proposed.
    pub sampler: Sampler,
    /// Trials to run in all (every seed of a point counts).
    pub budget: u64,
    /// What the sampler maximises (on validation): one objective, or several (NSGA-II and
    /// random only).
    pub objectives: Vec<PruneMetric>,
    /// The sampler's own seed.
    pub seed: u64,
    /// TPE: random points before the model is used.
    pub startup: usize,
    /// NSGA-II: points per generation.
    pub population: usize,
    /// What is searched, one dimension per setting.
    pub dimensions: Vec<Dimension>,
    /// The experiment file (where a point's trials are made from).
    pub file: PathBuf,
    /// Its text.
    pub source: String,
    /// A trial of the search (the first of a point checked ahead): what its tasks and, with
    /// a `[trainer]`, their selecting metrics are read from when the plan has no baselines.
    pub example: Option<Box<crate::plan::Trial>>,
}

/// The samplers of [`SearchSpec`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sampler {
    /// Independent draws.
    Random,
    /// Tree-structured Parzen estimators.
    Tpe,
    /// NSGA-II.
    Nsga2,
    /// The combinations of choices in order.
    Grid,
}

impl Sampler {
    /// The names the experiment file uses.
    pub const NAMES: [&'static str; 4] = ["grid", "random", "tpe", "nsga2"];

    /// The sampler named `name`.
    pub fn parse(name: &str) -> Option<Sampler> {
        match name {
            "random" => Some(Sampler::Random),
            "tpe" => Some(Sampler::Tpe),
            "nsga2" => Some(Sampler::Nsga2),
            "grid" => Some(Sampler::Grid),
            _ => None,
        }
    }
}

/// A point the sampler has seen finish: its proposal's index and, per objective of
/// [`SearchSpec::objectives`], its value (higher is better).
#[derive(Clone, Debug, PartialEq)]
pub struct Observation {
    /// The proposal's index.
    pub index: u64,
    /// Its point.
    pub point: Point,
    /// Its values.
    pub values: Vec<f64>,
}

/// One searched setting: its path in the file (`lr`, `weighting`, `model.dropout`, …) and its domain.
#[derive(Clone, Debug, PartialEq)]
pub struct Dimension {
    /// `strategy`, `weighting`, `lambda`, `lr`, or a sweepable setting's dotted path.
    pub path: String,
    /// Its values.
    pub domain: Domain,
}

/// The values of a [`Dimension`].
#[derive(Clone, Debug, PartialEq)]
pub enum Domain {
    /// One of these values.
    Choice(Vec<Value>),
    /// A real number in `[low, high]`, drawn on a log scale if `log`.
    Float {
        /// Lower bound.
        low: f64,
        /// Upper bound.
        high: f64,
        /// Log scale.
        log: bool,
    },
    /// Static loss weights, one per task, on the simplex summing to `total` (`lambda =
    /// { simplex = true }`): a point's value is a table of task → weight.
    Simplex {
        /// The tasks, in file order.
        tasks: Vec<String>,
        /// What the weights sum to.
        total: f64,
    },
    /// A whole number in `[low, high]`, drawn on a log scale if `log`.
    Int {
        /// Lower bound.
        low: i64,
        /// Upper bound.
        high: i64,
        /// Log scale.
        log: bool,
    },
}

/// One value per dimension, in [`SearchSpec::dimensions`]' order.
pub type Point = Vec<Value>;

/// Candidates TPE draws from `l` per dimension (Optuna's `n_ei_candidates`).
const CANDIDATES: usize = 24;

/// Draws of one index by TPE before [`propose`] draws at random (see there).
pub const MODEL_ATTEMPTS: u32 = 20;

/// The proposal with index `index` (draw `attempt`: a point already proposed is drawn
/// again), given the points observed so far. Pure: the same arguments give the same point.
pub fn propose(spec: &SearchSpec, index: u64, attempt: u32, observed: &[Observation]) -> Point {
    let mut rng = Rng::derive(spec.seed, &format!("search/{index}/{attempt}"));
    if spec.sampler == Sampler::Grid {
        // Combination `index + attempt`, round the grid: a combination whose trials exist
        // (or that does not validate) gives way to the next.
        return grid_point(&spec.dimensions, index + attempt as u64);
    }
    let random = |rng: &mut Rng| spec.dimensions.iter().map(|d| draw(&d.domain, rng)).collect();
    // A model can keep proposing the points it has (a small space of choices): after
    // `MODEL_ATTEMPTS` draws that all were, the draws are random.
    if attempt >= MODEL_ATTEMPTS {
        return random(&mut rng);
    }
    match spec.sampler {
        Sampler::Random | Sampler::Grid => random(&mut rng),
        Sampler::Nsga2 => nsga2::propose(spec, index, observed, &mut rng).unwrap_or_else(|| random(&mut rng)),
        Sampler::Tpe if observed.len() < spec.startup.max(1) => random(&mut rng),
        Sampler::Tpe => {
            let mut ranked: Vec<&Observation> = observed.iter().collect();
            ranked.sort_by(|a, b| b.values[0].total_cmp(&a.values[0]));
            let n_good = observed.len().div_ceil(10).clamp(1, 25);
            let (good, bad) = ranked.split_at(n_good);
            spec.dimensions
                .iter()
                .enumerate()
                .map(|(i, dimension)| {
                    let good: Vec<&Value> = good.iter().map(|o| &o.point[i]).collect();
                    let bad: Vec<&Value> = bad.iter().map(|o| &o.point[i]).collect();
                    tpe_dimension(&dimension.domain, &good, &bad, &mut rng)
                })
                .collect()
        }
    }
}

/// Combination `k` (modulo their number) of the dimensions' choices, the last fastest.
fn grid_point(dimensions: &[Dimension], k: u64) -> Point {
    let sizes: Vec<u64> = dimensions
        .iter()
        .map(|d| match &d.domain {
            Domain::Choice(values) => values.len() as u64,
            _ => unreachable!("a grid searches choices only (checked with the file)"),
        })
        .collect();
    let total: u64 = sizes.iter().product();
    let mut rest = k % total.max(1);
    let mut point = vec![Value::Boolean(false); dimensions.len()];
    for (i, dimension) in dimensions.iter().enumerate().rev() {
        let Domain::Choice(values) = &dimension.domain else { unreachable!() };
        point[i] = values[(rest % sizes[i]) as usize].clone();
        rest /= sizes[i];
    }
    point
}

/// A uniform draw from `domain`.
fn draw(domain: &Domain, rng: &mut Rng) -> Value {
    match domain {
        Domain::Choice(values) => rng.pick(values).clone(),
        Domain::Simplex { tasks, total } => {
            // Uniform on the simplex: Dirichlet(1, …, 1), normalised exponential draws.
            let draws: Vec<f64> = tasks.iter().map(|_| -(1.0 - rng.uniform()).max(f64::MIN_POSITIVE).ln()).collect();
            simplex_value(tasks, *total, &draws)
        }
        Domain::Float { .. } | Domain::Int { .. } => {
            let (low, high) = scaled_bounds(domain);
            from_scaled(domain, rng.range(low, high))
        }
    }
}

/// The bounds of a range on its sampling scale (log for a log range; an integer range
/// widened by ½ on each side so that each whole number gets its share).
fn scaled_bounds(domain: &Domain) -> (f64, f64) {
    match *domain {
        Domain::Float { low, high, log } => scale(low, high, log),
        Domain::Int { low, high, log } => {
            let (low, high) = (low as f64 - 0.5, high as f64 + 0.5);
            if log {
                ((low.max(0.5)).ln(), high.ln())
            } else {
                (low, high)
            }
        }
        Domain::Choice(_) | Domain::Simplex { .. } => (0.0, 1.0),
    }
}

/// The weights `parts` scaled to sum to `total`, as a table of task → weight.
fn simplex_value(tasks: &[String], total: f64, parts: &[f64]) -> Value {
    let sum: f64 = parts.iter().sum();
    let table = tasks.iter().zip(parts).map(|(task, part)| (task.clone(), Value::Float(total * part / sum))).collect();
    Value::Table(table)
}

/// The weights of a simplex value, in task order.
fn simplex_parts(tasks: &[String], value: &Value) -> Vec<f64> {
    tasks.iter().map(|t| value.get(t).and_then(Value::as_float).unwrap_or(0.0)).collect()
}

fn scale(low: f64, high: f64, log: bool) -> (f64, f64) {
    if log {
        (low.ln(), high.ln())
    } else {
        (low, high)
    }
}

/// A value of the sampling scale back in the domain's units (clamped to its bounds).
fn from_scaled(domain: &Domain, u: f64) -> Value {
    match *domain {
        Domain::Float { low, high, log } => Value::Float((if log { u.exp() } else { u }).clamp(low, high)),
        Domain::Int { low, high, log } => {
            let x = if log { u.exp() } else { u };
            Value::Integer((x.round() as i64).clamp(low, high))
        }
        Domain::Choice(_) | Domain::Simplex { .. } => unreachable!("choices and simplices are not scaled"),
    }
}

/// A value of a range on its sampling scale.
fn to_scaled(domain: &Domain, value: &Value) -> f64 {
    let x = value.as_float().or_else(|| value.as_integer().map(|i| i as f64)).unwrap_or(0.0);
    let log = matches!(domain, Domain::Float { log: true, .. } | Domain::Int { log: true, .. });
    if log {
        x.max(f64::MIN_POSITIVE).ln()
    } else {
        x
    }
}

/// TPE's choice for one dimension from the good and the bad points' values.
fn tpe_dimension(domain: &Domain, good: &[&Value], bad: &[&Value], rng: &mut Rng) -> Value {
    match domain {
        Domain::Choice(values) => {
            let l = categorical(values, good);
            let g = categorical(values, bad);
            let mut best = (f64::NEG_INFINITY, 0);
            for _ in 0..CANDIDATES {
                let c = sample_weights(&l, rng);
                let score = l[c].ln() - g[c].ln();
                if score > best.0 {
                    best = (score, c);
                }
            }
            values[best.1].clone()
        }
        Domain::Simplex { tasks, total } => {
            // Each weight modelled on its own on [0, total] (a Parzen estimator per task of
            // each group); a candidate's weights drawn from `l`'s, then scaled to the total.
            let component = |points: &[&Value], i: usize| {
                Parzen::new(points.iter().map(|v| simplex_parts(tasks, v)[i]).collect(), 0.0, *total)
            };
            let l: Vec<Parzen> = (0..tasks.len()).map(|i| component(good, i)).collect();
            let g: Vec<Parzen> = (0..tasks.len()).map(|i| component(bad, i)).collect();
            let mut best = (f64::NEG_INFINITY, vec![1.0; tasks.len()]);
            for _ in 0..CANDIDATES {
                let draws: Vec<f64> = l.iter().map(|p| p.sample(rng).max(1e-12)).collect();
                let scaled = simplex_parts(tasks, &simplex_value(tasks, *total, &draws));
                let score: f64 =
                    scaled.iter().enumerate().map(|(i, &w)| l[i].log_density(w) - g[i].log_density(w)).sum();
                if score > best.0 {
                    best = (score, scaled);
                }
            }
            simplex_value(tasks, *total, &best.1)
        }
        _ => {
            let (low, high) = scaled_bounds(domain);
            let l = Parzen::new(good.iter().map(|v| to_scaled(domain, v)).collect(), low, high);
            let g = Parzen::new(bad.iter().map(|v| to_scaled(domain, v)).collect(), low, high);
            let mut best = (f64::NEG_INFINITY, (low + high) / 2.0);
            for _ in 0..CANDIDATES {
                let u = l.sample(rng);
                let score = l.log_density(u) - g.log_density(u);
                if score > best.0 {
                    best = (score, u);
                }
            }
            from_scaled(domain, best.1)
        }
    }
}

/// Probabilities of each choice: counts of `seen` plus a uniform prior of weight 1.
pub fn categorical(values: &[Value], seen: &[&Value]) -> Vec<f64> {
    let k = values.len() as f64;
    let mut weights = vec![1.0 / k; values.len()];
    for value in seen {
        if let Some(i) = values.iter().position(|v| v == *value) {
            weights[i] += 1.0;
        }
    }
    let total: f64 = weights.iter().sum();
    weights.iter().map(|w| w / total).collect()
}

fn sample_weights(weights: &[f64], rng: &mut Rng) -> usize {
    let mut u = rng.uniform();
    for (i, w) in weights.iter().enumerate() {
        if u < *w {
            return i;
        }
        u -= w;
    }
    weights.len() - 1
}

/// A mixture of Gaussians truncated to `[low, high]`, one per observation plus a prior
/// over the whole range, equally weighted (Optuna's univariate Parzen estimator).
#[derive(Clone, Debug)]
pub struct Parzen {
    /// Component means (the prior's is the middle of the range).
    pub mus: Vec<f64>,
    /// Component widths.
    pub sigmas: Vec<f64>,
    low: f64,
    high: f64,
}

impl Parzen {
    /// The estimator of `points` on `[low, high]`.
    pub fn new(points: Vec<f64>, low: f64, high: f64) -> Parzen {
        let mut mus = points;
        mus.push((low + high) / 2.0);
        let mut order: Vec<usize> = (0..mus.len()).collect();
        order.sort_by(|&a, &b| mus[a].total_cmp(&mus[b]));
        let width = high - low;
        let floor = width / (100f64).min(1.0 + mus.len() as f64);
        let mut sigmas = vec![width; mus.len()];
        let prior = mus.len() - 1;
        for (rank, &i) in order.iter().enumerate() {
            if i == prior {
                continue;
            }
            let below = if rank == 0 { low } else { mus[order[rank - 1]] };
            let above = if rank + 1 == order.len() { high } else { mus[order[rank + 1]] };
            sigmas[i] = (mus[i] - below).max(above - mus[i]).clamp(floor, width);
        }
        Parzen { mus, sigmas, low, high }
    }

    /// The log density at `x` (the truncated components renormalised).
    pub fn log_density(&self, x: f64) -> f64 {
        let n = self.mus.len() as f64;
        let density: f64 = self
            .mus
            .iter()
            .zip(&self.sigmas)
            .map(|(&mu, &sigma)| {
                let mass = normal_cdf((self.high - mu) / sigma) - normal_cdf((self.low - mu) / sigma);
                let z = (x - mu) / sigma;
                (-0.5 * z * z).exp() / (sigma * (2.0 * std::f64::consts::PI).sqrt()) / mass.max(1e-300)
            })
            .sum();
        (density / n).max(1e-300).ln()
    }

    /// A draw: a component chosen uniformly, then its truncated Gaussian (by rejection).
    pub fn sample(&self, rng: &mut Rng) -> f64 {
        let i = rng.below(self.mus.len());
        for _ in 0..1000 {
            let x = self.mus[i] + self.sigmas[i] * rng.normal();
            if (self.low..=self.high).contains(&x) {
                return x;
            }
        }
        self.mus[i].clamp(self.low, self.high)
    }
}

/// Φ(x) = erfc(−x/√2)/2.
fn normal_cdf(x: f64) -> f64 {
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

/// erfc(x) by Numerical Recipes' Chebyshev fit (fractional error below 1.2e-7).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.26551223
            + t * (1.00002368
                + t * (0.37409196
                    + t * (0.09678418
                        + t * (-0.18628806
                            + t * (0.27886807
                                + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))))
            .exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

/// A point as the JSON text stored with each of its runs (`search_point`).
pub fn point_json(spec: &SearchSpec, point: &Point) -> String {
    let map: BTreeMap<&str, serde_json::Value> = spec
        .dimensions
        .iter()
        .zip(point)
        .map(|(d, v)| (d.path.as_str(), serde_json::to_value(v).unwrap_or(serde_json::Value::Null)))
        .collect();
    serde_json::to_string(&map).unwrap_or_default()
}

/// The point of a stored `search_point` text; `None` if it does not fit the dimensions.
pub fn point_from_json(spec: &SearchSpec, text: &str) -> Option<Point> {
    let map: BTreeMap<String, serde_json::Value> = serde_json::from_str(text).ok()?;
    spec.dimensions
        .iter()
        .map(|d| {
            let value = map.get(&d.path)?;
            match (&d.domain, value) {
                (Domain::Int { .. }, v) => v.as_i64().map(Value::Integer),
                (Domain::Simplex { tasks, .. }, v) => {
                    let weights = v.as_object()?;
                    let table: Option<toml::Table> =
                        tasks.iter().map(|t| Some((t.clone(), Value::Float(weights.get(t)?.as_f64()?)))).collect();
                    table.filter(|_| weights.len() == tasks.len()).map(Value::Table)
                }
                (Domain::Float { .. }, v) => v.as_f64().map(Value::Float),
                (Domain::Choice(values), v) => {
                    values.iter().find(|c| serde_json::to_value(c).ok().as_ref() == Some(v)).cloned()
                }
            }
        })
        .collect()
}

mod driver;
pub mod nsga2;
pub use driver::{next_trial, observed, proposed, Next, SearchContext, SearchError, POINT_PARAM};

#[cfg(test)]
#[path = "search_tests.rs"]
mod tests;
