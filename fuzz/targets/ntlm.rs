//! ntlm: the three NTLM messages and their AV pairs (src/negotiate/ntlm.rs), as parsers and as
//! what the stateful client and server make of them.
//!
//! The first byte sets the server's policy (bit 0 a channel binding it expects, bit 1 required;
//! bit 2 a service name it accepts, bit 3 required) and the client's level (bit 4 Sign, bit 5
//! EncryptAndSign); the rest is one NTLM message, which goes
//! * through each parser: a CHALLENGE re-encodes to one that parses the same, AV pairs re-encode
//!   to the bytes they came from, an AUTHENTICATE's MIC is the bytes at offset 72;
//! * to a fresh server as a NEGOTIATE: what it answers is a CHALLENGE we can parse;
//! * to a client, after its NEGOTIATE, as the server's CHALLENGE: an AUTHENTICATE it builds must
//!   parse, carry the server's AV pairs, and prove the password for the server's challenge;
//! * to a server, after a NEGOTIATE, as the AUTHENTICATE, with its NTProofStr (and, when the
//!   message has room for one, its MIC) recomputed for the test password, so that the fuzzer
//!   reaches what the server checks past the password: the key exchange, the MIC, the channel
//!   binding and the service name. A client session made from keys derived here must then talk
//!   to the server's.

use apmnet::negotiate::credential::{CredentialSource, Secret};
use apmnet::negotiate::mech::Mechanism;
use apmnet::negotiate::ntlm::*;
use std::sync::Arc;
use wire::*;

/// [MS-NLMP] 2.2.1.3, 2.2.2.1 and 2.2.2.5, written out here: the library's own constants are
/// crate-private (public ones would land in the C header), and a reference of our own catches a
/// wrong one there.
mod wire {
    pub const UNICODE: u32 = 0x0000_0001;
    pub const SEAL: u32 = 0x0000_0020;
    pub const EXTENDED_SESSIONSECURITY: u32 = 0x0008_0000;
    pub const AV_EOL: u16 = 0;
    pub const AV_FLAGS: u16 = 6;
    pub const AV_TARGET_NAME: u16 = 9;
    pub const AV_CHANNEL_BINDINGS: u16 = 10;
    /// MsvAvFlags: the AUTHENTICATE message carries a MIC.
    pub const AV_FLAG_MIC: u32 = 0x2;
    /// The MIC of an AUTHENTICATE message whose payload starts past it.
    pub const MIC_AT: std::ops::Range<usize> = 72..88;
}

const PASSWORD: &str = "Passw0rd!";
/// The one user the servers here do not know.
const STRANGER: &str = "nobody";
const SERVER_CHALLENGE: [u8; 8] = [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef];
const BINDING: &[u8] = b"tls-server-end-point:fuzz";
const SPN: &str = "host/localhost";

fn u16_at(b: &[u8], at: usize) -> usize {
    u16::from_le_bytes([b[at], b[at + 1]]) as usize
}

fn u32_at(b: &[u8], at: usize) -> usize {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as usize
}

/// AV pairs must be the bytes they were parsed from: id, length, value, up to an MsvAvEOL.
fn check_av_pairs(b: &[u8]) {
    let Ok(pairs) = parse_av_pairs(b) else { return };
    let mut at = 0;
    for (id, value) in &pairs {
        assert_ne!(*id, AV_EOL);
        assert_eq!((u16_at(b, at) as u16, u16_at(b, at + 2)), (*id, value.len()), "the pair at {at}");
        assert_eq!(value.as_ptr(), b[at + 4..].as_ptr(), "the value of the pair at {at}");
        at += 4 + value.len();
    }
    assert_eq!(u16_at(b, at) as u16, AV_EOL, "the pairs end at an MsvAvEOL");
    assert!(at + 4 + u16_at(b, at + 2) <= b.len(), "the MsvAvEOL lies within the buffer");
}

fn check_parsers(msg: &[u8]) {
    if let Ok(n) = parse_negotiate(msg) {
        assert_eq!(parse_negotiate(&encode_negotiate(n.flags)), Ok(n));
    }
    if let Ok(c) = parse_challenge(msg) {
        let again = encode_challenge(&c).expect("fields parsed with 16-bit lengths fit");
        assert_eq!(parse_challenge(&again).as_ref(), Ok(&c), "a CHALLENGE re-encoded");
        check_av_pairs(&c.target_info);
    }
    if let Ok(a) = parse_authenticate(msg) {
        if let Some(mic) = a.mic {
            assert_eq!(&mic[..], &msg[MIC_AT]);
        }
        if let Some(pairs) = a.nt_response.get(16 + 28..) {
            check_av_pairs(pairs);
        }
    }
    check_av_pairs(msg);
}

fn users() -> CredentialSource {
    Arc::new(|user: &str, _: &str| (!user.eq_ignore_ascii_case(STRANGER)).then(|| Secret::Password(PASSWORD.into())))
}

fn server(policy: u8) -> NtlmServer {
    let opts = ServerOptions {
        computer: "srv".into(),
        domain: "TESTDOM".into(),
        channel_binding: (policy & 1 != 0).then(|| BINDING.to_vec()),
        require_binding: policy & 2 != 0,
        service_names: if policy & 4 != 0 { vec![SPN.into()] } else { Vec::new() },
        require_spn: policy & 8 != 0,
    };
    let mut s = NtlmServer::new(users(), opts);
    s.fixed_challenge = Some(SERVER_CHALLENGE);
    s
}

fn client(policy: u8) -> NtlmClient {
    let mut c = NtlmClient::new(ClientOptions {
        user: "alice".into(),
        domain: "TESTDOM".into(),
        nt_hash: nt_hash(PASSWORD),
        workstation: "WS".into(),
        target: SPN.into(),
        channel_binding: Some(BINDING.to_vec()),
        integrity: policy & 0x30 != 0,
        confidentiality: policy & 0x20 != 0,
        identify: true,
    });
    c.fixed = Some(Fixed { client_challenge: [0xaa; 8], session_key: [0x55; 16], time: 0 });
    c
}

/// A fresh server takes `msg` as the client's NEGOTIATE.
fn server_first(policy: u8, msg: &[u8]) {
    if let Ok(out) = server(policy).step(Some(msg)) {
        let n = parse_negotiate(msg).expect("the server answered a NEGOTIATE it could not parse");
        assert!(!out.complete);
        let c = parse_challenge(&out.token).expect("the server's CHALLENGE parses");
        assert_eq!(c.server_challenge, SERVER_CHALLENGE);
        assert_ne!(c.flags & n.flags & UNICODE, 0, "Unicode, which the client offered");
        assert_ne!(c.flags & EXTENDED_SESSIONSECURITY, 0);
    }
}

/// A client takes `msg` as the server's CHALLENGE.
fn client_second(policy: u8, msg: &[u8]) {
    let mut c = client(policy);
    c.step(None).expect("the NEGOTIATE");
    let Ok(out) = c.step(Some(msg)) else { return };
    let ch = parse_challenge(msg).expect("the client answered a CHALLENGE it could not parse");
    assert!(out.complete);
    let a = parse_authenticate(&out.token).expect("the client's AUTHENTICATE parses");
    assert_eq!((a.user.as_str(), a.domain.as_str()), ("alice", "TESTDOM"));
    assert!(a.mic.is_some(), "the client sends a MIC");
    let (proof, temp) = a.nt_response.split_at(16);
    let key = ntowfv2(&nt_hash(PASSWORD), "alice", "TESTDOM");
    assert_eq!(proof, nt_proof(&key, &ch.server_challenge, temp), "the NTProofStr");
    // The server's pairs come back in order, but for those the client sets itself.
    let ours = [AV_FLAGS, AV_TARGET_NAME, AV_CHANNEL_BINDINGS];
    let sent = parse_av_pairs(&temp[28..]).expect("the client's AV pairs parse");
    let theirs = parse_av_pairs(&ch.target_info).expect("pairs the client took");
    let echoed: Vec<_> = sent.iter().filter(|(id, _)| !ours.contains(id)).collect();
    let expected: Vec<_> = theirs.iter().filter(|(id, _)| !ours.contains(id)).collect();
    assert_eq!(echoed, expected, "the server's AV pairs");
    let flags_pair = sent.iter().find(|(id, _)| *id == AV_FLAGS).expect("MsvAvFlags");
    assert_ne!(u32::from_le_bytes(flags_pair.1.try_into().expect("4 bytes")) & AV_FLAG_MIC, 0);
}

/// `msg` with its NTProofStr made for PASSWORD and the server's challenge, and its MIC for the
/// exchange so far (when it has room for one); None when it is no AUTHENTICATE to fix.
fn fix_up(msg: &[u8], negotiate: &[u8], challenge: &[u8]) -> Option<(Vec<u8>, [u8; 16])> {
    let a = parse_authenticate(msg).ok()?;
    if a.nt_response.len() < 16 + 28 {
        return None;
    }
    let key = ntowfv2(&nt_hash(PASSWORD), &a.user, &a.domain);
    let proof = nt_proof(&key, &SERVER_CHALLENGE, &a.nt_response[16..]);
    let mut m = msg.to_vec();
    let at = u32_at(msg, 24);
    m[at..at + 16].copy_from_slice(&proof);
    // The proof may have landed on other fields (they may overlap): read the message again.
    let a = parse_authenticate(&m).ok()?;
    let kx_key = session_base_key(&ntowfv2(&nt_hash(PASSWORD), &a.user, &a.domain), &proof);
    let negotiated = parse_challenge(challenge).ok()?.flags & a.flags;
    let exported = exported_session_key(&kx_key, negotiated, &a.session_key).ok()?;
    if a.mic.is_some() {
        m[MIC_AT].fill(0);
        let mic = authenticate_mic(&exported, negotiate, challenge, &m);
        m[MIC_AT].copy_from_slice(&mic);
    }
    Some((m, exported))
}

/// A server takes `msg` (fixed up) as the AUTHENTICATE that follows a real client's NEGOTIATE.
fn server_second(policy: u8, msg: &[u8]) {
    let negotiate = client(policy).step(None).expect("the NEGOTIATE").token;
    let mut s = server(policy);
    let challenge = s.step(Some(&negotiate)).expect("the CHALLENGE").token;
    let Some((m, exported)) = fix_up(msg, &negotiate, &challenge) else {
        assert!(s.step(Some(msg)).is_err(), "the server accepted a message without an NTLMv2 response");
        return;
    };
    let verdict = s.step(Some(&m));
    let a = parse_authenticate(&m).expect("fixed up, it parses");
    let Ok(out) = verdict else { return };
    assert!(out.complete && out.token.is_empty());
    assert!(!a.user.is_empty() && !a.user.eq_ignore_ascii_case(STRANGER), "logged on as {:?}", a.user);
    let peer = if a.domain.is_empty() { a.user.clone() } else { format!("{}\\{}", a.domain, a.user) };
    assert_eq!(s.peer_name(), Some(peer));
    let pairs = parse_av_pairs(&a.nt_response[16 + 28..]).expect("the server read these pairs");
    let find = |id: u16| pairs.iter().find(|(i, _)| *i == id).map(|(_, v)| *v);
    let mic_flag = find(AV_FLAGS).and_then(|v| <[u8; 4]>::try_from(v).ok()).map(u32::from_le_bytes).unwrap_or(0);
    assert_eq!(s.mic_present(), mic_flag & AV_FLAG_MIC != 0);
    let bound = find(AV_CHANNEL_BINDINGS).is_some_and(|v| v.iter().any(|&b| b != 0));
    if policy & 1 != 0 && bound {
        assert_eq!(find(AV_CHANNEL_BINDINGS), Some(&channel_bindings_hash(Some(BINDING))[..]), "the binding");
    }
    assert!(policy & 3 != 3 || bound, "a binding was required");
    if policy & 4 != 0 {
        let spn = s.client_spn().map(str::to_string);
        assert!(spn.as_deref().map_or(policy & 8 == 0, |n| n.eq_ignore_ascii_case(SPN)), "service {spn:?}");
    }
    // Both ends of the session, one from the server, one from the keys derived above.
    let negotiated = parse_challenge(&challenge).unwrap().flags & a.flags;
    let mut ours = Session::new(exported, negotiated, true);
    for round in 0..2u8 {
        let mut body = vec![round; 20];
        let sig = if negotiated & SEAL != 0 { ours.seal(&mut body) } else { ours.sign(&body) };
        let mut token = sig.to_vec();
        token.extend_from_slice(&body);
        let mut plain = Vec::new();
        s.unwrap(&token, &mut plain).expect("the server opens what the session made with its keys sends");
        assert_eq!(plain, vec![round; 20]);
    }
}

pub fn run(data: &[u8]) {
    let Some((&policy, msg)) = data.split_first() else { return };
    check_parsers(msg);
    server_first(policy, msg);
    client_second(policy, msg);
    server_second(policy, msg);
}
