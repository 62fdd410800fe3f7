// Apmnet.NetworkStream: a System.IO.Stream over a connected Apmnet.Socket, like System.Net.Sockets.NetworkStream.
using System;
using System.IO;
using Apmnet.Interop;

namespace Apmnet
{
    /// <summary>System.Net.Sockets.NetworkStream over libapmnet. BeginRead/EndRead/BeginWrite/EndWrite
    /// override Stream's, so Task.Factory.FromAsync, ReadAsync/WriteAsync, CopyTo and StreamReader use
    /// the library's asynchronous operations. One read and one write may be pending at once; several
    /// pending writes are sent in order, never interleaved.</summary>
    public class NetworkStream : Stream, INativeStream
    {
        const string NoSeek = "This stream does not support seek operations.";
        readonly StreamHandle safeHandle;
        readonly IntPtr handle;
        readonly Socket socket;
        volatile bool disposed;

        static NetworkStream() { Library.EnsureInitialized(); }

        public NetworkStream(Socket socket) : this(socket, FileAccess.ReadWrite, false) { }
        public NetworkStream(Socket socket, bool ownsSocket) : this(socket, FileAccess.ReadWrite, ownsSocket) { }
        public NetworkStream(Socket socket, FileAccess access) : this(socket, access, false) { }

        /// <summary>The socket must be connected (IOException otherwise). With ownsSocket, closing the
        /// stream closes the socket.</summary>
        public NetworkStream(Socket socket, FileAccess access, bool ownsSocket)
        {
            StreamHandle created;
            ApmError.Check(NativeMethods.apm_network_stream_create_with_access(
                socket == null ? IntPtr.Zero : socket.NativeHandle, (int)access, ownsSocket ? 1 : 0, out created));
            safeHandle = created;
            handle = created.DangerousGetHandle();
            this.socket = socket;
        }

        IntPtr INativeStream.NativeStreamHandle { get { return handle; } }

        /// <summary>The underlying socket.</summary>
        public Socket Socket { get { return socket; } }

        public override bool CanRead { get { return !disposed && GetFlag(true); } }
        public override bool CanWrite { get { return !disposed && GetFlag(false); } }
        public override bool CanSeek { get { return false; } }
        public override bool CanTimeout { get { return true; } }

        public bool DataAvailable
        {
            get
            {
                if (disposed) throw new ObjectDisposedException(GetType().FullName);
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

        public override long Length { get { throw new NotSupportedException(NoSeek); } }
        public override long Position
        {
            get { throw new NotSupportedException(NoSeek); }
            set { throw new NotSupportedException(NoSeek); }
        }
        public override long Seek(long offset, SeekOrigin origin) { throw new NotSupportedException(NoSeek); }
        public override void SetLength(long value) { throw new NotSupportedException(NoSeek); }
        public override void Flush() { }

        /// <summary>Returns the byte count, 0 at the end of the stream.</summary>
        public override int Read(byte[] buffer, int offset, int count)
        {
            UIntPtr read;
            ApmError.Check(NativeMethods.apm_stream_read(handle, buffer, Marshaling.Length(buffer), Marshaling.Size(offset), Marshaling.Size(count), out read));
            return Marshaling.ToInt(read);
        }

        /// <summary>Returns once all the bytes were sent.</summary>
        public override void Write(byte[] buffer, int offset, int count)
        {
            ApmError.Check(NativeMethods.apm_stream_write(handle, buffer, Marshaling.Length(buffer), Marshaling.Size(offset), Marshaling.Size(count)));
        }

        public override IAsyncResult BeginRead(byte[] buffer, int offset, int count, AsyncCallback callback, object state)
        {
            return new ApmAsyncResult(this, callback, state, null, buffer).Start(
                (ApmAsyncResult r, IntPtr s, out IntPtr h) => NativeMethods.apm_stream_begin_read(handle, r.Address(buffer), Marshaling.Length(buffer),
                    Marshaling.Size(offset), Marshaling.Size(count), ApmAsyncResult.CompletionThunk, s, out h));
        }

        public override int EndRead(IAsyncResult asyncResult)
        {
            UIntPtr read = UIntPtr.Zero;
            ApmAsyncResult.End(asyncResult, r => NativeMethods.apm_stream_end_read(handle, r, out read));
            return Marshaling.ToInt(read);
        }

        public override IAsyncResult BeginWrite(byte[] buffer, int offset, int count, AsyncCallback callback, object state)
        {
            return new ApmAsyncResult(this, callback, state, null, buffer).Start(
                (ApmAsyncResult r, IntPtr s, out IntPtr h) => NativeMethods.apm_stream_begin_write(handle, r.Address(buffer), Marshaling.Length(buffer),
                    Marshaling.Size(offset), Marshaling.Size(count), ApmAsyncResult.CompletionThunk, s, out h));
        }

        public override void EndWrite(IAsyncResult asyncResult)
        {
            ApmAsyncResult.End(asyncResult, r => NativeMethods.apm_stream_end_write(handle, r));
        }

        protected override void Dispose(bool disposing)
        {
            try
            {
                if (disposing)
                {
                    disposed = true;
                    safeHandle.Dispose();
                }
            }
            finally
            {
                base.Dispose(disposing);
            }
        }

        bool GetFlag(bool read)
        {
            int value;
            int status = read ? NativeMethods.apm_stream_can_read(handle, out value) : NativeMethods.apm_stream_can_write(handle, out value);
            if (status == (int)ApmStatus.ObjectDisposed) return false;  // closed meanwhile: CanRead/CanWrite become false
            ApmError.Check(status);
            return value != 0;
        }

        static void CheckTimeout(int value)
        {
            if (value <= 0 && value != -1)
                throw new ArgumentOutOfRangeException("value", "Timeout can be only be set to 'System.Threading.Timeout.Infinite' or a value > 0.");
        }
    }
}
