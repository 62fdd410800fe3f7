// Where callbacks and Task continuations run, and ReadAsync/WriteAsync with their CancellationToken.
using System;
using System.IO;
using System.Net.Security;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using ApmSocket = Apmnet.Socket;
using ApmStream = Apmnet.NetworkStream;
using ApmSslStream = Apmnet.SslStream;

namespace Apmnet.Tests
{
    static partial class Tests
    {
        [Test]
        public static void CallbacksRunOnTheThreadPoolInTheExecutionContextOfBegin()
        {
            ManualResetEvent gate = new ManualResetEvent(false);
            Func<TcpClient, object> sendLater = delegate (TcpClient client)
            {
                gate.WaitOne(HangGuard);
                client.GetStream().Write(new byte[] { 42 }, 0, 1);
                return null;
            };
            AsyncLocal<string> flowing = new AsyncLocal<string>();
            using (DotnetPeer peer = new DotnetPeer(sendLater))
            using (ApmStream stream = new ApmStream(Connect(peer.Port), true))
            {
                bool onThePool = false;
                string seen = null;
                ManualResetEvent called = new ManualResetEvent(false);
                flowing.Value = "from Begin";
                IAsyncResult result = stream.BeginRead(new byte[1], 0, 1, delegate (IAsyncResult r)
                {
                    onThePool = Thread.CurrentThread.IsThreadPoolThread;
                    seen = flowing.Value;
                    called.Set();
                }, null);
                flowing.Value = null;
                Assert.False(result.CompletedSynchronously, "pending");
                gate.Set();
                Assert.True(called.WaitOne(HangGuard), "the callback ran");
                Assert.True(onThePool, "the callback ran on a thread-pool thread");
                Assert.Equal("from Begin", seen, "the AsyncLocal value of the Begin call");
                Assert.Equal(1, stream.EndRead(result), "EndRead");
            }
        }

        [Test]
        public static void ReadAsyncCancelledByItsTokenConsumesNothing()
        {
            using (DotnetPeer peer = new DotnetPeer(DotnetPeer.Echo))
            using (ApmStream stream = new ApmStream(Connect(peer.Port), true))
            {
                byte[] buffer = new byte[16];
                Task<int> before = stream.ReadAsync(buffer, 0, buffer.Length, new CancellationToken(true));
                Assert.True(before.IsCanceled, "a token cancelled before the call: a cancelled Task");

                CancellationTokenSource cancel = new CancellationTokenSource();
                Task<int> read = stream.ReadAsync(buffer, 0, buffer.Length, cancel.Token);
                Assert.False(read.IsCompleted, "pending: the peer has not sent");
                cancel.Cancel();
                try
                {
                    read.Wait(HangGuard);
                    throw new AssertionException("the cancelled read completed: " + read.Result);
                }
                catch (AggregateException error)
                {
                    Assert.True(error.InnerException is OperationCanceledException, "OperationCanceledException, got " + error.InnerException);
                }
                Assert.True(read.IsCanceled, "the Task is cancelled");

                // Nothing was consumed: the next read gets the echo whole; the token of a completed
                // WriteAsync changes nothing.
                Assert.True(stream.WriteAsync(new byte[] { 5, 6, 7 }, 0, 3, cancel.Token).IsCanceled, "WriteAsync with a cancelled token");
                stream.WriteAsync(new byte[] { 5, 6, 7 }, 0, 3, new CancellationTokenSource().Token).Wait(HangGuard);
                int got = 0;
                while (got < 3) got += stream.ReadAsync(buffer, got, 3 - got).Result;
                Assert.Equal("5,6,7", buffer[0] + "," + buffer[1] + "," + buffer[2], "the echo after the cancel");
            }
        }

        [Test]
        public static void ReadAsyncArgumentErrorsAreThrownByTheCall()
        {
            using (DotnetPeer peer = new DotnetPeer(DotnetPeer.Echo))
            using (ApmStream stream = new ApmStream(Connect(peer.Port), true))
            {
                Assert.Throws<ArgumentNullException>(delegate { stream.ReadAsync(null, 0, 1); }, "null buffer");
                Assert.Throws<ArgumentOutOfRangeException>(delegate { stream.WriteAsync(new byte[4], 3, 2); }, "count past the end");
                stream.Dispose();
                Assert.Throws<ObjectDisposedException>(delegate { stream.ReadAsync(new byte[4], 0, 4); }, "disposed");
            }
        }

        [Test]
        public static void SslReadAsyncWithATokenIsCancelledAndTakesNoByte()
        {
            TestPki pki = TestPki.Shared;
            ManualResetEvent answer = new ManualResetEvent(false);
            Func<TcpClient, object> server = delegate (TcpClient client)
            {
                using (System.Net.Security.SslStream tls = new System.Net.Security.SslStream(client.GetStream(), false))
                {
                    tls.AuthenticateAsServer(pki.Pkcs12("server"));
                    answer.WaitOne(HangGuard);
                    tls.Write(new byte[] { 9 }, 0, 1);
                    byte[] end = new byte[1];
                    return tls.Read(end, 0, 1);
                }
            };
            using (DotnetPeer peer = new DotnetPeer(server))
            using (ApmSslStream tls = ApmClient(peer.Port))
            {
                tls.SetTrustedCaFile(pki.File("ca.pem"));
                tls.AuthenticateAsClient("localhost");
                byte[] buffer = new byte[4];
                CancellationTokenSource cancel = new CancellationTokenSource();
                Task<int> read = tls.ReadAsync(buffer, 0, buffer.Length, cancel.Token);
                cancel.Cancel();
                answer.Set();
                try
                {
                    Assert.True(read.Wait(HangGuard), "the read completed");
                    Assert.Equal(9, (int)buffer[0], "not cancelled (NotSupported): the data");
                }
                catch (AggregateException error)
                {
                    Assert.True(error.InnerException is OperationCanceledException, "cancelled: OperationCanceledException, got " + error.InnerException);
                    // The cancelled read took nothing: the byte is the next read's.
                    Assert.Equal(1, tls.Read(buffer, 0, 1), "the next read");
                    Assert.Equal(9, (int)buffer[0], "cancelled: the data went to the next read");
                }
                tls.Dispose();
                peer.Result();
            }
        }
    }
}
