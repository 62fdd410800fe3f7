//! Authentication: the handshake loop (OpenSSL's do_handshake on the memory buffers, its
//! flights through the outbound queue), the RemoteCertificateValidationCallback and the
//! LocalCertificateSelectionCallback (run outside the lock), and the `Session` recorded when the
//! handshake completes. A failed handshake poisons the stream (`Phase::Failed`).

use super::errors::{auth_error, ssl_reason};
use super::{HsOp, HsStep, Mode, Phase, Session, SslStream, Then, Waiter, CLASS_NAME};
use crate::op::{Completion, Value};
use crate::error::{code, Error, Result};
use crate::tls::certificate::Certificate;
use crate::tls::channel_binding::{self, TransportContext};
use crate::tls::context::{self, AuthOptions, Hooks, SelectState};
use crate::tls::engine::MemIo;
use crate::tls::{msg, openssl_reason, ssl_policy_errors, ssl_protocols, SelectionArgs, ValidationArgs};
use openssl::ssl::{ErrorCode, NameType, SslVersion};
use openssl::x509::X509;
use std::sync::atomic::Ordering;
use std::sync::Arc;

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
        crate::op::wait_for(|done| self.begin_authenticate(opts, done, Mode::Sync)).map(drop)
    }

    pub(super) fn hs_loop(self: &Arc<Self>, mut op: HsOp, mut pending: Option<HsStep>) {
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
}
