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

use super::certificate::Certificate;
use super::channel_binding::{self, TransportContext};
use super::context::{self, AuthOptions, Hooks, SelectSlot, SelectState, VerifyState};
use super::engine::{Framer, MemIo};
use super::{
    msg, openssl_reason, ssl_policy_errors, ssl_protocols, SelectionArgs, SelectionCallback, ValidationArgs,
    ValidationCallback,
};
use crate::async_result::{Completion, Outcome, Value};
use crate::error::{code, Error, Result};
use crate::handle::Kind;
use crate::stream::{ConstBuf, MutBuf, Stream};
use openssl::ssl::{ErrorCode, NameType, SslVersion};
use openssl::x509::X509;
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, LazyLock, Weak};

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
    on_close: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

/// SslStreams by address, so that a `dyn Stream` from the handle table can be recognised.
static REGISTRY: LazyLock<Mutex<HashMap<usize, Weak<SslStream>>>> = LazyLock::new(Default::default);

fn key_of<T: ?Sized>(p: *const T) -> usize {
    p as *const () as usize
}

/// Runs `start` with a continuation. When the continuation runs before `start` returns, its
/// value is returned and the caller goes on in its own loop; otherwise `later` gets the value
/// when it comes. `start` returns Err only when it started nothing.
fn inline_or_later<T: Send + 'static>(
    start: impl FnOnce(Box<dyn FnOnce(T) + Send>) -> std::result::Result<(), T>,
    later: impl FnOnce(T) + Send + 'static,
) -> Option<T> {
    enum Slot<T> {
        Waiting,
        Inline(T),
        Returned,
    }
    let slot = Arc::new(Mutex::new(Slot::Waiting));
    let s = slot.clone();
    let k = Box::new(move |v: T| {
        let mut g = s.lock();
        if matches!(*g, Slot::Waiting) {
            *g = Slot::Inline(v);
        } else {
            drop(g);
            later(v);
        }
    });
    if let Err(v) = start(k) {
        return Some(v);
    }
    let mut g = slot.lock();
    match std::mem::replace(&mut *g, Slot::Returned) {
        Slot::Inline(v) => Some(v),
        _ => None,
    }
}

/// An inner stream's failure, as SslStream reports it (an IOException).
fn io_failure(e: Error, writing: bool) -> Error {
    if e.status == code::IO || e.status == code::OBJECT_DISPOSED {
        return e;
    }
    let message = if writing { msg::WRITE_FAILED } else { msg::READ_FAILED };
    Error { status: code::IO, message: message.to_string(), inner: Some(e.message.clone()), ..e }
}

fn ssl_reason(e: &openssl::ssl::Error) -> String {
    match e.ssl_error() {
        Some(stack) => openssl_reason(stack, &e.to_string()),
        None => e.to_string(),
    }
}

/// "sslv3 alert handshake failure" -> "HandshakeFailure" (.NET's TlsAlertMessage name).
fn received_alert(reason: &str) -> Option<String> {
    let at = reason.find(" alert ")?;
    let words = reason[at + 7..].split(|c: char| c == ';' || c == ':').next()?.trim();
    Some(
        words
            .split_whitespace()
            .map(|w| {
                let mut c = w.chars();
                c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default()
            })
            .collect(),
    )
}

fn auth_error(e: &openssl::ssl::Error) -> Error {
    let reason = ssl_reason(e);
    let message = match received_alert(&reason) {
        Some(alert) => format!("Authentication failed because the remote party sent a TLS alert: '{alert}'."),
        None => msg::AUTH_FAILED.to_string(),
    };
    Error { inner: Some(reason), ..Error::new(code::AUTHENTICATION, message) }
}

fn protocol_value(v: Option<SslVersion>) -> i32 {
    match v {
        Some(SslVersion::TLS1_3) => ssl_protocols::TLS13,
        Some(SslVersion::TLS1_2) => ssl_protocols::TLS12,
        Some(SslVersion::TLS1_1) => ssl_protocols::TLS11,
        Some(SslVersion::TLS1) => ssl_protocols::TLS,
        Some(SslVersion::SSL3) => ssl_protocols::SSL3,
        _ => ssl_protocols::NONE,
    }
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
            on_close: Mutex::new(None),
        });
        REGISTRY.lock().insert(key_of(Arc::as_ptr(&s)), Arc::downgrade(&s));
        Ok(s)
    }

    /// The SslStream behind a stream of the handle table, if it is one.
    pub fn downcast(s: &Arc<dyn Stream>) -> Option<Arc<SslStream>> {
        if s.kind() != Kind::SslStream {
            return None;
        }
        REGISTRY.lock().get(&key_of(Arc::as_ptr(s))).and_then(Weak::upgrade)
    }

    fn arc(&self) -> Arc<SslStream> {
        self.me.upgrade().expect("an SslStream in use is alive")
    }

    /// Runs once when the stream is closed, after the inner stream was (the C layer releases the
    /// inner handle it owns here).
    pub fn set_on_close(&self, f: Box<dyn FnOnce() + Send>) {
        *self.on_close.lock() = Some(f);
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

    // ------------------------------------------------------------------------------------
    // Inner stream

    fn inner_write(&self, mode: Mode, buf: ConstBuf, k: Box<dyn FnOnce(Result<()>) + Send>) -> Result<()> {
        match mode {
            Mode::Sync => {
                let r = self.inner.write(buf);
                k(r);
                Ok(())
            }
            Mode::Async => self.inner.begin_write(buf, Completion::new(move |o: Outcome| k(o.map(drop)))),
        }
    }

    fn inner_read(&self, mode: Mode, buf: MutBuf, k: Box<dyn FnOnce(Result<usize>) + Send>) -> Result<()> {
        match mode {
            Mode::Sync => {
                let r = self.inner.read(buf);
                k(r);
                Ok(())
            }
            Mode::Async => self.inner.begin_read(
                buf,
                Completion::new(move |o: Outcome| {
                    k(o.map(|v| match v {
                        Value::Bytes(n) => n,
                        _ => 0,
                    }))
                }),
            ),
        }
    }

    // ------------------------------------------------------------------------------------
    // The outbound queue

    /// Writes queued segments one at a time until the queue is empty.
    fn pump(self: &Arc<Self>, mode: Mode) {
        loop {
            let data = {
                let mut c = self.core.lock();
                match c.outq.pop_front() {
                    None => {
                        c.pumping = false;
                        return;
                    }
                    Some(seg) => {
                        c.inflight = seg.then;
                        seg.data
                    }
                }
            };
            if data.is_empty() {
                self.segment_done(data, Ok(()));
                continue;
            }
            let buf = ConstBuf { ptr: data.as_ptr(), len: data.len() };
            let me = self.clone();
            let written = inline_or_later(
                // The segment's buffer travels with the continuation: it lives until written.
                |k| self.inner_write(mode, buf, Box::new(move |r| k((data, r)))).map_err(|e| (Vec::new(), Err(e))),
                move |(data, r): (Vec<u8>, Result<()>)| {
                    me.segment_done(data, r);
                    me.pump(Mode::Async);
                },
            );
            match written {
                Some((data, r)) => self.segment_done(data, r),
                None => return,
            }
        }
    }

    fn segment_done(&self, data: Vec<u8>, r: Result<()>) {
        let r = r.map_err(|e| io_failure(e, true));
        let (then, failed) = {
            let mut c = self.core.lock();
            if data.capacity() > 0 && data.capacity() <= 4 * WRITE_CHUNK && c.spare_output.len() < SPARE_OUTPUT {
                let mut data = data;
                data.clear();
                c.spare_output.push(data);
            }
            let then = c.inflight.take();
            let mut failed = Vec::new();
            if let Err(e) = &r {
                if c.write_error.is_none() {
                    c.write_error = Some(e.clone());
                }
                failed = c.outq.drain(..).filter_map(|s| s.then).collect();
            }
            (then, failed)
        };
        if let Some(t) = then {
            t(r.clone());
        }
        if let Err(e) = r {
            for t in failed {
                t(Err(e.clone()));
            }
        }
    }

    /// Queues ciphertext that nobody waits for (alerts, post-handshake messages).
    fn send_detached(self: &Arc<Self>, data: Vec<u8>, mode: Mode) {
        let start = {
            let mut c = self.core.lock();
            if c.closed || c.write_error.is_some() {
                return;
            }
            c.push(data, None)
        };
        if start {
            self.pump(mode);
        }
    }

    // ------------------------------------------------------------------------------------
    // Inbound

    /// Reads ciphertext for `waiter`. Returns the waiter when the read completed inline (the
    /// caller loops); otherwise the completion resumes it later.
    fn fetch_input(self: &Arc<Self>, mode: Mode, waiter: Waiter) -> Option<Waiter> {
        let mut buf = {
            let mut c = self.core.lock();
            c.waiter = Some(waiter);
            c.spare_input.take().unwrap_or_default()
        };
        if buf.len() < READ_BUF {
            buf.resize(READ_BUF, 0);
        }
        let target = MutBuf { ptr: buf.as_mut_ptr(), len: buf.len() };
        let me = self.clone();
        let got = inline_or_later(
            |k| self.inner_read(mode, target, Box::new(move |r| k((buf, r)))).map_err(|e| (Vec::new(), Err(e))),
            move |(buf, r): (Vec<u8>, Result<usize>)| {
                me.on_input(buf, r);
                me.resume();
            },
        );
        let (buf, r) = got?;
        self.on_input(buf, r);
        self.core.lock().waiter.take()
    }

    fn on_input(&self, buf: Vec<u8>, r: Result<usize>) {
        let mut c = self.core.lock();
        if c.closed {
            return;
        }
        match r {
            Ok(0) => c.inner_eof = true,
            Ok(n) => {
                let n = n.min(buf.len());
                c.framer.feed(&buf[..n]);
                let spare = match c.tls.as_mut() {
                    Some(t) => t.get_mut().feed(buf, n),
                    None => buf,
                };
                c.spare_input = Some(spare);
            }
            Err(e) => c.input_error = Some(io_failure(e, false)),
        }
    }

    /// Continues the operation that waited for input.
    fn resume(self: &Arc<Self>) {
        let waiter = self.core.lock().waiter.take();
        match waiter {
            Some(Waiter::Read(op)) => self.read_loop(op),
            Some(Waiter::Handshake(op)) => self.hs_loop(op, None),
            None => {}
        }
    }

    // ------------------------------------------------------------------------------------
    // Authentication

    /// BeginAuthenticateAsClient / AsServer (Mode::Sync: the synchronous form).
    pub fn begin_authenticate(self: &Arc<Self>, opts: AuthOptions, done: Completion, mode: Mode) -> Result<()> {
        let config = {
            let cfg = self.config.lock();
            Hooks {
                verify: self.verify.clone(),
                select: self.select.clone(),
                selection_callback: cfg.selection.is_some(),
                trusted: cfg.trusted.clone(),
                alpn: cfg.alpn.clone(),
            }
        };
        {
            let mut c = self.core.lock();
            if c.closed {
                return Err(Error::disposed(CLASS_NAME));
            }
            match &c.phase {
                Phase::Failed(e) => return Err(e.clone()),
                Phase::Authenticated => return Err(Error::invalid_operation(msg::REAUTH)),
                Phase::Authenticating => {
                    let method = if mode == Mode::Sync { "Authenticate" } else { "BeginAuthenticate" };
                    return Err(Error::not_supported(msg::nested(method, "authenticate")));
                }
                Phase::Created => {}
            }
            context::protocol_range(opts.protocols)?;
            if opts.is_server {
                match &opts.certificate {
                    None if !config.selection_callback => return Err(Error::argument_null("serverCertificate")),
                    Some(cert) if !cert.has_private_key() => {
                        return Err(Error::new(code::AUTHENTICATION, msg::SERVER_CERT_KEY))
                    }
                    _ => {}
                }
            }
            let ssl = context::new_ssl(&opts, &config)?;
            let tls = openssl::ssl::SslStream::new(ssl, MemIo::default()).map_err(|e| Error {
                inner: Some(openssl_reason(&e, "SSL setup failed")),
                ..Error::new(code::AUTHENTICATION, msg::AUTH_FAILED)
            })?;
            c.tls = Some(tls);
            c.phase = Phase::Authenticating;
            c.is_server = opts.is_server;
            c.client_certificate_required = opts.client_certificate_required;
            c.target_host = opts.target_host.clone();
            c.local_certificate = if opts.is_server { opts.certificate.clone() } else { None };
        }
        self.hs_loop(HsOp { done, mode }, None);
        Ok(())
    }

    pub fn authenticate(self: &Arc<Self>, opts: AuthOptions) -> Result<()> {
        crate::async_result::wait_for(|done| self.begin_authenticate(opts, done, Mode::Sync)).map(drop)
    }

    fn hs_loop(self: &Arc<Self>, mut op: HsOp, mut pending: Option<HsStep>) {
        loop {
            match pending.take() {
                Some(HsStep::Done) => return self.finish_auth(op),
                Some(HsStep::NeedRead) => match self.fetch_input(op.mode, Waiter::Handshake(op)) {
                    Some(Waiter::Handshake(o)) => op = o,
                    _ => return,
                },
                Some(HsStep::NeedSelect) => {
                    if let Err(e) = self.run_selection() {
                        return self.fail_auth(op, e);
                    }
                }
                None => {}
            }
            let (result, out, validate) = {
                let mut c = self.core.lock();
                if c.closed {
                    drop(c);
                    return self.fail_auth(op, Error::disposed(CLASS_NAME));
                }
                if let Some(e) = c.input_error.take() {
                    drop(c);
                    return self.fail_auth(op, e);
                }
                let Some(tls) = c.tls.as_mut() else {
                    drop(c);
                    return self.fail_auth(op, Error::disposed(CLASS_NAME));
                };
                let r = tls.do_handshake();
                let peer_seen = tls.ssl().peer_certificate().is_some();
                let result = match r {
                    Ok(()) => Ok(HsStep::Done),
                    Err(e) if e.code() == ErrorCode::WANT_READ => {
                        if c.inner_eof {
                            let text = if c.framer.at_boundary() { msg::AUTH_EOF } else { msg::IO_EOF };
                            Err(Error::new(code::IO, text))
                        } else {
                            Ok(HsStep::NeedRead)
                        }
                    }
                    Err(e) if e.code() == ErrorCode::from_raw(openssl_sys::SSL_ERROR_WANT_X509_LOOKUP) => {
                        Ok(HsStep::NeedSelect)
                    }
                    Err(e) if c.no_server_certificate => Err(Error {
                        inner: Some(ssl_reason(&e)),
                        ..Error::new(code::AUTHENTICATION, msg::SERVER_CERT_KEY)
                    }),
                    Err(e) => Err(auth_error(&e)),
                };
                let validate = !c.validated && (peer_seen || matches!(result, Ok(HsStep::Done)));
                let out = c.take_output();
                (result, out, validate)
            };
            let step = match result {
                Ok(step) => step,
                Err(e) => {
                    // Whatever OpenSSL produced (its alert) still goes to the peer.
                    if !out.is_empty() {
                        self.send_detached(out, op.mode);
                    }
                    return self.fail_auth(op, e);
                }
            };
            if validate {
                if let Err(e) = self.validate_peer() {
                    return self.fail_auth(op, e);
                }
            }
            if !out.is_empty() {
                let me = self.clone();
                let mode = op.mode;
                let then: Then = Box::new(move |r| match r {
                    Ok(()) => me.hs_loop(op, Some(step)),
                    Err(e) => me.fail_auth(op, e),
                });
                let start = {
                    let mut c = self.core.lock();
                    if c.closed || c.write_error.is_some() {
                        let e = c.write_error.clone().unwrap_or_else(|| Error::disposed(CLASS_NAME));
                        drop(c);
                        return then(Err(e));
                    }
                    c.push(out, Some(then))
                };
                if start {
                    self.pump(mode);
                }
                return;
            }
            pending = Some(step);
        }
    }

    /// The policy and the RemoteCertificateValidationCallback, outside the lock.
    fn validate_peer(self: &Arc<Self>) -> Result<()> {
        let (leaf, chain, is_server, required) = {
            let mut c = self.core.lock();
            c.validated = true;
            let Some(tls) = c.tls.as_ref() else { return Err(Error::disposed(CLASS_NAME)) };
            let ssl = tls.ssl();
            let leaf = ssl.peer_certificate();
            let mut chain: Vec<X509> = match ssl.verified_chain() {
                Some(v) if v.len() > 0 => v.iter().map(|x| x.to_owned()).collect(),
                _ => ssl.peer_cert_chain().map(|s| s.iter().map(|x| x.to_owned()).collect()).unwrap_or_default(),
            };
            if let Some(l) = &leaf {
                let leaf_der = l.to_der().ok();
                if chain.first().map(|f| f.to_der().ok()) != Some(leaf_der) {
                    chain.insert(0, l.clone());
                }
            }
            (leaf, chain, c.is_server, c.client_certificate_required)
        };
        let mut errors = ssl_policy_errors::NONE;
        if leaf.is_none() {
            if !is_server || required {
                errors |= ssl_policy_errors::REMOTE_CERTIFICATE_NOT_AVAILABLE;
            }
        } else {
            errors |= self.verify.flags.load(Ordering::Acquire);
        }
        let leaf = leaf.map(|x| Arc::new(Certificate::public(x)));
        let chain: Vec<Arc<Certificate>> = chain.into_iter().map(|x| Arc::new(Certificate::public(x))).collect();
        let callback = self.config.lock().validation.clone();
        let accepted = match &callback {
            Some(cb) => cb(&ValidationArgs { certificate: leaf.as_ref(), chain: &chain, errors }),
            None => errors == ssl_policy_errors::NONE,
        };
        if accepted {
            return Ok(());
        }
        if callback.is_some() {
            return Err(Error::new(code::AUTHENTICATION, msg::REJECTED_BY_CALLBACK));
        }
        let chain_errors = self.verify.chain_errors.lock().clone();
        let inner: Vec<String> = chain_errors.iter().map(|e| context::verify_error_string(*e)).collect();
        let inner = if errors & ssl_policy_errors::REMOTE_CERTIFICATE_NAME_MISMATCH != 0 && inner.is_empty() {
            "the certificate does not match the host name".to_string()
        } else if leaf.is_none() {
            "the remote party sent no certificate".to_string()
        } else {
            inner.join("; ")
        };
        let message = if errors & ssl_policy_errors::REMOTE_CERTIFICATE_CHAIN_ERRORS != 0 {
            let mut names: Vec<&str> = chain_errors.iter().map(|e| context::chain_status_name(*e)).collect();
            names.dedup();
            format!(
                "The remote certificate is invalid because of errors in the certificate chain: {}",
                names.join(", ")
            )
        } else {
            format!(
                "The remote certificate is invalid according to the validation procedure: {}",
                ssl_policy_errors::describe(errors)
            )
        };
        Err(Error { inner: Some(inner), ..Error::new(code::AUTHENTICATION, message) })
    }

    /// The LocalCertificateSelectionCallback, outside the lock; its choice is presented when
    /// the handshake resumes.
    fn run_selection(self: &Arc<Self>) -> Result<()> {
        let (host, remote, issuers, is_server, local) = {
            let c = self.core.lock();
            let Some(tls) = c.tls.as_ref() else { return Err(Error::disposed(CLASS_NAME)) };
            let ssl = tls.ssl();
            let host = if c.is_server {
                ssl.servername(NameType::HOST_NAME).unwrap_or("").to_string()
            } else {
                c.target_host.clone()
            };
            let remote = ssl.peer_certificate().map(|x| Arc::new(Certificate::public(x)));
            let issuers = if c.is_server { Vec::new() } else { context::acceptable_issuers(ssl) };
            let local = match &*self.select.state.lock() {
                SelectState::Idle { default, .. } => default.clone(),
                _ => None,
            };
            (host, remote, issuers, c.is_server, local)
        };
        let callback = self.config.lock().selection.clone();
        let local: Vec<Arc<Certificate>> = local.into_iter().collect();
        let chosen = match callback {
            Some(cb) => cb(&SelectionArgs {
                target_host: &host,
                local: &local,
                remote: remote.as_ref(),
                acceptable_issuers: &issuers,
            }),
            None => local.first().cloned(),
        };
        let chosen = chosen.filter(|c| c.has_private_key());
        {
            let mut c = self.core.lock();
            c.local_certificate = chosen.clone();
            c.no_server_certificate = is_server && chosen.is_none();
        }
        *self.select.state.lock() = SelectState::Decided(chosen);
        Ok(())
    }

    fn fail_auth(self: &Arc<Self>, op: HsOp, e: Error) {
        {
            let mut c = self.core.lock();
            if !c.closed {
                c.phase = Phase::Failed(e.clone());
            }
        }
        op.done.complete(Err(e));
    }

    fn finish_auth(self: &Arc<Self>, op: HsOp) {
        let outcome = {
            let mut c = self.core.lock();
            match (c.closed, c.tls.as_ref()) {
                (false, Some(tls)) => {
                    let ssl = tls.ssl();
                    let is_server = c.is_server;
                    let remote = ssl.peer_certificate().map(|x| Arc::new(Certificate::public(x)));
                    let local = if is_server {
                        c.local_certificate.clone()
                    } else if self.select.was_requested() {
                        c.local_certificate.clone().or_else(|| match &*self.select.state.lock() {
                            SelectState::Idle { default, .. } => default.clone(),
                            _ => None,
                        })
                    } else {
                        None
                    };
                    let local = if !is_server && self.select.was_requested() && local.is_none() {
                        // OpenSSL presented the default certificate from its callback.
                        ssl.certificate().map(|x| Arc::new(Certificate::public(x.to_owned())))
                    } else {
                        local
                    };
                    let mut fin = [0u8; 128];
                    let n = if is_server ^ ssl.session_reused() {
                        ssl.peer_finished(&mut fin)
                    } else {
                        ssl.finished(&mut fin)
                    };
                    let unique = fin[..n.min(fin.len())].to_vec();
                    let server_cert =
                        if is_server { ssl.certificate().map(|x| x.to_owned()) } else { ssl.peer_certificate() };
                    let endpoint = server_cert.map(|x| channel_binding::endpoint_token(&x));
                    let cipher = ssl.current_cipher();
                    let session = Session {
                        is_server,
                        protocol: protocol_value(ssl.version2()),
                        cipher_name: cipher
                            .map(|c| c.standard_name().unwrap_or(c.name()).to_string())
                            .unwrap_or_default(),
                        cipher_suite: cipher.map(|c| u16::from_be_bytes(c.protocol_id()) as i32).unwrap_or(0),
                        alpn: ssl.selected_alpn_protocol().map(|p| p.to_vec()).unwrap_or_default(),
                        mutually_authenticated: remote.is_some() && local.is_some(),
                        remote_certificate: remote,
                        local_certificate: local,
                        target_host: if is_server {
                            ssl.servername(NameType::HOST_NAME).unwrap_or("").to_string()
                        } else {
                            c.target_host.clone()
                        },
                        transport: Arc::new(TransportContext { endpoint, unique: (n > 0).then_some(unique) }),
                    };
                    c.session = Some(Arc::new(session));
                    c.phase = Phase::Authenticated;
                    Ok(Value::Unit)
                }
                _ => Err(Error::disposed(CLASS_NAME)),
            }
        };
        op.done.complete(outcome);
    }

    // ------------------------------------------------------------------------------------
    // Write

    fn start_write(self: &Arc<Self>, buf: ConstBuf, done: Completion, mode: Mode) -> Result<()> {
        {
            let mut c = self.core.lock();
            c.usable()?;
            if c.shutdown {
                return Err(Error::invalid_operation(msg::ALREADY_SHUTDOWN));
            }
            if c.writing {
                let method = if mode == Mode::Sync { "Write" } else { "BeginWrite" };
                return Err(Error::not_supported(msg::nested(method, "write")));
            }
            c.writing = true;
        }
        self.write_next(WriteOp { buf, pos: 0, done, mode });
        Ok(())
    }

    /// Encrypts the next chunk of `op` and queues it; its continuation does the rest.
    fn write_next(self: &Arc<Self>, mut op: WriteOp) {
        let mode = op.mode;
        let start = {
            let mut c = self.core.lock();
            let blocked = if c.closed { Some(Error::disposed(CLASS_NAME)) } else { c.write_error.clone() };
            if let Some(e) = blocked {
                drop(c);
                return self.finish_write(op, Err(e));
            }
            if op.buf.len == 0 {
                drop(c);
                return self.finish_write(op, Ok(()));
            }
            let n = (op.buf.len - op.pos).min(WRITE_CHUNK);
            // SAFETY: the caller keeps the buffer valid until the write completes (Begin contract).
            let chunk = unsafe { std::slice::from_raw_parts(op.buf.ptr.add(op.pos), n) };
            let Some(tls) = c.tls.as_mut() else {
                drop(c);
                return self.finish_write(op, Err(Error::disposed(CLASS_NAME)));
            };
            let mut off = 0;
            while off < n {
                match tls.ssl_write(&chunk[off..]) {
                    Ok(k) => off += k,
                    Err(e) => {
                        let err = Error { inner: Some(ssl_reason(&e)), ..Error::new(code::IO, msg::ENCRYPT) };
                        drop(c);
                        return self.finish_write(op, Err(err));
                    }
                }
            }
            let data = c.take_output();
            op.pos += n;
            let me = self.clone();
            let then: Then = Box::new(move |r| match r {
                Ok(()) if op.pos < op.buf.len => me.write_next(op),
                r => me.finish_write(op, r),
            });
            c.push(data, Some(then))
        };
        if start {
            self.pump(mode);
        }
    }

    fn finish_write(self: &Arc<Self>, op: WriteOp, r: Result<()>) {
        let shutdown = {
            let mut c = self.core.lock();
            c.writing = false;
            c.pending_shutdown.take()
        };
        let len = op.buf.len;
        op.done.complete(r.map(|()| Value::Bytes(len)));
        if let Some((done, mode)) = shutdown {
            self.send_close_notify(done, mode);
        }
    }

    // ------------------------------------------------------------------------------------
    // Read

    fn start_read(self: &Arc<Self>, buf: MutBuf, done: Completion, mode: Mode) -> Result<()> {
        {
            let mut c = self.core.lock();
            c.usable()?;
            if c.reading {
                let method = if mode == Mode::Sync { "Read" } else { "BeginRead" };
                return Err(Error::not_supported(msg::nested(method, "read")));
            }
            c.reading = true;
        }
        self.read_loop(ReadOp { buf, done, mode });
        Ok(())
    }

    fn read_loop(self: &Arc<Self>, mut op: ReadOp) {
        enum Act {
            Done(Result<usize>),
            NeedInput,
        }
        loop {
            let (act, out) = {
                let mut c = self.core.lock();
                let act = if c.closed {
                    Act::Done(Err(Error::disposed(CLASS_NAME)))
                } else if op.buf.len == 0 {
                    Act::Done(Ok(0))
                } else {
                    let eof = c.inner_eof;
                    let boundary = c.framer.at_boundary();
                    let input_error = c.input_error.take();
                    match c.tls.as_mut() {
                        None => Act::Done(Err(Error::disposed(CLASS_NAME))),
                        Some(tls) => {
                            // SAFETY: the caller keeps the buffer valid until the read completes.
                            let user = unsafe { std::slice::from_raw_parts_mut(op.buf.ptr, op.buf.len) };
                            let mut total = 0;
                            let mut act = None;
                            while total < user.len() {
                                match tls.ssl_read(&mut user[total..]) {
                                    Ok(0) => break,
                                    Ok(n) => total += n,
                                    Err(e) if e.code() == ErrorCode::WANT_READ => {
                                        if total == 0 {
                                            act = Some(match (input_error.clone(), eof) {
                                                (Some(err), _) => Act::Done(Err(err)),
                                                (None, true) if boundary => Act::Done(Ok(0)),
                                                (None, true) => Act::Done(Err(Error::new(code::IO, msg::IO_EOF))),
                                                (None, false) => Act::NeedInput,
                                            });
                                        }
                                        break;
                                    }
                                    Err(e) if e.code() == ErrorCode::ZERO_RETURN => {
                                        if total == 0 {
                                            act = Some(Act::Done(Ok(0)));
                                        }
                                        break;
                                    }
                                    Err(e) => {
                                        if total == 0 {
                                            let reason = ssl_reason(&e);
                                            let text =
                                                if reason.contains("decrypt") || reason.contains("bad record mac") {
                                                    msg::DECRYPT
                                                } else {
                                                    msg::READ_FAILED
                                                };
                                            act = Some(Act::Done(Err(Error {
                                                inner: Some(reason),
                                                ..Error::new(code::IO, text)
                                            })));
                                        }
                                        break;
                                    }
                                }
                            }
                            if total > 0 {
                                Act::Done(Ok(total))
                            } else {
                                act.unwrap_or(Act::NeedInput)
                            }
                        }
                    }
                };
                // Replies OpenSSL wrote while reading (key update, alerts) keep their place.
                let out = c.take_output();
                let start =
                    if !out.is_empty() && !c.closed && c.write_error.is_none() { c.push(out, None) } else { false };
                (act, start)
            };
            if out {
                self.pump(op.mode);
            }
            match act {
                Act::Done(r) => {
                    self.core.lock().reading = false;
                    op.done.complete(r.map(Value::Bytes));
                    return;
                }
                Act::NeedInput => match self.fetch_input(op.mode, Waiter::Read(op)) {
                    Some(Waiter::Read(o)) => op = o,
                    _ => return,
                },
            }
        }
    }

    // ------------------------------------------------------------------------------------
    // Shutdown and close

    /// ShutdownAsync: sends close_notify after any pending write; later writes fail.
    pub fn begin_shutdown(self: &Arc<Self>, done: Completion, mode: Mode) -> Result<()> {
        {
            let mut c = self.core.lock();
            c.usable()?;
            if c.shutdown {
                return Err(Error::invalid_operation(msg::ALREADY_SHUTDOWN));
            }
            c.shutdown = true;
            if c.writing {
                c.pending_shutdown = Some((done, mode));
                return Ok(());
            }
        }
        self.send_close_notify(done, mode);
        Ok(())
    }

    pub fn shutdown(self: &Arc<Self>) -> Result<()> {
        crate::async_result::wait_for(|done| self.begin_shutdown(done, Mode::Sync)).map(drop)
    }

    fn send_close_notify(self: &Arc<Self>, done: Completion, mode: Mode) {
        let then: Then = Box::new(move |r| done.complete(r.map(|()| Value::Unit)));
        let start = {
            let mut c = self.core.lock();
            let blocked = if c.closed { Some(Error::disposed(CLASS_NAME)) } else { c.write_error.clone() };
            if let Some(e) = blocked {
                drop(c);
                return then(Err(e));
            }
            if let Some(tls) = c.tls.as_mut() {
                let _ = tls.shutdown();
            }
            let out = c.take_output();
            c.push(out, Some(then))
        };
        if start {
            self.pump(mode);
        }
    }

    fn do_close(&self) {
        let (waiter, inflight, queued, shutdown) = {
            let mut c = self.core.lock();
            if c.closed {
                return;
            }
            c.closed = true;
            if matches!(c.phase, Phase::Authenticating) {
                c.phase = Phase::Failed(Error::disposed(CLASS_NAME));
            }
            // The SSL goes now; nothing touches it after `closed` is set.
            c.tls = None;
            c.spare_input = None;
            c.spare_output.clear();
            let queued: Vec<Then> = c.outq.drain(..).filter_map(|s| s.then).collect();
            (c.waiter.take(), c.inflight.take(), queued, c.pending_shutdown.take())
        };
        let disposed = || Error::disposed(CLASS_NAME);
        match waiter {
            Some(Waiter::Read(op)) => op.done.complete(Err(disposed())),
            Some(Waiter::Handshake(op)) => op.done.complete(Err(disposed())),
            None => {}
        }
        if let Some(t) = inflight {
            t(Err(disposed()));
        }
        for t in queued {
            t(Err(disposed()));
        }
        if let Some((done, _)) = shutdown {
            done.complete(Err(disposed()));
        }
        if !self.leave_inner_open {
            self.inner.close();
        }
        if let Some(f) = self.on_close.lock().take() {
            f();
        }
    }
}

impl Drop for SslStream {
    fn drop(&mut self) {
        let key = key_of(self as *const SslStream);
        let mut reg = REGISTRY.lock();
        if reg.get(&key).is_some_and(|w| w.strong_count() == 0) {
            reg.remove(&key);
        }
    }
}

impl Stream for SslStream {
    fn kind(&self) -> Kind {
        Kind::SslStream
    }

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
        crate::async_result::wait_for(|done| me.start_write(buf, done, Mode::Sync)).map(drop)
    }

    fn read(&self, buf: MutBuf) -> Result<usize> {
        let me = self.arc();
        match crate::async_result::wait_for(|done| me.start_read(buf, done, Mode::Sync))? {
            Value::Bytes(n) => Ok(n),
            _ => Ok(0),
        }
    }

    fn close(&self) {
        self.do_close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_names_follow_dotnet() {
        assert_eq!(
            received_alert("error:0A000410:SSL routines::sslv3 alert handshake failure").as_deref(),
            Some("HandshakeFailure")
        );
        assert_eq!(
            received_alert("error:0A00045C:SSL routines::tlsv13 alert certificate required").as_deref(),
            Some("CertificateRequired")
        );
        assert_eq!(received_alert("error:0A000086:SSL routines::certificate verify failed"), None);
    }

    #[test]
    fn inline_completion_is_returned_and_late_one_goes_to_later() {
        assert_eq!(
            inline_or_later(
                |k| {
                    k(5);
                    Ok(())
                },
                |_: i32| panic!("not later")
            ),
            Some(5)
        );
        let seen = Arc::new(Mutex::new(None));
        let s = seen.clone();
        let mut keep = None;
        assert_eq!(
            inline_or_later(
                |k| {
                    keep = Some(k);
                    Ok(())
                },
                move |v: i32| *s.lock() = Some(v)
            ),
            None
        );
        (keep.unwrap())(7);
        assert_eq!(*seen.lock(), Some(7));
    }
}
