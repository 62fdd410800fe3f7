// Bench.cs: the .NET 8 rows. Compiled by Mono's mcs (references only mscorlib and System), run on
// .NET 8 through benches/dotnet/dotnet.sh. Same modes and output lines as the C clients:
//   write    PORT MIB BUF               NetworkStream.BeginWrite, the next one chained from the callback
//   sendfile PORT FILE                  Socket.BeginSendFile (the 8-byte length as preBuffer)
//   tls      PORT MIB BUF               SslStream.BeginWrite chained, TLS 1.3
//   handshake PORT SECS full|resumed VER  sequential SslStreams to the tlshello server: connect,
//                                       AuthenticateAsClient(SslClientAuthenticationOptions) with AllowTlsResume
//                                       false (full) or true (resumed), read its byte, close
//   echo     PORT CONNS SECS SIZE WARM  Socket.BeginSend/BeginReceive driven from the callbacks
//   latency  SAMPLES                    data arrival -> BeginReceive callback (idle, and "hot": 10 us after
//                                       the last callback); Begin -> callback
//   memory   PORT CONNS                 RSS per connected Socket + NetworkStream, and per pending BeginRead
//   nego     PORT MIB BUF USER PASSWORD DOMAIN  NegotiateStream (EncryptAndSign, target host/localhost)
//                                       to apm.c's negoserver, BeginWrite chained as `write`
//   negohs   PORT SECS USER PASSWORD DOMAIN  sequential NegotiateStreams: connect, AuthenticateAsClient
//                                       at EncryptAndSign, one byte out and the ack back, close
//   httpget  URL CONNS SECS WARM        HttpWebRequest GETs, CONNS in flight (DefaultConnectionLimit
//                                       raised to it), BeginGetResponse and the response stream's BeginRead
//                                       to its end; https trusts what SSL_CERT_FILE names
//   httppost URL MIB BUF                one POST of MIB MiB, ContentLength set, AllowWriteStreamBuffering
//                                       off, the request stream written with chained BeginWrites
// Every chain uses the CompletedSynchronously idiom: the callback returns at once when the operation
// completed synchronously, and the Begin caller finishes it.
// Compiled with -define:APMNET and -r:Apmnet.dll (BenchApm.exe), the same code runs on the apmnet .NET
// wrapper (bindings/dotnet) instead of System.Net: its Socket and NetworkStream replace .NET's.
#if APMNET
using Socket = Apmnet.Socket;
using NetworkStream = Apmnet.NetworkStream;
#endif
using System;
using System.Diagnostics;
using System.IO;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Threading;

static class Bench
{
    static void Result(double v, string unit) { Console.WriteLine("RESULT {0:R} {1}", v, unit); }
    static void Extra(string name, double v, string unit) { Console.WriteLine("EXTRA {0} {1:R} {2}", name, v, unit); }
    static void Cpu(double s) { Console.WriteLine("CPU {0:R}", s); }
    static double CpuNow() { return Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds; }
    static double Now() { return (double)Stopwatch.GetTimestamp() / Stopwatch.Frequency; }

    static Socket Connect(int port)
    {
        var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        s.Connect(new IPEndPoint(IPAddress.Loopback, port));
        return s;
    }

    static byte[] Header(long n)
    {
        var h = new byte[8];
        for (int i = 0; i < 8; i++) h[i] = (byte)(n >> (8 * i));
        return h;
    }

    // ------------------------------------------------------------ chained BeginWrite (network or ssl)
    sealed class Writer
    {
        public Stream Stream;
        public byte[] Buf;
        public long Left;
        public int Ops, Sync;
        public readonly ManualResetEvent Done = new ManualResetEvent(false);
        public Exception Error;

        public void Pump()
        {
            try
            {
                while (Left > 0)
                {
                    int n = (int)Math.Min(Left, Buf.Length);
                    Left -= n;
                    Ops++;
                    IAsyncResult ar = Stream.BeginWrite(Buf, 0, n, OnWrite, null);
                    if (!ar.CompletedSynchronously) return;
                    Sync++;
                    Stream.EndWrite(ar);
                }
            }
            catch (Exception e) { Error = e; }
            Done.Set();
        }

        void OnWrite(IAsyncResult ar)
        {
            if (ar.CompletedSynchronously) return;
            try { Stream.EndWrite(ar); }
            catch (Exception e) { Error = e; Done.Set(); return; }
            Pump();
        }
    }

    static void Bulk(Stream stream, long total, int bufSize, double t0, double c0)
    {
        var w = new Writer { Stream = stream, Buf = new byte[bufSize], Left = total };
        for (int i = 0; i < w.Buf.Length; i++) w.Buf[i] = (byte)'x';
        stream.Write(Header(total), 0, 8);
        w.Pump();
        w.Done.WaitOne();
        if (w.Error != null) throw w.Error;
        if (stream.ReadByte() < 0) throw new IOException("no ack");
        double t = Now() - t0;
        Result(total / t / 1e9, "GB/s");
        Cpu(CpuNow() - c0);
        Extra("sync_fraction", (double)w.Sync / w.Ops, "");
    }

    static void Write(int port, long mib, int buf)
    {
        var s = Connect(port);
        var ns = new NetworkStream(s, true);
        double c0 = CpuNow(), t0 = Now();
        Bulk(ns, mib << 20, buf, t0, c0);
    }

    static void Tls(int port, long mib, int buf)
    {
        var s = Connect(port);
        var ssl = new SslStream(new NetworkStream(s, true), false, delegate { return true; });
        ssl.AuthenticateAsClient("localhost", null, (SslProtocols)12288 /* Tls13 */, false);
        Console.Error.WriteLine("negotiated {0} {1} {2}", ssl.SslProtocol, ssl.CipherAlgorithm, ssl.CipherStrength);
        double c0 = CpuNow(), t0 = Now();
        Bulk(ssl, mib << 20, buf, t0, c0);
    }

    // ------------------------------------------------------------ handshakes
    // SslClientAuthenticationOptions is .NET's (Core 2.1); Mono's System.dll, which mcs compiles against,
    // does not forward it to .NET 8: reflection.
    static readonly Type ClientOptions = typeof(SslStream).Assembly.GetType("System.Net.Security.SslClientAuthenticationOptions", true);
    static readonly System.Reflection.MethodInfo AuthenticateWith = typeof(SslStream).GetMethod("AuthenticateAsClient", new[] { ClientOptions });

    static bool Hello(int port, object options)
    {
        var s = Connect(port);
        s.NoDelay = true;
        using (var ssl = new SslStream(new NetworkStream(s, true), false, delegate { return true; }))
        {
            AuthenticateWith.Invoke(ssl, new[] { options });
            int b = ssl.ReadByte(); // TLS 1.3: the ticket comes before the byte
            if (b < 0) throw new IOException("no byte from the server");
            return b == 'r';
        }
    }

    static void Handshakes(int port, double secs, string mode, string ver)
    {
        object options = Activator.CreateInstance(ClientOptions);
        ClientOptions.GetProperty("TargetHost").SetValue(options, "localhost", null);
        ClientOptions.GetProperty("EnabledSslProtocols").SetValue(options, (SslProtocols)(ver == "1.2" ? 3072 : 12288), null);
        ClientOptions.GetProperty("AllowTlsResume").SetValue(options, mode == "resumed", null);
        Hello(port, options); // warm-up (JIT), and the first session
        long n = 0, resumed = 0;
        double c0 = CpuNow(), t0 = Now(), t;
        do
        {
            if (Hello(port, options)) resumed++;
            n++;
        } while ((t = Now() - t0) < secs);
        Result(n / t, "hs/s");
        Cpu(CpuNow() - c0);
        Extra("resumed_fraction", (double)resumed / n, "");
    }

    static void SendFile(int port, string path)
    {
        long size = new FileInfo(path).Length;
        var s = Connect(port);
        var done = new ManualResetEvent(false);
        Exception err = null;
        double c0 = CpuNow(), t0 = Now();
        s.BeginSendFile(path, Header(size), null, TransmitFileOptions.UseDefaultWorkerThread,
                        delegate (IAsyncResult ar) {
                            try { s.EndSendFile(ar); } catch (Exception e) { err = e; }
                            done.Set();
                        }, null);
        done.WaitOne();
        if (err != null) throw err;
        var ack = new byte[1];
        if (s.Receive(ack) != 1) throw new IOException("no ack");
        double t = Now() - t0;
        Result(size / t / 1e9, "GB/s");
        Cpu(CpuNow() - c0);
    }

    // ------------------------------------------------------------ echo
    sealed class Conn
    {
        public Socket S;
        public byte[] Msg, In;
        public int Got;
        public bool Sending = true;
    }
    static long echoDone;
    static int echoSize;
    static volatile bool echoStop;

    static void Step(Conn c)
    {
        while (!echoStop)
        {
            IAsyncResult ar = c.Sending
                ? c.S.BeginSend(c.Msg, 0, echoSize, SocketFlags.None, OnEcho, c)
                : c.S.BeginReceive(c.In, c.Got, echoSize - c.Got, SocketFlags.None, OnEcho, c);
            if (!ar.CompletedSynchronously) return;
            Complete(c, ar);
        }
    }

    static void OnEcho(IAsyncResult ar)
    {
        if (ar.CompletedSynchronously) return;
        var c = (Conn)ar.AsyncState;
        Complete(c, ar);
        Step(c);
    }

    static void Complete(Conn c, IAsyncResult ar)
    {
        if (c.Sending)
        {
            c.S.EndSend(ar);
            c.Sending = false;
            return;
        }
        int n = c.S.EndReceive(ar);
        if (n <= 0) throw new IOException("echo server closed");
        c.Got += n;
        if (c.Got >= echoSize)
        {
            c.Got = 0;
            Interlocked.Increment(ref echoDone);
            c.Sending = true;
        }
    }

    static void Echo(int port, int conns, double secs, int size, double warm)
    {
        echoSize = size;
        var cs = new Conn[conns];
        for (int i = 0; i < conns; i++)
        {
            var s = Connect(port);
            s.NoDelay = true;
            cs[i] = new Conn { S = s, Msg = new byte[size], In = new byte[size] };
        }
        foreach (var c in cs) ThreadPool.QueueUserWorkItem(delegate { Step(c); });
        Rate(() => Interlocked.Read(ref echoDone), warm, secs);
        echoStop = true;
    }

    // Completions per second of the chains already running: `warm` seconds ignored, then `secs` counted.
    static void Rate(Func<long> done, double warm, double secs)
    {
        Thread.Sleep(TimeSpan.FromSeconds(warm));
        long d0 = done();
        double t0 = Now(), c0 = CpuNow();
        Thread.Sleep(TimeSpan.FromSeconds(secs));
        long d1 = done();
        double t1 = Now();
        Result((d1 - d0) / (t1 - t0), "req/s");
        Cpu(CpuNow() - c0);
    }

    // ------------------------------------------------------------ latency
    static long latT1, latN;
    static readonly AutoResetEvent latDone = new AutoResetEvent(false);
    static Socket latClient;

    static void OnLat(IAsyncResult ar)
    {
        long t1 = Stopwatch.GetTimestamp();
        latClient.EndReceive(ar);
        Interlocked.Exchange(ref latT1, t1);
        Interlocked.Increment(ref latN);
        latDone.Set();
    }

    static double Pct(long[] v, double p)
    {
        Array.Sort(v);
        int i = (int)(p / 100.0 * (v.Length - 1) + 0.5);
        return v[Math.Min(i, v.Length - 1)] * 1e6 / Stopwatch.Frequency;
    }

    static void Latency(int samples)
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        latClient = Connect(((IPEndPoint)l.LocalEndpoint).Port);
        var peer = l.AcceptSocket();
        peer.NoDelay = true;
        var buf = new byte[16];
        var one = new byte[] { 1 };
        var arr = new long[samples];
        var beg = new long[samples];
        for (int i = 0; i < samples; i++)
        {
            IAsyncResult ar = latClient.BeginReceive(buf, 0, 1, SocketFlags.None, OnLat, null);
            if (ar.CompletedSynchronously) throw new Exception("receive completed synchronously");
            Thread.Sleep(1);
            long t0 = Stopwatch.GetTimestamp();
            peer.Send(one);
            latDone.WaitOne();
            arr[i] = Interlocked.Read(ref latT1) - t0;
        }
        for (int i = 0; i < samples; i++)
        {
            Thread.Sleep(1);
            long tb = Stopwatch.GetTimestamp();
            latClient.BeginReceive(buf, 0, 1, SocketFlags.None, OnLat, null);
            peer.Send(one);
            latDone.WaitOne();
            beg[i] = Interlocked.Read(ref latT1) - tb;
        }
        // hot: the next byte 10 us after the last callback, the main thread never sleeping
        var hot = new long[samples];
        long gap = Stopwatch.Frequency / 100000, last = Stopwatch.GetTimestamp();
        for (int i = 0; i < samples; i++)
        {
            long n0 = Interlocked.Read(ref latN);
            latClient.BeginReceive(buf, 0, 1, SocketFlags.None, OnLat, null);
            while (Stopwatch.GetTimestamp() < last + gap) Thread.SpinWait(1);
            long t0 = Stopwatch.GetTimestamp();
            peer.Send(one);
            while (Interlocked.Read(ref latN) == n0) Thread.SpinWait(1);
            last = Stopwatch.GetTimestamp();
            hot[i] = Interlocked.Read(ref latT1) - t0;
        }
        Result(Pct(arr, 50), "us");
        Extra("p99", Pct(arr, 99), "us");
        Extra("begin_p50", Pct(beg, 50), "us");
        Extra("begin_p99", Pct(beg, 99), "us");
        Extra("hot_p50", Pct(hot, 50), "us");
        Extra("hot_p99", Pct(hot, 99), "us");
    }

    // ------------------------------------------------------------ memory
    static long Rss()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        string[] f = File.ReadAllText("/proc/self/statm").Split(' ');
        return long.Parse(f[1]) * 4096;
    }

    static void Memory(int port, int conns)
    {
        var keep = new object[2 * conns + 2];
        var warm = Connect(port);
        warm.LingerState = new LingerOption(true, 0);
        var wns = new NetworkStream(warm, true);
        var buf = new byte[1];
        wns.BeginRead(buf, 0, 1, null, null);
        keep[2 * conns] = wns;
        long r0 = Rss();
        var streams = new NetworkStream[conns];
        for (int i = 0; i < conns; i++)
        {
            var s = Connect(port);
            s.LingerState = new LingerOption(true, 0);
            streams[i] = new NetworkStream(s, true);
        }
        long r1 = Rss();
        for (int i = 0; i < conns; i++) keep[i] = streams[i].BeginRead(buf, 0, 1, null, null);
        long r2 = Rss();
        Result((double)(r1 - r0) / conns, "B/conn");
        Extra("pending", (double)(r2 - r1) / conns, "B/op");
        GC.KeepAlive(keep);
    }

    // ------------------------------------------------------------ NegotiateStream
    static NegotiateStream NegoConnect(int port, NetworkCredential cred)
    {
        var s = Connect(port);
        s.NoDelay = true;
        var ns = new NegotiateStream(new NetworkStream(s, true), false);
        ns.AuthenticateAsClient(cred, "host/localhost", ProtectionLevel.EncryptAndSign,
                                System.Security.Principal.TokenImpersonationLevel.Identification);
        return ns;
    }

    static void Nego(int port, long mib, int buf, string user, string pw, string domain)
    {
        var ns = NegoConnect(port, new NetworkCredential(user, pw, domain));
        Console.Error.WriteLine("authenticated with {0}, encrypted {1}", ns.RemoteIdentity.AuthenticationType, ns.IsEncrypted);
        Extra("kerberos", ns.RemoteIdentity.AuthenticationType == "Kerberos" ? 1 : 0, "");
        double c0 = CpuNow(), t0 = Now();
        Bulk(ns, mib << 20, buf, t0, c0);
    }

    static void NegoOnce(int port, NetworkCredential cred)
    {
        using (var ns = NegoConnect(port, cred))
        {
            var m = new byte[9];
            Header(1).CopyTo(m, 0);
            m[8] = (byte)'b';
            ns.Write(m, 0, m.Length);
            if (ns.ReadByte() < 0) throw new IOException("no ack");
        }
    }

    static void NegoHandshakes(int port, double secs, string user, string pw, string domain)
    {
        var cred = new NetworkCredential(user, pw, domain);
        using (var first = NegoConnect(port, cred)) // warm-up (JIT), and which package Negotiate picks
        {
            Console.Error.WriteLine("authenticated with {0}", first.RemoteIdentity.AuthenticationType);
            Extra("kerberos", first.RemoteIdentity.AuthenticationType == "Kerberos" ? 1 : 0, "");
        }
        long n = 0;
        double c0 = CpuNow(), t0 = Now(), t;
        do
        {
            NegoOnce(port, cred);
            n++;
        } while ((t = Now() - t0) < secs);
        Result(n / t, "auth/s");
        Cpu(CpuNow() - c0);
    }

    // ------------------------------------------------------------ HttpWebRequest
    sealed class Getter
    {
        public string Url;
        public HttpWebRequest Req;
        public WebResponse Resp;
        public Stream Body;
        public int State; // 0: start a request, 1: response pending, 2: reading the body
        public readonly byte[] Buf = new byte[16 * 1024];
        // BENCH_HTTP_USER, _PASSWORD, _DOMAIN: the requests' Credentials (NTLM against apm ntlmserver).
        static readonly NetworkCredential Credential = Environment.GetEnvironmentVariable("BENCH_HTTP_USER") == null ? null
            : new NetworkCredential(Environment.GetEnvironmentVariable("BENCH_HTTP_USER"),
                Environment.GetEnvironmentVariable("BENCH_HTTP_PASSWORD"), Environment.GetEnvironmentVariable("BENCH_HTTP_DOMAIN"));

        public void Pump()
        {
            while (!httpStop)
            {
                IAsyncResult ar;
                if (State == 0)
                {
                    Req = (HttpWebRequest)WebRequest.Create(Url);
                    if (Credential != null) Req.Credentials = Credential;
                    State = 1;
                    ar = Req.BeginGetResponse(OnDone, this);
                }
                else ar = Body.BeginRead(Buf, 0, Buf.Length, OnDone, this);
                if (!ar.CompletedSynchronously) return;
                Complete(ar);
            }
        }

        void Complete(IAsyncResult ar)
        {
            if (State == 1)
            {
                Resp = Req.EndGetResponse(ar);
                Body = Resp.GetResponseStream();
                State = 2;
                return;
            }
            if (Body.EndRead(ar) > 0) return;
            Body.Close();
            Resp.Close();
            State = 0;
            Interlocked.Increment(ref httpDone);
        }

        static void OnDone(IAsyncResult ar)
        {
            if (ar.CompletedSynchronously) return;
            var g = (Getter)ar.AsyncState;
            try { g.Complete(ar); }
            catch (Exception e) { Console.Error.WriteLine(e); Environment.Exit(1); }
            g.Pump();
        }
    }
    static long httpDone;
    static volatile bool httpStop;

    static void HttpGet(string url, int conns, double secs, double warm)
    {
        ServicePointManager.DefaultConnectionLimit = Math.Max(conns, 2);
        var gs = new Getter[conns];
        for (int i = 0; i < conns; i++) gs[i] = new Getter { Url = url };
        foreach (var g in gs) ThreadPool.QueueUserWorkItem(delegate { g.Pump(); });
        Rate(() => Interlocked.Read(ref httpDone), warm, secs);
        httpStop = true;
    }

    static void HttpPost(string url, long mib, int buf)
    {
        long total = mib << 20;
        double c0 = CpuNow(), t0 = Now();
        var req = (HttpWebRequest)WebRequest.Create(url);
        req.Method = "POST";
        req.ContentType = "application/octet-stream";
        req.ContentLength = total;
        req.AllowWriteStreamBuffering = false;
        var w = new Writer { Stream = req.GetRequestStream(), Buf = new byte[buf], Left = total };
        for (int i = 0; i < w.Buf.Length; i++) w.Buf[i] = (byte)'p';
        w.Pump();
        w.Done.WaitOne();
        if (w.Error != null) throw w.Error;
        w.Stream.Close();
        using (var resp = (HttpWebResponse)req.GetResponse())
        using (var body = resp.GetResponseStream())
        {
            if ((int)resp.StatusCode != 200) throw new IOException("status " + resp.StatusCode);
            var tmp = new byte[256];
            while (body.Read(tmp, 0, tmp.Length) > 0) { }
        }
        double t = Now() - t0;
        Result(total / t / 1e9, "GB/s");
        Cpu(CpuNow() - c0);
        Extra("sync_fraction", (double)w.Sync / w.Ops, "");
        Extra("peak_rss", Process.GetCurrentProcess().PeakWorkingSet64 / 1048576.0, "MiB");
    }

    static int Main(string[] a)
    {
        string m = a.Length > 0 ? a[0] : "";
        if (m == "write" && a.Length == 4) Write(int.Parse(a[1]), long.Parse(a[2]), int.Parse(a[3]));
        else if (m == "tls" && a.Length == 4) Tls(int.Parse(a[1]), long.Parse(a[2]), int.Parse(a[3]));
        else if (m == "sendfile" && a.Length == 3) SendFile(int.Parse(a[1]), a[2]);
        else if (m == "handshake" && a.Length == 5) Handshakes(int.Parse(a[1]), double.Parse(a[2]), a[3], a[4]);
        else if (m == "echo" && a.Length == 6)
            Echo(int.Parse(a[1]), int.Parse(a[2]), double.Parse(a[3]), int.Parse(a[4]), double.Parse(a[5]));
        else if (m == "latency" && a.Length == 2) Latency(int.Parse(a[1]));
        else if (m == "memory" && a.Length == 3) Memory(int.Parse(a[1]), int.Parse(a[2]));
        else if (m == "nego" && a.Length == 7) Nego(int.Parse(a[1]), long.Parse(a[2]), int.Parse(a[3]), a[4], a[5], a[6]);
        else if (m == "negohs" && a.Length == 6) NegoHandshakes(int.Parse(a[1]), double.Parse(a[2]), a[3], a[4], a[5]);
        else if (m == "httpget" && a.Length == 5)
            HttpGet(a[1], int.Parse(a[2]), double.Parse(a[3]), double.Parse(a[4]));
        else if (m == "httppost" && a.Length == 4) HttpPost(a[1], long.Parse(a[2]), int.Parse(a[3]));
        else { Console.Error.WriteLine("usage: see the comment at the top of Bench.cs"); return 2; }
        Console.Out.Flush();
        Environment.Exit(0);
        return 0;
    }
}
