//! SslStream over any Stream (reference/dotnet-semantics.md section 4): the layered driver
//! (`crate::layered::Channel`) over OpenSSL.
//!
//! The TLS engine is sans-IO: OpenSSL reads and writes memory buffers (`engine::MemIo`) and the
//! channel moves the ciphertext with the inner stream's own Begin/End (or its synchronous
//! Read/Write for the synchronous calls), so an SslStream sits on a NetworkStream, a stream
//! defined in C or another SslStream alike. What concerns the inner stream and the caller's
//! operations is the channel's (layered/mod.rs): the outbound queue in OpenSSL's order, one
//! read and one write at a time, inline completions looped over, poison after a failed
//! handshake, close. Dispose sends no close_notify (as .NET); `shutdown` does.
//!
//! This module holds `Tls`, the protocol the channel drives (the SSL object, the record framer
//! that tells a clean end from truncation, the settings, what the handshake learned), and the
//! SslStream API: construction, settings, properties. The rest is in submodules:
//!
//! * `handshake`: AuthenticateAsClient/AsServer: the steps of OpenSSL's handshake, the
//!   RemoteCertificateValidationCallback and the LocalCertificateSelectionCallback (suspended
//!   steps, so they run outside the channel's lock), and the `Session` recorded when the
//!   handshake completes.
//! * `errors`: how failures of the inner stream and of OpenSSL are reported (free functions).

mod errors;
mod handshake;

use super::certificate::Certificate;
use crate::channel_binding::TransportContext;
use super::context::{Resumption, SelectSlot, VerifyState};
use super::engine::{Framer, MemIo};
use super::{msg, SelectionCallback, ValidationCallback};
use crate::error::{code, Error, Result};
use crate::layered::{self, Channel, Opened, Protocol, Step};
use crate::stream::Stream;
use errors::{io_failure, ssl_reason};
use foreign_types::ForeignTypeRef;
use openssl::ssl::ErrorCode;
use openssl::x509::X509;
use std::sync::Arc;

pub use crate::layered::Mode;

pub const CLASS_NAME: &str = "System.Net.Security.SslStream";

/// SslStream is the layered driver over OpenSSL.
pub type SslStream = Channel<Tls>;

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
    /// The handshake resumed an earlier session (an abbreviated handshake).
    pub resumed: bool,
}

struct Config {
    validation: Option<ValidationCallback>,
    selection: Option<SelectionCallback>,
    trusted: Option<Vec<X509>>,
    alpn: Vec<Vec<u8>>,
    /// AllowTlsResume (default true).
    allow_resume: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config { validation: None, selection: None, trusted: None, alpn: Vec::new(), allow_resume: true }
    }
}

/// TLS as a layered protocol: everything here is under the channel's lock.
pub struct Tls {
    /// The SSL object, from BeginAuthenticate until Dispose.
    tls: Option<openssl::ssl::SslStream<MemIo>>,
    framer: Framer,
    config: Config,
    /// Shared with OpenSSL's verify and certificate callbacks (tls/context.rs).
    verify: Arc<VerifyState>,
    select: Arc<SelectSlot>,
    is_server: bool,
    validated: bool,
    /// The step the validation callback is judging. Its output waits in MemIo meanwhile: nothing
    /// more goes to a peer whose certificate may yet be rejected.
    judging: Option<handshake::Next>,
    /// A server's selection callback found no certificate: the handshake fails (OpenSSL sends
    /// the alert) with .NET's message.
    no_server_certificate: bool,
    client_certificate_required: bool,
    target_host: String,
    local_certificate: Option<Arc<Certificate>>,
    /// The client's session cache: the session offered, where new ones go.
    resumption: Resumption,
    session: Option<Arc<Session>>,
}

impl Protocol for Tls {
    const CLASS_NAME: &'static str = CLASS_NAME;
    /// Plaintext encrypted per segment (several TLS records): one inner write each.
    const CHUNK: usize = 64 * 1024;
    type Resume = handshake::Answer;

    fn feed(&mut self, buf: Vec<u8>, n: usize) -> Vec<u8> {
        self.framer.feed(&buf[..n]);
        match self.tls.as_mut() {
            Some(t) => t.get_mut().feed(buf, n),
            None => buf,
        }
    }

    fn take_output(&mut self, spare: Vec<u8>) -> Vec<u8> {
        if self.judging.is_some() {
            return spare;
        }
        match self.tls.as_mut() {
            Some(t) => t.get_mut().take_output(spare),
            None => Vec::new(),
        }
    }

    fn handshake(&mut self, eof: bool) -> Result<Step<handshake::Answer>> {
        self.step(eof)
    }

    fn resume(&mut self, answer: handshake::Answer) -> Result<()> {
        self.answered(answer)
    }

    fn handshake_done(&mut self) -> Result<()> {
        self.record_session()
    }

    fn seal(&mut self, plain: &[u8], direct: Option<&Arc<dyn Stream>>) -> Result<()> {
        let Some(tls) = self.tls.as_mut() else { return Err(Error::disposed(CLASS_NAME)) };
        // Output held for a validation in progress stays held.
        if self.judging.is_none() {
            tls.get_mut().direct = direct.cloned();
        }
        let mut off = 0;
        let mut sealed = Ok(());
        while off < plain.len() {
            match tls.ssl_write(&plain[off..]) {
                Ok(k) => off += k,
                Err(e) => {
                    sealed = Err(Error::new(code::IO, msg::ENCRYPT).with_inner(ssl_reason(&e)));
                    break;
                }
            }
        }
        tls.get_mut().direct = None;
        sealed
    }

    fn open(&mut self, plain: &mut [u8]) -> Result<Opened> {
        let Some(tls) = self.tls.as_mut() else { return Err(Error::disposed(CLASS_NAME)) };
        match tls.ssl_read(plain) {
            Ok(n) => Ok(Opened::Data(n)),
            Err(e) if e.code() == ErrorCode::WANT_READ => Ok(Opened::NeedInput),
            Err(e) if e.code() == ErrorCode::ZERO_RETURN => Ok(Opened::End),
            Err(e) => {
                let reason = ssl_reason(&e);
                let text = if reason.contains("decrypt") || reason.contains("bad record mac") {
                    msg::DECRYPT
                } else {
                    msg::READ_FAILED
                };
                Err(Error::new(code::IO, text).with_inner(reason))
            }
        }
    }

    fn input_ended(&self) -> Result<()> {
        if self.framer.at_boundary() {
            Ok(())
        } else {
            Err(Error::new(code::IO, msg::IO_EOF))
        }
    }

    fn shutdown(&mut self) {
        if let Some(tls) = self.tls.as_mut() {
            let _ = tls.shutdown();
        }
    }

    fn dispose(&mut self) {
        if let Some(tls) = self.tls.take() {
            if self.session.is_some() {
                // Dispose sends no close_notify (as .NET, whose contexts shut down quietly), but
                // the session stays resumable: OpenSSL would mark the session of a connection
                // freed without a shutdown not resumable (TLS 1.1 and later allow resuming it).
                let p = tls.ssl().as_ptr();
                // SAFETY: sets the shutdown flags of the live SSL about to be freed.
                unsafe {
                    openssl_sys::SSL_set_shutdown(p, openssl_sys::SSL_SENT_SHUTDOWN | openssl_sys::SSL_get_shutdown(p))
                };
            }
        }
    }

    fn inner_failed(e: Error, writing: bool) -> Error {
        io_failure(e, writing)
    }

    fn transport_context(&self) -> Option<Arc<TransportContext>> {
        Some(self.bindings())
    }
}

impl Tls {
    fn new() -> Tls {
        Tls {
            tls: None,
            framer: Framer::default(),
            config: Config::default(),
            verify: Arc::new(VerifyState::default()),
            select: Arc::new(SelectSlot::new()),
            is_server: false,
            validated: false,
            judging: None,
            no_server_certificate: false,
            client_certificate_required: false,
            target_host: String::new(),
            local_certificate: None,
            resumption: Resumption::default(),
            session: None,
        }
    }

    /// The channel bindings: the session's, empty before authentication.
    fn bindings(&self) -> Arc<TransportContext> {
        match &self.session {
            Some(s) => s.transport.clone(),
            None => Arc::new(TransportContext::EMPTY),
        }
    }
}

impl SslStream {
    /// `new SslStream(inner, leaveInnerStreamOpen)`.
    pub fn new(inner: Arc<dyn Stream>, leave_inner_open: bool) -> Result<Arc<SslStream>> {
        Channel::over(inner, leave_inner_open, Tls::new())
    }

    pub fn set_validation_callback(&self, cb: Option<ValidationCallback>) -> Result<()> {
        self.configure(|t| t.config.validation = cb)
    }

    pub fn set_selection_callback(&self, cb: Option<SelectionCallback>) -> Result<()> {
        self.configure(|t| t.config.selection = cb)
    }

    /// Trust exactly these CAs instead of the system store (None: the system store again).
    pub fn set_trusted_cas(&self, cas: Option<Vec<X509>>) -> Result<()> {
        self.configure(|t| t.config.trusted = cas)
    }

    /// SslClientAuthenticationOptions/SslServerAuthenticationOptions.AllowTlsResume (default
    /// true): a client offers a cached session and keeps the new ones; a server issues tickets and
    /// resumes sessions.
    pub fn set_allow_tls_resume(&self, allow: bool) -> Result<()> {
        self.configure(|t| t.config.allow_resume = allow)
    }

    pub fn set_application_protocols(&self, protocols: Vec<Vec<u8>>) -> Result<()> {
        if protocols.iter().any(|p| p.is_empty() || p.len() > 255) {
            return Err(Error::argument("An application protocol name must be 1 to 255 bytes long."));
        }
        self.configure(|t| t.config.alpn = protocols)
    }

    // ------------------------------------------------------------------------------------
    // Properties

    pub fn is_server(&self) -> bool {
        self.protocol(|t| t.is_server)
    }

    /// The properties of the authenticated session; before authentication: NotAuthenticated.
    pub fn session(&self) -> Result<Arc<Session>> {
        self.protocol_if_authenticated(|t| t.session.clone())?
            .ok_or_else(|| Error::invalid_operation(layered::msg::NOT_AUTHENTICATED))
    }

    /// The session, or None before authentication (for properties .NET reports as null).
    pub fn session_if_any(&self) -> Result<Option<Arc<Session>>> {
        self.protocol_if_open(|t| t.session.clone())
    }

    /// SslStream.TransportContext: the bindings, empty before authentication.
    pub fn transport_context(&self) -> Result<Arc<TransportContext>> {
        self.protocol_if_open(Tls::bindings)
    }
}
