//! Ctrl-C (SIGINT) or SIGTERM: the first asks the sweep to stop after the current
//! step (the running trials are marked interrupted); a second one exits at once.
//!
//! signal-hook's `flag` handlers do this with async-signal-safe work only (an atomic
//! store, `_exit`), so mtl-lab has no signal-handling `unsafe` of its own.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Once};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::flag;

/// The exit status of the second signal (128 + SIGINT, as a shell reports it).
const SECOND_SIGNAL_EXIT: i32 = 130;

static REQUESTED: LazyLock<Arc<AtomicBool>> = LazyLock::new(|| Arc::new(AtomicBool::new(false)));
static INSTALLED: Once = Once::new();

/// Installs the handlers (once per process) and returns the flag they set.
pub fn install() -> &'static AtomicBool {
    INSTALLED.call_once(|| {
        // SIGTERM is what schedulers send (scancel, a time limit, preemption, a pod's eviction).
        for signal in [SIGINT, SIGTERM] {
            // Handlers run in the order registered: the exit checks the flag before the
            // second handler sets it, so only a signal that finds it set exits.
            // Registration fails only for the signals no process may handle (SIGKILL,
            // SIGSTOP, …), never for these two.
            let _ = flag::register_conditional_shutdown(signal, SECOND_SIGNAL_EXIT, Arc::clone(&REQUESTED));
            let _ = flag::register(signal, Arc::clone(&REQUESTED));
        }
    });
    &REQUESTED
}

/// Whether Ctrl-C was pressed.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}
