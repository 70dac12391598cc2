//! The support module for test binaries that live in a folder of their own.
#[path = "common.rs"]
pub mod common;
