// Apmnet.HttpWebRequest against .NET 8's HttpListener, and the request head on the wire beside .NET 8's own
// System.Net.HttpWebRequest.
using System;
using System.Diagnostics;
using System.IO;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Threading;
using ApmRequest = Apmnet.HttpWebRequest;

namespace Apmnet.Tests
{
    static partial class Tests
    {
        /// <summary>An HttpListener on 127.0.0.1 answering "METHOD length sha256" (404 for /missing).</summary>
        sealed class Listener : IDisposable
        {
            readonly HttpListener listener = new HttpListener();
            readonly Thread thread;
            public readonly string Prefix;

            public Listener()
            {
                int port = FreePort();
                Prefix = "http://127.0.0.1:" + port + "/";
                listener.Prefixes.Add(Prefix);
                listener.Start();
                thread = new Thread(Serve) { IsBackground = true };
                thread.Start();
            }

            static int FreePort()
            {
                TcpListener l = new TcpListener(IPAddress.Loopback, 0);
                l.Start();
                int port = ((IPEndPoint)l.LocalEndpoint).Port;
                l.Stop();
                return port;
            }

            void Serve()
            {
                while (true)
                {
                    HttpListenerContext c;
                    try { c = listener.GetContext(); }
                    catch (Exception) { return; }  // closed
                    try
                    {
                        byte[] body;
                        using (MemoryStream m = new MemoryStream()) { c.Request.InputStream.CopyTo(m); body = m.ToArray(); }
                        string text;
                        using (SHA256 sha = SHA256.Create())
                            text = c.Request.HttpMethod + " " + body.Length + " " + BitConverter.ToString(sha.ComputeHash(body)).Replace("-", "").ToLowerInvariant();
                        c.Response.StatusCode = c.Request.Url.AbsolutePath == "/missing" ? 404 : 200;
                        byte[] answer = Encoding.UTF8.GetBytes(text);
                        c.Response.ContentLength64 = answer.Length;
                        c.Response.OutputStream.Write(answer, 0, answer.Length);
                        c.Response.Close();
                    }
                    catch (Exception) { }  // a client that hung up mid-request
                }
            }

            public void Dispose() { listener.Close(); }
        }

        static string ReadAll(WebResponse response)
        {
            using (StreamReader reader = new StreamReader(response.GetResponseStream())) return reader.ReadToEnd();
        }

        [Test]
        public static void HttpWebRequestPostsToADotnetHttpListener()
        {
            using (Listener server = new Listener())
            {
                byte[] data = new byte[300000];
                new Random(7).NextBytes(data);
                string sha;
                using (SHA256 h = SHA256.Create()) sha = BitConverter.ToString(h.ComputeHash(data)).Replace("-", "").ToLowerInvariant();
                foreach (string mode in new[] { "length", "chunked", "buffered" })
                {
                    ApmRequest request = ApmRequest.Create(server.Prefix + "upload");
                    request.Method = "POST";
                    request.ContentType = "application/octet-stream";
                    if (mode == "length") request.ContentLength = data.Length;
                    if (mode == "chunked") request.SendChunked = true;
                    IAsyncResult begun = request.BeginGetRequestStream(null, null);
                    TransportContext context;
                    using (Stream stream = request.EndGetRequestStream(begun, out context))
                    {
                        Assert.True(context != null, "a TransportContext");
                        Assert.True(context.GetChannelBinding(System.Security.Authentication.ExtendedProtection.ChannelBindingKind.Unique) == null, "http has no channel binding");
                        stream.Write(data, 0, data.Length);
                    }
                    using (WebResponse response = request.EndGetResponse(request.BeginGetResponse(null, null)))
                        Assert.Equal("POST " + data.Length + " " + sha, ReadAll(response), mode);
                }
            }
        }

        /// <summary>.NET 8's HttpListener asking for Basic: the credential's Domain goes as DOMAIN\user (as
        /// .NET sends it), UseDefaultCredentials and PreAuthenticate are the library's.</summary>
        [Test]
        public static void HttpWebRequestCredentialsAgainstAnAuthenticatingHttpListener()
        {
            HttpListener listener = new HttpListener();
            int port;
            {
                TcpListener l = new TcpListener(IPAddress.Loopback, 0);
                l.Start();
                port = ((IPEndPoint)l.LocalEndpoint).Port;
                l.Stop();
            }
            string prefix = "http://127.0.0.1:" + port + "/";
            listener.Prefixes.Add(prefix);
            int requests = 0;
            // Asked for every request, the ones HttpListener answers 401 itself included.
            listener.AuthenticationSchemeSelectorDelegate = r => { Interlocked.Increment(ref requests); return AuthenticationSchemes.Basic; };
            listener.Start();
            Thread serve = new Thread(() =>
            {
                while (true)
                {
                    HttpListenerContext c;
                    try { c = listener.GetContext(); }
                    catch (Exception) { return; }
                    HttpListenerBasicIdentity who = (HttpListenerBasicIdentity)c.User.Identity;
                    byte[] answer = Encoding.UTF8.GetBytes(who.Name + ":" + who.Password);
                    c.Response.ContentLength64 = answer.Length;
                    c.Response.OutputStream.Write(answer, 0, answer.Length);
                    c.Response.Close();
                }
            }) { IsBackground = true };
            serve.Start();
            try
            {
                ApmRequest request = ApmRequest.Create(prefix + "dir/a");
                request.Proxy = null;
                Assert.False(request.UseDefaultCredentials, "UseDefaultCredentials by default");
                request.UseDefaultCredentials = true;
                Assert.True(request.UseDefaultCredentials, "UseDefaultCredentials set");
                Assert.True(ReferenceEquals(request.Credentials, CredentialCache.DefaultCredentials), "Credentials: the default");
                request.Credentials = new NetworkCredential("alice", "Passw0rd!", "TESTDOM");
                Assert.False(request.UseDefaultCredentials, "a NetworkCredential is not the default");
                request.PreAuthenticate = true;
                Assert.True(request.PreAuthenticate, "PreAuthenticate set");
                using (WebResponse response = request.GetResponse())
                    Assert.Equal("TESTDOM\\alice:Passw0rd!", ReadAll(response), "Basic names the domain");
                Assert.Equal(2, requests, "the 401, then the credentials");
                // Up front under the same prefix, with PreAuthenticate.
                request = ApmRequest.Create(prefix + "dir/b");
                request.Proxy = null;
                request.Credentials = new NetworkCredential("alice", "Passw0rd!", "TESTDOM");
                request.PreAuthenticate = true;
                using (WebResponse response = request.GetResponse()) ReadAll(response);
                Assert.Equal(3, requests, "PreAuthenticate: no 401 first");
            }
            finally { listener.Close(); }
        }

        [Test]
        public static void HttpWebRequestFollowsDotnetsRules()
        {
            using (Listener server = new Listener())
            {
                ApmRequest request = ApmRequest.Create(server.Prefix + "x");
                request.Method = "PUT";
                request.ContentLength = 3;
                Stream stream = request.GetRequestStream();
                Assert.Throws<ProtocolViolationException>(() => stream.Write(new byte[4], 0, 4), "a write past ContentLength");
                InvalidOperationException late = Assert.Throws<InvalidOperationException>(() => request.ContentLength = 9, "ContentLength after the stream");
                Assert.Equal("This property cannot be set after writing has started.", late.Message, "message");
                stream.Write(new byte[2], 0, 2);
                IOException early = Assert.Throws<IOException>(() => stream.Close(), "close with bytes owed");
                Assert.Equal("Cannot close stream until all bytes are written.", early.Message, "message");
                WebException canceled = Assert.Throws<WebException>(() => request.GetResponse(), "after the early close");
                Assert.Equal(WebExceptionStatus.RequestCanceled, canceled.Status, "status");

                ApmRequest get = ApmRequest.Create(server.Prefix + "x");
                Assert.Throws<ProtocolViolationException>(() => get.GetRequestStream(), "GET has no body");

                ApmRequest missing = ApmRequest.Create(server.Prefix + "missing");
                WebException error = Assert.Throws<WebException>(() => missing.GetResponse(), "404");
                Assert.Equal(WebExceptionStatus.ProtocolError, error.Status, "status");
                Assert.Equal("The remote server returned an error: (404) Not Found.", error.Message, "message");
                Assert.True(error.Response != null, "the response is attached");
                Assert.Equal(HttpStatusCode.NotFound, ((Apmnet.HttpWebResponse)error.Response).StatusCode, "its status");
                Assert.Equal("GET 0 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", ReadAll(error.Response), "its body");
                error.Response.Close();
            }
        }

        /// <summary>The raw head a client sends to a TcpListener that answers 200 with no body.</summary>
        static string HeadSentBy(Action<string> client)
        {
            TcpListener l = new TcpListener(IPAddress.Loopback, 0);
            l.Start();
            string url = "http://127.0.0.1:" + ((IPEndPoint)l.LocalEndpoint).Port + "/upload?x=1";
            string head = null;
            Thread server = new Thread(() =>
            {
                using (TcpClient c = l.AcceptTcpClient())
                using (System.Net.Sockets.NetworkStream s = c.GetStream())
                {
                    StringBuilder text = new StringBuilder();
                    while (!text.ToString().Contains("\r\n\r\n"))
                    {
                        int b = s.ReadByte();
                        if (b < 0) break;
                        text.Append((char)b);
                    }
                    for (int i = 0; i < 5; i++) s.ReadByte();  // the body, "hello"
                    head = text.ToString();
                    byte[] answer = Encoding.ASCII.GetBytes("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
                    s.Write(answer, 0, answer.Length);
                }
            });
            server.Start();
            client(url);
            server.Join();
            l.Stop();
            return head;
        }

        static void Post(WebRequest request)
        {
            request.Method = "POST";
            request.ContentType = "text/plain";
            request.ContentLength = 5;
            using (Stream s = request.GetRequestStream()) s.Write(Encoding.ASCII.GetBytes("hello"), 0, 5);
            request.GetResponse().Close();
        }

        /// <summary>ffi-tests/peers/http_proxy_peer.py (a forwarding proxy that records the request lines it
        /// saw), found above the test binary's folder.</summary>
        sealed class ProxyPeer : IDisposable
        {
            readonly Process process;
            public readonly string Uri;

            public ProxyPeer(params string[] arguments)
            {
                string script = null;
                for (DirectoryInfo folder = new DirectoryInfo(AppDomain.CurrentDomain.BaseDirectory); folder != null && script == null; folder = folder.Parent)
                {
                    string candidate = System.IO.Path.Combine(folder.FullName, "ffi-tests", "peers", "http_proxy_peer.py");
                    if (File.Exists(candidate)) script = candidate;
                }
                Assert.True(script != null, "ffi-tests/peers/http_proxy_peer.py is above " + AppDomain.CurrentDomain.BaseDirectory);
                ProcessStartInfo start = new ProcessStartInfo("python3", "\"" + script + "\" " + string.Join(" ", arguments));
                start.UseShellExecute = false;
                start.RedirectStandardOutput = true;
                process = Process.Start(start);
                Uri = "http://127.0.0.1:" + process.StandardOutput.ReadLine().Split(' ')[1];  // "PORT n"
            }

            /// <summary>The request lines the proxy saw, each with " auth=yes|no" and a newline.</summary>
            public string Lines()
            {
                ApmRequest request = ApmRequest.Create(Uri + "/lines");
                request.Proxy = null;
                using (WebResponse response = request.GetResponse()) return ReadAll(response);
            }

            public void Dispose()
            {
                try { process.Kill(); }
                catch (InvalidOperationException) { }  // it had exited
                process.WaitForExit();
                process.Dispose();
            }
        }

        [Test]
        public static void HttpWebRequestGoesThroughAWebProxy()
        {
            using (Listener server = new Listener())
            {
                using (ProxyPeer proxy = new ProxyPeer())
                {
                    ApmRequest request = ApmRequest.Create(server.Prefix + "through");
                    Assert.True(ReferenceEquals(request.Proxy, WebRequest.DefaultWebProxy), "the default proxy");
                    request.Proxy = new WebProxy(proxy.Uri);
                    request.Method = "PUT";
                    request.ContentLength = 5;
                    using (Stream s = request.GetRequestStream()) s.Write(Encoding.ASCII.GetBytes("hello"), 0, 5);
                    using (WebResponse response = request.GetResponse())
                        Assert.Equal("PUT 5 2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824", ReadAll(response), "the body went through");
                    ApmRequest direct = ApmRequest.Create(server.Prefix + "direct");
                    direct.Proxy = null;
                    direct.GetResponse().Close();
                    string lines = proxy.Lines();
                    Assert.True(lines.Contains("PUT " + server.Prefix + "through HTTP/1.1 auth=no\n"), "absolute form: " + lines);
                    Assert.True(!lines.Contains("direct"), "Proxy = null goes direct: " + lines);
                }
                using (ProxyPeer proxy = new ProxyPeer("--auth", "user:pass"))
                {
                    ApmRequest refused = ApmRequest.Create(server.Prefix + "x");
                    refused.Proxy = new WebProxy(proxy.Uri);
                    WebException error = Assert.Throws<WebException>(() => refused.GetResponse(), "407");
                    Assert.Equal(WebExceptionStatus.ProtocolError, error.Status, "status");
                    Assert.Equal((HttpStatusCode)407, ((Apmnet.HttpWebResponse)error.Response).StatusCode, "the proxy's answer");
                    error.Response.Close();
                    ApmRequest allowed = ApmRequest.Create(server.Prefix + "x");
                    allowed.Proxy = new WebProxy(proxy.Uri) { Credentials = new NetworkCredential("user", "pass") };
                    using (WebResponse response = allowed.GetResponse())
                        Assert.True(ReadAll(response).StartsWith("GET 0 "), "with credentials");
                    Assert.True(proxy.Lines().Contains("GET " + server.Prefix + "x HTTP/1.1 auth=yes\n"), "Proxy-Authorization sent");
                }
            }
        }

        [Test]
        public static void TheRequestHeadBesideDotnet8s()
        {
            string ours = HeadSentBy(url => Post(ApmRequest.Create(url)));
            string dotnet = HeadSentBy(url => Post(WebRequest.Create(url)));
            Console.WriteLine("apmnet's head:\n" + ours.Replace("\r\n", "\\r\\n\n") + ".NET's head:\n" + dotnet.Replace("\r\n", "\\r\\n\n"));
            Assert.True(ours.StartsWith("POST /upload?x=1 HTTP/1.1\r\nContent-Type: text/plain\r\nHost: 127.0.0.1:"), "ours: " + ours);
            Assert.True(ours.Contains("\r\nContent-Length: 5\r\n") && dotnet.Contains("\r\nContent-Length: 5\r\n"), "both send the length");
            Assert.True(dotnet.StartsWith("POST /upload?x=1 HTTP/1.1\r\n"), ".NET's: " + dotnet);
        }
    }
}
