//! NTLM ([MS-NLMP]), native, client and server: NTLMv2 only (no LM, no NTLMv1), extended
//! session security, key exchange, the MIC, sign and seal with sequence numbers, .NET's Sign
//! layout (`signature ‖ plaintext`). On RustCrypto's md4, md-5, hmac and rc4.
//!
//! The message parsers (`parse_negotiate`, `parse_challenge`, `parse_authenticate`,
//! `parse_av_pairs`) are pure functions over untrusted bytes: every field is bounds-checked.

use super::credential::{CredentialSource, Secret};
use super::mech::{flags as gss, Failure, MechError, MechResult, Mechanism, StepOut};
use hmac::{Hmac, Mac};
use md4::Md4;
use md5::{Digest, Md5};
use rc4::{consts::U16, KeyInit, Rc4, StreamCipher};

pub const SIGNATURE: &[u8; 8] = b"NTLMSSP\0";

/// NegotiateFlags.
pub mod flags {
    pub(crate) const UNICODE: u32 = 0x0000_0001;
    pub(crate) const OEM: u32 = 0x0000_0002;
    pub(crate) const REQUEST_TARGET: u32 = 0x0000_0004;
    pub(crate) const SIGN: u32 = 0x0000_0010;
    pub(crate) const SEAL: u32 = 0x0000_0020;
    pub(crate) const NTLM: u32 = 0x0000_0200;
    pub(crate) const ALWAYS_SIGN: u32 = 0x0000_8000;
    pub(crate) const TARGET_TYPE_DOMAIN: u32 = 0x0001_0000;
    pub(crate) const EXTENDED_SESSIONSECURITY: u32 = 0x0008_0000;
    pub(crate) const IDENTIFY: u32 = 0x0010_0000;
    pub(crate) const TARGET_INFO: u32 = 0x0080_0000;
    pub(crate) const VERSION: u32 = 0x0200_0000;
    pub(crate) const N128: u32 = 0x2000_0000;
    pub(crate) const KEY_EXCH: u32 = 0x4000_0000;
    pub(crate) const N56: u32 = 0x8000_0000;
}

/// AV_PAIR ids.
pub mod av {
    pub(crate) const EOL: u16 = 0;
    pub(crate) const NB_COMPUTER_NAME: u16 = 1;
    pub(crate) const NB_DOMAIN_NAME: u16 = 2;
    pub(crate) const DNS_COMPUTER_NAME: u16 = 3;
    pub(crate) const DNS_DOMAIN_NAME: u16 = 4;
    pub(crate) const FLAGS: u16 = 6;
    pub(crate) const TIMESTAMP: u16 = 7;
    pub(crate) const TARGET_NAME: u16 = 9;
    pub(crate) const CHANNEL_BINDINGS: u16 = 10;
    /// MsvAvFlags bit: the AUTHENTICATE message carries a MIC.
    pub(crate) const FLAG_MIC: u32 = 0x2;
}

/// Windows 10 version fields (major, minor, build, NTLMSSP_REVISION_W2K3).
const VERSION: [u8; 8] = [10, 0, 0x63, 0x45, 0, 0, 0, 15];
const AUTH_MIC_OFFSET: usize = 72;
const AUTH_PAYLOAD_OFFSET: usize = 88;

// ------------------------------------------------------------------------------------------
// Primitives

type HmacMd5 = Hmac<Md5>;

fn hmac_md5(key: &[u8], parts: &[&[u8]]) -> [u8; 16] {
    let mut m = <HmacMd5 as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

fn md5(parts: &[&[u8]]) -> [u8; 16] {
    let mut h = Md5::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

fn rc4(key: &[u8; 16]) -> Rc4<U16> {
    Rc4::new(key.into())
}

pub fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect()
}

fn from_utf16(b: &[u8]) -> String {
    let units: Vec<u16> = b.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
    String::from_utf16_lossy(&units)
}

/// NT hash: MD4(UTF-16LE(password)).
pub fn nt_hash(password: &str) -> [u8; 16] {
    Md4::digest(utf16(password)).into()
}

/// NTOWFv2 (ResponseKeyNT): HMAC-MD5(NT hash, UTF-16LE(UPPERCASE(user) ‖ domain)).
pub fn ntowfv2(nt_hash: &[u8; 16], user: &str, domain: &str) -> [u8; 16] {
    let mut who = user.to_uppercase();
    who.push_str(domain);
    hmac_md5(nt_hash, &[&utf16(&who)])
}

/// The NTLMv2 `temp` blob (the client challenge structure).
pub fn ntlmv2_temp(timestamp: u64, client_challenge: &[u8; 8], av_pairs: &[u8]) -> Vec<u8> {
    let mut t = vec![1, 1, 0, 0, 0, 0, 0, 0];
    t.extend_from_slice(&timestamp.to_le_bytes());
    t.extend_from_slice(client_challenge);
    t.extend_from_slice(&[0; 4]);
    t.extend_from_slice(av_pairs);
    t.extend_from_slice(&[0; 4]);
    t
}

/// NTProofStr = HMAC-MD5(ResponseKeyNT, ServerChallenge ‖ temp).
pub fn nt_proof(response_key: &[u8; 16], server_challenge: &[u8; 8], temp: &[u8]) -> [u8; 16] {
    hmac_md5(response_key, &[server_challenge, temp])
}

/// LMv2 = HMAC-MD5(ResponseKeyNT, ServerChallenge ‖ ClientChallenge) ‖ ClientChallenge.
pub fn lmv2_response(response_key: &[u8; 16], server_challenge: &[u8; 8], client_challenge: &[u8; 8]) -> Vec<u8> {
    let mut r = hmac_md5(response_key, &[server_challenge, client_challenge]).to_vec();
    r.extend_from_slice(client_challenge);
    r
}

/// SessionBaseKey (= KeyExchangeKey for NTLMv2) = HMAC-MD5(ResponseKeyNT, NTProofStr).
pub fn session_base_key(response_key: &[u8; 16], proof: &[u8; 16]) -> [u8; 16] {
    hmac_md5(response_key, &[proof])
}

fn rc4_once(key: &[u8; 16], data: &[u8; 16]) -> [u8; 16] {
    let mut out = *data;
    rc4(key).apply_keystream(&mut out);
    out
}

/// The ExportedSessionKey an acceptor derives: the client's key, sent RC4-encrypted under the
/// KeyExchangeKey, when key exchange was negotiated; otherwise the KeyExchangeKey itself. Key
/// exchange without a 16-byte key is refused where the session signs or seals.
pub fn exported_session_key(kx_key: &[u8; 16], negotiated: u32, encrypted_key: &[u8]) -> MechResult<[u8; 16]> {
    match <&[u8; 16]>::try_from(encrypted_key) {
        Ok(k) if negotiated & flags::KEY_EXCH != 0 => Ok(rc4_once(kx_key, k)),
        _ if negotiated & flags::KEY_EXCH != 0 && negotiated & (flags::SIGN | flags::SEAL) != 0 => {
            Err(MechError::token("NTLM: key exchange without a 16-byte session key"))
        }
        _ => Ok(*kx_key),
    }
}

/// The AUTHENTICATE message's MIC: HMAC-MD5(ExportedSessionKey, NEGOTIATE ‖ CHALLENGE ‖
/// AUTHENTICATE), the last with its MIC field zero.
pub fn authenticate_mic(exported: &[u8; 16], negotiate: &[u8], challenge: &[u8], authenticate: &[u8]) -> [u8; 16] {
    hmac_md5(exported, &[negotiate, challenge, authenticate])
}

const C2S_SIGN: &[u8] = b"session key to client-to-server signing key magic constant\0";
const S2C_SIGN: &[u8] = b"session key to server-to-client signing key magic constant\0";
const C2S_SEAL: &[u8] = b"session key to client-to-server sealing key magic constant\0";
const S2C_SEAL: &[u8] = b"session key to server-to-client sealing key magic constant\0";

pub fn sign_key(exported: &[u8; 16], client_to_server: bool) -> [u8; 16] {
    md5(&[exported, if client_to_server { C2S_SIGN } else { S2C_SIGN }])
}

pub fn seal_key(exported: &[u8; 16], negotiated: u32, client_to_server: bool) -> [u8; 16] {
    let key: &[u8] = if negotiated & flags::N128 != 0 {
        exported
    } else if negotiated & flags::N56 != 0 {
        &exported[..7]
    } else {
        &exported[..5]
    };
    md5(&[key, if client_to_server { C2S_SEAL } else { S2C_SEAL }])
}

/// A FILETIME: 100 ns units since 1601.
fn filetime_now() -> u64 {
    let unix = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    (unix.as_nanos() / 100) as u64 + 116_444_736_000_000_000
}

fn random<const N: usize>() -> MechResult<[u8; N]> {
    let mut b = [0u8; N];
    openssl::rand::rand_bytes(&mut b).map_err(|e| MechError::new(Failure::Internal, format!("no random bytes: {e}")))?;
    Ok(b)
}

/// Constant-time comparison of two byte strings of the same length.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The MsvAvChannelBindings value: MD5 of a gss_channel_bindings_struct with no addresses and
/// `application_data` (what follows the 32-byte SEC_CHANNEL_BINDINGS header), or 16 zero bytes
/// without a binding.
pub fn channel_bindings_hash(application_data: Option<&[u8]>) -> [u8; 16] {
    match application_data {
        None => [0; 16],
        Some(app) => md5(&[&[0u8; 16], &(app.len() as u32).to_le_bytes(), app]),
    }
}

// ------------------------------------------------------------------------------------------
// Messages

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// A (len, maxlen, offset) field at `at`: the bytes it names, bounds-checked; an empty field is
/// empty whatever its offset.
fn field(msg: &[u8], at: usize) -> MechResult<(&[u8], usize)> {
    let len = u16_at(msg, at).ok_or_else(|| MechError::token("NTLM: message too short"))? as usize;
    let off = u32_at(msg, at + 4).ok_or_else(|| MechError::token("NTLM: message too short"))? as usize;
    if len == 0 {
        return Ok((&[], usize::MAX));
    }
    let end = off.checked_add(len).ok_or_else(|| MechError::token("NTLM: field offset out of range"))?;
    let b = msg.get(off..end).ok_or_else(|| MechError::token("NTLM: field out of the message"))?;
    Ok((b, off))
}

fn header(msg: &[u8], kind: u32, min: usize) -> MechResult<()> {
    if msg.len() < min || &msg[..8] != SIGNATURE {
        return Err(MechError::token("NTLM: not an NTLMSSP message"));
    }
    if u32_at(msg, 8) != Some(kind) {
        return Err(MechError::token(format!("NTLM: expected message type {kind}")));
    }
    Ok(())
}

/// NEGOTIATE_MESSAGE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiate {
    pub flags: u32,
}

pub fn parse_negotiate(msg: &[u8]) -> MechResult<Negotiate> {
    header(msg, 1, 16)?;
    let flags = u32_at(msg, 12).unwrap_or(0);
    // The domain and workstation fields (if any) must at least lie within the message.
    if msg.len() >= 32 {
        field(msg, 16)?;
        field(msg, 24)?;
    }
    Ok(Negotiate { flags })
}

/// CHALLENGE_MESSAGE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub flags: u32,
    pub server_challenge: [u8; 8],
    pub target_name: Vec<u8>,
    pub target_info: Vec<u8>,
}

pub fn parse_challenge(msg: &[u8]) -> MechResult<Challenge> {
    header(msg, 2, 32)?;
    let (target_name, _) = field(msg, 12)?;
    let flags = u32_at(msg, 20).unwrap_or(0);
    let server_challenge: [u8; 8] = msg[24..32].try_into().expect("8 bytes");
    let target_info = if msg.len() >= 48 { field(msg, 40)?.0.to_vec() } else { Vec::new() };
    if !target_info.is_empty() {
        parse_av_pairs(&target_info)?;
    }
    Ok(Challenge { flags, server_challenge, target_name: target_name.to_vec(), target_info })
}

/// AUTHENTICATE_MESSAGE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticate {
    pub lm_response: Vec<u8>,
    pub nt_response: Vec<u8>,
    pub domain: String,
    pub user: String,
    pub workstation: String,
    pub session_key: Vec<u8>,
    pub flags: u32,
    /// The MIC, when the payload leaves room for one (offset 72).
    pub mic: Option<[u8; 16]>,
}

pub fn parse_authenticate(msg: &[u8]) -> MechResult<Authenticate> {
    header(msg, 3, 64)?;
    let mut lowest = usize::MAX;
    let mut take = |at: usize| -> MechResult<Vec<u8>> {
        let (b, off) = field(msg, at)?;
        lowest = lowest.min(off);
        Ok(b.to_vec())
    };
    let lm_response = take(12)?;
    let nt_response = take(20)?;
    let domain = take(28)?;
    let user = take(36)?;
    let workstation = take(44)?;
    let session_key = take(52)?;
    let flags = u32_at(msg, 60).unwrap_or(0);
    let unicode = flags & flags::UNICODE != 0;
    let text = |b: &[u8]| if unicode { from_utf16(b) } else { String::from_utf8_lossy(b).into_owned() };
    let mic = if lowest >= AUTH_PAYLOAD_OFFSET && msg.len() >= AUTH_PAYLOAD_OFFSET {
        Some(msg[AUTH_MIC_OFFSET..AUTH_PAYLOAD_OFFSET].try_into().expect("16 bytes"))
    } else {
        None
    };
    Ok(Authenticate {
        lm_response,
        nt_response,
        domain: text(&domain),
        user: text(&user),
        workstation: text(&workstation),
        session_key,
        flags,
        mic,
    })
}

/// AV_PAIRs up to MsvAvEOL (bytes after it are ignored); every pair bounds-checked.
pub fn parse_av_pairs(b: &[u8]) -> MechResult<Vec<(u16, &[u8])>> {
    let mut out = Vec::new();
    let mut at = 0;
    loop {
        let id = u16_at(b, at).ok_or_else(|| MechError::token("NTLM: AV pairs without MsvAvEOL"))?;
        let len = u16_at(b, at + 2).ok_or_else(|| MechError::token("NTLM: truncated AV pair"))? as usize;
        let value = b.get(at + 4..at + 4 + len).ok_or_else(|| MechError::token("NTLM: AV pair out of range"))?;
        if id == av::EOL {
            return Ok(out);
        }
        out.push((id, value));
        at += 4 + len;
    }
}

fn put_av(out: &mut Vec<u8>, id: u16, value: &[u8]) {
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&(value.len() as u16).to_le_bytes());
    out.extend_from_slice(value);
}

/// Builds a message: the fixed part `head` (fields at the given offsets still zero) and the
/// payloads, each written after the fixed part with its field filled in. A field's length is
/// 16 bits: a longer one (an AUTHENTICATE echoing a hostile CHALLENGE's 64 KiB of target
/// information) is refused rather than written with its length cut.
fn assemble(mut head: Vec<u8>, fields: &[(usize, &[u8])]) -> MechResult<Vec<u8>> {
    let mut payload = Vec::new();
    let base = head.len();
    for (at, data) in fields {
        let len = u16::try_from(data.len())
            .map_err(|_| MechError::token(format!("NTLM: a field of {} bytes does not fit a message", data.len())))?;
        let off = (base + payload.len()) as u32;
        head[*at..*at + 2].copy_from_slice(&len.to_le_bytes());
        head[*at + 2..*at + 4].copy_from_slice(&len.to_le_bytes());
        head[*at + 4..*at + 8].copy_from_slice(&off.to_le_bytes());
        payload.extend_from_slice(data);
    }
    head.extend_from_slice(&payload);
    Ok(head)
}

fn start(kind: u32, len: usize) -> Vec<u8> {
    let mut h = vec![0u8; len];
    h[..8].copy_from_slice(SIGNATURE);
    h[8..12].copy_from_slice(&kind.to_le_bytes());
    h
}

pub fn encode_negotiate(negotiate_flags: u32) -> Vec<u8> {
    let mut h = start(1, 40);
    h[12..16].copy_from_slice(&negotiate_flags.to_le_bytes());
    h[16..20].copy_from_slice(&[0, 0, 0, 0]);
    h[20..24].copy_from_slice(&40u32.to_le_bytes());
    h[28..32].copy_from_slice(&40u32.to_le_bytes());
    h[32..40].copy_from_slice(&VERSION);
    h
}

pub fn encode_challenge(c: &Challenge) -> MechResult<Vec<u8>> {
    let mut h = start(2, 56);
    h[20..24].copy_from_slice(&c.flags.to_le_bytes());
    h[24..32].copy_from_slice(&c.server_challenge);
    h[48..56].copy_from_slice(&VERSION);
    assemble(h, &[(12, &c.target_name), (40, &c.target_info)])
}

fn encode_authenticate(a: &Authenticate) -> MechResult<Vec<u8>> {
    let mut h = start(3, AUTH_PAYLOAD_OFFSET);
    h[60..64].copy_from_slice(&a.flags.to_le_bytes());
    h[64..72].copy_from_slice(&VERSION);
    let (domain, user, ws) = (utf16(&a.domain), utf16(&a.user), utf16(&a.workstation));
    assemble(
        h,
        &[(12, &a.lm_response), (20, &a.nt_response), (28, &domain), (36, &user), (44, &ws), (52, &a.session_key)],
    )
}

// ------------------------------------------------------------------------------------------
// Session security

/// The keys, RC4 handles and sequence numbers of an established context (connection mode).
pub struct Session {
    negotiated: u32,
    exported: [u8; 16],
    is_client: bool,
    send_sign: [u8; 16],
    recv_sign: [u8; 16],
    send_rc4: Rc4<U16>,
    recv_rc4: Rc4<U16>,
    send_seq: u32,
    recv_seq: u32,
}

pub(crate) const SIGNATURE_LEN: usize = 16;

impl Session {
    pub fn new(exported: [u8; 16], negotiated: u32, is_client: bool) -> Session {
        let c2s_seal = seal_key(&exported, negotiated, true);
        let s2c_seal = seal_key(&exported, negotiated, false);
        let (send_seal, recv_seal) = if is_client { (c2s_seal, s2c_seal) } else { (s2c_seal, c2s_seal) };
        Session {
            negotiated,
            exported,
            is_client,
            send_sign: sign_key(&exported, is_client),
            recv_sign: sign_key(&exported, !is_client),
            send_rc4: rc4(&send_seal),
            recv_rc4: rc4(&recv_seal),
            send_seq: 0,
            recv_seq: 0,
        }
    }

    /// [MS-SPNG] 3.3.5.1: after the mechListMIC the sealing handle starts again from its key.
    pub fn reset_send_rc4(&mut self) {
        let k = seal_key(&self.exported, self.negotiated, self.is_client);
        self.send_rc4 = rc4(&k);
    }

    pub fn reset_recv_rc4(&mut self) {
        let k = seal_key(&self.exported, self.negotiated, !self.is_client);
        self.recv_rc4 = rc4(&k);
    }

    fn mac(sign_key: &[u8; 16], handle: &mut Rc4<U16>, key_exch: bool, seq: u32, msg: &[u8]) -> [u8; 16] {
        let full = hmac_md5(sign_key, &[&seq.to_le_bytes(), msg]);
        let mut checksum: [u8; 8] = full[..8].try_into().expect("8 bytes");
        if key_exch {
            handle.apply_keystream(&mut checksum);
        }
        let mut sig = [0u8; 16];
        sig[..4].copy_from_slice(&1u32.to_le_bytes());
        sig[4..12].copy_from_slice(&checksum);
        sig[12..].copy_from_slice(&seq.to_le_bytes());
        sig
    }

    fn key_exch(&self) -> bool {
        self.negotiated & flags::KEY_EXCH != 0
    }

    /// GSS_GetMICEx: the signature of `msg` (the sending handle advances by 8 bytes).
    pub fn sign(&mut self, msg: &[u8]) -> [u8; 16] {
        let seq = self.send_seq;
        self.send_seq = self.send_seq.wrapping_add(1);
        let kx = self.key_exch();
        Session::mac(&self.send_sign, &mut self.send_rc4, kx, seq, msg)
    }

    /// GSS_VerifyMICEx: a signature of the next expected sequence number.
    pub fn verify(&mut self, msg: &[u8], sig: &[u8]) -> MechResult<()> {
        let seq = self.recv_seq;
        let kx = self.key_exch();
        let expected = Session::mac(&self.recv_sign, &mut self.recv_rc4, kx, seq, msg);
        if !same(&expected, sig) {
            return Err(MechError::new(Failure::MessageAltered, "NTLM: the message signature does not verify"));
        }
        self.recv_seq = self.recv_seq.wrapping_add(1);
        Ok(())
    }

    /// GSS_WrapEx: seals `data` in place and returns its signature.
    pub fn seal(&mut self, data: &mut [u8]) -> [u8; 16] {
        let seq = self.send_seq;
        self.send_seq = self.send_seq.wrapping_add(1);
        let full = hmac_md5(&self.send_sign, &[&seq.to_le_bytes(), data]);
        self.send_rc4.apply_keystream(data);
        let mut checksum: [u8; 8] = full[..8].try_into().expect("8 bytes");
        if self.key_exch() {
            self.send_rc4.apply_keystream(&mut checksum);
        }
        let mut sig = [0u8; 16];
        sig[..4].copy_from_slice(&1u32.to_le_bytes());
        sig[4..12].copy_from_slice(&checksum);
        sig[12..].copy_from_slice(&seq.to_le_bytes());
        sig
    }

    /// GSS_UnwrapEx: unseals `data` in place and checks its signature.
    pub fn unseal(&mut self, data: &mut [u8], sig: &[u8]) -> MechResult<()> {
        self.recv_rc4.apply_keystream(data);
        self.verify(data, sig)
    }
}

/// The Mechanism methods both sides share: they work on the established `Session`.
macro_rules! session_methods {
    () => {
        fn wrap(&mut self, data: &[u8], encrypt: bool, out: &mut Vec<u8>) -> MechResult<()> {
            wrap_with(self.session.as_mut(), data, encrypt, out)
        }

        fn unwrap(&mut self, token: &[u8], out: &mut Vec<u8>) -> MechResult<bool> {
            unwrap_with(self.session.as_mut(), token, out)
        }

        fn get_mic(&mut self, data: &[u8]) -> MechResult<Vec<u8>> {
            Ok(established(self.session.as_mut())?.sign(data).to_vec())
        }

        fn verify_mic(&mut self, data: &[u8], mic: &[u8]) -> MechResult<()> {
            established(self.session.as_mut())?.verify(data, mic)
        }

        fn flags(&self) -> u32 {
            self.session.as_ref().map_or(0, |s| gss_flags(s.negotiated))
        }

        fn package(&self) -> &'static str {
            "NTLM"
        }

        fn reset_sealing(&mut self, outgoing: bool) {
            if let Some(s) = self.session.as_mut() {
                if outgoing {
                    s.reset_send_rc4()
                } else {
                    s.reset_recv_rc4()
                }
            }
        }
    };
}

fn established(s: Option<&mut Session>) -> MechResult<&mut Session> {
    s.ok_or_else(|| MechError::new(Failure::Internal, "NTLM: the context is not complete"))
}

/// A session established by a client or server context.
fn wrap_with(session: Option<&mut Session>, data: &[u8], encrypt: bool, out: &mut Vec<u8>) -> MechResult<()> {
    let s = established(session)?;
    let at = out.len();
    out.extend_from_slice(&[0; SIGNATURE_LEN]);
    out.extend_from_slice(data);
    let sig = if encrypt { s.seal(&mut out[at + SIGNATURE_LEN..]) } else { s.sign(data) };
    out[at..at + SIGNATURE_LEN].copy_from_slice(&sig);
    Ok(())
}

fn unwrap_with(session: Option<&mut Session>, token: &[u8], out: &mut Vec<u8>) -> MechResult<bool> {
    let s = established(session)?;
    if token.len() < SIGNATURE_LEN {
        return Err(MechError::new(Failure::MessageAltered, "NTLM: a message shorter than its signature"));
    }
    let (sig, body) = token.split_at(SIGNATURE_LEN);
    let at = out.len();
    out.extend_from_slice(body);
    let sealed = s.negotiated & flags::SEAL != 0;
    let r = if sealed { s.unseal(&mut out[at..], sig) } else { s.verify(&out[at..], sig) };
    if r.is_err() {
        out.truncate(at);
    }
    r.map(|()| sealed)
}

/// The GSS flags an NTLM context reports: IDENTIFY always (as .NET's shim sets it for NTLM),
/// never MUTUAL or DELEG.
fn gss_flags(negotiated: u32) -> u32 {
    let mut f = gss::IDENTIFY;
    if negotiated & flags::SEAL != 0 {
        f |= gss::CONF | gss::INTEG;
    }
    if negotiated & flags::SIGN != 0 {
        f |= gss::INTEG | gss::REPLAY | gss::SEQUENCE;
    }
    f
}

// ------------------------------------------------------------------------------------------
// Client

/// What the client asks for.
#[derive(Clone, Default)]
pub struct ClientOptions {
    pub user: String,
    pub domain: String,
    pub nt_hash: [u8; 16],
    pub workstation: String,
    /// The SPN, sent as MsvAvTargetName ("" for none).
    pub target: String,
    /// The channel binding's application data (after the SEC_CHANNEL_BINDINGS header).
    pub channel_binding: Option<Vec<u8>>,
    pub integrity: bool,
    pub confidentiality: bool,
    pub identify: bool,
}

/// Test hook: fixed random values (client challenge, exported session key) and time.
#[derive(Clone, Copy)]
pub struct Fixed {
    pub client_challenge: [u8; 8],
    pub session_key: [u8; 16],
    pub time: u64,
}

pub struct NtlmClient {
    opts: ClientOptions,
    negotiate: Vec<u8>,
    state: u8,
    session: Option<Session>,
    pub fixed: Option<Fixed>,
}

impl NtlmClient {
    pub fn new(opts: ClientOptions) -> NtlmClient {
        NtlmClient { opts, negotiate: Vec::new(), state: 0, session: None, fixed: None }
    }

    fn requested_flags(&self) -> u32 {
        use flags::*;
        let mut f = UNICODE | OEM | REQUEST_TARGET | NTLM | ALWAYS_SIGN | EXTENDED_SESSIONSECURITY | VERSION | N128 | N56;
        if self.opts.integrity || self.opts.confidentiality {
            f |= SIGN | KEY_EXCH;
        }
        if self.opts.confidentiality {
            f |= SEAL;
        }
        if self.opts.identify {
            f |= IDENTIFY;
        }
        f
    }

    pub fn session_mut(&mut self) -> Option<&mut Session> {
        self.session.as_mut()
    }

    fn authenticate(&mut self, challenge_msg: &[u8]) -> MechResult<Vec<u8>> {
        let ch = parse_challenge(challenge_msg)?;
        if ch.flags & flags::EXTENDED_SESSIONSECURITY == 0 {
            return Err(MechError::new(Failure::Unsupported, "NTLM: the server does not offer extended session security"));
        }
        if ch.flags & flags::UNICODE == 0 {
            return Err(MechError::new(Failure::Unsupported, "NTLM: the server does not offer Unicode"));
        }
        if ch.target_info.is_empty() {
            return Err(MechError::new(Failure::Unsupported, "NTLM: the server sent no target information (NTLMv2)"));
        }
        let pairs = parse_av_pairs(&ch.target_info)?;
        let server_time = pairs
            .iter()
            .find(|(id, v)| *id == av::TIMESTAMP && v.len() == 8)
            .map(|(_, v)| u64::from_le_bytes((*v).try_into().expect("8 bytes")));
        let fixed = self.fixed;
        let time = server_time.or(fixed.map(|f| f.time)).unwrap_or_else(filetime_now);
        let client_challenge = match fixed {
            Some(f) => f.client_challenge,
            None => random::<8>()?,
        };
        // The server's pairs, then ours: MsvAvFlags (MIC present), the SPN, the binding.
        let mut flags_value = av::FLAG_MIC;
        let mut info = Vec::new();
        for (id, v) in &pairs {
            match *id {
                av::FLAGS => {
                    if let Ok(b) = <[u8; 4]>::try_from(*v) {
                        flags_value |= u32::from_le_bytes(b);
                    }
                }
                av::TARGET_NAME | av::CHANNEL_BINDINGS => {}
                _ => put_av(&mut info, *id, v),
            }
        }
        put_av(&mut info, av::FLAGS, &flags_value.to_le_bytes());
        if !self.opts.target.is_empty() {
            put_av(&mut info, av::TARGET_NAME, &utf16(&self.opts.target));
        }
        put_av(&mut info, av::CHANNEL_BINDINGS, &channel_bindings_hash(self.opts.channel_binding.as_deref()));
        put_av(&mut info, av::EOL, &[]);

        let key = ntowfv2(&self.opts.nt_hash, &self.opts.user, &self.opts.domain);
        let temp = ntlmv2_temp(time, &client_challenge, &info);
        let proof = nt_proof(&key, &ch.server_challenge, &temp);
        let mut nt_response = proof.to_vec();
        nt_response.extend_from_slice(&temp);
        let lm_response =
            if server_time.is_some() { vec![0; 24] } else { lmv2_response(&key, &ch.server_challenge, &client_challenge) };
        let kx_key = session_base_key(&key, &proof);
        let negotiated = ch.flags & self.requested_flags() | (ch.flags & flags::TARGET_INFO);
        let (exported, session_key) = if negotiated & flags::KEY_EXCH != 0 {
            let exported = match fixed {
                Some(f) => f.session_key,
                None => random::<16>()?,
            };
            (exported, rc4_once(&kx_key, &exported).to_vec())
        } else {
            (kx_key, Vec::new())
        };
        let auth = Authenticate {
            lm_response,
            nt_response,
            domain: self.opts.domain.clone(),
            user: self.opts.user.clone(),
            workstation: self.opts.workstation.clone(),
            session_key,
            flags: negotiated,
            mic: None,
        };
        let mut msg = encode_authenticate(&auth)?;
        let mic = authenticate_mic(&exported, &self.negotiate, challenge_msg, &msg);
        msg[AUTH_MIC_OFFSET..AUTH_PAYLOAD_OFFSET].copy_from_slice(&mic);
        self.session = Some(Session::new(exported, negotiated, true));
        Ok(msg)
    }
}

impl Mechanism for NtlmClient {
    fn step(&mut self, input: Option<&[u8]>) -> MechResult<StepOut> {
        match (self.state, input) {
            (0, _) => {
                self.negotiate = encode_negotiate(self.requested_flags());
                self.state = 1;
                Ok(StepOut { token: self.negotiate.clone(), complete: false })
            }
            (1, Some(challenge)) => {
                let token = self.authenticate(challenge)?;
                self.state = 2;
                Ok(StepOut { token, complete: true })
            }
            _ => Err(MechError::token("NTLM: unexpected token")),
        }
    }

    session_methods!();

    fn peer_name(&self) -> Option<String> {
        None
    }

    fn wants_mech_list_mic(&self) -> bool {
        true
    }
}

// ------------------------------------------------------------------------------------------
// Server

/// What the server checks beyond the password (its extended protection policy).
#[derive(Clone, Default)]
pub struct ServerOptions {
    /// NetBIOS / DNS names the CHALLENGE carries.
    pub computer: String,
    pub domain: String,
    /// The expected channel binding's application data; `require_binding` refuses a client
    /// without one.
    pub channel_binding: Option<Vec<u8>>,
    pub require_binding: bool,
    /// Accepted SPNs (MsvAvTargetName); empty: any. `require_spn` refuses a client without one.
    pub service_names: Vec<String>,
    pub require_spn: bool,
}

pub struct NtlmServer {
    source: CredentialSource,
    opts: ServerOptions,
    negotiate: Vec<u8>,
    challenge: Vec<u8>,
    challenge_flags: u32,
    server_challenge: [u8; 8],
    state: u8,
    session: Option<Session>,
    peer: Option<String>,
    client_spn: Option<String>,
    mic_checked: bool,
    pub fixed_challenge: Option<[u8; 8]>,
}

impl NtlmServer {
    pub fn new(source: CredentialSource, opts: ServerOptions) -> NtlmServer {
        NtlmServer {
            source,
            opts,
            negotiate: Vec::new(),
            challenge: Vec::new(),
            challenge_flags: 0,
            server_challenge: [0; 8],
            state: 0,
            session: None,
            peer: None,
            client_spn: None,
            mic_checked: false,
            fixed_challenge: None,
        }
    }

    pub fn session_mut(&mut self) -> Option<&mut Session> {
        self.session.as_mut()
    }

    /// Whether the client's AUTHENTICATE carried a MIC (SPNEGO then needs a mechListMIC).
    pub fn mic_present(&self) -> bool {
        self.mic_checked
    }

    /// The SPN the client named (MsvAvTargetName).
    pub fn client_spn(&self) -> Option<&str> {
        self.client_spn.as_deref()
    }

    fn challenge(&mut self, negotiate: &[u8]) -> MechResult<Vec<u8>> {
        use flags::*;
        let n = parse_negotiate(negotiate)?;
        if n.flags & UNICODE == 0 {
            return Err(MechError::new(Failure::Unsupported, "NTLM: the client does not offer Unicode"));
        }
        if n.flags & EXTENDED_SESSIONSECURITY == 0 {
            return Err(MechError::new(
                Failure::Unsupported,
                "NTLM: the client does not offer extended session security (NTLMv1 is refused)",
            ));
        }
        let echoed = n.flags & (REQUEST_TARGET | SIGN | SEAL | ALWAYS_SIGN | IDENTIFY | N128 | N56 | KEY_EXCH | VERSION);
        let f = UNICODE | NTLM | EXTENDED_SESSIONSECURITY | TARGET_INFO | TARGET_TYPE_DOMAIN | echoed;
        let sc = match self.fixed_challenge {
            Some(c) => c,
            None => random::<8>().map_err(|e| MechError::new(Failure::Internal, e.reason))?,
        };
        let mut info = Vec::new();
        put_av(&mut info, av::NB_DOMAIN_NAME, &utf16(&self.opts.domain.to_uppercase()));
        put_av(&mut info, av::NB_COMPUTER_NAME, &utf16(&self.opts.computer.to_uppercase()));
        put_av(&mut info, av::DNS_DOMAIN_NAME, &utf16(&self.opts.domain.to_lowercase()));
        put_av(&mut info, av::DNS_COMPUTER_NAME, &utf16(&self.opts.computer.to_lowercase()));
        put_av(&mut info, av::TIMESTAMP, &filetime_now().to_le_bytes());
        put_av(&mut info, av::EOL, &[]);
        let c = Challenge {
            flags: f,
            server_challenge: sc,
            target_name: utf16(&self.opts.domain.to_uppercase()),
            target_info: info,
        };
        self.negotiate = negotiate.to_vec();
        self.challenge = encode_challenge(&c)?;
        self.challenge_flags = f;
        self.server_challenge = sc;
        Ok(self.challenge.clone())
    }

    fn accept(&mut self, msg: &[u8]) -> MechResult<()> {
        let a = parse_authenticate(msg)?;
        let denied = |why: &str| MechError::new(Failure::LogonDenied, format!("NTLM: {why}"));
        if a.user.is_empty() {
            return Err(denied("anonymous logons are refused"));
        }
        if a.nt_response.len() < 16 + 28 {
            return Err(denied("only NTLMv2 responses are accepted"));
        }
        let secret: Secret = (self.source)(&a.user, &a.domain).ok_or_else(|| denied("unknown user"))?;
        let key = ntowfv2(&secret.nt_hash(), &a.user, &a.domain);
        let (proof, temp) = a.nt_response.split_at(16);
        if !same(&nt_proof(&key, &self.server_challenge, temp), proof) {
            return Err(denied("wrong password"));
        }
        let pairs = parse_av_pairs(&temp[28..])?;
        let find = |id: u16| pairs.iter().find(|(i, _)| *i == id).map(|(_, v)| *v);
        let proof: [u8; 16] = proof.try_into().expect("16 bytes");
        let kx_key = session_base_key(&key, &proof);
        let negotiated = self.challenge_flags & a.flags;
        let exported = exported_session_key(&kx_key, negotiated, &a.session_key)?;
        let mic_flag = find(av::FLAGS).and_then(|v| <[u8; 4]>::try_from(v).ok()).map(u32::from_le_bytes).unwrap_or(0)
            & av::FLAG_MIC
            != 0;
        if mic_flag {
            let mic = a.mic.ok_or_else(|| MechError::token("NTLM: MsvAvFlags announces a MIC the message lacks"))?;
            let mut zeroed = msg.to_vec();
            zeroed[AUTH_MIC_OFFSET..AUTH_PAYLOAD_OFFSET].fill(0);
            let expected = authenticate_mic(&exported, &self.negotiate, &self.challenge, &zeroed);
            if !same(&expected, &mic) {
                return Err(MechError::new(Failure::MessageAltered, "NTLM: the AUTHENTICATE message's MIC does not verify"));
            }
            self.mic_checked = true;
        }
        // Extended protection.
        let got = find(av::CHANNEL_BINDINGS).filter(|v| v.iter().any(|&b| b != 0));
        if let Some(app) = &self.opts.channel_binding {
            match got {
                Some(v) if same(v, &channel_bindings_hash(Some(app))) => {}
                Some(_) => return Err(MechError::new(Failure::BadBinding, "NTLM: the channel binding does not match")),
                None if self.opts.require_binding => {
                    return Err(MechError::new(Failure::BadBinding, "NTLM: the client sent no channel binding"))
                }
                None => {}
            }
        }
        self.client_spn = find(av::TARGET_NAME).map(from_utf16).filter(|s| !s.is_empty());
        if !self.opts.service_names.is_empty() {
            match &self.client_spn {
                Some(spn) if self.opts.service_names.iter().any(|s| s.eq_ignore_ascii_case(spn)) => {}
                Some(spn) => {
                    return Err(MechError::new(Failure::TargetUnknown, format!("NTLM: the service name '{spn}' is not accepted")))
                }
                None if self.opts.require_spn => {
                    return Err(MechError::new(Failure::TargetUnknown, "NTLM: the client named no service"))
                }
                None => {}
            }
        }
        self.peer = Some(if a.domain.is_empty() { a.user.clone() } else { format!("{}\\{}", a.domain, a.user) });
        self.session = Some(Session::new(exported, negotiated, false));
        Ok(())
    }
}

impl Mechanism for NtlmServer {
    fn step(&mut self, input: Option<&[u8]>) -> MechResult<StepOut> {
        match (self.state, input) {
            (0, Some(negotiate)) => {
                let token = self.challenge(negotiate)?;
                self.state = 1;
                Ok(StepOut { token, complete: false })
            }
            (1, Some(auth)) => {
                self.accept(auth)?;
                self.state = 2;
                Ok(StepOut { token: Vec::new(), complete: true })
            }
            _ => Err(MechError::token("NTLM: unexpected token")),
        }
    }

    session_methods!();

    fn peer_name(&self) -> Option<String> {
        self.peer.clone()
    }

    fn wants_mech_list_mic(&self) -> bool {
        self.mic_checked
    }
}

#[cfg(test)]
mod tests;
