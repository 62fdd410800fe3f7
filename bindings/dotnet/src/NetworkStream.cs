// Apmnet.NetworkStream: a System.IO.Stream over a connected Apmnet.Socket, like System.Net.Sockets.NetworkStream.
using System;
using System.IO;
using Apmnet.Interop;

namespace Apmnet
{
    /// <summary>System.Net.Sockets.NetworkStream over libapmnet. Read, Write and the Begin/End overrides
    /// come from ApmLibraryStream.</summary>
    public class NetworkStream : ApmLibraryStream
    {
        readonly Socket socket;

        static NetworkStream() { Library.EnsureInitialized(); }

        public NetworkStream(Socket socket) : this(socket, FileAccess.ReadWrite, false) { }
        public NetworkStream(Socket socket, bool ownsSocket) : this(socket, FileAccess.ReadWrite, ownsSocket) { }
        public NetworkStream(Socket socket, FileAccess access) : this(socket, access, false) { }

        /// <summary>The socket must be connected (IOException otherwise). With ownsSocket, closing the
        /// stream closes the socket.</summary>
        public NetworkStream(Socket socket, FileAccess access, bool ownsSocket) : base(Create(socket, access, ownsSocket))
        {
            this.socket = socket;
        }

        static StreamHandle Create(Socket socket, FileAccess access, bool ownsSocket)
        {
            StreamHandle created;
            ApmError.Check(NativeMethods.apm_network_stream_create_with_access(
                socket == null ? IntPtr.Zero : socket.NativeHandle, (int)access, ownsSocket ? 1 : 0, out created));
            return created;
        }

        /// <summary>The underlying socket.</summary>
        public Socket Socket { get { return socket; } }

        public override bool CanTimeout { get { return true; } }

        public bool DataAvailable
        {
            get
            {
                if (IsDisposed) throw new ObjectDisposedException(GetType().FullName);
                return socket.Available != 0;
            }
        }

        /// <summary>The socket's ReceiveTimeout; -1 for infinite.</summary>
        public override int ReadTimeout
        {
            get { int value = socket.ReceiveTimeout; return value == 0 ? -1 : value; }
            set { CheckTimeout(value); socket.ReceiveTimeout = value; }
        }

        /// <summary>The socket's SendTimeout; -1 for infinite.</summary>
        public override int WriteTimeout
        {
            get { int value = socket.SendTimeout; return value == 0 ? -1 : value; }
            set { CheckTimeout(value); socket.SendTimeout = value; }
        }

        static void CheckTimeout(int value)
        {
            if (value <= 0 && value != -1)
                throw new ArgumentOutOfRangeException("value", "Timeout can be only be set to 'System.Threading.Timeout.Infinite' or a value > 0.");
        }
    }
}
