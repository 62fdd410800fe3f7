//! IAsyncResult, as C sees it. A result handle is valid from Begin until End releases it; after
//! that every call with it fails (End: APM_E_INVALID_OPERATION, others: APM_E_ARGUMENT).

use super::callback::CCallback;
use super::handles::{self, key_of, wrong_kind, RESULTS};
use super::{apm_async_result, apm_status, boundary, write_out};
use crate::async_result::{Flags, Gone, Held};
use crate::error::{Error, Result};
use std::ffi::c_void;
use std::time::Duration;

fn gone(g: Gone) -> Error {
    match g {
        Gone::Stale(_) => Error::argument("The IAsyncResult was already ended (End released it)."),
        Gone::Invalid => wrong_kind("apm_async_result"),
    }
}

/// The key of the result handle `p`, refusing NULL.
fn key(p: *const apm_async_result) -> Result<u64> {
    if p.is_null() {
        return Err(Error::argument_null("asyncResult"));
    }
    Ok(key_of(p))
}

/// Reads something of a live result's flags, with no lock and no reference taken.
fn read_result<R>(p: *const apm_async_result, f: impl FnOnce(&Flags) -> R) -> Result<R> {
    RESULTS.flags(key(p)?).map(|flags| f(&flags)).map_err(gone)
}

/// The live result behind `p`, kept while the caller works with it.
fn hold(p: *const apm_async_result) -> Result<Held<CCallback>> {
    RESULTS.hold(key(p)?).map_err(gone)
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
        let r = hold(result)?;
        super::need_out(signaled, "signaled")?;
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
    boundary!({ write_out(state, "state", read_result(result, |r| r.words()[1] as *mut c_void)?) })
}

/// Cancels the pending operation: it completes with APM_E_SOCKET OperationAborted (995) and its
/// callback runs (possibly on the calling thread before this returns); End must still be called.
/// A cancelled read has consumed no byte; a cancelled send may have sent part of its buffer (as
/// in .NET). An operation that has completed is left alone (APM_OK, nothing happens). Socket
/// operations that wait, the Read/Write of a NetworkStream and the Read of an SslStream (an
/// IOException over OperationAborted; ciphertext that arrives later stays for the next read) can
/// be cancelled; what cannot (the name resolution of a connect, an SslStream's write or
/// handshake, part of which may be on the wire, a stream defined in C, whose functions own the
/// buffer until they complete) reports APM_E_NOT_SUPPORTED and goes on. Any thread.
/// Errors: APM_E_ARGUMENT_NULL (result), APM_E_ARGUMENT (an ended or invalid result),
/// APM_E_NOT_SUPPORTED (the operation is pending and cannot be cancelled).
#[no_mangle]
pub unsafe extern "C" fn apm_async_result_cancel(result: *mut apm_async_result) -> apm_status {
    boundary!({
        let r = hold(result)?;
        if r.is_completed() || handles::cancel(r.owner(), r.key() as usize) || r.is_completed() {
            Ok(())
        } else {
            Err(Error::not_supported("This operation cannot be cancelled."))
        }
    })
}
