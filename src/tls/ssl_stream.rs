//! SslStream over any Stream (reference/dotnet-semantics.md section 4).
//!
//! The TLS engine is sans-IO: OpenSSL reads and writes memory buffers (`engine::MemIo`) and the
//! stream moves ciphertext with the inner stream's own Begin/End (or its synchronous Read/Write
//! for the synchronous calls), so it sits on a NetworkStream, a stream defined in C or another
//! SslStream alike.
//!
//! * One lock (`core`) guards the SSL object and the outbound queue. Every record OpenSSL
//!   produces, whether a write's data, a handshake flight or a reply the reader triggers (TLS 1.3
//!   key update, alerts), is queued under that same lock, so the queue order is OpenSSL's order.
//!   One segment at a time goes to the inner stream. The lock is never held while the inner
//!   stream is called, nor while a completion or a user callback runs.
//! * One read and one write may be pending at once; a second one fails from Begin with
//!   NotSupported (the .NET Framework contract, DESIGN.md section 1).
//! * Completions that happen inside the inner stream's Begin are handled in a loop by the caller
//!   (`inline_or_later`), so long runs of synchronous completions never deepen the stack.
//! * A failed handshake poisons the stream: every later call reports the stored error.
//! * Dispose sends no close_notify (as .NET); `shutdown` does.
//!
//! This module holds the shared state (`Core` under the lock, `Config`, `Session`, the pending
//! operations) with construction, settings, properties and the `Stream` impl. The rest is in
//! submodules, as further `impl SslStream` blocks:
//!
//! * `transport`: the inner stream: the outbound queue and its pump, and reading ciphertext for
//!   the operation that waits for it.
//! * `handshake`: AuthenticateAsClient/AsServer, the validation and selection callbacks, and the
//!   `Session` of an authenticated stream.
//! * `transfer`: Read and Write of application data.
//! * `shutdown`: close_notify (ShutdownAsync) and Dispose.
//! * `errors`: how failures of the inner stream and of OpenSSL are reported (free functions).

mod errors;
mod handshake;
mod shutdown;
mod transfer;
mod transport;

use super::certificate::Certificate;
use super::channel_binding::TransportContext;
use super::context::{SelectSlot, VerifyState};
use super::engine::{Framer, MemIo};
use super::{msg, SelectionCallback, ValidationCallback};
use crate::op::{Completion, Value};
use crate::error::{Error, Result};
use crate::stream::{ConstBuf, MutBuf, Stream};
use openssl::x509::X509;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::{Arc, Weak};

pub const CLASS_NAME: &str = "System.Net.Security.SslStream";

/// Plaintext encrypted per segment (several TLS records): one inner write each.
const WRITE_CHUNK: usize = 64 * 1024;
/// Ciphertext read from the inner stream at a time.
const READ_BUF: usize = 64 * 1024;
/// Output buffers kept for reuse.
const SPARE_OUTPUT: usize = 4;

/// How an operation drives the inner stream: Begin/End, or the synchronous Read/Write (so that
/// a synchronous call never waits for an engine thread).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    Async,
    Sync,
}

type Then = Box<dyn FnOnce(Result<()>) + Send>;

/// Ciphertext waiting for the inner stream, and what to do once it is written.
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

/// The operation waiting for ciphertext from the inner stream.
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

/// What the handshake needs next.
#[derive(Clone, Copy)]
enum HsStep {
    Done,
    NeedRead,
    NeedSelect,
}

/// The properties of an authenticated stream (they never change afterwards).
pub struct Session {
    pub is_server: bool,
    /// SslProtocols value of the negotiated protocol.
    pub protocol: i32,
    /// The cipher suite's IANA name ("TLS_AES_256_GCM_SHA384").
    pub cipher_name: String,
    /// The cipher suite's number (.NET's TlsCipherSuite).
    pub cipher_suite: i32,
    pub alpn: Vec<u8>,
    pub remote_certificate: Option<Arc<Certificate>>,
    pub local_certificate: Option<Arc<Certificate>>,
    pub mutually_authenticated: bool,
    pub target_host: String,
    pub transport: Arc<TransportContext>,
}

#[derive(Default)]
struct Config {
    validation: Option<ValidationCallback>,
    selection: Option<SelectionCallback>,
    trusted: Option<Vec<X509>>,
    alpn: Vec<Vec<u8>>,
}

struct Core {
    phase: Phase,
    is_server: bool,
    closed: bool,
    tls: Option<openssl::ssl::SslStream<MemIo>>,
    reading: bool,
    writing: bool,
    shutdown: bool,
    inner_eof: bool,
    input_error: Option<Error>,
    framer: Framer,
    outq: VecDeque<Segment>,
    pumping: bool,
    write_error: Option<Error>,
    /// The continuation of the segment the inner stream is writing.
    inflight: Option<Then>,
    waiter: Option<Waiter>,
    pending_shutdown: Option<(Completion, Mode)>,
    validated: bool,
    /// A server's selection callback found no certificate: the handshake fails (OpenSSL sends
    /// the alert) with .NET's message.
    no_server_certificate: bool,
    client_certificate_required: bool,
    target_host: String,
    local_certificate: Option<Arc<Certificate>>,
    session: Option<Arc<Session>>,
    spare_input: Option<Vec<u8>>,
    spare_output: Vec<Vec<u8>>,
}

impl Core {
    /// .NET's ThrowIfExceptionalOrNotAuthenticated.
    fn usable(&self) -> Result<()> {
        if self.closed {
            return Err(Error::disposed(CLASS_NAME));
        }
        match &self.phase {
            Phase::Authenticated => Ok(()),
            Phase::Failed(e) => Err(e.clone()),
            _ => Err(Error::invalid_operation(msg::NOT_AUTHENTICATED)),
        }
    }

    fn take_output(&mut self) -> Vec<u8> {
        let spare = self.spare_output.pop().unwrap_or_default();
        match self.tls.as_mut() {
            Some(t) => t.get_mut().take_output(spare),
            None => Vec::new(),
        }
    }

    /// Queues a segment; true when the caller must start the pump.
    fn push(&mut self, data: Vec<u8>, then: Option<Then>) -> bool {
        self.outq.push_back(Segment { data, then });
        !std::mem::replace(&mut self.pumping, true)
    }
}

pub struct SslStream {
    me: Weak<SslStream>,
    inner: Arc<dyn Stream>,
    leave_inner_open: bool,
    core: Mutex<Core>,
    config: Mutex<Config>,
    verify: Arc<VerifyState>,
    select: Arc<SelectSlot>,
}

impl SslStream {
    /// `new SslStream(inner, leaveInnerStreamOpen)`.
    pub fn new(inner: Arc<dyn Stream>, leave_inner_open: bool) -> Result<Arc<SslStream>> {
        if !inner.can_read() || !inner.can_write() {
            return Err(Error::argument(msg::READ_WRITE_INNER));
        }
        let core = Core {
            phase: Phase::Created,
            is_server: false,
            closed: false,
            tls: None,
            reading: false,
            writing: false,
            shutdown: false,
            inner_eof: false,
            input_error: None,
            framer: Framer::default(),
            outq: VecDeque::new(),
            pumping: false,
            write_error: None,
            inflight: None,
            waiter: None,
            pending_shutdown: None,
            validated: false,
            no_server_certificate: false,
            client_certificate_required: false,
            target_host: String::new(),
            local_certificate: None,
            session: None,
            spare_input: None,
            spare_output: Vec::new(),
        };
        let s = Arc::new_cyclic(|me| SslStream {
            me: me.clone(),
            inner,
            leave_inner_open,
            core: Mutex::new(core),
            config: Mutex::new(Config::default()),
            verify: Arc::new(VerifyState::default()),
            select: Arc::new(SelectSlot::new()),
        });
        Ok(s)
    }

    fn arc(&self) -> Arc<SslStream> {
        self.me.upgrade().expect("an SslStream in use is alive")
    }

    pub fn leaves_inner_open(&self) -> bool {
        self.leave_inner_open
    }

    /// Settings may change only before authentication starts.
    fn configure(&self, f: impl FnOnce(&mut Config)) -> Result<()> {
        {
            let c = self.core.lock();
            if c.closed {
                return Err(Error::disposed(CLASS_NAME));
            }
            match &c.phase {
                Phase::Created => {}
                Phase::Failed(e) => return Err(e.clone()),
                _ => return Err(Error::invalid_operation(msg::REAUTH)),
            }
        }
        f(&mut self.config.lock());
        Ok(())
    }

    pub fn set_validation_callback(&self, cb: Option<ValidationCallback>) -> Result<()> {
        self.configure(|c| c.validation = cb)
    }

    pub fn set_selection_callback(&self, cb: Option<SelectionCallback>) -> Result<()> {
        self.configure(|c| c.selection = cb)
    }

    /// Trust exactly these CAs instead of the system store (None: the system store again).
    pub fn set_trusted_cas(&self, cas: Option<Vec<X509>>) -> Result<()> {
        self.configure(|c| c.trusted = cas)
    }

    pub fn set_application_protocols(&self, protocols: Vec<Vec<u8>>) -> Result<()> {
        if protocols.iter().any(|p| p.is_empty() || p.len() > 255) {
            return Err(Error::argument("An application protocol name must be 1 to 255 bytes long."));
        }
        self.configure(|c| c.alpn = protocols)
    }

    // ------------------------------------------------------------------------------------
    // Properties

    pub fn is_authenticated(&self) -> bool {
        let c = self.core.lock();
        !c.closed && matches!(c.phase, Phase::Authenticated)
    }

    pub fn is_server(&self) -> bool {
        self.core.lock().is_server
    }

    /// The properties of the authenticated session; before authentication: NotAuthenticated.
    pub fn session(&self) -> Result<Arc<Session>> {
        let c = self.core.lock();
        c.usable()?;
        c.session.clone().ok_or_else(|| Error::invalid_operation(msg::NOT_AUTHENTICATED))
    }

    /// The session, or None before authentication (for properties .NET reports as null).
    pub fn session_if_any(&self) -> Result<Option<Arc<Session>>> {
        let c = self.core.lock();
        if c.closed {
            return Err(Error::disposed(CLASS_NAME));
        }
        Ok(c.session.clone())
    }

    /// SslStream.TransportContext: the bindings, empty before authentication.
    pub fn transport_context(&self) -> Result<Arc<TransportContext>> {
        Ok(match self.session_if_any()? {
            Some(s) => s.transport.clone(),
            None => Arc::new(TransportContext::EMPTY),
        })
    }
}

impl Stream for SslStream {
    fn can_read(&self) -> bool {
        self.is_authenticated() && self.inner.can_read()
    }

    fn can_write(&self) -> bool {
        self.is_authenticated() && !self.core.lock().shutdown && self.inner.can_write()
    }

    fn check(&self, _writing: bool) -> Result<()> {
        self.core.lock().usable()
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
        match crate::op::wait_for(|done| me.start_read(buf, done, Mode::Sync))? {
            Value::Bytes(n) => Ok(n),
            _ => Ok(0),
        }
    }

    fn close(&self) -> Result<()> {
        self.do_close();
        Ok(())
    }

    fn transport_context(&self) -> Option<Arc<TransportContext>> {
        SslStream::transport_context(self).ok()
    }
}
