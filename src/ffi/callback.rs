//! The C side of an IAsyncResult's callback: the core's `Notify` hook, implemented by calling the
//! caller's AsyncCallback with the result's handle and the caller's state (as hyper's `hyper_io`
//! implements its core's I/O traits with C functions).

use super::{apm_async_callback, apm_async_result};
use crate::async_result::Notify;
use std::ffi::c_void;
use std::sync::atomic::{AtomicUsize, Ordering};

pub struct CCallback {
    callback: apm_async_callback,
    /// The caller's state pointer, as an integer (the library never dereferences it).
    state: usize,
    /// The result's own handle, known once it is in the table.
    result: AtomicUsize,
}

impl CCallback {
    pub fn new(callback: apm_async_callback, state: *mut c_void) -> CCallback {
        CCallback { callback, state: state as usize, result: AtomicUsize::new(0) }
    }

    pub fn set_result(&self, result: *mut apm_async_result) {
        self.result.store(result as usize, Ordering::Release);
    }

    pub fn state(&self) -> *mut c_void {
        self.state as *mut c_void
    }
}

impl Notify for CCallback {
    fn notify(&self) {
        if let Some(f) = self.callback {
            let result = self.result.load(Ordering::Acquire) as *mut apm_async_result;
            // SAFETY: the caller's callback with the result's handle and its own state.
            unsafe { f(result, self.state as *mut c_void) };
        }
    }
}
