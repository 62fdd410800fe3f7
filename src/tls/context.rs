//! The OpenSSL side of an authentication: one shared SSL_CTX per role (the system trust store is
//! loaded once), and per connection an SSL configured from the caller's options: protocols, SNI
//! and host name check, certificates, ALPN, the trust-store override, and the verify and
//! certificate-selection hooks, and the session to resume (tls/session_cache.rs).

use super::certificate::Certificate;
use super::session_cache::{self, Cached, ClientSettings, Slot};
use super::{msg, openssl_reason, ssl_protocols, sys};
use crate::error::{code, Error, Result};
use foreign_types::ForeignTypeRef;
use openssl::hash::{Hasher, MessageDigest};
use openssl::ssl::{
    AlpnError, Ssl, SslContext, SslMethod, SslOptions, SslRef, SslSessionCacheMode, SslVerifyMode, SslVersion,
};
use openssl::stack::Stack;
use openssl::x509::store::{X509StoreBuilder, X509StoreRef};
use openssl::x509::verify::X509VerifyFlags;
use openssl::x509::X509StoreContext;
use openssl::x509::X509;
use parking_lot::Mutex;
use std::ffi::{c_int, c_void};
use std::net::IpAddr;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, OnceLock};

/// What one authentication asks for.
pub struct AuthOptions {
    pub is_server: bool,
    /// Client: SNI and the name the server certificate must match ("" = neither).
    pub target_host: String,
    /// Client: the client certificate offered; server: the server certificate.
    pub certificate: Option<Arc<Certificate>>,
    /// SslProtocols flags; 0 = the library default (TLS 1.2 and 1.3).
    pub protocols: i32,
    pub check_revocation: bool,
    /// Server: request a client certificate (and require one unless the callback accepts).
    pub client_certificate_required: bool,
}

/// What the verify callback saw, for SslPolicyErrors and the messages.
#[derive(Default)]
pub struct VerifyState {
    /// SslPolicyErrors bits found by OpenSSL's verification (name mismatch, chain errors).
    pub flags: AtomicI32,
    /// The X509_V_ERR codes of chain errors, in the order met.
    pub chain_errors: Mutex<Vec<c_int>>,
}

impl VerifyState {
    fn reset(&self) {
        self.flags.store(0, Ordering::Release);
        self.chain_errors.lock().clear();
    }
}

/// The certificate-selection hand-off between OpenSSL's certificate callback (which runs inside
/// the handshake, under the SSL lock) and the user's callback (which runs outside it).
pub struct SelectSlot {
    pub state: Mutex<SelectState>,
}

pub enum SelectState {
    /// Not asked yet. `callback`: whether to suspend for the user's callback; otherwise
    /// `default` is presented at once.
    Idle { callback: bool, default: Option<Arc<Certificate>> },
    /// The handshake is suspended until the user's callback has chosen.
    Waiting,
    /// Chosen; presented when OpenSSL asks again.
    Decided(Option<Arc<Certificate>>),
    /// Done (OpenSSL took the certificate, or never asked).
    Used { requested: bool },
}

impl SelectSlot {
    pub fn new() -> SelectSlot {
        SelectSlot { state: Mutex::new(SelectState::Used { requested: false }) }
    }

    /// Whether OpenSSL asked for a certificate during the handshake (client: the server sent a
    /// CertificateRequest).
    pub fn was_requested(&self) -> bool {
        matches!(
            *self.state.lock(),
            SelectState::Used { requested: true } | SelectState::Decided(_) | SelectState::Waiting
        )
    }
}

fn apply_certificate(ssl: &mut SslRef, cert: &Certificate) -> std::result::Result<(), openssl::error::ErrorStack> {
    ssl.set_certificate(&cert.x509)?;
    if let Some(key) = &cert.key {
        ssl.set_private_key(key)?;
    }
    for c in &cert.chain {
        ssl.add_chain_cert(c.clone())?;
    }
    Ok(())
}

unsafe extern "C" fn cert_callback(ssl: *mut openssl_sys::SSL, arg: *mut c_void) -> c_int {
    let run = || -> c_int {
        // SAFETY: `arg` is the SelectSlot the SslStream keeps alive as long as its SSL.
        let slot = unsafe { &*(arg as *const SelectSlot) };
        let chosen = {
            let mut st = slot.state.lock();
            match std::mem::replace(&mut *st, SelectState::Used { requested: true }) {
                SelectState::Decided(c) => c,
                SelectState::Idle { callback: false, default } => default,
                SelectState::Idle { callback: true, .. } | SelectState::Waiting => {
                    *st = SelectState::Waiting;
                    return -1;
                }
                SelectState::Used { .. } => return 1,
            }
        };
        let Some(cert) = chosen else { return 1 };
        // SAFETY: OpenSSL passes the live SSL of this handshake.
        let ssl = unsafe { SslRef::from_ptr_mut(ssl) };
        if apply_certificate(ssl, &cert).is_ok() {
            1
        } else {
            0
        }
    };
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)).unwrap_or(0)
}

fn alpn_index() -> openssl::ex_data::Index<Ssl, Vec<u8>> {
    static INDEX: OnceLock<openssl::ex_data::Index<Ssl, Vec<u8>>> = OnceLock::new();
    *INDEX.get_or_init(|| Ssl::new_ex_index().expect("an SSL ex_data index"))
}

/// The shared SSL_CTXs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Client,
    Server,
    /// A server with AllowTlsResume off (as .NET's uncached context): no session cache, no
    /// tickets, so it neither resumes nor issues a session (its ServerHello carries an empty
    /// session ID).
    ServerNoResume,
}

fn build_shared(role: Role) -> std::result::Result<SslContext, String> {
    let method = if role == Role::Client { SslMethod::tls_client() } else { SslMethod::tls_server() };
    let mut b = SslContext::builder(method).map_err(|e| openssl_reason(&e, "SSL_CTX_new failed"))?;
    b.set_options(SslOptions::NO_RENEGOTIATION | SslOptions::NO_COMPRESSION);
    b.set_min_proto_version(Some(SslVersion::TLS1_2)).map_err(|e| openssl_reason(&e, "min version"))?;
    match role {
        Role::Client => {
            // The system trust store; a failure leaves it empty (everything is then untrusted).
            let _ = b.set_default_verify_paths();
            // Sessions go to our cache (keyed by target host and settings), not OpenSSL's.
            b.set_session_cache_mode(SslSessionCacheMode::CLIENT | SslSessionCacheMode::NO_INTERNAL);
            b.set_new_session_callback(session_cache::on_new_session);
        }
        Role::Server | Role::ServerNoResume => {
            b.set_session_id_context(b"apmnet").map_err(|e| openssl_reason(&e, "session id context"))?;
            b.set_alpn_select_callback(|ssl, client| {
                let ours = ssl.ex_data(alpn_index()).ok_or(AlpnError::NOACK)?;
                select_alpn(ours, client).ok_or(AlpnError::NOACK)
            });
            if role == Role::ServerNoResume {
                b.set_session_cache_mode(SslSessionCacheMode::OFF);
                b.set_options(SslOptions::NO_TICKET);
                b.set_num_tickets(0).map_err(|e| openssl_reason(&e, "tickets"))?;
            }
        }
    }
    Ok(b.build())
}

fn shared(role: Role) -> Result<SslContext> {
    static CLIENT: OnceLock<std::result::Result<SslContext, String>> = OnceLock::new();
    static SERVER: OnceLock<std::result::Result<SslContext, String>> = OnceLock::new();
    static SERVER_NO_RESUME: OnceLock<std::result::Result<SslContext, String>> = OnceLock::new();
    let cell = match role {
        Role::Client => &CLIENT,
        Role::Server => &SERVER,
        Role::ServerNoResume => &SERVER_NO_RESUME,
    };
    cell.get_or_init(|| build_shared(role))
        .clone()
        .map_err(|reason| Error::new(code::AUTHENTICATION, msg::AUTH_FAILED).with_inner(reason))
}

/// SslProtocols flags -> (min, max) OpenSSL versions.
pub fn protocol_range(protocols: i32) -> Result<(SslVersion, SslVersion)> {
    if protocols & !ssl_protocols::ALL != 0 {
        return Err(Error::out_of_range("enabledSslProtocols"));
    }
    if protocols == ssl_protocols::NONE {
        return Ok((SslVersion::TLS1_2, SslVersion::TLS1_3));
    }
    let versions = [
        (ssl_protocols::TLS, SslVersion::TLS1),
        (ssl_protocols::TLS11, SslVersion::TLS1_1),
        (ssl_protocols::TLS12, SslVersion::TLS1_2),
        (ssl_protocols::TLS13, SslVersion::TLS1_3),
    ];
    let enabled: Vec<SslVersion> = versions.iter().filter(|(f, _)| protocols & f != 0).map(|(_, v)| *v).collect();
    match (enabled.first(), enabled.last()) {
        (Some(lo), Some(hi)) => Ok((*lo, *hi)),
        _ => Err(Error::not_supported(msg::PROTOCOL_NOT_SUPPORTED)),
    }
}

/// The first of our protocols (server preference) that the client offers, as a slice of the
/// client's list.
pub fn select_alpn<'a>(ours: &[u8], client: &'a [u8]) -> Option<&'a [u8]> {
    fn names(wire: &[u8]) -> impl Iterator<Item = &[u8]> {
        let mut rest = wire;
        std::iter::from_fn(move || {
            let (&len, tail) = rest.split_first()?;
            let len = len as usize;
            if len == 0 || tail.len() < len {
                return None;
            }
            let (name, after) = tail.split_at(len);
            rest = after;
            Some(name)
        })
    }
    names(ours).find_map(|want| names(client).find(|offered| *offered == want))
}

/// ALPN names in wire format (each prefixed by its length).
pub fn alpn_wire(protocols: &[Vec<u8>]) -> Vec<u8> {
    let mut wire = Vec::new();
    for p in protocols {
        wire.push(p.len() as u8);
        wire.extend_from_slice(p);
    }
    wire
}

/// Everything the SSL of one connection needs besides the options.
pub struct Hooks {
    pub verify: Arc<VerifyState>,
    pub select: Arc<SelectSlot>,
    /// A selection callback is set.
    pub selection_callback: bool,
    pub trusted: Option<Vec<X509>>,
    pub alpn: Vec<Vec<u8>>,
    /// A validation callback is set (part of the session cache key).
    pub validation_callback: bool,
    /// AllowTlsResume: a client offers and keeps sessions; a server issues tickets and resumes.
    pub allow_resume: bool,
}

/// What the session cache holds for a client connection.
#[derive(Default)]
pub struct Resumption {
    /// Where this connection's sessions go (None: they are not kept).
    pub slot: Option<Arc<Slot>>,
    /// The session offered to the server.
    pub offered: Option<Cached>,
}

fn setup_error(e: openssl::error::ErrorStack) -> Error {
    Error::new(code::AUTHENTICATION, msg::AUTH_FAILED)
        .with_inner(openssl_reason(&e, "OpenSSL setup failed"))
}

/// A configured SSL for one authentication, in connect or accept state, and (client) the session
/// offered.
pub fn new_ssl(opts: &AuthOptions, hooks: &Hooks) -> Result<(Ssl, Resumption)> {
    let (min, max) = protocol_range(opts.protocols)?;
    let role = match (opts.is_server, hooks.allow_resume) {
        (false, _) => Role::Client,
        (true, true) => Role::Server,
        (true, false) => Role::ServerNoResume,
    };
    let ctx = shared(role)?;
    let mut ssl = Ssl::new(&ctx).map_err(setup_error)?;
    if min == SslVersion::TLS1 || min == SslVersion::TLS1_1 {
        // TLS 1.0/1.1 were asked for explicitly: OpenSSL 3 allows them only at level 0.
        ssl.set_security_level(0);
    }
    ssl.set_min_proto_version(Some(min)).map_err(setup_error)?;
    ssl.set_max_proto_version(Some(max)).map_err(setup_error)?;

    hooks.verify.reset();
    let verify = hooks.verify.clone();
    let mode =
        if !opts.is_server || opts.client_certificate_required { SslVerifyMode::PEER } else { SslVerifyMode::NONE };
    ssl.set_verify_callback(mode, move |ok, ctx| {
        if !ok {
            let err = ctx.error().as_raw();
            let bit = match err {
                openssl_sys::X509_V_ERR_HOSTNAME_MISMATCH | openssl_sys::X509_V_ERR_IP_ADDRESS_MISMATCH => {
                    super::ssl_policy_errors::REMOTE_CERTIFICATE_NAME_MISMATCH
                }
                _ => {
                    let mut errs = verify.chain_errors.lock();
                    if !errs.contains(&err) {
                        errs.push(err);
                    }
                    super::ssl_policy_errors::REMOTE_CERTIFICATE_CHAIN_ERRORS
                }
            };
            verify.flags.fetch_or(bit, Ordering::AcqRel);
        }
        // Never fail inside OpenSSL: the policy (and the user's callback) decides afterwards.
        true
    });

    if !opts.is_server && !opts.target_host.is_empty() {
        let host = opts.target_host.trim_end_matches('.');
        match host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
            Ok(ip) => ssl.param_mut().set_ip(ip).map_err(setup_error)?,
            Err(_) => {
                ssl.set_hostname(host).map_err(setup_error)?;
                ssl.param_mut().set_host(host).map_err(setup_error)?;
            }
        }
    }
    if opts.check_revocation {
        ssl.param_mut().set_flags(X509VerifyFlags::CRL_CHECK).map_err(setup_error)?;
    }
    if let Some(cas) = &hooks.trusted {
        let mut store = X509StoreBuilder::new().map_err(setup_error)?;
        for ca in cas {
            store.add_cert(ca.clone()).map_err(setup_error)?;
        }
        ssl.set_verify_cert_store(store.build()).map_err(setup_error)?;
    }
    if !hooks.alpn.is_empty() {
        let wire = alpn_wire(&hooks.alpn);
        if opts.is_server {
            ssl.set_ex_data(alpn_index(), wire);
        } else {
            ssl.set_alpn_protos(&wire).map_err(setup_error)?;
        }
    }

    // Certificates: a server without a selection callback presents its certificate at once;
    // otherwise OpenSSL's certificate callback presents it when asked (the client when the server
    // sends a CertificateRequest, the server once the ClientHello, and so SNI, is known).
    let use_cb = if opts.is_server {
        opts.certificate.is_none() && hooks.selection_callback
    } else {
        opts.certificate.is_some() || hooks.selection_callback
    };
    if use_cb {
        *hooks.select.state.lock() =
            SelectState::Idle { callback: hooks.selection_callback, default: opts.certificate.clone() };
        // SAFETY: the slot outlives the SSL (both belong to the SslStream); the callback only
        // reads it through a lock.
        unsafe { sys::SSL_set_cert_cb(ssl.as_ptr(), Some(cert_callback), Arc::as_ptr(&hooks.select) as *mut c_void) };
    } else {
        *hooks.select.state.lock() = SelectState::Used { requested: false };
        if let Some(cert) = &opts.certificate {
            apply_certificate(&mut ssl, cert).map_err(setup_error)?;
        }
    }
    let resumption = if opts.is_server {
        if hooks.allow_resume {
            server_session_context(&mut ssl, opts)?;
        }
        Resumption::default()
    } else {
        client_resumption(&mut ssl, opts, hooks)?
    };
    if opts.is_server {
        ssl.set_accept_state();
    } else {
        ssl.set_connect_state();
    }
    Ok((ssl, resumption))
}

fn set_no_ticket(ssl: &mut SslRef) {
    // SAFETY: sets an option bit of a live SSL not yet in a handshake.
    unsafe { sys::SSL_set_options(ssl.as_ptr(), SslOptions::NO_TICKET.bits()) };
}

/// The client: the cached session for this target host and these settings is offered, and the
/// connection's new sessions go to the cache once the peer is accepted.
fn client_resumption(ssl: &mut SslRef, opts: &AuthOptions, hooks: &Hooks) -> Result<Resumption> {
    if !hooks.allow_resume {
        // As .NET's context without caching: no ticket extension either.
        set_no_ticket(ssl);
        return Ok(Resumption::default());
    }
    let settings = ClientSettings {
        target_host: &opts.target_host,
        protocols: opts.protocols,
        certificate: opts.certificate.as_deref(),
        trusted: hooks.trusted.as_deref(),
        check_revocation: opts.check_revocation,
        validation_callback: hooks.validation_callback,
        selection_callback: hooks.selection_callback,
    };
    let Some(key) = session_cache::Key::client(&settings) else { return Ok(Resumption::default()) };
    let offered = session_cache::lookup(&key);
    if let Some(cached) = &offered {
        // SAFETY: the session comes from the shared client SSL_CTX, this SSL's context.
        unsafe { ssl.set_session(&cached.session) }.map_err(setup_error)?;
    }
    let slot = Slot::new(key);
    session_cache::attach(ssl, slot.clone());
    Ok(Resumption { slot: Some(slot), offered })
}

/// The server: sessions (IDs in OpenSSL's server cache, tickets) resume only on a server stream
/// with the same certificate and client-certificate requirement, as .NET keeps one SSL_CTX per
/// server certificate. (With a selection callback the certificate is not known before the
/// session is looked up: those servers share one context.)
fn server_session_context(ssl: &mut SslRef, opts: &AuthOptions) -> Result<()> {
    let mut h = Hasher::new(MessageDigest::sha256()).map_err(setup_error)?;
    h.update(b"apmnet server").map_err(setup_error)?;
    if let Some(cert) = &opts.certificate {
        h.update(&cert.x509.to_der().map_err(setup_error)?).map_err(setup_error)?;
    }
    h.update(&[opts.client_certificate_required as u8]).map_err(setup_error)?;
    let sid_ctx = h.finish().map_err(setup_error)?;
    // SAFETY: copies 32 bytes (SSL_MAX_SID_CTX_LENGTH) into a live SSL.
    let ok = unsafe { sys::SSL_set_session_id_context(ssl.as_ptr(), sid_ctx.as_ptr(), sid_ctx.len() as _) };
    if ok != 1 {
        return Err(setup_error(openssl::error::ErrorStack::get()));
    }
    Ok(())
}

/// Verifies the peer's certificate again as OpenSSL's handshake does (ssl_verify_cert_chain): the
/// SSL's verify store, its parameters (host name or IP, CRL check, security level), the purpose of
/// the role, and the SSL's verify callback, which records what `VerifyState` reports. For a
/// resumed session, on which OpenSSL verifies nothing and keeps no verified chain, so that the
/// policy and the validation callback judge it as a full handshake. Returns the chain built.
pub fn verify_again(ssl: &SslRef, is_server: bool) -> Vec<X509> {
    let Some(leaf) = ssl.peer_certificate() else { return Vec::new() };
    let untrusted = match ssl.peer_cert_chain() {
        Some(chain) => {
            let mut own = match Stack::new() {
                Ok(s) => s,
                Err(_) => return Vec::new(),
            };
            for c in chain {
                if own.push(c.to_owned()).is_err() {
                    return Vec::new();
                }
            }
            own
        }
        None => match Stack::new() {
            Ok(s) => s,
            Err(_) => return Vec::new(),
        },
    };
    let p = ssl.as_ptr();
    // SAFETY: the SSL's own verify store (SSL_get0_verify_cert_store), else its context's; both
    // live as long as the SSL.
    let store = unsafe {
        let mut store: *mut openssl_sys::X509_STORE = std::ptr::null_mut();
        openssl_sys::SSL_ctrl(p, sys::SSL_CTRL_GET_VERIFY_CERT_STORE, 0, &mut store as *mut _ as *mut c_void);
        if store.is_null() {
            store = openssl_sys::SSL_CTX_get_cert_store(openssl_sys::SSL_get_SSL_CTX(p));
        }
        if store.is_null() {
            return Vec::new();
        }
        X509StoreRef::from_ptr(store)
    };
    let Ok(mut ctx) = X509StoreContext::new() else { return Vec::new() };
    let purpose: &std::ffi::CStr = if is_server { c"ssl_client" } else { c"ssl_server" };
    ctx.init(store, &leaf, &untrusted, |c| {
        // SAFETY: the store context is initialised; the SSL outlives the call (the verify
        // callback finds it through the ex_data, as during a handshake).
        unsafe {
            let cp = c.as_ptr();
            sys::X509_STORE_CTX_set_ex_data(cp, openssl_sys::SSL_get_ex_data_X509_STORE_CTX_idx(), p as *mut c_void);
            sys::X509_STORE_CTX_set_default(cp, purpose.as_ptr());
            let param = sys::X509_STORE_CTX_get0_param(cp);
            sys::X509_VERIFY_PARAM_set_auth_level(param, openssl_sys::SSL_get_security_level(p));
            sys::X509_VERIFY_PARAM_set1(param, openssl_sys::SSL_get0_param(p));
            if let Some(cb) = sys::SSL_get_verify_callback(p) {
                sys::X509_STORE_CTX_set_verify_cb(cp, Some(cb));
            }
        }
        c.verify_cert()?;
        Ok(c.chain().map(|s| s.iter().map(|x| x.to_owned()).collect()).unwrap_or_default())
    })
    .unwrap_or_default()
}

/// The acceptable issuers of the server's CertificateRequest (client side), as names.
pub fn acceptable_issuers(ssl: &SslRef) -> Vec<String> {
    let mut out = Vec::new();
    // SAFETY: the list belongs to the SSL and is only read here, under the SSL lock.
    unsafe {
        let list = sys::SSL_get_client_CA_list(ssl.as_ptr());
        if list.is_null() {
            return out;
        }
        let n = openssl_sys::OPENSSL_sk_num(list as *const _);
        for i in 0..n {
            let name = openssl_sys::OPENSSL_sk_value(list as *const _, i) as *mut openssl_sys::X509_NAME;
            if !name.is_null() {
                out.push(super::certificate::format_name(openssl::x509::X509NameRef::from_ptr(name)));
            }
        }
    }
    out
}

/// .NET's X509ChainStatusFlags name for an OpenSSL verify error.
pub fn chain_status_name(err: c_int) -> &'static str {
    use openssl_sys::*;
    match err {
        X509_V_ERR_CERT_HAS_EXPIRED | X509_V_ERR_CERT_NOT_YET_VALID => "NotTimeValid",
        X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT | X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN => "UntrustedRoot",
        X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY
        | X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT
        | X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE => "PartialChain",
        X509_V_ERR_CERT_REVOKED => "Revoked",
        X509_V_ERR_UNABLE_TO_GET_CRL => "RevocationStatusUnknown, OfflineRevocation",
        X509_V_ERR_CERT_SIGNATURE_FAILURE => "NotSignatureValid",
        X509_V_ERR_INVALID_PURPOSE => "NotValidForUsage",
        X509_V_ERR_INVALID_CA | X509_V_ERR_PATH_LENGTH_EXCEEDED => "InvalidBasicConstraints",
        _ => "PartialChain",
    }
}

/// OpenSSL's text for a verify error.
pub fn verify_error_string(err: c_int) -> String {
    // SAFETY: returns a static string.
    unsafe { std::ffi::CStr::from_ptr(openssl_sys::X509_verify_cert_error_string(err as _)) }
        .to_string_lossy()
        .into_owned()
}
