// The library's runtime (its engine threads) and version.
using System;
using System.Threading;
using Apmnet.Interop;

namespace Apmnet
{
    public static class ApmRuntime
    {
        /// <summary>The C API version this wrapper was written against (major, minor).</summary>
        public static readonly Version ApiVersion = new Version(0, 1);

        static ApmRuntime() { Library.EnsureInitialized(); }

        /// <summary>apm_runtime_configure: before the first use only (InvalidOperationException after).
        /// threads 0 = default (cores, or APMNET_THREADS), else 1..64; spinMicroseconds &gt;= 0.</summary>
        public static void Configure(int threads, int spinMicroseconds)
        {
            ApmError.Check(NativeMethods.apm_runtime_configure(threads, spinMicroseconds));
        }

        /// <summary>Aborts pending operations and joins the engine threads; when it returns, the
        /// AsyncCallbacks of the aborted operations have run (on the thread pool). The runtime starts
        /// again on next use. Called for you when the process exits. Not allowed from the callbacks that
        /// run on an engine thread (a send-file progress callback, an SslStream validation or selection
        /// callback): InvalidOperationException.</summary>
        public static void Shutdown()
        {
            ApmError.Check(NativeMethods.apm_runtime_shutdown());
            ApmAsyncResult.WaitForCallbacks(Timeout.Infinite);
        }

        /// <summary>The loaded library's version text (apm_version).</summary>
        public static string VersionText
        {
            get { return Marshaling.FromStatic(NativeMethods.apm_version()); }
        }

        /// <summary>The loaded library's version (apm_version_number).</summary>
        public static Version Version
        {
            get
            {
                uint number = NativeMethods.apm_version_number();
                return new Version((int)(number >> 16), (int)((number >> 8) & 0xFF), (int)(number & 0xFF));
            }
        }

        /// <summary>"APM_E_SOCKET" for -8 and so on ("APM_UNKNOWN" for other values).</summary>
        public static string StatusName(int status)
        {
            return ApmError.StatusName(status);
        }
    }
}
