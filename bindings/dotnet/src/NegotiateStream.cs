// Apmnet.NegotiateStream: System.Net.Security.NegotiateStream's surface over libapmnet's NegotiateStream
// (native NTLM and SPNEGO, Kerberos through the system's GSSAPI).
using System;
using System.IO;
using System.Net;
using System.Net.Security;
using System.Runtime.InteropServices;
using System.Security.Authentication.ExtendedProtection;
using System.Security.Principal;
using System.Threading.Tasks;
using Apmnet.Interop;

namespace Apmnet
{
    /// <summary>A server's NTLM user lookup (an apmnet extension): the password of <paramref name="user"/>
    /// in <paramref name="domain"/> (as the client sent them), or null for an unknown user.</summary>
    public delegate string NtlmUserLookup(string user, string domain);

    /// <summary>System.Net.Security.NegotiateStream over libapmnet: authentication as the client or the
    /// server with NTLM, Kerberos or Negotiate (blocking, Begin/End and Task forms), then Read/Write and the
    /// BeginRead/EndRead/BeginWrite/EndWrite overrides (ApmLibraryStream's). .NET's own types throughout:
    /// NetworkCredential, ChannelBinding, ExtendedProtectionPolicy, ProtectionLevel,
    /// TokenImpersonationLevel, IIdentity.</summary>
    /// <remarks>The inner stream is an Apmnet stream (an Apmnet.SslStream included, whose
    /// TransportContext gives the channel binding) or any read/write Stream. A server's NTLM users come
    /// from <see cref="UserFile"/> or <see cref="UserLookup"/> (apmnet extensions; .NET on Linux reads
    /// gss-ntlmssp's NTLM_USER_FILE), or are the one NetworkCredential it is given; Kerberos clients are
    /// accepted through the keytab (KRB5_KTNAME). Unlike .NET on Linux the ExtendedProtectionPolicy is
    /// checked.</remarks>
    public class NegotiateStream : ApmLibraryStream
    {
        static readonly ApmCredentialLookupCallback LookupThunk = OnLookup;
        static readonly object LookupGate = new object();
        static readonly System.Collections.Generic.Dictionary<long, NtlmUserLookup> Lookups =
            new System.Collections.Generic.Dictionary<long, NtlmUserLookup>();
        static long nextLookup;

        readonly Stream innerStream;
        readonly bool leaveInnerStreamOpen;
        long lookupId;
        IIdentity remoteIdentity;

        static NegotiateStream() { Library.EnsureInitialized(); }

        public NegotiateStream(Stream innerStream) : this(innerStream, false) { }

        public NegotiateStream(Stream innerStream, bool leaveInnerStreamOpen)
            : base(CreateOver(innerStream, leaveInnerStreamOpen, NativeMethods.apm_negotiate_stream_create))
        {
            this.innerStream = innerStream;
            this.leaveInnerStreamOpen = leaveInnerStreamOpen;
        }

        /// <summary>AuthenticatedStream.InnerStream.</summary>
        protected Stream InnerStream { get { return innerStream; } }

        /// <summary>AuthenticatedStream.LeaveInnerStreamOpen.</summary>
        public bool LeaveInnerStreamOpen { get { return leaveInnerStreamOpen; } }

        /// <summary>A server's NTLM users: a file of DOMAIN:USER:PASSWORD lines (an apmnet extension).</summary>
        public string UserFile { get; set; }

        /// <summary>A server's NTLM users: a lookup called during the handshake (an apmnet extension).</summary>
        public NtlmUserLookup UserLookup { get; set; }

        // ---- Credentials --------------------------------------------------------------------------

        /// <summary>A library credential for <paramref name="credential"/>: the default one for
        /// CredentialCache.DefaultNetworkCredentials (or any without a user name), IntPtr.Zero for null
        /// (the library reports it). The caller closes it.</summary>
        internal static IntPtr ClientCredential(NetworkCredential credential)
        {
            if (credential == null) return IntPtr.Zero;
            IntPtr handle;
            if (credential == CredentialCache.DefaultNetworkCredentials || string.IsNullOrEmpty(credential.UserName))
                ApmError.Check(NativeMethods.apm_credential_create_default(out handle));
            else
                ApmError.Check(NativeMethods.apm_credential_create(Marshaling.Utf8(credential.UserName), Marshaling.Utf8(credential.Password ?? ""),
                    Marshaling.Utf8(credential.Domain ?? ""), out handle));
            return handle;
        }

        IntPtr ServerCredential(NetworkCredential credential)
        {
            IntPtr handle;
            if (UserFile != null)
            {
                ApmError.Check(NativeMethods.apm_credential_create_from_file(Marshaling.Utf8(UserFile), out handle));
                return handle;
            }
            if (UserLookup != null)
            {
                lock (LookupGate)
                {
                    if (lookupId == 0) lookupId = ++nextLookup;
                    Lookups[lookupId] = UserLookup;
                }
                ApmError.Check(NativeMethods.apm_credential_create_lookup(LookupThunk, new IntPtr(lookupId), out handle));
                return handle;
            }
            return ClientCredential(credential);
        }

        static int OnLookup(IntPtr user, IntPtr domain, IntPtr password, UIntPtr passwordSize, IntPtr ntHash, IntPtr state)
        {
            NtlmUserLookup lookup;
            lock (LookupGate)
            {
                if (!Lookups.TryGetValue(state.ToInt64(), out lookup)) return 0;
            }
            try
            {
                string secret = lookup(Marshaling.FromStatic(user), Marshaling.FromStatic(domain) ?? "");
                if (secret == null) return 0;
                byte[] bytes = Marshaling.Utf8(secret);  // NUL-terminated
                int size = checked((int)passwordSize.ToUInt64());
                if (bytes.Length > size) return 0;
                Marshal.Copy(bytes, 0, password, bytes.Length);
                return 1;
            }
            catch (Exception)
            {
                return 0;  // never unwind into the library: an unknown user
            }
        }

        static byte[] Bytes(ChannelBinding binding)
        {
            if (binding == null) return null;
            byte[] data = new byte[binding.Size];
            bool added = false;
            try
            {
                binding.DangerousAddRef(ref added);
                Marshal.Copy(binding.DangerousGetHandle(), data, 0, data.Length);
            }
            finally
            {
                if (added) binding.DangerousRelease();
            }
            return data;
        }

        static UIntPtr SizeOf(byte[] data) { return new UIntPtr(data == null ? 0u : (uint)data.Length); }

        /// <summary>Runs <paramref name="call"/> with a credential handle, closed afterwards (the stream keeps
        /// what it needs).</summary>
        static T WithCredential<T>(IntPtr credential, Func<T> call)
        {
            try { return call(); }
            finally { if (credential != IntPtr.Zero) NativeMethods.apm_credential_close(credential); }
        }

        // ---- Client authentication -------------------------------------------------------------------

        public virtual void AuthenticateAsClient()
        {
            AuthenticateAsClient(CredentialCache.DefaultNetworkCredentials, null, "", ProtectionLevel.EncryptAndSign, TokenImpersonationLevel.Identification);
        }

        public virtual void AuthenticateAsClient(NetworkCredential credential, string targetName)
        {
            AuthenticateAsClient(credential, null, targetName, ProtectionLevel.EncryptAndSign, TokenImpersonationLevel.Identification);
        }

        public virtual void AuthenticateAsClient(NetworkCredential credential, ChannelBinding binding, string targetName)
        {
            AuthenticateAsClient(credential, binding, targetName, ProtectionLevel.EncryptAndSign, TokenImpersonationLevel.Identification);
        }

        public virtual void AuthenticateAsClient(NetworkCredential credential, string targetName, ProtectionLevel requiredProtectionLevel,
            TokenImpersonationLevel allowedImpersonationLevel)
        {
            AuthenticateAsClient(credential, null, targetName, requiredProtectionLevel, allowedImpersonationLevel);
        }

        /// <summary>Blocks until authenticated. targetName is the SPN, "SERVICE/host"; ProtectionLevel.None
        /// authenticates with raw NTLM (as .NET), the others with Negotiate (Kerberos when a ticket for the
        /// target can be had, else NTLM).</summary>
        public virtual void AuthenticateAsClient(NetworkCredential credential, ChannelBinding binding, string targetName,
            ProtectionLevel requiredProtectionLevel, TokenImpersonationLevel allowedImpersonationLevel)
        {
            byte[] data = Bytes(binding);
            IntPtr handle = ClientCredential(credential);
            ApmError.Check(WithCredential(handle, () => NativeMethods.apm_negotiate_stream_authenticate_as_client(NativeHandle, handle,
                Marshaling.Utf8(targetName), data, SizeOf(data), (int)requiredProtectionLevel, (int)allowedImpersonationLevel)));
        }

        public virtual IAsyncResult BeginAuthenticateAsClient(AsyncCallback asyncCallback, object asyncState)
        {
            return BeginAuthenticateAsClient(CredentialCache.DefaultNetworkCredentials, null, "", ProtectionLevel.EncryptAndSign,
                TokenImpersonationLevel.Identification, asyncCallback, asyncState);
        }

        public virtual IAsyncResult BeginAuthenticateAsClient(NetworkCredential credential, string targetName, AsyncCallback asyncCallback, object asyncState)
        {
            return BeginAuthenticateAsClient(credential, null, targetName, ProtectionLevel.EncryptAndSign, TokenImpersonationLevel.Identification,
                asyncCallback, asyncState);
        }

        public virtual IAsyncResult BeginAuthenticateAsClient(NetworkCredential credential, ChannelBinding binding, string targetName,
            AsyncCallback asyncCallback, object asyncState)
        {
            return BeginAuthenticateAsClient(credential, binding, targetName, ProtectionLevel.EncryptAndSign, TokenImpersonationLevel.Identification,
                asyncCallback, asyncState);
        }

        public virtual IAsyncResult BeginAuthenticateAsClient(NetworkCredential credential, string targetName, ProtectionLevel requiredProtectionLevel,
            TokenImpersonationLevel allowedImpersonationLevel, AsyncCallback asyncCallback, object asyncState)
        {
            return BeginAuthenticateAsClient(credential, null, targetName, requiredProtectionLevel, allowedImpersonationLevel, asyncCallback, asyncState);
        }

        public virtual IAsyncResult BeginAuthenticateAsClient(NetworkCredential credential, ChannelBinding binding, string targetName,
            ProtectionLevel requiredProtectionLevel, TokenImpersonationLevel allowedImpersonationLevel, AsyncCallback asyncCallback, object asyncState)
        {
            byte[] data = Bytes(binding);
            byte[] target = Marshaling.Utf8(targetName);
            IntPtr handle = ClientCredential(credential);
            return WithCredential(handle, () => new ApmAsyncResult(this, asyncCallback, asyncState, null).Start(
                (ApmAsyncResult r, IntPtr s, out IntPtr h) => NativeMethods.apm_negotiate_stream_begin_authenticate_as_client(NativeHandle, handle,
                    target, data, SizeOf(data), (int)requiredProtectionLevel, (int)allowedImpersonationLevel, ApmAsyncResult.CompletionThunk, s, out h)));
        }

        public virtual void EndAuthenticateAsClient(IAsyncResult asyncResult)
        {
            ApmAsyncResult.End(asyncResult, r => NativeMethods.apm_negotiate_stream_end_authenticate_as_client(NativeHandle, r));
        }

        public virtual Task AuthenticateAsClientAsync()
        {
            return Task.Factory.FromAsync(BeginAuthenticateAsClient, EndAuthenticateAsClient, null);
        }

        public virtual Task AuthenticateAsClientAsync(NetworkCredential credential, string targetName)
        {
            return Task.Factory.FromAsync((cb, st) => BeginAuthenticateAsClient(credential, targetName, cb, st), EndAuthenticateAsClient, null);
        }

        public virtual Task AuthenticateAsClientAsync(NetworkCredential credential, ChannelBinding binding, string targetName)
        {
            return Task.Factory.FromAsync((cb, st) => BeginAuthenticateAsClient(credential, binding, targetName, cb, st), EndAuthenticateAsClient, null);
        }

        public virtual Task AuthenticateAsClientAsync(NetworkCredential credential, string targetName, ProtectionLevel requiredProtectionLevel,
            TokenImpersonationLevel allowedImpersonationLevel)
        {
            return AuthenticateAsClientAsync(credential, null, targetName, requiredProtectionLevel, allowedImpersonationLevel);
        }

        public virtual Task AuthenticateAsClientAsync(NetworkCredential credential, ChannelBinding binding, string targetName,
            ProtectionLevel requiredProtectionLevel, TokenImpersonationLevel allowedImpersonationLevel)
        {
            return Task.Factory.FromAsync((cb, st) => BeginAuthenticateAsClient(credential, binding, targetName, requiredProtectionLevel,
                allowedImpersonationLevel, cb, st), EndAuthenticateAsClient, null);
        }

        // ---- Server authentication -------------------------------------------------------------------

        public virtual void AuthenticateAsServer()
        {
            AuthenticateAsServer(CredentialCache.DefaultNetworkCredentials, null, ProtectionLevel.EncryptAndSign, TokenImpersonationLevel.Identification);
        }

        public virtual void AuthenticateAsServer(ExtendedProtectionPolicy policy)
        {
            AuthenticateAsServer(CredentialCache.DefaultNetworkCredentials, policy, ProtectionLevel.EncryptAndSign, TokenImpersonationLevel.Identification);
        }

        public virtual void AuthenticateAsServer(NetworkCredential credential, ProtectionLevel requiredProtectionLevel,
            TokenImpersonationLevel requiredImpersonationLevel)
        {
            AuthenticateAsServer(credential, null, requiredProtectionLevel, requiredImpersonationLevel);
        }

        /// <summary>The policy's arguments for the C API: enforcement, channel binding, service names.</summary>
        internal sealed class PolicyArguments
        {
            internal readonly int Enforcement;
            internal readonly byte[] Binding;
            internal readonly IntPtr[] Names;

            internal PolicyArguments(ExtendedProtectionPolicy policy)
            {
                if (policy == null) return;
                Enforcement = (int)policy.PolicyEnforcement;
                Binding = Bytes(policy.CustomChannelBinding);
                if (policy.CustomServiceNames != null)
                {
                    Names = new IntPtr[policy.CustomServiceNames.Count];
                    int i = 0;
                    foreach (object name in policy.CustomServiceNames)
                    {
                        byte[] text = Marshaling.Utf8(name.ToString());
                        Names[i] = Marshal.AllocHGlobal(text.Length);
                        Marshal.Copy(text, 0, Names[i++], text.Length);
                    }
                }
            }

            internal UIntPtr Count { get { return new UIntPtr(Names == null ? 0u : (uint)Names.Length); } }

            internal void Free()
            {
                if (Names != null) foreach (IntPtr name in Names) Marshal.FreeHGlobal(name);
            }
        }

        /// <summary>Blocks until authenticated. The policy's channel binding (e.g. of the Apmnet.SslStream
        /// underneath) and service names are checked, unlike .NET on Linux.</summary>
        public virtual void AuthenticateAsServer(NetworkCredential credential, ExtendedProtectionPolicy policy, ProtectionLevel requiredProtectionLevel,
            TokenImpersonationLevel requiredImpersonationLevel)
        {
            PolicyArguments p = new PolicyArguments(policy);
            try
            {
                IntPtr handle = ServerCredential(credential);
                ApmError.Check(WithCredential(handle, () => NativeMethods.apm_negotiate_stream_authenticate_as_server(NativeHandle, handle, p.Enforcement,
                    p.Binding, SizeOf(p.Binding), p.Names, p.Count, (int)requiredProtectionLevel, (int)requiredImpersonationLevel)));
            }
            finally
            {
                p.Free();
            }
        }

        public virtual IAsyncResult BeginAuthenticateAsServer(AsyncCallback asyncCallback, object asyncState)
        {
            return BeginAuthenticateAsServer(CredentialCache.DefaultNetworkCredentials, null, ProtectionLevel.EncryptAndSign,
                TokenImpersonationLevel.Identification, asyncCallback, asyncState);
        }

        public virtual IAsyncResult BeginAuthenticateAsServer(ExtendedProtectionPolicy policy, AsyncCallback asyncCallback, object asyncState)
        {
            return BeginAuthenticateAsServer(CredentialCache.DefaultNetworkCredentials, policy, ProtectionLevel.EncryptAndSign,
                TokenImpersonationLevel.Identification, asyncCallback, asyncState);
        }

        public virtual IAsyncResult BeginAuthenticateAsServer(NetworkCredential credential, ProtectionLevel requiredProtectionLevel,
            TokenImpersonationLevel requiredImpersonationLevel, AsyncCallback asyncCallback, object asyncState)
        {
            return BeginAuthenticateAsServer(credential, null, requiredProtectionLevel, requiredImpersonationLevel, asyncCallback, asyncState);
        }

        public virtual IAsyncResult BeginAuthenticateAsServer(NetworkCredential credential, ExtendedProtectionPolicy policy,
            ProtectionLevel requiredProtectionLevel, TokenImpersonationLevel requiredImpersonationLevel, AsyncCallback asyncCallback, object asyncState)
        {
            PolicyArguments p = new PolicyArguments(policy);
            try
            {
                IntPtr handle = ServerCredential(credential);
                return WithCredential(handle, () => new ApmAsyncResult(this, asyncCallback, asyncState, null).Start(
                    (ApmAsyncResult r, IntPtr s, out IntPtr h) => NativeMethods.apm_negotiate_stream_begin_authenticate_as_server(NativeHandle, handle,
                        p.Enforcement, p.Binding, SizeOf(p.Binding), p.Names, p.Count, (int)requiredProtectionLevel, (int)requiredImpersonationLevel,
                        ApmAsyncResult.CompletionThunk, s, out h)));
            }
            finally
            {
                p.Free();  // the library copied the names
            }
        }

        public virtual void EndAuthenticateAsServer(IAsyncResult asyncResult)
        {
            ApmAsyncResult.End(asyncResult, r => NativeMethods.apm_negotiate_stream_end_authenticate_as_server(NativeHandle, r));
        }

        public virtual Task AuthenticateAsServerAsync()
        {
            return Task.Factory.FromAsync(BeginAuthenticateAsServer, EndAuthenticateAsServer, null);
        }

        public virtual Task AuthenticateAsServerAsync(ExtendedProtectionPolicy policy)
        {
            return Task.Factory.FromAsync((cb, st) => BeginAuthenticateAsServer(policy, cb, st), EndAuthenticateAsServer, null);
        }

        public virtual Task AuthenticateAsServerAsync(NetworkCredential credential, ProtectionLevel requiredProtectionLevel,
            TokenImpersonationLevel requiredImpersonationLevel)
        {
            return AuthenticateAsServerAsync(credential, null, requiredProtectionLevel, requiredImpersonationLevel);
        }

        public virtual Task AuthenticateAsServerAsync(NetworkCredential credential, ExtendedProtectionPolicy policy, ProtectionLevel requiredProtectionLevel,
            TokenImpersonationLevel requiredImpersonationLevel)
        {
            return Task.Factory.FromAsync((cb, st) => BeginAuthenticateAsServer(credential, policy, requiredProtectionLevel, requiredImpersonationLevel,
                cb, st), EndAuthenticateAsServer, null);
        }

        // ---- Properties --------------------------------------------------------------------------------

        public virtual bool IsAuthenticated { get { return Flag(NativeMethods.apm_negotiate_stream_is_authenticated); } }
        public virtual bool IsServer { get { return Flag(NativeMethods.apm_negotiate_stream_is_server); } }
        public virtual bool IsEncrypted { get { return Flag(NativeMethods.apm_negotiate_stream_is_encrypted); } }
        public virtual bool IsSigned { get { return Flag(NativeMethods.apm_negotiate_stream_is_signed); } }
        public virtual bool IsMutuallyAuthenticated { get { return Flag(NativeMethods.apm_negotiate_stream_is_mutually_authenticated); } }

        /// <summary>The negotiated impersonation level (NTLM: Identification).</summary>
        public virtual TokenImpersonationLevel ImpersonationLevel
        {
            get { return (TokenImpersonationLevel)Marshaling.GetInt32(NativeHandle, NativeMethods.apm_negotiate_stream_get_impersonation_level); }
        }

        /// <summary>The peer: on a server the client ("DOMAIN\user", "user@REALM"), on a client the target name;
        /// AuthenticationType "NTLM" or "Kerberos".</summary>
        public virtual IIdentity RemoteIdentity
        {
            get
            {
                if (remoteIdentity == null)
                {
                    string name = Marshaling.CopyText((byte[] b, UIntPtr n, out UIntPtr full) =>
                        NativeMethods.apm_negotiate_stream_get_remote_identity_name(NativeHandle, b, n, out full));
                    string type = Marshaling.CopyText((byte[] b, UIntPtr n, out UIntPtr full) =>
                        NativeMethods.apm_negotiate_stream_get_remote_identity_authentication_type(NativeHandle, b, n, out full));
                    remoteIdentity = new GenericIdentity(name, type);
                }
                return remoteIdentity;
            }
        }

        /// <summary>Dispose: once the library's stream is closed, closes the inner stream unless
        /// leaveInnerStreamOpen.</summary>
        internal override void OnDisposed()
        {
            lock (LookupGate)
            {
                if (lookupId != 0) Lookups.Remove(lookupId);
            }
            if (leaveInnerStreamOpen) innerStream.Flush();
            else innerStream.Dispose();
        }
    }
}
