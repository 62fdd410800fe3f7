// apm_status codes and the .NET exception each one names, built from the calling thread's error record.
using System;
using System.IO;
using System.Net;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Text;
using Apmnet.Interop;

namespace Apmnet
{
    /// <summary>The library's status codes (apm_status).</summary>
    public enum ApmStatus
    {
        Ok = 0,
        ArgumentNull = -1,
        ArgumentOutOfRange = -2,
        Argument = -3,
        InvalidOperation = -4,
        NotSupported = -5,
        ObjectDisposed = -6,
        IO = -7,
        Socket = -8,
        Authentication = -9,
        InvalidCredential = -10,
        ProtocolViolation = -11,
        Web = -12,
        FileNotFound = -13,
        DirectoryNotFound = -14,
        PlatformNotSupported = -15,
        Timeout = -16,
        OutOfMemory = -17,
        Internal = -18,
        UnauthorizedAccess = -19,
        Cryptographic = -20,
    }

    /// <summary>A System.Net.Sockets.SocketException whose Message is the library's text.
    /// SocketErrorCode is .NET's SocketError; ErrorCode/NativeErrorCode follow .NET on Linux (errno).</summary>
    [Serializable]
    public class ApmSocketException : SocketException
    {
        readonly string message;

        public ApmSocketException(int socketError, int errno, string message) : base(socketError)
        {
            this.message = message;
            Errno = errno;
        }

        /// <summary>The errno the library saw (0 if none).</summary>
        public int Errno { get; private set; }

        public override string Message
        {
            get { return string.IsNullOrEmpty(message) ? base.Message : message; }
        }
    }

    /// <summary>APM_E_INTERNAL: a bug inside libapmnet (for example a caught panic).</summary>
    [Serializable]
    public class ApmInternalException : SystemException
    {
        public ApmInternalException(string message) : base(message) { }
    }

    internal static class ApmError
    {
        internal const string NotReturnedByThisClass =
            "The IAsyncResult object was not returned from the corresponding asynchronous method on this class.";

        /// <summary>Throws the exception for a failed call. Call it right after the call, on the same
        /// thread, before any other library call: the error record is per thread.</summary>
        internal static void Check(int status)
        {
            if (status != 0) throw Last(status);
        }

        /// <summary>The exception for <paramref name="status"/>, from this thread's error record.</summary>
        internal static Exception Last(int status)
        {
            string message = ReadText(true);
            string inner = ReadText(false);
            int socketError = NativeMethods.apm_last_error_socket_error();
            int errno = NativeMethods.apm_last_error_errno();
            int webStatus = NativeMethods.apm_last_error_web_status();
            int httpStatus = NativeMethods.apm_last_error_http_status();
            if (string.IsNullOrEmpty(message))
                message = StatusName(status) + " (" + status + ")";

            Exception innerException = null;
            if (socketError != 0 || errno != 0)
                innerException = new ApmSocketException(socketError, errno, string.IsNullOrEmpty(inner) ? message : inner);
            else if (!string.IsNullOrEmpty(inner))
                innerException = new Exception(inner);

            Exception error;
            switch ((ApmStatus)status)
            {
                case ApmStatus.ArgumentNull: error = new ArgumentNullException(null, message); break;
                case ApmStatus.ArgumentOutOfRange: error = new ArgumentOutOfRangeException(null, message); break;
                case ApmStatus.Argument: error = new ArgumentException(message); break;
                case ApmStatus.InvalidOperation: error = new InvalidOperationException(message); break;
                case ApmStatus.NotSupported: error = new NotSupportedException(message); break;
                case ApmStatus.ObjectDisposed: error = new ObjectDisposedException(null, message); break;
                case ApmStatus.IO: error = new IOException(message, innerException); break;
                case ApmStatus.Socket: error = new ApmSocketException(socketError, errno, message); break;
                case ApmStatus.Authentication: error = new AuthenticationException(message, innerException); break;
                case ApmStatus.InvalidCredential: error = new InvalidCredentialException(message, innerException); break;
                case ApmStatus.ProtocolViolation: error = new ProtocolViolationException(message); break;
                case ApmStatus.Web: error = new WebException(message, innerException, (WebExceptionStatus)webStatus, HttpWebResponse.FromLastError(httpStatus)); break;
                case ApmStatus.FileNotFound: error = new FileNotFoundException(message); break;
                case ApmStatus.DirectoryNotFound: error = new DirectoryNotFoundException(message); break;
                case ApmStatus.PlatformNotSupported: error = new PlatformNotSupportedException(message); break;
                case ApmStatus.Timeout: error = new TimeoutException(message); break;
                case ApmStatus.OutOfMemory: error = new OutOfMemoryException(message); break;
                case ApmStatus.UnauthorizedAccess: error = new UnauthorizedAccessException(message); break;
                case ApmStatus.Cryptographic: error = new System.Security.Cryptography.CryptographicException(message); break;
                default: error = new ApmInternalException(message); break;
            }
            error.Data["apmnet.status"] = StatusName(status);
            if (errno != 0) error.Data["apmnet.errno"] = errno;
            if (httpStatus != 0) error.Data["apmnet.http_status"] = httpStatus;
            return error;
        }

        internal static string StatusName(int status)
        {
            return Marshaling.FromStatic(NativeMethods.apm_status_name(status)) ?? "APM_UNKNOWN";
        }

        static string ReadText(bool message)
        {
            byte[] buffer = new byte[256];
            UIntPtr length;
            int status = Read(message, buffer, out length);
            if (status != 0) return "";
            if (length.ToUInt64() >= (ulong)buffer.Length)
            {
                buffer = new byte[checked((int)length.ToUInt64() + 1)];
                if (Read(message, buffer, out length) != 0) return "";
            }
            return Encoding.UTF8.GetString(buffer, 0, (int)Math.Min(length.ToUInt64(), (ulong)buffer.Length - 1));
        }

        static int Read(bool message, byte[] buffer, out UIntPtr length)
        {
            return message
                ? NativeMethods.apm_last_error_message(buffer, Marshaling.Length(buffer), out length)
                : NativeMethods.apm_last_error_inner_message(buffer, Marshaling.Length(buffer), out length);
        }
    }
}
