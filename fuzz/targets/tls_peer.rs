//! tls_peer: an SslStream whose peer is the fuzz input. The SslStream (client or server) sits on a
//! custom stream that answers every read inside begin_read with the next piece of the input, then
//! with the end the first byte chooses (end of stream, a failure status, a begin_read that
//! refuses), and swallows every write. This feeds arbitrary bytes to our side of the handshake:
//! the record framer that tells a clean end from a truncated record, the classification of input
//! that is not TLS (IOException "unexpected packet format"), received alerts and the inner
//! stream's failures.
//!
//! The authentication must end (no hang) with APM_OK, APM_E_AUTHENTICATION or APM_E_IO (never
//! APM_E_INTERNAL), with the last error recording the same status; a failed stream reports the
//! stored failure from then on; closing the SslStream closes the custom stream once.

use super::expect_status;
use super::input::Input;
use apmnet::ffi::certificate::{apm_certificate, apm_certificate_load_pem};
use apmnet::ffi::custom_stream::{apm_custom_complete_fn, apm_stream_create_custom, apm_stream_vtable};
use apmnet::ffi::stream::{apm_stream_close, apm_stream_read};
use apmnet::ffi::ssl_stream::{
    apm_ssl_stream_authenticate_as_client, apm_ssl_stream_authenticate_as_server, apm_ssl_stream_create,
};
use apmnet::ffi::status::*;
use std::ffi::c_void;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

/// The server's certificate and key (a seed of the certificate target).
const SERVER_PEM: &[u8] = include_bytes!("../corpus/certificate/ec-p256-cert-and-key.pem");

/// SslProtocols: the system default, TLS 1.2, TLS 1.3, both.
const PROTOCOLS: [i32; 4] = [0, 3072, 12288, 3072 | 12288];

fn server_certificate() -> *mut apm_certificate {
    static CERT: OnceLock<usize> = OnceLock::new();
    *CERT.get_or_init(|| {
        let mut h = std::ptr::null_mut();
        // SAFETY: a valid buffer and out-parameter; the handle is kept for the process.
        let st =
            unsafe { apm_certificate_load_pem(SERVER_PEM.as_ptr(), SERVER_PEM.len(), std::ptr::null(), 0, &mut h) };
        expect_status("loading the server certificate", st, &[APM_OK]);
        h as usize
    }) as *mut apm_certificate
}

/// How the input ends.
#[derive(Clone, Copy)]
enum End {
    Eof,
    Fail(apm_status),
    Refuse(apm_status),
}

struct Peer {
    data: Mutex<(Vec<u8>, usize, u32)>,
    /// Largest piece per read; 0 = as much as asked.
    piece: usize,
    end: End,
    closes: AtomicUsize,
}

unsafe extern "C" fn p_read(
    ctx: *mut c_void,
    buffer: *mut u8,
    count: usize,
    complete: apm_custom_complete_fn,
    token: u64,
) -> apm_status {
    // SAFETY: the Peer outlives the stream.
    let peer = unsafe { &*(ctx as *const Peer) };
    let n = {
        let mut d = peer.data.lock().unwrap();
        let (data, pos, x) = &mut *d;
        let left = data.len() - *pos;
        if left == 0 {
            None
        } else {
            let mut n = count.min(left);
            if peer.piece > 0 {
                *x ^= *x << 13;
                *x ^= *x >> 17;
                *x ^= *x << 5;
                n = n.min(1 + *x as usize % peer.piece);
            }
            // SAFETY: the library's buffer holds `count` >= n bytes.
            unsafe { std::ptr::copy_nonoverlapping(data[*pos..].as_ptr(), buffer, n) };
            *pos += n;
            Some(n)
        }
    };
    let complete = complete.expect("a complete function");
    // SAFETY: completing our own token once.
    unsafe {
        match (n, peer.end) {
            (Some(n), _) => complete(token, APM_OK, n),
            (None, End::Eof) => complete(token, APM_OK, 0),
            (None, End::Fail(st)) => complete(token, st, 0),
            (None, End::Refuse(st)) => return st,
        };
    }
    APM_OK
}

unsafe extern "C" fn p_write(
    _: *mut c_void,
    _: *const u8,
    count: usize,
    complete: apm_custom_complete_fn,
    token: u64,
) -> apm_status {
    // SAFETY: completing our own token once.
    unsafe { complete.expect("a complete function")(token, APM_OK, count) };
    APM_OK
}

unsafe extern "C" fn p_close(ctx: *mut c_void) {
    // SAFETY: the Peer outlives the stream.
    unsafe { &*(ctx as *const Peer) }.closes.fetch_add(1, Ordering::SeqCst);
}

pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let mode = input.u8();
    let server = mode & 1 == 1;
    let protocols = PROTOCOLS[(mode >> 1 & 3) as usize];
    let end = match mode >> 3 & 3 {
        0 => End::Eof,
        1 => End::Fail(APM_E_IO),
        2 => End::Fail(APM_E_SOCKET),
        _ => End::Refuse(APM_E_SOCKET),
    };
    let piece = match mode >> 5 {
        0 => 0,
        p => 1 << (2 * p),
    };
    let peer = Box::new(Peer {
        data: Mutex::new((input.rest().to_vec(), 0, 0x2545_f491 ^ mode as u32)),
        piece,
        end,
        closes: AtomicUsize::new(0),
    });
    let vtable = apm_stream_vtable { begin_read: Some(p_read), begin_write: Some(p_write), close: Some(p_close) };
    let (mut inner, mut ssl) = (std::ptr::null_mut(), std::ptr::null_mut());
    let ctx = &*peer as *const Peer as *mut c_void;
    // SAFETY: valid table and out-parameters; the Peer outlives the stream.
    unsafe {
        expect_status("apm_stream_create_custom", apm_stream_create_custom(&vtable, ctx, &mut inner), &[APM_OK]);
        expect_status("apm_ssl_stream_create", apm_ssl_stream_create(inner, 0, &mut ssl), &[APM_OK]);
        let auth = || {
            if server {
                apm_ssl_stream_authenticate_as_server(ssl, server_certificate(), 0, protocols, 0)
            } else {
                apm_ssl_stream_authenticate_as_client(ssl, c"localhost".as_ptr(), std::ptr::null_mut(), protocols, 0)
            }
        };
        let st = auth();
        expect_status("authentication against the input", st, &[APM_OK, APM_E_AUTHENTICATION, APM_E_IO]);
        assert_eq!(apm_last_error_status(), st, "the last error records the authentication's status");
        let mut buf = [0u8; 64];
        let mut n = 0;
        if st == APM_OK {
            let r = apm_stream_read(ssl, buf.as_mut_ptr(), buf.len(), 0, buf.len(), &mut n);
            expect_status("a read after a handshake with the input", r, &[APM_OK, APM_E_IO]);
        } else {
            // The failure is stored: a second authentication and a read report it.
            expect_status("authenticating again after a failure", auth(), &[st]);
            expect_status(
                "a read after a failed authentication",
                apm_stream_read(ssl, buf.as_mut_ptr(), buf.len(), 0, buf.len(), &mut n),
                &[st],
            );
        }
        expect_status("apm_stream_close", apm_stream_close(ssl), &[APM_OK]);
    }
    assert_eq!(peer.closes.load(Ordering::SeqCst), 1, "closing the SslStream closes its inner stream once");
}
