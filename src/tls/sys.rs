//! The few libssl functions rust-openssl does not wrap. libssl itself is linked by openssl-sys.

use openssl_sys::{stack_st_X509_NAME, SSL};
use std::ffi::{c_int, c_void};

/// cbindgen:ignore
/// SSL_CTX_set_cert_cb's per-connection form: the callback may return -1 to suspend the
/// handshake (SSL_ERROR_WANT_X509_LOOKUP) until the application has chosen a certificate.
pub type CertCb = unsafe extern "C" fn(ssl: *mut SSL, arg: *mut c_void) -> c_int;

/// cbindgen:ignore
#[allow(unused_doc_comments)]
extern "C" {
    pub fn SSL_set_cert_cb(ssl: *mut SSL, cb: Option<CertCb>, arg: *mut c_void);
    pub fn SSL_get_client_CA_list(ssl: *const SSL) -> *mut stack_st_X509_NAME;
}
