"""NegotiateStream, NetworkCredential, CredentialCache and ExtendedProtectionPolicy, as System.Net and
System.Net.Security name them: NTLM, Kerberos and Negotiate over any stream ([MS-NNS]).

The server's user lookup callback reaches Python through a module-level ctypes trampoline; the
``void *state`` the library holds is an id in :data:`_lookups`, which keeps the callable alive as
long as its credential.
"""

from typing import Any, Optional
import ctypes
import itertools
import threading
from ctypes import byref, c_char_p, c_uint8, c_void_p

from . import _async
from ._async import await_operation
from ._handle import _copy_text, _flag_property, _Handle, _i32_property, _path, _text, _text_property
from ._native import LOOKUP_CALLBACK, check, lib
from .enums import PolicyEnforcement, ProtectionLevel, TokenImpersonationLevel
from ._layered import LayeredStream

__all__ = ["NegotiateStream", "NetworkCredential", "CredentialCache", "NtlmUserFile", "CredentialLookup",
           "ExtendedProtectionPolicy", "GenericIdentity"]

_PASSWORD, _NT_HASH = 1, 2


class _Credential(_Handle):
    """A library credential handle."""

    def _close_native(self) -> Any:
        lib.apm_credential_close(self._handle)

    @classmethod
    def _make(cls, function: Any, *args: Any) -> Any:
        out = c_void_p()
        check(function(*args, byref(out)))
        obj = cls.__new__(cls)
        _Handle.__init__(obj, out.value)
        return obj


class NetworkCredential(_Credential):
    """System.Net.NetworkCredential: user name, password, domain. With no domain, ``DOMAIN\\user``
    and ``user@REALM`` are split into user and domain. A server given one accepts exactly that user
    (an apmnet extension; see :class:`NtlmUserFile` for a list)."""

    def __init__(self, user_name: Any = "", password: Any = "", domain: Any = "") -> None:
        out = c_void_p()
        check(lib.apm_credential_create(_text(user_name or ""), _text(password or ""), _text(domain or ""),
                                        byref(out)))
        super().__init__(out.value)

    @property
    def user_name(self) -> Any:
        return _copy_text(lib.apm_credential_get_user_name, self._handle)

    @property
    def domain(self) -> Any:
        return _copy_text(lib.apm_credential_get_domain, self._handle)

    def __repr__(self) -> Any:
        return f"NetworkCredential({self.user_name!r}, domain={self.domain!r})"


class CredentialCache:
    """System.Net.CredentialCache: :attr:`default_network_credentials` is the Kerberos ticket cache
    for a client (NTLM is not possible with it) and the keytab for a server."""

    @classmethod
    def default_network_credentials(cls) -> Any:
        return _Credential._make(lib.apm_credential_create_default)

    default_credentials = default_network_credentials


def NtlmUserFile(path: Any) -> Any:  # noqa: N802 (a factory named like the class it stands for)
    """A server's NTLM users from a ``DOMAIN:USER:PASSWORD`` file (gss-ntlmssp's NTLM_USER_FILE)."""
    return _Credential._make(lib.apm_credential_create_from_file, _path(path))


_lookups: dict = {}
_lookup_ids = itertools.count(1)
_lookups_lock = threading.Lock()


@LOOKUP_CALLBACK
def _on_lookup(user: Any, domain: Any, password: Any, password_size: Any, nt_hash: Any, state: Any) -> Any:
    with _lookups_lock:
        function = _lookups.get(state)
    if function is None:
        return 0
    try:
        secret = function(user.decode("utf-8", "replace"), domain.decode("utf-8", "replace"))
    except Exception:  # a failing lookup is an unknown user, as the library cannot raise it
        return 0
    if secret is None:
        return 0
    if isinstance(secret, (bytes, bytearray)) and len(secret) == 16:
        ctypes.memmove(nt_hash, bytes(secret), 16)
        return _NT_HASH
    data = str(secret).encode("utf-8")[:password_size - 1]
    ctypes.memmove(password, data + b"\0", len(data) + 1)
    return _PASSWORD


class CredentialLookup(_Credential):
    """A server's NTLM users through ``function(user, domain)``, which returns the password (str),
    the 16-byte NT hash (bytes), or None for an unknown user. It runs during the handshake on the
    thread driving it."""

    def __init__(self, function: Any) -> None:
        if not callable(function):
            raise TypeError(f"the lookup must be callable, not {type(function).__name__!r}")
        self._id = next(_lookup_ids)
        with _lookups_lock:
            _lookups[self._id] = function
        out = c_void_p()
        try:
            check(lib.apm_credential_create_lookup(_on_lookup, self._id, byref(out)))
        except BaseException:
            with _lookups_lock:
                _lookups.pop(self._id, None)
            raise
        super().__init__(out.value)


class ExtendedProtectionPolicy:
    """System.Security.Authentication.ExtendedProtection.ExtendedProtectionPolicy: the channel binding
    (a :class:`ChannelBinding` or its bytes) and/or the service names (``"SERVICE/host"``) a server
    requires. Unlike .NET on Linux, the library checks them."""

    def __init__(self, policy_enforcement: Any, custom_channel_binding: Any = None, custom_service_names: Any = None) -> None:
        self.policy_enforcement = PolicyEnforcement(policy_enforcement)
        self.custom_channel_binding = custom_channel_binding
        self.custom_service_names = None if custom_service_names is None else list(custom_service_names)


class GenericIdentity:
    """System.Security.Principal.GenericIdentity: the authenticated peer."""

    def __init__(self, name: Any, authentication_type: Any) -> None:
        self.name = name
        self.authentication_type = authentication_type
        self.is_authenticated = True

    def __repr__(self) -> Any:
        return f"GenericIdentity({self.name!r}, {self.authentication_type!r})"


def _binding_bytes(binding: Any) -> Any:
    if binding is None:
        return None, 0
    data = bytes(binding)
    return (c_uint8 * max(len(data), 1)).from_buffer_copy(data.ljust(1, b"\0")), len(data)


class NegotiateStream(LayeredStream):
    """System.Net.Security.NegotiateStream over ``inner_stream`` (a library stream, an
    :class:`SslStream` included, or an object with blocking read/write methods such as a socket).

    Authenticate as the client (NTLM, Kerberos or Negotiate) or as the server, then read and write
    through :class:`Stream`: signed or sealed frames, or the plain bytes at ProtectionLevel None.
    One read and one write may be pending at once.
    """

    def __init__(self, inner_stream: Any, leave_inner_stream_open: Any = False) -> None:
        super().__init__(lib.apm_negotiate_stream_create, inner_stream, leave_inner_stream_open)
        self._keep: Any = None

    # Client -----------------------------------------------------------------------------------

    def _client_args(self, credential: Any, target_name: Any, binding: Any, protection_level: Any, allowed_impersonation_level: Any) -> Any:
        data, size = _binding_bytes(binding)
        self._keep = (credential, data)
        return (None if credential is None else credential._handle, _text(target_name), data, size,
                int(protection_level), int(allowed_impersonation_level))

    def authenticate_as_client(self, credential: Any = None, target_name: Any = "", binding: Any = None, protection_level: Any = ProtectionLevel.EncryptAndSign, allowed_impersonation_level: Any = TokenImpersonationLevel.Identification) -> Any:
        """AuthenticateAsClient(credential, binding, targetName, requiredProtectionLevel,
        allowedImpersonationLevel), blocking. ``credential``: a :class:`NetworkCredential` or
        ``CredentialCache.default_network_credentials()`` (the default when None, as .NET).
        ``target_name``: the SPN, ``"SERVICE/host"``. ``binding``: a :class:`ChannelBinding` (e.g.
        of the SslStream underneath) or None."""
        if credential is None:
            credential = CredentialCache.default_network_credentials()
        args = self._client_args(credential, target_name, binding, protection_level, allowed_impersonation_level)
        check(lib.apm_negotiate_stream_authenticate_as_client(self._handle, *args))

    def begin_authenticate_as_client(self, credential: Any = None, target_name: Any = "", binding: Any = None, protection_level: Any = ProtectionLevel.EncryptAndSign, allowed_impersonation_level: Any = TokenImpersonationLevel.Identification, callback: Any = None, state: Any = None) -> Any:
        if credential is None:
            credential = CredentialCache.default_network_credentials()
        args = self._client_args(credential, target_name, binding, protection_level, allowed_impersonation_level)
        return _async.begin(self, lib.apm_negotiate_stream_begin_authenticate_as_client, self._handle, args,
                            callback, state, self._keep)

    def end_authenticate_as_client(self, async_result: Any) -> Any:
        _async.end(lib.apm_negotiate_stream_end_authenticate_as_client, self._handle, async_result)

    async def authenticate_as_client_async(self, credential: Any = None, target_name: Any = "", binding: Any = None, protection_level: Any = ProtectionLevel.EncryptAndSign, allowed_impersonation_level: Any = TokenImpersonationLevel.Identification) -> Any:
        """Coroutine: AuthenticateAsClientAsync (BeginAuthenticateAsClient/End)."""
        return await await_operation(
            lambda cb: self.begin_authenticate_as_client(credential, target_name, binding, protection_level,
                                                         allowed_impersonation_level, cb),
            self.end_authenticate_as_client)

    # Server -----------------------------------------------------------------------------------

    def _server_args(self, credential: Any, policy: Any, protection_level: Any, required_impersonation_level: Any) -> Any:
        enforcement, data, size, names, count = PolicyEnforcement.Never, None, 0, None, 0
        if policy is not None:
            enforcement = policy.policy_enforcement
            data, size = _binding_bytes(policy.custom_channel_binding)
            if policy.custom_service_names is not None:
                encoded = [_text(n) for n in policy.custom_service_names]
                names = (c_char_p * max(len(encoded), 1))(*encoded)
                count = len(encoded)
        self._keep = (credential, data, names)
        return (None if credential is None else credential._handle, int(enforcement), data, size, names, count,
                int(protection_level), int(required_impersonation_level))

    def authenticate_as_server(self, credential: Any = None, policy: Any = None, protection_level: Any = ProtectionLevel.EncryptAndSign, required_impersonation_level: Any = TokenImpersonationLevel.Identification) -> Any:
        """AuthenticateAsServer(credential, policy, requiredProtectionLevel, requiredImpersonationLevel),
        blocking. ``credential``: the NTLM users (:class:`NtlmUserFile`, :class:`CredentialLookup`, or
        one :class:`NetworkCredential`); Kerberos clients are accepted through the keytab
        (KRB5_KTNAME). ``policy``: an :class:`ExtendedProtectionPolicy` or None."""
        args = self._server_args(credential, policy, protection_level, required_impersonation_level)
        check(lib.apm_negotiate_stream_authenticate_as_server(self._handle, *args))

    def begin_authenticate_as_server(self, credential: Any = None, policy: Any = None, protection_level: Any = ProtectionLevel.EncryptAndSign, required_impersonation_level: Any = TokenImpersonationLevel.Identification, callback: Any = None, state: Any = None) -> Any:
        args = self._server_args(credential, policy, protection_level, required_impersonation_level)
        return _async.begin(self, lib.apm_negotiate_stream_begin_authenticate_as_server, self._handle, args,
                            callback, state, self._keep)

    def end_authenticate_as_server(self, async_result: Any) -> Any:
        _async.end(lib.apm_negotiate_stream_end_authenticate_as_server, self._handle, async_result)

    async def authenticate_as_server_async(self, credential: Any = None, policy: Any = None, protection_level: Any = ProtectionLevel.EncryptAndSign, required_impersonation_level: Any = TokenImpersonationLevel.Identification) -> Any:
        """Coroutine: AuthenticateAsServerAsync (BeginAuthenticateAsServer/End)."""
        return await await_operation(
            lambda cb: self.begin_authenticate_as_server(credential, policy, protection_level,
                                                         required_impersonation_level, cb),
            self.end_authenticate_as_server)

    # Properties -------------------------------------------------------------------------------

    is_authenticated = _flag_property(lib.apm_negotiate_stream_is_authenticated)
    is_server = _flag_property(lib.apm_negotiate_stream_is_server)
    is_encrypted = _flag_property(lib.apm_negotiate_stream_is_encrypted)
    is_signed = _flag_property(lib.apm_negotiate_stream_is_signed)
    is_mutually_authenticated = _flag_property(lib.apm_negotiate_stream_is_mutually_authenticated)
    impersonation_level = _i32_property(
        lib.apm_negotiate_stream_get_impersonation_level, TokenImpersonationLevel,
        doc="The negotiated :class:`TokenImpersonationLevel` (NTLM: Identification).")
    _remote_name = _text_property(lib.apm_negotiate_stream_get_remote_identity_name)
    _remote_type = _text_property(lib.apm_negotiate_stream_get_remote_identity_authentication_type)

    @property
    def remote_identity(self) -> Any:
        """The peer, a :class:`GenericIdentity`: on a server the client (``DOMAIN\\user``,
        ``user@REALM``), on a client the target name; ``authentication_type`` "NTLM" or "Kerberos"."""
        return GenericIdentity(self._remote_name, self._remote_type)
