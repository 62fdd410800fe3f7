//! IAsyncResult, as C sees it. A result handle is valid from Begin until End releases it; after
//! that every call with it fails (End: APM_E_INVALID_OPERATION, others: APM_E_ARGUMENT).

use super::handles::{lookup, peek, AsyncResultClass, CResult, Object};
use super::{apm_async_result, apm_status, boundary, write_out};
use crate::error::{Error, Result};
use std::ffi::c_void;
use std::time::Duration;

/// Reads something of a live result under the table's lock, without taking a reference.
fn read_result<R>(p: *const apm_async_result, f: impl FnOnce(&CResult) -> R) -> Result<R> {
    peek::<AsyncResultClass, R>(p, |o| match o {
        Object::AsyncResult(r) => Some(f(r)),
        _ => None,
    })
}

/// IsCompleted: writes 1 once the operation has finished (success or failure), else 0. Any
/// thread; does not block, does not release the result (End does).
/// Errors: APM_E_ARGUMENT_NULL (result, completed), APM_E_ARGUMENT (an ended or invalid result).
#[no_mangle]
pub unsafe extern "C" fn apm_async_result_is_completed(
    result: *const apm_async_result,
    completed: *mut i32,
) -> apm_status {
    boundary!({ write_out(completed, "completed", read_result(result, |r| r.is_completed() as i32)?) })
}

/// CompletedSynchronously: writes 1 when the operation finished inside Begin (its callback ran
/// on the Begin caller's thread before Begin returned), else 0. Any thread; does not block.
/// Errors: APM_E_ARGUMENT_NULL (result, completed_synchronously), APM_E_ARGUMENT (an ended or
/// invalid result).
#[no_mangle]
pub unsafe extern "C" fn apm_async_result_completed_synchronously(
    result: *const apm_async_result,
    completed_synchronously: *mut i32,
) -> apm_status {
    boundary!({
        write_out(
            completed_synchronously,
            "completed_synchronously",
            read_result(result, |r| r.completed_synchronously() as i32)?,
        )
    })
}

/// AsyncWaitHandle.WaitOne: blocks until the operation completes or `timeout_ms` passes
/// (-1 = forever); writes 1 to `signaled` if it completed. Blocks the calling thread; waiting
/// from a callback for an operation of the same engine thread can deadlock, as in .NET. Does not
/// release the result: End still must be called.
/// Errors: APM_E_ARGUMENT_NULL (result, signaled), APM_E_ARGUMENT (an ended or invalid result),
/// APM_E_ARGUMENT_OUT_OF_RANGE (timeout_ms < -1).
#[no_mangle]
pub unsafe extern "C" fn apm_async_result_wait(
    result: *const apm_async_result,
    timeout_ms: i32,
    signaled: *mut i32,
) -> apm_status {
    boundary!({
        super::need_out(signaled, "signaled")?;
        let r = lookup::<AsyncResultClass>(result)?;
        let timeout = match timeout_ms {
            -1 => None,
            t if t < -1 => return Err(Error::out_of_range("timeout_ms")),
            t => Some(Duration::from_millis(t as u64)),
        };
        write_out(signaled, "signaled", r.wait(timeout) as i32)
    })
}

/// AsyncState: writes the state pointer given to Begin (the same one the callback receives; it
/// stays the caller's). Any thread; does not block.
/// Errors: APM_E_ARGUMENT_NULL (result, state), APM_E_ARGUMENT (an ended or invalid result).
#[no_mangle]
pub unsafe extern "C" fn apm_async_result_state(
    result: *const apm_async_result,
    state: *mut *mut c_void,
) -> apm_status {
    boundary!({ write_out(state, "state", read_result(result, |r| r.notify.state())?) })
}
