//! SslStream, as C sees it: creation over any apm_stream, the validation and selection callbacks,
//! authentication as client or server (sync and Begin/End), shutdown, the properties and the
//! TransportContext. Reads, writes and close are the shared `apm_stream_*` functions.
//!
//! Where .NET versions differ we follow .NET Framework (DESIGN.md section 1): a second BeginWrite
//! while one is pending fails from BeginWrite with APM_E_NOT_SUPPORTED, and a second
//! BeginAuthenticate while one runs fails from Begin the same way.

use super::certificate::{apm_certificate, certificate_handle, optional_certificate};
use super::handles::{unregister, CertificateClass};
use super::stream::{begin_authenticate, create_layered};
use super::*;
use crate::tls::ssl_stream::{Mode, Session};
use crate::tls::AuthOptions;
use crate::tls::{SelectionArgs, SslStream, ValidationArgs};
use std::ffi::CString;

/// SslProtocols.None: let the library choose (TLS 1.2 and TLS 1.3).
pub const APM_SSL_PROTOCOLS_NONE: i32 = 0;
/// SslProtocols.Ssl2 (not supported).
pub const APM_SSL_PROTOCOLS_SSL2: i32 = 12;
/// SslProtocols.Ssl3 (not supported).
pub const APM_SSL_PROTOCOLS_SSL3: i32 = 48;
/// SslProtocols.Tls (TLS 1.0; only when asked for explicitly).
pub const APM_SSL_PROTOCOLS_TLS: i32 = 192;
/// SslProtocols.Tls11 (only when asked for explicitly).
pub const APM_SSL_PROTOCOLS_TLS11: i32 = 768;
/// SslProtocols.Tls12.
pub const APM_SSL_PROTOCOLS_TLS12: i32 = 3072;
/// SslProtocols.Tls13.
pub const APM_SSL_PROTOCOLS_TLS13: i32 = 12288;
/// SslPolicyErrors.None.
pub const APM_SSL_POLICY_ERRORS_NONE: i32 = 0;
/// SslPolicyErrors.RemoteCertificateNotAvailable.
pub const APM_SSL_POLICY_ERRORS_REMOTE_CERTIFICATE_NOT_AVAILABLE: i32 = 1;
/// SslPolicyErrors.RemoteCertificateNameMismatch.
pub const APM_SSL_POLICY_ERRORS_REMOTE_CERTIFICATE_NAME_MISMATCH: i32 = 2;
/// SslPolicyErrors.RemoteCertificateChainErrors.
pub const APM_SSL_POLICY_ERRORS_REMOTE_CERTIFICATE_CHAIN_ERRORS: i32 = 4;
/// ChannelBindingKind.Unknown.
pub const APM_CHANNEL_BINDING_KIND_UNKNOWN: i32 = 0;
/// ChannelBindingKind.Unique (0x19): tls-unique, the first Finished message.
pub const APM_CHANNEL_BINDING_KIND_UNIQUE: i32 = 0x19;
/// ChannelBindingKind.Endpoint (0x1A): tls-server-end-point, the hash of the server certificate.
pub const APM_CHANNEL_BINDING_KIND_ENDPOINT: i32 = 0x1a;

// The TransportContext is a class of its own (ffi/transport_context.rs); named here too for the
// files that took it from SslStream's.
pub use super::transport_context::apm_transport_context;

/// RemoteCertificateValidationCallback: decides whether the peer's certificate is accepted;
/// returns nonzero to accept. It runs once per handshake, as soon as the peer's certificate
/// arrived (or at the end of the handshake when none came), on the thread driving the handshake,
/// with no library lock held. `certificate` (NULL when the peer sent none) and the `chain_len`
/// handles of `chain` (from the peer's certificate towards the root) are valid during the call
/// only; `ssl_policy_errors` holds APM_SSL_POLICY_ERRORS_* flags. `sender` is the SslStream.
/// Without a callback a certificate is accepted only with no policy errors.
pub type apm_remote_certificate_validation_callback = Option<
    unsafe extern "C" fn(
        sender: *mut apm_stream,
        certificate: *mut apm_certificate,
        chain: *const *mut apm_certificate,
        chain_len: usize,
        ssl_policy_errors: i32,
        state: *mut c_void,
    ) -> i32,
>;

/// LocalCertificateSelectionCallback: chooses the certificate to present. A client calls it when
/// the server asks for a certificate (`local_certificates` then holds the client certificate
/// given to authenticate, if any; `acceptable_issuers` the server's list of CA names;
/// `remote_certificate` the server's certificate when it already arrived, else NULL). A server
/// authenticated without a certificate calls it once the client's hello arrived (`target_host`
/// is then the SNI name, "" when none). All pointers are valid during the call only. Return a
/// certificate handle with a private key (it stays the caller's to close; the stream keeps its own
/// reference), or NULL for none. Runs with no library lock held.
pub type apm_local_certificate_selection_callback = Option<
    unsafe extern "C" fn(
        sender: *mut apm_stream,
        target_host: *const c_char,
        local_certificates: *const *mut apm_certificate,
        local_len: usize,
        remote_certificate: *mut apm_certificate,
        acceptable_issuers: *const *const c_char,
        issuers_len: usize,
        state: *mut c_void,
    ) -> *mut apm_certificate,
>;

/// Certificate handles that live for one callback.
struct TempHandles(Vec<*mut apm_certificate>);

impl TempHandles {
    fn add(&mut self, c: &Arc<crate::tls::Certificate>) -> *mut apm_certificate {
        match certificate_handle(c.clone()) {
            Ok(p) => {
                self.0.push(p);
                p
            }
            Err(_) => std::ptr::null_mut(),
        }
    }
}

impl Drop for TempHandles {
    fn drop(&mut self) {
        for p in &self.0 {
            unregister(*p);
        }
    }
}

/// `new SslStream(inner, leaveInnerStreamOpen)`. With `leave_inner_stream_open` 0, closing the
/// SslStream closes the inner stream and releases its handle too (the caller then does not close
/// it, as a NetworkStream that owns its socket); with nonzero the inner stream stays the caller's.
/// `inner` may be any readable and writable stream: a NetworkStream, a custom stream, an
/// authenticated SslStream. The caller owns `*stream` (`apm_stream_close`). One read and one write
/// may be pending at once (a second fails with APM_E_NOT_SUPPORTED).
/// Errors: APM_E_ARGUMENT_NULL (inner, stream), APM_E_ARGUMENT (inner not a stream handle; "The
/// stream has to be read/write."), APM_E_OBJECT_DISPOSED (a closed inner stream),
/// APM_E_OUT_OF_MEMORY (no handle left).
#[no_mangle]
pub unsafe extern "C" fn apm_ssl_stream_create(
    inner: *mut apm_stream,
    leave_inner_stream_open: i32,
    stream: *mut *mut apm_stream,
) -> apm_status {
    boundary!({
        create_layered(inner, leave_inner_stream_open, stream, |inner, leave_open| {
            Ok((Kind::SslStream, Object::SslStream(SslStream::new(inner, leave_open)?)))
        })
    })
}

/// Sets the RemoteCertificateValidationCallback (NULL removes it); only before authentication.
/// `state` is passed to it as is, and stays the caller's: keep it valid while the stream may
/// authenticate. See `apm_remote_certificate_validation_callback` for its thread.
/// Errors: APM_E_ARGUMENT_NULL (stream), APM_E_ARGUMENT (not an SslStream handle),
/// APM_E_OBJECT_DISPOSED, APM_E_INVALID_OPERATION (authentication started or done), the stored
/// failure of an earlier authentication.
#[no_mangle]
pub unsafe extern "C" fn apm_ssl_stream_set_validation_callback(
    stream: *mut apm_stream,
    callback: apm_remote_certificate_validation_callback,
    state: *mut c_void,
) -> apm_status {
    boundary!({
        let s = lookup::<SslStreamClass>(stream)?;
        s.set_validation_callback(validation_callback(callback, stream, state))
    })
}

/// The core's validation callback calling the caller's C callback with `sender` and `state`.
pub(crate) fn validation_callback(
    callback: apm_remote_certificate_validation_callback,
    sender: *mut apm_stream,
    state: *mut c_void,
) -> Option<crate::tls::ValidationCallback> {
    let (sender, state) = (sender as usize, state as usize);
    callback.map(|f| {
        Arc::new(move |args: &ValidationArgs| -> bool {
            let mut temp = TempHandles(Vec::new());
            let cert = args.certificate.map(|c| temp.add(c)).unwrap_or(std::ptr::null_mut());
            let chain: Vec<*mut apm_certificate> = args.chain.iter().map(|c| temp.add(c)).collect();
            // SAFETY: the caller's callback with handles valid for the call and its own state.
            let r = unsafe {
                f(sender as *mut apm_stream, cert, chain.as_ptr(), chain.len(), args.errors, state as *mut c_void)
            };
            r != 0
        }) as crate::tls::ValidationCallback
    })
}

/// The CA certificates of the PEM file at `path` (NULL: None, the system store).
pub(crate) fn trusted_cas(path: *const c_char) -> Result<Option<crate::tls::certificate::TrustedCas>> {
    if path.is_null() {
        return Ok(None);
    }
    crate::tls::certificate::trusted_cas_from_file(str_arg(path, "path")?).map(Some)
}

/// Sets the LocalCertificateSelectionCallback (NULL removes it); only before authentication.
/// `state` as for `apm_ssl_stream_set_validation_callback`.
/// Errors: as apm_ssl_stream_set_validation_callback.
#[no_mangle]
pub unsafe extern "C" fn apm_ssl_stream_set_selection_callback(
    stream: *mut apm_stream,
    callback: apm_local_certificate_selection_callback,
    state: *mut c_void,
) -> apm_status {
    boundary!({
        let s = lookup::<SslStreamClass>(stream)?;
        let sender = stream as usize;
        let state = state as usize;
        let cb = callback.map(|f| {
            Arc::new(move |args: &SelectionArgs| -> Option<Arc<crate::tls::Certificate>> {
                let mut temp = TempHandles(Vec::new());
                let host = CString::new(args.target_host.replace('\0', "")).unwrap_or_default();
                let local: Vec<*mut apm_certificate> = args.local.iter().map(|c| temp.add(c)).collect();
                let remote = args.remote.map(|c| temp.add(c)).unwrap_or(std::ptr::null_mut());
                let issuers: Vec<CString> = args
                    .acceptable_issuers
                    .iter()
                    .map(|i| CString::new(i.replace('\0', "")).unwrap_or_default())
                    .collect();
                let issuer_ptrs: Vec<*const c_char> = issuers.iter().map(|i| i.as_ptr()).collect();
                // SAFETY: the caller's callback; every pointer is valid for the call.
                let chosen = unsafe {
                    f(
                        sender as *mut apm_stream,
                        host.as_ptr(),
                        local.as_ptr(),
                        local.len(),
                        remote,
                        issuer_ptrs.as_ptr(),
                        issuer_ptrs.len(),
                        state as *mut c_void,
                    )
                };
                if chosen.is_null() {
                    None
                } else {
                    lookup::<CertificateClass>(chosen).ok()
                }
            }) as crate::tls::SelectionCallback
        });
        s.set_selection_callback(cb)
    })
}

/// Trusts exactly the CA certificates of the PEM file at `path` instead of the system trust store
/// when validating the peer (NULL: the system store again); only before authentication. The file is
/// read during the call. For private CAs and tests.
/// Errors: APM_E_ARGUMENT_NULL (stream), APM_E_ARGUMENT (not an SslStream handle; path not UTF-8;
/// no certificate in the file), APM_E_OBJECT_DISPOSED, APM_E_FILE_NOT_FOUND,
/// APM_E_DIRECTORY_NOT_FOUND, APM_E_UNAUTHORIZED_ACCESS, APM_E_IO (another read failure),
/// APM_E_INVALID_OPERATION (authentication started or done), the stored failure of an earlier
/// authentication.
#[no_mangle]
pub unsafe extern "C" fn apm_ssl_stream_set_trusted_ca_file(
    stream: *mut apm_stream,
    path: *const c_char,
) -> apm_status {
    boundary!({
        let s = lookup::<SslStreamClass>(stream)?;
        s.set_trusted_cas(trusted_cas(path)?.map(|t| t.certs))
    })
}

/// SslClientAuthenticationOptions/SslServerAuthenticationOptions.ApplicationProtocols: the ALPN
/// protocol names (`count` NUL-terminated strings, e.g. "h2", "http/1.1") offered by a client, or
/// accepted by a server (in the server's order of preference); only before authentication. The
/// names are copied.
/// Errors: APM_E_ARGUMENT_NULL (stream; protocols NULL with count > 0; a NULL name), APM_E_ARGUMENT
/// (not an SslStream handle; a name not UTF-8, empty or longer than 255 bytes),
/// APM_E_OBJECT_DISPOSED, APM_E_INVALID_OPERATION (authentication started or done), the stored
/// failure of an earlier authentication.
#[no_mangle]
pub unsafe extern "C" fn apm_ssl_stream_set_application_protocols(
    stream: *mut apm_stream,
    protocols: *const *const c_char,
    count: usize,
) -> apm_status {
    boundary!({
        let s = lookup::<SslStreamClass>(stream)?;
        if protocols.is_null() && count > 0 {
            return Err(Error::argument_null("protocols"));
        }
        let mut list = Vec::with_capacity(count);
        for i in 0..count {
            // SAFETY: the caller passes `count` string pointers.
            let p = unsafe { *protocols.add(i) };
            list.push(str_arg(p, "protocols")?.as_bytes().to_vec());
        }
        s.set_application_protocols(list)
    })
}

/// SslClientAuthenticationOptions/SslServerAuthenticationOptions.AllowTlsResume (.NET 8; nonzero,
/// the default, allows); only before authentication. A client keeps the sessions of its
/// connections whose certificate validation passed (TLS 1.2 session IDs and tickets, TLS 1.3
/// tickets, which arrive after the handshake, while the stream reads) and offers the newest one to
/// the next authentication with the same target host, protocols, client certificate and
/// validation settings (trusted CAs, revocation check, whether a validation callback is set); no
/// session is kept without a target host or with a selection callback. A resumed handshake still
/// reports the server's certificate, and the validation policy and callback judge it as after a
/// full handshake. With 0 a client neither offers nor keeps a session; a server issues no session
/// ticket and resumes no session for this connection. See `apm_ssl_stream_is_resumed`.
/// Errors: APM_E_ARGUMENT_NULL (stream), APM_E_ARGUMENT (not an SslStream handle),
/// APM_E_OBJECT_DISPOSED, APM_E_INVALID_OPERATION (authentication started or done), the stored
/// failure of an earlier authentication.
#[no_mangle]
pub unsafe extern "C" fn apm_ssl_stream_set_allow_tls_resume(stream: *mut apm_stream, allow: i32) -> apm_status {
    boundary!({ lookup::<SslStreamClass>(stream)?.set_allow_tls_resume(allow != 0) })
}

fn client_options(
    target_host: *const c_char,
    client_certificate: *mut apm_certificate,
    protocols: i32,
    check_revocation: i32,
) -> Result<AuthOptions> {
    // .NET 7+: a null target host is "".
    let host = if target_host.is_null() { "" } else { str_arg(target_host, "targetHost")? };
    Ok(AuthOptions {
        is_server: false,
        target_host: host.to_string(),
        certificate: optional_certificate(client_certificate)?,
        protocols,
        check_revocation: check_revocation != 0,
        client_certificate_required: false,
    })
}

fn server_options(
    server_certificate: *mut apm_certificate,
    client_certificate_required: i32,
    protocols: i32,
    check_revocation: i32,
) -> Result<AuthOptions> {
    Ok(AuthOptions {
        is_server: true,
        target_host: String::new(),
        certificate: optional_certificate(server_certificate)?,
        protocols,
        check_revocation: check_revocation != 0,
        client_certificate_required: client_certificate_required != 0,
    })
}

/// AuthenticateAsClient(targetHost, clientCertificates, enabledSslProtocols,
/// checkCertificateRevocation), blocking the calling thread until the handshake is done (the
/// validation and selection callbacks run on it). `target_host` is sent as SNI (unless it is an IP
/// address) and the server certificate must match it (NULL or "": no SNI and no name check).
/// `client_certificate` (NULL: none) is presented when the server asks for one; the stream keeps
/// its own reference. `enabled_ssl_protocols`: APM_SSL_PROTOCOLS_* flags, 0 = TLS 1.2 and 1.3. With
/// `check_certificate_revocation` the chain must come with CRLs in the trust store (there is no
/// network fetching), as .NET's offline revocation check. The peer is validated against the system
/// trust store (or `apm_ssl_stream_set_trusted_ca_file`) and the validation callback. A failed
/// authentication is stored: every later call on the stream reports it.
/// Errors: APM_E_ARGUMENT_NULL (stream), APM_E_ARGUMENT (not an SslStream handle; target_host not
/// UTF-8; client_certificate not a certificate handle), APM_E_OBJECT_DISPOSED (the stream, or a
/// closed client_certificate), APM_E_INVALID_OPERATION (already authenticated), APM_E_NOT_SUPPORTED
/// (an authentication is running; no supported protocol asked for), APM_E_ARGUMENT_OUT_OF_RANGE
/// (unknown protocol flags), the stored failure of an earlier authentication, APM_E_AUTHENTICATION
/// (the handshake or the certificate validation failed; OpenSSL's reason is the inner message),
/// APM_E_IO (the transport failed or closed: "Authentication failed because the remote party has
/// closed the transport stream."; the peer sent something that is not TLS, such as an HTTP request
/// or a banner: "The handshake failed due to an unexpected packet format.", as .NET Framework, with
/// OpenSSL's reason as the inner message).
#[no_mangle]
pub unsafe extern "C" fn apm_ssl_stream_authenticate_as_client(
    stream: *mut apm_stream,
    target_host: *const c_char,
    client_certificate: *mut apm_certificate,
    enabled_ssl_protocols: i32,
    check_certificate_revocation: i32,
) -> apm_status {
    boundary!({
        let s = lookup::<SslStreamClass>(stream)?;
        let (protocols, revocation) = (enabled_ssl_protocols, check_certificate_revocation);
        s.authenticate(client_options(target_host, client_certificate, protocols, revocation)?)
    })
}

/// BeginAuthenticateAsClient: as `apm_ssl_stream_authenticate_as_client`, asynchronously; the
/// validation and selection callbacks run on the thread driving the handshake (the Begin caller's,
/// or the thread that completed the inner stream's last read: usually an engine thread). The
/// handshake's outcome comes from `apm_ssl_stream_end_authenticate_as_client`.
/// Errors: the argument and state errors of apm_ssl_stream_authenticate_as_client (all but the
/// handshake's APM_E_AUTHENTICATION and APM_E_IO), APM_E_AUTHENTICATION (OpenSSL could not set up
/// the connection), and the Begin rules (see apm_async_result).
#[no_mangle]
pub unsafe extern "C" fn apm_ssl_stream_begin_authenticate_as_client(
    stream: *mut apm_stream,
    target_host: *const c_char,
    client_certificate: *mut apm_certificate,
    enabled_ssl_protocols: i32,
    check_certificate_revocation: i32,
    callback: apm_async_callback,
    state: *mut c_void,
    result: *mut *mut apm_async_result,
) -> apm_status {
    boundary!({
        let (protocols, revocation) = (enabled_ssl_protocols, check_certificate_revocation);
        let opts = || client_options(target_host, client_certificate, protocols, revocation);
        let start = SslStream::begin_authenticate;
        let op = OpKind::AuthenticateAsClient;
        begin_authenticate::<SslStreamClass, _>(stream, op, opts, callback, state, result, start)
    })
}

/// EndAuthenticateAsClient: waits, releases `result`, reports the handshake's outcome.
/// Errors: APM_E_ARGUMENT_NULL (stream), APM_E_ARGUMENT (not an SslStream handle), the End rules
/// (see apm_async_result; APM_E_OBJECT_DISPOSED once the stream is closed), then the handshake's
/// outcome: APM_E_AUTHENTICATION, APM_E_IO, APM_E_OBJECT_DISPOSED (closed during the handshake).
#[no_mangle]
pub unsafe extern "C" fn apm_ssl_stream_end_authenticate_as_client(
    stream: *mut apm_stream,
    result: *mut apm_async_result,
) -> apm_status {
    boundary!({ end_on::<SslStreamClass>(stream, result, OpKind::AuthenticateAsClient).map(drop) })
}

/// AuthenticateAsServer(serverCertificate, clientCertificateRequired, enabledSslProtocols,
/// checkCertificateRevocation), blocking the calling thread as the client form.
/// `server_certificate` must have its private key (the stream keeps its own reference); it may be
/// NULL only when a selection callback is set (it then chooses, knowing the client's SNI). With
/// `client_certificate_required` the client is asked for a certificate and one is required unless
/// the validation callback accepts its absence.
/// Errors: as apm_ssl_stream_authenticate_as_client (server_certificate in place of
/// client_certificate; no target_host), plus APM_E_ARGUMENT_NULL ("serverCertificate") and
/// APM_E_AUTHENTICATION ("The server mode SSL must use a certificate with the associated private
/// key.").
#[no_mangle]
pub unsafe extern "C" fn apm_ssl_stream_authenticate_as_server(
    stream: *mut apm_stream,
    server_certificate: *mut apm_certificate,
    client_certificate_required: i32,
    enabled_ssl_protocols: i32,
    check_certificate_revocation: i32,
) -> apm_status {
    boundary!({
        let s = lookup::<SslStreamClass>(stream)?;
        let (protocols, revocation) = (enabled_ssl_protocols, check_certificate_revocation);
        s.authenticate(server_options(server_certificate, client_certificate_required, protocols, revocation)?)
    })
}

/// BeginAuthenticateAsServer: as `apm_ssl_stream_authenticate_as_server`, asynchronously, with the
/// callbacks' threads of `apm_ssl_stream_begin_authenticate_as_client`.
/// Errors: as apm_ssl_stream_begin_authenticate_as_client, plus APM_E_ARGUMENT_NULL
/// ("serverCertificate") and APM_E_AUTHENTICATION (a certificate without its private key).
#[no_mangle]
pub unsafe extern "C" fn apm_ssl_stream_begin_authenticate_as_server(
    stream: *mut apm_stream,
    server_certificate: *mut apm_certificate,
    client_certificate_required: i32,
    enabled_ssl_protocols: i32,
    check_certificate_revocation: i32,
    callback: apm_async_callback,
    state: *mut c_void,
    result: *mut *mut apm_async_result,
) -> apm_status {
    boundary!({
        let (protocols, revocation) = (enabled_ssl_protocols, check_certificate_revocation);
        let opts = || server_options(server_certificate, client_certificate_required, protocols, revocation);
        let start = SslStream::begin_authenticate;
        let op = OpKind::AuthenticateAsServer;
        begin_authenticate::<SslStreamClass, _>(stream, op, opts, callback, state, result, start)
    })
}

/// EndAuthenticateAsServer: as `apm_ssl_stream_end_authenticate_as_client`.
/// Errors: as apm_ssl_stream_end_authenticate_as_client.
#[no_mangle]
pub unsafe extern "C" fn apm_ssl_stream_end_authenticate_as_server(
    stream: *mut apm_stream,
    result: *mut apm_async_result,
) -> apm_status {
    boundary!({ end_on::<SslStreamClass>(stream, result, OpKind::AuthenticateAsServer).map(drop) })
}

/// ShutdownAsync, blocking the calling thread: sends the TLS close_notify alert (after a pending
/// write, if any); later writes fail with APM_E_INVALID_OPERATION ("Write operations are not
/// allowed after the channel was shutdown."). Reads go on. Closing without shutdown sends no
/// close_notify (as .NET); the caller still closes the stream.
/// Errors: APM_E_ARGUMENT_NULL (stream), APM_E_ARGUMENT (not an SslStream handle),
/// APM_E_OBJECT_DISPOSED, APM_E_INVALID_OPERATION (not authenticated; shut down already), the
/// stored authentication failure, APM_E_IO (the transport failed).
#[no_mangle]
pub unsafe extern "C" fn apm_ssl_stream_shutdown(stream: *mut apm_stream) -> apm_status {
    boundary!({ lookup::<SslStreamClass>(stream)?.shutdown() })
}

/// Begin form of `apm_ssl_stream_shutdown`; the outcome comes from `apm_ssl_stream_end_shutdown`.
/// Errors: APM_E_ARGUMENT_NULL (stream), APM_E_ARGUMENT (not an SslStream handle),
/// APM_E_OBJECT_DISPOSED, the Begin rules (see apm_async_result), APM_E_INVALID_OPERATION (not
/// authenticated; shut down already), the stored authentication failure.
#[no_mangle]
pub unsafe extern "C" fn apm_ssl_stream_begin_shutdown(
    stream: *mut apm_stream,
    callback: apm_async_callback,
    state: *mut c_void,
    result: *mut *mut apm_async_result,
) -> apm_status {
    boundary!({
        let s = lookup::<SslStreamClass>(stream)?;
        begin_on(stream, OpKind::Shutdown, callback, state, result, |done, _| s.begin_shutdown(done, Mode::Async))
    })
}

/// End form of `apm_ssl_stream_shutdown`: waits, releases `result`, reports the outcome.
/// Errors: APM_E_ARGUMENT_NULL (stream), APM_E_ARGUMENT (not an SslStream handle), the End rules
/// (see apm_async_result; APM_E_OBJECT_DISPOSED once the stream is closed), then
/// APM_E_OBJECT_DISPOSED (closed meanwhile) or APM_E_IO (the transport failed).
#[no_mangle]
pub unsafe extern "C" fn apm_ssl_stream_end_shutdown(
    stream: *mut apm_stream,
    result: *mut apm_async_result,
) -> apm_status {
    boundary!({ end_on::<SslStreamClass>(stream, result, OpKind::Shutdown).map(drop) })
}

/// IsAuthenticated: 1 after a successful handshake.
/// Errors: APM_E_ARGUMENT_NULL (stream, value), APM_E_ARGUMENT (not an SslStream handle),
/// APM_E_OBJECT_DISPOSED.
#[no_mangle]
pub unsafe extern "C" fn apm_ssl_stream_is_authenticated(stream: *mut apm_stream, value: *mut i32) -> apm_status {
    boundary!({ get::<SslStreamClass, _>(stream, value, "value", |s| Ok(s.is_authenticated() as i32)) })
}

/// IsServer: 1 when the stream authenticated (or is authenticating) as the server.
/// Errors: as apm_ssl_stream_is_authenticated.
#[no_mangle]
pub unsafe extern "C" fn apm_ssl_stream_is_server(stream: *mut apm_stream, value: *mut i32) -> apm_status {
    boundary!({ get::<SslStreamClass, _>(stream, value, "value", |s| Ok(s.is_server() as i32)) })
}

/// IsEncrypted: 1 once authenticated (every cipher suite allowed encrypts).
/// Errors: as apm_ssl_stream_is_authenticated.
#[no_mangle]
pub unsafe extern "C" fn apm_ssl_stream_is_encrypted(stream: *mut apm_stream, value: *mut i32) -> apm_status {
    boundary!({ get::<SslStreamClass, _>(stream, value, "value", |s| Ok(s.is_authenticated() as i32)) })
}

/// IsSigned: 1 once authenticated.
/// Errors: as apm_ssl_stream_is_authenticated.
#[no_mangle]
pub unsafe extern "C" fn apm_ssl_stream_is_signed(stream: *mut apm_stream, value: *mut i32) -> apm_status {
    boundary!({ get::<SslStreamClass, _>(stream, value, "value", |s| Ok(s.is_authenticated() as i32)) })
}

/// IsMutuallyAuthenticated: 1 when both sides presented a certificate; 0 before authentication.
/// Errors: as apm_ssl_stream_is_authenticated.
#[no_mangle]
pub unsafe extern "C" fn apm_ssl_stream_is_mutually_authenticated(
    stream: *mut apm_stream,
    value: *mut i32,
) -> apm_status {
    boundary!({
        get::<SslStreamClass, _>(stream, value, "value", |s| {
            Ok(s.session_if_any()?.is_some_and(|s| s.mutually_authenticated) as i32)
        })
    })
}

fn session_of(stream: *const apm_stream) -> Result<Arc<Session>> {
    lookup::<SslStreamClass>(stream)?.session()
}

/// 1 when the handshake resumed an earlier TLS session (a TLS 1.2 session ID or ticket, a TLS 1.3
/// ticket: the server sent no certificate), 0 after a full handshake. The remote certificate is
/// still the server's (the session's). An apmnet extension (.NET keeps it internal); see
/// `apm_ssl_stream_set_allow_tls_resume`.
/// Errors: APM_E_ARGUMENT_NULL (stream, value), APM_E_ARGUMENT (not an SslStream handle),
/// APM_E_OBJECT_DISPOSED, APM_E_INVALID_OPERATION (not authenticated), the stored authentication
/// failure.
#[no_mangle]
pub unsafe extern "C" fn apm_ssl_stream_is_resumed(stream: *mut apm_stream, value: *mut i32) -> apm_status {
    boundary!({ get::<SslStreamClass, _>(stream, value, "value", |s| Ok(s.session()?.resumed as i32)) })
}

/// SslProtocol: the negotiated protocol as an APM_SSL_PROTOCOLS_* value.
/// Errors: APM_E_ARGUMENT_NULL (stream, protocol), APM_E_ARGUMENT (not an SslStream handle),
/// APM_E_OBJECT_DISPOSED, APM_E_INVALID_OPERATION (not authenticated), the stored authentication
/// failure.
#[no_mangle]
pub unsafe extern "C" fn apm_ssl_stream_get_ssl_protocol(stream: *mut apm_stream, protocol: *mut i32) -> apm_status {
    boundary!({ get::<SslStreamClass, _>(stream, protocol, "protocol", |s| Ok(s.session()?.protocol)) })
}

/// NegotiatedCipherSuite: the cipher suite's number (TlsCipherSuite, e.g. 0x1302 for
/// TLS_AES_256_GCM_SHA384).
/// Errors: APM_E_ARGUMENT_NULL (stream, cipher_suite), APM_E_ARGUMENT (not an SslStream handle),
/// APM_E_OBJECT_DISPOSED, APM_E_INVALID_OPERATION (not authenticated), the stored authentication
/// failure.
#[no_mangle]
pub unsafe extern "C" fn apm_ssl_stream_get_cipher_suite(
    stream: *mut apm_stream,
    cipher_suite: *mut i32,
) -> apm_status {
    boundary!({ get::<SslStreamClass, _>(stream, cipher_suite, "cipher_suite", |s| Ok(s.session()?.cipher_suite)) })
}

/// The negotiated cipher suite's IANA name ("TLS_AES_256_GCM_SHA384"), copied into the caller's
/// buffer as `apm_last_error_message` copies.
/// Errors: APM_E_ARGUMENT_NULL (stream; buffer NULL with a nonzero buffer_len), APM_E_ARGUMENT (not
/// an SslStream handle), APM_E_OBJECT_DISPOSED, APM_E_INVALID_OPERATION (not authenticated), the
/// stored authentication failure.
#[no_mangle]
pub unsafe extern "C" fn apm_ssl_stream_get_cipher_suite_name(
    stream: *mut apm_stream,
    buffer: *mut c_char,
    buffer_len: usize,
    name_len: *mut usize,
) -> apm_status {
    boundary!({ copy_text(&session_of(stream)?.cipher_name, buffer, buffer_len, name_len) })
}

/// NegotiatedApplicationProtocol: the ALPN protocol agreed on (no bytes when none). Copies up to
/// `buffer_len` bytes and writes the full length to `protocol_len` (optional).
/// Errors: as apm_ssl_stream_get_cipher_suite_name.
#[no_mangle]
pub unsafe extern "C" fn apm_ssl_stream_get_application_protocol(
    stream: *mut apm_stream,
    buffer: *mut u8,
    buffer_len: usize,
    protocol_len: *mut usize,
) -> apm_status {
    boundary!({ copy_bytes(&session_of(stream)?.alpn, buffer, buffer_len, protocol_len) })
}

/// TargetHostName: the client's target host; on a server, the SNI name the client sent ("" when
/// none). Copied as `apm_last_error_message` copies.
/// Errors: as apm_ssl_stream_get_cipher_suite_name.
#[no_mangle]
pub unsafe extern "C" fn apm_ssl_stream_get_target_host_name(
    stream: *mut apm_stream,
    buffer: *mut c_char,
    buffer_len: usize,
    name_len: *mut usize,
) -> apm_status {
    boundary!({ copy_text(&session_of(stream)?.target_host, buffer, buffer_len, name_len) })
}

/// RemoteCertificate and LocalCertificate: a new handle for the certificate `pick` takes from
/// the session, NULL when there is none or no session yet.
fn session_certificate(
    stream: *const apm_stream,
    out: *mut *mut apm_certificate,
    pick: impl FnOnce(&Session) -> Option<Arc<crate::tls::Certificate>>,
) -> Result<()> {
    get::<SslStreamClass, _>(stream, out, "certificate", |s| match s.session_if_any()?.as_deref().and_then(pick) {
        Some(c) => certificate_handle(c),
        None => Ok(std::ptr::null_mut()),
    })
}

/// RemoteCertificate: a new handle for the peer's certificate, which the caller owns and closes
/// (`apm_certificate_close`), or NULL when there is none or the stream is not authenticated.
/// Errors: APM_E_ARGUMENT_NULL (stream, certificate), APM_E_ARGUMENT (not an SslStream handle),
/// APM_E_OBJECT_DISPOSED, APM_E_OUT_OF_MEMORY (no handle left).
#[no_mangle]
pub unsafe extern "C" fn apm_ssl_stream_get_remote_certificate(
    stream: *mut apm_stream,
    certificate: *mut *mut apm_certificate,
) -> apm_status {
    boundary!({ session_certificate(stream, certificate, |s| s.remote_certificate.clone()) })
}

/// LocalCertificate: a new handle for the certificate this side presented, which the caller owns
/// and closes (`apm_certificate_close`), or NULL.
/// Errors: as apm_ssl_stream_get_remote_certificate.
#[no_mangle]
pub unsafe extern "C" fn apm_ssl_stream_get_local_certificate(
    stream: *mut apm_stream,
    certificate: *mut *mut apm_certificate,
) -> apm_status {
    boundary!({ session_certificate(stream, certificate, |s| s.local_certificate.clone()) })
}

/// TransportContext: a new handle, which the caller owns and closes
/// (`apm_transport_context_close`), whose channel bindings are those of the authenticated session;
/// before authentication it holds none (.NET's GetChannelBinding returning null). It stays usable
/// after the stream is closed.
/// Errors: APM_E_ARGUMENT_NULL (stream, context), APM_E_ARGUMENT (not an SslStream handle),
/// APM_E_OBJECT_DISPOSED, APM_E_OUT_OF_MEMORY (no handle left).
#[no_mangle]
pub unsafe extern "C" fn apm_ssl_stream_get_transport_context(
    stream: *mut apm_stream,
    context: *mut *mut apm_transport_context,
) -> apm_status {
    boundary!({
        get::<SslStreamClass, _>(stream, context, "context", |s| {
            register(Kind::TransportContext, Object::TransportContext(s.transport_context()?), std::ptr::null())
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::{channel_binding_kind, ssl_policy_errors, ssl_protocols};

    #[test]
    fn the_c_constants_are_the_dotnet_values() {
        assert_eq!(APM_SSL_PROTOCOLS_TLS12, ssl_protocols::TLS12);
        assert_eq!(APM_SSL_PROTOCOLS_TLS13, ssl_protocols::TLS13);
        assert_eq!(APM_SSL_PROTOCOLS_TLS11, ssl_protocols::TLS11);
        assert_eq!(APM_SSL_PROTOCOLS_TLS, ssl_protocols::TLS);
        assert_eq!(APM_SSL_PROTOCOLS_SSL3, ssl_protocols::SSL3);
        assert_eq!(APM_SSL_PROTOCOLS_SSL2, ssl_protocols::SSL2);
        assert_eq!(
            APM_SSL_POLICY_ERRORS_REMOTE_CERTIFICATE_CHAIN_ERRORS,
            ssl_policy_errors::REMOTE_CERTIFICATE_CHAIN_ERRORS
        );
        assert_eq!(
            APM_SSL_POLICY_ERRORS_REMOTE_CERTIFICATE_NAME_MISMATCH,
            ssl_policy_errors::REMOTE_CERTIFICATE_NAME_MISMATCH
        );
        assert_eq!(
            APM_SSL_POLICY_ERRORS_REMOTE_CERTIFICATE_NOT_AVAILABLE,
            ssl_policy_errors::REMOTE_CERTIFICATE_NOT_AVAILABLE
        );
        assert_eq!(APM_CHANNEL_BINDING_KIND_UNIQUE, channel_binding_kind::UNIQUE);
        assert_eq!(APM_CHANNEL_BINDING_KIND_ENDPOINT, channel_binding_kind::ENDPOINT);
    }
}
