//! X509Certificate2: a certificate, its private key when there is one, and the chain it was
//! loaded with. Loaded from PEM (buffers or files), DER or PKCS#12, read through OpenSSL.

use super::openssl_reason;
use crate::error::{code, Error, Result};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkcs12::Pkcs12;
use openssl::pkey::{PKey, Private};
use openssl::x509::{X509NameRef, X509};
use std::io::Read;

pub struct Certificate {
    pub x509: X509,
    pub key: Option<PKey<Private>>,
    /// Further certificates loaded with it (intermediates), sent along as the chain.
    pub chain: Vec<X509>,
}

fn invalid_data(what: &str, e: &openssl::error::ErrorStack) -> Error {
    Error::argument(format!("The {what} data is not valid."))
        .with_inner(openssl_reason(e, "unknown OpenSSL error"))
}

/// A certificate that loaded but one of whose fields cannot be read or encoded: .NET throws a
/// CryptographicException ("ASN1 corrupted data." and the like), and so APM_E_CRYPTOGRAPHIC.
fn unreadable(what: &str, e: &openssl::error::ErrorStack) -> Error {
    Error::new(code::CRYPTOGRAPHIC, format!("The certificate data is not valid: {what}."))
        .with_inner(openssl_reason(e, "unknown OpenSSL error"))
}

fn read_file(path: &str) -> Result<Vec<u8>> {
    let mut file = crate::net::send_file::open(path)?;
    let mut data = Vec::new();
    file.read_to_end(&mut data).map_err(|e| Error::new(code::IO, e.to_string()))?;
    Ok(data)
}

/// Trusted CAs read from a file: the certificates (the first and its chain), and a number that
/// names this version of the file in this process, never given to another (HttpWebRequest
/// keeps connections apart by it without hashing certificates per request).
#[derive(Clone)]
pub struct TrustedCas {
    pub certs: Vec<X509>,
    pub id: u64,
}

/// The trusted CAs of a PEM file, parsed once per version of the file: an HttpWebRequest is
/// made per request and names its CA file each time, and parsing it each time cost about 200 us
/// of CPU per request (open, read, PEM and X509 decoding), eight times a keep-alive GET. A
/// changed file (another inode, size or mtime) is read again; the stat that tells costs one
/// syscall.
pub fn trusted_cas_from_file(path: &str) -> Result<TrustedCas> {
    use std::collections::HashMap;
    use std::os::unix::fs::MetadataExt;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{LazyLock, Mutex};
    /// A few files at most in any program; past this many the cache starts again.
    const MAX_FILES: usize = 32;
    /// (device, inode, size, mtime seconds, mtime nanoseconds)
    type Version = (u64, u64, u64, i64, i64);
    type Cache = HashMap<String, (Version, TrustedCas)>;
    static CACHE: LazyLock<Mutex<Cache>> = LazyLock::new(Mutex::default);
    static NEXT_ID: AtomicU64 = AtomicU64::new(1);
    let version = std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino(), m.size(), m.mtime(), m.mtime_nsec()));
    if let Some(v) = version {
        let cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((seen, cas)) = cache.get(path) {
            if *seen == v {
                return Ok(cas.clone());
            }
        }
    }
    let cert = Certificate::from_pem_files(path, None)?;
    let mut certs = vec![cert.x509];
    certs.extend(cert.chain);
    let cas = TrustedCas { certs, id: NEXT_ID.fetch_add(1, Ordering::Relaxed) };
    if let Some(v) = version {
        let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= MAX_FILES {
            cache.clear();
        }
        cache.insert(path.to_string(), (v, cas.clone()));
    }
    Ok(cas)
}

impl Certificate {
    /// A certificate from the peer or a chain: no key.
    pub fn public(x509: X509) -> Certificate {
        Certificate { x509, key: None, chain: Vec::new() }
    }

    /// PEM certificates (the first is the certificate, the rest its chain) and an optional PEM
    /// private key; without `key_pem`, a key in `cert_pem` itself is used when there is one.
    pub fn from_pem(cert_pem: &[u8], key_pem: Option<&[u8]>) -> Result<Certificate> {
        let mut certs = X509::stack_from_pem(cert_pem).map_err(|e| invalid_data("certificate", &e))?;
        if certs.is_empty() {
            return Err(Error::argument("The certificate data is not valid: no certificate was found."));
        }
        let x509 = certs.remove(0);
        let key = match key_pem {
            Some(k) => Some(PKey::private_key_from_pem(k).map_err(|e| invalid_data("private key", &e))?),
            None if contains_private_key(cert_pem) => {
                Some(PKey::private_key_from_pem(cert_pem).map_err(|e| invalid_data("private key", &e))?)
            }
            None => None,
        };
        let cert = Certificate { x509, key, chain: certs };
        cert.check_key()?;
        Ok(cert)
    }

    pub fn from_pem_files(cert_path: &str, key_path: Option<&str>) -> Result<Certificate> {
        let cert = read_file(cert_path)?;
        let key = key_path.map(read_file).transpose()?;
        Certificate::from_pem(&cert, key.as_deref())
    }

    pub fn from_der(der: &[u8]) -> Result<Certificate> {
        Ok(Certificate::public(X509::from_der(der).map_err(|e| invalid_data("certificate", &e))?))
    }

    /// A PKCS#12 (.pfx) file; a wrong password is InvalidCredential.
    pub fn from_pkcs12(data: &[u8], password: &str) -> Result<Certificate> {
        let p12 = Pkcs12::from_der(data).map_err(|e| invalid_data("PKCS#12", &e))?;
        let wrong = "The certificate data cannot be read with the provided password, the password may be incorrect.";
        let parsed = p12
            .parse2(password)
            .map_err(|e| Error::new(code::INVALID_CREDENTIAL, wrong).with_inner(openssl_reason(&e, "mac verify failure")))?;
        let x509 = parsed.cert.ok_or_else(|| Error::argument("The PKCS#12 data holds no certificate."))?;
        let chain = parsed.ca.map(|s| s.into_iter().collect()).unwrap_or_default();
        let cert = Certificate { x509, key: parsed.pkey, chain };
        cert.check_key()?;
        Ok(cert)
    }

    pub fn from_pkcs12_file(path: &str, password: &str) -> Result<Certificate> {
        Certificate::from_pkcs12(&read_file(path)?, password)
    }

    fn check_key(&self) -> Result<()> {
        if let Some(key) = &self.key {
            let matches = self.x509.public_key().map(|p| p.public_eq(key)).unwrap_or(false);
            if !matches {
                return Err(Error::argument("The certificate and the private key do not match."));
            }
        }
        Ok(())
    }

    pub fn has_private_key(&self) -> bool {
        self.key.is_some()
    }

    /// Subject as .NET's X500DistinguishedName.Name writes it: "CN=host, O=org, C=US".
    pub fn subject(&self) -> String {
        format_name(self.x509.subject_name())
    }

    pub fn issuer(&self) -> String {
        format_name(self.x509.issuer_name())
    }

    /// SHA-1 of the DER, upper-case hex (X509Certificate2.Thumbprint).
    pub fn thumbprint(&self) -> Result<String> {
        let digest = self.x509.digest(MessageDigest::sha1()).map_err(|e| unreadable("it cannot be encoded", &e))?;
        Ok(hex_upper(&digest))
    }

    pub fn der(&self) -> Result<Vec<u8>> {
        self.x509.to_der().map_err(|e| unreadable("it cannot be encoded", &e))
    }

    /// NotBefore and NotAfter as Unix times (seconds); a date that is not a valid ASN.1 time
    /// (a peer's certificate, or DER that loads with a corrupt date) is bad certificate data.
    pub fn validity(&self) -> Result<(i64, i64)> {
        let epoch = openssl::asn1::Asn1Time::from_unix(0).map_err(|e| Error::internal(e.to_string()))?;
        let secs = |t: &openssl::asn1::Asn1TimeRef, field: &str| -> Result<i64> {
            let d = epoch.diff(t).map_err(|e| unreadable(&format!("its {field} date cannot be read"), &e))?;
            Ok(d.days as i64 * 86_400 + d.secs as i64)
        };
        Ok((secs(self.x509.not_before(), "NotBefore")?, secs(self.x509.not_after(), "NotAfter")?))
    }
}

fn contains_private_key(pem: &[u8]) -> bool {
    let text = String::from_utf8_lossy(pem);
    text.contains("PRIVATE KEY-----")
}

pub(crate) fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// A distinguished name, most specific part first, in .NET's short names.
pub fn format_name(name: &X509NameRef) -> String {
    let mut parts: Vec<String> = name
        .entries()
        .map(|e| {
            let nid = e.object().nid();
            let key = match nid {
                Nid::COMMONNAME => "CN".to_string(),
                Nid::ORGANIZATIONNAME => "O".to_string(),
                Nid::ORGANIZATIONALUNITNAME => "OU".to_string(),
                Nid::COUNTRYNAME => "C".to_string(),
                Nid::LOCALITYNAME => "L".to_string(),
                Nid::STATEORPROVINCENAME => "S".to_string(),
                Nid::PKCS9_EMAILADDRESS => "E".to_string(),
                Nid::DOMAINCOMPONENT => "DC".to_string(),
                Nid::STREETADDRESS => "STREET".to_string(),
                Nid::SERIALNUMBER => "SERIALNUMBER".to_string(),
                Nid::GIVENNAME => "G".to_string(),
                Nid::SURNAME => "SN".to_string(),
                Nid::TITLE => "T".to_string(),
                _ => format!("OID.{}", e.object()),
            };
            let value = e.data().to_string().unwrap_or_default();
            let quoted = if value.contains([',', '+', '=', '"', '\n', '<', '>', '#', ';']) {
                format!("\"{}\"", value.replace('"', "\"\""))
            } else {
                value
            };
            format!("{key}={quoted}")
        })
        .collect();
    parts.reverse();
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::asn1::Asn1Time;
    use openssl::rsa::Rsa;
    use openssl::x509::X509NameBuilder;

    fn self_signed(cn: &str) -> X509 {
        let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_nid(Nid::COMMONNAME, cn).unwrap();
        let name = name.build();
        let mut b = X509::builder().unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(&name).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap()).unwrap();
        b.set_not_after(&Asn1Time::days_from_now(1).unwrap()).unwrap();
        b.sign(&key, MessageDigest::sha256()).unwrap();
        b.build()
    }

    fn cn(x: &X509) -> String {
        String::from_utf8(x.subject_name().entries_by_nid(Nid::COMMONNAME).next().unwrap().data().as_slice().to_vec()).unwrap()
    }

    #[test]
    fn a_trusted_ca_file_is_parsed_once_per_version_of_the_file() {
        let dir = std::env::temp_dir().join(format!("apmnet-ca-cache-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ca.pem");
        let p = path.to_str().unwrap();
        std::fs::write(&path, self_signed("first").to_pem().unwrap()).unwrap();
        let first = trusted_cas_from_file(p).unwrap();
        assert_eq!(cn(&first.certs[0]), "first");
        let again = trusted_cas_from_file(p).unwrap();
        assert_eq!((cn(&again.certs[0]).as_str(), again.id), ("first", first.id));
        // Another certificate in its place (a longer name: another size, whatever the clock).
        std::fs::write(&path, self_signed("the second one").to_pem().unwrap()).unwrap();
        let second = trusted_cas_from_file(p).unwrap();
        assert_eq!(cn(&second.certs[0]), "the second one");
        assert_ne!(second.id, first.id);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(trusted_cas_from_file(p).err().map(|e| e.status), Some(code::FILE_NOT_FOUND));
        let _ = std::fs::remove_dir(&dir);
    }
}
