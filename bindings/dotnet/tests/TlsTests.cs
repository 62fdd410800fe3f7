// Apmnet.SslStream on .NET 8, against .NET's own System.Net.Security.SslStream on the other end, with
// certificates made at test time by the openssl tool in a temporary folder (nothing is committed).
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Security.Authentication;
using System.Security.Authentication.ExtendedProtection;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using ApmSocket = Apmnet.Socket;
using ApmStream = Apmnet.NetworkStream;
using ApmSslStream = Apmnet.SslStream;
using DotnetSslStream = System.Net.Security.SslStream;

namespace Apmnet.Tests
{
    /// <summary>A throw-away PKI (EC P-256, SHA-256) made with the openssl command-line tool:
    /// ca.pem; server.pem/.key/.p12 (CN=localhost, O=apmnet; SAN localhost, 127.0.0.1); client.pem/.key/.p12
    /// (CN=apmnet client); selfsigned.pem/.key/.p12 (CN=localhost). The PKCS#12 password is random.</summary>
    sealed class TestPki : IDisposable
    {
        static TestPki shared;
        static readonly object Gate = new object();

        TestPki()
        {
            Folder = Path.Combine(Path.GetTempPath(), "apmnet-pki-" + Guid.NewGuid().ToString("N"));
            Directory.CreateDirectory(Folder);
            byte[] secret = new byte[12];
            using (RandomNumberGenerator random = RandomNumberGenerator.Create()) random.GetBytes(secret);
            Password = BitConverter.ToString(secret).Replace("-", "");
            Key("ca");
            OpenSsl("req", "-x509", "-new", "-key", "ca.key", "-subj", "/CN=apmnet test CA", "-days", "2", "-sha256",
                "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", "ca.pem");
            Signed("server", "/CN=localhost/O=apmnet", "DNS:localhost,IP:127.0.0.1", "serverAuth");
            Signed("client", "/CN=apmnet client", null, "clientAuth");
            Key("selfsigned");
            OpenSsl("req", "-x509", "-new", "-key", "selfsigned.key", "-subj", "/CN=localhost", "-days", "2", "-sha256",
                "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-out", "selfsigned.pem");
            foreach (string name in new[] { "server", "client", "selfsigned" })
                OpenSsl("pkcs12", "-export", "-in", name + ".pem", "-inkey", name + ".key", "-passout", "pass:" + Password, "-out", name + ".p12");
        }

        /// <summary>One PKI for the whole run, removed when the process exits.</summary>
        public static TestPki Shared
        {
            get
            {
                lock (Gate)
                {
                    if (shared == null)
                    {
                        shared = new TestPki();
                        AppDomain.CurrentDomain.ProcessExit += delegate { shared.Dispose(); };
                    }
                    return shared;
                }
            }
        }

        public string Folder { get; private set; }
        public string Password { get; private set; }

        public string File(string name) { return Path.Combine(Folder, name); }

        /// <summary>.NET's own loading of a PKCS#12 file, with its private key.</summary>
        public X509Certificate2 Pkcs12(string name) { return new X509Certificate2(File(name + ".p12"), Password); }

        public string Thumbprint(string name) { return new X509Certificate2(File(name + ".pem")).Thumbprint; }

        void Key(string name)
        {
            OpenSsl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", name + ".key");
        }

        void Signed(string name, string subject, string san, string usage)
        {
            Key(name);
            OpenSsl("req", "-new", "-key", name + ".key", "-subj", subject, "-out", name + ".csr");
            System.IO.File.WriteAllText(File(name + ".ext"), "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=" + usage + "\n"
                + (san == null ? "" : "subjectAltName=" + san + "\n"));
            OpenSsl("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2", "-sha256",
                "-extfile", name + ".ext", "-out", name + ".pem");
        }

        void OpenSsl(params string[] arguments)
        {
            StringBuilder line = new StringBuilder();
            foreach (string argument in arguments) line.Append(line.Length == 0 ? "" : " ").Append('"').Append(argument).Append('"');
            ProcessStartInfo start = new ProcessStartInfo("openssl", line.ToString());
            start.WorkingDirectory = Folder;
            start.UseShellExecute = false;
            start.RedirectStandardOutput = true;
            start.RedirectStandardError = true;
            using (Process process = Process.Start(start))
            {
                Task<string> stdout = process.StandardOutput.ReadToEndAsync();
                string stderr = process.StandardError.ReadToEnd();
                process.WaitForExit();
                stdout.Wait();
                if (process.ExitCode != 0) throw new Exception("openssl " + arguments[0] + " failed: " + stderr);
            }
        }

        public void Dispose()
        {
            try { Directory.Delete(Folder, true); }
            catch (IOException) { }
        }
    }

    /// <summary>What .NET's SslStream on the other end saw.</summary>
    sealed class TlsReport
    {
        public SslProtocols Protocol;
        public int CipherSuite;
        public byte[] Endpoint, Unique;
        public string Received, Sent;
        public X509Certificate Remote;
        public bool Mutual;
    }

    static partial class Tests
    {
        const int TlsSize = 4 * 1024 * 1024 + 17;

        static string Sha256(byte[] data) { return DotnetPeer.Digest(data); }

        static byte[] Binding(ChannelBinding binding)
        {
            if (binding == null) return null;
            byte[] data = new byte[binding.Size];
            Marshal.Copy(binding.DangerousGetHandle(), data, 0, data.Length);
            return data;
        }

        static string Hex(byte[] data) { return data == null ? "null" : BitConverter.ToString(data).Replace("-", ""); }

        /// <summary>.NET's SslStream.NegotiatedCipherSuite (a TlsCipherSuite: not in Mono's reference
        /// assemblies), as its number.</summary>
        static int CipherSuiteOf(DotnetSslStream stream)
        {
            return Convert.ToInt32(stream.GetType().GetProperty("NegotiatedCipherSuite").GetValue(stream, null));
        }

        /// <summary>.NET's own channel binding, or null where .NET has none or fails to give one (on Linux a
        /// .NET server's Endpoint binding throws: it looks for a client certificate).</summary>
        static byte[] DotnetBinding(DotnetSslStream stream, ChannelBindingKind kind)
        {
            try
            {
                return Binding(stream.TransportContext.GetChannelBinding(kind));
            }
            catch (Exception)
            {
                return null;
            }
        }

        static TlsReport Report(DotnetSslStream stream)
        {
            TlsReport report = new TlsReport();
            report.Protocol = stream.SslProtocol;
            report.CipherSuite = CipherSuiteOf(stream);
            report.Endpoint = DotnetBinding(stream, ChannelBindingKind.Endpoint);
            report.Unique = DotnetBinding(stream, ChannelBindingKind.Unique);
            report.Remote = stream.RemoteCertificate;
            report.Mutual = stream.IsMutuallyAuthenticated;
            return report;
        }

        static string ReadHash(Stream stream, int count)
        {
            byte[] data = new byte[count];
            ReadExactly(stream, data);
            return Sha256(data);
        }

        /// <summary>A DotnetPeer handler: .NET's SslStream as the server (certificate from PKCS#12); it
        /// receives <c>size</c> bytes, then sends <c>size</c> random ones.</summary>
        internal static Func<TcpClient, object> DotnetTlsServer(X509Certificate2 certificate, SslProtocols protocols, int size)
        {
            return delegate (TcpClient client)
            {
                using (DotnetSslStream tls = new DotnetSslStream(client.GetStream(), false))
                {
                    tls.AuthenticateAsServer(certificate, false, protocols, false);
                    TlsReport report = Report(tls);
                    report.Received = ReadHash(tls, size);
                    byte[] data = RandomBytes(size);
                    tls.Write(data, 0, data.Length);
                    report.Sent = Sha256(data);
                    return report;
                }
            };
        }

        internal static ApmSslStream ApmClient(int port, RemoteCertificateValidationCallback validation = null)
        {
            return new ApmSslStream(new ApmStream(Connect(port), true), false, validation);
        }

        static void ClientAgainstDotnetServer(SslProtocols protocols, SslProtocols expected)
        {
            TestPki pki = TestPki.Shared;
            using (DotnetPeer peer = new DotnetPeer(DotnetTlsServer(pki.Pkcs12("server"), protocols, TlsSize)))
            using (ApmSslStream tls = ApmClient(peer.Port))
            {
                Assert.False(tls.IsAuthenticated, "authenticated before the handshake");
                Assert.Equal(null, tls.TransportContext.GetChannelBinding(ChannelBindingKind.Unique), "binding before the handshake");
                tls.SetTrustedCaFile(pki.File("ca.pem"));
                tls.AuthenticateAsClient("localhost");
                Assert.True(tls.IsAuthenticated && tls.IsEncrypted && tls.IsSigned, "authenticated, encrypted, signed");
                Assert.False(tls.IsServer || tls.IsMutuallyAuthenticated, "client, not mutual");
                Assert.Equal(expected, tls.SslProtocol, "SslProtocol");
                Assert.True(tls.NegotiatedCipherSuiteName.StartsWith("TLS_"), "cipher suite name " + tls.NegotiatedCipherSuiteName);
                Assert.Equal("localhost", tls.TargetHostName, "TargetHostName");
                X509Certificate2 remote = (X509Certificate2)tls.RemoteCertificate;
                Assert.Equal(pki.Thumbprint("server"), remote.Thumbprint, "server certificate");
                Assert.Equal("CN=apmnet test CA", remote.Issuer, "issuer");
                Assert.Equal(null, tls.LocalCertificate, "no client certificate");
                TransportContext context = tls.TransportContext;
                byte[] endpoint = Binding(context.GetChannelBinding(ChannelBindingKind.Endpoint));
                byte[] unique = Binding(context.GetChannelBinding(ChannelBindingKind.Unique));

                // Up with Task.Factory.FromAsync over BeginWrite/EndWrite, down with ReadAsync (BeginRead).
                byte[] data = RandomBytes(TlsSize);
                Task write = Task.Factory.FromAsync(tls.BeginWrite, tls.EndWrite, data, 0, data.Length, null);
                try
                {
                    Assert.True(write.Wait(HangGuard), "FromAsync write finished");
                }
                catch (AggregateException)
                {
                    peer.Result();  // the .NET server's failure explains ours
                    throw;
                }
                MemoryStream received = new MemoryStream();
                byte[] chunk = new byte[65536];
                while (received.Length < TlsSize)
                {
                    int n = tls.ReadAsync(chunk, 0, (int)Math.Min(chunk.Length, TlsSize - received.Length)).Result;
                    Assert.True(n > 0, "ReadAsync data");
                    received.Write(chunk, 0, n);
                }
                TlsReport server = (TlsReport)peer.Result();
                Assert.Equal(Sha256(data), server.Received, "what .NET's SslStream received");
                Assert.Equal(server.Sent, Sha256(received.ToArray()), "what .NET's SslStream sent");
                Assert.Equal(server.Protocol, tls.SslProtocol, "the same protocol on both ends");
                Assert.Equal(server.CipherSuite, tls.NegotiatedCipherSuite, "the same cipher suite on both ends");
                if (server.Endpoint != null) Assert.Equal(Hex(server.Endpoint), Hex(endpoint), "tls-server-end-point, .NET's layout, on both ends");
                Assert.True(server.Unique != null, ".NET's tls-unique");
                Assert.Equal(Hex(server.Unique), Hex(unique), "tls-unique, .NET's layout, on both ends");
                Assert.True(unique != null && unique.Length > 32 + 11, "our tls-unique binding");
                Assert.Equal(Hex(((ApmTransportContext)context).GetChannelBindingToken(ChannelBindingKind.Unique)),
                    Hex(unique).Substring(2 * (32 + 11)), "the token after the header and the prefix");
            }
        }

        [Test]
        public static void SslClientAgainstADotnetSslStreamServerTls12()
        {
            ClientAgainstDotnetServer(SslProtocols.Tls12, SslProtocols.Tls12);
        }

        [Test]
        public static void SslClientAgainstADotnetSslStreamServerTls13()
        {
            ClientAgainstDotnetServer(SslProtocols.Tls13, SslProtocols.Tls13);
        }

        /// <summary>SslServerAuthenticationOptions with one SslStreamCertificateContext for every connection:
        /// .NET keeps its server sessions (its SSL_CTX) per certificate context, and
        /// AuthenticateAsServer(certificate) makes a new one each time. Reflection: both types are .NET 5's,
        /// which Mono's reference assemblies (what mcs compiles against) lack or do not forward.</summary>
        static object DotnetServerOptions(X509Certificate2 certificate, SslProtocols protocols)
        {
            Assembly security = typeof(DotnetSslStream).Assembly;
            object options = Activator.CreateInstance(security.GetType("System.Net.Security.SslServerAuthenticationOptions", true));
            options.GetType().GetProperty("EnabledSslProtocols").SetValue(options, protocols, null);
            object context = security.GetType("System.Net.Security.SslStreamCertificateContext", true)
                .GetMethod("Create", new[] { typeof(X509Certificate2), typeof(X509Certificate2Collection), typeof(bool) })
                .Invoke(null, new object[] { certificate, null, false });
            options.GetType().GetProperty("ServerCertificateContext").SetValue(options, context, null);
            return options;
        }

        /// <summary>AuthenticateAsServerAsync(options, CancellationToken.None), waited for.</summary>
        static void DotnetAuthenticateAsServer(DotnetSslStream tls, object options)
        {
            Task task = (Task)typeof(DotnetSslStream).GetMethod("AuthenticateAsServerAsync", new[] { options.GetType(), typeof(CancellationToken) })
                .Invoke(tls, new object[] { options, CancellationToken.None });
            task.GetAwaiter().GetResult();
        }

        /// <summary>.NET's SslStream as the server of <paramref name="count"/> connections in turn, with one
        /// certificate context: each authenticates, writes one byte and reads to the end of the stream.</summary>
        static Thread DotnetServerOfSeveral(TcpListener listener, X509Certificate2 certificate, SslProtocols protocols, int count, List<Exception> errors)
        {
            object options = DotnetServerOptions(certificate, protocols);
            Thread thread = new Thread(delegate ()
            {
                try
                {
                    for (int i = 0; i < count; i++)
                    {
                        using (TcpClient client = listener.AcceptTcpClient())
                        using (DotnetSslStream tls = new DotnetSslStream(client.GetStream(), false))
                        {
                            DotnetAuthenticateAsServer(tls, options);
                            tls.Write(new byte[] { 42 }, 0, 1);
                            while (tls.Read(new byte[16], 0, 16) > 0) { }
                        }
                    }
                }
                catch (Exception e)
                {
                    lock (errors) errors.Add(e);
                }
            });
            thread.IsBackground = true;
            thread.Start();
            return thread;
        }

        static void ClientResumesAgainstDotnetServer(SslProtocols protocols)
        {
            TestPki pki = TestPki.Shared;
            X509Certificate2 certificate = pki.Pkcs12("server");
            // (AllowTlsResume, resumed): the second and third resume, one with resumption off does not
            // (and keeps the session of the others), the next resumes again.
            bool[][] steps = { new[] { true, false }, new[] { true, true }, new[] { true, true }, new[] { false, false }, new[] { true, true } };
            TcpListener listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            List<Exception> errors = new List<Exception>();
            try
            {
                Thread server = DotnetServerOfSeveral(listener, certificate, protocols, steps.Length, errors);
                foreach (bool[] step in steps)
                {
                    using (ApmSslStream tls = ApmClient(((IPEndPoint)listener.LocalEndpoint).Port))
                    {
                        Assert.True(tls.AllowTlsResume, "AllowTlsResume is true by default");
                        Assert.Throws<InvalidOperationException>(() => { bool r = tls.IsResumed; }, "IsResumed before authentication");
                        tls.AllowTlsResume = step[0];
                        tls.SetTrustedCaFile(pki.File("ca.pem"));
                        // A target host of this test alone: no other test's session has its key.
                        tls.AuthenticateAsClient("127.0.0.1", null, protocols, false);
                        Assert.Equal(42, tls.ReadByte(), "the server's byte (the TLS 1.3 tickets came before it)");
                        Assert.Equal(step[1], tls.IsResumed, "IsResumed with AllowTlsResume " + step[0]);
                        Assert.Equal(protocols, tls.SslProtocol, "SslProtocol");
                        Assert.Equal(certificate.Thumbprint, ((X509Certificate2)tls.RemoteCertificate).Thumbprint, "the server's certificate, resumed or not");
                    }
                }
                Assert.True(server.Join(HangGuard), "the .NET server finished");
                lock (errors) if (errors.Count > 0) throw new Exception("the .NET server failed: " + errors[0].Message, errors[0]);
            }
            finally
            {
                listener.Stop();
            }
        }

        [Test]
        public static void SslClientResumesAgainstADotnetSslStreamServerTls12()
        {
            ClientResumesAgainstDotnetServer(SslProtocols.Tls12);
        }

        [Test]
        public static void SslClientResumesAgainstADotnetSslStreamServerTls13()
        {
            ClientResumesAgainstDotnetServer(SslProtocols.Tls13);
        }

        /// <summary>.NET 8's SslStream client resumes against our server: three connections, the second and
        /// third resumed (our server says so).</summary>
        static void DotnetClientResumesAgainstOurServer(SslProtocols protocols)
        {
            TestPki pki = TestPki.Shared;
            X509Certificate2 certificate = pki.Pkcs12("server");
            string thumbprint = pki.Thumbprint("server");
            const int count = 3;
            using (ApmSocket listener = new ApmSocket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
            {
                listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
                listener.Listen();
                int port = ((IPEndPoint)listener.LocalEndPoint).Port;
                Exception clientError = null;
                Thread thread = new Thread(delegate ()
                {
                    try
                    {
                        RemoteCertificateValidationCallback pin = (sender, cert, chain, errors) =>
                            (errors & ~SslPolicyErrors.RemoteCertificateChainErrors) == 0 && cert.GetCertHashString() == thumbprint;
                        for (int i = 0; i < count; i++)
                        {
                            using (TcpClient tcp = new TcpClient())
                            {
                                tcp.Connect(IPAddress.Loopback, port);
                                using (DotnetSslStream tls = new DotnetSslStream(tcp.GetStream(), false, pin))
                                {
                                    tls.AuthenticateAsClient("localhost", null, protocols, false);
                                    // Read: the TLS 1.3 tickets come before the byte.
                                    if (tls.ReadByte() != 42) throw new Exception("the byte from our server");
                                }
                            }
                        }
                    }
                    catch (Exception e)
                    {
                        clientError = e;
                    }
                });
                thread.IsBackground = true;
                thread.Start();
                for (int i = 0; i < count && clientError == null; i++)
                {
                    using (ApmSslStream tls = new ApmSslStream(new ApmStream(listener.Accept(), true), false))
                    {
                        tls.AuthenticateAsServer(certificate, false, protocols, false);
                        tls.WriteByte(42);
                        Assert.Equal(i > 0, tls.IsResumed, "connection " + (i + 1) + " resumed");
                        Assert.Equal(-1, tls.ReadByte(), "the .NET client closes");
                    }
                }
                Assert.True(thread.Join(HangGuard), "the .NET client finished");
                if (clientError != null) throw new Exception("the .NET client failed: " + clientError.Message, clientError);
            }
        }

        [Test]
        public static void DotnetSslStreamClientResumesAgainstOurServerTls12()
        {
            DotnetClientResumesAgainstOurServer(SslProtocols.Tls12);
        }

        [Test]
        public static void DotnetSslStreamClientResumesAgainstOurServerTls13()
        {
            DotnetClientResumesAgainstOurServer(SslProtocols.Tls13);
        }

        [Test]
        public static void SslServerWithAPkcs12CertificateAndADotnetSslStreamClient()
        {
            TestPki pki = TestPki.Shared;
            X509Certificate2 serverCertificate = pki.Pkcs12("server");  // .NET's loader; the wrapper exports the key
            X509Certificate2 clientCertificate = pki.Pkcs12("client");
            string serverThumbprint = pki.Thumbprint("server");
            using (ApmSocket listener = new ApmSocket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
            {
                listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
                listener.Listen();
                int port = ((IPEndPoint)listener.LocalEndPoint).Port;
                TlsReport client = null;
                Exception clientError = null;
                Thread thread = new Thread(delegate ()
                {
                    try
                    {
                        using (TcpClient tcp = new TcpClient())
                        {
                            tcp.Connect(IPAddress.Loopback, port);
                            RemoteCertificateValidationCallback pin = (sender, certificate, chain, errors) =>
                                (errors & ~SslPolicyErrors.RemoteCertificateChainErrors) == 0 && certificate.GetCertHashString() == serverThumbprint;
                            LocalCertificateSelectionCallback select = (sender, host, local, remote, issuers) => clientCertificate;
                            using (DotnetSslStream tls = new DotnetSslStream(tcp.GetStream(), false, pin, select))
                            {
                                tls.AuthenticateAsClient("localhost", new X509CertificateCollection(new X509Certificate[] { clientCertificate }), SslProtocols.Tls13, false);
                                TlsReport report = Report(tls);
                                byte[] data = RandomBytes(TlsSize);
                                tls.Write(data, 0, data.Length);
                                report.Sent = Sha256(data);
                                report.Received = ReadHash(tls, TlsSize);
                                client = report;
                            }
                        }
                    }
                    catch (Exception e)
                    {
                        clientError = e;
                    }
                });
                thread.IsBackground = true;
                thread.Start();
                using (ApmSslStream tls = new ApmSslStream(new ApmStream(listener.Accept(), true)))
                {
                    tls.SetTrustedCaFile(pki.File("ca.pem"));
                    tls.AuthenticateAsServer(serverCertificate, true, SslProtocols.None, false);
                    Assert.True(tls.IsAuthenticated && tls.IsServer && tls.IsMutuallyAuthenticated, "authenticated server, mutual");
                    Assert.Equal(SslProtocols.Tls13, tls.SslProtocol, "SslProtocol");
                    Assert.Equal("localhost", tls.TargetHostName, "the client's SNI name");
                    Assert.Equal(serverThumbprint, ((X509Certificate2)tls.LocalCertificate).Thumbprint, "LocalCertificate");
                    Assert.Equal(clientCertificate.Thumbprint, ((X509Certificate2)tls.RemoteCertificate).Thumbprint, "the client's certificate");
                    byte[] endpoint = Binding(tls.TransportContext.GetChannelBinding(ChannelBindingKind.Endpoint));
                    byte[] unique = Binding(tls.TransportContext.GetChannelBinding(ChannelBindingKind.Unique));
                    string received = ReadHash(tls, TlsSize);
                    byte[] data = RandomBytes(TlsSize);
                    tls.Write(data, 0, data.Length);
                    Assert.True(thread.Join(HangGuard), "the .NET client finished");
                    Assert.Equal(null, clientError, "the .NET client's error");
                    Assert.Equal(client.Sent, received, "what we received");
                    Assert.Equal(Sha256(data), client.Received, "what .NET's SslStream received");
                    Assert.True(client.Mutual, ".NET saw a mutual authentication");
                    Assert.Equal(client.CipherSuite, tls.NegotiatedCipherSuite, "cipher suite on both ends");
                    Assert.Equal(Hex(client.Endpoint), Hex(endpoint), "tls-server-end-point, .NET's layout, on both ends");
                    Assert.Equal(Hex(client.Unique), Hex(unique), "tls-unique, .NET's layout, on both ends");
                }
            }
        }

        [Test]
        public static void SelfSignedRejectedThenAcceptedByTheValidationCallback()
        {
            TestPki pki = TestPki.Shared;
            using (DotnetPeer peer = new DotnetPeer(delegate (TcpClient c)
            {
                try { return DotnetTlsServer(pki.Pkcs12("selfsigned"), SslProtocols.None, 1)(c); }
                catch (Exception e) { return e; }
            }))
            {
                using (ApmSslStream tls = ApmClient(peer.Port))
                {
                    tls.SetTrustedCaFile(pki.File("ca.pem"));
                    AuthenticationException error = Assert.Throws<AuthenticationException>(delegate { tls.AuthenticateAsClient("localhost"); }, "self-signed");
                    Assert.True(error.Message.Contains("certificate chain"), "message: " + error.Message);
                    Assert.Equal("APM_E_AUTHENTICATION", (string)error.Data["apmnet.status"], "status");
                    Assert.Throws<AuthenticationException>(delegate { tls.Write(new byte[1], 0, 1); }, "the failure is stored");
                    Assert.False(tls.IsAuthenticated, "not authenticated");
                }
                // (The library sends no alert when it rejects a certificate: the server learns of it when the
                // connection closes, here.)
                Assert.True(peer.Result() is Exception, "the .NET server's handshake failed too");
            }

            string expected = pki.Thumbprint("selfsigned");
            List<string> calls = new List<string>();
            object senderSeen = null;
            RemoteCertificateValidationCallback pin = delegate (object sender, X509Certificate certificate, X509Chain chain, SslPolicyErrors errors)
            {
                senderSeen = sender;
                X509Certificate2 full = (X509Certificate2)certificate;
                calls.Add(full.Subject + "|" + errors + "|" + (chain != null));
                return errors == SslPolicyErrors.RemoteCertificateChainErrors && full.Thumbprint == expected;
            };
            using (DotnetPeer peer = new DotnetPeer(DotnetTlsServer(pki.Pkcs12("selfsigned"), SslProtocols.None, 1000)))
            using (ApmSslStream tls = ApmClient(peer.Port, pin))
            {
                tls.AuthenticateAsClient("localhost");
                Assert.Equal(1, calls.Count, "callback calls");
                Assert.Equal("CN=localhost|RemoteCertificateChainErrors|True", calls[0], "what the callback saw");
                Assert.True(ReferenceEquals(senderSeen, tls), "sender is the stream");
                byte[] data = RandomBytes(1000);
                tls.Write(data, 0, data.Length);
                string received = ReadHash(tls, 1000);
                TlsReport server = (TlsReport)peer.Result();
                Assert.Equal(Sha256(data), server.Received, "sent");
                Assert.Equal(server.Sent, received, "received");
            }
        }

        sealed class CallbackFailure : Exception
        {
            public CallbackFailure() : base("thrown by the validation callback") { }
        }

        [Test]
        public static void ExceptionFromTheValidationCallbackIsRethrownAndRejectionIsAnAuthenticationException()
        {
            TestPki pki = TestPki.Shared;
            Func<TcpClient, object> server = delegate (TcpClient c)
            {
                try { return DotnetTlsServer(pki.Pkcs12("server"), SslProtocols.None, 1)(c); }
                catch (Exception e) { return e; }
            };
            using (DotnetPeer peer = new DotnetPeer(server))
            {
                using (ApmSslStream tls = ApmClient(peer.Port, delegate { throw new CallbackFailure(); }))
                {
                    CallbackFailure thrown = Assert.Throws<CallbackFailure>(delegate { tls.AuthenticateAsClient("localhost"); }, "the callback's exception");
                    Assert.True(thrown.StackTrace.Contains("Tests"), "its own stack trace: " + thrown.StackTrace);
                    Assert.Throws<AuthenticationException>(delegate { tls.Read(new byte[1], 0, 1); }, "then the library's stored failure");
                }
                Assert.True(peer.Result() is Exception, "the .NET server's handshake failed");
            }
            using (DotnetPeer peer = new DotnetPeer(server))
            {
                using (ApmSslStream tls = ApmClient(peer.Port, delegate { return false; }))
                {
                    tls.SetTrustedCaFile(pki.File("ca.pem"));
                    IAsyncResult result = tls.BeginAuthenticateAsClient("localhost", null, null);
                    AuthenticationException error = Assert.Throws<AuthenticationException>(delegate { tls.EndAuthenticateAsClient(result); }, "rejected");
                    Assert.Equal("The remote certificate was rejected by the provided RemoteCertificateValidationCallback.", error.Message, "message");
                }
                Assert.True(peer.Result() is Exception, "the .NET server's handshake failed");
            }
        }

        [Test]
        public static void BeginAuthenticateAndTasksAndStreamReader()
        {
            TestPki pki = TestPki.Shared;
            Func<TcpClient, object> lines = delegate (TcpClient client)
            {
                using (DotnetSslStream tls = new DotnetSslStream(client.GetStream(), false))
                {
                    tls.AuthenticateAsServer(pki.Pkcs12("server"));
                    StreamReader reader = new StreamReader(tls, Encoding.UTF8);
                    StreamWriter writer = new StreamWriter(tls, new UTF8Encoding(false));
                    writer.AutoFlush = true;
                    string line;
                    while ((line = reader.ReadLine()) != null) writer.WriteLine(line.ToUpperInvariant());
                    return null;
                }
            };
            using (DotnetPeer peer = new DotnetPeer(lines))
            using (ApmSslStream tls = ApmClient(peer.Port))
            {
                tls.SetTrustedCaFile(pki.File("ca.pem"));
                EndInCallback ended = new EndInCallback(tls.EndAuthenticateAsClient);
                IAsyncResult result = tls.BeginAuthenticateAsClient("localhost", ended.Callback, "handshake");
                Assert.Equal("handshake", (string)result.AsyncState, "AsyncState");
                Assert.Equal(null, ended.Error(), "EndAuthenticateAsClient");
                Assert.Throws<InvalidOperationException>(delegate { tls.EndAuthenticateAsClient(result); }, "a second End");
                Assert.Throws<InvalidOperationException>(delegate { tls.AuthenticateAsClient("localhost"); }, "authenticated already");

                StreamWriter writer = new StreamWriter(tls, new UTF8Encoding(false), 1024, true);
                writer.AutoFlush = true;
                StreamReader reader = new StreamReader(tls, Encoding.UTF8, false, 1024, true);
                writer.WriteLine("hello over tls \u00e9");
                Assert.Equal("HELLO OVER TLS \u00c9", reader.ReadLine(), "a line back");
                tls.ShutdownAsync().Wait();  // close_notify: .NET's reader sees the end
                Assert.Throws<InvalidOperationException>(delegate { tls.Write(new byte[1], 0, 1); }, "write after shutdown");
                Assert.Equal(null, reader.ReadLine(), "end of stream after .NET's close");
                peer.Result();
            }

            using (DotnetPeer peer = new DotnetPeer(DotnetTlsServer(pki.Pkcs12("server"), SslProtocols.None, 3 * 1024 * 1024)))
            using (ApmSslStream tls = ApmClient(peer.Port))
            {
                tls.SetTrustedCaFile(pki.File("ca.pem"));
                Assert.True(tls.AuthenticateAsClientAsync("localhost").Wait(HangGuard), "AuthenticateAsClientAsync");
                byte[] data = RandomBytes(3 * 1024 * 1024);
                tls.WriteAsync(data, 0, data.Length).Wait();
                MemoryStream copy = new MemoryStream();
                tls.CopyTo(copy);  // to the end: .NET's SslStream is disposed after sending
                TlsReport server = (TlsReport)peer.Result();
                Assert.Equal(Sha256(data), server.Received, "sent");
                Assert.Equal(server.Sent, Sha256(copy.ToArray()), "CopyTo");
            }
        }

        [Test]
        public static void SslStreamOverAManagedNetworkStreamAndOverAnSslStream()
        {
            TestPki pki = TestPki.Shared;
            using (DotnetPeer peer = new DotnetPeer(DotnetTlsServer(pki.Pkcs12("server"), SslProtocols.Tls12, TlsSize)))
            using (TcpClient tcp = new TcpClient())
            {
                tcp.Connect(IPAddress.Loopback, peer.Port);
                System.Net.Sockets.NetworkStream inner = tcp.GetStream();
                using (ApmSslStream tls = new ApmSslStream(inner))  // a Stream the library does not know
                {
                    tls.SetTrustedCaFile(pki.File("ca.pem"));
                    tls.AuthenticateAsClient("localhost");
                    Assert.Equal(SslProtocols.Tls12, tls.SslProtocol, "SslProtocol");
                    byte[] data = RandomBytes(TlsSize);
                    tls.Write(data, 0, data.Length);
                    string received = ReadHash(tls, TlsSize);
                    TlsReport server = (TlsReport)peer.Result();
                    Assert.Equal(Sha256(data), server.Received, "sent");
                    Assert.Equal(server.Sent, received, "received");
                }
                Assert.Throws<ObjectDisposedException>(delegate { inner.Write(new byte[1], 0, 1); }, "the inner stream was disposed with it");
            }

            // TLS inside TLS, both ends .NET's SslStream on the other side; the outer stream stays open.
            Func<TcpClient, object> nested = delegate (TcpClient client)
            {
                using (DotnetSslStream outer = new DotnetSslStream(client.GetStream(), false))
                {
                    outer.AuthenticateAsServer(pki.Pkcs12("server"));
                    using (DotnetSslStream inner = new DotnetSslStream(outer, true))
                    {
                        inner.AuthenticateAsServer(pki.Pkcs12("server"));
                        byte[] message = new byte[10];
                        ReadExactly(inner, message);
                        byte[] reply = Encoding.ASCII.GetBytes(Encoding.ASCII.GetString(message).ToUpperInvariant());
                        inner.Write(reply, 0, reply.Length);
                        return Encoding.ASCII.GetString(message);
                    }
                }
            };
            using (DotnetPeer peer = new DotnetPeer(nested))
            using (ApmSslStream outer = ApmClient(peer.Port))
            {
                outer.SetTrustedCaFile(pki.File("ca.pem"));
                outer.AuthenticateAsClient("localhost");
                using (ApmSslStream inner = new ApmSslStream(outer, true))
                {
                    inner.SetTrustedCaFile(pki.File("ca.pem"));
                    inner.AuthenticateAsClient("localhost");
                    inner.Write(Encoding.ASCII.GetBytes("nested tls"), 0, 10);
                    byte[] reply = new byte[10];
                    ReadExactly(inner, reply);
                    Assert.Equal("NESTED TLS", Encoding.ASCII.GetString(reply), "reply");
                }
                Assert.True(outer.CanRead, "the outer stream was left open");
                Assert.Equal("nested tls", (string)peer.Result(), "what the inner .NET server read");
            }
        }

        [Test]
        public static void ApplicationProtocolsSelectionAndOurOwnTwoEnds()
        {
            TestPki pki = TestPki.Shared;
            X509Certificate2 server = pki.Pkcs12("server");
            using (ApmSocket listener = new ApmSocket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
            {
                listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
                listener.Listen();
                using (ApmSslStream client = ApmClient(((IPEndPoint)listener.LocalEndPoint).Port))
                using (ApmSslStream accepted = new ApmSslStream(new ApmStream(listener.Accept(), true), false, null,
                    (sender, host, local, remote, issuers) => host == "localhost" ? server : null))
                {
                    accepted.ApplicationProtocols = new List<string> { "http/1.1", "h2" };
                    client.ApplicationProtocols = new[] { "h2", "http/1.1" };
                    client.SetTrustedCaFile(pki.File("ca.pem"));
                    Task serverSide = accepted.AuthenticateAsServerAsync(null, false, SslProtocols.Tls12, false);
                    client.AuthenticateAsClient("localhost");
                    Assert.True(serverSide.Wait(HangGuard), "server authenticated");
                    Assert.Equal("http/1.1", Encoding.ASCII.GetString(client.NegotiatedApplicationProtocol), "ALPN (the server's preference)");
                    Assert.Equal("http/1.1", Encoding.ASCII.GetString(accepted.NegotiatedApplicationProtocol), "ALPN on the server");
                    Assert.Equal(server.Thumbprint, ((X509Certificate2)client.RemoteCertificate).Thumbprint, "the selected certificate");
                    Assert.Equal(client.NegotiatedCipherSuiteName, accepted.NegotiatedCipherSuiteName, "cipher suite");
                    Assert.True(client.CipherAlgorithm != CipherAlgorithmType.Null && client.CipherStrength >= 128, "cipher " + client.CipherAlgorithm);
                    ApmTransportContext a = (ApmTransportContext)client.TransportContext, b = (ApmTransportContext)accepted.TransportContext;
                    Assert.Equal(Hex(a.GetChannelBindingToken(ChannelBindingKind.Unique)), Hex(b.GetChannelBindingToken(ChannelBindingKind.Unique)), "tls-unique");
                    byte[] hash;
                    using (SHA256 sha = SHA256.Create()) hash = sha.ComputeHash(server.RawData);
                    Assert.Equal(Hex(hash), Hex(a.GetChannelBindingToken(ChannelBindingKind.Endpoint)), "tls-server-end-point is SHA-256 of the certificate");
                    Assert.Equal(null, a.GetChannelBinding((ChannelBindingKind)0), "an unknown kind");

                    IAsyncResult read = accepted.BeginRead(new byte[5], 0, 5, null, null);
                    client.Write(Encoding.ASCII.GetBytes("12345"), 0, 5);
                    Assert.True(accepted.EndRead(read) > 0, "read on the server");
                }
            }
        }

        [Test]
        public static void APendingHandshakeKeepsTheStreamAndItsCallbackAlive()
        {
            TestPki pki = TestPki.Shared;
            ManualResetEvent gate = new ManualResetEvent(false);
            Func<TcpClient, object> server = DotnetTlsServer(pki.Pkcs12("server"), SslProtocols.None, 3);
            using (DotnetPeer peer = new DotnetPeer(delegate (TcpClient c) { gate.WaitOne(HangGuard); return server(c); }))
            {
                PendingHandshake pending = new PendingHandshake();
                WeakReference stream = pending.Start(peer.Port, pki);
                GC.Collect();
                GC.WaitForPendingFinalizers();
                GC.Collect();
                Assert.True(stream.IsAlive, "the stream is alive while its handshake is pending");
                gate.Set();
                Assert.True(pending.Done.WaitOne(HangGuard), "the handshake called back");
                Assert.Equal(null, pending.Failure, "EndAuthenticateAsClient");
                Assert.Equal(1, pending.Calls, "the validation callback ran once");
                using (ApmSslStream tls = pending.Authenticated)
                {
                    byte[] data = { 1, 2, 3 };
                    tls.Write(data, 0, 3);
                    string received = ReadHash(tls, 3);
                    TlsReport report = (TlsReport)peer.Result();
                    Assert.Equal(Sha256(data), report.Received, "sent");
                    Assert.Equal(report.Sent, received, "received");
                }
            }
        }

        /// <summary>Starts a BeginAuthenticateAsClient whose stream and validation callback nothing but the
        /// pending operation refers to.</summary>
        sealed class PendingHandshake
        {
            public readonly ManualResetEvent Done = new ManualResetEvent(false);
            public int Calls;
            public Exception Failure;
            public ApmSslStream Authenticated;

            [MethodImpl(MethodImplOptions.NoInlining)]
            public WeakReference Start(int port, TestPki pki)
            {
                ApmSslStream tls = ApmClient(port, delegate (object s, X509Certificate c, X509Chain chain, SslPolicyErrors errors)
                {
                    Interlocked.Increment(ref Calls);
                    return errors == SslPolicyErrors.None;
                });
                tls.SetTrustedCaFile(pki.File("ca.pem"));
                tls.BeginAuthenticateAsClient("localhost", delegate (IAsyncResult r)
                {
                    ApmSslStream self = (ApmSslStream)r.AsyncState;
                    try
                    {
                        self.EndAuthenticateAsClient(r);
                        Authenticated = self;
                    }
                    catch (Exception e)
                    {
                        Failure = e;
                    }
                    Done.Set();
                }, tls);
                return new WeakReference(tls);
            }
        }

        [Test]
        public static void SslStreamArgumentAndStateErrors()
        {
            Assert.Throws<ArgumentNullException>(delegate { new ApmSslStream(null); }, "null inner stream");
            Assert.Throws<ArgumentException>(delegate { new ApmSslStream(new MemoryStream(new byte[1], false)); }, "read-only inner stream");
            using (DotnetPeer peer = new DotnetPeer(DotnetPeer.Echo))
            {
                ApmSslStream tls = ApmClient(peer.Port);
                Assert.Equal("This operation is only allowed using a successfully authenticated context.",
                    Assert.Throws<InvalidOperationException>(delegate { tls.Read(new byte[1], 0, 1); }, "read before authentication").Message, "message");
                Assert.Throws<InvalidOperationException>(delegate { Console.Write(tls.SslProtocol); }, "SslProtocol before authentication");
                Assert.Throws<ArgumentException>(delegate { tls.EndAuthenticateAsClient(Task.FromResult(0)); }, "End with a Task");
                Assert.Throws<FileNotFoundException>(delegate { tls.SetTrustedCaFile(Path.Combine(Path.GetTempPath(), Guid.NewGuid().ToString("N"))); }, "missing CA file");
                Assert.False(tls.CanRead || tls.CanWrite, "CanRead/CanWrite before authentication (as .NET)");
                Assert.Throws<NotSupportedException>(delegate { Console.Write(tls.Length); }, "Length");
                tls.Dispose();
                Assert.False(tls.IsAuthenticated || tls.CanRead, "after Dispose");
                Assert.Throws<ObjectDisposedException>(delegate { tls.AuthenticateAsClient("localhost"); }, "authenticate after Dispose");
                Assert.Throws<ObjectDisposedException>(delegate { tls.Write(new byte[1], 0, 1); }, "write after Dispose");
            }
        }
    }
}
