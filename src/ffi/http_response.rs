//! HttpWebResponse, as C sees it: the status, the headers, ContentLength and ContentType, the
//! ResponseUri, the response stream; and the response a ProtocolError failure carries.

use super::handles::HttpResponseClass;
use super::*;
use crate::http::{HttpWebRequest, HttpWebResponse};

/// An HttpWebResponse (System.Net.HttpWebResponse). Opaque; the caller owns it and releases it
/// with `apm_http_response_close`, which closes its stream: the connection is reused only when
/// the body was read to its end. Every function checks the handle: NULL gives
/// APM_E_ARGUMENT_NULL, a closed response APM_E_OBJECT_DISPOSED, anything that is not a
/// response handle APM_E_ARGUMENT.
pub struct apm_http_response {
    _private: [u8; 0],
}

pub(crate) fn response_handle(r: Arc<HttpWebResponse>) -> Result<*mut apm_http_response> {
    register(Kind::HttpResponse, Object::HttpResponse(r), std::ptr::null())
}

/// Copies a header's value ("" when absent) and says whether it was there (`found` optional).
pub(crate) fn copy_header(
    value: Option<&str>,
    buffer: *mut c_char,
    buffer_len: usize,
    value_len: *mut usize,
    found: *mut i32,
) -> Result<()> {
    copy_text(value.unwrap_or(""), buffer, buffer_len, value_len)?;
    if !found.is_null() {
        write_out(found, "found", value.is_some() as i32)?;
    }
    Ok(())
}

fn resp(p: *const apm_http_response) -> Result<Arc<HttpWebResponse>> {
    lookup::<HttpResponseClass>(p)
}

/// StatusCode: 200, 404, ...
/// Errors: APM_E_ARGUMENT_NULL (response, value), APM_E_ARGUMENT (not a response handle),
/// APM_E_OBJECT_DISPOSED.
#[no_mangle]
pub unsafe extern "C" fn apm_http_response_get_status_code(response: *mut apm_http_response, value: *mut i32) -> apm_status {
    boundary!({ write_out(value, "value", resp(response)?.status as i32) })
}

/// StatusDescription: the reason phrase of the status line ("OK", "Not Found"), copied as
/// `apm_last_error_message` copies.
/// Errors: APM_E_ARGUMENT_NULL (response; buffer NULL with a nonzero buffer_len), APM_E_ARGUMENT
/// (not a response handle), APM_E_OBJECT_DISPOSED.
#[no_mangle]
pub unsafe extern "C" fn apm_http_response_get_status_description(
    response: *mut apm_http_response,
    buffer: *mut c_char,
    buffer_len: usize,
    text_len: *mut usize,
) -> apm_status {
    boundary!({ copy_text(&resp(response)?.description, buffer, buffer_len, text_len) })
}

/// ProtocolVersion of the response: writes 1 and 1 or 1 and 0.
/// Errors: APM_E_ARGUMENT_NULL (response, major, minor), APM_E_ARGUMENT (not a response handle),
/// APM_E_OBJECT_DISPOSED.
#[no_mangle]
pub unsafe extern "C" fn apm_http_response_get_protocol_version(
    response: *mut apm_http_response,
    major: *mut i32,
    minor: *mut i32,
) -> apm_status {
    boundary!({
        let r = resp(response)?;
        need_out(minor, "minor")?;
        write_out(major, "major", 1)?;
        write_out(minor, "minor", r.minor_version as i32)
    })
}

/// Headers[name]: the value of a response header (several values joined with ","), copied as
/// `apm_last_error_message` copies; `found` (optional) gets 0 when there is none.
/// Errors: APM_E_ARGUMENT_NULL (response, name; buffer NULL with a nonzero buffer_len),
/// APM_E_ARGUMENT (not a response handle; name not UTF-8), APM_E_OBJECT_DISPOSED.
#[no_mangle]
pub unsafe extern "C" fn apm_http_response_get_header(
    response: *mut apm_http_response,
    name: *const c_char,
    buffer: *mut c_char,
    buffer_len: usize,
    value_len: *mut usize,
    found: *mut i32,
) -> apm_status {
    boundary!({
        let r = resp(response)?;
        copy_header(r.headers.get(str_arg(name, "name")?), buffer, buffer_len, value_len, found)
    })
}

/// Headers.Count: how many distinct header names the response has.
/// Errors: APM_E_ARGUMENT_NULL (response, count), APM_E_ARGUMENT (not a response handle),
/// APM_E_OBJECT_DISPOSED.
#[no_mangle]
pub unsafe extern "C" fn apm_http_response_get_header_count(response: *mut apm_http_response, count: *mut usize) -> apm_status {
    boundary!({ write_out(count, "count", resp(response)?.headers.len()) })
}

/// Headers.GetKey(index) and Headers.Get(index): the name and the value of the header at
/// `index` (in the order received), each copied as `apm_last_error_message` copies.
/// Errors: APM_E_ARGUMENT_NULL (response; a buffer NULL with a nonzero length), APM_E_ARGUMENT
/// (not a response handle), APM_E_OBJECT_DISPOSED, APM_E_ARGUMENT_OUT_OF_RANGE (index >= count).
#[no_mangle]
pub unsafe extern "C" fn apm_http_response_get_header_at(
    response: *mut apm_http_response,
    index: usize,
    name: *mut c_char,
    name_buffer_len: usize,
    name_len: *mut usize,
    value: *mut c_char,
    value_buffer_len: usize,
    value_len: *mut usize,
) -> apm_status {
    boundary!({
        let r = resp(response)?;
        let (n, v) = r.headers.iter().nth(index).ok_or_else(|| Error::out_of_range("index"))?;
        copy_text(n, name, name_buffer_len, name_len)?;
        copy_text(v, value, value_buffer_len, value_len)
    })
}

/// ContentLength: the Content-Length header; -1 when there is none or the body is decompressed.
/// Errors: APM_E_ARGUMENT_NULL (response, value), APM_E_ARGUMENT (not a response handle),
/// APM_E_OBJECT_DISPOSED.
#[no_mangle]
pub unsafe extern "C" fn apm_http_response_get_content_length(response: *mut apm_http_response, value: *mut i64) -> apm_status {
    boundary!({ write_out(value, "value", resp(response)?.content_length) })
}

/// ContentType: the Content-Type header ("" when none), copied as `apm_last_error_message`
/// copies.
/// Errors: as apm_http_response_get_status_description.
#[no_mangle]
pub unsafe extern "C" fn apm_http_response_get_content_type(
    response: *mut apm_http_response,
    buffer: *mut c_char,
    buffer_len: usize,
    text_len: *mut usize,
) -> apm_status {
    boundary!({ copy_text(resp(response)?.content_type(), buffer, buffer_len, text_len) })
}

/// ResponseUri: the URI that answered (after redirects), copied as `apm_last_error_message`
/// copies.
/// Errors: as apm_http_response_get_status_description.
#[no_mangle]
pub unsafe extern "C" fn apm_http_response_get_response_uri(
    response: *mut apm_http_response,
    buffer: *mut c_char,
    buffer_len: usize,
    text_len: *mut usize,
) -> apm_status {
    boundary!({ copy_text(&resp(response)?.response_uri, buffer, buffer_len, text_len) })
}

/// Method: the method of the request that got this response (GET after a 303), copied as
/// `apm_last_error_message` copies.
/// Errors: as apm_http_response_get_status_description.
#[no_mangle]
pub unsafe extern "C" fn apm_http_response_get_method(
    response: *mut apm_http_response,
    buffer: *mut c_char,
    buffer_len: usize,
    text_len: *mut usize,
) -> apm_status {
    boundary!({ copy_text(&resp(response)?.method, buffer, buffer_len, text_len) })
}

/// GetResponseStream: a new handle for the body stream (an `apm_stream`, read-only; each call
/// names the same stream). The caller owns the handle (`apm_stream_close`, which closes the
/// stream: the connection is reused only when the body was read to its end). Reads give the
/// body decoded (gzip, deflate) when AutomaticDecompression asked for it; a body shorter than its
/// Content-Length, a bad chunk or a reset fail with APM_E_IO; ReadWriteTimeout bounds each read.
/// Errors: APM_E_ARGUMENT_NULL (response, stream), APM_E_ARGUMENT (not a response handle),
/// APM_E_OBJECT_DISPOSED, APM_E_OUT_OF_MEMORY (no handle left).
#[no_mangle]
pub unsafe extern "C" fn apm_http_response_get_response_stream(
    response: *mut apm_http_response,
    stream: *mut *mut apm_stream,
) -> apm_status {
    boundary!({
        let s: Arc<dyn Stream> = resp(response)?.stream.clone();
        need_out(stream, "stream")?;
        let p: *mut apm_stream = register(Kind::HttpResponseStream, Object::Stream(Box::new(s)), std::ptr::null())?;
        write_out(stream, "stream", p)
    })
}

/// WebException.Response: a new handle for the response the calling thread's last failure
/// carries (an APM_E_WEB ProtocolError of EndGetResponse or GetResponse, whose body can be
/// read), or NULL when it carries none. The record keeps its own reference (and with it the
/// connection) until the thread's next failure or `apm_last_error_clear`: close the response
/// (or read its body to the end) so that its connection is freed.
/// Errors: APM_E_ARGUMENT_NULL (response), APM_E_OUT_OF_MEMORY (no handle left).
#[no_mangle]
pub unsafe extern "C" fn apm_http_response_from_last_error(response: *mut *mut apm_http_response) -> apm_status {
    boundary!({
        need_out(response, "response")?;
        let r = crate::error::with_last(|e| e.and_then(HttpWebRequest::response_of));
        let p = match r {
            Some(r) => response_handle(r)?,
            None => std::ptr::null_mut(),
        };
        write_out(response, "response", p)
    })
}

/// Close: closes the response stream (the connection goes back to the pool only when the body
/// was read to its end; otherwise it is closed) and releases the handle. Closing a closed
/// response is a no-op.
/// Errors: APM_E_ARGUMENT_NULL (response), APM_E_ARGUMENT (not a response handle).
#[no_mangle]
pub unsafe extern "C" fn apm_http_response_close(response: *mut apm_http_response) -> apm_status {
    boundary!({ close::<HttpResponseClass>(response) })
}
