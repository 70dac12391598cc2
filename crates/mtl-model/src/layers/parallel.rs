//! The thread-pool helpers and per-thread scratch buffers that the convolution
//! kernels and the pooling share: [`parallel_for`] over candle's own CPU thread pool,
//! the per-thread mode and work counter behind it, [`lockable_chunks`], and the
//! [`Element`] types with their scratch buffers.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use candle_core::WithDType;

/// How this thread's parallel loops run: by their cost, or (in tests) always in order
/// on this thread, or always on the pool.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    ByCost,
    OneThread,
    #[cfg(test)]
    Sequential,
    #[cfg(test)]
    Parallel,
}

thread_local! {
    static MODE: std::cell::Cell<Mode> = const { std::cell::Cell::new(Mode::ByCost) };
    /// The cost of the parallel loops started on this thread since [`take_parallel_work`].
    static WORK: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Whether training decides per trial, by the work of its first step, to keep to one
/// thread (the default); off where the user chose the thread count.
static THREADS_BY_WORK: AtomicBool = AtomicBool::new(true);

/// Sets whether trials choose their threads by their work (see [`threads_by_work`]).
pub fn choose_threads_by_work(on: bool) {
    THREADS_BY_WORK.store(on, Ordering::Relaxed);
}

/// Whether trials choose their threads by their work (default: yes).
pub fn threads_by_work() -> bool {
    THREADS_BY_WORK.load(Ordering::Relaxed)
}

/// Runs every parallel loop started on this thread on this thread alone (`true`), or
/// by each loop's cost (`false`, the default). Results are the same either way.
pub fn run_on_one_thread(one_thread: bool) {
    MODE.with(|m| m.set(if one_thread { Mode::OneThread } else { Mode::ByCost }));
}

/// The work (multiply-adds, element visits) of the parallel loops started on this
/// thread since the last call: what a training step would hand to other threads.
pub fn take_parallel_work() -> u64 {
    WORK.with(|w| w.replace(0))
}

/// Runs `work` with every parallel loop it starts on this thread in `mode`.
#[cfg(test)]
fn with_mode<R>(mode: Mode, work: impl FnOnce() -> R) -> R {
    MODE.with(|m| m.set(mode));
    let result = work();
    MODE.with(|m| m.set(Mode::ByCost));
    result
}

/// Runs `work` with every parallel loop it starts on this thread run in order on this
/// thread instead: the tests compare such runs with the pool's, bit for bit.
#[cfg(test)]
pub(super) fn sequentially<R>(work: impl FnOnce() -> R) -> R {
    with_mode(Mode::Sequential, work)
}

/// Runs `work` with every parallel loop it starts on this thread handed to the pool,
/// however small: the tests' inputs are below [`MIN_PARALLEL_COST`].
#[cfg(test)]
pub(super) fn on_the_pool<R>(work: impl FnOnce() -> R) -> R {
    with_mode(Mode::Parallel, work)
}

/// The least work (multiply-adds, or element visits for the pools) handed to other
/// threads by default. Waking a parked worker costs tens of microseconds to milliseconds
/// (an idle VM's vCPU must be scheduled again), more than a small op takes on one core: a
/// small network on two threads trained 29× slower than on one (`--jobs 1`, 2 cores), and
/// such networks now keep to one thread by their trial's choice (`mtl_runner::threads`).
/// At 1 << 21, `w6`'s batch norms below 24×32 × 64 channels, its Adam updates of the
/// variables under 512 K values, its segmentation loss and most kernel-gradient transposes
/// ran on one core while the other waited; at 1 << 17 a `w6` step took 4–9% less time
/// (steps alternating between the two in one process, `examples/w6 abstep`); w3–w5 were
/// unchanged, and w1 and w2 within this machine's noise (`docs/performance.md`). Below this the work runs on the calling thread, in the same chunks, so
/// results are the same.
pub const MIN_PARALLEL_COST: usize = 1 << 17;

/// The least work [`parallel_for`] hands to other threads: [`MIN_PARALLEL_COST`] unless a
/// benchmark set another ([`set_min_parallel_cost`]).
static PARALLEL_FROM: AtomicUsize = AtomicUsize::new(MIN_PARALLEL_COST);

/// Sets the least work handed to other threads, for every thread (benchmarks compare
/// thresholds with it; results do not depend on it).
pub fn set_min_parallel_cost(cost: usize) {
    PARALLEL_FROM.store(cost, Ordering::Relaxed);
}

/// Runs `work(i)` for `i` in `0..n` on candle's own CPU thread pool — the one its ops
/// use, so that no second pool's idle workers spin on the same cores — when the whole
/// loop costs at least [`MIN_PARALLEL_COST`]; on this thread otherwise.
pub fn parallel_for(n: usize, cost: usize, work: impl Fn(usize) + Sync) {
    WORK.with(|w| w.set(w.get().saturating_add(cost as u64)));
    let parallel = match MODE.with(|m| m.get()) {
        Mode::ByCost => n >= 2 && cost >= PARALLEL_FROM.load(Ordering::Relaxed),
        Mode::OneThread => false,
        #[cfg(test)]
        Mode::Sequential => false,
        #[cfg(test)]
        Mode::Parallel => true,
    };
    if !parallel {
        (0..n).for_each(work);
    } else {
        candle_core::utils::barrier_pool().execute_chunked(n, |range| range.for_each(&work));
    }
}

/// `data` cut into `chunk_len`-element chunks that parallel work can take one by one.
pub(super) fn lockable_chunks<T>(data: &mut [T], chunk_len: usize) -> Vec<Mutex<&mut [T]>> {
    data.chunks_mut(chunk_len.max(1)).map(Mutex::new).collect()
}

/// The element types the kernels run on (those `gemm` supports and mtl-lab uses).
pub(super) trait Element: WithDType {
    /// Runs `f` on a scratch buffer of `len` elements (contents unspecified),
    /// kept per thread between calls so that im2col allocates nothing in steady state.
    fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [Self]) -> R) -> R;
}

macro_rules! element {
    ($t:ty) => {
        impl Element for $t {
            fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [Self]) -> R) -> R {
                thread_local! {
                    static SCRATCH: RefCell<Vec<$t>> = const { RefCell::new(Vec::new()) };
                }
                // Taken out rather than borrowed, so that a re-entrant call on the
                // same thread gets a fresh buffer instead of a borrow panic.
                let mut buffer = SCRATCH.with(|scratch| std::mem::take(&mut *scratch.borrow_mut()));
                if buffer.len() < len {
                    buffer.resize(len, 0.0);
                }
                let result = f(&mut buffer[..len]);
                SCRATCH.with(|scratch| *scratch.borrow_mut() = buffer);
                result
            }
        }
    };
}
element!(f32);
element!(f64);

/// Elements written per unit of parallel work by [`filled`].
const FILL_CHUNK: usize = 1 << 16;

/// `vec![0; len]` with the zeros written in parallel where the buffer is large: an op's
/// output zeroed by one thread (its pages touched for the first time included) kept
/// every other core waiting, 7% of the main thread of a `w6` step in all.
pub(super) fn zeroed<T: WithDType>(len: usize) -> Vec<T> {
    filled(len, T::zero())
}

/// `vec![value; len]`, written by the pool's threads where it is large (see [`zeroed`]).
fn filled<T: WithDType>(len: usize, value: T) -> Vec<T> {
    let mut values: Vec<T> = Vec::with_capacity(len);
    let chunks = lockable_chunks(&mut values.spare_capacity_mut()[..len], FILL_CHUNK);
    parallel_for(chunks.len(), len, |unit| {
        chunks[unit].lock().expect("filled chunk").fill(std::mem::MaybeUninit::new(value));
    });
    drop(chunks);
    // SAFETY: the loop above wrote every element of `0..len` (all within the capacity):
    // `parallel_for` runs every unit, and a panic in one never reaches this line.
    unsafe { values.set_len(len) };
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filled_buffers_hold_the_value_everywhere_on_one_thread_and_on_the_pool() {
        for len in [0, 1, FILL_CHUNK - 1, FILL_CHUNK, 3 * FILL_CHUNK + 5] {
            for values in [sequentially(|| filled(len, 1.5f32)), on_the_pool(|| filled(len, 1.5f32))] {
                assert_eq!(values.len(), len);
                assert!(values.iter().all(|&v| v == 1.5), "length {len}");
            }
        }
        assert!(on_the_pool(|| zeroed::<f64>(FILL_CHUNK + 3)).iter().all(|&v| v.to_bits() == 0));
    }
}
