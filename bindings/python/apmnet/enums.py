"""The System.Net enumerations, with .NET's numeric values (the C API uses the same numbers).

.NET's ``None`` members are spelled ``None_`` (``None`` is a keyword in Python).
"""

import enum

__all__ = [
    "AddressFamily",
    "SocketType",
    "ProtocolType",
    "SocketShutdown",
    "TransmitFileOptions",
    "FileAccess",
    "SocketError",
    "SslProtocols",
    "SslPolicyErrors",
    "ChannelBindingKind",
    "CipherAlgorithmType",
    "WebExceptionStatus",
    "DecompressionMethods",
    "ProtectionLevel",
    "TokenImpersonationLevel",
    "PolicyEnforcement",
]


class AddressFamily(enum.IntEnum):
    """System.Net.Sockets.AddressFamily (the members the library supports)."""

    InterNetwork = 2
    InterNetworkV6 = 23


class SocketType(enum.IntEnum):
    """System.Net.Sockets.SocketType. Only Stream is supported; Dgram gives NotSupportedError."""

    Stream = 1
    Dgram = 2


class ProtocolType(enum.IntEnum):
    """System.Net.Sockets.ProtocolType (the members the library supports)."""

    Tcp = 6


class SocketShutdown(enum.IntEnum):
    """System.Net.Sockets.SocketShutdown."""

    Receive = 0
    Send = 1
    Both = 2


class TransmitFileOptions(enum.IntFlag):
    """System.Net.Sockets.TransmitFileOptions (flags for send_file)."""

    UseDefaultWorkerThread = 0x00
    Disconnect = 0x01
    ReuseSocket = 0x02
    WriteBehind = 0x04
    UseSystemThread = 0x10
    UseKernelApc = 0x20


class FileAccess(enum.IntEnum):
    """System.IO.FileAccess, the access a NetworkStream is created with."""

    Read = 1
    Write = 2
    ReadWrite = 3


class SocketError(enum.IntEnum):
    """System.Net.Sockets.SocketError: the Winsock-style codes .NET reports on every platform."""

    SocketError = -1
    Success = 0
    OperationAborted = 995
    IOPending = 997
    Interrupted = 10004
    AccessDenied = 10013
    Fault = 10014
    InvalidArgument = 10022
    TooManyOpenSockets = 10024
    WouldBlock = 10035
    InProgress = 10036
    AlreadyInProgress = 10037
    NotSocket = 10038
    DestinationAddressRequired = 10039
    MessageSize = 10040
    ProtocolType = 10041
    ProtocolOption = 10042
    ProtocolNotSupported = 10043
    SocketNotSupported = 10044
    OperationNotSupported = 10045
    ProtocolFamilyNotSupported = 10046
    AddressFamilyNotSupported = 10047
    AddressAlreadyInUse = 10048
    AddressNotAvailable = 10049
    NetworkDown = 10050
    NetworkUnreachable = 10051
    NetworkReset = 10052
    ConnectionAborted = 10053
    ConnectionReset = 10054
    NoBufferSpaceAvailable = 10055
    IsConnected = 10056
    NotConnected = 10057
    Shutdown = 10058
    TimedOut = 10060
    ConnectionRefused = 10061
    HostDown = 10064
    HostUnreachable = 10065
    ProcessLimit = 10067
    SystemNotReady = 10091
    VersionNotSupported = 10092
    NotInitialized = 10093
    Disconnecting = 10101
    TypeNotFound = 10109
    HostNotFound = 11001
    TryAgain = 11002
    NoRecovery = 11003
    NoData = 11004


class SslProtocols(enum.IntFlag):
    """System.Security.Authentication.SslProtocols. ``None_`` (0) lets the library choose (TLS 1.2
    and TLS 1.3); Tls and Tls11 are used only when asked for; Ssl2 and Ssl3 are not supported."""

    None_ = 0
    Ssl2 = 12
    Ssl3 = 48
    Tls = 192
    Tls11 = 768
    Tls12 = 3072
    Tls13 = 12288


class SslPolicyErrors(enum.IntFlag):
    """System.Net.Security.SslPolicyErrors: what a validation callback is told about the peer's
    certificate."""

    None_ = 0
    RemoteCertificateNotAvailable = 1
    RemoteCertificateNameMismatch = 2
    RemoteCertificateChainErrors = 4


class ChannelBindingKind(enum.IntEnum):
    """System.Security.Authentication.ExtendedProtection.ChannelBindingKind."""

    Unknown = 0
    Unique = 0x19  # tls-unique: the first Finished message of the handshake
    Endpoint = 0x1A  # tls-server-end-point: the hash of the server certificate


class CipherAlgorithmType(enum.IntEnum):
    """System.Security.Authentication.CipherAlgorithmType (SslStream.CipherAlgorithm)."""

    None_ = 0
    Null = 24576
    Des = 26113
    Rc2 = 26114
    TripleDes = 26115
    Aes128 = 26126
    Aes192 = 26127
    Aes256 = 26128
    Aes = 26129
    Rc4 = 26625


class WebExceptionStatus(enum.IntEnum):
    """System.Net.WebExceptionStatus (``WebError.web_status``)."""

    Success = 0
    NameResolutionFailure = 1
    ConnectFailure = 2
    ReceiveFailure = 3
    SendFailure = 4
    PipelineFailure = 5
    RequestCanceled = 6
    ProtocolError = 7
    ConnectionClosed = 8
    TrustFailure = 9
    SecureChannelFailure = 10
    ServerProtocolViolation = 11
    KeepAliveFailure = 12
    Pending = 13
    Timeout = 14
    ProxyNameResolutionFailure = 15
    UnknownError = 16
    MessageLengthLimitExceeded = 17
    CacheEntryNotFound = 18
    RequestProhibitedByCachePolicy = 19
    RequestProhibitedByProxy = 20


class DecompressionMethods(enum.IntFlag):
    """System.Net.DecompressionMethods (HttpWebRequest.automatic_decompression)."""

    None_ = 0
    GZip = 1
    Deflate = 2
class ProtectionLevel(enum.IntEnum):
    """System.Net.Security.ProtectionLevel: what a NegotiateStream does to the data."""

    None_ = 0
    Sign = 1
    EncryptAndSign = 2


class TokenImpersonationLevel(enum.IntEnum):
    """System.Security.Principal.TokenImpersonationLevel."""

    None_ = 0
    Anonymous = 1
    Identification = 2
    Impersonation = 3
    Delegation = 4


class PolicyEnforcement(enum.IntEnum):
    """System.Security.Authentication.ExtendedProtection.PolicyEnforcement."""

    Never = 0
    WhenSupported = 1
    Always = 2
