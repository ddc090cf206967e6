//! Architecture invariants from docs/ARCHITECTURE.md, checked on the source text.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out.sort();
    out
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Source text without comments, so docs may name what code may not use.
fn code_of(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Library code only: unit-test modules (`#[cfg(test)]` onwards, `tests.rs`) may print,
/// unwrap and read the clock.
fn library_code_of(path: &Path) -> String {
    if path.file_name().is_some_and(|n| n == "tests.rs") {
        return String::new();
    }
    let text = code_of(path);
    text.split("#[cfg(test)]").next().unwrap_or("").to_string()
}

fn offenders(pattern: &str, allowed: impl Fn(&Path) -> bool) -> Vec<String> {
    rust_files(&src())
        .into_iter()
        .filter(|p| !allowed(p) && library_code_of(p).contains(pattern))
        .map(|p| p.strip_prefix(src()).unwrap().display().to_string())
        .collect()
}

fn under(p: &Path, module: &str) -> bool {
    p.strip_prefix(src()).unwrap().starts_with(module)
}

#[test]
fn every_module_starts_with_a_doc_comment() {
    let missing: Vec<_> = rust_files(&src())
        .into_iter()
        .filter(|p| !std::fs::read_to_string(p).unwrap().starts_with("//!"))
        .collect();
    assert!(
        missing.is_empty(),
        "files without a leading //! doc: {missing:?}"
    );
}

#[test]
fn the_model_and_pure_cores_do_no_io() {
    for pattern in [
        "tokio",
        "quinn",
        "sled",
        "axum",
        "std::fs",
        "std::net",
        "reqwest",
        "Instant::now",
        "SystemTime",
        "Utc::now",
    ] {
        let bad = offenders(pattern, |p| {
            !(under(p, "model")
                || under(p, "protocol")
                || under(p, "recon.rs")
                || under(p, "analysis"))
        });
        assert!(bad.is_empty(), "{pattern} used in a pure module: {bad:?}");
    }
}

#[test]
fn only_storage_touches_sled() {
    let bad = offenders("sled::", |p| under(p, "storage"));
    assert!(bad.is_empty(), "sled used outside storage: {bad:?}");
}

#[test]
fn only_the_codec_calls_bincode() {
    let bad = offenders("bincode::", |p| under(p, "wire"));
    assert!(bad.is_empty(), "bincode used outside wire: {bad:?}");
}

#[test]
fn only_the_clock_reads_wall_time() {
    for pattern in ["Utc::now", "SystemTime::now", "Local::now"] {
        let bad = offenders(pattern, |p| under(p, "clock.rs"));
        assert!(bad.is_empty(), "{pattern} outside clock.rs: {bad:?}");
    }
}

#[test]
fn only_the_cli_prints() {
    for pattern in ["println!", "print!(", "eprintln!"] {
        let bad = offenders(pattern, |p| under(p, "cli") || under(p, "main.rs"));
        assert!(bad.is_empty(), "{pattern} outside cli: {bad:?}");
    }
}

#[test]
fn no_unwrap_outside_tests() {
    // Library code handles every error; `unwrap` is for tests only (see clippy.toml).
    let bad: Vec<_> = rust_files(&src())
        .into_iter()
        .filter(|p| library_code_of(p).contains(".unwrap()"))
        .collect();
    assert!(bad.is_empty(), ".unwrap() in library code: {bad:?}");
}
