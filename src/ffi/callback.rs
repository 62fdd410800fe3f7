//! The C side of an IAsyncResult's callback: the core's `Hook`, implemented by calling the
//! caller's AsyncCallback with the result's handle and the caller's state (as hyper's `hyper_io`
//! implements its core's I/O traits with C functions). The store keeps both as two plain words.

use super::{apm_async_callback, apm_async_result};
use crate::async_result::{Hook, Results};
use std::ffi::c_void;

pub struct CCallback;

impl CCallback {
    /// The words a result keeps for its callback.
    pub fn words(callback: apm_async_callback, state: *mut c_void) -> [usize; 2] {
        [callback.map_or(0, |f| f as usize), state as usize]
    }
}

impl Hook for CCallback {
    fn notify(key: u64, words: [usize; 2]) {
        // SAFETY: words[0] is 0 or a function pointer of this type (`words` above); an
        // Option<fn> has the same size and null niche as a usize of 0.
        let callback = unsafe { std::mem::transmute::<usize, apm_async_callback>(words[0]) };
        if let Some(f) = callback {
            let result = super::handles::pointer_of::<apm_async_result>(key);
            // SAFETY: the caller's callback with the result's handle and its own state.
            unsafe { f(result, words[1] as *mut c_void) };
        }
    }

    fn store() -> &'static Results<CCallback> {
        &super::handles::RESULTS
    }
}
