//! certificate: the certificate loaders of src/tls/certificate.rs on arbitrary bytes (DER, PEM
//! with and without a separate key, PKCS#12 with the empty password and "apmnet"), through the
//! Rust API and, for DER and PEM, the C entry points as well; then every getter on what loads
//! (subject, issuer, thumbprint, raw data, validity, has_private_key; on the certificate and each
//! certificate of its chain) and the tls-server-end-point token (src/tls/channel_binding.rs).
//!
//! A load fails with APM_E_ARGUMENT (PKCS#12: or APM_E_INVALID_CREDENTIAL), the C and Rust paths
//! agree, no getter reports APM_E_INTERNAL or an undefined status, what a getter returns is
//! consistent (the thumbprint is the SHA-1 of the raw data, the raw data loads again as the same
//! certificate), and the C getters copy as documented (truncated, NUL-terminated, full length).

use super::{expect_status, status_name};
use apmnet::error::Error;
use apmnet::ffi::certificate::*;
use apmnet::ffi::status::*;
use apmnet::channel_binding::{wrap, ENDPOINT_PREFIX, HEADER_LEN};
use apmnet::tls::channel_binding::endpoint_token;
use apmnet::tls::Certificate;
use std::ffi::c_char;

/// The passwords a PKCS#12 input is tried with (the seeds use both).
pub const PASSWORDS: [&str; 2] = ["", "apmnet"];

#[track_caller]
fn expect_error(what: &str, e: &Error, allowed: &[apm_status]) {
    if !allowed.contains(&e.status) {
        panic!("{what}: {} ({}) \"{}\" (inner {:?})", status_name(e.status), e.status, e.message, e.inner);
    }
}

/// Every getter of a loaded certificate (the Rust API).
fn check_getters(c: &Certificate, what: &str) {
    let _ = (c.subject(), c.issuer());
    let thumbprint = c.thumbprint();
    let der = c.der();
    match (&thumbprint, &der) {
        (Ok(t), Ok(d)) => {
            let hex: String = openssl::sha::sha1(d).iter().map(|b| format!("{b:02X}")).collect();
            assert_eq!(t, &hex, "{what}: the thumbprint is the SHA-1 of the raw data");
            let again = Certificate::from_der(d)
                .unwrap_or_else(|e| panic!("{what}: its raw data does not load: {}", e.message));
            assert_eq!(again.der().ok().as_ref(), Some(d), "{what}: its raw data loads as another certificate");
            assert_eq!(
                (again.subject(), again.issuer()),
                (c.subject(), c.issuer()),
                "{what}: names change on reloading"
            );
        }
        (Err(a), Err(b)) => {
            expect_error(&format!("{what}: thumbprint"), a, &[APM_E_CRYPTOGRAPHIC]);
            expect_error(&format!("{what}: raw data"), b, &[APM_E_CRYPTOGRAPHIC]);
        }
        _ => panic!("{what}: thumbprint {:?} but raw data {:?}", thumbprint.is_ok(), der.is_ok()),
    }
    if let Err(e) = c.validity() {
        expect_error(&format!("{what}: validity"), &e, &[APM_E_CRYPTOGRAPHIC]);
    }
    match endpoint_token(&c.x509) {
        Ok(token) => {
            assert!([32, 48, 64].contains(&token.len()), "{what}: a {}-byte tls-server-end-point token", token.len());
            let b = wrap(ENDPOINT_PREFIX, &token);
            assert_eq!(b.len(), HEADER_LEN + ENDPOINT_PREFIX.len() + token.len());
            assert_eq!(&b[HEADER_LEN + ENDPOINT_PREFIX.len()..], &token[..]);
        }
        Err(e) => expect_error(&format!("{what}: tls-server-end-point"), &e, &[APM_E_ARGUMENT]),
    }
    for (i, x) in c.chain.iter().enumerate() {
        check_getters(&Certificate::public(x.clone()), &format!("{what}, chain certificate {i}"));
    }
}

/// A text getter with a buffer of `cap` bytes (NULL for 0): status, what was copied, full length.
type TextGetter = unsafe extern "C" fn(*mut apm_certificate, *mut c_char, usize, *mut usize) -> apm_status;

fn check_text(h: *mut apm_certificate, name: &str, get: TextGetter, expected: Result<&str, apm_status>) {
    let full = expected.map(|t| t.len()).unwrap_or(0);
    for cap in [0, 1, full, full + 1] {
        let mut buf = vec![0x55 as c_char; cap];
        let mut len = usize::MAX;
        let p = if cap == 0 { std::ptr::null_mut() } else { buf.as_mut_ptr() };
        // SAFETY: `cap` writable bytes (or NULL with 0) and a valid out-parameter.
        let st = unsafe { get(h, p, cap, &mut len) };
        match expected {
            Err(e) => expect_status(name, st, &[e]),
            Ok(text) => {
                expect_status(name, st, &[APM_OK]);
                assert_eq!(len, text.len(), "{name}: full length");
                if cap > 0 {
                    let n = text.len().min(cap - 1);
                    let got: Vec<u8> = buf[..=n].iter().map(|&c| c as u8).collect();
                    assert_eq!(&got[..n], &text.as_bytes()[..n], "{name} with {cap} bytes");
                    assert_eq!(got[n], 0, "{name} with {cap} bytes: NUL-terminated");
                }
            }
        }
    }
}

/// The status a C call reports for what the Rust API returned.
fn status_of<T>(r: &Result<T, Error>) -> apm_status {
    r.as_ref().err().map_or(APM_OK, |e| e.status)
}

/// The C getters of `h` agree with the Rust API's on `c`; then close it (twice: a no-op).
fn check_handle(h: *mut apm_certificate, c: &Certificate, what: &str) {
    let (subject, issuer, thumbprint) = (c.subject(), c.issuer(), c.thumbprint());
    check_text(h, &format!("{what}: get_subject"), apm_certificate_get_subject, Ok(&subject));
    check_text(h, &format!("{what}: get_issuer"), apm_certificate_get_issuer, Ok(&issuer));
    let t = thumbprint.as_deref().map_err(|e| e.status);
    check_text(h, &format!("{what}: get_thumbprint"), apm_certificate_get_thumbprint, t);

    let der = c.der();
    let mut raw = vec![0u8; der.as_ref().map(|d| d.len()).unwrap_or(0)];
    let (mut len, mut has_key, mut before, mut after) = (usize::MAX, -1i32, 0i64, 0i64);
    let validity = c.validity();
    // SAFETY: valid buffers and out-parameters.
    unsafe {
        let st = apm_certificate_get_raw_data(h, raw.as_mut_ptr(), raw.len(), &mut len);
        expect_status(&format!("{what}: get_raw_data"), st, &[status_of(&der)]);
        if let Ok(d) = &der {
            assert_eq!((&raw, len), (d, d.len()), "{what}: get_raw_data");
        }
        expect_status(&format!("{what}: has_private_key"), apm_certificate_has_private_key(h, &mut has_key), &[APM_OK]);
        assert_eq!(has_key, c.has_private_key() as i32, "{what}: has_private_key");
        let st = apm_certificate_get_validity(h, &mut before, &mut after);
        expect_status(&format!("{what}: get_validity"), st, &[status_of(&validity)]);
        if let Ok(v) = validity {
            assert_eq!((before, after), v, "{what}: get_validity");
        }
        expect_status(&format!("{what}: close"), apm_certificate_close(h), &[APM_OK]);
        expect_status(&format!("{what}: close again"), apm_certificate_close(h), &[APM_OK]);
        expect_status(
            &format!("{what}: getter after close"),
            apm_certificate_has_private_key(h, &mut has_key),
            &[APM_E_OBJECT_DISPOSED],
        );
    }
}

/// One loader through both APIs: the same outcome; on success every getter.
fn check_load(what: &str, rust: Result<Certificate, Error>, c_status: apm_status, h: *mut apm_certificate) {
    match rust {
        Ok(cert) => {
            expect_status(what, c_status, &[APM_OK]);
            check_getters(&cert, what);
            check_handle(h, &cert, what);
        }
        Err(e) => {
            expect_error(what, &e, &[APM_E_ARGUMENT]);
            expect_status(what, c_status, &[e.status]);
            assert!(h.is_null(), "{what}: a failed load wrote its out-parameter");
        }
    }
}

pub fn run(data: &[u8]) {
    let mut h = std::ptr::null_mut();
    // SAFETY: `data` is readable for its length; valid out-parameters.
    let st = unsafe { apm_certificate_load_der(data.as_ptr(), data.len(), &mut h) };
    check_load("DER", Certificate::from_der(data), st, h);

    let mut h = std::ptr::null_mut();
    // SAFETY: as above.
    let st = unsafe { apm_certificate_load_pem(data.as_ptr(), data.len(), std::ptr::null(), 0, &mut h) };
    check_load("PEM", Certificate::from_pem(data, None), st, h);

    let mut h = std::ptr::null_mut();
    // SAFETY: as above.
    let st = unsafe { apm_certificate_load_pem(data.as_ptr(), data.len(), data.as_ptr(), data.len(), &mut h) };
    check_load("PEM with itself as the key", Certificate::from_pem(data, Some(data)), st, h);

    for password in PASSWORDS {
        match Certificate::from_pkcs12(data, password) {
            Ok(cert) => {
                check_getters(&cert, "PKCS#12");
                break;
            }
            Err(e) => {
                expect_error("PKCS#12", &e, &[APM_E_ARGUMENT, APM_E_INVALID_CREDENTIAL]);
                if e.status != APM_E_INVALID_CREDENTIAL {
                    break;
                }
            }
        }
    }
}
