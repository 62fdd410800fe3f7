// P/Invoke declarations for libapmnet's C API (include/apmnet.h), one per C function.
// Types: apm_status/int32_t -> int, size_t -> UIntPtr, int64_t -> long, opaque handles -> IntPtr
// (or a SafeHandle for the out-parameter of a create/accept), strings in -> NUL-terminated UTF-8 byte[],
// int32_t 0/1 booleans -> int. Every function is cdecl.
using System;
using System.Runtime.InteropServices;

namespace Apmnet.Interop
{
    /// <summary>typedef void (*apm_async_callback)(apm_async_result *result, void *state);</summary>
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    internal delegate void ApmAsyncCallback(IntPtr result, IntPtr state);

    /// <summary>typedef void (*apm_send_file_progress)(apm_async_result *result, int64_t bytes_sent, void *state);</summary>
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    internal delegate void ApmSendFileProgress(IntPtr result, long bytesSent, IntPtr state);

    /// <summary>typedef int32_t (*apm_remote_certificate_validation_callback)(apm_stream *sender, apm_certificate *certificate,
    /// apm_certificate *const *chain, size_t chain_len, int32_t ssl_policy_errors, void *state);</summary>
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    internal delegate int ApmValidationCallback(IntPtr sender, IntPtr certificate, IntPtr chain, UIntPtr chainLength, int sslPolicyErrors, IntPtr state);

    /// <summary>typedef apm_certificate *(*apm_local_certificate_selection_callback)(apm_stream *sender, const char *target_host,
    /// apm_certificate *const *local_certificates, size_t local_len, apm_certificate *remote_certificate,
    /// const char *const *acceptable_issuers, size_t issuers_len, void *state);</summary>
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    internal delegate IntPtr ApmSelectionCallback(IntPtr sender, IntPtr targetHost, IntPtr localCertificates, UIntPtr localLength,
        IntPtr remoteCertificate, IntPtr acceptableIssuers, UIntPtr issuersLength, IntPtr state);

    /// <summary>typedef int32_t (*apm_credential_lookup_callback)(const char *user, const char *domain, char *password,
    /// size_t password_size, uint8_t *nt_hash, void *state);</summary>
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    internal delegate int ApmCredentialLookupCallback(IntPtr user, IntPtr domain, IntPtr password, UIntPtr passwordSize, IntPtr ntHash, IntPtr state);

    /// <summary>typedef apm_status (*apm_custom_complete_fn)(uint64_t token, apm_status status, size_t bytes);</summary>
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    internal delegate int ApmCustomComplete(ulong token, int status, UIntPtr bytes);

    /// <summary>apm_stream_vtable.begin_read and .begin_write: (ctx, buffer, count, complete, token) -&gt; apm_status.</summary>
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    internal delegate int ApmCustomBegin(IntPtr ctx, IntPtr buffer, UIntPtr count, IntPtr complete, ulong token);

    /// <summary>apm_stream_vtable.close: (ctx).</summary>
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    internal delegate void ApmCustomClose(IntPtr ctx);

    /// <summary>apm_stream_vtable: the functions of a stream defined by the caller (copied by the library).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct ApmStreamVtable
    {
        public IntPtr BeginRead;
        public IntPtr BeginWrite;
        public IntPtr Close;
    }

    internal static class NativeMethods
    {
        internal const string Library = "apmnet";
        const CallingConvention Cdecl = CallingConvention.Cdecl;

        // Errors and version
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_last_error_message([Out] byte[] buffer, UIntPtr bufferLength, out UIntPtr messageLength);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_last_error_inner_message([Out] byte[] buffer, UIntPtr bufferLength, out UIntPtr messageLength);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_last_error_status();
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_last_error_socket_error();
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_last_error_errno();
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_last_error_web_status();
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_last_error_http_status();
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_last_error_clear();
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern IntPtr apm_status_name(int status);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern IntPtr apm_version();
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern uint apm_version_number();

        // Runtime
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_runtime_configure(int threads, int spinMicroseconds);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_runtime_shutdown();

        // IAsyncResult
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_async_result_is_completed(IntPtr result, out int completed);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_async_result_completed_synchronously(IntPtr result, out int completedSynchronously);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_async_result_wait(IntPtr result, int timeoutMilliseconds, out int signaled);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_async_result_state(IntPtr result, out IntPtr state);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_async_result_cancel(IntPtr result);

        // Socket
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_socket_create(int family, int type, int protocol, out SocketHandle socket);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_socket_bind(IntPtr socket, byte[] address, int port);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_socket_listen(IntPtr socket, int backlog);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_socket_accept(IntPtr socket, out SocketHandle accepted);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_socket_begin_accept(IntPtr socket, ApmAsyncCallback callback, IntPtr state, out IntPtr result);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_socket_end_accept(IntPtr socket, IntPtr result, out SocketHandle accepted);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_socket_connect(IntPtr socket, byte[] host, int port);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_socket_begin_connect(IntPtr socket, byte[] host, int port, ApmAsyncCallback callback, IntPtr state, out IntPtr result);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_socket_end_connect(IntPtr socket, IntPtr result);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_socket_send(IntPtr socket, byte[] buffer, UIntPtr bufferLength, UIntPtr offset, UIntPtr count, out UIntPtr sent);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_socket_begin_send(IntPtr socket, IntPtr buffer, UIntPtr bufferLength, UIntPtr offset, UIntPtr count, ApmAsyncCallback callback, IntPtr state, out IntPtr result);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_socket_end_send(IntPtr socket, IntPtr result, out UIntPtr sent);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_socket_receive(IntPtr socket, [Out] byte[] buffer, UIntPtr bufferLength, UIntPtr offset, UIntPtr count, out UIntPtr received);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_socket_begin_receive(IntPtr socket, IntPtr buffer, UIntPtr bufferLength, UIntPtr offset, UIntPtr count, ApmAsyncCallback callback, IntPtr state, out IntPtr result);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_socket_end_receive(IntPtr socket, IntPtr result, out UIntPtr received);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_socket_shutdown(IntPtr socket, int how);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_socket_close(IntPtr socket);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_socket_get_local_endpoint(IntPtr socket, [Out] byte[] address, UIntPtr addressLength, out int port);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_socket_get_remote_endpoint(IntPtr socket, [Out] byte[] address, UIntPtr addressLength, out int port);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_socket_get_connected(IntPtr socket, out int connected);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_socket_get_available(IntPtr socket, out int available);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_socket_set_no_delay(IntPtr socket, int value);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_socket_get_no_delay(IntPtr socket, out int value);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_socket_set_send_buffer_size(IntPtr socket, int value);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_socket_get_send_buffer_size(IntPtr socket, out int value);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_socket_set_receive_buffer_size(IntPtr socket, int value);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_socket_get_receive_buffer_size(IntPtr socket, out int value);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_socket_set_send_timeout(IntPtr socket, int value);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_socket_get_send_timeout(IntPtr socket, out int value);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_socket_set_receive_timeout(IntPtr socket, int value);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_socket_get_receive_timeout(IntPtr socket, out int value);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_socket_set_linger(IntPtr socket, int enabled, int seconds);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_socket_get_linger(IntPtr socket, out int enabled, out int seconds);

        // Send file
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_socket_send_file(IntPtr socket, byte[] fileName, byte[] preBuffer, UIntPtr preLength, byte[] postBuffer, UIntPtr postLength, int flags);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_socket_begin_send_file(IntPtr socket, byte[] fileName, IntPtr preBuffer, UIntPtr preLength, IntPtr postBuffer, UIntPtr postLength, int flags, ApmAsyncCallback callback, IntPtr state, out IntPtr result);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_socket_begin_send_file_with_progress(IntPtr socket, byte[] fileName, IntPtr preBuffer, UIntPtr preLength, IntPtr postBuffer, UIntPtr postLength, int flags, ApmSendFileProgress progress, ApmAsyncCallback callback, IntPtr state, out IntPtr result);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_socket_end_send_file(IntPtr socket, IntPtr result);

        // NetworkStream and streams
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_network_stream_create(IntPtr socket, int ownsSocket, out StreamHandle stream);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_network_stream_create_with_access(IntPtr socket, int access, int ownsSocket, out StreamHandle stream);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_stream_begin_write(IntPtr stream, IntPtr buffer, UIntPtr bufferLength, UIntPtr offset, UIntPtr count, ApmAsyncCallback callback, IntPtr state, out IntPtr result);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_stream_end_write(IntPtr stream, IntPtr result);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_stream_begin_read(IntPtr stream, IntPtr buffer, UIntPtr bufferLength, UIntPtr offset, UIntPtr count, ApmAsyncCallback callback, IntPtr state, out IntPtr result);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_stream_end_read(IntPtr stream, IntPtr result, out UIntPtr bytesRead);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_stream_write(IntPtr stream, byte[] buffer, UIntPtr bufferLength, UIntPtr offset, UIntPtr count);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_stream_read(IntPtr stream, [Out] byte[] buffer, UIntPtr bufferLength, UIntPtr offset, UIntPtr count, out UIntPtr bytesRead);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_stream_can_read(IntPtr stream, out int value);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_stream_can_write(IntPtr stream, out int value);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_stream_close(IntPtr stream);

        // Streams defined by the caller
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_stream_create_custom(ref ApmStreamVtable vtable, IntPtr ctx, out StreamHandle stream);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_custom_stream_complete(ulong token, int status, UIntPtr bytes);

        // Certificates
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_certificate_load_pem_file(byte[] certPath, byte[] keyPath, out IntPtr certificate);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_certificate_load_pem(byte[] certPem, UIntPtr certLength, byte[] keyPem, UIntPtr keyLength, out IntPtr certificate);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_certificate_load_der(byte[] der, UIntPtr derLength, out IntPtr certificate);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_certificate_load_pkcs12_file(byte[] path, byte[] password, out IntPtr certificate);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_certificate_close(IntPtr certificate);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_certificate_get_subject(IntPtr certificate, [Out] byte[] buffer, UIntPtr bufferLength, out UIntPtr length);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_certificate_get_issuer(IntPtr certificate, [Out] byte[] buffer, UIntPtr bufferLength, out UIntPtr length);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_certificate_get_thumbprint(IntPtr certificate, [Out] byte[] buffer, UIntPtr bufferLength, out UIntPtr length);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_certificate_get_raw_data(IntPtr certificate, [Out] byte[] buffer, UIntPtr bufferLength, out UIntPtr length);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_certificate_has_private_key(IntPtr certificate, out int hasPrivateKey);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_certificate_get_validity(IntPtr certificate, out long notBefore, out long notAfter);

        // Credential
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_credential_create(byte[] userName, byte[] password, byte[] domain, out IntPtr credential);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_credential_create_default(out IntPtr credential);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_credential_create_from_file(byte[] path, out IntPtr credential);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_credential_create_lookup(ApmCredentialLookupCallback callback, IntPtr state, out IntPtr credential);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_credential_get_user_name(IntPtr credential, [Out] byte[] buffer, UIntPtr bufferLength, out UIntPtr length);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_credential_get_domain(IntPtr credential, [Out] byte[] buffer, UIntPtr bufferLength, out UIntPtr length);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_credential_close(IntPtr credential);

        // NegotiateStream
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_negotiate_stream_create(IntPtr inner, int leaveInnerStreamOpen, out StreamHandle stream);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_negotiate_stream_authenticate_as_client(IntPtr stream, IntPtr credential, byte[] targetName, byte[] binding, UIntPtr bindingLength, int protectionLevel, int impersonationLevel);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_negotiate_stream_begin_authenticate_as_client(IntPtr stream, IntPtr credential, byte[] targetName, byte[] binding, UIntPtr bindingLength, int protectionLevel, int impersonationLevel, ApmAsyncCallback callback, IntPtr state, out IntPtr result);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_negotiate_stream_end_authenticate_as_client(IntPtr stream, IntPtr result);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_negotiate_stream_authenticate_as_server(IntPtr stream, IntPtr credential, int policyEnforcement, byte[] customChannelBinding, UIntPtr bindingLength, IntPtr[] serviceNames, UIntPtr serviceCount, int protectionLevel, int impersonationLevel);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_negotiate_stream_begin_authenticate_as_server(IntPtr stream, IntPtr credential, int policyEnforcement, byte[] customChannelBinding, UIntPtr bindingLength, IntPtr[] serviceNames, UIntPtr serviceCount, int protectionLevel, int impersonationLevel, ApmAsyncCallback callback, IntPtr state, out IntPtr result);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_negotiate_stream_end_authenticate_as_server(IntPtr stream, IntPtr result);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_negotiate_stream_is_authenticated(IntPtr stream, out int value);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_negotiate_stream_is_server(IntPtr stream, out int value);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_negotiate_stream_is_encrypted(IntPtr stream, out int value);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_negotiate_stream_is_signed(IntPtr stream, out int value);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_negotiate_stream_is_mutually_authenticated(IntPtr stream, out int value);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_negotiate_stream_get_impersonation_level(IntPtr stream, out int level);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_negotiate_stream_get_remote_identity_name(IntPtr stream, [Out] byte[] buffer, UIntPtr bufferLength, out UIntPtr length);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_negotiate_stream_get_remote_identity_authentication_type(IntPtr stream, [Out] byte[] buffer, UIntPtr bufferLength, out UIntPtr length);

        // NegotiateAuthentication
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_negotiate_authentication_create_client(byte[] package, IntPtr credential, byte[] targetName, IntPtr bindingContext, int bindingKind, int requiredProtectionLevel, int requireMutualAuthentication, int allowedImpersonationLevel, out IntPtr authentication);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_negotiate_authentication_create_server(byte[] package, IntPtr credential, IntPtr bindingContext, int bindingKind, int policyEnforcement, IntPtr[] serviceNames, UIntPtr serviceCount, int requiredProtectionLevel, int requiredImpersonationLevel, out IntPtr authentication);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_negotiate_authentication_get_outgoing_blob(IntPtr authentication, byte[] incoming, UIntPtr incomingLength, [Out] byte[] buffer, UIntPtr bufferLength, out UIntPtr blobLength, out int statusCode);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_negotiate_authentication_get_last_output(IntPtr authentication, [Out] byte[] buffer, UIntPtr bufferLength, out UIntPtr outputLength);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_negotiate_authentication_wrap(IntPtr authentication, byte[] input, UIntPtr inputLength, int requestEncryption, [Out] byte[] buffer, UIntPtr bufferLength, out UIntPtr outputLength, out int isEncrypted, out int statusCode);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_negotiate_authentication_unwrap(IntPtr authentication, byte[] input, UIntPtr inputLength, [Out] byte[] buffer, UIntPtr bufferLength, out UIntPtr outputLength, out int wasEncrypted, out int statusCode);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_negotiate_authentication_compute_integrity_check(IntPtr authentication, byte[] input, UIntPtr inputLength, [Out] byte[] buffer, UIntPtr bufferLength, out UIntPtr micLength);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_negotiate_authentication_verify_integrity_check(IntPtr authentication, byte[] input, UIntPtr inputLength, byte[] signature, UIntPtr signatureLength, out int valid);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_negotiate_authentication_is_authenticated(IntPtr authentication, out int value);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_negotiate_authentication_is_server(IntPtr authentication, out int value);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_negotiate_authentication_is_signed(IntPtr authentication, out int value);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_negotiate_authentication_is_encrypted(IntPtr authentication, out int value);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_negotiate_authentication_is_mutually_authenticated(IntPtr authentication, out int value);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_negotiate_authentication_get_protection_level(IntPtr authentication, out int value);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_negotiate_authentication_get_impersonation_level(IntPtr authentication, out int value);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_negotiate_authentication_get_package(IntPtr authentication, [Out] byte[] buffer, UIntPtr bufferLength, out UIntPtr length);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_negotiate_authentication_get_target_name(IntPtr authentication, [Out] byte[] buffer, UIntPtr bufferLength, out UIntPtr length);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_negotiate_authentication_get_remote_identity_name(IntPtr authentication, [Out] byte[] buffer, UIntPtr bufferLength, out UIntPtr length);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_negotiate_authentication_get_remote_identity_authentication_type(IntPtr authentication, [Out] byte[] buffer, UIntPtr bufferLength, out UIntPtr length);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_negotiate_authentication_close(IntPtr authentication);

        // SslStream
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_ssl_stream_create(IntPtr inner, int leaveInnerStreamOpen, out StreamHandle stream);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_ssl_stream_set_validation_callback(IntPtr stream, ApmValidationCallback callback, IntPtr state);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_ssl_stream_set_selection_callback(IntPtr stream, ApmSelectionCallback callback, IntPtr state);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_ssl_stream_set_trusted_ca_file(IntPtr stream, byte[] path);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_ssl_stream_set_application_protocols(IntPtr stream, IntPtr[] protocols, UIntPtr count);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_ssl_stream_set_allow_tls_resume(IntPtr stream, int allow);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_ssl_stream_authenticate_as_client(IntPtr stream, byte[] targetHost, IntPtr clientCertificate, int enabledSslProtocols, int checkCertificateRevocation);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_ssl_stream_begin_authenticate_as_client(IntPtr stream, byte[] targetHost, IntPtr clientCertificate, int enabledSslProtocols, int checkCertificateRevocation, ApmAsyncCallback callback, IntPtr state, out IntPtr result);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_ssl_stream_end_authenticate_as_client(IntPtr stream, IntPtr result);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_ssl_stream_authenticate_as_server(IntPtr stream, IntPtr serverCertificate, int clientCertificateRequired, int enabledSslProtocols, int checkCertificateRevocation);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_ssl_stream_begin_authenticate_as_server(IntPtr stream, IntPtr serverCertificate, int clientCertificateRequired, int enabledSslProtocols, int checkCertificateRevocation, ApmAsyncCallback callback, IntPtr state, out IntPtr result);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_ssl_stream_end_authenticate_as_server(IntPtr stream, IntPtr result);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_ssl_stream_shutdown(IntPtr stream);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_ssl_stream_begin_shutdown(IntPtr stream, ApmAsyncCallback callback, IntPtr state, out IntPtr result);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_ssl_stream_end_shutdown(IntPtr stream, IntPtr result);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_ssl_stream_is_authenticated(IntPtr stream, out int value);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_ssl_stream_is_server(IntPtr stream, out int value);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_ssl_stream_is_encrypted(IntPtr stream, out int value);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_ssl_stream_is_signed(IntPtr stream, out int value);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_ssl_stream_is_mutually_authenticated(IntPtr stream, out int value);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_ssl_stream_is_resumed(IntPtr stream, out int value);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_ssl_stream_get_ssl_protocol(IntPtr stream, out int protocol);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_ssl_stream_get_cipher_suite(IntPtr stream, out int cipherSuite);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_ssl_stream_get_cipher_suite_name(IntPtr stream, [Out] byte[] buffer, UIntPtr bufferLength, out UIntPtr length);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_ssl_stream_get_application_protocol(IntPtr stream, [Out] byte[] buffer, UIntPtr bufferLength, out UIntPtr length);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_ssl_stream_get_target_host_name(IntPtr stream, [Out] byte[] buffer, UIntPtr bufferLength, out UIntPtr length);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_ssl_stream_get_remote_certificate(IntPtr stream, out IntPtr certificate);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_ssl_stream_get_local_certificate(IntPtr stream, out IntPtr certificate);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_ssl_stream_get_transport_context(IntPtr stream, out TransportContextHandle context);

        // TransportContext
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_transport_context_get_channel_binding(IntPtr context, int kind, [Out] byte[] buffer, UIntPtr bufferLength, out UIntPtr length);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_transport_context_get_channel_binding_token(IntPtr context, int kind, [Out] byte[] buffer, UIntPtr bufferLength, out UIntPtr length);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_transport_context_close(IntPtr context);

        // HttpWebRequest, HttpWebResponse
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_http_request_create(byte[] uri, out HttpRequestHandle request);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_http_request_set_method(IntPtr request, byte[] method);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_http_request_get_method(IntPtr request, [Out] byte[] buffer, UIntPtr bufferLen, out UIntPtr methodLen);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_http_request_set_content_length(IntPtr request, long value);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_http_request_get_content_length(IntPtr request, out long value);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_http_request_set_send_chunked(IntPtr request, int value);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_http_request_get_send_chunked(IntPtr request, out int value);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_http_request_set_keep_alive(IntPtr request, int value);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_http_request_get_keep_alive(IntPtr request, out int value);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_http_request_set_protocol_version(IntPtr request, int major, int minor);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_http_request_get_protocol_version(IntPtr request, out int major, out int minor);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_http_request_set_timeout(IntPtr request, int value);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_http_request_get_timeout(IntPtr request, out int value);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_http_request_set_read_write_timeout(IntPtr request, int value);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_http_request_get_read_write_timeout(IntPtr request, out int value);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_http_request_set_allow_auto_redirect(IntPtr request, int value);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_http_request_get_allow_auto_redirect(IntPtr request, out int value);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_http_request_set_maximum_automatic_redirections(IntPtr request, int value);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_http_request_get_maximum_automatic_redirections(IntPtr request, out int value);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_http_request_set_automatic_decompression(IntPtr request, int value);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_http_request_get_automatic_decompression(IntPtr request, out int value);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_http_request_set_expect_100_continue(IntPtr request, int value);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_http_request_get_expect_100_continue(IntPtr request, out int value);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_http_request_set_maximum_response_headers_length(IntPtr request, int value);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_http_request_get_maximum_response_headers_length(IntPtr request, out int value);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_http_request_set_header_property(IntPtr request, byte[] name, byte[] value);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_http_request_set_header(IntPtr request, byte[] name, byte[] value);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_http_request_add_header(IntPtr request, byte[] name, byte[] value);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_http_request_get_header(IntPtr request, byte[] name, [Out] byte[] buffer, UIntPtr bufferLen, out UIntPtr valueLen, out int found);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_http_request_set_credentials(IntPtr request, byte[] user, byte[] password);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_http_request_set_credential(IntPtr request, IntPtr credential);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_http_request_set_use_default_credentials(IntPtr request, int value);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_http_request_get_use_default_credentials(IntPtr request, out int value);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_http_request_set_pre_authenticate(IntPtr request, int value);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_http_request_get_pre_authenticate(IntPtr request, out int value);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_http_request_set_proxy(IntPtr request, byte[] uri);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_http_request_use_default_proxy(IntPtr request);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_http_request_set_proxy_credentials(IntPtr request, byte[] user, byte[] password);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_http_request_get_proxy(IntPtr request, [Out] byte[] buffer, UIntPtr bufferLen, out UIntPtr uriLen, out int found);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_http_request_set_trusted_ca_file(IntPtr request, byte[] path);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_http_request_set_validation_callback(IntPtr request, ApmValidationCallback callback, IntPtr state);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_http_request_set_client_certificate(IntPtr request, IntPtr certificate);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_http_request_set_connection_limit(IntPtr request, int value);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_http_request_get_connection_limit(IntPtr request, out int value);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_http_request_set_max_idle_time(IntPtr request, int value);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_http_request_get_request_uri(IntPtr request, [Out] byte[] buffer, UIntPtr bufferLen, out UIntPtr uriLen);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_http_request_get_address(IntPtr request, [Out] byte[] buffer, UIntPtr bufferLen, out UIntPtr uriLen);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_http_request_begin_get_request_stream(IntPtr request, ApmAsyncCallback callback, IntPtr state, out IntPtr result);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_http_request_end_get_request_stream(IntPtr request, IntPtr result, out StreamHandle stream, out TransportContextHandle context);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_http_request_get_request_stream(IntPtr request, out StreamHandle stream, out TransportContextHandle context);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_http_request_begin_get_response(IntPtr request, ApmAsyncCallback callback, IntPtr state, out IntPtr result);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_http_request_end_get_response(IntPtr request, IntPtr result, out HttpResponseHandle response);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_http_request_get_response(IntPtr request, out HttpResponseHandle response);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_http_request_abort(IntPtr request);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_http_request_close(IntPtr request);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_http_response_get_status_code(IntPtr response, out int value);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_http_response_get_status_description(IntPtr response, [Out] byte[] buffer, UIntPtr bufferLen, out UIntPtr textLen);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_http_response_get_protocol_version(IntPtr response, out int major, out int minor);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_http_response_get_header(IntPtr response, byte[] name, [Out] byte[] buffer, UIntPtr bufferLen, out UIntPtr valueLen, out int found);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_http_response_get_header_count(IntPtr response, out UIntPtr count);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_http_response_get_header_at(IntPtr response, UIntPtr index, [Out] byte[] name, UIntPtr nameBufferLen, out UIntPtr nameLen, [Out] byte[] value, UIntPtr valueBufferLen, out UIntPtr valueLen);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_http_response_get_content_length(IntPtr response, out long value);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_http_response_get_content_type(IntPtr response, [Out] byte[] buffer, UIntPtr bufferLen, out UIntPtr textLen);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_http_response_get_response_uri(IntPtr response, [Out] byte[] buffer, UIntPtr bufferLen, out UIntPtr textLen);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_http_response_get_method(IntPtr response, [Out] byte[] buffer, UIntPtr bufferLen, out UIntPtr textLen);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_http_response_get_response_stream(IntPtr response, out StreamHandle stream);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_http_response_from_last_error(out HttpResponseHandle response);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern int apm_http_response_close(IntPtr response);
    }
}
