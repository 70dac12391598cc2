//! How many threads a trial's steps use: one, or the thread pools, chosen by the work
//! of a step and by how fast steps run each way.
//!
//! Handing work to other threads pays only when they are free: candle's pool (and the
//! layers' loops on it) synchronise by spinning, so when another process holds the other
//! cores a small network on two threads trained 2–3× slower than on one (29× in one
//! report), while on an idle machine two threads made it 1.4× faster. So a trial whose
//! step has the work tries both at the start of each epoch and keeps the faster for the
//! rest of it. Results do not depend on the choice (the kernels add in a fixed order).
//!
//! ```
//! use mtl_runner::threads::ThreadChoice;
//! let mut choice = ThreadChoice::new(1 << 30, 100);
//! assert!(choice.one_thread(2)); // probing: steps 2–3 on one thread…
//! choice.record(2, 0.010);
//! choice.record(3, 0.010);
//! assert!(!choice.one_thread(4)); // …steps 4–5 on the pools
//! choice.record(4, 0.004);
//! choice.record(5, 0.004);
//! assert!(!choice.one_thread(6)); // the pools were faster: the rest of the epoch uses them
//! ```

/// Work per step (multiply-adds and element visits of the ops that can run on several
/// threads) below which a trial keeps to one thread without trying: such a step is over
/// in well under a millisecond. The tests' small experiment has 29 M, the quickstart 36 M,
/// the bench workloads 320 M to 7.5 G.
pub const MIN_SHARED_WORK_PER_STEP: u64 = 1 << 22;

/// Work per step from which a trial uses the pools without trying when an epoch has too
/// few steps to try both ways.
pub const SURE_SHARED_WORK_PER_STEP: u64 = 1 << 27;

/// Steps of an epoch timed each way before the choice: 2–3 on one thread, 4–5 on the pools
/// (step 1 can carry the epoch's start-up costs).
const PROBE: std::ops::RangeInclusive<usize> = 2..=5;

/// The fewest steps an epoch needs for trying both ways to be worth it.
const MIN_STEPS_TO_PROBE: usize = 10;

/// A trial's choice of threads, step by step.
#[derive(Clone, Debug)]
pub struct ThreadChoice {
    policy: Policy,
    /// Seconds of the probe steps on one thread and on the pools, this epoch.
    one_thread_seconds: f64,
    shared_seconds: f64,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Policy {
    AlwaysOne,
    AlwaysShared,
    ProbeEachEpoch,
}

impl ThreadChoice {
    /// The choice for a trial whose step has `work_per_step` and whose epochs have
    /// `steps_per_epoch` steps.
    pub fn new(work_per_step: u64, steps_per_epoch: usize) -> ThreadChoice {
        let policy = if work_per_step < MIN_SHARED_WORK_PER_STEP {
            Policy::AlwaysOne
        } else if steps_per_epoch >= MIN_STEPS_TO_PROBE {
            Policy::ProbeEachEpoch
        } else if work_per_step >= SURE_SHARED_WORK_PER_STEP {
            Policy::AlwaysShared
        } else {
            Policy::AlwaysOne
        };
        ThreadChoice { policy, one_thread_seconds: 0.0, shared_seconds: 0.0 }
    }

    /// Whether any step may run on the pools.
    pub fn may_share(&self) -> bool {
        self.policy != Policy::AlwaysOne
    }

    /// Whether step `step` (1-based, within its epoch) runs on one thread.
    pub fn one_thread(&self, step: usize) -> bool {
        match self.policy {
            Policy::AlwaysOne => true,
            Policy::AlwaysShared => false,
            Policy::ProbeEachEpoch => match step {
                1..=3 => true,
                4..=5 => false,
                _ => self.one_thread_seconds <= self.shared_seconds,
            },
        }
    }

    /// Records how long step `step` of the epoch took.
    pub fn record(&mut self, step: usize, seconds: f64) {
        if self.policy != Policy::ProbeEachEpoch || !PROBE.contains(&step) {
            return;
        }
        if step == *PROBE.start() {
            self.one_thread_seconds = 0.0;
            self.shared_seconds = 0.0;
        }
        if self.one_thread(step) {
            self.one_thread_seconds += seconds;
        } else {
            self.shared_seconds += seconds;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (work per step, steps per epoch, per-step seconds on one thread and on the pools)
    /// → which steps 1..=8 of two epochs ran on one thread.
    fn check(work: u64, steps: usize, one: f64, shared: f64, expected: &str) {
        let mut choice = ThreadChoice::new(work, steps);
        let mut got = String::new();
        for _epoch in 0..2 {
            for step in 1..=8 {
                let one_thread = choice.one_thread(step);
                got.push(if one_thread { '1' } else { 'n' });
                choice.record(step, if one_thread { one } else { shared });
            }
            got.push(' ');
        }
        assert_eq!(got.trim_end(), expected, "work {work}, {steps} steps, {one} s vs {shared} s");
    }

    #[test]
    fn small_steps_keep_to_one_thread_and_larger_ones_keep_the_faster_way() {
        check(MIN_SHARED_WORK_PER_STEP - 1, 100, 1.0, 0.1, "11111111 11111111");
        check(MIN_SHARED_WORK_PER_STEP, 100, 1.0, 0.5, "111nnnnn 111nnnnn");
        check(MIN_SHARED_WORK_PER_STEP, 100, 0.5, 1.0, "111nn111 111nn111");
        // Too few steps to try: by the work alone.
        check(SURE_SHARED_WORK_PER_STEP - 1, 9, 1.0, 0.5, "11111111 11111111");
        check(SURE_SHARED_WORK_PER_STEP, 9, 0.5, 1.0, "nnnnnnnn nnnnnnnn");
    }

    #[test]
    fn each_epoch_chooses_again() {
        let mut choice = ThreadChoice::new(1 << 30, 100);
        for (step, seconds) in [(2, 1.0), (3, 1.0), (4, 0.1), (5, 0.1)] {
            choice.record(step, seconds);
        }
        assert!(!choice.one_thread(6));
        // The next epoch the other cores are busy: the pools get slower.
        for (step, seconds) in [(2, 1.0), (3, 1.0), (4, 3.0), (5, 3.0)] {
            choice.record(step, seconds);
        }
        assert!(choice.one_thread(6));
    }
}
