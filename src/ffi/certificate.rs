//! X509Certificate2, as C sees it: load from PEM, DER or PKCS#12, read its properties, close.
//! The buffer getters follow apm_last_error_message: text is copied NUL-terminated and truncated
//! to the buffer, binary data is copied up to the buffer's size, and the optional length
//! out-parameter receives the full length (without the NUL), so a caller can size a second call.

use super::*;
use super::handles::CertificateClass;
use crate::tls::Certificate;

/// An X.509 certificate, with its private key when it was loaded with one
/// (X509Certificate2). Opaque; released by `apm_certificate_close`.
pub struct apm_certificate {
    _private: [u8; 0],
}

/// An optional certificate argument: NULL means none.
pub(crate) fn optional_certificate(p: *const apm_certificate) -> Result<Option<Arc<Certificate>>> {
    if p.is_null() {
        Ok(None)
    } else {
        lookup::<CertificateClass>(p).map(Some)
    }
}

/// A new handle for `cert` (the caller of the C function owns it).
pub(crate) fn certificate_handle(cert: Arc<Certificate>) -> Result<*mut apm_certificate> {
    register(Kind::Certificate, Object::Certificate(cert), std::ptr::null())
}

fn hand_out(cert: Certificate, out: *mut *mut apm_certificate) -> Result<()> {
    let p = certificate_handle(Arc::new(cert))?;
    write_out(out, "certificate", p)
}

fn bytes_arg<'a>(p: *const u8, len: usize, name: &str) -> Result<&'a [u8]> {
    if p.is_null() {
        return Err(Error::argument_null(name));
    }
    // SAFETY: the caller passes `len` readable bytes.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// Loads a certificate from a PEM file (`new X509Certificate2(path)` /
/// `X509Certificate2.CreateFromPemFile`): the first certificate is the certificate, any further
/// ones its chain (sent along by a server or client). The private key comes from `key_path` (PEM,
/// PKCS#8 or traditional, unencrypted), or, when `key_path` is NULL, from `cert_path` itself if it
/// holds one. The files are read during the call. The caller owns `*certificate`
/// (`apm_certificate_close`); a certificate is immutable and may be used from any thread.
/// Errors: APM_E_ARGUMENT_NULL (cert_path, certificate), APM_E_FILE_NOT_FOUND,
/// APM_E_DIRECTORY_NOT_FOUND, APM_E_UNAUTHORIZED_ACCESS, APM_E_IO (another read failure),
/// APM_E_ARGUMENT (a path not UTF-8; not PEM, no certificate, a key that does not match; OpenSSL's
/// reason is the inner message), APM_E_OUT_OF_MEMORY (no handle left).
#[no_mangle]
pub unsafe extern "C" fn apm_certificate_load_pem_file(
    cert_path: *const c_char,
    key_path: *const c_char,
    certificate: *mut *mut apm_certificate,
) -> apm_status {
    boundary!({
        need_out(certificate, "certificate")?;
        let cert_path = str_arg(cert_path, "cert_path")?;
        let key_path = if key_path.is_null() { None } else { Some(str_arg(key_path, "key_path")?) };
        hand_out(Certificate::from_pem_files(cert_path, key_path)?, certificate)
    })
}

/// Loads a certificate from PEM text in memory, as `apm_certificate_load_pem_file`; `key_pem` may
/// be NULL (then a key inside `cert_pem` is used when there is one). The buffers are read during
/// the call only. The caller owns `*certificate` (`apm_certificate_close`).
/// Errors: APM_E_ARGUMENT_NULL (cert_pem, certificate), APM_E_ARGUMENT (not PEM, no certificate, a
/// key that does not match), APM_E_OUT_OF_MEMORY (no handle left).
#[no_mangle]
pub unsafe extern "C" fn apm_certificate_load_pem(
    cert_pem: *const u8,
    cert_len: usize,
    key_pem: *const u8,
    key_len: usize,
    certificate: *mut *mut apm_certificate,
) -> apm_status {
    boundary!({
        need_out(certificate, "certificate")?;
        let cert = bytes_arg(cert_pem, cert_len, "cert_pem")?;
        let key = if key_pem.is_null() { None } else { Some(bytes_arg(key_pem, key_len, "key_pem")?) };
        hand_out(Certificate::from_pem(cert, key)?, certificate)
    })
}

/// Loads a certificate (no key) from its DER encoding (`new X509Certificate2(byte[])`); the buffer
/// is read during the call only. The caller owns `*certificate` (`apm_certificate_close`).
/// Errors: APM_E_ARGUMENT_NULL (der, certificate), APM_E_ARGUMENT (not a DER certificate),
/// APM_E_OUT_OF_MEMORY (no handle left).
#[no_mangle]
pub unsafe extern "C" fn apm_certificate_load_der(
    der: *const u8,
    der_len: usize,
    certificate: *mut *mut apm_certificate,
) -> apm_status {
    boundary!({
        need_out(certificate, "certificate")?;
        hand_out(Certificate::from_der(bytes_arg(der, der_len, "der")?)?, certificate)
    })
}

/// Loads a certificate, its private key and its chain from a PKCS#12 (.pfx) file (`new
/// X509Certificate2(path, password)`); `password` NULL means the empty password. The caller owns
/// `*certificate` (`apm_certificate_close`).
/// Errors: APM_E_ARGUMENT_NULL (path, certificate), APM_E_FILE_NOT_FOUND,
/// APM_E_DIRECTORY_NOT_FOUND, APM_E_UNAUTHORIZED_ACCESS, APM_E_IO (another read failure),
/// APM_E_ARGUMENT (path or password not UTF-8; not PKCS#12, no certificate, a key that does not
/// match), APM_E_INVALID_CREDENTIAL (wrong password: "The certificate data cannot be read with the
/// provided password, the password may be incorrect."), APM_E_OUT_OF_MEMORY (no handle left).
#[no_mangle]
pub unsafe extern "C" fn apm_certificate_load_pkcs12_file(
    path: *const c_char,
    password: *const c_char,
    certificate: *mut *mut apm_certificate,
) -> apm_status {
    boundary!({
        need_out(certificate, "certificate")?;
        let path = str_arg(path, "path")?;
        let password = if password.is_null() { "" } else { str_arg(password, "password")? };
        hand_out(Certificate::from_pkcs12_file(path, password)?, certificate)
    })
}

/// Releases a certificate handle. Streams that use the certificate keep their own reference, so it
/// may be closed as soon as it was handed to them. Closing a closed handle is a no-op.
/// Errors: APM_E_ARGUMENT_NULL (certificate), APM_E_ARGUMENT (not a certificate handle).
#[no_mangle]
pub unsafe extern "C" fn apm_certificate_close(certificate: *mut apm_certificate) -> apm_status {
    boundary!({ close::<CertificateClass>(certificate) })
}

/// Subject: the distinguished name as .NET writes it, most specific part first ("CN=localhost,
/// O=apmnet, C=US"). Copied into the caller's buffer as `apm_last_error_message` copies.
/// Errors: APM_E_ARGUMENT_NULL (certificate; buffer NULL with a nonzero buffer_len), APM_E_ARGUMENT
/// (not a certificate handle), APM_E_OBJECT_DISPOSED.
#[no_mangle]
pub unsafe extern "C" fn apm_certificate_get_subject(
    certificate: *mut apm_certificate,
    buffer: *mut c_char,
    buffer_len: usize,
    subject_len: *mut usize,
) -> apm_status {
    boundary!({ copy_text(&lookup::<CertificateClass>(certificate)?.subject(), buffer, buffer_len, subject_len) })
}

/// Issuer, formatted and copied as the subject.
/// Errors: as apm_certificate_get_subject.
#[no_mangle]
pub unsafe extern "C" fn apm_certificate_get_issuer(
    certificate: *mut apm_certificate,
    buffer: *mut c_char,
    buffer_len: usize,
    issuer_len: *mut usize,
) -> apm_status {
    boundary!({ copy_text(&lookup::<CertificateClass>(certificate)?.issuer(), buffer, buffer_len, issuer_len) })
}

/// Thumbprint: the SHA-1 of the DER encoding as 40 upper-case hex digits, copied as the subject.
/// Errors: as apm_certificate_get_subject; APM_E_CRYPTOGRAPHIC for certificate data that cannot be
/// encoded ("The certificate data is not valid: it cannot be encoded."; .NET's
/// CryptographicException; OpenSSL's reason is the inner message).
#[no_mangle]
pub unsafe extern "C" fn apm_certificate_get_thumbprint(
    certificate: *mut apm_certificate,
    buffer: *mut c_char,
    buffer_len: usize,
    thumbprint_len: *mut usize,
) -> apm_status {
    boundary!({ copy_text(&lookup::<CertificateClass>(certificate)?.thumbprint()?, buffer, buffer_len, thumbprint_len) })
}

/// RawData: the DER encoding. Copies up to `buffer_len` bytes and writes the full length to
/// `data_len` (optional; call with a NULL buffer and 0 to learn the size).
/// Errors: as apm_certificate_get_thumbprint.
#[no_mangle]
pub unsafe extern "C" fn apm_certificate_get_raw_data(
    certificate: *mut apm_certificate,
    buffer: *mut u8,
    buffer_len: usize,
    data_len: *mut usize,
) -> apm_status {
    boundary!({ copy_bytes(&lookup::<CertificateClass>(certificate)?.der()?, buffer, buffer_len, data_len) })
}

/// HasPrivateKey: 1 when the certificate was loaded with its private key.
/// Errors: APM_E_ARGUMENT_NULL (certificate, has_private_key), APM_E_ARGUMENT (not a certificate
/// handle), APM_E_OBJECT_DISPOSED.
#[no_mangle]
pub unsafe extern "C" fn apm_certificate_has_private_key(
    certificate: *mut apm_certificate,
    has_private_key: *mut i32,
) -> apm_status {
    boundary!({
        get::<CertificateClass, _>(certificate, has_private_key, "has_private_key", |c| Ok(c.has_private_key() as i32))
    })
}

/// NotBefore and NotAfter as Unix times (seconds since 1970-01-01 UTC).
/// Errors: APM_E_ARGUMENT_NULL (certificate, not_before, not_after), APM_E_ARGUMENT (not a
/// certificate handle), APM_E_CRYPTOGRAPHIC (a date in the certificate data that is not a valid
/// time, as a peer may send: "The certificate data is not valid: its NotBefore date cannot be
/// read.", or NotAfter; .NET's CryptographicException; OpenSSL's reason is the inner message),
/// APM_E_OBJECT_DISPOSED.
#[no_mangle]
pub unsafe extern "C" fn apm_certificate_get_validity(
    certificate: *mut apm_certificate,
    not_before: *mut i64,
    not_after: *mut i64,
) -> apm_status {
    boundary!({
        let c = lookup::<CertificateClass>(certificate)?;
        need_out(not_before, "not_before")?;
        need_out(not_after, "not_after")?;
        let (b, a) = c.validity()?;
        write_out(not_before, "not_before", b)?;
        write_out(not_after, "not_after", a)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::code;

    /// A small self-signed certificate (ECDSA P-256 with SHA-256, "CN=a, O=b", no extensions).
    const DER_HEX: &str = concat!(
        "308201293081d10214677bb88ee9db0c14624111f207b14e4540276d7a300a06082a8648ce3d0403023018310a300806",
        "035504030c0161310a3008060355040a0c0162301e170d3236313230313039323634385a170d33363131323830393236",
        "34385a3018310a300806035504030c0161310a3008060355040a0c01623059301306072a8648ce3d020106082a8648ce",
        "3d0301070342000496a3c830e7f361375ad966908036ab3d4d68219ba4810824bb5179558b204531dc30f9b4ff6f28d7",
        "770f3d3e5d6c8721b820855e4c7666db88e66bfb5aca16a8300a06082a8648ce3d040302034700304402200a42e5e7a8",
        "5e9be9943b51460b242285f5b25bbfe9b20d66e864262ff5fc1bbe022059bdeeb83e243da797682294cbf8e6287cd2c2",
        "1526f3ef635ad1fe95c191f359",
    );

    fn der() -> Vec<u8> {
        (0..DER_HEX.len()).step_by(2).map(|i| u8::from_str_radix(&DER_HEX[i..i + 2], 16).unwrap()).collect()
    }

    /// Every getter on `cert`: (name, status). None of them may report a bug.
    fn all_getters(cert: *mut apm_certificate) -> Vec<(&'static str, apm_status)> {
        let mut text = [0 as c_char; 256];
        let mut bytes = [0u8; 512];
        let (mut len, mut flag, mut before, mut after) = (0usize, 0i32, 0i64, 0i64);
        // SAFETY: valid buffers and out-parameters for the duration of each call.
        unsafe {
            let mut out = vec![
                ("get_subject", apm_certificate_get_subject(cert, text.as_mut_ptr(), text.len(), &mut len)),
                ("get_issuer", apm_certificate_get_issuer(cert, text.as_mut_ptr(), text.len(), &mut len)),
                ("get_thumbprint", apm_certificate_get_thumbprint(cert, text.as_mut_ptr(), text.len(), &mut len)),
                ("get_raw_data", apm_certificate_get_raw_data(cert, bytes.as_mut_ptr(), bytes.len(), &mut len)),
                ("has_private_key", apm_certificate_has_private_key(cert, &mut flag)),
                ("get_validity", apm_certificate_get_validity(cert, &mut before, &mut after)),
            ];
            // The tls-server-end-point token an SslStream computes from a peer's certificate.
            let c = lookup::<CertificateClass>(cert).unwrap();
            let endpoint = crate::tls::channel_binding::endpoint_token(&c.x509);
            out.push(("endpoint_token", endpoint.err().map_or(code::OK, |e| e.status)));
            out
        }
    }

    #[test]
    fn the_sample_certificate_reads_back() {
        let der = der();
        let mut cert = std::ptr::null_mut();
        // SAFETY: a valid buffer and out-parameter.
        assert_eq!(unsafe { apm_certificate_load_der(der.as_ptr(), der.len(), &mut cert) }, code::OK);
        for (name, st) in all_getters(cert) {
            assert_eq!(st, code::OK, "{name}");
        }
        let (mut before, mut after) = (0i64, 0i64);
        // SAFETY: as above.
        unsafe {
            assert_eq!(apm_certificate_get_validity(cert, &mut before, &mut after), code::OK);
            assert_eq!(apm_certificate_close(cert), code::OK);
        }
        assert_eq!((before, after), (1_796_117_208, 2_111_477_208));
    }

    /// Every single-bit corruption of a certificate: a load that fails says the data is not valid,
    /// and no getter of one that loads reports APM_E_INTERNAL (a bug, or a caught panic): a getter
    /// that cannot read its field says the certificate data is not valid (APM_E_CRYPTOGRAPHIC).
    #[test]
    fn bit_flipped_certificates_never_give_internal() {
        let der = der();
        let (mut loaded, mut refused, mut unreadable) = (0, 0, 0);
        let mut failures = Vec::new();
        for bit in 0..der.len() * 8 {
            let mut bad = der.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            let mut cert = std::ptr::null_mut();
            // SAFETY: a valid buffer and out-parameter.
            let st = unsafe { apm_certificate_load_der(bad.as_ptr(), bad.len(), &mut cert) };
            if st != code::OK {
                assert_eq!(st, code::ARGUMENT, "loading with bit {bit} flipped");
                refused += 1;
                continue;
            }
            loaded += 1;
            for (name, st) in all_getters(cert) {
                assert!(crate::error::code::name(st) != "APM_UNKNOWN", "{name}, bit {bit}: status {st}");
                if st == code::CRYPTOGRAPHIC && name != "endpoint_token" {
                    unreadable += 1;
                } else if (st != code::OK && name != "endpoint_token") || st == code::INTERNAL {
                    failures.push(format!("{name} with bit {bit} flipped: {}", code::name(st)));
                }
            }
            // SAFETY: a live certificate handle.
            assert_eq!(unsafe { apm_certificate_close(cert) }, code::OK);
        }
        assert!(
            loaded > 0 && refused > 0 && unreadable > 0,
            "loaded {loaded}, refused {refused}, unreadable {unreadable}"
        );
        assert!(
            failures.is_empty(),
            "{} getters failed other than with APM_E_ARGUMENT: {:?}",
            failures.len(),
            failures
        );
    }
}
