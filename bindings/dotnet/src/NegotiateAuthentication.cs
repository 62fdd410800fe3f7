// NegotiateAuthentication, shaped like .NET 7+'s System.Net.Security.NegotiateAuthentication (which the
// mscorlib that mcs compiles against does not have): one NTLM, Kerberos or Negotiate exchange whose blobs
// the caller carries, then Wrap, Unwrap and integrity checks. Where .NET takes spans and an
// IBufferWriter<byte>, these take and return byte[] (System.Memory is not there either).
using System;
using System.Net;
using System.Net.Security;
using System.Runtime.InteropServices;
using System.Security.Authentication.ExtendedProtection;
using System.Security.Principal;
using Apmnet.Interop;

namespace Apmnet
{
    /// <summary>System.Net.Security.NegotiateAuthenticationStatusCode.</summary>
    public enum NegotiateAuthenticationStatusCode
    {
        Completed = 0,
        ContinueNeeded = 1,
        GenericFailure = 2,
        BadBinding = 3,
        Unsupported = 4,
        MessageAltered = 5,
        ContextExpired = 6,
        CredentialsExpired = 7,
        InvalidCredentials = 8,
        InvalidToken = 9,
        UnknownCredentials = 10,
        QopNotSupported = 11,
        OutOfSequence = 12,
        SecurityQosFailed = 13,
        TargetUnknown = 14,
        ImpersonationValidationFailed = 15,
    }

    /// <summary>NegotiateAuthenticationClientOptions, with .NET 8's defaults. Binding must come from an Apmnet TransportContext
    /// (SslStream.TransportContext, HttpWebRequest's): the library binds to that channel.</summary>
    public sealed class NegotiateAuthenticationClientOptions
    {
        public NegotiateAuthenticationClientOptions()
        {
            Package = "Negotiate";
            Credential = CredentialCache.DefaultNetworkCredentials;
            TargetName = "";
            RequiredProtectionLevel = ProtectionLevel.None;
            RequireMutualAuthentication = false;
            AllowedImpersonationLevel = TokenImpersonationLevel.None;
        }

        public string Package { get; set; }
        public NetworkCredential Credential { get; set; }
        public string TargetName { get; set; }
        public ChannelBinding Binding { get; set; }
        public ProtectionLevel RequiredProtectionLevel { get; set; }
        public bool RequireMutualAuthentication { get; set; }
        public TokenImpersonationLevel AllowedImpersonationLevel { get; set; }
    }

    /// <summary>NegotiateAuthenticationServerOptions. Credential is the one NTLM user accepted
    /// (DefaultNetworkCredentials: Kerberos through the keytab only); UserFile, a DOMAIN:USER:PASSWORD
    /// file, is an apmnet extension. Unlike .NET on Linux the binding and service names are checked: the
    /// Binding (or the Policy's CustomChannelBinding), from an Apmnet TransportContext, with the Policy's
    /// enforcement (no Policy: WhenSupported).</summary>
    public sealed class NegotiateAuthenticationServerOptions
    {
        public NegotiateAuthenticationServerOptions()
        {
            Package = "Negotiate";
            Credential = CredentialCache.DefaultNetworkCredentials;
            RequiredProtectionLevel = ProtectionLevel.None;
            RequiredImpersonationLevel = TokenImpersonationLevel.None;
        }

        public string Package { get; set; }
        public NetworkCredential Credential { get; set; }
        public string UserFile { get; set; }
        public ChannelBinding Binding { get; set; }
        public ExtendedProtectionPolicy Policy { get; set; }
        public ProtectionLevel RequiredProtectionLevel { get; set; }
        public TokenImpersonationLevel RequiredImpersonationLevel { get; set; }
    }

    /// <summary>System.Net.Security.NegotiateAuthentication over apm_negotiate_authentication. A Kerberos
    /// step blocks the calling thread while GSSAPI asks the KDC, as .NET's does.</summary>
    public sealed class NegotiateAuthentication : IDisposable
    {
        IntPtr handle;
        bool disposed;

        static NegotiateAuthentication() { Library.EnsureInitialized(); }

        static void BindingArguments(ChannelBinding binding, out ApmTransportContext context, out int kind)
        {
            context = null;
            kind = 0;
            if (binding == null) return;
            ApmChannelBinding ours = binding as ApmChannelBinding;
            if (ours == null || ours.Context == null)
                throw new ArgumentException("The channel binding must come from an Apmnet TransportContext.", "Binding");
            context = ours.Context;
            kind = (int)ours.Kind;
        }

        public NegotiateAuthentication(NegotiateAuthenticationClientOptions clientOptions)
        {
            if (clientOptions == null) throw new ArgumentNullException("clientOptions");
            ApmTransportContext context;
            int kind;
            BindingArguments(clientOptions.Binding, out context, out kind);
            IntPtr credential = NegotiateStream.ClientCredential(clientOptions.Credential);
            try
            {
                ApmError.Check(NativeMethods.apm_negotiate_authentication_create_client(Marshaling.Utf8(clientOptions.Package), credential,
                    Marshaling.Utf8(clientOptions.TargetName), context == null ? IntPtr.Zero : context.Handle, kind,
                    (int)clientOptions.RequiredProtectionLevel, clientOptions.RequireMutualAuthentication ? 1 : 0,
                    (int)clientOptions.AllowedImpersonationLevel, out handle));
            }
            finally
            {
                if (credential != IntPtr.Zero) NativeMethods.apm_credential_close(credential);
                if (context != null) context.KeepAlive();
            }
        }

        public NegotiateAuthentication(NegotiateAuthenticationServerOptions serverOptions)
        {
            if (serverOptions == null) throw new ArgumentNullException("serverOptions");
            ExtendedProtectionPolicy policy = serverOptions.Policy;
            ApmTransportContext context;
            int kind;
            BindingArguments(serverOptions.Binding ?? (policy == null ? null : policy.CustomChannelBinding), out context, out kind);
            int enforcement = policy == null ? (int)PolicyEnforcement.WhenSupported : (int)policy.PolicyEnforcement;
            NegotiateStream.PolicyArguments names = new NegotiateStream.PolicyArguments(policy);
            IntPtr credential = IntPtr.Zero;
            try
            {
                if (serverOptions.UserFile != null)
                    ApmError.Check(NativeMethods.apm_credential_create_from_file(Marshaling.Utf8(serverOptions.UserFile), out credential));
                else
                    credential = NegotiateStream.ClientCredential(serverOptions.Credential);
                ApmError.Check(NativeMethods.apm_negotiate_authentication_create_server(Marshaling.Utf8(serverOptions.Package), credential,
                    context == null ? IntPtr.Zero : context.Handle, kind, enforcement, names.Names, names.Count,
                    (int)serverOptions.RequiredProtectionLevel, (int)serverOptions.RequiredImpersonationLevel, out handle));
            }
            finally
            {
                names.Free();
                if (credential != IntPtr.Zero) NativeMethods.apm_credential_close(credential);
                if (context != null) context.KeepAlive();
            }
        }

        /// <summary>The output the last call kept when its first buffer was too small.</summary>
        byte[] Output(byte[] buffer, UIntPtr length)
        {
            int n = Marshaling.ToInt(length);
            if (n <= buffer.Length)
            {
                Array.Resize(ref buffer, n);
                return buffer;
            }
            byte[] whole = new byte[n];
            ApmError.Check(NativeMethods.apm_negotiate_authentication_get_last_output(handle, whole, Marshaling.Length(whole), out length));
            return whole;
        }

        /// <summary>GetOutgoingBlob(incomingBlob, out statusCode): the blob for the peer (null: nothing to
        /// send); failures are status codes, not exceptions.</summary>
        public byte[] GetOutgoingBlob(byte[] incomingBlob, out NegotiateAuthenticationStatusCode statusCode)
        {
            byte[] buffer = new byte[4096];
            UIntPtr length;
            int status;
            ApmError.Check(NativeMethods.apm_negotiate_authentication_get_outgoing_blob(handle, incomingBlob, Marshaling.Length(incomingBlob),
                buffer, Marshaling.Length(buffer), out length, out status));
            statusCode = (NegotiateAuthenticationStatusCode)status;
            byte[] blob = Output(buffer, length);
            return blob.Length == 0 ? null : blob;
        }

        /// <summary>GetOutgoingBlob(string, out statusCode): the same in base64, as for HTTP headers.</summary>
        public string GetOutgoingBlob(string incomingBlob, out NegotiateAuthenticationStatusCode statusCode)
        {
            byte[] blob = GetOutgoingBlob(incomingBlob == null ? null : Convert.FromBase64String(incomingBlob), out statusCode);
            return blob == null ? null : Convert.ToBase64String(blob);
        }

        /// <summary>Wrap(input, outputWriter, requestEncryption, out isEncrypted), the token in <paramref name="output"/>.</summary>
        public NegotiateAuthenticationStatusCode Wrap(byte[] input, out byte[] output, bool requestEncryption, out bool isEncrypted)
        {
            byte[] buffer = new byte[(input == null ? 0 : input.Length) + 128];
            UIntPtr length;
            int encrypted, status;
            ApmError.Check(NativeMethods.apm_negotiate_authentication_wrap(handle, input, Marshaling.Length(input), requestEncryption ? 1 : 0,
                buffer, Marshaling.Length(buffer), out length, out encrypted, out status));
            output = Output(buffer, length);
            isEncrypted = encrypted != 0;
            return (NegotiateAuthenticationStatusCode)status;
        }

        /// <summary>Unwrap(input, outputWriter, out wasEncrypted), the plaintext in <paramref name="output"/>.</summary>
        public NegotiateAuthenticationStatusCode Unwrap(byte[] input, out byte[] output, out bool wasEncrypted)
        {
            byte[] buffer = new byte[Math.Max(input == null ? 0 : input.Length, 1)];
            UIntPtr length;
            int encrypted, status;
            ApmError.Check(NativeMethods.apm_negotiate_authentication_unwrap(handle, input, Marshaling.Length(input), buffer,
                Marshaling.Length(buffer), out length, out encrypted, out status));
            output = Output(buffer, length);
            wasEncrypted = encrypted != 0;
            return (NegotiateAuthenticationStatusCode)status;
        }

        /// <summary>ComputeIntegrityCheck(message, signatureWriter): the signature.</summary>
        public byte[] ComputeIntegrityCheck(byte[] message)
        {
            byte[] buffer = new byte[256];
            UIntPtr length;
            ApmError.Check(NativeMethods.apm_negotiate_authentication_compute_integrity_check(handle, message, Marshaling.Length(message),
                buffer, Marshaling.Length(buffer), out length));
            return Output(buffer, length);
        }

        public bool VerifyIntegrityCheck(byte[] message, byte[] signature)
        {
            int valid;
            ApmError.Check(NativeMethods.apm_negotiate_authentication_verify_integrity_check(handle, message, Marshaling.Length(message),
                signature, Marshaling.Length(signature), out valid));
            return valid != 0;
        }

        public bool IsAuthenticated { get { return Marshaling.GetFlag(handle, NativeMethods.apm_negotiate_authentication_is_authenticated); } }
        public bool IsServer { get { return Marshaling.GetFlag(handle, NativeMethods.apm_negotiate_authentication_is_server); } }
        public bool IsSigned { get { return Marshaling.GetFlag(handle, NativeMethods.apm_negotiate_authentication_is_signed); } }
        public bool IsEncrypted { get { return Marshaling.GetFlag(handle, NativeMethods.apm_negotiate_authentication_is_encrypted); } }
        public bool IsMutuallyAuthenticated { get { return Marshaling.GetFlag(handle, NativeMethods.apm_negotiate_authentication_is_mutually_authenticated); } }

        public ProtectionLevel ProtectionLevel
        {
            get { return (ProtectionLevel)Marshaling.GetInt32(handle, NativeMethods.apm_negotiate_authentication_get_protection_level); }
        }

        public TokenImpersonationLevel ImpersonationLevel
        {
            get { return (TokenImpersonationLevel)Marshaling.GetInt32(handle, NativeMethods.apm_negotiate_authentication_get_impersonation_level); }
        }

        public string Package
        {
            get { return Marshaling.CopyText((byte[] b, UIntPtr n, out UIntPtr full) => NativeMethods.apm_negotiate_authentication_get_package(handle, b, n, out full)); }
        }

        public string TargetName
        {
            get { return Marshaling.CopyText((byte[] b, UIntPtr n, out UIntPtr full) => NativeMethods.apm_negotiate_authentication_get_target_name(handle, b, n, out full)); }
        }

        /// <summary>RemoteIdentity: InvalidOperationException before authentication.</summary>
        public IIdentity RemoteIdentity
        {
            get
            {
                string name = Marshaling.CopyText((byte[] b, UIntPtr n, out UIntPtr full) =>
                    NativeMethods.apm_negotiate_authentication_get_remote_identity_name(handle, b, n, out full));
                string type = Marshaling.CopyText((byte[] b, UIntPtr n, out UIntPtr full) =>
                    NativeMethods.apm_negotiate_authentication_get_remote_identity_authentication_type(handle, b, n, out full));
                return new GenericIdentity(name, type);
            }
        }

        /// <summary>Releases the context; later calls throw ObjectDisposedException (the library reports the
        /// closed handle).</summary>
        public void Dispose()
        {
            if (!disposed) NativeMethods.apm_negotiate_authentication_close(handle);
            disposed = true;
            GC.SuppressFinalize(this);
        }

        ~NegotiateAuthentication()
        {
            if (!disposed) NativeMethods.apm_negotiate_authentication_close(handle);
        }
    }
}
