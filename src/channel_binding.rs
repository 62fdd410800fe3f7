//! TransportContext and its channel bindings (RFC 5929) in .NET's layout: a 32-byte
//! SEC_CHANNEL_BINDINGS header, then the application data "tls-unique:" / "tls-server-end-point:"
//! followed by the token.
//!
//! A leaf: any stream layer hands a TransportContext on (`Stream::transport_context`) and the
//! authentication layers bind to it; only the TLS layer computes the tokens (`tls::channel_binding`).

use crate::error::Result;

/// .NET's ChannelBindingKind values.
pub mod kind {
    pub(crate) const UNIQUE: i32 = 0x19;
    pub(crate) const ENDPOINT: i32 = 0x1a;
}

pub const UNIQUE_PREFIX: &str = "tls-unique:";
pub const ENDPOINT_PREFIX: &str = "tls-server-end-point:";
/// sizeof(SEC_CHANNEL_BINDINGS).
pub const HEADER_LEN: usize = 32;

/// The channel bindings of one authenticated SslStream (a snapshot: they never change).
pub struct TransportContext {
    /// tls-server-end-point token: the hash of the server certificate; Err when its signature
    /// algorithm names no single hash. None before authentication.
    pub endpoint: Option<Result<Vec<u8>>>,
    /// tls-unique token: the first Finished message. None before authentication.
    pub unique: Option<Vec<u8>>,
}

impl TransportContext {
    pub const EMPTY: TransportContext = TransportContext { endpoint: None, unique: None };

    /// The raw token of `kind`; Ok(None) is .NET's null (no binding of that kind).
    pub fn token(&self, kind: i32) -> Result<Option<Vec<u8>>> {
        match kind {
            kind::UNIQUE => Ok(self.unique.clone()),
            kind::ENDPOINT => self.endpoint.clone().transpose(),
            _ => Ok(None),
        }
    }

    /// The binding of `kind` as .NET's ChannelBinding holds it (header + prefix + token).
    pub fn binding(&self, kind: i32) -> Result<Option<Vec<u8>>> {
        let prefix = if kind == kind::UNIQUE { UNIQUE_PREFIX } else { ENDPOINT_PREFIX };
        Ok(self.token(kind)?.map(|token| wrap(prefix, &token)))
    }
}

/// SEC_CHANNEL_BINDINGS (eight 32-bit fields; only the application data is used) + data.
pub fn wrap(prefix: &str, token: &[u8]) -> Vec<u8> {
    let app_len = (prefix.len() + token.len()) as u32;
    let fields: [u32; 8] = [0, 0, 0, 0, 0, 0, app_len, HEADER_LEN as u32];
    let mut out = Vec::with_capacity(HEADER_LEN + app_len as usize);
    for f in fields {
        out.extend_from_slice(&f.to_ne_bytes());
    }
    out.extend_from_slice(prefix.as_bytes());
    out.extend_from_slice(token);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_sec_channel_bindings_then_prefix_and_token() {
        let b = wrap(UNIQUE_PREFIX, &[0xAA, 0xBB]);
        assert_eq!(b.len(), 32 + 11 + 2);
        assert_eq!(u32::from_ne_bytes(b[24..28].try_into().unwrap()), 13);
        assert_eq!(u32::from_ne_bytes(b[28..32].try_into().unwrap()), 32);
        assert!(b[..24].iter().all(|&x| x == 0));
        assert_eq!(&b[32..43], b"tls-unique:");
        assert_eq!(&b[43..], &[0xAA, 0xBB]);
    }
}
