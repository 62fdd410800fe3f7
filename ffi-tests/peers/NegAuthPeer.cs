// NegAuthPeer: .NET 8's real System.Net.Security.NegotiateAuthentication at the other end of a test
// (compiled by mcs, run on .NET 8), its blobs carried by the test over a TCP connection.
//
//   NegAuthPeer client PORT PACKAGE USER PASSWORD DOMAIN SPN LEVEL
//   NegAuthPeer server PORT PACKAGE LEVEL          (the default credential: NTLM_USER_FILE, the keytab)
//
// It connects to 127.0.0.1:PORT. Frames both ways: a kind byte, a 32-bit little-endian length, the
// bytes. Kinds: 1 a blob with ContinueNeeded, 2 a blob with Completed, 3 a failure (the status
// name), 4 a wrapped message, 5 a MIC. The handshake: the client steps first; a side that is not
// complete steps on every blob it receives and answers with its own frame; both stop once both
// said Completed. Then the client sends a wrap of "wrapped by the client", the server unwraps it
// and sends a wrap of "wrapped by the server"; then each sends the MIC of "integrity" the same
// way and checks the other's. It prints "AUTH <package> <remote> <IsEncrypted> <IsSigned>
// <IsMutuallyAuthenticated>", "UNWRAP <text> <wasEncrypted>", "MIC <True|False>", or
// "FAIL <status or exception>" (exit 2).
//
// mcs knows neither NegotiateAuthentication (.NET 7+) nor ReadOnlySpan: the class is reached by
// reflection, its span methods through a small DynamicMethod (SpanCall) that turns byte[] into
// ReadOnlySpan<byte>, which reflection's Invoke cannot. .NET 8 has ComputeIntegrityCheck and
// VerifyIntegrityCheck as the internal GetMIC and VerifyMIC (public, renamed, from .NET 9):
// SpanCall takes either name and reaches internal methods too.
using System;
using System.IO;
using System.Net;
using System.Net.Sockets;
using System.Reflection;
using System.Reflection.Emit;
using System.Text;

static class NegAuthPeer
{
    static Stream net;

    static void Send(int kind, byte[] data)
    {
        data = data ?? new byte[0];
        net.WriteByte((byte)kind);
        net.Write(BitConverter.GetBytes(data.Length), 0, 4);
        net.Write(data, 0, data.Length);
        net.Flush();
    }

    static void ReadFull(byte[] buf)
    {
        int got = 0;
        while (got < buf.Length)
        {
            int k = net.Read(buf, got, buf.Length - got);
            if (k == 0) throw new EndOfStreamException("the test closed the connection");
            got += k;
        }
    }

    static byte[] Receive(out int kind)
    {
        byte[] head = new byte[5];
        ReadFull(head);
        kind = head[0];
        byte[] data = new byte[BitConverter.ToInt32(head, 1)];
        ReadFull(data);
        if (kind == 3) throw new Exception("the test side failed: " + Encoding.ASCII.GetString(data));
        return data;
    }

    static Type Find(string name)
    {
        Type t = Type.GetType(name);
        if (t == null) throw new TypeLoadException(name);
        return t;
    }

    static void Set(object o, string property, object value)
    {
        PropertyInfo p = o.GetType().GetProperty(property);
        p.SetValue(o, p.PropertyType.IsEnum ? Enum.ToObject(p.PropertyType, value) : value, null);
    }

    static object Get(object o, string property)
    {
        return o.GetType().GetProperty(property).GetValue(o, null);
    }

    // Calls the method `names` ("A|B": the first that exists) of `target` with `args`: byte[]
    // where the method takes a ReadOnlySpan<byte>; out parameters come back in `args`.
    static object SpanCall(object target, string names, object[] args)
    {
        MethodInfo m = null;
        foreach (string name in names.Split('|'))
            foreach (MethodInfo mi in target.GetType().GetMethods(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance))
                if (m == null && mi.Name == name && mi.GetParameters().Length == args.Length) m = mi;
        if (m == null) throw new MissingMethodException(target.GetType().Name, names);
        ParameterInfo[] ps = m.GetParameters();
        DynamicMethod dm = new DynamicMethod("SpanCall_" + m.Name, typeof(object), new Type[] { typeof(object), typeof(object[]) },
                                             typeof(NegAuthPeer).Module, true);
        ILGenerator il = dm.GetILGenerator();
        LocalBuilder[] outs = new LocalBuilder[ps.Length];
        il.Emit(OpCodes.Ldarg_0);
        il.Emit(OpCodes.Castclass, m.DeclaringType);
        for (int i = 0; i < ps.Length; i++)
        {
            Type pt = ps[i].ParameterType;
            if (pt.IsByRef)
            {
                outs[i] = il.DeclareLocal(pt.GetElementType());
                il.Emit(OpCodes.Ldloca, outs[i]);
                continue;
            }
            il.Emit(OpCodes.Ldarg_1);
            il.Emit(OpCodes.Ldc_I4, i);
            il.Emit(OpCodes.Ldelem_Ref);
            if (pt.IsGenericType && pt.Name.StartsWith("ReadOnlySpan"))
            {
                il.Emit(OpCodes.Castclass, typeof(byte[]));
                il.Emit(OpCodes.Call, pt.GetMethod("op_Implicit", new Type[] { typeof(byte[]) }));
            }
            else if (pt.IsValueType)
                il.Emit(OpCodes.Unbox_Any, pt);
            else
                il.Emit(OpCodes.Castclass, pt);
        }
        il.Emit(OpCodes.Callvirt, m);
        LocalBuilder ret = il.DeclareLocal(typeof(object));
        if (m.ReturnType != typeof(void))
        {
            if (m.ReturnType.IsValueType) il.Emit(OpCodes.Box, m.ReturnType);
            il.Emit(OpCodes.Stloc, ret);
        }
        for (int i = 0; i < ps.Length; i++)
        {
            if (outs[i] == null) continue;
            il.Emit(OpCodes.Ldarg_1);
            il.Emit(OpCodes.Ldc_I4, i);
            il.Emit(OpCodes.Ldloc, outs[i]);
            il.Emit(OpCodes.Box, outs[i].LocalType);
            il.Emit(OpCodes.Stelem_Ref);
        }
        il.Emit(OpCodes.Ldloc, ret);
        il.Emit(OpCodes.Ret);
        Func<object, object[], object> f = (Func<object, object[], object>)dm.CreateDelegate(typeof(Func<object, object[], object>));
        return f(target, args);
    }

    // A fresh ArrayBufferWriter<byte>, and what was written to it.
    static object NewWriter()
    {
        return Activator.CreateInstance(Find("System.Buffers.ArrayBufferWriter`1, System.Memory").MakeGenericType(typeof(byte)));
    }

    static byte[] Written(object writer)
    {
        object memory = Get(writer, "WrittenMemory");
        return (byte[])memory.GetType().GetMethod("ToArray", Type.EmptyTypes).Invoke(memory, null);
    }

    static int Main(string[] args)
    {
        bool server = args[0] == "server";
        int port = int.Parse(args[1]);
        string package = args[2];
        string level = server ? args[3] : args[7];
        object options;
        if (server)
        {
            options = Activator.CreateInstance(Find("System.Net.Security.NegotiateAuthenticationServerOptions, System.Net.Security"));
            Set(options, "Credential", CredentialCache.DefaultNetworkCredentials);
        }
        else
        {
            options = Activator.CreateInstance(Find("System.Net.Security.NegotiateAuthenticationClientOptions, System.Net.Security"));
            Set(options, "Credential", new NetworkCredential(args[3], args[4], args[5]));
            Set(options, "TargetName", args[6]);
        }
        Set(options, "Package", package);
        PropertyInfo required = options.GetType().GetProperty("RequiredProtectionLevel");
        required.SetValue(options, Enum.Parse(required.PropertyType, level), null);
        Type authType = Find("System.Net.Security.NegotiateAuthentication, System.Net.Security");
        object auth = Activator.CreateInstance(authType, new object[] { options });
        Type statusType = Find("System.Net.Security.NegotiateAuthenticationStatusCode, System.Net.Security");
        MethodInfo step = authType.GetMethod("GetOutgoingBlob", new Type[] { typeof(string), statusType.MakeByRefType() });

        TcpClient tcp = new TcpClient();
        tcp.Connect(IPAddress.Loopback, port);
        net = tcp.GetStream();
        try
        {
            bool mine = false, theirs = false;
            byte[] incoming = null;
            if (server) { int k0; incoming = Receive(out k0); theirs = k0 == 2; }
            for (int round = 0; round < 10 && !(mine && theirs); round++)
            {
                if (!mine)
                {
                    object[] a = { incoming == null || incoming.Length == 0 ? null : Convert.ToBase64String(incoming), null };
                    string blob = (string)step.Invoke(auth, a);
                    string status = a[1].ToString();
                    if (status != "Completed" && status != "ContinueNeeded")
                    {
                        Send(3, Encoding.ASCII.GetBytes(status));
                        Console.WriteLine("FAIL " + status);
                        return 2;
                    }
                    mine = status == "Completed";
                    Send(mine ? 2 : 1, blob == null ? null : Convert.FromBase64String(blob));
                }
                if (mine && theirs) break;
                int kind;
                incoming = Receive(out kind);
                theirs = kind == 2;
            }
            Console.WriteLine("AUTH " + Get(auth, "Package") + " " + Get(Get(auth, "RemoteIdentity"), "Name") + " " +
                              Get(auth, "IsEncrypted") + " " + Get(auth, "IsSigned") + " " + Get(auth, "IsMutuallyAuthenticated"));

            string text = server ? "wrapped by the server" : "wrapped by the client";
            for (int turn = 0; turn < 2; turn++)
            {
                if ((turn == 0) != server)
                {
                    object w = NewWriter();
                    object[] a = { Encoding.ASCII.GetBytes(text), w, true, null };
                    string status = SpanCall(auth, "Wrap", a).ToString();
                    if (status != "Completed") { Console.WriteLine("FAIL Wrap " + status); return 2; }
                    Send(4, Written(w));
                }
                else
                {
                    int kind;
                    byte[] token = Receive(out kind);
                    object w = NewWriter();
                    object[] a = { token, w, null };
                    string status = SpanCall(auth, "Unwrap", a).ToString();
                    if (status != "Completed") { Console.WriteLine("FAIL Unwrap " + status); return 2; }
                    Console.WriteLine("UNWRAP " + Encoding.ASCII.GetString(Written(w)) + " " + a[2]);
                }
            }
            byte[] message = Encoding.ASCII.GetBytes("integrity");
            for (int turn = 0; turn < 2; turn++)
            {
                if ((turn == 0) != server)
                {
                    object w = NewWriter();
                    SpanCall(auth, "ComputeIntegrityCheck|GetMIC", new object[] { message, w });
                    Send(5, Written(w));
                }
                else
                {
                    int kind;
                    byte[] mic = Receive(out kind);
                    Console.WriteLine("MIC " + SpanCall(auth, "VerifyIntegrityCheck|VerifyMIC", new object[] { message, mic }));
                }
            }
            return 0;
        }
        catch (Exception e)
        {
            Exception inner = e is TargetInvocationException && e.InnerException != null ? e.InnerException : e;
            Console.WriteLine("FAIL " + inner.GetType().Name + ": " + inner.Message);
            return 2;
        }
    }
}
