// The TransportContext of an Apmnet.SslStream: System.Net.TransportContext and ChannelBinding subclasses.
using System;
using System.Net;
using System.Runtime.InteropServices;
using System.Security.Authentication.ExtendedProtection;
using Apmnet.Interop;

namespace Apmnet
{
    /// <summary>SslStream.TransportContext: a System.Net.TransportContext whose GetChannelBinding returns
    /// .NET's ChannelBinding layout (the 32-byte SEC_CHANNEL_BINDINGS header, then "tls-unique:" or
    /// "tls-server-end-point:" and the token), or null when there is no binding of that kind.</summary>
    public sealed class ApmTransportContext : TransportContext
    {
        readonly TransportContextHandle safeHandle;
        readonly IntPtr handle;

        internal ApmTransportContext(TransportContextHandle handle)
        {
            safeHandle = handle;
            this.handle = handle.DangerousGetHandle();
        }

        public override ChannelBinding GetChannelBinding(ChannelBindingKind kind)
        {
            byte[] data = Copy(kind, false);
            return data.Length == 0 ? null : new ApmChannelBinding(data, this, kind);
        }

        /// <summary>The bare token (RFC 5929): the first Finished message for Unique, the hash of the
        /// server certificate for Endpoint; null when there is none.</summary>
        public byte[] GetChannelBindingToken(ChannelBindingKind kind)
        {
            byte[] token = Copy(kind, true);
            return token.Length == 0 ? null : token;
        }

        /// <summary>The library handle, for a call that takes the context itself.</summary>
        internal IntPtr Handle { get { return handle; } }

        internal void KeepAlive() { GC.KeepAlive(safeHandle); }

        byte[] Copy(ChannelBindingKind kind, bool token)
        {
            byte[] data = token
                ? Marshaling.CopyBytes((byte[] b, UIntPtr n, out UIntPtr full) => NativeMethods.apm_transport_context_get_channel_binding_token(handle, (int)kind, b, n, out full))
                : Marshaling.CopyBytes((byte[] b, UIntPtr n, out UIntPtr full) => NativeMethods.apm_transport_context_get_channel_binding(handle, (int)kind, b, n, out full));
            GC.KeepAlive(safeHandle);
            return data;
        }
    }

    /// <summary>A ChannelBinding held in unmanaged memory, as .NET's own: DangerousGetHandle() points at
    /// Size bytes.</summary>
    public sealed class ApmChannelBinding : ChannelBinding
    {
        readonly int size;

        /// <summary>Where it came from: NegotiateAuthentication's options hand the context and the kind to
        /// the library, which takes the binding from there.</summary>
        internal readonly ApmTransportContext Context;
        internal readonly ChannelBindingKind Kind;

        internal ApmChannelBinding(byte[] data, ApmTransportContext context, ChannelBindingKind kind) : base(true)
        {
            Context = context;
            Kind = kind;
            size = data.Length;
            SetHandle(Marshal.AllocHGlobal(size));
            Marshal.Copy(data, 0, handle, size);
        }

        public override int Size { get { return size; } }

        /// <summary>A copy of the Size bytes.</summary>
        public byte[] ToArray()
        {
            byte[] data = new byte[size];
            bool added = false;
            try
            {
                DangerousAddRef(ref added);
                Marshal.Copy(handle, data, 0, size);
            }
            finally
            {
                if (added) DangerousRelease();
            }
            return data;
        }

        protected override bool ReleaseHandle()
        {
            Marshal.FreeHGlobal(handle);
            return true;
        }
    }
}
