// Apmnet.SslStream: System.Net.Security.SslStream's surface over libapmnet's SslStream (OpenSSL inside).
using System;
using System.Collections.Generic;
using System.IO;
using System.Net;
using System.Net.Security;
using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Threading;
using System.Threading.Tasks;
using Apmnet.Interop;

namespace Apmnet
{
    /// <summary>System.Net.Security.SslStream over libapmnet: client and server authentication (blocking,
    /// Begin/End and Task forms), then Read/Write and the BeginRead/EndRead/BeginWrite/EndWrite overrides
    /// (ApmLibraryStream's), so Task.Factory.FromAsync, ReadAsync/WriteAsync, CopyTo and StreamReader use
    /// the library's asynchronous operations. The callbacks are .NET's own delegates
    /// (RemoteCertificateValidationCallback, LocalCertificateSelectionCallback) with .NET's own certificate
    /// types.</summary>
    /// <remarks>The inner stream is an Apmnet.NetworkStream or Apmnet.SslStream (used by the library
    /// directly) or any other read/write Stream (driven through its BeginRead/BeginWrite). The class derives
    /// from Stream (through ApmLibraryStream), not AuthenticatedStream: AuthenticatedStream.DisposeAsync
    /// would skip this class's Dispose, and its override is out of reach of Mono's reference assemblies. It
    /// has the same members.
    /// The validation and selection callbacks run during the handshake, on the thread driving it; an
    /// exception they throw rejects the handshake and is rethrown by Authenticate/EndAuthenticate, as .NET
    /// does.</remarks>
    public class SslStream : ApmLibraryStream
    {
        // The callback trampolines (static: alive as long as the process) find their stream through an id.
        static readonly object RegistryGate = new object();
        static readonly Dictionary<long, WeakReference> Registry = new Dictionary<long, WeakReference>();
        static long nextId;
        static int sweepAt = 64;
        static readonly ApmValidationCallback ValidationThunk = OnValidate;
        static readonly ApmSelectionCallback SelectionThunk = OnSelect;

        readonly Stream innerStream;
        readonly bool leaveInnerStreamOpen;
        readonly RemoteCertificateValidationCallback validation;
        readonly LocalCertificateSelectionCallback selection;
        readonly object gate = new object();
        readonly List<IntPtr> selected = new List<IntPtr>();  // handles returned by the selection callback
        long id;
        bool selectionInstalled;
        ExceptionDispatchInfo callbackError;
        X509CertificateCollection localCertificates;
        bool checkRevocation;
        X509Certificate remoteCertificate, localCertificate;

        static SslStream() { Library.EnsureInitialized(); }

        public SslStream(Stream innerStream) : this(innerStream, false, null, null) { }

        public SslStream(Stream innerStream, bool leaveInnerStreamOpen) : this(innerStream, leaveInnerStreamOpen, null, null) { }

        public SslStream(Stream innerStream, bool leaveInnerStreamOpen, RemoteCertificateValidationCallback userCertificateValidationCallback)
            : this(innerStream, leaveInnerStreamOpen, userCertificateValidationCallback, null) { }

        public SslStream(Stream innerStream, bool leaveInnerStreamOpen, RemoteCertificateValidationCallback userCertificateValidationCallback,
            LocalCertificateSelectionCallback userCertificateSelectionCallback)
            : base(Create(innerStream, leaveInnerStreamOpen))
        {
            this.innerStream = innerStream;
            this.leaveInnerStreamOpen = leaveInnerStreamOpen;
            validation = userCertificateValidationCallback;
            selection = userCertificateSelectionCallback;
            if (validation != null)
                ApmError.Check(NativeMethods.apm_ssl_stream_set_validation_callback(NativeHandle, ValidationThunk, Register()));
            if (selection != null) InstallSelection();
        }

        static StreamHandle Create(Stream innerStream, bool leaveInnerStreamOpen)
        {
            return CreateOver(innerStream, leaveInnerStreamOpen, NativeMethods.apm_ssl_stream_create);
        }

        /// <summary>AuthenticatedStream.InnerStream.</summary>
        protected Stream InnerStream { get { return innerStream; } }

        /// <summary>AuthenticatedStream.LeaveInnerStreamOpen.</summary>
        public bool LeaveInnerStreamOpen { get { return leaveInnerStreamOpen; } }

        // ---- Registry of streams with callbacks -----------------------------------------------------

        IntPtr Register()
        {
            lock (RegistryGate)
            {
                if (id == 0)
                {
                    id = ++nextId;
                    Registry[id] = new WeakReference(this);
                    if (Registry.Count >= sweepAt)
                    {
                        // Streams that were never disposed leave their entry behind: drop the dead ones.
                        List<long> dead = new List<long>();
                        foreach (KeyValuePair<long, WeakReference> entry in Registry)
                            if (!entry.Value.IsAlive) dead.Add(entry.Key);
                        foreach (long key in dead) Registry.Remove(key);
                        sweepAt = Math.Max(64, Registry.Count * 2);
                    }
                }
                return new IntPtr(id);
            }
        }

        void Unregister()
        {
            lock (RegistryGate)
            {
                if (id != 0) Registry.Remove(id);
            }
        }

        static SslStream Find(IntPtr state)
        {
            lock (RegistryGate)
            {
                WeakReference entry;
                return Registry.TryGetValue(state.ToInt64(), out entry) ? entry.Target as SslStream : null;
            }
        }

        void InstallSelection()
        {
            if (selectionInstalled) return;
            ApmError.Check(NativeMethods.apm_ssl_stream_set_selection_callback(NativeHandle, SelectionThunk, Register()));
            selectionInstalled = true;
        }

        void KeepCallbackError(Exception error)
        {
            lock (gate) { if (callbackError == null) callbackError = ExceptionDispatchInfo.Capture(error); }
        }

        /// <summary>A failed authentication: the callback's own exception if one was thrown, else the
        /// library's.</summary>
        void ThrowCallbackError()
        {
            ExceptionDispatchInfo error;
            lock (gate) { error = callbackError; callbackError = null; }
            if (error != null) error.Throw();
        }

        static int OnValidate(IntPtr sender, IntPtr certificate, IntPtr chain, UIntPtr chainLength, int sslPolicyErrors, IntPtr state)
        {
            SslStream stream = Find(state);
            if (stream == null || stream.validation == null) return 0;
            try
            {
                return RunValidation(stream, stream.validation, certificate, chain, chainLength, sslPolicyErrors);
            }
            catch (Exception error)
            {
                stream.KeepCallbackError(error);  // never unwind into the library
                return 0;
            }
        }

        /// <summary>A RemoteCertificateValidationCallback called with the library's certificate handles
        /// (valid during the call): the verdict is the library's, in sslPolicyErrors; the chain is for the
        /// callback to look at. 1 accepts.</summary>
        internal static int RunValidation(object sender, RemoteCertificateValidationCallback callback, IntPtr certificate, IntPtr chain,
            UIntPtr chainLength, int sslPolicyErrors)
        {
            X509Certificate2 remote = certificate == IntPtr.Zero ? null : Certificates.ToManaged(certificate);
            X509Certificate2[] elements = Certificates.ToManagedArray(chain, chainLength);
            X509Chain x509Chain = new X509Chain();
            try
            {
                x509Chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                for (int i = 1; i < elements.Length; i++) x509Chain.ChainPolicy.ExtraStore.Add(elements[i]);
                if (remote != null)
                {
                    try { x509Chain.Build(remote); }
                    catch (Exception) { }
                }
                return callback(sender, remote, x509Chain, (SslPolicyErrors)sslPolicyErrors) ? 1 : 0;
            }
            finally
            {
                IDisposable disposable = x509Chain as IDisposable;
                if (disposable != null) disposable.Dispose();
            }
        }

        static IntPtr OnSelect(IntPtr sender, IntPtr targetHost, IntPtr localCertificates, UIntPtr localLength,
            IntPtr remoteCertificate, IntPtr acceptableIssuers, UIntPtr issuersLength, IntPtr state)
        {
            SslStream stream = Find(state);
            if (stream == null) return IntPtr.Zero;
            try
            {
                string host = Marshaling.FromStatic(targetHost) ?? "";
                X509CertificateCollection local = stream.localCertificates;
                if (local == null) local = new X509CertificateCollection(Certificates.ToManagedArray(localCertificates, localLength));
                X509Certificate remote = remoteCertificate == IntPtr.Zero ? null : Certificates.ToManaged(remoteCertificate);
                string[] issuers = new string[checked((int)issuersLength.ToUInt64())];
                for (int i = 0; i < issuers.Length; i++)
                    issuers[i] = Marshaling.FromStatic(Marshal.ReadIntPtr(acceptableIssuers, i * IntPtr.Size));
                X509Certificate chosen = stream.selection != null
                    ? stream.selection(stream, host, local, remote, issuers)
                    : DefaultSelection(local, issuers);
                if (chosen == null) return IntPtr.Zero;
                // The library takes its own reference after we return; ours is closed with the stream.
                IntPtr native = Certificates.ToNative(chosen);
                lock (stream.gate) stream.selected.Add(native);
                return native;
            }
            catch (Exception error)
            {
                stream.KeepCallbackError(error);
                return IntPtr.Zero;
            }
        }

        /// <summary>.NET's choice among several client certificates without a selection callback: the first
        /// with a private key whose issuer the server named, else the first with a private key.</summary>
        static X509Certificate DefaultSelection(X509CertificateCollection local, string[] issuers)
        {
            X509Certificate2 fallback = null;
            foreach (X509Certificate certificate in local)
            {
                X509Certificate2 full = certificate as X509Certificate2 ?? new X509Certificate2(certificate);
                if (!full.HasPrivateKey) continue;
                if (fallback == null) fallback = full;
                foreach (string issuer in issuers)
                    if (SameName(full.Issuer, issuer)) return full;
            }
            return fallback;
        }

        static bool SameName(string a, string b)
        {
            return string.Equals(a.Replace(" ", ""), (b ?? "").Replace(" ", ""), StringComparison.OrdinalIgnoreCase);
        }

        // ---- Options ---------------------------------------------------------------------------------

        /// <summary>SslClientAuthenticationOptions/SslServerAuthenticationOptions.ApplicationProtocols: the ALPN
        /// names offered by a client or accepted by a server (in order of preference), applied when
        /// authentication starts. Null or empty: no ALPN.</summary>
        public IList<string> ApplicationProtocols { get; set; }

        bool allowTlsResume = true;

        /// <summary>SslClientAuthenticationOptions/SslServerAuthenticationOptions.AllowTlsResume (.NET 8;
        /// default true), applied when authentication starts. A client resumes a session of an earlier
        /// connection to the same target host with the same protocols, client certificate and validation
        /// settings (its certificate is validated again, the callback included); false: a client neither
        /// offers nor keeps a session, a server issues no ticket and resumes nothing.</summary>
        public bool AllowTlsResume
        {
            get { return allowTlsResume; }
            set { allowTlsResume = value; }
        }

        /// <summary>Trust exactly the CA certificates of this PEM file (null: the system store again) when
        /// validating the peer; before authentication only. An apmnet extension, for private CAs.</summary>
        public void SetTrustedCaFile(string path)
        {
            ApmError.Check(NativeMethods.apm_ssl_stream_set_trusted_ca_file(NativeHandle, Marshaling.Utf8(path)));
        }

        void ApplyOptions()
        {
            if (!allowTlsResume) ApmError.Check(NativeMethods.apm_ssl_stream_set_allow_tls_resume(NativeHandle, 0));
            IList<string> protocols = ApplicationProtocols;
            if (protocols == null || protocols.Count == 0) return;
            IntPtr[] names = new IntPtr[protocols.Count];
            try
            {
                for (int i = 0; i < names.Length; i++)
                {
                    byte[] name = Marshaling.Utf8(protocols[i] ?? "");
                    names[i] = Marshal.AllocHGlobal(name.Length);
                    Marshal.Copy(name, 0, names[i], name.Length);
                }
                ApmError.Check(NativeMethods.apm_ssl_stream_set_application_protocols(NativeHandle, names, new UIntPtr((uint)names.Length)));
            }
            finally
            {
                foreach (IntPtr name in names) if (name != IntPtr.Zero) Marshal.FreeHGlobal(name);
            }
        }

        /// <summary>Converts the client certificate to present (the C API takes one: with several, the
        /// selection callback, or .NET's default choice, picks it when the server asks).</summary>
        IntPtr PrepareClient(X509CertificateCollection clientCertificates, bool checkCertificateRevocation)
        {
            localCertificates = clientCertificates;
            checkRevocation = checkCertificateRevocation;
            ApplyOptions();
            if (clientCertificates == null || clientCertificates.Count == 0) return IntPtr.Zero;
            if (clientCertificates.Count > 1 || selection != null)
            {
                InstallSelection();
                return IntPtr.Zero;
            }
            return Certificates.ToNative(clientCertificates[0]);
        }

        IntPtr PrepareServer(X509Certificate serverCertificate, bool checkCertificateRevocation)
        {
            localCertificates = serverCertificate == null ? null : new X509CertificateCollection(new[] { serverCertificate });
            checkRevocation = checkCertificateRevocation;
            ApplyOptions();
            return serverCertificate == null ? IntPtr.Zero : Certificates.ToNative(serverCertificate);
        }

        /// <summary>Runs a blocking handshake presenting <paramref name="certificate"/> (from PrepareClient or
        /// PrepareServer), then closes our reference to the certificate: the stream keeps its own.</summary>
        void Authenticate(IntPtr certificate, Func<int> handshake)
        {
            try
            {
                int status = handshake();
                if (status == 0) return;
                Exception error = ApmError.Last(status);
                ThrowCallbackError();
                throw error;
            }
            finally
            {
                Certificates.Close(certificate);
            }
        }

        /// <summary>Starts a handshake presenting <paramref name="certificate"/>, then closes our reference to
        /// the certificate.</summary>
        IAsyncResult BeginAuthentication(IntPtr certificate, AsyncCallback asyncCallback, object asyncState, ApmAsyncResult.BeginCall begin)
        {
            try
            {
                return new ApmAsyncResult(this, asyncCallback, asyncState, null).Start(begin);
            }
            finally
            {
                Certificates.Close(certificate);
            }
        }

        void EndAuthentication(IAsyncResult asyncResult, ApmAsyncResult.EndCall call)
        {
            try
            {
                ApmAsyncResult.End(asyncResult, call);
            }
            catch (Exception)
            {
                ThrowCallbackError();
                throw;
            }
        }

        // ---- Client authentication -------------------------------------------------------------------

        public virtual void AuthenticateAsClient(string targetHost)
        {
            AuthenticateAsClient(targetHost, null, SslProtocols.None, false);
        }

        public virtual void AuthenticateAsClient(string targetHost, X509CertificateCollection clientCertificates, bool checkCertificateRevocation)
        {
            AuthenticateAsClient(targetHost, clientCertificates, SslProtocols.None, checkCertificateRevocation);
        }

        /// <summary>Blocks until the handshake is done. targetHost is sent as SNI and the server certificate
        /// must match it; SslProtocols.None lets the library choose (TLS 1.2 and 1.3).</summary>
        public virtual void AuthenticateAsClient(string targetHost, X509CertificateCollection clientCertificates, SslProtocols enabledSslProtocols, bool checkCertificateRevocation)
        {
            IntPtr certificate = PrepareClient(clientCertificates, checkCertificateRevocation);
            Authenticate(certificate, () => NativeMethods.apm_ssl_stream_authenticate_as_client(NativeHandle, Marshaling.Utf8(targetHost), certificate,
                (int)enabledSslProtocols, checkCertificateRevocation ? 1 : 0));
        }

        public virtual IAsyncResult BeginAuthenticateAsClient(string targetHost, AsyncCallback asyncCallback, object asyncState)
        {
            return BeginAuthenticateAsClient(targetHost, null, SslProtocols.None, false, asyncCallback, asyncState);
        }

        public virtual IAsyncResult BeginAuthenticateAsClient(string targetHost, X509CertificateCollection clientCertificates, bool checkCertificateRevocation,
            AsyncCallback asyncCallback, object asyncState)
        {
            return BeginAuthenticateAsClient(targetHost, clientCertificates, SslProtocols.None, checkCertificateRevocation, asyncCallback, asyncState);
        }

        public virtual IAsyncResult BeginAuthenticateAsClient(string targetHost, X509CertificateCollection clientCertificates, SslProtocols enabledSslProtocols,
            bool checkCertificateRevocation, AsyncCallback asyncCallback, object asyncState)
        {
            IntPtr certificate = PrepareClient(clientCertificates, checkCertificateRevocation);
            byte[] host = Marshaling.Utf8(targetHost);
            return BeginAuthentication(certificate, asyncCallback, asyncState,
                (ApmAsyncResult r, IntPtr s, out IntPtr h) => NativeMethods.apm_ssl_stream_begin_authenticate_as_client(NativeHandle, host, certificate,
                    (int)enabledSslProtocols, checkCertificateRevocation ? 1 : 0, ApmAsyncResult.CompletionThunk, s, out h));
        }

        public virtual void EndAuthenticateAsClient(IAsyncResult asyncResult)
        {
            EndAuthentication(asyncResult, r => NativeMethods.apm_ssl_stream_end_authenticate_as_client(NativeHandle, r));
        }

        public virtual Task AuthenticateAsClientAsync(string targetHost)
        {
            return Task.Factory.FromAsync((cb, st) => BeginAuthenticateAsClient(targetHost, cb, st), EndAuthenticateAsClient, null);
        }

        public virtual Task AuthenticateAsClientAsync(string targetHost, X509CertificateCollection clientCertificates, bool checkCertificateRevocation)
        {
            return AuthenticateAsClientAsync(targetHost, clientCertificates, SslProtocols.None, checkCertificateRevocation);
        }

        public virtual Task AuthenticateAsClientAsync(string targetHost, X509CertificateCollection clientCertificates, SslProtocols enabledSslProtocols, bool checkCertificateRevocation)
        {
            return Task.Factory.FromAsync((cb, st) => BeginAuthenticateAsClient(targetHost, clientCertificates, enabledSslProtocols, checkCertificateRevocation, cb, st),
                EndAuthenticateAsClient, null);
        }

        // ---- Server authentication -------------------------------------------------------------------

        public virtual void AuthenticateAsServer(X509Certificate serverCertificate)
        {
            AuthenticateAsServer(serverCertificate, false, SslProtocols.None, false);
        }

        public virtual void AuthenticateAsServer(X509Certificate serverCertificate, bool clientCertificateRequired, bool checkCertificateRevocation)
        {
            AuthenticateAsServer(serverCertificate, clientCertificateRequired, SslProtocols.None, checkCertificateRevocation);
        }

        /// <summary>Blocks until the handshake is done. The certificate needs its private key (an
        /// X509Certificate2 loaded from PKCS#12, for example); it may be null when a selection callback
        /// chooses, knowing the client's SNI name.</summary>
        public virtual void AuthenticateAsServer(X509Certificate serverCertificate, bool clientCertificateRequired, SslProtocols enabledSslProtocols, bool checkCertificateRevocation)
        {
            IntPtr certificate = PrepareServer(serverCertificate, checkCertificateRevocation);
            Authenticate(certificate, () => NativeMethods.apm_ssl_stream_authenticate_as_server(NativeHandle, certificate, clientCertificateRequired ? 1 : 0,
                (int)enabledSslProtocols, checkCertificateRevocation ? 1 : 0));
        }

        public virtual IAsyncResult BeginAuthenticateAsServer(X509Certificate serverCertificate, AsyncCallback asyncCallback, object asyncState)
        {
            return BeginAuthenticateAsServer(serverCertificate, false, SslProtocols.None, false, asyncCallback, asyncState);
        }

        public virtual IAsyncResult BeginAuthenticateAsServer(X509Certificate serverCertificate, bool clientCertificateRequired, bool checkCertificateRevocation,
            AsyncCallback asyncCallback, object asyncState)
        {
            return BeginAuthenticateAsServer(serverCertificate, clientCertificateRequired, SslProtocols.None, checkCertificateRevocation, asyncCallback, asyncState);
        }

        public virtual IAsyncResult BeginAuthenticateAsServer(X509Certificate serverCertificate, bool clientCertificateRequired, SslProtocols enabledSslProtocols,
            bool checkCertificateRevocation, AsyncCallback asyncCallback, object asyncState)
        {
            IntPtr certificate = PrepareServer(serverCertificate, checkCertificateRevocation);
            return BeginAuthentication(certificate, asyncCallback, asyncState,
                (ApmAsyncResult r, IntPtr s, out IntPtr h) => NativeMethods.apm_ssl_stream_begin_authenticate_as_server(NativeHandle, certificate, clientCertificateRequired ? 1 : 0,
                    (int)enabledSslProtocols, checkCertificateRevocation ? 1 : 0, ApmAsyncResult.CompletionThunk, s, out h));
        }

        public virtual void EndAuthenticateAsServer(IAsyncResult asyncResult)
        {
            EndAuthentication(asyncResult, r => NativeMethods.apm_ssl_stream_end_authenticate_as_server(NativeHandle, r));
        }

        public virtual Task AuthenticateAsServerAsync(X509Certificate serverCertificate)
        {
            return Task.Factory.FromAsync((cb, st) => BeginAuthenticateAsServer(serverCertificate, cb, st), EndAuthenticateAsServer, null);
        }

        public virtual Task AuthenticateAsServerAsync(X509Certificate serverCertificate, bool clientCertificateRequired, bool checkCertificateRevocation)
        {
            return AuthenticateAsServerAsync(serverCertificate, clientCertificateRequired, SslProtocols.None, checkCertificateRevocation);
        }

        public virtual Task AuthenticateAsServerAsync(X509Certificate serverCertificate, bool clientCertificateRequired, SslProtocols enabledSslProtocols, bool checkCertificateRevocation)
        {
            return Task.Factory.FromAsync((cb, st) => BeginAuthenticateAsServer(serverCertificate, clientCertificateRequired, enabledSslProtocols, checkCertificateRevocation, cb, st),
                EndAuthenticateAsServer, null);
        }

        // ---- Shutdown ----------------------------------------------------------------------------------

        /// <summary>Sends the TLS close_notify alert; later writes throw InvalidOperationException, reads go
        /// on. (Dispose alone sends none, as in .NET.)</summary>
        public virtual Task ShutdownAsync()
        {
            return Task.Factory.FromAsync(BeginShutdown, EndShutdown, null);
        }

        /// <summary>The APM form of ShutdownAsync (an apmnet extension).</summary>
        public IAsyncResult BeginShutdown(AsyncCallback asyncCallback, object asyncState)
        {
            return new ApmAsyncResult(this, asyncCallback, asyncState, null).Start(
                (ApmAsyncResult r, IntPtr s, out IntPtr h) => NativeMethods.apm_ssl_stream_begin_shutdown(NativeHandle, ApmAsyncResult.CompletionThunk, s, out h));
        }

        public void EndShutdown(IAsyncResult asyncResult)
        {
            ApmAsyncResult.End(asyncResult, r => NativeMethods.apm_ssl_stream_end_shutdown(NativeHandle, r));
        }

        // ---- Properties --------------------------------------------------------------------------------

        public virtual bool IsAuthenticated { get { return Flag(NativeMethods.apm_ssl_stream_is_authenticated); } }
        public virtual bool IsServer { get { return Flag(NativeMethods.apm_ssl_stream_is_server); } }
        public virtual bool IsEncrypted { get { return Flag(NativeMethods.apm_ssl_stream_is_encrypted); } }
        public virtual bool IsSigned { get { return Flag(NativeMethods.apm_ssl_stream_is_signed); } }
        public virtual bool IsMutuallyAuthenticated { get { return Flag(NativeMethods.apm_ssl_stream_is_mutually_authenticated); } }

        /// <summary>Whether the handshake resumed an earlier session (an apmnet extension: .NET keeps it
        /// internal). Before authentication: InvalidOperationException.</summary>
        public bool IsResumed { get { return Flag(NativeMethods.apm_ssl_stream_is_resumed); } }

        public virtual bool CheckCertRevocationStatus { get { return checkRevocation; } }

        /// <summary>The negotiated protocol (Tls12 or Tls13).</summary>
        public virtual SslProtocols SslProtocol
        {
            get { return (SslProtocols)Marshaling.GetInt32(NativeHandle, NativeMethods.apm_ssl_stream_get_ssl_protocol); }
        }

        /// <summary>The negotiated cipher suite's number: the value of .NET's TlsCipherSuite
        /// (cast it: (TlsCipherSuite)stream.NegotiatedCipherSuite), e.g. 0x1302.</summary>
        public virtual int NegotiatedCipherSuite
        {
            get { return Marshaling.GetInt32(NativeHandle, NativeMethods.apm_ssl_stream_get_cipher_suite); }
        }

        /// <summary>The negotiated cipher suite's IANA name (TlsCipherSuite's member name),
        /// e.g. "TLS_AES_256_GCM_SHA384".</summary>
        public virtual string NegotiatedCipherSuiteName
        {
            get { return Marshaling.CopyText((byte[] b, UIntPtr n, out UIntPtr full) => NativeMethods.apm_ssl_stream_get_cipher_suite_name(NativeHandle, b, n, out full)); }
        }

        /// <summary>The bulk cipher (CipherAlgorithmType.None for ChaCha20, as .NET).</summary>
        public virtual CipherAlgorithmType CipherAlgorithm
        {
            get
            {
                string name = NegotiatedCipherSuiteName + "_";
                if (name.Contains("_AES_128_")) return CipherAlgorithmType.Aes128;
                if (name.Contains("_AES_256_")) return CipherAlgorithmType.Aes256;
                if (name.Contains("_3DES_")) return CipherAlgorithmType.TripleDes;
                if (name.Contains("_RC4_")) return CipherAlgorithmType.Rc4;
                if (name.Contains("_DES_")) return CipherAlgorithmType.Des;
                if (name.Contains("_NULL_")) return CipherAlgorithmType.Null;
                return CipherAlgorithmType.None;
            }
        }

        /// <summary>The bulk cipher's key size in bits.</summary>
        public virtual int CipherStrength
        {
            get
            {
                string name = NegotiatedCipherSuiteName + "_";
                if (name.Contains("_AES_128_") || name.Contains("_RC4_128_")) return 128;
                if (name.Contains("_AES_256_") || name.Contains("_CHACHA20_")) return 256;
                if (name.Contains("_3DES_")) return 168;
                if (name.Contains("_DES_")) return 56;
                return 0;
            }
        }

        /// <summary>The ALPN protocol agreed on (SslApplicationProtocol.Protocol): its bytes, empty when
        /// none.</summary>
        public virtual byte[] NegotiatedApplicationProtocol
        {
            get { return Marshaling.CopyBytes((byte[] b, UIntPtr n, out UIntPtr full) => NativeMethods.apm_ssl_stream_get_application_protocol(NativeHandle, b, n, out full)); }
        }

        /// <summary>The client's target host; on a server, the SNI name the client sent ("" when none).</summary>
        public string TargetHostName
        {
            get { return Marshaling.CopyText((byte[] b, UIntPtr n, out UIntPtr full) => NativeMethods.apm_ssl_stream_get_target_host_name(NativeHandle, b, n, out full)); }
        }

        /// <summary>The peer's certificate (an X509Certificate2), or null.</summary>
        public virtual X509Certificate RemoteCertificate
        {
            get { return Cached(ref remoteCertificate, true); }
        }

        /// <summary>The certificate this side presented (an X509Certificate2, without its key), or null.</summary>
        public virtual X509Certificate LocalCertificate
        {
            get { return Cached(ref localCertificate, false); }
        }

        /// <summary>The remote or local certificate, converted once and kept in <paramref name="cache"/>.</summary>
        X509Certificate Cached(ref X509Certificate cache, bool remote)
        {
            lock (gate)
            {
                if (cache == null) cache = Certificate(remote);
                return cache;
            }
        }

        X509Certificate2 Certificate(bool remote)
        {
            IntPtr certificate;
            ApmError.Check(remote
                ? NativeMethods.apm_ssl_stream_get_remote_certificate(NativeHandle, out certificate)
                : NativeMethods.apm_ssl_stream_get_local_certificate(NativeHandle, out certificate));
            if (certificate == IntPtr.Zero) return null;
            try
            {
                return Certificates.ToManaged(certificate);
            }
            finally
            {
                Certificates.Close(certificate);
            }
        }

        /// <summary>The channel bindings of the session (a System.Net.TransportContext; before authentication
        /// its GetChannelBinding returns null).</summary>
        public TransportContext TransportContext
        {
            get
            {
                TransportContextHandle context;
                ApmError.Check(NativeMethods.apm_ssl_stream_get_transport_context(NativeHandle, out context));
                return new ApmTransportContext(context);
            }
        }

        /// <summary>Dispose: once the library's SslStream is closed (pending operations complete; their End
        /// throws ObjectDisposedException), closes the inner stream unless leaveInnerStreamOpen. No
        /// close_notify is sent: see ShutdownAsync.</summary>
        internal override void OnDisposed()
        {
            Unregister();
            lock (gate)
            {
                foreach (IntPtr certificate in selected) Certificates.Close(certificate);
                selected.Clear();
            }
            if (leaveInnerStreamOpen) innerStream.Flush();
            else innerStream.Dispose();
        }
    }
}
