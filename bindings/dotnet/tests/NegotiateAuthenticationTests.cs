// Apmnet.NegotiateAuthentication against itself, the blobs carried here: NTLM and Negotiate, Wrap/Unwrap
// and integrity checks both ways, a wrong password as a status code, misuse. (Against .NET 8's own
// NegotiateAuthentication: ffi-tests/negotiate.c with peers/NegAuthPeer.cs.)
using System;
using System.Net;
using System.Net.Security;
using System.Text;

namespace Apmnet.Tests
{
    static partial class Tests
    {
        static NegotiateAuthentication[] NegotiateAuthenticationPair(string package, string password, ProtectionLevel level)
        {
            NegotiateAuthenticationClientOptions client = new NegotiateAuthenticationClientOptions();
            client.Package = package;
            client.Credential = new NetworkCredential("alice", password, "TESTDOM");
            client.TargetName = "host/localhost";
            client.RequiredProtectionLevel = level;
            NegotiateAuthenticationServerOptions server = new NegotiateAuthenticationServerOptions();
            server.Package = package;
            server.Credential = new NetworkCredential("TESTDOM\\alice", "Passw0rd!");
            server.RequiredProtectionLevel = level;
            return new[] { new NegotiateAuthentication(client), new NegotiateAuthentication(server) };
        }

        /// <summary>Carries the blobs until both sides stop; the server's last status.</summary>
        static NegotiateAuthenticationStatusCode Exchange(NegotiateAuthentication client, NegotiateAuthentication server)
        {
            NegotiateAuthenticationStatusCode cs = NegotiateAuthenticationStatusCode.ContinueNeeded, ss = cs;
            byte[] answer = null;
            for (int leg = 0; leg < 8; leg++)
            {
                byte[] blob = client.GetOutgoingBlob(answer, out cs);
                if (cs > NegotiateAuthenticationStatusCode.ContinueNeeded || blob == null) break;
                answer = server.GetOutgoingBlob(blob, out ss);
                if (ss > NegotiateAuthenticationStatusCode.ContinueNeeded || (cs == NegotiateAuthenticationStatusCode.Completed && answer == null)) break;
            }
            return ss;
        }

        static void NegotiateAuthenticationBothWays(string package)
        {
            NegotiateAuthentication[] pair = NegotiateAuthenticationPair(package, "Passw0rd!", ProtectionLevel.EncryptAndSign);
            NegotiateAuthentication client = pair[0], server = pair[1];
            Assert.False(client.IsAuthenticated, "authenticated before the exchange");
            Assert.True(server.IsServer, "the server is the server");
            Assert.Equal(NegotiateAuthenticationStatusCode.Completed, Exchange(client, server), "the server's status");
            Assert.True(client.IsAuthenticated && client.IsEncrypted && server.IsSigned, "authenticated, sealed, signed");
            Assert.False(client.IsMutuallyAuthenticated, "NTLM is never mutual");
            Assert.Equal("NTLM", server.Package, "the package SPNEGO chose");
            Assert.Equal(ProtectionLevel.EncryptAndSign, client.ProtectionLevel, "the protection level");
            Assert.Equal("TESTDOM\\alice", server.RemoteIdentity.Name, "the server sees the client");
            Assert.Equal("host/localhost", client.RemoteIdentity.Name, "the client sees the target");
            byte[] token, plain;
            bool encrypted;
            Assert.Equal(NegotiateAuthenticationStatusCode.Completed, client.Wrap(Encoding.ASCII.GetBytes("ping"), out token, true, out encrypted), "wrap");
            Assert.True(encrypted, "sealed");
            Assert.Equal(NegotiateAuthenticationStatusCode.Completed, server.Unwrap(token, out plain, out encrypted), "unwrap");
            Assert.Equal("ping", Encoding.ASCII.GetString(plain), "the plaintext");
            byte[] big = RandomBytes(10000);
            Assert.Equal(NegotiateAuthenticationStatusCode.Completed, server.Wrap(big, out token, true, out encrypted), "a large wrap");
            Assert.Equal(NegotiateAuthenticationStatusCode.Completed, client.Unwrap(token, out plain, out encrypted), "its unwrap");
            Assert.Equal(Sha256(big), Sha256(plain), "10000 bytes back");
            byte[] mic = client.ComputeIntegrityCheck(Encoding.ASCII.GetBytes("message"));
            Assert.True(server.VerifyIntegrityCheck(Encoding.ASCII.GetBytes("message"), mic), "the MIC verifies");
            Assert.False(server.VerifyIntegrityCheck(Encoding.ASCII.GetBytes("massage"), client.ComputeIntegrityCheck(Encoding.ASCII.GetBytes("message"))), "an altered message");
            client.Dispose();
            server.Dispose();
            Assert.False(client.IsAuthenticated, "not authenticated once disposed");
            Assert.Throws<ObjectDisposedException>(() => client.ComputeIntegrityCheck(new byte[1]), "after Dispose");
        }

        [Test] public static void NegotiateAuthenticationNtlmBothWays() { NegotiateAuthenticationBothWays("NTLM"); }
        [Test] public static void NegotiateAuthenticationNegotiateBothWays() { NegotiateAuthenticationBothWays("Negotiate"); }

        [Test]
        public static void NegotiateAuthenticationFailuresAreStatusCodes()
        {
            NegotiateAuthentication[] pair = NegotiateAuthenticationPair("NTLM", "wrong", ProtectionLevel.Sign);
            Assert.Equal(NegotiateAuthenticationStatusCode.UnknownCredentials, Exchange(pair[0], pair[1]), "a wrong password");
            Assert.False(pair[1].IsAuthenticated, "refused");
            byte[] token;
            bool encrypted;
            InvalidOperationException e = Assert.Throws<InvalidOperationException>(() => pair[1].Wrap(new byte[1], out token, false, out encrypted), "wrap on the refused side");
            Assert.Equal("This operation is only allowed using a successfully authenticated context.", e.Message, "its message");
            NegotiateAuthenticationClientOptions unknown = new NegotiateAuthenticationClientOptions();
            unknown.Package = "Digest";
            unknown.Credential = new NetworkCredential("alice", "x");
            NegotiateAuthenticationStatusCode status;
            Assert.Equal(null, new NegotiateAuthentication(unknown).GetOutgoingBlob((byte[])null, out status), "no blob");
            Assert.Equal(NegotiateAuthenticationStatusCode.Unsupported, status, "an unknown package");
            pair[0].Dispose();
            pair[1].Dispose();
        }
    }
}
