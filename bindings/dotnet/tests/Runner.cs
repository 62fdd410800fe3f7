// A small test runner: every static method of Tests marked [Test] runs on its own thread with a hang
// guard; "Tests.exe name..." runs the tests whose names contain one of the arguments.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Net;
using System.Net.Sockets;
using System.Reflection;
using System.Security.Cryptography;
using System.Threading;
using System.Threading.Tasks;

namespace Apmnet.Tests
{
    [AttributeUsage(AttributeTargets.Method)]
    sealed class TestAttribute : Attribute { }

    sealed class AssertionException : Exception
    {
        public AssertionException(string message) : base(message) { }
    }

    static class Assert
    {
        public static void True(bool condition, string what)
        {
            if (!condition) throw new AssertionException("expected: " + what);
        }

        public static void False(bool condition, string what) { True(!condition, "not " + what); }

        public static void Equal<T>(T expected, T actual, string what)
        {
            if (!EqualityComparer<T>.Default.Equals(expected, actual))
                throw new AssertionException(what + ": expected <" + expected + ">, got <" + actual + ">");
        }

        public static T Throws<T>(Action action, string what) where T : Exception
        {
            try
            {
                action();
            }
            catch (Exception error)
            {
                T expected = error as T;
                if (expected != null) return expected;
                throw new AssertionException(what + ": expected " + typeof(T).Name + ", got " + error.GetType().Name + ": " + error.Message);
            }
            throw new AssertionException(what + ": expected " + typeof(T).Name + ", nothing was thrown");
        }
    }

    /// <summary>An AsyncCallback (<see cref="Callback"/>) that runs the operation's End and keeps what it
    /// threw.</summary>
    sealed class EndInCallback
    {
        readonly Action<IAsyncResult> end;
        readonly ManualResetEvent called = new ManualResetEvent(false);
        Exception error;

        public EndInCallback(Action<IAsyncResult> end) { this.end = end; }

        public void Callback(IAsyncResult result)
        {
            try { end(result); }
            catch (Exception e) { error = e; }
            called.Set();
        }

        /// <summary>Whether the callback has run (without waiting).</summary>
        public bool Called { get { return called.WaitOne(0); } }

        /// <summary>Waits for the callback (asserting that it ran); End's exception, or null.</summary>
        public Exception Error()
        {
            Assert.True(called.WaitOne(Program.HangGuard), "the callback ran");
            return error;
        }
    }

    /// <summary>The other end of a test, written with .NET's own System.Net.Sockets: a TcpListener on
    /// 127.0.0.1 that runs <c>handler</c> for one connection on a background thread.</summary>
    sealed class DotnetPeer : IDisposable
    {
        readonly TcpListener listener = new TcpListener(IPAddress.Loopback, 0);
        readonly ManualResetEvent done = new ManualResetEvent(false);
        object result;
        Exception error;

        public DotnetPeer(Func<TcpClient, object> handler)
        {
            listener.Start();
            Port = ((IPEndPoint)listener.LocalEndpoint).Port;
            Thread thread = new Thread(delegate ()
            {
                try
                {
                    using (TcpClient client = listener.AcceptTcpClient()) result = handler(client);
                }
                catch (Exception e)
                {
                    error = e;
                }
                finally
                {
                    done.Set();
                }
            });
            thread.IsBackground = true;
            thread.Start();
        }

        public int Port { get; private set; }

        public object Result()
        {
            if (!done.WaitOne(Program.HangGuard)) throw new TimeoutException("the .NET peer never finished");
            if (error != null) throw new Exception("the .NET peer failed: " + error.Message, error);
            return result;
        }

        public void Dispose() { listener.Stop(); }

        public static object Echo(TcpClient client)
        {
            System.Net.Sockets.NetworkStream stream = client.GetStream();
            byte[] buffer = new byte[65536];
            long total = 0;
            int n;
            while ((n = stream.Read(buffer, 0, buffer.Length)) > 0)
            {
                stream.Write(buffer, 0, n);
                total += n;
            }
            return total;
        }

        /// <summary>Reads to the end; returns "length:sha256".</summary>
        public static object Sink(TcpClient client)
        {
            using (SHA256 sha = SHA256.Create())
            using (CountingStream counted = new CountingStream(client.GetStream()))
            {
                string hash = Hex(sha.ComputeHash(counted));
                return counted.Length + ":" + hash;
            }
        }

        public static string Digest(params byte[][] parts)
        {
            using (SHA256 sha = SHA256.Create())
            {
                long length = 0;
                foreach (byte[] part in parts)
                {
                    sha.TransformBlock(part, 0, part.Length, null, 0);
                    length += part.Length;
                }
                sha.TransformFinalBlock(new byte[0], 0, 0);
                return length + ":" + Hex(sha.Hash);
            }
        }

        static string Hex(byte[] bytes) { return BitConverter.ToString(bytes).Replace("-", "").ToLowerInvariant(); }

        sealed class CountingStream : Stream
        {
            readonly Stream inner;
            long count;
            public CountingStream(Stream inner) { this.inner = inner; }
            public override bool CanRead { get { return true; } }
            public override bool CanSeek { get { return false; } }
            public override bool CanWrite { get { return false; } }
            public override long Length { get { return count; } }
            public override long Position { get { return count; } set { throw new NotSupportedException(); } }
            public override void Flush() { }
            public override int Read(byte[] buffer, int offset, int size) { int n = inner.Read(buffer, offset, size); count += n; return n; }
            public override long Seek(long offset, SeekOrigin origin) { throw new NotSupportedException(); }
            public override void SetLength(long value) { throw new NotSupportedException(); }
            public override void Write(byte[] buffer, int offset, int size) { throw new NotSupportedException(); }
        }
    }

    /// <summary>This test program run again in a child process (on the same runtime), for what only a
    /// process of its own shows: the exit, an engine thread count.</summary>
    static class Child
    {
        /// <summary>Runs "Tests.exe <paramref name="arguments"/>" with <paramref name="environment"/> added;
        /// asserts that it exits 0 within the hang guard (else kills it and fails with
        /// <paramref name="hung"/> and what it printed); returns its standard output.</summary>
        public static string Run(string arguments, IDictionary<string, string> environment, string hung)
        {
            string dotnet = Environment.GetEnvironmentVariable("APMNET_DOTNET");
            if (string.IsNullOrEmpty(dotnet)) dotnet = Process.GetCurrentProcess().MainModule.FileName;
            string config = Environment.GetEnvironmentVariable("APMNET_DOTNET_CONFIG");
            Assert.True(!string.IsNullOrEmpty(config), "APMNET_DOTNET_CONFIG is set (eval \"$(bash bindings/dotnet/dotnet.sh CACHE)\")");
            string exe = typeof(Program).Assembly.Location;
            ProcessStartInfo start = new ProcessStartInfo(dotnet,
                "exec --runtimeconfig \"" + config + "\" \"" + exe + "\" " + arguments);
            start.UseShellExecute = false;
            start.RedirectStandardOutput = true;
            start.RedirectStandardError = true;
            if (environment != null)
                foreach (KeyValuePair<string, string> variable in environment) start.EnvironmentVariables[variable.Key] = variable.Value;
            using (Process child = Process.Start(start))
            {
                Task<string> stdout = child.StandardOutput.ReadToEndAsync();
                Task<string> stderr = child.StandardError.ReadToEndAsync();
                if (!child.WaitForExit(Program.HangGuard))
                {
                    child.Kill();
                    child.WaitForExit();
                    throw new AssertionException(hung + " (it printed: " + stdout.Result + ")");
                }
                child.WaitForExit();
                Assert.Equal(0, child.ExitCode, "exit code (stdout: " + stdout.Result + "; stderr: " + stderr.Result + ")");
                return stdout.Result;
            }
        }
    }

    static class Program
    {
        /// <summary>Upper bound of every wait: turns a hang into a failure; nothing is timed.</summary>
        public const int HangGuard = 120000;

        static int Main(string[] args)
        {
            if (args.Length > 0 && args[0] == PendingChild.Argument) return PendingChild.Run();
            if (args.Length > 1 && args[0] == StallChild.Argument) return StallChild.Run(args[1]);

            List<MethodInfo> tests = new List<MethodInfo>();
            foreach (MethodInfo method in typeof(Tests).GetMethods(BindingFlags.Public | BindingFlags.Static))
            {
                if (method.GetCustomAttributes(typeof(TestAttribute), false).Length == 0) continue;
                bool selected = args.Length == 0;
                foreach (string name in args) selected |= method.Name.Contains(name);
                if (selected) tests.Add(method);
            }
            tests.Sort((a, b) => a.MetadataToken.CompareTo(b.MetadataToken));

            Console.WriteLine("libapmnet " + ApmRuntime.VersionText + ", .NET " + Environment.Version);
            int failed = 0, number = 0;
            foreach (MethodInfo test in tests)
            {
                number++;
                Exception error = null;
                MethodInfo current = test;
                Thread thread = new Thread(delegate ()
                {
                    try { current.Invoke(null, null); }
                    catch (TargetInvocationException e) { error = e.InnerException; }
                    catch (Exception e) { error = e; }
                });
                thread.IsBackground = true;
                thread.Start();
                if (!thread.Join(HangGuard))
                {
                    Console.WriteLine("not ok " + number + " " + test.Name + " (hung; giving up)");
                    Console.Out.Flush();
                    return 2;
                }
                if (error == null)
                {
                    Console.WriteLine("ok " + number + " " + test.Name);
                }
                else
                {
                    failed++;
                    Console.WriteLine("not ok " + number + " " + test.Name);
                    Console.WriteLine("  " + error.ToString().Replace("\n", "\n  "));
                }
            }
            Console.WriteLine((number - failed) + "/" + number + " passed");
            return failed == 0 ? 0 : 1;
        }
    }
}
