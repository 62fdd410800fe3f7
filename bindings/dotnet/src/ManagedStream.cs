// Any System.IO.Stream as a library stream (apm_stream_create_custom), so that an Apmnet.SslStream can sit
// on a stream the library does not know: System.Net.Sockets.NetworkStream, a pipe, a user's Stream.
using System;
using System.Collections.Generic;
using System.IO;
using System.Runtime.InteropServices;
using System.Threading;
using Apmnet.Interop;

namespace Apmnet
{
    /// <summary>The library calls begin_read/begin_write from whatever thread drives the stream; they start
    /// the managed stream's BeginRead/BeginWrite there when that is a thread-pool thread, else (an engine
    /// thread, or the caller's thread inside a blocking call) on the thread pool, so that no user stream
    /// runs on the library's threads, and report the outcome through the library's complete function
    /// from the AsyncCallback. The three function pointers are
    /// static delegates, alive for the whole process; the ctx the library holds is an id in a table
    /// that keeps the adapter alive until the library called close(ctx).</summary>
    internal sealed class ManagedStreamAdapter
    {
        static readonly object Gate = new object();
        static readonly Dictionary<long, ManagedStreamAdapter> Live = new Dictionary<long, ManagedStreamAdapter>();
        static long nextId;
        static readonly ApmCustomBegin BeginReadThunk = (ctx, buffer, count, complete, token) => OnBegin(ctx, buffer, count, complete, token, true);
        static readonly ApmCustomBegin BeginWriteThunk = (ctx, buffer, count, complete, token) => OnBegin(ctx, buffer, count, complete, token, false);
        static readonly ApmCustomClose CloseThunk = OnClose;
        static ApmStreamVtable vtable = new ApmStreamVtable
        {
            BeginRead = Marshal.GetFunctionPointerForDelegate(BeginReadThunk),
            BeginWrite = Marshal.GetFunctionPointerForDelegate(BeginWriteThunk),
            Close = Marshal.GetFunctionPointerForDelegate(CloseThunk),
        };
        static IntPtr completePointer;
        static ApmCustomComplete completeDelegate;

        readonly Stream inner;
        byte[] readBuffer = new byte[0];
        byte[] writeBuffer = new byte[0];
        volatile bool closed;

        ManagedStreamAdapter(Stream inner) { this.inner = inner; }

        /// <summary>A new library stream over <paramref name="inner"/>; the caller owns the handle.
        /// Closing it does not dispose <paramref name="inner"/>.</summary>
        internal static StreamHandle Create(Stream inner)
        {
            ManagedStreamAdapter adapter = new ManagedStreamAdapter(inner);
            long id;
            lock (Gate)
            {
                id = ++nextId;
                Live[id] = adapter;
            }
            StreamHandle handle;
            int status = NativeMethods.apm_stream_create_custom(ref vtable, new IntPtr(id), out handle);
            if (status != 0)
            {
                Exception error = ApmError.Last(status);
                lock (Gate) Live.Remove(id);
                throw error;
            }
            return handle;
        }

        static ManagedStreamAdapter Find(IntPtr ctx)
        {
            lock (Gate)
            {
                ManagedStreamAdapter adapter;
                return Live.TryGetValue(ctx.ToInt64(), out adapter) ? adapter : null;
            }
        }

        static ApmCustomComplete CompleteFunction(IntPtr pointer)
        {
            lock (Gate)
            {
                if (pointer != completePointer)
                {
                    completeDelegate = (ApmCustomComplete)Marshal.GetDelegateForFunctionPointer(pointer, typeof(ApmCustomComplete));
                    completePointer = pointer;
                }
                return completeDelegate;
            }
        }

        static int StatusOf(Exception error)
        {
            if (error is ObjectDisposedException) return (int)ApmStatus.ObjectDisposed;
            if (error is NotSupportedException) return (int)ApmStatus.NotSupported;
            if (error is InvalidOperationException) return (int)ApmStatus.InvalidOperation;
            return (int)ApmStatus.IO;
        }

        /// <summary>begin_read (<paramref name="read"/>) or begin_write: at most 1 MiB at a time.</summary>
        static int OnBegin(IntPtr ctx, IntPtr buffer, UIntPtr count, IntPtr complete, ulong token, bool read)
        {
            try
            {
                ManagedStreamAdapter adapter = Find(ctx);
                if (adapter == null || adapter.closed) return (int)ApmStatus.ObjectDisposed;
                int size = (int)Math.Min(count.ToUInt64(), 1UL << 20);
                return read
                    ? adapter.BeginRead(buffer, size, CompleteFunction(complete), token)
                    : adapter.BeginWrite(buffer, size, CompleteFunction(complete), token);
            }
            catch (Exception error)
            {
                return StatusOf(error);  // nothing started; never unwind into the library
            }
        }

        static void OnClose(IntPtr ctx)
        {
            ManagedStreamAdapter adapter;
            lock (Gate)
            {
                if (!Live.TryGetValue(ctx.ToInt64(), out adapter)) return;
                Live.Remove(ctx.ToInt64());
            }
            adapter.closed = true;  // the owner (Apmnet.SslStream) disposes the managed stream, or leaves it open
        }

        /// <summary>Runs <paramref name="begin"/> (the managed stream's BeginRead or BeginWrite) here on a
        /// thread-pool thread, else on the thread pool (see the class); a failure there completes the
        /// token with its status.</summary>
        int Start(Action begin, ApmCustomComplete complete, ulong token)
        {
            if (Thread.CurrentThread.IsThreadPoolThread)
            {
                begin();  // an exception is OnBegin's: nothing started
                return 0;
            }
            ThreadPool.UnsafeQueueUserWorkItem(delegate
            {
                try { begin(); }
                catch (Exception error) { complete(token, closed ? (int)ApmStatus.ObjectDisposed : StatusOf(error), UIntPtr.Zero); }
            }, null);
            return 0;
        }

        int BeginRead(IntPtr buffer, int count, ApmCustomComplete complete, ulong token)
        {
            if (readBuffer.Length < count) readBuffer = new byte[count];  // at most one read is pending
            byte[] managed = readBuffer;
            return Start(() => inner.BeginRead(managed, 0, count, delegate (IAsyncResult result)
            {
                int status = 0, read = 0;
                try
                {
                    read = inner.EndRead(result);
                    if (read > 0) Marshal.Copy(managed, 0, buffer, read);
                }
                catch (Exception error)
                {
                    status = closed ? (int)ApmStatus.ObjectDisposed : StatusOf(error);
                    read = 0;
                }
                complete(token, status, new UIntPtr((uint)read));
            }, null), complete, token);
        }

        int BeginWrite(IntPtr buffer, int count, ApmCustomComplete complete, ulong token)
        {
            if (writeBuffer.Length < count) writeBuffer = new byte[count];  // at most one write is pending
            byte[] managed = writeBuffer;
            Marshal.Copy(buffer, managed, 0, count);  // here: the library's buffer is valid during begin_write
            return Start(() => inner.BeginWrite(managed, 0, count, delegate (IAsyncResult result)
            {
                int status = 0;
                try
                {
                    inner.EndWrite(result);
                }
                catch (Exception error)
                {
                    status = closed ? (int)ApmStatus.ObjectDisposed : StatusOf(error);
                }
                complete(token, status, new UIntPtr((uint)(status == 0 ? count : 0)));
            }, null), complete, token);
        }
    }
}
