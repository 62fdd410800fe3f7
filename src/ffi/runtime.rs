//! The engine's lifetime, as C sees it.

use super::{apm_status, boundary};
use crate::engine;

/// Configures the engine before its first use: `threads` event-loop threads (0 = the
/// APMNET_THREADS environment variable, else half the CPUs, at least one; at most 64) and `spin_us`, the most
/// microseconds an idle loop polls before it sleeps (0..1000000; 0 = never spin; the default is
/// 50). Whether a wait spins is adaptive: while recent waits ended within `spin_us`, with an
/// exponential backoff after spins that missed, one loop at a time, and never while the
/// process's other threads leave less than one and a half CPUs free, nor for a while after
/// threads waited for a CPU (the kernel's CPU pressure, where it has PSI): a spinner on a small
/// machine would take the CPU the application needs. The engine starts on first use (a new socket); after `apm_runtime_shutdown` it may be
/// configured again. Any thread.
/// Errors: APM_E_ARGUMENT_OUT_OF_RANGE (threads or spin_us); APM_E_INVALID_OPERATION once the
/// engine has started.
#[no_mangle]
pub extern "C" fn apm_runtime_configure(threads: i32, spin_us: i32) -> apm_status {
    boundary!({ engine::configure(threads, spin_us) })
}

/// Shuts the engine down: pending operations complete with SocketError.OperationAborted (their
/// callbacks run, on the engine threads), then every library thread is joined; blocks until
/// then. Call it before unloading the library or exiting, so sanitizers and valgrind see a clean
/// exit. Sockets that are still open stay valid handles (the caller still closes them) but their
/// operations fail; the next new socket starts a new engine. Without a running engine it does
/// nothing.
///
/// fork(2) without exec is safe on both sides: nothing a child does reaches the parent. In the
/// child, every handle made before the fork reports APM_E_OBJECT_DISPOSED (closing one is a
/// no-op that leaves the parent's socket alone; the child's copies of the descriptors are closed
/// at its first call), the operations the parent had pending never complete there, and new
/// objects get a fresh engine.
/// Errors: APM_E_INVALID_OPERATION when called from a callback (wherever it runs: inline in a
/// Begin, inside a close or `apm_custom_stream_complete`, on an engine thread) or another library
/// thread.
#[no_mangle]
pub extern "C" fn apm_runtime_shutdown() -> apm_status {
    boundary!({
        if !engine::may_shut_down() {
            return Err(crate::error::Error::invalid_operation(
                "apm_runtime_shutdown cannot be called from a callback or an engine thread.",
            ));
        }
        engine::shutdown()
    })
}
