//! The bodies of the fuzz targets, shared by `fuzz/fuzz_targets/*.rs` (cargo fuzz, on nightly) and
//! `tests/fuzz_corpus.rs` (every file of `fuzz/corpus/<target>/`, on stable, in `cargo test`):
//! both include this directory with `#[path]`, so the seed corpus checks exactly what the fuzzer
//! runs. A body panics on a broken contract (libFuzzer then saves the input as a crash); it
//! leaves no handle or pending operation behind.

#![allow(dead_code)]

pub mod alpn;
pub mod certificate;
pub mod custom_stream;
pub mod http_chunked;
pub mod http_response;
pub mod input;
pub mod nns;
pub mod ntlm;
pub mod spnego;
pub mod tls_framer;
pub mod tls_peer;

use apmnet::ffi::status::{apm_last_error_message, apm_status};
use std::ffi::c_char;

/// The body of a target: one input.
pub type Body = fn(&[u8]);

/// Every target: its name (the binary in fuzz/Cargo.toml, the directory under fuzz/corpus/) and
/// its body.
pub const TARGETS: &[(&str, Body)] = &[
    ("alpn", alpn::run),
    ("certificate", certificate::run),
    ("custom_stream", custom_stream::run),
    ("http_chunked", http_chunked::run),
    ("http_response", http_response::run),
    ("nns", nns::run),
    ("ntlm", ntlm::run),
    ("spnego", spnego::run),
    ("tls_framer", tls_framer::run),
    ("tls_peer", tls_peer::run),
];

/// The header's name of a status; "APM_UNKNOWN" for a value the header does not define.
pub fn status_name(status: apm_status) -> &'static str {
    apmnet::error::code::name(status)
}

/// A status the header defines (APM_OK included).
pub fn is_defined(status: apm_status) -> bool {
    status_name(status) != "APM_UNKNOWN"
}

/// The calling thread's last error message (for failure reports).
pub fn last_message() -> String {
    let mut buf = [0 as c_char; 512];
    let mut len = 0usize;
    // SAFETY: a valid buffer and out-parameter.
    unsafe { apm_last_error_message(buf.as_mut_ptr(), buf.len(), &mut len) };
    let bytes: Vec<u8> = buf.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Panics unless `status` is one of `allowed`, with the call's name and the last error message.
#[track_caller]
pub fn expect_status(what: &str, status: apm_status, allowed: &[apm_status]) {
    if !allowed.contains(&status) {
        let allowed: Vec<&str> = allowed.iter().map(|&s| status_name(s)).collect();
        panic!("{what}: {} ({status}) \"{}\", expected one of {allowed:?}", status_name(status), last_message());
    }
}
