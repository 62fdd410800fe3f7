// Handles, library loading, process-exit shutdown and the small conversions every call needs.
using System;
using System.IO;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;

namespace Apmnet.Interop
{
    /// <summary>Owns one apm_socket handle: apm_socket_close runs exactly once, from Dispose or, if the
    /// wrapper is dropped, from the finalizer (apm_socket_close never blocks).</summary>
    /// <remarks>Calls keep passing the handle's value after it was closed: the library's handle table
    /// recognises a closed handle and answers APM_E_OBJECT_DISPOSED with .NET's message, and an End on
    /// a closed socket still releases its result. Marshalling the SafeHandle itself would instead throw
    /// the marshaller's own ObjectDisposedException and leak that result.</remarks>
    internal sealed class SocketHandle : SafeHandle
    {
        public SocketHandle() : base(IntPtr.Zero, true) { }
        public override bool IsInvalid { get { return handle == IntPtr.Zero; } }
        protected override bool ReleaseHandle() { return NativeMethods.apm_socket_close(handle) == 0; }
    }

    /// <summary>Owns one apm_stream handle (apm_stream_close, which also closes an owned socket).</summary>
    internal sealed class StreamHandle : SafeHandle
    {
        public StreamHandle() : base(IntPtr.Zero, true) { }
        public override bool IsInvalid { get { return handle == IntPtr.Zero; } }
        protected override bool ReleaseHandle() { return NativeMethods.apm_stream_close(handle) == 0; }
    }

    /// <summary>Owns one apm_transport_context handle (apm_transport_context_close).</summary>
    internal sealed class TransportContextHandle : SafeHandle
    {
        public TransportContextHandle() : base(IntPtr.Zero, true) { }
        public override bool IsInvalid { get { return handle == IntPtr.Zero; } }
        protected override bool ReleaseHandle() { return NativeMethods.apm_transport_context_close(handle) == 0; }
    }

    /// <summary>Owns one apm_http_request handle (apm_http_request_close).</summary>
    internal sealed class HttpRequestHandle : SafeHandle
    {
        public HttpRequestHandle() : base(IntPtr.Zero, true) { }
        public override bool IsInvalid { get { return handle == IntPtr.Zero; } }
        protected override bool ReleaseHandle() { return NativeMethods.apm_http_request_close(handle) == 0; }
    }

    /// <summary>Owns one apm_http_response handle (apm_http_response_close).</summary>
    internal sealed class HttpResponseHandle : SafeHandle
    {
        public HttpResponseHandle() : base(IntPtr.Zero, true) { }
        public override bool IsInvalid { get { return handle == IntPtr.Zero; } }
        protected override bool ReleaseHandle() { return NativeMethods.apm_http_response_close(handle) == 0; }
    }

    /// <summary>A library function that copies text or bytes out: (buffer, buffer length, out full length).</summary>
    internal delegate int CopyOut(byte[] buffer, UIntPtr bufferLength, out UIntPtr fullLength);

    /// <summary>A library function that reads one int32_t of a handle: (handle, out value).</summary>
    internal delegate int Int32Getter(IntPtr handle, out int value);

    /// <summary>The library's calls on buffer[offset..offset+count] that give a byte count (Socket's Send and
    /// Receive, a stream's Read, and their Begin/End forms): .NET's (buffer, offset, count) arguments become
    /// the C API's here, in one place.</summary>
    internal static class Transfer
    {
        /// <summary>apm_socket_send, apm_socket_receive, apm_stream_read.</summary>
        internal delegate int Call(IntPtr handle, byte[] buffer, UIntPtr bufferLength, UIntPtr offset, UIntPtr count, out UIntPtr transferred);
        /// <summary>apm_socket_begin_send, apm_socket_begin_receive, apm_stream_begin_read, apm_stream_begin_write.</summary>
        internal delegate int BeginCall(IntPtr handle, IntPtr buffer, UIntPtr bufferLength, UIntPtr offset, UIntPtr count,
            ApmAsyncCallback callback, IntPtr state, out IntPtr result);
        /// <summary>apm_socket_end_send, apm_socket_end_receive, apm_stream_end_read.</summary>
        internal delegate int EndCall(IntPtr handle, IntPtr result, out UIntPtr transferred);

        /// <summary>Runs a blocking call; returns the byte count.</summary>
        internal static int Run(Call call, IntPtr handle, byte[] buffer, int offset, int count)
        {
            UIntPtr transferred;
            ApmError.Check(call(handle, buffer, Marshaling.Length(buffer), Marshaling.Size(offset), Marshaling.Size(count), out transferred));
            return Marshaling.ToInt(transferred);
        }

        /// <summary>Starts a Begin call; the buffer stays pinned until the operation completes.</summary>
        internal static IAsyncResult Begin(object owner, BeginCall call, IntPtr handle, byte[] buffer, int offset, int count,
            AsyncCallback callback, object state)
        {
            return new ApmAsyncResult(owner, callback, state, null, buffer).Start(
                (ApmAsyncResult r, IntPtr s, out IntPtr h) => call(handle, r.Address(buffer), Marshaling.Length(buffer),
                    Marshaling.Size(offset), Marshaling.Size(count), ApmAsyncResult.CompletionThunk, s, out h));
        }

        /// <summary>Runs the End call of <paramref name="asyncResult"/>; returns the byte count.</summary>
        internal static int End(EndCall call, IntPtr handle, IAsyncResult asyncResult)
        {
            UIntPtr transferred = UIntPtr.Zero;
            ApmAsyncResult.End(asyncResult, r => call(handle, r, out transferred));
            return Marshaling.ToInt(transferred);
        }
    }

    /// <summary>Finds libapmnet and shuts its runtime down when the process exits.</summary>
    internal static class Library
    {
        static readonly object Gate = new object();
        static bool initialized;
        const int ExitCallbackTimeout = 10000;

        /// <summary>Called before the first library call of each public class.</summary>
        internal static void EnsureInitialized()
        {
            lock (Gate)
            {
                if (initialized) return;
                initialized = true;
                RegisterResolver();
                // Abort pending operations (their callbacks run) and join the engine threads while the
                // runtime can still run managed callbacks: after Main returns or on Environment.Exit.
                // Their callbacks run on the thread pool, which still runs while ProcessExit handlers do;
                // a callback that does not return within the time is left behind, and an exception
                // escaping one is dropped (the process is ending).
                AppDomain.CurrentDomain.ProcessExit += delegate
                {
                    ApmAsyncResult.Exiting = true;
                    NativeMethods.apm_runtime_shutdown();
                    ApmAsyncResult.WaitForCallbacks(ExitCallbackTimeout);
                };
            }
        }

        // .NET Core 3+ has NativeLibrary.SetDllImportResolver; it is reached through reflection because
        // the wrapper is compiled against Mono's mscorlib, which lacks it. Without it (Mono) the default
        // search applies: libapmnet.so next to the assembly or on LD_LIBRARY_PATH.
        static void RegisterResolver()
        {
            Type nativeLibrary = Type.GetType("System.Runtime.InteropServices.NativeLibrary");
            Type resolverType = Type.GetType("System.Runtime.InteropServices.DllImportResolver");
            if (nativeLibrary == null || resolverType == null) return;
            MethodInfo set = nativeLibrary.GetMethod("SetDllImportResolver");
            tryLoad = nativeLibrary.GetMethod("TryLoad", new[] { typeof(string), typeof(IntPtr).MakeByRefType() });
            if (set == null || tryLoad == null) return;
            MethodInfo resolve = typeof(Library).GetMethod("Resolve", BindingFlags.NonPublic | BindingFlags.Static);
            set.Invoke(null, new object[] { typeof(Library).Assembly, Delegate.CreateDelegate(resolverType, resolve) });
        }

        static MethodInfo tryLoad;

        /// <summary>Search order: APMNET_LIBRARY; libapmnet.so next to Apmnet.dll; target/release or
        /// target/debug of the apmnet checkout above it; the loader's search (LD_LIBRARY_PATH, system)
        /// for libapmnet.so, then libapmnet.so.0.</summary>
        static IntPtr Resolve(string name, Assembly assembly, DllImportSearchPath? searchPath)
        {
            if (name != NativeMethods.Library) return IntPtr.Zero;
            string fromEnvironment = Environment.GetEnvironmentVariable("APMNET_LIBRARY");
            if (!string.IsNullOrEmpty(fromEnvironment))
                return Load(fromEnvironment);  // explicit: if it does not load, only the default search is left
            string here = Path.GetDirectoryName(typeof(Library).Assembly.Location);
            IntPtr loaded = Load(Path.Combine(here, "libapmnet.so"));
            for (DirectoryInfo folder = new DirectoryInfo(here); loaded == IntPtr.Zero && folder != null; folder = folder.Parent)
            {
                if (!File.Exists(Path.Combine(folder.FullName, "Cargo.toml"))) continue;
                loaded = Load(Path.Combine(folder.FullName, "target", "release", "libapmnet.so"));
                if (loaded == IntPtr.Zero) loaded = Load(Path.Combine(folder.FullName, "target", "debug", "libapmnet.so"));
                break;
            }
            if (loaded == IntPtr.Zero) loaded = Load("libapmnet.so");
            if (loaded == IntPtr.Zero) loaded = Load("libapmnet.so.0");
            return loaded;
        }

        static IntPtr Load(string path)
        {
            if (path.IndexOf('/') >= 0 && !File.Exists(path)) return IntPtr.Zero;
            object[] arguments = { path, IntPtr.Zero };
            return (bool)tryLoad.Invoke(null, arguments) ? (IntPtr)arguments[1] : IntPtr.Zero;
        }
    }

    internal static class Marshaling
    {
        /// <summary>A NUL-terminated UTF-8 copy of <paramref name="text"/> (null stays NULL).</summary>
        internal static byte[] Utf8(string text)
        {
            if (text == null) return null;
            byte[] bytes = new byte[Encoding.UTF8.GetByteCount(text) + 1];
            Encoding.UTF8.GetBytes(text, 0, text.Length, bytes, 0);
            return bytes;
        }

        /// <summary>int -> size_t the way C sees it: a negative value becomes a huge one, which the
        /// library rejects with APM_E_ARGUMENT_OUT_OF_RANGE and .NET's message.</summary>
        internal static UIntPtr Size(int value)
        {
            return new UIntPtr(unchecked((ulong)(long)value));
        }

        internal static UIntPtr Length(byte[] buffer)
        {
            return new UIntPtr(buffer == null ? 0UL : (ulong)buffer.Length);
        }

        internal static int ToInt(UIntPtr value)
        {
            return checked((int)value.ToUInt64());
        }

        /// <summary>The int32_t an Int32Getter gives for <paramref name="handle"/>.</summary>
        internal static int GetInt32(IntPtr handle, Int32Getter getter)
        {
            int value;
            ApmError.Check(getter(handle, out value));
            return value;
        }

        /// <summary>A 0/1 flag an Int32Getter gives for <paramref name="handle"/>; false once the handle was
        /// closed (as .NET's CanRead, CanWrite and IsAuthenticated after Dispose).</summary>
        internal static bool GetFlag(IntPtr handle, Int32Getter getter)
        {
            int value;
            int status = getter(handle, out value);
            if (status == (int)ApmStatus.ObjectDisposed) return false;
            ApmError.Check(status);
            return value != 0;
        }

        /// <summary>The bytes a CopyOut function gives: asks for the size first, then fills a buffer.</summary>
        internal static byte[] CopyBytes(CopyOut copy)
        {
            UIntPtr length;
            ApmError.Check(copy(null, UIntPtr.Zero, out length));
            byte[] buffer = new byte[checked((int)length.ToUInt64())];
            if (buffer.Length == 0) return buffer;
            ApmError.Check(copy(buffer, Length(buffer), out length));
            return buffer;
        }

        /// <summary>The UTF-8 text a CopyOut function gives (it NUL-terminates: one more byte).</summary>
        internal static string CopyText(CopyOut copy)
        {
            UIntPtr length;
            ApmError.Check(copy(null, UIntPtr.Zero, out length));
            int size = checked((int)length.ToUInt64());
            byte[] buffer = new byte[size + 1];
            ApmError.Check(copy(buffer, Length(buffer), out length));
            return Encoding.UTF8.GetString(buffer, 0, size);
        }

        /// <summary>A static NUL-terminated ASCII/UTF-8 string owned by the library.</summary>
        internal static string FromStatic(IntPtr text)
        {
            if (text == IntPtr.Zero) return null;
            int length = 0;
            while (Marshal.ReadByte(text, length) != 0) length++;
            byte[] bytes = new byte[length];
            Marshal.Copy(text, bytes, 0, length);
            return Encoding.UTF8.GetString(bytes);
        }
    }
}
