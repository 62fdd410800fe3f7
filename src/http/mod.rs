//! HttpWebRequest (reference/dotnet-semantics.md section 6) with the .NET Framework 4 contract:
//! EndGetRequestStream hands out the connection's TransportContext, the request stream enforces
//! ContentLength, failures are WebExceptions with the Framework's WebExceptionStatus.
//!
//! * `request`: the request's settings (.NET's validation and messages, the restricted headers),
//!   its state, GetRequestStream and GetResponse, redirects, Timeout and Abort.
//! * `auth`: the challenges of WWW-Authenticate and Proxy-Authenticate, the scheme .NET picks,
//!   a request's Negotiate or NTLM exchange, PreAuthenticate's cache.
//! * `head`: the request head on the wire, as .NET Framework writes it.
//! * `connection`: a NetworkStream over a Socket, or an SslStream over it for https.
//! * `pool`: the ServicePoint of each scheme, host and port (and proxy, and for https the TLS
//!   settings): idle connections kept alive on engine timers, a connection limit with a FIFO of
//!   waiting requests.
//! * `proxy`: HttpWebRequest.Proxy, the environment's proxy and its bypass list.
//! * `request_stream`: the write-only stream of the request body (ContentLength, chunked, buffered).
//! * `parse`: pure parsers of the response head (httparse), of its body framing (Content-Length,
//!   Transfer-Encoding) and of chunked bodies; the fuzz targets call them.
//! * `response`: HttpWebResponse and its body stream (Content-Length, chunked, read to close,
//!   gzip and deflate through flate2).
//! * `io`: one operation in the Begin or the blocking form, ReadWriteTimeout, once-only slots.
//!
//! ## Where this differs from .NET Framework 4 or .NET 8, and why
//!
//! * The APM contract is the Framework's (the seed is a Framework page): End checks its owner and a
//!   second End, NULL is ArgumentNull; an operation that finished inside Begin reports
//!   CompletedSynchronously and calls back inline. .NET 8 hands out Tasks (never synchronous,
//!   callbacks on the pool, no owner check, NULL is ArgumentException).
//! * EndGetRequestStream's TransportContext is the connection's (Framework); .NET 8 gives null.
//!   Over http the context has no binding (GetChannelBinding null), as the Framework's.
//! * ContentLength is enforced by the request stream (Framework); .NET 8 enforces nothing.
//! * WebExceptionStatus is the Framework's (ConnectFailure, TrustFailure, ...); .NET 8 reports
//!   UnknownError for most failures.
//! * Timeout applies to the Begin forms too (the Framework left them to Abort) and covers
//!   GetRequestStream and GetResponse up to the response head; ReadWriteTimeout bounds every read
//!   and write of the streams, Begin ones included. A stream timeout is IOException with
//!   SocketError TimedOut and WebExceptionStatus Timeout in the record.
//! * Expect100Continue is off by default (the Framework's ServicePoint default is on and waits up
//!   to 350 ms for the interim answer); when on, the body follows at once and the 100 is skipped.
//! * The head's header order is the Framework's (see `head`); .NET 8 puts Host and Connection first.
//! * A buffered body (neither ContentLength nor SendChunked) goes out with its length when the
//!   response is asked for (the Framework sends it when the stream is closed): it can then be sent
//!   again for a redirect, a Basic challenge or a kept-alive connection the server had closed.
//! * A second GetRequestStream is InvalidOperation "This operation cannot be performed after the
//!   request has been submitted." (.NET 8 hands out a new stream); a second GetResponse hands out
//!   the same response (as both).
//! * 307/308 after a body written through a ContentLength or chunked stream are not followed (the
//!   3xx is the response) unless the request has credentials: the body was streamed without a
//!   copy, so it cannot be sent again (the Framework keeps a copy with AllowWriteStreamBuffering;
//!   we keep one only where credentials may need it, see Credentials). https -> http redirects are followed
//!   (the Framework does; .NET 8 refuses them). Authorization is not sent on to a redirect.
//! * Credentials (`auth`): a 401 offering Negotiate, NTLM or Basic is answered in that order of
//!   preference, as .NET 8's SocketsHttpHandler picks (no Digest). Negotiate and NTLM run their
//!   legs on one kept-alive connection, which stays out of the pool in between; over https the
//!   tokens are bound to that connection's tls-server-end-point, as Windows and .NET bind them.
//!   Where we differ or choose:
//!   - SPN `HTTP/<host>`: the Host header if set, else the URI's host as written; .NET resolves a
//!     name to its canonical DNS name first. No port (.NET 8's default).
//!   - At most `auth::MAX_LEGS` (5) tokens per exchange; a 401 past them, a 401 without the
//!     server's next token (credentials refused), a refused token or a complete context that
//!     is challenged again give ProtocolError 401 with that response, readable (.NET's loop is
//!     unbounded but ends when its context refuses to step).
//!   - A final 2xx carrying the server's last token (Kerberos' AP-REP) completes the context; a
//!     token the context refuses there is ProtocolError with the 2xx attached.
//!   - A server that closes the connection after its first challenge gets the first token on a
//!     new connection (as .NET); closing it later is ConnectionClosed, not a retry.
//!   - A body written through a ContentLength or chunked request stream of a request with
//!     credentials (or proxy credentials) is streamed out and copied as it goes, and the copy is
//!     sent on the legs that follow (as the Framework's AllowWriteStreamBuffering keeps one;
//!     .NET 8 buffers every body): memory for the body's size, only where a challenge may need
//!     it. `Expect: 100-continue` does not wait for the server's verdict before the body.
//!   - UseDefaultCredentials: the Kerberos ticket cache, for Negotiate only (no Basic, and no
//!     NTLM: a ticket cache holds no NTLM secret).
//!   - PreAuthenticate: Basic credentials a server accepted go up front to later requests under
//!     the URI's prefix, for the process; Negotiate and NTLM never (a new connection needs the
//!     server's challenge), as in .NET.
//!   - A 407 offering Negotiate or NTLM is answered with the proxy credentials, on the request
//!     (http) or on the CONNECT (a tunnel), the legs on one connection; Basic proxy credentials
//!     still go up front.
//! * Proxy (`proxy`): an explicit http proxy, none, or the default, which is the environment's as
//!   .NET 8 reads it on Linux (http_proxy, https_proxy, all_proxy, no_proxy, with .NET 8's
//!   parsing and bypass rules; the Framework read the Windows settings). Where we differ:
//!   - An explicit proxy serves every URI, loopback included, as .NET 8's WebProxy does (measured:
//!     its IsBypassed is false for 127.0.0.1 and localhost); the Framework's WebProxy never
//!     proxied loopback. No BypassList or BypassProxyOnLocal.
//!   - Only http:// proxies (.NET 8 also takes socks4/4a/5 ones).
//!   - The user information of an explicit proxy URI is its credentials (.NET takes it from
//!     environment values only: a WebProxy made from such a URI has null Credentials).
//!   - Basic proxy credentials go with the first request or CONNECT; .NET sends them in answer to
//!     a 407 challenge, a round trip that teaches nothing when Basic is all there is. Negotiate
//!     and NTLM answer the 407 (see Credentials).
//!   - A CONNECT answered other than 2xx is ProtocolError with that answer attached and
//!     readable, 407 and 403 alike (the Framework's "(407) Proxy Authentication Required.", and
//!     what both give for a 407 to an http request through the proxy). .NET 8, measured against
//!     the test proxy, reports UnknownError "The proxy tunnel request to proxy '...' failed with
//!     status code '407'." with no response. RequestProhibitedByProxy is never reported.
//!   - The head through an http proxy carries `Connection` (hop-by-hop: it speaks to the proxy);
//!     the Framework sent `Proxy-Connection: Keep-Alive` instead.
//!   - Pooling: http requests through a proxy share that proxy's ServicePoint whatever their
//!     server (as the Framework); a tunnel is kept alive for its server and its proxy
//!     credentials only, and reused by later https requests to that server.
//! * An https connection is kept alive for requests with the same TLS settings only: trusted CAs
//!   and client certificate (by SHA-256) and validation callback (function and state). The
//!   Framework did the same with connection groups named after the callback's and the client
//!   certificates' hashes, within one ServicePoint whose ConnectionLimit each group had; here each
//!   such group is a ServicePoint, so a ConnectionLimit set through one request applies to the
//!   requests with its TLS settings.
//! * "deflate" bodies are accepted zlib-wrapped or raw (the Framework's DeflateStream took only
//!   raw, .NET 8 only zlib); a decompressed response's ContentLength is -1 (as the Framework).
//! * MaximumResponseHeadersLength bounds the whole head, status line included.
//! * A kept-alive connection the server closed is retried on a new one, up to 3 attempts, when
//!   the body can be sent again (the Framework retries once).
//! * Cancelling a GetRequestStream or GetResponse result (the IAsyncResult's cancel) aborts the
//!   request: RequestCanceled, not SocketError OperationAborted.
//! * The ProtocolError response a failure carries stays in the thread's error record until the
//!   next failure or until the record is cleared, holding its connection (in .NET the WebException holds
//!   it until it is collected or the response is closed).

pub mod auth;
pub mod connection;
pub mod head;
pub mod io;
pub mod parse;
pub mod pool;
pub mod proxy;
pub mod request;
pub mod request_stream;
pub mod response;

pub use request::HttpWebRequest;
pub use response::HttpWebResponse;

use crate::error::{code, Error};

/// .NET's WebExceptionStatus values (the whole enumeration: some are never reported, and the C
/// constants' test ties each to its number).
#[allow(dead_code)]
pub mod web_status {
    pub(crate) const SUCCESS: i32 = 0;
    pub(crate) const NAME_RESOLUTION_FAILURE: i32 = 1;
    pub(crate) const CONNECT_FAILURE: i32 = 2;
    pub(crate) const RECEIVE_FAILURE: i32 = 3;
    pub(crate) const SEND_FAILURE: i32 = 4;
    pub(crate) const PIPELINE_FAILURE: i32 = 5;
    pub(crate) const REQUEST_CANCELED: i32 = 6;
    pub(crate) const PROTOCOL_ERROR: i32 = 7;
    pub(crate) const CONNECTION_CLOSED: i32 = 8;
    pub(crate) const TRUST_FAILURE: i32 = 9;
    pub(crate) const SECURE_CHANNEL_FAILURE: i32 = 10;
    pub(crate) const SERVER_PROTOCOL_VIOLATION: i32 = 11;
    pub(crate) const KEEP_ALIVE_FAILURE: i32 = 12;
    pub(crate) const PENDING: i32 = 13;
    pub(crate) const TIMEOUT: i32 = 14;
    pub(crate) const PROXY_NAME_RESOLUTION_FAILURE: i32 = 15;
    pub(crate) const UNKNOWN_ERROR: i32 = 16;
    pub(crate) const MESSAGE_LENGTH_LIMIT_EXCEEDED: i32 = 17;
    pub(crate) const CACHE_ENTRY_NOT_FOUND: i32 = 18;
    pub(crate) const REQUEST_PROHIBITED_BY_CACHE_POLICY: i32 = 19;
    pub(crate) const REQUEST_PROHIBITED_BY_PROXY: i32 = 20;
}

/// .NET's DecompressionMethods flags.
pub mod decompression {
    pub(crate) const NONE: i32 = 0;
    pub(crate) const GZIP: i32 = 1;
    pub(crate) const DEFLATE: i32 = 2;
    pub(crate) const ALL: i32 = GZIP | DEFLATE;
}

/// The .NET Framework message texts of HttpWebRequest (System.dll's resources).
pub mod msg {
    pub(crate) const REQUEST_ABORTED: &str = "The request was aborted: The request was canceled.";
    pub(crate) const TIMEOUT: &str = "The operation has timed out";
    pub(crate) const NO_UPLOAD_ON_GET: &str = "Cannot send a content-body with this verb-type.";
    pub(crate) const NO_BODY_HEADERS: &str =
        "Content-Length or Chunked Encoding cannot be set for an operation that does not write data.";
    pub(crate) const BODY_MISSING: &str = "You must provide a request body if you set ContentLength>0 or SendChunked==true.  Do this by calling [Begin]GetRequestStream before [Begin]GetResponse.";
    pub(crate) const REPEATED_CALL: &str =
        "Cannot re-call BeginGetRequestStream/BeginGetResponse while a previous call is still in progress.";
    pub(crate) const REQUEST_SUBMITTED: &str = "This operation cannot be performed after the request has been submitted.";
    pub(crate) const WRITE_STARTED: &str = "This property cannot be set after writing has started.";
    pub(crate) const ENTITY_TOO_BIG: &str = "Bytes to be written to the stream exceed the Content-Length bytes size specified.";
    pub(crate) const NOT_ENOUGH_BYTES: &str = "Cannot close stream until all bytes are written.";
    pub(crate) const CHUNKED_ON_HTTP10: &str = "Chunked encoding upload is not supported on the HTTP/1.0 protocol.";
    pub(crate) const BAD_METHOD: &str = "Cannot set null or blank methods on request.";
    pub(crate) const BAD_VERSION: &str = "Only HTTP/1.0 and HTTP/1.1 version requests are currently supported.";
    pub(crate) const KEEP_ALIVE_IN_CONNECTION: &str = "Keep-Alive and Close may not be set using this property.";
    pub(crate) const CONTINUE_IN_EXPECT: &str = "100-Continue may not be set using this property.";
    pub(crate) const CHUNKED_IN_TRANSFER_ENCODING: &str = "Chunked encoding must be set via the SendChunked property.";
    pub(crate) const NEED_CHUNKED: &str = "TransferEncoding requires the SendChunked property to be set to true.";
    pub(crate) const TIMEOUT_RANGE: &str =
        "Timeout can be only be set to 'System.Threading.Timeout.Infinite' or a value >= 0.";
    pub(crate) const RW_TIMEOUT_RANGE: &str =
        "Timeout can be only be set to 'System.Threading.Timeout.Infinite' or a value > 0.";
    pub(crate) const BAD_HEADER_CHARS: &str = "Specified value has invalid HTTP Header characters.";
    pub(crate) const BAD_HEADER_CRLF: &str = "Specified value has invalid CRLF characters.";
    pub(crate) const NOT_HTTP_URI: &str = "The URI prefix is not recognized.";
    pub(crate) const TOO_MANY_REDIRECTS: &str = "Too many automatic redirections were attempted.";
    pub(crate) const CONNECTION_CLOSED: &str =
        "The underlying connection was closed: The connection was closed unexpectedly.";
    pub(crate) const KEEP_ALIVE_FAILURE: &str =
        "The underlying connection was closed: A connection that was expected to be kept alive was closed by the server.";
    /// The inner message of a connection-bound authentication whose connection the server closed.
    pub(crate) const AUTH_CONNECTION_LOST: &str =
        "The server closed the connection in the middle of a Negotiate or NTLM authentication, which is bound to it.";
    /// The inner message of a proxy that closed the connection of a CONNECT after its challenge.
    pub(crate) const AUTH_PROXY_CLOSED: &str =
        "The proxy closed the connection after its Negotiate or NTLM challenge to CONNECT; a tunnel's authentication is bound to its connection.";
    pub(crate) const CONNECT_FAILURE: &str = "Unable to connect to the remote server";
    pub(crate) const TRUST_FAILURE: &str =
        "The underlying connection was closed: Could not establish trust relationship for the SSL/TLS secure channel.";
    pub(crate) const SECURE_CHANNEL_FAILURE: &str =
        "The underlying connection was closed: Could not establish secure channel for SSL/TLS.";
    pub(crate) const LENGTH_LIMIT: &str = "The message length limit was exceeded";
    pub(crate) const SEND_FAILURE: &str =
        "The underlying connection was closed: An unexpected error occurred on a send.";
    pub(crate) const RECEIVE_FAILURE: &str =
        "The underlying connection was closed: An unexpected error occurred on a receive.";
    /// net_servererror.
    pub fn server_error(status: u16, description: &str) -> String {
        format!("The remote server returned an error: ({status}) {description}.")
    }
    /// net_servprotocolviolation with its section and detail.
    pub fn protocol_violation(section: &str, detail: Option<&str>) -> String {
        match detail {
            Some(d) => format!("The server committed a protocol violation. Section={section} Detail={d}"),
            None => format!("The server committed a protocol violation. Section={section}"),
        }
    }
    /// net_headerrestrict.
    pub fn restricted(name: &str) -> String {
        format!("The '{name}' header must be modified using the appropriate property or method.")
    }
    pub(crate) const PROXY_SCHEME: &str = "Only the 'http' scheme is allowed for proxies.";
    /// net_webstatus_ProxyNameResolutionFailure, with the proxy's name as the Framework's
    /// NameResolutionFailure message carries the server's.
    pub fn proxy_name_resolution(host: &str) -> String {
        format!("The proxy name could not be resolved: '{host}'")
    }
    /// net_webstatus_NameResolutionFailure.
    pub fn name_resolution(host: &str) -> String {
        format!("The remote name could not be resolved: '{host}'")
    }
}

/// The .NET class of the request and response streams (ObjectDisposed messages).
pub const STREAM_CLASS_NAME: &str = "System.Net.ConnectStream";

/// A WebException: `status` is its WebExceptionStatus; the inner exception's message, socket
/// error and errno are kept.
pub fn web_error(status: i32, message: impl Into<String>, inner: Option<&Error>) -> Error {
    let mut e = Error::new(code::WEB, message).with(|fail| fail.web_status = status);
    if let Some(i) = inner {
        e.inner = Some(i.inner.clone().map_or_else(|| i.message.clone(), |x| format!("{} ({x})", i.message)));
        e.socket_error = i.socket_error;
        e.errno = i.errno;
    }
    e
}

/// WebException RequestCanceled: the request was aborted.
pub fn canceled() -> Error {
    web_error(web_status::REQUEST_CANCELED, msg::REQUEST_ABORTED, None)
}

/// WebException Timeout: Timeout passed.
pub fn timed_out() -> Error {
    web_error(web_status::TIMEOUT, msg::TIMEOUT, None)
        .with(|fail| fail.socket_error = crate::error::socket_error::TIMED_OUT)
}

/// ProtocolViolationException.
pub fn protocol_violation(message: &str) -> Error {
    Error::new(code::PROTOCOL_VIOLATION, message)
}
