//! The workbook on disk: where it is, and its labs as their folders and
//! `lab.toml` say (CONTRIBUTING.md documents both). Every verb reads the labs
//! through here, so the rules are checked in one place, with errors that say
//! how to fix them. Labs are keyed by slug; the number only orders them.

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
    /// `CARGO_TARGET_DIR`, else `<root>/target`.
    pub target_dir: PathBuf,
}

impl Workbook {
    /// The first folder upward holding `Cargo.toml` and `labs/`: found at
    /// run time, so that a tool built in another clone acts on *this* one.
    pub fn locate() -> Result<Self> {
        let here = std::env::current_dir().context("reading the current directory")?;
        let is_root = |dir: &&Path| dir.join("Cargo.toml").is_file() && dir.join("labs").is_dir();
        let Some(root) = here.ancestors().find(is_root) else {
            bail!(
                "not inside the workbook: no folder from {} upward holds Cargo.toml and labs/. \
                 Run `cargo xtask` inside your clone of the workbook.",
                here.display()
            )
        };
        Ok(Self::at(root.to_path_buf()))
    }

    pub fn at(root: PathBuf) -> Self {
        let target_dir = match std::env::var_os("CARGO_TARGET_DIR") {
            Some(dir) if Path::new(&dir).is_absolute() => PathBuf::from(dir),
            Some(dir) => root.join(dir),
            None => root.join("target"),
        };
        Workbook { root, target_dir }
    }

    /// Where `cargo xtask book` records the address it serves the book at
    /// (lab-support's links read it too).
    pub fn served_book_record(&self) -> PathBuf {
        self.target_dir.join("book-url")
    }

    /// `text` with links to the book's default address moved to where the
    /// book is served now.
    pub fn book_links(&self, text: &str) -> String {
        const DEFAULT: &str = "http://127.0.0.1:3000";
        match fs::read_to_string(self.served_book_record()) {
            Ok(served) if served.trim().starts_with("http://127.0.0.1:") => {
                text.replace(DEFAULT, served.trim())
            }
            _ => text.to_owned(),
        }
    }

    /// A warning if `CARGO_TARGET_DIR` points outside this checkout: two
    /// clones' path crates get the same artifact names (cargo#12516).
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
        path.strip_prefix(&self.root).unwrap_or(path).display().to_string()
    }

    /// The chapter of `lab`, `book/src/NN-slug.md`.
    pub fn chapter(&self, lab: &Lab) -> PathBuf {
        self.root.join("book").join("src").join(format!("{}.md", lab.folder_name()))
    }

    /// Every lab under `labs/`, in order, and apart the broken ones.
    pub fn labs(&self) -> Result<(Vec<Lab>, Vec<BrokenLab>)> {
        let labs_dir = self.root.join("labs");
        let entries =
            fs::read_dir(&labs_dir).with_context(|| format!("reading {}", labs_dir.display()))?;
        let mut dirs: Vec<PathBuf> = entries.flatten().map(|entry| entry.path()).collect();
        dirs.retain(|dir| dir.is_dir() && !dir.ends_with(SUPPORT_DIR));
        dirs.sort();
        let (mut labs, mut broken) = (Vec::<Lab>::new(), Vec::new());
        for dir in dirs {
            match self.load(&dir, &labs) {
                Ok(lab) => labs.push(lab),
                Err(error) => broken.push(BrokenLab { dir, error }),
            }
        }
        Ok((labs, broken))
    }

    /// The lab named by slug (`overload`), number (`3`, `03`) or folder
    /// (`labs/03-overload`); only its own broken `lab.toml` gets in the way.
    pub fn lab(&self, name: &str) -> Result<Lab> {
        let (labs, broken) = self.labs()?;
        let wanted = name.trim().trim_end_matches(['/', '\\']);
        let wanted = wanted.rsplit(['/', '\\']).next().unwrap_or(wanted);
        let named = |folder: &str| {
            let (number, slug) = folder.split_once('-').unwrap_or((folder, ""));
            folder == wanted
                || slug == wanted
                || number.parse::<u32>().is_ok_and(|n| wanted.parse() == Ok(n))
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
        let Some(Lab { slug, .. }) = labs.first() else {
            bail!("there is no lab named {wanted:?}: no labs were found under labs/")
        };
        let known = labs.iter().map(Lab::label).collect::<Vec<_>>().join("\n  ");
        bail!(
            "there is no lab named {wanted:?}. The labs are:\n  {known}\nName one by slug (e.g. \
             {slug}) or number."
        )
    }

    /// The labs named, or without names every lab for which `by_default` holds.
    pub fn labs_named(&self, names: &[String], by_default: fn(&Lab) -> bool) -> Result<Vec<Lab>> {
        match names {
            [] => Ok(self.labs()?.0.into_iter().filter(by_default).collect()),
            names => names.iter().map(|name| self.lab(name)).collect(),
        }
    }

    /// Loads and checks one lab folder, given the labs loaded before it.
    fn load(&self, dir: &Path, others: &[Lab]) -> Result<Lab> {
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
        let package =
            cargo.get("package").and_then(|p| p.get("name")?.as_str()).unwrap_or_default();
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
        ensure!(
            others.iter().all(|other| other.number != number),
            "another lab has the number {number:02}; every lab needs its own"
        );
        Ok(lab)
    }
}

/// One lab: its folder and its `lab.toml`, checked. Unknown keys are
/// refused, so that a typo (`fail = ...`) cannot drop the declared failures.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lab {
    /// From the folder name (`03-overload` -> 3, "overload").
    #[serde(skip)]
    pub number: u32,
    #[serde(skip)]
    pub slug: String,
    pub title: String,
    pub minutes: u32,
    /// Gentlest first.
    pub hints: Vec<String>,
    /// A test's own ladder of hints, by test name.
    #[serde(default)]
    pub hints_for: BTreeMap<String, Vec<String>>,
    /// Test name -> a phrase of its failure message on the starter.
    #[serde(default)]
    pub fails: BTreeMap<String, String>,
    #[serde(default)]
    pub console: ConsoleSection,
    #[serde(default)]
    pub reflect: Reflect,
    #[serde(default)]
    pub traps: Vec<Trap>,
    /// `<root>/labs/NN-slug`.
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

    /// The hints for the first failing test: its own ladder (with its
    /// name), else the lab's.
    pub fn hints_for(&self, failing: Option<&str>) -> (Option<&str>, &[String]) {
        match failing.and_then(|test| self.hints_for.get_key_value(test)) {
            Some((test, hints)) => (Some(test.as_str()), hints),
            None => (None, &self.hints),
        }
    }

    /// A sort key: tests in their order in `tests/lab.rs`, unknown ones last.
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
        ["--package".into(), self.slug.clone(), "--package".into(), self.solution_package()]
    }

    /// The solution crate, `<root>/solutions/NN-slug`.
    pub fn solution_dir(&self) -> PathBuf {
        let root =
            self.dir.parent().and_then(Path::parent).expect("a lab lives at <root>/labs/NN-slug");
        root.join("solutions").join(self.folder_name())
    }
}

/// The `[console]` table: what `console` says, what `capture-console`
/// saves, what `console-check` proves.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleSection {
    pub traffic: Option<String>,
    pub starter: Option<String>,
    pub solution: Option<String>,
    pub screens: Vec<Screen>,
    /// Read by the crate `xtask/console-check`.
    pub check: Option<toml::Table>,
}

/// `[[traps]]`: a piece of a compiler error, and what it likely means.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trap {
    pub error: String,
    pub says: String,
}

/// `[reflect]`: what `check` shows once the lab passes.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Reflect {
    pub fix: Option<String>,
    pub looks_right: Vec<String>,
    pub stretch: Vec<String>,
}

/// `[[console.screens]]`: a screen's name and the tmux keys that lead to it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Screen {
    pub name: String,
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
    let (digits, slug) = folder.split_once('-').unwrap_or_default();
    ensure!(
        digits.len() == 2 && digits.bytes().all(|b| b.is_ascii_digit()) && !slug.is_empty(),
        "labs/{folder} is not named NN-slug (two digits, a dash, the slug, e.g. 03-overload)"
    );
    Ok((digits.parse()?, slug))
}

/// Writes through a temporary file, so that a write never leaves half a file.
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
        for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = entry.file_name();
            match entry.file_type() {
                Ok(_) if is_noise(&name.to_string_lossy()) => {}
                Ok(kind) if kind.is_dir() && name != "target" => pending.push(entry.path()),
                Ok(kind) if !kind.is_dir() => files.push(entry.path()),
                _ => {}
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
