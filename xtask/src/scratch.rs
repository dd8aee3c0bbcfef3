//! Scratch copies of the workspace that can share its build directory.
//!
//! `verify` and `console --solution` build copies of the workspace (the
//! committed labs, solutions laid over them) reusing the real workspace's
//! compiled dependencies. That sharing has two traps:
//!
//! - Cargo identifies a path package by its name, version and path *relative
//!   to the workspace root*, so `labs/01-blocking` in a copy is the very same
//!   unit as in the real workspace: same artifacts, same fingerprint. Cargo
//!   judges freshness by the mtimes of the files the *last* build read, so
//!   after a copy built the solution, the learner's own `cargo test -p
//!   blocking` can find "nothing changed" and run the solution's tests.
//! - Binaries are copied to `<target-dir>/debug/<name>`, overwritten by
//!   whichever copy built last, and a fresh unit does not put its own back:
//!   `cargo run -p blocking` (or `cargo xtask`!) would run the copy's build.
//!
//! So a copy's path packages get a tag in their version ([`isolate`]:
//! `0.1.0` -> `0.1.0-console-solution`, in the copy only), which makes them
//! distinct units, and a copy is built with [`cargo_env`]: the real target
//! directory as cargo's *build directory* (compiled dependencies are shared)
//! and a target directory of its own (for the binaries). Only the path crates
//! compile twice.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A scratch tree's files: relative path -> (contents, executable), as
/// `verify` reads them.
pub type Files = BTreeMap<PathBuf, (Vec<u8>, bool)>;

/// Tags the version of every package of the copy (each `Cargo.toml` but the
/// workspace's own): `tag` must be letters, digits and dashes.
pub fn isolate(files: &mut Files, tag: &str) {
    for (path, (contents, _)) in files.iter_mut() {
        if path.file_name() == Some("Cargo.toml".as_ref()) && path != Path::new("Cargo.toml") {
            if let Ok(text) = std::str::from_utf8(contents) {
                *contents = isolate_manifest(text, tag).into_bytes();
            }
        }
    }
}

/// The variables for a cargo command run in a copy: `build_dir` is the real
/// workspace's target directory, `target_dir` the copy's own.
pub fn cargo_env(build_dir: &Path, target_dir: &Path) -> [(&'static str, PathBuf); 2] {
    [
        ("CARGO_BUILD_BUILD_DIR", build_dir.to_path_buf()),
        ("CARGO_TARGET_DIR", target_dir.to_path_buf()),
    ]
}

/// Appends `tag` to the `[package]` version.
pub fn isolate_manifest(text: &str, tag: &str) -> String {
    let mut in_package = false;
    let mut out = String::with_capacity(text.len() + 32);
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            in_package = trimmed == "[package]";
        }
        match in_package.then(|| tag_version(line, tag)).flatten() {
            Some(tagged) => out.push_str(&tagged),
            None => out.push_str(line),
        }
    }
    out
}

/// `version = "0.1.0"` -> `version = "0.1.0-tag"` (`1.0.0-rc1.tag` if the
/// version already has a pre-release part, to stay a valid version).
fn tag_version(line: &str, tag: &str) -> Option<String> {
    let (key, rest) = line.split_once('=')?;
    if key.trim() != "version" {
        return None;
    }
    let value = rest.trim().strip_prefix('"')?.strip_suffix('"')?;
    let separator = if value.contains('-') { '.' } else { '-' };
    let newline = if line.ends_with('\n') { "\n" } else { "" };
    Some(format!("{} = \"{value}{separator}{tag}\"{newline}", key.trim_end()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = "[package]\nname = \"blocking\"\nversion = \"0.1.0\"\n\
                            edition.workspace = true\n\n[lib]\ndoctest = false\n\n\
                            [[bin]]\nname = \"blocking\"\npath = \"src/main.rs\"\n\n\
                            [dependencies]\nversion = \"not a real key\"\n";

    #[test]
    fn the_version_gets_the_tag_and_nothing_else_changes() {
        let isolated = isolate_manifest(MANIFEST, "console-solution");
        assert_eq!(
            isolated,
            MANIFEST.replacen(
                "version = \"0.1.0\"",
                "version = \"0.1.0-console-solution\"",
                1
            )
        );
    }

    #[test]
    fn a_pre_release_version_stays_valid() {
        let isolated = isolate_manifest("[package]\nversion = \"1.0.0-rc1\"\n", "x");
        assert_eq!(isolated, "[package]\nversion = \"1.0.0-rc1.x\"\n");
    }

    #[test]
    fn every_package_is_tagged_but_not_the_workspace() {
        let mut files = Files::new();
        for path in [
            "labs/00-hello/Cargo.toml",
            "labs/support/Cargo.toml",
            "xtask/Cargo.toml",
            "Cargo.toml",
        ] {
            let manifest = b"[package]\nversion = \"0.1.0\"\n".to_vec();
            files.insert(path.into(), (manifest, false));
        }
        isolate(&mut files, "t");
        let manifest = |path: &str| String::from_utf8(files[Path::new(path)].0.clone()).unwrap();
        assert!(manifest("labs/00-hello/Cargo.toml").contains("0.1.0-t"));
        assert!(manifest("labs/support/Cargo.toml").contains("0.1.0-t"));
        assert!(manifest("xtask/Cargo.toml").contains("0.1.0-t"));
        assert!(!manifest("Cargo.toml").contains("-t"));
    }
}
