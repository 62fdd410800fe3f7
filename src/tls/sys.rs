//! The few libssl and libcrypto functions rust-openssl does not wrap. Both libraries are linked
//! by openssl-sys.

use openssl_sys::{stack_st_X509_NAME, SSL, SSL_SESSION, X509_STORE_CTX, X509_VERIFY_PARAM};
use std::ffi::{c_char, c_int, c_uint, c_void};

/// cbindgen:ignore
/// SSL_CTX_set_cert_cb's per-connection form: the callback may return -1 to suspend the
/// handshake (SSL_ERROR_WANT_X509_LOOKUP) until the application has chosen a certificate.
pub type CertCb = unsafe extern "C" fn(ssl: *mut SSL, arg: *mut c_void) -> c_int;

/// cbindgen:ignore
/// An X509 verify callback (SSL_verify_cb).
pub type VerifyCb = unsafe extern "C" fn(ok: c_int, ctx: *mut X509_STORE_CTX) -> c_int;

/// cbindgen:ignore
/// SSL_get0_verify_cert_store is a macro over SSL_ctrl with this command.
pub const SSL_CTRL_GET_VERIFY_CERT_STORE: c_int = 137;

/// cbindgen:ignore
#[allow(unused_doc_comments)]
extern "C" {
    pub fn SSL_set_cert_cb(ssl: *mut SSL, cb: Option<CertCb>, arg: *mut c_void);
    pub fn SSL_get_client_CA_list(ssl: *const SSL) -> *mut stack_st_X509_NAME;
    pub fn SSL_set_options(ssl: *mut SSL, op: u64) -> u64;
    pub fn SSL_set_session_id_context(ssl: *mut SSL, sid_ctx: *const u8, sid_ctx_len: c_uint) -> c_int;
    pub fn SSL_get_verify_callback(ssl: *const SSL) -> Option<VerifyCb>;
    pub fn SSL_SESSION_is_resumable(session: *const SSL_SESSION) -> c_int;
    pub fn X509_STORE_CTX_set_ex_data(ctx: *mut X509_STORE_CTX, idx: c_int, data: *mut c_void) -> c_int;
    pub fn X509_STORE_CTX_set_default(ctx: *mut X509_STORE_CTX, name: *const c_char) -> c_int;
    pub fn X509_STORE_CTX_set_verify_cb(ctx: *mut X509_STORE_CTX, cb: Option<VerifyCb>);
    pub fn X509_STORE_CTX_get0_param(ctx: *const X509_STORE_CTX) -> *mut X509_VERIFY_PARAM;
    pub fn X509_VERIFY_PARAM_set1(to: *mut X509_VERIFY_PARAM, from: *const X509_VERIFY_PARAM) -> c_int;
    pub fn X509_VERIFY_PARAM_set_auth_level(param: *mut X509_VERIFY_PARAM, level: c_int);
}
