// The P/Invoke declarations of the wrapper against include/apmnet.h, read at run time (APMNET_HEADER, which
// test.sh sets, or include/apmnet.h in a folder above Tests.exe), and the compiled assembly, read through
// reflection: the .NET twin of bindings/python/tests/test_library.py's test_declarations_match_the_header
// and test_the_covered_areas_of_the_header_are_all_bound.
//
// Every [DllImport] of Apmnet.dll must name a header function (by EntryPoint, or else its own name), bind
// "apmnet" cdecl with PreserveSig, have the header's parameter count, and spell every parameter and the
// return type in one of the ABI-compatible forms that ParameterTypes/ReturnTypes below list for the C type.
// The tables are the whole rule: a form they do not list fails (int for int64_t, IntPtr for int32_t,
// UIntPtr for int32_t *, bool for an int32_t flag, string for a returned const char *, a MarshalAs that
// changes the native type), as does a C type they do not list (a new header type needs a row). Delegates
// and structs that cross the boundary are checked the same way against the function-pointer typedefs
// and struct typedefs of the header, through the explicit Delegates, SafeHandles and Structs tables.
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.RegularExpressions;

namespace Apmnet.Tests
{
    static partial class Tests
    {
        [Test]
        public static void DeclarationsMatchTheHeader()
        {
            Header header = Header.Load();
            Assert.True(header.Functions.ContainsKey("apm_ssl_stream_authenticate_as_client"), "the header's prototypes were parsed");
            List<MethodInfo> imports = Declarations.PInvokes();
            Assert.True(imports.Count >= 100, "Apmnet.dll's P/Invoke declarations were found (" + imports.Count + ")");
            List<string> problems = new List<string>();
            foreach (MethodInfo method in imports) Declarations.CheckImport(header, method, problems);
            Declarations.CheckDelegates(header, problems);
            Declarations.CheckStructs(header, problems);
            Declarations.Report(problems, "declarations that do not match " + header.Path);
        }

        [Test]
        public static void TheCoveredAreasOfTheHeaderAreAllBound()
        {
            Header header = Header.Load();
            HashSet<string> bound = new HashSet<string>(Declarations.PInvokes().Select(m => Declarations.EntryPoint(m)));
            HashSet<string> areas = new HashSet<string>(bound.Select(Declarations.Area));
            Assert.True(areas.Contains("ssl") && areas.Contains("socket") && areas.Contains("stream"), "the bound areas were found");
            List<string> problems = new List<string>();
            foreach (string name in header.Functions.Keys)
            {
                if (areas.Contains(Declarations.Area(name)) && !bound.Contains(name) && !Declarations.Unbound.ContainsKey(name))
                    problems.Add(name + ": in the bound area apm_" + Declarations.Area(name) + "_* of the header, but has no [DllImport] "
                        + "(declare it in NativeMethods.cs, or list it in Declarations.Unbound with the reason)");
            }
            foreach (KeyValuePair<string, string> exception in Declarations.Unbound)
            {
                if (!header.Functions.ContainsKey(exception.Key)) problems.Add(exception.Key + ": listed in Declarations.Unbound but not in the header");
                if (bound.Contains(exception.Key)) problems.Add(exception.Key + ": listed in Declarations.Unbound but bound");
            }
            Declarations.Report(problems, "header functions of a bound area without a .NET declaration, or stale Declarations.Unbound entries");
        }

        [Test]
        public static void EveryDeclarationBindsToAnExportOfTheLibrary()
        {
            Assert.True(ApmRuntime.VersionText.Length > 0, "the library loads");  // installs the wrapper's library resolver
            List<string> problems = new List<string>();
            foreach (MethodInfo method in Declarations.PInvokes())
            {
                try { Marshal.Prelink(method); }
                catch (Exception error) { problems.Add(Declarations.EntryPoint(method) + ": " + error.GetType().Name + ": " + error.Message); }
            }
            Declarations.Report(problems, "declarations that do not bind (missing export, or a marshalling the runtime refuses) in "
                + Environment.GetEnvironmentVariable("APMNET_LIBRARY"));
        }
    }

    /// <summary>A C type as the header spells it, without the parameter name: <c>const uint8_t *</c>,
    /// <c>apm_certificate *const *</c>. <see cref="Key"/> is its row in the tables.</summary>
    sealed class CType
    {
        public string Text;   // canonical spelling: "const char *const *", "apm_socket **"
        public string Key;    // Text with an opaque handle as HANDLE, a struct typedef as STRUCT, a function-pointer typedef as CALLBACK
        public string Named;  // that handle, struct or function-pointer typedef ("apm_stream_vtable.close" for a field), or null

        public override string ToString() { return Text; }
    }

    /// <summary>A C function or function pointer: its return type and parameter types.</summary>
    sealed class CSignature
    {
        public string Name;
        public CType Return;
        public List<CType> Parameters = new List<CType>();

        public override string ToString()
        {
            return Return + " " + Name + "(" + string.Join(", ", Parameters.Select(p => p.Text).ToArray()) + ")";
        }
    }

    /// <summary>The prototypes, function-pointer typedefs, opaque handle types and struct typedefs of apmnet.h.</summary>
    sealed class Header
    {
        public string Path;
        public readonly Dictionary<string, CSignature> Functions = new Dictionary<string, CSignature>();
        public readonly Dictionary<string, CSignature> FunctionPointers = new Dictionary<string, CSignature>();  // typedefs, and struct fields as "struct.field"
        public readonly HashSet<string> Handles = new HashSet<string>();
        public readonly Dictionary<string, List<KeyValuePair<string, CType>>> Structs = new Dictionary<string, List<KeyValuePair<string, CType>>>();

        static Header loaded;

        public static Header Load()
        {
            if (loaded == null) loaded = Parse(Locate());
            return loaded;
        }

        static string Locate()
        {
            string fromEnvironment = Environment.GetEnvironmentVariable("APMNET_HEADER");
            if (!string.IsNullOrEmpty(fromEnvironment))
            {
                Assert.True(File.Exists(fromEnvironment), "APMNET_HEADER names a file (" + fromEnvironment + ")");
                return fromEnvironment;
            }
            for (DirectoryInfo folder = new DirectoryInfo(AppDomain.CurrentDomain.BaseDirectory); folder != null; folder = folder.Parent)
            {
                string candidate = System.IO.Path.Combine(folder.FullName, "include", "apmnet.h");
                if (File.Exists(candidate)) return candidate;
            }
            throw new AssertionException("include/apmnet.h not found above " + AppDomain.CurrentDomain.BaseDirectory + "; set APMNET_HEADER");
        }

        const string FunctionPointer = @"([A-Za-z_][\w\s\*]*?)\(\s*\*\s*(\w+)\s*\)\s*\(([^;{}()]*)\)\s*;";

        static Header Parse(string path)
        {
            Header header = new Header { Path = path };
            string text = File.ReadAllText(path);
            text = Regex.Replace(text, @"/\*.*?\*/", " ", RegexOptions.Singleline);
            text = Regex.Replace(text, @"//[^\n]*", "");
            text = Regex.Replace(text, @"(?m)^[ \t]*#.*$", "");

            foreach (Match m in Regex.Matches(text, @"typedef\s+struct\s+\w+\s+(\w+)\s*;"))
                header.Handles.Add(m.Groups[1].Value);
            List<Match> structs = Regex.Matches(text, @"typedef\s+struct\s*\w*\s*\{([^{}]*)\}\s*(\w+)\s*;").Cast<Match>().ToList();
            foreach (Match m in structs) header.Structs[m.Groups[2].Value] = null;
            foreach (Match m in Regex.Matches(text, @"typedef\s+" + FunctionPointer))
                header.FunctionPointers[m.Groups[2].Value] = null;

            // Types are classified once every typedef name is known (a typedef may use one declared later).
            foreach (Match m in Regex.Matches(text, @"typedef\s+" + FunctionPointer))
                header.FunctionPointers[m.Groups[2].Value] = header.Signature(m.Groups[2].Value, m.Groups[1].Value, m.Groups[3].Value);
            foreach (Match m in structs)
            {
                string name = m.Groups[2].Value;
                List<KeyValuePair<string, CType>> fields = new List<KeyValuePair<string, CType>>();
                foreach (string statement in m.Groups[1].Value.Split(';'))
                {
                    if (statement.Trim().Length == 0) continue;
                    Match pointer = Regex.Match(statement + ";", @"^\s*" + FunctionPointer + @"\s*$");
                    if (pointer.Success)
                    {
                        string field = pointer.Groups[2].Value;
                        header.FunctionPointers[name + "." + field] = header.Signature(name + "." + field, pointer.Groups[1].Value, pointer.Groups[3].Value);
                        fields.Add(new KeyValuePair<string, CType>(field, new CType { Text = "(*" + field + ")(...)", Key = "CALLBACK", Named = name + "." + field }));
                    }
                    else
                    {
                        Match plain = Regex.Match(statement, @"^\s*(.*?)\b(\w+)\s*$", RegexOptions.Singleline);
                        fields.Add(new KeyValuePair<string, CType>(plain.Groups[2].Value, header.Type(plain.Groups[1].Value)));
                    }
                }
                header.Structs[name] = fields;
            }
            foreach (Match m in Regex.Matches(text, @"(?m)^[ \t]*([A-Za-z_][\w \t\*]*?)\b(apm_\w+)[ \t]*\(([^;{}()]*)\)[ \t]*;"))
            {
                if (Regex.IsMatch(m.Groups[1].Value, @"\btypedef\b")) continue;
                string name = m.Groups[2].Value;
                Assert.False(header.Functions.ContainsKey(name), name + " is declared twice in the header");
                header.Functions[name] = header.Signature(name, m.Groups[1].Value, m.Groups[3].Value);
            }
            return header;
        }

        CSignature Signature(string name, string returnType, string parameters)
        {
            CSignature signature = new CSignature { Name = name, Return = Type(returnType) };
            string list = Regex.Replace(parameters, @"\s+", " ").Trim();
            if (list == "" || list == "void") return signature;
            foreach (string parameter in list.Split(','))
            {
                // Drop the parameter's name: the last word, when something precedes it.
                Match named = Regex.Match(parameter.Trim(), @"^(.*?[\w\*])\s*\b([A-Za-z_]\w*)$");
                string type = named.Success && named.Groups[2].Value != "const" ? named.Groups[1].Value : parameter;
                signature.Parameters.Add(Type(type));
            }
            return signature;
        }

        /// <summary>The canonical spelling and table key of a C type without a name.</summary>
        CType Type(string declaration)
        {
            StringBuilder text = new StringBuilder();
            StringBuilder key = new StringBuilder();
            string named = null;
            bool seenBase = false;
            foreach (Match token in Regex.Matches(declaration, @"\*|[A-Za-z_]\w*"))
            {
                string word = token.Value;
                string keyWord = word;
                if (word != "*" && word != "const" && !seenBase)
                {
                    seenBase = true;
                    if (Handles.Contains(word)) { keyWord = "HANDLE"; named = word; }
                    else if (Structs.ContainsKey(word)) { keyWord = "STRUCT"; named = word; }
                    else if (FunctionPointers.ContainsKey(word)) { keyWord = "CALLBACK"; named = word; }
                }
                Append(text, word);
                Append(key, keyWord);
            }
            CType type = new CType { Text = text.ToString(), Key = key.ToString(), Named = named };
            if (type.Key.StartsWith("CALLBACK") && type.Key != "CALLBACK") type.Key = type.Text;  // a pointer to a function pointer: no row
            return type;
        }

        static void Append(StringBuilder to, string token)
        {
            if (token == "*") to.Append(to.Length > 0 && to[to.Length - 1] == '*' ? "*" : " *");
            else if (to.Length == 0 || to[to.Length - 1] == '*') to.Append(token);
            else to.Append(" " + token);
        }
    }

    static class Declarations
    {
        /// <summary>C type (its <see cref="CType.Key"/>) -&gt; the .NET spellings of a parameter that pass it
        /// with the same width and meaning, as <see cref="Describe(Type, ICustomAttributeProvider, bool, CharSet)"/> writes them.
        /// {handle}, {struct} and {callback} stand for the SafeHandles, Structs and Delegates entries of the
        /// C type's handle, struct or function pointer.</summary>
        internal static readonly Dictionary<string, string[]> ParameterTypes = new Dictionary<string, string[]>
        {
            { "int32_t", new[] { "int", "enum int" } },
            { "apm_status", new[] { "int", "enum int" } },
            { "uint32_t", new[] { "uint", "enum uint" } },
            { "int64_t", new[] { "long" } },
            { "uint64_t", new[] { "ulong" } },
            { "size_t", new[] { "UIntPtr" } },  // nuint is UIntPtr
            { "void *", new[] { "IntPtr" } },
            { "void **", new[] { "IntPtr", "out IntPtr", "ref IntPtr" } },
            { "int32_t *", new[] { "IntPtr", "out int", "ref int" } },
            { "int64_t *", new[] { "IntPtr", "out long", "ref long" } },
            { "size_t *", new[] { "IntPtr", "out UIntPtr", "ref UIntPtr" } },
            // A buffer the library writes is [Out] (a copying marshaller, as on Mono, would not copy it back
            // otherwise); a const one is not (the copy back would be wasted, or overwrite the caller's data).
            { "uint8_t *", new[] { "IntPtr", "[Out] byte[]" } },
            { "const uint8_t *", new[] { "IntPtr", "byte[]" } },
            { "char *", new[] { "IntPtr", "[Out] byte[]" } },
            { "const char *", new[] { "IntPtr", "byte[]", "string" } },  // byte[]: NUL-terminated UTF-8; string: UTF-8 (LPStr/LPUTF8Str, not CharSet.Unicode)
            { "const char *const *", new[] { "IntPtr", "IntPtr[]" } },
            // Handles are passed as their value (see SocketHandle in Interop.cs for why not as a SafeHandle);
            // a create/accept hands its new handle to the SafeHandle of that handle type.
            { "HANDLE *", new[] { "IntPtr" } },
            { "const HANDLE *", new[] { "IntPtr" } },
            { "HANDLE **", new[] { "IntPtr", "out IntPtr", "ref IntPtr", "out {handle}" } },
            { "HANDLE *const *", new[] { "IntPtr", "IntPtr[]" } },
            { "const STRUCT *", new[] { "IntPtr", "ref {struct}" } },
            { "CALLBACK", new[] { "IntPtr", "{callback}" } },
        };

        /// <summary>C return type -&gt; the .NET return types that read it unchanged. A returned const char *
        /// is the library's static text: a string return would have the marshaller free it.</summary>
        internal static readonly Dictionary<string, string[]> ReturnTypes = new Dictionary<string, string[]>
        {
            { "void", new[] { "void" } },
            { "apm_status", new[] { "int", "enum int" } },
            { "int32_t", new[] { "int", "enum int" } },
            { "uint32_t", new[] { "uint", "enum uint" } },
            { "const char *", new[] { "IntPtr" } },
            { "HANDLE *", new[] { "IntPtr" } },
        };

        /// <summary>The SafeHandle classes that receive a handle type from an out parameter.</summary>
        internal static readonly Dictionary<string, string> SafeHandles = new Dictionary<string, string>
        {
            { "SocketHandle", "apm_socket" },
            { "StreamHandle", "apm_stream" },
            { "TransportContextHandle", "apm_transport_context" },
            { "HttpRequestHandle", "apm_http_request" },
            { "HttpResponseHandle", "apm_http_response" },
        };

        /// <summary>Every [UnmanagedFunctionPointer] delegate of Apmnet.dll -&gt; the function pointers of the
        /// header it stands for (a typedef, or a struct field as "struct.field").</summary>
        internal static readonly Dictionary<string, string[]> Delegates = new Dictionary<string, string[]>
        {
            { "ApmAsyncCallback", new[] { "apm_async_callback" } },
            { "ApmSendFileProgress", new[] { "apm_send_file_progress" } },
            { "ApmValidationCallback", new[] { "apm_remote_certificate_validation_callback" } },
            { "ApmSelectionCallback", new[] { "apm_local_certificate_selection_callback" } },
            { "ApmCredentialLookupCallback", new[] { "apm_credential_lookup_callback" } },
            { "ApmCustomComplete", new[] { "apm_custom_complete_fn" } },
            { "ApmCustomBegin", new[] { "apm_stream_vtable.begin_read", "apm_stream_vtable.begin_write" } },
            { "ApmCustomClose", new[] { "apm_stream_vtable.close" } },
        };

        /// <summary>The structs of Apmnet.dll that cross the boundary -&gt; their struct typedef.</summary>
        internal static readonly Dictionary<string, string> Structs = new Dictionary<string, string>
        {
            { "ApmStreamVtable", "apm_stream_vtable" },
        };

        /// <summary>Header functions in a bound area (<see cref="Area"/>) that have no declaration, and why.</summary>
        internal static readonly Dictionary<string, string> Unbound = new Dictionary<string, string>
        {
        };

        static Assembly Wrapper { get { return typeof(Apmnet.Socket).Assembly; } }

        /// <summary>The area of a header function: its first word after apm_ (socket, ssl, stream, last, ...).</summary>
        internal static string Area(string name) { return Regex.Match(name, @"^apm_([A-Za-z0-9]+)").Groups[1].Value; }

        /// <summary>Every P/Invoke method of Apmnet.dll, in any class.</summary>
        internal static List<MethodInfo> PInvokes()
        {
            const BindingFlags all = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static | BindingFlags.Instance | BindingFlags.DeclaredOnly;
            return Wrapper.GetTypes().SelectMany(t => t.GetMethods(all))
                .Where(m => (m.Attributes & MethodAttributes.PinvokeImpl) != 0)
                .OrderBy(m => m.MetadataToken).ToList();
        }

        static DllImportAttribute Import(MethodInfo method)
        {
            return (DllImportAttribute)Attribute.GetCustomAttribute(method, typeof(DllImportAttribute));
        }

        internal static string EntryPoint(MethodInfo method)
        {
            DllImportAttribute import = Import(method);
            return import == null || string.IsNullOrEmpty(import.EntryPoint) ? method.Name : import.EntryPoint;
        }

        internal static void Report(List<string> problems, string what)
        {
            if (problems.Count > 0)
                throw new AssertionException(problems.Count + " " + what + ":\n    " + string.Join("\n    ", problems.ToArray()));
        }

        internal static void CheckImport(Header header, MethodInfo method, List<string> problems)
        {
            string where = method.DeclaringType.Name + "." + method.Name;
            DllImportAttribute import = Import(method);
            if (import == null)
            {
                problems.Add(where + ": a P/Invoke without a readable [DllImport]");
                return;
            }
            string name = EntryPoint(method);
            if (name != method.Name) where += " (EntryPoint " + name + ")";
            string library = (string)Wrapper.GetType("Apmnet.Interop.NativeMethods", true)
                .GetField("Library", BindingFlags.NonPublic | BindingFlags.Static).GetValue(null);
            if (import.Value != library) problems.Add(where + ": imports from \"" + import.Value + "\", not \"" + library + "\"");
            if (import.CallingConvention != CallingConvention.Cdecl) problems.Add(where + ": CallingConvention." + import.CallingConvention + ", the header's functions are cdecl");
            if (!import.PreserveSig || (method.GetMethodImplementationFlags() & MethodImplAttributes.PreserveSig) == 0)
                problems.Add(where + ": PreserveSig = false (the C return value would be read as an HRESULT)");
            CSignature c;
            if (!header.Functions.TryGetValue(name, out c))
            {
                problems.Add(where + ": " + name + " is not a function of the header");
                return;
            }
            CheckSignature(where, c, method.ReturnParameter, method.GetParameters(), false, import.CharSet, problems);
        }

        /// <summary>Checks a P/Invoke's or a delegate's return and parameters against a C signature.</summary>
        static void CheckSignature(string where, CSignature c, ParameterInfo returned, ParameterInfo[] parameters, bool callback,
            CharSet charSet, List<string> problems)
        {
            if (parameters.Length != c.Parameters.Count)
            {
                problems.Add(where + ": " + parameters.Length + " parameters, the header's " + c.Name + " has " + c.Parameters.Count + ": " + c);
                return;
            }
            Check(where + " returns", c.Return, Describe(returned.ParameterType, returned, true, charSet), ReturnTypes, callback, problems);
            for (int i = 0; i < parameters.Length; i++)
            {
                ParameterInfo p = parameters[i];
                Check(where + " parameter " + (i + 1) + " (" + p.Name + ")", c.Parameters[i], Describe(p.ParameterType, p, false, charSet),
                    ParameterTypes, callback, problems);
            }
        }

        static void Check(string where, CType c, string ours, Dictionary<string, string[]> table, bool callback, List<string> problems)
        {
            string[] row;
            if (!table.TryGetValue(c.Key, out row))
            {
                problems.Add(where + ": the C type " + c.Text + " has no row in Declarations." + (table == ReturnTypes ? "ReturnTypes" : "ParameterTypes") + " (is " + ours + ")");
                return;
            }
            List<string> allowed = row.SelectMany(form => Expand(form, c)).ToList();
            // A native caller of a delegate passes no array length and cannot hand over a SafeHandle.
            if (callback) allowed = allowed.Where(form => !form.EndsWith("[]") && !form.Contains("SafeHandle")).ToList();
            if (!allowed.Contains(ours))
                problems.Add(where + ": " + ours + " for the C type " + c.Text + " (ABI-compatible: " + string.Join(", ", allowed.ToArray()) + ")");
        }

        static IEnumerable<string> Expand(string form, CType c)
        {
            if (form.Contains("{handle}"))
                return SafeHandles.Where(e => e.Value == c.Named).Select(e => form.Replace("{handle}", "SafeHandle " + e.Key));
            if (form.Contains("{struct}"))
                return Structs.Where(e => e.Value == c.Named).Select(e => form.Replace("{struct}", "struct " + e.Key));
            if (form.Contains("{callback}"))
                return Delegates.Where(e => e.Value.Contains(c.Named)).Select(e => form.Replace("{callback}", "delegate " + e.Key));
            return new[] { form };
        }

        /// <summary>A parameter, return value or field as the tables spell it: "out int", "[Out] byte[]",
        /// "SafeHandle SocketHandle", "enum int"; a MarshalAs other than a UTF-8 string's is appended, so
        /// that no row matches it.</summary>
        static string Describe(Type type, ICustomAttributeProvider attributes, bool isReturn, CharSet charSet)
        {
            ParameterInfo parameter = attributes as ParameterInfo;
            string prefix = "";
            if (type.IsByRef)
            {
                type = type.GetElementType();
                prefix = parameter.IsOut && !parameter.IsIn ? "out " : "ref ";
            }
            else if (type.IsArray && parameter != null && !isReturn && parameter.IsOut)
            {
                prefix = "[Out] ";
            }
            string text = prefix + Name(type);
            object[] marshalAs = attributes.GetCustomAttributes(typeof(MarshalAsAttribute), false);
            if (marshalAs.Length > 0)
            {
                UnmanagedType native = ((MarshalAsAttribute)marshalAs[0]).Value;
                bool utf8String = type == typeof(string) && (native == UnmanagedType.LPStr || (int)native == 48 /* LPUTF8Str */);
                if (!utf8String) text += " [MarshalAs(" + native + ")]";
            }
            else if (type == typeof(string) && charSet == CharSet.Unicode)
            {
                text += " [CharSet.Unicode]";
            }
            return text;
        }

        static readonly Dictionary<Type, string> Names = new Dictionary<Type, string>
        {
            { typeof(void), "void" }, { typeof(bool), "bool" }, { typeof(char), "char" }, { typeof(string), "string" },
            { typeof(sbyte), "sbyte" }, { typeof(byte), "byte" }, { typeof(short), "short" }, { typeof(ushort), "ushort" },
            { typeof(int), "int" }, { typeof(uint), "uint" }, { typeof(long), "long" }, { typeof(ulong), "ulong" },
            { typeof(float), "float" }, { typeof(double), "double" }, { typeof(IntPtr), "IntPtr" }, { typeof(UIntPtr), "UIntPtr" },
        };

        static string Name(Type type)
        {
            string name;
            if (Names.TryGetValue(type, out name)) return name;
            if (type.IsArray) return Name(type.GetElementType()) + "[]";
            if (type.IsPointer) return Name(type.GetElementType()) + "*";
            if (type.IsEnum) return "enum " + Name(Enum.GetUnderlyingType(type));
            if (typeof(SafeHandle).IsAssignableFrom(type)) return "SafeHandle " + type.Name;
            if (typeof(Delegate).IsAssignableFrom(type)) return "delegate " + type.Name;
            if (type.IsValueType) return "struct " + type.Name;
            return "class " + type.FullName;
        }

        /// <summary>Every delegate of the Delegates table, and no other marked [UnmanagedFunctionPointer],
        /// is cdecl and has its function pointers' signatures.</summary>
        internal static void CheckDelegates(Header header, List<string> problems)
        {
            foreach (Type type in Wrapper.GetTypes().Where(t => typeof(Delegate).IsAssignableFrom(t)))
            {
                UnmanagedFunctionPointerAttribute pointer = (UnmanagedFunctionPointerAttribute)Attribute.GetCustomAttribute(type, typeof(UnmanagedFunctionPointerAttribute));
                if (pointer != null && !Delegates.ContainsKey(type.Name))
                    problems.Add("delegate " + type.Name + ": [UnmanagedFunctionPointer] but not in Declarations.Delegates");
            }
            foreach (KeyValuePair<string, string[]> entry in Delegates)
            {
                Type type = Wrapper.GetTypes().FirstOrDefault(t => t.Name == entry.Key && typeof(Delegate).IsAssignableFrom(t));
                if (type == null)
                {
                    problems.Add("delegate " + entry.Key + ": in Declarations.Delegates but not in Apmnet.dll");
                    continue;
                }
                UnmanagedFunctionPointerAttribute pointer = (UnmanagedFunctionPointerAttribute)Attribute.GetCustomAttribute(type, typeof(UnmanagedFunctionPointerAttribute));
                if (pointer == null || pointer.CallingConvention != CallingConvention.Cdecl)
                    problems.Add("delegate " + entry.Key + ": needs [UnmanagedFunctionPointer(CallingConvention.Cdecl)]");
                MethodInfo invoke = type.GetMethod("Invoke");
                foreach (string target in entry.Value)
                {
                    CSignature c;
                    if (!header.FunctionPointers.TryGetValue(target, out c))
                        problems.Add("delegate " + entry.Key + ": " + target + " is not a function pointer of the header");
                    else
                        CheckSignature("delegate " + entry.Key + " as " + target, c, invoke.ReturnParameter, invoke.GetParameters(), true,
                            pointer == null ? CharSet.Ansi : pointer.CharSet, problems);
                }
            }
        }

        /// <summary>Every struct of the Structs table has its typedef's fields, in order, at pointer-sized
        /// strides, in forms the tables allow.</summary>
        internal static void CheckStructs(Header header, List<string> problems)
        {
            foreach (KeyValuePair<string, string> entry in Structs)
            {
                Type type = Wrapper.GetTypes().FirstOrDefault(t => t.Name == entry.Key && t.IsValueType);
                List<KeyValuePair<string, CType>> cFields;
                if (type == null) { problems.Add("struct " + entry.Key + ": in Declarations.Structs but not in Apmnet.dll"); continue; }
                if (!header.Structs.TryGetValue(entry.Value, out cFields)) { problems.Add("struct " + entry.Key + ": " + entry.Value + " is not a struct of the header"); continue; }
                if (!type.IsLayoutSequential) problems.Add("struct " + entry.Key + ": needs [StructLayout(LayoutKind.Sequential)]");
                List<FieldInfo> fields = type.GetFields(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance)
                    .OrderBy(f => Marshal.OffsetOf(type, f.Name).ToInt64()).ToList();
                if (fields.Count != cFields.Count)
                {
                    problems.Add("struct " + entry.Key + ": " + fields.Count + " fields, " + entry.Value + " has " + cFields.Count);
                    continue;
                }
                for (int i = 0; i < fields.Count; i++)
                {
                    string where = "struct " + entry.Key + " field " + fields[i].Name;
                    if (Simplify(fields[i].Name) != Simplify(cFields[i].Key))
                        problems.Add(where + ": at the place of " + entry.Value + "." + cFields[i].Key);
                    if (cFields[i].Value.Key != "CALLBACK" && !cFields[i].Value.Key.Contains("*"))
                        problems.Add(where + ": the C field " + cFields[i].Value.Text + " is not pointer-sized; extend CheckStructs");
                    long offset = Marshal.OffsetOf(type, fields[i].Name).ToInt64();
                    if (offset != i * IntPtr.Size) problems.Add(where + ": at offset " + offset + ", the C field is at " + i * IntPtr.Size);
                    Check(where, cFields[i].Value, Describe(fields[i].FieldType, fields[i], false, CharSet.Ansi), ParameterTypes, true, problems);
                }
                if (Marshal.SizeOf(type) != cFields.Count * IntPtr.Size)
                    problems.Add("struct " + entry.Key + ": " + Marshal.SizeOf(type) + " bytes, " + entry.Value + " has " + cFields.Count * IntPtr.Size);
            }
        }

        static string Simplify(string name) { return name.Replace("_", "").ToLowerInvariant(); }
    }
}
