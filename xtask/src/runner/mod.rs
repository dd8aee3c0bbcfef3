//! The learner's verbs: where am I, check my lab, watch it, give me a hint.
//!
//! A learner works through the labs in order with a handful of commands:
//!
//! - `status` (the default): every lab with its state, and what to do next;
//! - `check <lab>` and `watch [lab]`: run a lab's tests and explain the result;
//! - `hint <lab>`: one more hint each time;
//! - `reset <lab>` and `solution <lab> [--apply]`: start over, or catch up;
//! - `fetch`: download and build everything before an offline workshop.
//!
//! They all run the learner's own code in the real workspace with
//! `cargo test -p <lab>`, exactly what the book tells them to run by hand, and
//! remember what they found in `.workbook-progress.toml` (see [`progress`]).
//! Labs are named by slug or number everywhere ([`crate::labs::find`]).

pub mod check;
pub mod fetch;
pub mod fingerprint;
pub mod git;
pub mod hint;
pub mod process;
pub mod progress;
pub mod reset;
pub mod solution;
pub mod status;
pub mod ui;
pub mod watch;

use anyhow::{Result, bail};

use crate::Workspace;
use crate::labs::{self, Lab};

/// Finds the lab the learner named (slug, number or folder). Another lab's
/// broken `lab.toml` does not get in the way; the named lab's does, with
/// the reason.
pub fn find_lab(workspace: &Workspace, name: &str) -> Result<Lab> {
    let (labs, broken) = labs::discover(&workspace.root)?;
    match labs::find(&labs, name) {
        Ok(lab) => Ok(lab.clone()),
        Err(not_found) => {
            let wanted = name.trim().trim_end_matches(['/', '\\']);
            let wanted = wanted.rsplit(['/', '\\']).next().unwrap_or(wanted);
            let named = |folder: &str| {
                let (number, slug) = folder.split_once('-').unwrap_or((folder, ""));
                folder == wanted
                    || slug == wanted
                    || (number.parse::<u32>().ok()).is_some_and(|n| wanted.parse() == Ok(n))
            };
            for lab in &broken {
                let folder = lab.dir.file_name().unwrap_or_default().to_string_lossy();
                if named(&folder) {
                    bail!("labs/{folder} cannot be loaded: {:#}", lab.error);
                }
            }
            Err(not_found)
        }
    }
}

/// Whether `tokio-console` is on the `PATH`.
pub fn tokio_console_installed() -> bool {
    let name = format!("tokio-console{}", std::env::consts::EXE_SUFFIX);
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(&name).is_file()))
}
