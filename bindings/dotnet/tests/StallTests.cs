// What .NET users write, and what must not stall: a continuation of an awaited BeginWrite/EndWrite that
// blocks on a read of the same stream. The wrapper delivers callbacks on the thread pool, never on an
// engine thread, so the read completes, as it does on System.Net.Security.SslStream.
using System;
using System.Collections.Generic;
using System.IO;
using System.Net.Security;
using System.Security.Authentication;
using System.Threading;
using System.Threading.Tasks;
using ApmSslStream = Apmnet.SslStream;
using DotnetSslStream = System.Net.Security.SslStream;

namespace Apmnet.Tests
{
    static partial class Tests
    {
        const string Twice = "completed on the thread pool\ncompleted on the thread pool";

        [Test]
        public static void BlockingOnAReadInsideAnAwaitedWriteContinuationDoesNotStall()
        {
            foreach (string threads in new[] { "1", "4" })
            {
                Dictionary<string, string> environment = new Dictionary<string, string> { { "APMNET_THREADS", threads } };
                string output = Child.Run(StallChild.Argument + " apmnet", environment, "stalled with " + threads + " engine threads");
                Assert.Equal(Twice, output.Trim(), threads + " engine threads");
            }
            // The same code on .NET's own SslStream, for reference.
            Assert.Equal(Twice, Child.Run(StallChild.Argument + " dotnet", null, "System.Net's SslStream stalled").Trim(), "System.Net");
        }
    }

    /// <summary>The child process of BlockingOnAReadInsideAnAwaitedWriteContinuationDoesNotStall: a TLS
    /// client (ours or .NET's) against .NET's SslStream server, which starts reading the request only once
    /// the client's BeginWrite has returned, so that the write completes later, on another thread, while
    /// a read of the same stream waits for the server's answer.</summary>
    static class StallChild
    {
        public const string Argument = "--child-stall";
        const int Size = 16 << 20;  // more than the socket buffers hold: the write cannot complete inside Begin
        static readonly byte[] Answer = { 1, 2, 3, 4 };

        public static int Run(string client)
        {
            TestPki pki = TestPki.Shared;
            ManualResetEvent writing = new ManualResetEvent(false);
            using (DotnetPeer peer = new DotnetPeer(Server(pki.Pkcs12("server"), writing)))
            using (Stream tls = client == "apmnet" ? OurClient(pki, peer.Port) : DotnetClient(pki, peer.Port))
            {
                foreach (bool readFirst in new[] { true, false })
                {
                    Task<string> run = WriteThenWaitForTheRead(tls, readFirst, writing);
                    if (!run.Wait(30000))
                    {
                        Console.WriteLine("stalled (read begun " + (readFirst ? "before the write)" : "in the continuation)"));
                        Console.Out.Flush();
                        // Exiting would run the library's shutdown, which waits for the blocked engine thread.
                        System.Diagnostics.Process.GetCurrentProcess().Kill();
                    }
                    Console.WriteLine(run.Result);
                }
                peer.Result();
            }
            return 0;
        }

        /// <summary>Twice: waits until the client is writing, reads the request, answers.</summary>
        static Func<System.Net.Sockets.TcpClient, object> Server(System.Security.Cryptography.X509Certificates.X509Certificate2 certificate, ManualResetEvent writing)
        {
            return delegate (System.Net.Sockets.TcpClient client)
            {
                using (DotnetSslStream tls = new DotnetSslStream(client.GetStream(), false))
                {
                    tls.AuthenticateAsServer(certificate);
                    byte[] request = new byte[Size];
                    for (int round = 0; round < 2; round++)
                    {
                        if (!writing.WaitOne(Program.HangGuard)) throw new TimeoutException("the client never wrote");
                        writing.Reset();
                        int got = 0;
                        while (got < Size)
                        {
                            int n = tls.Read(request, got, Size - got);
                            if (n == 0) throw new EndOfStreamException("the request ended early");
                            got += n;
                        }
                        tls.Write(Answer, 0, Answer.Length);
                    }
                    return null;
                }
            };
        }

        /// <summary>The code: await FromAsync(BeginWrite, EndWrite), then block on a read of the
        /// same stream (begun before the write, or in the continuation).</summary>
        static async Task<string> WriteThenWaitForTheRead(Stream tls, bool readFirst, ManualResetEvent writing)
        {
            byte[] request = new byte[Size];
            byte[] answer = new byte[Answer.Length];
            Task<int> reader = readFirst ? Read(tls, answer) : null;
            Task write = Task.Factory.FromAsync(tls.BeginWrite, tls.EndWrite, request, 0, request.Length, null);
            bool pending = !write.IsCompleted;
            writing.Set();
            await write;
            bool onThePool = Thread.CurrentThread.IsThreadPoolThread;
            if (reader == null) reader = Read(tls, answer);
            reader.Wait();  // blocks the thread that completed the write
            int got = reader.Result;
            while (got < answer.Length)
            {
                int n = tls.Read(answer, got, answer.Length - got);
                if (n == 0) throw new EndOfStreamException("the server's answer ended early");
                got += n;
            }
            if (!pending) return "the write completed inside Begin: nothing tested";
            return onThePool ? "completed on the thread pool" : "completed, but not on the thread pool";
        }

        static Task<int> Read(Stream tls, byte[] answer)
        {
            return Task<int>.Factory.FromAsync(tls.BeginRead, tls.EndRead, answer, 0, answer.Length, null);
        }

        static Stream OurClient(TestPki pki, int port)
        {
            ApmSslStream tls = Tests.ApmClient(port);
            tls.SetTrustedCaFile(pki.File("ca.pem"));
            tls.AuthenticateAsClient("localhost");
            return tls;
        }

        static Stream DotnetClient(TestPki pki, int port)
        {
            System.Net.Sockets.TcpClient client = new System.Net.Sockets.TcpClient("127.0.0.1", port);
            string server = pki.Thumbprint("server");
            DotnetSslStream tls = new DotnetSslStream(client.GetStream(), false,
                (sender, certificate, chain, errors) => certificate != null && new System.Security.Cryptography.X509Certificates.X509Certificate2(certificate).Thumbprint == server);
            tls.AuthenticateAsClient("localhost");
            return tls;
        }
    }
}
