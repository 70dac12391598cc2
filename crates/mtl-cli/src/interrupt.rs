//! Ctrl-C (SIGINT) or SIGTERM: the first asks the sweep to stop after the current
//! step (the running trials are marked interrupted); a second one exits at once.

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_interrupt(_signal: libc::c_int) {
    // Only async-signal-safe work here: an atomic swap, and _exit.
    if REQUESTED.swap(true, Ordering::SeqCst) {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(130) };
    }
}

/// Installs the handler and returns the flag it sets.
pub fn install() -> &'static AtomicBool {
    #[cfg(unix)]
    // SAFETY: the handler only touches an atomic and calls _exit.
    unsafe {
        libc::signal(libc::SIGINT, on_interrupt as *const () as libc::sighandler_t);
        // What schedulers send (scancel, a time limit, preemption, a pod's eviction).
        libc::signal(libc::SIGTERM, on_interrupt as *const () as libc::sighandler_t);
    }
    &REQUESTED
}

/// Whether Ctrl-C was pressed.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}
