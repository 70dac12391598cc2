//! Training programs of the user's own (issue 21): what mtl-lab reads from them. So far
//! the metrics protocol ([`protocol`]); the `[trainer]` that runs such a program per trial
//! is not built yet.

pub mod protocol;
