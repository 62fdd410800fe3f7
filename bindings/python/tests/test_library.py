"""The binding layer itself: loading, declarations against the header, enums, versions."""

import ctypes
import os
import pathlib
import re
import subprocess
import sys

import pytest

import apmnet
from apmnet import _native
from conftest import REPO_ROOT

HEADER = REPO_ROOT / "include" / "apmnet.h"

_SCALARS = {
    "apm_status": ctypes.c_int32, "int32_t": ctypes.c_int32, "uint32_t": ctypes.c_uint32,
    "int64_t": ctypes.c_int64, "uint64_t": ctypes.c_uint64, "size_t": ctypes.c_size_t,
    "void": None,
}


def _ctype(text):
    """The ctypes type a C declaration (``const uint8_t *buffer``) stands for, as a string."""
    text = re.sub(r"\bconst\b", "", text)
    stars = text.count("*")
    base = text.replace("*", " ").split()[0]
    if base == "apm_async_callback" and not stars:
        return "ASYNC_CALLBACK"
    if base == "apm_send_file_progress" and not stars:
        return "PROGRESS_CALLBACK"
    if base == "apm_remote_certificate_validation_callback" and not stars:
        return "VALIDATION_CALLBACK"
    if base == "apm_local_certificate_selection_callback" and not stars:
        return "SELECTION_CALLBACK"
    if base == "apm_credential_lookup_callback" and not stars:
        return "LOOKUP_CALLBACK"
    if base == "apm_stream_vtable" and stars == 1:
        return "StreamVtable*"
    if base.startswith("apm_") and base != "apm_status" and stars:
        base, stars = "void", stars  # opaque handle: T * -> void *, T ** -> void **
    if base == "char" and stars == 1:
        return "c_char_p|char*"
    if base == "char" and stars == 2:
        return "c_char_p|char**"
    if base == "uint8_t" and stars == 1:
        return "uint8*"
    if base == "void":
        return {0: "None", 1: "c_void_p", 2: "void**"}[stars]
    name = _SCALARS[base].__name__
    return name + "*" * stars


def _describe(t):
    if t is None:
        return "None"
    if t is _native.ASYNC_CALLBACK:
        return "ASYNC_CALLBACK"
    if t is _native.PROGRESS_CALLBACK:
        return "PROGRESS_CALLBACK"
    if t is _native.VALIDATION_CALLBACK:
        return "VALIDATION_CALLBACK"
    if t is _native.SELECTION_CALLBACK:
        return "SELECTION_CALLBACK"
    if t is _native.LOOKUP_CALLBACK:
        return "LOOKUP_CALLBACK"
    if t is ctypes.POINTER(_native.StreamVtable):
        return "StreamVtable*"
    if t is ctypes.c_char_p or t is ctypes.POINTER(ctypes.c_char):
        return "c_char_p|char*"
    if t is ctypes.POINTER(ctypes.c_uint8):
        return "uint8*"
    if t is ctypes.POINTER(ctypes.c_void_p):
        return "void**"
    if hasattr(t, "_type_") and isinstance(t._type_, type):
        return _describe(t._type_) + "*"
    return t.__name__


def _header_prototypes():
    text = HEADER.read_text()
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    found = {}
    for match in re.finditer(r"([A-Za-z_][\w \t\*]*?)\b(apm_\w+)\s*\(([^;{}]*?)\)\s*;", text):
        restype, name, params = match.groups()
        if "typedef" in restype or "(" in params:
            continue
        params = " ".join(params.split())
        args = [] if params in ("", "void") else [p.strip() for p in params.split(",")]
        found[name] = (_ctype(restype), [_ctype(a) for a in args])
    return found


def test_every_declared_function_is_exported():
    assert _native.lib.missing == [], f"missing from {_native.library_path}"


@pytest.mark.skipif(not HEADER.exists(), reason="include/apmnet.h is not in this checkout")
def test_declarations_match_the_header():
    header = _header_prototypes()
    assert header, "no prototypes parsed from the header"
    for name, (restype, argtypes) in _native.PROTOTYPES.items():
        assert name in header, f"{name} is declared in the bindings but not in apmnet.h"
        h_restype, h_args = header[name]
        ours = (_describe(restype), [_describe(a) for a in argtypes])
        assert ours == (h_restype, h_args), f"{name}: bindings {ours}, header {h_restype, h_args}"


@pytest.mark.skipif(not HEADER.exists(), reason="include/apmnet.h is not in this checkout")
def test_the_covered_areas_of_the_header_are_all_bound():
    covered = re.compile(r"apm_(socket|network_stream|async_result|last_error|runtime|version|"
                         r"status_name|stream|custom_stream|ssl_stream|certificate|transport_context|http_request|"
                         r"http_response|negotiate_stream|credential)")
    header = _header_prototypes()
    unbound = [n for n in header if covered.match(n) and n not in _native.PROTOTYPES]
    assert unbound == [], "header functions without a Python declaration"
    assert "apm_ssl_stream_authenticate_as_client" in header


@pytest.mark.skipif(not HEADER.exists(), reason="include/apmnet.h is not in this checkout")
def test_enum_values_match_the_header_defines():
    defines = dict((m.group(1), int(m.group(2), 0)) for m in re.finditer(
        r"#define\s+(APM_\w+)\s+\(?(-?(?:0x[0-9A-Fa-f]+|\d+))\)?", HEADER.read_text()))

    def snake(name):
        return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).upper()

    checks = [
        ("APM_ADDRESS_FAMILY_", apmnet.AddressFamily),
        ("APM_SOCKET_TYPE_", apmnet.SocketType),
        ("APM_PROTOCOL_TYPE_", apmnet.ProtocolType),
        ("APM_SOCKET_SHUTDOWN_", apmnet.SocketShutdown),
        ("APM_FILE_ACCESS_", apmnet.FileAccess),
        ("APM_SOCKET_ERROR_", apmnet.SocketError),
        ("APM_TRANSMIT_FILE_", apmnet.TransmitFileOptions),
        ("APM_SSL_PROTOCOLS_", apmnet.SslProtocols),
        ("APM_SSL_POLICY_ERRORS_", apmnet.SslPolicyErrors),
        ("APM_CHANNEL_BINDING_KIND_", apmnet.ChannelBindingKind),
        ("APM_WEB_EXCEPTION_STATUS_", apmnet.WebExceptionStatus),
        ("APM_DECOMPRESSION_METHODS_", apmnet.DecompressionMethods),
        ("APM_PROTECTION_LEVEL_", apmnet.ProtectionLevel),
        ("APM_TOKEN_IMPERSONATION_LEVEL_", apmnet.TokenImpersonationLevel),
        ("APM_POLICY_ENFORCEMENT_", apmnet.PolicyEnforcement),
    ]
    compared = 0
    for prefix, enum in checks:
        names = [key for key in defines if key.startswith(prefix)]
        if prefix.startswith(("APM_SSL_", "APM_CHANNEL_", "APM_WEB_", "APM_DECOMPRESSION_", "APM_PROTECTION_",
                              "APM_TOKEN_", "APM_POLICY_")):  # every define has its member
            assert sorted(names) == sorted(prefix + snake(name.rstrip("_"))
                                           for name in enum.__members__), prefix
        for name, member in enum.__members__.items():  # flags: multi-bit members and 0 too
            key = prefix + snake(name.rstrip("_"))
            if key in defines:
                assert defines[key] == member.value, key
                compared += 1
    for status in apmnet.Status:
        key = "APM_OK" if status == 0 else "APM_E_" + status.name
        assert defines.get(key) == status.value, key
        compared += 1
    assert defines.get("APM_SOCKET_ERROR_CONNECTION_REFUSED") == 10061
    assert defines.get("APM_SSL_PROTOCOLS_TLS13") == apmnet.SslProtocols.Tls13 == 12288
    assert compared > 55


def test_status_names():
    assert apmnet.status_name(apmnet.Status.SOCKET) == "APM_E_SOCKET"
    assert apmnet.status_name(0) == "APM_OK"
    assert apmnet.status_name(-12345) == "APM_UNKNOWN"


def test_version():
    text, (major, minor, patch) = apmnet.library_version()
    assert text.startswith(f"{major}.{minor}.{patch}")
    assert (major, minor) == apmnet.API_VERSION


def test_library_found_in_the_checkout_without_environment(tmp_path):
    """From a checkout, the package finds target/release or target/debug by itself."""
    built = [REPO_ROOT / "target" / p / "libapmnet.so" for p in ("release", "debug")]
    built = [p for p in built if p.exists()]
    if not built or not (REPO_ROOT / "bindings" / "python" / "apmnet").is_dir():
        pytest.skip("no library built in this checkout")
    env = {k: v for k, v in os.environ.items() if k != "APMNET_LIBRARY"}
    env["PYTHONPATH"] = str(REPO_ROOT / "bindings" / "python")
    out = subprocess.run([sys.executable, "-c", "import apmnet; print(apmnet.library_path)"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(built[0])


def test_apmnet_library_variable_wins(tmp_path):
    env = dict(os.environ, APMNET_LIBRARY=str(tmp_path / "nowhere" / "libapmnet.so"))
    env["PYTHONPATH"] = str(REPO_ROOT / "bindings" / "python")
    out = subprocess.run([sys.executable, "-c", "import apmnet"], cwd=tmp_path, env=env,
                         capture_output=True, text=True)
    assert out.returncode != 0
    assert "APMNET_LIBRARY" in out.stderr and "nowhere" in out.stderr


def test_the_installed_package_carries_its_library_and_type_hints():
    """Installed from the wheel (as test.sh does), the package loads the libapmnet.so inside it when
    APMNET_LIBRARY is not set, and ships py.typed for type checkers."""
    package = pathlib.Path(apmnet.__file__).resolve().parent
    if package == REPO_ROOT / "bindings" / "python" / "apmnet":
        pytest.skip("imported from the source tree, not installed")
    assert (package / "py.typed").is_file()
    assert (package / "libapmnet.so").is_file()
    if "APMNET_LIBRARY" not in os.environ:
        assert apmnet.library_path == str(package / "libapmnet.so")
