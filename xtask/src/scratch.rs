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
//!
//! A third trap: cargo reads the `.cargo/config.toml` of every parent
//! directory too, and *concatenates* arrays. A copy under `target/` would see
//! the workspace's config twice (its own and its parent's), build with
//! `--cfg tokio_unstable --cfg tokio_unstable`, a different set of flags, and
//! compile every dependency again. So [`isolate`] leaves the config out of a
//! copy that inherits it anyway.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// A scratch tree's files: relative path -> (contents, executable), as
/// `verify` reads them.
pub type Files = BTreeMap<PathBuf, (Vec<u8>, bool)>;

/// Tags the version of every package of the copy (each `Cargo.toml` but the
/// workspace's own): `tag` must be letters, digits and dashes. Leaves out the
/// copy's `.cargo/config.toml` if the copy, written to `tree`, inherits the
/// very same file from a parent directory.
pub fn isolate(files: &mut Files, tag: &str, tree: &Path) {
    let config = Path::new(".cargo/config.toml");
    if files
        .get(config)
        .is_some_and(|(contents, _)| inherits_config(tree, contents))
    {
        files.remove(config);
    }
    for (path, (contents, _)) in files.iter_mut() {
        let is_package_manifest =
            path.file_name() == Some("Cargo.toml".as_ref()) && path != Path::new("Cargo.toml");
        if is_package_manifest && let Ok(text) = std::str::from_utf8(contents) {
            *contents = isolate_manifest(text, tag).into_bytes();
        }
    }
}

/// Whether cargo, run in `dir`, already reads a `.cargo/config.toml` equal to
/// `config` from one of the parent directories.
pub fn inherits_config(dir: &Path, config: &[u8]) -> bool {
    dir.ancestors()
        .skip(1)
        .any(|parent| std::fs::read(parent.join(".cargo/config.toml")).is_ok_and(|c| c == config))
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
    Some(format!(
        "{} = \"{value}{separator}{tag}\"{newline}",
        key.trim_end()
    ))
}

/// An exclusive lock on a file, held until dropped, so that two runs do not
/// share one scratch tree. The operating system releases it if the process
/// dies, so a killed run leaves no stale lock.
#[derive(Debug)]
pub struct Lock {
    _file: std::fs::File,
}

impl Lock {
    /// Takes the lock at `path`, waiting (and saying so) while another
    /// process holds it.
    pub fn acquire(path: &Path, holder: &str) -> Result<Lock> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .with_context(|| format!("opening the lock file {}", path.display()))?;
        if !try_lock(&file)? {
            println!(
                "waiting for another {holder} to finish (it holds {})",
                path.display()
            );
            lock(&file)?;
        }
        Ok(Lock { _file: file })
    }
}

#[cfg(unix)]
fn try_lock(file: &std::fs::File) -> Result<bool> {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a file descriptor we own; no memory is involved.
    let status = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if status == 0 {
        return Ok(true);
    }
    let error = std::io::Error::last_os_error();
    if error.kind() == std::io::ErrorKind::WouldBlock {
        Ok(false)
    } else {
        Err(error).context("locking the scratch tree")
    }
}

#[cfg(unix)]
fn lock(file: &std::fs::File) -> Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: as above; this call blocks until the lock is free.
    let status = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
    if status == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error()).context("locking the scratch tree")
    }
}

// Elsewhere runs are not serialized (std's `File::lock` needs Rust 1.89,
// newer than the workbook's minimum); do not run two at once.
#[cfg(not(unix))]
fn try_lock(_file: &std::fs::File) -> Result<bool> {
    Ok(true)
}

#[cfg(not(unix))]
fn lock(_file: &std::fs::File) -> Result<()> {
    Ok(())
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
        isolate(&mut files, "t", Path::new("/nowhere/tree"));
        let manifest = |path: &str| String::from_utf8(files[Path::new(path)].0.clone()).unwrap();
        assert!(manifest("labs/00-hello/Cargo.toml").contains("0.1.0-t"));
        assert!(manifest("labs/support/Cargo.toml").contains("0.1.0-t"));
        assert!(manifest("xtask/Cargo.toml").contains("0.1.0-t"));
        assert!(!manifest("Cargo.toml").contains("-t"));
    }

    #[test]
    fn a_copy_inside_the_workspace_leaves_out_the_config_it_inherits() {
        let workspace = std::env::temp_dir().join(format!("scratch-test-{}", std::process::id()));
        let config = b"[build]\nrustflags = [\"--cfg\", \"tokio_unstable\"]\n".to_vec();
        std::fs::create_dir_all(workspace.join(".cargo")).unwrap();
        std::fs::write(workspace.join(".cargo/config.toml"), &config).unwrap();
        let copy = |tree: &Path| {
            let mut files = Files::new();
            files.insert(".cargo/config.toml".into(), (config.clone(), false));
            isolate(&mut files, "t", tree);
            files.contains_key(Path::new(".cargo/config.toml"))
        };
        let inside = copy(&workspace.join("target/verify/tree"));
        let outside = copy(Path::new("/nowhere/tree"));
        std::fs::remove_dir_all(&workspace).unwrap();
        assert!(!inside, "a copy under the workspace inherits its config");
        assert!(outside, "a copy elsewhere needs its own config");
    }
}
