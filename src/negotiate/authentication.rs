//! NegotiateAuthentication (.NET 7+'s System.Net.Security.NegotiateAuthentication): one
//! authentication exchange, client or server, with the blobs carried by the caller. It builds the
//! mechanism from the package, credential, target and channel binding (NTLM and SPNEGO native,
//! Kerberos through GSSAPI), steps it, checks what the options require once it completes, and then
//! wraps, unwraps and computes MICs. NegotiateStream drives one of these per authentication.
//!
//! Failures are status codes (NegotiateAuthenticationStatusCode), as in .NET: only misuse (a
//! disposed object, wrap before authentication) is an error.

use super::credential::{Credential, CredentialSource};
use super::mech::{flags as gss, Failure, MechError, MechResult, Mechanism, StepOut};
use super::ntlm::{self, NtlmClient, NtlmServer};
use super::spnego::{SpnegoClient, SpnegoServer};
use super::{impersonation_level, kerberos, msg, policy_enforcement, protection_level};
use crate::error::{Error, Result};
use std::sync::Arc;

pub(crate) const CLASS_NAME: &str = "System.Net.Security.NegotiateAuthentication";

/// NegotiateAuthenticationStatusCode (dotnet/runtime NegotiateAuthenticationStatusCode.cs).
pub mod status {
    pub const COMPLETED: i32 = 0;
    pub const CONTINUE_NEEDED: i32 = 1;
    pub const GENERIC_FAILURE: i32 = 2;
    pub const BAD_BINDING: i32 = 3;
    pub const UNSUPPORTED: i32 = 4;
    pub const MESSAGE_ALTERED: i32 = 5;
    pub const CONTEXT_EXPIRED: i32 = 6;
    pub const CREDENTIALS_EXPIRED: i32 = 7;
    pub const INVALID_CREDENTIALS: i32 = 8;
    pub const INVALID_TOKEN: i32 = 9;
    pub const UNKNOWN_CREDENTIALS: i32 = 10;
    pub const QOP_NOT_SUPPORTED: i32 = 11;
    pub const OUT_OF_SEQUENCE: i32 = 12;
    pub const SECURITY_QOS_FAILED: i32 = 13;
    pub const TARGET_UNKNOWN: i32 = 14;
    pub const IMPERSONATION_VALIDATION_FAILED: i32 = 15;
}

/// The packages NegotiateAuthentication knows ("Negotiate" is SPNEGO over Kerberos and NTLM).
pub mod package {
    pub const NTLM: &str = "NTLM";
    pub const KERBEROS: &str = "Kerberos";
    pub const NEGOTIATE: &str = "Negotiate";
}

/// The status a mechanism failure reports, as .NET's PALs map SSPI and GSSAPI statuses.
pub fn status_of(f: Failure) -> i32 {
    match f {
        // SEC_E_LOGON_DENIED and SEC_E_NO_CREDENTIALS: UnknownCredentials in .NET's mapping.
        Failure::LogonDenied | Failure::NoCredentials => status::UNKNOWN_CREDENTIALS,
        Failure::InvalidToken => status::INVALID_TOKEN,
        Failure::BadBinding => status::BAD_BINDING,
        Failure::TargetUnknown => status::TARGET_UNKNOWN,
        Failure::MessageAltered => status::MESSAGE_ALTERED,
        Failure::OutOfSequence => status::OUT_OF_SEQUENCE,
        Failure::Unsupported => status::UNSUPPORTED,
        Failure::Internal => status::GENERIC_FAILURE,
    }
}

/// ExtendedProtectionPolicy.
#[derive(Clone, Default)]
pub struct Policy {
    pub enforcement: i32,
    pub custom_channel_binding: Option<Vec<u8>>,
    pub custom_service_names: Option<Vec<String>>,
}

/// NegotiateAuthenticationClientOptions. `None` stands for .NET's null.
#[derive(Clone)]
pub struct ClientOptions {
    pub package: String,
    pub credential: Credential,
    /// The service principal name, "SERVICE/host"; "" for none.
    pub target_name: String,
    /// A ChannelBinding as .NET holds it (SEC_CHANNEL_BINDINGS header, then the data).
    pub binding: Option<Vec<u8>>,
    pub required_protection_level: i32,
    pub require_mutual_authentication: bool,
    pub allowed_impersonation_level: i32,
}

impl ClientOptions {
    /// .NET 8's defaults: the default credential, no target, no binding, ProtectionLevel None, no
    /// mutual authentication required, TokenImpersonationLevel None.
    pub fn new(package: &str) -> ClientOptions {
        ClientOptions {
            package: package.into(),
            credential: Credential::default_credentials(),
            target_name: String::new(),
            binding: None,
            required_protection_level: protection_level::NONE,
            require_mutual_authentication: false,
            allowed_impersonation_level: impersonation_level::NONE,
        }
    }
}

/// NegotiateAuthenticationServerOptions: where NTLM users are looked up (Kerberos uses the
/// keytab), the channel binding and the policy that says how strictly it is checked.
#[derive(Clone)]
pub struct ServerOptions {
    pub package: String,
    pub users: Option<CredentialSource>,
    /// This side's channel binding; without a policy a client that sends one must match it.
    pub binding: Option<Vec<u8>>,
    pub policy: Option<Policy>,
    pub required_protection_level: i32,
    pub required_impersonation_level: i32,
}

impl ServerOptions {
    pub fn new(package: &str) -> ServerOptions {
        ServerOptions {
            package: package.into(),
            users: None,
            binding: None,
            policy: None,
            required_protection_level: protection_level::NONE,
            required_impersonation_level: impersonation_level::NONE,
        }
    }
}

/// The application data of a ChannelBinding (after its SEC_CHANNEL_BINDINGS header).
pub fn binding_data(binding: &[u8]) -> Result<Vec<u8>> {
    let bad = || Error::argument("The channel binding is not a SEC_CHANNEL_BINDINGS structure.");
    let field = |at: usize| binding.get(at..at + 4).map(|b| u32::from_ne_bytes(b.try_into().expect("4 bytes")) as usize);
    let (len, off) = (field(24).ok_or_else(bad)?, field(28).ok_or_else(bad)?);
    let end = off.checked_add(len).ok_or_else(bad)?;
    binding.get(off..end).map(<[u8]>::to_vec).ok_or_else(bad)
}

/// Why a step did not succeed: the status code, the SSPI kind (for NegotiateStream's
/// HandshakeError and exceptions) and a reason for the inner error.
#[derive(Clone, Debug)]
pub struct Refusal {
    pub status: i32,
    pub failure: Failure,
    pub reason: String,
}

impl Refusal {
    fn of(e: MechError) -> Refusal {
        Refusal { status: status_of(e.failure), failure: e.failure, reason: e.reason }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Running,
    Complete,
    Failed(i32),
    Disposed,
}

/// One authentication exchange and, once complete, its security context.
pub struct NegotiateAuthentication {
    is_server: bool,
    requested_package: String,
    /// Err: nothing can be done with these options (the reason is reported by the first step).
    mech: std::result::Result<Box<dyn Mechanism>, MechError>,
    /// Client: the SPN it asked for; server: none (the client's SPN is not reported).
    target_name: Option<String>,
    required_protection: i32,
    required_impersonation: i32,
    /// Server: the policy's demand a Kerberos context cannot check itself (that the client bound).
    require_channel_bound: bool,
    state: State,
    last_reason: Option<String>,
}

/// .NET's PrivateImpersonationLevel.
pub(crate) fn level_of(flags: u32, package: &str) -> i32 {
    if flags & gss::DELEG != 0 && package != package::NTLM {
        impersonation_level::DELEGATION
    } else if flags & gss::IDENTIFY != 0 {
        impersonation_level::IDENTIFICATION
    } else {
        impersonation_level::IMPERSONATION
    }
}

pub(crate) fn protection_of(flags: u32) -> i32 {
    if flags & gss::CONF != 0 {
        protection_level::ENCRYPT_AND_SIGN
    } else if flags & gss::INTEG != 0 {
        protection_level::SIGN
    } else {
        protection_level::NONE
    }
}

fn unsupported(reason: impl Into<String>) -> MechError {
    MechError::new(Failure::Unsupported, reason)
}

fn unknown_package(p: &str) -> MechError {
    unsupported(format!("The package '{p}' is not supported (NTLM, Kerberos or Negotiate)."))
}

fn client_mech(o: &ClientOptions) -> MechResult<Box<dyn Mechanism>> {
    let app = match o.binding.as_deref().map(binding_data).transpose() {
        Ok(a) => a,
        Err(e) => return Err(MechError::new(Failure::BadBinding, e.message.clone())),
    };
    let integrity = o.required_protection_level >= protection_level::SIGN;
    let confidentiality = o.required_protection_level == protection_level::ENCRYPT_AND_SIGN;
    let cred = &o.credential;
    let ntlm = || -> Option<Box<dyn Mechanism>> {
        (!cred.default).then(|| {
            Box::new(NtlmClient::new(ntlm::ClientOptions {
                user: cred.user.clone(),
                domain: cred.domain.clone(),
                nt_hash: ntlm::nt_hash(&cred.password),
                workstation: String::new(),
                target: o.target_name.clone(),
                channel_binding: app.clone(),
                integrity,
                confidentiality,
                identify: o.allowed_impersonation_level == impersonation_level::IDENTIFICATION,
            })) as Box<dyn Mechanism>
        })
    };
    let kerberos = || {
        let mut req = 0;
        if o.require_mutual_authentication {
            req |= gss::MUTUAL;
        }
        if integrity {
            req |= gss::INTEG | gss::REPLAY | gss::SEQUENCE;
        }
        if confidentiality {
            req |= gss::CONF;
        }
        match o.allowed_impersonation_level {
            impersonation_level::IDENTIFICATION => req |= gss::IDENTIFY,
            impersonation_level::DELEGATION => req |= gss::DELEG,
            _ => {}
        }
        kerberos::client(cred, &o.target_name, req, app.as_deref())
    };
    match o.package.as_str() {
        package::NTLM => ntlm().ok_or_else(|| unsupported(msg::NTLM_DEFAULT_CREDENTIALS)),
        package::KERBEROS => kerberos().ok_or_else(|| {
            unsupported("Kerberos needs the system's GSSAPI (libgssapi_krb5.so.2) and a target name.")
        }),
        package::NEGOTIATE => {
            let (krb, ntlm) = (kerberos(), ntlm());
            if krb.is_none() && ntlm.is_none() {
                return Err(unsupported(msg::NTLM_DEFAULT_CREDENTIALS));
            }
            Ok(Box::new(SpnegoClient::new(krb, ntlm)))
        }
        other => Err(unknown_package(other)),
    }
}

/// The server's NetBIOS-style name for the NTLM CHALLENGE.
fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into the buffer.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr() as *mut libc::c_char, buf.len()) };
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = if rc == 0 { String::from_utf8_lossy(&buf[..end]).into_owned() } else { String::new() };
    let short = name.split('.').next().unwrap_or("").to_string();
    if short.is_empty() {
        "localhost".into()
    } else {
        short
    }
}

/// The server's mechanism, and whether a Kerberos client must have bound to the channel.
fn server_mech(o: &ServerOptions) -> (MechResult<Box<dyn Mechanism>>, bool) {
    let policy = o.policy.clone().unwrap_or(Policy {
        // A binding without a policy is checked when the client sends one.
        enforcement: if o.binding.is_some() { policy_enforcement::WHEN_SUPPORTED } else { policy_enforcement::NEVER },
        ..Policy::default()
    });
    let always = policy.enforcement == policy_enforcement::ALWAYS;
    let never = policy.enforcement == policy_enforcement::NEVER;
    let binding = policy.custom_channel_binding.clone().or_else(|| o.binding.clone());
    let app = if never {
        None
    } else {
        match binding.as_deref().map(binding_data).transpose() {
            Ok(a) => a,
            Err(e) => return (Err(MechError::new(Failure::BadBinding, e.message.clone())), false),
        }
    };
    let names = if never { Vec::new() } else { policy.custom_service_names.clone().unwrap_or_default() };
    let users: CredentialSource = o.users.clone().unwrap_or_else(|| Arc::new(|_: &str, _: &str| None));
    let ntlm = || {
        Box::new(NtlmServer::new(
            users.clone(),
            ntlm::ServerOptions {
                computer: host_name(),
                domain: host_name(),
                channel_binding: app.clone(),
                require_binding: always,
                service_names: names.clone(),
                require_spn: always,
            },
        )) as Box<dyn Mechanism>
    };
    let bound = always && app.is_some();
    let mech = match o.package.as_str() {
        package::NTLM => Ok(ntlm()),
        package::KERBEROS => kerberos::server(app.as_deref())
            .ok_or_else(|| unsupported("Kerberos needs the system's GSSAPI (libgssapi_krb5.so.2).")),
        package::NEGOTIATE => Ok(Box::new(SpnegoServer::new(kerberos::server(app.as_deref()), ntlm())) as Box<dyn Mechanism>),
        other => Err(unknown_package(other)),
    };
    (mech, bound)
}

impl NegotiateAuthentication {
    /// `new NegotiateAuthentication(NegotiateAuthenticationClientOptions)`. Options nothing can be
    /// done with (an unknown package, NTLM with the default credential) are not an error here:
    /// the first step reports Unsupported, as .NET's.
    pub fn client(o: &ClientOptions) -> NegotiateAuthentication {
        NegotiateAuthentication {
            is_server: false,
            requested_package: o.package.clone(),
            mech: client_mech(o),
            target_name: Some(o.target_name.clone()),
            required_protection: o.required_protection_level,
            required_impersonation: impersonation_level::NONE,
            require_channel_bound: false,
            state: State::Running,
            last_reason: None,
        }
    }

    /// `new NegotiateAuthentication(NegotiateAuthenticationServerOptions)`.
    pub fn server(o: &ServerOptions) -> NegotiateAuthentication {
        let (mech, require_channel_bound) = server_mech(o);
        NegotiateAuthentication {
            is_server: true,
            requested_package: o.package.clone(),
            mech,
            target_name: None,
            required_protection: o.required_protection_level,
            required_impersonation: o.required_impersonation_level,
            require_channel_bound,
            state: State::Running,
            last_reason: None,
        }
    }

    /// Why these options cannot authenticate at all (before any step), if so.
    pub fn unsupported_reason(&self) -> Option<&str> {
        self.mech.as_ref().err().map(|e| e.reason.as_str())
    }

    fn disposed(&self) -> Result<()> {
        if self.state == State::Disposed {
            Err(Error::disposed(CLASS_NAME))
        } else {
            Ok(())
        }
    }

    /// Whether the next step may block (it calls GSSAPI), so that an async driver runs it on the
    /// blocking pool.
    pub fn blocking(&self, input: Option<&[u8]>) -> bool {
        self.state == State::Running && self.mech.as_ref().is_ok_and(|m| m.blocking(input))
    }

    /// One step: the peer's token (None for a client's first step) in, ours out. Completion is
    /// checked against the options: the channel binding a Kerberos client had to send, the
    /// impersonation level (server), the protection level. A refusal ends the exchange.
    pub fn step(&mut self, input: Option<&[u8]>) -> std::result::Result<StepOut, Refusal> {
        let r = self.step_unrecorded(input);
        match &r {
            Ok(out) => self.state = if out.complete { State::Complete } else { State::Running },
            Err(f) => {
                self.state = State::Failed(f.status);
                self.last_reason = Some(f.reason.clone());
            }
        }
        r
    }

    fn step_unrecorded(&mut self, input: Option<&[u8]>) -> std::result::Result<StepOut, Refusal> {
        let refuse = |status: i32, failure: Failure, reason: &str| Err(Refusal { status, failure, reason: reason.into() });
        match self.state {
            State::Running => {}
            State::Complete => return refuse(status::GENERIC_FAILURE, Failure::Internal, "The authentication is complete."),
            State::Failed(s) => return refuse(s, Failure::Internal, "The authentication failed before."),
            State::Disposed => return refuse(status::GENERIC_FAILURE, Failure::Internal, "The object is disposed."),
        }
        let mech = self.mech.as_mut().map_err(|e| Refusal::of(e.clone()))?;
        let out = mech.step(input).map_err(Refusal::of)?;
        if !out.complete {
            if out.token.is_empty() {
                return refuse(status::GENERIC_FAILURE, Failure::Internal, "The mechanism produced no token.");
            }
            return Ok(out);
        }
        let (flags, pkg) = (mech.flags(), mech.package());
        if self.require_channel_bound && pkg == package::KERBEROS && flags & gss::CHANNEL_BOUND == 0 {
            return refuse(status::BAD_BINDING, Failure::BadBinding, "Kerberos: the client sent no channel binding");
        }
        if level_of(flags, pkg) < self.required_impersonation {
            return refuse(status::IMPERSONATION_VALIDATION_FAILED, Failure::Internal, "the client allows less impersonation than required");
        }
        if protection_of(flags) < self.required_protection {
            return refuse(status::SECURITY_QOS_FAILED, Failure::Internal, "the negotiated protection level is below the required one");
        }
        Ok(out)
    }

    /// GetOutgoingBlob(incomingBlob, out statusCode): the blob for the peer (None: nothing to
    /// send) and the status. An empty `incoming` is no input. After Completed or a failure there
    /// is nothing more to step: GenericFailure (or the failure again).
    pub fn get_outgoing_blob(&mut self, incoming: &[u8]) -> Result<(Option<Vec<u8>>, i32)> {
        self.disposed()?;
        let input = (!incoming.is_empty()).then_some(incoming);
        Ok(match self.step(input) {
            Ok(out) => {
                let code = if out.complete { status::COMPLETED } else { status::CONTINUE_NEEDED };
                ((!out.token.is_empty()).then_some(out.token), code)
            }
            Err(r) => (None, r.status),
        })
    }

    /// The reason of the last failure (for diagnostics: .NET keeps it in its event source).
    pub fn last_reason(&self) -> Option<&str> {
        self.last_reason.as_deref()
    }

    fn established(&mut self) -> Result<&mut Box<dyn Mechanism>> {
        self.disposed()?;
        match (&self.state, self.mech.as_mut()) {
            (State::Complete, Ok(m)) => Ok(m),
            _ => Err(Error::invalid_operation(crate::layered::msg::NOT_AUTHENTICATED)),
        }
    }

    fn mech_status(&mut self, e: MechError) -> i32 {
        self.last_reason = Some(e.reason);
        status_of(e.failure)
    }

    /// Wrap(input, outputWriter, requestEncryption, out isEncrypted): appends the token to `out`.
    /// Encryption happens when the context has confidentiality and it is requested (NTLM seals
    /// whenever sealing was negotiated, as its unwrap expects).
    pub fn wrap(&mut self, data: &[u8], request_encryption: bool, out: &mut Vec<u8>) -> Result<(i32, bool)> {
        let mech = self.established()?;
        let conf = mech.flags() & gss::CONF != 0;
        let encrypt = conf && (request_encryption || mech.package() == package::NTLM);
        let at = out.len();
        match mech.wrap(data, encrypt, out) {
            Ok(()) => Ok((status::COMPLETED, encrypt)),
            Err(e) => {
                out.truncate(at);
                Ok((self.mech_status(e), false))
            }
        }
    }

    /// Unwrap(input, outputWriter, out wasEncrypted): appends the plaintext to `out`.
    pub fn unwrap(&mut self, token: &[u8], out: &mut Vec<u8>) -> Result<(i32, bool)> {
        let mech = self.established()?;
        let at = out.len();
        match mech.unwrap(token, out) {
            Ok(encrypted) => Ok((status::COMPLETED, encrypted)),
            Err(e) => {
                out.truncate(at);
                Ok((self.mech_status(e), false))
            }
        }
    }

    /// ComputeIntegrityCheck(message, signatureWriter): the MIC of `data`.
    pub fn compute_integrity_check(&mut self, data: &[u8]) -> Result<Vec<u8>> {
        self.established()?
            .get_mic(data)
            .map_err(|e| Error::new(crate::error::code::AUTHENTICATION, msg::AUTH_SSPI)
                .with_inner(e.reason))
    }

    /// VerifyIntegrityCheck(message, signature).
    pub fn verify_integrity_check(&mut self, data: &[u8], mic: &[u8]) -> Result<bool> {
        let mech = self.established()?;
        Ok(match mech.verify_mic(data, mic) {
            Ok(()) => true,
            Err(e) => {
                self.last_reason = Some(e.reason);
                false
            }
        })
    }

    /// The negotiated context flags (0 until the mechanism has some).
    pub fn flags(&self) -> u32 {
        match (&self.state, &self.mech) {
            (State::Disposed, _) | (_, Err(_)) => 0,
            (_, Ok(m)) => m.flags(),
        }
    }

    pub fn is_authenticated(&self) -> bool {
        self.state == State::Complete
    }
    pub fn is_server(&self) -> bool {
        self.is_server
    }
    pub fn is_encrypted(&self) -> bool {
        self.flags() & gss::CONF != 0
    }
    pub fn is_signed(&self) -> bool {
        self.flags() & (gss::CONF | gss::INTEG) != 0
    }
    /// Never with NTLM (it has no mutual authentication), as .NET reports it.
    pub fn is_mutually_authenticated(&self) -> bool {
        self.package() != package::NTLM && self.flags() & gss::MUTUAL != 0
    }
    pub fn protection_level(&self) -> i32 {
        protection_of(self.flags())
    }
    pub fn impersonation_level(&self) -> i32 {
        level_of(self.flags(), self.package())
    }

    /// The package: the negotiated one once SPNEGO chose ("NTLM", "Kerberos"), else the requested.
    pub fn package(&self) -> &str {
        match &self.mech {
            Ok(m) => m.package(),
            Err(_) => &self.requested_package,
        }
    }

    /// TargetName: the client's SPN; None on a server.
    pub fn target_name(&self) -> Option<&str> {
        self.target_name.as_deref()
    }

    /// RemoteIdentity's name and authentication type: on a server the client ("DOMAIN\user",
    /// "user@REALM"), on a client the target name (it cannot see the server's identity).
    pub fn remote_identity(&self) -> Result<(String, String)> {
        self.disposed()?;
        let m = match (&self.state, &self.mech) {
            (State::Complete, Ok(m)) => m,
            _ => return Err(Error::invalid_operation(crate::layered::msg::NOT_AUTHENTICATED)),
        };
        let name = if self.is_server {
            m.peer_name().unwrap_or_default().trim_end_matches('\0').to_string()
        } else {
            self.target_name.clone().unwrap_or_default()
        };
        Ok((name, self.package().to_string()))
    }

    /// Dispose: the context is released; later calls report ObjectDisposed.
    pub fn dispose(&mut self) {
        self.state = State::Disposed;
        self.mech = Err(unsupported("disposed"));
    }
}

#[cfg(test)]
mod tests;
