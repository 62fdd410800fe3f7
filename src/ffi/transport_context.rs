//! TransportContext, as C sees it: the channel bindings of an authenticated session, handed out
//! by an SslStream (`apm_ssl_stream_get_transport_context`) or an HTTP request's connection, and
//! taken by NegotiateStream and NegotiateAuthentication.

use super::handles::TransportContextClass;
use super::*;

/// The TransportContext of an SslStream: its channel bindings. Opaque; released by
/// `apm_transport_context_close`.
pub struct apm_transport_context {
    _private: [u8; 0],
}

/// TransportContext.GetChannelBinding(kind) as the bytes of .NET's ChannelBinding: the 32-byte
/// SEC_CHANNEL_BINDINGS header (only cbApplicationDataLength and dwApplicationDataOffset = 32 set,
/// native byte order), then "tls-unique:" or "tls-server-end-point:" and the token. `kind`:
/// APM_CHANNEL_BINDING_KIND_UNIQUE (the first Finished message of the handshake) or _ENDPOINT (the
/// hash of the server certificate, RFC 5929: MD5 and SHA-1 become SHA-256; both sides use the
/// server's certificate). Copies up to `buffer_len` bytes into the caller's buffer and writes the
/// full size to `binding_len` (optional); 0 means there is no binding of that kind (null in .NET:
/// not authenticated, or an unknown kind).
/// Errors: APM_E_ARGUMENT_NULL (context; buffer NULL with a nonzero buffer_len), APM_E_ARGUMENT
/// (not a TransportContext handle; a server certificate whose signature algorithm names no single
/// hash, for _ENDPOINT), APM_E_OBJECT_DISPOSED.
#[no_mangle]
pub unsafe extern "C" fn apm_transport_context_get_channel_binding(
    context: *mut apm_transport_context,
    kind: i32,
    buffer: *mut u8,
    buffer_len: usize,
    binding_len: *mut usize,
) -> apm_status {
    boundary!({
        let b = lookup::<TransportContextClass>(context)?.binding(kind)?.unwrap_or_default();
        copy_bytes(&b, buffer, buffer_len, binding_len)
    })
}

/// The raw token of a channel binding (no header, no prefix): the Finished message for
/// APM_CHANNEL_BINDING_KIND_UNIQUE, the certificate hash for _ENDPOINT. Otherwise as
/// `apm_transport_context_get_channel_binding`.
/// Errors: as apm_transport_context_get_channel_binding.
#[no_mangle]
pub unsafe extern "C" fn apm_transport_context_get_channel_binding_token(
    context: *mut apm_transport_context,
    kind: i32,
    buffer: *mut u8,
    buffer_len: usize,
    token_len: *mut usize,
) -> apm_status {
    boundary!({
        let t = lookup::<TransportContextClass>(context)?.token(kind)?.unwrap_or_default();
        copy_bytes(&t, buffer, buffer_len, token_len)
    })
}

/// Releases a TransportContext handle; closing a closed one is a no-op.
/// Errors: APM_E_ARGUMENT_NULL (context), APM_E_ARGUMENT (not a TransportContext handle).
#[no_mangle]
pub unsafe extern "C" fn apm_transport_context_close(context: *mut apm_transport_context) -> apm_status {
    boundary!({ close::<TransportContextClass>(context) })
}
