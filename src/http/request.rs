//! HttpWebRequest: settings with .NET's validation and messages, GetRequestStream and
//! GetResponse in the Begin and the blocking forms, redirects, Basic credentials, Timeout, Abort.
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
    pub credentials: Option<(String, String)>,
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

    pub fn set_credentials(&self, credentials: Option<(String, String)>) -> Result<()> {
        self.set_submitted_only(|s| s.credentials = credentials)
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
    /// Framework's "(407) Proxy Authentication Required.").
    fn tunnel(self: &Arc<Self>, lease: Lease, to: Endpoint, tls: TlsSettings, mode: Mode, pending: Arc<Pending>, then: impl FnOnce(Result<Lease>) + Send + 'static) {
        let authorization = to.proxy.as_ref().and_then(|v| v.authorization.clone());
        let head = head::connect_head(&to.host, to.port, authorization.as_deref());
        let max_headers_kb = self.state.lock().s.max_headers_kb;
        let me = self.clone();
        Self::send_head(lease, head, None, mode, move |r| match r {
            Ok(lease) => {
                let reader = HeadReader::new(max_headers_kb);
                me.read_connect_answer(reader, lease, to, tls, mode, pending, Box::new(then))
            }
            Err(e) => then(Err(e)),
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn read_connect_answer(
        self: Arc<Self>,
        mut r: HeadReader,
        mut lease: Lease,
        to: Endpoint,
        tls: TlsSettings,
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
                    return connection::secure(&plain, &to.host, &tls, mode, move |c| match c {
                        Ok(c) => {
                            me.set_current(&c);
                            lease.conn = Some(c);
                            then(Ok(lease))
                        }
                        Err(e) => then(Err(e)),
                    });
                }
                Ok(Some(head)) => {
                    let (status, uri) = (head.status, self.state.lock().address.to_string());
                    let leftover = r.buf[head.len..r.len].to_vec();
                    let exchange = Exchange {
                        method: "CONNECT".into(),
                        response_uri: uri,
                        decompression: 0,
                        rw_timeout_ms: self.settings().rw_timeout_ms,
                        keep_alive: false,
                    };
                    let response = match HttpWebResponse::new(head, lease, leftover, &exchange) {
                        Ok(r) => r,
                        Err(e) => return then(Err(e)),
                    };
                    let text = msg::server_error(status, &response.description);
                    let e = web_error(web_status::PROTOCOL_ERROR, text, None).with(|fail| {
                        fail.http_status = status as i32;
                        fail.attachment = Some(Attachment(response));
                    });
                    return then(Err(e));
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
                self.read_connect_answer(r, lease, to, tls, mode, pending, then)
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
            proxy_authorization: proxy_authorization.as_deref(),
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
            setup = Some((mode, st.s.content_length.max(0) as u64, st.address.clone(), st.s.method.clone(), st.s.rw_timeout_ms));
            Ok(())
        })?;
        let (body_mode, length, uri, method, rw_timeout) = setup.expect("set by the checks");
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
            let plan = Plan { method, uri, body: Body::Streamed, redirects: 0, attempt: 0, authorization: None };
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
        let stream = RequestStream::new(self.clone(), conn.clone(), mode, length, rw_timeout);
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
                Some(_) => Body::Streamed,
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
            plan = Some(Plan {
                method: st.s.method.clone(),
                uri: st.address.clone(),
                body,
                redirects: 0,
                attempt: 0,
                authorization: None,
            });
            Ok(())
        })?;
        if let Some(r) = earlier {
            self.finish(&pending, Ok(Value::Object(r)));
            return Ok(());
        }
        let plan = plan.expect("set by the checks");
        let lease = self.state.lock().lease.take();
        match (lease, &plan.body) {
            (Some(lease), Body::Streamed) => self.read_response(lease, plan, mode, pending),
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
                Body::Bytes(b) => (Framing::Length(b.len() as u64), Some(b.clone())),
                Body::Empty if no_body_verb(&plan.method) => (Framing::None, None),
                Body::Empty => (Framing::Length(0), None),
                Body::Streamed => (Framing::None, None),
            };
            let head = me.head_for(&plan, framing, !lease.reused);
            let m = me.clone();
            Self::send_head(lease, head, body, mode, move |r| match r {
                Ok(lease) => m.read_response(lease, plan, mode, p),
                Err(e) if e.web_status == web_status::KEEP_ALIVE_FAILURE && plan.attempt + 1 < MAX_ATTEMPTS => {
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
        let replayable = !matches!(plan.body, Body::Streamed);
        if reused && replayable && plan.attempt + 1 < MAX_ATTEMPTS && !pending.is_done() {
            let plan = Plan { attempt: plan.attempt + 1, ..plan };
            return self.exchange(None, plan, mode, pending);
        }
        self.finish(&pending, Err(e))
    }

    /// A final response head: follow a redirect, answer a Basic challenge, or hand out the
    /// response.
    fn on_head(self: Arc<Self>, head: Head, lease: Lease, leftover: Vec<u8>, plan: Plan, mode: Mode, pending: Arc<Pending>) {
        let (s, ) = (self.state.lock().s.clone(),);
        let exchange = Exchange {
            method: plan.method.clone(),
            response_uri: plan.uri.to_string(),
            decompression: s.decompression,
            rw_timeout_ms: s.rw_timeout_ms,
            keep_alive: s.keep_alive,
        };
        let status = head.status;
        let location = head.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("Location")).map(|(_, v)| v.clone());
        let challenge = head
            .headers
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case("WWW-Authenticate") && v.trim_start().to_ascii_lowercase().starts_with("basic"));
        let response = match HttpWebResponse::new(head, lease, leftover, &exchange) {
            Ok(r) => r,
            Err(e) => return self.finish(&pending, Err(e)),
        };
        let replayable = !matches!(plan.body, Body::Streamed);
        // A Basic challenge answered once with the request's credentials.
        if status == 401 && challenge && plan.authorization.is_none() && replayable {
            if let Some((user, password)) = &s.credentials {
                response.close();
                let token = openssl::base64::encode_block(format!("{user}:{password}").as_bytes());
                let plan = Plan { authorization: Some(format!("Basic {token}")), attempt: 0, ..plan };
                return self.exchange(None, plan, mode, pending);
            }
        }
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
                let plan = Plan { method, uri, body, redirects: plan.redirects + 1, attempt: 0, authorization: None };
                return self.exchange(None, plan, mode, pending);
            }
        }
        let ok = if s.allow_redirect { (200..300).contains(&status) } else { (200..400).contains(&status) };
        if !ok {
            let text = msg::server_error(status, &response.description);
            return self.fail_with_response(&pending, web_status::PROTOCOL_ERROR, &text, response);
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
        let e = web_error(status, text, None).with(|fail| {
            fail.http_status = response.status as i32;
            fail.attachment = Some(Attachment(response.clone()));
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
