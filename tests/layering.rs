//! The core knows nothing of C: only `src/ffi/` may name the C surface (its types and functions,
//! `apm_*`), the handle layer or C callbacks. Everything else is a plain Rust library that the
//! ffi skin drives through traits (`Notify`, `Stream`, `CustomOps`). This test keeps it so.
//!
//! Comments may mention the C names (a doc comment saying which export a rule serves), and so
//! may string literals; code may not. Calls into OpenSSL's C API (tls/sys.rs, its callbacks) are
//! the one `extern "C"` outside ffi/, and they are not the C surface.

use std::fs;
use std::path::{Path, PathBuf};

/// Source text with comments and string/char literals blanked out.
fn code_only(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
            i += 2;
            while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                i += 1;
            }
            i += 2;
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// What the core must not name, and why.
const FORBIDDEN: &[(&str, &str)] = &[
    ("crate::ffi", "the C surface"),
    ("super::ffi", "the C surface"),
    ("apm_", "a C type or export"),
    ("Handle(", "a C handle"),
    ("handles::", "the handle table of the C surface"),
    ("c_void_handle", "a C handle"),
];

#[test]
fn only_ffi_names_the_c_surface() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut offences = Vec::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap().to_string_lossy().replace('\\', "/");
        if rel.starts_with("ffi/") {
            continue;
        }
        let text = fs::read_to_string(&file).expect("read source");
        for (n, line) in code_only(&text).lines().enumerate() {
            for (pattern, what) in FORBIDDEN {
                // A name that merely ends in `apm_` is not one of ours.
                let hit = line.match_indices(pattern).any(|(at, _)| {
                    !(pattern == &"apm_" && line[..at].chars().last().is_some_and(|c| c.is_alphanumeric() || c == '_'))
                });
                if hit {
                    offences.push(format!("src/{rel}:{}: names {what} (`{pattern}`): {}", n + 1, line.trim()));
                }
            }
        }
    }
    assert!(offences.is_empty(), "the core names the C surface:\n{}", offences.join("\n"));
}

#[test]
fn the_scan_sees_code_and_not_comments_or_strings() {
    let text = "let a = 1; // apm_socket\nlet s = \"apm_stream\";\nuse crate::ffi::x;";
    let code = code_only(text);
    assert!(!code.contains("apm_socket") && !code.contains("apm_stream"));
    assert!(code.contains("crate::ffi"));
}
