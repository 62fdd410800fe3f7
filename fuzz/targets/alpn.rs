//! alpn: the application-protocol (ALPN) lists of src/tls/context.rs: `alpn_wire` (our names in
//! the wire format, each prefixed by its length) and `select_alpn` (the server's choice: the first
//! of our names the client offers, as a slice of the client's list), and the C entry point that
//! takes the names (`apm_ssl_stream_set_application_protocols`).
//!
//! The input is read three ways: its first byte splits the rest into two raw lists that
//! `select_alpn` must parse as the reference below does; split at NUL bytes it is a list of C
//! strings, which the C entry point must accept exactly when each is 1 to 255 bytes of UTF-8; and
//! the valid ones, encoded with `alpn_wire`, must parse back and negotiate as the RFC 7301 server
//! preference says.

use super::expect_status;
use super::input::Input;
use apmnet::ffi::custom_stream::{apm_custom_complete_fn, apm_stream_create_custom, apm_stream_vtable};
use apmnet::ffi::stream::apm_stream_close;
use apmnet::ffi::ssl_stream::{apm_ssl_stream_create, apm_ssl_stream_set_application_protocols};
use apmnet::ffi::status::*;
use apmnet::tls::parsers::{alpn_wire, select_alpn};
use std::ffi::{c_char, c_void};

/// The names of a wire-format list, up to the first entry that is empty or runs past the end.
fn reference_names(wire: &[u8]) -> Vec<&[u8]> {
    let mut names = Vec::new();
    let mut rest = wire;
    while let Some((&len, tail)) = rest.split_first() {
        let len = len as usize;
        if len == 0 || tail.len() < len {
            break;
        }
        names.push(&tail[..len]);
        rest = &tail[len..];
    }
    names
}

fn check_select(ours: &[u8], client: &[u8]) {
    let offered = reference_names(client);
    let expected = reference_names(ours).into_iter().find_map(|want| offered.iter().find(|o| **o == want).copied());
    let got = select_alpn(ours, client);
    assert_eq!(got, expected, "select_alpn({ours:?}, {client:?})");
    if let (Some(g), Some(e)) = (got, expected) {
        // OpenSSL needs the choice to point into the client's list, at the entry itself.
        assert_eq!(g.as_ptr(), e.as_ptr(), "select_alpn chose a slice that is not the client's entry");
    }
}

unsafe extern "C" fn refuse_read(
    _: *mut c_void,
    _: *mut u8,
    _: usize,
    _: apm_custom_complete_fn,
    _: u64,
) -> apm_status {
    APM_E_NOT_SUPPORTED
}

unsafe extern "C" fn refuse_write(
    _: *mut c_void,
    _: *const u8,
    _: usize,
    _: apm_custom_complete_fn,
    _: u64,
) -> apm_status {
    APM_E_NOT_SUPPORTED
}

/// `apm_ssl_stream_set_application_protocols` on a fresh SslStream (over a custom stream that
/// never does I/O).
fn set_through_c(names: &[&[u8]], null_at: Option<usize>) -> apm_status {
    let vtable = apm_stream_vtable { begin_read: Some(refuse_read), begin_write: Some(refuse_write), close: None };
    let strings: Vec<Vec<u8>> = names.iter().map(|n| [*n, &[0u8][..]].concat()).collect();
    let mut ptrs: Vec<*const c_char> = strings.iter().map(|s| s.as_ptr() as *const c_char).collect();
    if let Some(i) = null_at {
        ptrs[i] = std::ptr::null();
    }
    let (mut inner, mut ssl) = (std::ptr::null_mut(), std::ptr::null_mut());
    // SAFETY: valid table, out-parameters and `ptrs.len()` NUL-terminated strings (or NULL).
    unsafe {
        expect_status(
            "apm_stream_create_custom",
            apm_stream_create_custom(&vtable, std::ptr::null_mut(), &mut inner),
            &[APM_OK],
        );
        expect_status("apm_ssl_stream_create", apm_ssl_stream_create(inner, 0, &mut ssl), &[APM_OK]);
        let st = apm_ssl_stream_set_application_protocols(ssl, ptrs.as_ptr(), ptrs.len());
        expect_status("apm_stream_close", apm_stream_close(ssl), &[APM_OK]);
        st
    }
}

pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let split = input.u8() as usize;
    let rest = input.rest();
    let (ours, client) = rest.split_at(split.min(rest.len()));
    check_select(ours, client);
    check_select(client, ours);

    // The C strings: split at NUL (at most 64 of them).
    let names: Vec<&[u8]> = rest.split(|&b| b == 0).take(64).collect();
    // In the order the C entry point checks: each pointer in turn (NULL, then UTF-8), then lengths.
    let null_at = (split % 5 == 4).then(|| split % names.len());
    let not_utf8 = names.iter().position(|n| std::str::from_utf8(n).is_err());
    let expected = match (null_at, not_utf8) {
        (Some(z), b) if !matches!(b, Some(b) if b < z) => APM_E_ARGUMENT_NULL,
        (_, Some(_)) => APM_E_ARGUMENT,
        _ if names.iter().all(|n| (1..=255).contains(&n.len())) => APM_OK,
        _ => APM_E_ARGUMENT,
    };
    expect_status("apm_ssl_stream_set_application_protocols", set_through_c(&names, null_at), &[expected]);

    // Encoding and negotiation: the valid names, the first `split % (n + 1)` ours, the rest the client's.
    let good: Vec<Vec<u8>> = names.iter().filter(|n| (1..=255).contains(&n.len())).map(|n| n.to_vec()).collect();
    let wire = alpn_wire(&good);
    assert_eq!(wire.len(), good.iter().map(|n| n.len() + 1).sum::<usize>());
    assert_eq!(reference_names(&wire), good.iter().map(|n| n.as_slice()).collect::<Vec<_>>(), "alpn_wire({good:?})");
    let (server, offered) = good.split_at(split % (good.len() + 1));
    let (server_wire, client_wire) = (alpn_wire(server), alpn_wire(offered));
    let chosen = select_alpn(&server_wire, &client_wire);
    let preferred = server.iter().find(|s| offered.contains(s)).map(|s| s.as_slice());
    assert_eq!(chosen, preferred, "server {server:?}, client {offered:?}");
}
