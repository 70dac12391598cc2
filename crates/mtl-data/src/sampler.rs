//! Joint multi-task sampling.
//!
//! Policy: every task contributes one mini-batch to every step. An **epoch** is
//! one pass over the largest training set: `ceil(max_t n_t / batch_size)` steps.
//! Each task walks its own shuffled order and reshuffles when it runs out, so
//! smaller tasks are seen more than once per epoch.

use crate::Rng;

/// Draws, for every step, one batch of example indices per task.
#[derive(Clone, Debug)]
pub struct JointSampler {
    orders: Vec<Vec<usize>>,
    cursors: Vec<usize>,
    batch_size: usize,
    rng: Rng,
}

impl JointSampler {
    /// A sampler over tasks with `train_sizes` examples each (all non-zero).
    pub fn new(train_sizes: &[usize], batch_size: usize, mut rng: Rng) -> JointSampler {
        let orders = train_sizes
            .iter()
            .map(|&n| {
                let mut order: Vec<usize> = (0..n).collect();
                rng.shuffle(&mut order);
                order
            })
            .collect();
        JointSampler { orders, cursors: vec![0; train_sizes.len()], batch_size, rng }
    }

    /// Steps in one epoch: one pass over the largest task.
    pub fn steps_per_epoch(&self) -> usize {
        let largest = self.orders.iter().map(Vec::len).max().unwrap_or(0);
        largest.div_ceil(self.batch_size)
    }

    /// The next step's batches, one per task, each `min(batch_size, n_t)` long.
    pub fn next_step(&mut self) -> Vec<Vec<usize>> {
        (0..self.orders.len()).map(|task_idx| self.next_batch(task_idx)).collect()
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
        let mut large: Vec<usize> = steps.iter().flat_map(|s| s[0].clone()).collect();
        large.truncate(10);
        large.sort();
        assert_eq!(large, (0..10).collect::<Vec<_>>());
        // The small task gives full batches by reshuffling: 4 steps × 3 = 12 draws, each index 3 times.
        let mut counts = [0; 4];
        for s in &steps {
            assert_eq!(s[1].len(), 3);
            s[1].iter().for_each(|&i| counts[i] += 1);
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
}
