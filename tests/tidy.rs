//! Architecture invariants from docs/ARCHITECTURE.md, checked on the source text: the
//! layers and the order of the rooms inside them, the pure core's freedom from IO, who may
//! touch sled, bincode, the clock and stdout, file sizes, and module docs.
//!
//! The checks read code, not comments or string contents (see [`mask`]), so a doc may
//! name what the code may not use. Test code (`#[cfg(test)]` items and the files declared
//! by `#[cfg(test)] mod name;`) may unwrap, print and read the clock, but it is held to
//! the layering like any other code.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The layers, lowest first, each with its rooms, lowest first. A file may use its own
/// room, any lower room of its layer and any lower layer; nothing above. `cli` is the edge:
/// its files may use one another.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "core",
        &["codec", "model", "reconcile", "store", "wire", "protocol"],
    ),
    ("reporting", &["analysis", "scan", "public", "export"]),
    (
        "node",
        &[
            "clock",
            "config",
            "telemetry",
            "pki",
            "storage",
            "write",
            "links",
            "transport",
            "api",
            "public",
            "daemon",
        ],
    ),
    ("tooling", &["office", "synth", "demo", "export"]),
    ("cli", &[]),
];

/// What the pure layers may not name: runtimes, sockets, files, threads, clocks.
const IO_NAMES: &[&str] = &[
    "tokio",
    "quinn",
    "sled",
    "axum",
    "reqwest",
    "std::fs",
    "std::net",
    "std::thread",
    "Instant::now",
    "SystemTime",
    "Utc::now",
];

/// The layers that do no IO.
const PURE_LAYERS: &[&str] = &["core", "reporting"];

/// Longest source file, in lines.
const MAX_LINES: usize = 700;

// ---------------------------------------------------------------------------------------
// Reading the source

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

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

/// The path of `file` under `src/`, with `/` separators.
fn relative(file: &Path) -> String {
    let rel = file.strip_prefix(src()).unwrap();
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// The source with comments blanked out and the contents of string and char literals
/// blanked, keeping every newline and every quote, so checks see only code and line
/// numbers stay true.
fn mask(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && !ident_before(&chars, i) {
            // A raw string: r"…", r#"…"#; `r#ident` is a raw identifier, left alone.
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            for _ in i..=j {
                out.push(' ');
            }
            out.pop();
            out.push('"');
            i = j + 1;
            while i < chars.len() {
                if chars[i] == '"' && (0..hashes).all(|h| chars.get(i + 1 + h) == Some(&'#')) {
                    out.push('"');
                    for _ in 0..hashes {
                        out.push(' ');
                    }
                    i += 1 + hashes;
                    break;
                }
                out.push(blank(chars[i]));
                i += 1;
            }
        } else if c == '"' {
            out.push('"');
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < chars.len() {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
            out.push('"');
            i += 1;
        } else if c == '\'' && is_char_literal(&chars, i) {
            out.push('\'');
            i += 1;
            while i < chars.len() && chars[i] != '\'' {
                if chars[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                out.push(' ');
                i += 1;
            }
            out.push('\'');
            i += 1;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn ident_before(chars: &[char], i: usize) -> bool {
    i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_')
}

/// A quote at `i` opens a char literal (`'a'`, `'\n'`, `'{'`), not a lifetime (`'a`).
fn is_char_literal(chars: &[char], i: usize) -> bool {
    match chars.get(i + 1) {
        Some('\\') => true,
        Some(_) => chars.get(i + 2) == Some(&'\''),
        None => false,
    }
}

/// Masked code split into what ships and what only tests compile: every item after a
/// `#[cfg(test)]` (an inline module, a function, a `use`, or a `mod name;` line) goes to
/// the test part, and code after it stays library code.
fn split_test_code(masked: &str) -> (String, String, Vec<String>) {
    const MARK: &str = "#[cfg(test)]";
    let mut library = String::new();
    let mut test = String::new();
    let mut test_modules = Vec::new();
    let mut rest = masked;
    while let Some(at) = rest.find(MARK) {
        library.push_str(&rest[..at]);
        let item = &rest[at..];
        let end = item_end(item);
        let text = &item[..end];
        if let Some(name) = declared_module(&text[MARK.len()..]) {
            test_modules.push(name);
        }
        test.push_str(text);
        // Keep the line count of the library part.
        library.extend(text.chars().filter(|&c| c == '\n'));
        rest = &item[end..];
    }
    library.push_str(rest);
    (library, test, test_modules)
}

/// Where the item that starts at the beginning of `item` ends: after its `;` or after the
/// brace that closes its body, whichever comes first.
fn item_end(item: &str) -> usize {
    let mut depth = 0usize;
    for (i, c) in item.char_indices() {
        match c {
            ';' if depth == 0 => return i + 1,
            '{' => depth += 1,
            '}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
    }
    item.len()
}

/// `mod name;` (an out-of-line module) in `text`, if that is what it declares.
fn declared_module(text: &str) -> Option<String> {
    let words: Vec<&str> = text
        .split(|c: char| c.is_whitespace() || c == ';')
        .filter(|w| !w.is_empty())
        .collect();
    let at = words.iter().position(|w| *w == "mod")?;
    let name = words.get(at + 1)?;
    text.trim_end().ends_with(';').then(|| name.to_string())
}

/// One source file as the checks see it.
struct Source {
    /// Path under `src/`.
    rel: String,
    /// Lines in the file.
    lines: usize,
    /// First line, unmasked.
    first_line: String,
    /// Code that ships.
    library: String,
    /// All code, test code included.
    all: String,
}

/// Every source file, with files declared by `#[cfg(test)] mod name;` counted as test code
/// whole.
fn sources() -> Vec<Source> {
    let files = rust_files(&src());
    let mut test_files = BTreeSet::new();
    let mut parsed = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let masked = mask(&text);
        let (library, _, test_modules) = split_test_code(&masked);
        let dir = module_dir(file);
        for name in test_modules {
            test_files.insert(dir.join(format!("{name}.rs")));
            test_files.insert(dir.join(&name).join("mod.rs"));
        }
        parsed.push((file.clone(), text, masked, library));
    }
    parsed
        .into_iter()
        .map(|(file, text, masked, library)| Source {
            rel: relative(&file),
            lines: text.lines().count(),
            first_line: text.lines().next().unwrap_or("").to_string(),
            library: if test_files.contains(&file) {
                String::new()
            } else {
                library
            },
            all: masked,
        })
        .collect()
}

/// The directory holding the modules that `file` declares.
fn module_dir(file: &Path) -> PathBuf {
    let parent = file.parent().unwrap().to_path_buf();
    match file.file_name().and_then(|n| n.to_str()) {
        Some("mod.rs" | "lib.rs" | "main.rs") => parent,
        _ => parent.join(file.file_stem().unwrap()),
    }
}

// ---------------------------------------------------------------------------------------
// The checks, as functions of text so that the checker itself can be tested

/// `(layer, room)` of a file under `src/` (`room` empty for a layer's own `mod.rs` and for
/// `cli`), or `None` for the crate root.
fn room_of(rel: &str) -> Option<(String, String)> {
    let parts: Vec<&str> = rel.split('/').collect();
    let strip = |s: &str| s.trim_end_matches(".rs").to_string();
    match parts.as_slice() {
        [_root] => None,
        [layer, "mod.rs"] => Some((layer.to_string(), String::new())),
        [layer, room, ..] => Some((layer.to_string(), strip(room))),
        [] => None,
    }
}

fn layer_rank(layer: &str) -> Option<usize> {
    LAYERS.iter().position(|(l, _)| *l == layer)
}

fn room_rank(layer: &str, room: &str) -> Option<usize> {
    let (_, rooms) = LAYERS.iter().find(|(l, _)| *l == layer)?;
    rooms.iter().position(|r| *r == room)
}

/// Every `crate::layer::room` path in `code`, with the line it is on.
fn crate_paths(code: &str) -> Vec<(usize, String, String)> {
    let mut out = Vec::new();
    for (n, line) in code.lines().enumerate() {
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            let before = rest[..at].chars().last();
            rest = &rest[at + "crate::".len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
                continue;
            }
            let mut segments = rest.split("::").map(|s| {
                s.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .next()
                    .unwrap_or("")
            });
            let layer = segments.next().unwrap_or("").to_string();
            let room = segments.next().unwrap_or("").to_string();
            out.push((n + 1, layer, room));
        }
    }
    out
}

/// Why `rel` may not contain `code`'s crate paths, one sentence per offending path.
fn layering_offences(rel: &str, code: &str) -> Vec<String> {
    let Some((layer, room)) = room_of(rel) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let Some(own_layer) = layer_rank(&layer) else {
        return vec![format!("{rel}: layer `{layer}` is not in tidy's LAYERS")];
    };
    if !room.is_empty() && layer != "cli" && room_rank(&layer, &room).is_none() {
        out.push(format!(
            "{rel}: room `{layer}::{room}` is not in tidy's LAYERS"
        ));
    }
    for (line, to_layer, to_room) in crate_paths(code) {
        if to_layer.is_empty() {
            out.push(format!(
                "{rel}:{line}: `crate::{{…}}` hides which layers it uses; write one path per layer"
            ));
            continue;
        }
        let Some(target) = layer_rank(&to_layer) else {
            out.push(format!("{rel}:{line}: uses unknown layer `{to_layer}`"));
            continue;
        };
        let upward = if target != own_layer {
            target > own_layer
        } else if layer == "cli" || room.is_empty() || to_room == room {
            false
        } else {
            match (room_rank(&layer, &room), room_rank(&layer, &to_room)) {
                (Some(from), Some(to)) => to > from,
                _ => true,
            }
        };
        if upward {
            out.push(format!(
                "{rel}:{line}: `{layer}::{room}` uses `{to_layer}::{to_room}`, which sits above it"
            ));
        }
    }
    out
}

/// The names of [`IO_NAMES`] that `code` uses, as whole words.
fn io_names_in(code: &str) -> Vec<&'static str> {
    IO_NAMES
        .iter()
        .copied()
        .filter(|name| contains_word(code, name))
        .collect()
}

fn contains_word(code: &str, word: &str) -> bool {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    code.match_indices(word).any(|(at, _)| {
        let before = code[..at].chars().last();
        let after = code[at + word.len()..].chars().next();
        !before.is_some_and(is_ident) && !after.is_some_and(is_ident)
    })
}

fn is_pure(rel: &str) -> bool {
    room_of(rel).is_some_and(|(layer, _)| PURE_LAYERS.contains(&layer.as_str()))
}

fn offenders(pattern: &str, allowed: impl Fn(&str) -> bool) -> Vec<String> {
    sources()
        .into_iter()
        .filter(|s| !allowed(&s.rel) && s.library.contains(pattern))
        .map(|s| s.rel)
        .collect()
}

// ---------------------------------------------------------------------------------------
// The invariants

#[test]
fn arrows_only_point_down() {
    let offences: Vec<String> = sources()
        .iter()
        .flat_map(|s| layering_offences(&s.rel, &s.all))
        .collect();
    assert!(
        offences.is_empty(),
        "upward imports:\n{}",
        offences.join("\n")
    );
}

#[test]
fn the_pure_layers_do_no_io() {
    let offences: Vec<String> = sources()
        .iter()
        .filter(|s| is_pure(&s.rel))
        .flat_map(|s| {
            io_names_in(&s.library)
                .into_iter()
                .map(|name| format!("{} names {name}", s.rel))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        offences.is_empty(),
        "IO in a pure layer:\n{}",
        offences.join("\n")
    );
}

#[test]
fn source_files_stay_small() {
    let long: Vec<String> = sources()
        .iter()
        .filter(|s| s.lines > MAX_LINES)
        .map(|s| format!("{} has {} lines", s.rel, s.lines))
        .collect();
    assert!(long.is_empty(), "files over {MAX_LINES} lines: {long:?}");
}

#[test]
fn every_module_starts_with_a_doc_comment() {
    let missing: Vec<String> = sources()
        .into_iter()
        .filter(|s| !s.first_line.starts_with("//!"))
        .map(|s| s.rel)
        .collect();
    assert!(
        missing.is_empty(),
        "files without a leading //! doc: {missing:?}"
    );
}

#[test]
fn only_storage_touches_sled() {
    let bad = offenders("sled::", |p| p.starts_with("node/storage/"));
    assert!(bad.is_empty(), "sled used outside node::storage: {bad:?}");
}

#[test]
fn only_the_codec_calls_bincode() {
    let bad = offenders("bincode::", |p| p == "core/codec.rs");
    assert!(bad.is_empty(), "bincode used outside core::codec: {bad:?}");
}

#[test]
fn only_the_clock_reads_wall_time() {
    for pattern in ["Utc::now", "SystemTime::now", "Local::now"] {
        let bad = offenders(pattern, |p| p == "node/clock.rs");
        assert!(bad.is_empty(), "{pattern} outside node::clock: {bad:?}");
    }
}

#[test]
fn only_the_cli_prints() {
    for pattern in ["println!", "print!(", "eprintln!", "eprint!("] {
        let bad = offenders(pattern, |p| p.starts_with("cli/") || p == "main.rs");
        assert!(bad.is_empty(), "{pattern} outside cli: {bad:?}");
    }
}

#[test]
fn no_unwrap_outside_tests() {
    // Library code handles every error; `unwrap` is for tests only (see clippy.toml).
    let bad = offenders(".unwrap()", |_| false);
    assert!(bad.is_empty(), ".unwrap() in library code: {bad:?}");
}

// ---------------------------------------------------------------------------------------
// The checker, tested on planted violations

#[test]
fn the_checker_sees_an_upward_import() {
    let code = "use crate::core::model::Record;\nuse crate::node::storage::SledStore;\n";
    let offences = layering_offences("core/protocol/parent.rs", code);
    assert_eq!(offences.len(), 1, "{offences:?}");
    assert!(
        offences[0].contains("core/protocol/parent.rs:2"),
        "{offences:?}"
    );

    // Inside a layer, a lower room may not use a higher one.
    assert_eq!(
        layering_offences("node/storage/mod.rs", "use crate::node::api::App;").len(),
        1
    );
    assert!(
        layering_offences("node/api/mod.rs", "use crate::node::storage::SledStore;").is_empty()
    );
    // A grouped import is refused: it would hide its layers.
    assert_eq!(
        layering_offences("node/api/mod.rs", "use crate::{core, cli};").len(),
        1
    );
    // A path in a comment or a string is not an import.
    assert!(
        layering_offences(
            "core/codec.rs",
            &mask("// crate::cli::main\nlet s = \"crate::cli\";")
        )
        .is_empty()
    );
}

#[test]
fn the_checker_sees_io_in_the_core_after_a_test_module() {
    let text = "//! Doc.\n#[cfg(test)]\nmod tests;\n\nfn f() { let _ = std::fs::read(\"x\"); }\n";
    let (library, test, modules) = split_test_code(&mask(text));
    assert_eq!(modules, vec!["tests".to_string()]);
    assert!(!test.contains("std::fs"));
    assert_eq!(io_names_in(&library), vec!["std::fs"]);

    // An inline test module is test code; what follows it is library code again.
    let text = "#[cfg(test)]\nmod tests { fn t() { x.unwrap(); let s = '}'; } }\nfn g() { tokio::spawn(f); }\n";
    let (library, test, _) = split_test_code(&mask(text));
    assert!(test.contains(".unwrap()") && !library.contains(".unwrap()"));
    assert_eq!(io_names_in(&library), vec!["tokio"]);
    // Names that merely contain an IO word are not IO.
    assert!(io_names_in("fn sled_options() {} let tokio_like = 1;").is_empty());
}
