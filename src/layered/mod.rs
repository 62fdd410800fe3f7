//! The driver every stream over a stream shares (.NET's AuthenticatedStream family: SslStream
//! now, NegotiateStream next): a `Channel<P>` moves the bytes of a sans-I/O `Protocol` over an
//! inner stream, which may be a NetworkStream, a stream defined in C or another layered stream.
//!
//! The split is where the difficulty is. The protocol turns bytes into bytes (OpenSSL on memory
//! buffers; [MS-NNS] frames over a GSSAPI or NTLM context) and knows nothing of streams,
//! completions or threads. The channel owns everything that touches the inner stream and the
//! caller's operations, which is the part that is easy to get subtly wrong and must not be
//! written once per protocol:
//!
//! * One lock (`state`) guards the protocol and the outbound queue. Every byte the protocol
//!   produces, whether a write's data, a handshake flight or a reply the reader triggers (a TLS
//!   key update, an alert), is queued under that same lock, so the queue order is the protocol's
//!   order. One segment at a time goes to the inner stream. The lock is never held while the
//!   inner stream is called, nor while a completion or a user callback runs.
//! * One read and one write may be pending at once; a second one fails from Begin with
//!   NotSupported (the .NET Framework contract, DESIGN.md section 1).
//! * Completions that happen inside the inner stream's Begin are handled in a loop by the caller
//!   (`inline_or_later`), so long runs of synchronous completions never deepen the stack.
//! * A failed handshake poisons the stream: every later call reports the stored error (a
//!   protocol may allow a new handshake after it: `Protocol::can_retry`).
//! * A handshake step may wait for work that must run outside the lock: a user callback on the
//!   current thread (`Step::Suspend`), or a call that blocks (GSSAPI) on the blocking pool
//!   (`Step::NeedOffload`).
//! * Dispose sends nothing (as .NET): pending operations complete with ObjectDisposed and the
//!   inner stream is closed unless left open. `shutdown` sends the protocol's closing output
//!   (TLS close_notify) after any pending write.
//!
//! This module holds the `Protocol` trait, the shared state (`State` under the lock, the pending
//! operations), construction, properties and the `Stream` impl. The rest is in submodules, as
//! further `impl Channel` blocks:
//!
//! * `transport`: the inner stream: the outbound queue and its pump, and reading input for the
//!   operation that waits for it.
//! * `handshake`: the handshake loop, its suspended and offloaded steps, poison-on-failure.
//! * `transfer`: Read and Write of application data.
//! * `close`: shutdown (the protocol's closing output) and Dispose.
//! * `tests`: the driver against a toy protocol over in-memory streams.

mod close;
mod handshake;
mod transfer;
mod transport;

#[cfg(test)]
pub(crate) mod tests;

use crate::error::{Error, Result};
use crate::op::{Completion, Value};
use crate::stream::{ConstBuf, MutBuf, Stream};
use crate::channel_binding::TransportContext;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::{Arc, Weak};

/// The most input read from the inner stream at a time.
const READ_BUF: usize = 64 * 1024;
/// The first read's size: a handshake's flights fit, and a connection that only shakes hands
/// zeroes 16 KiB per input buffer rather than 64. A read that fills its buffer doubles the
/// size, up to READ_BUF, so bulk input reaches it by its third read.
const FIRST_READ_BUF: usize = 16 * 1024;
/// Output buffers kept for reuse.
const SPARE_OUTPUT: usize = 4;

/// The .NET texts of AuthenticatedStream, the base class every layered stream shares.
pub mod msg {
    pub(crate) const NOT_AUTHENTICATED: &str =
        "This operation is only allowed using a successfully authenticated context.";
    pub(crate) const REAUTH: &str =
        "This operation is not allowed on a security context that has already been authenticated.";
    pub(crate) const READ_WRITE_INNER: &str = "The stream has to be read/write.";
    /// SslStream's text: it is the one layered stream with a shutdown so far.
    pub(crate) const ALREADY_SHUTDOWN: &str = "Write operations are not allowed after the channel was shutdown.";
    /// net_auth_SSPI.
    pub(crate) const AUTH_FAILED: &str = "Authentication failed, see inner exception.";
    pub(crate) const AUTH_EOF: &str = "Authentication failed because the remote party has closed the transport stream.";
    pub(crate) const IO_EOF: &str = " Received an unexpected EOF or 0 bytes from the transport stream.";
    pub(crate) const ENCRYPT: &str = "The encryption operation failed, see inner exception.";
    pub(crate) const DECRYPT: &str = "The decryption operation failed, see inner exception.";
    pub(crate) const WRITE_FAILED: &str = "The write operation failed, see inner exception.";
    pub(crate) const READ_FAILED: &str = "The read operation failed, see inner exception.";
    /// What a blocking step reports when it panicked (the handshake fails with it).
    pub(crate) const OFFLOAD_PANICKED: &str =
        "An internal error occurred in apmnet: a blocking step of the handshake panicked.";

    /// net_io_invalidnestedcall as .NET Framework words it (leading space included).
    pub fn nested(method: &str, what: &str) -> String {
        format!(" The {method} method cannot be called when another {what} operation is pending.")
    }
}

/// The sans-I/O half of a layered stream. Every method runs under the channel's lock, so none
/// may call the inner stream, a completion or a user callback; work that must (a validation
/// callback, a GSSAPI call) is handed out as a `Step` and its result comes back to `resume`.
///
/// Output accumulates in the protocol from any method (a handshake flight, sealed data, a
/// reply written while opening, an alert) and the channel takes it with `take_output` right
/// after, under the same lock: that is what keeps the wire order the protocol's order.
pub trait Protocol: Send + 'static {
    /// The .NET class name an ObjectDisposedException names.
    const CLASS_NAME: &'static str;
    /// Plaintext sealed at a time; each chunk's output is one write of the inner stream.
    const CHUNK: usize;
    /// What a suspended or offloaded step hands back to `resume`.
    type Resume: Send + 'static;
    /// The state checks of a transfer come after the buffer's (NegotiateStream's order) rather
    /// than before (SslStream's): `Stream::check` then leaves them to Begin.
    const STATE_AFTER_BUFFER: bool = false;

    /// Takes the first `n` bytes of `buf`, read from the inner stream; returns a buffer for the
    /// next read (the same one when its bytes were consumed, so steady reading copies nothing).
    fn feed(&mut self, buf: Vec<u8>, n: usize) -> Vec<u8>;
    /// The output produced so far, replacing it with `spare` (an empty buffer for reuse).
    fn take_output(&mut self, spare: Vec<u8>) -> Vec<u8>;

    /// Advances the handshake with the input it holds. `eof`: the inner stream has ended (the
    /// protocol says whether that is an error here and which). An error fails the handshake;
    /// the output produced with it (an alert) still goes to the peer.
    fn handshake(&mut self, eof: bool) -> Result<Step<Self::Resume>>;
    /// Takes the result of a suspended or offloaded step; the handshake then steps again. An
    /// error fails the handshake.
    fn resume(&mut self, answer: Self::Resume) -> Result<()>;
    /// The handshake is complete and its last output written: record what the stream reports
    /// from now on.
    fn handshake_done(&mut self) -> Result<()>;

    /// Seals plaintext (at most `CHUNK` bytes) into output. `direct` is the inner stream when
    /// nothing is queued for it: output may then go straight to it (`Stream::try_write_now`),
    /// and only what it did not take becomes output.
    fn seal(&mut self, plain: &[u8], direct: Option<&Arc<dyn Stream>>) -> Result<()>;
    /// Opens input into plaintext.
    fn open(&mut self, plain: &mut [u8]) -> Result<Opened>;
    /// The inner stream ended where `open` wanted more input: Ok for a clean end (between
    /// records), or the error of a truncated stream.
    fn input_ended(&self) -> Result<()>;
    /// Produces the output that ends the sending side (TLS close_notify).
    fn shutdown(&mut self);
    /// The stream is disposed: drop the engine. Afterwards the channel calls only
    /// `take_output`, which then has nothing to give.
    fn dispose(&mut self);

    /// How a failure of the inner stream is reported (SslStream: an IOException).
    fn inner_failed(e: Error, writing: bool) -> Error;
    /// The channel bindings of this layer, if it is a secure channel of its own; None passes
    /// the inner stream's on.
    fn transport_context(&self) -> Option<Arc<TransportContext>> {
        None
    }
    /// After a failed handshake: whether a new one may start (NegotiateStream, once it told
    /// the peer with an error frame); otherwise the failure is reported for good.
    fn can_retry(&self) -> bool {
        false
    }
}

/// Work a handshake step hands out to run outside the lock.
pub type Work<R> = Box<dyn FnOnce() -> R + Send>;

/// What the handshake needs next, once the output of the step that returned it is written.
pub enum Step<R> {
    Done,
    NeedInput,
    /// Run this on the current thread (a user callback: SslStream's certificate validation
    /// and selection).
    Suspend(Work<R>),
    /// Run this where it may block (a GSSAPI call): on the blocking pool for `Mode::Async`, on
    /// the caller's own thread for `Mode::Sync` (it is blocked in the call anyway, as .NET's
    /// synchronous AuthenticateAsClient runs GSSAPI on its own thread).
    NeedOffload(Work<R>),
}

/// What `Protocol::open` produced.
pub enum Opened {
    /// Plaintext bytes written to the start of the buffer (more than 0: "nothing yet" is
    /// NeedInput).
    Data(usize),
    /// More input is needed.
    NeedInput,
    /// The peer ended its side inside the protocol (TLS close_notify): every read returns 0.
    End,
}

/// How an operation drives the inner stream: Begin/End, or the synchronous Read/Write (so that
/// a synchronous call never waits for an engine thread).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    Async,
    Sync,
}

type Then = Box<dyn FnOnce(Result<()>) + Send>;

/// Output waiting for the inner stream, and what to do once it is written.
struct Segment {
    data: Vec<u8>,
    then: Option<Then>,
}

struct ReadOp {
    buf: MutBuf,
    done: Completion,
    mode: Mode,
}

struct WriteOp {
    buf: ConstBuf,
    pos: usize,
    done: Completion,
    mode: Mode,
}

struct HsOp {
    done: Completion,
    mode: Mode,
}

/// The operation parked outside the lock: waiting for input from the inner stream, or (a
/// handshake) for offloaded work. Close completes it at once.
enum Waiter {
    Read(ReadOp),
    Handshake(HsOp),
}

enum Phase {
    Created,
    Authenticating,
    Authenticated,
    Failed(Error),
}

struct State<P> {
    protocol: P,
    phase: Phase,
    closed: bool,
    reading: bool,
    writing: bool,
    shutdown: bool,
    inner_eof: bool,
    /// A read of the inner stream is in flight: its input goes to whoever waits when it comes
    /// (a read cancelled meanwhile leaves it to the next one), and no second one starts.
    inner_reading: bool,
    input_error: Option<Error>,
    outq: VecDeque<Segment>,
    pumping: bool,
    write_error: Option<Error>,
    /// The continuation of the segment the inner stream is writing.
    inflight: Option<Then>,
    waiter: Option<Waiter>,
    pending_shutdown: Option<(Completion, Mode)>,
    spare_input: Option<Vec<u8>>,
    /// How much the next inner read asks for (FIRST_READ_BUF to READ_BUF).
    input_size: usize,
    spare_output: Vec<Vec<u8>>,
}

impl<P: Protocol> State<P> {
    /// .NET's ThrowIfExceptionalOrNotAuthenticated.
    fn usable(&self) -> Result<()> {
        if self.closed {
            return Err(Error::disposed(P::CLASS_NAME));
        }
        match &self.phase {
            Phase::Authenticated => Ok(()),
            Phase::Failed(e) => Err(e.clone()),
            _ => Err(Error::invalid_operation(msg::NOT_AUTHENTICATED)),
        }
    }

    fn take_output(&mut self) -> Vec<u8> {
        let spare = self.spare_output.pop().unwrap_or_default();
        self.protocol.take_output(spare)
    }

    /// Queues a segment; true when the caller must start the pump.
    fn push(&mut self, data: Vec<u8>, then: Option<Then>) -> bool {
        self.outq.push_back(Segment { data, then });
        !std::mem::replace(&mut self.pumping, true)
    }
}

pub struct Channel<P: Protocol> {
    me: Weak<Channel<P>>,
    inner: Arc<dyn Stream>,
    leave_inner_open: bool,
    state: Mutex<State<P>>,
}

impl<P: Protocol> Channel<P> {
    /// A layered stream over `inner` (AuthenticatedStream's constructor).
    pub fn over(inner: Arc<dyn Stream>, leave_inner_open: bool, protocol: P) -> Result<Arc<Channel<P>>> {
        if !inner.can_read() || !inner.can_write() {
            return Err(Error::argument(msg::READ_WRITE_INNER));
        }
        let state = State {
            protocol,
            phase: Phase::Created,
            closed: false,
            reading: false,
            writing: false,
            shutdown: false,
            inner_eof: false,
            inner_reading: false,
            input_error: None,
            outq: VecDeque::new(),
            pumping: false,
            write_error: None,
            inflight: None,
            waiter: None,
            pending_shutdown: None,
            spare_input: None,
            input_size: FIRST_READ_BUF,
            spare_output: Vec::new(),
        };
        Ok(Arc::new_cyclic(|me| Channel { me: me.clone(), inner, leave_inner_open, state: Mutex::new(state) }))
    }

    fn arc(&self) -> Arc<Channel<P>> {
        self.me.upgrade().expect("a layered stream in use is alive")
    }

    pub fn leaves_inner_open(&self) -> bool {
        self.leave_inner_open
    }

    pub fn is_authenticated(&self) -> bool {
        let c = self.state.lock();
        !c.closed && matches!(c.phase, Phase::Authenticated)
    }

    /// Changes settings of the protocol; only before authentication starts.
    pub fn configure(&self, f: impl FnOnce(&mut P)) -> Result<()> {
        let mut c = self.state.lock();
        if c.closed {
            return Err(Error::disposed(P::CLASS_NAME));
        }
        match &c.phase {
            Phase::Created => {}
            Phase::Failed(e) => return Err(e.clone()),
            _ => return Err(Error::invalid_operation(msg::REAUTH)),
        }
        f(&mut c.protocol);
        Ok(())
    }

    /// Reads the protocol, whatever the state of the stream.
    pub fn protocol<R>(&self, f: impl FnOnce(&P) -> R) -> R {
        f(&self.state.lock().protocol)
    }

    /// Reads the protocol of a stream not disposed.
    pub fn protocol_if_open<R>(&self, f: impl FnOnce(&P) -> R) -> Result<R> {
        let c = self.state.lock();
        if c.closed {
            return Err(Error::disposed(P::CLASS_NAME));
        }
        Ok(f(&c.protocol))
    }

    /// Reads the protocol of an authenticated stream (else the error every transfer reports).
    pub fn protocol_if_authenticated<R>(&self, f: impl FnOnce(&P) -> R) -> Result<R> {
        let c = self.state.lock();
        c.usable()?;
        Ok(f(&c.protocol))
    }
}

impl<P: Protocol> Stream for Channel<P> {
    fn can_read(&self) -> bool {
        self.is_authenticated() && self.inner.can_read()
    }

    fn can_write(&self) -> bool {
        // Read apart: a guard in the `&&` chain would be held while the inner stream is asked.
        let shut = self.state.lock().shutdown;
        self.is_authenticated() && !shut && self.inner.can_write()
    }

    fn check(&self, _writing: bool) -> Result<()> {
        if P::STATE_AFTER_BUFFER {
            return Ok(());
        }
        self.state.lock().usable()
    }

    fn begin_write(&self, buf: ConstBuf, done: Completion) -> Result<()> {
        self.arc().start_write(buf, done, Mode::Async)
    }

    fn begin_read(&self, buf: MutBuf, done: Completion) -> Result<()> {
        self.arc().start_read(buf, done, Mode::Async)
    }

    fn write(&self, buf: ConstBuf) -> Result<()> {
        let me = self.arc();
        crate::op::wait_for(|done| me.start_write(buf, done, Mode::Sync)).map(drop)
    }

    fn read(&self, buf: MutBuf) -> Result<usize> {
        let me = self.arc();
        crate::op::wait_for(|done| me.start_read(buf, done, Mode::Sync)).map(|v: Value| v.bytes())
    }

    fn close(&self) -> Result<()> {
        self.do_close();
        Ok(())
    }

    /// Cancels the read waiting for input: it completes with an IOException over
    /// OperationAborted and has consumed no byte (input that arrives later stays for the next
    /// read). Writes and handshakes are not cancelled: part of them may be on the wire.
    fn cancel(&self, tag: usize) -> bool {
        let op = {
            let mut c = self.state.lock();
            match c.waiter.take() {
                Some(Waiter::Read(op)) if tag != 0 && op.done.tag() == tag => {
                    c.reading = false;
                    op
                }
                other => {
                    c.waiter = other;
                    return false;
                }
            }
        };
        op.done.complete(Err(Error::aborted().into_io(false)));
        true
    }

    fn transport_context(&self) -> Option<Arc<TransportContext>> {
        let own = {
            let c = self.state.lock();
            if c.closed {
                return None;
            }
            c.protocol.transport_context()
        };
        own.or_else(|| self.inner.transport_context())
    }
}
