//! Readers of the standard image, text and array data formats.
//!
//! Each reader returns a [`crate::Sourced`] of [`crate::LabeledImages`] or
//! [`crate::LabeledTexts`], or a [`crate::DataError`] naming the file and what
//! is wrong with it. Readers only read: they write nothing.

pub mod images;
pub mod molecules;
pub mod npy;
pub mod table;
pub mod text;
