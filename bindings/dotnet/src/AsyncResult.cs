// IAsyncResult over apm_async_result, and the bridge from the library's callbacks into managed code.
using System;
using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;
using System.Threading;
using Apmnet.Interop;

namespace Apmnet
{
    /// <summary>The IAsyncResult every Begin method of this package returns; pass it to the matching End.</summary>
    /// <remarks>The AsyncCallback runs exactly once, where System.Net runs it: inline on the thread that
    /// called Begin, before Begin returns, when the operation completed inside Begin
    /// (CompletedSynchronously), or else on a .NET thread-pool thread, in the ExecutionContext of the
    /// Begin call. Never on one of the library's engine threads: a callback, or a Task continuation
    /// that FromAsync runs in it, may block (wait for another operation of the same stream) without
    /// holding up the library. An exception escaping an inline callback comes out of Begin; one
    /// escaping a pool callback is unhandled on that thread, as in .NET (it never unwinds through
    /// the library's native frames).</remarks>
    public sealed class ApmAsyncResult : IAsyncResult
    {
        readonly object owner;
        readonly AsyncCallback callback;
        readonly object state;
        readonly Action<IAsyncResult, long> progress;
        readonly object gate = new object();
        GCHandle[] pins;             // buffers the library reads or writes, pinned until completion
        ManualResetEvent waitHandle; // created on demand, set when the completion callback arrives
        bool callbackArrived;
        IntPtr handle;               // apm_async_result *, valid until End releases it
        volatile bool ended;
        int completedSynchronously = -1;
        ExecutionContext context;    // the Begin caller's, for the callback on the thread pool
        bool completedInline;        // the completion arrived inside Begin, on the Begin thread

        // The result whose Begin call the current thread is inside (the completion of that one, and
        // only that one, is inline).
        [ThreadStatic] static ApmAsyncResult starting;

        internal ApmAsyncResult(object owner, AsyncCallback callback, object state, Action<IAsyncResult, long> progress, params byte[][] buffers)
        {
            this.owner = owner;
            this.callback = callback;
            this.state = state;
            this.progress = progress;
            int count = 0;
            foreach (byte[] buffer in buffers) if (buffer != null) count++;
            pins = new GCHandle[count];
            count = 0;
            foreach (byte[] buffer in buffers)
                if (buffer != null) pins[count++] = GCHandle.Alloc(buffer, GCHandleType.Pinned);
        }

        internal object Owner { get { return owner; } }
        internal IntPtr Handle { get { return handle; } }

        /// <summary>The address of a pinned buffer given to the constructor (NULL for null).</summary>
        internal IntPtr Address(byte[] buffer)
        {
            if (buffer == null) return IntPtr.Zero;
            foreach (GCHandle pin in pins)
                if (pin.Target == buffer) return pin.AddrOfPinnedObject();
            throw new InvalidOperationException("buffer not pinned");
        }

        public object AsyncState { get { return state; } }

        public bool IsCompleted
        {
            get { return Query(NativeMethods.apm_async_result_is_completed) ?? true; }
        }

        public bool CompletedSynchronously
        {
            get
            {
                if (completedSynchronously >= 0) return completedSynchronously == 1;
                return Query(NativeMethods.apm_async_result_completed_synchronously) ?? completedSynchronously == 1;
            }
        }

        /// <summary>Set when the operation has completed (just before the AsyncCallback runs).</summary>
        public WaitHandle AsyncWaitHandle
        {
            get
            {
                lock (gate)
                {
                    if (waitHandle == null) waitHandle = new ManualResetEvent(callbackArrived || ended);
                    return waitHandle;
                }
            }
        }

        /// <summary>apm_async_result_wait: true if the operation completed within the time.</summary>
        public bool Wait(int millisecondsTimeout)
        {
            return Query((IntPtr h, out int signaled) => NativeMethods.apm_async_result_wait(h, millisecondsTimeout, out signaled)) ?? true;
        }

        /// <summary>apm_async_result_cancel: the pending operation completes with
        /// SocketError.OperationAborted and its callback runs (on the thread pool); a cancelled read
        /// consumed no byte; a completed operation is left alone. NotSupportedException when it cannot be
        /// cancelled (it goes on).</summary>
        public void Cancel()
        {
            if (ended) return;
            int status = NativeMethods.apm_async_result_cancel(handle);
            if (status != 0 && !ended) throw ApmError.Last(status);
        }

        /// <summary>The library's 0/1 answer about this result, or null once End has released it.</summary>
        bool? Query(Int32Getter getter)
        {
            if (ended) return null;
            int value;
            int status = getter(handle, out value);
            if (status != 0)
            {
                Exception error = ApmError.Last(status);
                if (ended) return null;  // End released it on another thread meanwhile
                throw error;
            }
            return value != 0;
        }

        void Unpin()
        {
            GCHandle[] held;
            lock (gate) { held = pins; pins = new GCHandle[0]; }
            foreach (GCHandle pin in held) pin.Free();
        }

        // ---- Begin / End -----------------------------------------------------------------------------

        internal delegate int BeginCall(ApmAsyncResult result, IntPtr state, out IntPtr resultHandle);
        internal delegate int EndCall(IntPtr resultHandle);

        // The two function pointers the library calls. Static: they live as long as the process, so the
        // garbage collector can never take them away under a pending operation.
        internal static readonly ApmAsyncCallback CompletionThunk = OnCompleted;
        internal static readonly ApmSendFileProgress ProgressThunk = OnProgress;
        static readonly WaitCallback PoolCallback = RunCallback;
        static readonly ContextCallback ContextCallback = InvokeCallback;

        // Callbacks queued to the thread pool that have not returned yet, so that a shutdown can wait for
        // the ones it caused (see WaitForCallbacks); and how many of them the current thread is in.
        static readonly object QueuedGate = new object();
        static int queued;
        [ThreadStatic] static int runningHere;

        /// <summary>Set by the process-exit handler: the callbacks of the operations it aborts then run,
        /// and an exception escaping one is dropped rather than ending the exiting process abnormally.</summary>
        internal static volatile bool Exiting;

        /// <summary>Runs a Begin call. The state passed to the library is a GCHandle to this object, which
        /// (with the pinned buffers) stays alive until the library has called back. When the operation
        /// completed inside the call, the AsyncCallback runs here, after the library's Begin has returned
        /// and before this one does.</summary>
        internal ApmAsyncResult Start(BeginCall call)
        {
            if (callback != null) context = ExecutionContext.Capture();  // null when the flow is suppressed
            GCHandle self = GCHandle.Alloc(this);
            int status;
            IntPtr resultHandle;
            ApmAsyncResult outer = starting;
            starting = this;
            try
            {
                status = call(this, GCHandle.ToIntPtr(self), out resultHandle);
            }
            catch
            {
                self.Free();
                Unpin();
                throw;
            }
            finally
            {
                starting = outer;
            }
            if (status != 0)
            {
                Exception error = ApmError.Last(status);  // first: the record belongs to this thread
                self.Free();                              // a failed Begin never calls back
                Unpin();
                throw error;
            }
            lock (gate) { if (handle == IntPtr.Zero) handle = resultHandle; }
            if (completedInline) callback(this);  // CompletedSynchronously: on the caller's thread
            return this;
        }

        /// <summary>Runs an End call for <paramref name="asyncResult"/> (null and foreign results are
        /// passed on to the library, which reports them as .NET would).</summary>
        internal static void End(IAsyncResult asyncResult, EndCall call)
        {
            ApmAsyncResult result = asyncResult as ApmAsyncResult;
            if (asyncResult != null && result == null)
                throw new ArgumentException(ApmError.NotReturnedByThisClass, "asyncResult");
            IntPtr resultHandle = IntPtr.Zero;
            if (result != null)
            {
                result.RememberCompletedSynchronously();
                resultHandle = result.handle;
            }
            int status = call(resultHandle);
            if (status != 0)
            {
                Exception error = ApmError.Last(status);
                // A null or foreign result is refused before End looks at it; any other outcome released it.
                if (result != null && status != (int)ApmStatus.ArgumentNull && status != (int)ApmStatus.Argument)
                    result.Released();
                throw error;
            }
            result.Released();
        }

        void RememberCompletedSynchronously()
        {
            // Fixed once Begin has returned; read it while the library still has the result.
            if (ended || completedSynchronously >= 0 || handle == IntPtr.Zero) return;
            int value;
            if (NativeMethods.apm_async_result_completed_synchronously(handle, out value) == 0)
                completedSynchronously = value;
        }

        void Released()
        {
            if (completedSynchronously < 0) completedSynchronously = 0;
            ended = true;
            lock (gate) { if (waitHandle != null) waitHandle.Set(); }
        }

        /// <summary>The library's completion callback (on an engine thread, or inline inside Begin): no
        /// user code runs here. The AsyncCallback is left to Start (inline) or to the thread pool.</summary>
        static void OnCompleted(IntPtr resultHandle, IntPtr state)
        {
            try
            {
                GCHandle self = GCHandle.FromIntPtr(state);
                ApmAsyncResult result = (ApmAsyncResult)self.Target;
                self.Free();
                result.Unpin();  // complete: the library is done with the buffers
                lock (result.gate)
                {
                    if (result.handle == IntPtr.Zero) result.handle = resultHandle;  // inline, before Begin returned
                    result.callbackArrived = true;
                    if (result.waitHandle != null) result.waitHandle.Set();
                }
                if (result.callback == null) return;
                if (starting == result)
                {
                    result.completedInline = true;
                    return;
                }
                lock (QueuedGate) queued++;
                ThreadPool.UnsafeQueueUserWorkItem(PoolCallback, result);
            }
            catch (Exception error)
            {
                Rethrow(error);
            }
        }

        static void RunCallback(object state)
        {
            ApmAsyncResult result = (ApmAsyncResult)state;
            runningHere++;
            try
            {
                if (result.context == null) result.callback(result);
                else ExecutionContext.Run(result.context, ContextCallback, result);
            }
            catch (Exception)
            {
                if (!Exiting) throw;  // unhandled on this pool thread, as in .NET
            }
            finally
            {
                runningHere--;
                lock (QueuedGate)
                {
                    if (--queued == 0) Monitor.PulseAll(QueuedGate);
                }
            }
        }

        /// <summary>Waits until the AsyncCallbacks queued to the thread pool have returned (but for the
        /// ones the calling thread is inside), for at most <paramref name="millisecondsTimeout"/> (-1: no
        /// limit): after apm_runtime_shutdown, the callbacks of the operations it aborted have run.</summary>
        internal static bool WaitForCallbacks(int millisecondsTimeout)
        {
            int deadline = Environment.TickCount + millisecondsTimeout;
            lock (QueuedGate)
            {
                while (queued > runningHere)
                {
                    int left = millisecondsTimeout < 0 ? Timeout.Infinite : deadline - Environment.TickCount;
                    if (millisecondsTimeout >= 0 && left <= 0) return false;
                    Monitor.Wait(QueuedGate, left);
                }
                return true;
            }
        }

        static void InvokeCallback(object state)
        {
            ApmAsyncResult result = (ApmAsyncResult)state;
            result.callback(result);
        }

        static void OnProgress(IntPtr resultHandle, long bytesSent, IntPtr state)
        {
            try
            {
                ApmAsyncResult result = (ApmAsyncResult)GCHandle.FromIntPtr(state).Target;
                if (result.progress != null) result.progress(result, bytesSent);
            }
            catch (Exception error)
            {
                Rethrow(error);
            }
        }

        static void Rethrow(Exception error)
        {
            // Never unwind into native frames; surface it like an exception in a .NET APM callback.
            ExceptionDispatchInfo captured = ExceptionDispatchInfo.Capture(error);
            ThreadPool.QueueUserWorkItem(delegate { captured.Throw(); });
        }
    }
}
