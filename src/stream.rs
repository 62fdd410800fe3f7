//! The Stream every stream class implements (network now; SSL, Negotiate, HTTP bodies and
//! C-defined streams sit on the same trait), and the caller's buffers as the core sees them.

use crate::error::Result;
use crate::op::Completion;
use crate::channel_binding::TransportContext;
use std::sync::Arc;

/// A caller's buffer to send from. The Begin contract keeps it valid until completion.
#[derive(Clone, Copy, Debug)]
pub struct ConstBuf {
    pub ptr: *const u8,
    pub len: usize,
}

/// A caller's buffer to receive into. The Begin contract keeps it valid until completion.
#[derive(Clone, Copy, Debug)]
pub struct MutBuf {
    pub ptr: *mut u8,
    pub len: usize,
}

// SAFETY: these are borrowed views the caller promised to keep valid and unaliased until the
// operation completes (.NET's pinning rule); the library reads or writes them from one thread at
// a time.
unsafe impl Send for ConstBuf {}
unsafe impl Sync for ConstBuf {}
unsafe impl Send for MutBuf {}
unsafe impl Sync for MutBuf {}

impl ConstBuf {
    pub const EMPTY: ConstBuf = ConstBuf { ptr: std::ptr::null(), len: 0 };
}

/// A .NET Stream with the APM surface. Begin methods return Err only when they started nothing;
/// once they return Ok, `done` runs exactly once (possibly before they return) with
/// `Value::Bytes`.
///
/// Streams stack (an SslStream over a NetworkStream, a NegotiateStream over that): what a layer
/// needs of the one below is here, so no layer downcasts another.
pub trait Stream: Send + Sync {
    fn can_read(&self) -> bool;
    fn can_write(&self) -> bool;
    /// The state checks of a read or write, in .NET's order (disposed, then the direction).
    fn check(&self, writing: bool) -> Result<()>;
    /// Writes all of `buf`.
    fn begin_write(&self, buf: ConstBuf, done: Completion) -> Result<()>;
    /// Reads up to `buf.len` bytes; 0 = end of stream.
    fn begin_read(&self, buf: MutBuf, done: Completion) -> Result<()>;
    fn write(&self, buf: ConstBuf) -> Result<()>;
    fn read(&self, buf: MutBuf) -> Result<usize>;
    /// Disposes the stream: pending operations complete, later calls fail with ObjectDisposed.
    /// Err when the stream could not close cleanly (an HTTP request stream still owed bytes);
    /// it is disposed all the same.
    fn close(&self) -> Result<()>;
    /// The channel bindings of the secure channel this stream runs over, if any (an SslStream's
    /// own; a stream over an SslStream passes its inner stream's on).
    fn transport_context(&self) -> Option<Arc<TransportContext>> {
        None
    }
    /// Writes what the stream takes of `buf` at once, without waiting and only when no write of
    /// its own is queued ahead: the bytes written, 0 when it cannot or on any failure (a write
    /// the usual way then reports it). A layer above writes its output from where it lies
    /// this way, rather than copying it into a buffer first (an SslStream's records, straight
    /// from OpenSSL's buffer).
    fn try_write_now(&self, buf: &[u8]) -> usize {
        let _ = buf;
        0
    }
    /// Cancels the pending operation whose completion carries `tag` (`Completion::tag`): it
    /// completes with OperationAborted, and a cancelled read has consumed no byte. False when
    /// this stream has no such operation pending or cannot cancel it (a stream defined in C:
    /// its functions own the buffer until they complete).
    fn cancel(&self, tag: usize) -> bool {
        let _ = tag;
        false
    }
}
