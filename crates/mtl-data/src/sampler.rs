//! Joint multi-task sampling.
//!
//! Each task (or group of tasks sharing one input, like MultiMNIST's two
//! digits) walks its own shuffled order and reshuffles when it runs out.
//! Which of them contribute a batch to a step is the [`SamplingPolicy`]:
//!
//! | policy | a step holds | an epoch is |
//! |---|---|---|
//! | `EveryTask` (default) | one batch of every task | one pass over the largest task: `ceil(max_t n_t / batch)` steps |
//! | `Proportional` | one batch of one task, drawn with p_t ∝ n_t | one pass over all data in expectation: `ceil(Σ_t n_t / batch)` steps |
//! | `Temperature(T)` | one batch of one task, drawn with p_t ∝ n_t^(1/T) (T = 1 is proportional, T → ∞ uniform) | as `Proportional` |

use crate::Rng;

/// Which tasks contribute to a step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SamplingPolicy {
    /// Every task, every step.
    EveryTask,
    /// One task per step, with probability proportional to its size.
    Proportional,
    /// One task per step, with probability proportional to size^(1/T).
    Temperature(f64),
}

/// Draws, for every step, batches of example indices.
#[derive(Clone, Debug)]
pub struct JointSampler {
    orders: Vec<Vec<usize>>,
    cursors: Vec<usize>,
    batch_size: usize,
    /// Cumulative task probabilities for the sampled policies; empty for `EveryTask`.
    cumulative: Vec<f64>,
    rng: Rng,
}

impl JointSampler {
    /// A sampler over tasks with `train_sizes` examples each (all non-zero), drawing every task each step.
    pub fn new(train_sizes: &[usize], batch_size: usize, rng: Rng) -> JointSampler {
        JointSampler::with_policy(train_sizes, batch_size, SamplingPolicy::EveryTask, rng)
    }

    /// A sampler with an explicit policy.
    pub fn with_policy(train_sizes: &[usize], batch_size: usize, policy: SamplingPolicy, mut rng: Rng) -> JointSampler {
        let orders = train_sizes
            .iter()
            .map(|&n| {
                let mut order: Vec<usize> = (0..n).collect();
                rng.shuffle(&mut order);
                order
            })
            .collect();
        let exponent = match policy {
            SamplingPolicy::EveryTask => None,
            SamplingPolicy::Proportional => Some(1.0),
            SamplingPolicy::Temperature(t) => Some(1.0 / t),
        };
        let cumulative = match exponent {
            None => Vec::new(),
            Some(e) => {
                let weights: Vec<f64> = train_sizes.iter().map(|&n| (n as f64).powf(e)).collect();
                let total: f64 = weights.iter().sum();
                weights
                    .iter()
                    .scan(0.0, |acc, w| {
                        *acc += w / total;
                        Some(*acc)
                    })
                    .collect()
            }
        };
        JointSampler { orders, cursors: vec![0; train_sizes.len()], batch_size, cumulative, rng }
    }

    /// Steps in one epoch (see the module documentation).
    pub fn steps_per_epoch(&self) -> usize {
        let sizes = self.orders.iter().map(Vec::len);
        let examples = if self.cumulative.is_empty() { sizes.max().unwrap_or(0) } else { sizes.sum() };
        examples.div_ceil(self.batch_size)
    }

    /// The next step's batches: `(task index, example indices)`, each `min(batch_size, n_t)` long.
    pub fn next_step(&mut self) -> Vec<(usize, Vec<usize>)> {
        if self.cumulative.is_empty() {
            return (0..self.orders.len()).map(|t| (t, self.next_batch(t))).collect();
        }
        let u = self.rng.uniform();
        let task = self.cumulative.iter().position(|&c| u < c).unwrap_or(self.orders.len() - 1);
        vec![(task, self.next_batch(task))]
    }

    fn next_batch(&mut self, task_idx: usize) -> Vec<usize> {
        let n = self.orders[task_idx].len();
        let want = self.batch_size.min(n);
        let mut batch = Vec::with_capacity(want);
        while batch.len() < want {
            if self.cursors[task_idx] == n {
                self.rng.shuffle(&mut self.orders[task_idx]);
                self.cursors[task_idx] = 0;
            }
            batch.push(self.orders[task_idx][self.cursors[task_idx]]);
            self.cursors[task_idx] += 1;
        }
        batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_epoch_covers_the_largest_task_once_and_cycles_the_smaller() {
        let mut sampler = JointSampler::new(&[10, 4], 3, Rng::new(0));
        assert_eq!(sampler.steps_per_epoch(), 4);
        let steps: Vec<_> = (0..4).map(|_| sampler.next_step()).collect();
        let mut large: Vec<usize> = steps.iter().flat_map(|s| s[0].1.clone()).collect();
        large.truncate(10);
        large.sort();
        assert_eq!(large, (0..10).collect::<Vec<_>>());
        // The small task gives full batches by reshuffling: 4 steps × 3 = 12 draws, each index 3 times.
        let mut counts = [0; 4];
        for s in &steps {
            assert_eq!((s[1].0, s[1].1.len()), (1, 3));
            s[1].1.iter().for_each(|&i| counts[i] += 1);
        }
        assert_eq!(counts, [3, 3, 3, 3]);
    }

    #[test]
    fn same_seed_same_batches() {
        let mut a = JointSampler::new(&[50, 20], 8, Rng::new(5));
        let mut b = JointSampler::new(&[50, 20], 8, Rng::new(5));
        for _ in 0..10 {
            assert_eq!(a.next_step(), b.next_step());
        }
    }

    #[test]
    fn sampled_policies_draw_one_task_with_the_documented_probabilities() {
        // Sizes 300 and 100: proportional p = (0.75, 0.25); temperature 2: √300 : √100 = 0.634 : 0.366.
        for (policy, expected) in [(SamplingPolicy::Proportional, 0.75), (SamplingPolicy::Temperature(2.0), 0.634)] {
            let mut sampler = JointSampler::with_policy(&[300, 100], 10, policy, Rng::new(1));
            assert_eq!(sampler.steps_per_epoch(), 40);
            let draws = 20_000;
            let first = (0..draws)
                .filter(|_| {
                    let step = sampler.next_step();
                    assert_eq!(step.len(), 1);
                    step[0].0 == 0
                })
                .count();
            let share = first as f64 / draws as f64;
            assert!((share - expected).abs() < 0.01, "{policy:?}: {share}");
        }
    }
}
