//! A Stream whose reads and writes are done by the caller (System.IO.Stream subclassed in C).
//!
//! The caller's functions start an operation and report its end later (or at once) through
//! `complete(token, status, bytes)`: the token names the pending operation, and a token that is
//! unknown or already completed is refused, so a confused caller gets an error instead of
//! corrupting another operation. A write reported as partly done is continued with the rest.

use crate::error::{code, Error, Result};
use crate::op::{Completion, Value};
use crate::stream::{ConstBuf, MutBuf, Stream};
use crate::table::Table;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

pub const CLASS_NAME: &str = "System.IO.Stream";

/// The caller's side of a custom stream.
pub trait CustomOps: Send + Sync {
    /// Starts reading up to `buf.len` bytes; the end is reported with `complete(token, ...)`.
    /// Err: nothing was started (and `complete` must not be called for `token`).
    fn begin_read(&self, buf: MutBuf, token: u64) -> Result<()>;
    /// Starts writing `buf`; the end (bytes written) is reported with `complete(token, ...)`.
    fn begin_write(&self, buf: ConstBuf, token: u64) -> Result<()>;
    /// The stream is closed (called once).
    fn close(&self);
}

/// An operation in flight. A read keeps the count it asked for (`len`): a completion that reports
/// more is refused.
enum Pending {
    Read { len: usize, done: Completion },
    Write { buf: ConstBuf, pos: usize, done: Completion },
}

struct Entry {
    stream: Arc<CustomStream>,
    op: Pending,
}

/// The pending operations by token: a token is a key of this generational table, so one that is
/// stale (already completed) or was never issued is told apart from a live one, as handles are.
static TOKENS: Table<Box<Entry>> = Table::new();
/// The kind byte of token keys: one no handle kind uses, so a handle passed as a token (or a
/// token as a handle) is never taken for one.
const TOKEN_KIND: u8 = 0x7f;

pub struct CustomStream {
    me: Weak<CustomStream>,
    ops: Box<dyn CustomOps>,
    closed: AtomicBool,
}

fn failure(status: i32, what: &str) -> Error {
    let known = crate::error::code::name(status) != "APM_UNKNOWN" && status != code::OK;
    let status = if known { status } else { code::IO };
    Error::new(status, format!("The custom stream's {what} operation failed ({}).", crate::error::code::name(status)))
}

impl CustomStream {
    pub fn new(ops: Box<dyn CustomOps>) -> Arc<CustomStream> {
        Arc::new_cyclic(|me| CustomStream { me: me.clone(), ops, closed: AtomicBool::new(false) })
    }

    fn arc(&self) -> Arc<CustomStream> {
        self.me.upgrade().expect("a custom stream in use is alive")
    }

    /// Starts `op`; on failure nothing is pending and the operation comes back with the error
    /// (boxed: the failure path is rare and the pair is large).
    fn begin(&self, op: Pending, read_target: Option<MutBuf>) -> std::result::Result<(), Box<(Error, Option<Pending>)>> {
        let write_target = match &op {
            // SAFETY: pos <= len within the caller's buffer.
            Pending::Write { buf, pos, .. } => Some(ConstBuf { ptr: unsafe { buf.ptr.add(*pos) }, len: buf.len - pos }),
            Pending::Read { .. } => None,
        };
        let Some(token) = TOKENS.insert(TOKEN_KIND, Box::new(Entry { stream: self.arc(), op }), 0) else {
            return Err(Box::new((Error::new(code::OUT_OF_MEMORY, "Too many operations are pending."), None)));
        };
        let started = match (read_target, write_target) {
            (Some(b), _) => self.ops.begin_read(b, token),
            (None, Some(b)) => self.ops.begin_write(b, token),
            (None, None) => Err(Error::internal("an operation with no buffer")),
        };
        if let Err(e) = started {
            // Nothing started: take the operation back (unless the caller completed it anyway).
            if let Some((entry, _)) = TOKENS.remove(token) {
                return Err(Box::new((e, Some(entry.op))));
            }
        }
        Ok(())
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(Error::disposed(CLASS_NAME))
        } else {
            Ok(())
        }
    }
}

/// The token table around fork(2) (see engine::fork): its locks are taken by the forking thread
/// before fork and released after it on both sides; in the child the parent's pending
/// operations are forgotten (their tokens become unknown).
pub mod fork {
    use super::TOKENS;

    /// The token table's locks, held until the returned value is dropped.
    pub fn prepare() -> Box<dyn std::any::Any> {
        Box::new(TOKENS.lock_for_fork())
    }

    pub fn forget() {
        crate::engine::fork::bury(Box::new(TOKENS.forget_live()));
    }
}

thread_local! {
    /// Set while this thread starts the rest of a partial write: a completion reported inside
    /// that Begin is queued here and handled by the loop in `complete`, so a stream that keeps
    /// writing a little and completing inline does not deepen the stack by a frame a chunk.
    static CONTINUING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    static QUEUED: std::cell::RefCell<std::collections::VecDeque<(Entry, i32, usize)>> =
        const { std::cell::RefCell::new(std::collections::VecDeque::new()) };
}

/// Reports the end of the operation `token`: `status` APM_OK (0) with the bytes read (0 = end of
/// stream) or written, or a failure status.
pub fn complete(token: u64, status: i32, bytes: usize) -> Result<()> {
    let entry = *TOKENS
        .remove(token)
        .ok_or_else(|| Error::argument("The token does not name a pending operation of a custom stream."))?
        .0;
    if CONTINUING.with(|c| c.get()) {
        QUEUED.with(|q| q.borrow_mut().push_back((entry, status, bytes)));
        return Ok(());
    }
    let mut next = Some((entry, status, bytes));
    while let Some((entry, status, bytes)) = next {
        finish(entry, status, bytes);
        next = QUEUED.with(|q| q.borrow_mut().pop_front());
    }
    Ok(())
}

/// Starts the rest of a partial write, with inline completions queued for the caller's loop.
fn continue_write(stream: &Arc<CustomStream>, rest: Pending) {
    struct Continuing;
    impl Drop for Continuing {
        fn drop(&mut self) {
            CONTINUING.with(|c| c.set(false));
        }
    }
    CONTINUING.with(|c| c.set(true));
    let started = {
        let _scope = Continuing;
        stream.begin(rest, None)
    };
    if let Err((e, Some(Pending::Write { done, .. }))) = started.map_err(|b| *b) {
        done.complete(Err(e));
    }
}

/// What a completion reported does to its operation.
fn finish(entry: Entry, status: i32, bytes: usize) {
    let Entry { stream, op } = entry;
    let closed = stream.closed.load(Ordering::Acquire);
    match op {
        Pending::Read { len, done } => {
            let outcome = if closed {
                Err(Error::disposed(CLASS_NAME))
            } else if status != code::OK {
                Err(failure(status, "read"))
            } else if bytes > len {
                // As a write reported beyond its buffer: the count must never reach EndRead.
                Err(Error::new(code::IO, "The custom stream reported more bytes read than it was asked for."))
            } else {
                Ok(Value::Bytes(bytes))
            };
            done.complete(outcome);
        }
        Pending::Write { buf, pos, done } => {
            let left = buf.len - pos;
            if closed {
                done.complete(Err(Error::disposed(CLASS_NAME)));
            } else if status != code::OK {
                done.complete(Err(failure(status, "write")));
            } else if bytes > left {
                done.complete(Err(Error::new(
                    code::IO,
                    "The custom stream reported more bytes written than it was given.",
                )));
            } else if bytes == left {
                done.complete(Ok(Value::Bytes(buf.len)));
            } else if bytes == 0 {
                done.complete(Err(Error::new(code::IO, "The custom stream wrote nothing (0 bytes) for a write.")));
            } else {
                // A partial write: the rest goes out as a new operation.
                continue_write(&stream, Pending::Write { buf, pos: pos + bytes, done });
            }
        }
    }
}

impl Stream for CustomStream {
    fn can_read(&self) -> bool {
        !self.closed.load(Ordering::Acquire)
    }

    fn can_write(&self) -> bool {
        !self.closed.load(Ordering::Acquire)
    }

    fn check(&self, _writing: bool) -> Result<()> {
        self.check_open()
    }

    fn begin_write(&self, buf: ConstBuf, done: Completion) -> Result<()> {
        self.check_open()?;
        if buf.len == 0 {
            done.complete(Ok(Value::Bytes(0)));
            return Ok(());
        }
        self.begin(Pending::Write { buf, pos: 0, done }, None).map_err(|b| b.0)
    }

    fn begin_read(&self, buf: MutBuf, done: Completion) -> Result<()> {
        self.check_open()?;
        if buf.len == 0 {
            done.complete(Ok(Value::Bytes(0)));
            return Ok(());
        }
        self.begin(Pending::Read { len: buf.len, done }, Some(buf)).map_err(|b| b.0)
    }

    fn write(&self, buf: ConstBuf) -> Result<()> {
        crate::op::wait_for(|done| self.begin_write(buf, done)).map(drop)
    }

    fn read(&self, buf: MutBuf) -> Result<usize> {
        match crate::op::wait_for(|done| self.begin_read(buf, done))? {
            Value::Bytes(n) => Ok(n),
            _ => Ok(0),
        }
    }

    fn close(&self) -> Result<()> {
        if !self.closed.swap(true, Ordering::AcqRel) {
            self.ops.close();
        }
        Ok(())
    }
}
