//! NegotiateStream over any Stream (reference/dotnet-semantics.md section 5): the layered
//! driver (`crate::layered::Channel`) over `Nns`, the [MS-NNS] protocol on a `Mechanism`.
//!
//! The handshake follows .NET's NegotiateStream (SendBlob/ReceiveBlob): the client sends first;
//! a side whose context completes sends its last token in HandshakeDone; the server always ends
//! with a HandshakeDone (empty when it has no token); the client is done once it completed and
//! has seen the server's HandshakeDone. A local failure sends HandshakeError (the SSPI code,
//! little-endian as .NET 8) and then allows a new authentication; a received HandshakeError
//! fails for good. After authentication, data goes in frames only when the context signs or
//! seals (.NET's CanGetSecureStream); ProtectionLevel None is the inner stream's bytes as they
//! are.

use super::authentication::{self as auth, level_of, protection_of, status, NegotiateAuthentication, Refusal};
pub use super::authentication::{binding_data, Policy};
use super::credential::{Credential, CredentialSource};
use super::mech::{flags as gss, Failure, StepOut};
use super::nns::{self, ERROR_TRUST_FAILURE};
use super::{impersonation_level, msg, protection_level};
#[cfg(test)]
use super::policy_enforcement;
use crate::error::{code, Error, Result};
use crate::layered::{Channel, Mode, Opened, Protocol, Step};
use crate::op::Completion;
use crate::stream::Stream;
use std::sync::Arc;

pub(crate) const CLASS_NAME: &str = "System.Net.Security.NegotiateStream";

/// NegotiateStream is the layered driver over [MS-NNS].
pub type NegotiateStream = Channel<Nns>;

/// AuthenticateAsClient's arguments. `None` stands for .NET's null.
#[derive(Clone, Default)]
pub struct ClientOptions {
    pub credential: Option<Credential>,
    pub target_name: Option<String>,
    /// A ChannelBinding as .NET holds it (SEC_CHANNEL_BINDINGS header, then the data).
    pub binding: Option<Vec<u8>>,
    pub protection_level: i32,
    pub impersonation_level: i32,
}

/// AuthenticateAsServer's arguments: where users are looked up (NTLM), the policy.
#[derive(Clone)]
pub struct ServerOptions {
    pub users: Option<CredentialSource>,
    pub policy: Option<Policy>,
    pub protection_level: i32,
    pub impersonation_level: i32,
}

/// What an authenticated stream reports (it never changes afterwards).
#[derive(Clone, Debug)]
pub struct Info {
    pub is_server: bool,
    pub flags: u32,
    pub package: &'static str,
    /// RemoteIdentity.Name: the client's name on a server, the target name on a client.
    pub remote_name: String,
}

impl Info {
    pub fn is_encrypted(&self) -> bool {
        self.flags & gss::CONF != 0
    }
    pub fn is_signed(&self) -> bool {
        self.flags & (gss::CONF | gss::INTEG) != 0
    }
    pub fn is_mutually_authenticated(&self) -> bool {
        self.package != auth::package::NTLM && self.flags & gss::MUTUAL != 0
    }
    pub fn impersonation_level(&self) -> i32 {
        level_of(self.flags, self.package)
    }
}

/// Where the handshake is.
enum Hs {
    Idle,
    /// Step the mechanism with this input (None: the client's first step).
    Step(Option<Vec<u8>>),
    /// The mechanism is out on the blocking pool.
    Offloaded,
    Read,
    Done,
}

/// A blocking step's outcome, with the authentication it ran on.
pub struct Resumed(Box<NegotiateAuthentication>, std::result::Result<StepOut, Refusal>);

/// [MS-NNS] as a layered protocol over a NegotiateAuthentication: everything here is under the
/// channel's lock.
pub struct Nns {
    input: Vec<u8>,
    output: Vec<u8>,
    auth: Option<Box<NegotiateAuthentication>>,
    /// The role of the first authentication attempt (.NET's net_auth_client_server).
    role: Option<bool>,
    hs: Hs,
    local_complete: bool,
    remote_ok: bool,
    can_retry: bool,
    expected_protection: i32,
    expected_impersonation: i32,
    /// Frames only when the context signs or seals.
    secure: bool,
    encrypt: bool,
    /// Unwrapped plaintext not yet handed to a read.
    plain: Vec<u8>,
    plain_pos: usize,
    info: Option<Arc<Info>>,
}

impl Nns {
    fn new() -> Nns {
        Nns {
            input: Vec::new(),
            output: Vec::new(),
            auth: None,
            role: None,
            hs: Hs::Idle,
            local_complete: false,
            remote_ok: false,
            can_retry: false,
            expected_protection: protection_level::ENCRYPT_AND_SIGN,
            expected_impersonation: impersonation_level::NONE,
            secure: false,
            encrypt: false,
            plain: Vec::new(),
            plain_pos: 0,
            info: None,
        }
    }

    /// ValidateCreateContext after the channel's checks (disposed, stored failure, already
    /// authenticated): the arguments in .NET's order, then the role.
    fn validate(&mut self, is_server: bool, credential: bool, target: bool, protection: i32, impersonation: i32) -> Result<()> {
        if !credential {
            return Err(Error::argument_null("credential"));
        }
        if !target {
            return Err(Error::argument_null("servicePrincipalName"));
        }
        if !(impersonation_level::IDENTIFICATION..=impersonation_level::DELEGATION).contains(&impersonation) {
            return Err(Error::new(
                code::ARGUMENT_OUT_OF_RANGE,
                format!("{} (Parameter 'impersonationLevel')", msg::SUPPORTED_IMPERSONATION_LEVELS),
            ));
        }
        if !(protection_level::NONE..=protection_level::ENCRYPT_AND_SIGN).contains(&protection) {
            return Err(Error::out_of_range("protectionLevel"));
        }
        if self.role.is_some_and(|r| r != is_server) {
            return Err(Error::invalid_operation(msg::CLIENT_SERVER));
        }
        self.role = Some(is_server);
        self.local_complete = false;
        self.remote_ok = false;
        self.can_retry = false;
        self.expected_protection = protection;
        self.expected_impersonation = if is_server { impersonation } else { impersonation_level::NONE };
        self.hs = if is_server { Hs::Read } else { Hs::Step(None) };
        Ok(())
    }

    /// Options nothing can be done with fail here, before any frame (.NET's Unsupported PAL).
    fn start(&mut self, a: NegotiateAuthentication) -> Result<()> {
        if let Some(reason) = a.unsupported_reason() {
            return Err(Error::new(code::AUTHENTICATION, msg::AUTH_SSPI).with_inner(reason));
        }
        self.auth = Some(Box::new(a));
        Ok(())
    }

    fn start_client(&mut self, o: &ClientOptions) -> Result<()> {
        self.validate(false, o.credential.is_some(), o.target_name.is_some(), o.protection_level, o.impersonation_level)?;
        if let Some(b) = &o.binding {
            binding_data(b)?;
        }
        // .NET's workaround for Win9x servers: ProtectionLevel None is raw NTLM, and only then is
        // mutual authentication not required.
        let none = o.protection_level == protection_level::NONE;
        let a = NegotiateAuthentication::client(&auth::ClientOptions {
            package: if none { auth::package::NTLM } else { auth::package::NEGOTIATE }.into(),
            credential: o.credential.clone().expect("validated"),
            target_name: o.target_name.clone().expect("validated"),
            binding: o.binding.clone(),
            required_protection_level: o.protection_level,
            require_mutual_authentication: !none,
            allowed_impersonation_level: o.impersonation_level,
        });
        self.start(a)
    }

    fn start_server(&mut self, o: &ServerOptions) -> Result<()> {
        self.validate(true, true, true, o.protection_level, o.impersonation_level)?;
        if let Some(b) = o.policy.as_ref().and_then(|p| p.custom_channel_binding.as_ref()) {
            binding_data(b)?;
        }
        let a = NegotiateAuthentication::server(&auth::ServerOptions {
            package: auth::package::NEGOTIATE.into(),
            users: o.users.clone(),
            binding: None,
            policy: Some(o.policy.clone().unwrap_or_default()),
            required_protection_level: o.protection_level,
            required_impersonation_level: o.impersonation_level,
        });
        self.start(a)
    }

    fn frame(&mut self, id: u8, payload: &[u8]) -> Result<()> {
        nns::encode_handshake_frame(id, payload, &mut self.output)
    }

    /// A local failure: tell the peer (HandshakeError) and allow a new attempt.
    fn fail(&mut self, code_sent: u32, e: Error) -> Error {
        self.output.clear();
        let _ = self.frame(nns::HANDSHAKE_ERROR, &nns::encode_error_code(code_sent));
        self.can_retry = true;
        self.auth = None;
        e
    }

    /// What NegotiateStream makes of a refused step (.NET 8's NegotiateStream on its statuses).
    fn refused(&mut self, r: Refusal) -> Error {
        let is_server = self.role == Some(true);
        let flags = self.auth.as_ref().map_or(0, |a| a.flags());
        let package = self.auth.as_ref().map_or(auth::package::NTLM, |a| a.package()).to_string();
        match r.status {
            status::IMPERSONATION_VALIDATION_FAILED => {
                let (want, got) = (self.expected_impersonation, level_of(flags, &package));
                let text = msg::expectation(impersonation_level::name(want), impersonation_level::name(got));
                return self.fail(ERROR_TRUST_FAILURE, Error::new(code::AUTHENTICATION, text));
            }
            status::SECURITY_QOS_FAILED => {
                let (want, got) = (self.expected_protection, protection_of(flags));
                let text = msg::expectation(protection_level::name(want), protection_level::name(got));
                return self.fail(ERROR_TRUST_FAILURE, Error::new(code::AUTHENTICATION, text));
            }
            _ => {}
        }
        let err = match r.failure {
            Failure::LogonDenied => Error::new(
                code::INVALID_CREDENTIAL,
                if is_server { msg::BAD_CLIENT_CREDS } else { msg::BAD_CREDS_OR_TARGET },
            ),
            Failure::BadBinding | Failure::TargetUnknown => Error::new(code::AUTHENTICATION, msg::BAD_CREDS_OR_TARGET),
            _ => Error::new(code::AUTHENTICATION, msg::AUTH_SSPI),
        };
        self.fail(r.failure.hresult(), err.with_inner(r.reason))
    }

    /// What an authentication step produced: frames, the next state.
    fn after_step(&mut self, r: std::result::Result<StepOut, Refusal>) -> Result<()> {
        let out = r.map_err(|e| self.refused(e))?;
        if !out.complete {
            self.frame(nns::HANDSHAKE_IN_PROGRESS, &out.token)?;
            self.hs = Hs::Read;
            return Ok(());
        }
        self.local_complete = true;
        if self.role == Some(true) {
            self.remote_ok = true;
            self.frame(nns::HANDSHAKE_DONE, &out.token)?;
        } else if !out.token.is_empty() {
            self.frame(nns::HANDSHAKE_DONE, &out.token)?;
        }
        self.hs = if self.remote_ok { Hs::Done } else { Hs::Read };
        Ok(())
    }

    /// Takes one handshake frame from the input; None when it is not all there yet.
    fn read_frame(&mut self, eof: bool) -> Result<Option<Vec<u8>>> {
        let Some((id, payload, n)) = nns::parse_handshake_frame(&self.input) else {
            if !eof {
                return Ok(None);
            }
            return Err(if self.input.is_empty() {
                Error::new(code::AUTHENTICATION, msg::AUTH_EOF)
            } else {
                Error::new(code::IO, msg::CONNECTION_CLOSED)
            });
        };
        let payload = payload.to_vec();
        self.input.drain(..n);
        match id {
            nns::HANDSHAKE_ERROR => {
                self.auth = None;
                return Err(match nns::decode_error_code(&payload) {
                    Some(c) if c == Failure::LogonDenied.hresult() => {
                        Error::new(code::INVALID_CREDENTIAL, msg::BAD_CLIENT_CREDS).with_inner(format!("0x{c:08X}"))
                    }
                    Some(ERROR_TRUST_FAILURE) => Error::new(code::AUTHENTICATION, msg::REMOTE_EXPECTATION),
                    Some(c) => Error::new(code::AUTHENTICATION, msg::AUTH_ALERT)
                        .with_inner(format!("0x{c:08X}")),
                    None => Error::new(code::AUTHENTICATION, msg::AUTH_ALERT),
                });
            }
            nns::HANDSHAKE_DONE => self.remote_ok = true,
            nns::HANDSHAKE_IN_PROGRESS => {}
            other => return Err(Error::new(code::AUTHENTICATION, msg::wrong_header(other, nns::HANDSHAKE_IN_PROGRESS))),
        }
        if self.local_complete {
            if !self.remote_ok {
                return Err(Error::new(code::AUTHENTICATION, msg::wrong_header(id, nns::HANDSHAKE_DONE)));
            }
            self.hs = Hs::Done;
            return Ok(Some(Vec::new()));
        }
        self.hs = Hs::Step(Some(payload.clone()));
        Ok(Some(payload))
    }

    fn step(&mut self, eof: bool) -> Result<Step<Resumed>> {
        loop {
            match std::mem::replace(&mut self.hs, Hs::Idle) {
                Hs::Idle | Hs::Offloaded => return Err(Error::internal("The handshake is not running.")),
                Hs::Done => {
                    self.hs = Hs::Done;
                    return Ok(Step::Done);
                }
                Hs::Read => {
                    self.hs = Hs::Read;
                    if self.read_frame(eof)?.is_none() {
                        return Ok(Step::NeedInput);
                    }
                }
                Hs::Step(input) => {
                    let a = self.auth.as_mut().ok_or_else(|| Error::disposed(CLASS_NAME))?;
                    if a.blocking(input.as_deref()) {
                        let mut a = self.auth.take().expect("checked");
                        self.hs = Hs::Offloaded;
                        return Ok(Step::NeedOffload(Box::new(move || {
                            let r = a.step(input.as_deref());
                            Resumed(a, r)
                        })));
                    }
                    let r = a.step(input.as_deref());
                    self.after_step(r)?;
                }
            }
        }
    }

    fn record(&mut self) -> Result<()> {
        let a = self.auth.as_ref().ok_or_else(|| Error::disposed(CLASS_NAME))?;
        let flags = a.flags();
        let (remote_name, _) = a.remote_identity()?;
        let package = if a.package() == auth::package::KERBEROS { auth::package::KERBEROS } else { auth::package::NTLM };
        self.secure = flags & (gss::CONF | gss::INTEG) != 0;
        self.encrypt = flags & gss::CONF != 0;
        self.info = Some(Arc::new(Info { is_server: a.is_server(), flags, package, remote_name }));
        Ok(())
    }
}

impl Protocol for Nns {
    const CLASS_NAME: &'static str = CLASS_NAME;
    const CHUNK: usize = nns::MAX_WRITE_DATA;
    type Resume = Resumed;
    const STATE_AFTER_BUFFER: bool = true;

    fn feed(&mut self, buf: Vec<u8>, n: usize) -> Vec<u8> {
        self.input.extend_from_slice(&buf[..n]);
        buf
    }

    fn take_output(&mut self, spare: Vec<u8>) -> Vec<u8> {
        std::mem::replace(&mut self.output, spare)
    }

    fn handshake(&mut self, eof: bool) -> Result<Step<Resumed>> {
        self.step(eof)
    }

    fn resume(&mut self, answer: Resumed) -> Result<()> {
        let Resumed(a, r) = answer;
        self.auth = Some(a);
        self.after_step(r)
    }

    fn handshake_done(&mut self) -> Result<()> {
        self.record()
    }

    fn seal(&mut self, plain: &[u8], _direct: Option<&Arc<dyn Stream>>) -> Result<()> {
        if !self.secure {
            self.output.extend_from_slice(plain);
            return Ok(());
        }
        let a = self.auth.as_mut().ok_or_else(|| Error::disposed(CLASS_NAME))?;
        let at = self.output.len();
        self.output.extend_from_slice(&[0; nns::DATA_HEADER]);
        let (st, _) = a.wrap(plain, self.encrypt, &mut self.output)?;
        if st != status::COMPLETED {
            self.output.truncate(at);
            return Err(Error::new(code::IO, msg::ENCRYPT)
                .with(|fail| fail.inner = a.last_reason().map(str::to_string)));
        }
        let len = (self.output.len() - at - nns::DATA_HEADER) as u32;
        self.output[at..at + nns::DATA_HEADER].copy_from_slice(&len.to_le_bytes());
        Ok(())
    }

    fn open(&mut self, plain: &mut [u8]) -> Result<Opened> {
        loop {
            if self.plain_pos < self.plain.len() {
                let n = (self.plain.len() - self.plain_pos).min(plain.len());
                plain[..n].copy_from_slice(&self.plain[self.plain_pos..self.plain_pos + n]);
                self.plain_pos += n;
                return Ok(Opened::Data(n));
            }
            if !self.secure {
                if self.input.is_empty() {
                    return Ok(Opened::NeedInput);
                }
                let n = self.input.len().min(plain.len());
                plain[..n].copy_from_slice(&self.input[..n]);
                self.input.drain(..n);
                return Ok(Opened::Data(n));
            }
            let Some((payload, n)) = nns::parse_data_frame(&self.input)? else { return Ok(Opened::NeedInput) };
            let a = self.auth.as_mut().ok_or_else(|| Error::disposed(CLASS_NAME))?;
            self.plain.clear();
            self.plain_pos = 0;
            let r = a.unwrap(payload, &mut self.plain);
            self.input.drain(..n);
            let (st, _) = r?;
            if st != status::COMPLETED {
                return Err(Error::new(code::IO, msg::READ_FAILED)
                    .with(|fail| fail.inner = a.last_reason().map(str::to_string)));
            }
            // A frame that unwraps to nothing is skipped.
        }
    }

    fn input_ended(&self) -> Result<()> {
        if self.secure && !self.input.is_empty() {
            Err(Error::new(code::IO, msg::IO_EOF))
        } else {
            Ok(())
        }
    }

    fn shutdown(&mut self) {}

    fn dispose(&mut self) {
        self.auth = None;
        self.plain = Vec::new();
    }

    fn inner_failed(e: Error, writing: bool) -> Error {
        if e.status == code::IO || e.status == code::OBJECT_DISPOSED {
            return e;
        }
        let text = if writing { msg::WRITE_FAILED } else { msg::READ_FAILED };
        e.with(|fail| {
            fail.status = code::IO;
            fail.inner = Some(std::mem::replace(&mut fail.message, text.into()));
        })
    }

    fn can_retry(&self) -> bool {
        self.can_retry
    }
}

impl NegotiateStream {
    /// `new NegotiateStream(inner, leaveInnerStreamOpen)`.
    pub fn new(inner: Arc<dyn Stream>, leave_inner_open: bool) -> Result<Arc<NegotiateStream>> {
        Channel::over(inner, leave_inner_open, Nns::new())
    }

    /// BeginAuthenticateAsClient (Mode::Sync: the synchronous form).
    pub fn begin_authenticate_as_client(self: &Arc<Self>, opts: ClientOptions, done: Completion, mode: Mode) -> Result<()> {
        self.begin_handshake(done, mode, |p| p.start_client(&opts))
    }

    pub fn authenticate_as_client(self: &Arc<Self>, opts: ClientOptions) -> Result<()> {
        crate::op::wait_for(|done| self.begin_authenticate_as_client(opts, done, Mode::Sync)).map(drop)
    }

    /// BeginAuthenticateAsServer. The policy is checked first, as .NET does.
    pub fn begin_authenticate_as_server(self: &Arc<Self>, opts: ServerOptions, done: Completion, mode: Mode) -> Result<()> {
        if let Some(p) = &opts.policy {
            if p.custom_channel_binding.is_none() && p.custom_service_names.is_none() {
                return Err(Error::argument(format!("{} (Parameter 'policy')", msg::POLICY_SCHEME)));
            }
        }
        self.begin_handshake(done, mode, |p| p.start_server(&opts))
    }

    pub fn authenticate_as_server(self: &Arc<Self>, opts: ServerOptions) -> Result<()> {
        crate::op::wait_for(|done| self.begin_authenticate_as_server(opts, done, Mode::Sync)).map(drop)
    }

    /// IsServer: the role of the (last) authentication attempt.
    pub fn is_server(&self) -> bool {
        self.protocol(|p| p.role == Some(true))
    }

    /// What the authenticated stream reports; None before authentication (or once disposed).
    pub fn info_if_any(&self) -> Option<Arc<Info>> {
        if !self.is_authenticated() {
            return None;
        }
        self.protocol(|p| p.info.clone())
    }

    /// The properties that need authentication (ImpersonationLevel, RemoteIdentity).
    pub fn info(&self) -> Result<Arc<Info>> {
        self.protocol_if_authenticated(|p| p.info.clone())?
            .ok_or_else(|| Error::invalid_operation(crate::layered::msg::NOT_AUTHENTICATED))
    }
}

#[cfg(test)]
mod tests;
