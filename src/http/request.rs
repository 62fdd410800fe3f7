//! HttpWebRequest: settings with .NET's validation and messages, GetRequestStream and
//! GetResponse in the Begin and the blocking forms, redirects, credentials (Basic, and the
//! connection-bound Negotiate and NTLM of `auth`), Timeout, Abort.
//!
//! Where .NET Framework 4 and .NET 8 differ the Framework wins (the seed is a Framework page):
//! EndGetRequestStream hands out the TransportContext of the connection, ContentLength is
//! enforced by the request stream, End checks the owner and a second End, and failures carry the
//! Framework's WebExceptionStatus (ConnectFailure, SecureChannelFailure, TrustFailure, ...)
//! where .NET 8 reports UnknownError.
//!
//! One operation at a time: its user completion sits in a `Pending` slot that the operation's
//! last step, the Timeout timer and Abort race for; whoever takes it completes it, and the
//! others find it gone and only clean up (a step that finds its operation finished drops its
//! connection).

use super::connection::{self, Connection, Endpoint, TlsSettings, Via};
use super::auth::{self, Scheme};
use super::head::{self, Framing, HeadParams, Headers};
use super::io::{self, Mode, Once};
use super::parse::{self, HeadError, Head};
use super::pool::{self, Lease};
use super::proxy;
use super::request_stream::{BodyMode, RequestStream};
use super::response::{Exchange, HttpWebResponse};
use super::{canceled, decompression, msg, protocol_violation, timed_out, web_error, web_status};
use crate::engine::{self, Timer};
use crate::error::{code, Attachment, Error, Result};
use crate::negotiate::credential::Credential;
use crate::op::{Completion, Outcome, Value};
use crate::stream::{ConstBuf, MutBuf};
use crate::tls::certificate::TrustedCas;
use crate::tls::{Certificate, TransportContext, ValidationCallback};
use parking_lot::Mutex;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use url::Url;

pub const CLASS_NAME: &str = "System.Net.HttpWebRequest";

/// HttpWebRequest.DefaultMaximumResponseHeadersLength, in KiB.
pub(crate) const DEFAULT_MAX_RESPONSE_HEADERS_KB: i32 = 64;
/// Attempts of a request whose pooled connection turned out closed by the server.
const MAX_ATTEMPTS: u32 = 3;

/// What EndGetRequestStream hands out.
pub struct RequestStreamGrant {
    pub stream: Arc<RequestStream>,
    pub context: Arc<TransportContext>,
}

/// The settings (properties) of a request.
#[derive(Clone)]
pub struct Settings {
    pub method: String,
    pub content_length: i64,
    pub send_chunked: bool,
    pub headers: Headers,
    pub keep_alive: bool,
    pub http11: bool,
    pub timeout_ms: i32,
    pub rw_timeout_ms: i32,
    pub allow_redirect: bool,
    pub max_redirects: i32,
    pub decompression: i32,
    pub expect_continue: bool,
    pub max_headers_kb: i32,
    /// Credentials: a NetworkCredential, or (`default`) CredentialCache.DefaultCredentials.
    pub credentials: Option<Credential>,
    /// PreAuthenticate: Basic credentials a server accepted go up front to its URI prefix.
    pub pre_authenticate: bool,
    pub tls: TlsSettings,
    pub proxy: proxy::Setting,
    /// WebProxy.Credentials: in place of the proxy URI's user information.
    pub proxy_credentials: Option<(String, String)>,
}

/// The operation in progress: its completion, raced for by its steps, the timer and Abort.
struct Pending {
    done: Once<Completion>,
    timer: Mutex<Option<Timer>>,
}

impl Pending {
    fn finish(&self, outcome: Outcome) -> bool {
        match self.done.take() {
            Some(d) => {
                if let Some(t) = self.timer.lock().take() {
                    t.cancel();
                }
                d.complete(outcome);
                true
            }
            None => false,
        }
    }

    fn is_done(&self) -> bool {
        self.done.is_taken()
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    Created,
    GettingStream,
    StreamOut,
    GettingResponse,
    Responded,
}

struct State {
    s: Settings,
    request_uri: Url,
    /// Address: the URI after redirects.
    address: Url,
    phase: Phase,
    /// GetRequestStream or GetResponse has started: the head's properties are fixed.
    submitted: bool,
    aborted: bool,
    pending: Option<Arc<Pending>>,
    /// The connection a request stream writes to (or will send a buffered body on).
    lease: Option<Lease>,
    /// The connection in use, for Abort and Timeout to close.
    current: Option<Arc<Connection>>,
    stream: Option<Weak<RequestStream>>,
    stream_mode: Option<BodyMode>,
    /// The request stream was closed with its body complete.
    body_done: bool,
    buffered: Option<Arc<Vec<u8>>>,
    response: Option<Arc<HttpWebResponse>>,
}

pub struct HttpWebRequest {
    me: Weak<HttpWebRequest>,
    state: Mutex<State>,
}

/// The body one exchange sends.
#[derive(Clone)]
enum Body {
    /// No body: `Content-Length: 0` for methods that may carry one, nothing for GET and HEAD.
    Empty,
    Bytes(Arc<Vec<u8>>),
    /// Sent already through the request stream (it cannot be sent again).
    Streamed,
    /// Sent already through the request stream, which kept a copy (the request has
    /// credentials, as the Framework's AllowWriteStreamBuffering keeps one): the first exchange
    /// only reads its response, a later one sends the copy.
    Sent(Arc<Vec<u8>>),
}

/// One exchange of the request: what goes out, where.
#[derive(Clone)]
struct Plan {
    method: String,
    uri: Url,
    body: Body,
    redirects: i32,
    attempt: u32,
    authorization: Option<String>,
    /// In place of the route's (Basic) Proxy-Authorization: a proxy's Negotiate or NTLM token.
    proxy_authorization: Option<String>,
    /// The connection-bound exchange in progress (its legs stay on one connection), and whether
    /// it is with the proxy (407) rather than the server (401).
    session: Option<Arc<Mutex<auth::Session>>>,
    proxy_session: bool,
}

impl Plan {
    fn new(method: String, uri: Url, body: Body, authorization: Option<String>) -> Plan {
        Plan { method, uri, body, redirects: 0, attempt: 0, authorization, proxy_authorization: None, session: None, proxy_session: false }
    }
}

/// A step of a proxy's authentication of a CONNECT: the session, the proxy's token (None: the
/// first step), and whether it is the first.
type ConnectStep = (Arc<Mutex<auth::Session>>, Option<Vec<u8>>, bool);

/// A tunnel being opened: where to, its TLS settings, and the proxy authentication in progress.
struct Tunnel {
    to: Endpoint,
    tls: TlsSettings,
    session: Option<Arc<Mutex<auth::Session>>>,
}

/// A final response head and what came with it, while an authentication step runs.
struct Answer {
    head: Head,
    lease: Lease,
    leftover: Vec<u8>,
    plan: Plan,
}

/// What a 401 or 407 (or a final answer to a token) asks for.
enum Auth {
    /// Nothing: the answer is the response.
    None,
    /// Nothing, and why (for the error's inner message).
    GiveUp(String),
    /// Send the request again with this Basic Authorization.
    Basic(String),
    /// Step the session with the server's token (None: the first step).
    Step { session: Arc<Mutex<auth::Session>>, input: Option<Vec<u8>>, proxy: bool, first: bool, last: bool },
}

fn no_body_verb(method: &str) -> bool {
    ["GET", "HEAD", "CONNECT"].iter().any(|m| m.eq_ignore_ascii_case(method))
}

fn endpoint_of(uri: &Url, tls: &TlsSettings) -> Endpoint {
    let https = uri.scheme() == "https";
    Endpoint {
        https,
        host: uri.host_str().unwrap_or("").to_string(),
        port: uri.port_or_known_default().unwrap_or(80),
        proxy: None,
        tls: if https { tls.group() } else { Default::default() },
    }
}

/// Where a request to `uri` connects (its ServicePoint's key), and the Proxy-Authorization its
/// head carries (http through a proxy; a tunnel carries its own in the CONNECT).
fn route(s: &Settings, uri: &Url) -> (Endpoint, Option<String>) {
    let direct = endpoint_of(uri, &s.tls);
    let Some(p) = s.proxy.for_uri(uri, s.proxy_credentials.as_ref()) else { return (direct, None) };
    let authorization = p.credentials.as_ref().map(proxy::basic);
    if direct.https {
        (Endpoint { proxy: Some(Via { host: p.host, port: p.port, authorization }), ..direct }, None)
    } else {
        let via = Via { host: p.host, port: p.port, authorization: None };
        (Endpoint { https: false, host: String::new(), port: 0, proxy: Some(via), tls: Default::default() }, authorization)
    }
}

/// Runs one step of `session` with the server's token, inline, or on the blocking pool when the
/// step calls GSSAPI (Kerberos) and the request is asynchronous: a blocking call never runs on an
/// engine thread (as NegotiateStream's handshake offloads it). `then` gets the outcome.
fn run_step(
    session: &Arc<Mutex<auth::Session>>,
    input: Option<Vec<u8>>,
    mode: Mode,
    then: impl FnOnce(std::result::Result<auth::Step, String>) + Send + 'static,
) {
    let offload = mode == Mode::Async && session.lock().blocking(input.as_deref());
    let sess = session.clone();
    let work = move || sess.lock().step(input.as_deref());
    if !offload {
        return then(work());
    }
    let slot = Arc::new(Once::new(then));
    let s2 = slot.clone();
    let task = Box::new(move || {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).unwrap_or_else(|_| {
            engine::report_panic("an authentication step of an HttpWebRequest");
            Err("The authentication step panicked.".to_string())
        });
        if let Some(then) = s2.take() {
            then(r)
        }
    });
    if let Err(e) = engine::spawn_blocking(task) {
        if let Some(then) = slot.take() {
            then(Err(e.message.clone()))
        }
    }
}

/// The challenges of a head's `name` headers (WWW-Authenticate or Proxy-Authenticate).
fn challenges(head: &Head, name: &str) -> Vec<auth::Challenge> {
    auth::parse(head.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()))
}

/// PreAuthenticate: the Basic Authorization the first request to `uri` carries, when a server
/// accepted these credentials for a prefix of it before. Negotiate and NTLM authenticate a
/// connection, not a request: as in .NET, they are never sent up front.
fn pre_authorization(s: &Settings, uri: &Url) -> Option<String> {
    let c = s.credentials.as_ref().filter(|c| s.pre_authenticate && !c.default)?;
    let header = auth::basic(c);
    auth::remembered(uri, &header).then_some(header)
}

fn out_of_range(message: &str) -> Error {
    Error::new(code::ARGUMENT_OUT_OF_RANGE, format!("{message} (Parameter 'value')"))
}

/// WebRequest.Create's checks: an absolute http or https URI.
pub fn parse_uri(text: &str) -> Result<Url> {
    let uri = Url::parse(text).map_err(|e| {
        Error::argument(format!("Invalid URI: The format of the URI could not be determined. ({e})"))
    })?;
    if uri.scheme() != "http" && uri.scheme() != "https" {
        return Err(Error::not_supported(msg::NOT_HTTP_URI));
    }
    if uri.host_str().map_or(true, |h| h.is_empty()) {
        return Err(Error::argument("Invalid URI: The hostname could not be parsed."));
    }
    Ok(uri)
}

impl HttpWebRequest {
    /// WebRequest.Create(uri) for an http or https URI.
    pub fn create(uri: &str) -> Result<Arc<HttpWebRequest>> {
        let uri = parse_uri(uri)?;
        let settings = Settings {
            method: "GET".into(),
            content_length: -1,
            send_chunked: false,
            headers: Headers::default(),
            keep_alive: true,
            http11: true,
            timeout_ms: 100_000,
            rw_timeout_ms: 300_000,
            allow_redirect: true,
            max_redirects: 50,
            decompression: decompression::NONE,
            expect_continue: false,
            max_headers_kb: DEFAULT_MAX_RESPONSE_HEADERS_KB,
            credentials: None,
            pre_authenticate: false,
            tls: TlsSettings::default(),
            proxy: proxy::Setting::Default,
            proxy_credentials: None,
        };
        Ok(Arc::new_cyclic(|me| HttpWebRequest {
            me: me.clone(),
            state: Mutex::new(State {
                s: settings,
                request_uri: uri.clone(),
                address: uri,
                phase: Phase::Created,
                submitted: false,
                aborted: false,
                pending: None,
                lease: None,
                current: None,
                stream: None,
                stream_mode: None,
                body_done: false,
                buffered: None,
                response: None,
            }),
        }))
    }

    // ---------------------------------------------------------------------------------------
    // Properties

    pub fn settings(&self) -> Settings {
        self.state.lock().s.clone()
    }

    /// Changes a property of the request head: refused once writing started.
    fn head_property(&self, f: impl FnOnce(&mut Settings) -> Result<()>) -> Result<()> {
        let mut st = self.state.lock();
        if st.submitted {
            return Err(Error::invalid_operation(msg::WRITE_STARTED));
        }
        f(&mut st.s)
    }

    fn set_head(&self, f: impl FnOnce(&mut Settings)) -> Result<()> {
        self.head_property(|s| {
            f(s);
            Ok(())
        })
    }

    fn set_submitted_only(&self, f: impl FnOnce(&mut Settings)) -> Result<()> {
        self.setting(|s| {
            f(s);
            Ok(())
        })
    }

    /// Changes a setting that only the submission fixes.
    fn setting(&self, f: impl FnOnce(&mut Settings) -> Result<()>) -> Result<()> {
        let mut st = self.state.lock();
        if st.submitted {
            return Err(Error::invalid_operation(msg::REQUEST_SUBMITTED));
        }
        f(&mut st.s)
    }

    pub fn set_method(&self, method: &str) -> Result<()> {
        if method.is_empty() || !method.bytes().all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b)) {
            return Err(Error::argument(msg::BAD_METHOD));
        }
        self.setting(|s| {
            s.method = method.to_string();
            Ok(())
        })
    }

    pub fn set_content_length(&self, n: i64) -> Result<()> {
        self.head_property(|s| {
            if n < 0 {
                return Err(out_of_range("The Content-Length value must be greater than or equal to zero."));
            }
            s.content_length = n;
            Ok(())
        })
    }

    pub fn set_send_chunked(&self, on: bool) -> Result<()> {
        self.set_head(|s| s.send_chunked = on)
    }

    pub fn set_keep_alive(&self, on: bool) -> Result<()> {
        self.set_head(|s| s.keep_alive = on)
    }

    pub fn set_protocol_version(&self, major: i32, minor: i32) -> Result<()> {
        let http11 = match (major, minor) {
            (1, 1) => true,
            (1, 0) => false,
            _ => return Err(Error::argument(msg::BAD_VERSION)),
        };
        self.set_head(|s| s.http11 = http11)
    }

    /// Timeout: settable at any time; it applies to the operations started afterwards.
    pub fn set_timeout(&self, ms: i32) -> Result<()> {
        if ms < -1 {
            return Err(out_of_range(msg::TIMEOUT_RANGE));
        }
        self.state.lock().s.timeout_ms = ms;
        Ok(())
    }

    pub fn set_read_write_timeout(&self, ms: i32) -> Result<()> {
        if ms <= 0 && ms != -1 {
            return Err(out_of_range(msg::RW_TIMEOUT_RANGE));
        }
        self.set_submitted_only(|s| s.rw_timeout_ms = ms)
    }

    pub fn set_allow_auto_redirect(&self, on: bool) -> Result<()> {
        self.set_head(|s| s.allow_redirect = on)
    }

    pub fn set_max_redirects(&self, n: i32) -> Result<()> {
        if n <= 0 {
            return Err(Error::argument("The specified value must be greater than 0."));
        }
        self.set_head(|s| s.max_redirects = n)
    }

    pub fn set_decompression(&self, flags: i32) -> Result<()> {
        if flags & !decompression::ALL != 0 {
            return Err(out_of_range("The value is not a combination of DecompressionMethods flags."));
        }
        self.set_head(|s| s.decompression = flags)
    }

    pub fn set_expect_continue(&self, on: bool) -> Result<()> {
        self.set_head(|s| s.expect_continue = on)
    }

    pub fn set_max_response_headers_kb(&self, kb: i32) -> Result<()> {
        if kb < -1 || kb == 0 {
            return Err(Error::argument("The specified value must be greater than 0."));
        }
        self.set_submitted_only(|s| s.max_headers_kb = kb)
    }

    /// Credentials (None: null; a `default` credential: CredentialCache.DefaultCredentials).
    pub fn set_credentials(&self, credentials: Option<Credential>) -> Result<()> {
        self.set_submitted_only(|s| s.credentials = credentials)
    }

    /// UseDefaultCredentials: true sets Credentials to the default credential; false clears
    /// Credentials only when they are the default (as .NET's setter).
    pub fn set_use_default_credentials(&self, on: bool) -> Result<()> {
        self.set_submitted_only(|s| {
            if on {
                s.credentials = Some(Credential::default_credentials());
            } else if s.credentials.as_ref().is_some_and(|c| c.default) {
                s.credentials = None;
            }
        })
    }

    pub fn set_pre_authenticate(&self, on: bool) -> Result<()> {
        self.set_submitted_only(|s| s.pre_authenticate = on)
    }

    /// Proxy: explicit, none, or the default (the environment's).
    pub fn set_proxy(&self, setting: proxy::Setting) -> Result<()> {
        self.set_submitted_only(|s| s.proxy = setting)
    }

    /// Proxy.Credentials (None: the proxy URI's own, if any).
    pub fn set_proxy_credentials(&self, credentials: Option<(String, String)>) -> Result<()> {
        self.set_submitted_only(|s| s.proxy_credentials = credentials)
    }

    /// Proxy.GetProxy(Address) unless bypassed: the proxy the next request goes through.
    pub fn proxy_address(&self) -> Option<String> {
        let st = self.state.lock();
        st.s.proxy.for_uri(&st.address, None).map(|p| p.address())
    }

    pub fn set_trusted_cas(&self, cas: Option<TrustedCas>) -> Result<()> {
        self.set_submitted_only(|s| s.tls.trusted = cas)
    }

    /// `identity` tells two callbacks apart (see `TlsGroup`): connections are shared only by
    /// requests whose callbacks have the same.
    pub fn set_validation_callback(&self, cb: Option<ValidationCallback>, identity: connection::CallbackIdentity) -> Result<()> {
        self.set_submitted_only(|s| s.tls.validation = cb.map(|cb| (cb, identity)))
    }

    pub fn set_client_certificate(&self, cert: Option<Arc<Certificate>>) -> Result<()> {
        self.set_submitted_only(|s| s.tls.client_certificate = cert)
    }

    /// A header with a property of its own (Content-Type, User-Agent, Accept, Referer,
    /// Connection, Expect, Transfer-Encoding, Host, Date, If-Modified-Since, Range), with the
    /// property's rules; None or "" removes it.
    pub fn set_property_header(&self, name: &str, value: Option<&str>) -> Result<()> {
        let value = match value {
            Some(v) if !v.is_empty() => Some(head::check_value(v)?),
            _ => None,
        };
        self.head_property(|s| {
            if let Some(v) = &value {
                let lower = v.to_ascii_lowercase();
                let has = |t: &str| lower.split(',').any(|x| x.trim() == t);
                if name.eq_ignore_ascii_case("Connection") && (has("keep-alive") || has("close")) {
                    return Err(Error::argument(msg::KEEP_ALIVE_IN_CONNECTION));
                }
                if name.eq_ignore_ascii_case("Expect") && has("100-continue") {
                    return Err(Error::argument(msg::CONTINUE_IN_EXPECT));
                }
                if name.eq_ignore_ascii_case("Transfer-Encoding") {
                    if has("chunked") {
                        return Err(Error::argument(msg::CHUNKED_IN_TRANSFER_ENCODING));
                    }
                    if !s.send_chunked {
                        return Err(Error::invalid_operation(msg::NEED_CHUNKED));
                    }
                }
            }
            match value {
                Some(v) => s.headers.set(name, v),
                None => s.headers.remove(name),
            }
            Ok(())
        })
    }

    /// Headers.Set / Headers.Add (`add`) / Headers.Remove (value None): the restricted headers
    /// are refused (they have properties).
    pub fn set_header(&self, name: &str, value: Option<&str>, add: bool) -> Result<()> {
        head::check_name(name)?;
        if head::is_restricted(name) {
            return Err(Error::argument(msg::restricted(name)));
        }
        let value = value.map(head::check_value).transpose()?;
        self.setting(|s| {
            match value {
                Some(v) if add => s.headers.add(name, v),
                Some(v) => s.headers.set(name, v),
                None => s.headers.remove(name),
            }
            Ok(())
        })
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.state.lock().s.headers.get(name).map(str::to_string)
    }

    /// RequestUri: the URI the request was created with.
    pub fn request_uri(&self) -> String {
        self.state.lock().request_uri.to_string()
    }

    /// Address: the URI after redirects.
    pub fn address(&self) -> String {
        self.state.lock().address.to_string()
    }

    /// The ServicePoint of the request's URI (through its proxy, if any).
    pub fn service_point(&self) -> Arc<pool::ServicePoint> {
        let st = self.state.lock();
        pool::service_point(&route(&st.s, &st.request_uri).0)
    }

    // ---------------------------------------------------------------------------------------
    // Abort and Timeout

    /// Abort: idempotent. The pending operation completes with RequestCanceled (its callback
    /// runs once, possibly on this thread), the connection is closed, and every later call that
    /// checks it reports RequestCanceled.
    pub fn abort(&self) {
        let (pending, current, lease, stream, response) = {
            let mut st = self.state.lock();
            if std::mem::replace(&mut st.aborted, true) {
                return;
            }
            (
                st.pending.take(),
                st.current.take(),
                st.lease.take(),
                st.stream.as_ref().and_then(Weak::upgrade),
                st.response.clone(),
            )
        };
        if let Some(s) = &stream {
            s.abort();
        }
        if let Some(c) = current {
            c.close();
        }
        drop(lease);
        if let Some(p) = pending {
            p.finish(Err(canceled()));
        }
        if let Some(r) = response {
            r.close();
        }
    }

    pub fn is_aborted(&self) -> bool {
        self.state.lock().aborted
    }

    /// End's abort check (after its other checks): RequestCanceled once Abort was called.
    pub fn check_abort(&self) -> Result<()> {
        if self.is_aborted() {
            Err(canceled())
        } else {
            Ok(())
        }
    }

    /// Starts an operation's Timeout: past it the operation completes with WebException
    /// Timeout and its connection is closed.
    fn start_timeout(&self, pending: &Arc<Pending>) {
        let ms = self.state.lock().s.timeout_ms;
        if ms < 0 {
            return;
        }
        let (me, p) = (self.me.clone(), pending.clone());
        let fire = Box::new(move || {
            if p.done.take().map(|d| d.complete(Err(timed_out()))).is_some() {
                if let Some(req) = me.upgrade() {
                    req.drop_connections();
                }
            }
        });
        if let Ok(t) = engine::add_timer(Instant::now() + Duration::from_millis(ms as u64), fire) {
            *pending.timer.lock() = Some(t);
            if pending.is_done() {
                if let Some(t) = pending.timer.lock().take() {
                    t.cancel();
                }
            }
        }
    }

    fn drop_connections(&self) {
        let (current, lease) = {
            let mut st = self.state.lock();
            (st.current.take(), st.lease.take())
        };
        if let Some(c) = current {
            c.close();
        }
        drop(lease);
    }

    fn set_current(&self, conn: &Arc<Connection>) {
        self.state.lock().current = Some(conn.clone());
    }

    /// Begins an operation: the checks every Begin makes, then its Pending slot and timer.
    fn begin_op(&self, done: Completion, phase: Phase, check: impl FnOnce(&mut State) -> Result<()>) -> Result<Arc<Pending>> {
        let pending = {
            let mut st = self.state.lock();
            if st.aborted {
                return Err(canceled());
            }
            if st.pending.as_ref().is_some_and(|p| !p.is_done()) {
                return Err(Error::invalid_operation(msg::REPEATED_CALL));
            }
            check(&mut st)?;
            st.submitted = true;
            st.phase = phase;
            let p = Arc::new(Pending { done: Once::new(done), timer: Mutex::new(None) });
            st.pending = Some(p.clone());
            p
        };
        self.start_timeout(&pending);
        Ok(pending)
    }

    /// Completes the pending operation (unless Abort or the timer did).
    fn finish(&self, pending: &Pending, outcome: Outcome) {
        let outcome = match outcome {
            Err(_) if self.is_aborted() => Err(canceled()),
            o => o,
        };
        pending.finish(outcome);
    }

    // ---------------------------------------------------------------------------------------
    // Connections

    /// A lease with an open connection to `uri`'s endpoint.
    fn connect(self: &Arc<Self>, uri: &Url, mode: Mode, pending: &Arc<Pending>, then: impl FnOnce(Result<Lease>) + Send + 'static) {
        let (to, tls) = {
            let st = self.state.lock();
            (route(&st.s, uri).0, st.s.tls.clone())
        };
        let sp = pool::service_point(&to);
        let (me, p) = (self.clone(), pending.clone());
        let got = move |mut lease: Lease| {
            if p.is_done() {
                return;
            }
            if let Some(c) = &lease.conn {
                me.set_current(c);
                return then(Ok(lease));
            }
            let m = me.clone();
            connection::open(&to.clone(), &tls.clone(), mode, move |r| match r {
                Ok(c) => {
                    m.set_current(&c);
                    lease.opened(c);
                    if to.https && to.proxy.is_some() {
                        return m.tunnel(lease, to, tls, mode, p, then);
                    }
                    then(Ok(lease))
                }
                Err(e) => then(Err(e)),
            })
        };
        match mode {
            Mode::Async => sp.acquire(got),
            Mode::Sync => {
                // The caller's thread waits for its turn and then drives the connection itself.
                let (tx, rx) = std::sync::mpsc::sync_channel::<Lease>(1);
                sp.acquire(move |lease| {
                    let _ = tx.send(lease);
                });
                loop {
                    match rx.recv_timeout(Duration::from_millis(50)) {
                        Ok(lease) => return got(lease),
                        Err(std::sync::mpsc::RecvTimeoutError::Timeout) if !pending.is_done() => continue,
                        Err(_) => return,
                    }
                }
            }
        }
    }

    /// Opens the tunnel of an https request through a proxy on the lease's new connection
    /// (CONNECT, a 2xx answer), then the TLS handshake with the server over it. Another answer
    /// fails with ProtocolError and that answer attached as the response (407 included: the
    /// Framework's "(407) Proxy Authentication Required."), unless the 407 offers Negotiate or NTLM
    /// and the request has proxy credentials: the CONNECT then goes again on the same connection
    /// with each token.
    fn tunnel(self: &Arc<Self>, lease: Lease, to: Endpoint, tls: TlsSettings, mode: Mode, pending: Arc<Pending>, then: impl FnOnce(Result<Lease>) + Send + 'static) {
        let authorization = to.proxy.as_ref().and_then(|v| v.authorization.clone());
        let t = Tunnel { to, tls, session: None };
        self.clone().connect_leg(lease, t, authorization, mode, pending, Box::new(then))
    }

    fn connect_leg(
        self: Arc<Self>,
        lease: Lease,
        t: Tunnel,
        authorization: Option<String>,
        mode: Mode,
        pending: Arc<Pending>,
        then: Box<dyn FnOnce(Result<Lease>) + Send>,
    ) {
        let head = head::connect_head(&t.to.host, t.to.port, authorization.as_deref());
        let max_headers_kb = self.state.lock().s.max_headers_kb;
        Self::send_head(lease, head, None, mode, move |r| match r {
            Ok(lease) => {
                let reader = HeadReader::new(max_headers_kb);
                self.read_connect_answer(reader, lease, t, mode, pending, then)
            }
            Err(e) => then(Err(e)),
        })
    }

    /// The proxy's 407 to a CONNECT: the session and token to step it with, when the request has
    /// proxy credentials and the proxy offers Negotiate or NTLM (Basic went up front already).
    fn connect_auth(&self, head: &Head, t: &Tunnel) -> Option<ConnectStep> {
        let found = challenges(head, "Proxy-Authenticate");
        if let Some(session) = &t.session {
            let g = session.lock();
            if g.is_complete() || g.legs >= auth::MAX_LEGS {
                return None;
            }
            return auth::token_of(&found, g.scheme).map(|token| (session.clone(), Some(token), false));
        }
        let s = self.settings();
        let uri = self.state.lock().address.clone();
        let proxy = s.proxy.for_uri(&uri, s.proxy_credentials.as_ref())?;
        let (user, password) = proxy.credentials?;
        let credential = Credential { user, password, ..Credential::default() };
        let scheme = auth::pick(&found, &credential).filter(|s| *s != Scheme::Basic)?;
        let session = auth::Session::new(scheme, &credential, &proxy.host, None);
        Some((Arc::new(Mutex::new(session)), None, true))
    }

    /// The response of a CONNECT answer other than 2xx (`hold`: its connection is kept for the
    /// next leg of the proxy's authentication).
    fn connect_response(&self, head: Head, lease: Lease, leftover: Vec<u8>, hold: bool) -> Result<Arc<HttpWebResponse>> {
        let (uri, rw_timeout_ms) = {
            let st = self.state.lock();
            (st.address.to_string(), st.s.rw_timeout_ms)
        };
        let exchange = Exchange {
            method: "CONNECT".into(),
            response_uri: uri,
            decompression: 0,
            rw_timeout_ms,
            keep_alive: hold,
            hold,
        };
        HttpWebResponse::new(head, lease, leftover, &exchange)
    }

    /// A CONNECT answer other than 2xx as the failure: ProtocolError with the answer attached.
    fn connect_refused(&self, head: Head, lease: Lease, leftover: Vec<u8>) -> Error {
        match self.connect_response(head, lease, leftover, false) {
            Ok(response) => {
                let text = msg::server_error(response.status, &response.description);
                let e = web_error(web_status::PROTOCOL_ERROR, text, None);
                e.with(|fail| {
                    fail.http_status = response.status as i32;
                    fail.attachment = Some(Attachment(response));
                })
            }
            Err(e) => e,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn read_connect_answer(
        self: Arc<Self>,
        mut r: HeadReader,
        mut lease: Lease,
        t: Tunnel,
        mode: Mode,
        pending: Arc<Pending>,
        then: Box<dyn FnOnce(Result<Lease>) + Send>,
    ) {
        if pending.is_done() {
            return;
        }
        loop {
            match parse::parse_head(&r.buf[..r.len], r.limit) {
                Ok(Some(head)) if (100..200).contains(&head.status) => r.skip(head.len),
                Ok(Some(head)) if (200..300).contains(&head.status) => {
                    if head.len != r.len {
                        // The server speaks after the client in TLS: bytes here are the proxy's.
                        let detail = "Bytes followed the proxy's answer to CONNECT";
                        return then(Err(head_error(HeadError::Header(detail))));
                    }
                    let Some(plain) = lease.conn.clone() else { return };
                    let me = self.clone();
                    return connection::secure(&plain, &t.to.host, &t.tls, mode, move |c| match c {
                        Ok(c) => {
                            me.set_current(&c);
                            lease.conn = Some(c);
                            then(Ok(lease))
                        }
                        Err(e) => then(Err(e)),
                    });
                }
                Ok(Some(head)) => {
                    let leftover = r.buf[head.len..r.len].to_vec();
                    let step = if head.status == 407 { self.connect_auth(&head, &t) } else { None };
                    let Some((session, input, first)) = step else {
                        return then(Err(self.connect_refused(head, lease, leftover)));
                    };
                    let s2 = session.clone();
                    return run_step(&session, input, mode, move |step| {
                        let header = match step {
                            Ok(auth::Step::Send(h)) => h,
                            _ => return then(Err(self.connect_refused(head, lease, leftover))),
                        };
                        let response = match self.connect_response(head, lease, leftover, true) {
                            Ok(r) => r,
                            Err(e) => return then(Err(e)),
                        };
                        let keep = response.clone();
                        let t = Tunnel { session: Some(s2), ..t };
                        response.stream.drain_connection(
                            mode,
                            Box::new(move |lease| {
                                drop(keep);
                                match lease {
                                    Some(lease) => self.connect_leg(lease, t, Some(header), mode, pending, then),
                                    None => {
                                        let e = web_error(web_status::CONNECTION_CLOSED, msg::CONNECTION_CLOSED, None);
                                        let why = if first { msg::AUTH_PROXY_CLOSED } else { msg::AUTH_CONNECTION_LOST };
                                        then(Err(e.with_inner(why)))
                                    }
                                }
                            }),
                        );
                    });
                }
                Ok(None) => break,
                Err(e) => return then(Err(head_error(e))),
            }
        }
        let Some(conn) = lease.conn.clone() else { return };
        let target = r.spare();
        io::read(&conn.stream, target, mode, move |n| match n {
            Err(e) => then(Err(web_error(web_status::RECEIVE_FAILURE, msg::RECEIVE_FAILURE, Some(&e)))),
            Ok(0) if r.len == 0 => then(Err(web_error(web_status::CONNECTION_CLOSED, msg::CONNECTION_CLOSED, None))),
            Ok(0) => then(Err(head_error(HeadError::Header("The response ended before its headers did")))),
            Ok(n) => {
                r.filled(n);
                self.read_connect_answer(r, lease, t, mode, pending, then)
            }
        });
    }

    fn head_for(&self, plan: &Plan, framing: Framing, new_connection: bool) -> Vec<u8> {
        let st = self.state.lock();
        let s = &st.s;
        let (to, proxy_authorization) = route(s, &plan.uri);
        let absolute = to.proxy.is_some() && !to.https;
        let encodings = match s.decompression {
            decompression::GZIP => Some("gzip"),
            decompression::DEFLATE => Some("deflate"),
            decompression::ALL => Some("gzip, deflate"),
            _ => None,
        };
        head::serialize(&HeadParams {
            method: &plan.method,
            uri: &plan.uri,
            headers: &s.headers,
            framing,
            http11: s.http11,
            keep_alive: s.keep_alive,
            new_connection,
            accept_encoding: encodings,
            expect_continue: s.expect_continue,
            authorization: plan.authorization.as_deref(),
            absolute,
            proxy_authorization: plan.proxy_authorization.as_deref().or(proxy_authorization.as_deref()),
        })
    }

    /// Writes `head` (and `body`) on the lease's connection.
    fn send_head(lease: Lease, head: Vec<u8>, body: Option<Arc<Vec<u8>>>, mode: Mode, then: impl FnOnce(Result<Lease>) + Send + 'static) {
        let Some(conn) = lease.conn.clone() else { return then(Err(Error::internal("a lease without a connection"))) };
        let buf = ConstBuf { ptr: head.as_ptr(), len: head.len() };
        let stream = conn.stream.clone();
        io::write(&conn.stream, buf, mode, move |r| {
            drop(head);
            let fail = |e: Error, lease: Lease| {
                let status = if lease.reused { web_status::KEEP_ALIVE_FAILURE } else { web_status::SEND_FAILURE };
                let text = if lease.reused { msg::KEEP_ALIVE_FAILURE } else { msg::SEND_FAILURE };
                web_error(status, text, Some(&e))
            };
            match (r, body) {
                (Err(e), _) => then(Err(fail(e, lease))),
                (Ok(()), None) => then(Ok(lease)),
                (Ok(()), Some(b)) if b.is_empty() => then(Ok(lease)),
                (Ok(()), Some(b)) => {
                    let buf = ConstBuf { ptr: b.as_ptr(), len: b.len() };
                    io::write(&stream, buf, mode, move |r| {
                        drop(b);
                        match r {
                            Ok(()) => then(Ok(lease)),
                            Err(e) => then(Err(fail(e, lease))),
                        }
                    })
                }
            }
        })
    }

    // ---------------------------------------------------------------------------------------
    // GetRequestStream

    /// BeginGetRequestStream (Mode::Sync: GetRequestStream). Connects (or takes a pooled
    /// connection), authenticates for https, sends the head unless the body is buffered; the
    /// outcome is a `RequestStreamGrant`.
    pub fn begin_get_request_stream(self: &Arc<Self>, mode: Mode, done: Completion) -> Result<()> {
        let mut setup = None;
        let pending = self.begin_op(done, Phase::GettingStream, |st| {
            if no_body_verb(&st.s.method) {
                return Err(protocol_violation(msg::NO_UPLOAD_ON_GET));
            }
            if st.submitted {
                return Err(Error::invalid_operation(msg::REQUEST_SUBMITTED));
            }
            if st.s.send_chunked && !st.s.http11 {
                return Err(protocol_violation(msg::CHUNKED_ON_HTTP10));
            }
            let mode = if st.s.send_chunked {
                BodyMode::Chunked
            } else if st.s.content_length >= 0 {
                BodyMode::Length
            } else {
                BodyMode::Buffered
            };
            st.stream_mode = Some(mode);
            let authorization = pre_authorization(&st.s, &st.address);
            setup = Some((mode, st.s.content_length.max(0) as u64, st.address.clone(), st.s.method.clone(), st.s.rw_timeout_ms, authorization));
            Ok(())
        })?;
        let (body_mode, length, uri, method, rw_timeout, authorization) = setup.expect("set by the checks");
        let me = self.clone();
        let p = pending.clone();
        let target = uri.clone();
        self.connect(&target, mode, &pending, move |r| {
            let lease = match r {
                Ok(l) => l,
                Err(e) => return me.finish(&p, Err(e)),
            };
            let framing = match body_mode {
                BodyMode::Chunked => Framing::Chunked,
                BodyMode::Length => Framing::Length(length),
                BodyMode::Buffered => return me.grant_stream(&p, lease, body_mode, 0, rw_timeout),
            };
            let plan = Plan::new(method, uri, Body::Streamed, authorization);
            let head = me.head_for(&plan, framing, !lease.reused);
            let m = me.clone();
            Self::send_head(lease, head, None, mode, move |r| match r {
                Ok(lease) => m.grant_stream(&p, lease, body_mode, length, rw_timeout),
                Err(e) => m.finish(&p, Err(e)),
            })
        });
        Ok(())
    }

    fn grant_stream(self: &Arc<Self>, pending: &Pending, lease: Lease, mode: BodyMode, length: u64, rw_timeout: i32) {
        let Some(conn) = lease.conn.clone() else { return };
        let keeps_copy = {
            let s = &self.state.lock().s;
            s.credentials.is_some() || s.proxy_credentials.is_some()
        };
        let stream = RequestStream::new(self.clone(), conn.clone(), mode, length, rw_timeout, keeps_copy);
        {
            let mut st = self.state.lock();
            if pending.is_done() || st.aborted {
                return;
            }
            st.lease = Some(lease);
            st.stream = Some(Arc::downgrade(&stream));
            st.phase = Phase::StreamOut;
        }
        let grant = RequestStreamGrant { stream, context: conn.context.clone() };
        self.finish(pending, Ok(Value::Object(Arc::new(grant))));
    }

    /// The request stream closed with its body complete.
    pub(super) fn body_written(&self) {
        self.state.lock().body_done = true;
    }

    pub(super) fn set_buffered_body(&self, body: Vec<u8>) {
        self.state.lock().buffered = Some(Arc::new(body));
    }

    // ---------------------------------------------------------------------------------------
    // GetResponse

    /// BeginGetResponse (Mode::Sync: GetResponse): the outcome is the HttpWebResponse, or a
    /// WebException (ProtocolError with the response attached for a status >= 400).
    pub fn begin_get_response(self: &Arc<Self>, mode: Mode, done: Completion) -> Result<()> {
        // A request stream still open is closed first (a ContentLength body must be complete).
        let open_stream = {
            let st = self.state.lock();
            if st.aborted {
                return Err(canceled());
            }
            st.stream.as_ref().and_then(Weak::upgrade).filter(|s| !s.is_closed())
        };
        if let Some(s) = open_stream {
            if st_pending_active(self) {
                return Err(Error::invalid_operation(msg::REPEATED_CALL));
            }
            crate::stream::Stream::close(&*s)?;
        }
        let mut plan = None;
        let mut earlier = None;
        let pending = self.begin_op(done, Phase::GettingResponse, |st| {
            if let Some(r) = &st.response {
                earlier = Some(r.clone());
                return Ok(());
            }
            let body = match st.stream_mode {
                Some(BodyMode::Buffered) => Body::Bytes(st.buffered.clone().unwrap_or_default()),
                Some(_) => st.buffered.clone().map_or(Body::Streamed, Body::Sent),
                None => {
                    let wants_body = st.s.content_length > 0 || st.s.send_chunked;
                    if wants_body && no_body_verb(&st.s.method) {
                        return Err(protocol_violation(msg::NO_BODY_HEADERS));
                    }
                    if wants_body {
                        return Err(protocol_violation(msg::BODY_MISSING));
                    }
                    Body::Empty
                }
            };
            if st.stream_mode.is_some() && !st.body_done {
                return Err(canceled());
            }
            plan = Some(Plan::new(st.s.method.clone(), st.address.clone(), body, pre_authorization(&st.s, &st.address)));
            Ok(())
        })?;
        if let Some(r) = earlier {
            self.finish(&pending, Ok(Value::Object(r)));
            return Ok(());
        }
        let plan = plan.expect("set by the checks");
        let lease = self.state.lock().lease.take();
        match (lease, &plan.body) {
            (Some(lease), Body::Streamed | Body::Sent(_)) => self.read_response(lease, plan, mode, pending),
            (lease, _) => self.exchange(lease, plan, mode, pending),
        }
        Ok(())
    }

    /// Sends the request of `plan` (on `lease`, or on a connection of the pool) and reads its
    /// response.
    fn exchange(self: &Arc<Self>, lease: Option<Lease>, plan: Plan, mode: Mode, pending: Arc<Pending>) {
        let me = self.clone();
        let p = pending.clone();
        let send = move |lease: Lease| {
            let (framing, body) = match &plan.body {
                Body::Bytes(b) | Body::Sent(b) => (Framing::Length(b.len() as u64), Some(b.clone())),
                Body::Empty if no_body_verb(&plan.method) => (Framing::None, None),
                Body::Empty => (Framing::Length(0), None),
                Body::Streamed => (Framing::None, None),
            };
            let head = me.head_for(&plan, framing, !lease.reused);
            let m = me.clone();
            Self::send_head(lease, head, body, mode, move |r| match r {
                Ok(lease) => m.read_response(lease, plan, mode, p),
                Err(e) if e.web_status == web_status::KEEP_ALIVE_FAILURE && plan.attempt + 1 < MAX_ATTEMPTS && plan.session.is_none() => {
                    m.exchange(None, Plan { attempt: plan.attempt + 1, ..plan }, mode, p)
                }
                Err(e) => m.finish(&p, Err(e)),
            })
        };
        match lease {
            Some(l) => send(l),
            None => {
                let uri = self.state.lock().address.clone();
                let (me, p) = (self.clone(), pending.clone());
                self.connect(&uri, mode, &pending, move |r| match r {
                    Ok(l) => send(l),
                    Err(e) => me.finish(&p, Err(e)),
                })
            }
        }
    }

    /// Reads the response head (skipping 1xx interim responses) and hands it on.
    fn read_response(self: &Arc<Self>, lease: Lease, plan: Plan, mode: Mode, pending: Arc<Pending>) {
        let reader = HeadReader::new(self.state.lock().s.max_headers_kb);
        self.clone().read_head(reader, lease, plan, mode, pending)
    }

    fn read_head(self: Arc<Self>, mut r: HeadReader, lease: Lease, plan: Plan, mode: Mode, pending: Arc<Pending>) {
        if pending.is_done() {
            return;
        }
        loop {
            match parse::parse_head(&r.buf[..r.len], r.limit) {
                Ok(Some(head)) if (100..200).contains(&head.status) && head.status != 101 => r.skip(head.len),
                Ok(Some(head)) => {
                    let leftover = r.buf[head.len..r.len].to_vec();
                    return self.on_head(head, lease, leftover, plan, mode, pending);
                }
                Ok(None) => break,
                Err(e) => {
                    drop(lease);
                    return self.finish(&pending, Err(head_error(e)));
                }
            }
        }
        let Some(conn) = lease.conn.clone() else { return };
        let target = r.spare();
        io::read(&conn.stream, target, mode, move |n| {
            let n = match n {
                Ok(n) => n,
                Err(e) => {
                    let reused = lease.reused && r.seen == 0;
                    let (status, text) = if reused {
                        (web_status::KEEP_ALIVE_FAILURE, msg::KEEP_ALIVE_FAILURE)
                    } else {
                        (web_status::RECEIVE_FAILURE, msg::RECEIVE_FAILURE)
                    };
                    drop(lease);
                    let e = web_error(status, text, Some(&e));
                    return self.retry_or_fail(reused, e, plan, mode, pending);
                }
            };
            if n == 0 {
                let reused = lease.reused && r.seen == 0;
                drop(lease);
                let e = if r.len == 0 {
                    let (status, text) = if reused {
                        (web_status::KEEP_ALIVE_FAILURE, msg::KEEP_ALIVE_FAILURE)
                    } else {
                        (web_status::CONNECTION_CLOSED, msg::CONNECTION_CLOSED)
                    };
                    web_error(status, text, None)
                } else if !r.buf[..r.len].contains(&b'\n') {
                    head_error(HeadError::StatusLine)
                } else {
                    head_error(HeadError::Header("The response ended before its headers did"))
                };
                return self.retry_or_fail(reused, e, plan, mode, pending);
            }
            r.filled(n);
            self.read_head(r, lease, plan, mode, pending)
        });
    }

    /// A request whose pooled connection the server had closed goes again on a new one, when
    /// its body can be sent again.
    fn retry_or_fail(self: Arc<Self>, reused: bool, e: Error, plan: Plan, mode: Mode, pending: Arc<Pending>) {
        // Not in a connection-bound exchange: its next leg belongs to the connection that closed.
        let replayable = !matches!(plan.body, Body::Streamed) && plan.session.is_none();
        if reused && replayable && plan.attempt + 1 < MAX_ATTEMPTS && !pending.is_done() {
            let plan = Plan { attempt: plan.attempt + 1, ..plan };
            return self.exchange(None, plan, mode, pending);
        }
        self.finish(&pending, Err(e))
    }

    /// A final response head: answer an authentication challenge, follow a redirect, or hand
    /// out the response.
    fn on_head(self: Arc<Self>, head: Head, lease: Lease, leftover: Vec<u8>, plan: Plan, mode: Mode, pending: Arc<Pending>) {
        let s = self.state.lock().s.clone();
        let answer = Answer { head, lease, leftover, plan };
        match self.auth_for(&answer, &s) {
            Auth::None => self.respond(answer, mode, pending, None),
            Auth::GiveUp(why) => self.respond(answer, mode, pending, Some(why)),
            Auth::Basic(header) => {
                let Answer { head, lease, leftover, plan } = answer;
                if let Ok(r) = HttpWebResponse::new(head, lease, leftover, &self.exchange_of(&plan, &s, false)) {
                    r.close();
                }
                let plan = Plan { authorization: Some(header), attempt: 0, ..plan };
                self.exchange(None, plan, mode, pending)
            }
            Auth::Step { session, input, proxy, first, last } => self.auth_step(answer, session, input, proxy, first, last, mode, pending),
        }
    }

    fn exchange_of(&self, plan: &Plan, s: &Settings, hold: bool) -> Exchange {
        Exchange {
            method: plan.method.clone(),
            response_uri: plan.uri.to_string(),
            decompression: s.decompression,
            rw_timeout_ms: s.rw_timeout_ms,
            keep_alive: s.keep_alive,
            hold,
        }
    }

    /// What the answer asks of the request's (or, for a 407, the proxy's) credentials.
    fn auth_for(&self, a: &Answer, s: &Settings) -> Auth {
        let plan = &a.plan;
        let status = a.head.status;
        let via_proxy = route(s, &plan.uri).1.is_some() || (plan.proxy_session && plan.session.is_some());
        let proxy = match status {
            401 => false,
            407 if via_proxy => true,
            _ => {
                // A final answer to the last token may carry the server's own (mutual
                // authentication): it completes the context.
                let Some(session) = plan.session.as_ref() else { return Auth::None };
                let (scheme, complete) = {
                    let g = session.lock();
                    (g.scheme, g.is_complete())
                };
                let name = if plan.proxy_session { "Proxy-Authenticate" } else { "WWW-Authenticate" };
                return match auth::token_of(&challenges(&a.head, name), scheme) {
                    Some(t) if !complete => {
                        Auth::Step { session: session.clone(), input: Some(t), proxy: plan.proxy_session, first: false, last: true }
                    }
                    _ => Auth::None,
                };
            }
        };
        if matches!(plan.body, Body::Streamed) {
            // Sent already without a copy: it cannot go again with credentials.
            return Auth::None;
        }
        let found = challenges(&a.head, if proxy { "Proxy-Authenticate" } else { "WWW-Authenticate" });
        if let Some(session) = plan.session.as_ref().filter(|_| plan.proxy_session == proxy) {
            let g = session.lock();
            if g.is_complete() {
                return Auth::GiveUp(format!("The server refused the completed {} authentication.", g.scheme.name()));
            }
            if g.legs >= auth::MAX_LEGS {
                return Auth::GiveUp(format!("{} authentication did not complete in {} legs.", g.scheme.name(), auth::MAX_LEGS));
            }
            return match auth::token_of(&found, g.scheme) {
                Some(t) => Auth::Step { session: session.clone(), input: Some(t), proxy, first: false, last: false },
                None => Auth::GiveUp(format!("The server refused the {} credentials.", g.scheme.name())),
            };
        }
        let credential = if proxy {
            match s.proxy.for_uri(&plan.uri, s.proxy_credentials.as_ref()).and_then(|p| p.credentials) {
                Some((user, password)) => Credential { user, password, ..Credential::default() },
                None => return Auth::None,
            }
        } else {
            match &s.credentials {
                Some(c) => c.clone(),
                None => return Auth::None,
            }
        };
        let Some(scheme) = auth::pick(&found, &credential) else { return Auth::None };
        if scheme == Scheme::Basic {
            // Answered once; a proxy's Basic credentials went up front already.
            return match (proxy, &plan.authorization) {
                (false, None) => Auth::Basic(auth::basic(&credential)),
                _ => Auth::None,
            };
        }
        // SPN: the proxy's host for a proxy; else the Host header as set, or the URI's host.
        let host = if proxy {
            s.proxy.for_uri(&plan.uri, None).map(|p| p.host).unwrap_or_default()
        } else {
            s.headers.get("Host").map(str::to_string).unwrap_or_else(|| plan.uri.host_str().unwrap_or("").to_string())
        };
        // Over https the token is bound to this connection's server certificate.
        let binding = match (&a.lease.conn, proxy) {
            (Some(c), false) => c.context.binding(crate::channel_binding::kind::ENDPOINT).ok().flatten(),
            _ => None,
        };
        let session = Arc::new(Mutex::new(auth::Session::new(scheme, &credential, &host, binding)));
        Auth::Step { session, input: None, proxy, first: true, last: false }
    }

    /// Runs one step of `session` (on the blocking pool when it calls GSSAPI and the request is
    /// asynchronous: never on an engine thread), then goes on with `after_step`.
    #[allow(clippy::too_many_arguments)]
    fn auth_step(
        self: Arc<Self>,
        answer: Answer,
        session: Arc<Mutex<auth::Session>>,
        input: Option<Vec<u8>>,
        proxy: bool,
        first: bool,
        last: bool,
        mode: Mode,
        pending: Arc<Pending>,
    ) {
        let s = session.clone();
        run_step(&session, input, mode, move |r| self.after_step(r, answer, s, proxy, first, last, mode, pending))
    }

    /// After a step: send its token on the same connection (its response's body read first), or
    /// give the answer as the response (the context refused, or had nothing more to send).
    #[allow(clippy::too_many_arguments)]
    fn after_step(
        self: Arc<Self>,
        r: std::result::Result<auth::Step, String>,
        answer: Answer,
        session: Arc<Mutex<auth::Session>>,
        proxy: bool,
        first: bool,
        last: bool,
        mode: Mode,
        pending: Arc<Pending>,
    ) {
        if pending.is_done() {
            return;
        }
        let header = match (r, last) {
            (Ok(_), true) => return self.respond(answer, mode, pending, None),
            (Err(why), true) => {
                let why = format!("The server's final authentication token was refused: {why}");
                return self.respond_failed(answer, &pending, why);
            }
            (Ok(auth::Step::Send(h)), false) => h,
            (Ok(auth::Step::Complete), false) => return self.respond(answer, mode, pending, None),
            (Err(why), false) => return self.respond(answer, mode, pending, Some(why)),
        };
        let s = self.state.lock().s.clone();
        let Answer { head, lease, leftover, plan } = answer;
        let response = match HttpWebResponse::new(head, lease, leftover, &self.exchange_of(&plan, &s, true)) {
            Ok(r) => r,
            Err(e) => return self.finish(&pending, Err(e)),
        };
        let plan = if proxy {
            Plan { proxy_authorization: Some(header), session: Some(session), proxy_session: true, attempt: 0, ..plan }
        } else {
            Plan { authorization: Some(header), session: Some(session), proxy_session: false, attempt: 0, ..plan }
        };
        let me = self.clone();
        let keep = response.clone();
        response.stream.drain_connection(
            mode,
            Box::new(move |lease| {
                drop(keep);
                match lease {
                    Some(lease) => me.exchange(Some(lease), plan, mode, pending),
                    // .NET: a server that closes after its first challenge asks for a new
                    // connection, which the whole exchange then uses.
                    None if first => me.exchange(None, plan, mode, pending),
                    None => {
                        let e = web_error(web_status::CONNECTION_CLOSED, msg::CONNECTION_CLOSED, None);
                        let e = e.with_inner(msg::AUTH_CONNECTION_LOST);
                        me.finish(&pending, Err(e))
                    }
                }
            }),
        );
    }

    /// The answer as a failure with its response attached (ProtocolError), for `why`.
    fn respond_failed(&self, answer: Answer, pending: &Pending, why: String) {
        let s = self.state.lock().s.clone();
        let Answer { head, lease, leftover, plan } = answer;
        match HttpWebResponse::new(head, lease, leftover, &self.exchange_of(&plan, &s, false)) {
            Ok(response) => {
                let text = msg::server_error(response.status, &response.description);
                self.fail_with_response_why(pending, web_status::PROTOCOL_ERROR, &text, response, Some(why))
            }
            Err(e) => self.finish(pending, Err(e)),
        }
    }

    /// Hands out the answer: a redirect followed, or the response, or ProtocolError with it
    /// attached (`why`: the inner message, e.g. why authentication stopped).
    fn respond(self: Arc<Self>, answer: Answer, mode: Mode, pending: Arc<Pending>, why: Option<String>) {
        let s = self.state.lock().s.clone();
        let Answer { head, lease, leftover, plan } = answer;
        let exchange = self.exchange_of(&plan, &s, false);
        let status = head.status;
        let location = head.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("Location")).map(|(_, v)| v.clone());
        let response = match HttpWebResponse::new(head, lease, leftover, &exchange) {
            Ok(r) => r,
            Err(e) => return self.finish(&pending, Err(e)),
        };
        let replayable = !matches!(plan.body, Body::Streamed);
        let redirect = s.allow_redirect && matches!(status, 300 | 301 | 302 | 303 | 307 | 308);
        if let (true, Some(location)) = (redirect, location) {
            if plan.redirects >= s.max_redirects {
                return self.fail_with_response(&pending, web_status::PROTOCOL_ERROR, msg::TOO_MANY_REDIRECTS, response);
            }
            let next = plan.uri.join(&location).ok().filter(|u| matches!(u.scheme(), "http" | "https"));
            let keeps_method = matches!(status, 307 | 308);
            if let Some(uri) = next.filter(|_| !keeps_method || replayable) {
                response.close();
                let to_get = match status {
                    301 | 302 => plan.method.eq_ignore_ascii_case("POST"),
                    303 => !plan.method.eq_ignore_ascii_case("HEAD"),
                    _ => false,
                };
                let (method, body) = if to_get { ("GET".to_string(), Body::Empty) } else { (plan.method.clone(), plan.body.clone()) };
                self.state.lock().address = uri.clone();
                // Credentials are not sent on to where a redirect points.
                let plan = Plan { redirects: plan.redirects + 1, ..Plan::new(method, uri, body, None) };
                return self.exchange(None, plan, mode, pending);
            }
        }
        let ok = if s.allow_redirect { (200..300).contains(&status) } else { (200..400).contains(&status) };
        if !ok {
            let text = msg::server_error(status, &response.description);
            return self.fail_with_response_why(&pending, web_status::PROTOCOL_ERROR, &text, response, why);
        }
        if let Some(header) = plan.authorization.as_deref().filter(|h| s.pre_authenticate && h.starts_with("Basic ")) {
            auth::remember(&plan.uri, header);
        }
        {
            let mut st = self.state.lock();
            st.response = Some(response.clone());
            st.phase = Phase::Responded;
            st.current = None;
        }
        self.finish(&pending, Ok(Value::Object(response)))
    }

    fn fail_with_response(&self, pending: &Pending, status: i32, text: &str, response: Arc<HttpWebResponse>) {
        self.fail_with_response_why(pending, status, text, response, None)
    }

    fn fail_with_response_why(&self, pending: &Pending, status: i32, text: &str, response: Arc<HttpWebResponse>, why: Option<String>) {
        let e = web_error(status, text, None).with(|fail| {
            fail.http_status = response.status as i32;
            fail.attachment = Some(Attachment(response.clone()));
            fail.inner = why.or(fail.inner.take());
        });
        self.state.lock().current = None;
        if !self.is_aborted() {
            pending.finish(Err(e));
        } else {
            response.close();
            pending.finish(Err(canceled()));
        }
    }

    /// The response a failure carries (WebException.Response).
    pub fn response_of(e: &Error) -> Option<Arc<HttpWebResponse>> {
        e.attachment.as_ref().and_then(|a| a.0.clone().downcast::<HttpWebResponse>().ok())
    }

    /// Release: aborts what is pending (Dispose of the handle).
    pub fn dispose(&self) {
        let pending = self.state.lock().pending.as_ref().is_some_and(|p| !p.is_done());
        if pending {
            self.abort();
        }
    }
}

fn st_pending_active(r: &HttpWebRequest) -> bool {
    r.state.lock().pending.as_ref().is_some_and(|p| !p.is_done())
}

/// The head of a response being read.
struct HeadReader {
    buf: Vec<u8>,
    len: usize,
    limit: usize,
    /// Bytes received on this connection for this request.
    seen: usize,
}

impl HeadReader {
    /// A reader of a head of at most MaximumResponseHeadersLength KiB (-1: no limit).
    fn new(max_headers_kb: i32) -> HeadReader {
        let limit = match max_headers_kb {
            -1 => usize::MAX / 2,
            kb => kb as usize * 1024,
        };
        HeadReader { buf: Vec::new(), len: 0, limit, seen: 0 }
    }

    /// Drops a head already handled (an interim 1xx answer) from the front.
    fn skip(&mut self, n: usize) {
        self.buf.drain(..n);
        self.len -= n;
    }

    /// The room for the next read, grown as the head needs (up to past the limit, which the
    /// parser then reports).
    fn spare(&mut self) -> MutBuf {
        if self.buf.len() - self.len < 4096 {
            let grown = (self.buf.len() * 2).clamp(8192, self.limit.saturating_add(8192));
            self.buf.resize(grown, 0);
        }
        // SAFETY: the spare room of the buffer, which the read's continuation keeps alive (it
        // owns the reader) and does not touch until the read completes.
        MutBuf { ptr: unsafe { self.buf.as_mut_ptr().add(self.len) }, len: self.buf.len() - self.len }
    }

    /// Counts `n` bytes a read put in the spare room.
    fn filled(&mut self, n: usize) {
        self.len += n;
        self.seen += n;
    }
}

fn head_error(e: HeadError) -> Error {
    match e {
        HeadError::StatusLine => {
            web_error(web_status::SERVER_PROTOCOL_VIOLATION, msg::protocol_violation("ResponseStatusLine", None), None)
        }
        HeadError::Header(detail) => {
            web_error(web_status::SERVER_PROTOCOL_VIOLATION, msg::protocol_violation("ResponseHeader", Some(detail)), None)
        }
        HeadError::TooLong => web_error(web_status::MESSAGE_LENGTH_LIMIT_EXCEEDED, msg::LENGTH_LIMIT, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_refuse_what_dotnet_refuses() {
        let r = HttpWebRequest::create("http://localhost:1/x").unwrap();
        assert_eq!(r.set_method("").unwrap_err().message, msg::BAD_METHOD);
        assert_eq!(r.set_content_length(-1).unwrap_err().status, code::ARGUMENT_OUT_OF_RANGE);
        assert_eq!(r.set_timeout(-2).unwrap_err().status, code::ARGUMENT_OUT_OF_RANGE);
        assert_eq!(r.set_read_write_timeout(0).unwrap_err().status, code::ARGUMENT_OUT_OF_RANGE);
        assert_eq!(r.set_protocol_version(2, 0).unwrap_err().message, msg::BAD_VERSION);
        assert_eq!(
            r.set_header("Content-Type", Some("x"), false).unwrap_err().message,
            msg::restricted("Content-Type")
        );
        assert_eq!(r.set_property_header("Connection", Some("close")).unwrap_err().message, msg::KEEP_ALIVE_IN_CONNECTION);
        assert_eq!(r.set_property_header("Transfer-Encoding", Some("gzip")).unwrap_err().message, msg::NEED_CHUNKED);
        r.set_header("X-A", Some("1"), false).unwrap();
        assert_eq!(r.header("x-a").as_deref(), Some("1"));
        assert_eq!(parse_uri("ftp://x/").unwrap_err().status, code::NOT_SUPPORTED);
        assert_eq!(parse_uri("/relative").unwrap_err().status, code::ARGUMENT);
        // IDNA host names (url's unicode-rs back end, pinned in Cargo.lock).
        assert_eq!(parse_uri("http://bücher.example/").unwrap().host_str(), Some("xn--bcher-kva.example"));
    }
}
