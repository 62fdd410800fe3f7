//! NegotiateStream against itself over the in-memory pipe of the layered driver's tests: both
//! ends run Begin/End on one thread (the pipe completes reads inline when the peer writes), so
//! every exchange is deterministic.

use super::*;
use crate::layered::tests::{pipe, Mem};
use crate::negotiate::credential::Secret;
use crate::op::{Outcome, Value};
use crate::stream::{ConstBuf, MutBuf};
use parking_lot::Mutex;

type Slot = Arc<Mutex<Option<Outcome>>>;

fn slot() -> (Slot, Completion) {
    let s: Slot = Arc::default();
    let t = s.clone();
    (s, Completion::new(move |o| *t.lock() = Some(o)))
}

fn users() -> CredentialSource {
    Arc::new(|u: &str, _: &str| u.eq_ignore_ascii_case("alice").then(|| Secret::Password("Passw0rd!".into())))
}

fn client_opts(password: &str, level: i32) -> ClientOptions {
    ClientOptions {
        credential: Some(Credential::new("TESTDOM\\alice", password, "")),
        target_name: Some("host/localhost".into()),
        binding: None,
        protection_level: level,
        impersonation_level: impersonation_level::IDENTIFICATION,
    }
}

fn server_opts(level: i32) -> ServerOptions {
    ServerOptions { users: Some(users()), policy: None, protection_level: level, impersonation_level: impersonation_level::IDENTIFICATION }
}

struct Pair {
    c: Arc<NegotiateStream>,
    s: Arc<NegotiateStream>,
    cw: Arc<Mem>,
    sw: Arc<Mem>,
}

fn pair() -> Pair {
    let (a, b) = pipe(usize::MAX, false);
    let c = NegotiateStream::new(a.clone(), false).unwrap();
    let s = NegotiateStream::new(b.clone(), false).unwrap();
    Pair { c, s, cw: a, sw: b }
}

/// Authenticates both ends; their outcomes.
fn authenticate(p: &Pair, c: ClientOptions, s: ServerOptions) -> (Result<()>, Result<()>) {
    let (cs, cdone) = slot();
    let (ss, sdone) = slot();
    p.c.begin_authenticate_as_client(c, cdone, Mode::Async).unwrap();
    p.s.begin_authenticate_as_server(s, sdone, Mode::Async).unwrap();
    let take = |s: &Slot| s.lock().take().expect("completed inline").map(drop);
    (take(&cs), take(&ss))
}

fn write(s: &NegotiateStream, data: &[u8]) -> Outcome {
    let (o, done) = slot();
    s.begin_write(ConstBuf { ptr: data.as_ptr(), len: data.len() }, done).unwrap();
    let r = o.lock().take().expect("completed inline");
    r
}

/// Reads exactly `n` bytes (the writer has written them already).
fn read_all(s: &NegotiateStream, n: usize) -> Vec<u8> {
    let mut out = vec![0u8; n];
    let mut got = 0;
    while got < n {
        let (o, done) = slot();
        s.begin_read(MutBuf { ptr: out[got..].as_mut_ptr(), len: n - got }, done).unwrap();
        let r = o.lock().take().expect("data is there");
        let k = r.unwrap().bytes();
        assert!(k > 0);
        got += k;
    }
    out
}

fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

#[test]
fn ntlm_at_every_protection_level_both_ways() {
    for level in [protection_level::NONE, protection_level::SIGN, protection_level::ENCRYPT_AND_SIGN] {
        let p = pair();
        let (c, s) = authenticate(&p, client_opts("Passw0rd!", level), server_opts(level));
        c.unwrap();
        s.unwrap();
        let (ci, si) = (p.c.info().unwrap(), p.s.info().unwrap());
        assert_eq!((ci.package, si.package), ("NTLM", "NTLM"));
        assert_eq!(si.remote_name, "TESTDOM\\alice");
        assert_eq!(ci.remote_name, "host/localhost");
        assert_eq!(ci.is_encrypted(), level == protection_level::ENCRYPT_AND_SIGN);
        assert_eq!(si.is_signed(), level != protection_level::NONE);
        assert!(!ci.is_mutually_authenticated());
        assert_eq!(si.impersonation_level(), impersonation_level::IDENTIFICATION);
        assert!(p.s.is_server() && !p.c.is_server());
        for n in [1usize, 64511, 64512, 64513, 200_000] {
            let data = pattern(n, level as u8);
            p.sw.writes.lock().clear();
            write(&p.c, &data).unwrap();
            assert_eq!(read_all(&p.s, n), data);
            let back = pattern(n, 7);
            write(&p.s, &back).unwrap();
            assert_eq!(read_all(&p.c, n), back);
        }
        // The frames on the wire: 64512 plaintext bytes at most, 16 bytes of signature each.
        let writes = p.cw.writes.lock().clone();
        if level != protection_level::NONE {
            let last: Vec<usize> = writes.iter().rev().take(4).map(|w| w.len()).collect();
            assert_eq!(last, vec![4 + 16 + 200_000 - 3 * 64512, 4 + 16 + 64512, 4 + 16 + 64512, 4 + 16 + 64512]);
        }
    }
}

#[test]
fn a_wrong_password_is_invalid_credential_on_both_sides() {
    let p = pair();
    let (c, s) = authenticate(&p, client_opts("nope", protection_level::ENCRYPT_AND_SIGN), server_opts(protection_level::ENCRYPT_AND_SIGN));
    let (c, s) = (c.unwrap_err(), s.unwrap_err());
    assert_eq!((s.status, s.message.as_str()), (code::INVALID_CREDENTIAL, msg::BAD_CLIENT_CREDS));
    assert_eq!((c.status, c.message.as_str()), (code::INVALID_CREDENTIAL, msg::BAD_CLIENT_CREDS));
    // Later calls report the stored failure.
    let e = p.c.begin_write(ConstBuf { ptr: b"x".as_ptr(), len: 1 }, Completion::new(|_| {})).unwrap_err();
    assert_eq!(e.status, code::INVALID_CREDENTIAL);
    // The server told the client: it may try again; the client was told: it may not.
    assert!(p.s.protocol(|n| n.can_retry()));
    let e = p.c.begin_authenticate_as_client(client_opts("Passw0rd!", 2), Completion::new(|_| {}), Mode::Async).unwrap_err();
    assert_eq!(e.status, code::INVALID_CREDENTIAL);
    // The server's retry must keep its role.
    let e = p.s.begin_authenticate_as_client(client_opts("x", 2), Completion::new(|_| {}), Mode::Async).unwrap_err();
    assert_eq!((e.status, e.message.as_str()), (code::INVALID_OPERATION, msg::CLIENT_SERVER));
}

#[test]
fn a_server_requiring_more_protection_refuses_with_trust_failure() {
    let p = pair();
    let (c, s) = authenticate(&p, client_opts("Passw0rd!", protection_level::SIGN), server_opts(protection_level::ENCRYPT_AND_SIGN));
    let (c, s) = (c.unwrap_err(), s.unwrap_err());
    assert_eq!(s.message, msg::expectation("EncryptAndSign", "Sign"));
    assert_eq!((c.status, c.message.as_str()), (code::AUTHENTICATION, msg::REMOTE_EXPECTATION));
}

#[test]
fn arguments_are_checked_in_dotnet_order() {
    let p = pair();
    let mut o = client_opts("x", 2);
    o.impersonation_level = 7;
    let e = p.c.begin_authenticate_as_client(o.clone(), Completion::new(|_| {}), Mode::Async).unwrap_err();
    assert_eq!(e.status, code::ARGUMENT_OUT_OF_RANGE);
    assert_eq!(e.message, "The supported values are Identification, Impersonation or Delegation. (Parameter 'impersonationLevel')");
    o.target_name = None;
    let e = p.c.begin_authenticate_as_client(o.clone(), Completion::new(|_| {}), Mode::Async).unwrap_err();
    assert_eq!(e.message, "Value cannot be null. (Parameter 'servicePrincipalName')");
    o.credential = None;
    let e = p.c.begin_authenticate_as_client(o, Completion::new(|_| {}), Mode::Async).unwrap_err();
    assert_eq!(e.message, "Value cannot be null. (Parameter 'credential')");
    let mut s = server_opts(2);
    s.policy = Some(Policy { enforcement: policy_enforcement::ALWAYS, ..Default::default() });
    let e = p.s.begin_authenticate_as_server(s, Completion::new(|_| {}), Mode::Async).unwrap_err();
    assert_eq!((e.status, e.message.as_str()), (code::ARGUMENT, "An extended protection policy must specify either a custom channel binding or a custom service name collection. (Parameter 'policy')"));
    // Before authentication: the transfers refuse.
    let e = p.c.begin_read(MutBuf { ptr: [0u8; 1].as_mut_ptr(), len: 1 }, Completion::new(|_| {})).unwrap_err();
    assert_eq!(e.message, crate::layered::msg::NOT_AUTHENTICATED);
}

/// A server end driven by hand: the client's frames arrive on `raw`.
fn client_against_raw(level: i32) -> (Arc<NegotiateStream>, Arc<Mem>, Slot) {
    let (a, b) = pipe(usize::MAX, false);
    let c = NegotiateStream::new(a, false).unwrap();
    let (o, done) = slot();
    c.begin_authenticate_as_client(client_opts("Passw0rd!", level), done, Mode::Async).unwrap();
    (c, b, o)
}

fn outcome(o: &Slot) -> Error {
    match o.lock().take().expect("completed") {
        Ok(_) => panic!("expected a failure"),
        Err(e) => e,
    }
}

#[test]
fn hostile_handshake_frames_are_clear_errors() {
    // A HandshakeError with a short payload.
    let (_c, raw, o) = client_against_raw(2);
    raw.send(&[0x15, 1, 0, 0, 3, 1, 2, 3]);
    assert_eq!(outcome(&o).message, msg::AUTH_ALERT);
    // Big-endian (.NET Framework) logon denied.
    let (_c, raw, o) = client_against_raw(2);
    raw.send(&[0x15, 1, 0, 0, 8, 0, 0, 0, 0, 0x80, 0x09, 0x03, 0x0c]);
    assert_eq!(outcome(&o).status, code::INVALID_CREDENTIAL);
    // An unknown message id.
    let (_c, raw, o) = client_against_raw(2);
    raw.send(&[0x17, 1, 0, 0, 0]);
    assert_eq!(outcome(&o).message, "Found a wrong header field MessageId read : 23, expected : 22.");
    // A truncated header, then the end of the stream.
    let (_c, raw, o) = client_against_raw(2);
    raw.send(&[0x16, 1, 0]);
    raw.hang_up();
    let e = outcome(&o);
    assert_eq!((e.status, e.message.as_str()), (code::IO, msg::CONNECTION_CLOSED));
    // A truncated payload.
    let (_c, raw, o) = client_against_raw(2);
    raw.send(&[0x16, 1, 0, 0, 9, 1, 2]);
    raw.hang_up();
    assert_eq!(outcome(&o).message, msg::CONNECTION_CLOSED);
    // The end of the stream at a frame boundary.
    let (_c, raw, o) = client_against_raw(2);
    raw.hang_up();
    assert_eq!(outcome(&o).message, msg::AUTH_EOF);
    // A CHALLENGE that is garbage: the client says so with a HandshakeError.
    let (_c, raw, o) = client_against_raw(2);
    raw.received();
    raw.send(&[0x16, 1, 0, 0, 4, 1, 2, 3, 4]);
    let e = outcome(&o);
    assert_eq!((e.status, e.message.as_str()), (code::AUTHENTICATION, msg::AUTH_SSPI));
    let sent = raw.received();
    assert_eq!(&sent[..5], &[0x15, 1, 0, 0, 8]);
    assert_eq!(nns::decode_error_code(&sent[5..]), Some(Failure::InvalidToken.hresult()));
}

fn authenticated(level: i32) -> Pair {
    let p = pair();
    let (c, s) = authenticate(&p, client_opts("Passw0rd!", level), server_opts(level));
    c.unwrap();
    s.unwrap();
    p
}

fn read_error(s: &NegotiateStream) -> Error {
    let mut buf = [0u8; 100];
    let (o, done) = slot();
    s.begin_read(MutBuf { ptr: buf.as_mut_ptr(), len: 100 }, done).unwrap();
    let r = o.lock().take().expect("completed");
    match r {
        Ok(v) => panic!("read {} bytes", v.bytes()),
        Err(e) => e,
    }
}

#[test]
fn hostile_data_frames_are_clear_errors() {
    for len in [0u32, 4, 65537] {
        let p = authenticated(2);
        p.cw.send(&len.to_le_bytes());
        let e = read_error(&p.s);
        assert_eq!((e.status, e.message.as_str()), (code::IO, nns::FRAME_SIZE));
    }
    // A truncated payload, then the end.
    let p = authenticated(2);
    p.cw.send(&[40, 0, 0, 0, 1, 2, 3]);
    p.cw.hang_up();
    assert_eq!(read_error(&p.s).message, msg::IO_EOF);
    // A forged signature; then a replayed frame.
    let p = authenticated(1);
    write(&p.c, b"hello").unwrap();
    let mut frame = p.sw.received();
    frame[10] ^= 0xff;
    p.cw.send(&frame);
    let e = read_error(&p.s);
    assert_eq!((e.status, e.message.as_str()), (code::IO, msg::READ_FAILED));
    let p = authenticated(2);
    write(&p.c, b"hello").unwrap();
    let frame = p.sw.received();
    p.cw.send(&frame);
    assert_eq!(read_all(&p.s, 5), b"hello");
    p.cw.send(&frame);
    assert_eq!(read_error(&p.s).message, msg::READ_FAILED);
    // A clean end at a frame boundary reads 0.
    let p = authenticated(2);
    p.cw.hang_up();
    let mut buf = [0u8; 4];
    let (o, done) = slot();
    p.s.begin_read(MutBuf { ptr: buf.as_mut_ptr(), len: 4 }, done).unwrap();
    assert!(matches!(o.lock().take(), Some(Ok(Value::Bytes(0)))));
}

#[test]
fn a_channel_binding_is_read_within_its_structure() {
    // SEC_CHANNEL_BINDINGS: eight 32-bit fields (native byte order); the application data's
    // length and offset are the last two. The caller's buffer is untrusted: every field that
    // points outside it is an ARGUMENT error (this parser lost its fuzzing with
    // negotiate::parsers::exercise, whose NNS frames never made a structure of it anyway).
    let structure = |len: u32, off: u32, tail: &[u8]| {
        let mut b = vec![0u8; 24];
        b.extend_from_slice(&len.to_ne_bytes());
        b.extend_from_slice(&off.to_ne_bytes());
        b.extend_from_slice(tail);
        b
    };
    let good = structure(5, 32, b"tls-u");
    assert_eq!(binding_data(&good).unwrap(), b"tls-u");
    assert_eq!(binding_data(&structure(0, 32, b"")).unwrap(), b"");
    for bad in [
        structure(6, 32, b"tls-u"),
        structure(1, 37, b"tls-u"),
        structure(u32::MAX, u32::MAX, b"x"),
        good[..31].to_vec(),
        Vec::new(),
    ] {
        let e = binding_data(&bad).unwrap_err();
        assert_eq!((e.status, e.message.as_str()), (code::ARGUMENT, "The channel binding is not a SEC_CHANNEL_BINDINGS structure."));
    }
}
