#!/usr/bin/env python3
"""apmnet benchmarks: `make bench` runs this.

Builds the C counterparts and clients (-O2), the library (cargo build --release) and the .NET 8 client,
then runs each workload's members alternately (A B C, A B C, ...) for N rounds against the same C
servers (benches/c/servers.c), and prints one table: median, min-max spread, and the median of the
per-round ratios against the raw baseline, libuv and .NET 8 of the same round. JSON goes to
target/bench/results.json. Benchmarks only measure: nothing here fails on a slow figure.

Usage: python3 benches/run.py [WORKLOAD ...]     (default: all; the `name`s of workloads(), e.g. bulk,
       echo100, nego_ntlm_write, https_get32, https_ntlm_get1)

Environment:
  BENCH_ROUNDS=N          rounds (default 5; 1 in quick mode); echo1 and latency run twice as many, tls three
                          times (short rows whose per-round ratios swing most; their titles say so)
  BENCH_QUICK=1           small sizes, for smoke tests
  BENCH_NO_INSTALL=1      never apt-get/pip install missing peers (libuv1-dev, libcurl4-openssl-dev, .NET 8,
                          the MIT KDC); skip their rows
  BENCH_NO_DOTNET=1       skip the .NET 8 rows
  APMNET_PEERS_CACHE=DIR  where benches/dotnet/dotnet.sh keeps .NET 8 (default ~/.cache/apmnet-peers)
  BENCH_APM_LIBDIR=DIR    measure the libapmnet.so in DIR instead of building this tree's (no cargo build)
  BENCH_APM_INCLUDE=DIR   the apmnet.h to compile the apmnet client against (default include/)
  BENCH_APM_COMPARE=DIR   also run each row of the apmnet C client against the libapmnet.so in DIR (the
                          same C ABI: another build, e.g. main's), in the same rounds, as a row marked
                          [BENCH_APM_COMPARE_LABEL] (default "compare")
  CARGO_TARGET_DIR        where cargo build --release puts the library that is measured (default target/)
  CC                      C compiler (default cc)
"""
import glob
import json
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCHES = os.path.join(ROOT, "benches")
OUT = os.path.join(ROOT, "target", "bench")
QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")
ROUNDS = int(os.environ.get("BENCH_ROUNDS") or (1 if QUICK else 5))
NO_INSTALL = os.environ.get("BENCH_NO_INSTALL", "") not in ("", "0")
CC = os.environ.get("CC", "cc")

# Sizes (full / quick).
BULK_MIB = 256 if QUICK else 2048
FILE_MIB = 128 if QUICK else 1024
TLS_MIB = 128 if QUICK else 1024
NEGO_MIB = 32 if QUICK else 256
POST_MIB = 64 if QUICK else 256
ECHO_SECS, ECHO_WARM = (1.0, 0.2) if QUICK else (3.0, 0.5)
LAT_SAMPLES = 200 if QUICK else 1000
MEM_CONNS = 1000 if QUICK else 10000
TIMEOUT = 60

T_START = time.time()


def log(msg):
    print("[bench %5.0fs] %s" % (time.time() - T_START, msg), file=sys.stderr, flush=True)


def rel(path):
    return os.path.relpath(path, ROOT)


def run_logged(cmd, logname, env=None, timeout=None, cwd=ROOT):
    """Runs cmd, output to target/bench/<logname>; returns (ok, last lines of output)."""
    path = os.path.join(OUT, logname)
    with open(path, "w") as f:
        try:
            rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, timeout=timeout,
                                cwd=cwd).returncode
        except (OSError, subprocess.TimeoutExpired) as e:
            f.write("\n%s\n" % e)
            rc = -1
    with open(path, errors="replace") as f:
        tail = f.read().strip().splitlines()[-3:]
    return rc == 0, " | ".join(tail)


def is_root():
    return hasattr(os, "geteuid") and os.geteuid() == 0


def ensure_deb(pkg, header):
    """True when the header exists; installs the Debian package when missing (root only)."""
    if os.path.exists(header):
        return True
    if NO_INSTALL or not is_root() or not shutil.which("apt-get"):
        return False
    log("installing %s" % pkg)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    ok, _ = run_logged(["apt-get", "install", "-y", "-qq", pkg], "apt-%s.log" % pkg, env=env, timeout=600)
    if not ok:
        run_logged(["apt-get", "update", "-qq"], "apt-update.log", env=env, timeout=600)
        run_logged(["apt-get", "install", "-y", "-qq", pkg], "apt-%s.log" % pkg, env=env, timeout=600)
    return os.path.exists(header)


def cc(out, src, *libs, extra=()):
    cmd = [CC, "-O2", "-Wall", "-Wextra", "-o", os.path.join(OUT, out), os.path.join(BENCHES, "c", src),
           *extra, *libs]
    return run_logged(cmd, "build-%s.log" % out)


# ------------------------------------------------------------------------------------------ build

class Tools:
    def __init__(self):
        self.skip = {}  # kind -> reason its rows are skipped
        self.dotnet_env = None
        self.apm_library = None  # the staged libapmnet.so, for the .NET wrapper's rows
        self.wrapper_skip = "the .NET wrapper's client is not built"
        self.apm_tls = "SslStream not landed (no apm_ssl_stream_* in include/apmnet.h)"
        self.apm_nego = "NegotiateStream not landed (no apm_negotiate_stream_* in include/apmnet.h)"
        self.apm_http = "HttpWebRequest not landed (no apm_http_request_* in include/apmnet.h)"
        self.krb_env = None  # the loopback realm's environment, once started
        self.krb_skip = "the loopback Kerberos realm was not started"
        self.krb_dir = None
        self.apm_compare = None  # the staged BENCH_APM_COMPARE library's directory
        self.unavailable = {}  # (workload, member) -> why its command is None
        self.cert = ""
        self.ntlm_conf = ""


def build():
    os.makedirs(OUT, exist_ok=True)
    t = Tools()
    if not ensure_deb("libssl-dev", "/usr/include/openssl/ssl.h"):
        sys.exit("benches need OpenSSL 3 headers (Debian libssl-dev)")
    for out, src, libs in (("servers", "servers.c", ("-lssl", "-lcrypto", "-lpthread")),
                           ("raw", "raw.c", ("-lssl", "-lcrypto", "-lpthread"))):
        ok, tail = cc(out, src, *libs)
        if not ok:
            sys.exit("cannot build %s: %s" % (src, tail))

    if not ensure_deb("libuv1-dev", "/usr/include/uv.h"):
        t.skip["libuv"] = "libuv1-dev not installed"
    else:
        ok, tail = cc("uv", "uv.c", "-luv", "-lpthread")
        if not ok:
            t.skip["libuv"] = "uv.c does not build: " + tail

    incdir = os.environ.get("BENCH_APM_INCLUDE") or os.path.join(ROOT, "include")
    libdir = os.environ.get("BENCH_APM_LIBDIR")
    if libdir:
        ok, tail = os.path.exists(os.path.join(libdir, "libapmnet.so")), "no libapmnet.so in BENCH_APM_LIBDIR"
    else:
        log("cargo build --release")
        ok, tail = run_logged(["cargo", "build", "--release"], "cargo-build.log", timeout=1800)
        # cargo builds into CARGO_TARGET_DIR when it is set (relative to the tree, as cargo reads it).
        libdir = os.path.join(ROOT, os.environ.get("CARGO_TARGET_DIR") or "target", "release")
    header = os.path.join(incdir, "apmnet.h")
    if not ok:
        t.skip["apmnet"] = "library does not build (target/bench/cargo-build.log): " + tail
    elif not os.path.exists(header):
        t.skip["apmnet"] = "include/apmnet.h missing"
    else:
        libdir = stage_library(libdir)
        t.apm_library = os.path.join(libdir, "libapmnet.so")
        ok, tail = cc("apm", "apm.c", "-L" + libdir, "-lapmnet", "-lpthread", "-lcrypto",
                      extra=("-I" + incdir, "-Wl,-rpath," + libdir))
        if not ok:
            t.skip["apmnet"] = "apm.c does not build against %s: %s" % (rel(header), tail)
        with open(header, errors="replace") as f:
            text = f.read()
        if "apm_ssl_stream_create" in text and "APM_SSL_PROTOCOLS_TLS13" in text:
            t.apm_tls = None
        if "apm_negotiate_stream_create" in text:
            t.apm_nego = None
        if "apm_http_request_create" in text:
            t.apm_http = None
        compare = os.environ.get("BENCH_APM_COMPARE")
        if compare:
            if not os.path.exists(os.path.join(compare, "libapmnet.so")):
                sys.exit("no libapmnet.so in BENCH_APM_COMPARE=%s" % compare)
            # The apm client finds its library through RUNPATH, which LD_LIBRARY_PATH overrides.
            t.apm_compare = stage_library(compare, "lib-compare")

    curl_h = "/usr/include/%s-linux-gnu/curl/curl.h" % platform.machine()
    if not os.path.exists(curl_h):
        curl_h = "/usr/include/curl/curl.h"
    if not ensure_deb("libcurl4-openssl-dev", curl_h):
        t.skip["libcurl"] = "libcurl4-openssl-dev not installed"
    else:
        ok, tail = cc("curl", "curl.c", "-lcurl")
        if not ok:
            t.skip["libcurl"] = "curl.c does not build: " + tail

    if os.environ.get("BENCH_NO_DOTNET", "") not in ("", "0"):
        t.skip["dotnet"] = "BENCH_NO_DOTNET set"
    else:
        build_dotnet(t)
    return t


def stage_library(libdir, sub="lib"):
    """Copies the built library to target/bench/<sub> under its soname too (the link the loader
    follows), so a rebuild during the run cannot change what is being measured."""
    src = os.path.join(libdir, "libapmnet.so")
    dst = os.path.join(OUT, sub)
    os.makedirs(dst, exist_ok=True)
    with open(src, "rb") as f:
        blob = f.read()
    names = {"libapmnet.so"}
    m = re.search(rb"\0(libapmnet\.so\.[0-9.]+)\0", blob)
    try:
        out = subprocess.run(["readelf", "-d", src], stdout=subprocess.PIPE, text=True).stdout
        so = re.search(r"\(SONAME\).*\[(.*)\]", out)
        if so:
            names.add(so.group(1))
    except OSError:
        if m:
            names.add(m.group(1).decode())
    for name in names:
        tmp = os.path.join(dst, name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(blob)
        os.replace(tmp, os.path.join(dst, name))
    return dst


def build_dotnet(t):
    cache = os.environ.get("APMNET_PEERS_CACHE") or os.path.join(os.path.expanduser("~"), ".cache",
                                                                   "apmnet-peers")
    ready = os.path.exists(os.path.join(cache, "net8", "dotnet")) and shutil.which("mcs")
    if not ready and (NO_INSTALL or not is_root()):
        t.skip["dotnet"] = ".NET 8 not installed in %s (BENCH_NO_INSTALL or not root)" % cache
        return
    log(".NET 8 via benches/dotnet/dotnet.sh (cache %s)" % cache)
    try:
        p = subprocess.run(["bash", os.path.join(BENCHES, "dotnet", "dotnet.sh"), cache],
                           stdout=subprocess.PIPE, stderr=open(os.path.join(OUT, "dotnet-setup.log"), "w"),
                           text=True, timeout=900)
    except (OSError, subprocess.TimeoutExpired) as e:
        t.skip["dotnet"] = "dotnet.sh failed: %s" % e
        return
    if p.returncode != 0:
        t.skip["dotnet"] = "dotnet.sh failed (target/bench/dotnet-setup.log)"
        return
    env = {}
    for line in p.stdout.splitlines():
        if line.startswith("export "):
            for tok in shlex.split(line[len("export "):]):
                k, _, v = tok.partition("=")
                env[k] = v
    if "APMNET_DOTNET" not in env:
        t.skip["dotnet"] = "dotnet.sh printed no APMNET_DOTNET"
        return
    ok, tail = run_logged(["mcs", "-nologo", "-optimize+", "-out:" + os.path.join(OUT, "Bench.exe"),
                           os.path.join(BENCHES, "dotnet", "Bench.cs")], "build-Bench.exe.log")
    if not ok:
        t.skip["dotnet"] = "Bench.cs does not build: " + tail
        return
    t.dotnet_env = env
    build_dotnet_wrapper(t)


def build_dotnet_wrapper(t):
    """BenchApm.exe: Bench.cs on the apmnet .NET wrapper (bindings/dotnet/src, Apmnet.dll beside it)."""
    if t.apm_library is None:
        t.wrapper_skip = "the library did not build"
        return
    wrapper = os.path.join(OUT, "Apmnet.dll")
    sources = sorted(glob.glob(os.path.join(ROOT, "bindings", "dotnet", "src", "*.cs")))
    ok, tail = run_logged(["mcs", "-nologo", "-optimize+", "-target:library", "-r:System.dll", "-r:System.Core.dll",
                           "-out:" + wrapper] + sources, "build-Apmnet.dll.log")
    if ok:
        ok, tail = run_logged(["mcs", "-nologo", "-optimize+", "-define:APMNET", "-r:" + wrapper,
                               "-out:" + os.path.join(OUT, "BenchApm.exe"),
                               os.path.join(BENCHES, "dotnet", "Bench.cs")], "build-BenchApm.exe.log")
    t.wrapper_skip = None if ok else "the .NET wrapper's client does not build: " + tail


# ------------------------------------------------------------------------------------------ servers

class Servers:
    def __init__(self):
        self.procs = []
        self.port = {}
        self.pid = {}

    def start(self, name, *args, prog="servers", label=None, env=None, optional=False):
        """Starts OUT/prog with name and args (the server kind), registered as `label` (default
        name); an optional server that does not start returns False instead of ending the run."""
        label = label or name
        p = subprocess.Popen([os.path.join(OUT, prog), name, *args], stdout=subprocess.PIPE,
                             stderr=open(os.path.join(OUT, "server-%s.log" % label), "w"), text=True,
                             env=dict(os.environ, **(env or {})))
        self.procs.append(p)
        line = p.stdout.readline().split()
        if len(line) != 2 or line[0] != "ready":
            if optional:
                return False
            raise SystemExit("server %s did not start (target/bench/server-%s.log)" % (label, label))
        self.port[label] = int(line[1])
        self.pid[label] = p.pid
        return True

    def cpu(self, label):
        """The server's process CPU seconds so far (user + system), or None."""
        try:
            with open("/proc/%d/stat" % self.pid[label]) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (KeyError, OSError, ValueError, IndexError):
            return None

    def http_stats(self, label):
        """(connections that carried a request, requests served) of the http/https server."""
        import socket
        import ssl
        try:
            sock = socket.create_connection(("127.0.0.1", self.port[label]), timeout=5)
            if label in ("https", "https-ntlm"):
                ctx = ssl.create_default_context()
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
                sock = ctx.wrap_socket(sock)
            with sock:
                sock.sendall(b"GET /_stats HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
                data = b""
                while True:
                    chunk = sock.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            m = re.search(rb"conns (\d+) reqs (\d+)", data)
            return (int(m.group(1)), int(m.group(2))) if m else None
        except (OSError, KeyError):
            return None

    def stop(self):
        for p in self.procs:
            p.kill()
            p.wait()


def make_file(mib):
    path = os.path.join(OUT, "sendfile-%dMiB.bin" % mib)
    if not os.path.exists(path) or os.path.getsize(path) != mib << 20:
        log("writing %s" % rel(path))
        block = os.urandom(1 << 20)
        with open(path + ".tmp", "wb") as f:
            for _ in range(mib):
                f.write(block)
        os.replace(path + ".tmp", path)
    with open(path, "rb") as f:  # into the page cache
        while f.read(1 << 24):
            pass
    return path


# ------------------------------------------------------------------------------------------ workloads

RAW, UV, APM, NET, CURL = "raw", "libuv", "apmnet", "dotnet", "libcurl"
#: The rows of the apmnet .NET wrapper (bindings/dotnet) on .NET 8: Bench.cs on Apmnet.Socket/NetworkStream.
WRAPPER = ".NET 8 on apmnet's wrapper:"


def workloads(t, srv, path):
    wls = workloads_of(t, srv, path)
    if t.apm_compare:
        label = os.environ.get("BENCH_APM_COMPARE_LABEL") or "compare"
        apm = os.path.join(OUT, "apm")
        for w in wls:
            members = []
            for kind, name, cmd, env in w["members"]:
                members.append((kind, name, cmd, env))
                if kind == APM and cmd and cmd[0] == apm:
                    members.append((kind, "%s [%s]" % (name, label), cmd,
                                    dict(env or {}, LD_LIBRARY_PATH=t.apm_compare)))
            w["members"] = members
    return wls


def workloads_of(t, srv, path):
    S, E, T, H = (str(srv.port[k]) for k in ("sink", "echo", "tlssink", "tlshello"))
    raw = [os.path.join(OUT, "raw")]
    uv = [os.path.join(OUT, "uv")]
    apm = [os.path.join(OUT, "apm")]
    net = wrapper = None
    if t.dotnet_env:
        net = [t.dotnet_env["APMNET_DOTNET"], "exec", "--runtimeconfig", t.dotnet_env["APMNET_DOTNET_CONFIG"],
               os.path.join(OUT, "Bench.exe")]
        if not t.wrapper_skip:
            wrapper = net[:-1] + [os.path.join(OUT, "BenchApm.exe")]
    on_wrapper = {"APMNET_LIBRARY": t.apm_library or ""}
    bulk, fmib, tmib = str(BULK_MIB), str(FILE_MIB), str(TLS_MIB)
    es, ew = str(ECHO_SECS), str(ECHO_WARM)
    lat, mem = str(LAT_SAMPLES), str(MEM_CONNS)
    spin0 = {"BENCH_APM_SPIN_US": "0"}

    def handshakes(mode, ver):
        args = ["handshake", H, es, mode, ver]
        what = "AllowTlsResume off" if mode == "full" else "session cache"
        return [
            (RAW, "raw OpenSSL SSL_connect" + (" + SSL_set_session" if mode == "resumed" else ""),
             raw + args, None),
            (APM, "apmnet SslStream (%s)" % what, None if t.apm_tls else apm + args, None),
            (NET, ".NET 8 SslStream (%s)" % what, net and net + args, None),
        ]

    def echo(conns):
        c = str(conns)
        return [
            (RAW, "raw epoll client", raw + ["echo", E, c, es, "64", ew], None),
            (UV, "libuv", uv + ["echo", E, c, es, "64", ew], None),
            (APM, "apmnet Socket Begin/End", apm + ["echo", E, c, es, "64", ew], None),
            (APM, "apmnet (spin_us=0)", apm + ["echo", E, c, es, "64", ew], spin0),
            (NET, ".NET 8 Socket Begin/End", net and net + ["echo", E, c, es, "64", ew], None),
            (NET, WRAPPER + " Socket Begin/End", wrapper and wrapper + ["echo", E, c, es, "64", ew], on_wrapper),
        ]

    def none(wname, member, why):
        """A member that cannot run here: no command, and the reason its row gives."""
        t.unavailable[(wname, member)] = why
        return None

    # NegotiateStream: both clients against the same server on our C API (apm negoserver), which
    # runs the sink protocol over the authenticated stream; its CPU is in the notes.
    nmib = str(NEGO_MIB)
    ntlm_env = {"KRB5_CONFIG": t.ntlm_conf}
    ntlm_user = ["alice", "Passw0rd!", "TESTDOM"]
    krb_user = ["alice", "Passw0rd!", "APMNET.TEST"]

    def nego(wname, how, env, user, srvname):
        port = str(srv.port.get(srvname, 0))
        bad = t.apm_nego or (None if srvname in srv.port else "the NegotiateStream server did not start")
        if how == "write":
            args, what = [port, nmib, "65536"] + user, "BeginWrite"
        else:
            args, what = [port, str(ECHO_SECS)] + user, "AuthenticateAsClient"
        mode = "nego" if how == "write" else "negohs"
        return [
            (APM, "apmnet NegotiateStream " + what,
             none(wname, "apmnet NegotiateStream " + what, bad) if bad else apm + [mode] + args, env),
            (NET, ".NET 8 NegotiateStream " + what,
             none(wname, ".NET 8 NegotiateStream " + what, bad) if bad and net else net and net + [mode] + args,
             env),
        ]

    krb_bad = t.krb_skip if t.krb_env is None else None

    def krb(wname):
        members = nego(wname, "write", t.krb_env or {}, krb_user, "negoserver-krb")
        if krb_bad:
            members = [(k, n, none(wname, n, krb_bad), e) for k, n, _, e in members]
        return members

    # HttpWebRequest: apmnet, .NET 8 and libcurl against the same http/https servers.
    curl = [os.path.join(OUT, "curl")]
    ca = t.cert
    trust_net = {"SSL_CERT_FILE": ca}

    def http(wname, scheme, how, conns=1):
        port = srv.port.get(scheme)
        url = "%s://127.0.0.1:%s/" % (scheme, port)
        tls = scheme == "https"
        if how == "get":
            a_args = lambda trust: ["httpget", url, str(conns), es, ew, trust]
            n_args = ["httpget", url, str(conns), es, ew]
            c_args = ["get", url, str(conns), es, ew, ca if tls else "-"]
            what = "GET"
        else:
            a_args = lambda trust: ["httppost", url, str(POST_MIB), "65536", trust]
            n_args = ["httppost", url, str(POST_MIB), "65536"]
            c_args = ["post", url, str(POST_MIB), "65536", ca if tls else "-"]
            what = "POST"
        bad = t.apm_http

        def apm_member(label, trust):
            name = "apmnet HttpWebRequest %s%s" % (what, label)
            return (APM, name, none(wname, name, bad) if bad else apm + a_args(trust), None)

        members = []
        if tls:
            # The validation callback accepts the bench certificate; the trusted-CA-file member
            # sets apm_http_request_set_trusted_ca_file on every request, as a C user would.
            members.append(apm_member(" (validation callback)", "accept"))
            members.append(apm_member(" (trusted CA file)", ca))
        else:
            members.append(apm_member("", "-"))
        members.append((NET, ".NET 8 HttpWebRequest " + what, net and net + n_args, trust_net if tls else None))
        members.append((CURL, "libcurl " + ("multi, %d handles" % conns if conns > 1 else "easy handle"),
                        curl + c_args, None))
        return members

    # NTLM over https against our own server (apm ntlmserver: NegotiateAuthentication bound to the
    # connection, every request authenticated anew): each GET is 401, challenge, 200 on one
    # connection for apmnet; .NET 8 opens what it opens (the server counts the connections).
    ntlm_http = dict(BENCH_HTTP_USER="alice", BENCH_HTTP_PASSWORD="Passw0rd!", BENCH_HTTP_DOMAIN="TESTDOM")

    def ntlm_get():
        wname, port = "https_ntlm_get1", srv.port.get("https-ntlm")
        url = "https://127.0.0.1:%s/" % port
        bad = t.apm_http or (None if port else "the NTLM https server did not start")
        env = dict(ntlm_http, KRB5_CONFIG=t.ntlm_conf)
        name = "apmnet HttpWebRequest GET, NTLM"
        return [
            (APM, name, none(wname, name, bad) if bad else apm + ["httpget", url, "1", es, ew, ca], env),
            (NET, ".NET 8 HttpWebRequest GET, NTLM",
             none(wname, ".NET 8 HttpWebRequest GET, NTLM", bad) if bad and net
             else net and net + ["httpget", url, "1", es, ew], dict(env, **trust_net)),
        ]

    def get(scheme, conns):
        name = "%s_get%d" % (scheme, conns)
        return dict(name=name, title="%s GET 1 KiB, keep-alive, %d in flight" % (scheme, conns), better="higher",
                    cpu="us/req", baseline=False, server=scheme, inflight=conns,
                    members=http(name, scheme, "get", conns))

    def post(scheme):
        name = "%s_post" % scheme
        return dict(name=name, title="%s POST %d MiB, ContentLength, 64 KiB writes" % (scheme, POST_MIB),
                    better="higher", cpu="s", baseline=False, server=scheme, inflight=1,
                    members=http(name, scheme, "post"))

    return [
        dict(name="bulk", title="64 KiB writes, %d MiB to sink" % BULK_MIB, better="higher",
             cpu="s", members=[
                 (RAW, "raw write()", raw + ["write", S, bulk, "65536"], None),
                 (UV, "libuv uv_write (chained)", uv + ["write", S, bulk, "65536"], None),
                 (APM, "apmnet NetworkStream BeginWrite", apm + ["write", S, bulk, "65536"], None),
                 (NET, ".NET 8 NetworkStream BeginWrite", net and net + ["write", S, bulk, "65536"], None),
                 (NET, WRAPPER + " NetworkStream BeginWrite", wrapper and wrapper + ["write", S, bulk, "65536"],
                  on_wrapper),
             ]),
        dict(name="sendfile", title="send file %d MiB (page cache)" % FILE_MIB, better="higher", cpu="s",
             members=[
                 (RAW, "raw sendfile(2)", raw + ["sendfile", S, path], None),
                 (APM, "apmnet Socket BeginSendFile", apm + ["sendfile", S, path], None),
                 (NET, ".NET 8 Socket BeginSendFile", net and net + ["sendfile", S, path], None),
             ]),
        dict(name="tls", title="TLS 1.3 AES-128-GCM, 16 KiB writes, %d MiB" % TLS_MIB, better="higher",
             cpu="s", repeat=3, members=[
                 (RAW, "raw SSL_write", raw + ["tls", T, tmib, "16384"], None),
                 (APM, "apmnet SslStream BeginWrite",
                  None if t.apm_tls else apm + ["tls", T, tmib, "16384"], None),
                 (APM, "apmnet SslStream BeginWrite 64 KiB",
                  None if t.apm_tls else apm + ["tls", T, tmib, "65536"], None),
                 (NET, ".NET 8 SslStream BeginWrite", net and net + ["tls", T, tmib, "16384"], None),
                 (NET, ".NET 8 SslStream BeginWrite 64 KiB", net and net + ["tls", T, tmib, "65536"], None),
             ]),
        dict(name="handshake", title="TLS 1.3 full handshakes, sequential connections", better="higher",
             cpu="us/hs", members=handshakes("full", "1.3")),
        dict(name="resumed", title="TLS 1.3 resumed handshakes, sequential connections", better="higher",
             cpu="us/hs", members=handshakes("resumed", "1.3")),
        dict(name="handshake12", title="TLS 1.2 full handshakes, sequential connections", better="higher",
             cpu="us/hs", members=handshakes("full", "1.2")),
        dict(name="resumed12", title="TLS 1.2 resumed handshakes, sequential connections", better="higher",
             cpu="us/hs", members=handshakes("resumed", "1.2")),
        dict(name="echo1", title="echo 64 B, 1 connection", better="higher", cpu="us/req", repeat=2,
             members=echo(1)),
        dict(name="echo100", title="echo 64 B, 100 connections", better="higher", cpu="us/req",
             members=echo(100)),
        dict(name="latency", title="callback latency (in-process peer)", better="lower", repeat=2,
             metrics=[("RESULT", "lat.arrival.p50", "data arrival -> callback, p50"),
                      ("p99", "lat.arrival.p99", "data arrival -> callback, p99"),
                      ("begin_p50", "lat.begin.p50", "Begin -> callback (op waits), p50"),
                      ("begin_p99", "lat.begin.p99", "Begin -> callback (op waits), p99"),
                      ("hot_p50", "lat.hot.p50", "data arrival -> callback, 10 us after the last one, p50"),
                      ("hot_p99", "lat.hot.p99", "data arrival -> callback, 10 us after the last one, p99")],
             members=[
                 (RAW, "raw epoll_wait thread", raw + ["latency", lat], None),
                 (UV, "libuv read callback", uv + ["latency", lat], None),
                 (APM, "apmnet BeginReceive callback", apm + ["latency", lat], None),
                 (APM, "apmnet (spin_us=0)", apm + ["latency", lat], spin0),
                 (NET, ".NET 8 BeginReceive callback", net and net + ["latency", lat], None),
             ]),
        dict(name="memory", title="memory, %d connections" % MEM_CONNS, better="lower", baseline=False,
             metrics=[("RESULT", "mem.conn", "RSS per idle connection"),
                      ("pending", "mem.pending", "RSS per pending read")],
             members=[
                 (UV, "libuv uv_tcp_t", uv + ["memory", E, mem], None),
                 (APM, "apmnet Socket + NetworkStream", apm + ["memory", E, mem], None),
                 (NET, ".NET 8 Socket + NetworkStream", net and net + ["memory", E, mem], None),
             ]),
        dict(name="nego_ntlm_write", title="NegotiateStream NTLM EncryptAndSign, 64 KiB writes, %d MiB" % NEGO_MIB,
             better="higher", cpu="s", baseline=False, server="negoserver",
             members=nego("nego_ntlm_write", "write", ntlm_env, ntlm_user, "negoserver")),
        dict(name="nego_krb_write",
             title="NegotiateStream Kerberos EncryptAndSign, 64 KiB writes, %d MiB" % NEGO_MIB,
             better="higher", cpu="s", baseline=False, server="negoserver-krb", members=krb("nego_krb_write")),
        dict(name="nego_ntlm_handshake", title="NegotiateStream NTLM authentications, sequential connections",
             better="higher", cpu="us/hs", baseline=False, server="negoserver",
             members=nego("nego_ntlm_handshake", "handshake", ntlm_env, ntlm_user, "negoserver")),
        get("http", 1), get("http", 32), get("https", 1), get("https", 32), post("http"), post("https"),
        dict(name="https_ntlm_get1", title="https GET 1 KiB with NTLM (401, challenge, 200 each), 1 in flight",
             better="higher", cpu="us/req", baseline=False, server="https-ntlm", inflight=1, members=ntlm_get()),
    ]


def skip_reason(t, kind, cmd, name, wname):
    if kind in t.skip:
        return t.skip[kind]
    if cmd is None and (wname, name) in t.unavailable:
        return t.unavailable[(wname, name)]
    if cmd is None:
        if "SslStream" in name and kind == APM:
            return t.apm_tls
        if name.startswith(WRAPPER):
            return t.wrapper_skip
        return "unavailable"
    return None


def parse(out):
    res = {"extras": {}}
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 3 and f[0] == "RESULT":
            res["value"], res["unit"] = float(f[1]), f[2]
        elif len(f) >= 3 and f[0] == "EXTRA":
            res["extras"][f[1]] = (float(f[2]), f[3] if len(f) > 3 else "")
        elif len(f) == 2 and f[0] == "CPU":
            res["cpu"] = float(f[1])
    return res if "value" in res else None


def run_member(cmd, env_extra, dotnet_env):
    env = dict(os.environ)
    env.update(dotnet_env or {})
    env.update(env_extra or {})
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                           timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        return None, "timed out after %ds" % TIMEOUT
    res = parse(p.stdout)
    if p.returncode != 0 or res is None:
        err = (p.stderr.strip().splitlines() or ["exit %d, no RESULT" % p.returncode])[-1]
        return None, "exit %d: %s" % (p.returncode, err[:200])
    return res, None


LOADS = []  # (workload, round, CPUs busy with other work just before the round)


def cpu_jiffies():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return sum(v[:8]) - idle, sum(v[:8])


def foreign_load(secs=0.3):
    """How many CPUs other processes kept busy over `secs` while no benchmark client ran (the
    servers are idle then). The machine is shared with builds and tests; a busy CPU distorts
    everything on 2 vCPUs."""
    try:
        b0, t0 = cpu_jiffies()
        time.sleep(secs)
        b1, t1 = cpu_jiffies()
        return round((os.cpu_count() or 1) * (b1 - b0) / max(1, t1 - t0), 2)
    except (OSError, ValueError):
        return 0.0


def rounds_of(w):
    """A workload's rounds: `repeat` times BENCH_ROUNDS for the short rows whose per-round ratios
    swing most on a small shared machine (TLS throughput, callback latency), so that their
    medians rest on more rounds at little cost in time."""
    return ROUNDS * w.get("repeat", 1)


def run_all(t, srv, wls, only):
    results = []
    for w in wls:
        if only and w["name"] not in only:
            continue
        members = []
        for kind, name, cmd, env_extra in w["members"]:
            members.append(dict(kind=kind, name=name, cmd=cmd, env=env_extra, runs=[None] * rounds_of(w),
                                errors=[], skip=skip_reason(t, kind, cmd, name, w["name"])))
        log("%s: %s" % (w["name"], w["title"]))
        for r in range(rounds_of(w)):
            LOADS.append((w["name"], r + 1, foreign_load()))
            for m in members:
                if m["skip"]:
                    continue
                server = w.get("server")
                stats0 = srv.http_stats(server) if "inflight" in w else None
                cpu0, wall0 = srv.cpu(server) if server else None, time.time()
                res, err = run_member(m["cmd"], m["env"], t.dotnet_env)
                if res is not None and cpu0 is not None:
                    cpu1 = srv.cpu(server)
                    if cpu1 is not None:
                        # A share of one CPU over the client's whole run (start-up included).
                        res["server_cpu"] = (cpu1 - cpu0) / max(1e-3, time.time() - wall0)
                if res is not None and stats0 is not None:
                    stats1 = srv.http_stats(server)
                    if stats1 is not None:
                        res["conns"], res["reqs"] = stats1[0] - stats0[0], stats1[1] - stats0[1]
                        # Keep-alive is checked, not assumed: a member that opened more connections
                        # than it keeps in flight (plus a warm-up one) did not reuse them.
                        if res["conns"] > w["inflight"] + 1:
                            log("  round %d %s: %d connections for %d requests: keep-alive not reused"
                                % (r + 1, m["name"], res["conns"], res["reqs"]))
                m["runs"][r] = res
                if err:
                    m["errors"].append(err)
                    log("  round %d %s: %s" % (r + 1, m["name"], err))
                    if err.startswith("timed out"):
                        m["skip"] = err + " (later rounds skipped)"
                    elif len(m["errors"]) >= 2 and all(x is None for x in m["runs"][:r + 1]):
                        m["skip"] = "failed every round: " + err
                else:
                    log("  round %d %-36s %.4g %s" % (r + 1, m["name"], res["value"], res["unit"]))
        results.append((w, members))
    return results


# ------------------------------------------------------------------------------------------ report

def metric_values(m, src):
    vals = []
    for run in m["runs"]:
        if run is None:
            vals.append(None)
        elif src == "RESULT":
            vals.append(run["value"])
        else:
            vals.append(run["extras"].get(src, (None,))[0])
    return vals


def metric_unit(m, src):
    for run in m["runs"]:
        if run:
            return run["unit"] if src == "RESULT" else run["extras"].get(src, (0, ""))[1]
    return ""


def round_ratios(a, b):
    """The per-round ratios a/b (None for a round either side missed)."""
    return [x / y if x is not None and y is not None and y != 0 else None for x, y in zip(a, b)]


def ratio_text(rounds):
    """The median of the per-round ratios and, over more than one round, their min-max: how sure
    the ratio is (e.g. "1.23 (1.18-1.27)")."""
    got = [r for r in rounds if r is not None]
    if not got:
        return "-"
    text = fmt_ratio(statistics.median(got))
    if len(got) > 1:
        text += " (%s-%s)" % (fmt_ratio(min(got)), fmt_ratio(max(got)))
    return text


def fmt_ratio(v):
    return "%.0f" % v if v >= 100 else "%.1f" % v if v >= 10 else "%.2f" % v


def cpu_text(w, m):
    cpus = [run["cpu"] for run in m["runs"] if run and "cpu" in run]
    if not cpus or "cpu" not in w:
        return ""
    if w["cpu"] == "s":
        return "%.2f s" % statistics.median(cpus)
    per = [run["cpu"] * 1e6 / (run["value"] * ECHO_SECS) for run in m["runs"]
           if run and "cpu" in run and run["value"] > 0]
    return "%.1f %s" % (statistics.median(per), w["cpu"]) if per else ""


def fmt(v):
    if v is None:
        return "-"
    if abs(v) >= 1000:
        return "%.0f" % v
    if abs(v) >= 100:
        return "%.1f" % v
    if abs(v) >= 10:
        return "%.2f" % v
    return "%.3f" % v


def report(results, t):
    rows, data = [], []
    for w, members in results:
        metrics = w.get("metrics") or [("RESULT", w["name"], w["title"])]
        for src, key, title in metrics:
            base = None if w.get("baseline") is False else members[0]
            firsts = {}
            for m in members:
                if not m["skip"] and any(v is not None for v in metric_values(m, src)):
                    firsts.setdefault(m["kind"], m)
            uvm, netm, curlm = firsts.get(UV), firsts.get(NET), firsts.get(CURL)
            more = ", %d rounds" % rounds_of(w) if rounds_of(w) != ROUNDS else ""
            rows.append(("%s (%s is better%s)" % (title, w["better"], more), None))
            for m in members:
                vals = metric_values(m, src)
                got = [v for v in vals if v is not None]
                entry = dict(workload=key, title=title, system=m["name"], kind=m["kind"],
                             better=w["better"], unit=metric_unit(m, src), values=vals)
                if not got:
                    why = m["skip"] or (m["errors"][-1] if m["errors"] else None)
                    if why is None:
                        why = "not measured by this client" if any(m["runs"]) else "no result"
                    entry["skipped"] = why
                    rows.append((key, [m["name"], "-", "", "", "", "", "", "", "", "skipped: " + why]))
                    data.append(entry)
                    continue
                ratios, per_round, texts = {}, {}, {}
                for label, other in (("raw", base), ("libuv", uvm), ("dotnet", netm), ("libcurl", curlm)):
                    if other is not None and other is not m:
                        per_round[label] = round_ratios(vals, metric_values(other, src))
                        got_r = [r for r in per_round[label] if r is not None]
                        ratios[label] = statistics.median(got_r) if got_r else None
                        texts[label] = ratio_text(per_round[label])
                    elif other is m:
                        ratios[label], texts[label] = 1.0, fmt_ratio(1.0)
                entry.update(median=statistics.median(got), min=min(got), max=max(got), ratios=ratios,
                             round_ratios=per_round,
                             cpu=[run.get("cpu") if run else None for run in m["runs"]],
                             errors=m["errors"])
                note = ""
                sf = [run["extras"]["sync_fraction"][0] for run in m["runs"]
                      if run and src == "RESULT" and "sync_fraction" in run["extras"]]
                if sf:
                    note = "sync %.1f%%" % (100 * statistics.median(sf))
                    entry["sync_fraction"] = statistics.median(sf)
                rf = [run["extras"]["resumed_fraction"][0] for run in m["runs"]
                      if run and src == "RESULT" and "resumed_fraction" in run["extras"]]
                if rf:
                    note = "resumed %.0f%%" % (100 * statistics.median(rf))
                    entry["resumed_fraction"] = statistics.median(rf)
                kf = [run["extras"]["kerberos"][0] for run in m["runs"]
                      if run and src == "RESULT" and "kerberos" in run["extras"]]
                if kf:
                    note = (note + "; " if note else "") + ("Kerberos" if min(kf) == 1 else
                                                           "NTLM" if max(kf) == 0 else "Kerberos/NTLM mixed")
                sc = [run["server_cpu"] for run in m["runs"] if run and src == "RESULT" and "server_cpu" in run]
                if sc:
                    entry["server_cpu"] = statistics.median(sc)
                    note = (note + "; " if note else "") + "server %.0f%% CPU" % (100 * entry["server_cpu"])
                cn = [(run["conns"], run["reqs"]) for run in m["runs"] if run and src == "RESULT" and "conns" in run]
                if cn:
                    entry["connections"] = [c for c, _ in cn]
                    entry["requests"] = [q for _, q in cn]
                    note = (note + "; " if note else "") + "%d conn(s) for %d req" % (
                        statistics.median(entry["connections"]), statistics.median(entry["requests"]))
                    if max(entry["connections"]) > w["inflight"] + 1:
                        note += " NOT REUSED"
                pr = [run["extras"]["peak_rss"][0] for run in m["runs"]
                      if run and src == "RESULT" and "peak_rss" in run["extras"]]
                if pr:
                    entry["peak_rss_mib"] = statistics.median(pr)
                    note = (note + "; " if note else "") + "peak RSS %.0f MiB" % entry["peak_rss_mib"]
                if m["errors"]:
                    note = (note + "; " if note else "") + "%d failed run(s)" % len(m["errors"])
                rows.append((key, [m["name"], fmt(entry["median"]), entry["unit"],
                                   "%s-%s" % (fmt(entry["min"]), fmt(entry["max"])),
                                   texts.get("raw", "-"), texts.get("libuv", "-"), texts.get("dotnet", "-"),
                                   texts.get("libcurl", "-"), src == "RESULT" and cpu_text(w, m) or "", note]))
                data.append(entry)

    head = ["system", "median", "unit", "spread (min-max)", "vs raw", "vs libuv", "vs .NET 8", "vs libcurl",
            "client CPU", "notes"]
    table = [r[1] for r in rows if r[1]]
    widths = [max(len(head[i]), *(len(r[i]) for r in table)) if table else len(head[i])
              for i in range(len(head))]
    lines = []
    lines.append("apmnet benchmarks: %d round(s)%s; ratios are medians of per-round ratios (system / reference),"
                 " (min-max) of those ratios beside them" % (ROUNDS, ", QUICK sizes" if QUICK else ""))
    lines.append("  ".join(h.ljust(widths[i]) for i, h in enumerate(head)).rstrip())
    lines.append("  ".join("-" * widths[i] for i in range(len(head))))
    for key, r in rows:
        if r is None:
            lines.append("== " + key)
        else:
            lines.append("  ".join((c.rjust(widths[i]) if 1 <= i <= 7 and i != 2 else c.ljust(widths[i]))
                                   for i, c in enumerate(r)).rstrip())
    busy = [x for x in LOADS if x[2] >= 0.25]
    if busy:
        lines.append("WARNING: other processes kept %s CPU(s) busy before %d of %d rounds (worst: %s);"
                     % ("%.1f-%.1f" % (min(x[2] for x in busy), max(x[2] for x in busy)), len(busy),
                        len(LOADS), ", ".join("%s r%d %.1f" % x for x in sorted(busy, key=lambda x: -x[2])[:3])))
        lines.append("         on 2 vCPUs that distorts absolute figures and the paired ratios too.")
    print("\n".join(lines), flush=True)

    out = dict(rounds=ROUNDS, quick=QUICK, started=time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(T_START)),
               seconds=round(time.time() - T_START, 1), machine=machine(), sizes=dict(
                   bulk_mib=BULK_MIB, file_mib=FILE_MIB, tls_mib=TLS_MIB, nego_mib=NEGO_MIB, post_mib=POST_MIB,
                   echo_secs=ECHO_SECS,
                   echo_warmup=ECHO_WARM, latency_samples=LAT_SAMPLES, memory_conns=MEM_CONNS),
               skipped_kinds=t.skip, foreign_cpu_load=LOADS, rows=data, table="\n".join(lines))
    with open(os.path.join(OUT, "results.json"), "w") as f:
        json.dump(out, f, indent=1)
    with open(os.path.join(OUT, "results.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    log("wrote %s" % rel(os.path.join(OUT, "results.json")))


def machine():
    info = dict(kernel=platform.release(), cpus=os.cpu_count())
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"model name\s*:\s*(.*)", f.read())
            info["cpu"] = m.group(1) if m else ""
    except OSError:
        pass
    return info


def has_ip_san(cert):
    """Whether the bench certificate names 127.0.0.1 (the https rows verify it for that address);
    one generated before the http rows existed does not, and is generated again."""
    try:
        out = subprocess.run(["openssl", "x509", "-in", cert, "-noout", "-text"], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True).stdout
    except OSError:
        return False
    return "IP Address:127.0.0.1" in out


NEGO_ROWS = ("nego_ntlm_write", "nego_krb_write", "nego_ntlm_handshake")


def start_negotiate(t, srv, only):
    """The NegotiateStream servers (apm negoserver): one for NTLM with a krb5.conf that knows no
    realm and looks nothing up in DNS (else Negotiate waits for DNS before it falls back to NTLM),
    and one with the loopback Kerberos realm (ffi-tests/peers/krb5-loopback.sh) and its keytab."""
    t.ntlm_conf = os.path.join(OUT, "krb5-ntlm.conf")
    with open(t.ntlm_conf, "w") as f:
        f.write("[libdefaults]\n    dns_lookup_kdc = false\n    dns_lookup_realm = false\n"
                "    dns_canonicalize_hostname = false\n    rdns = false\n")
    if "apmnet" in t.skip or t.apm_nego or (only and not only.intersection(NEGO_ROWS)):
        return
    srv.start("negoserver", prog="apm", env={"KRB5_CONFIG": t.ntlm_conf}, optional=True)
    if only and "nego_krb_write" not in only:
        return
    for pkg, path in (("krb5-kdc", "/usr/sbin/krb5kdc"), ("krb5-admin-server", "/usr/sbin/kadmin.local"),
                      ("krb5-user", "/usr/bin/kinit")):
        if not ensure_deb(pkg, path):
            t.krb_skip = "the MIT KDC is not installed (Debian %s)" % pkg
            return
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    krb_dir = os.path.join(OUT, "krb5")
    try:  # a pid file of an earlier run names no process of ours
        os.remove(os.path.join(krb_dir, "kdc.pid"))
    except OSError:
        pass
    try:
        p = subprocess.run(["sh", os.path.join(ROOT, "ffi-tests", "peers", "krb5-loopback.sh"), krb_dir, str(port)],
                           stdout=subprocess.PIPE, stderr=open(os.path.join(OUT, "krb5-setup.log"), "w"),
                           text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        t.krb_skip = "krb5-loopback.sh failed: %s" % e
        return
    line = (p.stdout.strip().splitlines() or [""])[-1]
    if not line.startswith("export "):
        t.krb_skip = line[5:] if line.startswith("SKIP") else "krb5-loopback.sh failed (target/bench/krb5-setup.log)"
        return
    t.krb_dir = krb_dir  # the KDC runs: stop_realm stops it
    env = dict(tok.partition("=")[::2] for tok in shlex.split(line[len("export "):]))
    if not srv.start("negoserver", prog="apm", label="negoserver-krb", env=env, optional=True):
        t.krb_skip = "the Kerberos NegotiateStream server did not start (target/bench/server-negoserver-krb.log)"
        return
    t.krb_env = env


def stop_realm(t):
    """Stops the loopback KDC that start_negotiate started."""
    if not t.krb_dir:
        return
    try:
        with open(os.path.join(t.krb_dir, "kdc.pid")) as f:
            os.kill(int(f.read().split()[0]), 15)
    except (OSError, ValueError, IndexError):
        pass


def main():
    only = set(sys.argv[1:])
    t = build()
    for kind, why in t.skip.items():
        log("skipping %s rows: %s" % (kind, why))
    if t.apm_tls:
        log("apmnet TLS row: %s" % t.apm_tls)
    srv = Servers()
    try:
        cert, key = os.path.join(OUT, "cert.pem"), os.path.join(OUT, "key.pem")
        if not (os.path.exists(cert) and os.path.exists(key)) or not has_ip_san(cert):
            ok, tail = run_logged([os.path.join(OUT, "servers"), "gencert", cert, key], "gencert.log")
            if not ok:
                sys.exit("cannot generate the TLS certificate: " + tail)
        srv.start("sink")
        srv.start("echo")
        srv.start("tlssink", cert, key)
        srv.start("tlshello", cert, key)
        t.cert = cert
        srv.start("http")
        srv.start("https", cert, key)
        start_negotiate(t, srv, only)
        if "apmnet" not in t.skip and not t.apm_http and (not only or "https_ntlm_get1" in only):
            srv.start("ntlmserver", cert, key, prog="apm", label="https-ntlm", env={"KRB5_CONFIG": t.ntlm_conf},
                      optional=True)
        path = make_file(FILE_MIB) if not only or "sendfile" in only else ""
        results = run_all(t, srv, workloads(t, srv, path), only)
    finally:
        srv.stop()
        stop_realm(t)
    report(results, t)
    log("done in %.0f s" % (time.time() - T_START))


if __name__ == "__main__":
    main()
