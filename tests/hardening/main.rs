//! Hostile and careless inputs (issue 15): outputs that would overwrite an input, bounds on
//! memory and time, checks made before training, the cluster folder, the database edges,
//! and output streams that fail; inputs that a shared stem cannot take, and text tasks
//! sharing one vocabulary.

#[path = "../support/mod_common.rs"]
mod support;

mod cluster;
mod data;
mod outputs;
mod sharing;
mod store;
