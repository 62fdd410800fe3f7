// NnsPeer: a real .NET NegotiateStream at the other end of a test (compiled by mcs, run on .NET 8).
//
//   NnsPeer server PORT LEVEL                              listens on 127.0.0.1:PORT (prints "listening PORT"),
//                                                          accepts one client with the default credentials
//   NnsPeer client PORT LEVEL USER PASSWORD DOMAIN SPN     connects to 127.0.0.1:PORT
//
// LEVEL is None, Sign or EncryptAndSign. After authenticating it prints
// "AUTH <package> <remote name> <IsEncrypted> <IsSigned> <IsMutuallyAuthenticated>" (or
// "FAIL <exception type>: <message>" and exits 2). Then the echo protocol, both ways:
//   the client sends, for each size, an 8-byte little-endian length and that many pattern bytes, reads
//   them back and checks them (prints "OK <size> <sha256>"), then a length of 0;
//   the server reads a length and that many bytes and writes them back, until the length 0.
// Exit status 0 when everything matched.
using System;
using System.IO;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Principal;

static class NnsPeer
{
    // The last message is APMNET_NNS_LARGEST bytes (default 16 MiB; the test harness lowers it under valgrind).
    static readonly int[] Sizes = { 1, 64511, 64512, 64513, Largest() };

    static int Largest()
    {
        int n;
        return int.TryParse(Environment.GetEnvironmentVariable("APMNET_NNS_LARGEST"), out n) && n > 64513 ? n : 16 * 1024 * 1024;
    }

    static void ReadFull(Stream s, byte[] buf, int n)
    {
        int got = 0;
        while (got < n)
        {
            int k = s.Read(buf, got, n - got);
            if (k == 0) throw new EndOfStreamException("the peer closed after " + got + " of " + n + " bytes");
            got += k;
        }
    }

    static byte Pattern(long i) { return (byte)((i * 31 + 7) & 0xff); }

    static int Client(NegotiateStream ns)
    {
        foreach (int n in Sizes)
        {
            byte[] data = new byte[n];
            for (int i = 0; i < n; i++) data[i] = Pattern(i);
            ns.Write(BitConverter.GetBytes((long)n), 0, 8);
            ns.Write(data, 0, n);
            byte[] back = new byte[n];
            ReadFull(ns, back, n);
            for (int i = 0; i < n; i++)
                if (back[i] != data[i]) { Console.WriteLine("MISMATCH " + n + " at " + i); return 1; }
            using (SHA256 sha = SHA256.Create())
                Console.WriteLine("OK " + n + " " + BitConverter.ToString(sha.ComputeHash(back)).Replace("-", "").ToLowerInvariant());
        }
        ns.Write(BitConverter.GetBytes(0L), 0, 8);
        return 0;
    }

    static int Server(NegotiateStream ns)
    {
        byte[] head = new byte[8];
        for (;;)
        {
            ReadFull(ns, head, 8);
            long n = BitConverter.ToInt64(head, 0);
            if (n == 0) return 0;
            byte[] data = new byte[n];
            ReadFull(ns, data, (int)n);
            ns.Write(data, 0, (int)n);
        }
    }

    static int Main(string[] args)
    {
        bool server = args[0] == "server";
        int port = int.Parse(args[1]);
        ProtectionLevel level = (ProtectionLevel)Enum.Parse(typeof(ProtectionLevel), args[2]);
        TcpClient tcp;
        if (server)
        {
            TcpListener l = new TcpListener(IPAddress.Loopback, port);
            l.Start();
            Console.WriteLine("listening " + ((IPEndPoint)l.LocalEndpoint).Port);
            Console.Out.Flush();
            tcp = l.AcceptTcpClient();
            l.Stop();
        }
        else
        {
            tcp = new TcpClient();
            tcp.Connect(IPAddress.Loopback, port);
        }
        using (tcp)
        using (NegotiateStream ns = new NegotiateStream(tcp.GetStream(), false))
        {
            try
            {
                if (server)
                    ns.AuthenticateAsServer(CredentialCache.DefaultNetworkCredentials, level, TokenImpersonationLevel.Identification);
                else
                    ns.AuthenticateAsClient(new NetworkCredential(args[3], args[4], args[5]), args[6], level, TokenImpersonationLevel.Identification);
            }
            catch (Exception e)
            {
                Console.WriteLine("FAIL " + e.GetType().Name + ": " + e.Message);
                return 2;
            }
            Console.WriteLine("AUTH " + ns.RemoteIdentity.AuthenticationType + " " + ns.RemoteIdentity.Name + " "
                + ns.IsEncrypted + " " + ns.IsSigned + " " + ns.IsMutuallyAuthenticated);
            Console.Out.Flush();
            try
            {
                return server ? Server(ns) : Client(ns);
            }
            catch (Exception e)
            {
                Console.WriteLine("FAIL " + e.GetType().Name + ": " + e.Message);
                return 3;
            }
        }
    }
}
