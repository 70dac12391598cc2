//! Writing to stdout and stderr without panicking when the stream is closed or full.
//!
//! `println!` panics when a write fails (`mtl ls > /dev/full`), which would end a sweep
//! mid-trial. Here a failed write to stdout is an error ([`OutputFailed`]) that ends the
//! command (exit 1, work already done is kept); a failed write to stderr is remembered,
//! later messages are dropped, and the command exits 1 at the end ([`stderr_failed`]).
//!
//! ```ignore
//! outln!("{} runs", n)?;        // stdout: `?` ends the command if it fails
//! note!("trained {}", key);      // stderr: never fails
//! ```

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

static STDERR_FAILED: AtomicBool = AtomicBool::new(false);

/// Writing to stdout failed: the output ends there.
#[derive(Debug, thiserror::Error)]
#[error("could not write to standard output: {0}")]
pub struct OutputFailed(pub std::io::Error);

/// Writes `args` to stdout (and flushes, so a full stream is found at once).
pub fn write_stdout(args: std::fmt::Arguments) -> Result<(), OutputFailed> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_fmt(args).and_then(|()| stdout.flush()).map_err(OutputFailed)
}

/// Writes `args` to stderr; after the first failure, nothing more is tried.
pub fn write_stderr(args: std::fmt::Arguments) {
    if STDERR_FAILED.load(Ordering::Relaxed) {
        return;
    }
    let mut stderr = std::io::stderr().lock();
    if stderr.write_fmt(args).and_then(|()| stderr.flush()).is_err() {
        STDERR_FAILED.store(true, Ordering::Relaxed);
    }
}

/// Whether a write to stderr has failed (the command then exits 1).
pub fn stderr_failed() -> bool {
    STDERR_FAILED.load(Ordering::Relaxed)
}

/// `print!` to stdout, returning `Result<(), OutputFailed>`.
macro_rules! out {
    ($($arg:tt)*) => { crate::terminal::write_stdout(format_args!($($arg)*)) };
}

/// `println!` to stdout, returning `Result<(), OutputFailed>`.
macro_rules! outln {
    () => { crate::terminal::write_stdout(format_args!("\n")) };
    ($($arg:tt)*) => { crate::terminal::write_stdout(format_args!("{}\n", format_args!($($arg)*))) };
}

/// `eprintln!` that never panics.
macro_rules! note {
    () => { crate::terminal::write_stderr(format_args!("\n")) };
    ($($arg:tt)*) => { crate::terminal::write_stderr(format_args!("{}\n", format_args!($($arg)*))) };
}
