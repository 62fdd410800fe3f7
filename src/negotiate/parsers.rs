//! Every parser of untrusted NegotiateStream input, in one place for the fuzz targets and the seed
//! corpus (`fuzz/seeds/negotiate/`: [MS-NNS] frames captured between real .NET 8 peers, NTLM at None,
//! Sign and EncryptAndSign and Kerberos at EncryptAndSign, as the tap saw them).
//!
//! The parsers themselves (each `pub`, each a pure function of its bytes):
//! `nns::parse_handshake_frame`, `nns::parse_data_header`, `nns::parse_data_frame`,
//! `nns::decode_error_code`, `ntlm::parse_negotiate`, `ntlm::parse_challenge`,
//! `ntlm::parse_authenticate`, `ntlm::parse_av_pairs`, `spnego::parse_neg_token`,
//! `credential::parse_user_file`, `stream::binding_data`.

use super::{credential, nns, ntlm, spnego, stream};

/// Runs every parser on `bytes` and on what they find inside (a frame's payload, a SPNEGO token's
/// mechanism token, an NTLM message's AV pairs), as a fuzz target does: whatever the input, this
/// returns (an error is an answer; a panic or an over-read is a bug).
pub fn exercise(bytes: &[u8]) {
    if let Some((_, payload, _)) = nns::parse_handshake_frame(bytes) {
        token(payload);
        let _ = nns::decode_error_code(payload);
    }
    if let Ok(Some((payload, _))) = nns::parse_data_frame(bytes) {
        token(payload);
    }
    let _ = nns::parse_data_header(bytes);
    token(bytes);
    let _ = credential::parse_user_file(&String::from_utf8_lossy(bytes));
    let _ = stream::binding_data(bytes);
}

/// A security token: SPNEGO (and the mechanism token inside), or raw NTLM.
fn token(t: &[u8]) {
    match spnego::parse_neg_token(t) {
        Ok(spnego::NegToken::Init(init)) => {
            if let Some(inner) = init.mech_token {
                ntlm_message(&inner);
            }
        }
        Ok(spnego::NegToken::Resp(resp)) => {
            if let Some(inner) = resp.response_token {
                ntlm_message(&inner);
            }
        }
        Err(_) => {}
    }
    ntlm_message(t);
}

fn ntlm_message(t: &[u8]) {
    let _ = ntlm::parse_negotiate(t);
    if let Ok(c) = ntlm::parse_challenge(t) {
        let _ = ntlm::parse_av_pairs(&c.target_info);
    }
    if let Ok(a) = ntlm::parse_authenticate(t) {
        if let Some(pairs) = a.nt_response.get(16 + 28..) {
            let _ = ntlm::parse_av_pairs(pairs);
        }
    }
    let _ = ntlm::parse_av_pairs(t);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn seeds() -> Vec<(String, Vec<u8>)> {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/negotiate/nns");
        let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
            .expect("the seed corpus is in fuzz/seeds/negotiate/nns")
            .map(|e| {
                let p = e.unwrap().path();
                (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap())
            })
            .collect();
        out.sort();
        assert!(out.len() >= 20, "the seed corpus is complete");
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

    #[test]
    fn every_truncation_and_bit_flip_of_every_seed_is_answered() {
        for (_, bytes) in seeds() {
            for n in 0..bytes.len().min(600) {
                exercise(&bytes[..n]);
            }
            // Bit flips at spread-out positions, every bit of the first 64 bytes.
            let mut positions: Vec<usize> = (0..bytes.len().min(64)).collect();
            positions.extend((64..bytes.len()).step_by(37));
            for at in positions {
                for bit in 0..8 {
                    let mut m = bytes.clone();
                    m[at] ^= 1 << bit;
                    exercise(&m);
                }
            }
        }
    }
}
