//! Readers of the standard image, text, array, table and molecule formats, and of MLflow's
//! file store (runs to import).
//!
//! Each reader returns what it read (a [`crate::Sourced`] of [`crate::LabeledImages`] or
//! [`crate::LabeledTexts`] for the classification formats) or a [`crate::DataError`]
//! naming the file and what is wrong with it. Readers only read: they write nothing.

pub mod images;
pub mod mlflow;
pub mod molecules;
pub mod npy;
pub mod table;
pub mod text;
