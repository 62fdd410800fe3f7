//! HttpWebRequest, as C sees it: creation from an absolute http or https URI, its properties,
//! GetRequestStream (with its TransportContext) and GetResponse in the Begin/End and blocking
//! forms, Abort. The request and response streams are `apm_stream`s (the shared
//! `apm_stream_*` functions); the response is `apm_http_response`.
//!
//! Where .NET versions differ we follow .NET Framework 4 (DESIGN.md section 1): End checks its
//! owner and a second End, CompletedSynchronously is true when the operation finished inside
//! Begin (the callback then ran inline), the request stream enforces ContentLength, and the
//! TransportContext is the connection's.

use super::certificate::{apm_certificate, optional_certificate};
use super::credential::apm_credential;
use super::handles::{CredentialClass, HttpRequestClass};
use super::http_response::{apm_http_response, copy_header, response_handle};
use super::ssl_stream::{apm_remote_certificate_validation_callback, apm_transport_context, trusted_cas, validation_callback};
use super::*;
use crate::http::io::Mode;
use crate::http::proxy;
use crate::http::request::RequestStreamGrant;
use crate::http::{HttpWebRequest, HttpWebResponse};
use crate::negotiate::credential::Credential;
use crate::op::{wait_for, Outcome};

/// WebExceptionStatus.Success.
pub const APM_WEB_EXCEPTION_STATUS_SUCCESS: i32 = 0;
/// WebExceptionStatus.NameResolutionFailure: the host name could not be resolved.
pub const APM_WEB_EXCEPTION_STATUS_NAME_RESOLUTION_FAILURE: i32 = 1;
/// WebExceptionStatus.ConnectFailure: no connection could be made (refused, unreachable).
pub const APM_WEB_EXCEPTION_STATUS_CONNECT_FAILURE: i32 = 2;
/// WebExceptionStatus.ReceiveFailure: the connection failed while the response was awaited.
pub const APM_WEB_EXCEPTION_STATUS_RECEIVE_FAILURE: i32 = 3;
/// WebExceptionStatus.SendFailure: the connection failed while the request was sent.
pub const APM_WEB_EXCEPTION_STATUS_SEND_FAILURE: i32 = 4;
/// WebExceptionStatus.PipelineFailure (not reported: requests are not pipelined).
pub const APM_WEB_EXCEPTION_STATUS_PIPELINE_FAILURE: i32 = 5;
/// WebExceptionStatus.RequestCanceled: Abort was called.
pub const APM_WEB_EXCEPTION_STATUS_REQUEST_CANCELED: i32 = 6;
/// WebExceptionStatus.ProtocolError: a status >= 400, or a proxy's answer to CONNECT other than
/// 2xx (the response is attached).
pub const APM_WEB_EXCEPTION_STATUS_PROTOCOL_ERROR: i32 = 7;
/// WebExceptionStatus.ConnectionClosed: the server closed the connection before answering.
pub const APM_WEB_EXCEPTION_STATUS_CONNECTION_CLOSED: i32 = 8;
/// WebExceptionStatus.TrustFailure: the server certificate was not accepted.
pub const APM_WEB_EXCEPTION_STATUS_TRUST_FAILURE: i32 = 9;
/// WebExceptionStatus.SecureChannelFailure: the TLS handshake failed.
pub const APM_WEB_EXCEPTION_STATUS_SECURE_CHANNEL_FAILURE: i32 = 10;
/// WebExceptionStatus.ServerProtocolViolation: the response is not HTTP/1.x.
pub const APM_WEB_EXCEPTION_STATUS_SERVER_PROTOCOL_VIOLATION: i32 = 11;
/// WebExceptionStatus.KeepAliveFailure: a kept-alive connection was closed by the server.
pub const APM_WEB_EXCEPTION_STATUS_KEEP_ALIVE_FAILURE: i32 = 12;
/// WebExceptionStatus.Pending (never reported).
pub const APM_WEB_EXCEPTION_STATUS_PENDING: i32 = 13;
/// WebExceptionStatus.Timeout: Timeout (or, on a stream, ReadWriteTimeout) passed.
pub const APM_WEB_EXCEPTION_STATUS_TIMEOUT: i32 = 14;
/// WebExceptionStatus.ProxyNameResolutionFailure: the proxy's host name could not be resolved.
pub const APM_WEB_EXCEPTION_STATUS_PROXY_NAME_RESOLUTION_FAILURE: i32 = 15;
/// WebExceptionStatus.UnknownError.
pub const APM_WEB_EXCEPTION_STATUS_UNKNOWN_ERROR: i32 = 16;
/// WebExceptionStatus.MessageLengthLimitExceeded: the response head is longer than
/// MaximumResponseHeadersLength.
pub const APM_WEB_EXCEPTION_STATUS_MESSAGE_LENGTH_LIMIT_EXCEEDED: i32 = 17;
/// WebExceptionStatus.CacheEntryNotFound (never reported: no cache).
pub const APM_WEB_EXCEPTION_STATUS_CACHE_ENTRY_NOT_FOUND: i32 = 18;
/// WebExceptionStatus.RequestProhibitedByCachePolicy (never reported: no cache).
pub const APM_WEB_EXCEPTION_STATUS_REQUEST_PROHIBITED_BY_CACHE_POLICY: i32 = 19;
/// WebExceptionStatus.RequestProhibitedByProxy (never reported).
pub const APM_WEB_EXCEPTION_STATUS_REQUEST_PROHIBITED_BY_PROXY: i32 = 20;
/// DecompressionMethods.None.
pub const APM_DECOMPRESSION_METHODS_NONE: i32 = 0;
/// DecompressionMethods.GZip.
pub const APM_DECOMPRESSION_METHODS_GZIP: i32 = 1;
/// DecompressionMethods.Deflate (zlib-wrapped or raw, told apart by the first bytes).
pub const APM_DECOMPRESSION_METHODS_DEFLATE: i32 = 2;

/// An HttpWebRequest (System.Net.HttpWebRequest). Opaque; the caller owns it and releases it
/// with `apm_http_request_close`. One operation (GetRequestStream or GetResponse) runs at a
/// time. Every function checks the handle: NULL gives APM_E_ARGUMENT_NULL, a closed request
/// APM_E_OBJECT_DISPOSED, anything that is not a request handle APM_E_ARGUMENT.
///
/// Its properties follow .NET: the ones of the request head (ContentLength, SendChunked,
/// KeepAlive, ProtocolVersion, the header properties, AllowAutoRedirect,
/// AutomaticDecompression, ...) fail with APM_E_INVALID_OPERATION "This property cannot be set
/// after writing has started." once GetRequestStream or GetResponse began; Method, Headers,
/// ReadWriteTimeout and the TLS settings with "This operation cannot be performed after the
/// request has been submitted.".
pub struct apm_http_request {
    _private: [u8; 0],
}

fn req(p: *const apm_http_request) -> Result<Arc<HttpWebRequest>> {
    lookup::<HttpRequestClass>(p)
}

/// A NetworkCredential's user name and password (NULL user: none).
fn user_password(user: *const c_char, password: *const c_char) -> Result<Option<(String, String)>> {
    match optional_str(user, "userName")? {
        Some(u) => Ok(Some((u.to_string(), str_arg(password, "password")?.to_string()))),
        None => Ok(None),
    }
}

fn optional_str<'a>(p: *const c_char, name: &str) -> Result<Option<&'a str>> {
    if p.is_null() {
        Ok(None)
    } else {
        str_arg(p, name).map(Some)
    }
}

/// `WebRequest.Create(uri)` for an absolute http or https URI (parsed by the `url` crate:
/// IDNA host names, percent-encoding, default ports). The caller owns `*request`
/// (`apm_http_request_close`). Nothing is sent until GetRequestStream or GetResponse.
/// Errors: APM_E_ARGUMENT_NULL (uri, request), APM_E_ARGUMENT (uri not UTF-8; not an absolute
/// URI: "Invalid URI: ..."), APM_E_NOT_SUPPORTED (a scheme other than http and https: "The URI
/// prefix is not recognized."), APM_E_OUT_OF_MEMORY (no handle left).
#[no_mangle]
pub unsafe extern "C" fn apm_http_request_create(uri: *const c_char, request: *mut *mut apm_http_request) -> apm_status {
    boundary!({
        need_out(request, "request")?;
        let r = HttpWebRequest::create(str_arg(uri, "requestUri")?)?;
        let p: *mut apm_http_request = register(Kind::HttpRequest, Object::HttpRequest(r), std::ptr::null())?;
        write_out(request, "request", p)
    })
}

/// Method ("GET" by default): any token ("POST", "PUT", "DELETE", ...). GET and HEAD cannot
/// have a request stream.
/// Errors: APM_E_ARGUMENT_NULL (request, method), APM_E_ARGUMENT (not a request handle; not UTF-8;
/// empty or not a token: "Cannot set null or blank methods on request."), APM_E_OBJECT_DISPOSED,
/// APM_E_INVALID_OPERATION (submitted).
#[no_mangle]
pub unsafe extern "C" fn apm_http_request_set_method(request: *mut apm_http_request, method: *const c_char) -> apm_status {
    boundary!({ req(request)?.set_method(str_arg(method, "value")?) })
}

/// Method, copied as `apm_last_error_message` copies.
/// Errors: APM_E_ARGUMENT_NULL (request; buffer NULL with a nonzero buffer_len), APM_E_ARGUMENT
/// (not a request handle), APM_E_OBJECT_DISPOSED.
#[no_mangle]
pub unsafe extern "C" fn apm_http_request_get_method(
    request: *mut apm_http_request,
    buffer: *mut c_char,
    buffer_len: usize,
    method_len: *mut usize,
) -> apm_status {
    boundary!({ copy_text(&req(request)?.settings().method, buffer, buffer_len, method_len) })
}

/// ContentLength: the body's length in bytes. Set it before getting the request stream: the
/// stream then refuses to write more (APM_E_PROTOCOL_VIOLATION) and to close with fewer.
/// Errors: APM_E_ARGUMENT_NULL (request), APM_E_ARGUMENT (not a request handle),
/// APM_E_OBJECT_DISPOSED, APM_E_ARGUMENT_OUT_OF_RANGE (negative), APM_E_INVALID_OPERATION
/// (writing started).
#[no_mangle]
pub unsafe extern "C" fn apm_http_request_set_content_length(request: *mut apm_http_request, value: i64) -> apm_status {
    boundary!({ req(request)?.set_content_length(value) })
}

/// ContentLength: -1 until set (.NET Framework's value).
/// Errors: APM_E_ARGUMENT_NULL (request, value), APM_E_ARGUMENT (not a request handle),
/// APM_E_OBJECT_DISPOSED.
#[no_mangle]
pub unsafe extern "C" fn apm_http_request_get_content_length(request: *mut apm_http_request, value: *mut i64) -> apm_status {
    boundary!({ write_out(value, "value", req(request)?.settings().content_length) })
}

/// SendChunked: the body goes out in chunks (each write one chunk; closing the stream writes
/// the last one). HTTP/1.1 only.
/// Errors: APM_E_ARGUMENT_NULL (request), APM_E_ARGUMENT (not a request handle),
/// APM_E_OBJECT_DISPOSED, APM_E_INVALID_OPERATION (writing started).
#[no_mangle]
pub unsafe extern "C" fn apm_http_request_set_send_chunked(request: *mut apm_http_request, value: i32) -> apm_status {
    boundary!({ req(request)?.set_send_chunked(value != 0) })
}

/// SendChunked (0 by default).
/// Errors: APM_E_ARGUMENT_NULL (request, value), APM_E_ARGUMENT (not a request handle),
/// APM_E_OBJECT_DISPOSED.
#[no_mangle]
pub unsafe extern "C" fn apm_http_request_get_send_chunked(request: *mut apm_http_request, value: *mut i32) -> apm_status {
    boundary!({ write_out(value, "value", req(request)?.settings().send_chunked as i32) })
}

/// KeepAlive (1 by default): 0 sends `Connection: Close` and the connection is not reused.
/// Errors: as apm_http_request_set_send_chunked.
#[no_mangle]
pub unsafe extern "C" fn apm_http_request_set_keep_alive(request: *mut apm_http_request, value: i32) -> apm_status {
    boundary!({ req(request)?.set_keep_alive(value != 0) })
}

/// KeepAlive.
/// Errors: as apm_http_request_get_send_chunked.
#[no_mangle]
pub unsafe extern "C" fn apm_http_request_get_keep_alive(request: *mut apm_http_request, value: *mut i32) -> apm_status {
    boundary!({ write_out(value, "value", req(request)?.settings().keep_alive as i32) })
}

/// ProtocolVersion: HTTP/1.1 (the default) or HTTP/1.0.
/// Errors: APM_E_ARGUMENT_NULL (request), APM_E_ARGUMENT (not a request handle; another
/// version: "Only HTTP/1.0 and HTTP/1.1 version requests are currently supported."),
/// APM_E_OBJECT_DISPOSED, APM_E_INVALID_OPERATION (writing started).
#[no_mangle]
pub unsafe extern "C" fn apm_http_request_set_protocol_version(
    request: *mut apm_http_request,
    major: i32,
    minor: i32,
) -> apm_status {
    boundary!({ req(request)?.set_protocol_version(major, minor) })
}

/// ProtocolVersion: writes 1 and 1 or 1 and 0.
/// Errors: APM_E_ARGUMENT_NULL (request, major, minor), APM_E_ARGUMENT (not a request handle),
/// APM_E_OBJECT_DISPOSED.
#[no_mangle]
pub unsafe extern "C" fn apm_http_request_get_protocol_version(
    request: *mut apm_http_request,
    major: *mut i32,
    minor: *mut i32,
) -> apm_status {
    boundary!({
        let s = req(request)?.settings();
        need_out(minor, "minor")?;
        write_out(major, "major", 1)?;
        write_out(minor, "minor", s.http11 as i32)
    })
}

/// Timeout in ms (100000 by default; -1 = infinite): how long GetRequestStream (connect, TLS
/// handshake, head) and GetResponse (until the response head) may take, in the blocking and
/// the Begin forms alike. Past it the operation fails with APM_E_WEB Timeout and its connection
/// is closed. Applies to operations started afterwards.
/// Errors: APM_E_ARGUMENT_NULL (request), APM_E_ARGUMENT (not a request handle),
/// APM_E_OBJECT_DISPOSED, APM_E_ARGUMENT_OUT_OF_RANGE (below -1).
#[no_mangle]
pub unsafe extern "C" fn apm_http_request_set_timeout(request: *mut apm_http_request, value: i32) -> apm_status {
    boundary!({ req(request)?.set_timeout(value) })
}

/// Timeout in ms.
/// Errors: as apm_http_request_get_send_chunked.
#[no_mangle]
pub unsafe extern "C" fn apm_http_request_get_timeout(request: *mut apm_http_request, value: *mut i32) -> apm_status {
    boundary!({ write_out(value, "value", req(request)?.settings().timeout_ms) })
}

/// ReadWriteTimeout in ms (300000 by default; -1 = infinite): how long each write to the request
/// stream and each read of the response stream may take, blocking or Begin. Past it the
/// operation fails with APM_E_IO (SocketError TimedOut, WebExceptionStatus Timeout) and the
/// connection is closed.
/// Errors: APM_E_ARGUMENT_NULL (request), APM_E_ARGUMENT (not a request handle),
/// APM_E_OBJECT_DISPOSED, APM_E_ARGUMENT_OUT_OF_RANGE (0 or below -1), APM_E_INVALID_OPERATION
/// (submitted).
#[no_mangle]
pub unsafe extern "C" fn apm_http_request_set_read_write_timeout(request: *mut apm_http_request, value: i32) -> apm_status {
    boundary!({ req(request)?.set_read_write_timeout(value) })
}

/// ReadWriteTimeout in ms.
/// Errors: as apm_http_request_get_send_chunked.
#[no_mangle]
pub unsafe extern "C" fn apm_http_request_get_read_write_timeout(
    request: *mut apm_http_request,
    value: *mut i32,
) -> apm_status {
    boundary!({ write_out(value, "value", req(request)?.settings().rw_timeout_ms) })
}

/// AllowAutoRedirect (1 by default): 300, 301, 302, 303, 307 and 308 with a Location are
/// followed (301/302 turn POST into GET, 303 anything but HEAD; 307/308 keep the method and a
/// buffered body; a body written through a ContentLength or chunked stream cannot be sent
/// again, so such a response is handed out as it is). With 0, a 3xx is a successful response.
/// Errors: as apm_http_request_set_send_chunked.
#[no_mangle]
pub unsafe extern "C" fn apm_http_request_set_allow_auto_redirect(request: *mut apm_http_request, value: i32) -> apm_status {
    boundary!({ req(request)?.set_allow_auto_redirect(value != 0) })
}

/// AllowAutoRedirect.
/// Errors: as apm_http_request_get_send_chunked.
#[no_mangle]
pub unsafe extern "C" fn apm_http_request_get_allow_auto_redirect(
    request: *mut apm_http_request,
    value: *mut i32,
) -> apm_status {
    boundary!({ write_out(value, "value", req(request)?.settings().allow_redirect as i32) })
}

/// MaximumAutomaticRedirections (50 by default); one more redirect fails with APM_E_WEB
/// ProtocolError "Too many automatic redirections were attempted." (with the last response).
/// Errors: APM_E_ARGUMENT_NULL (request), APM_E_ARGUMENT (not a request handle; 0 or less: "The
/// specified value must be greater than 0."), APM_E_OBJECT_DISPOSED, APM_E_INVALID_OPERATION
/// (writing started).
#[no_mangle]
pub unsafe extern "C" fn apm_http_request_set_maximum_automatic_redirections(
    request: *mut apm_http_request,
    value: i32,
) -> apm_status {
    boundary!({ req(request)?.set_max_redirects(value) })
}

/// MaximumAutomaticRedirections.
/// Errors: as apm_http_request_get_send_chunked.
#[no_mangle]
pub unsafe extern "C" fn apm_http_request_get_maximum_automatic_redirections(
    request: *mut apm_http_request,
    value: *mut i32,
) -> apm_status {
    boundary!({ write_out(value, "value", req(request)?.settings().max_redirects) })
}

/// AutomaticDecompression: APM_DECOMPRESSION_METHODS_* flags; the request then sends
/// `Accept-Encoding` and the response stream decodes a gzip or deflate body (its ContentLength
/// is then -1).
/// Errors: APM_E_ARGUMENT_NULL (request), APM_E_ARGUMENT (not a request handle),
/// APM_E_OBJECT_DISPOSED, APM_E_ARGUMENT_OUT_OF_RANGE (unknown flags), APM_E_INVALID_OPERATION
/// (writing started).
#[no_mangle]
pub unsafe extern "C" fn apm_http_request_set_automatic_decompression(
    request: *mut apm_http_request,
    value: i32,
) -> apm_status {
    boundary!({ req(request)?.set_decompression(value) })
}

/// AutomaticDecompression.
/// Errors: as apm_http_request_get_send_chunked.
#[no_mangle]
pub unsafe extern "C" fn apm_http_request_get_automatic_decompression(
    request: *mut apm_http_request,
    value: *mut i32,
) -> apm_status {
    boundary!({ write_out(value, "value", req(request)?.settings().decompression) })
}

/// ServicePoint.Expect100Continue (0 by default here): a request with a body sends
/// `Expect: 100-continue`. The body follows without waiting for the interim answer, which is
/// skipped when it comes.
/// Errors: as apm_http_request_set_send_chunked.
#[no_mangle]
pub unsafe extern "C" fn apm_http_request_set_expect_100_continue(request: *mut apm_http_request, value: i32) -> apm_status {
    boundary!({ req(request)?.set_expect_continue(value != 0) })
}

/// Expect100Continue.
/// Errors: as apm_http_request_get_send_chunked.
#[no_mangle]
pub unsafe extern "C" fn apm_http_request_get_expect_100_continue(
    request: *mut apm_http_request,
    value: *mut i32,
) -> apm_status {
    boundary!({ write_out(value, "value", req(request)?.settings().expect_continue as i32) })
}

/// MaximumResponseHeadersLength in KiB (64 by default, -1 = no limit): a longer response head
/// fails with APM_E_WEB MessageLengthLimitExceeded.
/// Errors: APM_E_ARGUMENT_NULL (request), APM_E_ARGUMENT (not a request handle; 0 or below -1),
/// APM_E_OBJECT_DISPOSED, APM_E_INVALID_OPERATION (submitted).
#[no_mangle]
pub unsafe extern "C" fn apm_http_request_set_maximum_response_headers_length(
    request: *mut apm_http_request,
    value: i32,
) -> apm_status {
    boundary!({ req(request)?.set_max_response_headers_kb(value) })
}

/// MaximumResponseHeadersLength in KiB.
/// Errors: as apm_http_request_get_send_chunked.
#[no_mangle]
pub unsafe extern "C" fn apm_http_request_get_maximum_response_headers_length(
    request: *mut apm_http_request,
    value: *mut i32,
) -> apm_status {
    boundary!({ write_out(value, "value", req(request)?.settings().max_headers_kb) })
}

/// A header with a property of its own: `name` is one of Content-Type, User-Agent, Accept,
/// Referer, Connection, Expect, Transfer-Encoding, Host, Date, If-Modified-Since, Range (the
/// ContentType, UserAgent, ... properties); `value` NULL or "" removes it. Connection may not
/// hold keep-alive or close (KeepAlive does), Expect not 100-continue (Expect100Continue does),
/// Transfer-Encoding not chunked (SendChunked does) and only with SendChunked set.
/// Errors: APM_E_ARGUMENT_NULL (request, name), APM_E_ARGUMENT (not a request handle; not UTF-8;
/// a name without a property; "Keep-Alive and Close may not be set using this property.", "100-Continue
/// may not be set using this property.", "Chunked encoding must be set via the SendChunked
/// property."; "Specified value has invalid CRLF characters."), APM_E_OBJECT_DISPOSED,
/// APM_E_INVALID_OPERATION (writing started; "TransferEncoding requires the SendChunked property
/// to be set to true.").
#[no_mangle]
pub unsafe extern "C" fn apm_http_request_set_header_property(
    request: *mut apm_http_request,
    name: *const c_char,
    value: *const c_char,
) -> apm_status {
    boundary!({
        let r = req(request)?;
        let name = str_arg(name, "name")?;
        let value = optional_str(value, "value")?;
        const PROPERTIES: [&str; 11] = [
            "Content-Type",
            "User-Agent",
            "Accept",
            "Referer",
            "Connection",
            "Expect",
            "Transfer-Encoding",
            "Host",
            "Date",
            "If-Modified-Since",
            "Range",
        ];
        match PROPERTIES.iter().find(|p| p.eq_ignore_ascii_case(name)) {
            Some(p) => r.set_property_header(p, value),
            None => Err(Error::argument(format!("'{name}' is not a header with a property of its own."))),
        }
    })
}

/// Headers.Set(name, value) (`value` NULL: Headers.Remove(name)). The restricted headers (Accept,
/// Connection, Content-Length, Content-Type, Date, Expect, Host, If-Modified-Since, Range,
/// Referer, Transfer-Encoding, User-Agent, Proxy-Connection) are refused: use their property.
/// Errors: APM_E_ARGUMENT_NULL (request, name), APM_E_ARGUMENT (not a request handle; not UTF-8;
/// "Specified value has invalid HTTP Header characters."; "Specified value has invalid CRLF
/// characters."; a restricted header: "The 'Content-Type' header must be modified using the
/// appropriate property or method."), APM_E_OBJECT_DISPOSED, APM_E_INVALID_OPERATION (submitted).
#[no_mangle]
pub unsafe extern "C" fn apm_http_request_set_header(
    request: *mut apm_http_request,
    name: *const c_char,
    value: *const c_char,
) -> apm_status {
    boundary!({ req(request)?.set_header(str_arg(name, "name")?, optional_str(value, "value")?, false) })
}

/// Headers.Add(name, value): a further value of `name` (joined with "," as .NET does).
/// Errors: as apm_http_request_set_header, plus APM_E_ARGUMENT_NULL (value).
#[no_mangle]
pub unsafe extern "C" fn apm_http_request_add_header(
    request: *mut apm_http_request,
    name: *const c_char,
    value: *const c_char,
) -> apm_status {
    boundary!({ req(request)?.set_header(str_arg(name, "name")?, Some(str_arg(value, "value")?), true) })
}

/// Headers[name]: the value of a header the request will send (also one set through its
/// property), copied as `apm_last_error_message` copies; `found` (optional) gets 0 when there is
/// none (the value is then "").
/// Errors: APM_E_ARGUMENT_NULL (request, name; buffer NULL with a nonzero buffer_len),
/// APM_E_ARGUMENT (not a request handle; not UTF-8), APM_E_OBJECT_DISPOSED.
#[no_mangle]
pub unsafe extern "C" fn apm_http_request_get_header(
    request: *mut apm_http_request,
    name: *const c_char,
    buffer: *mut c_char,
    buffer_len: usize,
    value_len: *mut usize,
    found: *mut i32,
) -> apm_status {
    boundary!({
        let v = req(request)?.header(str_arg(name, "name")?);
        copy_header(v.as_deref(), buffer, buffer_len, value_len, found)
    })
}

/// Credentials = new NetworkCredential(user, password): used when the server asks for them (a
/// 401). `WWW-Authenticate: Negotiate`, `NTLM` and `Basic` are answered in that order of
/// preference, as .NET picks. Basic: the request is sent again once. Negotiate and NTLM: the
/// multi-leg exchange runs on one kept-alive connection (SPN `HTTP/<host>`; over https bound to
/// the connection's tls-server-end-point), `DOMAIN\user` and `user@REALM` naming the domain (see
/// apm_http_request_set_credential for an explicit one). The request is sent again only when its
/// body can be: none or buffered; a body written through a ContentLength or chunked request stream
/// was sent without a copy, so its 401 is the response (ProtocolError). A 401 the credentials do
/// not get past is ProtocolError with the response attached. NULL user removes them. Not sent on
/// to a redirect's target.
/// Errors: APM_E_ARGUMENT_NULL (request; password with a user), APM_E_ARGUMENT (not a request
/// handle; not UTF-8), APM_E_OBJECT_DISPOSED, APM_E_INVALID_OPERATION (submitted).
#[no_mangle]
pub unsafe extern "C" fn apm_http_request_set_credentials(
    request: *mut apm_http_request,
    user: *const c_char,
    password: *const c_char,
) -> apm_status {
    boundary!({
        let c = user_password(user, password)?.map(|(user, password)| Credential { user, password, ..Credential::default() });
        req(request)?.set_credentials(c)
    })
}

/// Credentials = a credential of apm_credential_create (a NetworkCredential with its domain, the
/// same object NegotiateStream and NegotiateAuthentication take) or apm_credential_create_default
/// (CredentialCache.DefaultCredentials: the Kerberos ticket cache, KRB5CCNAME, used for
/// Negotiate only, as .NET uses it; the same as apm_http_request_set_use_default_credentials(1)).
/// The request keeps what it needs: the credential may be closed after the call. NULL removes
/// the credentials. Answered challenges: as apm_http_request_set_credentials.
/// Errors: APM_E_ARGUMENT_NULL (request), APM_E_ARGUMENT (not a request or credential handle; a
/// server's user list), APM_E_OBJECT_DISPOSED, APM_E_INVALID_OPERATION (submitted).
#[no_mangle]
pub unsafe extern "C" fn apm_http_request_set_credential(
    request: *mut apm_http_request,
    credential: *mut apm_credential,
) -> apm_status {
    boundary!({
        let r = req(request)?;
        let c = if credential.is_null() {
            None
        } else {
            let c = lookup::<CredentialClass>(credential)?
                .for_client()
                .ok_or_else(|| Error::argument("A server's user list cannot authenticate a client."))?;
            Some(c)
        };
        r.set_credentials(c)
    })
}

/// UseDefaultCredentials: nonzero sets the credentials to the default credential (the Kerberos
/// ticket cache, for Negotiate); zero removes them if they are the default credential (as .NET's
/// setter), and leaves others.
/// Errors: APM_E_ARGUMENT_NULL (request), APM_E_ARGUMENT (not a request handle),
/// APM_E_OBJECT_DISPOSED, APM_E_INVALID_OPERATION (submitted).
#[no_mangle]
pub unsafe extern "C" fn apm_http_request_set_use_default_credentials(request: *mut apm_http_request, value: i32) -> apm_status {
    boundary!({ req(request)?.set_use_default_credentials(value != 0) })
}

/// UseDefaultCredentials: 1 when the credentials are the default credential.
/// Errors: APM_E_ARGUMENT_NULL (request, value), APM_E_ARGUMENT (not a request handle),
/// APM_E_OBJECT_DISPOSED.
#[no_mangle]
pub unsafe extern "C" fn apm_http_request_get_use_default_credentials(request: *mut apm_http_request, value: *mut i32) -> apm_status {
    boundary!({
        let on = req(request)?.settings().credentials.is_some_and(|c| c.default);
        write_out(value, "value", on as i32)
    })
}

/// PreAuthenticate (0 by default): nonzero sends Basic credentials that a server accepted before
/// for a prefix of the URI (the URI up to its last `/`; the library remembers them for the process)
/// with the first request, without waiting for its 401. Negotiate and NTLM are never sent up
/// front, as in .NET: they authenticate a connection, not a request, and a new exchange needs the
/// server's challenge.
/// Errors: APM_E_ARGUMENT_NULL (request), APM_E_ARGUMENT (not a request handle),
/// APM_E_OBJECT_DISPOSED, APM_E_INVALID_OPERATION (submitted).
#[no_mangle]
pub unsafe extern "C" fn apm_http_request_set_pre_authenticate(request: *mut apm_http_request, value: i32) -> apm_status {
    boundary!({ req(request)?.set_pre_authenticate(value != 0) })
}

/// PreAuthenticate.
/// Errors: APM_E_ARGUMENT_NULL (request, value), APM_E_ARGUMENT (not a request handle),
/// APM_E_OBJECT_DISPOSED.
#[no_mangle]
pub unsafe extern "C" fn apm_http_request_get_pre_authenticate(request: *mut apm_http_request, value: *mut i32) -> apm_status {
    boundary!({ write_out(value, "value", req(request)?.settings().pre_authenticate as i32) })
}

/// Proxy = new WebProxy(uri): requests go through the http proxy `uri`
/// (`http://[user[:password]@]host[:port]`, 80 by default; the user information, percent-decoded,
/// is its Basic credentials). http requests are sent to it with the absolute URI as target
/// (connections to the proxy are pooled and serve any server); https ones open a tunnel with
/// `CONNECT host:port` and run TLS with the server inside it (SNI, certificate checks and the
/// TransportContext are the server's). An explicit proxy serves every URI, loopback included.
/// `uri` NULL or "": no proxy (`Proxy = null`). By default (and after
/// `apm_http_request_use_default_proxy`) the proxy is the environment's: `http_proxy` for http,
/// `https_proxy` for https, `all_proxy` for either, upper-case names too, `no_proxy` bypassing
/// hosts, as .NET 8 reads them on Linux (see the README); it is read once per process.
/// Errors: APM_E_ARGUMENT_NULL (request), APM_E_ARGUMENT (not a request handle; not UTF-8; not an
/// absolute URI, or one with a path, query or fragment), APM_E_NOT_SUPPORTED (a scheme other than
/// http: "Only the 'http' scheme is allowed for proxies."), APM_E_OBJECT_DISPOSED,
/// APM_E_INVALID_OPERATION (submitted).
#[no_mangle]
pub unsafe extern "C" fn apm_http_request_set_proxy(request: *mut apm_http_request, uri: *const c_char) -> apm_status {
    boundary!({
        let r = req(request)?;
        let setting = match optional_str(uri, "value")? {
            None | Some("") => proxy::Setting::None,
            Some(text) => proxy::Setting::Explicit(proxy::parse_explicit(text)?),
        };
        r.set_proxy(setting)
    })
}

/// Proxy = WebRequest.DefaultWebProxy: the environment's proxy again (the default).
/// Errors: APM_E_ARGUMENT_NULL (request), APM_E_ARGUMENT (not a request handle),
/// APM_E_OBJECT_DISPOSED, APM_E_INVALID_OPERATION (submitted).
#[no_mangle]
pub unsafe extern "C" fn apm_http_request_use_default_proxy(request: *mut apm_http_request) -> apm_status {
    boundary!({ req(request)?.set_proxy(proxy::Setting::Default) })
}

/// Proxy.Credentials: the user name and password sent to the proxy with Basic authentication
/// (`Proxy-Authorization`, on each request through an http proxy and on the CONNECT of a tunnel),
/// in place of those of the proxy URI. They are sent at once, not after a 407 challenge. A 407
/// offering Negotiate or NTLM is answered with them (`DOMAIN\user` names the domain; SPN
/// `HTTP/<proxy host>`), its legs on one connection: the request's for http, the CONNECT's for a
/// tunnel. NULL user removes them (the proxy URI's apply again).
/// Errors: APM_E_ARGUMENT_NULL (request; password with a user), APM_E_ARGUMENT (not a request
/// handle; not UTF-8), APM_E_OBJECT_DISPOSED, APM_E_INVALID_OPERATION (submitted).
#[no_mangle]
pub unsafe extern "C" fn apm_http_request_set_proxy_credentials(
    request: *mut apm_http_request,
    user: *const c_char,
    password: *const c_char,
) -> apm_status {
    boundary!({ req(request)?.set_proxy_credentials(user_password(user, password)?) })
}

/// Proxy.GetProxy(Address) unless Proxy.IsBypassed(Address): the proxy the request goes through
/// (`http://host:port/`, without credentials), copied as `apm_last_error_message` copies; `found`
/// (optional) gets 0 when the request goes straight to the server (the text is then "").
/// Errors: APM_E_ARGUMENT_NULL (request; buffer NULL with a nonzero buffer_len), APM_E_ARGUMENT
/// (not a request handle), APM_E_OBJECT_DISPOSED.
#[no_mangle]
pub unsafe extern "C" fn apm_http_request_get_proxy(
    request: *mut apm_http_request,
    buffer: *mut c_char,
    buffer_len: usize,
    uri_len: *mut usize,
    found: *mut i32,
) -> apm_status {
    boundary!({
        let p = req(request)?.proxy_address();
        copy_header(p.as_deref(), buffer, buffer_len, uri_len, found)
    })
}

/// For https: trust exactly the CA certificates of the PEM file at `path` instead of the system
/// store (NULL: the system store again). Certificate validation is on by default: a certificate
/// that does not validate fails the request with APM_E_WEB TrustFailure.
/// Errors: APM_E_ARGUMENT_NULL (request), APM_E_ARGUMENT (not a request handle; path not UTF-8; no
/// certificate in the file), APM_E_OBJECT_DISPOSED, APM_E_FILE_NOT_FOUND,
/// APM_E_DIRECTORY_NOT_FOUND, APM_E_UNAUTHORIZED_ACCESS, APM_E_IO, APM_E_INVALID_OPERATION
/// (submitted).
#[no_mangle]
pub unsafe extern "C" fn apm_http_request_set_trusted_ca_file(request: *mut apm_http_request, path: *const c_char) -> apm_status {
    boundary!({
        let r = req(request)?;
        r.set_trusted_cas(trusted_cas(path)?)
    })
}

/// ServerCertificateValidationCallback for https (NULL removes it): as an SslStream's
/// validation callback, with `sender` NULL (the connection has no handle). `state` stays the
/// caller's and must stay valid while the request may connect. A kept-alive connection that
/// one callback (this function with this state) accepted serves only requests with the same
/// callback, trusted CAs and client certificate.
/// Errors: APM_E_ARGUMENT_NULL (request), APM_E_ARGUMENT (not a request handle),
/// APM_E_OBJECT_DISPOSED, APM_E_INVALID_OPERATION (submitted).
#[no_mangle]
pub unsafe extern "C" fn apm_http_request_set_validation_callback(
    request: *mut apm_http_request,
    callback: apm_remote_certificate_validation_callback,
    state: *mut c_void,
) -> apm_status {
    boundary!({
        let r = req(request)?;
        // The same function with the same state is the same callback (a connection one of them
        // validated may serve the other).
        let identity = (callback.map_or(0, |f| f as usize), state as usize);
        r.set_validation_callback(validation_callback(callback, std::ptr::null_mut(), state), identity)
    })
}

/// ClientCertificates: the certificate (with its private key) presented when an https server
/// asks for one (NULL: none). The request keeps its own reference.
/// Errors: APM_E_ARGUMENT_NULL (request), APM_E_ARGUMENT (not a request handle; not a
/// certificate handle), APM_E_OBJECT_DISPOSED (the request or the certificate),
/// APM_E_INVALID_OPERATION (submitted).
#[no_mangle]
pub unsafe extern "C" fn apm_http_request_set_client_certificate(
    request: *mut apm_http_request,
    certificate: *mut apm_certificate,
) -> apm_status {
    boundary!({
        let r = req(request)?;
        r.set_client_certificate(optional_certificate(certificate)?)
    })
}

/// ServicePoint.ConnectionLimit of the request URI's scheme, host and port (2 by default, as
/// .NET Framework's DefaultConnectionLimit): at most that many connections at once; further
/// requests wait in order. Shared by every request to that endpoint.
/// Errors: APM_E_ARGUMENT_NULL (request), APM_E_ARGUMENT (not a request handle),
/// APM_E_OBJECT_DISPOSED, APM_E_ARGUMENT_OUT_OF_RANGE (0 or less).
#[no_mangle]
pub unsafe extern "C" fn apm_http_request_set_connection_limit(request: *mut apm_http_request, value: i32) -> apm_status {
    boundary!({
        let r = req(request)?;
        if value <= 0 {
            return Err(Error::out_of_range("value"));
        }
        r.service_point().set_connection_limit(value as usize);
        Ok(())
    })
}

/// ServicePoint.ConnectionLimit.
/// Errors: as apm_http_request_get_send_chunked.
#[no_mangle]
pub unsafe extern "C" fn apm_http_request_get_connection_limit(request: *mut apm_http_request, value: *mut i32) -> apm_status {
    boundary!({ write_out(value, "value", req(request)?.service_point().connection_limit() as i32) })
}

/// ServicePoint.MaxIdleTime in ms (100000 by default) of the request URI's endpoint: a kept-alive
/// connection unused that long is closed (on an engine timer).
/// Errors: APM_E_ARGUMENT_NULL (request), APM_E_ARGUMENT (not a request handle),
/// APM_E_OBJECT_DISPOSED, APM_E_ARGUMENT_OUT_OF_RANGE (below 0).
#[no_mangle]
pub unsafe extern "C" fn apm_http_request_set_max_idle_time(request: *mut apm_http_request, value: i32) -> apm_status {
    boundary!({
        let r = req(request)?;
        if value < 0 {
            return Err(Error::out_of_range("value"));
        }
        r.service_point().set_max_idle(value as u64);
        Ok(())
    })
}

/// RequestUri: the URI the request was created with (normalised), copied as
/// `apm_last_error_message` copies.
/// Errors: as apm_http_request_get_method.
#[no_mangle]
pub unsafe extern "C" fn apm_http_request_get_request_uri(
    request: *mut apm_http_request,
    buffer: *mut c_char,
    buffer_len: usize,
    uri_len: *mut usize,
) -> apm_status {
    boundary!({ copy_text(&req(request)?.request_uri(), buffer, buffer_len, uri_len) })
}

/// Address: the URI of the last request sent (after redirects), copied as
/// `apm_last_error_message` copies.
/// Errors: as apm_http_request_get_method.
#[no_mangle]
pub unsafe extern "C" fn apm_http_request_get_address(
    request: *mut apm_http_request,
    buffer: *mut c_char,
    buffer_len: usize,
    uri_len: *mut usize,
) -> apm_status {
    boundary!({ copy_text(&req(request)?.address(), buffer, buffer_len, uri_len) })
}

type Start = fn(&Arc<HttpWebRequest>, Mode, crate::op::Completion) -> Result<()>;

/// The Begin of `op`: the request's operation, asynchronous.
fn begin(
    request: *mut apm_http_request,
    op: OpKind,
    callback: apm_async_callback,
    state: *mut c_void,
    result: *mut *mut apm_async_result,
    start: Start,
) -> Result<()> {
    let r = req(request)?;
    begin_on(request, op, callback, state, result, |done, _| start(&r, Mode::Async, done))
}

/// The End of `op`: End's checks in the seed's order, then Abort's (RequestCanceled), then the
/// operation's outcome.
fn end(request: *mut apm_http_request, result: *mut apm_async_result, op: OpKind) -> Outcome {
    let value = end_on::<HttpRequestClass>(request, result, op)?;
    req(request)?.check_abort()?;
    Ok(value)
}

/// Hands out the request stream (and, when asked, its TransportContext) of a finished
/// GetRequestStream.
fn hand_out_stream(
    outcome: Outcome,
    stream: *mut *mut apm_stream,
    context: *mut *mut apm_transport_context,
) -> Result<()> {
    let grant = outcome?.object::<RequestStreamGrant>()?;
    let c: *mut apm_transport_context = if context.is_null() {
        std::ptr::null_mut()
    } else {
        register(Kind::TransportContext, Object::TransportContext(grant.context.clone()), std::ptr::null())?
    };
    let s: *mut apm_stream = register(Kind::HttpRequestStream, Object::Stream(Box::new(grant.stream.clone())), std::ptr::null())?;
    write_out(stream, "stream", s)?;
    if !context.is_null() {
        write_out(context, "context", c)?;
    }
    Ok(())
}

/// BeginGetRequestStream: connects (or takes a kept-alive connection of the pool, waiting for
/// one under the connection limit), authenticates for https, and sends the head (with the
/// ContentLength, or chunked; a body with neither is buffered and its head goes out when the
/// response is asked for). The stream comes from `apm_http_request_end_get_request_stream`.
/// Errors: from Begin, in this order: APM_E_ARGUMENT_NULL (request), APM_E_ARGUMENT (not a request
/// handle), APM_E_OBJECT_DISPOSED, APM_E_WEB (RequestCanceled: Abort was called),
/// APM_E_INVALID_OPERATION ("Cannot re-call BeginGetRequestStream/BeginGetResponse while a
/// previous call is still in progress."), APM_E_PROTOCOL_VIOLATION (GET, HEAD or CONNECT: "Cannot
/// send a content-body with this verb-type."), APM_E_INVALID_OPERATION ("This operation cannot
/// be performed after the request has been submitted."), APM_E_PROTOCOL_VIOLATION (SendChunked on
/// HTTP/1.0), the Begin rules (see apm_async_result).
#[no_mangle]
pub unsafe extern "C" fn apm_http_request_begin_get_request_stream(
    request: *mut apm_http_request,
    callback: apm_async_callback,
    state: *mut c_void,
    result: *mut *mut apm_async_result,
) -> apm_status {
    boundary!({ begin(request, OpKind::GetRequestStream, callback, state, result, HttpWebRequest::begin_get_request_stream) })
}

/// EndGetRequestStream(asyncResult, out context): waits, releases `result`, and hands out the
/// request stream (an `apm_stream`, write-only, which the caller owns and must close: closing
/// completes the body) and, when `context` is not NULL, a new TransportContext handle
/// (`apm_transport_context_close`): for https its channel bindings are the TLS connection's
/// (tls-unique and tls-server-end-point); for http it has none (GetChannelBinding gives 0 bytes,
/// .NET's null).
/// Errors: APM_E_ARGUMENT_NULL (stream), then the seed's order: APM_E_ARGUMENT_NULL (request),
/// APM_E_ARGUMENT (not a request handle), the End rules (see apm_async_result: NULL result, a
/// result of another request or Begin, a second End "EndGetRequestStream can only be called once
/// for each asynchronous operation."; APM_E_OBJECT_DISPOSED once the request is closed), APM_E_WEB
/// RequestCanceled (Abort was called), then the operation's failure: APM_E_WEB with its
/// WebExceptionStatus (NameResolutionFailure, ProxyNameResolutionFailure, ConnectFailure (the
/// server or the proxy), SecureChannelFailure, TrustFailure, SendFailure, KeepAliveFailure,
/// Timeout; ProtocolError when a proxy answers CONNECT other than 2xx, that answer attached as
/// for apm_http_request_end_get_response; the cause is the inner message), APM_E_OUT_OF_MEMORY.
#[no_mangle]
pub unsafe extern "C" fn apm_http_request_end_get_request_stream(
    request: *mut apm_http_request,
    result: *mut apm_async_result,
    stream: *mut *mut apm_stream,
    context: *mut *mut apm_transport_context,
) -> apm_status {
    boundary!({
        super::end_checks::<HttpRequestClass, _>(request, stream, "stream")?;
        hand_out_stream(end(request, result, OpKind::GetRequestStream), stream, context)
    })
}

/// GetRequestStream(out context), blocking the calling thread (which drives the connection
/// itself); otherwise as Begin/EndGetRequestStream. `context` may be NULL (the overload
/// without it).
/// Errors: as apm_http_request_begin_get_request_stream and apm_http_request_end_get_request_stream,
/// without the Begin and End rules.
#[no_mangle]
pub unsafe extern "C" fn apm_http_request_get_request_stream(
    request: *mut apm_http_request,
    stream: *mut *mut apm_stream,
    context: *mut *mut apm_transport_context,
) -> apm_status {
    boundary!({
        let r = req(request)?;
        need_out(stream, "stream")?;
        hand_out_stream(wait_for(|done| r.begin_get_request_stream(Mode::Sync, done)), stream, context)
    })
}

fn hand_out_response(outcome: Outcome, response: *mut *mut apm_http_response) -> Result<()> {
    let r = outcome?.object::<HttpWebResponse>()?;
    write_out(response, "response", response_handle(r)?)
}

/// BeginGetResponse: closes a request stream still open (a ContentLength body must be
/// complete), sends the request (a buffered body with its length; for requests without a
/// stream, GET and HEAD bare, other methods with `Content-Length: 0`), reads the response head,
/// follows redirects and answers a Basic challenge. The response comes from
/// `apm_http_request_end_get_response`. A second GetResponse hands out the same response again.
/// Errors: from Begin, in this order: APM_E_ARGUMENT_NULL (request), APM_E_ARGUMENT (not a request
/// handle), APM_E_OBJECT_DISPOSED, APM_E_WEB (RequestCanceled), APM_E_INVALID_OPERATION ("Cannot
/// re-call ..."), the failure of closing the request stream (APM_E_IO "Cannot close stream until
/// all bytes are written."), APM_E_PROTOCOL_VIOLATION ("Content-Length or Chunked Encoding cannot
/// be set for an operation that does not write data." for GET/HEAD; "You must provide a request
/// body if you set ContentLength>0 or SendChunked==true. ..." when no stream was taken), the
/// Begin rules (see apm_async_result).
#[no_mangle]
pub unsafe extern "C" fn apm_http_request_begin_get_response(
    request: *mut apm_http_request,
    callback: apm_async_callback,
    state: *mut c_void,
    result: *mut *mut apm_async_result,
) -> apm_status {
    boundary!({ begin(request, OpKind::GetResponse, callback, state, result, HttpWebRequest::begin_get_response) })
}

/// EndGetResponse: waits, releases `result`, and hands out the response, which the caller owns
/// (`apm_http_response_close`; close it, or read its stream to the end, or its connection stays
/// taken). A status outside 200-299 (200-399 without AllowAutoRedirect) fails with APM_E_WEB
/// ProtocolError ("The remote server returned an error: (404) Not Found.",
/// `apm_last_error_http_status()` the status) and the response attached:
/// `apm_http_response_from_last_error` hands it out, readable.
/// Errors: APM_E_ARGUMENT_NULL (response), then the seed's order: APM_E_ARGUMENT_NULL (request),
/// APM_E_ARGUMENT (not a request handle), the End rules (see apm_async_result; "EndGetResponse can
/// only be called once for each asynchronous operation."; APM_E_OBJECT_DISPOSED once the request
/// is closed), APM_E_WEB RequestCanceled (Abort was called), then the operation's failure:
/// APM_E_WEB with its WebExceptionStatus (ProtocolError (also a proxy's answer to CONNECT other
/// than 2xx, attached: "(407) Proxy Authentication Required."), NameResolutionFailure,
/// ProxyNameResolutionFailure, ConnectFailure, SecureChannelFailure, TrustFailure, SendFailure, ReceiveFailure, ConnectionClosed,
/// KeepAliveFailure, ServerProtocolViolation, MessageLengthLimitExceeded, Timeout),
/// APM_E_OUT_OF_MEMORY.
#[no_mangle]
pub unsafe extern "C" fn apm_http_request_end_get_response(
    request: *mut apm_http_request,
    result: *mut apm_async_result,
    response: *mut *mut apm_http_response,
) -> apm_status {
    boundary!({
        super::end_checks::<HttpRequestClass, _>(request, response, "response")?;
        hand_out_response(end(request, result, OpKind::GetResponse), response)
    })
}

/// GetResponse, blocking the calling thread (which drives the connection itself); otherwise as
/// Begin/EndGetResponse.
/// Errors: as apm_http_request_begin_get_response and apm_http_request_end_get_response, without
/// the Begin and End rules.
#[no_mangle]
pub unsafe extern "C" fn apm_http_request_get_response(
    request: *mut apm_http_request,
    response: *mut *mut apm_http_response,
) -> apm_status {
    boundary!({
        let r = req(request)?;
        need_out(response, "response")?;
        hand_out_response(wait_for(|done| r.begin_get_response(Mode::Sync, done)), response)
    })
}

/// Abort: idempotent. A pending GetRequestStream or GetResponse completes with APM_E_WEB
/// RequestCanceled (its callback runs once, possibly on this thread before Abort returns), the
/// connection is closed, the request stream's writes and every later call that checks it report
/// RequestCanceled, and the response (if any) is closed. Any thread.
/// Errors: APM_E_ARGUMENT_NULL (request), APM_E_ARGUMENT (not a request handle),
/// APM_E_OBJECT_DISPOSED.
#[no_mangle]
pub unsafe extern "C" fn apm_http_request_abort(request: *mut apm_http_request) -> apm_status {
    boundary!({
        req(request)?.abort();
        Ok(())
    })
}

/// Releases the request handle; an operation still pending is aborted (its End then reports
/// APM_E_OBJECT_DISPOSED and must still be called). The request and response streams and the
/// response handed out stay usable. Closing a closed request is a no-op.
/// Errors: APM_E_ARGUMENT_NULL (request), APM_E_ARGUMENT (not a request handle).
#[no_mangle]
pub unsafe extern "C" fn apm_http_request_close(request: *mut apm_http_request) -> apm_status {
    boundary!({ close::<HttpRequestClass>(request) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{decompression, web_status};

    #[test]
    fn the_c_constants_are_the_dotnet_values() {
        let pairs = [
            (APM_WEB_EXCEPTION_STATUS_SUCCESS, web_status::SUCCESS),
            (APM_WEB_EXCEPTION_STATUS_NAME_RESOLUTION_FAILURE, web_status::NAME_RESOLUTION_FAILURE),
            (APM_WEB_EXCEPTION_STATUS_CONNECT_FAILURE, web_status::CONNECT_FAILURE),
            (APM_WEB_EXCEPTION_STATUS_RECEIVE_FAILURE, web_status::RECEIVE_FAILURE),
            (APM_WEB_EXCEPTION_STATUS_SEND_FAILURE, web_status::SEND_FAILURE),
            (APM_WEB_EXCEPTION_STATUS_PIPELINE_FAILURE, web_status::PIPELINE_FAILURE),
            (APM_WEB_EXCEPTION_STATUS_REQUEST_CANCELED, web_status::REQUEST_CANCELED),
            (APM_WEB_EXCEPTION_STATUS_PROTOCOL_ERROR, web_status::PROTOCOL_ERROR),
            (APM_WEB_EXCEPTION_STATUS_CONNECTION_CLOSED, web_status::CONNECTION_CLOSED),
            (APM_WEB_EXCEPTION_STATUS_TRUST_FAILURE, web_status::TRUST_FAILURE),
            (APM_WEB_EXCEPTION_STATUS_SECURE_CHANNEL_FAILURE, web_status::SECURE_CHANNEL_FAILURE),
            (APM_WEB_EXCEPTION_STATUS_SERVER_PROTOCOL_VIOLATION, web_status::SERVER_PROTOCOL_VIOLATION),
            (APM_WEB_EXCEPTION_STATUS_KEEP_ALIVE_FAILURE, web_status::KEEP_ALIVE_FAILURE),
            (APM_WEB_EXCEPTION_STATUS_PENDING, web_status::PENDING),
            (APM_WEB_EXCEPTION_STATUS_TIMEOUT, web_status::TIMEOUT),
            (APM_WEB_EXCEPTION_STATUS_PROXY_NAME_RESOLUTION_FAILURE, web_status::PROXY_NAME_RESOLUTION_FAILURE),
            (APM_WEB_EXCEPTION_STATUS_UNKNOWN_ERROR, web_status::UNKNOWN_ERROR),
            (APM_WEB_EXCEPTION_STATUS_MESSAGE_LENGTH_LIMIT_EXCEEDED, web_status::MESSAGE_LENGTH_LIMIT_EXCEEDED),
            (APM_WEB_EXCEPTION_STATUS_CACHE_ENTRY_NOT_FOUND, web_status::CACHE_ENTRY_NOT_FOUND),
            (APM_WEB_EXCEPTION_STATUS_REQUEST_PROHIBITED_BY_CACHE_POLICY, web_status::REQUEST_PROHIBITED_BY_CACHE_POLICY),
            (APM_WEB_EXCEPTION_STATUS_REQUEST_PROHIBITED_BY_PROXY, web_status::REQUEST_PROHIBITED_BY_PROXY),
            (APM_DECOMPRESSION_METHODS_NONE, decompression::NONE),
            (APM_DECOMPRESSION_METHODS_GZIP, decompression::GZIP),
            (APM_DECOMPRESSION_METHODS_DEFLATE, decompression::DEFLATE),
        ];
        for (c, core) in pairs {
            assert_eq!(c, core);
        }
    }
}
