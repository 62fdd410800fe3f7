//! The C harness: builds `ffi-tests/*.c` against `libapmnet.so` and runs
//! every C test in its own process.
//!
//! * The C compiler comes from the `cc` crate's detection (so `CC` and
//!   `CFLAGS` work as usual); each area file is compiled together with
//!   `ffi-tests/harness.c` with `-std=c11 -Wall -Wextra -Werror -pedantic`.
//! * `include/apmnet.h` is also compiled once as C99 and once as C++11.
//! * Binaries and logs go to `<target>/ffi-tests/`; the shared library is
//!   found next to this test executable (`<target>/<profile>/`) and linked
//!   with an rpath.
//! * Every C test runs as `binary NAME` in its own process group with a
//!   timeout; at most `APMNET_TEST_JOBS` (default 2) run at once.
//!
//! Environment:
//! * `APMNET_VALGRIND=1`: run each test under valgrind (memcheck, leaks of
//!   kind definite/indirect are errors); the timeout is raised and slow tests
//!   are skipped unless `APMNET_SLOW=1`, which also keeps NegotiateStream's 16 MiB peer message
//!   (lowered to 1 MiB otherwise, `APMNET_NNS_LARGEST`).
//! * `APMNET_ASAN=1`: build the C programs with AddressSanitizer, UBSan and LeakSanitizer.
//! * `APMNET_SKIP_SLOW=1`: skip the slow tests (64 MiB / 4 GiB transfers).
//! * `APMNET_TEST_TIMEOUT`: seconds per C test (default 60, 900 under valgrind).
//! * `APMNET_FFI_FILTER`: run only C tests whose name contains this text.
//! * `APMNET_TEST_JOBS`: how many C test processes run at once (default 2).

use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The areas with their own `#[test]`; any other `ffi-tests/*.c` file runs
/// in `ffi_other_areas`.
const KNOWN_AREAS: &[&str] = &["errors", "async_result", "socket", "send_file", "stream", "ssl", "negotiate"];

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `<target>/<profile>`: the directory of the library this test belongs to.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let mut dir = exe.parent().expect("test exe has a parent").to_path_buf();
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.pop();
    }
    dir
}

/// `<target>/ffi-tests`.
fn out_dir() -> PathBuf {
    let dir = profile_dir().parent().expect("profile dir has a parent").join("ffi-tests");
    fs::create_dir_all(dir.join("logs")).expect("create target/ffi-tests");
    dir
}

fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// `APMNET_ASAN=1`: the C programs are built with AddressSanitizer and UBSan. The library itself
/// is not instrumented, but ASan's allocator serves its allocations too, so invalid or double frees
/// and leaks (LeakSanitizer) are caught on both sides of the boundary.
fn asan() -> bool {
    env_flag("APMNET_ASAN")
}

fn valgrind() -> bool {
    env_flag("APMNET_VALGRIND")
}

fn host_triple() -> String {
    if let Ok(t) = std::env::var("TARGET") {
        return t;
    }
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    if let Ok(out) = Command::new(rustc).arg("-vV").output() {
        let text = String::from_utf8_lossy(&out.stdout);
        if let Some(host) = text.lines().find_map(|l| l.strip_prefix("host: ")) {
            return host.trim().to_string();
        }
    }
    format!("{}-unknown-linux-gnu", std::env::consts::ARCH)
}

fn compiler(cpp: bool) -> cc::Tool {
    let triple = host_triple();
    let scratch = out_dir().join("cc");
    fs::create_dir_all(&scratch).expect("create cc scratch dir");
    cc::Build::new()
        .cpp(cpp)
        .target(&triple)
        .host(&triple)
        .opt_level(1)
        .debug(true)
        .cargo_metadata(false)
        .warnings(false)
        .out_dir(scratch)
        .get_compiler()
}

fn c_compiler() -> &'static cc::Tool {
    static TOOL: OnceLock<cc::Tool> = OnceLock::new();
    TOOL.get_or_init(|| compiler(false))
}

fn run_compiler(mut cmd: Command, what: &str) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{what}: cannot run the compiler: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({}):\n{:?}\n{}{}",
            out.status,
            cmd,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// The cdylib the C programs link against. `cargo test` builds the library only as an rlib for
/// the test binaries, so build the cdylib here (same profile; a no-op when it is fresh).
fn shared_library() -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let mut cmd = Command::new(env!("CARGO"));
        // With fault injection: the harness proves that a panic inside an operation completes it
        // (APMNET_FAULT, see src/fault.rs); without APMNET_FAULT the library behaves as released.
        cmd.args(["build", "--lib", "--quiet", "--features", "fault-injection"])
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        if profile_dir().file_name().and_then(|n| n.to_str()) == Some("release") {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("cargo runs");
        assert!(status.success(), "cargo build --lib failed");
    });
    let lib = profile_dir().join("libapmnet.so");
    assert!(lib.exists(), "{} does not exist after cargo build --lib", lib.display());
    lib
}

/// The library's SONAME (the name the loader looks for), read with readelf;
/// `libapmnet.so.<major>` when readelf is not available.
fn soname(lib: &Path) -> String {
    let fallback = format!("libapmnet.so.{}", env!("CARGO_PKG_VERSION_MAJOR"));
    let Ok(out) = Command::new("readelf").arg("-d").arg(lib).output() else {
        return fallback;
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.contains("(SONAME)"))
        .and_then(|l| Some(l[l.find('[')? + 1..l.rfind(']')?].to_string()))
        .unwrap_or(fallback)
}

/// A directory holding `libapmnet.so` and its SONAME as links to the
/// library cargo built (cargo writes only the unversioned name), for -L and
/// the rpath.
fn link_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let lib = shared_library();
        let profile = profile_dir();
        let name = profile.file_name().and_then(|n| n.to_str()).unwrap_or("lib");
        let dir = out_dir().join(format!("lib-{name}"));
        fs::create_dir_all(&dir).expect("create the link directory");
        let mut names = vec!["libapmnet.so".to_string(), soname(&lib)];
        names.dedup();
        for n in names {
            let link = dir.join(n);
            let _ = fs::remove_file(&link);
            std::os::unix::fs::symlink(&lib, &link).unwrap_or_else(|e| panic!("symlink {}: {e}", link.display()));
        }
        dir
    })
}

/// Compiles `sources` into `exe` with `-std=c11 -Wall -Wextra -Werror -pedantic -pthread`, the
/// header's directory and `include_dirs`, linked against libapmnet.so (with the sanitizers when
/// `APMNET_ASAN` is set), then `libs`.
fn compile_against_apmnet(
    sources: &[PathBuf],
    include_dirs: &[PathBuf],
    libs: &[&str],
    exe: &Path,
) -> Result<(), String> {
    let libdir = link_dir();
    let mut cmd = c_compiler().to_command();
    if asan() {
        cmd.args(["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-sanitize-recover=undefined"]);
    }
    cmd.args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic", "-pthread"])
        .arg(format!("-I{}", manifest_dir().join("include").display()));
    for dir in include_dirs {
        cmd.arg(format!("-I{}", dir.display()));
    }
    cmd.args(sources)
        .arg("-o")
        .arg(exe)
        .arg(format!("-L{}", libdir.display()))
        .arg(format!("-Wl,-rpath,{}", libdir.display()))
        .arg("-lapmnet")
        .args(libs);
    let names: Vec<String> =
        sources.iter().map(|s| s.strip_prefix(manifest_dir()).unwrap_or(s).display().to_string()).collect();
    run_compiler(cmd, &format!("compiling {}", names.join(" + ")))
}

/// Compile `ffi-tests/<area>.c` + `harness.c` into `<target>/ffi-tests/<area>`.
fn build_area(area: &str) -> Result<PathBuf, String> {
    let dir = manifest_dir().join("ffi-tests");
    let exe = out_dir().join(if asan() { format!("{area}-asan") } else { area.to_string() });
    compile_against_apmnet(&[dir.join(format!("{area}.c")), dir.join("harness.c")], std::slice::from_ref(&dir), &[], &exe)?;
    Ok(exe)
}

/// All C area files present in ffi-tests/ (without the harness).
fn all_areas() -> Vec<String> {
    let mut areas: Vec<String> = fs::read_dir(manifest_dir().join("ffi-tests"))
        .expect("read ffi-tests/")
        .filter_map(|e| {
            let p = e.ok()?.path();
            if p.extension()? != "c" {
                return None;
            }
            let stem = p.file_stem()?.to_str()?.to_string();
            (stem != "harness").then_some(stem)
        })
        .collect();
    areas.sort();
    areas
}

// ---------------------------------------------------------------------------
// Running

/// Limits how many C test processes run at once across all #[test]s.
struct Slots {
    free: Mutex<usize>,
    cv: Condvar,
}

fn slots() -> &'static Slots {
    static SLOTS: OnceLock<Slots> = OnceLock::new();
    SLOTS.get_or_init(|| {
        let n =
            std::env::var("APMNET_TEST_JOBS").ok().and_then(|v| v.parse().ok()).filter(|&n: &usize| n > 0).unwrap_or(2);
        Slots { free: Mutex::new(n), cv: Condvar::new() }
    })
}

struct SlotGuard;

impl SlotGuard {
    fn acquire() -> SlotGuard {
        let s = slots();
        let mut free = s.free.lock().unwrap();
        while *free == 0 {
            free = s.cv.wait(free).unwrap();
        }
        *free -= 1;
        SlotGuard
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        let s = slots();
        *s.free.lock().unwrap() += 1;
        s.cv.notify_one();
    }
}

fn report(line: &str) {
    // Straight to the process's stderr, past libtest's capture, so that each
    // C test shows up as it finishes.
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{line}");
}

fn timeout_secs() -> u64 {
    std::env::var("APMNET_TEST_TIMEOUT").ok().and_then(|v| v.parse().ok()).unwrap_or(if valgrind() { 900 } else { 60 })
}

fn list_tests(exe: &Path) -> Vec<(String, bool)> {
    let out = Command::new(exe).arg("--list").output().unwrap_or_else(|e| panic!("{} --list: {e}", exe.display()));
    assert!(out.status.success(), "{} --list failed: {}", exe.display(), out.status);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut parts = l.split_whitespace();
            let name = parts.next().unwrap().to_string();
            let slow = parts.any(|t| t == "slow");
            (name, slow)
        })
        .collect()
}

enum Outcome {
    Passed,
    Skipped,
    Failed(String),
}

/// Has `pid` exited? Checked without reaping it, so that its process group
/// can still be cleaned up safely.
fn exited_without_reaping(pid: i32) -> bool {
    // SAFETY: waitid with WNOWAIT only inspects our own child.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let rc = libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, libc::WEXITED | libc::WNOHANG | libc::WNOWAIT);
        rc == 0 && info.si_pid() != 0
    }
}

fn kill_group(pid: i32) {
    // SAFETY: the group was created for this child (process_group(0)).
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
    }
}

/// The variables HttpWebRequest's environment proxy reads (src/http/proxy.rs).
const PROXY_VARIABLES: [&str; 9] =
    ["http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY", "GATEWAY_INTERFACE"];

fn run_one(exe: &Path, area: &str, name: &str) -> (Outcome, Duration, PathBuf) {
    let log_path = out_dir().join("logs").join(format!("{area}.{name}.log"));
    let log = fs::File::create(&log_path).expect("create log file");
    let timeout = timeout_secs();
    let mut cmd = if valgrind() {
        let mut c = Command::new("valgrind");
        c.args([
            "--error-exitcode=99",
            "--leak-check=full",
            "--errors-for-leak-kinds=definite,indirect",
            "--show-leak-kinds=definite,indirect",
            "--num-callers=40",
        ])
        .arg(format!("--suppressions={}", manifest_dir().join("ffi-tests").join("valgrind.supp").display()))
        .arg(exe);
        c
    } else {
        Command::new(exe)
    };
    cmd.arg(name)
        .current_dir(manifest_dir())
        .env("APMNET_FFI_DIR", manifest_dir().join("ffi-tests"))
        .env("APMNET_TEST_TIMEOUT", timeout.to_string())
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("dup log"))
        .stderr(log)
        .process_group(0);
    // HttpWebRequest's default proxy is the environment's, loopback included (as .NET 8's): the
    // tests talk to their peers directly unless a test sets these itself.
    for proxy_variable in PROXY_VARIABLES {
        cmd.env_remove(proxy_variable);
    }
    if asan() {
        cmd.env("ASAN_OPTIONS", "detect_leaks=1:exitcode=98").env("UBSAN_OPTIONS", "print_stacktrace=1");
    }
    if valgrind() {
        // Waits inside tests get the same slack as the whole test.
        cmd.env("APMNET_WAIT_MS", (timeout * 1000 / 2).to_string());
        if !env_flag("APMNET_SLOW") {
            cmd.env("APMNET_SKIP_SLOW", "1");
            // NegotiateStream's largest message with a real peer (ffi-tests/negotiate.c, its peers
            // read it too): 1 MiB, 17 frames, takes every path that 16 MiB does, and the crypto of
            // 16 MiB each way is most of what such a test costs under valgrind.
            if std::env::var_os("APMNET_NNS_LARGEST").is_none() {
                cmd.env("APMNET_NNS_LARGEST", "1048576");
            }
        }
    }

    let _slot = SlotGuard::acquire();
    let start = Instant::now();
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {}: {e}", exe.display()));
    let pid = child.id() as i32;
    // The in-process alarm fires first; this is the backstop.
    let deadline = start + Duration::from_secs(timeout + 30);
    let mut timed_out = false;
    loop {
        if exited_without_reaping(pid) {
            break;
        }
        if Instant::now() > deadline {
            timed_out = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // Peers the test left behind share its process group.
    kill_group(pid);
    let status = child.wait().expect("wait for the C test");
    let elapsed = start.elapsed();

    use std::os::unix::process::ExitStatusExt;
    let outcome = if timed_out {
        Outcome::Failed(format!("no result after {} s (killed)", timeout + 30))
    } else if status.code() == Some(0) {
        Outcome::Passed
    } else if status.code() == Some(77) {
        Outcome::Skipped
    } else if status.code() == Some(99) && valgrind() {
        Outcome::Failed("valgrind reported errors".to_string())
    } else if status.code() == Some(98) && asan() {
        Outcome::Failed("AddressSanitizer reported errors or leaks".to_string())
    } else if let Some(sig) = status.signal() {
        let what = match sig {
            libc::SIGPIPE => "SIGPIPE",
            libc::SIGSEGV => "SIGSEGV",
            libc::SIGABRT => "SIGABRT",
            libc::SIGBUS => "SIGBUS",
            libc::SIGALRM => "SIGALRM: timed out",
            libc::SIGKILL => "SIGKILL",
            _ => "a signal",
        };
        Outcome::Failed(format!("killed by {what} ({sig})"))
    } else {
        Outcome::Failed(format!("exit status {}", status.code().unwrap_or(-1)))
    };
    (outcome, elapsed, log_path)
}

fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    let from = all.len().saturating_sub(lines);
    all[from..].join("\n")
}

fn run_area(area: &str) {
    let exe = match build_area(area) {
        Ok(exe) => exe,
        Err(e) => panic!("{e}"),
    };
    let filter = std::env::var("APMNET_FFI_FILTER").unwrap_or_default();
    let skip_slow = env_flag("APMNET_SKIP_SLOW") || (valgrind() && !env_flag("APMNET_SLOW"));
    let tests = list_tests(&exe);
    assert!(!tests.is_empty(), "{} lists no tests", exe.display());

    let mut failures = Vec::new();
    let (mut passed, mut skipped) = (0, 0);
    for (name, slow) in &tests {
        if !filter.is_empty() && !name.contains(&filter) {
            continue;
        }
        if *slow && skip_slow {
            report(&format!("c test {area}::{name} ... skipped (slow)"));
            skipped += 1;
            continue;
        }
        let (outcome, elapsed, log) = run_one(&exe, area, name);
        let secs = elapsed.as_secs_f64();
        match outcome {
            Outcome::Passed => {
                passed += 1;
                report(&format!("c test {area}::{name} ... ok ({secs:.2} s)"));
            }
            Outcome::Skipped => {
                skipped += 1;
                report(&format!("c test {area}::{name} ... skipped ({})", tail(&log, 1).trim()));
            }
            Outcome::Failed(why) => {
                report(&format!(
                    "c test {area}::{name} ... FAILED: {why} ({secs:.2} s)\n--- {} ---\n{}\n---",
                    log.display(),
                    tail(&log, 60)
                ));
                failures.push(format!("{area}::{name}: {why}"));
            }
        }
    }
    report(&format!("c area {area}: {passed} passed, {} failed, {skipped} skipped", failures.len()));
    assert!(
        failures.is_empty(),
        "{} C test(s) failed in ffi-tests/{area}.c:\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
}

#[test]
fn header_compiles_as_c99_and_cpp11() {
    let root = manifest_dir();
    let header = root.join("include").join("apmnet.h");
    assert!(header.exists(), "{} is missing", header.display());
    let dir = out_dir();

    let c_src = dir.join("header_check.c");
    fs::write(&c_src, "#include \"apmnet.h\"\nint main(void) { return apm_version() == 0; }\n").unwrap();
    let mut cmd = c_compiler().to_command();
    cmd.args(["-x", "c", "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-fsyntax-only"])
        .arg(format!("-I{}", root.join("include").display()))
        .arg(&c_src);
    if let Err(e) = run_compiler(cmd, "include/apmnet.h as C99") {
        panic!("{e}");
    }

    let cpp_src = dir.join("header_check.cpp");
    fs::write(&cpp_src, "#include \"apmnet.h\"\nint main() { return apm_version() == nullptr; }\n").unwrap();
    let mut cmd = compiler(true).to_command();
    cmd.args(["-x", "c++", "-std=c++11", "-Wall", "-Wextra", "-Werror", "-fsyntax-only"])
        .arg(format!("-I{}", root.join("include").display()))
        .arg(&cpp_src);
    if let Err(e) = run_compiler(cmd, "include/apmnet.h as C++11") {
        panic!("{e}");
    }
}

#[test]
fn ffi_errors() {
    run_area("errors");
}

#[test]
fn ffi_async_result() {
    run_area("async_result");
}

#[test]
fn ffi_socket() {
    run_area("socket");
}

#[test]
fn ffi_send_file() {
    run_area("send_file");
}

#[test]
fn ffi_stream() {
    run_area("stream");
}

#[test]
fn ffi_ssl() {
    run_area("ssl");
}

/// NegotiateStream, with the interop peers of ffi-tests/peers/setup.sh (its .NET 8, pyspnego and
/// Kerberos tests skip, saying why, without them): its own test, so that
/// `cargo test --test c_harness ffi_negotiate` runs it alone, under valgrind or ASan too.
#[test]
fn ffi_negotiate() {
    run_area("negotiate");
}

/// Area files added later (one per C class) run here until they get their own #[test].
#[test]
fn ffi_other_areas() {
    let known: HashSet<&str> = KNOWN_AREAS.iter().copied().collect();
    for area in all_areas() {
        if !known.contains(area.as_str()) {
            run_area(&area);
        }
    }
}

/// `make soak` in short: soak/soak.c (the C API only) with 500 connections and 3 s of steady state
/// (SOAK_CONNS, SOAK_SECONDS and SOAK_TLS override them) against the echo server and TLS sink of
/// benches/c/servers.c: exactly-once, data, RSS and descriptors checked (see soak/soak.c). Skipped
/// under valgrind; under APMNET_ASAN built with the sanitizers, leaks checked instead of RSS.
#[test]
fn soak_short() {
    if valgrind() {
        report("c test soak ... skipped (not under valgrind)");
        return;
    }
    let root = manifest_dir();
    let servers = out_dir().join("soak-servers");
    let mut cmd = c_compiler().to_command();
    cmd.args(["-O1", "-pthread"])
        .arg(root.join("benches/c/servers.c"))
        .arg("-o")
        .arg(&servers)
        .args(["-lssl", "-lcrypto"]);
    if let Err(e) = run_compiler(cmd, "compiling benches/c/servers.c") {
        panic!("{e}");
    }
    let soak = out_dir().join(if asan() { "soak-asan" } else { "soak" });
    if let Err(e) = compile_against_apmnet(&[root.join("soak/soak.c")], &[root.join("benches/c")], &[], &soak) {
        panic!("{e}");
    }
    let mut cmd = Command::new(&soak);
    cmd.arg(&servers).stdin(Stdio::null());
    for (name, short) in [("SOAK_CONNS", "500"), ("SOAK_SECONDS", "3")] {
        if std::env::var_os(name).is_none() {
            cmd.env(name, short);
        }
    }
    if asan() {
        // ASan's quarantine keeps freed memory resident: LeakSanitizer stands in for the RSS check.
        cmd.env("ASAN_OPTIONS", "detect_leaks=1:exitcode=98")
            .env("UBSAN_OPTIONS", "print_stacktrace=1")
            .env("SOAK_RSS_SLACK_MB", "100000");
    }
    let _slot = SlotGuard::acquire();
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {}: {e}", soak.display()));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    report(&format!("c test soak ... {} \n{}", if out.status.success() { "ok" } else { "FAILED" }, text.trim_end()));
    assert!(out.status.success(), "soak/soak.c failed ({}):\n{text}", out.status);
}
