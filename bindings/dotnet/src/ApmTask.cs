// Tasks over Begin/End, as System.Net's own ReadAsync/WriteAsync: completed where the AsyncCallback runs
// (inline when the operation completed inside Begin, else on the thread pool), with the CancellationToken
// wired to the library's cancel.
using System;
using System.Threading;
using System.Threading.Tasks;

namespace Apmnet
{
    internal sealed class ApmTask<T>
    {
        static readonly Action<object> CancelOperation = Cancel;

        readonly TaskCompletionSource<T> source = new TaskCompletionSource<T>();
        readonly Func<IAsyncResult, T> end;
        readonly CancellationToken token;
        readonly object gate = new object();
        CancellationTokenRegistration registration;
        bool registered, done;

        ApmTask(Func<IAsyncResult, T> end, CancellationToken token)
        {
            this.end = end;
            this.token = token;
        }

        /// <summary>Starts <paramref name="begin"/>(callback, state) and returns the Task of its End. Begin's
        /// own exceptions (arguments, a disposed stream) are thrown here, as .NET's ReadAsync throws them.
        /// A cancellation request cancels the library's operation (apm_async_result_cancel): the Task is
        /// then cancelled, unless the operation had completed anyway. An operation the library cannot
        /// cancel (NotSupported) goes on, and the Task completes with its outcome.</summary>
        internal static Task<T> Run(Func<AsyncCallback, object, IAsyncResult> begin, Func<IAsyncResult, T> end, CancellationToken token)
        {
            if (token.IsCancellationRequested)
                return Task.FromCanceled<T>(token);
            ApmTask<T> operation = new ApmTask<T>(end, token);
            IAsyncResult result = begin(operation.Completed, null);
            if (token.CanBeCanceled) operation.Register(result);
            return operation.source.Task;
        }

        void Register(IAsyncResult result)
        {
            lock (gate) { if (done) return; }
            CancellationTokenRegistration added = token.Register(CancelOperation, result);
            lock (gate)
            {
                if (!done)
                {
                    registration = added;
                    registered = true;
                    return;
                }
            }
            added.Dispose();
        }

        void Completed(IAsyncResult result)
        {
            try
            {
                source.TrySetResult(end(result));
            }
            catch (Exception error)
            {
                if (token.IsCancellationRequested) source.TrySetCanceled(token);
                else source.TrySetException(error);
            }
            finally
            {
                bool dispose;
                lock (gate)
                {
                    done = true;
                    dispose = registered;
                    registered = false;
                }
                if (dispose) registration.Dispose();
            }
        }

        static void Cancel(object result)
        {
            ApmAsyncResult pending = result as ApmAsyncResult;
            if (pending == null) return;
            try
            {
                pending.Cancel();
            }
            catch (NotSupportedException) { }   // it cannot be cancelled: it goes on
            catch (ObjectDisposedException) { } // closed meanwhile: it completes with that error
        }
    }
}
