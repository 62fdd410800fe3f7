//! SPNEGO (RFC 4178, [MS-SPNG]), native, over the `der` crate: NegTokenInit / NegTokenResp,
//! the mechListMIC (with the NTLM RC4 restart of [MS-SPNG] 3.3.5.1), Kerberos preferred and
//! NTLM as the fallback; an acceptor also takes raw NTLMSSP tokens (what a .NET client sends at
//! ProtectionLevel None) and raw Kerberos ones.
//!
//! `parse_neg_token` is a pure function over untrusted bytes (a fuzz target).

use super::mech::{Failure, MechError, MechResult, Mechanism, StepOut};
use super::ntlm::SIGNATURE as NTLMSSP;
use der::asn1::{AnyRef, ObjectIdentifier};
use der::{Decode, Encode, Reader, SliceReader, Tag, TagNumber, Tagged};

pub(crate) const OID_SPNEGO: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.2");
pub(crate) const OID_KRB5: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113554.1.2.2");
pub(crate) const OID_MS_KRB5: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.48018.1.2.2");
pub(crate) const OID_NTLM: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.2.2.10");

/// negState values.
pub(crate) mod state {
    pub(crate) const ACCEPT_COMPLETED: u8 = 0;
    pub(crate) const ACCEPT_INCOMPLETE: u8 = 1;
    pub(crate) const REJECT: u8 = 2;
    pub(crate) const REQUEST_MIC: u8 = 3;
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct NegTokenInit {
    pub mech_types: Vec<ObjectIdentifier>,
    /// The DER of the MechTypeList as sent: what the mechListMIC covers.
    pub mech_types_der: Vec<u8>,
    pub mech_token: Option<Vec<u8>>,
    pub mech_list_mic: Option<Vec<u8>>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct NegTokenResp {
    pub neg_state: Option<u8>,
    pub supported_mech: Option<ObjectIdentifier>,
    pub response_token: Option<Vec<u8>>,
    pub mech_list_mic: Option<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NegToken {
    Init(NegTokenInit),
    Resp(NegTokenResp),
}

fn bad(what: &str) -> MechError {
    MechError::token(format!("SPNEGO: {what}"))
}

fn ctx_tag(n: u8) -> Tag {
    Tag::ContextSpecific { constructed: true, number: TagNumber::new(n) }
}

/// The TLVs that make up `value`, in order.
fn children(value: &[u8]) -> MechResult<Vec<AnyRef<'_>>> {
    let mut r = SliceReader::new(value).map_err(|_| bad("token too long"))?;
    let mut out = Vec::new();
    while !r.is_finished() {
        out.push(AnyRef::decode(&mut r).map_err(|e| bad(&format!("bad DER ({e})")))?);
    }
    Ok(out)
}

/// The one TLV inside an explicit tag.
fn inner(value: &[u8]) -> MechResult<AnyRef<'_>> {
    let mut c = children(value)?;
    if c.len() != 1 {
        return Err(bad("an explicit tag must hold one value"));
    }
    Ok(c.remove(0))
}

fn octets(a: AnyRef<'_>) -> MechResult<Vec<u8>> {
    let a = inner(a.value())?;
    if a.tag() != Tag::OctetString {
        return Err(bad("expected an OCTET STRING"));
    }
    Ok(a.value().to_vec())
}

fn oid(a: AnyRef<'_>) -> MechResult<ObjectIdentifier> {
    if a.tag() != Tag::ObjectIdentifier {
        return Err(bad("expected an OBJECT IDENTIFIER"));
    }
    ObjectIdentifier::from_bytes(a.value()).map_err(|_| bad("malformed OBJECT IDENTIFIER"))
}

fn sequence(a: AnyRef<'_>) -> MechResult<Vec<AnyRef<'_>>> {
    if a.tag() != Tag::Sequence {
        return Err(bad("expected a SEQUENCE"));
    }
    children(a.value())
}

fn parse_init(body: &[u8]) -> MechResult<NegTokenInit> {
    let mut t = NegTokenInit::default();
    for f in sequence(inner(body)?)? {
        match f.tag() {
            x if x == ctx_tag(0) => {
                let list = inner(f.value())?;
                t.mech_types_der = list.to_der().map_err(|_| bad("mechTypes"))?;
                t.mech_types = sequence(list)?.into_iter().map(oid).collect::<MechResult<_>>()?;
            }
            x if x == ctx_tag(1) => {}
            x if x == ctx_tag(2) => t.mech_token = Some(octets(f)?),
            // [3] is the mechListMIC (RFC 4178) or negHints ([MS-SPNG] NegTokenInit2).
            x if x == ctx_tag(3) => {
                if inner(f.value())?.tag() == Tag::OctetString {
                    t.mech_list_mic = Some(octets(f)?);
                }
            }
            x if x == ctx_tag(4) => t.mech_list_mic = Some(octets(f)?),
            _ => return Err(bad("unknown NegTokenInit field")),
        }
    }
    if t.mech_types.is_empty() {
        return Err(bad("NegTokenInit without mechanisms"));
    }
    Ok(t)
}

fn parse_resp(body: &[u8]) -> MechResult<NegTokenResp> {
    let mut t = NegTokenResp::default();
    for f in sequence(inner(body)?)? {
        match f.tag() {
            x if x == ctx_tag(0) => {
                let e = inner(f.value())?;
                if e.tag() != Tag::Enumerated || e.value().len() != 1 {
                    return Err(bad("negState"));
                }
                t.neg_state = Some(e.value()[0]);
            }
            x if x == ctx_tag(1) => t.supported_mech = Some(oid(inner(f.value())?)?),
            x if x == ctx_tag(2) => t.response_token = Some(octets(f)?),
            x if x == ctx_tag(3) => t.mech_list_mic = Some(octets(f)?),
            _ => return Err(bad("unknown NegTokenResp field")),
        }
    }
    Ok(t)
}

/// A SPNEGO token: the GSS InitialContextToken around a NegTokenInit, or a bare NegTokenInit or
/// NegTokenResp.
pub fn parse_neg_token(bytes: &[u8]) -> MechResult<NegToken> {
    let top = AnyRef::from_der(bytes).map_err(|e| bad(&format!("bad DER ({e})")))?;
    match top.tag() {
        Tag::Application { constructed: true, number } if number.value() == 0 => {
            let parts = children(top.value())?;
            if parts.len() != 2 || oid(parts[0])? != OID_SPNEGO {
                return Err(bad("not a SPNEGO InitialContextToken"));
            }
            if parts[1].tag() != ctx_tag(0) {
                return Err(bad("the InitialContextToken does not hold a NegTokenInit"));
            }
            Ok(NegToken::Init(parse_init(parts[1].value())?))
        }
        x if x == ctx_tag(0) => Ok(NegToken::Init(parse_init(top.value())?)),
        x if x == ctx_tag(1) => Ok(NegToken::Resp(parse_resp(top.value())?)),
        _ => Err(bad("not a SPNEGO token")),
    }
}

fn tlv(tag: Tag, value: &[u8]) -> Vec<u8> {
    AnyRef::new(tag, value).and_then(|a| a.to_der()).expect("a token under 256 MiB encodes")
}

fn explicit(n: u8, value: &[u8]) -> Vec<u8> {
    tlv(ctx_tag(n), value)
}

pub fn encode_mech_types(mechs: &[ObjectIdentifier]) -> Vec<u8> {
    let body: Vec<u8> = mechs.iter().flat_map(|m| tlv(Tag::ObjectIdentifier, m.as_bytes())).collect();
    tlv(Tag::Sequence, &body)
}

/// The InitialContextToken holding a NegTokenInit.
pub fn encode_init(mech_types_der: &[u8], mech_token: Option<&[u8]>) -> Vec<u8> {
    let mut seq = explicit(0, mech_types_der);
    if let Some(t) = mech_token {
        seq.extend(explicit(2, &tlv(Tag::OctetString, t)));
    }
    let init = explicit(0, &tlv(Tag::Sequence, &seq));
    let mut body = tlv(Tag::ObjectIdentifier, OID_SPNEGO.as_bytes());
    body.extend(init);
    tlv(Tag::Application { constructed: true, number: TagNumber::N0 }, &body)
}

pub fn encode_resp(t: &NegTokenResp) -> Vec<u8> {
    let mut seq = Vec::new();
    if let Some(s) = t.neg_state {
        seq.extend(explicit(0, &tlv(Tag::Enumerated, &[s])));
    }
    if let Some(m) = &t.supported_mech {
        seq.extend(explicit(1, &tlv(Tag::ObjectIdentifier, m.as_bytes())));
    }
    if let Some(r) = &t.response_token {
        seq.extend(explicit(2, &tlv(Tag::OctetString, r)));
    }
    if let Some(m) = &t.mech_list_mic {
        seq.extend(explicit(3, &tlv(Tag::OctetString, m)));
    }
    explicit(1, &tlv(Tag::Sequence, &seq))
}

fn is_krb5(m: &ObjectIdentifier) -> bool {
    *m == OID_KRB5 || *m == OID_MS_KRB5
}

/// A GSS InitialContextToken of the Kerberos mechanism (a raw AP-REQ).
fn is_raw_kerberos(token: &[u8]) -> bool {
    let Ok(top) = AnyRef::from_der(token) else { return false };
    if !matches!(top.tag(), Tag::Application { constructed: true, number } if number.value() == 0) {
        return false;
    }
    let Ok(mut r) = SliceReader::new(top.value()) else { return false };
    AnyRef::decode(&mut r).ok().and_then(|a| oid(a).ok()).is_some_and(|m| is_krb5(&m))
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Which {
    Kerberos,
    Ntlm,
}

/// The mechanisms under a SPNEGO context and the one in use.
struct Mechs {
    kerberos: Option<Box<dyn Mechanism>>,
    ntlm: Option<Box<dyn Mechanism>>,
    chosen: Option<Which>,
}

impl Mechs {
    fn chosen(&mut self) -> MechResult<&mut Box<dyn Mechanism>> {
        let m = match self.chosen {
            Some(Which::Kerberos) => self.kerberos.as_mut(),
            Some(Which::Ntlm) => self.ntlm.as_mut(),
            None => None,
        };
        m.ok_or_else(|| MechError::new(Failure::Internal, "SPNEGO: no mechanism chosen"))
    }

    fn chosen_ref(&self) -> Option<&dyn Mechanism> {
        match self.chosen {
            Some(Which::Kerberos) => self.kerberos.as_deref(),
            Some(Which::Ntlm) => self.ntlm.as_deref(),
            None => None,
        }
    }
}

/// Runs the mechListMIC exchange once the mechanism is complete: verifies the peer's MIC (when
/// it sent one) and makes ours (when ours is due), restarting NTLM's sealing handles after each.
fn exchange_mic(
    mech: &mut Box<dyn Mechanism>,
    mech_types_der: &[u8],
    peer_mic: Option<&[u8]>,
    send_ours: bool,
) -> MechResult<Option<Vec<u8>>> {
    if let Some(mic) = peer_mic {
        mech.verify_mic(mech_types_der, mic)
            .map_err(|e| MechError::new(Failure::MessageAltered, format!("SPNEGO: the mechListMIC does not verify ({})", e.reason)))?;
        mech.reset_sealing(false);
    }
    if !send_ours {
        return Ok(None);
    }
    let mic = mech.get_mic(mech_types_der)?;
    mech.reset_sealing(true);
    Ok(Some(mic))
}

macro_rules! delegate_established {
    () => {
        fn wrap(&mut self, data: &[u8], encrypt: bool, out: &mut Vec<u8>) -> MechResult<()> {
            self.mechs.chosen()?.wrap(data, encrypt, out)
        }

        fn unwrap(&mut self, token: &[u8], out: &mut Vec<u8>) -> MechResult<bool> {
            self.mechs.chosen()?.unwrap(token, out)
        }

        fn get_mic(&mut self, data: &[u8]) -> MechResult<Vec<u8>> {
            self.mechs.chosen()?.get_mic(data)
        }

        fn verify_mic(&mut self, data: &[u8], mic: &[u8]) -> MechResult<()> {
            self.mechs.chosen()?.verify_mic(data, mic)
        }

        fn flags(&self) -> u32 {
            self.mechs.chosen_ref().map_or(0, |m| m.flags())
        }

        fn package(&self) -> &'static str {
            self.mechs.chosen_ref().map_or("Negotiate", |m| m.package())
        }

        fn peer_name(&self) -> Option<String> {
            self.mechs.chosen_ref().and_then(|m| m.peer_name())
        }
    };
}

// ------------------------------------------------------------------------------------------
// Initiator

pub struct SpnegoClient {
    mechs: Mechs,
    mech_types_der: Vec<u8>,
    started: bool,
    answered: bool,
    mech_complete: bool,
    sent_mic: bool,
    peer_mic_ok: bool,
}

impl SpnegoClient {
    /// Kerberos first when there is one; NTLM when the credential allows it.
    pub fn new(kerberos: Option<Box<dyn Mechanism>>, ntlm: Option<Box<dyn Mechanism>>) -> SpnegoClient {
        SpnegoClient {
            mechs: Mechs { kerberos, ntlm, chosen: None },
            mech_types_der: Vec::new(),
            started: false,
            answered: false,
            mech_complete: false,
            sent_mic: false,
            peer_mic_ok: false,
        }
    }

    fn first(&mut self) -> MechResult<StepOut> {
        self.started = true;
        let mut mechs = Vec::new();
        let mut token = None;
        let mut kerberos_error = None;
        if let Some(k) = self.mechs.kerberos.as_mut() {
            match k.step(None) {
                Ok(out) => {
                    self.mech_complete = out.complete;
                    token = Some(out.token);
                    self.mechs.chosen = Some(Which::Kerberos);
                    mechs.push(OID_KRB5);
                }
                // No ticket, no KDC, an unknown service: NTLM is the fallback.
                Err(e) => {
                    self.mechs.kerberos = None;
                    kerberos_error = Some(e);
                }
            }
        }
        if let Some(ntlm) = self.mechs.ntlm.as_mut() {
            mechs.push(OID_NTLM);
            if token.is_none() {
                token = Some(ntlm.step(None)?.token);
                self.mechs.chosen = Some(Which::Ntlm);
            }
        }
        let Some(token) = token else {
            return Err(kerberos_error.unwrap_or_else(|| MechError::new(Failure::NoCredentials, "SPNEGO: no mechanism")));
        };
        self.mech_types_der = encode_mech_types(&mechs);
        Ok(StepOut { token: encode_init(&self.mech_types_der, Some(&token)), complete: false })
    }
}

impl Mechanism for SpnegoClient {
    fn step(&mut self, input: Option<&[u8]>) -> MechResult<StepOut> {
        if !self.started {
            return self.first();
        }
        let input = input.ok_or_else(|| bad("the server sent no token"))?;
        let NegToken::Resp(resp) = parse_neg_token(input)? else { return Err(bad("expected a NegTokenResp")) };
        if resp.neg_state == Some(state::REJECT) {
            return Err(MechError::new(Failure::LogonDenied, "SPNEGO: the server rejected the authentication"));
        }
        let mut out_token = None;
        if !self.answered {
            self.answered = true;
            let supported = resp.supported_mech.ok_or_else(|| bad("the first reply names no mechanism"))?;
            let wanted = if is_krb5(&supported) {
                Which::Kerberos
            } else if supported == OID_NTLM {
                Which::Ntlm
            } else {
                return Err(MechError::new(Failure::Unsupported, format!("SPNEGO: the server chose {supported}")));
            };
            if Some(wanted) != self.mechs.chosen {
                // The server took NTLM over our optimistic Kerberos token: NTLM starts now.
                if wanted != Which::Ntlm || self.mechs.ntlm.is_none() {
                    return Err(bad("the server chose a mechanism that was not offered"));
                }
                self.mechs.chosen = Some(Which::Ntlm);
                self.mech_complete = false;
                let t = self.mechs.chosen()?.step(None)?.token;
                return Ok(StepOut { token: encode_resp(&NegTokenResp { response_token: Some(t), ..Default::default() }), complete: false });
            }
        }
        if let Some(t) = &resp.response_token {
            if self.mech_complete {
                return Err(bad("a token after the mechanism completed"));
            }
            let out = self.mechs.chosen()?.step(Some(t))?;
            self.mech_complete = out.complete;
            if !out.token.is_empty() {
                out_token = Some(out.token);
            }
        } else if !self.mech_complete && resp.neg_state != Some(state::ACCEPT_COMPLETED) {
            return Err(bad("the server sent no mechanism token"));
        }
        if !self.mech_complete {
            if resp.neg_state == Some(state::ACCEPT_COMPLETED) {
                return Err(bad("the server completed before the mechanism did"));
            }
            let token = encode_resp(&NegTokenResp { response_token: out_token, ..Default::default() });
            return Ok(StepOut { token, complete: false });
        }
        let mech = self.mechs.chosen()?;
        let send = !self.sent_mic
            && (mech.wants_mech_list_mic() || resp.mech_list_mic.is_some() || resp.neg_state == Some(state::REQUEST_MIC));
        let peer_mic = resp.mech_list_mic.as_deref();
        if self.sent_mic && peer_mic.is_none() && resp.neg_state == Some(state::ACCEPT_COMPLETED) {
            return Err(MechError::new(Failure::MessageAltered, "SPNEGO: the server sent no mechListMIC"));
        }
        let mic = exchange_mic(mech, &self.mech_types_der, peer_mic, send)?;
        if peer_mic.is_some() {
            self.peer_mic_ok = true;
        }
        if mic.is_some() {
            self.sent_mic = true;
        }
        let complete = resp.neg_state == Some(state::ACCEPT_COMPLETED) && (!self.sent_mic || self.peer_mic_ok);
        let token = if out_token.is_some() || mic.is_some() {
            encode_resp(&NegTokenResp { response_token: out_token, mech_list_mic: mic, ..Default::default() })
        } else {
            Vec::new()
        };
        Ok(StepOut { token, complete })
    }

    fn blocking(&self, _input: Option<&[u8]>) -> bool {
        self.mechs.kerberos.is_some() && self.mechs.chosen != Some(Which::Ntlm)
    }

    delegate_established!();
}

// ------------------------------------------------------------------------------------------
// Acceptor

pub struct SpnegoServer {
    mechs: Mechs,
    /// The first token was raw NTLMSSP or raw Kerberos: no SPNEGO around later tokens either.
    raw: bool,
    started: bool,
    mech_types_der: Vec<u8>,
    chosen_oid: Option<ObjectIdentifier>,
    chosen_first: bool,
    mech_complete: bool,
}

impl SpnegoServer {
    pub fn new(kerberos: Option<Box<dyn Mechanism>>, ntlm: Box<dyn Mechanism>) -> SpnegoServer {
        SpnegoServer {
            mechs: Mechs { kerberos, ntlm: Some(ntlm), chosen: None },
            raw: false,
            started: false,
            mech_types_der: Vec::new(),
            chosen_oid: None,
            chosen_first: false,
            mech_complete: false,
        }
    }

    /// The mechanism an initial token would choose (for `blocking` and the first step).
    fn choose(&self, init: &NegTokenInit) -> Option<(usize, ObjectIdentifier, Which)> {
        init.mech_types.iter().enumerate().find_map(|(i, m)| {
            if is_krb5(m) && self.mechs.kerberos.is_some() {
                Some((i, *m, Which::Kerberos))
            } else if *m == OID_NTLM {
                Some((i, *m, Which::Ntlm))
            } else {
                None
            }
        })
    }

    fn first(&mut self, input: &[u8]) -> MechResult<StepOut> {
        self.started = true;
        if input.starts_with(NTLMSSP) {
            self.raw = true;
            self.mechs.chosen = Some(Which::Ntlm);
            return self.mechs.chosen()?.step(Some(input));
        }
        if is_raw_kerberos(input) && self.mechs.kerberos.is_some() {
            self.raw = true;
            self.mechs.chosen = Some(Which::Kerberos);
            return self.mechs.chosen()?.step(Some(input));
        }
        let NegToken::Init(init) = parse_neg_token(input)? else { return Err(bad("expected a NegTokenInit")) };
        let (mut index, mut oid, mut which) =
            self.choose(&init).ok_or_else(|| MechError::new(Failure::Unsupported, "SPNEGO: no common mechanism"))?;
        self.mech_types_der = init.mech_types_der.clone();
        let mut out = None;
        if index == 0 {
            if let Some(t) = &init.mech_token {
                self.mechs.chosen = Some(which);
                match self.mechs.chosen()?.step(Some(t)) {
                    Ok(o) => out = Some(o),
                    Err(e) if which == Which::Kerberos => {
                        // Kerberos failed (no keytab, a ticket for another service): NTLM, if
                        // offered, takes over.
                        match init.mech_types.iter().position(|m| *m == OID_NTLM) {
                            Some(i) => {
                                self.mechs.kerberos = None;
                                (index, oid, which) = (i, OID_NTLM, Which::Ntlm);
                            }
                            None => return Err(e),
                        }
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        self.mechs.chosen = Some(which);
        self.chosen_oid = Some(oid);
        self.chosen_first = index == 0 && out.is_some();
        match out {
            Some(o) => self.reply(o, init.mech_list_mic.as_deref(), true),
            None => {
                // The client starts the chosen mechanism in its next token.
                let resp = NegTokenResp {
                    neg_state: Some(state::ACCEPT_INCOMPLETE),
                    supported_mech: Some(oid),
                    ..Default::default()
                };
                Ok(StepOut { token: encode_resp(&resp), complete: false })
            }
        }
    }

    /// Our answer to a step of the chosen mechanism.
    fn reply(&mut self, out: StepOut, peer_mic: Option<&[u8]>, first: bool) -> MechResult<StepOut> {
        self.mech_complete = out.complete;
        let supported_mech = if first { self.chosen_oid } else { None };
        let token = (!out.token.is_empty()).then_some(out.token);
        if !out.complete {
            let resp = NegTokenResp { neg_state: Some(state::ACCEPT_INCOMPLETE), supported_mech, response_token: token, mech_list_mic: None };
            return Ok(StepOut { token: encode_resp(&resp), complete: false });
        }
        let chosen_first = self.chosen_first;
        let mech = self.mechs.chosen()?;
        let required = !chosen_first || mech.wants_mech_list_mic();
        if required && peer_mic.is_none() {
            return Err(MechError::new(Failure::MessageAltered, "SPNEGO: the client sent no mechListMIC"));
        }
        let mic = exchange_mic(mech, &self.mech_types_der, peer_mic, peer_mic.is_some())?;
        let resp = NegTokenResp {
            neg_state: Some(state::ACCEPT_COMPLETED),
            supported_mech,
            response_token: token,
            mech_list_mic: mic,
        };
        Ok(StepOut { token: encode_resp(&resp), complete: true })
    }
}

impl Mechanism for SpnegoServer {
    fn step(&mut self, input: Option<&[u8]>) -> MechResult<StepOut> {
        let input = input.ok_or_else(|| bad("the client sent no token"))?;
        if !self.started {
            return self.first(input);
        }
        if self.raw {
            return self.mechs.chosen()?.step(Some(input));
        }
        let NegToken::Resp(resp) = parse_neg_token(input)? else { return Err(bad("expected a NegTokenResp")) };
        if self.mech_complete {
            return Err(bad("a token after the mechanism completed"));
        }
        let t = resp.response_token.as_deref().ok_or_else(|| bad("the client sent no mechanism token"))?;
        let out = self.mechs.chosen()?.step(Some(t))?;
        // The first token of a mechanism the client started late gets supportedMech no more.
        self.reply(out, resp.mech_list_mic.as_deref(), false)
    }

    fn blocking(&self, input: Option<&[u8]>) -> bool {
        if self.mechs.kerberos.is_none() {
            return false;
        }
        match self.mechs.chosen {
            Some(w) => w == Which::Kerberos,
            None => input.is_some_and(|t| {
                is_raw_kerberos(t)
                    || matches!(parse_neg_token(t), Ok(NegToken::Init(i)) if self.choose(&i).is_some_and(|c| c.2 == Which::Kerberos))
            }),
        }
    }

    delegate_established!();
}

#[cfg(test)]
mod tests;
