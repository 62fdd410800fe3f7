//! NegotiateAuthentication, as C sees it: one authentication exchange whose blobs the caller
//! carries (in an HTTP header, a custom protocol), then wrap, unwrap and MICs on the context.
//!
//! The options are parameters, as for `apm_negotiate_stream_authenticate_as_*`. Outputs follow
//! the header's buffer convention (copy up to `buffer_len`, write the full length); since a step
//! or a wrap cannot be repeated, each call's output is also kept by the object until the next
//! call, and `apm_negotiate_authentication_get_last_output` copies it again into a larger buffer.

use super::credential::apm_credential;
use super::handles::{lookup_named, CredentialClass, NegotiateAuthenticationClass, TransportContextClass};
use super::negotiate_stream::{service_names_arg, APM_POLICY_ENFORCEMENT_ALWAYS};
use super::ssl_stream::apm_transport_context;
use super::*;
use crate::channel_binding::kind as binding_kind;
use crate::negotiate::authentication::{ClientOptions, NegotiateAuthentication, Policy, ServerOptions};
use crate::negotiate::{impersonation_level, protection_level};
use std::sync::Mutex;

/// A NegotiateAuthentication (System.Net.Security.NegotiateAuthentication). Opaque; the caller
/// owns it and releases it with `apm_negotiate_authentication_close`. Usable from several threads,
/// one call at a time (calls wait for each other).
pub struct apm_negotiate_authentication {
    _private: [u8; 0],
}

/// NegotiateAuthenticationStatusCode.Completed: the exchange is done (send the blob, if any).
pub const APM_NEGOTIATE_AUTHENTICATION_STATUS_COMPLETED: i32 = 0;
/// ContinueNeeded: send the blob and pass the peer's answer to the next call.
pub const APM_NEGOTIATE_AUTHENTICATION_STATUS_CONTINUE_NEEDED: i32 = 1;
/// GenericFailure (also: a step after the exchange completed or failed).
pub const APM_NEGOTIATE_AUTHENTICATION_STATUS_GENERIC_FAILURE: i32 = 2;
/// BadBinding: the channel binding does not match (or a required one is missing).
pub const APM_NEGOTIATE_AUTHENTICATION_STATUS_BAD_BINDING: i32 = 3;
/// Unsupported: the package cannot be used with these options (an unknown package, NTLM with
/// the default credential, Kerberos without GSSAPI).
pub const APM_NEGOTIATE_AUTHENTICATION_STATUS_UNSUPPORTED: i32 = 4;
/// MessageAltered: a signature does not verify (or a message is replayed or out of order).
pub const APM_NEGOTIATE_AUTHENTICATION_STATUS_MESSAGE_ALTERED: i32 = 5;
/// ContextExpired.
pub const APM_NEGOTIATE_AUTHENTICATION_STATUS_CONTEXT_EXPIRED: i32 = 6;
/// CredentialsExpired.
pub const APM_NEGOTIATE_AUTHENTICATION_STATUS_CREDENTIALS_EXPIRED: i32 = 7;
/// InvalidCredentials.
pub const APM_NEGOTIATE_AUTHENTICATION_STATUS_INVALID_CREDENTIALS: i32 = 8;
/// InvalidToken: a malformed or unexpected blob.
pub const APM_NEGOTIATE_AUTHENTICATION_STATUS_INVALID_TOKEN: i32 = 9;
/// UnknownCredentials: a wrong password or an unknown user (SSPI's LogonDenied, as .NET's Windows
/// and managed NTLM report it; .NET 8 on Linux reports GenericFailure), no credentials.
pub const APM_NEGOTIATE_AUTHENTICATION_STATUS_UNKNOWN_CREDENTIALS: i32 = 10;
/// QopNotSupported.
pub const APM_NEGOTIATE_AUTHENTICATION_STATUS_QOP_NOT_SUPPORTED: i32 = 11;
/// OutOfSequence.
pub const APM_NEGOTIATE_AUTHENTICATION_STATUS_OUT_OF_SEQUENCE: i32 = 12;
/// SecurityQosFailed: the negotiated protection level is below the required one.
pub const APM_NEGOTIATE_AUTHENTICATION_STATUS_SECURITY_QOS_FAILED: i32 = 13;
/// TargetUnknown: the service name is not accepted.
pub const APM_NEGOTIATE_AUTHENTICATION_STATUS_TARGET_UNKNOWN: i32 = 14;
/// ImpersonationValidationFailed: the client allows less than the server's required level.
pub const APM_NEGOTIATE_AUTHENTICATION_STATUS_IMPERSONATION_VALIDATION_FAILED: i32 = 15;

/// The object behind a handle: the exchange and the last call's output.
pub(crate) struct AuthObject {
    state: Mutex<(NegotiateAuthentication, Vec<u8>)>,
}

impl AuthObject {
    pub(crate) fn dispose(&self) {
        let mut g = self.state.lock().unwrap_or_else(|e| e.into_inner());
        g.0.dispose();
        g.1 = Vec::new();
    }

    fn with<R>(&self, f: impl FnOnce(&mut NegotiateAuthentication, &mut Vec<u8>) -> Result<R>) -> Result<R> {
        let mut g = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (auth, out) = &mut *g;
        f(auth, out)
    }
}

fn hand_out(a: NegotiateAuthentication, out: *mut *mut apm_negotiate_authentication) -> Result<()> {
    let object = Arc::new(AuthObject { state: Mutex::new((a, Vec::new())) });
    let p: *mut apm_negotiate_authentication =
        register(Kind::NegotiateAuthentication, Object::NegotiateAuthentication(object), std::ptr::null())?;
    write_out(out, "authentication", p)
}

fn package_arg(p: *const c_char) -> Result<String> {
    Ok(if p.is_null() { "Negotiate".into() } else { str_arg(p, "package")?.to_string() })
}

/// The ChannelBinding of `kind` of a TransportContext (NULL: none).
fn binding_arg(context: *mut apm_transport_context, kind: i32) -> Result<Option<Vec<u8>>> {
    if context.is_null() {
        return Ok(None);
    }
    let ctx = lookup_named::<TransportContextClass>(context, "bindingContext")?;
    if kind != binding_kind::ENDPOINT && kind != binding_kind::UNIQUE {
        return Err(Error::out_of_range("bindingKind"));
    }
    match ctx.binding(kind)? {
        Some(b) => Ok(Some(b)),
        None => Err(Error::argument("The transport context has no channel binding of this kind (not authenticated).")),
    }
}

fn level_args(protection: i32, impersonation: i32) -> Result<()> {
    if !(protection_level::NONE..=protection_level::ENCRYPT_AND_SIGN).contains(&protection) {
        return Err(Error::out_of_range("requiredProtectionLevel"));
    }
    if !(impersonation_level::NONE..=impersonation_level::DELEGATION).contains(&impersonation) {
        return Err(Error::out_of_range("impersonationLevel"));
    }
    Ok(())
}

/// `new NegotiateAuthentication(NegotiateAuthenticationClientOptions)`. `package`: "Negotiate"
/// (NULL; SPNEGO: Kerberos when a ticket for the target can be had, else NTLM), "NTLM" or
/// "Kerberos". `credential`: from `apm_credential_create` or `apm_credential_create_default`
/// (NULL: the default credential, the ticket cache; NTLM is not possible with it). `target_name`:
/// the service principal name "SERVICE/host" (NULL: ""). `binding_context` (NULL: no binding): any
/// TransportContext (`apm_ssl_stream_get_transport_context`,
/// `apm_http_request_end_get_request_stream`'s), whose channel binding of `binding_kind`
/// (APM_CHANNEL_BINDING_KIND_ENDPOINT or _UNIQUE) the authentication is bound to.
/// `required_protection_level`: APM_PROTECTION_LEVEL_*, what the context must reach (Sign and
/// EncryptAndSign also ask for it). `require_mutual_authentication`: nonzero asks Kerberos for it.
/// `allowed_impersonation_level`: APM_TOKEN_IMPERSONATION_LEVEL_*. The credential and context may
/// be closed right after the call. Options nothing can be done with are not an error here: the
/// first `apm_negotiate_authentication_get_outgoing_blob` reports
/// APM_NEGOTIATE_AUTHENTICATION_STATUS_UNSUPPORTED, as .NET does.
/// Errors: APM_E_ARGUMENT_NULL (authentication), APM_E_ARGUMENT (a string not UTF-8; credential not
/// a credential handle, or a server's user list; binding_context not a TransportContext handle, or
/// without a binding of that kind), APM_E_ARGUMENT_OUT_OF_RANGE (bindingKind,
/// requiredProtectionLevel, impersonationLevel), APM_E_OBJECT_DISPOSED (a closed credential or
/// context), APM_E_OUT_OF_MEMORY (no handle left).
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn apm_negotiate_authentication_create_client(
    package: *const c_char,
    credential: *mut apm_credential,
    target_name: *const c_char,
    binding_context: *mut apm_transport_context,
    binding_kind: i32,
    required_protection_level: i32,
    require_mutual_authentication: i32,
    allowed_impersonation_level: i32,
    authentication: *mut *mut apm_negotiate_authentication,
) -> apm_status {
    boundary!({
        need_out(authentication, "authentication")?;
        let mut o = ClientOptions::new(&package_arg(package)?);
        if !credential.is_null() {
            o.credential = lookup::<CredentialClass>(credential)?
                .for_client()
                .ok_or_else(|| Error::argument("A server's user list cannot authenticate a client."))?;
        }
        if !target_name.is_null() {
            o.target_name = str_arg(target_name, "targetName")?.to_string();
        }
        o.binding = binding_arg(binding_context, binding_kind)?;
        level_args(required_protection_level, allowed_impersonation_level)?;
        o.required_protection_level = required_protection_level;
        o.require_mutual_authentication = require_mutual_authentication != 0;
        o.allowed_impersonation_level = allowed_impersonation_level;
        hand_out(NegotiateAuthentication::client(&o), authentication)
    })
}

/// `new NegotiateAuthentication(NegotiateAuthenticationServerOptions)`. `package` as for the
/// client ("Negotiate" also accepts raw NTLM blobs). `credential`: the NTLM users
/// (`apm_credential_create_from_file`, `_create_lookup`, or one user from `apm_credential_create`);
/// Kerberos clients are accepted through the keytab (KRB5_KTNAME); NULL or the default credential:
/// Kerberos only. The ExtendedProtectionPolicy: `binding_context` and `binding_kind` give this
/// side's channel binding (NULL: none), `policy_enforcement` (APM_POLICY_ENFORCEMENT_*) how it is
/// checked: Never not at all, WhenSupported a client that sends a binding must match, Always it
/// must send a matching one; `service_names` (`service_count` SPNs, "SERVICE/host"; NULL: any) are
/// the NTLM target names accepted under WhenSupported and Always. Unlike .NET on Linux, the
/// binding and names are checked. The negotiated levels must reach `required_protection_level`
/// and `required_impersonation_level`.
/// Errors: as apm_negotiate_authentication_create_client, and APM_E_ARGUMENT_NULL (service_names
/// NULL with a nonzero count, a NULL name), APM_E_ARGUMENT_OUT_OF_RANGE (policyEnforcement).
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn apm_negotiate_authentication_create_server(
    package: *const c_char,
    credential: *mut apm_credential,
    binding_context: *mut apm_transport_context,
    binding_kind: i32,
    policy_enforcement: i32,
    service_names: *const *const c_char,
    service_count: usize,
    required_protection_level: i32,
    required_impersonation_level: i32,
    authentication: *mut *mut apm_negotiate_authentication,
) -> apm_status {
    boundary!({
        need_out(authentication, "authentication")?;
        let mut o = ServerOptions::new(&package_arg(package)?);
        if !credential.is_null() {
            o.users = lookup::<CredentialClass>(credential)?.for_server();
        }
        let binding = binding_arg(binding_context, binding_kind)?;
        let names = service_names_arg(service_names, service_count)?;
        if !(0..=APM_POLICY_ENFORCEMENT_ALWAYS).contains(&policy_enforcement) {
            return Err(Error::out_of_range("policyEnforcement"));
        }
        level_args(required_protection_level, required_impersonation_level)?;
        o.policy = Some(Policy { enforcement: policy_enforcement, custom_channel_binding: binding, custom_service_names: names });
        o.required_protection_level = required_protection_level;
        o.required_impersonation_level = required_impersonation_level;
        hand_out(NegotiateAuthentication::server(&o), authentication)
    })
}

/// An input buffer: NULL with 0 is empty.
fn bytes_in<'a>(p: *const u8, len: usize, name: &str) -> Result<&'a [u8]> {
    if p.is_null() {
        if len > 0 {
            return Err(Error::argument_null(name));
        }
        return Ok(&[]);
    }
    // SAFETY: the caller passes `len` readable bytes at `p`, valid for the call.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// Keeps `data` as the last output and copies it out.
fn output(kept: &mut Vec<u8>, data: Vec<u8>, buffer: *mut u8, buffer_len: usize, len: *mut usize) -> Result<()> {
    *kept = data;
    copy_bytes(kept, buffer, buffer_len, len)
}

/// GetOutgoingBlob(incomingBlob, out statusCode): one step of the exchange. `incoming` (`incoming_len`
/// bytes; NULL or 0: none, a client's first call) is the peer's last blob. The blob for the peer is
/// copied into `buffer` and its length written to `blob_len` (0: nothing to send); when it is
/// longer than `buffer_len`, `apm_negotiate_authentication_get_last_output` copies it whole.
/// `*status_code` (an APM_NEGOTIATE_AUTHENTICATION_STATUS_* value) is the outcome: ContinueNeeded
/// (send the blob, call again with the answer), Completed (send the blob if any; the context is
/// established), or a failure (the exchange is over), as .NET reports it; failures are not an
/// apm_status. The options are checked on completion: a Kerberos client that did not bind when
/// the policy is Always (BadBinding), the impersonation level (ImpersonationValidationFailed),
/// the protection level (SecurityQosFailed). A Kerberos step calls the system's GSSAPI and blocks
/// the calling thread until the KDC answers, as .NET's does.
/// Errors: APM_E_ARGUMENT_NULL (authentication, status_code; incoming NULL with a nonzero incoming_len; buffer
/// NULL with a nonzero buffer_len), APM_E_ARGUMENT (not a NegotiateAuthentication handle),
/// APM_E_OBJECT_DISPOSED.
#[no_mangle]
pub unsafe extern "C" fn apm_negotiate_authentication_get_outgoing_blob(
    authentication: *mut apm_negotiate_authentication,
    incoming: *const u8,
    incoming_len: usize,
    buffer: *mut u8,
    buffer_len: usize,
    blob_len: *mut usize,
    status_code: *mut i32,
) -> apm_status {
    boundary!({
        let a = lookup::<NegotiateAuthenticationClass>(authentication)?;
        need_out(status_code, "statusCode")?;
        let incoming = bytes_in(incoming, incoming_len, "incomingBlob")?;
        if buffer.is_null() && buffer_len > 0 {
            return Err(Error::argument_null("buffer"));
        }
        a.with(|auth, kept| {
            let (blob, code) = auth.get_outgoing_blob(incoming)?;
            output(kept, blob.unwrap_or_default(), buffer, buffer_len, blob_len)?;
            write_out(status_code, "statusCode", code)
        })
    })
}

/// The output of the last get_outgoing_blob, wrap, unwrap or compute_integrity_check, again
/// (for a buffer that was too small). Copies up to `buffer_len` bytes, writes the full length.
/// Errors: APM_E_ARGUMENT_NULL (authentication; buffer NULL with a nonzero buffer_len),
/// APM_E_ARGUMENT (not a NegotiateAuthentication handle), APM_E_OBJECT_DISPOSED.
#[no_mangle]
pub unsafe extern "C" fn apm_negotiate_authentication_get_last_output(
    authentication: *mut apm_negotiate_authentication,
    buffer: *mut u8,
    buffer_len: usize,
    output_len: *mut usize,
) -> apm_status {
    boundary!({
        let a = lookup::<NegotiateAuthenticationClass>(authentication)?;
        a.with(|_, kept| copy_bytes(kept, buffer, buffer_len, output_len))
    })
}

/// Wrap(input, outputWriter, requestEncryption, out isEncrypted): protects `input` for the peer.
/// The token goes to `buffer` as get_outgoing_blob's blob does (`output_len`, get_last_output).
/// `request_encryption` nonzero seals when the context has confidentiality (NTLM seals whenever
/// sealing was negotiated, since its peer unseals then); `*is_encrypted` (optional) says whether
/// it did. `*status_code`: Completed, or the mechanism's failure.
/// Errors: APM_E_ARGUMENT_NULL (authentication, status_code; input or buffer NULL with a nonzero
/// length), APM_E_ARGUMENT (not a NegotiateAuthentication handle), APM_E_OBJECT_DISPOSED,
/// APM_E_INVALID_OPERATION (not authenticated: "This operation is only allowed using a
/// successfully authenticated context.").
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn apm_negotiate_authentication_wrap(
    authentication: *mut apm_negotiate_authentication,
    input: *const u8,
    input_len: usize,
    request_encryption: i32,
    buffer: *mut u8,
    buffer_len: usize,
    output_len: *mut usize,
    is_encrypted: *mut i32,
    status_code: *mut i32,
) -> apm_status {
    boundary!({
        let a = lookup::<NegotiateAuthenticationClass>(authentication)?;
        need_out(status_code, "statusCode")?;
        let data = bytes_in(input, input_len, "input")?;
        if buffer.is_null() && buffer_len > 0 {
            return Err(Error::argument_null("buffer"));
        }
        a.with(|auth, kept| {
            let mut out = Vec::with_capacity(data.len() + 64);
            let (code, enc) = auth.wrap(data, request_encryption != 0, &mut out)?;
            output(kept, out, buffer, buffer_len, output_len)?;
            optional_out(is_encrypted, enc as i32);
            write_out(status_code, "statusCode", code)
        })
    })
}

fn optional_out(p: *mut i32, v: i32) {
    if !p.is_null() {
        // SAFETY: optional out-parameter, checked non-NULL.
        unsafe { *p = v };
    }
}

/// Unwrap(input, outputWriter, out wasEncrypted): opens a token from the peer's wrap. The
/// plaintext goes to `buffer` as get_outgoing_blob's blob does; `*was_encrypted` (optional) says
/// whether it was sealed. `*status_code`: Completed, MessageAltered (a forged, altered, replayed
/// or reordered token), InvalidToken (a malformed one).
/// Errors: as apm_negotiate_authentication_wrap.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn apm_negotiate_authentication_unwrap(
    authentication: *mut apm_negotiate_authentication,
    input: *const u8,
    input_len: usize,
    buffer: *mut u8,
    buffer_len: usize,
    output_len: *mut usize,
    was_encrypted: *mut i32,
    status_code: *mut i32,
) -> apm_status {
    boundary!({
        let a = lookup::<NegotiateAuthenticationClass>(authentication)?;
        need_out(status_code, "statusCode")?;
        let token = bytes_in(input, input_len, "input")?;
        if buffer.is_null() && buffer_len > 0 {
            return Err(Error::argument_null("buffer"));
        }
        a.with(|auth, kept| {
            let mut out = Vec::with_capacity(token.len());
            let (code, enc) = auth.unwrap(token, &mut out)?;
            output(kept, out, buffer, buffer_len, output_len)?;
            optional_out(was_encrypted, enc as i32);
            write_out(status_code, "statusCode", code)
        })
    })
}

/// ComputeIntegrityCheck(message, signatureWriter): the MIC of `input`, copied to `buffer` as
/// get_outgoing_blob's blob is (`mic_len`, get_last_output).
/// Errors: as apm_negotiate_authentication_wrap, and APM_E_AUTHENTICATION (the mechanism failed:
/// "Authentication failed, see inner exception.").
#[no_mangle]
pub unsafe extern "C" fn apm_negotiate_authentication_compute_integrity_check(
    authentication: *mut apm_negotiate_authentication,
    input: *const u8,
    input_len: usize,
    buffer: *mut u8,
    buffer_len: usize,
    mic_len: *mut usize,
) -> apm_status {
    boundary!({
        let a = lookup::<NegotiateAuthenticationClass>(authentication)?;
        let data = bytes_in(input, input_len, "message")?;
        if buffer.is_null() && buffer_len > 0 {
            return Err(Error::argument_null("buffer"));
        }
        a.with(|auth, kept| {
            let mic = auth.compute_integrity_check(data)?;
            output(kept, mic, buffer, buffer_len, mic_len)
        })
    })
}

/// VerifyIntegrityCheck(message, signature): `*valid` 1 when `signature` is the peer's MIC of
/// `input` (in sequence), else 0.
/// Errors: APM_E_ARGUMENT_NULL (authentication, valid; input or signature NULL with a nonzero
/// length), APM_E_ARGUMENT (not a NegotiateAuthentication handle), APM_E_OBJECT_DISPOSED,
/// APM_E_INVALID_OPERATION (not authenticated).
#[no_mangle]
pub unsafe extern "C" fn apm_negotiate_authentication_verify_integrity_check(
    authentication: *mut apm_negotiate_authentication,
    input: *const u8,
    input_len: usize,
    signature: *const u8,
    signature_len: usize,
    valid: *mut i32,
) -> apm_status {
    boundary!({
        let a = lookup::<NegotiateAuthenticationClass>(authentication)?;
        need_out(valid, "valid")?;
        let data = bytes_in(input, input_len, "message")?;
        let sig = bytes_in(signature, signature_len, "signature")?;
        a.with(|auth, _| write_out(valid, "valid", auth.verify_integrity_check(data, sig)? as i32))
    })
}

/// One property, read under the object's lock.
fn property<T>(a: *const apm_negotiate_authentication, f: impl FnOnce(&NegotiateAuthentication) -> Result<T>) -> Result<T> {
    lookup::<NegotiateAuthenticationClass>(a)?.with(|auth, _| f(auth))
}

/// A property getter: the object, then `value`, then `f` reads under the object's lock.
fn get_property<T>(
    a: *const apm_negotiate_authentication,
    value: *mut T,
    f: impl FnOnce(&NegotiateAuthentication) -> T,
) -> Result<()> {
    get::<NegotiateAuthenticationClass, _>(a, value, "value", |o| o.with(|auth, _| Ok(f(auth))))
}

fn flag_out(a: *const apm_negotiate_authentication, value: *mut i32, f: impl FnOnce(&NegotiateAuthentication) -> bool) -> Result<()> {
    get_property(a, value, |auth| f(auth) as i32)
}

/// IsAuthenticated: 1 once the exchange completed and met the options.
/// Errors: APM_E_ARGUMENT_NULL (authentication, value), APM_E_ARGUMENT (not a
/// NegotiateAuthentication handle), APM_E_OBJECT_DISPOSED.
#[no_mangle]
pub unsafe extern "C" fn apm_negotiate_authentication_is_authenticated(
    authentication: *mut apm_negotiate_authentication,
    value: *mut i32,
) -> apm_status {
    boundary!({ flag_out(authentication, value, NegotiateAuthentication::is_authenticated) })
}

/// IsServer.
/// Errors: as apm_negotiate_authentication_is_authenticated.
#[no_mangle]
pub unsafe extern "C" fn apm_negotiate_authentication_is_server(
    authentication: *mut apm_negotiate_authentication,
    value: *mut i32,
) -> apm_status {
    boundary!({ flag_out(authentication, value, NegotiateAuthentication::is_server) })
}

/// IsSigned: the context signs (integrity or confidentiality).
/// Errors: as apm_negotiate_authentication_is_authenticated.
#[no_mangle]
pub unsafe extern "C" fn apm_negotiate_authentication_is_signed(
    authentication: *mut apm_negotiate_authentication,
    value: *mut i32,
) -> apm_status {
    boundary!({ flag_out(authentication, value, NegotiateAuthentication::is_signed) })
}

/// IsEncrypted: the context seals.
/// Errors: as apm_negotiate_authentication_is_authenticated.
#[no_mangle]
pub unsafe extern "C" fn apm_negotiate_authentication_is_encrypted(
    authentication: *mut apm_negotiate_authentication,
    value: *mut i32,
) -> apm_status {
    boundary!({ flag_out(authentication, value, NegotiateAuthentication::is_encrypted) })
}

/// IsMutuallyAuthenticated: the server proved its identity too (Kerberos; never NTLM).
/// Errors: as apm_negotiate_authentication_is_authenticated.
#[no_mangle]
pub unsafe extern "C" fn apm_negotiate_authentication_is_mutually_authenticated(
    authentication: *mut apm_negotiate_authentication,
    value: *mut i32,
) -> apm_status {
    boundary!({ flag_out(authentication, value, NegotiateAuthentication::is_mutually_authenticated) })
}

/// ProtectionLevel: the negotiated APM_PROTECTION_LEVEL_* (None before completion).
/// Errors: as apm_negotiate_authentication_is_authenticated.
#[no_mangle]
pub unsafe extern "C" fn apm_negotiate_authentication_get_protection_level(
    authentication: *mut apm_negotiate_authentication,
    value: *mut i32,
) -> apm_status {
    boundary!({ get_property(authentication, value, NegotiateAuthentication::protection_level) })
}

/// ImpersonationLevel: the negotiated APM_TOKEN_IMPERSONATION_LEVEL_* (NTLM: Identification).
/// Errors: as apm_negotiate_authentication_is_authenticated.
#[no_mangle]
pub unsafe extern "C" fn apm_negotiate_authentication_get_impersonation_level(
    authentication: *mut apm_negotiate_authentication,
    value: *mut i32,
) -> apm_status {
    boundary!({ get_property(authentication, value, NegotiateAuthentication::impersonation_level) })
}

/// Package: the requested package, and once SPNEGO chose, "NTLM" or "Kerberos". Copied as
/// `apm_last_error_message` copies (NUL-terminated, truncated; `package_len` the full length).
/// Errors: APM_E_ARGUMENT_NULL (authentication; buffer NULL with a nonzero buffer_len),
/// APM_E_ARGUMENT (not a NegotiateAuthentication handle), APM_E_OBJECT_DISPOSED.
#[no_mangle]
pub unsafe extern "C" fn apm_negotiate_authentication_get_package(
    authentication: *mut apm_negotiate_authentication,
    buffer: *mut c_char,
    buffer_len: usize,
    package_len: *mut usize,
) -> apm_status {
    boundary!({ copy_text(&property(authentication, |a| Ok(a.package().to_string()))?, buffer, buffer_len, package_len) })
}

/// TargetName: the client's service principal name ("" on a server, which does not report the
/// client's). Copied as apm_negotiate_authentication_get_package copies.
/// Errors: as apm_negotiate_authentication_get_package.
#[no_mangle]
pub unsafe extern "C" fn apm_negotiate_authentication_get_target_name(
    authentication: *mut apm_negotiate_authentication,
    buffer: *mut c_char,
    buffer_len: usize,
    name_len: *mut usize,
) -> apm_status {
    boundary!({
        let name = property(authentication, |a| Ok(a.target_name().unwrap_or("").to_string()))?;
        copy_text(&name, buffer, buffer_len, name_len)
    })
}

/// RemoteIdentity.Name: on a server the client ("DOMAIN\user" for NTLM, "user@REALM" for
/// Kerberos), on a client the target name (as .NET). Copied as get_package copies.
/// Errors: as apm_negotiate_authentication_get_package, and APM_E_INVALID_OPERATION (not
/// authenticated: "This operation is only allowed using a successfully authenticated context.").
#[no_mangle]
pub unsafe extern "C" fn apm_negotiate_authentication_get_remote_identity_name(
    authentication: *mut apm_negotiate_authentication,
    buffer: *mut c_char,
    buffer_len: usize,
    name_len: *mut usize,
) -> apm_status {
    boundary!({ copy_text(&property(authentication, |a| a.remote_identity())?.0, buffer, buffer_len, name_len) })
}

/// RemoteIdentity.AuthenticationType: "NTLM" or "Kerberos".
/// Errors: as apm_negotiate_authentication_get_remote_identity_name.
#[no_mangle]
pub unsafe extern "C" fn apm_negotiate_authentication_get_remote_identity_authentication_type(
    authentication: *mut apm_negotiate_authentication,
    buffer: *mut c_char,
    buffer_len: usize,
    type_len: *mut usize,
) -> apm_status {
    boundary!({ copy_text(&property(authentication, |a| a.remote_identity())?.1, buffer, buffer_len, type_len) })
}

/// Dispose: releases the handle and the security context; closing a closed one is a no-op. A
/// call running on another thread (a blocking Kerberos step) finishes first.
/// Errors: APM_E_ARGUMENT_NULL (authentication), APM_E_ARGUMENT (not a NegotiateAuthentication
/// handle).
#[no_mangle]
pub unsafe extern "C" fn apm_negotiate_authentication_close(authentication: *mut apm_negotiate_authentication) -> apm_status {
    boundary!({ close::<NegotiateAuthenticationClass>(authentication) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::negotiate::authentication::status;

    #[test]
    fn the_c_status_codes_are_the_dotnet_values() {
        let pairs = [
            (APM_NEGOTIATE_AUTHENTICATION_STATUS_COMPLETED, status::COMPLETED),
            (APM_NEGOTIATE_AUTHENTICATION_STATUS_CONTINUE_NEEDED, status::CONTINUE_NEEDED),
            (APM_NEGOTIATE_AUTHENTICATION_STATUS_GENERIC_FAILURE, status::GENERIC_FAILURE),
            (APM_NEGOTIATE_AUTHENTICATION_STATUS_BAD_BINDING, status::BAD_BINDING),
            (APM_NEGOTIATE_AUTHENTICATION_STATUS_UNSUPPORTED, status::UNSUPPORTED),
            (APM_NEGOTIATE_AUTHENTICATION_STATUS_MESSAGE_ALTERED, status::MESSAGE_ALTERED),
            (APM_NEGOTIATE_AUTHENTICATION_STATUS_CONTEXT_EXPIRED, status::CONTEXT_EXPIRED),
            (APM_NEGOTIATE_AUTHENTICATION_STATUS_CREDENTIALS_EXPIRED, status::CREDENTIALS_EXPIRED),
            (APM_NEGOTIATE_AUTHENTICATION_STATUS_INVALID_CREDENTIALS, status::INVALID_CREDENTIALS),
            (APM_NEGOTIATE_AUTHENTICATION_STATUS_INVALID_TOKEN, status::INVALID_TOKEN),
            (APM_NEGOTIATE_AUTHENTICATION_STATUS_UNKNOWN_CREDENTIALS, status::UNKNOWN_CREDENTIALS),
            (APM_NEGOTIATE_AUTHENTICATION_STATUS_QOP_NOT_SUPPORTED, status::QOP_NOT_SUPPORTED),
            (APM_NEGOTIATE_AUTHENTICATION_STATUS_OUT_OF_SEQUENCE, status::OUT_OF_SEQUENCE),
            (APM_NEGOTIATE_AUTHENTICATION_STATUS_SECURITY_QOS_FAILED, status::SECURITY_QOS_FAILED),
            (APM_NEGOTIATE_AUTHENTICATION_STATUS_TARGET_UNKNOWN, status::TARGET_UNKNOWN),
            (APM_NEGOTIATE_AUTHENTICATION_STATUS_IMPERSONATION_VALIDATION_FAILED, status::IMPERSONATION_VALIDATION_FAILED),
        ];
        for (i, (c, core)) in pairs.into_iter().enumerate() {
            assert_eq!((c, core), (i as i32, i as i32));
        }
    }
}
