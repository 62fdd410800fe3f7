//! Generates include/apmnet.h with cbindgen into OUT_DIR, sets the soname, and writes the header
//! into the source tree only when asked (APMNET_UPDATE_HEADER=1); tests/header.rs fails when the
//! committed header is stale.

use std::path::PathBuf;

fn main() {
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("apmnet.h");
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap();
    let minor = std::env::var("CARGO_PKG_VERSION_MINOR").unwrap();
    let patch = std::env::var("CARGO_PKG_VERSION_PATCH").unwrap();
    let mut config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml");
    config.after_includes = Some(format!(
        "\n#define APM_VERSION_MAJOR {major}\n#define APM_VERSION_MINOR {minor}\n#define APM_VERSION_PATCH {patch}\n\
         #define APM_VERSION_NUMBER ((APM_VERSION_MAJOR << 16) | (APM_VERSION_MINOR << 8) | APM_VERSION_PATCH)\n"
    ));
    match cbindgen::Builder::new().with_crate(&dir).with_config(config).generate() {
        Ok(bindings) => {
            bindings.write_to_file(&out);
            if std::env::var_os("APMNET_UPDATE_HEADER").is_some() {
                bindings.write_to_file(dir.join("include/apmnet.h"));
            }
        }
        // A syntax error is reported by rustc itself with better context.
        Err(e) => println!("cargo:warning=cbindgen: {e}"),
    }
    // Versioned soname: libapmnet.so.<major> (0.x: every minor may break the ABI, see README).
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libapmnet.so.{major}");
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-env-changed=APMNET_UPDATE_HEADER");
}
