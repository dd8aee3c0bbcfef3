//! The labs of the workbook: where they are and what their `lab.toml` says.
//!
//! A lab is a folder `labs/NN-slug/` (two-digit order number, then the slug)
//! holding a crate whose package name is the slug, and a `lab.toml`:
//!
//! ```toml
//! slug = "overload"
//! title = "Overload"
//! chapter = "03-overload.md"   # under book/src
//! minutes = 45                 # for instructors
//! hints = ["gentle", "firmer", "nearly the answer"]
//! [fails]                      # tests the starter must fail -> phrase in the message
//! excess_requests_are_refused_fast = "load shedding"
//! ```
//!
//! Every verb of the xtask reads the labs through this module, so that the
//! rules (slug matches the folder, package name is the slug, the chapter
//! exists) are checked in one place, with errors that say how to fix them.
//! Labs are keyed by slug; the number only orders them.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use serde::Deserialize;

/// One lab, loaded from `labs/NN-slug/lab.toml` and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lab {
    /// The order number, from the folder name (`03-overload` -> 3).
    pub number: u32,
    /// The stable id: progress and hints are keyed by it.
    pub slug: String,
    pub title: String,
    /// The chapter's file name under `book/src`, e.g. `03-overload.md`.
    pub chapter: String,
    /// How long the lab takes in a workshop.
    pub minutes: u32,
    /// Progressive hints, gentlest first.
    pub hints: Vec<String>,
    /// Test name -> a phrase its failure message must contain on the starter.
    pub fails: BTreeMap<String, String>,
    /// The Cargo package name (from the lab's `Cargo.toml`), equal to the slug.
    pub package: String,
    /// The lab's folder, `<root>/labs/NN-slug`.
    pub dir: PathBuf,
}

impl Lab {
    /// The folder name, `NN-slug`: the same under `labs/` and `solutions/`.
    pub fn folder_name(&self) -> String {
        format!("{:02}-{}", self.number, self.slug)
    }

    /// The fixed files of this lab, `<root>/solutions/NN-slug`.
    pub fn solution_dir(&self) -> PathBuf {
        let root = self
            .dir
            .parent()
            .and_then(Path::parent)
            .expect("a lab folder lives at <root>/labs/NN-slug");
        root.join("solutions").join(self.folder_name())
    }

    /// `03 overload`: how the labs are listed to a user.
    pub fn label(&self) -> String {
        format!("{:02} {}", self.number, self.slug)
    }
}

/// What `lab.toml` holds. Unknown keys are refused, so that a typo such as
/// `fail = ...` cannot silently drop the declared failures.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LabToml {
    slug: String,
    title: String,
    chapter: String,
    minutes: u32,
    hints: Vec<String>,
    #[serde(default)]
    fails: BTreeMap<String, String>,
}

/// The part of a lab's `Cargo.toml` the xtask needs.
#[derive(Debug, Deserialize)]
struct CargoToml {
    package: CargoPackage,
}

#[derive(Debug, Deserialize)]
struct CargoPackage {
    name: String,
}

/// The folder under `labs/` that holds shared code, not a lab.
const SUPPORT_DIR: &str = "support";

/// A lab folder that could not be loaded, with the reason.
#[derive(Debug)]
pub struct BrokenLab {
    pub dir: PathBuf,
    pub error: anyhow::Error,
}

/// Loads every lab under `<root>/labs`, keeping the broken ones apart, so a
/// caller (such as `verify`) can report each problem against its lab.
/// Fails only when `labs/` cannot be read at all.
pub fn discover(root: &Path) -> Result<(Vec<Lab>, Vec<BrokenLab>)> {
    let labs_dir = root.join("labs");
    let entries =
        fs::read_dir(&labs_dir).with_context(|| format!("reading {}", labs_dir.display()))?;
    let mut dirs = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("reading {}", labs_dir.display()))?;
        if entry.file_type()?.is_dir() && entry.file_name() != SUPPORT_DIR {
            dirs.push(entry.path());
        }
    }
    dirs.sort();

    let mut labs: Vec<Lab> = Vec::new();
    let mut broken = Vec::new();
    for dir in dirs {
        match load(root, &dir) {
            Ok(lab) => labs.push(lab),
            Err(error) => broken.push(BrokenLab { dir, error }),
        }
    }
    labs.sort_by_key(|lab| lab.number);

    // Numbers and slugs must be unique: two folders `03-a` and `03-b` would
    // make "lab 3" ambiguous. Both offenders are reported.
    let mut duplicates = Vec::new();
    for pair in labs.windows(2) {
        if pair[0].number == pair[1].number {
            duplicates.push(pair[1].number);
        }
    }
    if !duplicates.is_empty() {
        let (dup, ok): (Vec<Lab>, Vec<Lab>) = labs
            .into_iter()
            .partition(|l| duplicates.contains(&l.number));
        labs = ok;
        for lab in dup {
            broken.push(BrokenLab {
                error: anyhow::anyhow!(
                    "another lab has the number {:02}; every lab needs its own number",
                    lab.number
                ),
                dir: lab.dir,
            });
        }
    }
    Ok((labs, broken))
}

/// Loads and checks one lab folder.
pub fn load(root: &Path, dir: &Path) -> Result<Lab> {
    let folder = dir
        .file_name()
        .and_then(|n| n.to_str())
        .context("the folder name is not valid UTF-8")?;
    let (number, folder_slug) = parse_folder_name(folder)?;

    let lab_toml = dir.join("lab.toml");
    let text = fs::read_to_string(&lab_toml)
        .with_context(|| format!("{folder} has no readable lab.toml"))?;
    let meta: LabToml = toml::from_str(&text).context("lab.toml is not valid")?;

    ensure!(
        meta.slug == folder_slug,
        "lab.toml says slug = {:?} but the folder is named {folder:?}; \
         the folder must be NN-<slug> ({:02}-{})",
        meta.slug,
        number,
        meta.slug
    );

    let cargo_toml = dir.join("Cargo.toml");
    let cargo_text = fs::read_to_string(&cargo_toml)
        .with_context(|| format!("{folder} has no readable Cargo.toml"))?;
    let cargo: CargoToml = toml::from_str(&cargo_text).context("Cargo.toml is not valid")?;
    ensure!(
        cargo.package.name == meta.slug,
        "Cargo.toml names the package {:?} but the slug is {:?}; they must be equal \
         (learners run `cargo test -p {}`)",
        cargo.package.name,
        meta.slug,
        meta.slug
    );

    let chapter = root.join("book").join("src").join(&meta.chapter);
    ensure!(
        chapter.is_file(),
        "lab.toml says chapter = {:?} but book/src/{} does not exist",
        meta.chapter,
        meta.chapter
    );
    ensure!(
        !meta.hints.is_empty(),
        "lab.toml has no hints; give at least one (gentlest first)"
    );
    ensure!(
        !meta.fails.is_empty(),
        "lab.toml has an empty [fails] table; a starter must fail at least one test \
         (name the tests its bug breaks, each with a phrase of its failure message)"
    );
    for (test, phrase) in &meta.fails {
        ensure!(
            !phrase.trim().is_empty(),
            "[fails] gives test {test:?} an empty phrase; quote part of its failure message"
        );
    }
    ensure!(meta.minutes > 0, "lab.toml says minutes = 0");

    Ok(Lab {
        number,
        slug: meta.slug,
        title: meta.title,
        chapter: meta.chapter,
        minutes: meta.minutes,
        hints: meta.hints,
        fails: meta.fails,
        package: cargo.package.name,
        dir: dir.to_path_buf(),
    })
}

/// `03-overload` -> (3, "overload").
fn parse_folder_name(folder: &str) -> Result<(u32, &str)> {
    let parsed = folder.split_once('-').and_then(|(digits, slug)| {
        let two_digits = digits.len() == 2 && digits.bytes().all(|b| b.is_ascii_digit());
        (two_digits && !slug.is_empty()).then(|| (digits.parse().ok(), slug))
    });
    match parsed {
        Some((Some(number), slug)) => Ok((number, slug)),
        _ => bail!(
            "labs/{folder} is not named NN-slug (two digits, a dash, the slug, e.g. 03-overload)"
        ),
    }
}

/// Finds a lab by slug (`overload`), number (`3`, `03`) or folder (`03-overload`).
pub fn find<'a>(labs: &'a [Lab], wanted: &str) -> Result<&'a Lab> {
    let wanted = wanted.trim().trim_end_matches(['/', '\\']);
    // Accept a path such as `labs/03-overload` too.
    let wanted = wanted.rsplit(['/', '\\']).next().unwrap_or(wanted);
    let by_number = wanted.parse::<u32>().ok();
    let found = labs.iter().find(|lab| {
        lab.slug == wanted || lab.folder_name() == wanted || Some(lab.number) == by_number
    });
    match found {
        Some(lab) => Ok(lab),
        None => {
            let known: Vec<String> = labs.iter().map(Lab::label).collect();
            if known.is_empty() {
                bail!("there is no lab named {wanted:?}: no labs were found under labs/")
            }
            bail!(
                "there is no lab named {wanted:?}. The labs are:\n  {}\n\
                 Name one by slug (e.g. {}) or number.",
                known.join("\n  "),
                labs[0].slug
            )
        }
    }
}

/// `path` relative to `root`, for messages.
pub fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write as _;

    /// Every lab, or all the problems as one error.
    fn load_all(root: &Path) -> Result<Vec<Lab>> {
        let (labs, broken) = discover(root)?;
        if broken.is_empty() {
            return Ok(labs);
        }
        let mut message = String::from("some labs could not be loaded:");
        for b in &broken {
            write!(message, "\n  {}: {:#}", relative(root, &b.dir), b.error).unwrap();
        }
        bail!(message)
    }

    /// A throwaway workspace with the given labs: (folder, lab.toml, package).
    fn workspace(labs: &[(&str, &str, &str)]) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("labs/support")).unwrap();
        fs::create_dir_all(root.path().join("book/src")).unwrap();
        for (folder, lab_toml, package) in labs {
            let dir = root.path().join("labs").join(folder);
            fs::create_dir_all(&dir).unwrap();
            fs::write(dir.join("lab.toml"), lab_toml).unwrap();
            fs::write(
                dir.join("Cargo.toml"),
                format!("[package]\nname = \"{package}\"\nversion = \"0.1.0\"\n"),
            )
            .unwrap();
            fs::write(
                root.path().join("book/src").join(format!("{folder}.md")),
                "# x",
            )
            .unwrap();
        }
        root
    }

    fn lab_toml(slug: &str, chapter: &str) -> String {
        format!(
            "slug = \"{slug}\"\ntitle = \"T\"\nchapter = \"{chapter}\"\nminutes = 30\n\
             hints = [\"one\", \"two\"]\n[fails]\nsome_test = \"a phrase\"\n"
        )
    }

    #[test]
    fn labs_load_sorted_by_number_and_support_is_not_a_lab() {
        let ws = workspace(&[
            (
                "03-overload",
                &lab_toml("overload", "03-overload.md"),
                "overload",
            ),
            ("00-hello", &lab_toml("hello", "00-hello.md"), "hello"),
        ]);
        let labs = load_all(ws.path()).unwrap();
        let slugs: Vec<_> = labs.iter().map(|l| l.slug.as_str()).collect();
        assert_eq!(slugs, ["hello", "overload"]);
        let overload = &labs[1];
        assert_eq!(overload.number, 3);
        assert_eq!(overload.package, "overload");
        assert_eq!(overload.hints, ["one", "two"]);
        assert_eq!(overload.fails["some_test"], "a phrase");
        assert_eq!(overload.folder_name(), "03-overload");
        assert_eq!(
            overload.solution_dir(),
            ws.path().join("solutions/03-overload")
        );
    }

    #[test]
    fn a_lab_is_found_by_slug_number_or_folder() {
        let ws = workspace(&[
            ("00-hello", &lab_toml("hello", "00-hello.md"), "hello"),
            (
                "03-overload",
                &lab_toml("overload", "03-overload.md"),
                "overload",
            ),
        ]);
        let labs = load_all(ws.path()).unwrap();
        for name in ["overload", "3", "03", "03-overload", "labs/03-overload/"] {
            assert_eq!(
                find(&labs, name).unwrap().slug,
                "overload",
                "finding {name:?}"
            );
        }
        let error = find(&labs, "nope").unwrap_err().to_string();
        assert!(
            error.contains("00 hello") && error.contains("03 overload"),
            "an unknown lab should list the labs, got: {error}"
        );
    }

    #[test]
    fn a_slug_that_differs_from_the_folder_is_refused() {
        let ws = workspace(&[(
            "03-overload",
            &lab_toml("overlaod", "03-overload.md"),
            "overlaod",
        )]);
        let error = format!("{:#}", load_all(ws.path()).unwrap_err());
        assert!(error.contains("folder is named \"03-overload\""), "{error}");
    }

    #[test]
    fn a_package_name_that_differs_from_the_slug_is_refused() {
        let ws = workspace(&[(
            "03-overload",
            &lab_toml("overload", "03-overload.md"),
            "lab03",
        )]);
        let error = format!("{:#}", load_all(ws.path()).unwrap_err());
        assert!(error.contains("names the package \"lab03\""), "{error}");
    }

    #[test]
    fn a_missing_chapter_is_refused() {
        let ws = workspace(&[(
            "03-overload",
            &lab_toml("overload", "3-overload.md"),
            "overload",
        )]);
        let error = format!("{:#}", load_all(ws.path()).unwrap_err());
        assert!(
            error.contains("book/src/3-overload.md does not exist"),
            "{error}"
        );
    }

    #[test]
    fn a_misspelled_key_is_refused() {
        let toml = lab_toml("overload", "03-overload.md").replace("[fails]", "[fail]");
        let ws = workspace(&[("03-overload", &toml, "overload")]);
        let error = format!("{:#}", load_all(ws.path()).unwrap_err());
        assert!(error.contains("unknown field `fail`"), "{error}");
    }

    #[test]
    fn a_folder_not_named_nn_slug_is_refused() {
        let ws = workspace(&[(
            "3-overload",
            &lab_toml("overload", "3-overload.md"),
            "overload",
        )]);
        let error = format!("{:#}", load_all(ws.path()).unwrap_err());
        assert!(error.contains("is not named NN-slug"), "{error}");
    }

    #[test]
    fn two_labs_with_one_number_are_refused() {
        let ws = workspace(&[
            (
                "03-overload",
                &lab_toml("overload", "03-overload.md"),
                "overload",
            ),
            ("03-other", &lab_toml("other", "03-other.md"), "other"),
        ]);
        let (labs, broken) = discover(ws.path()).unwrap();
        assert!(labs.is_empty());
        assert_eq!(broken.len(), 2);
    }
}
