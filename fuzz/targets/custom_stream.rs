//! custom_stream: the completion path of streams defined in C (`apm_stream_create_custom`,
//! `apm_custom_stream_complete`), driven through the C API against a model of what every call
//! must report.
//!
//! The input is a program: Begin reads and writes (with or without a callback, a callback that
//! calls End itself, blocking reads and writes), completions with tokens (a pending one, a stale
//! one, any number), statuses (APM_OK, every defined code, any number) and byte counts (all, none,
//! fewer, one more, any number up to SIZE_MAX), End (also the wrong stream, the wrong kind, a
//! second time), queries and cancel on results, closing a stream with operations pending, and the
//! stream's own answers to begin_read/begin_write (leave it pending, refuse, complete inside,
//! complete inside and then refuse). What the library must do:
//!
//! * `apm_custom_stream_complete` accepts exactly the pending tokens (APM_E_ARGUMENT otherwise);
//! * every Begin that returns APM_OK runs its callback exactly once, after the completion, with
//!   CompletedSynchronously set exactly when it completed inside Begin; a Begin that fails runs
//!   none and writes no result;
//! * End reports what the completion said: the bytes read (never more than asked), the failure
//!   status (APM_E_IO for one the header does not define), APM_E_IO for a count beyond the
//!   buffer or a write of 0 bytes, APM_E_OBJECT_DISPOSED once the stream is closed; the rest of a
//!   partial write is asked for at the right place;
//! * the stream's close function runs once, on the first close.

use super::input::Input;
use super::{expect_status, is_defined, status_name};
use apmnet::ffi::async_result::*;
use apmnet::ffi::custom_stream::{
    apm_custom_complete_fn, apm_custom_stream_complete, apm_stream_create_custom, apm_stream_vtable,
};
use apmnet::ffi::stream::*;
use apmnet::ffi::status::*;
use apmnet::ffi::{apm_async_callback, apm_async_result, apm_stream};
use std::collections::VecDeque;
use std::ffi::c_void;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

const MAX_STREAMS: usize = 3;
const MAX_OPS: usize = 48;
/// Queued answers for the continuations of partial writes; it bounds how deep inline partial
/// completions nest (see the report: an unbounded chain of them recurses without limit).
const MAX_PLANS: usize = 16;
/// What the buffers hold where nothing was read.
const FILL: u8 = 0xEE;

/// A byte count, resolved against the count of the request it completes.
#[derive(Clone, Copy, Debug)]
enum Bytes {
    All,
    Fewer,
    None,
    OneMore,
    Exactly(usize),
}

impl Bytes {
    fn resolve(self, count: usize) -> usize {
        match self {
            Bytes::All => count,
            Bytes::Fewer => count / 2,
            Bytes::None => 0,
            Bytes::OneMore => count.wrapping_add(1),
            Bytes::Exactly(n) => n,
        }
    }
}

/// How the stream answers a begin_read/begin_write.
#[derive(Clone, Copy, Debug)]
enum Plan {
    /// APM_OK; the program completes it later.
    Pending,
    /// Returns this (non-OK) status: nothing started.
    Refuse(apm_status),
    /// Completes inside, then returns APM_OK.
    Inline(apm_status, Bytes),
    /// Completes inside, then returns a failure anyway (the library must go by the completion).
    InlineThenRefuse(apm_status, Bytes, apm_status),
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Callback {
    None,
    Count,
    /// The callback calls End itself.
    EndInside,
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Outcome {
    Bytes(usize),
    Status(apm_status),
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum State {
    /// Its Begin is running, nothing asked of the stream yet.
    Starting,
    /// A request of it is pending (or, mid-completion, the rest of a partial write is due).
    Pending,
    /// Its Begin failed (nothing started).
    Refused(apm_status),
    Completed(Outcome),
    Ended,
}

struct Op {
    stream: usize,
    write: bool,
    blocking: bool,
    buf: Vec<u8>,
    offset: usize,
    count: usize,
    /// Write: bytes reported written so far.
    pos: usize,
    /// Read: the bytes the stream put into the buffer.
    read: Vec<u8>,
    /// The answer to its first begin_read/begin_write.
    plan: Option<Plan>,
    result: usize,
    callback: Callback,
    callbacks: usize,
    state: State,
    in_begin: bool,
    completed_in_begin: bool,
    /// A partial write was reported: the library must ask for the rest during that completion.
    rest_due: bool,
    cb_state: Box<CbState>,
}

struct CbState {
    model: *const Model,
    op: usize,
}

struct StreamRec {
    handle: usize,
    closed: bool,
    close_calls: usize,
    ctx: Box<Ctx>,
}

struct Ctx {
    model: *const Model,
    stream: usize,
}

struct Req {
    token: u64,
    op: usize,
    count: usize,
}

#[derive(Default)]
struct Inner {
    streams: Vec<StreamRec>,
    ops: Vec<Op>,
    pending: Vec<Req>,
    stale: Vec<u64>,
    plans: VecDeque<Plan>,
    /// The operation the library may ask the stream about next (a Begin or a completion running).
    current: Option<usize>,
    errors: Vec<String>,
}

#[derive(Default)]
struct Model {
    inner: Mutex<Inner>,
}

impl Model {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Inner {
    fn error(&mut self, e: String) {
        if self.errors.len() < 32 {
            self.errors.push(e);
        }
    }

    /// Records `outcome` as the completion of `op` (before the library is told, so that a
    /// callback that runs inside the call finds it).
    fn complete_op(&mut self, op: usize, outcome: Outcome) {
        let o = &mut self.ops[op];
        o.state = State::Completed(outcome);
        o.completed_in_begin = o.in_begin;
    }

    /// The expected outcome of an End (or of a blocking call) for `op` now.
    fn end_expectation(&self, op: usize) -> Option<Outcome> {
        let o = &self.ops[op];
        match o.state {
            State::Completed(_) if self.streams[o.stream].closed && !o.blocking => {
                Some(Outcome::Status(APM_E_OBJECT_DISPOSED))
            }
            State::Completed(outcome) => Some(outcome),
            State::Refused(st) => Some(Outcome::Status(st)),
            _ => None,
        }
    }
}

/// A failure status as the library reports it: the header's, or APM_E_IO for any other value.
fn reported(status: apm_status) -> apm_status {
    if status < 0 && is_defined(status) {
        status
    } else {
        APM_E_IO
    }
}

fn pattern(token: u64, i: usize) -> u8 {
    (token as u8).wrapping_mul(31).wrapping_add(i as u8).wrapping_add(1)
}

// ------------------------------------------------------------------------------------------
// The stream's functions

unsafe extern "C" fn v_begin_read(
    ctx: *mut c_void,
    buffer: *mut u8,
    count: usize,
    complete: apm_custom_complete_fn,
    token: u64,
) -> apm_status {
    begin_io(ctx, buffer as usize, count, complete, token, false)
}

unsafe extern "C" fn v_begin_write(
    ctx: *mut c_void,
    buffer: *const u8,
    count: usize,
    complete: apm_custom_complete_fn,
    token: u64,
) -> apm_status {
    begin_io(ctx, buffer as usize, count, complete, token, true)
}

unsafe extern "C" fn v_close(ctx: *mut c_void) {
    // SAFETY: the Ctx of a stream, alive until the run ends.
    let ctx = unsafe { &*(ctx as *const Ctx) };
    // SAFETY: the model outlives every stream.
    let model = unsafe { &*ctx.model };
    model.lock().streams[ctx.stream].close_calls += 1;
}

fn begin_io(
    ctx: *mut c_void,
    ptr: usize,
    count: usize,
    complete: apm_custom_complete_fn,
    token: u64,
    write: bool,
) -> apm_status {
    // SAFETY: as v_close.
    let ctx = unsafe { &*(ctx as *const Ctx) };
    // SAFETY: as v_close.
    let model = unsafe { &*ctx.model };
    let plan = {
        let mut m = model.lock();
        let Some(op) = m.current else {
            m.error(format!("begin (write {write}) with token {token:#x} when no operation starts"));
            return APM_E_IO;
        };
        let o = &m.ops[op];
        let (want_ptr, want_count) = (o.buf.as_ptr() as usize + o.offset + o.pos, o.count - o.pos);
        let mut problems = Vec::new();
        if o.stream != ctx.stream || o.write != write {
            problems.push(format!(
                "asked stream {} write {write} for op {op} (stream {}, write {})",
                ctx.stream, o.stream, o.write
            ));
        }
        if (ptr, count) != (want_ptr, want_count) {
            problems.push(format!("op {op}: buffer {ptr:#x}+{count}, expected {want_ptr:#x}+{want_count}"));
        }
        if complete.map(|f| f as usize) != Some(apm_custom_stream_complete as *const () as usize) {
            problems.push("the complete function is not apm_custom_stream_complete".to_string());
        }
        if m.pending.iter().any(|r| r.token == token) || m.stale.contains(&token) {
            problems.push(format!("token {token:#x} handed out twice"));
        }
        let fresh = o.state == State::Starting;
        let blocking = o.blocking;
        let plan = m.ops[op].plan.take().or_else(|| m.plans.pop_front()).unwrap_or(Plan::Pending);
        // A blocking call waits on this thread: nothing may be left for later.
        let plan = match plan {
            Plan::Pending if blocking => Plan::Inline(APM_OK, Bytes::All),
            p => p,
        };
        for p in problems {
            m.error(p);
        }
        m.ops[op].rest_due = false;
        match plan {
            Plan::Refuse(st) if fresh => m.ops[op].state = State::Refused(reported(st)),
            // The rest of a partial write refused: the write fails with that status.
            Plan::Refuse(st) => m.complete_op(op, Outcome::Status(reported(st))),
            _ => {
                m.ops[op].state = State::Pending;
                m.pending.push(Req { token, op, count });
            }
        }
        plan
    };
    match plan {
        Plan::Pending => APM_OK,
        Plan::Refuse(st) => st,
        Plan::Inline(st, bytes) => {
            do_complete(model, token, st, bytes);
            APM_OK
        }
        Plan::InlineThenRefuse(st, bytes, refuse) => {
            do_complete(model, token, st, bytes);
            refuse
        }
    }
}

// ------------------------------------------------------------------------------------------
// Completions, callbacks, End

/// `apm_custom_stream_complete(token, status, bytes)`, checked against the model.
fn do_complete(model: &Model, token: u64, status: apm_status, bytes: Bytes) {
    let (expected, op, n, saved) = {
        let mut m = model.lock();
        let saved = m.current;
        let Some(i) = m.pending.iter().position(|r| r.token == token) else {
            let n = bytes.resolve(0);
            m.current = None;
            drop(m);
            // SAFETY: any token, status and count are valid arguments.
            let st = unsafe { apm_custom_stream_complete(token, status, n) };
            let mut m = model.lock();
            m.current = saved;
            if st != APM_E_ARGUMENT {
                m.error(format!("complete({token:#x}) of no pending operation: {}", status_name(st)));
            }
            return;
        };
        let req = m.pending.remove(i);
        m.stale.push(token);
        let n = bytes.resolve(req.count);
        let op = req.op;
        let closed = m.streams[m.ops[op].stream].closed;
        let write = m.ops[op].write;
        if closed {
            m.complete_op(op, Outcome::Status(APM_E_OBJECT_DISPOSED));
        } else if status != APM_OK {
            m.complete_op(op, Outcome::Status(reported(status)));
        } else if n > req.count || (write && n == 0) {
            m.complete_op(op, Outcome::Status(APM_E_IO));
        } else if !write {
            let o = &mut m.ops[op];
            let at = o.offset;
            o.read = (0..n).map(|i| pattern(token, i)).collect();
            let read = o.read.clone();
            o.buf[at..at + n].copy_from_slice(&read);
            m.complete_op(op, Outcome::Bytes(n));
        } else if n == req.count {
            let total = m.ops[op].count;
            m.complete_op(op, Outcome::Bytes(total));
        } else {
            let o = &mut m.ops[op];
            o.pos += n;
            o.rest_due = true;
        }
        m.current = Some(op);
        (APM_OK, op, n, saved)
    };
    // SAFETY: as above.
    let st = unsafe { apm_custom_stream_complete(token, status, n) };
    let mut m = model.lock();
    m.current = saved;
    if st != expected {
        m.error(format!(
            "complete({token:#x}, {status}, {n}) of op {op}: {}, expected {}",
            status_name(st),
            status_name(expected)
        ));
    }
    // Reported from inside the stream's own begin_write (nested), the rest is asked for by the
    // library's loop once the outer call returns; reported from outside, before this call returns.
    if saved.is_none() && m.ops[op].rest_due {
        m.ops[op].rest_due = false;
        m.error(format!("op {op}: the rest of a partial write was never asked for"));
    }
}

unsafe extern "C" fn on_done(result: *mut apm_async_result, state: *mut c_void) {
    // SAFETY: the CbState of an op, alive until the run ends.
    let cb = unsafe { &*(state as *const CbState) };
    // SAFETY: the model outlives every op.
    let model = unsafe { &*cb.model };
    let mut sync = -1;
    // SAFETY: the result is live during its callback (End has not run: it runs here or later).
    let st = unsafe { apm_async_result_completed_synchronously(result, &mut sync) };
    let end_inside = {
        let mut m = model.lock();
        let o = &mut m.ops[cb.op];
        o.callbacks += 1;
        let (callbacks, state, in_begin, old) = (o.callbacks, o.state, o.in_begin, o.result);
        if old == 0 {
            o.result = result as usize;
        }
        let end_inside = o.callback == Callback::EndInside;
        if callbacks > 1 {
            m.error(format!("op {}: callback {callbacks}", cb.op));
        }
        if !matches!(state, State::Completed(_)) {
            m.error(format!("op {}: callback in state {state:?}", cb.op));
        }
        if old != 0 && old != result as usize {
            m.error(format!("op {}: the callback got another result", cb.op));
        }
        if st != APM_OK || sync != in_begin as i32 {
            m.error(format!(
                "op {}: CompletedSynchronously {sync} ({}) in a callback {} Begin",
                cb.op,
                status_name(st),
                if in_begin { "inside" } else { "after" }
            ));
        }
        end_inside && callbacks == 1
    };
    if end_inside {
        end_op(model, cb.op, result as usize);
    }
}

/// EndWrite or EndRead (the bytes read into `n`).
fn end_call(stream: *mut apm_stream, result: *mut apm_async_result, write: bool, n: &mut usize) -> apm_status {
    // SAFETY: handles from the library, or stale ones (End checks them).
    unsafe {
        if write {
            apm_stream_end_write(stream, result)
        } else {
            apm_stream_end_read(stream, result, n)
        }
    }
}

/// End of `op` (result `result`) on its own stream, checked against the model.
fn end_op(model: &Model, op: usize, result: usize) {
    let (handle, write, expected) = {
        let m = model.lock();
        let o = &m.ops[op];
        (m.streams[o.stream].handle, o.write, m.end_expectation(op))
    };
    let mut n = usize::MAX;
    let st = end_call(handle as *mut apm_stream, result as *mut apm_async_result, write, &mut n);
    let mut m = model.lock();
    check_outcome(&mut m, op, "End", expected, st, n);
    m.ops[op].state = State::Ended;
}

fn check_outcome(m: &mut Inner, op: usize, what: &str, expected: Option<Outcome>, st: apm_status, n: usize) {
    let o = &m.ops[op];
    let ok = match expected {
        Some(Outcome::Bytes(k)) => {
            st == APM_OK && (o.write || (n == k && o.buf[o.offset..o.offset + k] == o.read[..k]))
        }
        Some(Outcome::Status(s)) => st == s,
        None => false,
    };
    let untouched = o.buf[..o.offset].iter().chain(&o.buf[o.offset + o.read.len()..]).all(|&b| b == FILL);
    if !ok || !untouched {
        let e = format!(
            "op {op} ({}, {} of {} bytes): {what} gave {} with {n} bytes (buffer outside the read untouched: {untouched}), expected {expected:?}",
            if o.write { "write" } else { "read" },
            o.read.len(),
            o.count,
            status_name(st)
        );
        m.error(e);
    }
}

// ------------------------------------------------------------------------------------------
// The program

fn status(input: &mut Input) -> apm_status {
    match input.u8() {
        0..=159 => APM_OK,
        b @ 160..=239 => -(((b - 160) % 20) as apm_status),
        _ => input.u32() as apm_status,
    }
}

fn failure(input: &mut Input) -> apm_status {
    match status(input) {
        APM_OK => APM_E_IO,
        s => s,
    }
}

fn bytes(input: &mut Input) -> Bytes {
    match input.u8() {
        0..=127 => Bytes::All,
        128..=159 => Bytes::Fewer,
        160..=175 => Bytes::None,
        176..=191 => Bytes::OneMore,
        192..=223 => Bytes::Exactly(input.u8() as usize),
        224..=239 => Bytes::Exactly(input.u32() as usize),
        240..=247 => Bytes::Exactly(input.u64() as usize),
        _ => Bytes::Exactly(usize::MAX),
    }
}

fn plan(input: &mut Input) -> Plan {
    match input.u8() % 8 {
        0..=3 => Plan::Pending,
        4 => Plan::Refuse(failure(input)),
        5 | 6 => Plan::Inline(status(input), bytes(input)),
        _ => Plan::InlineThenRefuse(status(input), bytes(input), failure(input)),
    }
}

fn count(input: &mut Input) -> usize {
    match input.u8() {
        b @ 0..=223 => b as usize,
        b => 1 << ((b - 224) % 17),
    }
}

struct Run {
    model: Box<Model>,
}

impl Run {
    fn stream_handle(&self, s: usize) -> *mut apm_stream {
        self.model.lock().streams[s].handle as *mut apm_stream
    }

    fn add_stream(&mut self) {
        let mut m = self.model.lock();
        if m.streams.len() >= MAX_STREAMS {
            return;
        }
        let index = m.streams.len();
        let ctx = Box::new(Ctx { model: &*self.model, stream: index });
        let ctx_ptr = &*ctx as *const Ctx as *mut c_void;
        m.streams.push(StreamRec { handle: 0, closed: false, close_calls: 0, ctx });
        drop(m);
        let vtable = apm_stream_vtable {
            begin_read: Some(v_begin_read),
            begin_write: Some(v_begin_write),
            close: Some(v_close),
        };
        let mut h: *mut apm_stream = std::ptr::null_mut();
        // SAFETY: a valid table; the Ctx outlives the stream.
        expect_status(
            "apm_stream_create_custom",
            unsafe { apm_stream_create_custom(&vtable, ctx_ptr, &mut h) },
            &[APM_OK],
        );
        self.model.lock().streams[index].handle = h as usize;
    }

    /// A Begin (or, `blocking`, apm_stream_read / apm_stream_write).
    fn begin(&mut self, input: &mut Input, write: bool, blocking: bool) {
        let s = input.u8() as usize % self.model.lock().streams.len();
        let count = count(input);
        let shape = input.u8();
        let offset = if shape & 0x30 == 0x30 { (shape & 0x0f) as usize } else { 0 };
        let first = plan(input);
        let callback = match input.u8() % 4 {
            0 => Callback::None,
            1 | 2 => Callback::Count,
            _ => Callback::EndInside,
        };
        let callback = if blocking { Callback::None } else { callback };
        // The buffer: mostly offset + count bytes; sometimes NULL or too short.
        let (null, len) = match shape >> 6 {
            3 if shape & 1 == 1 => (true, 0),
            3 => (false, (offset + count).saturating_sub(1 + (shape as usize >> 1 & 1) * (count + 1))),
            _ => (false, offset + count),
        };
        let mut m = self.model.lock();
        if m.ops.len() >= MAX_OPS {
            return;
        }
        let id = m.ops.len();
        let closed = m.streams[s].closed;
        let model_ptr: *const Model = &*self.model;
        m.ops.push(Op {
            stream: s,
            write,
            blocking,
            buf: vec![FILL; len.max(offset + count)],
            offset,
            count,
            pos: 0,
            read: Vec::new(),
            plan: Some(first),
            result: 0,
            callback,
            callbacks: 0,
            state: State::Starting,
            in_begin: true,
            completed_in_begin: false,
            rest_due: false,
            cb_state: Box::new(CbState { model: model_ptr, op: id }),
        });
        // What Begin must say before it starts anything, in the library's order.
        let refused = if closed {
            Some(APM_E_OBJECT_DISPOSED)
        } else if null {
            Some(APM_E_ARGUMENT_NULL)
        } else if offset > len || count > len - offset {
            Some(APM_E_ARGUMENT_OUT_OF_RANGE)
        } else {
            None
        };
        match refused {
            Some(st) => m.ops[id].state = State::Refused(st),
            None if count == 0 => m.complete_op(id, Outcome::Bytes(0)),
            None => {}
        }
        m.current = Some(id);
        let o = &mut m.ops[id];
        let buf = if null { std::ptr::null_mut() } else { o.buf.as_mut_ptr() };
        let state = &*o.cb_state as *const CbState as *mut c_void;
        let cb: apm_async_callback = if callback == Callback::None { None } else { Some(on_done) };
        let h = m.streams[s].handle as *mut apm_stream;
        drop(m);

        let sentinel = 0x5eed_usize as *mut apm_async_result;
        let mut result = sentinel;
        let mut n = usize::MAX;
        // SAFETY: the buffer (len bytes, or NULL) lives in the model until the run ends.
        let st = unsafe {
            match (blocking, write) {
                (false, false) => apm_stream_begin_read(h, buf, len, offset, count, cb, state, &mut result),
                (false, true) => apm_stream_begin_write(h, buf, len, offset, count, cb, state, &mut result),
                (true, false) => apm_stream_read(h, buf, len, offset, count, &mut n),
                (true, true) => apm_stream_write(h, buf, len, offset, count),
            }
        };

        let mut m = self.model.lock();
        m.current = None;
        let o = &mut m.ops[id];
        o.in_begin = false;
        o.plan = None;
        if blocking {
            let expected = m.end_expectation(id);
            check_outcome(&mut m, id, "blocking call", expected, st, n);
            m.ops[id].state = State::Ended;
            return;
        }
        match o.state {
            State::Refused(want) => {
                let e = (st != want || result != sentinel).then(|| {
                    format!(
                        "op {id}: Begin gave {} (result written: {}), expected {}",
                        status_name(st),
                        result != sentinel,
                        status_name(want)
                    )
                });
                if let Some(e) = e {
                    m.error(e);
                }
            }
            _ if st != APM_OK => {
                let e = format!(
                    "op {id}: Begin gave {} \"{}\" in state {:?}",
                    status_name(st),
                    super::last_message(),
                    o.state
                );
                m.error(e);
            }
            _ => {
                let mismatch = o.result != 0 && o.result != result as usize;
                o.result = result as usize;
                if mismatch {
                    m.error(format!("op {id}: Begin handed out another result than its callback got"));
                }
            }
        }
    }

    fn complete(&mut self, input: &mut Input) {
        let pick = input.u8();
        let token = {
            let m = self.model.lock();
            match pick {
                0..=199 if !m.pending.is_empty() => m.pending[pick as usize % m.pending.len()].token,
                200..=229 if !m.stale.is_empty() => m.stale[pick as usize % m.stale.len()],
                _ => input.u64(),
            }
        };
        let (st, n) = (status(input), bytes(input));
        do_complete(&self.model, token, st, n);
    }

    /// Ops that Begin handed out a result for, in the given states.
    fn pick_op(&self, input: &mut Input, want: impl Fn(&Op) -> bool) -> Option<usize> {
        let m = self.model.lock();
        let ids: Vec<usize> =
            (0..m.ops.len()).filter(|&i| m.ops[i].result != 0 && !m.ops[i].blocking && want(&m.ops[i])).collect();
        let b = input.u8() as usize;
        (!ids.is_empty()).then(|| ids[b % ids.len()])
    }

    fn end(&mut self, input: &mut Input) {
        let how = input.u8() % 4;
        let Some(op) = self.pick_op(input, |o| matches!(o.state, State::Completed(_) | State::Ended)) else { return };
        let (state, result, stream, write, streams) = {
            let m = self.model.lock();
            let o = &m.ops[op];
            (o.state, o.result, o.stream, o.write, m.streams.len())
        };
        let r = result as *mut apm_async_result;
        let closed = |s: usize| self.model.lock().streams[s].closed;
        let mut n = 0;
        match (how, state) {
            (_, State::Ended) => {
                // A second End.
                let want = if closed(stream) { APM_E_OBJECT_DISPOSED } else { APM_E_INVALID_OPERATION };
                let h = self.stream_handle(stream);
                let st = end_call(h, r, write, &mut n);
                expect_status(&format!("op {op}: a second End"), st, &[want]);
            }
            (1, _) if streams > 1 && !closed((stream + 1) % streams) => {
                let h = self.stream_handle((stream + 1) % streams);
                let st = end_call(h, r, write, &mut n);
                expect_status(&format!("op {op}: End on another stream"), st, &[APM_E_ARGUMENT]);
            }
            (2, _) if !closed(stream) => {
                let h = self.stream_handle(stream);
                let st = end_call(h, r, !write, &mut n);
                expect_status(&format!("op {op}: the other End"), st, &[APM_E_ARGUMENT]);
            }
            _ => end_op(&self.model, op, result),
        }
    }

    fn query(&mut self, input: &mut Input) {
        let Some(op) = self.pick_op(input, |_| true) else { return };
        let (state, result, sync, state_ptr) = {
            let m = self.model.lock();
            let o = &m.ops[op];
            (o.state, o.result as *mut apm_async_result, o.completed_in_begin, &*o.cb_state as *const CbState as usize)
        };
        let (mut done, mut cs, mut signaled, mut st_ptr) = (-1, -1, -1, std::ptr::null_mut());
        // SAFETY: results from the library (checked by each call).
        unsafe {
            if state == State::Ended {
                expect_status(
                    &format!("op {op}: is_completed after End"),
                    apm_async_result_is_completed(result, &mut done),
                    &[APM_E_ARGUMENT],
                );
                return;
            }
            let completed = matches!(state, State::Completed(_));
            expect_status(
                &format!("op {op}: is_completed"),
                apm_async_result_is_completed(result, &mut done),
                &[APM_OK],
            );
            expect_status(&format!("op {op}: wait(0)"), apm_async_result_wait(result, 0, &mut signaled), &[APM_OK]);
            expect_status(&format!("op {op}: state"), apm_async_result_state(result, &mut st_ptr), &[APM_OK]);
            assert_eq!(
                (done, signaled),
                (completed as i32, completed as i32),
                "op {op}: IsCompleted and the wait handle in state {state:?}"
            );
            assert_eq!(st_ptr as usize, state_ptr, "op {op}: AsyncState");
            if completed {
                expect_status(
                    &format!("op {op}: completed_synchronously"),
                    apm_async_result_completed_synchronously(result, &mut cs),
                    &[APM_OK],
                );
                assert_eq!(cs, sync as i32, "op {op}: CompletedSynchronously");
            }
            let want = if completed { APM_OK } else { APM_E_NOT_SUPPORTED };
            expect_status(&format!("op {op}: cancel in state {state:?}"), apm_async_result_cancel(result), &[want]);
        }
    }

    fn close(&mut self, input: &mut Input) {
        let s = input.u8() as usize % self.model.lock().streams.len();
        let h = {
            let mut m = self.model.lock();
            m.streams[s].closed = true;
            m.streams[s].handle as *mut apm_stream
        };
        // SAFETY: a stream handle (closing twice is allowed).
        expect_status("apm_stream_close", unsafe { apm_stream_close(h) }, &[APM_OK]);
        let calls = self.model.lock().streams[s].close_calls;
        assert_eq!(calls, 1, "stream {s}: its close function ran {calls} times");
    }

    /// Completes what is pending, ends what is not ended, closes every stream and waits for
    /// every callback.
    fn finish(&mut self) {
        self.model.lock().plans.clear();
        loop {
            let token = {
                let m = self.model.lock();
                match m.pending.first() {
                    Some(r) => r.token,
                    None => break,
                }
            };
            do_complete(&self.model, token, APM_OK, Bytes::All);
        }
        let ends: Vec<(usize, usize)> = {
            let m = self.model.lock();
            (0..m.ops.len())
                .filter(|&i| {
                    m.ops[i].result != 0
                        && matches!(m.ops[i].state, State::Completed(_))
                        && m.ops[i].callback != Callback::EndInside
                })
                .map(|i| (i, m.ops[i].result))
                .collect()
        };
        for (op, result) in ends {
            end_op(&self.model, op, result);
        }
        let streams = self.model.lock().streams.len();
        for s in 0..streams {
            let h = self.stream_handle(s);
            self.model.lock().streams[s].closed = true;
            // SAFETY: a stream handle.
            expect_status("apm_stream_close", unsafe { apm_stream_close(h) }, &[APM_OK]);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let m = self.model.lock();
            let missing: Vec<usize> = (0..m.ops.len())
                .filter(|&i| {
                    let o = &m.ops[i];
                    o.result != 0 && o.callback != Callback::None && o.callbacks != 1
                })
                .collect();
            if missing.is_empty() || Instant::now() > deadline {
                let states: Vec<String> = missing
                    .iter()
                    .map(|&i| format!("op {i}: {} callbacks, {:?}", m.ops[i].callbacks, m.ops[i].state))
                    .collect();
                assert!(missing.is_empty(), "callbacks not run exactly once: {states:?}");
                let not_ended: Vec<usize> =
                    (0..m.ops.len()).filter(|&i| m.ops[i].result != 0 && m.ops[i].state != State::Ended).collect();
                assert!(not_ended.is_empty(), "ops never ended: {not_ended:?}");
                for (i, s) in m.streams.iter().enumerate() {
                    assert_eq!(s.close_calls, 1, "stream {i}: close function calls");
                }
                return;
            }
            drop(m);
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let mut run = Run { model: Box::default() };
    run.add_stream();
    let mut steps = 0;
    while !input.is_empty() && steps < 512 {
        steps += 1;
        match input.u8() % 12 {
            0 | 1 => run.begin(&mut input, false, false),
            2 | 3 => run.begin(&mut input, true, false),
            4 | 5 => run.complete(&mut input),
            6 => run.end(&mut input),
            7 => run.close(&mut input),
            8 => {
                let p = plan(&mut input);
                let mut m = run.model.lock();
                if m.plans.len() < MAX_PLANS {
                    m.plans.push_back(p);
                }
            }
            9 => run.query(&mut input),
            10 => {
                let write = input.u8() & 1 == 1;
                run.begin(&mut input, write, true);
            }
            _ => run.add_stream(),
        }
        {
            let mut m = run.model.lock();
            let late: Vec<usize> = (0..m.ops.len()).filter(|&o| m.ops[o].rest_due).collect();
            for op in late {
                m.ops[op].rest_due = false;
                m.error(format!("op {op}: the rest of a partial write was never asked for"));
            }
        }
        let errors = std::mem::take(&mut run.model.lock().errors);
        assert!(errors.is_empty(), "after step {steps}:\n  {}", errors.join("\n  "));
    }
    run.finish();
    let errors = std::mem::take(&mut run.model.lock().errors);
    assert!(errors.is_empty(), "at the end:\n  {}", errors.join("\n  "));
}
