//! [`Fresh`]: an op's new output buffer that parallel units write in full, part by part,
//! without zeroing it first. Zeroing an output the op then overwrites is a pass over
//! memory of its own: for `w6`'s batch norms and up-samplings about 2% of a step.
//!
//! Each part is written from its start, whole by [`Part::write`] (which panics unless
//! its values fill the part) or a piece at a time by [`Part::extend`] and
//! [`Part::extend_interleaved`], and [`Fresh::finish`] takes the buffer only with a
//! [`Written`] record that every part of that buffer was: no element is read before it
//! is written.

use std::mem::MaybeUninit;
use std::sync::Mutex;

/// A buffer of `len` elements, none written yet.
pub(super) struct Fresh<T> {
    values: Vec<T>,
    len: usize,
}

/// One part of a [`Fresh`] buffer, and how much of it was written (from its start).
pub(super) struct Part<'a, T> {
    slots: &'a mut [MaybeUninit<T>],
    filled: usize,
}

/// That every part of the buffer starting at `start`, `len` elements, was written.
pub(super) struct Written {
    start: usize,
    len: usize,
}

impl<T: Copy> Fresh<T> {
    pub(super) fn new(len: usize) -> Fresh<T> {
        Fresh { values: Vec::with_capacity(len), len }
    }

    /// The buffer cut into consecutive parts of `lens` (which must add up to its length),
    /// each behind a lock for the unit of work that writes it.
    pub(super) fn parts(&mut self, lens: impl IntoIterator<Item = usize>) -> Vec<Mutex<Part<'_, T>>> {
        let mut rest = &mut self.values.spare_capacity_mut()[..self.len];
        let mut parts = Vec::new();
        for len in lens {
            let (slots, tail) = std::mem::take(&mut rest).split_at_mut(len);
            parts.push(Mutex::new(Part { slots, filled: 0 }));
            rest = tail;
        }
        assert!(rest.is_empty(), "the parts leave {} elements of the buffer out", rest.len());
        parts
    }

    /// The written buffer. Panics unless `written` records this buffer's parts.
    pub(super) fn finish(mut self, written: Written) -> Vec<T> {
        let start = self.values.as_ptr() as usize;
        let ours = written.start == start && written.len == self.len;
        assert!(ours || self.len == 0, "another buffer's record");
        // SAFETY: `written` says that parts covering `0..len` of this buffer's capacity
        // (`parts` asserts they cover it) were each written in full by `Part::write`.
        unsafe { self.values.set_len(self.len) };
        self.values
    }
}

impl<T: Copy> Part<'_, T> {
    /// Writes `values` into the whole part, in order, and returns it. Panics unless they
    /// fill it (values beyond its length are not read).
    pub(super) fn write(&mut self, values: impl IntoIterator<Item = T>) -> &mut [T] {
        self.extend(values);
        self.written_mut()
    }

    /// Writes `values` after what was written so far, in order, up to the part's end
    /// (for parts written a piece at a time).
    pub(super) fn extend(&mut self, values: impl IntoIterator<Item = T>) {
        let mut count = 0;
        for (slot, value) in self.slots[self.filled..].iter_mut().zip(values) {
            slot.write(value);
            count += 1;
        }
        self.filled += count;
    }

    /// Writes `len` values after what was written so far: `map` of `even[0], odd[0],
    /// even[1], odd[1], …` (a row of Winograd's two output columns per tile). A loop the
    /// compiler vectorises, where a zip of pairs through [`Part::extend`] is element by element.
    pub(super) fn extend_interleaved(&mut self, (even, odd): (&[T], &[T]), len: usize, map: impl Fn(T) -> T) {
        let pairs = len / 2;
        assert!(even.len() >= len - pairs && odd.len() >= pairs, "interleaved rows shorter than {len} values");
        let slots = &mut self.slots[self.filled..][..len];
        let (even_pairs, odd_pairs) = (&even[..pairs], &odd[..pairs]);
        for ((pair, &e), &o) in slots.chunks_exact_mut(2).zip(even_pairs).zip(odd_pairs) {
            pair[0].write(map(e));
            pair[1].write(map(o));
        }
        if len % 2 == 1 {
            slots[len - 1].write(map(even[pairs]));
        }
        self.filled += len;
    }

    /// The part as written. Panics unless it was.
    pub(super) fn written(&self) -> &[T] {
        assert_eq!(self.filled, self.slots.len(), "a part of an op's output read before it was written");
        // SAFETY: `filled` counts the elements written from the start: all of them.
        unsafe { &*(&*self.slots as *const [MaybeUninit<T>] as *const [T]) }
    }

    /// The part as written, to update in place. Panics unless it was.
    pub(super) fn written_mut(&mut self) -> &mut [T] {
        assert_eq!(self.filled, self.slots.len(), "a part of an op's output read before it was written");
        // SAFETY: as for `written`.
        unsafe { &mut *(&mut *self.slots as *mut [MaybeUninit<T>] as *mut [T]) }
    }
}

/// The record that every one of `parts` was written. Panics otherwise.
pub(super) fn all_written<T>(parts: Vec<Mutex<Part<'_, T>>>) -> Written {
    let mut start = None;
    let mut len = 0;
    for part in parts {
        let part = part.into_inner().expect("output part");
        assert_eq!(part.filled, part.slots.len(), "a part of an op's output was not written in full");
        start.get_or_insert(part.slots.as_ptr() as usize);
        len += part.slots.len();
    }
    Written { start: start.unwrap_or(0), len }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_written_part_by_part_holds_every_value() {
        let mut fresh = Fresh::new(10);
        let parts = fresh.parts([3, 0, 7]);
        for (i, part) in parts.iter().enumerate() {
            let written = part.lock().unwrap().write((0..).map(|k| (10 * i + k) as f32)).len();
            assert_eq!(written, [3, 0, 7][i]);
        }
        let written = all_written(parts);
        assert_eq!(fresh.finish(written), [0., 1., 2., 20., 21., 22., 23., 24., 25., 26.]);
        // A part written in pieces; values past its end are not taken.
        let mut fresh = Fresh::new(5);
        let parts = fresh.parts([5]);
        let mut part = parts[0].lock().unwrap();
        part.extend([1., 2.]);
        part.extend([3., 4., 5., 6.]);
        drop(part);
        let written = all_written(parts);
        assert_eq!(fresh.finish(written), [1., 2., 3., 4., 5.]);
    }

    #[test]
    fn interleaved_rows_land_in_order_through_their_map() {
        let mut fresh = Fresh::new(8);
        let parts = fresh.parts([8]);
        let mut part = parts[0].lock().unwrap();
        // An odd length takes its last value from `even`; values past `len` are not read.
        part.extend_interleaved((&[1., 3., 5., 99.], &[2., 4., 99.]), 5, |v| v);
        part.extend_interleaved((&[-7., 9.], &[-8., 10.]), 3, |v: f32| v.max(0.));
        drop(part);
        let written = all_written(parts);
        assert_eq!(fresh.finish(written), [1., 2., 3., 4., 5., 0., 0., 9.]);
        // Rows too short for `len`, or `len` past the part's end: a panic, nothing counted.
        for (even, odd, len) in [(&[1f32, 2.][..], &[3f32][..], 4), (&[1., 2.][..], &[3., 4.][..], 5)] {
            let short = std::panic::catch_unwind(|| {
                let mut fresh = Fresh::<f32>::new(4);
                let parts = fresh.parts([4]);
                parts[0].lock().unwrap().extend_interleaved((even, odd), len, |v| v);
                all_written(parts);
            });
            assert!(short.is_err());
        }
    }

    #[test]
    fn a_part_left_unwritten_or_written_short_is_a_panic_not_a_read() {
        let unwritten = std::panic::catch_unwind(|| {
            let mut fresh = Fresh::<f32>::new(4);
            let parts = fresh.parts([2, 2]);
            parts[0].lock().unwrap().write([1., 2.]);
            all_written(parts);
        });
        assert!(unwritten.is_err());
        let short = std::panic::catch_unwind(|| {
            let mut fresh = Fresh::<f32>::new(2);
            let parts = fresh.parts([2]);
            parts[0].lock().unwrap().write([1.]);
        });
        assert!(short.is_err());
        let half = std::panic::catch_unwind(|| {
            let mut fresh = Fresh::<f32>::new(4);
            let parts = fresh.parts([4]);
            parts[0].lock().unwrap().extend([1., 2.]);
            all_written(parts);
        });
        assert!(half.is_err());
        let uncovered = std::panic::catch_unwind(|| Fresh::<f32>::new(3).parts([2]).len());
        assert!(uncovered.is_err());
    }
}
