"""HttpWebRequest and HttpWebResponse, as System.Net names them (the .NET Framework 4 contract).

    request = apmnet.HttpWebRequest.create("https://localhost:8443/upload")
    request.method = "POST"
    request.content_length = len(data)
    stream, context = request.get_request_stream_with_context()   # GetRequestStream(out context)
    with stream:
        stream.write(data)
    with request.get_response() as response:
        print(response.status_code, response.get_response_stream().read(65536))

A status >= 400 raises :class:`apmnet.WebError` with ``web_status`` ProtocolError and the response
in ``error.response``. ``get_response_async()`` and ``get_request_stream_async()`` are coroutines
on the Begin/End pair.
"""

import ctypes
from typing import Any, Optional
from ctypes import byref, c_int32, c_int64, c_size_t, c_void_p

from . import _async
from ._async import await_operation
from ._handle import _copy_text, _Handle, _i32_property, _i32_setting, _text, _text_property
from ._native import check, lib
from .enums import DecompressionMethods
from .security import TransportContext, _on_validate_request
from .streams import Stream

__all__ = ["HttpWebRequest", "HttpWebResponse"]


def _flag(getter: Any, setter: Any, doc: Optional[str] = None) -> Any:
    return _i32_setting(getter, setter, bool, doc)


def _i64_property(getter: Any, setter: Any, doc: Any = None) -> Any:
    def get(self: Any) -> Any:
        out = c_int64(0)
        check(getter(self._handle, byref(out)))
        return out.value

    def put(self: Any, value: Any) -> Any:
        check(setter(self._handle, int(value)))

    return property(get, put, doc=doc)


def _header_property(name: Any) -> Any:
    def get(self: Any) -> Any:
        return self.headers_get(name)

    def put(self: Any, value: Any) -> Any:
        check(lib.apm_http_request_set_header_property(self._handle, _text(name), _text(value)))

    return property(get, put, doc=f"HttpWebRequest.{name.replace('-', '')}: the {name} header.")


def _found_text(function: Any, handle: Any, *args: Any) -> Optional[str]:
    """A text copied out with a `found` flag (a header's value, the proxy), or None when there is
    none (.NET's null)."""
    size, found = c_size_t(0), c_int32(0)
    check(function(handle, *args, None, 0, byref(size), byref(found)))
    if not found.value:
        return None
    buffer = ctypes.create_string_buffer(size.value + 1)
    check(function(handle, *args, buffer, len(buffer), byref(size), byref(found)))
    return buffer.value.decode("utf-8", "replace")


class HttpWebResponse(_Handle):
    """System.Net.HttpWebResponse: close it (or read its stream to the end) to free its connection."""

    def _close_native(self) -> Any:
        return lib.apm_http_response_close(self._handle)

    def __repr__(self) -> Any:
        return f"<apmnet.HttpWebResponse {'closed' if self._closed else self.status_code}>"

    status_code = _i32_property(lib.apm_http_response_get_status_code, int, doc="StatusCode (200, 404, ...).")
    status_description = _text_property(lib.apm_http_response_get_status_description)
    content_type = _text_property(lib.apm_http_response_get_content_type)
    response_uri = _text_property(lib.apm_http_response_get_response_uri, doc="ResponseUri (after redirects).")
    method = _text_property(lib.apm_http_response_get_method)

    @property
    def content_length(self) -> Any:
        """ContentLength: -1 when the response has none (or its body is decompressed)."""
        out = c_int64(0)
        check(lib.apm_http_response_get_content_length(self._handle, byref(out)))
        return out.value

    @property
    def protocol_version(self) -> Any:
        major, minor = c_int32(0), c_int32(0)
        check(lib.apm_http_response_get_protocol_version(self._handle, byref(major), byref(minor)))
        return major.value, minor.value

    @property
    def headers(self) -> Any:
        """The headers, in order: a list of (name, value) (several values of a name joined by ",")."""
        count = c_size_t(0)
        check(lib.apm_http_response_get_header_count(self._handle, byref(count)))
        out = []
        for i in range(count.value):
            sizes = (c_size_t(0), c_size_t(0))
            check(lib.apm_http_response_get_header_at(self._handle, i, None, 0, byref(sizes[0]), None, 0,
                                                      byref(sizes[1])))
            name = ctypes.create_string_buffer(sizes[0].value + 1)
            value = ctypes.create_string_buffer(sizes[1].value + 1)
            check(lib.apm_http_response_get_header_at(self._handle, i, name, len(name), byref(sizes[0]), value,
                                                      len(value), byref(sizes[1])))
            out.append((name.value.decode("utf-8", "replace"), value.value.decode("utf-8", "replace")))
        return out

    def get_header(self, name: Any) -> Any:
        """Headers[name], or None."""
        return _found_text(lib.apm_http_response_get_header, self._handle, _text(name))

    def get_response_stream(self) -> Any:
        """GetResponseStream: the body (a read-only :class:`apmnet.Stream`)."""
        out = c_void_p()
        check(lib.apm_http_response_get_response_stream(self._handle, byref(out)))
        return Stream(out.value)

    def read_all(self) -> Any:
        """The whole body (reads the response stream to its end, which frees the connection)."""
        chunks: list = []
        with self.get_response_stream() as stream:
            while True:
                chunk = stream.read(65536)
                if not chunk:
                    return b"".join(chunks)
                chunks.append(chunk)


class HttpWebRequest(_Handle):
    """System.Net.HttpWebRequest with the .NET Framework 4 contract: ContentLength is enforced by the
    request stream, ``get_request_stream_with_context`` hands out the connection's TransportContext,
    failures are :class:`apmnet.WebError` with the Framework's WebExceptionStatus."""

    def __init__(self, uri: Any) -> None:
        out = c_void_p()
        check(lib.apm_http_request_create(_text(uri), byref(out)))
        super().__init__(out.value)
        self._validation = None
        self._id = None

    @classmethod
    def create(cls, uri: Any) -> Any:
        """``WebRequest.Create(uri)`` for an http or https URI."""
        return cls(uri)

    def _close_native(self) -> Any:
        return lib.apm_http_request_close(self._handle)

    def __repr__(self) -> Any:
        return f"<apmnet.HttpWebRequest {'closed' if self._closed else self.address}>"

    @property
    def method(self) -> Any:
        return _copy_text(lib.apm_http_request_get_method, self._handle)

    @method.setter
    def method(self, value: Any) -> Any:
        check(lib.apm_http_request_set_method(self._handle, _text(value)))

    content_length = _i64_property(lib.apm_http_request_get_content_length, lib.apm_http_request_set_content_length,
                                   "ContentLength (-1 until set).")
    send_chunked = _flag(lib.apm_http_request_get_send_chunked, lib.apm_http_request_set_send_chunked)
    keep_alive = _flag(lib.apm_http_request_get_keep_alive, lib.apm_http_request_set_keep_alive)
    timeout = _i32_setting(lib.apm_http_request_get_timeout, lib.apm_http_request_set_timeout, int, "Timeout in ms (-1: infinite).")
    read_write_timeout = _i32_setting(lib.apm_http_request_get_read_write_timeout, lib.apm_http_request_set_read_write_timeout, int)
    allow_auto_redirect = _flag(lib.apm_http_request_get_allow_auto_redirect,
                                lib.apm_http_request_set_allow_auto_redirect)
    maximum_automatic_redirections = _i32_setting(lib.apm_http_request_get_maximum_automatic_redirections, lib.apm_http_request_set_maximum_automatic_redirections, int)
    automatic_decompression = _i32_setting(lib.apm_http_request_get_automatic_decompression, lib.apm_http_request_set_automatic_decompression, DecompressionMethods)
    expect_100_continue = _flag(lib.apm_http_request_get_expect_100_continue,
                                lib.apm_http_request_set_expect_100_continue)
    maximum_response_headers_length = _i32_setting(lib.apm_http_request_get_maximum_response_headers_length, lib.apm_http_request_set_maximum_response_headers_length, int)
    connection_limit = _i32_setting(lib.apm_http_request_get_connection_limit, lib.apm_http_request_set_connection_limit, int, "ServicePoint.ConnectionLimit of the request's endpoint.")
    content_type = _header_property("Content-Type")
    user_agent = _header_property("User-Agent")
    accept = _header_property("Accept")
    referer = _header_property("Referer")
    host = _header_property("Host")
    request_uri = _text_property(lib.apm_http_request_get_request_uri)
    address = _text_property(lib.apm_http_request_get_address, doc="Address: the URI after redirects.")

    @property
    def protocol_version(self) -> Any:
        major, minor = c_int32(0), c_int32(0)
        check(lib.apm_http_request_get_protocol_version(self._handle, byref(major), byref(minor)))
        return major.value, minor.value

    @protocol_version.setter
    def protocol_version(self, value: Any) -> Any:
        major, minor = value
        check(lib.apm_http_request_set_protocol_version(self._handle, major, minor))

    def set_max_idle_time(self, ms: Any) -> Any:
        """ServicePoint.MaxIdleTime of the request's endpoint."""
        check(lib.apm_http_request_set_max_idle_time(self._handle, int(ms)))

    def headers_get(self, name: Any) -> Any:
        """Headers[name]: what the request will send, or None."""
        return _found_text(lib.apm_http_request_get_header, self._handle, _text(name))

    def headers_set(self, name: Any, value: Any) -> Any:
        """Headers.Set (value None: Headers.Remove); the restricted headers raise ArgumentError."""
        check(lib.apm_http_request_set_header(self._handle, _text(name), _text(value)))

    def headers_add(self, name: Any, value: Any) -> Any:
        check(lib.apm_http_request_add_header(self._handle, _text(name), _text(value)))

    def set_credentials(self, user: Any, password: Any) -> Any:
        """Credentials = NetworkCredential(user, password) (None: none): answers a 401 offering
        Negotiate, NTLM or Basic (``DOMAIN\\user`` names the domain); see :attr:`credentials`."""
        check(lib.apm_http_request_set_credentials(self._handle, _text(user), _text(password)))
        self._credentials = None

    @property
    def credentials(self) -> Any:
        """Credentials: the :class:`apmnet.NetworkCredential` (with its domain) or
        ``CredentialCache.default_credentials()`` (the Kerberos ticket cache, for Negotiate) set
        here, or None. A 401 offering Negotiate, NTLM or Basic is answered in that order; Negotiate
        and NTLM run their legs on one kept-alive connection, bound over https to its
        tls-server-end-point. The library keeps what it needs of the credential."""
        return getattr(self, "_credentials", None)

    @credentials.setter
    def credentials(self, value: Any) -> None:
        check(lib.apm_http_request_set_credential(self._handle, None if value is None else value._handle))
        self._credentials = value

    use_default_credentials = _flag(
        lib.apm_http_request_get_use_default_credentials, lib.apm_http_request_set_use_default_credentials,
        "UseDefaultCredentials: the Kerberos ticket cache (KRB5CCNAME) for Negotiate.")
    pre_authenticate = _flag(
        lib.apm_http_request_get_pre_authenticate, lib.apm_http_request_set_pre_authenticate,
        "PreAuthenticate: Basic credentials a server accepted go up front under its URI prefix "
        "(never Negotiate or NTLM, which authenticate a connection).")

    #: ``request.proxy = HttpWebRequest.DEFAULT_PROXY``: WebRequest.DefaultWebProxy, the
    #: environment's proxy (http_proxy, https_proxy, all_proxy, no_proxy, as .NET 8 reads them).
    DEFAULT_PROXY = object()

    @property
    def proxy(self) -> Optional[str]:
        """Proxy.GetProxy(Address): ``"http://host:port/"`` of the proxy the request goes through,
        or None when it goes straight to the server. Set it to an http proxy URI
        (``"http://[user:password@]host[:port]"``), None for no proxy (``Proxy = null``) or
        :attr:`DEFAULT_PROXY` (the default)."""
        return _found_text(lib.apm_http_request_get_proxy, self._handle)

    @proxy.setter
    def proxy(self, value: Any) -> None:
        if value is HttpWebRequest.DEFAULT_PROXY:
            check(lib.apm_http_request_use_default_proxy(self._handle))
        else:
            check(lib.apm_http_request_set_proxy(self._handle, _text(value)))

    def set_proxy_credentials(self, user: Any, password: Any) -> None:
        """Proxy.Credentials = NetworkCredential(user, password), sent as Basic to the proxy (None:
        the proxy URI's own), and answering a 407 that offers Negotiate or NTLM."""
        check(lib.apm_http_request_set_proxy_credentials(self._handle, _text(user), _text(password)))

    def set_trusted_ca_file(self, path: Any) -> Any:
        check(lib.apm_http_request_set_trusted_ca_file(self._handle, _text(path)))

    def set_client_certificate(self, certificate: Any) -> Any:
        check(lib.apm_http_request_set_client_certificate(self._handle, certificate._handle if certificate else None))

    def set_server_certificate_validation_callback(self, callback: Any) -> Any:
        """ServerCertificateValidationCallback: ``callback(request, certificate, chain,
        ssl_policy_errors) -> bool``; None removes it."""
        trampoline, state = _on_validate_request(self, callback)
        check(lib.apm_http_request_set_validation_callback(self._handle, trampoline, state))

    # GetRequestStream ---------------------------------------------------------------------

    def _hand_out(self, stream: Any, context: Any) -> Any:
        ctx = TransportContext(context.value) if context.value else None
        return Stream(stream.value), ctx

    def get_request_stream(self) -> Any:
        """GetRequestStream(): the request stream (write-only; close it to finish the body)."""
        return self.get_request_stream_with_context()[0]

    def get_request_stream_with_context(self) -> Any:
        """GetRequestStream(out TransportContext): ``(stream, context)``; for https the context's
        channel bindings are the TLS connection's."""
        stream, context = c_void_p(), c_void_p()
        check(lib.apm_http_request_get_request_stream(self._handle, byref(stream), byref(context)))
        return self._hand_out(stream, context)

    def begin_get_request_stream(self, callback: Any = None, state: Any = None) -> Any:
        return _async.begin(self, lib.apm_http_request_begin_get_request_stream, self._handle, (), callback, state)

    def end_get_request_stream(self, async_result: Any) -> Any:
        """EndGetRequestStream(asyncResult, out context): ``(stream, context)``."""
        stream, context = c_void_p(), c_void_p()
        _async.end(lib.apm_http_request_end_get_request_stream, self._handle, async_result, byref(stream),
                   byref(context))
        return self._hand_out(stream, context)

    async def get_request_stream_async(self) -> Any:
        """Coroutine: ``(stream, context)`` through Begin/EndGetRequestStream."""
        return await await_operation(self.begin_get_request_stream, self.end_get_request_stream)

    # GetResponse ---------------------------------------------------------------------------

    def get_response(self) -> Any:
        out = c_void_p()
        check(lib.apm_http_request_get_response(self._handle, byref(out)))
        return HttpWebResponse(out.value)

    def begin_get_response(self, callback: Any = None, state: Any = None) -> Any:
        return _async.begin(self, lib.apm_http_request_begin_get_response, self._handle, (), callback, state)

    def end_get_response(self, async_result: Any) -> Any:
        out = c_void_p()
        _async.end(lib.apm_http_request_end_get_response, self._handle, async_result, byref(out))
        return HttpWebResponse(out.value)

    async def get_response_async(self) -> Any:
        """Coroutine: the response through Begin/EndGetResponse."""
        return await await_operation(self.begin_get_response, self.end_get_response)

    def abort(self) -> Any:
        """Abort: idempotent; the pending operation ends with WebError RequestCanceled."""
        check(lib.apm_http_request_abort(self._handle))
