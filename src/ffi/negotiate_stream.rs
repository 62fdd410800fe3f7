//! NegotiateStream, as C sees it: creation over any apm_stream (an SslStream included),
//! authentication as client or server (sync and Begin/End) with NTLM, Kerberos or Negotiate, and
//! the properties. Reads, writes and close are the shared `apm_stream_*` functions.
//!
//! Where .NET versions differ we follow .NET Framework (DESIGN.md section 1): a second BeginWrite
//! while one is pending fails from BeginWrite with APM_E_NOT_SUPPORTED. Unlike .NET on Linux, a
//! server checks its extended protection policy (channel binding, service names).

use super::credential::apm_credential;
use super::handles::{CredentialClass, NegotiateStreamClass};
use super::stream::{begin_authenticate, create_layered};
use super::*;
use crate::negotiate::stream::{ClientOptions, Info, Policy, ServerOptions};
use crate::negotiate::NegotiateStream;

/// ProtectionLevel.None: no signing or sealing; data goes unframed.
pub const APM_PROTECTION_LEVEL_NONE: i32 = 0;
/// ProtectionLevel.Sign.
pub const APM_PROTECTION_LEVEL_SIGN: i32 = 1;
/// ProtectionLevel.EncryptAndSign.
pub const APM_PROTECTION_LEVEL_ENCRYPT_AND_SIGN: i32 = 2;
/// TokenImpersonationLevel.None.
pub const APM_TOKEN_IMPERSONATION_LEVEL_NONE: i32 = 0;
/// TokenImpersonationLevel.Anonymous.
pub const APM_TOKEN_IMPERSONATION_LEVEL_ANONYMOUS: i32 = 1;
/// TokenImpersonationLevel.Identification.
pub const APM_TOKEN_IMPERSONATION_LEVEL_IDENTIFICATION: i32 = 2;
/// TokenImpersonationLevel.Impersonation.
pub const APM_TOKEN_IMPERSONATION_LEVEL_IMPERSONATION: i32 = 3;
/// TokenImpersonationLevel.Delegation.
pub const APM_TOKEN_IMPERSONATION_LEVEL_DELEGATION: i32 = 4;
/// PolicyEnforcement.Never.
pub const APM_POLICY_ENFORCEMENT_NEVER: i32 = 0;
/// PolicyEnforcement.WhenSupported: a client's binding or service name must match when it sends
/// one.
pub const APM_POLICY_ENFORCEMENT_WHEN_SUPPORTED: i32 = 1;
/// PolicyEnforcement.Always: the client must send a matching one.
pub const APM_POLICY_ENFORCEMENT_ALWAYS: i32 = 2;

/// `new NegotiateStream(inner, leaveInnerStreamOpen)`. With `leave_inner_stream_open` 0, closing
/// the NegotiateStream closes the inner stream and releases its handle too; with nonzero the inner
/// stream stays the caller's. `inner` may be any readable and writable stream: a NetworkStream, a
/// custom stream, an authenticated SslStream (whose channel binding the client can then pass). The
/// caller owns `*stream` (`apm_stream_close`). One read and one write may be pending at once (a
/// second fails with APM_E_NOT_SUPPORTED).
/// Errors: APM_E_ARGUMENT_NULL (inner, stream), APM_E_ARGUMENT (inner not a stream handle; "The
/// stream has to be read/write."), APM_E_OBJECT_DISPOSED (a closed inner stream),
/// APM_E_OUT_OF_MEMORY (no handle left).
#[no_mangle]
pub unsafe extern "C" fn apm_negotiate_stream_create(
    inner: *mut apm_stream,
    leave_inner_stream_open: i32,
    stream: *mut *mut apm_stream,
) -> apm_status {
    boundary!({
        create_layered(inner, leave_inner_stream_open, stream, |inner, leave_open| {
            Ok((Kind::NegotiateStream, Object::NegotiateStream(NegotiateStream::new(inner, leave_open)?)))
        })
    })
}

fn bytes_arg(p: *const u8, len: usize, name: &str) -> Result<Option<Vec<u8>>> {
    if p.is_null() {
        if len > 0 {
            return Err(Error::argument_null(name));
        }
        return Ok(None);
    }
    // SAFETY: the caller passes `len` readable bytes.
    Ok(Some(unsafe { std::slice::from_raw_parts(p, len) }.to_vec()))
}

fn client_options(
    credential: *mut apm_credential,
    target_name: *const c_char,
    binding: *const u8,
    binding_len: usize,
    protection_level: i32,
    impersonation_level: i32,
) -> Result<ClientOptions> {
    let credential = if credential.is_null() {
        None
    } else {
        let c = lookup::<CredentialClass>(credential)?;
        Some(c.for_client().ok_or_else(|| Error::argument("A server's user list cannot authenticate a client."))?)
    };
    let target_name = if target_name.is_null() { None } else { Some(str_arg(target_name, "targetName")?.to_string()) };
    Ok(ClientOptions {
        credential,
        target_name,
        binding: bytes_arg(binding, binding_len, "binding")?,
        protection_level,
        impersonation_level,
    })
}

/// AuthenticateAsClient(credential, binding, targetName, requiredProtectionLevel,
/// allowedImpersonationLevel), blocking the calling thread until the handshake is done.
/// `credential`: from `apm_credential_create` (NTLM and Kerberos: `user@REALM` through the
/// password) or `apm_credential_create_default` (the ticket cache: Kerberos only); NULL is .NET's
/// null. `target_name`: the service principal name, "SERVICE/host" (Kerberos asks for
/// `SERVICE@host`; NTLM sends it as MsvAvTargetName); "" for none. `binding` (NULL: none): the
/// bytes of a ChannelBinding as `apm_transport_context_get_channel_binding` gives them, which
/// NTLM and Kerberos bind the authentication to. `protection_level`: APM_PROTECTION_LEVEL_*
/// (None authenticates with raw NTLM, as .NET; Sign and EncryptAndSign with Negotiate: Kerberos
/// when a ticket for the target can be had, else NTLM); the negotiated level must reach it.
/// `impersonation_level`: APM_TOKEN_IMPERSONATION_LEVEL_IDENTIFICATION, _IMPERSONATION or
/// _DELEGATION. A failed authentication is stored: later calls report it; when this side sent
/// the peer a HandshakeError, a new authentication may be tried.
/// Errors: in .NET's order: APM_E_ARGUMENT_NULL (stream), APM_E_ARGUMENT (not a NegotiateStream
/// handle; a string not UTF-8; credential not a credential handle or a user list; a binding that
/// is not a SEC_CHANNEL_BINDINGS structure), APM_E_OBJECT_DISPOSED, the stored failure of an
/// earlier authentication, APM_E_INVALID_OPERATION (already authenticated: "This operation is not
/// allowed on a security context that has already been authenticated."; authenticated before as
/// the server), APM_E_NOT_SUPPORTED (an authentication is running), APM_E_ARGUMENT_NULL
/// ("credential", "servicePrincipalName"), APM_E_ARGUMENT_OUT_OF_RANGE ("impersonationLevel":
/// "The supported values are Identification, Impersonation or Delegation."; protection_level), then
/// the handshake's: APM_E_INVALID_CREDENTIAL (the server rejected the credentials: "The server has
/// rejected the client credentials."), APM_E_AUTHENTICATION ("A remote side security requirement
/// was not fulfilled during authentication. Try increasing the ProtectionLevel and/or
/// ImpersonationLevel."; "A security requirement was not fulfilled during authentication.
/// Required: ..., negotiated: ..."; "Authentication failed on the remote side (the stream might
/// still be available for additional authentication attempts)."; "Authentication failed, see
/// inner exception." with the mechanism's reason as the inner message; "Authentication failed
/// because the remote party has closed the transport stream."), APM_E_IO (the transport failed;
/// "Unable to read data from the transport connection: The connection was closed."),
/// APM_E_ARGUMENT (a token over 65535 bytes: "The payload size is limited to 65535, attempted set
/// it to N.").
#[no_mangle]
pub unsafe extern "C" fn apm_negotiate_stream_authenticate_as_client(
    stream: *mut apm_stream,
    credential: *mut apm_credential,
    target_name: *const c_char,
    binding: *const u8,
    binding_len: usize,
    protection_level: i32,
    impersonation_level: i32,
) -> apm_status {
    boundary!({
        let s = lookup::<NegotiateStreamClass>(stream)?;
        let opts = client_options(credential, target_name, binding, binding_len, protection_level, impersonation_level)?;
        s.authenticate_as_client(opts)
    })
}

/// BeginAuthenticateAsClient: as `apm_negotiate_stream_authenticate_as_client`, asynchronously
/// (Kerberos's GSSAPI calls run on the library's blocking pool). The outcome comes from
/// `apm_negotiate_stream_end_authenticate_as_client`.
/// Errors: as apm_negotiate_stream_authenticate_as_client (its argument and state errors; the
/// handshake's come from End), and the Begin rules (see apm_async_result).
#[no_mangle]
pub unsafe extern "C" fn apm_negotiate_stream_begin_authenticate_as_client(
    stream: *mut apm_stream,
    credential: *mut apm_credential,
    target_name: *const c_char,
    binding: *const u8,
    binding_len: usize,
    protection_level: i32,
    impersonation_level: i32,
    callback: apm_async_callback,
    state: *mut c_void,
    result: *mut *mut apm_async_result,
) -> apm_status {
    boundary!({
        let opts =
            || client_options(credential, target_name, binding, binding_len, protection_level, impersonation_level);
        let start = NegotiateStream::begin_authenticate_as_client;
        let op = OpKind::AuthenticateAsClient;
        begin_authenticate::<NegotiateStreamClass, _>(stream, op, opts, callback, state, result, start)
    })
}

/// EndAuthenticateAsClient: waits, releases `result`, reports the handshake's outcome.
/// Errors: APM_E_ARGUMENT_NULL (stream), APM_E_ARGUMENT (not a NegotiateStream handle), the End
/// rules (see apm_async_result; APM_E_OBJECT_DISPOSED once the stream is closed), then the
/// handshake's outcome as for apm_negotiate_stream_authenticate_as_client.
#[no_mangle]
pub unsafe extern "C" fn apm_negotiate_stream_end_authenticate_as_client(
    stream: *mut apm_stream,
    result: *mut apm_async_result,
) -> apm_status {
    boundary!({ end_on::<NegotiateStreamClass>(stream, result, OpKind::AuthenticateAsClient).map(drop) })
}

/// An ExtendedProtectionPolicy's CustomServiceNames: `count` strings, or NULL for none.
pub(crate) fn service_names_arg(names: *const *const c_char, count: usize) -> Result<Option<Vec<String>>> {
    if names.is_null() {
        if count > 0 {
            return Err(Error::argument_null("customServiceNames"));
        }
        return Ok(None);
    }
    let mut v = Vec::with_capacity(count);
    for i in 0..count {
        // SAFETY: the caller passes `count` string pointers.
        v.push(str_arg(unsafe { *names.add(i) }, "customServiceNames")?.to_string());
    }
    Ok(Some(v))
}

/// The ExtendedProtectionPolicy arguments as C passes them: the enforcement, the custom channel
/// binding and its length, the service names and their count.
type PolicyArgs = (i32, *const u8, usize, *const *const c_char, usize);

fn server_options(
    credential: *mut apm_credential,
    (policy_enforcement, custom_channel_binding, binding_len, service_names, service_count): PolicyArgs,
    protection_level: i32,
    impersonation_level: i32,
) -> Result<ServerOptions> {
    let users = if credential.is_null() { None } else { lookup::<CredentialClass>(credential)?.for_server() };
    let binding = bytes_arg(custom_channel_binding, binding_len, "customChannelBinding")?;
    let names = service_names_arg(service_names, service_count)?;
    if !(APM_POLICY_ENFORCEMENT_NEVER..=APM_POLICY_ENFORCEMENT_ALWAYS).contains(&policy_enforcement) {
        return Err(Error::out_of_range("policyEnforcement"));
    }
    let policy = (policy_enforcement != APM_POLICY_ENFORCEMENT_NEVER || binding.is_some() || names.is_some())
        .then_some(Policy { enforcement: policy_enforcement, custom_channel_binding: binding, custom_service_names: names });
    Ok(ServerOptions { users, policy, protection_level, impersonation_level })
}

/// AuthenticateAsServer(credential, policy, requiredProtectionLevel, requiredImpersonationLevel),
/// blocking the calling thread until the handshake is done. `credential`: the NTLM users
/// (`apm_credential_create_from_file`, `apm_credential_create_lookup`, or one user from
/// `apm_credential_create`); Kerberos clients are accepted through the keytab (KRB5_KTNAME) when
/// the system's GSSAPI is there. NULL or the default credential: Kerberos only. The client may
/// speak Negotiate or raw NTLM (what a .NET client sends at ProtectionLevel None). The
/// ExtendedProtectionPolicy is `policy_enforcement` (APM_POLICY_ENFORCEMENT_*), with
/// `custom_channel_binding` (NULL: none; the bytes of this side's ChannelBinding, e.g. of the
/// SslStream it runs over) and `service_names` (`service_count` accepted SPNs, "SERVICE/host";
/// NULL: any): Never with neither stands for no policy. Unlike .NET on Linux the policy is
/// checked: a binding or service name that does not match is refused, and with Always a client
/// that sends none too. The negotiated protection and impersonation levels must reach
/// `protection_level` and `impersonation_level`.
/// Errors: APM_E_ARGUMENT_NULL (stream; customChannelBinding or customServiceNames NULL with a
/// nonzero length; a NULL name), APM_E_ARGUMENT (not a NegotiateStream handle; credential not a
/// credential handle; a policy with neither binding nor names: "An extended protection policy must
/// specify either a custom channel binding or a custom service name collection."; a name not
/// UTF-8; a binding that is not a SEC_CHANNEL_BINDINGS structure), APM_E_ARGUMENT_OUT_OF_RANGE
/// (policy_enforcement), then as apm_negotiate_stream_authenticate_as_client from the stored
/// failure on (APM_E_INVALID_CREDENTIAL: "The server has rejected the client credentials." for a
/// wrong password or an unknown user; APM_E_AUTHENTICATION "Either the target name is incorrect or
/// the server has rejected the client credentials." for a binding or service name refused).
#[no_mangle]
pub unsafe extern "C" fn apm_negotiate_stream_authenticate_as_server(
    stream: *mut apm_stream,
    credential: *mut apm_credential,
    policy_enforcement: i32,
    custom_channel_binding: *const u8,
    binding_len: usize,
    service_names: *const *const c_char,
    service_count: usize,
    protection_level: i32,
    impersonation_level: i32,
) -> apm_status {
    boundary!({
        let s = lookup::<NegotiateStreamClass>(stream)?;
        let policy = (policy_enforcement, custom_channel_binding, binding_len, service_names, service_count);
        s.authenticate_as_server(server_options(credential, policy, protection_level, impersonation_level)?)
    })
}

/// BeginAuthenticateAsServer: as `apm_negotiate_stream_authenticate_as_server`, asynchronously.
/// Errors: as apm_negotiate_stream_authenticate_as_server (its argument and state errors; the
/// handshake's come from End), and the Begin rules (see apm_async_result).
#[no_mangle]
pub unsafe extern "C" fn apm_negotiate_stream_begin_authenticate_as_server(
    stream: *mut apm_stream,
    credential: *mut apm_credential,
    policy_enforcement: i32,
    custom_channel_binding: *const u8,
    binding_len: usize,
    service_names: *const *const c_char,
    service_count: usize,
    protection_level: i32,
    impersonation_level: i32,
    callback: apm_async_callback,
    state: *mut c_void,
    result: *mut *mut apm_async_result,
) -> apm_status {
    boundary!({
        let policy = (policy_enforcement, custom_channel_binding, binding_len, service_names, service_count);
        let opts = || server_options(credential, policy, protection_level, impersonation_level);
        let start = NegotiateStream::begin_authenticate_as_server;
        let op = OpKind::AuthenticateAsServer;
        begin_authenticate::<NegotiateStreamClass, _>(stream, op, opts, callback, state, result, start)
    })
}

/// EndAuthenticateAsServer: as `apm_negotiate_stream_end_authenticate_as_client`.
/// Errors: as apm_negotiate_stream_end_authenticate_as_client.
#[no_mangle]
pub unsafe extern "C" fn apm_negotiate_stream_end_authenticate_as_server(
    stream: *mut apm_stream,
    result: *mut apm_async_result,
) -> apm_status {
    boundary!({ end_on::<NegotiateStreamClass>(stream, result, OpKind::AuthenticateAsServer).map(drop) })
}

/// A flag of the authenticated session; 0 before authentication.
fn flag(stream: *const apm_stream, value: *mut i32, f: impl FnOnce(&Info) -> bool) -> Result<()> {
    get::<NegotiateStreamClass, _>(stream, value, "value", |s| Ok(s.info_if_any().is_some_and(|i| f(&i)) as i32))
}

/// IsAuthenticated: 1 after a successful authentication.
/// Errors: APM_E_ARGUMENT_NULL (stream, value), APM_E_ARGUMENT (not a NegotiateStream handle),
/// APM_E_OBJECT_DISPOSED.
#[no_mangle]
pub unsafe extern "C" fn apm_negotiate_stream_is_authenticated(stream: *mut apm_stream, value: *mut i32) -> apm_status {
    boundary!({ flag(stream, value, |_| true) })
}

/// IsServer: 1 when the stream authenticated (or tried to) as the server.
/// Errors: as apm_negotiate_stream_is_authenticated.
#[no_mangle]
pub unsafe extern "C" fn apm_negotiate_stream_is_server(stream: *mut apm_stream, value: *mut i32) -> apm_status {
    boundary!({ get::<NegotiateStreamClass, _>(stream, value, "value", |s| Ok(s.is_server() as i32)) })
}

/// IsEncrypted: 1 when the authenticated context seals (confidentiality).
/// Errors: as apm_negotiate_stream_is_authenticated.
#[no_mangle]
pub unsafe extern "C" fn apm_negotiate_stream_is_encrypted(stream: *mut apm_stream, value: *mut i32) -> apm_status {
    boundary!({ flag(stream, value, Info::is_encrypted) })
}

/// IsSigned: 1 when the authenticated context signs (integrity or confidentiality).
/// Errors: as apm_negotiate_stream_is_authenticated.
#[no_mangle]
pub unsafe extern "C" fn apm_negotiate_stream_is_signed(stream: *mut apm_stream, value: *mut i32) -> apm_status {
    boundary!({ flag(stream, value, Info::is_signed) })
}

/// IsMutuallyAuthenticated: 1 when the server proved its identity too (Kerberos with mutual
/// authentication; never NTLM, as .NET).
/// Errors: as apm_negotiate_stream_is_authenticated.
#[no_mangle]
pub unsafe extern "C" fn apm_negotiate_stream_is_mutually_authenticated(
    stream: *mut apm_stream,
    value: *mut i32,
) -> apm_status {
    boundary!({ flag(stream, value, Info::is_mutually_authenticated) })
}

fn info_of(stream: *const apm_stream) -> Result<std::sync::Arc<Info>> {
    lookup::<NegotiateStreamClass>(stream)?.info()
}

/// ImpersonationLevel: an APM_TOKEN_IMPERSONATION_LEVEL_* value (NTLM: Identification).
/// Errors: APM_E_ARGUMENT_NULL (stream, level), APM_E_ARGUMENT (not a NegotiateStream handle),
/// APM_E_OBJECT_DISPOSED, APM_E_INVALID_OPERATION (not authenticated), the stored authentication
/// failure.
#[no_mangle]
pub unsafe extern "C" fn apm_negotiate_stream_get_impersonation_level(
    stream: *mut apm_stream,
    level: *mut i32,
) -> apm_status {
    boundary!({ get::<NegotiateStreamClass, _>(stream, level, "level", |s| Ok(s.info()?.impersonation_level())) })
}

/// RemoteIdentity.Name: on a server the client ("DOMAIN\user" for NTLM, "user@REALM" for
/// Kerberos), on a client the target name it authenticated to (as .NET). Copied as
/// `apm_last_error_message` copies.
/// Errors: APM_E_ARGUMENT_NULL (stream; buffer NULL with a nonzero buffer_len), APM_E_ARGUMENT
/// (not a NegotiateStream handle), APM_E_OBJECT_DISPOSED, APM_E_INVALID_OPERATION (not
/// authenticated: "This operation is only allowed using a successfully authenticated context."),
/// the stored authentication failure.
#[no_mangle]
pub unsafe extern "C" fn apm_negotiate_stream_get_remote_identity_name(
    stream: *mut apm_stream,
    buffer: *mut c_char,
    buffer_len: usize,
    name_len: *mut usize,
) -> apm_status {
    boundary!({ copy_text(&info_of(stream)?.remote_name, buffer, buffer_len, name_len) })
}

/// RemoteIdentity.AuthenticationType: "NTLM" or "Kerberos". Copied as
/// `apm_negotiate_stream_get_remote_identity_name`.
/// Errors: as apm_negotiate_stream_get_remote_identity_name.
#[no_mangle]
pub unsafe extern "C" fn apm_negotiate_stream_get_remote_identity_authentication_type(
    stream: *mut apm_stream,
    buffer: *mut c_char,
    buffer_len: usize,
    type_len: *mut usize,
) -> apm_status {
    boundary!({ copy_text(info_of(stream)?.package, buffer, buffer_len, type_len) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::negotiate::{impersonation_level as il, policy_enforcement as pe, protection_level as pl};

    #[test]
    fn the_c_constants_are_the_dotnet_values() {
        assert_eq!(
            [APM_PROTECTION_LEVEL_NONE, APM_PROTECTION_LEVEL_SIGN, APM_PROTECTION_LEVEL_ENCRYPT_AND_SIGN],
            [pl::NONE, pl::SIGN, pl::ENCRYPT_AND_SIGN]
        );
        assert_eq!(
            [
                APM_TOKEN_IMPERSONATION_LEVEL_NONE,
                APM_TOKEN_IMPERSONATION_LEVEL_ANONYMOUS,
                APM_TOKEN_IMPERSONATION_LEVEL_IDENTIFICATION,
                APM_TOKEN_IMPERSONATION_LEVEL_IMPERSONATION,
                APM_TOKEN_IMPERSONATION_LEVEL_DELEGATION
            ],
            [il::NONE, il::ANONYMOUS, il::IDENTIFICATION, il::IMPERSONATION, il::DELEGATION]
        );
        assert_eq!(
            [APM_POLICY_ENFORCEMENT_NEVER, APM_POLICY_ENFORCEMENT_WHEN_SUPPORTED, APM_POLICY_ENFORCEMENT_ALWAYS],
            [pe::NEVER, pe::WHEN_SUPPORTED, pe::ALWAYS]
        );
    }
}
