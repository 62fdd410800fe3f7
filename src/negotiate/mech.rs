//! The one trait every security mechanism implements (NTLM, Kerberos, SPNEGO over them), shaped
//! like .NET's NegotiateAuthentication: a step that turns the peer's token into ours, wrap and
//! unwrap, MICs, the negotiated flags, the package and the peer's name.

/// GSS-API context flags (RFC 2744 values; NTLM maps its own onto them).
pub mod flags {
    pub(crate) const DELEG: u32 = 1;
    pub(crate) const MUTUAL: u32 = 2;
    pub(crate) const REPLAY: u32 = 4;
    pub(crate) const SEQUENCE: u32 = 8;
    pub(crate) const CONF: u32 = 16;
    pub(crate) const INTEG: u32 = 32;
    pub(crate) const CHANNEL_BOUND: u32 = 2048;
    pub(crate) const IDENTIFY: u32 = 8192;
}

/// Why a mechanism failed, as SSPI status kinds (what .NET maps to exceptions and what the
/// HandshakeError frame carries).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// SEC_E_LOGON_DENIED: wrong password, unknown user.
    LogonDenied,
    /// SEC_E_INVALID_TOKEN: a malformed or unexpected token.
    InvalidToken,
    /// SEC_E_BAD_BINDINGS: the channel binding does not match.
    BadBinding,
    /// SEC_E_TARGET_UNKNOWN: the service name is not accepted.
    TargetUnknown,
    /// SEC_E_MESSAGE_ALTERED: a signature does not verify (or is out of sequence).
    MessageAltered,
    /// SEC_E_OUT_OF_SEQUENCE: a replayed, old or reordered message (GSSAPI's supplementary bits).
    OutOfSequence,
    /// SEC_E_NO_CREDENTIALS: no usable credentials.
    NoCredentials,
    /// SEC_E_UNSUPPORTED_FUNCTION: the peer asks for something we do not do.
    Unsupported,
    /// SEC_E_INTERNAL_ERROR.
    Internal,
}

impl Failure {
    /// The HRESULT a HandshakeError frame carries.
    pub fn hresult(self) -> u32 {
        match self {
            Failure::LogonDenied => 0x8009_030C,
            Failure::InvalidToken => 0x8009_0308,
            Failure::BadBinding => 0x8009_0346,
            Failure::TargetUnknown => 0x8009_0303,
            Failure::MessageAltered => 0x8009_030F,
            Failure::OutOfSequence => 0x8009_0310,
            Failure::NoCredentials => 0x8009_030E,
            Failure::Unsupported => 0x8009_0302,
            Failure::Internal => 0x8009_0304,
        }
    }
}

/// A mechanism's failure: its kind and a text for the inner error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MechError {
    pub failure: Failure,
    pub reason: String,
}

impl MechError {
    pub fn new(failure: Failure, reason: impl Into<String>) -> MechError {
        MechError { failure, reason: reason.into() }
    }
    pub fn token(reason: impl Into<String>) -> MechError {
        MechError::new(Failure::InvalidToken, reason)
    }
}

pub type MechResult<T> = std::result::Result<T, MechError>;

/// What a step produced: the token for the peer (possibly empty) and whether the context is
/// complete on this side.
#[derive(Debug)]
pub struct StepOut {
    pub token: Vec<u8>,
    pub complete: bool,
}

/// A security context in the making, then established. Not shared: one owner drives it.
pub trait Mechanism: Send {
    /// Takes the peer's token (None for an initiator's first step) and returns ours.
    fn step(&mut self, input: Option<&[u8]>) -> MechResult<StepOut>;
    /// Whether `step(input)` may block (it calls GSSAPI): it then runs on the blocking pool.
    fn blocking(&self, input: Option<&[u8]>) -> bool {
        let _ = input;
        false
    }
    /// Whether SPNEGO must exchange a mechListMIC over this mechanism (NTLM with its MIC).
    fn wants_mech_list_mic(&self) -> bool {
        false
    }
    /// [MS-SPNG] 3.3.5.1: restart the sealing handle of one direction after the mechListMIC
    /// (NTLM's RC4; nothing for others).
    fn reset_sealing(&mut self, outgoing: bool) {
        let _ = outgoing;
    }
    /// Protects `data` for the peer, appending the token to `out`: sealed when `encrypt`, else
    /// signed (.NET's layout for NTLM: signature then plaintext).
    fn wrap(&mut self, data: &[u8], encrypt: bool, out: &mut Vec<u8>) -> MechResult<()>;
    /// Opens a token from the peer, appending the plaintext to `out`; whether it was sealed.
    fn unwrap(&mut self, token: &[u8], out: &mut Vec<u8>) -> MechResult<bool>;
    fn get_mic(&mut self, data: &[u8]) -> MechResult<Vec<u8>>;
    fn verify_mic(&mut self, data: &[u8], mic: &[u8]) -> MechResult<()>;
    /// The negotiated context flags (`flags::*`), meaningful once complete.
    fn flags(&self) -> u32;
    /// "NTLM" or "Kerberos" (for SPNEGO, the mechanism it chose; "Negotiate" before).
    fn package(&self) -> &'static str;
    /// The authenticated peer (an acceptor's client: "DOMAIN\user", "user@REALM").
    fn peer_name(&self) -> Option<String>;
}
