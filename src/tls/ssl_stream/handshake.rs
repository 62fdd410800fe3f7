//! Authentication, as the channel's handshake steps: OpenSSL's do_handshake on the memory
//! buffers, the RemoteCertificateValidationCallback and the LocalCertificateSelectionCallback
//! (suspended steps: the channel runs them outside its lock and hands their answer back), and
//! the `Session` recorded when the handshake completes.
//!
//! The peer's certificate is judged as soon as OpenSSL has it (or when the handshake completes
//! without one), before the output of that step goes out: `Tls::judging` holds the step, and
//! its output waits in MemIo until the callback accepts.
//!
//! A resumed session is judged as a full handshake is (.NET validates after every handshake):
//! OpenSSL verifies nothing on resumption, so the session's certificate is verified again with
//! this connection's settings (`context::verify_again`), and the policy and the callback see the
//! same certificate, chain and SslPolicyErrors a full handshake would give them. While the client
//! has offered a session the server has not yet accepted, the certificate OpenSSL reports is the
//! cached one: it is not judged until the server's answer shows which one counts.

use super::errors::{auth_error, ssl_reason};
use super::{Mode, SslStream, Tls, CLASS_NAME};
use crate::error::{code, Error, Result};
use crate::layered::{Step, Work};
use crate::op::Completion;
use crate::tls::certificate::Certificate;
use crate::channel_binding::TransportContext;
use crate::tls::channel_binding;
use crate::tls::context::{self, AuthOptions, Hooks, SelectState, VerifyState};
use crate::tls::engine::MemIo;
use crate::tls::session_cache;
use crate::tls::{
    msg, openssl_reason, ssl_policy_errors, ssl_protocols, SelectionArgs, ValidationArgs, ValidationCallback,
};
use foreign_types::{ForeignType, ForeignTypeRef};
use openssl::ssl::{ErrorCode, NameType, SslVersion};
use openssl::x509::X509;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// What the handshake needs next, as OpenSSL said it.
#[derive(Clone, Copy)]
pub(super) enum Next {
    Done,
    NeedRead,
    NeedSelect,
}

/// What a user callback answered, handed back to the handshake.
pub enum Answer {
    /// The validation policy and callback: accepted, or why not.
    Validated(Result<()>),
    /// The selection callback's choice (a certificate without a private key counts as none).
    Selected(Option<Arc<Certificate>>),
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
    /// BeginAuthenticateAsClient / AsServer (Mode::Sync: the synchronous form).
    pub fn begin_authenticate(self: &Arc<Self>, opts: AuthOptions, done: Completion, mode: Mode) -> Result<()> {
        self.begin_handshake(done, mode, |t| t.start(&opts))
    }

    pub fn authenticate(self: &Arc<Self>, opts: AuthOptions) -> Result<()> {
        crate::op::wait_for(|done| self.begin_authenticate(opts, done, Mode::Sync)).map(drop)
    }
}

impl Tls {
    /// BeginAuthenticate's own checks, after the channel's, and the SSL object.
    fn start(&mut self, opts: &AuthOptions) -> Result<()> {
        let hooks = Hooks {
            verify: self.verify.clone(),
            select: self.select.clone(),
            selection_callback: self.config.selection.is_some(),
            trusted: self.config.trusted.clone(),
            alpn: self.config.alpn.clone(),
            validation_callback: self.config.validation.is_some(),
            allow_resume: self.config.allow_resume,
        };
        context::protocol_range(opts.protocols)?;
        if opts.is_server {
            match &opts.certificate {
                None if !hooks.selection_callback => return Err(Error::argument_null("serverCertificate")),
                Some(cert) if !cert.has_private_key() => {
                    return Err(Error::new(code::AUTHENTICATION, msg::SERVER_CERT_KEY))
                }
                _ => {}
            }
        }
        let (ssl, resumption) = context::new_ssl(opts, &hooks)?;
        let tls = openssl::ssl::SslStream::new(ssl, MemIo::default()).map_err(|e| {
            Error::new(code::AUTHENTICATION, msg::AUTH_FAILED).with_inner(openssl_reason(&e, "SSL setup failed"))
        })?;
        self.tls = Some(tls);
        self.resumption = resumption;
        self.is_server = opts.is_server;
        self.client_certificate_required = opts.client_certificate_required;
        self.target_host = opts.target_host.clone();
        self.local_certificate = if opts.is_server { opts.certificate.clone() } else { None };
        Ok(())
    }

    /// One handshake step (`Protocol::handshake`).
    pub(super) fn step(&mut self, eof: bool) -> Result<Step<Answer>> {
        let r = self.step_inner(eof);
        if r.is_err() {
            self.forget_offered();
        }
        r
    }

    fn step_inner(&mut self, eof: bool) -> Result<Step<Answer>> {
        if let Some(next) = self.judging.take() {
            // The callback accepted: the judged step goes on, and its output with it.
            return self.next_step(next);
        }
        let offered = self.resumption.offered.as_ref().map(|c| c.session.as_ptr());
        let Some(tls) = self.tls.as_mut() else { return Err(Error::disposed(CLASS_NAME)) };
        let r = tls.do_handshake();
        let ssl = tls.ssl();
        // SAFETY: reads the SSL's current session pointer (compared, never used).
        let on_offered = offered.is_some_and(|o| unsafe { openssl_sys::SSL_get_session(ssl.as_ptr()) } == o)
            && !ssl.session_reused();
        let peer_seen = !on_offered && ssl.peer_certificate().is_some();
        let next = match r {
            Ok(()) => Next::Done,
            Err(e) if e.code() == ErrorCode::WANT_READ => {
                if eof {
                    let text = if self.framer.at_boundary() { msg::AUTH_EOF } else { msg::IO_EOF };
                    return Err(Error::new(code::IO, text));
                }
                Next::NeedRead
            }
            Err(e) if e.code() == ErrorCode::from_raw(openssl_sys::SSL_ERROR_WANT_X509_LOOKUP) => Next::NeedSelect,
            Err(e) if self.no_server_certificate => {
                return Err(Error::new(code::AUTHENTICATION, msg::SERVER_CERT_KEY)
                    .with_inner(ssl_reason(&e)))
            }
            Err(e) => return Err(auth_error(&e)),
        };
        if !self.validated && (peer_seen || matches!(next, Next::Done)) {
            let validation = self.validation()?;
            self.judging = Some(next);
            return Ok(Step::Suspend(validation));
        }
        self.next_step(next)
    }

    fn next_step(&mut self, next: Next) -> Result<Step<Answer>> {
        Ok(match next {
            Next::Done => Step::Done,
            Next::NeedRead => Step::NeedInput,
            Next::NeedSelect => Step::Suspend(self.selection()?),
        })
    }

    /// A callback's answer (`Protocol::resume`).
    pub(super) fn answered(&mut self, answer: Answer) -> Result<()> {
        match answer {
            Answer::Validated(r) => {
                if r.is_err() {
                    self.forget_offered();
                }
                r
            }
            Answer::Selected(chosen) => {
                self.local_certificate = chosen.clone();
                self.no_server_certificate = self.is_server && chosen.is_none();
                *self.select.state.lock() = SelectState::Decided(chosen);
                Ok(())
            }
        }
    }

    /// A handshake that offered a cached session failed: the session is not offered again.
    fn forget_offered(&self) {
        if let (Some(slot), Some(offered)) = (&self.resumption.slot, &self.resumption.offered) {
            session_cache::forget(&slot.key, &offered.session);
        }
    }

    /// The peer's certificate and chain, read now; the policy and the callback run outside
    /// the lock.
    fn validation(&mut self) -> Result<Work<Answer>> {
        self.validated = true;
        let is_server = self.is_server;
        let Some(tls) = self.tls.as_ref() else { return Err(Error::disposed(CLASS_NAME)) };
        let ssl = tls.ssl();
        let leaf = ssl.peer_certificate();
        let verified = if ssl.session_reused() {
            // Nothing was verified: verify as the full handshake did (the flags too).
            context::verify_again(ssl, is_server)
        } else {
            ssl.verified_chain().map(|v| v.iter().map(|x| x.to_owned()).collect()).unwrap_or_default()
        };
        let mut chain: Vec<X509> = if !verified.is_empty() {
            verified
        } else {
            ssl.peer_cert_chain().map(|s| s.iter().map(|x| x.to_owned()).collect()).unwrap_or_default()
        };
        if let Some(l) = &leaf {
            let leaf_der = l.to_der().ok();
            if chain.first().map(|f| f.to_der().ok()) != Some(leaf_der) {
                chain.insert(0, l.clone());
            }
        }
        let required = self.client_certificate_required;
        let verify = self.verify.clone();
        let callback = self.config.validation.clone();
        Ok(Box::new(move || Answer::Validated(judge_peer(leaf, chain, is_server, required, &verify, callback))))
    }

    /// What the LocalCertificateSelectionCallback is shown, read now; it runs outside the lock
    /// and its choice is presented when the handshake resumes.
    fn selection(&self) -> Result<Work<Answer>> {
        let Some(tls) = self.tls.as_ref() else { return Err(Error::disposed(CLASS_NAME)) };
        let ssl = tls.ssl();
        let host = if self.is_server {
            ssl.servername(NameType::HOST_NAME).unwrap_or("").to_string()
        } else {
            self.target_host.clone()
        };
        let remote = ssl.peer_certificate().map(|x| Arc::new(Certificate::public(x)));
        let issuers = if self.is_server { Vec::new() } else { context::acceptable_issuers(ssl) };
        let local = match &*self.select.state.lock() {
            SelectState::Idle { default, .. } => default.clone(),
            _ => None,
        };
        let callback = self.config.selection.clone();
        Ok(Box::new(move || {
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
            Answer::Selected(chosen.filter(|c| c.has_private_key()))
        }))
    }

    /// The handshake is complete (`Protocol::handshake_done`): the properties of the session.
    pub(super) fn record_session(&mut self) -> Result<()> {
        let Some(tls) = self.tls.as_ref() else { return Err(Error::disposed(CLASS_NAME)) };
        let ssl = tls.ssl();
        let is_server = self.is_server;
        let resumed = ssl.session_reused();
        let remote = ssl.peer_certificate().map(|x| Arc::new(Certificate::public(x)));
        let local = if is_server {
            self.local_certificate.clone()
        } else if self.select.was_requested() {
            self.local_certificate.clone().or_else(|| match &*self.select.state.lock() {
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
        let local = match &self.resumption.offered {
            // The resumed session authenticates the client as the connection that made it did.
            Some(offered) if resumed && !is_server => offered.local.clone(),
            _ => local,
        };
        if let Some(slot) = &self.resumption.slot {
            slot.accepted(local.clone());
        }
        let mut fin = [0u8; 128];
        let n = if is_server ^ ssl.session_reused() { ssl.peer_finished(&mut fin) } else { ssl.finished(&mut fin) };
        let unique = fin[..n.min(fin.len())].to_vec();
        let server_cert = if is_server { ssl.certificate().map(|x| x.to_owned()) } else { ssl.peer_certificate() };
        let endpoint = server_cert.map(|x| channel_binding::endpoint_token(&x));
        let cipher = ssl.current_cipher();
        let session = super::Session {
            is_server,
            protocol: protocol_value(ssl.version2()),
            cipher_name: cipher.map(|c| c.standard_name().unwrap_or(c.name()).to_string()).unwrap_or_default(),
            cipher_suite: cipher.map(|c| u16::from_be_bytes(c.protocol_id()) as i32).unwrap_or(0),
            alpn: ssl.selected_alpn_protocol().map(|p| p.to_vec()).unwrap_or_default(),
            mutually_authenticated: remote.is_some() && local.is_some(),
            remote_certificate: remote,
            local_certificate: local,
            target_host: if is_server {
                ssl.servername(NameType::HOST_NAME).unwrap_or("").to_string()
            } else {
                self.target_host.clone()
            },
            transport: Arc::new(TransportContext { endpoint, unique: (n > 0).then_some(unique) }),
            resumed,
        };
        self.session = Some(Arc::new(session));
        Ok(())
    }
}

/// The policy and the RemoteCertificateValidationCallback (outside the channel's lock).
fn judge_peer(
    leaf: Option<X509>,
    chain: Vec<X509>,
    is_server: bool,
    required: bool,
    verify: &VerifyState,
    callback: Option<ValidationCallback>,
) -> Result<()> {
    let mut errors = ssl_policy_errors::NONE;
    if leaf.is_none() {
        if !is_server || required {
            errors |= ssl_policy_errors::REMOTE_CERTIFICATE_NOT_AVAILABLE;
        }
    } else {
        errors |= verify.flags.load(Ordering::Acquire);
    }
    let leaf = leaf.map(|x| Arc::new(Certificate::public(x)));
    let chain: Vec<Arc<Certificate>> = chain.into_iter().map(|x| Arc::new(Certificate::public(x))).collect();
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
    let chain_errors = verify.chain_errors.lock().clone();
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
        format!("The remote certificate is invalid because of errors in the certificate chain: {}", names.join(", "))
    } else {
        format!(
            "The remote certificate is invalid according to the validation procedure: {}",
            ssl_policy_errors::describe(errors)
        )
    };
    Err(Error::new(code::AUTHENTICATION, message).with_inner(inner))
}
