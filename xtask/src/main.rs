//! `cargo xtask`: the workbook's own tool.
//!
//! One binary for the three audiences of the course: learners read the book
//! with `cargo xtask book`, maintainers and CI prove the course is sound with
//! `cargo xtask verify`. The alias lives in `.cargo/config.toml`, so nothing
//! needs installing.
//!
//! Each verb lives in its own module with an `Args` struct (its flags, parsed
//! by clap) and a `run` function. Adding a verb takes three lines here: a
//! `mod`, a variant of [`Command`] and an arm in [`main`].

mod book;
mod cargo_test;
mod console;
mod labs;
mod runner;
mod scratch;
mod verify;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The workbook's tool: read the book, check the labs, verify the course.
#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about,
    after_help = "A learner needs two commands: `cargo xtask book` to read, \
                  `cargo test -p <lab>` to check a lab. `cargo xtask` alone shows \
                  your progress and what to do next; `cargo xtask watch` checks \
                  your lab every time you save."
)]
struct Cli {
    /// What to do; without one, `status`.
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    Status(runner::status::Args),
    Check(runner::check::Args),
    Watch(runner::watch::Args),
    Hint(runner::hint::Args),
    Reset(runner::reset::Args),
    Solution(runner::solution::Args),
    Book(book::Args),
    Console(console::Args),
    Fetch(runner::fetch::Args),
    Verify(verify::Args),
    CaptureConsole(console::capture::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let workspace = Workspace::locate();
    let command = cli
        .command
        .unwrap_or_else(|| Command::Status(runner::status::Args::default()));
    let result = match command {
        Command::Book(args) => book::run(&workspace, args),
        Command::Status(args) => runner::status::run(&workspace, args),
        Command::Check(args) => runner::check::run(&workspace, args),
        Command::Watch(args) => runner::watch::run(&workspace, args),
        Command::Hint(args) => runner::hint::run(&workspace, args),
        Command::Reset(args) => runner::reset::run(&workspace, args),
        Command::Solution(args) => runner::solution::run(&workspace, args),
        Command::Console(args) => console::run(&workspace, args),
        Command::Fetch(args) => runner::fetch::run(&workspace, args),
        Command::Verify(args) => verify::run(&workspace, args),
        Command::CaptureConsole(args) => console::capture::run(&workspace, args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// The variable that points the xtask at another copy of the workbook.
pub const ROOT_VARIABLE: &str = "WORKBOOK_ROOT";

/// Where the workbook lives on disk.
#[derive(Debug, Clone)]
pub struct Workspace {
    /// The repository root (holds `Cargo.toml`, `labs/`, `book/`).
    pub root: PathBuf,
    /// Cargo's target directory (`CARGO_TARGET_DIR`, else `<root>/target`).
    pub target_dir: PathBuf,
}

impl Workspace {
    /// The xtask crate sits at `<root>/xtask`, so the root is the parent of
    /// the directory cargo compiled us from. This works from any working
    /// directory inside the repository, as `cargo xtask` does.
    ///
    /// `WORKBOOK_ROOT` overrides it: the xtask's own tests point it at a
    /// throwaway copy of the repository, so they never touch your labs.
    pub fn locate() -> Self {
        if let Some(root) = std::env::var_os(ROOT_VARIABLE) {
            return Self::at(PathBuf::from(root));
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("the xtask crate lives inside the workspace")
            .to_path_buf();
        Self::at(root)
    }

    /// The workspace rooted at `root`.
    pub fn at(root: PathBuf) -> Self {
        let target_dir = match std::env::var_os("CARGO_TARGET_DIR") {
            Some(dir) if Path::new(&dir).is_absolute() => PathBuf::from(dir),
            Some(dir) => root.join(dir),
            None => root.join("target"),
        };
        Workspace { root, target_dir }
    }

    /// `path` relative to the root, for messages.
    pub fn relative(&self, path: &Path) -> String {
        labs::relative(&self.root, path)
    }
}
