//! NSGA-II (Deb et al. 2002, "A fast and elitist multiobjective genetic algorithm:
//! NSGA-II"), asked one point at a time: proposal `k` belongs to generation
//! `⌊k / population⌋`; generation 0 is drawn at random, and each later one breeds from the
//! parents of the points observed in earlier generations — the best `population` of them
//! by non-dominated rank, then crowding distance (the elitist survival of NSGA-II, over the
//! whole history, as an archive). A child takes each dimension from one of two parents, each
//! the winner of a binary tournament (lower rank, then larger crowding distance), by
//! uniform crossover with probability 0.9 (else a copy of the first parent), then redraws
//! each dimension with probability `1/d` (Optuna's `NSGAIISampler` defaults).
//! Every objective is maximised.

use mtl_data::Rng;

use super::{draw, Observation, Point, SearchSpec};

/// Probability that a child mixes its two parents (else it copies the first).
const CROSSOVER: f64 = 0.9;

/// Whether `a` dominates `b`: no worse in every objective, better in one.
pub fn dominates(a: &[f64], b: &[f64]) -> bool {
    a.iter().zip(b).all(|(x, y)| x >= y) && a.iter().zip(b).any(|(x, y)| x > y)
}

/// Each vector's non-dominated front, 0 the first (fast non-dominated sorting).
pub fn fronts(values: &[&[f64]]) -> Vec<usize> {
    let n = values.len();
    let mut dominated_by = vec![0usize; n];
    let mut dominating: Vec<Vec<usize>> = vec![Vec::new(); n];
    for i in 0..n {
        for j in 0..n {
            if dominates(values[i], values[j]) {
                dominating[i].push(j);
            } else if dominates(values[j], values[i]) {
                dominated_by[i] += 1;
            }
        }
    }
    let mut rank = vec![usize::MAX; n];
    let mut current: Vec<usize> = (0..n).filter(|&i| dominated_by[i] == 0).collect();
    let mut level = 0;
    while !current.is_empty() {
        let mut next = Vec::new();
        for &i in &current {
            rank[i] = level;
            for &j in &dominating[i] {
                dominated_by[j] -= 1;
                if dominated_by[j] == 0 {
                    next.push(j);
                }
            }
        }
        current = next;
        level += 1;
    }
    rank
}

/// The crowding distance of each of `members` (indices into `values`) within their front:
/// per objective, the gap between each one's two neighbours over the front's span, summed;
/// the ends of every objective get infinity.
#[allow(clippy::needless_range_loop)] // `m` indexes the objective inside each vector
pub fn crowding(values: &[&[f64]], members: &[usize]) -> Vec<f64> {
    let mut distance = vec![0.0; members.len()];
    let objectives = members.first().map_or(0, |&i| values[i].len());
    for m in 0..objectives {
        let mut order: Vec<usize> = (0..members.len()).collect();
        order.sort_by(|&a, &b| values[members[a]][m].total_cmp(&values[members[b]][m]).then(a.cmp(&b)));
        let (first, last) = (order[0], order[order.len() - 1]);
        let span = values[members[last]][m] - values[members[first]][m];
        distance[first] = f64::INFINITY;
        distance[last] = f64::INFINITY;
        if span <= 0.0 || !span.is_finite() {
            continue;
        }
        for w in order.windows(3) {
            distance[w[1]] += (values[members[w[2]]][m] - values[members[w[0]]][m]) / span;
        }
    }
    distance
}

/// The parents of a generation: the best `size` of `observed` by front, then crowding
/// distance (ties by index), each with its front and distance.
pub fn survivors(observed: &[&Observation], size: usize) -> Vec<(usize, usize, f64)> {
    let values: Vec<&[f64]> = observed.iter().map(|o| o.values.as_slice()).collect();
    let rank = fronts(&values);
    let mut chosen = Vec::new();
    for level in 0.. {
        let members: Vec<usize> = (0..observed.len()).filter(|&i| rank[i] == level).collect();
        if members.is_empty() || chosen.len() >= size {
            break;
        }
        let distance = crowding(&values, &members);
        let mut front: Vec<(usize, usize, f64)> = members.iter().zip(distance).map(|(&i, d)| (i, level, d)).collect();
        front.sort_by(|a, b| b.2.total_cmp(&a.2).then(observed[a.0].index.cmp(&observed[b.0].index)));
        front.truncate(size - chosen.len());
        chosen.extend(front);
    }
    chosen
}

/// Proposal `index` of NSGA-II with `population` points a generation; `None` when its
/// generation has fewer than two observed parents (the caller draws at random).
pub fn propose(spec: &SearchSpec, index: u64, observed: &[Observation], rng: &mut Rng) -> Option<Point> {
    let generation_start = index / spec.population as u64 * spec.population as u64;
    let pool: Vec<&Observation> = observed.iter().filter(|o| o.index < generation_start).collect();
    if pool.len() < 2 {
        return None;
    }
    let parents = survivors(&pool, spec.population);
    let mut tournament = || {
        let a = parents[rng.below(parents.len())];
        let b = parents[rng.below(parents.len())];
        let better = (a.1, -a.2) <= (b.1, -b.2);
        &pool[if better { a.0 } else { b.0 }].point
    };
    let (first, second) = (tournament().clone(), tournament().clone());
    let mix = rng.uniform() < CROSSOVER;
    let d = spec.dimensions.len();
    let child = spec
        .dimensions
        .iter()
        .enumerate()
        .map(|(i, dimension)| {
            let inherited = if mix && rng.uniform() < 0.5 { &second[i] } else { &first[i] };
            match rng.uniform() < 1.0 / d as f64 {
                true => draw(&dimension.domain, rng),
                false => inherited.clone(),
            }
        })
        .collect();
    Some(child)
}
