//! A connection to a server: a NetworkStream over a Socket, or an SslStream over that for https
//! (validated against the system store or the request's trusted CAs, and its validation
//! callback), with the TransportContext EndGetRequestStream hands out. Through a proxy the
//! socket goes to the proxy; for https the request (`request`) opens a CONNECT tunnel on it and
//! `secure` then runs the TLS handshake with the server over the tunnel.

use super::io::{start_op, Mode};
use super::{msg, web_error, web_status};
use crate::error::{code, socket_error, Error, Result};
use crate::net::network_stream::NetworkStream;
use crate::net::socket::Socket;
use crate::net::{address_family, file_access, protocol_type, socket_type};
use crate::stream::Stream;
use crate::tls::certificate::TrustedCas;
use crate::tls::{AuthOptions, Certificate, SslStream, TransportContext, ValidationCallback};
use openssl::hash::MessageDigest;
use openssl::x509::X509;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Where a connection goes: a ServicePoint's key. Through a proxy, http connections are the
/// proxy's and serve any server (`host` is empty and `port` 0, as the Framework keeps one
/// ServicePoint per proxy), https ones are tunnels to one server.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Endpoint {
    pub https: bool,
    pub host: String,
    pub port: u16,
    pub proxy: Option<Via>,
    /// For https, the TLS settings its connections were authenticated with.
    pub tls: TlsGroup,
}

/// Which TLS settings an https connection was authenticated with: a kept-alive connection
/// serves only requests whose settings are the same, or a connection that one request's
/// lenient validation callback accepted would serve another that validates strictly (or present
/// one request's client certificate for another). .NET Framework puts the hashes of the
/// validation callback and the client certificates in the connection group name for the same
/// reason. Trusted CAs count by the version of their file (`TrustedCas::id`), a client
/// certificate by its SHA-256, the callback by the identity its setter gave.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct TlsGroup {
    trusted: Option<u64>,
    validation: Option<CallbackIdentity>,
    client_certificate: Option<Vec<u8>>,
}

/// The proxy of an endpoint. `authorization` is the Proxy-Authorization a tunnel is opened
/// with: a tunnel made with some credentials is not handed to a request with others.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Via {
    pub host: String,
    pub port: u16,
    pub authorization: Option<String>,
}

/// How an https connection is authenticated.
/// What tells two validation callbacks apart: for a C callback, its function and its state.
pub type CallbackIdentity = (usize, usize);

#[derive(Clone, Default)]
pub struct TlsSettings {
    pub trusted: Option<TrustedCas>,
    /// The callback, and what makes two callbacks the same (a C function and its state, as a
    /// .NET delegate is its method and target).
    pub validation: Option<(ValidationCallback, CallbackIdentity)>,
    pub client_certificate: Option<Arc<Certificate>>,
}

impl TlsSettings {
    pub fn group(&self) -> TlsGroup {
        let fingerprint = |x: &X509| x.digest(MessageDigest::sha256()).map(|d| d.to_vec()).unwrap_or_default();
        TlsGroup {
            trusted: self.trusted.as_ref().map(|t| t.id),
            validation: self.validation.as_ref().map(|(_, id)| *id),
            client_certificate: self.client_certificate.as_ref().map(|c| fingerprint(&c.x509)),
        }
    }
}

pub struct Connection {
    pub stream: Arc<dyn Stream>,
    pub context: Arc<TransportContext>,
    /// A process-wide number, for logs and tests.
    pub id: u64,
}

impl Connection {
    /// Closes the connection (idempotent): a pending operation on it completes with an error.
    pub fn close(&self) {
        let _ = self.stream.close();
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn connect_error(host: &str, proxy: bool, e: &Error) -> Error {
    let unresolved = e.socket_error == socket_error::HOST_NOT_FOUND || e.socket_error == socket_error::NO_DATA;
    if unresolved && proxy {
        web_error(web_status::PROXY_NAME_RESOLUTION_FAILURE, msg::proxy_name_resolution(host), Some(e))
    } else if unresolved {
        web_error(web_status::NAME_RESOLUTION_FAILURE, msg::name_resolution(host), Some(e))
    } else {
        web_error(web_status::CONNECT_FAILURE, msg::CONNECT_FAILURE, Some(e))
    }
}

fn tls_error(e: &Error) -> Error {
    if e.status == code::AUTHENTICATION && e.message.starts_with("The remote certificate") {
        web_error(web_status::TRUST_FAILURE, msg::TRUST_FAILURE, Some(e))
    } else {
        web_error(web_status::SECURE_CHANNEL_FAILURE, msg::SECURE_CHANNEL_FAILURE, Some(e))
    }
}

/// Opens a connection to `to` (for https through a proxy, the plain connection to the proxy:
/// the caller opens the tunnel and calls `secure`); `then` gets it, or the WebException of the
/// failure.
pub fn open(to: &Endpoint, tls: &TlsSettings, mode: Mode, then: impl FnOnce(Result<Arc<Connection>>) + Send + 'static) {
    let (via_proxy, (host, port)) = match &to.proxy {
        Some(v) => (true, (v.host.clone(), v.port)),
        None => (false, (to.host.clone(), to.port)),
    };
    let host = bare_host(&host);
    let socket = match socket_for(&host) {
        Ok(s) => s,
        Err(e) => return then(Err(connect_error(&host, via_proxy, &e))),
    };
    let server = bare_host(&to.host);
    let (tls_now, tls, port) = (to.https && !via_proxy, tls.clone(), port as i32);
    let s = socket.clone();
    let h = host.clone();
    let connected = move |r: Result<()>| {
        if let Err(e) = r {
            s.close();
            return then(Err(connect_error(&h, via_proxy, &e)));
        }
        let _ = s.set_no_delay(true);
        let plain: Arc<dyn Stream> = match NetworkStream::new(s.clone(), file_access::READ_WRITE, true) {
            Ok(ns) => Arc::new(ns),
            Err(e) => {
                s.close();
                return then(Err(connect_error(&h, via_proxy, &e)));
            }
        };
        if !tls_now {
            return then(Ok(plain_connection(plain)));
        }
        authenticate(plain, server, tls, mode, then)
    };
    match mode {
        Mode::Sync => connected(socket.connect(&host, port)),
        Mode::Async => {
            let s = socket.clone();
            start_op(move |done| s.begin_connect(&host, port, done), move |o| connected(o.map(drop)))
        }
    }
}

/// The socket a connection to `host` starts from, as .NET's HttpWebRequest makes it: for an
/// address, one of its family; for a name, a DualMode IPv6 socket, so that every address the
/// name resolves to can be tried whichever family it is (an IPv4 one where IPv6 is off).
fn socket_for(host: &str) -> Result<Arc<Socket>> {
    let make = |family| Socket::create(family, socket_type::STREAM, protocol_type::TCP);
    match crate::net::sys::parse_ip(host) {
        Some(ip) if ip.is_ipv6() => make(address_family::INTER_NETWORK_V6),
        Some(_) => make(address_family::INTER_NETWORK),
        None => match make(address_family::INTER_NETWORK_V6) {
            Ok(s) if s.set_dual_mode(true).is_ok() => Ok(s),
            Ok(s) => {
                s.close();
                make(address_family::INTER_NETWORK)
            }
            Err(_) => make(address_family::INTER_NETWORK),
        },
    }
}

/// A URI's host as a name or address to connect to: an IPv6 literal without its brackets.
fn bare_host(host: &str) -> String {
    host.trim_start_matches('[').trim_end_matches(']').to_string()
}

fn plain_connection(stream: Arc<dyn Stream>) -> Arc<Connection> {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    Arc::new(Connection { stream, context: Arc::new(TransportContext::EMPTY), id })
}

/// The TLS handshake with `server` over `plain` (a tunnel through a proxy): SNI and the
/// certificate checks are the server's, and so is the TransportContext. The new connection owns
/// `plain`.
pub fn secure(plain: &Connection, server: &str, tls: &TlsSettings, mode: Mode, then: impl FnOnce(Result<Arc<Connection>>) + Send + 'static) {
    authenticate(plain.stream.clone(), bare_host(server), tls.clone(), mode, then)
}

fn authenticate(
    plain: Arc<dyn Stream>,
    host: String,
    tls: TlsSettings,
    mode: Mode,
    then: impl FnOnce(Result<Arc<Connection>>) + Send + 'static,
) {
    let ssl = match SslStream::new(plain.clone(), false) {
        Ok(s) => s,
        Err(e) => {
            let _ = plain.close();
            return then(Err(tls_error(&e)));
        }
    };
    let configured = ssl
        .set_trusted_cas(tls.trusted.as_ref().map(|t| t.certs.clone()))
        .and_then(|()| ssl.set_validation_callback(tls.validation.as_ref().map(|(cb, _)| cb.clone())));
    if let Err(e) = configured {
        let _ = ssl.close();
        return then(Err(tls_error(&e)));
    }
    let opts = AuthOptions {
        is_server: false,
        target_host: host,
        certificate: tls.client_certificate.clone(),
        protocols: 0,
        check_revocation: false,
        client_certificate_required: false,
    };
    let s = ssl.clone();
    let done = move |r: Result<()>| match r {
        Ok(()) => {
            let context = s.transport_context().unwrap_or_else(|_| Arc::new(TransportContext::EMPTY));
            let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
            then(Ok(Arc::new(Connection { stream: s, context, id })))
        }
        Err(e) => {
            let _ = Stream::close(&*s);
            then(Err(tls_error(&e)))
        }
    };
    match mode {
        Mode::Sync => done(ssl.authenticate(opts)),
        Mode::Async => {
            let s = ssl.clone();
            start_op(
                move |c| s.begin_authenticate(opts, c, crate::tls::ssl_stream::Mode::Async),
                move |o| done(o.map(drop)),
            )
        }
    }
}
