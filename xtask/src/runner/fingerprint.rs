//! A fingerprint of the files a lab's tests depend on.
//!
//! `status` would be slow if it ran every lab's tests every time. Instead it
//! remembers each result next to a fingerprint of the files the tests ran on,
//! and re-tests a lab only when the fingerprint changes. `watch` uses the same
//! fingerprint to notice a save on file systems that send no events.
//!
//! The fingerprint covers the lab's folder (sources, tests, `Cargo.toml`,
//! `lab.toml`) and what every lab shares: `labs/support`, the workspace's
//! `Cargo.toml`, `Cargo.lock` and `.cargo/config.toml`. Editor droppings
//! (hidden files, `name~` backups) are left out. The hash is FNV-1a (64 bits):
//! stable across Rust versions and platforms, which `std`'s hasher is not
//! promised to be, and plenty for telling "changed" from "unchanged".

use std::fs;
use std::path::{Path, PathBuf};

use crate::labs::Lab;

/// The fingerprint of `lab` and the shared files, as 16 hex digits.
pub fn of_lab(root: &Path, lab: &Lab) -> String {
    let mut paths = files_under(&lab.dir);
    paths.extend(files_under(&root.join("labs").join("support")));
    for shared in ["Cargo.toml", "Cargo.lock", ".cargo/config.toml"] {
        paths.push(root.join(shared));
    }
    of_files(root, &paths)
}

/// The fingerprint of the lab's own folder only: what a learner edits.
pub fn of_lab_folder(root: &Path, lab: &Lab) -> String {
    of_files(root, &files_under(&lab.dir))
}

/// Hashes each file's path (relative to `root`) and contents, in order. A
/// file that cannot be read counts as "missing", which is a change too.
fn of_files(root: &Path, paths: &[PathBuf]) -> String {
    let mut hash = Fnv1a::new();
    for path in paths {
        let name = path.strip_prefix(root).unwrap_or(path);
        // Forward slashes, so the same tree hashes the same on Windows.
        let name = name.to_string_lossy().replace('\\', "/");
        hash.write(name.as_bytes());
        hash.write(&[0]);
        match fs::read(path) {
            Ok(contents) => {
                hash.write(&(contents.len() as u64).to_le_bytes());
                hash.write(&contents);
            }
            Err(_) => hash.write(b"<missing>"),
        }
    }
    format!("{:016x}", hash.finish())
}

/// Every file under `dir`, sorted, skipping hidden files and backups (and
/// any `target` folder, should someone build inside a lab).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if is_noise(&name) {
                continue;
            }
            match entry.file_type() {
                Ok(kind) if kind.is_dir() => {
                    if name != "target" {
                        pending.push(path);
                    }
                }
                Ok(_) => files.push(path),
                Err(_) => {}
            }
        }
    }
    files.sort();
    files
}

/// Files that editors and operating systems leave next to sources.
pub fn is_noise(file_name: &str) -> bool {
    file_name.starts_with('.') || file_name.ends_with('~') || file_name.starts_with('#')
}

/// The 64-bit FNV-1a hash.
struct Fnv1a(u64);

impl Fnv1a {
    fn new() -> Self {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0 ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        for (path, contents) in files {
            let path = root.path().join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, contents).unwrap();
        }
        root
    }

    fn fingerprint(root: &Path) -> String {
        of_files(root, &files_under(root))
    }

    #[test]
    fn the_same_files_give_the_same_fingerprint() {
        let a = tree(&[("src/lib.rs", "fn a() {}"), ("Cargo.toml", "[package]")]);
        let b = tree(&[("src/lib.rs", "fn a() {}"), ("Cargo.toml", "[package]")]);
        assert_eq!(fingerprint(a.path()), fingerprint(b.path()));
        assert_eq!(fingerprint(a.path()).len(), 16);
    }

    #[test]
    fn an_edit_a_new_file_or_a_rename_changes_the_fingerprint() {
        let original = fingerprint(tree(&[("src/lib.rs", "fn a() {}")]).path());
        let edited = fingerprint(tree(&[("src/lib.rs", "fn b() {}")]).path());
        let added = fingerprint(tree(&[("src/lib.rs", "fn a() {}"), ("src/x.rs", "")]).path());
        let renamed = fingerprint(tree(&[("src/main.rs", "fn a() {}")]).path());
        for other in [&edited, &added, &renamed] {
            assert_ne!(&original, other);
        }
    }

    #[test]
    fn editor_swap_files_and_backups_do_not_count() {
        let clean = fingerprint(tree(&[("src/lib.rs", "fn a() {}")]).path());
        let noisy = fingerprint(
            tree(&[
                ("src/lib.rs", "fn a() {}"),
                ("src/.lib.rs.swp", "x"),
                ("src/lib.rs~", "y"),
                ("target/debug/x", "z"),
            ])
            .path(),
        );
        assert_eq!(clean, noisy);
    }

    #[test]
    fn fnv1a_matches_its_reference_values() {
        let mut empty = Fnv1a::new();
        empty.write(b"");
        assert_eq!(empty.finish(), 0xcbf2_9ce4_8422_2325);
        let mut a = Fnv1a::new();
        a.write(b"a");
        assert_eq!(a.finish(), 0xaf63_dc4c_8601_ec8c);
    }
}
