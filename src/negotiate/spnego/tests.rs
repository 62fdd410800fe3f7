use super::*;
use crate::negotiate::credential::Secret;
use crate::negotiate::mech::flags as gss;
use crate::negotiate::ntlm::{nt_hash, ClientOptions, NtlmClient, NtlmServer, ServerOptions};
use std::sync::Arc;

fn ntlm_client(password: &str) -> Box<dyn Mechanism> {
    Box::new(NtlmClient::new(ClientOptions {
        user: "alice".into(),
        domain: "TESTDOM".into(),
        nt_hash: nt_hash(password),
        integrity: true,
        confidentiality: true,
        identify: true,
        ..Default::default()
    }))
}

fn ntlm_server() -> Box<dyn Mechanism> {
    let users = Arc::new(|u: &str, _: &str| (u == "alice").then(|| Secret::Password("Passw0rd!".into())));
    Box::new(NtlmServer::new(users, ServerOptions { computer: "srv".into(), domain: "TESTDOM".into(), ..Default::default() }))
}

/// A Kerberos stand-in: one token each way, or a failure.
struct FakeKrb {
    fail: bool,
    done: bool,
}

impl Mechanism for FakeKrb {
    fn step(&mut self, input: Option<&[u8]>) -> MechResult<StepOut> {
        if self.fail {
            return Err(MechError::new(Failure::NoCredentials, "no ticket"));
        }
        self.done = true;
        // Mutual authentication: the initiator completes on the AP-REP.
        let token = match input {
            None => b"AP-REQ".to_vec(),
            Some(b"AP-REQ") => b"AP-REP".to_vec(),
            Some(_) => Vec::new(),
        };
        Ok(StepOut { token, complete: input.is_some() })
    }
    fn wrap(&mut self, d: &[u8], _: bool, out: &mut Vec<u8>) -> MechResult<()> {
        out.extend_from_slice(d);
        Ok(())
    }
    fn unwrap(&mut self, t: &[u8], out: &mut Vec<u8>) -> MechResult<bool> {
        out.extend_from_slice(t);
        Ok(false)
    }
    fn get_mic(&mut self, _: &[u8]) -> MechResult<Vec<u8>> {
        Ok(b"mic".to_vec())
    }
    fn verify_mic(&mut self, _: &[u8], m: &[u8]) -> MechResult<()> {
        if m == b"mic" {
            Ok(())
        } else {
            Err(MechError::new(Failure::MessageAltered, "bad mic"))
        }
    }
    fn flags(&self) -> u32 {
        gss::MUTUAL | gss::CONF | gss::INTEG
    }
    fn package(&self) -> &'static str {
        "Kerberos"
    }
    fn peer_name(&self) -> Option<String> {
        Some("alice@APMNET.TEST".into())
    }
}

/// Runs the exchange; the tokens the client sent (to check frame kinds) and the verdict.
fn run(c: &mut dyn Mechanism, s: &mut dyn Mechanism) -> MechResult<usize> {
    let mut token = c.step(None)?;
    let mut rounds = 0;
    loop {
        rounds += 1;
        let reply = s.step(Some(&token.token))?;
        if reply.complete && token.complete {
            // Raw NTLM: the server's HandshakeDone carries nothing.
            assert!(reply.token.is_empty());
            return Ok(rounds);
        }
        let next = c.step(Some(&reply.token))?;
        if reply.complete {
            assert!(next.complete, "the client completes on the server's last token");
            assert!(next.token.is_empty());
            return Ok(rounds);
        }
        token = next;
        assert!(rounds < 5);
    }
}

#[test]
fn ntlm_through_spnego_with_the_mech_list_mic_then_data_both_ways() {
    let mut c = SpnegoClient::new(None, Some(ntlm_client("Passw0rd!")));
    let mut s = SpnegoServer::new(None, ntlm_server());
    // NegTokenInit(NEGOTIATE), NegTokenResp(CHALLENGE), NegTokenResp(AUTHENTICATE + MIC),
    // accept-completed + MIC.
    assert_eq!(run(&mut c, &mut s).unwrap(), 2);
    assert_eq!((c.package(), s.package()), ("NTLM", "NTLM"));
    assert_eq!(s.peer_name().as_deref(), Some("TESTDOM\\alice"));
    // The RC4 handles restarted after the MICs on both sides: data flows.
    for _ in 0..2 {
        let mut wire = Vec::new();
        c.wrap(b"hello", true, &mut wire).unwrap();
        // The first data message carries sequence number 1 (the MIC took 0).
        let mut plain = Vec::new();
        s.unwrap(&wire, &mut plain).unwrap();
        assert_eq!(plain, b"hello");
        let mut back = Vec::new();
        s.wrap(b"world", true, &mut back).unwrap();
        let mut got = Vec::new();
        c.unwrap(&back, &mut got).unwrap();
        assert_eq!(got, b"world");
    }
}

#[test]
fn the_first_data_message_after_the_mic_has_sequence_number_1() {
    let mut c = SpnegoClient::new(None, Some(ntlm_client("Passw0rd!")));
    let mut s = SpnegoServer::new(None, ntlm_server());
    run(&mut c, &mut s).unwrap();
    let mut wire = Vec::new();
    c.wrap(b"x", false, &mut wire).unwrap();
    assert_eq!(&wire[12..16], &1u32.to_le_bytes());
}

#[test]
fn a_raw_ntlm_client_is_accepted() {
    let mut c = ntlm_client("Passw0rd!");
    let mut s = SpnegoServer::new(None, ntlm_server());
    run(c.as_mut(), &mut s).unwrap();
    let mut wire = Vec::new();
    c.wrap(b"raw", true, &mut wire).unwrap();
    let mut plain = Vec::new();
    s.unwrap(&wire, &mut plain).unwrap();
    assert_eq!(plain, b"raw");
}

#[test]
fn a_wrong_password_is_logon_denied_through_spnego() {
    let mut c = SpnegoClient::new(None, Some(ntlm_client("wrong")));
    let mut s = SpnegoServer::new(None, ntlm_server());
    assert_eq!(run(&mut c, &mut s).unwrap_err().failure, Failure::LogonDenied);
}

#[test]
fn kerberos_is_preferred_and_ntlm_is_the_fallback() {
    // Both sides have Kerberos: one round trip, no MIC.
    let mut c = SpnegoClient::new(Some(Box::new(FakeKrb { fail: false, done: false })), Some(ntlm_client("Passw0rd!")));
    let mut s = SpnegoServer::new(Some(Box::new(FakeKrb { fail: false, done: false })), ntlm_server());
    assert!(c.blocking(None));
    let init = c.step(None).unwrap();
    assert!(s.blocking(Some(&init.token)));
    let NegToken::Init(i) = parse_neg_token(&init.token).unwrap() else { panic!() };
    assert_eq!(i.mech_types, vec![OID_KRB5, OID_NTLM]);
    let reply = s.step(Some(&init.token)).unwrap();
    assert!(reply.complete);
    let last = c.step(Some(&reply.token)).unwrap();
    assert!(last.complete && last.token.is_empty());
    assert_eq!((c.package(), s.package()), ("Kerberos", "Kerberos"));
    assert_eq!(s.peer_name().as_deref(), Some("alice@APMNET.TEST"));
    // The client has no ticket: NTLM alone is offered.
    let mut c = SpnegoClient::new(Some(Box::new(FakeKrb { fail: true, done: false })), Some(ntlm_client("Passw0rd!")));
    let mut s = SpnegoServer::new(Some(Box::new(FakeKrb { fail: false, done: false })), ntlm_server());
    run(&mut c, &mut s).unwrap();
    assert_eq!(s.package(), "NTLM");
    // The server cannot accept Kerberos: it picks NTLM and the client switches.
    let mut c = SpnegoClient::new(Some(Box::new(FakeKrb { fail: false, done: false })), Some(ntlm_client("Passw0rd!")));
    let mut s = SpnegoServer::new(Some(Box::new(FakeKrb { fail: true, done: false })), ntlm_server());
    assert_eq!(run(&mut c, &mut s).unwrap(), 3);
    assert_eq!((c.package(), s.package()), ("NTLM", "NTLM"));
    // The server has no Kerberos at all.
    let mut c = SpnegoClient::new(Some(Box::new(FakeKrb { fail: false, done: false })), Some(ntlm_client("Passw0rd!")));
    let mut s = SpnegoServer::new(None, ntlm_server());
    run(&mut c, &mut s).unwrap();
    assert_eq!(s.package(), "NTLM");
}

#[test]
fn tokens_round_trip_and_hostile_der_is_refused() {
    let der = encode_mech_types(&[OID_KRB5, OID_NTLM]);
    let init = encode_init(&der, Some(b"tok"));
    assert_eq!(init[0], 0x60);
    let NegToken::Init(i) = parse_neg_token(&init).unwrap() else { panic!() };
    assert_eq!(i.mech_types_der, der);
    assert_eq!(i.mech_token.as_deref(), Some(&b"tok"[..]));
    let r = NegTokenResp {
        neg_state: Some(state::ACCEPT_COMPLETED),
        supported_mech: Some(OID_NTLM),
        response_token: None,
        mech_list_mic: Some(vec![1; 16]),
    };
    assert_eq!(parse_neg_token(&encode_resp(&r)).unwrap(), NegToken::Resp(r.clone()));
    // Every truncation and a few corruptions fail cleanly.
    let resp = encode_resp(&r);
    for n in 0..init.len() {
        assert!(parse_neg_token(&init[..n]).is_err());
    }
    for n in 0..resp.len() {
        assert!(parse_neg_token(&resp[..n]).is_err());
    }
    assert!(parse_neg_token(&[0x60, 0x84, 0xff, 0xff, 0xff, 0xff]).is_err());
    assert!(parse_neg_token(&[0xa1, 0x03, 0x30, 0x01, 0xa0]).is_err());
    assert!(parse_neg_token(b"NTLMSSP\0").is_err());
    // A NegTokenInit without mechanisms.
    assert!(parse_neg_token(&encode_init(&encode_mech_types(&[]), None)).is_err());
}

#[test]
fn a_tampered_mech_list_mic_is_refused() {
    let mut c = SpnegoClient::new(None, Some(ntlm_client("Passw0rd!")));
    let mut s = SpnegoServer::new(None, ntlm_server());
    let t1 = c.step(None).unwrap();
    let t2 = s.step(Some(&t1.token)).unwrap();
    let t3 = c.step(Some(&t2.token)).unwrap();
    let NegToken::Resp(mut r) = parse_neg_token(&t3.token).unwrap() else { panic!() };
    r.mech_list_mic.as_mut().unwrap()[5] ^= 1;
    assert_eq!(s.step(Some(&encode_resp(&r))).unwrap_err().failure, Failure::MessageAltered);
    // And a MIC left out entirely.
    let mut c = SpnegoClient::new(None, Some(ntlm_client("Passw0rd!")));
    let mut s = SpnegoServer::new(None, ntlm_server());
    let t1 = c.step(None).unwrap();
    let t2 = s.step(Some(&t1.token)).unwrap();
    let t3 = c.step(Some(&t2.token)).unwrap();
    let NegToken::Resp(mut r) = parse_neg_token(&t3.token).unwrap() else { panic!() };
    r.mech_list_mic = None;
    assert_eq!(s.step(Some(&encode_resp(&r))).unwrap_err().failure, Failure::MessageAltered);
}
