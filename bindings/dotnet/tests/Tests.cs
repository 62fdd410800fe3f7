// Tests of the C# wrapper on a real .NET runtime, against peers written with .NET's own System.Net.
using System;
using System.Diagnostics;
using System.IO;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using ApmSocket = Apmnet.Socket;
using ApmStream = Apmnet.NetworkStream;

namespace Apmnet.Tests
{
    static partial class Tests
    {
        const int HangGuard = Program.HangGuard;

        static ApmSocket Connect(int port)
        {
            ApmSocket socket = new ApmSocket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            socket.Connect(new IPEndPoint(IPAddress.Loopback, port));
            return socket;
        }

        static byte[] RandomBytes(int count)
        {
            byte[] bytes = new byte[count];
            new Random(count).NextBytes(bytes);
            return bytes;
        }

        static string TempFile(byte[] content)
        {
            string path = Path.Combine(Path.GetTempPath(), "apmnet-" + Guid.NewGuid().ToString("N") + ".bin");
            File.WriteAllBytes(path, content);
            return path;
        }

        static void ReadExactly(Stream stream, byte[] buffer)
        {
            int got = 0;
            while (got < buffer.Length)
            {
                int n = stream.Read(buffer, got, buffer.Length - got);
                Assert.True(n > 0, "data before the end of the stream");
                got += n;
            }
        }

        [Test]
        public static void StreamReaderAndWriterOverANetworkStream()
        {
            using (DotnetPeer peer = new DotnetPeer(DotnetPeer.Echo))
            using (ApmSocket socket = Connect(peer.Port))
            using (ApmStream stream = new ApmStream(socket))
            {
                Assert.True(socket.Connected, "connected");
                Assert.Equal(peer.Port, ((IPEndPoint)socket.RemoteEndPoint).Port, "remote port");
                StreamWriter writer = new StreamWriter(stream, new UTF8Encoding(false), 1024, true);
                writer.AutoFlush = true;
                StreamReader reader = new StreamReader(stream, Encoding.UTF8, false, 1024, true);
                writer.WriteLine("hello from apmnet");
                writer.WriteLine("second line \u00e9\u00e8");
                Assert.Equal("hello from apmnet", reader.ReadLine(), "first line");
                Assert.Equal("second line \u00e9\u00e8", reader.ReadLine(), "second line");
                socket.Shutdown(SocketShutdown.Send);
                Assert.Equal(null, reader.ReadLine(), "end of stream");
                long sent = Encoding.UTF8.GetByteCount("hello from apmnet\nsecond line \u00e9\u00e8\n");
                Assert.Equal(sent, (long)peer.Result(), "bytes echoed");
            }
        }

        [Test]
        public static void BeginSendFileToADotnetTcpListener()
        {
            byte[] content = RandomBytes(5 * 1024 * 1024 + 4321);
            byte[] pre = Encoding.ASCII.GetBytes("--pre--");
            byte[] post = Encoding.ASCII.GetBytes("--post--");
            string path = TempFile(content);
            try
            {
                using (DotnetPeer peer = new DotnetPeer(DotnetPeer.Sink))
                using (ApmSocket socket = Connect(peer.Port))
                {
                    EndInCallback ended = new EndInCallback(socket.EndSendFile);
                    IAsyncResult result = socket.BeginSendFile(path, pre, post, TransmitFileOptions.Disconnect, ended.Callback, "send-file");
                    Assert.Equal("send-file", (string)result.AsyncState, "AsyncState");
                    Assert.Equal(null, ended.Error(), "EndSendFile error");
                    Assert.False(socket.Connected, "Disconnect: no longer connected");
                    Assert.Equal(DotnetPeer.Digest(pre, content, post), (string)peer.Result(), "what the .NET peer received");
                }
            }
            finally
            {
                File.Delete(path);
            }
        }

        [Test]
        public static void SyncSendFileAndProgress()
        {
            byte[] content = RandomBytes(3 * 1024 * 1024 + 7);
            string path = TempFile(content);
            try
            {
                using (DotnetPeer peer = new DotnetPeer(DotnetPeer.Sink))
                using (ApmSocket socket = Connect(peer.Port))
                {
                    socket.SendFile(path);
                    long last = -1;
                    bool ordered = true;
                    IAsyncResult result = socket.BeginSendFile(path, null, null, TransmitFileOptions.UseDefaultWorkerThread,
                        delegate (IAsyncResult r, long sent) { ordered &= sent >= last; last = sent; }, null, null);
                    socket.EndSendFile(result);
                    socket.Shutdown(SocketShutdown.Send);
                    Assert.Equal(DotnetPeer.Digest(content, content), (string)peer.Result(), "two copies of the file");
                    Assert.True(ordered && last > 0 && last <= content.Length, "progress went up to at most the file size: " + last);
                }
            }
            finally
            {
                File.Delete(path);
            }
        }

        [Test]
        public static void CallbackComesFromAPoolThreadWhileTheCallerWaits()
        {
            ManualResetEvent gate = new ManualResetEvent(false);
            Func<TcpClient, object> sendLater = delegate (TcpClient client)
            {
                gate.WaitOne(HangGuard);
                client.GetStream().Write(Encoding.ASCII.GetBytes("hello"), 0, 5);
                return null;
            };
            using (DotnetPeer peer = new DotnetPeer(sendLater))
            using (ApmSocket socket = Connect(peer.Port))
            using (ApmStream stream = new ApmStream(socket))
            {
                int callerThread = Thread.CurrentThread.ManagedThreadId;
                int callbackThread = callerThread;
                int count = -1;
                object state = null;
                ManualResetEvent called = new ManualResetEvent(false);
                byte[] buffer = new byte[16];
                IAsyncResult result = stream.BeginRead(buffer, 0, buffer.Length, delegate (IAsyncResult r)
                {
                    callbackThread = Thread.CurrentThread.ManagedThreadId;
                    state = r.AsyncState;
                    count = stream.EndRead(r);
                    called.Set();
                }, "read-state");
                Assert.False(result.CompletedSynchronously, "completed synchronously (the peer has not sent)");
                Assert.False(result.IsCompleted, "completed before the peer sent");
                gate.Set();
                Assert.True(result.AsyncWaitHandle.WaitOne(HangGuard), "AsyncWaitHandle signalled");
                Assert.True(called.WaitOne(HangGuard), "the callback ran");
                Assert.True(callbackThread != callerThread, "the callback ran on another thread");
                Assert.Equal("read-state", (string)state, "AsyncState in the callback");
                Assert.True(count > 0 && count <= 5, "bytes read: " + count);
                Assert.Equal("hello".Substring(0, count), Encoding.ASCII.GetString(buffer, 0, count), "data");
                Assert.True(result.IsCompleted, "IsCompleted after End");
            }
        }

        [Test]
        public static void SmallSendCompletesSynchronouslyOnTheCallersThread()
        {
            using (DotnetPeer peer = new DotnetPeer(DotnetPeer.Echo))
            using (ApmSocket socket = Connect(peer.Port))
            {
                int thread = -1;
                IAsyncResult result = socket.BeginSend(new byte[] { 1, 2, 3 }, 0, 3, SocketFlags.None,
                    delegate { thread = Thread.CurrentThread.ManagedThreadId; }, null);
                Assert.True(result.CompletedSynchronously, "completed synchronously");
                Assert.Equal(Thread.CurrentThread.ManagedThreadId, thread, "callback thread");
                Assert.Equal(3, socket.EndSend(result), "EndSend");
                Assert.True(result.CompletedSynchronously, "still completed synchronously after End");
                byte[] echoed = new byte[3];
                IAsyncResult receive = socket.BeginReceive(echoed, 0, 3, SocketFlags.None, null, null);
                int n = socket.EndReceive(receive);
                Assert.True(n > 0 && echoed[0] == 1, "echo");
            }
        }

        [Test]
        public static void CancelEndsAPendingReceiveWithOperationAborted()
        {
            using (DotnetPeer peer = new DotnetPeer(DotnetPeer.Echo))
            using (ApmSocket socket = Connect(peer.Port))
            {
                byte[] buffer = new byte[8];
                ApmAsyncResult receive = (ApmAsyncResult)socket.BeginReceive(buffer, 0, 8, SocketFlags.None, null, null);
                receive.Cancel();
                SocketException aborted = Assert.Throws<SocketException>(delegate { socket.EndReceive(receive); }, "EndReceive");
                Assert.Equal(SocketError.OperationAborted, aborted.SocketErrorCode, "SocketErrorCode");
                // Nothing was consumed: the echo of the next send is whole.
                Assert.Equal(3, socket.Send(new byte[] { 7, 8, 9 }), "send");
                int n = socket.Receive(buffer, 0, 8, SocketFlags.None);
                Assert.True(n > 0 && buffer[0] == 7, "echo after the cancel");
                receive.Cancel();  // ended: nothing happens
            }
        }

        [Test]
        public static void TaskFromAsyncReadAsyncAndCopyTo()
        {
            byte[] data = RandomBytes(2 * 1024 * 1024);
            using (DotnetPeer peer = new DotnetPeer(DotnetPeer.Echo))
            using (ApmSocket socket = Connect(peer.Port))
            using (ApmStream stream = new ApmStream(socket))
            {
                Task write = Task.Factory.FromAsync(stream.BeginWrite, stream.EndWrite, data, 0, data.Length, null);
                byte[] first = new byte[1000];
                int n = Task<int>.Factory.FromAsync(stream.BeginRead, stream.EndRead, first, 0, first.Length, null).Result;
                Assert.True(n > 0, "FromAsync read");
                Assert.True(write.Wait(HangGuard), "FromAsync write finished");
                // Stream.WriteAsync/ReadAsync reach the overridden BeginWrite/BeginRead
                stream.WriteAsync(data, 0, 10).Wait();
                MemoryStream received = new MemoryStream();
                received.Write(first, 0, n);
                byte[] chunk = new byte[65536];
                while (received.Length < data.Length + 10)
                {
                    int k = stream.ReadAsync(chunk, 0, chunk.Length).Result;
                    Assert.True(k > 0, "ReadAsync data");
                    received.Write(chunk, 0, k);
                }
                byte[] expected = new byte[data.Length + 10];
                Buffer.BlockCopy(data, 0, expected, 0, data.Length);
                Buffer.BlockCopy(data, 0, expected, data.Length, 10);
                Assert.Equal(DotnetPeer.Digest(expected), DotnetPeer.Digest(received.ToArray()), "echoed data");
            }

            byte[] payload = RandomBytes(3 * 1024 * 1024 + 11);
            Func<TcpClient, object> send = delegate (TcpClient client) { client.GetStream().Write(payload, 0, payload.Length); return null; };
            using (DotnetPeer peer = new DotnetPeer(send))
            using (ApmStream stream = new ApmStream(Connect(peer.Port), true))
            {
                MemoryStream copy = new MemoryStream();
                stream.CopyTo(copy);
                Assert.Equal(DotnetPeer.Digest(payload), DotnetPeer.Digest(copy.ToArray()), "CopyTo");
            }
        }

        [Test]
        public static void WrapperListensAndADotnetClientConnects()
        {
            using (ApmSocket listener = new ApmSocket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
            {
                listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
                listener.Listen();  // .NET's default backlog, int.MaxValue
                int port = ((IPEndPoint)listener.LocalEndPoint).Port;
                IAsyncResult accept = listener.BeginAccept(null, "accept");
                using (TcpClient client = new TcpClient())
                {
                    client.Connect(IPAddress.Loopback, port);
                    using (ApmSocket accepted = listener.EndAccept(accept))
                    {
                        Assert.True(accepted.Connected, "accepted socket connected");
                        Assert.Equal(((IPEndPoint)client.Client.LocalEndPoint).Port, ((IPEndPoint)accepted.RemoteEndPoint).Port, "peer port");
                        client.GetStream().Write(Encoding.ASCII.GetBytes("ping"), 0, 4);
                        byte[] buffer = new byte[4];
                        using (ApmStream stream = new ApmStream(accepted))
                        {
                            ReadExactly(stream, buffer);
                            Assert.Equal("ping", Encoding.ASCII.GetString(buffer), "received");
                            stream.Write(Encoding.ASCII.GetBytes("pong"), 0, 4);
                        }
                        byte[] reply = new byte[4];
                        ReadExactly(client.GetStream(), reply);
                        Assert.Equal("pong", Encoding.ASCII.GetString(reply), "reply");
                    }
                }
            }
        }

        [Test]
        public static void BeginConnectAndSocketOptions()
        {
            using (DotnetPeer peer = new DotnetPeer(DotnetPeer.Echo))
            using (ApmSocket socket = new ApmSocket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
            {
                IAsyncResult connect = socket.BeginConnect(IPAddress.Loopback, peer.Port, null, null);
                socket.EndConnect(connect);
                Assert.True(socket.Connected, "connected");
                socket.NoDelay = true;
                Assert.True(socket.NoDelay, "NoDelay");
                socket.ReceiveTimeout = 1500;
                Assert.Equal(1500, socket.ReceiveTimeout, "ReceiveTimeout");
                socket.SendBufferSize = 65536;
                Assert.True(socket.SendBufferSize >= 65536, "SendBufferSize");
                socket.LingerState = new LingerOption(true, 2);
                Assert.True(socket.LingerState.Enabled && socket.LingerState.LingerTime == 2, "LingerState");
            }
        }

        [Test]
        public static void FailuresAreThrownAsTheDotnetExceptionTypes()
        {
            int closedPort;
            TcpListener probe = new TcpListener(IPAddress.Loopback, 0);
            probe.Start();
            closedPort = ((IPEndPoint)probe.LocalEndpoint).Port;
            probe.Stop();

            using (ApmSocket socket = new ApmSocket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
            {
                SocketException refused = Assert.Throws<SocketException>(delegate { socket.Connect(IPAddress.Loopback, closedPort); }, "refused");
                Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode, "SocketErrorCode");
                Assert.True(refused.Message.Length > 0, "message");
                Assert.Equal(111, ((ApmSocketException)refused).Errno, "errno");

                NotSupportedException notConnected = Assert.Throws<NotSupportedException>(delegate { socket.BeginSendFile("x", null, null); }, "send file unconnected");
                Assert.Equal("The operation is not allowed on non-connected sockets.", notConnected.Message, "message");
                Assert.Throws<IOException>(delegate { new ApmStream(socket); }, "stream over an unconnected socket");
            }
            Assert.Throws<NotSupportedException>(delegate { new ApmSocket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp); }, "datagram");

            using (DotnetPeer peer = new DotnetPeer(DotnetPeer.Echo))
            using (ApmSocket socket = Connect(peer.Port))
            using (ApmSocket other = Connect(peer.Port))
            {
                string missing = Path.Combine(Path.GetTempPath(), Guid.NewGuid().ToString("N"));
                Assert.Throws<FileNotFoundException>(delegate { socket.BeginSendFile(missing, null, null); }, "missing file");
                Assert.Throws<DirectoryNotFoundException>(delegate { socket.BeginSendFile(Path.Combine(missing, "f"), null, null); }, "missing directory");

                ApmStream stream = new ApmStream(socket);
                Assert.Throws<ArgumentNullException>(delegate { stream.Write(null, 0, 0); }, "null buffer");
                Assert.Throws<ArgumentOutOfRangeException>(delegate { stream.Write(new byte[3], 4, 0); }, "offset");
                Assert.Throws<ArgumentOutOfRangeException>(delegate { stream.BeginWrite(new byte[3], 1, 3, null, null); }, "count");
                Assert.Throws<ArgumentOutOfRangeException>(delegate { stream.Write(new byte[3], -1, 1); }, "negative offset");
                Assert.Throws<ArgumentNullException>(delegate { stream.EndWrite(null); }, "End(null)");
                Assert.Throws<ArgumentException>(delegate { stream.EndWrite(Task.FromResult(0)); }, "End(a Task)");

                IAsyncResult write = stream.BeginWrite(new byte[] { 42 }, 0, 1, null, null);
                Assert.Throws<ArgumentException>(delegate { socket.EndSend(write); }, "End on another object");
                stream.EndWrite(write);
                InvalidOperationException twice = Assert.Throws<InvalidOperationException>(delegate { stream.EndWrite(write); }, "second End");
                Assert.Equal("EndWrite can only be called once for each asynchronous operation.", twice.Message, "message");

                ApmStream readOnly = new ApmStream(other, FileAccess.Read);
                Assert.Equal("The stream does not support writing.",
                    Assert.Throws<InvalidOperationException>(delegate { readOnly.Write(new byte[1], 0, 1); }, "read-only").Message, "message");
                readOnly.Dispose();
                Assert.False(readOnly.CanRead, "CanRead after Dispose");

                stream.Dispose();
                ObjectDisposedException disposed = Assert.Throws<ObjectDisposedException>(delegate { stream.Write(new byte[1], 0, 1); }, "closed stream");
                Assert.True(disposed.Message.Length > 0, "message");
                socket.Close();
                Assert.Throws<ObjectDisposedException>(delegate { socket.Send(new byte[1]); }, "closed socket");
                Assert.Throws<ObjectDisposedException>(delegate { Console.Write(socket.Connected); }, "Connected of a closed socket");
            }
        }

        [Test]
        public static void PeerResetIsAnIOExceptionWithTheSocketExceptionInside()
        {
            ManualResetEvent gate = new ManualResetEvent(false);
            Func<TcpClient, object> reset = delegate (TcpClient client)
            {
                gate.WaitOne(HangGuard);
                client.Client.LingerState = new LingerOption(true, 0);
                client.Client.Close();
                return null;
            };
            using (DotnetPeer peer = new DotnetPeer(reset))
            using (ApmSocket socket = Connect(peer.Port))
            using (ApmStream stream = new ApmStream(socket))
            {
                gate.Set();
                peer.Result();
                byte[] block = new byte[1 << 20];
                IOException error = Assert.Throws<IOException>(delegate
                {
                    for (int i = 0; i < 256; i++) stream.Write(block, 0, block.Length);
                }, "writes after a reset");
                Assert.True(error.Message.StartsWith("Unable to write data to the transport connection: "), "message: " + error.Message);
                SocketException inner = error.InnerException as SocketException;
                Assert.True(inner != null, "inner SocketException");
                Assert.True(inner.SocketErrorCode == SocketError.ConnectionReset || inner.SocketErrorCode == SocketError.Shutdown,
                    "inner SocketErrorCode: " + inner.SocketErrorCode);
            }
        }

        [Test]
        public static void PendingWritesGoOutInOrderAndSurviveGarbageCollection()
        {
            ManualResetEvent gate = new ManualResetEvent(false);
            Func<TcpClient, object> gatedSink = delegate (TcpClient client) { gate.WaitOne(HangGuard); return DotnetPeer.Sink(client); };
            byte[][] chunks = new byte[40][];
            for (int i = 0; i < chunks.Length; i++)
            {
                chunks[i] = new byte[1024 * 1024 + i];
                for (int j = 0; j < chunks[i].Length; j++) chunks[i][j] = (byte)i;
            }
            using (DotnetPeer peer = new DotnetPeer(gatedSink))
            using (ApmSocket socket = Connect(peer.Port))
            {
                ApmStream stream = new ApmStream(socket);
                int completed = 0;
                ManualResetEvent all = new ManualResetEvent(false);
                for (int i = 0; i < chunks.Length; i++)
                {
                    byte[] copy = (byte[])chunks[i].Clone();  // referenced only by the pending operation
                    stream.BeginWrite(copy, 0, copy.Length, delegate (IAsyncResult r)
                    {
                        stream.EndWrite(r);
                        if (Interlocked.Increment(ref completed) == chunks.Length) all.Set();
                    }, null);
                }
                GC.Collect();
                GC.WaitForPendingFinalizers();
                GC.Collect();
                Assert.False(all.WaitOne(0), "40 MiB fit in the socket buffers");
                gate.Set();
                Assert.True(all.WaitOne(HangGuard), "every write completed");
                socket.Shutdown(SocketShutdown.Send);
                Assert.Equal(DotnetPeer.Digest(chunks), (string)peer.Result(), "bytes in Begin order");
            }
        }

        [Test]
        public static void CloseCompletesAPendingReadAndEndThrowsObjectDisposed()
        {
            ManualResetEvent release = new ManualResetEvent(false);
            using (DotnetPeer peer = new DotnetPeer(delegate (TcpClient c) { release.WaitOne(HangGuard); return null; }))
            {
                ApmSocket socket = Connect(peer.Port);
                ApmStream stream = new ApmStream(socket, true);
                EndInCallback ended = new EndInCallback(r => stream.EndRead(r));
                stream.BeginRead(new byte[8], 0, 8, ended.Callback, null);
                stream.Close();
                Exception endError = ended.Error();
                Assert.True(endError is ObjectDisposedException, "EndRead threw ObjectDisposedException: " + endError);
                release.Set();
            }
        }

        [Test]
        public static void RuntimeShutdownAbortsPendingOperationsAndRestarts()
        {
            ManualResetEvent release = new ManualResetEvent(false);
            using (DotnetPeer peer = new DotnetPeer(delegate (TcpClient c) { release.WaitOne(HangGuard); return null; }))
            using (ApmSocket socket = Connect(peer.Port))
            {
                EndInCallback ended = new EndInCallback(r => socket.EndReceive(r));
                socket.BeginReceive(new byte[8], 0, 8, SocketFlags.None, ended.Callback, null);
                ApmRuntime.Shutdown();
                Assert.True(ended.Called, "the callback ran before Shutdown returned");
                Assert.True(ended.Error() != null, "EndReceive reported the abort");
                release.Set();
            }
            using (DotnetPeer peer = new DotnetPeer(DotnetPeer.Echo))
            using (ApmSocket socket = Connect(peer.Port))
            {
                socket.EndSend(socket.BeginSend(new byte[] { 7 }, 0, 1, SocketFlags.None, null, null));
                byte[] one = new byte[1];
                Assert.Equal(1, socket.EndReceive(socket.BeginReceive(one, 0, 1, SocketFlags.None, null, null)), "after restart");
                Assert.Throws<InvalidOperationException>(delegate { ApmRuntime.Configure(2, 0); }, "Configure while running");
            }
        }

        [Test]
        public static void ProcessExitsCleanlyWithOperationsPending()
        {
            string output = Child.Run(PendingChild.Argument, null, "the child process hung at exit");
            string[] lines = output.Replace("\r", "").TrimEnd('\n').Split('\n');
            Assert.Equal("pending False False False", lines[0], "first line");
            Assert.Equal(3, lines.Length, "lines: " + output);
            Array.Sort(lines, 1, 2);
            Assert.True(lines[1].StartsWith("read aborted ") && lines[2].StartsWith("write aborted "), "callbacks at exit: " + output);
        }
    }

    /// <summary>The child process of ProcessExitsCleanlyWithOperationsPending: starts operations that
    /// cannot finish (one with a callback that throws), then returns from Main without End or Close.
    /// ProcessExit shuts the runtime down; the process still exits 0.</summary>
    static class PendingChild
    {
        public const string Argument = "--child-pending";

        public static int Run()
        {
            TcpListener server = new TcpListener(IPAddress.Loopback, 0);
            server.Start();
            ApmSocket socket = new ApmSocket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            socket.Connect(IPAddress.Loopback, ((IPEndPoint)server.LocalEndpoint).Port);
            TcpClient peer = server.AcceptTcpClient();  // stays open; never reads nor writes
            ApmStream stream = new ApmStream(socket);
            IAsyncResult read = stream.BeginRead(new byte[16], 0, 16, delegate (IAsyncResult r) { Report("read", delegate { stream.EndRead(r); }); }, null);
            byte[] big = new byte[64 << 20];
            IAsyncResult write = stream.BeginWrite(big, 0, big.Length, delegate (IAsyncResult r) { Report("write", delegate { stream.EndWrite(r); }); }, null);
            ApmSocket listener = new ApmSocket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            listener.Listen(1);
            IAsyncResult accept = listener.BeginAccept(null, null);  // no callback at all
            ApmSocket throwing = new ApmSocket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            throwing.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            throwing.Listen(1);
            // Its End throws the abort at exit, out of the callback: the exiting process ignores it.
            throwing.BeginAccept(delegate (IAsyncResult r) { throwing.EndAccept(r); }, null);
            Console.WriteLine("pending " + read.IsCompleted + " " + write.IsCompleted + " " + accept.IsCompleted);
            GC.KeepAlive(peer);
            return 0;
        }

        static void Report(string kind, Action end)
        {
            try
            {
                end();
                Console.WriteLine(kind + " completed");
            }
            catch (Exception error)
            {
                Console.WriteLine(kind + " aborted " + error.GetType().Name);
            }
        }
    }
}
