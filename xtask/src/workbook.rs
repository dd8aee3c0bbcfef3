//! The workbook on disk: where it is, and its labs with what their `lab.toml` says.
//!
//! A lab is a folder `labs/NN-slug/` (two-digit order number, then the slug)
//! holding a crate whose package name is the slug, and a `lab.toml` (the
//! format is documented once, in CONTRIBUTING.md). Its chapter is
//! `book/src/NN-slug.md`, its solution the crate `solutions/NN-slug`
//! (package `slug-solution`). Everything the tool knows about a lab comes from
//! that folder, so adding a lab touches no code here.
//!
//! Every verb reads the labs through this module, so the rules are checked in
//! one place, with errors that say how to fix them. Labs are keyed by slug;
//! the number only orders them.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use serde::Deserialize;

/// Where the workbook lives on disk.
#[derive(Debug, Clone)]
pub struct Workbook {
    /// The repository root (holds `Cargo.toml`, `labs/`, `book/`).
    pub root: PathBuf,
    /// Cargo's target directory (`CARGO_TARGET_DIR`, else `<root>/target`).
    pub target_dir: PathBuf,
}

impl Workbook {
    /// The workbook around the current directory: the first folder upward
    /// that holds both `Cargo.toml` and `labs/`. Found at run time, never
    /// fixed when the tool was compiled: a tool built in another clone (a
    /// shared target directory) must act on *this* clone.
    pub fn locate() -> Result<Self> {
        let here = std::env::current_dir().context("reading the current directory")?;
        match here
            .ancestors()
            .find(|dir| dir.join("Cargo.toml").is_file() && dir.join("labs").is_dir())
        {
            Some(root) => Ok(Self::at(root.to_path_buf())),
            None => bail!(
                "not inside the workbook: no folder from {} upward holds Cargo.toml and labs/. \
                 Run `cargo xtask` inside your clone of the workbook.",
                here.display()
            ),
        }
    }

    /// The workbook rooted at `root`.
    pub fn at(root: PathBuf) -> Self {
        let target_dir = match std::env::var_os("CARGO_TARGET_DIR") {
            Some(dir) if Path::new(&dir).is_absolute() => PathBuf::from(dir),
            Some(dir) => root.join(dir),
            None => root.join("target"),
        };
        Workbook { root, target_dir }
    }

    /// Where `cargo xtask book` records the address it serves the book at
    /// while it runs (`http://127.0.0.1:<port>`); lab-support's links read it.
    pub fn served_book_record(&self) -> PathBuf {
        self.target_dir.join("book-url")
    }

    /// `text` with links to the book's default address moved to where the
    /// book is served now, if it is served elsewhere.
    pub fn book_links(&self, text: &str) -> String {
        const DEFAULT: &str = "http://127.0.0.1:3000";
        match std::fs::read_to_string(self.served_book_record()) {
            Ok(served) if served.trim().starts_with("http://127.0.0.1:") => {
                text.replace(DEFAULT, served.trim())
            }
            _ => text.to_owned(),
        }
    }

    /// Why a `CARGO_TARGET_DIR` outside this checkout is a hazard, if it is
    /// one: the path crates of two clones get the same artifact names
    /// (cargo#12516), so `cargo test -p hello` in one clone can run the
    /// other clone's build. (The workbook's `.cargo/config.toml` sets
    /// `build.target-dir`, which beats a global config; only the variable
    /// overrides it.)
    pub fn shared_target_warning(&self) -> Option<String> {
        (!self.target_dir.starts_with(&self.root)).then(|| {
            format!(
                "CARGO_TARGET_DIR points outside this workbook ({}). With another clone of the \
                 workbook building there too, cargo can run the other clone's build of a lab \
                 (cargo#12516). Unset it for the workbook: `env -u CARGO_TARGET_DIR cargo xtask ...`.",
                self.target_dir.display()
            )
        })
    }

    /// `path` relative to the root, for messages.
    pub fn relative(&self, path: &Path) -> String {
        let relative = path.strip_prefix(&self.root).unwrap_or(path);
        relative.display().to_string()
    }

    /// The chapter of `lab`, `book/src/NN-slug.md`.
    pub fn chapter(&self, lab: &Lab) -> PathBuf {
        self.root.join("book").join("src").join(format!("{}.md", lab.folder_name()))
    }

    /// Every lab under `labs/`, in order, with the broken ones apart so a
    /// caller (such as `verify`) can report each problem against its lab.
    pub fn labs(&self) -> Result<(Vec<Lab>, Vec<BrokenLab>)> {
        let labs_dir = self.root.join("labs");
        let entries =
            fs::read_dir(&labs_dir).with_context(|| format!("reading {}", labs_dir.display()))?;
        let mut dirs: Vec<PathBuf> = entries
            .flatten()
            .filter(|entry| entry.path().is_dir() && entry.file_name() != SUPPORT_DIR)
            .map(|entry| entry.path())
            .collect();
        dirs.sort();
        let (mut labs, mut broken) = (Vec::<Lab>::new(), Vec::new());
        for dir in dirs {
            match self.load(&dir) {
                // Numbers must be unique: two folders `03-a` and `03-b` would
                // make "lab 3" ambiguous.
                Ok(lab) if labs.iter().any(|other| other.number == lab.number) => {
                    broken.push(BrokenLab {
                        error: anyhow::anyhow!(
                            "another lab has the number {:02}; every lab needs its own",
                            lab.number
                        ),
                        dir,
                    })
                }
                Ok(lab) => labs.push(lab),
                Err(error) => broken.push(BrokenLab { dir, error }),
            }
        }
        Ok((labs, broken))
    }

    /// The lab the learner named: by slug (`overload`), number (`3`, `03`) or
    /// folder (`labs/03-overload`). Another lab's broken `lab.toml` does not
    /// get in the way; the named lab's does, with the reason.
    pub fn lab(&self, name: &str) -> Result<Lab> {
        let (labs, broken) = self.labs()?;
        let wanted = name.trim().trim_end_matches(['/', '\\']);
        let wanted = wanted.rsplit(['/', '\\']).next().unwrap_or(wanted);
        let named = |folder: &str| {
            let (number, slug) = folder.split_once('-').unwrap_or((folder, ""));
            folder == wanted
                || slug == wanted
                || (number.parse::<u32>().ok()).is_some_and(|n| wanted.parse() == Ok(n))
        };
        if let Some(lab) = labs.iter().find(|lab| named(&lab.folder_name())) {
            return Ok(lab.clone());
        }
        for lab in &broken {
            let folder = lab.dir.file_name().unwrap_or_default().to_string_lossy();
            if named(&folder) {
                bail!("labs/{folder} cannot be loaded: {:#}", lab.error);
            }
        }
        let known: Vec<String> = labs.iter().map(Lab::label).collect();
        match labs.first() {
            None => bail!("there is no lab named {wanted:?}: no labs were found under labs/"),
            Some(first) => bail!(
                "there is no lab named {wanted:?}. The labs are:\n  {}\nName one by slug (e.g. {}) or number.",
                known.join("\n  "),
                first.slug
            ),
        }
    }

    /// The labs named (see [`Workbook::lab`]), or without names every lab
    /// for which `by_default` holds: for the maintainer's verbs.
    pub fn labs_named(&self, names: &[String], by_default: fn(&Lab) -> bool) -> Result<Vec<Lab>> {
        match names {
            [] => Ok(self.labs()?.0.into_iter().filter(by_default).collect()),
            names => names.iter().map(|name| self.lab(name)).collect(),
        }
    }

    /// Loads and checks one lab folder.
    fn load(&self, dir: &Path) -> Result<Lab> {
        let folder = dir
            .file_name()
            .and_then(|n| n.to_str())
            .context("the folder name is not valid UTF-8")?;
        let (number, slug) = parse_folder_name(folder)?;
        let text = fs::read_to_string(dir.join("lab.toml"))
            .with_context(|| format!("{folder} has no readable lab.toml"))?;
        let lab: Lab = toml::from_str(&text).context("lab.toml is not valid")?;
        let lab = Lab { number, slug: slug.to_owned(), dir: dir.to_path_buf(), ..lab };

        let cargo_text = fs::read_to_string(dir.join("Cargo.toml"))
            .with_context(|| format!("{folder} has no readable Cargo.toml"))?;
        let cargo: toml::Table = toml::from_str(&cargo_text).context("Cargo.toml is not valid")?;
        let package = cargo.get("package").and_then(|package| package.get("name"));
        let package = package.and_then(toml::Value::as_str).unwrap_or_default();
        ensure!(
            package == slug,
            "Cargo.toml names the package {package:?} but the folder says the slug is {slug:?}; \
             they must be equal (learners run `cargo test -p {slug}`)"
        );
        ensure!(!lab.hints.is_empty(), "lab.toml has no hints; give at least one (gentlest first)");
        ensure!(
            !lab.fails.is_empty(),
            "lab.toml has an empty [fails] table; a starter must fail at least one test \
             (name the tests its bug breaks, each with a phrase of its failure message)"
        );
        if let Some((test, _)) = lab.fails.iter().find(|(_, phrase)| phrase.trim().is_empty()) {
            bail!("[fails] gives test {test:?} an empty phrase; quote part of its failure message");
        }
        ensure!(lab.minutes > 0, "lab.toml says minutes = 0");
        ensure!(self.chapter(&lab).is_file(), "its chapter book/src/{folder}.md does not exist");
        Ok(lab)
    }
}

/// One lab: its `labs/NN-slug/lab.toml`, checked, and its folder. Unknown
/// keys are refused, so that a typo such as `fail = ...` cannot silently
/// drop the declared failures.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lab {
    /// The order number, from the folder name (`03-overload` -> 3).
    #[serde(skip)]
    pub number: u32,
    /// The stable id, from the folder name; also the package name.
    #[serde(skip)]
    pub slug: String,
    pub title: String,
    /// How long the lab takes in a workshop.
    pub minutes: u32,
    /// Progressive hints, gentlest first.
    pub hints: Vec<String>,
    /// Ladders of hints of their own for some tests (a lab with several
    /// bugs): test name -> hints, gentlest first.
    #[serde(default)]
    pub hints_for: BTreeMap<String, Vec<String>>,
    /// Test name -> a phrase its failure message must contain on the starter.
    #[serde(default)]
    pub fails: BTreeMap<String, String>,
    /// What `cargo xtask console` says about the lab.
    #[serde(default)]
    pub console: ConsoleSection,
    /// What `check` shows once the lab passes.
    #[serde(default)]
    pub reflect: Reflect,
    /// Compile errors learners of this lab are known to meet, explained.
    #[serde(default)]
    pub traps: Vec<Trap>,
    /// The lab's folder, `<root>/labs/NN-slug`.
    #[serde(skip)]
    pub dir: PathBuf,
}

impl Lab {
    /// The folder name, `NN-slug`: the same under `labs/` and `solutions/`.
    pub fn folder_name(&self) -> String {
        format!("{:02}-{}", self.number, self.slug)
    }

    /// `03 overload`: how the labs are listed to a user.
    pub fn label(&self) -> String {
        format!("{:02} {}", self.number, self.slug)
    }

    /// The hints for a learner whose first failing test is `failing`: that
    /// test's own ladder if it has one (with its name), else the lab's.
    pub fn hints_for(&self, failing: Option<&str>) -> (Option<&str>, &[String]) {
        match failing.and_then(|test| self.hints_for.get_key_value(test)) {
            Some((test, hints)) => (Some(test.as_str()), hints),
            None => (None, &self.hints),
        }
    }

    /// A sort key putting tests in the order they appear in `tests/lab.rs`
    /// (the order the lab's author chose), unknown ones last.
    pub fn test_order(&self) -> impl Fn(&str) -> usize + use<> {
        let source = fs::read_to_string(self.dir.join("tests").join("lab.rs")).unwrap_or_default();
        move |name: &str| {
            let short = name.rsplit("::").next().unwrap_or(name);
            source.find(&format!("fn {short}(")).unwrap_or(usize::MAX)
        }
    }

    /// The solution's package, `slug-solution`.
    pub fn solution_package(&self) -> String {
        format!("{}-solution", self.slug)
    }

    /// Cargo's arguments that select the lab and its solution.
    pub fn package_args(&self) -> [String; 4] {
        let package = "--package".to_owned();
        [package.clone(), self.slug.clone(), package, self.solution_package()]
    }

    /// The solution crate, `<root>/solutions/NN-slug`.
    pub fn solution_dir(&self) -> PathBuf {
        let root =
            self.dir.parent().and_then(Path::parent).expect("a lab lives at <root>/labs/NN-slug");
        root.join("solutions").join(self.folder_name())
    }
}

/// The `[console]` table of `lab.toml`: words for `cargo xtask console`.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleSection {
    /// What the lab's `examples/traffic.rs` does.
    pub traffic: Option<String>,
    /// What to look for in tokio-console on the starter.
    pub starter: Option<String>,
    /// What to look for on the solution.
    pub solution: Option<String>,
    /// The screens `cargo xtask dev capture-console` saves for the book.
    #[serde(default)]
    pub screens: Vec<Screen>,
    /// The words above as claims `cargo xtask dev console-check` proves
    /// (its crate, `xtask/console-check`, reads them).
    pub check: Option<toml::Table>,
}

/// A compile error learners are known to meet (`[[traps]]` in `lab.toml`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trap {
    /// A piece of the compiler's message that gives the trap away.
    pub error: String,
    /// One line: the likely cause, and the chapter section to read.
    pub says: String,
}

/// The `[reflect]` table of `lab.toml`: what a learner is shown once the lab
/// passes, to look back on what the fix taught.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reflect {
    /// What the reference fix changed, and why it works.
    pub fix: Option<String>,
    /// Fixes that look right but are not, each with why.
    #[serde(default)]
    pub looks_right: Vec<String>,
    /// Stretch tasks, each with an opt-in test (`cargo test -p <lab> -- --ignored`).
    #[serde(default)]
    pub stretch: Vec<String>,
}

/// One tokio-console screen to capture: the keys that lead to it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Screen {
    /// Part of the file name: `tasks` (the task list) or `task` (one task).
    pub name: String,
    /// tmux key names, sent one by one after the previous screen.
    #[serde(default)]
    pub keys: Vec<String>,
}

/// The folder under `labs/` that holds shared code, not a lab.
const SUPPORT_DIR: &str = "support";

/// A lab folder that could not be loaded, with the reason.
#[derive(Debug)]
pub struct BrokenLab {
    pub dir: PathBuf,
    pub error: anyhow::Error,
}

/// `03-overload` -> (3, "overload").
fn parse_folder_name(folder: &str) -> Result<(u32, &str)> {
    let parsed = folder.split_once('-').filter(|(digits, slug)| {
        digits.len() == 2 && digits.bytes().all(|b| b.is_ascii_digit()) && !slug.is_empty()
    });
    match parsed {
        Some((digits, slug)) => Ok((digits.parse()?, slug)),
        None => bail!(
            "labs/{folder} is not named NN-slug (two digits, a dash, the slug, e.g. 03-overload)"
        ),
    }
}

/// Writes `text` to `path` through a temporary file beside it, so that an
/// interrupted write never leaves half a file.
pub fn write_atomically(path: &Path, text: &str) -> Result<()> {
    let temporary = path.with_extension("tmp");
    fs::write(&temporary, text)
        .and_then(|()| fs::rename(&temporary, path))
        .with_context(|| format!("writing {}", path.display()))
}

/// Every file under `dir`, sorted, skipping hidden files, editor backups
/// and any `target` folder.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            match entry.file_type() {
                _ if is_noise(&name) => {}
                Ok(kind) if kind.is_dir() => {
                    if name != "target" {
                        pending.push(entry.path());
                    }
                }
                Ok(_) => files.push(entry.path()),
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
