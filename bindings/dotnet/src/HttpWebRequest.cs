// Apmnet.HttpWebRequest and Apmnet.HttpWebResponse: System.Net.WebRequest/WebResponse subclasses shaped
// like System.Net.HttpWebRequest, with the .NET Framework 4 contract: the request stream enforces
// ContentLength, EndGetRequestStream(asyncResult, out TransportContext) hands out the connection's
// channel bindings, failures are WebExceptions with the Framework's WebExceptionStatus.
using System;
using System.IO;
using System.Net;
using System.Net.Security;
using System.Runtime.InteropServices;
using System.Threading;
using Apmnet.Interop;

namespace Apmnet
{
    /// <summary>HttpWebRequest over libapmnet. Headers set through <see cref="Headers"/> are handed to the
    /// library when the request is submitted (GetRequestStream or GetResponse), where .NET's rules are
    /// applied (a restricted header there throws ArgumentException then); the properties are checked at
    /// once.</summary>
    public sealed class HttpWebRequest : WebRequest
    {
        static readonly ApmValidationCallback ValidationThunk = OnValidate;
        readonly HttpRequestHandle safeHandle;
        readonly IntPtr handle;
        readonly Uri requestUri;
        readonly WebHeaderCollection headers = new WebHeaderCollection();
        RemoteCertificateValidationCallback validation;
        GCHandle self;
        ICredentials credentials;
        IWebProxy proxy;
        bool proxySet;
        bool headersSent;

        public HttpWebRequest(Uri requestUri)
        {
            if (requestUri == null) throw new ArgumentNullException("requestUri");
            Library.EnsureInitialized();
            this.requestUri = requestUri;
            ApmError.Check(NativeMethods.apm_http_request_create(Marshaling.Utf8(requestUri.AbsoluteUri), out safeHandle));
            handle = safeHandle.DangerousGetHandle();
        }

        /// <summary>WebRequest.Create for an http or https URI.</summary>
        public static new HttpWebRequest Create(string requestUriString)
        {
            if (requestUriString == null) throw new ArgumentNullException("requestUriString");
            return new HttpWebRequest(new Uri(requestUriString));
        }

        void Set(int status) { ApmError.Check(status); }
        int Get(Int32Getter getter) { return Marshaling.GetInt32(handle, getter); }

        string Text(CopyOut copy) { return Marshaling.CopyText(copy); }

        public override Uri RequestUri { get { return requestUri; } }
        public Uri Address { get { return new Uri(Text((byte[] b, UIntPtr n, out UIntPtr full) => NativeMethods.apm_http_request_get_address(handle, b, n, out full))); } }

        public override string Method
        {
            get { return Text((byte[] b, UIntPtr n, out UIntPtr full) => NativeMethods.apm_http_request_get_method(handle, b, n, out full)); }
            set { Set(NativeMethods.apm_http_request_set_method(handle, Marshaling.Utf8(value ?? ""))); }
        }

        public override long ContentLength
        {
            get { long v; ApmError.Check(NativeMethods.apm_http_request_get_content_length(handle, out v)); return v; }
            set { Set(NativeMethods.apm_http_request_set_content_length(handle, value)); }
        }

        public bool SendChunked
        {
            get { return Get(NativeMethods.apm_http_request_get_send_chunked) != 0; }
            set { Set(NativeMethods.apm_http_request_set_send_chunked(handle, value ? 1 : 0)); }
        }

        public bool KeepAlive
        {
            get { return Get(NativeMethods.apm_http_request_get_keep_alive) != 0; }
            set { Set(NativeMethods.apm_http_request_set_keep_alive(handle, value ? 1 : 0)); }
        }

        public Version ProtocolVersion
        {
            get { int major, minor; ApmError.Check(NativeMethods.apm_http_request_get_protocol_version(handle, out major, out minor)); return new Version(major, minor); }
            set { Set(NativeMethods.apm_http_request_set_protocol_version(handle, value == null ? 0 : value.Major, value == null ? 0 : value.Minor)); }
        }

        public override int Timeout
        {
            get { return Get(NativeMethods.apm_http_request_get_timeout); }
            set { Set(NativeMethods.apm_http_request_set_timeout(handle, value)); }
        }

        public int ReadWriteTimeout
        {
            get { return Get(NativeMethods.apm_http_request_get_read_write_timeout); }
            set { Set(NativeMethods.apm_http_request_set_read_write_timeout(handle, value)); }
        }

        public bool AllowAutoRedirect
        {
            get { return Get(NativeMethods.apm_http_request_get_allow_auto_redirect) != 0; }
            set { Set(NativeMethods.apm_http_request_set_allow_auto_redirect(handle, value ? 1 : 0)); }
        }

        public int MaximumAutomaticRedirections
        {
            get { return Get(NativeMethods.apm_http_request_get_maximum_automatic_redirections); }
            set { Set(NativeMethods.apm_http_request_set_maximum_automatic_redirections(handle, value)); }
        }

        public DecompressionMethods AutomaticDecompression
        {
            get { return (DecompressionMethods)Get(NativeMethods.apm_http_request_get_automatic_decompression); }
            set { Set(NativeMethods.apm_http_request_set_automatic_decompression(handle, (int)value)); }
        }

        /// <summary>ServicePoint.Expect100Continue, per request here.</summary>
        public bool Expect100Continue
        {
            get { return Get(NativeMethods.apm_http_request_get_expect_100_continue) != 0; }
            set { Set(NativeMethods.apm_http_request_set_expect_100_continue(handle, value ? 1 : 0)); }
        }

        public int MaximumResponseHeadersLength
        {
            get { return Get(NativeMethods.apm_http_request_get_maximum_response_headers_length); }
            set { Set(NativeMethods.apm_http_request_set_maximum_response_headers_length(handle, value)); }
        }

        /// <summary>ServicePoint.ConnectionLimit of the request URI's endpoint.</summary>
        public int ConnectionLimit
        {
            get { return Get(NativeMethods.apm_http_request_get_connection_limit); }
            set { Set(NativeMethods.apm_http_request_set_connection_limit(handle, value)); }
        }

        /// <summary>ServicePoint.MaxIdleTime of the request URI's endpoint, in ms.</summary>
        public int MaxIdleTime { set { Set(NativeMethods.apm_http_request_set_max_idle_time(handle, value)); } }

        string Property(string name) { return HeaderValue(name); }
        void Property(string name, string value) { Set(NativeMethods.apm_http_request_set_header_property(handle, Marshaling.Utf8(name), Marshaling.Utf8(value))); }

        public override string ContentType { get { return Property("Content-Type"); } set { Property("Content-Type", value); } }
        public string UserAgent { get { return Property("User-Agent"); } set { Property("User-Agent", value); } }
        public string Accept { get { return Property("Accept"); } set { Property("Accept", value); } }
        public string Referer { get { return Property("Referer"); } set { Property("Referer", value); } }
        public string Host { get { return Property("Host"); } set { Property("Host", value); } }

        /// <summary>Headers the caller adds; handed to the library at submission.</summary>
        public override WebHeaderCollection Headers { get { return headers; } set { throw new NotSupportedException("Add to Headers instead."); } }

        string HeaderValue(string name)
        {
            UIntPtr length;
            int found;
            byte[] n = Marshaling.Utf8(name);
            ApmError.Check(NativeMethods.apm_http_request_get_header(handle, n, null, UIntPtr.Zero, out length, out found));
            if (found == 0) return null;
            byte[] buffer = new byte[checked((int)length.ToUInt64()) + 1];
            ApmError.Check(NativeMethods.apm_http_request_get_header(handle, n, buffer, Marshaling.Length(buffer), out length, out found));
            return System.Text.Encoding.UTF8.GetString(buffer, 0, buffer.Length - 1);
        }

        /// <summary>A NetworkCredential's user (Domain\User when it has a domain) and password (null: none)
        /// to one of the library's user/password setters.</summary>
        void SetUserPassword(Func<IntPtr, byte[], byte[], int> setter, ICredentials credentials, Uri uri)
        {
            NetworkCredential c = credentials == null || uri == null ? null : credentials.GetCredential(uri, "Basic");
            string user = c == null ? null : string.IsNullOrEmpty(c.Domain) ? c.UserName : c.Domain + "\\" + c.UserName;
            Set(setter(handle, user == null ? null : Marshaling.Utf8(user), c == null ? null : Marshaling.Utf8(c.Password ?? "")));
        }

        /// <summary>Credentials: the NetworkCredential (user, password and Domain) that answers a 401
        /// offering Negotiate, NTLM or Basic, in that order of preference; Negotiate and NTLM run their
        /// legs on one kept-alive connection, bound over https to its tls-server-end-point.
        /// CredentialCache.DefaultCredentials is the Kerberos ticket cache, for Negotiate only. An
        /// ICredentials other than a NetworkCredential is asked once, for RequestUri and
        /// "Negotiate".</summary>
        public override ICredentials Credentials
        {
            get { return credentials; }
            set
            {
                NetworkCredential c = value == null ? null : value.GetCredential(requestUri, "Negotiate");
                IntPtr library = NegotiateStream.ClientCredential(c);
                try { Set(NativeMethods.apm_http_request_set_credential(handle, library)); }
                finally { if (library != IntPtr.Zero) NativeMethods.apm_credential_close(library); }
                credentials = value;
            }
        }

        /// <summary>UseDefaultCredentials: true sets Credentials to CredentialCache.DefaultCredentials (the
        /// Kerberos ticket cache, KRB5CCNAME, for Negotiate); false clears them if they are those.</summary>
        public override bool UseDefaultCredentials
        {
            get { int v; Set(NativeMethods.apm_http_request_get_use_default_credentials(handle, out v)); return v != 0; }
            set
            {
                Set(NativeMethods.apm_http_request_set_use_default_credentials(handle, value ? 1 : 0));
                if (value) credentials = CredentialCache.DefaultCredentials;
                else if (ReferenceEquals(credentials, CredentialCache.DefaultCredentials)) credentials = null;
            }
        }

        /// <summary>PreAuthenticate: Basic credentials a server accepted go up front to later requests
        /// under the URI's prefix; never Negotiate or NTLM, which authenticate a connection.</summary>
        public override bool PreAuthenticate
        {
            get { int v; Set(NativeMethods.apm_http_request_get_pre_authenticate(handle, out v)); return v != 0; }
            set { Set(NativeMethods.apm_http_request_set_pre_authenticate(handle, value ? 1 : 0)); }
        }

        /// <summary>Proxy, kept small: a <see cref="WebProxy"/> (its Address, an http URI, serves every URI,
        /// loopback included; its Credentials go to the proxy as Basic up front and answer a 407 that
        /// offers Negotiate or NTLM, Domain\User naming the domain), null for none, or
        /// <see cref="WebRequest.DefaultWebProxy"/> (the default) for the library's default proxy, the
        /// environment's as .NET 8 reads it (http_proxy, https_proxy, all_proxy, no_proxy). Any other
        /// IWebProxy is asked once, for RequestUri (GetProxy unless IsBypassed), when it is set.</summary>
        public override IWebProxy Proxy
        {
            get { return proxySet ? proxy : WebRequest.DefaultWebProxy; }
            set
            {
                Uri address = null;
                if (value != null && ReferenceEquals(value, WebRequest.DefaultWebProxy))
                    Set(NativeMethods.apm_http_request_use_default_proxy(handle));
                else
                {
                    if (value is WebProxy) address = ((WebProxy)value).Address;
                    else if (value != null && !value.IsBypassed(requestUri)) address = value.GetProxy(requestUri);
                    Set(NativeMethods.apm_http_request_set_proxy(handle, address == null ? null : Marshaling.Utf8(address.AbsoluteUri)));
                }
                SetUserPassword(NativeMethods.apm_http_request_set_proxy_credentials, value == null ? null : value.Credentials, address);
                proxy = value;
                proxySet = true;
            }
        }

        /// <summary>Trust exactly the CAs of a PEM file for https (null: the system store).</summary>
        public void SetTrustedCaFile(string path) { Set(NativeMethods.apm_http_request_set_trusted_ca_file(handle, Marshaling.Utf8(path))); }

        /// <summary>ClientCertificates: the certificate (with its private key) presented when an https
        /// server asks for one (null: none).</summary>
        public void SetClientCertificate(System.Security.Cryptography.X509Certificates.X509Certificate certificate)
        {
            IntPtr native = certificate == null ? IntPtr.Zero : Certificates.ToNative(certificate);
            try { Set(NativeMethods.apm_http_request_set_client_certificate(handle, native)); }
            finally { if (native != IntPtr.Zero) Certificates.Close(native); }
        }

        /// <summary>HttpWebRequest.ServerCertificateValidationCallback (its sender is this request).</summary>
        public RemoteCertificateValidationCallback ServerCertificateValidationCallback
        {
            get { return validation; }
            set
            {
                if (!self.IsAllocated) self = GCHandle.Alloc(this, GCHandleType.Weak);
                Set(NativeMethods.apm_http_request_set_validation_callback(handle, value == null ? null : ValidationThunk, GCHandle.ToIntPtr(self)));
                validation = value;
            }
        }

        static int OnValidate(IntPtr sender, IntPtr certificate, IntPtr chain, UIntPtr chainLength, int sslPolicyErrors, IntPtr state)
        {
            HttpWebRequest request = GCHandle.FromIntPtr(state).Target as HttpWebRequest;
            if (request == null || request.validation == null) return 0;
            try { return SslStream.RunValidation(request, request.validation, certificate, chain, chainLength, sslPolicyErrors); }
            catch (Exception) { return 0; }  // never unwind into the library: rejected
        }

        void SubmitHeaders()
        {
            if (headersSent) return;
            headersSent = true;
            foreach (string name in headers.AllKeys)
                Set(NativeMethods.apm_http_request_set_header(handle, Marshaling.Utf8(name), Marshaling.Utf8(headers[name])));
        }

        // ---- GetRequestStream ---------------------------------------------------------------------

        static Stream RequestStream(StreamHandle stream, TransportContextHandle context, out TransportContext transport)
        {
            transport = context == null || context.IsInvalid ? null : new ApmTransportContext(context);
            return new HttpRequestStream(stream);
        }

        public override Stream GetRequestStream()
        {
            TransportContext context;
            return GetRequestStream(out context);
        }

        /// <summary>GetRequestStream(out TransportContext): for https the context's channel bindings are
        /// the TLS connection's; for http it has none (GetChannelBinding returns null).</summary>
        public Stream GetRequestStream(out TransportContext context)
        {
            SubmitHeaders();
            StreamHandle stream;
            TransportContextHandle ctx;
            ApmError.Check(NativeMethods.apm_http_request_get_request_stream(handle, out stream, out ctx));
            return RequestStream(stream, ctx, out context);
        }

        public override IAsyncResult BeginGetRequestStream(AsyncCallback callback, object state)
        {
            SubmitHeaders();
            return new ApmAsyncResult(this, callback, state, null).Start(
                (ApmAsyncResult r, IntPtr s, out IntPtr h) => NativeMethods.apm_http_request_begin_get_request_stream(handle, ApmAsyncResult.CompletionThunk, s, out h));
        }

        public override Stream EndGetRequestStream(IAsyncResult asyncResult)
        {
            TransportContext context;
            return EndGetRequestStream(asyncResult, out context);
        }

        /// <summary>The seed: EndGetRequestStream(IAsyncResult, out TransportContext).</summary>
        public Stream EndGetRequestStream(IAsyncResult asyncResult, out TransportContext context)
        {
            StreamHandle stream = null;
            TransportContextHandle ctx = null;
            ApmAsyncResult.End(asyncResult, r => NativeMethods.apm_http_request_end_get_request_stream(handle, r, out stream, out ctx));
            return RequestStream(stream, ctx, out context);
        }

        // ---- GetResponse -------------------------------------------------------------------------

        public override WebResponse GetResponse()
        {
            SubmitHeaders();
            HttpResponseHandle response;
            ApmError.Check(NativeMethods.apm_http_request_get_response(handle, out response));
            return new HttpWebResponse(response);
        }

        public override IAsyncResult BeginGetResponse(AsyncCallback callback, object state)
        {
            SubmitHeaders();
            return new ApmAsyncResult(this, callback, state, null).Start(
                (ApmAsyncResult r, IntPtr s, out IntPtr h) => NativeMethods.apm_http_request_begin_get_response(handle, ApmAsyncResult.CompletionThunk, s, out h));
        }

        public override WebResponse EndGetResponse(IAsyncResult asyncResult)
        {
            HttpResponseHandle response = null;
            ApmAsyncResult.End(asyncResult, r => NativeMethods.apm_http_request_end_get_response(handle, r, out response));
            return new HttpWebResponse(response);
        }

        /// <summary>Abort: idempotent; a pending operation's End throws WebException RequestCanceled.</summary>
        public override void Abort() { Set(NativeMethods.apm_http_request_abort(handle)); }

        ~HttpWebRequest()
        {
            if (self.IsAllocated) self.Free();
        }
    }

    /// <summary>The request stream: write-only; Close throws the IOException of a ContentLength body
    /// still owed ("Cannot close stream until all bytes are written.").</summary>
    sealed class HttpRequestStream : ApmLibraryStream
    {
        internal HttpRequestStream(StreamHandle handle) : base(handle) { }

        protected override void Dispose(bool disposing)
        {
            int status = disposing && !IsDisposed ? NativeMethods.apm_stream_close(NativeHandle) : 0;
            Exception error = status == 0 ? null : ApmError.Last(status);
            base.Dispose(disposing);
            if (error != null) throw error;
        }
    }

    /// <summary>HttpWebResponse over libapmnet (a WebResponse: System.Net.HttpWebResponse cannot be
    /// subclassed). Close it, or read its stream to the end, to free its connection.</summary>
    public sealed class HttpWebResponse : WebResponse
    {
        readonly HttpResponseHandle safeHandle;
        readonly IntPtr handle;

        internal HttpWebResponse(HttpResponseHandle created)
        {
            safeHandle = created;
            handle = created.DangerousGetHandle();
        }

        /// <summary>WebException.Response of this thread's last failure (a ProtocolError), or null.</summary>
        internal static HttpWebResponse FromLastError(int httpStatus)
        {
            if (httpStatus == 0) return null;
            HttpResponseHandle response;
            if (NativeMethods.apm_http_response_from_last_error(out response) != 0 || response.IsInvalid) return null;
            return new HttpWebResponse(response);
        }

        string Text(CopyOut copy) { return Marshaling.CopyText(copy); }

        public HttpStatusCode StatusCode { get { return (HttpStatusCode)Marshaling.GetInt32(handle, NativeMethods.apm_http_response_get_status_code); } }
        public string StatusDescription { get { return Text((byte[] b, UIntPtr n, out UIntPtr full) => NativeMethods.apm_http_response_get_status_description(handle, b, n, out full)); } }
        public override string ContentType { get { return Text((byte[] b, UIntPtr n, out UIntPtr full) => NativeMethods.apm_http_response_get_content_type(handle, b, n, out full)); } set { throw new InvalidOperationException(); } }
        public override Uri ResponseUri { get { return new Uri(Text((byte[] b, UIntPtr n, out UIntPtr full) => NativeMethods.apm_http_response_get_response_uri(handle, b, n, out full))); } }
        public string Method { get { return Text((byte[] b, UIntPtr n, out UIntPtr full) => NativeMethods.apm_http_response_get_method(handle, b, n, out full)); } }

        public override long ContentLength
        {
            get { long v; ApmError.Check(NativeMethods.apm_http_response_get_content_length(handle, out v)); return v; }
            set { throw new InvalidOperationException(); }
        }

        public Version ProtocolVersion
        {
            get { int major, minor; ApmError.Check(NativeMethods.apm_http_response_get_protocol_version(handle, out major, out minor)); return new Version(major, minor); }
        }

        public override WebHeaderCollection Headers
        {
            get
            {
                UIntPtr count;
                ApmError.Check(NativeMethods.apm_http_response_get_header_count(handle, out count));
                WebHeaderCollection all = new WebHeaderCollection();
                for (int i = 0; i < (int)count.ToUInt64(); i++)
                {
                    UIntPtr index = new UIntPtr((uint)i), nameLength, valueLength;
                    ApmError.Check(NativeMethods.apm_http_response_get_header_at(handle, index, null, UIntPtr.Zero, out nameLength, null, UIntPtr.Zero, out valueLength));
                    byte[] name = new byte[(int)nameLength.ToUInt64() + 1], value = new byte[(int)valueLength.ToUInt64() + 1];
                    ApmError.Check(NativeMethods.apm_http_response_get_header_at(handle, index, name, Marshaling.Length(name), out nameLength, value, Marshaling.Length(value), out valueLength));
                    all.Add(System.Text.Encoding.UTF8.GetString(name, 0, name.Length - 1), System.Text.Encoding.UTF8.GetString(value, 0, value.Length - 1));
                }
                return all;
            }
        }

        public string GetResponseHeader(string headerName)
        {
            UIntPtr length;
            int found;
            byte[] n = Marshaling.Utf8(headerName);
            ApmError.Check(NativeMethods.apm_http_response_get_header(handle, n, null, UIntPtr.Zero, out length, out found));
            byte[] buffer = new byte[checked((int)length.ToUInt64()) + 1];
            ApmError.Check(NativeMethods.apm_http_response_get_header(handle, n, buffer, Marshaling.Length(buffer), out length, out found));
            return System.Text.Encoding.UTF8.GetString(buffer, 0, buffer.Length - 1);
        }

        /// <summary>The body (read-only; each call names the same stream).</summary>
        public override Stream GetResponseStream()
        {
            StreamHandle stream;
            ApmError.Check(NativeMethods.apm_http_response_get_response_stream(handle, out stream));
            return new HttpResponseStream(stream);
        }

        public override void Close() { safeHandle.Dispose(); }
    }

    sealed class HttpResponseStream : ApmLibraryStream
    {
        internal HttpResponseStream(StreamHandle handle) : base(handle) { }
    }
}
