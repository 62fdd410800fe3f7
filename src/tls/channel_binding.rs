//! The tls-server-end-point token of a certificate (RFC 5929); the TransportContext that carries
//! it is the crate's `channel_binding`.

use crate::error::{Error, Result};
use openssl::hash::{hash, MessageDigest};
use openssl::nid::Nid;
use openssl::x509::X509Ref;

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
