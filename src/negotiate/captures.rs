//! The [MS-NNS] frames captured between real .NET 8 peers (NTLM at None, Sign and EncryptAndSign,
//! Kerberos at EncryptAndSign, as the tap saw them), which are also the `nns` fuzz target's seeds
//! (`fuzz/corpus/nns/`; gen_corpus.py takes the ntlm and spnego seeds out of them): each must parse,
//! and say what the reference says .NET sends. The parsers of untrusted NegotiateStream input are
//! fuzzed by the targets of fuzz/targets/: `nns` (the framing), `ntlm` (the three messages and the
//! AV pairs, with the client and the server stepping on them) and `spnego` (the DER and both ends).

use super::{nns, ntlm, spnego};
use std::path::PathBuf;

/// The captured frames (the other seeds of the corpus are made by gen_corpus.py).
fn seeds() -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/nns");
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .expect("the captures are in fuzz/corpus/nns")
        .map(|e| {
            let p = e.unwrap().path();
            (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap())
        })
        .filter(|(name, _)| name.starts_with("dotnet-"))
        .collect();
    out.sort();
    assert!(out.len() >= 20, "the captures are all there");
    out
}

/// The NTLM message inside a captured handshake frame (raw at None, else in SPNEGO).
fn ntlm_inside(frame: &[u8]) -> Option<Vec<u8>> {
    let (_, payload, _) = nns::parse_handshake_frame(frame)?;
    if payload.starts_with(ntlm::SIGNATURE) {
        return Some(payload.to_vec());
    }
    match spnego::parse_neg_token(payload).ok()? {
        spnego::NegToken::Init(i) => i.mech_token,
        spnego::NegToken::Resp(r) => r.response_token,
    }
}

#[test]
fn the_captured_dotnet_frames_parse() {
    for (name, bytes) in seeds() {
        if name.contains("-hs") {
            let (id, _, n) = nns::parse_handshake_frame(&bytes).unwrap_or_else(|| panic!("{name}: a whole frame"));
            assert_eq!(n, bytes.len(), "{name}");
            assert!(name.contains(&format!("-hs{id:02x}")), "{name}: id {id:#x}");
        } else {
            let (_, n) = nns::parse_data_frame(&bytes).unwrap().unwrap_or_else(|| panic!("{name}: a whole frame"));
            assert_eq!(n, bytes.len(), "{name}");
        }
    }
}

#[test]
fn the_dotnet_client_asks_what_the_reference_says() {
    // [reference/negotiate.md 1.4]: the .NET/gss-ntlmssp client's NEGOTIATE flags by level.
    for (level, flags) in [("None", 0xA218_8207u32), ("Sign", 0xE218_8217), ("EncryptAndSign", 0xE218_8237)] {
        let (_, frame) = seeds().into_iter().find(|(n, _)| n.starts_with(&format!("dotnet-ntlm-{level}-01"))).unwrap();
        let negotiate = ntlm_inside(&frame).unwrap();
        assert_eq!(ntlm::parse_negotiate(&negotiate).unwrap().flags, flags, "{level}");
    }
    // The CHALLENGE of .NET's server (gss-ntlmssp) and the AUTHENTICATE of its client.
    let all = seeds();
    let find = |prefix: &str| all.iter().find(|(n, _)| n.starts_with(prefix)).map(|(_, b)| b.clone()).unwrap();
    let challenge = ntlm::parse_challenge(&ntlm_inside(&find("dotnet-ntlm-EncryptAndSign-02")).unwrap()).unwrap();
    assert!(!ntlm::parse_av_pairs(&challenge.target_info).unwrap().is_empty());
    let auth = ntlm::parse_authenticate(&ntlm_inside(&find("dotnet-ntlm-EncryptAndSign-03")).unwrap()).unwrap();
    assert_eq!((auth.user.as_str(), auth.domain.as_str()), ("alice", "TESTDOM"));
    assert!(auth.mic.is_some() && auth.session_key.len() == 16);
    // Kerberos: a NegTokenInit preferring krb5, answered by an accept-completed NegTokenResp.
    let first = find("dotnet-kerberos-EncryptAndSign-01");
    let (_, init, _) = nns::parse_handshake_frame(&first).unwrap();
    let spnego::NegToken::Init(init) = spnego::parse_neg_token(init).unwrap() else { panic!("a NegTokenInit") };
    assert!(init.mech_types[0] == spnego::OID_KRB5 || init.mech_types[0] == spnego::OID_MS_KRB5);
    let second = find("dotnet-kerberos-EncryptAndSign-02");
    let (_, resp, _) = nns::parse_handshake_frame(&second).unwrap();
    let spnego::NegToken::Resp(resp) = spnego::parse_neg_token(resp).unwrap() else { panic!("a NegTokenResp") };
    assert_eq!(resp.neg_state, Some(spnego::state::ACCEPT_COMPLETED));
}
