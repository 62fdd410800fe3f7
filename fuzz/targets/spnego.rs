//! spnego: SPNEGO's DER (src/negotiate/spnego.rs): NegTokenInit (in its InitialContextToken or
//! bare) and NegTokenResp, the mechanism token inside, and the stateful ends that read them.
//!
//! The first byte picks where the rest goes (bit 0: to an acceptor after a real client's
//! NegTokenInit, else as the acceptor's first token); it always goes through the parser as well
//! and to an initiator as the acceptor's answer. A parsed token must re-encode to one that
//! parses the same, and its mechTypes DER (what the mechListMIC covers) must be what the
//! mechanism list encodes to; an acceptor's and an initiator's answers must be tokens we parse.

use apmnet::negotiate::credential::{CredentialSource, Secret};
use apmnet::negotiate::mech::Mechanism;
use apmnet::negotiate::ntlm::{self, ClientOptions, NtlmClient, NtlmServer, ServerOptions};
use apmnet::negotiate::spnego::*;
use std::sync::Arc;

fn check_parser(token: &[u8]) {
    match parse_neg_token(token) {
        Ok(NegToken::Init(init)) => {
            assert!(!init.mech_types.is_empty());
            assert_eq!(encode_mech_types(&init.mech_types), init.mech_types_der, "the mechTypes DER");
            let again = encode_init(&init.mech_types_der, init.mech_token.as_deref());
            let expected = NegTokenInit { mech_list_mic: None, ..init.clone() };
            assert_eq!(parse_neg_token(&again), Ok(NegToken::Init(expected)), "a NegTokenInit re-encoded");
            if let Some(t) = &init.mech_token {
                mech_token(t);
            }
        }
        Ok(NegToken::Resp(resp)) => {
            assert_eq!(parse_neg_token(&encode_resp(&resp)).as_ref(), Ok(&NegToken::Resp(resp.clone())));
            if let Some(t) = &resp.response_token {
                mech_token(t);
            }
        }
        Err(_) => {}
    }
}

/// The token inside: NTLM's parsers must answer (Kerberos tokens go to GSSAPI, not parsed here).
fn mech_token(t: &[u8]) {
    let _ = ntlm::parse_negotiate(t);
    let _ = ntlm::parse_challenge(t);
    let _ = ntlm::parse_authenticate(t);
}

fn ntlm_client() -> Box<dyn Mechanism> {
    let mut c = NtlmClient::new(ClientOptions {
        user: "alice".into(),
        domain: "TESTDOM".into(),
        nt_hash: ntlm::nt_hash("Passw0rd!"),
        target: "host/localhost".into(),
        integrity: true,
        confidentiality: true,
        ..ClientOptions::default()
    });
    c.fixed = Some(ntlm::Fixed { client_challenge: [0xaa; 8], session_key: [0x55; 16], time: 0 });
    Box::new(c)
}

fn acceptor() -> SpnegoServer {
    let users: CredentialSource = Arc::new(|_: &str, _: &str| Some(Secret::Password("Passw0rd!".into())));
    let mut ntlm = NtlmServer::new(users, ServerOptions { computer: "srv".into(), domain: "TESTDOM".into(), ..Default::default() });
    ntlm.fixed_challenge = Some([1, 2, 3, 4, 5, 6, 7, 8]);
    // No Kerberos: GSSAPI is not a parser of ours.
    SpnegoServer::new(None, Box::new(ntlm))
}

/// An acceptor's answer: a NegTokenResp, or raw NTLM when the client spoke raw NTLM.
fn check_answer(out: &[u8], raw: bool) {
    if raw {
        assert!(out.is_empty() || ntlm::parse_challenge(out).is_ok(), "a raw NTLM answer");
    } else {
        assert!(matches!(parse_neg_token(out), Ok(NegToken::Resp(_))), "the acceptor's answer is a NegTokenResp");
    }
}

pub fn run(data: &[u8]) {
    let Some((&mode, token)) = data.split_first() else { return };
    check_parser(token);

    let mut server = acceptor();
    let raw = if mode & 1 != 0 {
        let init = SpnegoClient::new(None, Some(ntlm_client())).step(None).expect("the NegTokenInit").token;
        let first = server.step(Some(&init)).expect("the acceptor takes NTLM");
        check_answer(&first.token, false);
        false
    } else {
        token.starts_with(ntlm::SIGNATURE)
    };
    if let Ok(out) = server.step(Some(token)) {
        check_answer(&out.token, raw);
    }

    // An initiator that sent its NegTokenInit takes the token as the acceptor's answer.
    let mut client = SpnegoClient::new(None, Some(ntlm_client()));
    client.step(None).expect("the NegTokenInit");
    if let Ok(out) = client.step(Some(token)) {
        assert!(matches!(parse_neg_token(token), Ok(NegToken::Resp(_))), "the initiator took a token that is no NegTokenResp");
        assert!(out.token.is_empty() || matches!(parse_neg_token(&out.token), Ok(NegToken::Resp(_))));
    }
}
