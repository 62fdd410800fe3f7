//! TransportContext and its channel bindings (RFC 5929) in .NET's layout: a 32-byte
//! SEC_CHANNEL_BINDINGS header, then the application data "tls-unique:" / "tls-server-end-point:"
//! followed by the token.

use super::channel_binding_kind;
use crate::error::{Error, Result};
use openssl::hash::{hash, MessageDigest};
use openssl::nid::Nid;
use openssl::x509::X509Ref;

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
            channel_binding_kind::UNIQUE => Ok(self.unique.clone()),
            channel_binding_kind::ENDPOINT => self.endpoint.clone().transpose(),
            _ => Ok(None),
        }
    }

    /// The binding of `kind` as .NET's ChannelBinding holds it (header + prefix + token).
    pub fn binding(&self, kind: i32) -> Result<Option<Vec<u8>>> {
        let prefix = if kind == channel_binding_kind::UNIQUE { UNIQUE_PREFIX } else { ENDPOINT_PREFIX };
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

/// RFC 5929 section 4.1: the certificate's own signature hash, MD5 and SHA-1 upgraded to SHA-256.
pub fn endpoint_token(cert: &X509Ref) -> Result<Vec<u8>> {
    let sig = cert.signature_algorithm().object().nid();
    let digest = sig.signature_algorithms().map(|a| a.digest);
    let md = match digest {
        Some(Nid::MD5) | Some(Nid::SHA1) | Some(Nid::SHA256) => MessageDigest::sha256(),
        Some(Nid::SHA384) => MessageDigest::sha384(),
        Some(Nid::SHA512) => MessageDigest::sha512(),
        _ => {
            return Err(Error::argument(format!(
                "The certificate's signature algorithm ({}) names no single hash: tls-server-end-point is not defined for it.",
                cert.signature_algorithm().object()
            )))
        }
    };
    let der = cert.to_der().map_err(|e| Error::internal(e.to_string()))?;
    Ok(hash(md, &der).map_err(|e| Error::internal(e.to_string()))?.to_vec())
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
