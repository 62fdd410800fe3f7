"""SslStream, X509Certificate2 and TransportContext, as System.Net.Security and
System.Security.Cryptography.X509Certificates name them.

The validation and selection callbacks reach Python through two module-level ctypes trampolines
(alive as long as the process). The ``void *state`` the library holds is an id in :data:`_streams`,
a weak map to the SslStream: the library calls the callbacks only during a handshake, and while one
runs the stream is alive (held by the thread inside ``authenticate_*``, or by the pending
AsyncResult of ``begin_authenticate_*``).
"""

from __future__ import annotations

import datetime
import itertools
import os
import tempfile
import threading
import weakref
from ctypes import byref, c_char_p, c_int64, c_void_p
from typing import (TYPE_CHECKING, Any, Callable, List, MutableMapping, Optional, Sequence, Tuple,
                    Type, TypeVar, Union)

from . import _async, _native
from ._async import AsyncResult, await_operation, readable_buffer
from ._custom import ObjectStream
from ._handle import (_bytes_property, _copy_bytes, _flag_property, _Handle, _i32_property, _path,
                      _text, _text_property)
from ._native import SELECTION_CALLBACK, VALIDATION_CALLBACK, check, lib
from .enums import ChannelBindingKind, CipherAlgorithmType, SslPolicyErrors, SslProtocols
from ._layered import LayeredStream
from .errors import ApmError, ArgumentError

__all__ = ["SslStream", "X509Certificate2", "TransportContext", "ChannelBinding",
           "RemoteCertificateValidationCallback", "LocalCertificateSelectionCallback"]

if TYPE_CHECKING:
    from ._async import AsyncCallback, ReadableBuffer
    from ._handle import StrPath

C = TypeVar("C", bound="X509Certificate2")

#: ``callback(sender, certificate, chain, ssl_policy_errors) -> bool``: accept the peer's certificate.
RemoteCertificateValidationCallback = Callable[
    [Any, Optional["X509Certificate2"], List["X509Certificate2"], SslPolicyErrors], bool]
#: ``callback(sender, target_host, local_certificates, remote_certificate, acceptable_issuers)``:
#: the certificate (with its key) to present, or None.
LocalCertificateSelectionCallback = Callable[
    [Any, str, Sequence["X509Certificate2"], Optional["X509Certificate2"], List[str]],
    Optional["X509Certificate2"]]


# X509Certificate2 ------------------------------------------------------------------------------

def _is_pem(data: bytes) -> bool:
    return b"-----BEGIN" in data


def _loaded(function: Any, *args: Any) -> Optional[int]:
    out = c_void_p()
    check(function(*args, byref(out)))
    return out.value


def _load_der(data: ReadableBuffer) -> Optional[int]:
    pointer, length, keep = readable_buffer(data)
    return _loaded(lib.apm_certificate_load_der, pointer, length)


def _load_pem(cert_pem: Union[str, bytes], key_pem: Union[None, str, bytes] = None) -> Optional[int]:
    cert, cert_len, cert_keep = readable_buffer(_text(cert_pem))
    key, key_len, key_keep = readable_buffer(_text(key_pem))
    return _loaded(lib.apm_certificate_load_pem, cert, cert_len, key, key_len)


def _load_pkcs12_file(path: StrPath, password: Union[None, str, bytes]) -> Optional[int]:
    return _loaded(lib.apm_certificate_load_pkcs12_file, _path(path), _text(password))


def _load_pkcs12_bytes(data: ReadableBuffer, password: Union[None, str, bytes]) -> Optional[int]:
    """The C API reads PKCS#12 from a file: hand it an anonymous in-memory file (memfd), or else a
    private temporary file, so the key material never lands in a shared place."""
    data = bytes(data)
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("apmnet-pkcs12", getattr(os, "MFD_CLOEXEC", 0))
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            return _load_pkcs12_file(f"/proc/self/fd/{fd}", password)
        finally:
            os.close(fd)
    with tempfile.TemporaryDirectory(prefix="apmnet-") as folder:  # mode 0700
        path = os.path.join(folder, "certificate.p12")
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as f:
            f.write(data)
        return _load_pkcs12_file(path, password)


def _load_bytes(data: ReadableBuffer, password: Union[None, str, bytes]) -> Optional[int]:
    """``new X509Certificate2(byte[] rawData[, password])``: PEM, DER or PKCS#12, by content."""
    data = bytes(memoryview(data).cast("B")) if not isinstance(data, bytes) else data
    if password is None and _is_pem(data):
        return _load_pem(data)
    if password is None:
        try:
            return _load_der(data)
        except ArgumentError:
            pass  # not a DER certificate: PKCS#12 with the empty password?
    return _load_pkcs12_bytes(data, password)


def _load_file(file_name: StrPath, password: Union[None, str, bytes]) -> Optional[int]:
    """``new X509Certificate2(string fileName[, password])``: PEM (with its key when the file holds
    one), DER or PKCS#12, by content."""
    name = os.fsencode(file_name)
    if password is not None:
        return _load_pkcs12_file(name, password)
    try:
        with open(name, "rb") as f:
            data = f.read()
    except OSError:
        # Let the library report it, with .NET's exception and message.
        return _loaded(lib.apm_certificate_load_pem_file, name, None)
    if _is_pem(data):
        return _loaded(lib.apm_certificate_load_pem_file, name, None)
    try:
        return _load_der(data)
    except ArgumentError:
        return _load_pkcs12_file(name, None)


class X509Certificate2(_Handle):
    """System.Security.Cryptography.X509Certificates.X509Certificate2: a certificate, with its
    private key when it was loaded with one.

    ``X509Certificate2(file_name[, password])`` and ``X509Certificate2(raw_data[, password])`` look
    at the content as .NET does: PEM (a key in the same PEM is used), DER, or PKCS#12 (the empty
    password when none is given). The class methods name the format instead.
    """

    def _close_native(self) -> int:
        return lib.apm_certificate_close(self._handle)  # type: ignore[no-any-return]

    def __init__(self, file_name_or_raw_data: Union[None, StrPath, ReadableBuffer] = None,
                 password: Union[None, str, bytes] = None, *, _handle: Optional[int] = None) -> None:
        if _handle is None:
            source = file_name_or_raw_data
            if source is None:
                raise TypeError("X509Certificate2 needs a file name or the certificate's bytes")
            if isinstance(source, (str, os.PathLike)):
                _handle = _load_file(source, password)
            else:
                _handle = _load_bytes(source, password)
        super().__init__(_handle)

    @classmethod
    def create_from_pem_file(cls: Type[C], cert_pem_file_path: StrPath,
                             key_pem_file_path: Optional[StrPath] = None) -> C:
        """``X509Certificate2.CreateFromPemFile``: the first certificate of the file, any further ones
        its chain; the key from ``key_pem_file_path``, or else from the certificate's file."""
        return cls(_handle=_loaded(lib.apm_certificate_load_pem_file, _path(cert_pem_file_path),
                                   _path(key_pem_file_path)))

    @classmethod
    def create_from_pem(cls: Type[C], cert_pem: Union[str, bytes],
                        key_pem: Union[None, str, bytes] = None) -> C:
        """``X509Certificate2.CreateFromPem``: PEM text (str or bytes), the key in ``key_pem`` or in
        ``cert_pem``."""
        return cls(_handle=_load_pem(cert_pem, key_pem))

    @classmethod
    def load_certificate(cls: Type[C], data: ReadableBuffer) -> C:
        """``X509CertificateLoader.LoadCertificate``: one certificate (no key), DER or PEM."""
        data = bytes(data)
        return cls(_handle=_load_pem(data) if _is_pem(data) else _load_der(data))

    @classmethod
    def load_certificate_from_file(cls: Type[C], path: StrPath) -> C:
        """``X509CertificateLoader.LoadCertificateFromFile``: one certificate (no key), DER or PEM."""
        with open(os.fsencode(path), "rb") as f:
            return cls.load_certificate(f.read())

    @classmethod
    def load_pkcs12(cls: Type[C], data: ReadableBuffer, password: Union[None, str, bytes] = None) -> C:
        """``X509CertificateLoader.LoadPkcs12``: certificate, key and chain from PKCS#12 bytes."""
        return cls(_handle=_load_pkcs12_bytes(data, password))

    @classmethod
    def load_pkcs12_from_file(cls: Type[C], path: StrPath,
                              password: Union[None, str, bytes] = None) -> C:
        """``X509CertificateLoader.LoadPkcs12FromFile``."""
        return cls(_handle=_load_pkcs12_file(path, password))

    @classmethod
    def _copy_of(cls: Type[C], handle: int) -> C:
        """An owned copy (no key) of a certificate handle lent to a callback."""
        return cls(_handle=_load_der(_copy_bytes(lib.apm_certificate_get_raw_data, handle)))

    def __repr__(self) -> str:
        if self._closed:
            return "<apmnet.X509Certificate2 closed>"
        return f"<apmnet.X509Certificate2 {self.subject!r}>"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, X509Certificate2):
            return NotImplemented
        return self.raw_data == other.raw_data

    def __hash__(self) -> int:
        return hash(self.raw_data)

    subject = _text_property(
        lib.apm_certificate_get_subject,
        "The subject's distinguished name, as .NET writes it (``\"CN=localhost, O=apmnet\"``).")
    issuer = _text_property(lib.apm_certificate_get_issuer)
    thumbprint = _text_property(lib.apm_certificate_get_thumbprint,
                                "SHA-1 of the DER encoding, 40 upper-case hex digits.")

    def get_cert_hash(self) -> bytes:
        """The SHA-1 hash of the certificate (the thumbprint's bytes)."""
        return bytes.fromhex(self.thumbprint)

    raw_data = _bytes_property(lib.apm_certificate_get_raw_data, "The DER encoding.")
    has_private_key = _i32_property(lib.apm_certificate_has_private_key, bool)

    def _validity(self) -> Tuple[datetime.datetime, datetime.datetime]:
        not_before, not_after = c_int64(0), c_int64(0)
        check(lib.apm_certificate_get_validity(self._handle, byref(not_before), byref(not_after)))
        utc = datetime.timezone.utc
        return (datetime.datetime.fromtimestamp(not_before.value, utc),
                datetime.datetime.fromtimestamp(not_after.value, utc))

    @property
    def not_before(self) -> datetime.datetime:
        """Start of validity, an aware UTC datetime."""
        return self._validity()[0]

    @property
    def not_after(self) -> datetime.datetime:
        """End of validity, an aware UTC datetime."""
        return self._validity()[1]


def _certificate_or_none(function: Any, handle: Optional[int]) -> Optional[X509Certificate2]:
    out = c_void_p()
    check(function(handle, byref(out)))
    return None if not out.value else X509Certificate2(_handle=out.value)


# TransportContext ------------------------------------------------------------------------------

class ChannelBinding:
    """System.Security.Authentication.ExtendedProtection.ChannelBinding, as bytes: ``bytes(binding)``
    (``data``) is .NET's whole structure (the 32-byte SEC_CHANNEL_BINDINGS header, then
    ``"tls-unique:"`` or ``"tls-server-end-point:"`` and the token); ``token`` is the bare token, what
    RFC 5929 and Python's ``SSLSocket.get_channel_binding`` give."""

    HEADER_SIZE = 32

    def __init__(self, kind: ChannelBindingKind, data: bytes, token: bytes) -> None:
        self.kind = ChannelBindingKind(kind)
        self.data = data
        self.token = token

    @property
    def size(self) -> int:
        """ChannelBinding.Size: the bytes of the whole structure."""
        return len(self.data)

    def __bytes__(self) -> bytes:
        return self.data

    def __len__(self) -> int:
        return len(self.data)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ChannelBinding):
            return NotImplemented
        return (self.kind, self.data) == (other.kind, other.data)

    def __hash__(self) -> int:
        return hash((self.kind, self.data))

    def __repr__(self) -> str:
        return f"<apmnet.ChannelBinding {self.kind.name} token={self.token.hex()}>"


class TransportContext(_Handle):
    """System.Net.TransportContext of an SslStream: its channel bindings (a snapshot taken when it
    was asked for; before authentication there are none)."""

    def _close_native(self) -> int:
        return lib.apm_transport_context_close(self._handle)  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return f"<apmnet.TransportContext {'closed' if self._closed else 'open'}>"

    def get_channel_binding(self, kind: ChannelBindingKind) -> Optional[ChannelBinding]:
        """``GetChannelBinding(kind)``: a :class:`ChannelBinding`, or None when there is none of that
        kind (not authenticated, or an unknown kind), as .NET's null."""
        data = _copy_bytes(lib.apm_transport_context_get_channel_binding, self._handle, int(kind))
        if not data:
            return None
        token = _copy_bytes(lib.apm_transport_context_get_channel_binding_token, self._handle,
                            int(kind))
        return ChannelBinding(kind, data, token)


# SslStream -------------------------------------------------------------------------------------

_ids = itertools.count(1)
#: id (the void *state given to the library) -> SslStream, for the callback trampolines.
_streams: MutableMapping[int, SslStream] = weakref.WeakValueDictionary()
_streams_lock = threading.Lock()


def _stream_for(state: int) -> Optional[SslStream]:
    with _streams_lock:
        return _streams.get(state)


def _on_validate(sender: int, certificate: Optional[int], chain: Any, chain_len: int,
                 ssl_policy_errors: int, state: int) -> int:
    stream = _stream_for(state)
    if stream is None or stream._validation is None:
        return 0
    try:
        remote = None if not certificate else X509Certificate2._copy_of(certificate)
        elements = [X509Certificate2._copy_of(chain[i]) for i in range(chain_len)]
        errors = SslPolicyErrors(ssl_policy_errors)
        return 1 if stream._validation(stream, remote, elements, errors) else 0
    except BaseException as error:  # never unwind into the library: rejected, raised by authenticate
        stream._callback_error = error
        return 0


def _on_select(sender: int, target_host: Optional[bytes], local_certificates: Any, local_len: int,
               remote_certificate: Optional[int], acceptable_issuers: Any, issuers_len: int,
               state: int) -> int:
    stream = _stream_for(state)
    if stream is None or stream._selection is None:
        return 0
    try:
        host = (target_host or b"").decode("utf-8", "replace")
        if stream._local_certificates:
            local = list(stream._local_certificates)  # the objects given to authenticate, keys and all
        else:
            local = [X509Certificate2._copy_of(local_certificates[i]) for i in range(local_len)]
        remote = None if not remote_certificate else X509Certificate2._copy_of(remote_certificate)
        issuers = [acceptable_issuers[i].decode("utf-8", "replace") for i in range(issuers_len)]
        chosen = stream._selection(stream, host, local, remote, issuers)
        if chosen is None:
            return 0
        if not isinstance(chosen, X509Certificate2):
            raise TypeError("the selection callback must return an X509Certificate2 or None, not "
                            f"{type(chosen).__name__!r}")
        # The library takes its own reference once we return: until then the handle must not be
        # closed by the garbage collector, so the stream holds the object until it is closed.
        stream._selected.append(chosen)
        return chosen._handle or 0
    except BaseException as error:
        stream._callback_error = error
        return 0


_VALIDATE = VALIDATION_CALLBACK(_on_validate)


def _on_validate_request(request: Any, callback: Any) -> Any:
    """The trampoline and state for an HttpWebRequest's ServerCertificateValidationCallback:
    ``callback(request, certificate, chain, errors)`` through the same map as an SslStream's."""
    request._validation = callback
    request._callback_error = None
    if callback is None:
        return VALIDATION_CALLBACK(), None
    if getattr(request, "_id", None) is None:
        request._id = next(_ids)
    with _streams_lock:
        _streams[request._id] = request
    return _VALIDATE, request._id
_SELECT = SELECTION_CALLBACK(_on_select)

_CIPHERS = (  # (part of the IANA suite name, CipherAlgorithmType, strength in bits)
    ("_AES_128_", CipherAlgorithmType.Aes128, 128),
    ("_AES_256_", CipherAlgorithmType.Aes256, 256),
    ("_CHACHA20_", CipherAlgorithmType.None_, 256),
    ("_3DES_", CipherAlgorithmType.TripleDes, 168),
    ("_RC4_128_", CipherAlgorithmType.Rc4, 128),
    ("_DES_", CipherAlgorithmType.Des, 56),
    ("_NULL_", CipherAlgorithmType.Null, 0),
)


class SslStream(LayeredStream):
    """System.Net.Security.SslStream over ``inner_stream``.

    ``inner_stream`` is a library stream (:class:`NetworkStream`, another :class:`SslStream`) or any
    Python object with blocking ``recv_into``/``readinto`` (or ``recv``/``read``) and ``send``/``write``
    methods, e.g. a ``socket.socket``. With ``leave_inner_stream_open`` false, closing the SslStream
    closes the inner stream (and a NetworkStream's owned socket) too.

    ``user_certificate_validation_callback(sender, certificate, chain, ssl_policy_errors)`` returns
    True to accept the peer's certificate: ``certificate`` is an :class:`X509Certificate2` or None,
    ``chain`` a list of them (the peer's certificate towards the root), ``ssl_policy_errors`` a
    :class:`SslPolicyErrors`. Without one, a certificate is accepted only without policy errors.
    ``user_certificate_selection_callback(sender, target_host, local_certificates,
    remote_certificate, acceptable_issuers)`` returns the :class:`X509Certificate2` (with its key) to
    present, or None. Both run during the handshake, on the thread driving it. An exception in
    either rejects the handshake, and ``authenticate_*``/``end_authenticate_*`` raise it (the
    library's :class:`AuthenticationError` is its ``__context__``).

    Reads and writes (sync, Begin/End, coroutines) come from :class:`Stream`; one read and one write
    may be pending at once.
    """

    def __init__(self, inner_stream: Any, leave_inner_stream_open: bool = False,
                 user_certificate_validation_callback: Optional[RemoteCertificateValidationCallback] = None,
                 user_certificate_selection_callback: Optional[LocalCertificateSelectionCallback] = None
                 ) -> None:
        for hook in (user_certificate_validation_callback, user_certificate_selection_callback):
            if hook is not None and not callable(hook):
                raise TypeError(f"callbacks must be callable, not {type(hook).__name__!r}")
        super().__init__(lib.apm_ssl_stream_create, inner_stream, leave_inner_stream_open)
        self._validation = user_certificate_validation_callback
        self._selection = user_certificate_selection_callback
        self._callback_error: Optional[BaseException] = None
        self._local_certificates: Tuple[X509Certificate2, ...] = ()
        self._selected: List[X509Certificate2] = []
        self._check_revocation = False
        self._allow_tls_resume = True
        self._id = next(_ids)
        with _streams_lock:
            _streams[self._id] = self
        if self._validation is not None:
            check(lib.apm_ssl_stream_set_validation_callback(self._handle, _VALIDATE, self._id))
        if self._selection is not None:
            check(lib.apm_ssl_stream_set_selection_callback(self._handle, _SELECT, self._id))

    # Closing ----------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the stream (no close_notify is sent: see :meth:`shutdown`); with
        ``leave_inner_stream_open`` false the inner stream is closed too."""
        super().close()

    def _mark_closed(self) -> None:
        super()._mark_closed()
        self._selected = []

    # Options ----------------------------------------------------------------------------------

    def set_trusted_ca_file(self, path: Optional[StrPath]) -> None:
        """Trust exactly the CA certificates of this PEM file (None: the system store again) when
        validating the peer; before authentication only. (An apmnet extension, for private CAs.)"""
        check(lib.apm_ssl_stream_set_trusted_ca_file(self._handle, _path(path)))

    @property
    def allow_tls_resume(self) -> bool:
        """``SslClientAuthenticationOptions``/``SslServerAuthenticationOptions.AllowTlsResume`` (.NET
        8; default True); set before authentication. A client keeps the sessions of connections
        whose certificate validation passed and resumes one with the next authentication to the
        same target host with the same protocols, client certificate and validation settings (a
        resumed session's certificate is validated again, the callback included). False: a client
        neither offers nor keeps a session; a server issues no ticket and resumes nothing for this
        connection."""
        return self._allow_tls_resume

    @allow_tls_resume.setter
    def allow_tls_resume(self, allow: bool) -> None:
        check(lib.apm_ssl_stream_set_allow_tls_resume(self._handle, int(bool(allow))))
        self._allow_tls_resume = bool(allow)

    def _set_application_protocols(self, protocols: Optional[Sequence[Union[str, bytes]]]) -> None:
        if protocols is None:
            return
        names = [p if isinstance(p, bytes) else str(p).encode("utf-8") for p in protocols]
        array = (c_char_p * max(len(names), 1))(*names)
        check(lib.apm_ssl_stream_set_application_protocols(self._handle, array, len(names)))

    def _take_callback_error(self) -> Optional[BaseException]:
        error, self._callback_error = self._callback_error, None
        return error

    def _raise_failure(self, error: BaseException) -> None:
        callback_error = self._take_callback_error()
        if callback_error is not None:
            callback_error.__context__ = error
            raise callback_error
        raise error

    def _check_auth(self, status: int) -> None:
        if status != 0:
            self._raise_failure(_native.last_error(status))

    def _end_auth(self, function: Any, async_result: AsyncResult) -> None:
        try:
            _async.end(function, self._handle, async_result)
        except ApmError as error:
            self._raise_failure(error)

    def _client_arguments(self, target_host: Optional[str], client_certificates: Any,
                          enabled_ssl_protocols: SslProtocols, check_certificate_revocation: bool,
                          application_protocols: Optional[Sequence[Union[str, bytes]]]
                          ) -> Tuple[Tuple[Any, ...], Optional[X509Certificate2]]:
        certificates: Tuple[Any, ...]
        if client_certificates is None:
            certificates = ()
        elif isinstance(client_certificates, X509Certificate2):
            certificates = (client_certificates,)
        else:
            certificates = tuple(client_certificates)
        for certificate in certificates:
            if not isinstance(certificate, X509Certificate2):
                raise TypeError("client certificates must be X509Certificate2 objects, not "
                                f"{type(certificate).__name__!r}")
        # The C API presents one certificate: the first with a private key (or the first).
        chosen = next((c for c in certificates if c.has_private_key), None)
        if chosen is None and certificates:
            chosen = certificates[0]
        self._set_application_protocols(application_protocols)
        self._local_certificates = certificates
        self._check_revocation = bool(check_certificate_revocation)
        return (_text(target_host), None if chosen is None else chosen._handle,
                int(enabled_ssl_protocols), int(bool(check_certificate_revocation))), chosen

    def _server_arguments(self, server_certificate: Optional[X509Certificate2],
                          client_certificate_required: bool, enabled_ssl_protocols: SslProtocols,
                          check_certificate_revocation: bool,
                          application_protocols: Optional[Sequence[Union[str, bytes]]]
                          ) -> Tuple[Any, ...]:
        if server_certificate is not None and not isinstance(server_certificate, X509Certificate2):
            raise TypeError("the server certificate must be an X509Certificate2, not "
                            f"{type(server_certificate).__name__!r}")
        self._set_application_protocols(application_protocols)
        self._local_certificates = () if server_certificate is None else (server_certificate,)
        self._check_revocation = bool(check_certificate_revocation)
        return (None if server_certificate is None else server_certificate._handle,
                int(bool(client_certificate_required)), int(enabled_ssl_protocols),
                int(bool(check_certificate_revocation)))

    # Client authentication --------------------------------------------------------------------

    def authenticate_as_client(self, target_host: Optional[str],
                               client_certificates: Union[None, X509Certificate2, Sequence[X509Certificate2]] = None,
                               enabled_ssl_protocols: SslProtocols = SslProtocols.None_,
                               check_certificate_revocation: bool = False, *,
                               application_protocols: Optional[Sequence[Union[str, bytes]]] = None) -> None:
        """AuthenticateAsClient, blocking until the handshake is done. ``target_host`` is sent as SNI
        and the server certificate must match it (None or ""; no SNI, no name check).
        ``client_certificates``: None, an X509Certificate2 or a sequence of them (the first with a
        private key is presented when the server asks). ``application_protocols``: ALPN names
        offered (``SslClientAuthenticationOptions.ApplicationProtocols``)."""
        args, chosen = self._client_arguments(target_host, client_certificates,
                                              enabled_ssl_protocols, check_certificate_revocation,
                                              application_protocols)
        self._check_auth(lib.apm_ssl_stream_authenticate_as_client(self._handle, *args))

    def begin_authenticate_as_client(self, target_host: Optional[str],
                                     client_certificates: Union[None, X509Certificate2, Sequence[X509Certificate2]] = None,
                                     enabled_ssl_protocols: SslProtocols = SslProtocols.None_,
                                     check_certificate_revocation: bool = False,
                                     callback: Optional[AsyncCallback] = None, state: Any = None, *,
                                     application_protocols: Optional[Sequence[Union[str, bytes]]] = None) -> AsyncResult:
        args, chosen = self._client_arguments(target_host, client_certificates,
                                              enabled_ssl_protocols, check_certificate_revocation,
                                              application_protocols)
        return _async.begin(self, lib.apm_ssl_stream_begin_authenticate_as_client, self._handle,
                            args, callback, state, (args, chosen))

    def end_authenticate_as_client(self, async_result: AsyncResult) -> None:
        self._end_auth(lib.apm_ssl_stream_end_authenticate_as_client, async_result)

    async def authenticate_as_client_async(self, target_host: Optional[str],
                                           client_certificates: Union[None, X509Certificate2, Sequence[X509Certificate2]] = None,
                                           enabled_ssl_protocols: SslProtocols = SslProtocols.None_,
                                           check_certificate_revocation: bool = False, *,
                                           application_protocols: Optional[Sequence[Union[str, bytes]]] = None) -> None:
        """Coroutine: AuthenticateAsClientAsync (BeginAuthenticateAsClient/End)."""
        return await await_operation(
            lambda cb: self.begin_authenticate_as_client(
                target_host, client_certificates, enabled_ssl_protocols,
                check_certificate_revocation, cb, application_protocols=application_protocols),
            self.end_authenticate_as_client)

    # Server authentication --------------------------------------------------------------------

    def authenticate_as_server(self, server_certificate: Optional[X509Certificate2],
                               client_certificate_required: bool = False,
                               enabled_ssl_protocols: SslProtocols = SslProtocols.None_,
                               check_certificate_revocation: bool = False, *,
                               application_protocols: Optional[Sequence[Union[str, bytes]]] = None) -> None:
        """AuthenticateAsServer, blocking. ``server_certificate`` needs its private key; it may be
        None when a selection callback chooses (knowing the client's SNI name). With
        ``client_certificate_required`` the client must present one (unless the validation
        callback accepts its absence). ``application_protocols``: ALPN names accepted, in order of
        preference."""
        args = self._server_arguments(server_certificate, client_certificate_required,
                                      enabled_ssl_protocols, check_certificate_revocation,
                                      application_protocols)
        self._check_auth(lib.apm_ssl_stream_authenticate_as_server(self._handle, *args))

    def begin_authenticate_as_server(self, server_certificate: Optional[X509Certificate2],
                                     client_certificate_required: bool = False,
                                     enabled_ssl_protocols: SslProtocols = SslProtocols.None_,
                                     check_certificate_revocation: bool = False,
                                     callback: Optional[AsyncCallback] = None, state: Any = None, *,
                                     application_protocols: Optional[Sequence[Union[str, bytes]]] = None) -> AsyncResult:
        args = self._server_arguments(server_certificate, client_certificate_required,
                                      enabled_ssl_protocols, check_certificate_revocation,
                                      application_protocols)
        return _async.begin(self, lib.apm_ssl_stream_begin_authenticate_as_server, self._handle,
                            args, callback, state, (args, server_certificate))

    def end_authenticate_as_server(self, async_result: AsyncResult) -> None:
        self._end_auth(lib.apm_ssl_stream_end_authenticate_as_server, async_result)

    async def authenticate_as_server_async(self, server_certificate: Optional[X509Certificate2],
                                           client_certificate_required: bool = False,
                                           enabled_ssl_protocols: SslProtocols = SslProtocols.None_,
                                           check_certificate_revocation: bool = False, *,
                                           application_protocols: Optional[Sequence[Union[str, bytes]]] = None) -> None:
        """Coroutine: AuthenticateAsServerAsync (BeginAuthenticateAsServer/End)."""
        return await await_operation(
            lambda cb: self.begin_authenticate_as_server(
                server_certificate, client_certificate_required, enabled_ssl_protocols,
                check_certificate_revocation, cb, application_protocols=application_protocols),
            self.end_authenticate_as_server)

    # Shutdown ---------------------------------------------------------------------------------

    def shutdown(self) -> None:
        """ShutdownAsync, blocking: send the TLS close_notify; later writes fail, reads go on."""
        check(lib.apm_ssl_stream_shutdown(self._handle))

    def begin_shutdown(self, callback: Optional[AsyncCallback] = None, state: Any = None) -> AsyncResult:
        return _async.begin(self, lib.apm_ssl_stream_begin_shutdown, self._handle, (), callback,
                            state)

    def end_shutdown(self, async_result: AsyncResult) -> None:
        _async.end(lib.apm_ssl_stream_end_shutdown, self._handle, async_result)

    async def shutdown_async(self) -> None:
        return await await_operation(lambda cb: self.begin_shutdown(cb), self.end_shutdown)

    # Properties -------------------------------------------------------------------------------

    is_authenticated = _flag_property(lib.apm_ssl_stream_is_authenticated)
    is_server = _flag_property(lib.apm_ssl_stream_is_server)
    is_encrypted = _flag_property(lib.apm_ssl_stream_is_encrypted)
    is_signed = _flag_property(lib.apm_ssl_stream_is_signed)
    is_mutually_authenticated = _flag_property(lib.apm_ssl_stream_is_mutually_authenticated)
    is_resumed = _flag_property(
        lib.apm_ssl_stream_is_resumed,
        doc="True when the handshake resumed an earlier session (an apmnet extension: .NET keeps "
            "it internal); before authentication InvalidOperationError.")

    @property
    def check_cert_revocation_status(self) -> bool:
        """The check_certificate_revocation given to authenticate."""
        return self._check_revocation

    ssl_protocol = _i32_property(
        lib.apm_ssl_stream_get_ssl_protocol, SslProtocols,
        doc="The negotiated protocol, an :class:`SslProtocols` (Tls12 or Tls13).")
    negotiated_cipher_suite = _i32_property(
        lib.apm_ssl_stream_get_cipher_suite, int,
        doc="The cipher suite's number (.NET's TlsCipherSuite value, e.g. 0x1302).")
    negotiated_cipher_suite_name = _text_property(
        lib.apm_ssl_stream_get_cipher_suite_name,
        "The cipher suite's IANA name (the TlsCipherSuite member's name), e.g. "
        "``\"TLS_AES_256_GCM_SHA384\"``.")

    def _cipher(self) -> Tuple[CipherAlgorithmType, int]:
        name = self.negotiated_cipher_suite_name + "_"
        for part, algorithm, strength in _CIPHERS:
            if part in name:
                return algorithm, strength
        return CipherAlgorithmType.None_, 0

    @property
    def cipher_algorithm(self) -> CipherAlgorithmType:
        """The bulk cipher, a :class:`CipherAlgorithmType` (None_ for ChaCha20, as .NET)."""
        return self._cipher()[0]

    @property
    def cipher_strength(self) -> int:
        """The bulk cipher's key size in bits."""
        return self._cipher()[1]

    negotiated_application_protocol = _bytes_property(
        lib.apm_ssl_stream_get_application_protocol,
        "The ALPN protocol agreed on, as bytes (``b\"\"`` when none): SslApplicationProtocol's "
        "Protocol.")
    target_host_name = _text_property(
        lib.apm_ssl_stream_get_target_host_name,
        "The client's target host; on a server, the SNI name the client sent (\"\" when none).")

    @property
    def remote_certificate(self) -> Optional[X509Certificate2]:
        """The peer's certificate (a new :class:`X509Certificate2`), or None."""
        return _certificate_or_none(lib.apm_ssl_stream_get_remote_certificate, self._handle)

    @property
    def local_certificate(self) -> Optional[X509Certificate2]:
        """The certificate this side presented (a new :class:`X509Certificate2`), or None."""
        return _certificate_or_none(lib.apm_ssl_stream_get_local_certificate, self._handle)

    @property
    def transport_context(self) -> TransportContext:
        """A :class:`TransportContext` with the session's channel bindings."""
        out = c_void_p()
        check(lib.apm_ssl_stream_get_transport_context(self._handle, byref(out)))
        return TransportContext(out.value)
