// Apmnet.Socket: System.Net.Sockets.Socket's surface (TCP) over libapmnet.
using System;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Apmnet.Interop;

namespace Apmnet
{
    /// <summary>A TCP socket with the members and behaviour of System.Net.Sockets.Socket: synchronous
    /// calls, and Begin/End pairs whose callbacks come from libapmnet's engine threads. The enumerations
    /// are System.Net.Sockets' own, whose numbers the C API shares.</summary>
    public class Socket : IDisposable
    {
        readonly SocketHandle safeHandle;
        readonly IntPtr handle;

        static Socket() { Library.EnsureInitialized(); }

        public Socket(AddressFamily addressFamily, SocketType socketType, ProtocolType protocolType)
        {
            SocketHandle created;
            ApmError.Check(NativeMethods.apm_socket_create((int)addressFamily, (int)socketType, (int)protocolType, out created));
            safeHandle = created;
            handle = created.DangerousGetHandle();
            AddressFamily = addressFamily;
            SocketType = socketType;
            ProtocolType = protocolType;
        }

        Socket(SocketHandle accepted, Socket listener)
        {
            safeHandle = accepted;
            handle = accepted.DangerousGetHandle();
            AddressFamily = listener.AddressFamily;
            SocketType = listener.SocketType;
            ProtocolType = listener.ProtocolType;
        }

        public AddressFamily AddressFamily { get; private set; }
        public SocketType SocketType { get; private set; }
        public ProtocolType ProtocolType { get; private set; }

        /// <summary>The SafeHandle owning the apm_socket handle.</summary>
        public SafeHandle SafeHandle { get { return safeHandle; } }

        internal IntPtr NativeHandle { get { return handle; } }

        // ---- Bind, Listen, Accept, Connect ----------------------------------------------------------

        public void Bind(EndPoint localEP)
        {
            IPEndPoint ip = AsIPEndPoint(localEP, "localEP");
            ApmError.Check(NativeMethods.apm_socket_bind(handle, Marshaling.Utf8(ip == null ? null : ip.Address.ToString()), ip == null ? 0 : ip.Port));
        }

        public void Listen(int backlog)
        {
            ApmError.Check(NativeMethods.apm_socket_listen(handle, backlog));
        }

        public void Listen() { Listen(int.MaxValue); }

        public Socket Accept()
        {
            SocketHandle accepted;
            ApmError.Check(NativeMethods.apm_socket_accept(handle, out accepted));
            return new Socket(accepted, this);
        }

        public IAsyncResult BeginAccept(AsyncCallback callback, object state)
        {
            return new ApmAsyncResult(this, callback, state, null).Start(
                (ApmAsyncResult r, IntPtr s, out IntPtr h) => NativeMethods.apm_socket_begin_accept(handle, ApmAsyncResult.CompletionThunk, s, out h));
        }

        public Socket EndAccept(IAsyncResult asyncResult)
        {
            SocketHandle accepted = null;
            ApmAsyncResult.End(asyncResult, r => NativeMethods.apm_socket_end_accept(handle, r, out accepted));
            return new Socket(accepted, this);
        }

        public void Connect(EndPoint remoteEP)
        {
            string host; int port;
            Split(remoteEP, out host, out port);
            Connect(host, port);
        }

        public void Connect(IPAddress address, int port)
        {
            Connect(address == null ? null : address.ToString(), port);
        }

        /// <summary>Connects to an IP literal or a host name.</summary>
        public void Connect(string host, int port)
        {
            ApmError.Check(NativeMethods.apm_socket_connect(handle, Marshaling.Utf8(host), port));
        }

        public IAsyncResult BeginConnect(EndPoint remoteEP, AsyncCallback callback, object state)
        {
            string host; int port;
            Split(remoteEP, out host, out port);
            return BeginConnect(host, port, callback, state);
        }

        public IAsyncResult BeginConnect(IPAddress address, int port, AsyncCallback callback, object state)
        {
            return BeginConnect(address == null ? null : address.ToString(), port, callback, state);
        }

        public IAsyncResult BeginConnect(string host, int port, AsyncCallback callback, object state)
        {
            byte[] name = Marshaling.Utf8(host);
            return new ApmAsyncResult(this, callback, state, null).Start(
                (ApmAsyncResult r, IntPtr s, out IntPtr h) => NativeMethods.apm_socket_begin_connect(handle, name, port, ApmAsyncResult.CompletionThunk, s, out h));
        }

        public void EndConnect(IAsyncResult asyncResult)
        {
            ApmAsyncResult.End(asyncResult, r => NativeMethods.apm_socket_end_connect(handle, r));
        }

        // ---- Send, Receive --------------------------------------------------------------------------

        public int Send(byte[] buffer)
        {
            return Send(buffer, 0, buffer == null ? 0 : buffer.Length, SocketFlags.None);
        }

        public int Send(byte[] buffer, int offset, int size, SocketFlags socketFlags)
        {
            NoFlags(socketFlags);
            return Transfer.Run(NativeMethods.apm_socket_send, handle, buffer, offset, size);
        }

        public IAsyncResult BeginSend(byte[] buffer, int offset, int size, SocketFlags socketFlags, AsyncCallback callback, object state)
        {
            NoFlags(socketFlags);
            return Transfer.Begin(this, NativeMethods.apm_socket_begin_send, handle, buffer, offset, size, callback, state);
        }

        public int EndSend(IAsyncResult asyncResult)
        {
            return Transfer.End(NativeMethods.apm_socket_end_send, handle, asyncResult);
        }

        public int Receive(byte[] buffer)
        {
            return Receive(buffer, 0, buffer == null ? 0 : buffer.Length, SocketFlags.None);
        }

        /// <summary>Returns the byte count; 0 at the end of the stream.</summary>
        public int Receive(byte[] buffer, int offset, int size, SocketFlags socketFlags)
        {
            NoFlags(socketFlags);
            return Transfer.Run(NativeMethods.apm_socket_receive, handle, buffer, offset, size);
        }

        public IAsyncResult BeginReceive(byte[] buffer, int offset, int size, SocketFlags socketFlags, AsyncCallback callback, object state)
        {
            NoFlags(socketFlags);
            return Transfer.Begin(this, NativeMethods.apm_socket_begin_receive, handle, buffer, offset, size, callback, state);
        }

        public int EndReceive(IAsyncResult asyncResult)
        {
            return Transfer.End(NativeMethods.apm_socket_end_receive, handle, asyncResult);
        }

        // ---- SendFile -------------------------------------------------------------------------------

        public void SendFile(string fileName)
        {
            SendFile(fileName, null, null, TransmitFileOptions.UseDefaultWorkerThread);
        }

        /// <summary>Sends preBuffer, the file (null or "": none) and postBuffer, blocking.</summary>
        public void SendFile(string fileName, byte[] preBuffer, byte[] postBuffer, TransmitFileOptions flags)
        {
            ApmError.Check(NativeMethods.apm_socket_send_file(handle, Marshaling.Utf8(fileName), preBuffer, Marshaling.Length(preBuffer),
                postBuffer, Marshaling.Length(postBuffer), (int)flags));
        }

        public IAsyncResult BeginSendFile(string fileName, AsyncCallback callback, object state)
        {
            return BeginSendFile(fileName, null, null, TransmitFileOptions.UseDefaultWorkerThread, callback, state);
        }

        /// <summary>The file is opened inside Begin: FileNotFoundException / DirectoryNotFoundException
        /// are thrown from here. Disconnect and ReuseSocket are honoured after the data is sent.</summary>
        public IAsyncResult BeginSendFile(string fileName, byte[] preBuffer, byte[] postBuffer, TransmitFileOptions flags, AsyncCallback callback, object state)
        {
            return BeginSendFile(fileName, preBuffer, postBuffer, flags, null, callback, state);
        }

        /// <summary>As BeginSendFile, calling <paramref name="progress"/>(result, bytes sent) on engine
        /// threads as the data goes out (an apmnet extension).</summary>
        public IAsyncResult BeginSendFile(string fileName, byte[] preBuffer, byte[] postBuffer, TransmitFileOptions flags,
            Action<IAsyncResult, long> progress, AsyncCallback callback, object state)
        {
            byte[] name = Marshaling.Utf8(fileName);
            return new ApmAsyncResult(this, callback, state, progress, preBuffer, postBuffer).Start(
                (ApmAsyncResult r, IntPtr s, out IntPtr h) => progress == null
                    ? NativeMethods.apm_socket_begin_send_file(handle, name, r.Address(preBuffer), Marshaling.Length(preBuffer),
                        r.Address(postBuffer), Marshaling.Length(postBuffer), (int)flags, ApmAsyncResult.CompletionThunk, s, out h)
                    : NativeMethods.apm_socket_begin_send_file_with_progress(handle, name, r.Address(preBuffer), Marshaling.Length(preBuffer),
                        r.Address(postBuffer), Marshaling.Length(postBuffer), (int)flags, ApmAsyncResult.ProgressThunk,
                        ApmAsyncResult.CompletionThunk, s, out h));
        }

        public void EndSendFile(IAsyncResult asyncResult)
        {
            ApmAsyncResult.End(asyncResult, r => NativeMethods.apm_socket_end_send_file(handle, r));
        }

        // ---- Shutdown, Close ------------------------------------------------------------------------

        public void Shutdown(SocketShutdown how)
        {
            ApmError.Check(NativeMethods.apm_socket_shutdown(handle, (int)how));
        }

        /// <summary>Closes the socket. Pending operations complete (their callbacks run) and their End
        /// throws ObjectDisposedException.</summary>
        public void Close() { Dispose(); }

        public void Dispose()
        {
            Dispose(true);
            GC.SuppressFinalize(this);
        }

        protected virtual void Dispose(bool disposing)
        {
            if (disposing) safeHandle.Dispose();
        }

        // ---- Properties -----------------------------------------------------------------------------

        public EndPoint LocalEndPoint { get { return EndPointFrom(true); } }
        public EndPoint RemoteEndPoint { get { return EndPointFrom(false); } }

        /// <summary>Connected as of the last operation (.NET's cached flag, not a live probe).</summary>
        public bool Connected { get { return GetInt32(NativeMethods.apm_socket_get_connected) != 0; } }
        public int Available { get { return GetInt32(NativeMethods.apm_socket_get_available); } }

        public bool NoDelay
        {
            get { return GetInt32(NativeMethods.apm_socket_get_no_delay) != 0; }
            set { ApmError.Check(NativeMethods.apm_socket_set_no_delay(handle, value ? 1 : 0)); }
        }

        public int SendBufferSize
        {
            get { return GetInt32(NativeMethods.apm_socket_get_send_buffer_size); }
            set { ApmError.Check(NativeMethods.apm_socket_set_send_buffer_size(handle, value)); }
        }

        public int ReceiveBufferSize
        {
            get { return GetInt32(NativeMethods.apm_socket_get_receive_buffer_size); }
            set { ApmError.Check(NativeMethods.apm_socket_set_receive_buffer_size(handle, value)); }
        }

        /// <summary>Milliseconds for synchronous sends; 0 or -1 = infinite.</summary>
        public int SendTimeout
        {
            get { return GetInt32(NativeMethods.apm_socket_get_send_timeout); }
            set { ApmError.Check(NativeMethods.apm_socket_set_send_timeout(handle, value)); }
        }

        /// <summary>Milliseconds for synchronous receives; 0 or -1 = infinite.</summary>
        public int ReceiveTimeout
        {
            get { return GetInt32(NativeMethods.apm_socket_get_receive_timeout); }
            set { ApmError.Check(NativeMethods.apm_socket_set_receive_timeout(handle, value)); }
        }

        public LingerOption LingerState
        {
            get
            {
                int enabled, seconds;
                ApmError.Check(NativeMethods.apm_socket_get_linger(handle, out enabled, out seconds));
                return new LingerOption(enabled != 0, seconds);
            }
            set
            {
                if (value == null) throw new ArgumentNullException("value");
                ApmError.Check(NativeMethods.apm_socket_set_linger(handle, value.Enabled ? 1 : 0, value.LingerTime));
            }
        }

        // ---- Helpers --------------------------------------------------------------------------------

        int GetInt32(Int32Getter getter)
        {
            return Marshaling.GetInt32(handle, getter);
        }

        EndPoint EndPointFrom(bool local)
        {
            byte[] address = new byte[64];
            int port;
            ApmError.Check(local
                ? NativeMethods.apm_socket_get_local_endpoint(handle, address, Marshaling.Length(address), out port)
                : NativeMethods.apm_socket_get_remote_endpoint(handle, address, Marshaling.Length(address), out port));
            int length = Array.IndexOf(address, (byte)0);
            string text = System.Text.Encoding.ASCII.GetString(address, 0, length < 0 ? address.Length : length);
            return new IPEndPoint(IPAddress.Parse(text), port);
        }

        static IPEndPoint AsIPEndPoint(EndPoint endPoint, string parameter)
        {
            if (endPoint == null) return null;  // the library reports the null as ArgumentNullException
            IPEndPoint ip = endPoint as IPEndPoint;
            if (ip == null) throw new ArgumentException("The parameter " + parameter + " must be an IPEndPoint.", parameter);
            return ip;
        }

        static void Split(EndPoint endPoint, out string host, out int port)
        {
            DnsEndPoint dns = endPoint as DnsEndPoint;
            if (dns != null) { host = dns.Host; port = dns.Port; return; }
            IPEndPoint ip = AsIPEndPoint(endPoint, "remoteEP");
            host = ip == null ? null : ip.Address.ToString();
            port = ip == null ? 0 : ip.Port;
        }

        static void NoFlags(SocketFlags flags)
        {
            if (flags != SocketFlags.None)
                throw new NotSupportedException("apmnet supports SocketFlags.None only.");
        }
    }
}
