// Between .NET's own X509Certificate2 and the library's apm_certificate handles.
using System;
using System.IO;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Apmnet.Interop;

namespace Apmnet
{
    /// <summary>Converts certificates both ways. Users of the wrapper only ever see .NET's
    /// X509Certificate/X509Certificate2: the handles stay inside.</summary>
    internal static class Certificates
    {
        /// <summary>A .NET X509Certificate2 (no key) for a handle the library lent or gave.</summary>
        internal static X509Certificate2 ToManaged(IntPtr certificate)
        {
            byte[] der = Marshaling.CopyBytes((byte[] b, UIntPtr n, out UIntPtr full) => NativeMethods.apm_certificate_get_raw_data(certificate, b, n, out full));
            return new X509Certificate2(der);
        }

        /// <summary>A new apm_certificate handle (the caller closes it) for a .NET certificate, with its
        /// private key when it has one: the key goes over as PKCS#8 PEM in memory (.NET Core 3+), or else
        /// (Mono, .NET Framework) as a PKCS#12 protected by a random password in a temporary file that is
        /// deleted at once.</summary>
        internal static IntPtr ToNative(X509Certificate certificate)
        {
            X509Certificate2 full = certificate as X509Certificate2 ?? new X509Certificate2(certificate);
            byte[] der = full.RawData;
            IntPtr handle;
            if (!full.HasPrivateKey)
            {
                ApmError.Check(NativeMethods.apm_certificate_load_der(der, Marshaling.Length(der), out handle));
                return handle;
            }
            byte[] pkcs8 = ExportPkcs8PrivateKey(full);
            if (pkcs8 != null)
            {
                byte[] certPem = Pem("CERTIFICATE", der);
                byte[] keyPem = Pem("PRIVATE KEY", pkcs8);
                try
                {
                    ApmError.Check(NativeMethods.apm_certificate_load_pem(certPem, Marshaling.Length(certPem), keyPem, Marshaling.Length(keyPem), out handle));
                    return handle;
                }
                finally
                {
                    Array.Clear(pkcs8, 0, pkcs8.Length);
                    Array.Clear(keyPem, 0, keyPem.Length);
                }
            }
            return ThroughPkcs12File(full);
        }

        static byte[] Pem(string label, byte[] der)
        {
            string base64 = Convert.ToBase64String(der);
            StringBuilder text = new StringBuilder("-----BEGIN " + label + "-----\n");
            for (int i = 0; i < base64.Length; i += 64)
                text.Append(base64, i, Math.Min(64, base64.Length - i)).Append('\n');
            text.Append("-----END " + label + "-----\n");
            return Encoding.ASCII.GetBytes(text.ToString());
        }

        /// <summary>AsymmetricAlgorithm.ExportPkcs8PrivateKey of the certificate's key (.NET Core 3.0+),
        /// reached through reflection: the wrapper is compiled against Mono's mscorlib, which lacks it.
        /// Null where it does not exist.</summary>
        static byte[] ExportPkcs8PrivateKey(X509Certificate2 certificate)
        {
            string[][] getters =
            {
                new[] { "System.Security.Cryptography.X509Certificates.ECDsaCertificateExtensions", "GetECDsaPrivateKey" },
                new[] { "System.Security.Cryptography.X509Certificates.RSACertificateExtensions", "GetRSAPrivateKey" },
                new[] { "System.Security.Cryptography.X509Certificates.DSACertificateExtensions", "GetDSAPrivateKey" },
            };
            foreach (string[] getter in getters)
            {
                Type type = typeof(X509Certificate2).Assembly.GetType(getter[0]) ?? typeof(RSA).Assembly.GetType(getter[0])
                    ?? typeof(System.Linq.Enumerable).Assembly.GetType(getter[0]);
                MethodInfo get = type == null ? null : type.GetMethod(getter[1], new[] { typeof(X509Certificate2) });
                if (get == null) continue;
                AsymmetricAlgorithm key;
                try
                {
                    key = (AsymmetricAlgorithm)get.Invoke(null, new object[] { certificate });
                }
                catch (TargetInvocationException)
                {
                    continue;  // not this kind of key
                }
                if (key == null) continue;
                using (key)
                {
                    MethodInfo export = key.GetType().GetMethod("ExportPkcs8PrivateKey", Type.EmptyTypes);
                    if (export == null) return null;
                    try
                    {
                        return (byte[])export.Invoke(key, null);
                    }
                    catch (TargetInvocationException)
                    {
                        return null;  // a key that will not be exported in the clear: try PKCS#12
                    }
                }
            }
            return null;
        }

        static IntPtr ThroughPkcs12File(X509Certificate2 certificate)
        {
            byte[] secret = new byte[24];
            using (RandomNumberGenerator random = RandomNumberGenerator.Create()) random.GetBytes(secret);
            string password = Convert.ToBase64String(secret);
            byte[] pkcs12 = certificate.Export(X509ContentType.Pkcs12, password);
            string folder = Path.Combine(Path.GetTempPath(), "apmnet-" + Guid.NewGuid().ToString("N"));
            Directory.CreateDirectory(folder);
            string path = Path.Combine(folder, "certificate.p12");
            try
            {
                File.WriteAllBytes(path, pkcs12);
                IntPtr handle;
                ApmError.Check(NativeMethods.apm_certificate_load_pkcs12_file(Marshaling.Utf8(path), Marshaling.Utf8(password), out handle));
                return handle;
            }
            finally
            {
                try { File.Delete(path); } catch (IOException) { }
                try { Directory.Delete(folder); } catch (IOException) { }
            }
        }

        internal static void Close(IntPtr certificate)
        {
            if (certificate != IntPtr.Zero) NativeMethods.apm_certificate_close(certificate);
        }

        /// <summary>The handles of a C array of apm_certificate pointers, as .NET certificates.</summary>
        internal static X509Certificate2[] ToManagedArray(IntPtr array, UIntPtr count)
        {
            X509Certificate2[] certificates = new X509Certificate2[checked((int)count.ToUInt64())];
            for (int i = 0; i < certificates.Length; i++)
                certificates[i] = ToManaged(Marshal.ReadIntPtr(array, i * IntPtr.Size));
            return certificates;
        }
    }
}
