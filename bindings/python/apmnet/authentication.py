"""NegotiateAuthentication (.NET 7+'s System.Net.Security.NegotiateAuthentication): one NTLM,
Kerberos or Negotiate exchange whose blobs the caller carries (in an HTTP header, a custom
protocol), then wrap, unwrap and integrity checks on the established context.

Failures of a step are a :class:`NegotiateAuthenticationStatusCode`, as in .NET; only misuse (a
closed object, wrap before authentication) raises. A Kerberos step blocks the calling thread while
GSSAPI asks the KDC, as .NET's does.
"""

import enum
from ctypes import POINTER, byref, c_char_p, c_int32, c_size_t, c_uint8, c_void_p, cast
from typing import Any, Iterable, Optional, Tuple

from ._handle import _copy_text, _flag_property, _Handle, _i32_property, _text, _text_property
from ._native import check, lib
from .enums import ChannelBindingKind, PolicyEnforcement, ProtectionLevel, TokenImpersonationLevel
from .negotiate import GenericIdentity, _Credential
from .security import TransportContext

__all__ = ["NegotiateAuthentication", "NegotiateAuthenticationClientOptions",
           "NegotiateAuthenticationServerOptions", "NegotiateAuthenticationStatusCode"]


class NegotiateAuthenticationStatusCode(enum.IntEnum):
    """System.Net.Security.NegotiateAuthenticationStatusCode."""

    Completed = 0
    ContinueNeeded = 1
    GenericFailure = 2
    BadBinding = 3
    Unsupported = 4
    MessageAltered = 5
    ContextExpired = 6
    CredentialsExpired = 7
    InvalidCredentials = 8
    InvalidToken = 9
    UnknownCredentials = 10
    QopNotSupported = 11
    OutOfSequence = 12
    SecurityQosFailed = 13
    TargetUnknown = 14
    ImpersonationValidationFailed = 15


class NegotiateAuthenticationClientOptions:
    """NegotiateAuthenticationClientOptions, with .NET 8's defaults. ``credential`` None is the default
    credential (the Kerberos ticket cache). The channel binding is a :class:`TransportContext` (an SslStream's or an
    HttpWebRequest's) with the ``binding_kind`` to take from it."""

    def __init__(self, package: str = "Negotiate", credential: Optional[_Credential] = None,
                 target_name: str = "", binding: Optional[TransportContext] = None,
                 binding_kind: ChannelBindingKind = ChannelBindingKind.Endpoint,
                 required_protection_level: ProtectionLevel = ProtectionLevel.None_,
                 require_mutual_authentication: bool = False,
                 allowed_impersonation_level: TokenImpersonationLevel = TokenImpersonationLevel.None_) -> None:
        self.package = package
        self.credential = credential
        self.target_name = target_name
        self.binding = binding
        self.binding_kind = binding_kind
        self.required_protection_level = required_protection_level
        self.require_mutual_authentication = require_mutual_authentication
        self.allowed_impersonation_level = allowed_impersonation_level


class NegotiateAuthenticationServerOptions:
    """NegotiateAuthenticationServerOptions: ``credential`` the NTLM users (a NetworkCredential,
    :func:`NtlmUserFile`, :class:`CredentialLookup`; Kerberos uses the keytab), the channel binding
    of this side's :class:`TransportContext` and how it is checked (``policy_enforcement``), the
    accepted service names."""

    def __init__(self, package: str = "Negotiate", credential: Optional[_Credential] = None,
                 binding: Optional[TransportContext] = None,
                 binding_kind: ChannelBindingKind = ChannelBindingKind.Endpoint,
                 policy_enforcement: PolicyEnforcement = PolicyEnforcement.WhenSupported,
                 service_names: Optional[Iterable[str]] = None,
                 required_protection_level: ProtectionLevel = ProtectionLevel.None_,
                 required_impersonation_level: TokenImpersonationLevel = TokenImpersonationLevel.None_) -> None:
        self.package = package
        self.credential = credential
        self.binding = binding
        self.binding_kind = binding_kind
        self.policy_enforcement = policy_enforcement
        self.service_names = None if service_names is None else list(service_names)
        self.required_protection_level = required_protection_level
        self.required_impersonation_level = required_impersonation_level


def _handle_of(obj: Optional[_Handle]) -> Optional[int]:
    return None if obj is None else obj._handle


def _in(data: bytes) -> Tuple[Any, int]:
    buffer = (c_uint8 * max(len(data), 1)).from_buffer_copy(bytes(data).ljust(1, b"\0"))
    return buffer, len(data)


class NegotiateAuthentication(_Handle):
    """System.Net.Security.NegotiateAuthentication, client or server by its options."""

    def __init__(self, options: Any) -> None:
        out = c_void_p()
        if isinstance(options, NegotiateAuthenticationClientOptions):
            check(lib.apm_negotiate_authentication_create_client(
                _text(options.package), _handle_of(options.credential), _text(options.target_name),
                _handle_of(options.binding), int(options.binding_kind), int(options.required_protection_level),
                int(bool(options.require_mutual_authentication)), int(options.allowed_impersonation_level),
                byref(out)))
        elif isinstance(options, NegotiateAuthenticationServerOptions):
            names = options.service_names
            array = None if names is None else (c_char_p * max(len(names), 1))(*[_text(n) for n in names])
            check(lib.apm_negotiate_authentication_create_server(
                _text(options.package), _handle_of(options.credential), _handle_of(options.binding),
                int(options.binding_kind), int(options.policy_enforcement),
                None if array is None else cast(array, POINTER(c_char_p)), 0 if names is None else len(names),
                int(options.required_protection_level), int(options.required_impersonation_level), byref(out)))
        else:
            raise TypeError("options must be NegotiateAuthenticationClientOptions or ...ServerOptions, "
                            f"not {type(options).__name__!r}")
        super().__init__(out.value)

    def _close_native(self) -> int:
        return lib.apm_negotiate_authentication_close(self._handle)  # type: ignore[no-any-return]

    def _output(self, size: int) -> bytes:
        """The last call's output in full (it did not fit the first buffer)."""
        buffer = (c_uint8 * max(size, 1))()
        n = c_size_t(0)
        check(lib.apm_negotiate_authentication_get_last_output(self._handle, buffer, size, byref(n)))
        return bytes(buffer)[:n.value]

    def get_outgoing_blob(self, incoming_blob: Optional[bytes]) -> Tuple[Optional[bytes], NegotiateAuthenticationStatusCode]:
        """``GetOutgoingBlob(incomingBlob, out statusCode)``: ``(blob or None, status)``."""
        data, length = _in(incoming_blob or b"")
        buffer = (c_uint8 * 4096)()
        n, status = c_size_t(0), c_int32(0)
        check(lib.apm_negotiate_authentication_get_outgoing_blob(self._handle, data, length, buffer, 4096,
                                                                 byref(n), byref(status)))
        blob = bytes(buffer)[:n.value] if n.value <= 4096 else self._output(n.value)
        return (blob or None), NegotiateAuthenticationStatusCode(status.value)

    def wrap(self, data: bytes, request_encryption: bool) -> Tuple[NegotiateAuthenticationStatusCode, bytes, bool]:
        """``Wrap(input, outputWriter, requestEncryption, out isEncrypted)``:
        ``(status, token, is_encrypted)``."""
        src, length = _in(data)
        cap = length + 128
        buffer = (c_uint8 * cap)()
        n, enc, status = c_size_t(0), c_int32(0), c_int32(0)
        check(lib.apm_negotiate_authentication_wrap(self._handle, src, length, int(bool(request_encryption)), buffer,
                                                    cap, byref(n), byref(enc), byref(status)))
        out = bytes(buffer)[:n.value] if n.value <= cap else self._output(n.value)
        return NegotiateAuthenticationStatusCode(status.value), out, bool(enc.value)

    def unwrap(self, token: bytes) -> Tuple[NegotiateAuthenticationStatusCode, bytes, bool]:
        """``Unwrap(input, outputWriter, out wasEncrypted)``: ``(status, plaintext, was_encrypted)``."""
        src, length = _in(token)
        buffer = (c_uint8 * max(length, 1))()
        n, enc, status = c_size_t(0), c_int32(0), c_int32(0)
        check(lib.apm_negotiate_authentication_unwrap(self._handle, src, length, buffer, max(length, 1), byref(n),
                                                      byref(enc), byref(status)))
        return NegotiateAuthenticationStatusCode(status.value), bytes(buffer)[:n.value], bool(enc.value)

    def compute_integrity_check(self, message: bytes) -> bytes:
        """``ComputeIntegrityCheck(message, signatureWriter)``: the MIC."""
        src, length = _in(message)
        buffer = (c_uint8 * 256)()
        n = c_size_t(0)
        check(lib.apm_negotiate_authentication_compute_integrity_check(self._handle, src, length, buffer, 256, byref(n)))
        return bytes(buffer)[:n.value] if n.value <= 256 else self._output(n.value)

    def verify_integrity_check(self, message: bytes, signature: bytes) -> bool:
        """``VerifyIntegrityCheck(message, signature)``."""
        src, length = _in(message)
        sig, sig_length = _in(signature)
        valid = c_int32(0)
        check(lib.apm_negotiate_authentication_verify_integrity_check(self._handle, src, length, sig, sig_length,
                                                                      byref(valid)))
        return bool(valid.value)

    is_authenticated = _flag_property(lib.apm_negotiate_authentication_is_authenticated)
    is_server = _flag_property(lib.apm_negotiate_authentication_is_server)
    is_signed = _flag_property(lib.apm_negotiate_authentication_is_signed)
    is_encrypted = _flag_property(lib.apm_negotiate_authentication_is_encrypted)
    is_mutually_authenticated = _flag_property(lib.apm_negotiate_authentication_is_mutually_authenticated)
    protection_level = _i32_property(lib.apm_negotiate_authentication_get_protection_level, ProtectionLevel)
    impersonation_level = _i32_property(lib.apm_negotiate_authentication_get_impersonation_level,
                                        TokenImpersonationLevel)
    package = _text_property(lib.apm_negotiate_authentication_get_package,
                             "The requested package; once SPNEGO chose, NTLM or Kerberos.")
    target_name = _text_property(lib.apm_negotiate_authentication_get_target_name)

    @property
    def remote_identity(self) -> GenericIdentity:
        """RemoteIdentity; InvalidOperationError before authentication."""
        name = _copy_text(lib.apm_negotiate_authentication_get_remote_identity_name, self._handle)
        kind = _copy_text(lib.apm_negotiate_authentication_get_remote_identity_authentication_type, self._handle)
        return GenericIdentity(name, kind)
