// Apmnet.ApmLibraryStream: the System.IO.Stream plumbing NetworkStream and SslStream share.
using System;
using System.IO;
using System.Threading;
using System.Threading.Tasks;
using Apmnet.Interop;

namespace Apmnet
{
    /// <summary>A System.IO.Stream over one of libapmnet's streams: the base of NetworkStream and SslStream.
    /// BeginRead/EndRead/BeginWrite/EndWrite override Stream's, and ReadAsync/WriteAsync are Tasks over
    /// them with the CancellationToken wired to the library's cancel, so Task.Factory.FromAsync, await,
    /// CopyTo(Async) and StreamReader use the library's asynchronous operations. One read and
    /// one write may be pending at once; several pending writes are sent in order, never interleaved. It
    /// cannot be seeked. An SslStream over one of these hands it to the library as it is.</summary>
    public abstract class ApmLibraryStream : Stream
    {
        const string NoSeek = "This stream does not support seek operations.";
        readonly StreamHandle safeHandle;
        readonly IntPtr handle;
        volatile bool disposed;

        /// <summary>Takes ownership of <paramref name="created"/> (closed by Dispose).</summary>
        internal ApmLibraryStream(StreamHandle created)
        {
            safeHandle = created;
            handle = created.DangerousGetHandle();
        }

        /// <summary>apm_ssl_stream_create, apm_negotiate_stream_create: a stream over another.</summary>
        internal delegate int CreateOverCall(IntPtr inner, int leaveInnerStreamOpen, out StreamHandle stream);

        /// <summary>AuthenticatedStream's constructor: the library stream made by <paramref name="create"/>
        /// over <paramref name="innerStream"/>, an Apmnet stream (used by the library directly) or any other
        /// read/write Stream (driven through its BeginRead/BeginWrite by an adapter the new stream owns; the
        /// managed stream itself is the derived class's to dispose, unless leaveInnerStreamOpen).</summary>
        internal static StreamHandle CreateOver(Stream innerStream, bool leaveInnerStreamOpen, CreateOverCall create)
        {
            if (innerStream == null || innerStream == Stream.Null) throw new ArgumentNullException("innerStream");
            if (!innerStream.CanRead || !innerStream.CanWrite) throw new ArgumentException("The stream has to be read/write.", "innerStream");
            StreamHandle created;
            ApmLibraryStream native = innerStream as ApmLibraryStream;
            if (native != null)
            {
                ApmError.Check(create(native.NativeHandle, leaveInnerStreamOpen ? 1 : 0, out created));
                return created;
            }
            StreamHandle adapter = ManagedStreamAdapter.Create(innerStream);
            int status = create(adapter.DangerousGetHandle(), 0, out created);
            if (status != 0)
            {
                Exception error = ApmError.Last(status);
                adapter.Dispose();
                throw error;
            }
            adapter.SetHandleAsInvalid();  // released with the new stream from now on
            return created;
        }

        /// <summary>The apm_stream handle (its stale value after Dispose: see Interop.SocketHandle).</summary>
        internal IntPtr NativeHandle { get { return handle; } }

        internal bool IsDisposed { get { return disposed; } }

        /// <summary>A 0/1 property of the stream; false once it is disposed, as .NET's.</summary>
        internal bool Flag(Int32Getter getter)
        {
            return !disposed && Marshaling.GetFlag(handle, getter);
        }

        public override bool CanRead { get { return Flag(NativeMethods.apm_stream_can_read); } }
        public override bool CanWrite { get { return Flag(NativeMethods.apm_stream_can_write); } }
        public override bool CanSeek { get { return false; } }

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
            return Transfer.Run(NativeMethods.apm_stream_read, handle, buffer, offset, count);
        }

        /// <summary>Returns once all the bytes were written.</summary>
        public override void Write(byte[] buffer, int offset, int count)
        {
            ApmError.Check(NativeMethods.apm_stream_write(handle, buffer, Marshaling.Length(buffer), Marshaling.Size(offset), Marshaling.Size(count)));
        }

        public override IAsyncResult BeginRead(byte[] buffer, int offset, int count, AsyncCallback callback, object state)
        {
            return Transfer.Begin(this, NativeMethods.apm_stream_begin_read, handle, buffer, offset, count, callback, state);
        }

        public override int EndRead(IAsyncResult asyncResult)
        {
            return Transfer.End(NativeMethods.apm_stream_end_read, handle, asyncResult);
        }

        public override IAsyncResult BeginWrite(byte[] buffer, int offset, int count, AsyncCallback callback, object state)
        {
            return Transfer.Begin(this, NativeMethods.apm_stream_begin_write, handle, buffer, offset, count, callback, state);
        }

        public override void EndWrite(IAsyncResult asyncResult)
        {
            ApmAsyncResult.End(asyncResult, r => NativeMethods.apm_stream_end_write(handle, r));
        }

        /// <summary>BeginRead/EndRead as a Task (not Stream's default); the token cancels the library's
        /// read (a cancelled read consumed no byte) where it can, and the Task is then cancelled.</summary>
        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        {
            return ApmTask<int>.Run((callback, state) => BeginRead(buffer, offset, count, callback, state), EndRead, cancellationToken);
        }

        /// <summary>BeginWrite/EndWrite as a Task; the token cancels the library's write where it can (some
        /// of the bytes may have been sent, as in .NET).</summary>
        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        {
            return ApmTask<bool>.Run((callback, state) => BeginWrite(buffer, offset, count, callback, state),
                result => { EndWrite(result); return true; }, cancellationToken);
        }

        /// <summary>Closes the library's stream (pending operations complete; their End throws
        /// ObjectDisposedException), then runs OnDisposed once.</summary>
        protected override void Dispose(bool disposing)
        {
            try
            {
                if (disposing && !disposed)
                {
                    disposed = true;
                    safeHandle.Dispose();
                    OnDisposed();
                }
            }
            finally
            {
                base.Dispose(disposing);
            }
        }

        /// <summary>What a derived class releases after the library's stream was closed.</summary>
        internal virtual void OnDisposed() { }
    }
}
