//! The committed header must be what cbindgen generates from the sources, and every exported
//! function must sit behind the panic boundary and be documented.

use std::path::Path;

#[test]
fn committed_header_is_fresh() {
    // Cargo gives integration tests the OUT_DIR where build.rs wrote the fresh header.
    let fresh = std::fs::read_to_string(concat!(env!("OUT_DIR"), "/apmnet.h")).expect("build.rs generated a header");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let committed = std::fs::read_to_string(root.join("include/apmnet.h")).expect("include/apmnet.h exists");
    assert!(
        committed == fresh,
        "include/apmnet.h is stale: refresh it with `APMNET_UPDATE_HEADER=1 cargo build` and commit it"
    );
}

/// Every `extern "C" fn` in src/ffi runs its body inside `boundary!` (so a panic never crosses
/// into C), or is one of the few that cannot fail or panic, and has a doc comment. The doc ends
/// with the status codes the function returns: a last paragraph starting with `Errors:`, or, for
/// the functions that return a value instead of a status, a last line ending in "Cannot fail.".
#[test]
fn exports_are_guarded_and_documented() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/ffi");
    let cannot_panic = [
        "apm_version",
        "apm_version_number",
        "apm_status_name",
        "apm_last_error_message",
        "apm_last_error_inner_message",
        "apm_last_error_status",
        "apm_last_error_socket_error",
        "apm_last_error_errno",
        "apm_last_error_web_status",
        "apm_last_error_http_status",
        "apm_network_stream_create",
    ];
    // They return a value (apm_last_error_status: the recorded status), never a status of their own.
    let cannot_fail = [
        "apm_version",
        "apm_version_number",
        "apm_status_name",
        "apm_last_error_status",
        "apm_last_error_socket_error",
        "apm_last_error_errno",
        "apm_last_error_web_status",
        "apm_last_error_http_status",
    ];
    let mut problems = Vec::new();
    for entry in std::fs::read_dir(&root).unwrap().flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let Some(pos) = line.find("extern \"C\" fn ") else { continue };
            if !line.trim_start().starts_with("pub") {
                continue;
            }
            let name: String = line[pos + 14..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            let mut j = i;
            while j > 0 && lines[j - 1].trim_start().starts_with("#[") {
                j -= 1;
            }
            if j == 0 || !lines[j - 1].trim_start().starts_with("///") {
                problems.push(format!("{name}: no doc comment"));
            }
            // The body starts after the signature, which rustfmt may spread over several lines.
            let open = (i..lines.len()).find(|&k| lines[k].trim_end().ends_with('{')).unwrap_or(i);
            let mut start = j;
            while start > 0 && lines[start - 1].trim_start().starts_with("///") {
                start -= 1;
            }
            let doc: Vec<&str> = lines[start..j].iter().map(|l| l.trim_start()[3..].trim()).collect();
            let errors: Vec<usize> = (0..doc.len()).filter(|&k| doc[k].starts_with("Errors:")).collect();
            let returns_status = lines[i..=open].join(" ").contains("-> apm_status");
            if cannot_fail.contains(&name.as_str()) {
                if !doc.last().is_some_and(|l| l.ends_with("Cannot fail.")) {
                    problems.push(format!("{name}: its doc comment does not end with \"Cannot fail.\""));
                }
                if !errors.is_empty() {
                    problems.push(format!("{name}: cannot fail, yet its doc comment has an `Errors:` line"));
                }
            } else if !returns_status {
                problems.push(format!("{name}: returns no apm_status: list it in `cannot_fail` and document so"));
            } else if errors.len() != 1 {
                problems
                    .push(format!("{name}: its doc comment needs exactly one `Errors:` line, has {}", errors.len()));
            } else {
                let tail = &doc[errors[0]..];
                let text = tail.join(" ");
                if tail.iter().any(|l| l.is_empty()) {
                    problems.push(format!("{name}: the `Errors:` paragraph must end the doc comment"));
                }
                if !(text.contains("APM_E_") || text.contains("as apm_") || text.starts_with("Errors: none")) {
                    problems.push(format!("{name}: `Errors:` names no status code (nor `as apm_...`, nor `none`)"));
                }
            }
            let body = lines[open + 1..].iter().take(3).copied().collect::<Vec<_>>().join("\n");
            if !body.contains("boundary!") && !cannot_panic.contains(&name.as_str()) {
                problems.push(format!("{name}: body does not start with boundary!"));
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}
