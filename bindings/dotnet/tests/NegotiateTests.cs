// Apmnet.NegotiateStream against .NET's own System.Net.Security.NegotiateStream in this process (NTLM
// through gss-ntlmssp, whose server reads NTLM_USER_FILE: test.sh sets it), both roles, every protection
// level; ours against ours with Begin/End, Tasks, a wrong password, the user lookup.
using System;
using System.IO;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Principal;
using System.Threading;
using System.Threading.Tasks;
using ApmNegotiateStream = Apmnet.NegotiateStream;
using ApmSocket = Apmnet.Socket;
using DotnetNegotiateStream = System.Net.Security.NegotiateStream;

namespace Apmnet.Tests
{
    static partial class Tests
    {
        static readonly int[] NegotiateSizes = { 1, 64511, 64512, 64513, 3 * 1024 * 1024 };

        /// <summary>Sends every size, reads it back and compares: the client's half of the echo.</summary>
        static void EchoClient(Stream stream)
        {
            foreach (int size in NegotiateSizes)
            {
                byte[] data = RandomBytes(size);
                stream.Write(data, 0, size);
                byte[] back = new byte[size];
                ReadExactly(stream, back);
                Assert.Equal(Sha256(data), Sha256(back), size + " bytes back");
            }
        }

        static void EchoServer(Stream stream)
        {
            foreach (int size in NegotiateSizes)
            {
                byte[] data = new byte[size];
                ReadExactly(stream, data);
                stream.Write(data, 0, size);
            }
        }

        static bool NtlmPeerAvailable()
        {
            if (Environment.GetEnvironmentVariable("NTLM_USER_FILE") != null) return true;
            Console.WriteLine("  (skipped: NTLM_USER_FILE is not set; bindings/dotnet/test.sh sets it for .NET's gss-ntlmssp server)");
            return false;
        }

        static void OursAgainstDotnetServer(ProtectionLevel level)
        {
            if (!NtlmPeerAvailable()) return;
            using (DotnetPeer peer = new DotnetPeer(delegate (TcpClient client)
            {
                using (DotnetNegotiateStream server = new DotnetNegotiateStream(client.GetStream(), false))
                {
                    server.AuthenticateAsServer(CredentialCache.DefaultNetworkCredentials, level, TokenImpersonationLevel.Identification);
                    string who = server.RemoteIdentity.Name + " " + server.RemoteIdentity.AuthenticationType;
                    EchoServer(server);
                    return who;
                }
            }))
            using (ApmNegotiateStream client = new ApmNegotiateStream(new Apmnet.NetworkStream(Connect(peer.Port), true)))
            {
                client.AuthenticateAsClient(new NetworkCredential("alice", "Passw0rd!", "TESTDOM"), "host/localhost", level,
                    TokenImpersonationLevel.Identification);
                Assert.Equal(level == ProtectionLevel.EncryptAndSign, client.IsEncrypted, "IsEncrypted");
                Assert.Equal(level != ProtectionLevel.None, client.IsSigned, "IsSigned");
                Assert.Equal("NTLM", client.RemoteIdentity.AuthenticationType, "the package");
                EchoClient(client);
                Assert.Equal("TESTDOM\\alice NTLM", (string)peer.Result(), ".NET's server saw alice");
            }
        }

        [Test] public static void NegotiateClientAgainstADotnetServerNone() { OursAgainstDotnetServer(ProtectionLevel.None); }
        [Test] public static void NegotiateClientAgainstADotnetServerSign() { OursAgainstDotnetServer(ProtectionLevel.Sign); }
        [Test] public static void NegotiateClientAgainstADotnetServerEncryptAndSign() { OursAgainstDotnetServer(ProtectionLevel.EncryptAndSign); }

        static void DotnetClientAgainstOurs(ProtectionLevel level)
        {
            if (!NtlmPeerAvailable()) return;
            TcpListener listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            int port = ((IPEndPoint)listener.LocalEndpoint).Port;
            Exception clientError = null;
            string clientSaw = null;
            Thread thread = new Thread(delegate ()
            {
                try
                {
                    using (TcpClient tcp = new TcpClient())
                    {
                        tcp.Connect(IPAddress.Loopback, port);
                        using (DotnetNegotiateStream client = new DotnetNegotiateStream(tcp.GetStream(), false))
                        {
                            client.AuthenticateAsClient(new NetworkCredential("alice", "Passw0rd!", "TESTDOM"), "host/localhost", level,
                                TokenImpersonationLevel.Identification);
                            clientSaw = client.IsEncrypted + " " + client.IsSigned;
                            EchoClient(client);
                        }
                    }
                }
                catch (Exception e) { clientError = e; }
            });
            thread.Start();
            try
            {
                using (TcpClient accepted = listener.AcceptTcpClient())
                using (ApmNegotiateStream server = new ApmNegotiateStream(accepted.GetStream(), false))
                {
                    server.UserLookup = (user, domain) => user == "alice" ? "Passw0rd!" : null;
                    server.AuthenticateAsServer(CredentialCache.DefaultNetworkCredentials, level, TokenImpersonationLevel.Identification);
                    Assert.Equal("TESTDOM\\alice", server.RemoteIdentity.Name, "RemoteIdentity.Name");
                    Assert.Equal(TokenImpersonationLevel.Identification, server.ImpersonationLevel, "ImpersonationLevel");
                    Assert.True(server.IsServer, "IsServer");
                    EchoServer(server);
                }
            }
            finally
            {
                Assert.True(thread.Join(HangGuard), "the .NET client finished");
                listener.Stop();
            }
            if (clientError != null) throw new Exception(".NET's client failed: " + clientError.Message, clientError);
            Assert.Equal((level == ProtectionLevel.EncryptAndSign) + " " + (level != ProtectionLevel.None), clientSaw, ".NET's IsEncrypted and IsSigned");
        }

        [Test] public static void DotnetNegotiateClientAgainstOurServerNone() { DotnetClientAgainstOurs(ProtectionLevel.None); }
        [Test] public static void DotnetNegotiateClientAgainstOurServerSign() { DotnetClientAgainstOurs(ProtectionLevel.Sign); }
        [Test] public static void DotnetNegotiateClientAgainstOurServerEncryptAndSign() { DotnetClientAgainstOurs(ProtectionLevel.EncryptAndSign); }

        /// <summary>Our two ends over a loopback pair.</summary>
        static void OurPair(out ApmNegotiateStream client, out ApmNegotiateStream server)
        {
            using (ApmSocket listener = new ApmSocket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
            {
                listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
                listener.Listen();
                ApmSocket c = Connect(((IPEndPoint)listener.LocalEndPoint).Port);
                client = new ApmNegotiateStream(new Apmnet.NetworkStream(c, true));
                server = new ApmNegotiateStream(new Apmnet.NetworkStream(listener.Accept(), true));
            }
        }

        [Test]
        public static void NegotiateBeginEndTasksAndAWrongPassword()
        {
            ApmNegotiateStream client, server;
            OurPair(out client, out server);
            using (client)
            using (server)
            {
                server.UserLookup = (user, domain) => user == "alice" && domain == "TESTDOM" ? "Passw0rd!" : null;
                IAsyncResult s = server.BeginAuthenticateAsServer(CredentialCache.DefaultNetworkCredentials, ProtectionLevel.EncryptAndSign,
                    TokenImpersonationLevel.Identification, null, null);
                Task c = client.AuthenticateAsClientAsync(new NetworkCredential("TESTDOM\\alice", "Passw0rd!"), "host/localhost");
                server.EndAuthenticateAsServer(s);
                Assert.True(c.Wait(HangGuard), "the client's Task completed");
                Assert.True(client.IsAuthenticated && server.IsAuthenticated, "both authenticated");
                Assert.False(client.IsMutuallyAuthenticated, "NTLM is never mutual");
                byte[] data = RandomBytes(100000);
                IAsyncResult w = client.BeginWrite(data, 0, data.Length, null, null);
                byte[] back = new byte[data.Length];
                ReadExactly(server, back);
                client.EndWrite(w);
                Assert.Equal(Sha256(data), Sha256(back), "BeginWrite's bytes");
            }
            OurPair(out client, out server);
            using (client)
            using (server)
            {
                server.UserLookup = (user, domain) => "Passw0rd!";
                Exception serverError = null;
                Thread t = new Thread(delegate ()
                {
                    try { server.AuthenticateAsServer(); }
                    catch (Exception e) { serverError = e; }
                });
                t.Start();
                InvalidCredentialException refused = Assert.Throws<InvalidCredentialException>(
                    delegate { client.AuthenticateAsClient(new NetworkCredential("alice", "wrong", "TESTDOM"), "host/localhost"); }, "a wrong password");
                Assert.Equal("The server has rejected the client credentials.", refused.Message, "the client's message");
                Assert.True(t.Join(HangGuard), "the server finished");
                Assert.True(serverError is InvalidCredentialException, "the server's InvalidCredentialException, not " + serverError);
                Assert.Throws<InvalidCredentialException>(delegate { client.Write(data0, 0, 1); }, "the stored failure");
                // The stored failure comes before the arguments (.NET's order): no retry after a refusal.
                Assert.Throws<InvalidCredentialException>(delegate
                {
                    client.AuthenticateAsClient(new NetworkCredential("a", "b"), "t", ProtectionLevel.Sign, TokenImpersonationLevel.Anonymous);
                }, "a second authentication");
            }
        }

        static readonly byte[] data0 = new byte[1];
    }
}
