//! NegotiateAuthentication against itself, the blobs carried here: NTLM and Negotiate (NTLM
//! under SPNEGO; no GSSAPI is asked since there is no realm), wrap/unwrap and MICs, a tampered
//! blob, a wrong password, a binding mismatch, and calls before authentication.

use super::*;
use crate::negotiate::credential::Secret;

fn users() -> CredentialSource {
    Arc::new(|user: &str, _: &str| (user == "alice").then(|| Secret::Password("Passw0rd!".into())))
}

fn pair(package: &str, password: &str, level: i32) -> (NegotiateAuthentication, NegotiateAuthentication) {
    let mut c = ClientOptions::new(package);
    c.credential = Credential::new("alice", password, "TESTDOM");
    c.target_name = "host/localhost".into();
    c.required_protection_level = level;
    let mut s = ServerOptions::new(package);
    s.users = Some(users());
    (NegotiateAuthentication::client(&c), NegotiateAuthentication::server(&s))
}

/// Carries the blobs until both sides stop; the last statuses. `tamper` may alter the client's
/// blob of each leg.
fn exchange(c: &mut NegotiateAuthentication, s: &mut NegotiateAuthentication, tamper: impl Fn(usize, &mut Vec<u8>)) -> (i32, i32) {
    let (mut cs, mut ss) = (status::CONTINUE_NEEDED, status::CONTINUE_NEEDED);
    let mut to_client: Vec<u8> = Vec::new();
    for leg in 0..8 {
        if cs == status::CONTINUE_NEEDED {
            let (blob, st) = c.get_outgoing_blob(&to_client).unwrap();
            cs = st;
            if st > status::CONTINUE_NEEDED {
                break;
            }
            let Some(mut blob) = blob else { break };
            tamper(leg, &mut blob);
            let (back, st) = s.get_outgoing_blob(&blob).unwrap();
            ss = st;
            to_client = back.unwrap_or_default();
            if st > status::CONTINUE_NEEDED || (cs == status::COMPLETED && to_client.is_empty()) {
                break;
            }
        } else {
            break;
        }
    }
    (cs, ss)
}

#[test]
fn ntlm_and_negotiate_complete_and_protect_both_ways() {
    std::env::set_var("KRB5_CONFIG", "/nonexistent/krb5.conf");
    for package in [package::NTLM, package::NEGOTIATE] {
        let (mut c, mut s) = pair(package, "Passw0rd!", protection_level::ENCRYPT_AND_SIGN);
        assert_eq!(exchange(&mut c, &mut s, |_, _| {}), (status::COMPLETED, status::COMPLETED), "{package}");
        assert!(c.is_authenticated() && s.is_authenticated() && c.is_encrypted() && s.is_signed());
        assert!(!c.is_mutually_authenticated());
        assert_eq!((c.package(), s.package()), (package::NTLM, package::NTLM));
        assert_eq!(s.remote_identity().unwrap(), ("TESTDOM\\alice".into(), "NTLM".into()));
        assert_eq!(c.remote_identity().unwrap().0, "host/localhost");
        let mut wire = Vec::new();
        assert_eq!(c.wrap(b"ping", true, &mut wire).unwrap(), (status::COMPLETED, true));
        let mut plain = Vec::new();
        assert_eq!(s.unwrap(&wire, &mut plain).unwrap(), (status::COMPLETED, true));
        assert_eq!(plain, b"ping");
        // The same token again is a replay.
        assert_eq!(s.unwrap(&wire, &mut Vec::new()).unwrap().0, status::MESSAGE_ALTERED);
        let mic = s.compute_integrity_check(b"data").unwrap();
        assert!(c.verify_integrity_check(b"data", &mic).unwrap());
        let mic = s.compute_integrity_check(b"data").unwrap();
        assert!(!c.verify_integrity_check(b"datA", &mic).unwrap());
    }
}

#[test]
fn failures_are_status_codes() {
    std::env::set_var("KRB5_CONFIG", "/nonexistent/krb5.conf");
    let (mut c, mut s) = pair(package::NTLM, "wrong", protection_level::SIGN);
    assert_eq!(exchange(&mut c, &mut s, |_, _| {}).1, status::UNKNOWN_CREDENTIALS);
    assert!(!s.is_authenticated());
    // The AUTHENTICATE message's MIC (offset 72, after the version) altered.
    let (mut c, mut s) = pair(package::NTLM, "Passw0rd!", protection_level::SIGN);
    let (_, ss) = exchange(&mut c, &mut s, |leg, b| {
        if leg == 1 {
            b[72] ^= 1;
        }
    });
    assert_eq!(ss, status::MESSAGE_ALTERED);
    let (mut c, _) = pair(package::NTLM, "Passw0rd!", protection_level::SIGN);
    assert_eq!(c.get_outgoing_blob(b"").unwrap().1, status::CONTINUE_NEEDED);
    assert_eq!(c.get_outgoing_blob(b"garbage").unwrap().1, status::INVALID_TOKEN);
    let mut nothing = Vec::new();
    assert_eq!(c.wrap(b"x", false, &mut nothing).unwrap_err().status, crate::error::code::INVALID_OPERATION);
    let mut unknown = ClientOptions::new("Digest");
    unknown.credential = Credential::new("alice", "x", "");
    assert_eq!(NegotiateAuthentication::client(&unknown).get_outgoing_blob(b"").unwrap().1, status::UNSUPPORTED);
    assert_eq!(NegotiateAuthentication::client(&ClientOptions::new(package::NTLM)).get_outgoing_blob(b"").unwrap().1, status::UNSUPPORTED);
}

#[test]
fn a_binding_mismatch_is_bad_binding_and_a_match_completes() {
    let ours = crate::channel_binding::wrap(crate::channel_binding::ENDPOINT_PREFIX, &[7; 32]);
    let theirs = crate::channel_binding::wrap(crate::channel_binding::ENDPOINT_PREFIX, &[8; 32]);
    for (client_binding, want) in [(&ours, status::COMPLETED), (&theirs, status::BAD_BINDING)] {
        let mut c = ClientOptions::new(package::NTLM);
        c.credential = Credential::new("alice", "Passw0rd!", "TESTDOM");
        c.binding = Some(client_binding.clone());
        let mut s = ServerOptions::new(package::NTLM);
        s.users = Some(users());
        s.binding = Some(ours.clone());
        let (mut c, mut s) = (NegotiateAuthentication::client(&c), NegotiateAuthentication::server(&s));
        assert_eq!(exchange(&mut c, &mut s, |_, _| {}).1, want);
    }
}
