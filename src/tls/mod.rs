//! SslStream on OpenSSL (reference/dotnet-semantics.md section 4): certificates, the shared
//! OpenSSL contexts, the client's session cache, the stream itself (a layered protocol: OpenSSL works on memory buffers and
//! `crate::layered::Channel` drives the inner stream with its own Begin/End), and the
//! TransportContext's channel bindings.

pub mod certificate;
pub mod channel_binding;
mod context;
mod engine;
mod session_cache;
pub mod ssl_stream;
mod sys;

pub use certificate::Certificate;
pub use crate::channel_binding::TransportContext;
pub use context::AuthOptions;
pub use ssl_stream::SslStream;

/// The pure byte parsers of this module, for the fuzz targets (fuzz/) and their corpus test.
#[doc(hidden)]
pub mod parsers {
    pub use super::context::{alpn_wire, select_alpn};
    pub use super::engine::Framer;
}

use std::sync::Arc;

/// .NET's SslProtocols flags.
pub mod ssl_protocols {
    pub(crate) const NONE: i32 = 0;
    pub(crate) const SSL2: i32 = 12;
    pub(crate) const SSL3: i32 = 48;
    pub(crate) const TLS: i32 = 192;
    pub(crate) const TLS11: i32 = 768;
    pub(crate) const TLS12: i32 = 3072;
    pub(crate) const TLS13: i32 = 12288;
    pub(crate) const ALL: i32 = SSL2 | SSL3 | TLS | TLS11 | TLS12 | TLS13;
}

/// .NET's SslPolicyErrors flags.
pub mod ssl_policy_errors {
    pub(crate) const NONE: i32 = 0;
    pub(crate) const REMOTE_CERTIFICATE_NOT_AVAILABLE: i32 = 1;
    pub(crate) const REMOTE_CERTIFICATE_NAME_MISMATCH: i32 = 2;
    pub(crate) const REMOTE_CERTIFICATE_CHAIN_ERRORS: i32 = 4;

    /// The flags as .NET's `Enum.ToString()` writes them ("RemoteCertificateNameMismatch, ...").
    pub fn describe(errors: i32) -> String {
        let names = [
            (REMOTE_CERTIFICATE_NOT_AVAILABLE, "RemoteCertificateNotAvailable"),
            (REMOTE_CERTIFICATE_NAME_MISMATCH, "RemoteCertificateNameMismatch"),
            (REMOTE_CERTIFICATE_CHAIN_ERRORS, "RemoteCertificateChainErrors"),
        ];
        let parts: Vec<&str> = names.iter().filter(|(f, _)| errors & f != 0).map(|(_, n)| *n).collect();
        if parts.is_empty() {
            "None".to_string()
        } else {
            parts.join(", ")
        }
    }
}

/// .NET's ChannelBindingKind values (the SEC_ATTR_*_BINDINGS numbers).
pub use crate::channel_binding::kind as channel_binding_kind;

/// The .NET message texts of SslStream (those of AuthenticatedStream, which NegotiateStream
/// shares, are in `crate::layered::msg`).
pub mod msg {
    pub(crate) use crate::layered::msg::{AUTH_EOF, AUTH_FAILED, DECRYPT, ENCRYPT, IO_EOF, READ_FAILED, WRITE_FAILED};
    /// net_ssl_io_frame: .NET Framework's IOException for input that is not TLS records.
    pub(crate) const UNEXPECTED_PACKET: &str = "The handshake failed due to an unexpected packet format.";
    pub(crate) const SERVER_CERT_KEY: &str =
        "The server mode SSL must use a certificate with the associated private key.";
    pub(crate) const REJECTED_BY_CALLBACK: &str =
        "The remote certificate was rejected by the provided RemoteCertificateValidationCallback.";
    pub(crate) const PROTOCOL_NOT_SUPPORTED: &str = "The requested security protocol is not supported.";
}

/// RemoteCertificateValidationCallback: what the user's callback sees.
pub struct ValidationArgs<'a> {
    pub certificate: Option<&'a Arc<Certificate>>,
    /// The chain from the peer's certificate towards the root, as OpenSSL built or received it.
    pub chain: &'a [Arc<Certificate>],
    pub errors: i32,
}

/// LocalCertificateSelectionCallback: what the user's callback sees.
pub struct SelectionArgs<'a> {
    pub target_host: &'a str,
    pub local: &'a [Arc<Certificate>],
    pub remote: Option<&'a Arc<Certificate>>,
    pub acceptable_issuers: &'a [String],
}

/// Returns whether the remote certificate is accepted.
pub type ValidationCallback = Arc<dyn Fn(&ValidationArgs) -> bool + Send + Sync>;
/// Returns the certificate to present, or None.
pub type SelectionCallback = Arc<dyn Fn(&SelectionArgs) -> Option<Arc<Certificate>> + Send + Sync>;

/// OpenSSL's reason for the errors on this thread's OpenSSL error queue (emptied), or `fallback`.
pub(crate) fn openssl_reason(stack: &openssl::error::ErrorStack, fallback: &str) -> String {
    let parts: Vec<String> = stack.errors().iter().map(|e| e.to_string()).collect();
    if parts.is_empty() {
        fallback.to_string()
    } else {
        parts.join("; ")
    }
}
