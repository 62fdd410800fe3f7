//! The fuzz targets' seed corpus as a plain test (stable toolchain): every file of
//! `fuzz/corpus/<target>/` through the same body the libFuzzer binary runs (`fuzz/targets/`), and
//! every input in `fuzz/regressions/<target>/` (crashes found by fuzzing, kept once fixed).
//! `make fuzz` runs the targets coverage-guided (nightly, cargo fuzz).

#[path = "../fuzz/targets/mod.rs"]
mod targets;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = match fs::read_dir(dir) {
        Ok(entries) => entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    files
}

/// Runs `target` over its corpus and regressions; returns how many seeds there were.
fn run_target(target: &str) -> usize {
    // One body at a time: the custom-stream targets share the library's token table, and a
    // random token of one must not land on a pending operation of another.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let (_, body) = targets::TARGETS.iter().find(|(n, _)| *n == target).expect("a target of that name");
    let seeds = inputs(&fuzz_dir().join("corpus").join(target));
    assert!(!seeds.is_empty(), "fuzz/corpus/{target}/ has no seeds");
    let mut all = seeds.clone();
    all.extend(inputs(&fuzz_dir().join("regressions").join(target)));
    for path in &all {
        let data = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
        let outcome = std::panic::catch_unwind(|| body(&data));
        if let Err(e) = outcome {
            let why = e.downcast_ref::<String>().cloned().or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()));
            panic!("{target} fails on {}: {}", path.display(), why.unwrap_or_default());
        }
    }
    seeds.len()
}

#[test]
fn alpn() {
    run_target("alpn");
}

#[test]
fn certificate() {
    run_target("certificate");
}

#[test]
fn custom_stream() {
    run_target("custom_stream");
}

#[test]
fn http_chunked() {
    run_target("http_chunked");
}

#[test]
fn http_response() {
    run_target("http_response");
}

#[test]
fn nns() {
    run_target("nns");
}

#[test]
fn ntlm() {
    run_target("ntlm");
}

#[test]
fn spnego() {
    run_target("spnego");
}

#[test]
fn tls_framer() {
    run_target("tls_framer");
}

#[test]
fn tls_peer() {
    run_target("tls_peer");
}

/// Every target has its test above, its libFuzzer binary in fuzz/Cargo.toml and its corpus, and
/// every corpus directory belongs to a target.
#[test]
fn targets_binaries_and_corpora_agree() {
    let manifest = fs::read_to_string(fuzz_dir().join("Cargo.toml")).expect("fuzz/Cargo.toml");
    let this = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_corpus.rs")).unwrap();
    for (name, _) in targets::TARGETS {
        assert!(manifest.contains(&format!("name = \"{name}\"")), "fuzz/Cargo.toml has no [[bin]] {name}");
        assert!(fuzz_dir().join("fuzz_targets").join(format!("{name}.rs")).exists(), "no fuzz/fuzz_targets/{name}.rs");
        assert!(this.contains(&format!("run_target(\"{name}\")")), "tests/fuzz_corpus.rs does not run {name}");
    }
    for dir in inputs(&fuzz_dir().join("corpus"))
        .into_iter()
        .chain(fs::read_dir(fuzz_dir().join("corpus")).unwrap().filter_map(|e| e.ok().map(|e| e.path())))
    {
        if dir.is_dir() {
            let name = dir.file_name().unwrap().to_str().unwrap().to_string();
            assert!(targets::TARGETS.iter().any(|(n, _)| *n == name), "fuzz/corpus/{name} belongs to no target");
        }
    }
}
