//! Hand cases of the samplers: bounds and scales of random draws, the Parzen estimator's
//! widths and normalisation, the categorical estimator, TPE homing in on an optimum,
//! NSGA-II's sorting and crowding by hand and its approach to a Pareto front, and points
//! surviving their stored form.

use super::*;

fn spec(sampler: Sampler, dimensions: Vec<Dimension>) -> SearchSpec {
    SearchSpec {
        sampler,
        budget: 100,
        objectives: vec![PruneMetric::Score],
        seed: 7,
        startup: 5,
        population: 10,
        dimensions,
        file: PathBuf::from("x.toml"),
        source: String::new(),
        example: None,
    }
}

fn float(low: f64, high: f64, log: bool) -> Dimension {
    Dimension { path: "lr".into(), domain: Domain::Float { low, high, log } }
}

fn obs(index: u64, point: Point, value: f64) -> Observation {
    Observation { index, point, values: vec![value] }
}

fn x(point: &Point) -> f64 {
    point[0].as_float().expect("a float")
}

#[test]
fn random_draws_keep_to_their_bounds_and_scale() {
    let log = spec(Sampler::Random, vec![float(1e-4, 1e-1, true)]);
    let draws: Vec<f64> = (0..2000).map(|k| x(&propose(&log, k, 0, &[]))).collect();
    assert!(draws.iter().all(|v| (1e-4..=1e-1).contains(v)));
    // Log-uniform: half below the geometric mean 10^-2.5.
    let below = draws.iter().filter(|&&v| v < 10f64.powf(-2.5)).count() as f64 / 2000.0;
    assert!((below - 0.5).abs() < 0.04, "{below}");
    let linear = spec(Sampler::Random, vec![float(0.0, 1.0, false)]);
    let mean = (0..2000).map(|k| x(&propose(&linear, k, 0, &[]))).sum::<f64>() / 2000.0;
    assert!((mean - 0.5).abs() < 0.03, "{mean}");
    let ints = spec(
        Sampler::Random,
        vec![Dimension { path: "batch_size".into(), domain: Domain::Int { low: 2, high: 5, log: false } }],
    );
    let mut seen = [0usize; 6];
    for k in 0..400 {
        let v = propose(&ints, k, 0, &[])[0].as_integer().expect("an integer");
        seen[v as usize] += 1;
    }
    assert_eq!(&seen[..2], [0, 0]);
    assert!(seen[2..].iter().all(|&n| n > 70), "each whole number gets its share: {seen:?}");
}

#[test]
fn proposals_depend_on_the_seed_index_and_attempt_only() {
    let s = spec(Sampler::Tpe, vec![float(0.0, 1.0, false)]);
    let observed: Vec<Observation> = (0..8).map(|i| obs(i, vec![Value::Float(i as f64 / 8.0)], i as f64)).collect();
    assert_eq!(propose(&s, 8, 0, &observed), propose(&s, 8, 0, &observed));
    assert_ne!(propose(&s, 8, 0, &observed), propose(&s, 9, 0, &observed));
    assert_ne!(propose(&s, 8, 0, &observed), propose(&s, 8, 1, &observed));
}

#[test]
fn parzen_widths_are_the_larger_gap_clipped_and_the_density_integrates_to_one() {
    // One point at 0.2 on [0, 1] with the prior at 0.5: gaps 0.2 below and 0.3 above, so 0.3,
    // clipped up to (1 − 0)/min(100, 1 + 2) = 1/3; the prior is as wide as the range.
    let p = Parzen::new(vec![0.2], 0.0, 1.0);
    assert_eq!(p.mus, [0.2, 0.5]);
    assert!((p.sigmas[0] - 1.0 / 3.0).abs() < 1e-15 && p.sigmas[1] == 1.0, "{:?}", p.sigmas);
    // Points at 0.1, 0.15 and 0.9: 0.1 has gaps 0.1 (to low) and 0.05 → 0.1; 0.15: 0.05 and
    // 0.35 (to the prior) → 0.35; 0.9: 0.4 and 0.1 → 0.4; the floor 1/5 lifts 0.1 to 0.2.
    let p = Parzen::new(vec![0.1, 0.15, 0.9], 0.0, 1.0);
    let expected = [0.2, 0.35, 0.4, 1.0];
    assert!(p.sigmas.iter().zip(expected).all(|(a, b)| (a - b).abs() < 1e-12), "{:?}", p.sigmas);
    // Truncated and renormalised: the density integrates to 1 over the range.
    for (points, low, high) in [(vec![0.1, 0.15, 0.9], 0.0, 1.0), (vec![-3.0, -2.5], -9.2, -2.3)] {
        let p = Parzen::new(points, low, high);
        let n = 20_000;
        let h = (high - low) / n as f64;
        let integral: f64 = (0..=n)
            .map(|i| {
                let w = if i == 0 || i == n { 0.5 } else { 1.0 };
                w * p.log_density(low + i as f64 * h).exp()
            })
            .sum::<f64>()
            * h;
        assert!((integral - 1.0).abs() < 1e-5, "{integral}");
    }
}

#[test]
fn erfc_matches_tabulated_values() {
    // Abramowitz & Stegun, Table 7.1.
    for (x, expected) in
        [(0.0, 1.0), (0.5, 0.479_500_122), (1.0, 0.157_299_207), (2.0, 0.004_677_735), (-1.0, 1.842_700_793)]
    {
        assert!((erfc(x) - expected).abs() < 2e-7, "erfc({x}) = {}", erfc(x));
    }
}

#[test]
fn the_categorical_estimator_is_counts_plus_a_uniform_prior() {
    let values = [Value::from("a"), Value::from("b"), Value::from("c")];
    let a = Value::from("a");
    let weights = categorical(&values, &[&a, &a]);
    let expected = [7.0 / 9.0, 1.0 / 9.0, 1.0 / 9.0];
    assert!(weights.iter().zip(expected).all(|(w, e)| (w - e).abs() < 1e-15), "{weights:?}");
}

/// 40 sequential proposals against f(x) = −(x − 0.8)²: the distance to 0.8 of the last 20.
fn last_distances(sampler: Sampler, seed: u64) -> Vec<f64> {
    let mut s = spec(sampler, vec![float(0.0, 1.0, false)]);
    s.seed = seed;
    let mut observed: Vec<Observation> = Vec::new();
    for k in 0..40 {
        let point = propose(&s, k, 0, &observed);
        let v = x(&point);
        observed.push(obs(k, point, -(v - 0.8) * (v - 0.8)));
    }
    let mut last: Vec<f64> = observed[20..].iter().map(|o| (x(&o.point) - 0.8).abs()).collect();
    last.sort_by(f64::total_cmp);
    last
}

#[test]
fn tpe_proposes_near_the_optimum_where_random_does_not() {
    for seed in 0..3 {
        let tpe = last_distances(Sampler::Tpe, seed);
        let random = last_distances(Sampler::Random, seed);
        // Medians: uniform draws on [0, 1] are about 0.25 from 0.8.
        eprintln!("seed {seed}: median distance TPE {:.3}, random {:.3}", tpe[10], random[10]);
        assert!(tpe[10] < 0.5 * random[10], "seed {seed}: TPE {} against random {}", tpe[10], random[10]);
        assert!(random[10] > 0.15, "seed {seed}: random's median distance {}", random[10]);
    }
}

#[test]
fn a_choice_dimension_concentrates_on_the_best_choice() {
    let choices = vec![Value::from("a"), Value::from("b"), Value::from("c"), Value::from("d")];
    let s = spec(Sampler::Tpe, vec![Dimension { path: "weighting".into(), domain: Domain::Choice(choices) }]);
    let mut observed: Vec<Observation> = Vec::new();
    for k in 0..30 {
        let point = propose(&s, k, 0, &observed);
        let value = if point[0].as_str() == Some("c") { 1.0 } else { 0.0 };
        observed.push(obs(k, point, value));
    }
    let c = observed[10..].iter().filter(|o| o.point[0].as_str() == Some("c")).count();
    assert!(c >= 12, "{c} of the last 20 proposals are the best choice");
}

#[test]
fn points_survive_their_stored_form() {
    let s = spec(
        Sampler::Random,
        vec![
            float(1e-5, 1.0, true),
            Dimension { path: "batch_size".into(), domain: Domain::Int { low: 8, high: 512, log: true } },
            Dimension {
                path: "weighting".into(),
                domain: Domain::Choice(vec![Value::from("static"), Value::from("famo")]),
            },
        ],
    );
    for k in 0..200 {
        let point = propose(&s, k, 0, &[]);
        assert_eq!(point_from_json(&s, &point_json(&s, &point)).as_ref(), Some(&point));
    }
    assert_eq!(point_from_json(&s, r#"{"lr": 0.1}"#), None, "a dimension missing");
}

#[test]
fn fronts_and_crowding_distances_by_hand() {
    // Maximised: (1,5), (2,4), (3,3) are the first front; (2,2) is dominated by (2,4) and
    // (3,3) only; (1,1) by (2,2) too; (0,0) by everything.
    let values: Vec<Vec<f64>> =
        vec![vec![1.0, 5.0], vec![2.0, 2.0], vec![2.0, 4.0], vec![1.0, 1.0], vec![3.0, 3.0], vec![0.0, 0.0]];
    let refs: Vec<&[f64]> = values.iter().map(Vec::as_slice).collect();
    assert_eq!(nsga2::fronts(&refs), [0, 1, 0, 2, 0, 3]);
    // Within the first front, (2,4) has neighbours (1,5) and (3,3): (3−1)/2 + (5−3)/2 = 2.
    assert_eq!(nsga2::crowding(&refs, &[0, 2, 4]), [f64::INFINITY, 2.0, f64::INFINITY]);
    let observed: Vec<Observation> = values
        .iter()
        .enumerate()
        .map(|(i, v)| Observation { index: i as u64, point: vec![], values: v.clone() })
        .collect();
    let refs: Vec<&Observation> = observed.iter().collect();
    let chosen: Vec<usize> = nsga2::survivors(&refs, 4).iter().map(|s| s.0).collect();
    // The first front, the ends (infinitely crowded) ahead of the middle, then the second.
    assert_eq!(chosen, [0, 4, 2, 1]);
    assert!(!nsga2::dominates(&[1.0, 1.0], &[1.0, 1.0]));
}

/// ZDT1 (Zitzler, Deb and Thiele 2000) over three variables in [0, 1], both objectives
/// negated to be maximised: f1 = x1, f2 = g·(1 − √(x1/g)), g = 1 + 9·mean(x2, x3); the
/// Pareto front is x2 = x3 = 0. The mean of g − 1 over the last 40 of 200 proposals.
fn zdt1_distance(sampler: Sampler, seed: u64) -> f64 {
    let dims = ["a", "b", "c"]
        .map(|p| Dimension { path: p.into(), domain: Domain::Float { low: 0.0, high: 1.0, log: false } });
    let mut s = spec(sampler, dims.to_vec());
    s.seed = seed;
    s.objectives = vec![PruneMetric::Score, PruneMetric::DeltaM];
    let mut observed = Vec::new();
    let mut gaps = Vec::new();
    for k in 0..200 {
        let point = propose(&s, k, 0, &observed);
        let v: Vec<f64> = point.iter().map(|p| p.as_float().expect("a float")).collect();
        let g = 1.0 + 9.0 * (v[1] + v[2]) / 2.0;
        let f2 = g * (1.0 - (v[0] / g).sqrt());
        gaps.push(g - 1.0);
        observed.push(Observation { index: k, point, values: vec![-v[0], -f2] });
    }
    gaps[160..].iter().sum::<f64>() / 40.0
}

#[test]
fn nsga2_approaches_the_pareto_front_where_random_does_not() {
    for seed in 0..3 {
        let nsga2 = zdt1_distance(Sampler::Nsga2, seed);
        let random = zdt1_distance(Sampler::Random, seed);
        eprintln!("seed {seed}: mean g − 1 of the last 40, NSGA-II {nsga2:.3}, random {random:.3}");
        // Uniform draws: E[g − 1] = 4.5.
        assert!(random > 3.5, "seed {seed}: random {random}");
        assert!(nsga2 < 0.5 * random, "seed {seed}: NSGA-II {nsga2} against random {random}");
    }
}

#[test]
fn nsga2_draws_its_first_generation_at_random_and_breeds_from_earlier_ones_only() {
    let mut s = spec(Sampler::Nsga2, vec![float(0.0, 1.0, false)]);
    s.population = 4;
    let random = spec(Sampler::Random, vec![float(0.0, 1.0, false)]);
    let observed: Vec<Observation> = (0..3).map(|i| obs(i, vec![Value::Float(0.9)], 1.0)).collect();
    // Index 3 is still generation 0: random, whatever was observed.
    assert_eq!(propose(&s, 3, 0, &observed), propose(&random, 3, 0, &[]));
    // Generation 1 breeds from points 0..3 (all 0.9): a child is 0.9 unless mutated (p = 1).
    let children: Vec<f64> = (4..8).map(|k| x(&propose(&s, k, 0, &observed))).collect();
    assert_ne!(children, (4..8).map(|k| x(&propose(&random, k, 0, &[]))).collect::<Vec<_>>());
    // A point of generation 1 itself (index 4) is not a parent of generation 1.
    let mut later = observed.clone();
    later.push(obs(4, vec![Value::Float(0.1)], 5.0));
    assert_eq!(propose(&s, 5, 0, &observed), propose(&s, 5, 0, &later));
}

fn simplex(n: usize, total: f64) -> Dimension {
    let tasks = (0..n).map(|i| format!("t{i}")).collect();
    Dimension { path: "lambda".into(), domain: Domain::Simplex { tasks, total } }
}

fn weights(point: &Point) -> Vec<f64> {
    let Value::Table(table) = &point[0] else { panic!("a table: {point:?}") };
    table.values().map(|v| v.as_float().expect("a weight")).collect()
}

#[test]
fn simplex_draws_are_uniform_on_the_simplex() {
    let s = spec(Sampler::Random, vec![simplex(3, 2.0)]);
    let draws: Vec<Vec<f64>> = (0..4000).map(|k| weights(&propose(&s, k, 0, &[]))).collect();
    assert!(draws.iter().all(|w| w.len() == 3 && w.iter().all(|&x| x >= 0.0)));
    assert!(draws.iter().all(|w| (w.iter().sum::<f64>() - 2.0).abs() < 1e-12));
    // Uniform on the simplex: each weight/total is Beta(1, n − 1), P(w/total < 1/2) = 1 − (1/2)² = 3/4.
    for i in 0..3 {
        let below = draws.iter().filter(|w| w[i] < 1.0).count() as f64 / 4000.0;
        assert!((below - 0.75).abs() < 0.025, "weight {i}: {below}");
    }
    let point = propose(&s, 0, 0, &[]);
    assert_eq!(point_from_json(&s, &point_json(&s, &point)), Some(point));
    assert_eq!(point_from_json(&s, r#"{"lambda": {"t0": 1.0, "t1": 1.0}}"#), None, "a task missing");
}

#[test]
fn tpe_on_a_simplex_homes_in_on_the_best_weights() {
    let target = [0.7, 0.2, 0.1];
    let distance = |w: &[f64]| w.iter().zip(target).map(|(a, b)| (a - b).powi(2)).sum::<f64>().sqrt();
    let run = |sampler: Sampler, seed: u64| {
        let s = SearchSpec { startup: 10, seed, ..spec(sampler, vec![simplex(3, 1.0)]) };
        let mut observed = Vec::new();
        for k in 0..60 {
            let point = propose(&s, k, 0, &observed);
            let value = -distance(&weights(&point));
            observed.push(obs(k, point, value));
        }
        let mut last: Vec<f64> = observed[40..].iter().map(|o| -o.values[0]).collect();
        last.sort_by(f64::total_cmp);
        last[10]
    };
    for seed in 0..3 {
        let (tpe, random) = (run(Sampler::Tpe, seed), run(Sampler::Random, seed));
        eprintln!("seed {seed}: median distance to the best weights: TPE {tpe:.3}, random {random:.3}");
        assert!(tpe < 0.6 * random, "seed {seed}: TPE {tpe} against random {random}");
    }
}

#[test]
fn grid_proposals_walk_the_combinations_in_order_the_last_dimension_fastest() {
    let choice = |path: &str, values: &[&str]| Dimension {
        path: path.into(),
        domain: Domain::Choice(values.iter().map(|v| Value::from(*v)).collect()),
    };
    let s = spec(Sampler::Grid, vec![choice("weighting", &["a", "b", "c"]), choice("lr", &["x", "y"])]);
    let shown = |k: u64, attempt: u32| -> String {
        propose(&s, k, attempt, &[]).iter().map(|v| v.as_str().expect("a choice")).collect()
    };
    let all: Vec<String> = (0..6).map(|k| shown(k, 0)).collect();
    assert_eq!(all, ["ax", "ay", "bx", "by", "cx", "cy"]);
    // Another attempt is the next combination; past the end, round again.
    assert_eq!((shown(1, 1), shown(5, 1), shown(6, 0)), ("bx".into(), "ax".into(), "ax".into()));
}
